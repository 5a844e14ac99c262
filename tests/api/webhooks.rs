//! Webhooks and the change feed (docs/webhooks.md), against a real HTTP
//! receiver on 127.0.0.1: subscribe and its refusals, every event and its
//! payload against the OpenAPI document, signatures, retries, a receiver
//! that hangs or is down, per-contact order, the outbox's all-or-nothing,
//! two processes on one database, and the feed resumed from every cursor.
//!
//! The worker is driven by `run_step` (deliveries off in the background)
//! except where the background loop itself is what is tested; waits are
//! for a condition, with a deadline, never for a fixed time.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use bellbook::Settings;
use bellbook::store::WebhookRecord;
use bellbook::webhooks::sign::verify;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::binary::{Server, admin};
use crate::conformance::check_schema;
use crate::fixtures::client;
use crate::helpers::{Backend, Caller, DEMO_API_KEY, TestApp, TestDatabase};
use crate::on_both_backends;

const ALL_EVENTS: [&str; 5] = [
    "contact_created",
    "contact_updated",
    "contact_deleted",
    "conversation_opened",
    "conversation_closed",
];

/// How a receiver answers a delivery.
#[derive(Debug, Clone, Copy)]
enum Answer {
    Status(u16),
    /// Answers 504 after this long (past the worker's timeout, say).
    Hang(Duration),
    /// Answers 200 after this long.
    Slow(Duration),
}

/// A delivery as the receiver got it.
#[derive(Debug, Clone)]
struct Received {
    headers: HeaderMap,
    body: String,
    /// What it answered.
    status: u16,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a delivery is JSON")
    }

    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_else(|| panic!("delivery without {name}"))
    }

    fn event(&self) -> String {
        self.json()["event"].as_str().expect("event").to_owned()
    }

    /// The event's number: the part of `X-Bellbook-Event-Id` after the
    /// account's uuid.
    fn seq(&self) -> i64 {
        let id = self.header("x-bellbook-event-id");
        id.rsplit_once('-')
            .and_then(|(_, seq)| seq.parse().ok())
            .unwrap_or_else(|| panic!("event id {id}"))
    }
}

#[derive(Default)]
struct ReceiverState {
    received: Mutex<Vec<Received>>,
    /// Answers to give, in order, before `otherwise`.
    script: Mutex<VecDeque<Answer>>,
    otherwise: Mutex<Option<Answer>>,
    /// Deliveries of each event id being answered right now.
    in_flight: Mutex<HashMap<String, usize>>,
    /// Times an event id was being delivered twice at once.
    overlaps: AtomicUsize,
    arrived: Notify,
}

/// An HTTP server on 127.0.0.1 that records every delivery.
#[derive(Clone)]
struct Receiver {
    state: Arc<ReceiverState>,
    url: String,
}

impl Receiver {
    async fn start() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        Receiver::serve(listener)
    }

    /// A receiver on `port`, where an earlier one was down.
    async fn start_on(port: u16) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("bind the port again");
        Receiver::serve(listener)
    }

    fn serve(listener: TcpListener) -> Receiver {
        let port = listener.local_addr().expect("address").port();
        let state = Arc::new(ReceiverState::default());
        let app = axum::Router::new()
            .route("/hook", axum::routing::post(receive))
            .with_state(state.clone());
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Receiver {
            state,
            url: format!("http://127.0.0.1:{port}/hook"),
        }
    }

    fn answer(&self, answers: &[Answer], otherwise: Answer) {
        *self.state.script.lock().expect("script") = answers.iter().copied().collect();
        *self.state.otherwise.lock().expect("otherwise") = Some(otherwise);
    }

    /// Deliveries being answered right now.
    fn in_flight(&self) -> usize {
        self.state
            .in_flight
            .lock()
            .expect("in flight")
            .values()
            .sum()
    }

    fn received(&self) -> Vec<Received> {
        self.state.received.lock().expect("received").clone()
    }

    /// The deliveries it answered with a 2xx.
    fn succeeded(&self) -> Vec<Received> {
        self.received()
            .into_iter()
            .filter(|r| (200..300).contains(&r.status))
            .collect()
    }

    /// Waits until `done` holds for what it received, up to 30 s.
    async fn wait_until(&self, what: &str, done: impl Fn(&[Received]) -> bool) {
        let waiting = async {
            loop {
                let arrived = self.state.arrived.notified();
                if done(&self.received()) {
                    return;
                }
                let _ = tokio::time::timeout(Duration::from_millis(200), arrived).await;
            }
        };
        if tokio::time::timeout(Duration::from_secs(30), waiting)
            .await
            .is_err()
        {
            panic!(
                "timed out waiting for {what}; received: {:?}",
                self.received()
                    .iter()
                    .map(|r| (r.event(), r.status))
                    .collect::<Vec<_>>()
            );
        }
    }
}

