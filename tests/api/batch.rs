//! `POST /contacts/batch` (README, "Batches"): items applied one by one in
//! input order, each failing alone; upserts; limits; the rate limit per
//! item; retries with `Idempotency-Key`; batches racing single creates.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::demo::{GENERAL, SUPPORT};
use crate::helpers::{Backend, TestApp, send};
use crate::on_both_backends;

fn person(identifier: &str, name: &str) -> Value {
    json!({"identifier": identifier, "source": "whatsapp", "name": name})
}

fn statuses(reply: &crate::helpers::Reply) -> Vec<u64> {
    reply.body["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| r["status"].as_u64().expect("status"))
        .collect()
}

async fn items_are_applied_in_order_and_fail_alone(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let reply = app
        .post(
            "/contacts/batch",
            json!({"contacts": [
                person("+39 333 000 0001", "First"),
                {"identifier": "+39 333 000 0002", "source": "whatsapp", "name": "Bad", "tags": ["no such tag"]},
                "not an object",
                person("+39 333 000 0003", "Third"),
            ]}),
        )
        .await;
    reply.assert_status(200);
    assert_eq!(statuses(&reply), [201, 422, 422, 201]);
    let results = reply.body["results"].as_array().expect("results");
    for (index, result) in results.iter().enumerate() {
        assert_eq!(result["index"], index);
    }
    assert_eq!(results[1]["error"]["code"], "unknown_tag");
    assert_eq!(results[1]["error"]["status"], 422);
    assert_eq!(results[1]["error"]["details"][0]["field"], "tags[0]");
    assert!(results[1].get("contact").is_none());
    assert_eq!(results[2]["error"]["code"], "invalid_type");
    assert_eq!(results[0]["contact"]["name"], "First");
    let third = results[3]["contact"]["uuid"].as_str().expect("uuid");
    app.get(&format!("/contacts/{third}"))
        .await
        .assert_status(200);
    app.get("/contacts/phone/393330000002")
        .await
        .assert_status(404);
}

async fn one_identifier_twice_meets_in_input_order(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let reply = app
        .post(
            "/contacts/batch",
            json!({"contacts": [person("+39 333 111 0001", "Once"), person("39-333-111-0001", "Twice")]}),
        )
        .await;
    assert_eq!(statuses(&reply), [201, 409]);
    let first = reply.body["results"][0]["contact"]["uuid"].clone();
    let conflict = &reply.body["results"][1]["error"];
    assert_eq!(conflict["code"], "contact_exists");
    assert_eq!(conflict["details"][0]["uuid"], first);

    let reply = app
        .post(
            "/contacts/batch",
            json!({"mode": "upsert", "contacts": [
                person("+39 333 222 0001", "Created"),
                {"identifier": "393332220001", "source": "whatsapp", "name": "Updated", "tags": ["lead"]},
            ]}),
        )
        .await;
    assert_eq!(statuses(&reply), [201, 200]);
    let results = reply.body["results"].as_array().expect("results");
    assert_eq!(results[0]["contact"]["uuid"], results[1]["contact"]["uuid"]);
    let contact = app.get("/contacts/phone/393332220001").await;
    assert_eq!(contact.contact()["name"], "Updated");
    assert_eq!(contact.contact()["tags"], json!(["lead"]));
    assert_eq!(
        contact.contact()["phoneNumber"],
        "+39 333 222 0001",
        "the identifier stays"
    );
}

async fn upserts_update_what_the_item_gives(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let existing = app
        .create_contact(json!({
            "identifier": "+44 7700 900001", "source": "whatsapp", "name": "Before",
            "tags": ["hot"], "team_uuid": SUPPORT,
            "custom_fields": {"VAT": "IT123", "zipCode": "00100"},
        }))
        .await;
    let reply = app
        .post(
            "/contacts/batch",
            json!({"mode": "upsert", "contacts": [{
                "identifier": "447700900001", "source": "whatsapp", "name": "After",
                "tags": ["lead"], "custom_fields": {"zipCode": "20100", "VAT": null},
            }]}),
        )
        .await;
    assert_eq!(statuses(&reply), [200]);
    let contact = app
        .get(&format!(
            "/contacts/{}",
            existing["uuid"].as_str().expect("uuid")
        ))
        .await;
    let contact = contact.contact();
    assert_eq!(contact["name"], "After");
    assert_eq!(contact["tags"], json!(["lead"]));
    assert_eq!(contact["customFields"], json!({"zipCode": "20100"}));
    assert_eq!(contact["team"]["uuid"], SUPPORT, "a team not given stays");
    // Create mode leaves it alone.
    let reply = app
        .post(
            "/contacts/batch",
            json!({"contacts": [{"identifier": "447700900001", "source": "whatsapp", "name": "Again", "team_uuid": GENERAL}]}),
        )
        .await;
    assert_eq!(statuses(&reply), [409]);
    assert_eq!(
        app.get("/contacts/phone/447700900001").await.contact()["name"],
        "After"
    );
}

async fn batches_have_limits(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.post("/contacts/batch", json!({}))
        .await
        .assert_error(422, "required");
    app.post("/contacts/batch", json!({"contacts": []}))
        .await
        .assert_error(422, "invalid_batch_size");
    let many: Vec<Value> = (0..101)
        .map(|n| person(&format!("+1 555 01{n:03}"), "Many"))
        .collect();
    app.post("/contacts/batch", json!({"contacts": many}))
        .await
        .assert_error(422, "invalid_batch_size");
    app.post(
        "/contacts/batch",
        json!({"contacts": [person("+1 555 0001", "x")], "mode": "merge"}),
    )
    .await
    .assert_status(422);
    let hundred: Vec<Value> = (0..100)
        .map(|n| person(&format!("+1 555 02{n:03}"), "Hundred"))
        .collect();
    let reply = app
        .post("/contacts/batch", json!({"contacts": hundred}))
        .await;
    assert_eq!(statuses(&reply), vec![201; 100]);
}

async fn each_item_counts_against_the_rate_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.rate_limit_rps = 5;
    })
    .await;
    let batch = |from: u32| json!({"contacts": (from..from + 3).map(|n| person(&format!("+1 555 03{n:03}"), "Limited")).collect::<Vec<_>>()});
    let first = app.post("/contacts/batch", batch(0)).await;
    assert_eq!(statuses(&first), [201, 201, 201]);
    // Two left: this batch of three would take three, so it is refused
    // whole, nothing applied.
    let refused = app.post("/contacts/batch", batch(10)).await;
    refused.assert_error(429, "rate_limited");
    assert!(refused.header("retry-after").is_some());
    // Counted through the store: the API itself is out of requests.
    let account = app.store.find_account("demo").await.expect("demo");
    let limited = app
        .store
        .list_contacts(
            account.id,
            &bellbook::store::ContactFilter {
                q: Some("Limited".into()),
                ..Default::default()
            },
            bellbook::store::PageStart::Number(1),
            20,
        )
        .await
        .expect("listed");
    assert_eq!(limited.total, 3, "none of the refused batch");
}

