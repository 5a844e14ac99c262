//! SPEC §1: authentication, the error body, body and content-type rules,
//! rate limiting, and account isolation.

use reqwest::Method;
use serde_json::json;

use crate::helpers::{Backend, TestApp, send};
use crate::on_both_backends;

async fn requests_without_a_valid_key_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/contacts");
    let no_header = send(app.client.get(&url)).await;
    no_header.assert_error(401, "unauthorized");
    for header in [
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer ",
        "token abc",
        "bb_notakey",
    ] {
        send(app.client.get(&url).header("Authorization", header))
            .await
            .assert_error(401, "unauthorized");
    }
    send(
        app.client
            .get(&url)
            .bearer_auth("bb_0000000000000000000000000000000000000000"),
    )
    .await
    .assert_error(401, "unauthorized");
    // Right prefix, wrong rest.
    let last = app.key.chars().last().expect("a key");
    let other = if last == 'x' { 'y' } else { 'x' };
    let forged = format!("{}{other}", &app.key[..app.key.len() - 1]);
    send(app.client.get(&url).bearer_auth(&forged))
        .await
        .assert_error(401, "unauthorized");
    app.get("/contacts").await.assert_status(200);
}

async fn revoked_keys_stop_working(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/auth/me").await.assert_status(200);
    let prefix = bellbook::auth::key_prefix(&app.key).to_owned();
    let keys = app.store.api_keys_with_prefix(&prefix).await.expect("keys");
    let key = &keys[0];
    app.store
        .revoke_api_key(key.account_id, &prefix, bellbook::domain::Timestamp::now())
        .await
        .expect("revoked");
    app.get("/auth/me").await.assert_error(401, "unauthorized");
}

async fn keys_are_stored_only_as_hashes(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let prefix = bellbook::auth::key_prefix(&app.key);
    let keys = app.store.api_keys_with_prefix(prefix).await.expect("keys");
    assert_eq!(keys.len(), 1);
    let secret_part = &app.key[prefix.len()..];
    assert_ne!(keys[0].secret_hash, app.key);
    assert!(!keys[0].secret_hash.contains(secret_part));
    assert_eq!(keys[0].secret_hash, bellbook::auth::hash_key(&app.key));
}

async fn auth_me_describes_the_key_owner(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let me = app.get("/auth/me").await;
    me.assert_status(200);
    assert_eq!(
        me.body,
        json!({
            "status": "ok",
            "user_email": "john.doe@email.com",
            "user_name": "John Doe",
            "api_key": "test_gshuPaZ"
        })
    );
    assert!(!me.text.contains("test_gshuPaZoeEG6ovbc8M79w0QyM"));
}

async fn another_accounts_objects_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mine = app
        .create_contact(json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Mine"}))
        .await;
    let uuid = mine["uuid"].as_str().expect("uuid");
    let other = app.create_account("other").await;
    let them = app.as_key(&other);
    them.get(&format!("/contacts/{uuid}"))
        .await
        .assert_error(404, "not_found");
    them.patch(&format!("/contacts/{uuid}"), json!({"name": "Stolen"}))
        .await
        .assert_error(404, "not_found");
    them.delete(&format!("/contacts/{uuid}"))
        .await
        .assert_error(404, "not_found");
    let theirs = them.get("/contacts").await;
    theirs.assert_status(200);
    assert_eq!(theirs.body["contacts"], json!([]));
    // Their own contact with the same number is theirs to make.
    them.post(
        "/contacts",
        json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Theirs"}),
    )
    .await
    .assert_status(200);
    let still_mine = app.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(still_mine.contact()["name"], "Mine");
}

async fn malformed_ids_in_paths_are_not_found(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for id in [
        "nope",
        "414A6D692BD645ED803F2E7CE360D4C8",
        "414a6d69-2bd6-45ed-803f-2e7ce360d4c8",
        "0",
    ] {
        app.get(&format!("/contacts/{id}"))
            .await
            .assert_error(404, "not_found");
        app.patch(&format!("/contacts/{id}"), json!({"name": "x"}))
            .await
            .assert_error(404, "not_found");
    }
    app.get("/contacts/414a6d692bd645ed803f2e7ce360d4c8")
        .await
        .assert_error(404, "not_found");
}