async fn receive(
    State(state): State<Arc<ReceiverState>>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let id = headers
        .get("x-bellbook-event-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    {
        let mut in_flight = state.in_flight.lock().expect("in flight");
        let count = in_flight.entry(id.clone()).or_default();
        *count += 1;
        if *count > 1 {
            state.overlaps.fetch_add(1, Ordering::SeqCst);
        }
    }
    let answer = state
        .script
        .lock()
        .expect("script")
        .pop_front()
        .or(*state.otherwise.lock().expect("otherwise"))
        .unwrap_or(Answer::Status(200));
    let status = match answer {
        Answer::Status(status) => status,
        Answer::Hang(wait) => {
            tokio::time::sleep(wait).await;
            504
        }
        Answer::Slow(wait) => {
            tokio::time::sleep(wait).await;
            200
        }
    };
    if let Some(count) = state.in_flight.lock().expect("in flight").get_mut(&id) {
        *count -= 1;
    }
    state.received.lock().expect("received").push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
    });
    state.arrived.notify_waiters();
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}

/// A demo server whose webhooks may reach 127.0.0.1, retrying at once, and
/// whose deliveries the test drives.
async fn spawn(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, driven).await
}

fn driven(settings: &mut Settings) {
    settings.demo = true;
    settings.deliver_webhooks = false;
    settings.webhooks.policy.allow_private = true;
    settings.webhooks.retry_base = Duration::ZERO;
}

/// Subscribes `app`'s account to `events` at `url`; answers the secret.
async fn subscribe(app: &TestApp, url: &str, events: &[&str]) -> String {
    let reply = app
        .post(
            "/webhooks/subscribe",
            json!({"url": url, "subscriptions": events}),
        )
        .await;
    reply.assert_status(200);
    reply.body["webhook"]["secret"]
        .as_str()
        .expect("secret")
        .to_owned()
}

/// Runs worker steps until one finds nothing to deliver.
async fn drain(app: &TestApp) -> usize {
    let mut attempts = 0;
    for _ in 0..100 {
        let made = app.webhooks.run_step().await.expect("step");
        if made == 0 {
            return attempts;
        }
        attempts += made;
    }
    panic!("deliveries never ran out");
}

async fn create(app: &TestApp, number: &str) -> String {
    let contact = app
        .create_contact(json!({"source": "whatsapp", "identifier": number, "name": "Hooked"}))
        .await;
    contact["uuid"].as_str().expect("uuid").to_owned()
}

/// The whole change feed, walked `limit` at a time; with every cursor it
/// gave.
async fn walk_feed(app: &TestApp, limit: u32) -> (Vec<Value>, Vec<String>) {
    let mut events = Vec::new();
    let mut cursors = vec![String::new()];
    loop {
        let after = cursors.last().cloned().unwrap_or_default();
        let reply = app
            .get(&format!("/events?after={after}&limit={limit}"))
            .await;
        reply.assert_status(200);
        let page = reply.body["events"].as_array().expect("events").clone();
        if page.is_empty() {
            assert_eq!(
                reply.body["cursor"],
                after.as_str().parse::<i64>().unwrap_or(0).to_string()
            );
            return (events, cursors);
        }
        events.extend(page);
        cursors.push(reply.body["cursor"].as_str().expect("cursor").to_owned());
    }
}

