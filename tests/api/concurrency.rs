//! SPEC §1 and §4 under concurrent requests: one contact per number however
//! many clients race to create it, PATCHes that never lose each other's
//! custom fields, and cursor walks that stay exact while contacts are added.
//! Nothing here waits or depends on timing: requests are started together
//! and every outcome allowed by the contract is checked exactly.

use futures::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// A server on an empty database, without a rate limit (tests send bursts).
async fn fresh(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await
}

/// Every contact of the account, walking all numbered pages.
async fn all_contacts(app: &TestApp) -> Vec<Value> {
    let mut contacts = Vec::new();
    let mut page = 1;
    loop {
        let reply = app.get(&format!("/contacts?page={page}")).await;
        reply.assert_status(200);
        contacts.extend(reply.body["contacts"].as_array().expect("contacts").clone());
        if page >= reply.body["meta"]["pages"].as_u64().expect("pages") {
            return contacts;
        }
        page += 1;
    }
}

fn uuids(body: &Value) -> Vec<String> {
    body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["uuid"].as_str().expect("uuid").to_owned())
        .collect()
}

async fn racing_creates_of_one_number_make_one_contact(backend: Backend) {
    let app = fresh(backend).await;
    // Several rounds, each a burst of 16 spellings of one number.
    for round in 0..3 {
        let spellings = [
            format!("+39 333-12 3{round}"),
            format!("3933312 3{round}"),
            format!("(39) 333 123{round}"),
            format!("39.333.123{round}"),
        ];
        let requests = (0..16).map(|i| {
            let identifier = spellings[i % spellings.len()].clone();
            let app = &app;
            async move {
                app.post(
                    "/contacts",
                    json!({"identifier": identifier, "source": "whatsapp", "name": format!("Racer {i}")}),
                )
                .await
            }
        });
        let replies = join_all(requests).await;
        let created: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(
            created.len(),
            1,
            "exactly one create wins; statuses: {:?}",
            replies
                .iter()
                .map(|r| (r.status, &r.text))
                .collect::<Vec<_>>()
        );
        let winner = created[0].contact()["uuid"].clone();
        for reply in replies.iter().filter(|r| r.status != 200) {
            reply.assert_error(409, "contact_exists");
            assert_eq!(
                reply.body["error"]["details"][0]["uuid"], winner,
                "the conflict names the contact that won; body: {}",
                reply.text
            );
        }
        let digits = format!("39333123{round}");
        let matching: Vec<Value> = all_contacts(&app)
            .await
            .into_iter()
            .filter(|c| {
                c["phoneNumber"].as_str().is_some_and(|p| {
                    p.chars().filter(char::is_ascii_digit).collect::<String>() == digits
                })
            })
            .collect();
        assert_eq!(matching.len(), 1, "one contact with {digits}");
        assert_eq!(matching[0]["uuid"], winner);
        let found = app.get(&format!("/contacts/phone/{digits}")).await;
        found.assert_status(200);
        assert_eq!(found.contact()["uuid"], winner);
    }
    assert_eq!(all_contacts(&app).await.len(), 3);
}

async fn racing_creates_of_different_numbers_all_succeed(backend: Backend) {
    let app = fresh(backend).await;
    let requests = (0..16).map(|i| {
        let app = &app;
        async move {
            app.post(
                "/contacts",
                json!({"identifier": format!("+1 555 02{i:02}"), "source": "whatsapp", "name": format!("N{i}")}),
            )
            .await
        }
    });
    let replies = join_all(requests).await;
    for reply in &replies {
        reply.assert_status(200);
    }
    let mut created: Vec<String> = replies
        .iter()
        .map(|r| r.contact()["uuid"].as_str().expect("uuid").to_owned())
        .collect();
    created.sort();
    created.dedup();
    assert_eq!(created.len(), 16);
    let mut listed: Vec<String> = all_contacts(&app)
        .await
        .iter()
        .map(|c| c["uuid"].as_str().expect("uuid").to_owned())
        .collect();
    listed.sort();
    assert_eq!(listed, created);
}

async fn racing_patches_keep_every_custom_field(backend: Backend) {
    let app = fresh(backend).await;
    const KEYS: usize = 12;
    for k in 0..KEYS {
        app.post(
            "/custom_fields",
            json!({"name": format!("Key {k:02}"), "type": "text"}),
        )
        .await
        .assert_status(200);
    }
    app.post("/custom_fields", json!({"name": "Kept", "type": "text"}))
        .await
        .assert_status(200);
    let contact = app
        .create_contact(json!({
            "identifier": "+39 02 1234",
            "source": "whatsapp",
            "name": "Shared",
            "custom_fields": {"Kept": "from the start"}
        }))
        .await;
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let path = format!("/contacts/{uuid}");
    // Two rounds: the second overwrites every key, still concurrently.
    for round in 0..2 {
        let patches = (0..KEYS).map(|k| {
            let app = &app;
            let path = &path;
            async move {
                app.patch(
                    path,
                    json!({"custom_fields": {format!("Key {k:02}"): format!("value {k} round {round}")}}),
                )
                .await
            }
        });
        for reply in join_all(patches).await {
            reply.assert_status(200);
        }
        let mut expected = serde_json::Map::new();
        expected.insert("Kept".to_owned(), json!("from the start"));
        for k in 0..KEYS {
            expected.insert(
                format!("Key {k:02}"),
                json!(format!("value {k} round {round}")),
            );
        }
        let read = app.get(&path).await;
        read.assert_status(200);
        assert_eq!(
            read.contact()["customFields"],
            Value::Object(expected),
            "round {round}"
        );
    }
    // Concurrent removals of different keys are all applied too.
    let removals = (0..KEYS).step_by(2).map(|k| {
        let app = &app;
        let path = &path;
        async move {
            app.patch(
                path,
                json!({"custom_fields": {format!("Key {k:02}"): null}}),
            )
            .await
        }
    });
    for reply in join_all(removals).await {
        reply.assert_status(200);
    }
    let read = app.get(&path).await;
    let fields = read.contact()["customFields"]
        .as_object()
        .expect("customFields");
    let mut keys: Vec<&str> = fields.keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected: Vec<String> = (1..KEYS)
        .step_by(2)
        .map(|k| format!("Key {k:02}"))
        .collect();
    expected.push("Kept".to_owned());
    expected.sort();
    assert_eq!(keys, expected);
}

