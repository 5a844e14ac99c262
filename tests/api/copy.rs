//! `bellbook copy`: a database moved to the other backend, and back again,
//! answers every read exactly as the original did — cursors included.

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use crate::binary::{BIN, ENVIRONMENT};
use crate::helpers::{Backend, Reply, TestApp, TestDatabase};
use crate::on_both_backends;

const PUBLIC_URL: &str = "https://contacts.example.com";

fn other(backend: Backend) -> Backend {
    match backend {
        Backend::Sqlite => Backend::Postgres,
        Backend::Postgres => Backend::Sqlite,
    }
}

/// Runs `bellbook copy`; returns whether it succeeded and what it said.
fn run_copy(from: &str, to: &str) -> (bool, String) {
    let mut command = Command::new(BIN);
    command
        .args(["copy", "--from", from, "--to", to])
        .stdin(Stdio::null());
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    let output = command.output().expect("bellbook runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn uuid_of(value: &Value) -> String {
    value["uuid"].as_str().expect("uuid").to_owned()
}

#[track_caller]
fn ok(reply: Reply) -> Value {
    reply.assert_status(200);
    reply.body
}

/// Fills the first-run account with every kind of thing a copy must carry,
/// and a second account beside it; returns the second account's key.
async fn populate(app: &TestApp) -> String {
    for tag in ["lead", "VIP", "cold", "Call back"] {
        ok(app.post("/tags", json!({"name": tag})).await);
    }
    for (name, kind, options) in [
        ("Plan", "dropdown", Some(json!(["Free", "Pro"]))),
        (
            "Features",
            "checkbox",
            Some(json!(["Export", "Import", "Sync"])),
        ),
        ("Score", "number", None),
        ("Birthday", "date", None),
        ("Work Email", "email", None),
        ("Remarks", "text", None),
    ] {
        let mut body = json!({"name": name, "type": kind});
        if let Some(options) = options {
            body["options"] = options;
        }
        ok(app.post("/custom_fields", body).await);
    }
    ok(app
        .post("/users", json!({"email": "ann@example.com", "name": "Ann"}))
        .await);
    ok(app
        .post("/users", json!({"email": "bob@example.com", "name": "Bob"}))
        .await);
    let support = uuid_of(
        &ok(app
            .post(
                "/teams",
                json!({"name": "Support", "members": ["ann@example.com"]}),
            )
            .await)["team"],
    );
    let line2 = uuid_of(
        &ok(app
            .post(
                "/channels",
                json!({"title": "Line 2", "type": "whatsapp", "main": false}),
            )
            .await)["channel"],
    );
    ok(app
        .post("/channels", json!({"title": "TG", "type": "telegram"}))
        .await);
    ok(app
        .post("/bots", json!({"name": "Helper", "version": 2}))
        .await);
    let awareness = ok(app
        .post("/funnels", json!({"name": "Awareness", "emoji": "👀"}))
        .await)["funnel"]["uuid"]
        .clone();
    ok(app.post("/funnels", json!({"name": "Action"})).await);

    let tag_sets = [
        json!([]),
        json!(["lead"]),
        json!("VIP, cold"),
        json!(["Call back", "lead", "VIP"]),
    ];
    let mut contacts = Vec::new();
    for i in 0..120 {
        let mut body = json!({
            "identifier": format!("+39 333 {i:04}"),
            "source": "whatsapp",
            "name": format!("Contact {i}"),
            "tags": tag_sets[i % 4],
            "custom_fields": {
                "Plan": if i % 2 == 0 { "Free" } else { "pro" },
                "Features": if i % 3 == 0 { json!(["Sync", "Export"]) } else { json!(null) },
                "Score": i * 7,
                "Birthday": format!("1990-01-{:02}", i % 28 + 1),
                "Work Email": format!("c{i}@example.com"),
                "Remarks": "a \"quoted\", remark"
            }
        });
        if i % 3 == 0 {
            body["assigned_user"] = json!("bob@example.com");
        }
        if i % 5 == 0 {
            body["team_uuid"] = json!(support);
        }
        if i % 7 == 0 {
            body["channel_uuid"] = json!(line2);
        }
        if i % 6 == 0 {
            body["note"] = json!(format!("note {i} ✓"));
        }
        if i % 8 == 0 {
            body["bot_status"] = json!("bot_end");
        }
        contacts.push(uuid_of(&app.create_contact(body).await));
    }
    for i in 0..5 {
        app.create_contact(json!({"identifier": format!("tg_user_{i}"), "source": "telegram", "name": format!("Telegram {i}")}))
            .await;
    }
    for (i, uuid) in contacts.iter().enumerate() {
        if i % 17 == 3 {
            ok(app.delete(&format!("/contacts/{uuid}")).await);
            continue;
        }
        if i % 9 == 0 {
            ok(app
                .post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
                .await);
        }
        if i % 10 == 0 {
            ok(app
                .post(
                    &format!("/contacts/{uuid}/conversation/note"),
                    json!({"text": format!("Called #{i}")}),
                )
                .await);
        }
        if i % 11 == 0 {
            ok(app
                .post(
                    &format!("/contacts/{uuid}/messages/update_funnel"),
                    json!({"funnel_id": awareness}),
                )
                .await);
        }
        if i % 13 == 0 {
            ok(app
                .patch(
                    &format!("/contacts/{uuid}"),
                    json!({"bsuid": format!("BS.{i}"), "custom_fields": {"Remarks": null}}),
                )
                .await);
        }
    }
    // Retired things travel too: a discarded channel, a revoked key.
    ok(app
        .patch(&format!("/channels/{line2}"), json!({"discarded": true}))
        .await);
    let spare = bellbook::auth::issue_key("spare").expect("randomness");
    let prefix = spare.record.prefix.clone();
    let account = app
        .store
        .api_keys_with_prefix(bellbook::auth::key_prefix(&app.key))
        .await
        .expect("keys")[0]
        .account_id;
    app.store
        .add_api_key(account, &spare.record)
        .await
        .expect("key added");
    app.store
        .revoke_api_key(account, &prefix, bellbook::domain::Timestamp::now())
        .await
        .expect("revoked");

    let second = app.create_account("second").await;
    for i in 0..10 {
        app.as_key(&second)
            .post("/contacts", json!({"identifier": format!("44 20 {i}"), "source": "whatsapp", "name": format!("Other {i}")}))
            .await
            .assert_status(200);
    }
    second
}

/// Every read path worth comparing for one account, discovered on `app`:
/// settings, pages, filters, cursor walks, and each contact with its
/// messages, bot and lookups.
async fn paths_to_read(app: &TestApp, key: &str) -> Vec<String> {
    let caller = app.as_key(key);
    let mut paths: Vec<String> = [
        "/auth/me",
        "/tags",
        "/tags/call%20BACK",
        "/custom_fields",
        "/users",
        "/teams",
        "/channels",
        "/channels?active=false",
        "/bots",
        "/funnels",
        "/contacts?tags=lead",
        "/contacts?tags=lead,VIP&tags_mode=any",
        "/contacts?source=telegram",
        "/contacts?q=contact%201",
        "/contacts?q=333%200",
        "/contacts?include_field_types=true&page=2",
        "/events?limit=1000",
        "/webhooks/events",
    ]
    .map(str::to_owned)
    .to_vec();
    let teams = caller.get("/teams").await.body;
    for team in teams["teams"].as_array().expect("teams") {
        paths.push(format!("/contacts?team_uuid={}", uuid_of(team)));
    }
    let first = caller.get("/contacts").await.body;
    let pages = first["meta"]["pages"].as_u64().expect("pages");
    for page in 1..=pages + 1 {
        paths.push(format!("/contacts?page={page}"));
    }
    // The cursor walk, with a filter carried along.
    for start in ["/contacts", "/contacts?tags=lead"] {
        let mut page = caller.get(start).await.body;
        while let Some(next) = page["meta"]["next"].as_str() {
            let path = format!("/contacts?after={next}");
            page = caller.get(&path).await.body;
            paths.push(path);
        }
    }
    let mut walk = caller.get("/contacts").await.body;
    loop {
        for contact in walk["contacts"].as_array().expect("contacts") {
            let uuid = uuid_of(contact);
            paths.push(format!("/contacts/{uuid}?include_field_types=true"));
            paths.push(format!("/contacts/{uuid}/messages"));
            paths.push(format!("/contacts/{uuid}/bot"));
            let digits: String = contact["phoneNumber"]
                .as_str()
                .expect("phone")
                .chars()
                .filter(char::is_ascii_digit)
                .collect();
            let channel = contact["channel"]["uuid"].as_str().expect("channel");
            paths.push(format!("/contacts/phone/{digits}?channel_uuid={channel}"));
            if let Some(bsuid) = contact["bsuid"].as_str() {
                paths.push(format!("/contacts/bsuid/{bsuid}"));
            }
        }
        let Some(next) = walk["meta"]["next"].as_str() else {
            break;
        };
        walk = caller.get(&format!("/contacts?after={next}")).await.body;
    }
    paths
}

/// Asserts that `copy` answers each of `paths` as `original` does.
async fn assert_same_answers(original: &TestApp, copy: &TestApp, key: &str, paths: &[String]) {
    for path in paths {
        let expected = original.as_key(key).get(path).await;
        let actual = copy.as_key(key).get(path).await;
        assert_eq!(actual.status, expected.status, "{path}: {}", actual.text);
        assert_eq!(actual.body, expected.body, "{path} differs after the copy");
    }
}

async fn a_copy_answers_every_read_as_the_original(backend: Backend) {
    let settings = |s: &mut bellbook::Settings| {
        s.public_url = Some(PUBLIC_URL.to_owned());
        s.rate_limit_rps = 0;
        // The webhook below points nowhere reachable; nothing delivers.
        s.deliver_webhooks = false;
    };
    let source = TestApp::spawn_with(backend, settings).await;
    source
        .post(
            "/webhooks/subscribe",
            json!({"url": "https://93.184.216.34/hook", "subscriptions": ["contact_created"]}),
        )
        .await
        .assert_status(200);
    let second = populate(&source).await;
    let mut paths = Vec::new();
    for key in [&source.key, &second] {
        paths.push((key.clone(), paths_to_read(&source, key).await));
    }
    assert!(
        paths[0].1.len() > 400,
        "a thorough comparison: {} reads",
        paths[0].1.len()
    );

    // To the other backend...
    let (_there, there_url) = TestDatabase::create(other(backend)).await;
    let (copied, said) = run_copy(&source.database_url, &there_url);
    assert!(copied, "copy failed: {said}");
    assert!(said.contains("account 1/2"), "progress is shown: {said}");
    assert!(
        said.contains("Copied 2 account(s) and 128 contact(s)"),
        "{said}"
    );
    let there = TestApp::spawn_on(&there_url, &source.key, settings).await;
    for (key, paths) in &paths {
        assert_same_answers(&source, &there, key, paths).await;
    }

    // ...and back to this one.
    let (_back, back_url) = TestDatabase::create(backend).await;
    let (copied, said) = run_copy(&there_url, &back_url);
    assert!(copied, "copy back failed: {said}");
    let back = TestApp::spawn_on(&back_url, &source.key, settings).await;
    for (key, paths) in &paths {
        assert_same_answers(&source, &back, key, paths).await;
    }

    // The copies are independent, working databases: new contacts take
    // fresh sequence numbers and new accounts fresh ids.
    back.create_contact(
        json!({"identifier": "+1 555 0199", "source": "whatsapp", "name": "After"}),
    )
    .await;
    let newest = back.get("/contacts").await;
    assert_eq!(newest.body["contacts"][0]["name"], "After");
    // Its event follows the copied ones, and its delivery is queued for
    // the copied webhook.
    let feed = back.get("/events?limit=1000").await.body;
    let events = feed["events"].as_array().expect("events");
    let last = events.last().expect("events");
    assert_eq!(last["payload"]["name"], "After");
    assert_eq!(last["id"], events.len().to_string());
    let backlog = back.store.webhook_backlog().await.expect("backlog");
    let pending = source.store.webhook_backlog().await.expect("backlog")[0].pending;
    assert_eq!(backlog[0].pending, pending + 1);
    let third = back.create_account("third").await;
    back.as_key(&third).get("/auth/me").await.assert_status(200);
}

async fn copy_refuses_a_target_that_is_not_empty(backend: Backend) {
    let source = TestApp::spawn_with(backend, |s| s.demo = true).await;
    let target = TestApp::spawn(other(backend)).await;
    let (copied, said) = run_copy(&source.database_url, &target.database_url);
    assert!(!copied, "copied into a database with an account");
    assert!(said.contains("already holds 1 account"), "{said}");
    // Nothing of the source arrived.
    target.get("/contacts").await.assert_status(200);
    let listed = target.get("/contacts").await;
    assert_eq!(listed.body["contacts"], json!([]));
    let (copied, said) = run_copy(&source.database_url, &source.database_url);
    assert!(!copied, "copied a database onto itself: {said}");
}

on_both_backends!(
    a_copy_answers_every_read_as_the_original,
    copy_refuses_a_target_that_is_not_empty,
);
