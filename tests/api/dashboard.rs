//! The dashboard over plain HTTP (docs/dashboard.md): signing in and out,
//! sessions, CSRF refusals, another account's ids, hostile data on every
//! page, and each page's forms checked through the API afterwards. The
//! walk in a real browser is `tests/browser`.

use std::collections::BTreeMap;

use reqwest::header::{COOKIE, HeaderMap, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::{Value, json};

use crate::fixtures::demo::{AWARENESS, GENERAL, MARIO, SUPPORT};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// A browser without script: keeps cookies, follows no redirect.
struct Browser {
    client: reqwest::Client,
    origin: String,
    cookies: BTreeMap<String, String>,
}

#[derive(Debug)]
struct Page {
    status: u16,
    headers: HeaderMap,
    body: String,
}

impl Page {
    fn location(&self) -> &str {
        self.headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    }

    /// The CSRF token the page's forms carry.
    #[track_caller]
    fn csrf(&self) -> String {
        let marker = r#"name="csrf" value=""#;
        let start = self
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("no CSRF token in {}", self.body))
            + marker.len();
        let end = self.body[start..].find('"').expect("end of the token");
        self.body[start..start + end].to_owned()
    }

    fn set_cookies(&self) -> Vec<String> {
        self.headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok().map(str::to_owned))
            .collect()
    }

    #[track_caller]
    fn assert_status(&self, status: u16) -> &Page {
        assert_eq!(self.status, status, "status; page: {}", self.body);
        self
    }

    #[track_caller]
    fn assert_redirect(&self, to: &str) -> &Page {
        assert_eq!(self.status, 303, "a redirect; page: {}", self.body);
        assert_eq!(self.location(), to);
        self
    }
}

impl Browser {
    fn new(app: &TestApp) -> Browser {
        Browser {
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .expect("client"),
            origin: app.base.trim_end_matches("/v1").to_owned(),
            cookies: BTreeMap::new(),
        }
    }

    async fn send(&mut self, request: reqwest::RequestBuilder) -> Page {
        let cookie = self
            .cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        let request = if cookie.is_empty() {
            request
        } else {
            request.header(COOKIE, cookie)
        };
        let response = request.send().await.expect("a response");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.text().await.expect("a body");
        let page = Page {
            status,
            headers,
            body,
        };
        for set in page.set_cookies() {
            let pair = set.split(';').next().unwrap_or_default();
            let (name, value) = pair.split_once('=').expect("name=value");
            if value.is_empty() || set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        page
    }

    async fn get(&mut self, path: &str) -> Page {
        let request = self.client.get(format!("{}{path}", self.origin));
        self.send(request).await
    }

    async fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let body = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let request = self
            .client
            .post(format!("{}{path}", self.origin))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body);
        self.send(request).await
    }

    /// Submits a form of `page` with its CSRF token.
    async fn submit(&mut self, page: &Page, path: &str, form: &[(&str, &str)]) -> Page {
        let csrf = page.csrf();
        let mut fields = vec![("csrf", csrf.as_str())];
        fields.extend_from_slice(form);
        self.post(path, &fields).await
    }

    async fn sign_in(&mut self, form: &[(&str, &str)]) -> Page {
        let page = self.get("/signin").await;
        page.assert_status(200);
        self.submit(&page, "/signin", form).await
    }

    async fn sign_in_with_key(&mut self, key: &str) {
        self.sign_in(&[("key", key)])
            .await
            .assert_redirect("/contacts");
    }
}

/// The uuid of the object of `GET /{list}` whose `field` is `value`.
async fn uuid_where(app: &TestApp, list: &str, field: &str, value: &str) -> String {
    let listed = app.get(&format!("/{list}")).await;
    listed.body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {}", listed.text))
        .iter()
        .find(|o| o[field] == value)
        .and_then(|o| o["uuid"].as_str())
        .unwrap_or_else(|| panic!("no {list} with {field} {value}: {}", listed.text))
        .to_owned()
}

/// A signed-in browser on the demo account, with a page to take CSRF
/// tokens from.
async fn signed_in(app: &TestApp) -> (Browser, Page) {
    let mut browser = Browser::new(app);
    browser.sign_in_with_key(&app.key).await;
    let page = browser.get("/contacts").await;
    page.assert_status(200);
    (browser, page)
}

const HOSTILE_SCRIPT: &str = "<script>alert(1)</script>";
const HOSTILE_IMG: &str = r#""><img src=x onerror=alert(1)>"#;
const HOSTILE_LINK: &str = "javascript:alert(1)";

/// Whether `body` holds markup a hostile value could have become.
#[track_caller]
fn assert_inert(path: &str, body: &str) {
    let lower = body.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "{path} holds a script: {body}");
    assert!(!lower.contains("<img"), "{path} holds an image tag: {body}");
    for attribute in [
        "href=\"javascript:",
        "src=\"javascript:",
        "action=\"javascript:",
    ] {
        assert!(!lower.contains(attribute), "{path} links to script: {body}");
    }
}

async fn signed_out_pages_send_to_sign_in(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let mut browser = Browser::new(&app);
    let public = [
        "/",
        "/signin",
        "/assets/style.css",
        "/favicon.ico",
        "/docs",
        "/docs/redoc.standalone.js",
    ];
    for (method, template) in bellbook::api::PAGES {
        if public.contains(template) {
            continue;
        }
        let path = template
            .replace("{uuid}", MARIO)
            .replace("{section}", "tags")
            .replace("{id}", "lead")
            .replace("{seq}", "1");
        let page = match *method {
            "get" => browser.get(&path).await,
            _ => browser.post(&path, &[("name", "x")]).await,
        };
        // A form comes back to the page it was on, not to its address.
        let back = match *method {
            "get" => path.clone(),
            _ => match path.split('/').collect::<Vec<_>>().as_slice() {
                [_, first, second, ..] => format!("/{first}/{second}"),
                _ => "/contacts".to_owned(),
            },
        };
        let next: String = form_urlencoded::byte_serialize(back.as_bytes()).collect();
        page.assert_redirect(&format!("/signin?next={next}"));
    }
    browser.get("/").await.assert_redirect("/contacts");
    for path in public.iter().skip(1) {
        let page = browser.get(path).await;
        assert!(
            page.status == 200 || page.status == 204,
            "{path}: {}",
            page.status
        );
    }
    // Nothing was changed by any of those posts.
    app.get("/tags/lead").await.assert_status(200);
    app.get(&format!("/contacts/{MARIO}"))
        .await
        .assert_status(200);
}