async fn bodies_must_be_json_objects(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/contacts");
    let post = |body: &'static str, content_type: Option<&'static str>| {
        let mut request = app.client.post(&url).bearer_auth(&app.key).body(body);
        if let Some(content_type) = content_type {
            request = request.header("Content-Type", content_type);
        }
        send(request)
    };
    post("{}", Some("text/plain"))
        .await
        .assert_error(415, "unsupported_media_type");
    post("a=b", Some("application/x-www-form-urlencoded"))
        .await
        .assert_error(415, "unsupported_media_type");
    post("{\"name\": ", Some("application/json"))
        .await
        .assert_error(400, "invalid_json");
    post("not json", None)
        .await
        .assert_error(400, "invalid_json");
    post("", Some("application/json"))
        .await
        .assert_error(400, "invalid_json");
    post("[1, 2]", Some("application/json"))
        .await
        .assert_error(400, "body_not_object");
    post("\"text\"", Some("application/json"))
        .await
        .assert_error(400, "body_not_object");
    // Absent or charset-qualified JSON content types are fine.
    let body = r#"{"identifier": "1", "source": "whatsapp", "name": "A"}"#;
    let created = send(app.client.post(&url).bearer_auth(&app.key).body(body)).await;
    created.assert_status(200);
    let body = r#"{"identifier": "2", "source": "whatsapp", "name": "B"}"#;
    send(
        app.client
            .post(&url)
            .bearer_auth(&app.key)
            .header("Content-Type", "Application/JSON; charset=UTF-8")
            .body(body),
    )
    .await
    .assert_status(200);
    // Unknown keys are ignored.
    app.post(
        "/contacts",
        json!({"identifier": "3", "source": "whatsapp", "name": "C", "color": "blue"}),
    )
    .await
    .assert_status(200);
}

async fn bodies_over_the_limit_are_refused(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let big_name = "x".repeat(1024 * 1024);
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "1", "source": "whatsapp", "name": big_name}),
        )
        .await;
    reply.assert_error(413, "payload_too_large");
    assert_eq!(app.get("/contacts").await.body["contacts"], json!([]));
    // Just under the limit is read, and judged on its merits: a name that
    // long is refused for its own length, not the body's.
    let name = "y".repeat(1024 * 1024 - 100);
    app.post(
        "/contacts",
        json!({"identifier": "1", "source": "whatsapp", "name": name}),
    )
    .await
    .assert_error(422, "too_long");
}

async fn the_body_limit_is_configurable(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.max_body_bytes = 64).await;
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "1", "source": "whatsapp", "name": "x".repeat(100)}),
        )
        .await;
    reply.assert_error(413, "payload_too_large");
}

async fn unknown_routes_and_methods_get_error_bodies(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    app.get("/nothing-here")
        .await
        .assert_error(404, "route_not_found");
    // Outside /v1 the dashboard has pages (`/contacts`); other paths are
    // no route.
    send(
        app.client
            .get(format!("{}/no-such-page", app.base.trim_end_matches("/v1"))),
    )
    .await
    .assert_error(404, "route_not_found");
    let reply = send(app.request(Method::PUT, "/contacts")).await;
    reply.assert_error(405, "method_not_allowed");
    send(app.request(Method::DELETE, "/tags"))
        .await
        .assert_error(405, "method_not_allowed");
    // The document needs no key, and its 405 has the same body.
    send(app.client.post(format!("{}/openapi.json", app.base)))
        .await
        .assert_error(405, "method_not_allowed");
}

