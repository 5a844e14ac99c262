//! README "Retry-safe writes": `Idempotency-Key` on POST, PATCH and DELETE,
//! with Stripe's semantics, per account and across processes.

use bellbook::domain::Timestamp;
use bellbook::store::{IdempotencyBegin, IdempotencyClaim, StoredAnswer};
use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, send};
use crate::on_both_backends;

async fn fresh(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await
}

async fn keyed(
    app: &TestApp,
    method: Method,
    path: &str,
    key: &str,
    body: Option<&Value>,
) -> Reply {
    let mut request = app.request(method, path).header("Idempotency-Key", key);
    if let Some(body) = body {
        request = request.json(body);
    }
    send(request).await
}

fn replayed(reply: &Reply) -> bool {
    reply
        .headers
        .get("idempotent-replayed")
        .is_some_and(|v| v == "true")
}

fn contact_body(identifier: &str) -> Value {
    json!({"identifier": identifier, "source": "whatsapp", "name": "Retry"})
}

async fn count_contacts(app: &TestApp) -> usize {
    app.as_key(&app.key).every_contact("/contacts").await.len()
}

async fn a_retried_create_answers_the_same_and_creates_once(backend: Backend) {
    let app = fresh(backend).await;
    let body = contact_body("+391111");
    let first = keyed(&app, Method::POST, "/contacts", "create-1", Some(&body)).await;
    first.assert_status(200);
    assert!(!replayed(&first));
    for _ in 0..3 {
        let again = keyed(&app, Method::POST, "/contacts", "create-1", Some(&body)).await;
        again.assert_status(200);
        assert!(replayed(&again), "a retry is marked as replayed");
        assert_eq!(again.text, first.text, "the first answer, byte for byte");
        assert_eq!(
            again.headers.get("content-type"),
            first.headers.get("content-type")
        );
    }
    assert_eq!(count_contacts(&app).await, 1);
    // Without a key, the same body is a new request: the number is taken.
    app.post("/contacts", body)
        .await
        .assert_error(409, "contact_exists");
}

async fn the_same_key_with_another_request_is_422(backend: Backend) {
    let app = fresh(backend).await;
    let body = contact_body("+392222");
    keyed(&app, Method::POST, "/contacts", "k", Some(&body))
        .await
        .assert_status(200);
    let other_body = contact_body("+392223");
    keyed(&app, Method::POST, "/contacts", "k", Some(&other_body))
        .await
        .assert_error(422, "idempotency_key_reused");
    keyed(&app, Method::POST, "/contacts?x=1", "k", Some(&body))
        .await
        .assert_error(422, "idempotency_key_reused");
    keyed(
        &app,
        Method::POST,
        "/tags",
        "k",
        Some(&json!({"name": "new"})),
    )
    .await
    .assert_error(422, "idempotency_key_reused");
    assert_eq!(count_contacts(&app).await, 1, "nothing else was done");
    // A malformed key is refused before anything happens.
    for bad in ["has space", &"k".repeat(256)] {
        keyed(&app, Method::POST, "/contacts", bad, Some(&other_body))
            .await
            .assert_error(400, "invalid_idempotency_key");
    }
    assert_eq!(count_contacts(&app).await, 1);
}