async fn sessions_start_with_a_key_or_a_password_and_end(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let mut browser = Browser::new(&app);
    let page = browser.sign_in(&[("key", "bb_not_a_key")]).await;
    page.assert_status(401);
    assert!(page.body.contains("unknown or revoked"), "{}", page.body);

    // The owner, with a key: the cookie is HttpOnly and SameSite=Lax.
    let page = browser.sign_in(&[("key", &app.key)]).await;
    page.assert_redirect("/contacts");
    let session = page
        .set_cookies()
        .into_iter()
        .find(|c| c.starts_with("bellbook_session="))
        .expect("a session cookie");
    assert!(session.contains("HttpOnly"), "{session}");
    assert!(session.contains("SameSite=Lax"), "{session}");
    assert!(!session.contains("Secure"), "plain http: {session}");
    let contacts = browser.get("/contacts").await;
    contacts.assert_status(200);
    assert!(contacts.body.contains("john.doe@email.com"));
    let token = browser.cookies["bellbook_session"].clone();

    // The row holds the token's hash, not the token.
    let hash = bellbook::auth::hash_key(&token);
    let now = bellbook::domain::Timestamp::now();
    let found = app
        .store
        .session(&token, bellbook::domain::Timestamp::from_unix(0))
        .await
        .expect("store");
    assert!(
        found.is_none(),
        "sessions are found by the token's hash only"
    );
    let record = app
        .store
        .session(&hash, bellbook::domain::Timestamp::from_unix(0))
        .await
        .expect("store")
        .expect("the session");
    assert_eq!(record.user_email, "john.doe@email.com");
    // Inactive past the timeout, it is over.
    let later = bellbook::domain::Timestamp::from_unix(now.unix() + 3600);
    assert!(
        app.store
            .session(&hash, later)
            .await
            .expect("store")
            .is_none()
    );

    // Signing out ends it: the old cookie signs nobody in.
    let page = browser.get("/contacts").await;
    browser
        .submit(&page, "/signout", &[])
        .await
        .assert_redirect("/signin");
    let mut replay = Browser::new(&app);
    replay.cookies.insert("bellbook_session".into(), token);
    replay
        .get("/contacts")
        .await
        .assert_redirect("/signin?next=%2Fcontacts");

    // A key's session lasts as long as the key.
    let created = app
        .store
        .find_account("demo")
        .await
        .expect("the demo account");
    let issued = bellbook::auth::issue_key("temporary").expect("randomness");
    app.store
        .add_api_key(created.id, &issued.record)
        .await
        .expect("key added");
    let mut temporary = Browser::new(&app);
    temporary.sign_in_with_key(&issued.secret).await;
    temporary.get("/contacts").await.assert_status(200);
    app.store
        .revoke_api_key(created.id, &issued.record.uuid.to_string(), now)
        .await
        .expect("revoked");
    temporary
        .get("/contacts")
        .await
        .assert_redirect("/signin?next=%2Fcontacts");

    // After sign-in the browser goes back where it was sent from, on this
    // site only.
    let mut returning = Browser::new(&app);
    let page = returning.get(&format!("/contacts/{MARIO}")).await;
    let to_sign_in = page.location().to_owned();
    let form = returning.get(&to_sign_in).await;
    returning
        .submit(
            &form,
            "/signin",
            &[("key", &app.key), ("next", &format!("/contacts/{MARIO}"))],
        )
        .await
        .assert_redirect(&format!("/contacts/{MARIO}"));
    let mut elsewhere = Browser::new(&app);
    elsewhere
        .sign_in(&[("key", &app.key), ("next", "//evil.example/")])
        .await
        .assert_redirect("/contacts");

    // Idle sessions are deleted by the housekeeping pass.
    let purged = app
        .store
        .purge_sessions(bellbook::domain::Timestamp::from_unix(now.unix() + 60))
        .await
        .expect("purged");
    assert!(purged >= 2, "{purged}");
    elsewhere
        .get("/contacts")
        .await
        .assert_redirect("/signin?next=%2Fcontacts");
}

async fn users_sign_in_with_passwords_and_failures_are_slowed(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let (mut owner, page) = signed_in(&app).await;
    let users = owner.get("/settings/users").await;
    users.assert_status(200);
    let jane = uuid_where(&app, "users", "email", "jane.doe@email.com").await;
    let path = format!("/settings/users/{jane}/password");
    let refused = owner.submit(&page, &path, &[("password", "short")]).await;
    refused.assert_status(422);
    assert!(
        refused.body.contains("10 to 256 characters"),
        "{}",
        refused.body
    );
    owner
        .submit(&page, &path, &[("password", "jane's long password")])
        .await
        .assert_redirect("/settings/users");

    let mut jane_browser = Browser::new(&app);
    let page = jane_browser
        .sign_in(&[
            ("email", "Jane.Doe@email.com"),
            ("password", "jane's long password"),
        ])
        .await;
    page.assert_redirect("/contacts");
    let contacts = jane_browser.get("/contacts").await;
    assert!(contacts.body.contains("jane.doe@email.com · demo"));

    // Wrong passwords: a few are answered, then each further try waits,
    // even with the right password.
    let mut guesser = Browser::new(&app);
    for _ in 0..3 {
        let page = guesser
            .sign_in(&[
                ("email", "jane.doe@email.com"),
                ("password", "not the password"),
            ])
            .await;
        page.assert_status(401);
        assert!(page.body.contains("do not match"), "{}", page.body);
    }
    let page = guesser
        .sign_in(&[
            ("email", "jane.doe@email.com"),
            ("password", "jane's long password"),
        ])
        .await;
    page.assert_status(429);
    assert!(
        page.body.contains("Too many failed sign-ins"),
        "{}",
        page.body
    );
    // An e-mail nobody has is refused the same way.
    let page = guesser
        .sign_in(&[
            ("email", "nobody@example.com"),
            ("password", "whatever it is"),
        ])
        .await;
    page.assert_status(401);

    // A new password signs out the sessions the old one opened.
    let page = owner.get("/settings/users").await;
    owner
        .submit(&page, &path, &[("password", "another long password")])
        .await
        .assert_redirect("/settings/users");
    jane_browser
        .get("/contacts")
        .await
        .assert_redirect("/signin?next=%2Fcontacts");
}