async fn every_offending_field_is_reported(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let reply = app
        .post(
            "/contacts",
            json!({
                "source": "fax",
                "name": "",
                "tags": ["sales", "Nope"],
                "custom_fields": {"orderNumber": "twelve", "Unknown": "x"},
                "assigned_user": "nobody@email.com",
                "team_uuid": "00000000000000000000000000000000",
                "note": "n".repeat(1001)
            }),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    let fields = reply.error_fields();
    for field in [
        "source",
        "identifier",
        "name",
        "tags[1]",
        "custom_fields.orderNumber",
        "custom_fields.Unknown",
        "assigned_user",
        "team_uuid",
        "note",
    ] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} missing from {fields:?}"
        );
    }
    let listed = app.get("/contacts").await;
    assert_eq!(
        listed.body["contacts"].as_array().map(Vec::len),
        Some(2),
        "nothing was created"
    );
}

async fn rate_limit_applies_per_account_with_headers(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 3).await;
    let first = app.get("/contacts").await;
    first.assert_status(200);
    assert_eq!(first.header("x-ratelimit-limit"), Some("3"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("2"));
    // Errors carry the headers too.
    let missing = app.get("/contacts/00000000000000000000000000000000").await;
    missing.assert_status(404);
    assert_eq!(missing.header("x-ratelimit-remaining"), Some("1"));
    app.get("/contacts").await.assert_status(200);
    let limited = app.get("/contacts").await;
    limited.assert_error(429, "rate_limited");
    let retry_after: u64 = limited
        .header("retry-after")
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in seconds");
    assert!(retry_after >= 1);
    assert_eq!(limited.header("x-ratelimit-remaining"), Some("0"));
    // Another account has its own budget.
    let other = app.create_account("other").await;
    app.as_key(&other).get("/contacts").await.assert_status(200);
}

async fn rate_limit_zero_disables_it(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    for _ in 0..20 {
        let reply = app.get("/auth/me").await;
        reply.assert_status(200);
        assert_eq!(reply.header("x-ratelimit-limit"), None);
    }
}

async fn json_answers_name_their_charset(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for reply in [
        app.get("/contacts").await,
        app.get("/nothing").await,
        send(app.client.get(app.url("/contacts"))).await,
    ] {
        assert_eq!(
            reply.header("content-type"),
            Some("application/json; charset=utf-8"),
            "{}",
            reply.text
        );
    }
}

/// No database text column can hold U+0000 (PostgreSQL refuses it), so it
/// is refused up front, the same on both backends.
async fn nul_characters_are_refused_not_stored(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "1", "source": "whatsapp", "name": "A\u{0}B", "note": "n\u{0}"}),
        )
        .await;
    reply.assert_error(422, "invalid_character");
    assert_eq!(reply.error_fields(), ["name", "note"]);
    // In a key the API ignores, it is ignored with the key.
    app.post(
        "/contacts",
        json!({"identifier": "2", "source": "whatsapp", "name": "B", "extra": "\u{0}"}),
    )
    .await
    .assert_status(200);
    app.get("/contacts?q=a%00b")
        .await
        .assert_error(400, "invalid_query");
    app.get("/contacts/bsuid/a%00b")
        .await
        .assert_error(404, "not_found");
    let listed = app.get("/contacts").await;
    assert_eq!(listed.body["contacts"].as_array().map(Vec::len), Some(1));
}

/// A query parameter given empty is a bad value, not an absent one; and
/// the pages of the short listings stop somewhere.
async fn empty_and_out_of_range_query_values_are_bad_values(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for path in [
        "/contacts?team_uuid=",
        "/contacts?source=",
        "/contacts?page=",
        "/contacts?include_field_types=",
        "/channels?type=",
        "/channels?active=",
        "/contacts?tags_mode=",
        "/teams?page=100001",
        "/channels?page=100001",
    ] {
        app.get(path).await.assert_error(400, "invalid_query");
    }
    app.get("/teams?page=100000").await.assert_status(200);
    // Free-text filters may be empty: they then filter nothing.
    app.get("/contacts?q=&tags=").await.assert_status(200);
}