async fn a_cursor_walk_ignores_contacts_created_during_it(backend: Backend) {
    let app = fresh(backend).await;
    let mut existing = Vec::new();
    for i in 0..45 {
        let contact = app
            .create_contact(json!({
                "identifier": format!("+44 20 7946 {i:04}"),
                "source": "whatsapp",
                "name": format!("Before {i:02}")
            }))
            .await;
        existing.push(contact["uuid"].as_str().expect("uuid").to_owned());
    }
    existing.reverse();

    let mut created_during = 0usize;
    let create = |n: usize| {
        let app = &app;
        async move {
            let reply = app
                .post(
                    "/contacts",
                    json!({
                        "identifier": format!("+33 1 {n:04}"),
                        "source": "whatsapp",
                        "name": format!("During {n:02}")
                    }),
                )
                .await;
            reply.assert_status(200);
            reply.contact()["uuid"].as_str().expect("uuid").to_owned()
        }
    };
    let mut during = Vec::new();

    let first = app.get("/contacts").await;
    first.assert_status(200);
    let mut walked = uuids(&first.body);
    let mut next = first.body["meta"]["next"].clone();
    while let Some(cursor) = next.as_str().map(str::to_owned) {
        // Some contacts are created before the next page is read...
        let before: Vec<_> = (0..3)
            .map(|_| {
                created_during += 1;
                create(created_during)
            })
            .collect();
        during.extend(join_all(before).await);
        // ...and others while it is being read.
        let alongside: Vec<_> = (0..3)
            .map(|_| {
                created_during += 1;
                create(created_during)
            })
            .collect();
        let path = format!("/contacts?after={cursor}");
        let (page, made) = tokio::join!(app.get(&path), join_all(alongside));
        during.extend(made);
        page.assert_status(200);
        walked.extend(uuids(&page.body));
        next = page.body["meta"]["next"].clone();
    }
    assert_eq!(
        walked, existing,
        "each contact of the first page's time once, in order"
    );
    for uuid in &during {
        assert!(!walked.contains(uuid), "{uuid} was created during the walk");
    }
    // They were created all the same.
    assert_eq!(during.len(), 12);
    let everything = all_contacts(&app).await;
    assert_eq!(everything.len(), 45 + during.len());
    // A new walk sees them.
    let fresh_walk = app.get("/contacts").await;
    assert_eq!(fresh_walk.body["meta"]["pages"], 3);
}

async fn racing_patches_for_one_bsuid_let_one_contact_have_it(backend: Backend) {
    let app = fresh(backend).await;
    let mut contacts = Vec::new();
    for i in 0..8 {
        let contact = app
            .create_contact(json!({
                "identifier": format!("+49 30 {i:04}"),
                "source": "whatsapp",
                "name": format!("Claimant {i}")
            }))
            .await;
        contacts.push(contact["uuid"].as_str().expect("uuid").to_owned());
    }
    let claims = contacts.iter().map(|uuid| {
        let app = &app;
        async move {
            app.patch(&format!("/contacts/{uuid}"), json!({"bsuid": "US.42"}))
                .await
        }
    });
    let replies = join_all(claims).await;
    let winners: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(
        winners.len(),
        1,
        "exactly one contact gets the bsuid; statuses: {:?}",
        replies
            .iter()
            .map(|r| (r.status, &r.text))
            .collect::<Vec<_>>()
    );
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.assert_error(409, "bsuid_taken");
    }
    let holder = app.get("/contacts/bsuid/US.42").await;
    holder.assert_status(200);
    assert_eq!(holder.contact()["uuid"], winners[0].contact()["uuid"]);
    let holders = all_contacts(&app)
        .await
        .into_iter()
        .filter(|c| c["bsuid"] == "US.42")
        .count();
    assert_eq!(holders, 1);
}

on_both_backends!(
    racing_patches_for_one_bsuid_let_one_contact_have_it,
    racing_creates_of_one_number_make_one_contact,
    racing_creates_of_different_numbers_all_succeed,
    racing_patches_keep_every_custom_field,
    a_cursor_walk_ignores_contacts_created_during_it,
);
