//! Many `serve` processes on one database: what one does, the others see
//! at once; cursors and keys work across them; with Redis they share one
//! rate limit.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{Server, admin, only_line};
use crate::fixtures::client;
use crate::helpers::{Backend, Caller, Reply, TestApp, TestDatabase, redis_url, send, uuids};
use crate::on_both_backends;

/// One HTTP call to a server by its base URL.
async fn call(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Reply {
    let mut request = client
        .request(method, format!("{base}{path}"))
        .bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    send(request).await
}

async fn three_processes_share_one_database(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    // Behind one load balancer, every process names the same public URL.
    let flags = [
        "--rate-limit-rps",
        "0",
        "--public-url",
        "https://contacts.example.com",
    ];
    let first = Server::start(&url, &flags);
    let key = first
        .first_run_key()
        .expect("the first process creates the account");
    let second = Server::start(&url, &flags);
    let third = Server::start(&url, &flags);
    assert_eq!(second.first_run_key(), None);
    assert_eq!(third.first_run_key(), None);
    let servers = [&first, &second, &third];
    let client = client();
    let on = |n: usize, method: Method, path: &str, body: Option<Value>| {
        let url = format!("{}{path}", servers[n].base);
        let mut request = client.request(method, url).bearer_auth(&key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        send(request)
    };

    // Created through one, read, changed and deleted through the others.
    let created = on(
        0,
        Method::POST,
        "/contacts",
        Some(json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Ann"})),
    )
    .await;
    created.assert_status(200);
    let uuid = created.contact()["uuid"].as_str().expect("uuid").to_owned();
    for n in [1, 2] {
        let read = on(n, Method::GET, &format!("/contacts/{uuid}"), None).await;
        assert_eq!(read.contact(), created.contact());
    }
    on(
        1,
        Method::PATCH,
        &format!("/contacts/{uuid}"),
        Some(json!({"name": "Ann B", "note": "called"})),
    )
    .await
    .assert_status(200);
    let read = on(2, Method::GET, &format!("/contacts/{uuid}"), None).await;
    assert_eq!(read.contact()["name"], "Ann B");
    assert_eq!(read.contact()["note"], "called");

    // Settings changed through one are enforced by the others at once.
    on(2, Method::POST, "/tags", Some(json!({"name": "VIP"})))
        .await
        .assert_status(200);
    let tagged = on(
        0,
        Method::POST,
        "/contacts",
        Some(json!({"identifier": "2", "source": "whatsapp", "name": "Bo", "tags": ["vip"]})),
    )
    .await;
    tagged.assert_status(200);
    assert_eq!(tagged.contact()["tags"], json!(["VIP"]));
    on(1, Method::DELETE, "/tags/vip", None)
        .await
        .assert_status(200);
    on(
        2,
        Method::POST,
        "/contacts",
        Some(json!({"identifier": "3", "source": "whatsapp", "name": "Cy", "tags": ["vip"]})),
    )
    .await
    .assert_error(422, "unknown_tag");
    let untagged = on(
        0,
        Method::GET,
        &format!(
            "/contacts/{}",
            tagged.contact()["uuid"].as_str().expect("uuid")
        ),
        None,
    )
    .await;
    assert_eq!(untagged.contact()["tags"], json!([]));

    // A cursor issued by one process is accepted by the others.
    for n in 0..25 {
        on(n % 3, Method::POST, "/contacts", Some(json!({"identifier": format!("1000{n}"), "source": "whatsapp", "name": format!("Walker {n}")})))
            .await
            .assert_status(200);
    }
    let mut seen = Vec::new();
    let mut page = on(0, Method::GET, "/contacts", None).await;
    let mut hop = 1;
    loop {
        page.assert_status(200);
        for contact in page.body["contacts"].as_array().expect("contacts") {
            seen.push(contact["uuid"].as_str().expect("uuid").to_owned());
        }
        let Some(next) = page.body["meta"]["next"].as_str() else {
            break;
        };
        page = on(
            hop % 3,
            Method::GET,
            &format!("/contacts?after={next}"),
            None,
        )
        .await;
        hop += 1;
    }
    assert_eq!(seen.len(), 27, "every contact once: {seen:?}");
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 27, "no contact twice");
    assert!(hop >= 2, "the walk crossed processes");

    // Deleted through one, gone for all; its number is free again.
    on(2, Method::DELETE, &format!("/contacts/{uuid}"), None)
        .await
        .assert_status(200);
    for n in [0, 1] {
        on(n, Method::GET, &format!("/contacts/{uuid}"), None)
            .await
            .assert_error(404, "not_found");
    }
    on(
        1,
        Method::POST,
        "/contacts",
        Some(json!({"identifier": "15550100", "source": "whatsapp", "name": "Ann again"})),
    )
    .await
    .assert_status(200);

    // A key revoked beside them stops working on every process at once.
    let account = only_line(&admin(&["accounts", "create", "second"], &url));
    let second_key = account;
    for server in servers {
        call(
            &client,
            &server.base,
            &second_key,
            Method::GET,
            "/auth/me",
            None,
        )
        .await
        .assert_status(200);
    }
    admin(
        &["keys", "revoke", &second_key[..12], "--account", "second"],
        &url,
    );
    for server in servers {
        call(
            &client,
            &server.base,
            &second_key,
            Method::GET,
            "/auth/me",
            None,
        )
        .await
        .assert_error(401, "unauthorized");
    }
}

/// With a budget of one request a second, a second request made within
/// the same second must be refused wherever it goes if the budget is
/// shared. A fresh account gives every attempt a full bucket; an attempt
/// that took a second or more proves nothing either way and is repeated.
async fn second_request_within_a_second<F, Fut>(bases: [&str; 2], new_key: F) -> (Reply, Reply)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = String>,
{
    let client = client();
    for attempt in 0..20 {
        let key = new_key(attempt).await;
        let started = Instant::now();
        let first = call(&client, bases[0], &key, Method::GET, "/auth/me", None).await;
        let second = call(&client, bases[1], &key, Method::GET, "/auth/me", None).await;
        if started.elapsed() < Duration::from_millis(900) {
            return (first, second);
        }
    }
    panic!("no pair of requests completed within a second in 20 attempts");
}

async fn redis_shares_the_rate_limit_between_servers(backend: Backend) {
    let redis = redis_url();
    let one = TestApp::spawn_with(backend, |s| {
        s.rate_limit_rps = 1;
        s.redis_url = Some(redis.clone());
    })
    .await;
    let two = one
        .sibling(|s| {
            s.rate_limit_rps = 1;
            s.redis_url = Some(redis.clone());
        })
        .await;
    let app = &one;
    let (first, second) = second_request_within_a_second([&one.base, &two.base], |n| async move {
        app.create_account(&format!("shared{n}")).await
    })
    .await;
    first.assert_status(200);
    assert_eq!(first.header("x-ratelimit-remaining"), Some("0"));
    second.assert_error(429, "rate_limited");
    assert!(second.header("retry-after").is_some());
}

async fn without_redis_each_server_limits_alone(backend: Backend) {
    let one = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 1).await;
    let two = one.sibling(|s| s.rate_limit_rps = 1).await;
    let app = &one;
    let (first, second) = second_request_within_a_second([&one.base, &two.base], |n| async move {
        app.create_account(&format!("alone{n}")).await
    })
    .await;
    first.assert_status(200);
    // The other server's bucket for this account is still full.
    second.assert_status(200);
    // Its own second request within the second is refused.
    let (_, again) = second_request_within_a_second([&one.base, &one.base], |n| async move {
        app.create_account(&format!("again{n}")).await
    })
    .await;
    again.assert_error(429, "rate_limited");
}

async fn redis_shares_the_limit_between_processes(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let redis = redis_url();
    let flags = ["--rate-limit-rps", "1", "--redis-url", redis.as_str()];
    let one = Server::start(&url, &flags);
    let two = Server::start(&url, &flags);
    let (first, second) = second_request_within_a_second([&one.base, &two.base], |n| {
        let url = url.clone();
        async move { only_line(&admin(&["accounts", "create", &format!("p{n}")], &url)) }
    })
    .await;
    first.assert_status(200);
    second.assert_error(429, "rate_limited");
}

async fn an_unreachable_redis_stops_start_up(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let mut settings = bellbook::Settings::new(url);
    settings.redis_url = Some("redis://127.0.0.1:1".to_owned());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let error = bellbook::App::build(settings, listener)
        .await
        .err()
        .expect("start-up fails");
    assert!(matches!(error, bellbook::StartError::Redis(_)), "{error}");
}

/// Where a numbered page begins is remembered by each process for the
/// version of the listing it read (docs/storage.md, "Numbered pages"): a
/// contact deleted or untagged through another process moves the pages
/// after it in this one at once.
async fn numbered_pages_see_changes_made_by_another_process(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let first = Server::start(&url, &["--rate-limit-rps", "0"]);
    let key = first
        .first_run_key()
        .expect("the first process creates the account");
    let second = Server::start(&url, &["--rate-limit-rps", "0"]);
    let (reader, writer) = (
        Caller::new(client(), &first.base, &key),
        Caller::new(client(), &second.base, &key),
    );
    writer
        .post("/tags", json!({"name": "lead"}))
        .await
        .assert_status(200);
    let mut created = Vec::new();
    for n in 0..50 {
        let contact = writer
            .create_contact(json!({"identifier": format!("+1 202 555 {n:04}"),
                                   "source": "whatsapp", "name": format!("Number {n}"),
                                   "tags": ["lead"]}))
            .await;
        created.push(contact["uuid"].as_str().expect("uuid").to_owned());
    }
    let newest_first: Vec<String> = created.iter().rev().cloned().collect();
    let page_two = async |query: &str| {
        // Twice: the second time from where the first remembered it begins.
        let mut pages = Vec::new();
        for _ in 0..2 {
            let reply = reader.get(&format!("/contacts?{query}page=2")).await;
            reply.assert_status(200);
            pages.push(uuids(reply.body["contacts"].as_array().expect("contacts")));
        }
        assert_eq!(pages[0], pages[1], "{query}");
        pages.remove(0)
    };
    assert_eq!(page_two("").await, newest_first[20..40]);
    assert_eq!(page_two("tags=lead&").await, newest_first[20..40]);

    writer
        .delete(&format!("/contacts/{}", newest_first[0]))
        .await
        .assert_status(200);
    assert_eq!(page_two("").await, newest_first[21..41]);
    writer
        .patch(
            &format!("/contacts/{}", newest_first[1]),
            json!({"tags": []}),
        )
        .await
        .assert_status(200);
    assert_eq!(page_two("").await, newest_first[21..41]);
    assert_eq!(page_two("tags=lead&").await, newest_first[22..42]);
}

on_both_backends!(
    three_processes_share_one_database,
    numbered_pages_see_changes_made_by_another_process,
    redis_shares_the_rate_limit_between_servers,
    without_redis_each_server_limits_alone,
    redis_shares_the_limit_between_processes,
    an_unreachable_redis_stops_start_up,
);