async fn subscribe_checks_what_it_is_given(backend: Backend) {
    // The default policy: no internal addresses.
    let app = TestApp::spawn_with(backend, |s| s.demo = true).await;
    let reply = app.post("/webhooks/subscribe", json!({})).await;
    reply.assert_error(422, "required");
    assert_eq!(reply.error_fields(), ["url", "subscriptions"]);
    for url in [
        "ftp://hooks.example.com/",
        "http://127.0.0.1:9/hook",
        "http://10.0.0.7/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://[::1]/hook",
        // A name that resolves to loopback.
        "http://localhost:9/hook",
    ] {
        let reply = app
            .post(
                "/webhooks/subscribe",
                json!({"url": url, "subscriptions": ["contact_created"]}),
            )
            .await;
        reply.assert_error(422, "invalid_url");
        assert_eq!(reply.error_fields(), ["url"], "{url}");
    }
    let reply = app
        .post(
            "/webhooks/subscribe",
            json!({"url": "https://93.184.216.34/hook", "subscriptions": ["contact_created", "contact_exploded"]}),
        )
        .await;
    reply.assert_error(422, "unknown_event");
    assert_eq!(reply.error_fields(), ["subscriptions[1]"]);
    // Nothing was subscribed by the refusals.
    app.delete("/webhooks/unsubscribe")
        .await
        .assert_error(404, "not_found");

    let reply = app
        .post(
            "/webhooks/subscribe",
            json!({"url": "https://93.184.216.34/hook", "subscriptions": ["contact_created"]}),
        )
        .await;
    reply.assert_status(200);
    let webhook = &reply.body["webhook"];
    assert_eq!(webhook["url"], "https://93.184.216.34/hook");
    assert_eq!(webhook["subscriptions"], json!(["contact_created"]));
    assert_eq!(webhook["enabled"], true);
    let first = webhook["secret"].as_str().expect("secret").to_owned();
    assert!(first.starts_with("whsec_"), "{first}");
    // Subscribing again replaces it, with a new secret.
    let second = subscribe(&app, "https://93.184.216.34/other", &ALL_EVENTS).await;
    assert_ne!(first, second);
    let stored = app
        .store
        .webhook(account_of(&app).await)
        .await
        .expect("read")
        .expect("webhook");
    assert_eq!(stored.url, "https://93.184.216.34/other");
    assert_eq!(stored.subscriptions.len(), 5);

    let reply = app.delete("/webhooks/unsubscribe").await;
    reply.assert_status(200);
    assert_eq!(reply.body, json!({"status": "webhook was destroyed"}));
    app.delete("/webhooks/unsubscribe")
        .await
        .assert_error(404, "not_found");
}

async fn account_of(app: &TestApp) -> bellbook::store::AccountId {
    bellbook::auth::authenticate(app.store.as_ref(), &app.key)
        .await
        .expect("key check")
        .expect("a valid key")
        .account
}