async fn the_cli_sets_passwords(backend: Backend) {
    use std::io::Write;
    let app = TestApp::spawn_demo(backend).await;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bellbook"))
        .args([
            "users",
            "set-password",
            "--account",
            "demo",
            "john.doe@email.com",
        ])
        .args(["--database-url", &app.database_url])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the CLI runs");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"from the command line\n")
        .expect("password written");
    let output = child.wait_with_output().expect("the CLI ends");
    assert!(output.status.success(), "{output:?}");
    let mut browser = Browser::new(&app);
    browser
        .sign_in(&[
            ("email", "john.doe@email.com"),
            ("password", "from the command line"),
        ])
        .await
        .assert_redirect("/contacts");
    // Nobody of that name: an error, not a password for someone else.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_bellbook"))
        .args([
            "users",
            "set-password",
            "--account",
            "demo",
            "who@example.com",
        ])
        .args(["--database-url", &app.database_url])
        .stdin(std::process::Stdio::null())
        .output()
        .expect("the CLI runs");
    assert!(!output.status.success());
}

/// Sessions are rows: one process signs in, another serves the pages, a
/// third signs out for both.
async fn sessions_work_across_processes(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let other = app.sibling(|s| s.demo = true).await;
    let mut browser = Browser::new(&app);
    browser.sign_in_with_key(&app.key).await;
    let cookies = browser.cookies.clone();
    let mut elsewhere = Browser::new(&other);
    elsewhere.cookies = cookies;
    let page = elsewhere.get("/contacts").await;
    page.assert_status(200);
    // A form made on one process is accepted by the other.
    elsewhere
        .submit(&page, "/settings/tags", &[("name", "from the sibling")])
        .await
        .assert_redirect("/settings/tags");
    app.get("/tags/from%20the%20sibling")
        .await
        .assert_status(200);
    let page = elsewhere.get("/contacts").await;
    elsewhere
        .submit(&page, "/signout", &[])
        .await
        .assert_redirect("/signin");
    browser.cookies.remove("bellbook_signin");
    browser
        .get("/contacts")
        .await
        .assert_redirect("/signin?next=%2Fcontacts");
    other.stop().await;
}

async fn https_deployments_get_secure_cookies(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.public_url = Some("https://bellbook.example.com".into());
    })
    .await;
    let mut browser = Browser::new(&app);
    let page = browser.sign_in(&[("key", &app.key)]).await;
    page.assert_redirect("/contacts");
    for cookie in page.set_cookies() {
        assert!(cookie.contains("; Secure"), "{cookie}");
    }
}

/// Every form of the dashboard, and a body for it.
fn every_form(conversation: &str) -> Vec<(String, Vec<(&'static str, &'static str)>)> {
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/signout".into(), vec![]),
        (
            "/contacts".into(),
            vec![
                ("name", "Forged"),
                ("identifier", "+1 555 0100"),
                ("source", "whatsapp"),
            ],
        ),
        (format!("/contacts/{MARIO}"), vec![("name", "Forged")]),
        (format!("/contacts/{MARIO}/delete"), vec![]),
        (
            format!("/chat/{conversation}/note"),
            vec![("text", "forged")],
        ),
        (format!("/chat/{conversation}/close"), vec![]),
        ("/settings/tags".into(), vec![("name", "forged")]),
        ("/settings/tags/lead".into(), vec![("name", "forged")]),
        ("/settings/tags/lead/delete".into(), vec![]),
        (
            "/settings/custom-fields".into(),
            vec![("name", "forged"), ("type", "text")],
        ),
        (
            "/settings/users".into(),
            vec![("email", "f@example.com"), ("name", "F")],
        ),
        (format!("/settings/teams/{SUPPORT}/delete"), vec![]),
        ("/settings/keys".into(), vec![("name", "forged")]),
        (
            "/settings/webhook".into(),
            vec![
                ("url", "https://example.com/hook"),
                ("subscriptions", "contact_created"),
            ],
        ),
    ];
    forms
}

/// What the demo account holds, as the API shows it.
async fn snapshot(app: &TestApp) -> String {
    let mut all = String::new();
    for path in [
        "/contacts".to_owned(),
        format!("/contacts/{MARIO}"),
        format!("/contacts/{MARIO}/messages"),
        "/tags".into(),
        "/custom_fields".into(),
        "/users".into(),
        "/teams".into(),
        "/channels".into(),
        "/bots".into(),
        "/funnels".into(),
    ] {
        all.push_str(&app.get(&path).await.text);
    }
    let account = app.store.find_account("demo").await.expect("demo");
    let keys = app.store.list_api_keys(account.id).await.expect("keys");
    all.push_str(&format!("{} keys", keys.len()));
    let webhook = app.store.webhook(account.id).await.expect("webhook");
    all.push_str(&format!("{webhook:?}"));
    all
}

async fn forms_without_the_csrf_token_change_nothing(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let (mut browser, page) = signed_in(&app).await;
    let mario = app.get(&format!("/contacts/{MARIO}")).await;
    let conversation = mario.contact()["conversationHref"]
        .as_str()
        .expect("href")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_owned();
    let before = snapshot(&app).await;
    let forged = "0".repeat(64);
    for (path, fields) in every_form(&conversation) {
        let refused = browser.post(&path, &fields).await;
        assert_eq!(
            refused.status, 403,
            "{path} without a token: {}",
            refused.body
        );
        let mut with_forged = vec![("csrf", forged.as_str())];
        with_forged.extend_from_slice(&fields);
        let refused = browser.post(&path, &with_forged).await;
        assert_eq!(refused.status, 403, "{path} with a forged token");
        assert!(refused.body.contains("nothing was changed"));
    }
    assert_eq!(snapshot(&app).await, before);
    // The session's token is another session's forgery.
    let (mut other, _) = signed_in(&app).await;
    let stolen = page.csrf();
    let refused = other
        .post("/settings/tags", &[("csrf", &stolen), ("name", "forged")])
        .await;
    refused.assert_status(403);
    // The sign-in form's token must match its cookie.
    let mut stranger = Browser::new(&app);
    stranger
        .post("/signin", &[("csrf", &forged), ("key", &app.key)])
        .await
        .assert_status(403);
    assert!(!stranger.cookies.contains_key("bellbook_session"));
    assert_eq!(snapshot(&app).await, before);
    // And the real token works.
    browser
        .submit(&page, "/settings/tags", &[("name", "real")])
        .await
        .assert_redirect("/settings/tags");
    app.get("/tags/real").await.assert_status(200);
}

