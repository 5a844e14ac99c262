//! The dashboard in a real browser: headless Chromium, driven through
//! chromedriver (WebDriver), walks the pages a person would use, against
//! the real `bellbook serve --demo` binary; after each step the JSON API
//! says whether the page really did what it showed.
//!
//! Needs `chromium` and `chromium-driver` (Debian); without them the test
//! fails and says so. Screenshots of every page visited are written to
//! `target/browser-screenshots/`.
//!
//! `cargo test --test browser -- --nocapture`

mod harness;

use std::panic::AssertUnwindSafe;
use std::path::Path;
use std::time::Instant;

use fantoccini::Locator;
use fantoccini::key::Key;
use futures::FutureExt;
use serde_json::{Value, json};

use harness::{Api, Browser, DEMO_KEY, Driver, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_works_in_a_real_browser() {
    let started = Instant::now();
    let dir = tempfile::tempdir().expect("temp dir");
    // The browser first: without it, the test fails before anything else.
    let driver = Driver::start(dir.path()).await;
    let server = Server::start(dir.path()).await;
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/browser-screenshots");
    println!("screenshots: {}", shots.display());
    let client = driver.session().await;
    let browser = Browser::new(client.clone(), &server.origin, &driver, shots).await;
    let api = Api::new(&server.origin);

    // The session is closed whatever happens, so that no browser is left
    // behind; then a failure is a failure again.
    let walked = AssertUnwindSafe(walk(&browser, &api)).catch_unwind().await;
    for line in browser.console.borrow().iter() {
        println!("console [{}] {}: {}", line.page, line.level, line.message);
    }
    let _ = client.close().await;
    if let Err(panic) = walked {
        std::panic::resume_unwind(panic);
    }
    check_console(&browser);
    println!("the walk took {:.1} s", started.elapsed().as_secs_f64());
    drop(server);
    drop(driver);
}

/// No page may break its own Content-Security-Policy: a violation is
/// something the page meant to show and the browser refused. The one
/// exception: Redoc always draws a logo from its CDN ("API docs by
/// Redocly"); the policy of /docs blocks it, as it should (nothing is
/// fetched from elsewhere), and Redoc then hides the image.
fn check_console(browser: &Browser) {
    let mut broken = Vec::new();
    for line in browser.console.borrow().iter() {
        if !line.message.contains("Content Security Policy") {
            continue;
        }
        let blocked = line.message.split('\'').nth(1).unwrap_or("");
        let elsewhere = blocked.starts_with("http") && !blocked.starts_with(&browser.origin);
        if line.page.ends_with("docs") && elsewhere {
            println!("note: /docs was kept from fetching {blocked} (its policy at work)");
        } else {
            broken.push(format!("[{}] {}", line.page, line.message));
        }
    }
    assert!(
        broken.is_empty(),
        "pages broke their Content-Security-Policy:\n{}",
        broken.join("\n")
    );
}

async fn walk(b: &Browser, api: &Api) {
    // a. A contact, made through the API.
    let created = api
        .post(
            "/contacts",
            &json!({"identifier": "+39 333 777 0001", "source": "whatsapp", "name": "Browser Bianchi"}),
        )
        .await;
    assert!(
        (200..300).contains(&created.status),
        "POST /v1/contacts: {} {}",
        created.status,
        created.text
    );
    let contact = &created.body["contact"][0];
    let uuid = contact["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("no uuid in {}", created.text))
        .to_owned();
    assert!(
        contact["conversationHref"].is_string(),
        "no conversationHref in {}",
        created.text
    );

    sign_in(b).await;
    let contact_path = search(b, &uuid).await;
    custom_field(b, api, &uuid, &contact_path).await;
    conversation(b, api, &uuid).await;
    api_keys(b, api).await;
    settings_pages(b).await;
    reference(b).await;
    phone(b, &contact_path).await;
    hostile(b, api).await;
    sign_out(b).await;
}

/// A contact whose every value is an attack, shown on its page, its
/// conversation and the list: nothing runs, nothing becomes an element.
async fn hostile(b: &Browser, api: &Api) {
    const RUN: &str = "<script>document.title='pwned'</script>";
    const IMG: &str = "\"><img src=x onerror=\"document.title='pwned'\">";
    let tag = api.post("/tags", &json!({"name": IMG})).await;
    assert_eq!(tag.status, 200, "{}", tag.text);
    let created = api
        .post(
            "/contacts",
            &json!({
                "identifier": "+39 333 777 0666", "source": "whatsapp", "name": RUN,
                "tags": [IMG], "note": IMG,
                "custom_fields": {"Billing Address": "javascript:document.title='pwned'", "VAT": RUN},
            }),
        )
        .await;
    assert_eq!(created.status, 200, "{}", created.text);
    let contact = &created.body["contact"][0];
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let chat = contact["conversationHref"]
        .as_str()
        .and_then(|href| href.rsplit('/').next())
        .map(|id| format!("/chat/{id}"))
        .expect("conversationHref");
    let note = api
        .post(
            &format!("/contacts/{uuid}/conversation/note"),
            &json!({"text": IMG}),
        )
        .await;
    assert_eq!(note.status, 200, "{}", note.text);
    for path in [
        format!("/contacts/{uuid}"),
        chat,
        "/contacts?q=pwned".to_owned(),
    ] {
        b.goto(&path).await;
        b.element("main").await;
        let found = b
            .script(
                "return {title: document.title, \
                 elements: document.querySelectorAll('main img, main script, body script').length, \
                 links: [...document.querySelectorAll('a[href]')].filter(a => !a.getAttribute('href').startsWith('/')).length}",
            )
            .await;
        assert_ne!(found["title"], "pwned", "{path}: a hostile value ran");
        assert_eq!(
            found["elements"], 0,
            "{path}: a hostile value became an element"
        );
        assert_eq!(found["links"], 0, "{path}: a link off this site");
    }
    b.goto(&format!("/contacts/{uuid}")).await;
    b.element("main").await;
    b.shot("hostile-contact").await;
}

/// b. A signed-out browser is sent to the sign-in page, and back once the
/// owner signs in with the API key, by keyboard alone.
async fn sign_in(b: &Browser) {
    b.goto("/contacts").await;
    let at = b.wait_path("/signin").await;
    let next = at
        .query_pairs()
        .find(|(k, _)| k == "next")
        .map(|(_, v)| v.into_owned());
    assert_eq!(next.as_deref(), Some("/contacts"), "sign-in URL {at}");
    b.element("form[action=\"/signin\"] button[type=submit]")
        .await;
    b.shot("signin").await;

    // Keyboard: into the e-mail field, Tab to the password, Tab to the
    // key, type it, Enter.
    let email = b.element("#email").await;
    email.send_keys(&Key::Tab).await.expect("Tab");
    let focused = b.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("password")
    );
    focused.send_keys(&Key::Tab).await.expect("Tab");
    let focused = b.client.active_element().await.expect("focus");
    assert_eq!(
        focused.attr("id").await.expect("id").as_deref(),
        Some("key"),
        "Tab from the password goes to the API key"
    );
    focused
        .send_keys(&format!("{DEMO_KEY}{}", char::from(Key::Enter)))
        .await
        .expect("type the key and Enter");
    b.wait_path("/contacts").await;
    b.text_where("header .who", "name the owner", |t| {
        t.contains("john.doe@email.com")
    })
    .await;
    b.element("#total").await;
    b.shot("contacts").await;
}

/// c. The search finds the new contact; its link opens its page.
async fn search(b: &Browser, uuid: &str) -> String {
    b.fill("#q", "Bianchi").await;
    b.submit("form[role=\"search\"]").await;
    b.wait("the search for Bianchi", async || {
        let url = b.client.current_url().await.ok()?;
        url.query_pairs()
            .any(|(k, v)| k == "q" && v == "Bianchi")
            .then_some(())
    })
    .await;
    b.text_where("#total", "be 1", |t| t == "1").await;
    let tbody = b.element("table tbody").await;
    let link = b
        .wait("a link Browser Bianchi in the results", async || {
            tbody.find(Locator::LinkText("Browser Bianchi")).await.ok()
        })
        .await;
    b.shot("search").await;
    b.click(&link, "Browser Bianchi").await;
    let path = format!("/contacts/{uuid}");
    b.wait_path(&path).await;
    b.text_where("h1", "name the contact", |t| t == "Browser Bianchi")
        .await;
    path
}

/// d. A number field refuses words, beside the field, and saves nothing;
/// then a number is saved.
async fn custom_field(b: &Browser, api: &Api, uuid: &str, contact_path: &str) {
    let input = "input[name=\"field:orderNumber\"]";
    let form = format!("form[action=\"{contact_path}\"]");
    b.fill(input, "not a number").await;
    b.submit(&form).await;
    let problem = b
        .text_where(".field-problem", "be shown", |t| !t.is_empty())
        .await;
    assert!(
        problem.contains("number"),
        "the field's problem names the number: {problem:?}"
    );
    // Beside the field it is about: the element right after the input.
    let beside = b
        .script(
            "const i = document.querySelector('input[name=\"field:orderNumber\"]');\
             const p = i && i.nextElementSibling;\
             return p && p.classList.contains('field-problem') ? p.textContent : null;",
        )
        .await;
    assert_eq!(
        beside.as_str(),
        Some(problem.as_str()),
        "the problem is shown right after the orderNumber input"
    );
    let problems = b
        .client
        .find_all(Locator::Css(".field-problem"))
        .await
        .expect("problems");
    assert_eq!(
        problems.len(),
        1,
        "only the orderNumber field has a problem"
    );
    let summary = b
        .text_where(".problem", "be shown", |t| !t.is_empty())
        .await;
    assert!(
        summary.starts_with("Nothing was saved"),
        "the summary: {summary:?}"
    );
    let kept = b.element(input).await.prop("value").await.expect("value");
    assert_eq!(
        kept.as_deref(),
        Some("not a number"),
        "the refused form keeps what was typed"
    );
    b.shot("contact-error").await;
    let stored = api.contact(uuid).await;
    assert!(
        stored["customFields"].get("orderNumber").is_none(),
        "nothing was saved, yet the API has {}",
        stored["customFields"]
    );

    b.fill(input, "42").await;
    b.submit(&form).await;
    b.text_where(".notice", "say Saved.", |t| t == "Saved.")
        .await;
    b.wait_path(contact_path).await;
    b.shot("contact-saved").await;
    let stored = api.contact(uuid).await;
    assert_eq!(
        stored["customFields"]["orderNumber"],
        json!("42"),
        "the API's customFields: {}",
        stored["customFields"]
    );
}

/// e, f. A note on the conversation; closing and reopening it.
async fn conversation(b: &Browser, api: &Api, uuid: &str) {
    let link = b.element("main a[href^=\"/chat/\"]").await;
    b.click(&link, "the conversation link").await;
    b.wait("the conversation page", async || {
        let url = b.client.current_url().await.ok()?;
        url.path().starts_with("/chat/").then_some(())
    })
    .await;
    b.text_where("#state", "be open", |t| t == "open").await;

    let note = "Called from the browser";
    b.fill("#text", note).await;
    b.submit("form[action$=\"/note\"]").await;
    b.text_where("ol.timeline", "show the note", |t| t.contains(note))
        .await;
    b.shot("chat").await;
    let messages = api.get(&format!("/contacts/{uuid}/messages")).await;
    assert_eq!(messages.status, 200, "messages: {}", messages.text);
    let texts: Vec<&str> = messages.body["messages"]
        .as_array()
        .map(|m| m.iter().filter_map(|m| m["text"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(
        texts.first().copied(),
        Some(note),
        "the note is the newest message: {}",
        messages.text
    );

    b.submit("form[action$=\"/close\"]").await;
    b.text_where("#state", "be closed", |t| t == "closed").await;
    b.element("form[action$=\"/open\"]").await;
    b.shot("chat-closed").await;
    let closed = api.contact(uuid).await;
    assert!(
        closed["closedAt"].is_string(),
        "closedAt after closing: {}",
        closed["closedAt"]
    );

    b.submit("form[action$=\"/open\"]").await;
    b.text_where("#state", "be open", |t| t == "open").await;
    b.element("form[action$=\"/close\"]").await;
    b.shot("chat-reopened").await;
    let open = api.contact(uuid).await;
    assert_eq!(open["closedAt"], Value::Null, "closedAt after reopening");
}

/// g. A new API key is shown once and works; revoked, it no longer does.
async fn api_keys(b: &Browser, api: &Api) {
    b.goto("/settings/keys").await;
    b.wait_path("/settings/keys").await;
    b.fill("#new-key", "browser key").await;
    b.submit("form[action=\"/settings/keys\"]").await;
    let secret = b
        .text_where("#revealed-secret", "show the new key", |t| !t.is_empty())
        .await;
    assert!(secret.starts_with("bb_"), "the new key: {secret:?}");
    b.shot("keys-revealed").await;
    let me = api.get_with(&secret, "/auth/me").await;
    assert_eq!(
        me.status, 200,
        "GET /v1/auth/me with the new key: {}",
        me.text
    );

    let revoke = b
        .wait("the row of browser key with a revoke form", async || {
            for row in b
                .client
                .find_all(Locator::Css("table tbody tr"))
                .await
                .ok()?
            {
                let first = row.find(Locator::Css("td")).await.ok()?;
                if first.text().await.ok()? == "browser key" {
                    return row
                        .find(Locator::Css(
                            "form[action$=\"/delete\"] button[type=submit]",
                        ))
                        .await
                        .ok();
                }
            }
            None
        })
        .await;
    b.click(&revoke, "Revoke on browser key").await;
    b.wait("browser key to show as revoked", async || {
        if b.client
            .find(Locator::Css("#revealed-secret"))
            .await
            .is_ok()
        {
            return None;
        }
        for row in b
            .client
            .find_all(Locator::Css("table tbody tr"))
            .await
            .ok()?
        {
            let cells = row.find_all(Locator::Css("td")).await.ok()?;
            if cells.first()?.text().await.ok()? == "browser key" {
                let revoked = cells.get(3)?.find(Locator::Css("time")).await.is_ok();
                let form = row.find(Locator::Css("form")).await.is_ok();
                return (revoked && !form).then_some(());
            }
        }
        None
    })
    .await;
    b.shot("keys-revoked").await;
    let me = api.get_with(&secret, "/auth/me").await;
    assert_eq!(
        me.status, 401,
        "GET /v1/auth/me with the revoked key: {}",
        me.text
    );
}

/// i. Every other settings page is drawn.
async fn settings_pages(b: &Browser) {
    for slug in [
        "tags",
        "custom-fields",
        "users",
        "teams",
        "channels",
        "bots",
        "funnels",
        "webhook",
    ] {
        let path = format!("/settings/{slug}");
        b.goto(&path).await;
        b.wait_path(&path).await;
        b.element(&format!(
            "nav.subnav a[aria-current=\"page\"][href=\"{path}\"]"
        ))
        .await;
        b.element("main h2").await;
        b.shot(&format!("settings-{slug}")).await;
    }
    // What the demo account holds shows where it should.
    b.goto("/settings/custom-fields").await;
    b.text_where("main table tbody", "list orderNumber", |t| {
        t.contains("orderNumber")
    })
    .await;
}

/// i. The API reference: Redoc, served by this server, under the page's
/// own Content-Security-Policy.
async fn reference(b: &Browser) {
    b.goto("/docs").await;
    b.wait_path("/docs").await;
    let drawn = redoc_drawn(b).await;
    let shot = b.shot_window("docs").await;
    if !drawn {
        let console: Vec<String> = b
            .console
            .borrow()
            .iter()
            .filter(|l| l.page.ends_with("docs"))
            .map(|l| format!("{}: {}", l.level, l.message))
            .collect();
        panic!(
            "Redoc drew nothing on /docs within 20 s (screenshot {}); the browser's console:\n{}",
            shot.display(),
            console.join("\n")
        );
    }
    // Its search runs in a worker started from a blob: (worker-src blob:).
    b.fill("input.search-input", "contacts").await;
    b.element("[data-role=\"search:results\"] li").await;
    b.shot_window("docs-search").await;
}

/// Up to 20 s for Redoc to draw the operations.
async fn redoc_drawn(b: &Browser) -> bool {
    let deadline = Instant::now() + std::time::Duration::from_secs(20);
    while Instant::now() < deadline {
        if let Ok(content) = b.client.find(Locator::Css(".api-content")).await
            && let Ok(text) = content.text().await
            && text.contains("contacts")
        {
            return true;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    false
}

/// j. The list and a contact at phone width.
async fn phone(b: &Browser, contact_path: &str) {
    let (width, height) = b.client.get_window_size().await.expect("window size");
    b.client
        .set_window_size(390, 844)
        .await
        .expect("phone size");
    b.goto("/contacts").await;
    b.wait_path("/contacts").await;
    b.element("#total").await;
    b.shot_as("phone-contacts").await;
    b.goto(contact_path).await;
    b.wait_path(contact_path).await;
    b.text_where("h1", "name the contact", |t| t == "Browser Bianchi")
        .await;
    b.shot_as("phone-contact").await;
    b.client
        .set_window_size(width as u32, height as u32)
        .await
        .expect("back to the desktop size");
}

/// h. Signing out ends the session.
async fn sign_out(b: &Browser) {
    b.goto("/contacts").await;
    b.wait_path("/contacts").await;
    b.submit("form[action=\"/signout\"]").await;
    b.wait_path("/signin").await;
    b.goto("/contacts").await;
    b.wait_path("/signin").await;
    b.element("#key").await;
    b.shot("signed-out").await;
}