/// RFC 6750: a 401 carries `WWW-Authenticate: Bearer realm="bellbook"`,
/// with `error=` when credentials were sent but are not valid, and its
/// message says what was wrong without telling whether a key exists.
async fn refusals_say_what_was_wrong_and_challenge(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let url = app.url("/contacts");
    let revoked = app.create_account("revoked").await;
    let prefix = bellbook::auth::key_prefix(&revoked).to_owned();
    let keys = app.store.api_keys_with_prefix(&prefix).await.expect("keys");
    app.store
        .revoke_api_key(
            keys[0].account_id,
            &prefix,
            bellbook::domain::Timestamp::now(),
        )
        .await
        .expect("revoked");
    let unknown = "bb_0000000000000000000000000000000000000000".to_owned();
    let cases: [(Option<String>, &str, &str); 6] = [
        (None, "missing", r#"Bearer realm="bellbook""#),
        (
            Some("Basic dXNlcjpwYXNz".to_owned()),
            "does not use the Bearer scheme",
            r#"Bearer realm="bellbook""#,
        ),
        (
            Some("Bearer".to_owned()),
            "empty or malformed",
            r#"Bearer realm="bellbook", error="invalid_request""#,
        ),
        (
            Some("Bearer a,b c".to_owned()),
            "empty or malformed",
            r#"Bearer realm="bellbook", error="invalid_request""#,
        ),
        (
            Some(format!("Bearer {unknown}")),
            "unknown or has been revoked",
            r#"Bearer realm="bellbook", error="invalid_token""#,
        ),
        (
            Some(format!("Bearer {revoked}")),
            "unknown or has been revoked",
            r#"Bearer realm="bellbook", error="invalid_token""#,
        ),
    ];
    let mut messages = Vec::new();
    for (header, says, challenge) in cases {
        let mut request = app.client.get(&url);
        if let Some(header) = &header {
            request = request.header("Authorization", header);
        }
        let reply = send(request).await;
        reply.assert_error(401, "unauthorized");
        let message = reply.body["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(message.contains(says), "{header:?}: {message}");
        let sent = reply.header("www-authenticate").unwrap_or_default();
        assert!(sent.starts_with(challenge), "{header:?}: {sent}");
        messages.push(message);
    }
    // An unknown key and a revoked one are told apart by nothing.
    assert_eq!(messages[4], messages[5]);
}

/// Every `/v1` response carries the rate limit's headers: a path that is
/// no route and the OpenAPI document too, counted like any request.
async fn every_v1_response_carries_the_rate_limit(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 5).await;
    let nowhere = app.get("/no/such/route").await;
    nowhere.assert_error(404, "route_not_found");
    assert_eq!(nowhere.header("x-ratelimit-limit"), Some("5"));
    assert_eq!(nowhere.header("x-ratelimit-remaining"), Some("4"));
    let document = send(app.client.get(app.url("/openapi.json"))).await;
    document.assert_status(200);
    assert!(document.header("x-ratelimit-remaining").is_some());
    // Outside /v1: no limit.
    let site = app.base.trim_end_matches("/v1").to_owned();
    let health = send(app.client.get(format!("{site}/healthz"))).await;
    assert_eq!(health.header("x-ratelimit-limit"), None);
    // Counted: the keyed 404s use up the account's allowance.
    for _ in 0..4 {
        app.get("/no/such/route").await;
    }
    app.get("/no/such/route")
        .await
        .assert_error(429, "rate_limited");
}

async fn probes_answer_without_a_key(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let site = app.base.trim_end_matches("/v1").to_owned();
    let health = send(app.client.get(format!("{site}/healthz"))).await;
    health.assert_status(200);
    assert_eq!(health.body, json!({"status": "ok"}));
    let ready = send(app.client.get(format!("{site}/readyz"))).await;
    ready.assert_status(200);
    assert_eq!(ready.body, json!({"status": "ready"}));
}

async fn every_response_has_a_request_id(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/contacts").await;
    let second = app.get("/contacts").await;
    let (first, second) = (
        first.header("x-request-id").expect("an id").to_owned(),
        second.header("x-request-id").expect("an id").to_owned(),
    );
    assert_ne!(first, second);
    let given = send(
        app.request(Method::GET, "/contacts")
            .header("X-Request-Id", "trace-42/a"),
    )
    .await;
    assert_eq!(given.header("x-request-id"), Some("trace-42/a"));
    // One no log line can hold is replaced.
    let long = "x".repeat(200);
    let replaced = send(
        app.request(Method::GET, "/nowhere")
            .header("X-Request-Id", &long),
    )
    .await;
    let id = replaced.header("x-request-id").expect("an id");
    assert_ne!(id, long);
    assert!(!id.is_empty());
}

/// `GET /metrics`, read by a Prometheus text parser: requests by route
/// template, latency, write batches, the pool, rate-limit refusals and the
/// webhook backlog; behind its token when one is set.
async fn metrics_are_scraped_in_prometheus_format(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.rate_limit_rps = 2;
        s.metrics_token = Some("scrape-me".to_owned());
    })
    .await;
    let site = app.base.trim_end_matches("/v1").to_owned();
    let uuid = app
        .create_contact(
            json!({"source": "whatsapp", "identifier": "+1 555 0101", "name": "Counted"}),
        )
        .await["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    app.get(&format!("/contacts/{uuid}"))
        .await
        .assert_status(200);
    app.get("/contacts").await.assert_error(429, "rate_limited");
    send(app.client.get(format!("{site}/metrics")))
        .await
        .assert_error(401, "unauthorized");
    send(
        app.client
            .get(format!("{site}/metrics"))
            .bearer_auth("wrong"),
    )
    .await
    .assert_error(401, "unauthorized");
    let reply = send(
        app.client
            .get(format!("{site}/metrics"))
            .bearer_auth("scrape-me"),
    )
    .await;
    reply.assert_status(200);
    let scrape = prometheus_parse::Scrape::parse(reply.text.lines().map(|l| Ok(l.to_owned())))
        .expect("Prometheus text");
    let value = |name: &str, labels: &[(&str, &str)]| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| {
                // The parser may name a counter's samples by its family.
                (s.metric == name || format!("{}_total", s.metric) == name)
                    && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v))
            })
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v) | prometheus_parse::Value::Gauge(v) => *v,
                prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(buckets) => {
                    buckets.last().map_or(0.0, |b| b.count)
                }
                _ => 0.0,
            })
    };
    assert_eq!(
        value(
            "bellbook_http_requests_total",
            &[
                ("route", "/v1/contacts/:uuid"),
                ("method", "GET"),
                ("status", "200")
            ]
        ),
        Some(1.0),
        "{:?}",
        scrape.samples.iter().take(3).collect::<Vec<_>>()
    );
    assert_eq!(
        value(
            "bellbook_http_requests_total",
            &[
                ("route", "/v1/contacts"),
                ("method", "POST"),
                ("status", "200")
            ]
        ),
        Some(1.0)
    );
    assert!(
        !reply.text.contains(&uuid),
        "a uuid must never become a label"
    );
    assert_eq!(value("bellbook_rate_limit_refusals_total", &[]), Some(1.0));
    assert!(
        value(
            "bellbook_http_request_duration_seconds",
            &[("route", "/v1/contacts")]
        )
        .is_some(),
        "{}",
        reply.text
    );
    assert!(value("bellbook_write_batch_size", &[]).is_some_and(|n| n >= 1.0));
    assert!(value("bellbook_db_pool_connections", &[("state", "idle")]).is_some());
    assert_eq!(value("bellbook_db_pool_waiting", &[]), Some(0.0));
    assert_eq!(value("bellbook_webhook_deliveries_pending", &[]), Some(0.0));
}