async fn every_event_is_delivered_signed_and_in_order(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    let secret = subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    let uuid = create(&app, "+39 333 000 0001").await;
    app.patch(
        &format!("/contacts/{uuid}"),
        json!({"tags": ["hot"], "custom_fields": {"zipCode": "20100"}}),
    )
    .await
    .assert_status(200);
    app.post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    // Closing a closed conversation changes nothing: no event.
    app.post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    app.post(&format!("/contacts/{uuid}/conversation/open"), json!({}))
        .await
        .assert_status(200);
    app.post(
        &format!("/contacts/{uuid}/conversation/note"),
        json!({"text": "called back"}),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("/contacts/{uuid}/bot"),
        json!({"status": "bot_start"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/contacts/{uuid}"))
        .await
        .assert_status(200);
    assert_eq!(drain(&app).await, 7);

    let received = receiver.received();
    let events: Vec<String> = received.iter().map(Received::event).collect();
    assert_eq!(
        events,
        [
            "contact_created",
            "contact_updated",
            "conversation_closed",
            "conversation_opened",
            "contact_updated",
            "contact_updated",
            "contact_deleted"
        ]
    );
    let now = bellbook::domain::Timestamp::now().unix();
    let mut seqs = Vec::new();
    for delivery in &received {
        let body = delivery.json();
        assert_eq!(delivery.header("x-bellbook-event"), body["event"]);
        assert_eq!(delivery.header("content-type"), "application/json");
        let signature = delivery.header("x-bellbook-signature");
        assert!(
            verify(&secret, signature, delivery.body.as_bytes(), now, 300),
            "signature {signature} must verify"
        );
        assert!(!verify(
            "whsec_wrong",
            signature,
            delivery.body.as_bytes(),
            now,
            300
        ));
        seqs.push(delivery.seq());
        let payload = &body["payload"];
        match body["event"].as_str() {
            Some("contact_created" | "contact_updated") => {
                check_schema("ContactView", payload);
                assert_eq!(payload["uuid"], uuid.as_str());
            }
            Some("contact_deleted") => {
                check_schema("DeletedPayload", payload);
                assert_eq!(payload, &json!({"uuid": uuid, "deleted": true}));
            }
            _ => {
                check_schema("ConversationPayload", payload);
                assert_eq!(payload["contact"]["uuid"], uuid.as_str());
                assert_eq!(payload["href"], payload["contact"]["conversationHref"]);
                assert_eq!(payload["closingReason"], Value::Null);
            }
        }
    }
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let second = &received[1].json()["payload"];
    assert_eq!(second["tags"], json!(["hot"]));
    assert_eq!(second["customFields"]["zipCode"], "20100");
    assert!(received[2].json()["payload"]["closedAt"].is_string());
    assert_eq!(received[3].json()["payload"]["closedAt"], Value::Null);

    // The log: every attempt, newest first, with the answer.
    let reply = app.get("/webhooks/events").await;
    reply.assert_status(200);
    let log = reply.body["webhook_events"].as_array().expect("log");
    assert_eq!(log.len(), 7);
    assert_eq!(log[0]["event"], "contact_deleted");
    assert_eq!(log[6]["event"], "contact_created");
    assert!(
        log.iter()
            .all(|e| e["success"] == true && e["response"]["code"] == 200)
    );
    assert_eq!(reply.body["meta"], json!({"page": 1, "pages": 1}));
    let reply = app
        .get("/webhooks/events?subscriptions=contact_updated&items=1&page=2")
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["meta"], json!({"page": 2, "pages": 3}));
    assert_eq!(reply.body["webhook_events"][0]["event"], "contact_updated");
    assert_eq!(
        reply.body["webhook_events"][0]["payload"]["tags"],
        json!(["hot"])
    );
    app.get("/webhooks/events?status=maybe")
        .await
        .assert_error(400, "invalid_query");
    app.get("/webhooks/events?items=101")
        .await
        .assert_error(400, "invalid_query");
}

async fn only_subscribed_events_are_delivered_and_every_one_is_in_the_feed(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    // Before any webhook: the feed has it, nothing is delivered.
    let early = create(&app, "+39 333 000 0002").await;
    subscribe(&app, &receiver.url, &["contact_deleted"]).await;
    let late = create(&app, "+39 333 000 0003").await;
    app.delete(&format!("/contacts/{late}"))
        .await
        .assert_status(200);
    drain(&app).await;
    let received = receiver.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].json()["payload"]["uuid"], late.as_str());
    let (feed, _) = walk_feed(&app, 100).await;
    let names: Vec<&str> = feed
        .iter()
        .map(|e| e["event"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(
        names,
        ["contact_created", "contact_created", "contact_deleted"]
    );
    assert_eq!(feed[0]["payload"]["uuid"], early.as_str());
}

async fn a_failing_receiver_is_retried_and_the_contacts_next_event_waits(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    receiver.answer(&[Answer::Status(500); 5], Answer::Status(200));
    let uuid = create(&app, "+39 333 000 0004").await;
    app.patch(&format!("/contacts/{uuid}"), json!({"name": "Renamed"}))
        .await
        .assert_status(200);
    drain(&app).await;
    let got: Vec<(String, u16)> = receiver
        .received()
        .iter()
        .map(|r| (r.event(), r.status))
        .collect();
    let mut expected = vec![("contact_created".to_owned(), 500); 5];
    expected.push(("contact_created".to_owned(), 200));
    expected.push(("contact_updated".to_owned(), 200));
    assert_eq!(got, expected, "the update waits for the create to succeed");
    // Each attempt is recorded.
    let failed = app.get("/webhooks/events?status=failed").await;
    failed.assert_status(200);
    let failed = failed.body["webhook_events"]
        .as_array()
        .expect("log")
        .clone();
    assert_eq!(failed.len(), 5);
    assert!(
        failed
            .iter()
            .all(|e| e["response"]["code"] == 500 && e["success"] == false)
    );
    let succeeded = app.get("/webhooks/events?status=success").await;
    assert_eq!(
        succeeded.body["webhook_events"].as_array().map(Vec::len),
        Some(2)
    );
    // The same event id on every attempt.
    let ids: Vec<String> = receiver.received()[..6]
        .iter()
        .map(|r| r.header("x-bellbook-event-id").to_owned())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "{ids:?}");
}

async fn a_delivery_retried_past_its_window_is_failed_for_good(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        driven(s);
        s.webhooks.retry_for = Duration::ZERO;
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    receiver.answer(&[], Answer::Status(503));
    create(&app, "+39 333 000 0005").await;
    assert_eq!(drain(&app).await, 1, "one attempt, then given up");
    let backlog = app.store.webhook_backlog().await.expect("backlog");
    assert!(backlog.is_empty(), "nothing pending: {backlog:?}");
    let log = app.get("/webhooks/events?status=failed").await;
    assert_eq!(log.body["webhook_events"][0]["response"]["code"], 503);
}

async fn a_hanging_receiver_times_out_and_one_that_was_down_gets_it_later(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        driven(s);
        s.webhooks.timeout = Duration::from_millis(300);
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    receiver.answer(&[Answer::Hang(Duration::from_secs(5))], Answer::Status(200));
    create(&app, "+39 333 000 0006").await;
    assert_eq!(app.webhooks.run_step().await.expect("step"), 1);
    let log = app.get("/webhooks/events").await;
    let attempt = &log.body["webhook_events"][0];
    assert_eq!(attempt["success"], false);
    assert_eq!(attempt["response"]["code"], Value::Null);
    assert!(
        attempt["response"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("timed out")),
        "{attempt}"
    );
    drain(&app).await;
    assert_eq!(
        app.get("/webhooks/events?status=success").await.body["webhook_events"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    // A receiver that is down: refused, then it comes back on its port.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("address").port()
    };
    subscribe(&app, &format!("http://127.0.0.1:{port}/hook"), &ALL_EVENTS).await;
    create(&app, "+39 333 000 0007").await;
    assert_eq!(app.webhooks.run_step().await.expect("step"), 1);
    let log = app.get("/webhooks/events?status=failed").await;
    assert!(
        log.body["webhook_events"][0]["response"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("could not connect")),
        "{}",
        log.text
    );
    let back = Receiver::start_on(port).await;
    drain(&app).await;
    assert_eq!(back.succeeded().len(), 1);
}

async fn a_name_that_resolves_to_loopback_is_refused_at_delivery(backend: Backend) {
    // The default policy; the webhook is stored directly, as if the name
    // had resolved to a public address when it was subscribed.
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.deliver_webhooks = false;
        s.webhooks.retry_for = Duration::ZERO;
    })
    .await;
    let receiver = Receiver::start().await;
    let port = receiver
        .url
        .rsplit_once(':')
        .and_then(|(_, rest)| rest.split_once('/'))
        .map(|(port, _)| port.to_owned())
        .expect("port");
    let account = account_of(&app).await;
    for (i, url) in [
        format!("http://localhost:{port}/hook"),
        receiver.url.clone(),
    ]
    .into_iter()
    .enumerate()
    {
        app.store
            .subscribe(
                account,
                &WebhookRecord {
                    url,
                    subscriptions: vec![bellbook::domain::EventName::ContactCreated],
                    secret: "whsec_test".to_owned(),
                    created_at: bellbook::domain::Timestamp::now(),
                },
            )
            .await
            .expect("stored");
        create(&app, &format!("+39 333 700 000{i}")).await;
        assert_eq!(drain(&app).await, 1);
    }
    assert!(receiver.received().is_empty(), "nothing reached 127.0.0.1");
    let log = app.get("/webhooks/events?status=failed").await;
    let attempts = log.body["webhook_events"].as_array().expect("log");
    assert_eq!(attempts.len(), 2);
    assert!(
        attempts.iter().all(|a| a["response"]["body"]
            .as_str()
            .is_some_and(|b| b.contains("internal address"))),
        "{}",
        log.text
    );
}