async fn a_retried_batch_is_not_applied_twice(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let body = json!({"contacts": [person("+39 333 444 0001", "Kept"), person("+39 333 444 0002", "Kept too")]});
    let send_once = || {
        send(
            app.request(Method::POST, "/contacts/batch")
                .header("Idempotency-Key", "batch-1")
                .json(&body),
        )
    };
    let first = send_once().await;
    assert_eq!(statuses(&first), [201, 201]);
    let again = send_once().await;
    assert_eq!(again.text, first.text, "the same answer, byte for byte");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let listed = app.get("/contacts?q=Kept").await;
    assert_eq!(listed.body["contacts"].as_array().expect("list").len(), 2);
}

async fn batches_race_single_creates(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.rate_limit_rps = 0;
    })
    .await;
    let identifiers: Vec<String> = (0..20).map(|n| format!("+49 151 0000 {n:04}")).collect();
    let batch = json!({"contacts": identifiers.iter().map(|i| person(i, "From the batch")).collect::<Vec<_>>()});
    let singles = identifiers.iter().map(|identifier| {
        let app = &app;
        async move { app.post("/contacts", person(identifier, "Single")).await }
    });
    let (batched, singles) = tokio::join!(
        app.post("/contacts/batch", batch),
        futures::future::join_all(singles)
    );
    let batched = statuses(&batched);
    for (n, identifier) in identifiers.iter().enumerate() {
        let single = singles[n].status;
        // Exactly one of the two created it.
        match (batched[n], single) {
            (201, 409) | (409, 200) => {}
            other => panic!("{identifier}: batch and single answered {other:?}"),
        }
        let digits: String = identifier.chars().filter(char::is_ascii_digit).collect();
        app.get(&format!("/contacts/phone/{digits}"))
            .await
            .assert_status(200);
    }
    let all = app.get("/contacts?q=49151").await;
    assert_eq!(all.body["meta"]["pages"], 1);
    assert_eq!(all.body["contacts"].as_array().expect("list").len(), 20);
}

on_both_backends!(
    items_are_applied_in_order_and_fail_alone,
    one_identifier_twice_meets_in_input_order,
    upserts_update_what_the_item_gives,
    batches_have_limits,
    each_item_counts_against_the_rate_limit,
    a_retried_batch_is_not_applied_twice,
    batches_race_single_creates,
);