async fn another_accounts_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let other_key = app.create_account("other").await;
    let other = app.as_key(&other_key);
    let contact = other
        .create_contact(
            json!({"identifier": "+44 20 7946 0001", "source": "whatsapp", "name": "Theirs"}),
        )
        .await;
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let conversation = contact["conversationHref"]
        .as_str()
        .expect("href")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_owned();
    other
        .post("/tags", json!({"name": "their-tag"}))
        .await
        .assert_status(200);
    other
        .post(
            "/custom_fields",
            json!({"name": "their-field", "type": "text"}),
        )
        .await
        .assert_status(200);
    let team = other.post("/teams", json!({"name": "Their team"})).await;
    let team = team.body["team"]["uuid"].as_str().expect("team").to_owned();
    let bot = other.post("/bots", json!({"name": "Their bot"})).await;
    let bot = bot.body["bot"]["uuid"].as_str().expect("bot").to_owned();
    let funnel = other
        .post("/funnels", json!({"name": "Their funnel"}))
        .await;
    let funnel = funnel.body["funnel"]["uuid"]
        .as_str()
        .expect("funnel")
        .to_owned();
    let channel = other
        .post(
            "/channels",
            json!({"title": "Their channel", "type": "telegram"}),
        )
        .await;
    let channel = channel.body["channel"]["uuid"]
        .as_str()
        .expect("channel")
        .to_owned();
    let account = app.store.find_account("other").await.expect("other");
    let their_key = app.store.list_api_keys(account.id).await.expect("keys")[0]
        .uuid
        .to_string();
    let before = other.get(&format!("/contacts/{uuid}")).await.text;

    let (mut browser, page) = signed_in(&app).await;
    for path in [
        format!("/contacts/{uuid}"),
        format!("/contacts/{uuid}/delete"),
        format!("/chat/{conversation}"),
        format!("/chat/{uuid}"),
    ] {
        browser.get(&path).await.assert_status(404);
    }
    let posts = [
        (format!("/contacts/{uuid}"), vec![("name", "Mine now")]),
        (format!("/contacts/{uuid}/delete"), vec![]),
        (
            format!("/chat/{conversation}/note"),
            vec![("text", "hello")],
        ),
        (format!("/chat/{conversation}/close"), vec![]),
        (format!("/chat/{conversation}/open"), vec![]),
        ("/settings/tags/their-tag".into(), vec![("name", "renamed")]),
        ("/settings/tags/their-tag/delete".into(), vec![]),
        ("/settings/custom-fields/their-field/delete".into(), vec![]),
        (format!("/settings/teams/{team}"), vec![("name", "renamed")]),
        (format!("/settings/teams/{team}/delete"), vec![]),
        (format!("/settings/bots/{bot}/delete"), vec![]),
        (format!("/settings/funnels/{funnel}/delete"), vec![]),
        (format!("/settings/channels/{channel}/delete"), vec![]),
        (format!("/settings/keys/{their_key}/delete"), vec![]),
    ];
    for (path, fields) in posts {
        let answer = browser.submit(&page, &path, &fields).await;
        assert_eq!(answer.status, 404, "{path}: {}", answer.body);
    }
    assert_eq!(other.get(&format!("/contacts/{uuid}")).await.text, before);
    other.get("/tags/their-tag").await.assert_status(200);
    other
        .get("/custom_fields/their-field")
        .await
        .assert_status(200);
    other
        .get(&format!("/teams/{team}"))
        .await
        .assert_status(200);
    other.get(&format!("/bots/{bot}")).await.assert_status(200);
    other
        .get(&format!("/funnels/{funnel}"))
        .await
        .assert_status(200);
    other
        .get(&format!("/channels/{channel}"))
        .await
        .assert_status(200);
    other.get("/auth/me").await.assert_status(200);
    let messages = other.get(&format!("/contacts/{uuid}/messages")).await;
    assert_eq!(messages.body["messages"], json!([]));
    // Their contact is not in this account's list, even when searched for.
    let list = browser.get("/contacts?q=Theirs").await;
    assert!(!list.body.contains(">Theirs</a>"), "{}", list.body);
    assert!(!list.body.contains(&uuid));
}

async fn hostile_values_stay_text_on_every_page(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.post("/tags", json!({"name": HOSTILE_IMG}))
        .await
        .assert_status(200);
    app.post(
        "/custom_fields",
        json!({"name": HOSTILE_SCRIPT, "type": "text"}),
    )
    .await
    .assert_status(200);
    app.post(
        "/custom_fields",
        json!({"name": "choice", "type": "dropdown", "options": [HOSTILE_IMG, HOSTILE_LINK]}),
    )
    .await
    .assert_status(200);
    app.post(
        "/users",
        json!({"email": "mallory@example.com", "name": HOSTILE_SCRIPT}),
    )
    .await
    .assert_status(200);
    app.post("/teams", json!({"name": HOSTILE_IMG}))
        .await
        .assert_status(200);
    app.post("/bots", json!({"name": HOSTILE_SCRIPT}))
        .await
        .assert_status(200);
    app.post(
        "/funnels",
        json!({"name": HOSTILE_IMG, "emoji": "<script>"}),
    )
    .await
    .assert_status(200);
    app.post(
        "/channels",
        json!({"title": HOSTILE_LINK, "type": "telegram"}),
    )
    .await
    .assert_status(200);
    let contact = app
        .create_contact(json!({
            "identifier": "+1 555 0199",
            "source": "whatsapp",
            "name": HOSTILE_SCRIPT,
            "tags": [HOSTILE_IMG],
            "custom_fields": {HOSTILE_SCRIPT: HOSTILE_LINK, "choice": HOSTILE_IMG, "Billing Address": HOSTILE_IMG},
            "note": HOSTILE_IMG,
        }))
        .await;
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let conversation = contact["conversationHref"]
        .as_str()
        .expect("href")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_owned();
    app.post(
        &format!("/contacts/{uuid}/conversation/note"),
        json!({"text": HOSTILE_SCRIPT}),
    )
    .await
    .assert_status(200);
    app.patch(&format!("/contacts/{uuid}"), json!({"bsuid": HOSTILE_LINK}))
        .await
        .assert_status(200);
    let account = app.store.find_account("demo").await.expect("demo");
    let key = bellbook::auth::issue_key(HOSTILE_IMG).expect("randomness");
    app.store
        .add_api_key(account.id, &key.record)
        .await
        .expect("key");

    let (mut browser, page) = signed_in(&app).await;
    let mut paths = vec![
        "/contacts".to_owned(),
        "/contacts?q=script".to_owned(),
        format!("/contacts?tags={}", urlencode(HOSTILE_IMG)),
        format!("/contacts?q={}", urlencode(HOSTILE_SCRIPT)),
        format!("/contacts/{uuid}"),
        format!("/contacts/{uuid}/delete"),
        format!("/chat/{conversation}"),
    ];
    paths.extend(
        [
            "tags",
            "custom-fields",
            "users",
            "teams",
            "channels",
            "bots",
            "funnels",
            "keys",
            "webhook",
        ]
        .map(|s| format!("/settings/{s}")),
    );
    for path in &paths {
        let shown = browser.get(path).await;
        shown.assert_status(200);
        assert_inert(path, &shown.body);
    }
    // The values are there, as text.
    let shown = browser.get(&format!("/contacts/{uuid}")).await;
    assert!(
        shown
            .body
            .contains("&#60;script&#62;alert(1)&#60;/script&#62;")
    );
    assert!(shown.body.contains("javascript:alert(1)"));
    // A form the API refuses shows the hostile value sent back, as text.
    let refused = browser
        .submit(
            &page,
            &format!("/contacts/{uuid}"),
            &[("name", HOSTILE_SCRIPT), ("field:orderNumber", HOSTILE_IMG)],
        )
        .await;
    refused.assert_status(422);
    assert_inert("the refused form", &refused.body);
    let refused = browser
        .submit(
            &page,
            "/contacts",
            &[
                ("name", " "),
                ("identifier", HOSTILE_IMG),
                ("source", HOSTILE_SCRIPT),
            ],
        )
        .await;
    refused.assert_status(422);
    assert_inert("the refused create form", &refused.body);
    let refused = browser
        .get(&format!("/contacts?q={}", "x".repeat(300)))
        .await;
    refused.assert_status(400);
}