async fn a_request_that_fails_has_no_event(backend: Backend) {
    let app = spawn(backend).await;
    create(&app, "+39 333 000 0008").await;
    // A duplicate, and a PATCH naming a tag that does not exist: refused.
    app.post(
        "/contacts",
        json!({"source": "whatsapp", "identifier": "+39 333 000 0008", "name": "Again"}),
    )
    .await
    .assert_status(409);
    // Concurrent creates, some duplicates, share group commits: only those
    // that succeeded have events.
    let mut writes = Vec::new();
    for i in 0..40 {
        let number = format!("+39 333 100 {:04}", i % 25);
        let caller = app.as_key(&app.key);
        writes.push(tokio::spawn(async move {
            caller
                .post(
                    "/contacts",
                    json!({"source": "whatsapp", "identifier": number, "name": "Racer"}),
                )
                .await
                .status
        }));
    }
    let mut created = 0;
    for write in writes {
        if write.await.expect("write") == 200 {
            created += 1;
        }
    }
    assert_eq!(created, 25);
    let (feed, _) = walk_feed(&app, 1000).await;
    assert_eq!(feed.len(), 26);
    assert!(feed.iter().all(|e| e["event"] == "contact_created"));
}

async fn a_contacts_events_are_delivered_in_commit_order(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        driven(s);
        s.deliver_webhooks = true;
        s.webhooks.poll = Duration::from_millis(50);
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &["contact_updated"]).await;
    // Some failures on the way, so retries are in the mix.
    receiver.answer(
        &[
            Answer::Status(500),
            Answer::Status(502),
            Answer::Status(500),
        ],
        Answer::Status(200),
    );
    let contacts = [
        create(&app, "+39 333 200 0001").await,
        create(&app, "+39 333 200 0002").await,
    ];
    let mut writes = Vec::new();
    for i in 0..30 {
        let caller = app.as_key(&app.key);
        let uuid = contacts[i % 2].clone();
        writes.push(tokio::spawn(async move {
            caller
                .patch(
                    &format!("/contacts/{uuid}"),
                    json!({"name": format!("Name {i}")}),
                )
                .await
                .status
        }));
    }
    for write in writes {
        assert_eq!(write.await.expect("write"), 200);
    }
    receiver
        .wait_until("30 successful deliveries", |r| {
            r.iter().filter(|r| r.status == 200).count() == 30
        })
        .await;
    let (feed, _) = walk_feed(&app, 1000).await;
    for uuid in &contacts {
        let committed: Vec<i64> = feed
            .iter()
            .filter(|e| e["event"] == "contact_updated" && e["payload"]["uuid"] == uuid.as_str())
            .map(|e| e["id"].as_str().and_then(|id| id.parse().ok()).expect("id"))
            .collect();
        let delivered: Vec<i64> = receiver
            .succeeded()
            .iter()
            .filter(|r| r.json()["payload"]["uuid"] == uuid.as_str())
            .map(Received::seq)
            .collect();
        assert_eq!(
            delivered, committed,
            "contact {uuid}: delivered in commit order"
        );
        // The name each delivery carries is the one its commit wrote.
        let names: Vec<Value> = receiver
            .succeeded()
            .iter()
            .filter(|r| r.json()["payload"]["uuid"] == uuid.as_str())
            .map(|r| r.json()["payload"]["name"].clone())
            .collect();
        let feed_names: Vec<Value> = feed
            .iter()
            .filter(|e| e["event"] == "contact_updated" && e["payload"]["uuid"] == uuid.as_str())
            .map(|e| e["payload"]["name"].clone())
            .collect();
        assert_eq!(names, feed_names);
    }
    app.stop().await;
}