async fn patch_and_delete_replay_too(backend: Backend) {
    let app = fresh(backend).await;
    let contact = app.create_contact(contact_body("+393333")).await;
    let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
    let path = format!("/contacts/{uuid}");
    let patch = json!({"name": "Renamed"});
    let first = keyed(&app, Method::PATCH, &path, "patch-1", Some(&patch)).await;
    first.assert_status(200);
    // Changed since by someone else: the retry still answers what the
    // first request did, and changes nothing back.
    app.patch(&path, json!({"name": "Later"}))
        .await
        .assert_status(200);
    let again = keyed(&app, Method::PATCH, &path, "patch-1", Some(&patch)).await;
    assert!(replayed(&again));
    assert_eq!(again.text, first.text);
    assert_eq!(app.get(&path).await.contact()["name"], "Later");

    let deleted = keyed(&app, Method::DELETE, &path, "delete-1", None).await;
    deleted.assert_status(200);
    let again = keyed(&app, Method::DELETE, &path, "delete-1", None).await;
    again.assert_status(200);
    assert!(replayed(&again), "not a 404: the first answer again");
    assert_eq!(again.text, deleted.text);
    // An answer that was an error is kept as well: the same request would
    // get it again anyway.
    let missing = keyed(&app, Method::DELETE, &path, "delete-2", None).await;
    missing.assert_error(404, "not_found");
    let again = keyed(&app, Method::DELETE, &path, "delete-2", None).await;
    assert!(replayed(&again));
    assert_eq!(again.text, missing.text);
}

async fn keys_belong_to_one_account(backend: Backend) {
    let app = fresh(backend).await;
    let other_key = app.create_account("other").await;
    let body = contact_body("+394444");
    keyed(&app, Method::POST, "/contacts", "shared", Some(&body))
        .await
        .assert_status(200);
    // The other account's same key and request is its own: it runs.
    let theirs = send(
        app.as_key(&other_key)
            .request(Method::POST, "/contacts")
            .header("Idempotency-Key", "shared")
            .json(&body),
    )
    .await;
    theirs.assert_status(200);
    assert!(!replayed(&theirs));
    assert_eq!(
        app.as_key(&other_key)
            .every_contact("/contacts")
            .await
            .len(),
        1
    );
}

/// The claim a request with this key and body would make, for tests that
/// hold a key the way a running request does.
async fn claim_for(app: &TestApp, key: &str, path: &str, body: &Value) -> IdempotencyClaim {
    let account = app.store.find_account("default").await.expect("account");
    let uri: axum::http::Uri = format!("/v1{path}").parse().expect("uri");
    let bytes = serde_json::to_vec(body).expect("json");
    let now = Timestamp::now();
    IdempotencyClaim {
        account: account.id,
        key: key.to_owned(),
        fingerprint: bellbook::api::idempotency::fingerprint(
            &axum::http::Method::POST,
            &uri,
            &bytes,
        ),
        now,
        expired_before: Timestamp::from_unix(now.unix() - 24 * 3600),
        lease_until: Timestamp::from_unix(now.unix() + 300),
    }
}

async fn a_retry_while_the_first_runs_is_409_then_gets_its_answer(backend: Backend) {
    let app = fresh(backend).await;
    let body = contact_body("+395555");
    let claim = claim_for(&app, "running", "/contacts", &body).await;
    assert_eq!(
        app.store.begin_idempotent(&claim).await.expect("begin"),
        IdempotencyBegin::Started
    );
    let reply = keyed(&app, Method::POST, "/contacts", "running", Some(&body)).await;
    reply.assert_error(409, "idempotency_in_progress");
    assert!(reply.headers.contains_key("retry-after"));
    assert_eq!(count_contacts(&app).await, 0, "the retry did nothing");
    // The first finishes: from then on, its answer.
    let answer = StoredAnswer {
        status: 200,
        content_type: Some("application/json; charset=utf-8".into()),
        body: r#"{"contact":[]}"#.into(),
    };
    app.store
        .finish_idempotent(&claim, &answer)
        .await
        .expect("finish");
    let reply = keyed(&app, Method::POST, "/contacts", "running", Some(&body)).await;
    assert!(replayed(&reply));
    assert_eq!(reply.text, answer.body);
}