/// `text` as the templates write it into a page.
fn escaped(text: &str) -> String {
    text.replace('&', "&#38;")
        .replace('<', "&#60;")
        .replace('>', "&#62;")
        .replace('"', "&#34;")
        .replace('\'', "&#39;")
}

fn urlencode(text: &str) -> String {
    form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

async fn every_page_carries_the_security_headers(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let (mut browser, _) = signed_in(&app).await;
    let mario = app.get(&format!("/contacts/{MARIO}")).await;
    let conversation = mario.contact()["conversationHref"]
        .as_str()
        .expect("href")
        .rsplit('/')
        .next()
        .expect("uuid")
        .to_owned();
    for (method, template) in bellbook::api::PAGES {
        if *method != "get" || template.contains("{section}") {
            continue;
        }
        let path = template
            .replace("/chat/{uuid}", &format!("/chat/{conversation}"))
            .replace("{uuid}", MARIO);
        let page = browser.get(&path).await;
        assert!(page.status < 400, "{path}: {}", page.status);
        let header = |name: &str| {
            page.headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        let policy = header("content-security-policy");
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(
            policy.contains("frame-ancestors 'none'"),
            "{path}: {policy}"
        );
        assert!(!policy.contains("script-src 'unsafe"), "{path}: {policy}");
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("referrer-policy"), "same-origin", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        if path != "/docs" && !path.starts_with("/assets") && !path.ends_with(".js") {
            assert!(!policy.contains("unsafe-inline"), "{path}: {policy}");
        }
    }
    for section in ["tags", "webhook"] {
        let page = browser.get(&format!("/settings/{section}")).await;
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
    // Another page's 404 and a refused form carry them too.
    let missing = browser.get(&format!("/contacts/{}", "0".repeat(32))).await;
    missing.assert_status(404);
    assert_eq!(missing.headers["x-frame-options"], "DENY");
    let docs = browser.get("/docs").await;
    assert!(docs.body.contains(r#"<redoc spec-url="/v1/openapi.json">"#));
    assert!(
        docs.body
            .contains(r#"<script src="/docs/redoc.standalone.js">"#)
    );
    let renderer = browser.get("/docs/redoc.standalone.js").await;
    renderer.assert_status(200);
    assert!(
        renderer.headers["content-type"]
            .to_str()
            .expect("type")
            .starts_with("text/javascript")
    );
    assert!(
        renderer.body.len() > 500_000,
        "the whole bundle is compiled in"
    );
}

async fn the_list_searches_filters_and_pages_by_cursor(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.post("/tags", json!({"name": "batch"}))
        .await
        .assert_status(200);
    app.post(
        "/channels",
        json!({"title": "Telegram", "type": "telegram"}),
    )
    .await
    .assert_status(200);
    for n in 0..25 {
        app.create_contact(json!({
            "identifier": format!("+49 170 000 {n:04}"),
            "source": "whatsapp",
            "name": format!("Batch {n}"),
            "tags": ["batch"],
            "team_uuid": SUPPORT,
        }))
        .await;
    }
    app.create_contact(
        json!({"identifier": "@tele", "source": "telegram", "name": "Unique Telegrammer"}),
    )
    .await;
    let (mut browser, _) = signed_in(&app).await;
    let total = |page: &Page| {
        let start = page.body.find(r#"<span id="total">"#).expect("a total") + 17;
        let end = page.body[start..].find('<').expect("end");
        page.body[start..start + end]
            .parse::<i64>()
            .expect("a number")
    };
    let rows = |page: &Page| {
        page.body
            .matches("<tr>\n    <td><a href=\"/contacts/")
            .count()
    };
    let everything = browser.get("/contacts").await;
    everything.assert_status(200);
    assert_eq!(total(&everything), 28);

    let first = browser
        .get("/contacts?tags=batch&tags_mode=all&source=&team_uuid=")
        .await;
    first.assert_status(200);
    assert_eq!(total(&first), 25);
    assert_eq!(rows(&first), 20);
    assert!(first.body.contains("Batch 24"), "newest first");
    let start = first
        .body
        .find(r#"<a rel="next" href=""#)
        .expect("a next page")
        + 20;
    let end = first.body[start..].find('"').expect("end");
    let next = first.body[start..start + end].replace("&#38;", "&");
    let second = browser.get(&next).await;
    second.assert_status(200);
    assert_eq!(rows(&second), 5);
    assert!(second.body.contains("Batch 0"));
    assert!(!second.body.contains(r#"rel="next""#));
    // The filter form shows what was asked.
    assert!(
        second
            .body
            .contains(r#"<input id="tags" name="tags" value="batch""#)
    );

    let found = browser.get("/contacts?q=telegrammer").await;
    assert_eq!(total(&found), 1);
    assert!(found.body.contains("Unique Telegrammer"));
    let by_source = browser.get("/contacts?source=telegram").await;
    assert_eq!(total(&by_source), 1);
    let by_team = browser.get(&format!("/contacts?team_uuid={SUPPORT}")).await;
    assert_eq!(total(&by_team), 25);
    let any = browser.get("/contacts?tags=batch,hot&tags_mode=any").await;
    assert_eq!(total(&any), 26);
    // The API's message for a filter it refuses.
    let refused = browser.get("/contacts?source=fax").await;
    refused.assert_status(400);
    let api = app.get("/contacts?source=fax").await;
    let message = api.body["error"]["message"].as_str().expect("message");
    assert!(refused.body.contains(&escaped(message)), "{}", refused.body);
}

async fn contacts_are_created_edited_and_deleted_through_forms(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let (mut browser, page) = signed_in(&app).await;
    let created = browser
        .submit(
            &page,
            "/contacts",
            &[
                ("name", "Form Person"),
                ("identifier", "+39 345 000 1234"),
                ("source", "whatsapp"),
                ("tags", "lead, hot"),
                ("team_uuid", SUPPORT),
            ],
        )
        .await;
    assert_eq!(created.status, 303, "{}", created.body);
    let uuid = created
        .location()
        .strip_prefix("/contacts/")
        .expect("the new contact's page")
        .to_owned();
    let contact = app.get(&format!("/contacts/{uuid}")).await;
    let contact = contact.contact();
    assert_eq!(contact["name"], "Form Person");
    assert_eq!(contact["tags"], json!(["lead", "hot"]));
    assert_eq!(contact["team"]["uuid"], SUPPORT);

    // The same number again: the API's conflict, with a link to the holder.
    let again = browser
        .submit(
            &page,
            "/contacts",
            &[
                ("name", "Twin"),
                ("identifier", "+39 345 0001234"),
                ("source", "whatsapp"),
            ],
        )
        .await;
    again.assert_status(409);
    assert!(
        again.body.contains(&format!("href=\"/contacts/{uuid}\"")),
        "{}",
        again.body
    );
    assert!(
        again.body.contains(r#"value="Twin""#),
        "the form keeps what was typed"
    );

    // One wrong field: nothing saved, the API's own message beside it.
    let path = format!("/contacts/{uuid}");
    let edit = browser.get(&path).await;
    let refused = browser
        .submit(
            &edit,
            &path,
            &[
                ("name", "Renamed"),
                ("field:orderNumber", "twelve"),
                ("team_uuid", SUPPORT),
            ],
        )
        .await;
    refused.assert_status(422);
    let api = app
        .patch(&path, json!({"custom_fields": {"orderNumber": "twelve"}}))
        .await;
    api.assert_status(422);
    let message = api.body["error"]["details"][0]["message"]
        .as_str()
        .expect("a message");
    assert!(
        refused.body.contains(&format!(
            r#"<p class="field-problem" id="field-5-problem">{}</p>"#,
            escaped(message)
        )),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(r#"value="twelve""#),
        "the form keeps what was typed"
    );
    assert!(refused.body.contains(r#"value="Renamed""#));
    assert_eq!(app.get(&path).await.contact()["name"], "Form Person");

    // Every kind of field at once.
    let john = "john.doe@email.com";
    let saved = browser
        .submit(
            &edit,
            &path,
            &[
                ("name", "Renamed"),
                ("tags", "hot"),
                ("tags", "Call back"),
                ("field:orderNumber", "12.50"),
                ("field:Status", "Inactive"),
                ("field:Features", "Dark Mode"),
                ("field:Features", "Analytics"),
                ("field:Work Email", "work@example.com"),
                ("field:Birth Date", "1990-02-28"),
                ("field:VAT", ""),
                ("assigned_user", john),
                ("team_uuid", GENERAL),
                ("funnel", AWARENESS),
                ("bot_status", "bot_end"),
                ("note", "A note from the form"),
                ("bsuid", ""),
            ],
        )
        .await;
    saved.assert_redirect(&format!("{path}?saved=1"));
    let contact = app.get(&format!("{path}?include_field_types=true")).await;
    let contact = contact.contact();
    assert_eq!(contact["name"], "Renamed");
    assert_eq!(contact["tags"], json!(["hot", "Call back"]));
    assert_eq!(contact["customFields"]["orderNumber"], "12.50");
    assert_eq!(contact["customFields"]["Status"], "Inactive");
    assert_eq!(
        contact["customFieldsMetadata"]["Features"]["value"],
        json!(["Dark Mode", "Analytics"])
    );
    assert_eq!(contact["customFields"]["Work Email"], "work@example.com");
    assert_eq!(contact["customFields"]["Birth Date"], "1990-02-28");
    assert_eq!(contact["assignedUser"], john);
    assert_eq!(contact["team"]["uuid"], GENERAL);
    assert_eq!(contact["funnelId"], AWARENESS);
    assert_eq!(contact["note"], "A note from the form");
    let bot = app.get(&format!("{path}/bot")).await;
    assert_eq!(bot.body["bot"]["status"], "ended", "{}", bot.text);
    let shown = browser.get(&format!("{path}?saved=1")).await;
    assert!(shown.body.contains("Saved."));
    assert!(shown.body.contains(r#"<option value="Inactive" selected>"#));
    assert!(
        shown
            .body
            .contains("<dt>Funnel</dt><dd>🧘\u{200d}♂\u{fe0f} Awareness</dd>"),
        "the funnel by its name: {}",
        shown.body
    );

    // Saving the form untouched changes nothing and records nothing.
    let events_before = app.get(&format!("{path}/messages")).await.text;
    let page = browser.get(&path).await;
    let untouched = [
        ("name", "Renamed"),
        ("tags", "hot"),
        ("tags", "Call back"),
        ("field:orderNumber", "12.50"),
        ("field:Status", "Inactive"),
        ("field:Features", "Dark Mode"),
        ("field:Features", "Analytics"),
        ("field:Work Email", "work@example.com"),
        ("field:Birth Date", "1990-02-28"),
        ("assigned_user", john),
        ("team_uuid", GENERAL),
        ("funnel", AWARENESS),
        ("note", "A note from the form"),
    ];
    browser
        .submit(&page, &path, &untouched)
        .await
        .assert_redirect(&format!("{path}?saved=1"));
    assert_eq!(
        app.get(&format!("{path}/messages")).await.text,
        events_before
    );

    // Tags sent in the page's order, not the contact's: still no change.
    app.patch(&path, json!({"tags": ["Call back", "hot"]}))
        .await
        .assert_status(200);
    let events_before = app.get(&format!("{path}/messages")).await.text;
    browser
        .submit(&page, &path, &untouched)
        .await
        .assert_redirect(&format!("{path}?saved=1"));
    assert_eq!(
        app.get(&path).await.contact()["tags"],
        json!(["Call back", "hot"])
    );
    assert_eq!(
        app.get(&format!("{path}/messages")).await.text,
        events_before
    );

    // Clearing: no assignee, no funnel, no note, no value.
    browser
        .submit(
            &page,
            &path,
            &[
                ("name", "Renamed"),
                ("assigned_user", ""),
                ("funnel", ""),
                ("note", ""),
                ("team_uuid", GENERAL),
            ],
        )
        .await
        .assert_redirect(&format!("{path}?saved=1"));
    let contact = app.get(&path).await;
    let contact = contact.contact();
    assert_eq!(contact["assignedUser"], Value::Null);
    assert_eq!(contact["funnelId"], Value::Null);
    assert_eq!(contact["note"], Value::Null);
    assert_eq!(contact["tags"], json!([]));
    assert_eq!(contact["customFields"].get("orderNumber"), None);

    // Delete, after a confirmation page.
    let confirm = browser.get(&format!("{path}/delete")).await;
    confirm.assert_status(200);
    assert!(confirm.body.contains("cannot be undone"));
    browser
        .submit(&confirm, &format!("{path}/delete"), &[])
        .await
        .assert_redirect("/contacts");
    app.get(&path).await.assert_status(404);
    browser.get(&path).await.assert_status(404);
    browser.get("/contacts/not-a-uuid").await.assert_status(404);
}

async fn the_conversation_page_adds_notes_and_opens_and_closes(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let contact = app
        .create_contact(
            json!({"identifier": "+33 6 00 00 00 01", "source": "whatsapp", "name": "Chatty"}),
        )
        .await;
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let href = contact["conversationHref"].as_str().expect("href");
    let chat = format!("/chat/{}", href.rsplit('/').next().expect("uuid"));
    assert!(href.ends_with(&chat), "conversationHref is the page");
    let (mut browser, _) = signed_in(&app).await;
    let page = browser.get(&chat).await;
    page.assert_status(200);
    assert!(page.body.contains(r#"<strong id="state">open</strong>"#));
    assert!(page.body.contains("Chatty"));

    browser
        .submit(&page, &format!("{chat}/note"), &[("text", "first note")])
        .await
        .assert_redirect(&chat);
    let refused = browser
        .submit(&page, &format!("{chat}/note"), &[("text", "   ")])
        .await;
    refused.assert_status(422);
    assert!(
        refused.body.contains("must not be empty"),
        "{}",
        refused.body
    );
    let messages = app.get(&format!("/contacts/{uuid}/messages")).await;
    assert_eq!(messages.body["messages"][0]["text"], "first note");

    browser
        .submit(&page, &format!("{chat}/close"), &[])
        .await
        .assert_redirect(&chat);
    assert!(app.get(&format!("/contacts/{uuid}")).await.contact()["closedAt"].is_string());
    let closed = browser.get(&chat).await;
    assert!(
        closed
            .body
            .contains(r#"<strong id="state">closed</strong>"#)
    );
    browser
        .submit(&closed, &format!("{chat}/open"), &[])
        .await
        .assert_redirect(&chat);
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact()["closedAt"],
        Value::Null
    );

    // The timeline pages, newest first.
    for n in 0..25 {
        app.post(
            &format!("/contacts/{uuid}/conversation/note"),
            json!({"text": format!("note {n}")}),
        )
        .await
        .assert_status(200);
    }
    let newest = browser.get(&chat).await;
    let first = newest.body.find("note 24").expect("the newest note");
    let older = newest.body.find("note 10").expect("an older note");
    assert!(first < older, "newest first");
    assert!(newest.body.contains(&format!(r#"href="{chat}?page=2""#)));
    let second = browser.get(&format!("{chat}?page=2")).await;
    assert!(second.body.contains("first note"), "{}", second.body);
}

async fn settings_pages_change_what_the_api_shows(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.deliver_webhooks = false;
        s.webhooks.policy.allow_private = true;
    })
    .await;
    let (mut browser, page) = signed_in(&app).await;

    // Tags: create, refuse a comma, rename, delete.
    browser
        .submit(&page, "/settings/tags", &[("name", "vip")])
        .await
        .assert_redirect("/settings/tags");
    let refused = browser
        .submit(&page, "/settings/tags", &[("name", "a,b")])
        .await;
    refused.assert_status(422);
    assert!(refused.body.contains("cannot contain commas"));
    browser
        .submit(&page, "/settings/tags/vip", &[("name", "VIP client")])
        .await
        .assert_redirect("/settings/tags");
    app.get("/tags/VIP%20client").await.assert_status(200);
    browser
        .submit(&page, "/settings/tags/VIP%20client/delete", &[])
        .await
        .assert_redirect("/settings/tags");
    app.get("/tags/VIP%20client").await.assert_status(404);

    // A dropdown field with its options.
    browser
        .submit(
            &page,
            "/settings/custom-fields",
            &[
                ("name", "Size"),
                ("type", "dropdown"),
                ("options", "S, M, L"),
            ],
        )
        .await
        .assert_redirect("/settings/custom-fields");
    let field = app.get("/custom_fields/Size").await;
    assert_eq!(
        field.body["custom_field"]["options"],
        json!(["S", "M", "L"]),
        "{}",
        field.text
    );
    browser
        .submit(
            &page,
            "/settings/custom-fields/Size",
            &[("name", "Size"), ("options", "S, M, L, XL")],
        )
        .await
        .assert_redirect("/settings/custom-fields");
    let field = app.get("/custom_fields/Size").await;
    assert_eq!(
        field.body["custom_field"]["options"],
        json!(["S", "M", "L", "XL"])
    );

    // A user, in a new team.
    browser
        .submit(
            &page,
            "/settings/users",
            &[("email", "new.agent@example.com"), ("name", "New Agent")],
        )
        .await
        .assert_redirect("/settings/users");
    let agent = uuid_where(&app, "users", "email", "new.agent@example.com").await;
    browser
        .submit(
            &page,
            "/settings/teams",
            &[("name", "Night shift"), ("members", &agent)],
        )
        .await
        .assert_redirect("/settings/teams");
    let teams = app.get("/teams").await;
    let night = teams.body["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .find(|t| t["name"] == "Night shift")
        .expect("the team")
        .clone();
    assert_eq!(night["members"], 1, "{night}");
    let night_uuid = night["uuid"].as_str().expect("uuid").to_owned();
    let shown = browser.get("/settings/teams").await;
    assert!(
        shown.body.contains(&format!(r#"value="{agent}" checked"#)),
        "members are shown"
    );
    browser
        .submit(
            &page,
            &format!("/settings/teams/{night_uuid}"),
            &[("name", "Night shift")],
        )
        .await
        .assert_redirect("/settings/teams");
    assert_eq!(
        app.get(&format!("/teams/{night_uuid}")).await.body["team"]["members"],
        0
    );

    // A channel, a bot (then disabled), a funnel.
    browser
        .submit(
            &page,
            "/settings/channels",
            &[("title", "Support line"), ("type", "telegram")],
        )
        .await
        .assert_redirect("/settings/channels");
    let channels = app.get("/channels").await;
    assert!(channels.text.contains("Support line"));
    browser
        .submit(
            &page,
            "/settings/bots",
            &[("name", "Helper"), ("enabled", "true")],
        )
        .await
        .assert_redirect("/settings/bots");
    let helper = uuid_where(&app, "bots", "name", "Helper").await;
    browser
        .submit(
            &page,
            &format!("/settings/bots/{helper}"),
            &[("name", "Helper"), ("enabled", "false")],
        )
        .await
        .assert_redirect("/settings/bots");
    assert_eq!(
        app.get(&format!("/bots/{helper}")).await.body["bot"]["enabled"],
        false
    );
    browser
        .submit(
            &page,
            "/settings/funnels",
            &[("name", "Retention"), ("emoji", "🔁")],
        )
        .await
        .assert_redirect("/settings/funnels");
    assert!(app.get("/funnels").await.text.contains("Retention"));

    // An API key, shown once, that works until it is revoked.
    let made = browser
        .submit(&page, "/settings/keys", &[("name", "from the page")])
        .await;
    made.assert_status(200);
    let start = made
        .body
        .find(r#"id="revealed-secret">"#)
        .expect("the secret")
        + 21;
    let end = made.body[start..].find('<').expect("end");
    let secret = made.body[start..start + end].to_owned();
    assert!(secret.starts_with("bb_"), "{secret}");
    app.as_key(&secret).get("/auth/me").await.assert_status(200);
    let listed = browser.get("/settings/keys").await;
    assert!(listed.body.contains("from the page"));
    assert!(
        !listed.body.contains(&secret),
        "the secret is shown only once"
    );
    let account = app.store.find_account("demo").await.expect("demo");
    let keys = app.store.list_api_keys(account.id).await.expect("keys");
    let key = keys
        .iter()
        .find(|k| k.name == "from the page")
        .expect("the key");
    browser
        .submit(&page, &format!("/settings/keys/{}/delete", key.uuid), &[])
        .await
        .assert_redirect("/settings/keys");
    app.as_key(&secret).get("/auth/me").await.assert_status(401);

    // The webhook: subscribe (the secret shown once), the log, unsubscribe.
    let refused = browser
        .submit(
            &page,
            "/settings/webhook",
            &[("url", "not a url"), ("subscriptions", "contact_created")],
        )
        .await;
    refused.assert_status(422);
    let subscribed = browser
        .submit(
            &page,
            "/settings/webhook",
            &[
                ("url", "http://127.0.0.1:9/bellbook"),
                ("subscriptions", "contact_created"),
                ("subscriptions", "contact_deleted"),
            ],
        )
        .await;
    subscribed.assert_status(200);
    assert!(subscribed.body.contains("whsec_"), "{}", subscribed.body);
    let webhook = app
        .store
        .webhook(account.id)
        .await
        .expect("store")
        .expect("a webhook");
    assert_eq!(webhook.url, "http://127.0.0.1:9/bellbook");
    assert_eq!(webhook.subscriptions.len(), 2);
    assert!(subscribed.body.contains(&webhook.secret));
    // A delivery nobody answers shows in the log.
    app.create_contact(
        json!({"identifier": "+1 555 0142", "source": "whatsapp", "name": "Hooked"}),
    )
    .await;
    assert_eq!(app.webhooks.run_step().await.expect("a step"), 1);
    let shown = browser.get("/settings/webhook").await;
    assert!(!shown.body.contains(&webhook.secret));
    assert!(shown.body.contains("Delivery log"));
    assert!(
        shown.body.contains("<td>contact_created</td>"),
        "{}",
        shown.body
    );
    assert!(shown.body.contains("no answer ✗"), "{}", shown.body);
    // Retry: the event is delivered again, from its first attempt.
    let account_seq = app
        .store
        .webhook_attempts(account.id, &Default::default(), 1, 10)
        .await
        .expect("attempts")
        .attempts[0]
        .seq;
    browser
        .submit(
            &page,
            &format!("/settings/webhook/deliveries/{account_seq}/retry"),
            &[],
        )
        .await
        .assert_redirect("/settings/webhook");
    assert_eq!(
        app.webhooks.run_step().await.expect("a step"),
        1,
        "delivered again"
    );
    let attempts = app
        .store
        .webhook_attempts(account.id, &Default::default(), 1, 10)
        .await
        .expect("attempts");
    assert_eq!(attempts.total, 2);
    browser
        .submit(&page, "/settings/webhook/deliveries/999999/retry", &[])
        .await
        .assert_status(404);
    browser
        .submit(&page, "/settings/webhook/current/delete", &[])
        .await
        .assert_redirect("/settings/webhook");
    assert!(
        app.store
            .webhook(account.id)
            .await
            .expect("store")
            .is_none()
    );

    // Deleting what is in use: the API's refusal, shown on the page.
    let refused = browser
        .submit(&page, &format!("/settings/teams/{GENERAL}/delete"), &[])
        .await;
    refused.assert_status(409);
    app.get(&format!("/teams/{GENERAL}"))
        .await
        .assert_status(200);
}

on_both_backends!(
    signed_out_pages_send_to_sign_in,
    sessions_start_with_a_key_or_a_password_and_end,
    users_sign_in_with_passwords_and_failures_are_slowed,
    the_cli_sets_passwords,
    sessions_work_across_processes,
    https_deployments_get_secure_cookies,
    forms_without_the_csrf_token_change_nothing,
    another_accounts_ids_are_not_found,
    hostile_values_stay_text_on_every_page,
    every_page_carries_the_security_headers,
    the_list_searches_filters_and_pages_by_cursor,
    contacts_are_created_edited_and_deleted_through_forms,
    the_conversation_page_adds_notes_and_opens_and_closes,
    settings_pages_change_what_the_api_shows,
);