async fn one_accounts_hanging_receiver_does_not_hold_back_another(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        driven(s);
        s.deliver_webhooks = true;
        s.webhooks.poll = Duration::from_millis(50);
        s.webhooks.timeout = Duration::from_secs(20);
    })
    .await;
    let slow = Receiver::start().await;
    slow.answer(&[], Answer::Hang(Duration::from_secs(15)));
    subscribe(&app, &slow.url, &ALL_EVENTS).await;
    for i in 0..20 {
        create(&app, &format!("+39 333 300 {i:04}")).await;
    }
    let other = app.as_key(&app.create_account("other").await);
    let fast = Receiver::start().await;
    other
        .post(
            "/webhooks/subscribe",
            json!({"url": fast.url, "subscriptions": ["contact_created"]}),
        )
        .await
        .assert_status(200);
    other
        .post(
            "/contacts",
            json!({"source": "whatsapp", "identifier": "+39 333 399 0000", "name": "Fast"}),
        )
        .await
        .assert_status(200);
    // Well before the slow receiver answers anything.
    fast.wait_until("the other account's delivery", |r| r.len() == 1)
        .await;
    assert!(slow.received().is_empty());
    // And the API did not wait for either.
    app.get("/contacts").await.assert_status(200);
}

async fn the_feed_resumes_from_every_cursor_and_waits_for_news(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..7 {
        create(&app, &format!("+39 333 400 {i:04}")).await;
    }
    let (all, _) = walk_feed(&app, 1000).await;
    assert_eq!(all.len(), 7);
    let (walked, cursors) = walk_feed(&app, 3).await;
    assert_eq!(walked, all);
    // From every cursor of the walk: exactly what follows it.
    for (i, cursor) in cursors.iter().enumerate() {
        let reply = app.get(&format!("/events?after={cursor}&limit=1000")).await;
        let rest = reply.body["events"].as_array().expect("events");
        let skip = (i * 3).min(all.len());
        assert_eq!(rest[..], all[skip..], "after cursor {cursor:?}");
    }
    let last = cursors.last().cloned().unwrap_or_default();
    // Nothing new: answers empty, after the wait.
    let reply = app.get(&format!("/events?after={last}&wait=1")).await;
    reply.assert_status(200);
    assert_eq!(reply.body["events"], json!([]));
    assert_eq!(reply.body["cursor"], last.as_str());
    // Something new while waiting: answered with it.
    let waiting = {
        let caller = app.as_key(&app.key);
        let last = last.clone();
        tokio::spawn(async move { caller.get(&format!("/events?after={last}&wait=30")).await })
    };
    create(&app, "+39 333 400 9999").await;
    let reply = waiting.await.expect("waiting request");
    assert_eq!(reply.body["events"].as_array().map(Vec::len), Some(1));
    app.get("/events?after=banana")
        .await
        .assert_error(400, "invalid_cursor");
    app.get("/events?limit=0")
        .await
        .assert_error(400, "invalid_query");
    app.get("/events?wait=61")
        .await
        .assert_error(400, "invalid_query");
    // Another account sees none of it.
    let other = app.as_key(&app.create_account("other").await);
    let reply = other.get("/events").await;
    assert_eq!(reply.body["events"], json!([]));
    assert_eq!(
        other.get("/webhooks/events").await.body["webhook_events"],
        json!([])
    );
}