/// Every string and list a client sends has a documented limit; past it,
/// a 422 `too_long` / `too_many` (a 400 for `q`, a query parameter), and
/// `details` lists at most 100 problems and counts the rest.
async fn limits_are_enforced_and_errors_stay_small(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let base = json!({"source": "whatsapp", "identifier": "+39 333 555 0001"});
    let with = |extra: serde_json::Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().expect("object") {
            body[k] = v.clone();
        }
        body
    };
    let long_name = "n".repeat(256);
    let reply = app
        .post("/contacts", with(json!({"name": long_name})))
        .await;
    reply.assert_error(422, "too_long");
    assert_eq!(reply.error_fields(), ["name"]);
    let tags: Vec<String> = (0..101).map(|_| "lead".to_owned()).collect();
    let reply = app
        .post("/contacts", with(json!({"name": "Limits", "tags": tags})))
        .await;
    reply.assert_error(422, "too_many");
    assert_eq!(reply.error_fields(), ["tags"]);
    let fields: serde_json::Map<String, serde_json::Value> = (0..101)
        .map(|i| (format!("field {i}"), json!("x")))
        .collect();
    let reply = app
        .post(
            "/contacts",
            with(json!({"name": "Limits", "custom_fields": fields})),
        )
        .await;
    reply.assert_error(422, "too_many");
    assert_eq!(reply.error_fields(), ["custom_fields"]);
    let reply = app
        .post(
            "/contacts",
            with(json!({"name": "Limits", "custom_fields": {"Billing Address": "a".repeat(4097)}})),
        )
        .await;
    reply.assert_error(422, "too_long");
    assert_eq!(reply.error_fields(), ["custom_fields.Billing Address"]);
    // Nothing was created by any of them.
    assert_eq!(
        app.get("/contacts?q=Limits").await.body["contacts"],
        json!([])
    );
    // At the limits, it works.
    let created = app
        .create_contact(with(json!({
            "name": "n".repeat(255),
            "custom_fields": {"Billing Address": "a".repeat(4096)}
        })))
        .await;
    let uuid = created["uuid"].as_str().expect("uuid");
    let reply = app
        .patch(
            &format!("/contacts/{uuid}"),
            json!({"name": "m".repeat(256)}),
        )
        .await;
    reply.assert_error(422, "too_long");
    // Hundreds of problems: 100 listed, the rest counted, the message short.
    let unknown_tags: Vec<String> = (0..100).map(|i| format!("nope {i}")).collect();
    let unknown_fields: serde_json::Map<String, serde_json::Value> = (0..100)
        .map(|i| (format!("nope {i}"), json!("x")))
        .collect();
    let reply = app
        .patch(
            &format!("/contacts/{uuid}"),
            json!({"name": "m".repeat(256), "tags": unknown_tags, "custom_fields": unknown_fields}),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    assert_eq!(reply.error_fields().len(), 100);
    assert_eq!(reply.body["error"]["details_omitted"], 101);
    assert!(reply.text.len() < 20_000, "{} bytes", reply.text.len());
    app.get(&format!("/contacts?q={}", "q".repeat(256)))
        .await
        .assert_error(400, "invalid_query");
    app.get(&format!("/contacts?q={}", "q".repeat(255)))
        .await
        .assert_status(200);
}

on_both_backends!(
    limits_are_enforced_and_errors_stay_small,
    metrics_are_scraped_in_prometheus_format,
    refusals_say_what_was_wrong_and_challenge,
    every_v1_response_carries_the_rate_limit,
    probes_answer_without_a_key,
    every_response_has_a_request_id,
    empty_and_out_of_range_query_values_are_bad_values,
    json_answers_name_their_charset,
    nul_characters_are_refused_not_stored,
    requests_without_a_valid_key_are_refused,
    revoked_keys_stop_working,
    keys_are_stored_only_as_hashes,
    auth_me_describes_the_key_owner,
    another_accounts_objects_are_not_found,
    malformed_ids_in_paths_are_not_found,
    bodies_must_be_json_objects,
    bodies_over_the_limit_are_refused,
    the_body_limit_is_configurable,
    unknown_routes_and_methods_get_error_bodies,
    every_offending_field_is_reported,
    rate_limit_applies_per_account_with_headers,
    rate_limit_zero_disables_it,
);