/// Many copies of one keyed request at once: exactly one runs; each other
/// is told it is running (409) or gets its answer.
async fn racing_retries_run_once(backend: Backend) {
    let app = fresh(backend).await;
    let body = contact_body("+396666");
    let replies = futures::future::join_all(
        (0..16).map(|_| keyed(&app, Method::POST, "/contacts", "race", Some(&body))),
    )
    .await;
    let originals: Vec<&Reply> = replies
        .iter()
        .filter(|r| r.status == 200 && !replayed(r))
        .collect();
    assert_eq!(originals.len(), 1, "one request ran");
    for reply in &replies {
        match reply.status {
            200 => assert_eq!(reply.text, originals[0].text),
            409 => {
                reply.assert_error(409, "idempotency_in_progress");
            }
            other => panic!("unexpected {other}: {}", reply.text),
        }
    }
    assert_eq!(count_contacts(&app).await, 1);
}

/// Two processes on one database share the keys (on SQLite too: both
/// decide in the one database).
async fn keys_work_across_processes(backend: Backend) {
    let app = fresh(backend).await;
    let sibling = app.sibling(|s| s.rate_limit_rps = 0).await;
    let body = contact_body("+397777");
    let first = keyed(&app, Method::POST, "/contacts", "cross", Some(&body)).await;
    first.assert_status(200);
    let again = keyed(&sibling, Method::POST, "/contacts", "cross", Some(&body)).await;
    assert!(replayed(&again));
    assert_eq!(again.text, first.text);
    // And racing from both at once, still one contact.
    let other = contact_body("+397778");
    let (a, b) = tokio::join!(
        keyed(&app, Method::POST, "/contacts", "cross-race", Some(&other)),
        keyed(
            &sibling,
            Method::POST,
            "/contacts",
            "cross-race",
            Some(&other)
        ),
    );
    let ran = [&a, &b]
        .iter()
        .filter(|r| r.status == 200 && !replayed(r))
        .count();
    assert_eq!(ran, 1, "{} / {}", a.text, b.text);
    assert_eq!(count_contacts(&app).await, 2);
}

async fn expired_keys_are_new_again_and_purged(backend: Backend) {
    let app = fresh(backend).await;
    let body = contact_body("+398888");
    // A key sent 25 hours ago, answered then.
    let mut old = claim_for(&app, "old", "/contacts", &body).await;
    old.now = Timestamp::from_unix(old.now.unix() - 25 * 3600);
    old.expired_before = Timestamp::from_unix(old.now.unix() - 24 * 3600);
    assert_eq!(
        app.store.begin_idempotent(&old).await.expect("begin"),
        IdempotencyBegin::Started
    );
    let answer = StoredAnswer {
        status: 200,
        content_type: None,
        body: "{}".into(),
    };
    app.store
        .finish_idempotent(&old, &answer)
        .await
        .expect("finish");
    // Past 24 hours it means nothing: the request runs, even another one.
    let other = contact_body("+398889");
    let reply = keyed(&app, Method::POST, "/contacts", "old", Some(&other)).await;
    reply.assert_status(200);
    assert!(!replayed(&reply));
    // An expired key is deleted by the purge; a recent one is kept.
    let mut stale = claim_for(&app, "stale", "/contacts", &body).await;
    stale.now = Timestamp::from_unix(stale.now.unix() - 25 * 3600);
    app.store.begin_idempotent(&stale).await.expect("begin");
    let cutoff = Timestamp::from_unix(Timestamp::now().unix() - 24 * 3600);
    assert_eq!(
        app.store
            .purge_idempotency_keys(cutoff)
            .await
            .expect("purge"),
        1
    );
    let again = keyed(&app, Method::POST, "/contacts", "old", Some(&other)).await;
    assert!(replayed(&again), "the recent key was kept");
}

on_both_backends!(
    a_retried_create_answers_the_same_and_creates_once,
    the_same_key_with_another_request_is_422,
    patch_and_delete_replay_too,
    keys_belong_to_one_account,
    a_retry_while_the_first_runs_is_409_then_gets_its_answer,
    racing_retries_run_once,
    keys_work_across_processes,
    expired_keys_are_new_again_and_purged,
);