async fn pending_deliveries_survive_a_restart(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    for i in 0..5 {
        create(&app, &format!("+39 333 500 {i:04}")).await;
    }
    // A server started later on the same database (as after a restart)
    // delivers what the first one left pending.
    let next = app.sibling(driven).await;
    let backlog = next.store.webhook_backlog().await.expect("backlog");
    assert_eq!(backlog.len(), 1);
    assert_eq!(backlog[0].pending, 5);
    assert_eq!(drain(&next).await, 5);
    assert_eq!(receiver.succeeded().len(), 5);
    next.stop().await;
}

async fn two_processes_never_deliver_one_event_at_once(backend: Backend) {
    let first = spawn(backend).await;
    let second = first.sibling(driven).await;
    let receiver = Receiver::start().await;
    receiver.answer(&[], Answer::Slow(Duration::from_millis(20)));
    subscribe(&first, &receiver.url, &ALL_EVENTS).await;
    for i in 0..40 {
        create(&first, &format!("+39 333 600 {i:04}")).await;
    }
    let (a, b) = tokio::join!(drain(&first), drain(&second));
    assert_eq!(a + b, 40, "each event delivered once: {a} + {b}");
    assert_eq!(receiver.state.overlaps.load(Ordering::SeqCst), 0);
    let mut ids: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.header("x-bellbook-event-id").to_owned())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 40);
}

async fn deliveries_in_flight_at_kill_9_are_made_after_the_next_start(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let receiver = Receiver::start().await;
    // Holds every delivery until after the kill.
    receiver.answer(&[], Answer::Hang(Duration::from_secs(120)));
    let flags = [
        "--demo",
        "--rate-limit-rps",
        "0",
        "--allow-private-webhooks",
        "--webhook-timeout-secs",
        "1",
    ];
    let mut server = Server::start(&url, &flags);
    let caller = Caller::new(client(), &server.base, DEMO_API_KEY);
    caller
        .post(
            "/webhooks/subscribe",
            json!({"url": receiver.url, "subscriptions": ["contact_created"]}),
        )
        .await
        .assert_status(200);
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let reply = caller
            .post("/contacts", json!({"source": "whatsapp", "identifier": format!("+39 333 800 {i:04}"), "name": "Killed"}))
            .await;
        reply.assert_status(200);
        acknowledged.push(reply.contact()["uuid"].as_str().expect("uuid").to_owned());
    }
    let waiting = async {
        while receiver.in_flight() == 0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    tokio::time::timeout(Duration::from_secs(30), waiting)
        .await
        .expect("deliveries under way");
    assert!(!server.kill_9().success());
    drop(server);
    receiver.answer(&[], Answer::Status(200));
    let server = Server::start(&url, &flags);
    receiver
        .wait_until(
            "a successful delivery of every acknowledged create",
            |received| {
                acknowledged.iter().all(|uuid| {
                    received
                        .iter()
                        .any(|r| r.status == 200 && r.json()["payload"]["uuid"] == uuid.as_str())
                })
            },
        )
        .await;
    let restarted = Caller::new(client(), &server.base, DEMO_API_KEY);
    let feed = restarted.get("/events?limit=1000").await;
    assert_eq!(feed.body["events"].as_array().map(Vec::len), Some(20));
}

async fn import_records_events_only_when_asked(backend: Backend) {
    let app = spawn(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("contacts.ndjson");
    let lines: Vec<String> = (0..3)
        .map(|i| json!({"source": "whatsapp", "identifier": format!("+39 333 900 {i:04}"), "name": "Imported"}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    let path = file.to_str().expect("path");
    admin(&["import", path, "--account", "demo"], &app.database_url);
    assert_eq!(app.get("/events").await.body["events"], json!([]));
    // Run again with other contacts, with events this time.
    let lines: Vec<String> = (3..5)
        .map(|i| json!({"source": "whatsapp", "identifier": format!("+39 333 900 {i:04}"), "name": "Imported"}).to_string())
        .collect();
    std::fs::write(&file, lines.join("\n")).expect("write");
    admin(
        &[
            "import",
            path,
            "--emit-events",
            "--public-url",
            "https://book.example.com",
        ],
        &app.database_url,
    );
    let feed = app.get("/events").await;
    let events = feed.body["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    for event in events {
        assert_eq!(event["event"], "contact_created");
        check_schema("ContactView", &event["payload"]);
        assert!(
            event["payload"]["href"]
                .as_str()
                .is_some_and(|h| h.starts_with("https://book.example.com/contacts/")),
            "{event}"
        );
    }
}

async fn webhooks_status_shows_the_backlog(backend: Backend) {
    let app = spawn(backend).await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    assert!(admin(&["webhooks", "status"], &app.database_url).contains("no deliveries pending"));
    receiver.answer(&[], Answer::Status(500));
    create(&app, "+39 333 910 0001").await;
    create(&app, "+39 333 910 0002").await;
    // One attempt each; both fail and stay pending.
    app.webhooks.run_step().await.expect("step");
    let status = admin(&["webhooks", "status"], &app.database_url);
    let row = status
        .lines()
        .find(|l| l.starts_with("demo"))
        .unwrap_or_else(|| panic!("{status}"));
    let columns: Vec<&str> = row.split('\t').collect();
    assert_eq!(columns[1..3], ["2", "2"], "{status}");
}

async fn old_events_are_purged_unless_a_delivery_is_pending(backend: Backend) {
    let app = spawn(backend).await;
    for i in 0..3 {
        create(&app, &format!("+39 333 920 {i:04}")).await;
    }
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    receiver.answer(&[], Answer::Status(500));
    let pending = create(&app, "+39 333 920 9999").await;
    app.webhooks.run_step().await.expect("step");
    // Everything is "old" against a cutoff in the future.
    let later =
        bellbook::domain::Timestamp::from_unix(bellbook::domain::Timestamp::now().unix() + 60);
    assert_eq!(app.store.purge_events(later).await.expect("purge"), 3);
    let (feed, _) = walk_feed(&app, 100).await;
    assert_eq!(feed.len(), 1, "the pending one stays");
    assert_eq!(feed[0]["payload"]["uuid"], pending.as_str());
    assert_eq!(feed[0]["id"], "4");
    // Delivered, it goes too, with its attempts.
    receiver.answer(&[], Answer::Status(200));
    drain(&app).await;
    assert_eq!(app.store.purge_events(later).await.expect("purge"), 1);
    assert_eq!(app.get("/events").await.body["events"], json!([]));
    assert_eq!(
        app.get("/webhooks/events").await.body["webhook_events"],
        json!([])
    );
    // Numbering goes on after the purged ones.
    create(&app, "+39 333 920 8888").await;
    assert_eq!(app.get("/events").await.body["events"][0]["id"], "5");
}

async fn a_success_releases_the_accounts_backlog_from_its_backoff(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        driven(s);
        s.webhooks.retry_base = Duration::from_secs(3600);
    })
    .await;
    let receiver = Receiver::start().await;
    subscribe(&app, &receiver.url, &ALL_EVENTS).await;
    receiver.answer(&[], Answer::Status(503));
    create(&app, "+39 333 930 0001").await;
    create(&app, "+39 333 930 0002").await;
    assert_eq!(
        drain(&app).await,
        2,
        "each failed once, and now waits an hour or so"
    );
    receiver.answer(&[], Answer::Status(200));
    create(&app, "+39 333 930 0003").await;
    assert_eq!(drain(&app).await, 3, "the new one, then the two released");
    assert_eq!(receiver.succeeded().len(), 3);
    assert!(
        app.store
            .webhook_backlog()
            .await
            .expect("backlog")
            .is_empty()
    );
}

on_both_backends!(
    a_success_releases_the_accounts_backlog_from_its_backoff,
    old_events_are_purged_unless_a_delivery_is_pending,
    deliveries_in_flight_at_kill_9_are_made_after_the_next_start,
    import_records_events_only_when_asked,
    webhooks_status_shows_the_backlog,
    subscribe_checks_what_it_is_given,
    every_event_is_delivered_signed_and_in_order,
    only_subscribed_events_are_delivered_and_every_one_is_in_the_feed,
    a_failing_receiver_is_retried_and_the_contacts_next_event_waits,
    a_delivery_retried_past_its_window_is_failed_for_good,
    a_hanging_receiver_times_out_and_one_that_was_down_gets_it_later,
    a_name_that_resolves_to_loopback_is_refused_at_delivery,
    a_request_that_fails_has_no_event,
    a_contacts_events_are_delivered_in_commit_order,
    one_accounts_hanging_receiver_does_not_hold_back_another,
    the_feed_resumes_from_every_cursor_and_waits_for_news,
    pending_deliveries_survive_a_restart,
    two_processes_never_deliver_one_event_at_once,
);
