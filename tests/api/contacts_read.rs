//! SPEC §4: `GET /contacts/:uuid` and `GET /contacts` — envelopes, typed
//! custom field metadata, pages, filters, search and the `after` cursor.

use serde_json::{Value, json};

use crate::fixtures::demo::{GENERAL, JOHN, MARIO, SUPPORT};
use crate::helpers::{Backend, TestApp, uuids};
use crate::on_both_backends;

/// A server on an empty database, without a rate limit (tests send bursts).
async fn fresh(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await
}

/// A server with the SPEC §6 demo account, without a rate limit.
async fn demo(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.rate_limit_rps = 0;
    })
    .await
}

/// Creates `count` WhatsApp contacts one after the other, named `C00`,
/// `C01`…, each with `extra` fields; returns them in creation order.
async fn create_many(app: &TestApp, count: usize, extra: impl Fn(usize) -> Value) -> Vec<Value> {
    let mut created = Vec::with_capacity(count);
    for i in 0..count {
        let mut body = json!({
            "identifier": format!("+1 555 01{i:02}"),
            "source": "whatsapp",
            "name": format!("C{i:02}")
        });
        if let Some(extra) = extra(i).as_object() {
            for (key, value) in extra {
                body[key] = value.clone();
            }
        }
        created.push(app.create_contact(body).await);
    }
    created
}

fn none(_: usize) -> Value {
    Value::Null
}

/// The list of a `GET /contacts` that must succeed.
async fn list(app: &TestApp, query: &str) -> Value {
    let reply = app.get(&format!("/contacts{query}")).await;
    reply.assert_status(200);
    let body = reply.body;
    let mut meta: Vec<&str> = body["meta"]
        .as_object()
        .unwrap_or_else(|| panic!("meta in {body}"))
        .keys()
        .map(String::as_str)
        .collect();
    meta.sort_unstable();
    assert_eq!(meta, ["next", "page", "pages"]);
    assert!(body["contacts"].is_array(), "{body}");
    body
}

fn names(body: &Value) -> Vec<String> {
    body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| c["name"].as_str().expect("name").to_owned())
        .collect()
}

/// `C{from}` down to `C{to}`, newest first.
fn newest_first(from: usize, to: usize) -> Vec<String> {
    (to..=from).rev().map(|i| format!("C{i:02}")).collect()
}

fn next_cursor(body: &Value) -> String {
    body["meta"]["next"]
        .as_str()
        .unwrap_or_else(|| panic!("meta.next in {}", body["meta"]))
        .to_owned()
}

async fn get_answers_with_the_contact_in_an_array(backend: Backend) {
    let app = fresh(backend).await;
    let created = app
        .create_contact(json!({"identifier": "+39 333-12 34", "source": "whatsapp", "name": "Ada"}))
        .await;
    let uuid = created["uuid"].as_str().expect("uuid");
    for query in ["", "?include_field_types=false"] {
        let reply = app.get(&format!("/contacts/{uuid}{query}")).await;
        reply.assert_status(200);
        assert_eq!(reply.body, json!({"contact": [created.clone()]}));
    }
    app.get("/contacts/00000000000000000000000000000000")
        .await
        .assert_error(404, "not_found");
    for bad in ["maybe", "1", "yes"] {
        app.get(&format!("/contacts/{uuid}?include_field_types={bad}"))
            .await
            .assert_error(400, "invalid_query");
    }
}

async fn field_types_are_described_on_request(backend: Backend) {
    let app = demo(backend).await;
    let quoted = app
        .post(
            "/custom_fields",
            json!({"name": "Quotes", "type": "checkbox", "options": ["Say \"hi\"", "a, b", "c"]}),
        )
        .await;
    quoted.assert_status(200);
    let contact = app
        .create_contact(json!({
            "identifier": "+44 20 7946 0000",
            "source": "whatsapp",
            "name": "Ada",
            "custom_fields": {
                "zipCode": "10115",
                "orderNumber": 42,
                "Status": "active",
                "Features": ["Analytics", "dark mode"],
                "Work Email": "ada@example.com",
                "Birth Date": "1815-12-10",
                "Quotes": ["a, b", "Say \"hi\""]
            }
        }))
        .await;
    let uuid = contact["uuid"].as_str().expect("uuid");
    let expected_values = json!({
        "zipCode": "10115",
        "orderNumber": "42",
        "Status": "Active",
        "Features": "[\"Analytics\", \"Dark Mode\"]",
        "Work Email": "ada@example.com",
        "Birth Date": "1815-12-10",
        "Quotes": "[\"a, b\", \"Say \\\"hi\\\"\"]"
    });
    assert_eq!(contact["customFields"], expected_values);
    let expected_metadata = json!({
        "zipCode": {"value": "10115", "type": "text"},
        "orderNumber": {"value": "42", "type": "number"},
        "Status": {"value": "Active", "type": "dropdown", "options": ["Active", "Inactive"]},
        "Features": {
            "value": ["Analytics", "Dark Mode"],
            "type": "checkbox",
            "options": ["Dark Mode", "Notifications", "Analytics"]
        },
        "Work Email": {"value": "ada@example.com", "type": "email"},
        "Birth Date": {"value": "1815-12-10", "type": "date"},
        "Quotes": {"value": ["a, b", "Say \"hi\""], "type": "checkbox", "options": ["Say \"hi\"", "a, b", "c"]}
    });
    let reply = app
        .get(&format!("/contacts/{uuid}?include_field_types=true"))
        .await;
    reply.assert_status(200);
    let typed = reply.contact();
    assert_eq!(typed["customFieldsMetadata"], expected_metadata);
    // Options appear only for dropdowns and checkboxes.
    for name in ["zipCode", "orderNumber", "Work Email", "Birth Date"] {
        let entry = typed["customFieldsMetadata"][name]
            .as_object()
            .expect("entry");
        assert!(!entry.contains_key("options"), "{name}: {entry:?}");
    }
    // Everything else is the plain contact.
    let mut plain = typed.clone();
    plain
        .as_object_mut()
        .expect("object")
        .remove("customFieldsMetadata");
    assert_eq!(plain, contact);
    // Without the flag (or with false), no metadata at all.
    let plain = app.get(&format!("/contacts/{uuid}")).await;
    assert!(plain.contact().get("customFieldsMetadata").is_none());
    // A contact without values has empty metadata.
    let empty = app
        .create_contact(json!({"identifier": "1", "source": "whatsapp", "name": "Empty"}))
        .await;
    let uuid = empty["uuid"].as_str().expect("uuid");
    let reply = app
        .get(&format!("/contacts/{uuid}?include_field_types=true"))
        .await;
    assert_eq!(reply.contact()["customFieldsMetadata"], json!({}));
}

async fn list_pages_newest_first(backend: Backend) {
    let app = fresh(backend).await;
    // An empty account: one empty page.
    let empty = list(&app, "").await;
    assert_eq!(
        empty,
        json!({"contacts": [], "meta": {"page": 1, "pages": 1, "next": null}})
    );
    let created = create_many(&app, 45, none).await;

    let first = list(&app, "").await;
    assert_eq!(names(&first), newest_first(44, 25));
    assert_eq!(first["meta"]["page"], 1);
    assert_eq!(first["meta"]["pages"], 3);
    assert!(first["meta"]["next"].is_string());
    // Listed contacts are whole Contact objects, as created.
    assert_eq!(first["contacts"][0], created[44]);
    assert_eq!(list(&app, "?page=1").await["contacts"], first["contacts"]);

    let second = list(&app, "?page=2").await;
    assert_eq!(names(&second), newest_first(24, 5));
    assert_eq!(second["meta"]["page"], 2);
    assert_eq!(second["meta"]["pages"], 3);
    assert!(second["meta"]["next"].is_string());

    let third = list(&app, "?page=3").await;
    assert_eq!(names(&third), newest_first(4, 0));
    assert_eq!(third["meta"]["page"], 3);
    assert_eq!(third["meta"]["pages"], 3);
    assert_eq!(third["meta"]["next"], Value::Null);

    for page in [4, 500] {
        let beyond = list(&app, &format!("?page={page}")).await;
        assert_eq!(
            beyond,
            json!({"contacts": [], "meta": {"page": page, "pages": 3, "next": null}})
        );
    }
}

async fn pages_round_up(backend: Backend) {
    let app = fresh(backend).await;
    create_many(&app, 20, none).await;
    let full = list(&app, "").await;
    assert_eq!(names(&full).len(), 20);
    assert_eq!(full["meta"]["pages"], 1);
    assert_eq!(full["meta"]["next"], Value::Null, "nothing more to read");
    app.create_contact(json!({"identifier": "999", "source": "whatsapp", "name": "C20"}))
        .await;
    let first = list(&app, "").await;
    assert_eq!(names(&first), newest_first(20, 1));
    assert_eq!(first["meta"]["pages"], 2);
    assert!(first["meta"]["next"].is_string());
    let second = list(&app, "?page=2").await;
    assert_eq!(names(&second), ["C00"]);
    assert_eq!(second["meta"]["next"], Value::Null);
}

async fn bad_page_values_are_refused(backend: Backend) {
    let app = fresh(backend).await;
    for page in ["0", "abc", "-1", "1.5", "%201x"] {
        app.get(&format!("/contacts?page={page}"))
            .await
            .assert_error(400, "invalid_query");
    }
    for page in ["501", "100000", "4294967296", "99999999999999999999999"] {
        let reply = app.get(&format!("/contacts?page={page}")).await;
        reply.assert_error(400, "pagination_limit_exceeded");
        assert_eq!(reply.body["error"]["message"], "Pagination limit exceeded");
    }
    list(&app, "?page=500").await;
    for query in [
        "?source=fax",
        "?include_field_types=maybe",
        "?team_uuid=general",
        "?tags_mode=some",
    ] {
        app.get(&format!("/contacts{query}"))
            .await
            .assert_error(400, "invalid_query");
    }
}

async fn source_filter(backend: Backend) {
    let app = fresh(backend).await;
    app.post(
        "/channels",
        json!({"title": "Telegram", "type": "telegram", "main": true}),
    )
    .await
    .assert_status(200);
    let contact = |identifier: &str, source: &str, name: &str| json!({"identifier": identifier, "source": source, "name": name});
    app.create_contact(contact("1", "whatsapp", "W1")).await;
    app.create_contact(contact("@t1", "telegram", "T1")).await;
    app.create_contact(contact("2", "whatsapp", "W2")).await;
    app.create_contact(contact("@t2", "telegram", "T2")).await;
    let telegram = list(&app, "?source=telegram").await;
    assert_eq!(names(&telegram), ["T2", "T1"]);
    assert!(
        telegram["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .all(|c| c["source"] == "telegram")
    );
    assert_eq!(telegram["meta"]["pages"], 1);
    assert_eq!(names(&list(&app, "?source=whatsapp").await), ["W2", "W1"]);
    assert_eq!(list(&app, "?source=instagram").await["contacts"], json!([]));
    assert_eq!(names(&list(&app, "").await), ["T2", "W2", "T1", "W1"]);
    app.get("/contacts?source=fax")
        .await
        .assert_error(400, "invalid_query");
}

async fn tags_filter(backend: Backend) {
    let app = fresh(backend).await;
    for tag in ["sales", "Hot", "Call back"] {
        app.post("/tags", json!({"name": tag}))
            .await
            .assert_status(200);
    }
    for (identifier, name, tags) in [
        ("1001", "A", json!(["sales", "Hot"])),
        ("1002", "B", json!(["sales"])),
        ("1003", "C", json!(["hot", "Call back"])),
        ("1004", "D", json!([])),
    ] {
        app.create_contact(
            json!({"identifier": identifier, "source": "whatsapp", "name": name, "tags": tags}),
        )
        .await;
    }
    let cases: [(&str, &[&str]); 12] = [
        ("?tags=sales", &["B", "A"]),
        ("?tags=SALES,hot", &["A"]),
        ("?tags=hot,sales", &["A"]),
        ("?tags=%20sales%20,%20HOT%20", &["A"]),
        ("?tags=Call%20back", &["C"]),
        ("?tags=sales,nope", &[]),
        ("?tags=nope", &[]),
        ("?tags=sales,Call%20back", &[]),
        ("?tags=sales,hot&tags_mode=any", &["C", "B", "A"]),
        ("?tags=nope,call%20BACK&tags_mode=any", &["C"]),
        ("?tags=nope&tags_mode=any", &[]),
        ("?tags=sales&tags_mode=all", &["B", "A"]),
    ];
    for (query, expected) in cases {
        let body = list(&app, query).await;
        assert_eq!(names(&body), expected, "{query}");
        assert_eq!(body["meta"]["pages"], 1, "{query}");
        assert_eq!(body["meta"]["next"], Value::Null, "{query}");
    }
    assert_eq!(names(&list(&app, "?tags=").await), ["D", "C", "B", "A"]);
}

async fn team_filter(backend: Backend) {
    let app = demo(backend).await;
    let support = app
        .create_contact(json!({
            "identifier": "+49 30 1234",
            "source": "whatsapp",
            "name": "Supported",
            "team_uuid": SUPPORT
        }))
        .await;
    let general = app
        .create_contact(
            json!({"identifier": "+49 30 5678", "source": "whatsapp", "name": "General"}),
        )
        .await;
    let listed = list(&app, &format!("?team_uuid={SUPPORT}")).await;
    assert_eq!(listed["contacts"], json!([support]));
    let listed = list(&app, &format!("?team_uuid={GENERAL}")).await;
    let listed = uuids(listed["contacts"].as_array().expect("contacts"));
    assert_eq!(listed.len(), 3);
    assert_eq!(listed[0], general["uuid"].as_str().expect("uuid"));
    assert!(listed.contains(&JOHN.to_owned()) && listed.contains(&MARIO.to_owned()));
    // A team that is not there matches nothing.
    let listed = list(&app, "?team_uuid=00000000000000000000000000000000").await;
    assert_eq!(listed["contacts"], json!([]));
    assert_eq!(listed["meta"]["pages"], 1);
    // Filters combine.
    let listed = list(&app, &format!("?team_uuid={GENERAL}&tags=hot")).await;
    assert_eq!(
        uuids(listed["contacts"].as_array().expect("contacts")),
        [MARIO]
    );
}

async fn q_searches_names_and_phone_digits(backend: Backend) {
    let app = fresh(backend).await;
    let contact = |identifier: &str, name: &str| json!({"identifier": identifier, "source": "whatsapp", "name": name});
    app.create_contact(contact("+39 333-12 34", "Ada Lovelace"))
        .await;
    app.create_contact(contact("+1 555 0100", "Grace Hopper"))
        .await;
    app.create_contact(contact("4420", "ADAM Smith")).await;
    app.create_contact(contact("3301", "Émile Zola")).await;
    let cases: [(&str, &[&str]); 14] = [
        // Case folding is not only ASCII: "éMILE", "ZOLA".
        ("%C3%A9MILE", &["Émile Zola"]),
        ("ZOLA", &["Émile Zola"]),
        ("ada", &["ADAM Smith", "Ada Lovelace"]),
        ("ADA", &["ADAM Smith", "Ada Lovelace"]),
        ("love", &["Ada Lovelace"]),
        ("e%20h", &["Grace Hopper"]),
        ("3331234", &["Ada Lovelace"]),
        ("333%2012", &["Ada Lovelace"]),
        ("%2B39%20333-12", &["Ada Lovelace"]),
        ("0100", &["Grace Hopper"]),
        ("zzz", &[]),
        ("%25", &[]),
        ("_", &[]),
        ("999", &[]),
    ];
    for (q, expected) in cases {
        let body = list(&app, &format!("?q={q}")).await;
        assert_eq!(names(&body), expected, "q={q}");
        assert_eq!(body["meta"]["pages"], 1);
    }
    // q combines with the other filters.
    assert_eq!(
        names(&list(&app, "?q=ada&source=whatsapp").await),
        ["ADAM Smith", "Ada Lovelace"]
    );
    assert_eq!(
        list(&app, "?q=ada&source=telegram").await["contacts"],
        json!([])
    );
}

async fn include_field_types_on_the_list(backend: Backend) {
    let app = demo(backend).await;
    let typed = list(&app, "?include_field_types=true").await;
    let contacts = typed["contacts"].as_array().expect("contacts");
    assert_eq!(contacts.len(), 2);
    let john = contacts
        .iter()
        .find(|c| c["uuid"] == JOHN)
        .expect("John is listed");
    assert_eq!(
        john["customFieldsMetadata"],
        json!({
            "Billing Address": {"value": "3 Abbey Rd, London", "type": "text"},
            "Stripe link": {"value": "https://stripe.com/contacts/cus1234567", "type": "text"}
        })
    );
    assert!(
        contacts
            .iter()
            .all(|c| c["customFieldsMetadata"].is_object())
    );
    for query in ["", "?include_field_types=false"] {
        let plain = list(&app, query).await;
        assert!(
            plain["contacts"]
                .as_array()
                .expect("contacts")
                .iter()
                .all(|c| c.get("customFieldsMetadata").is_none()),
            "{query}"
        );
    }
    app.get("/contacts?include_field_types=maybe")
        .await
        .assert_error(400, "invalid_query");
}

async fn the_cursor_walks_every_contact_once(backend: Backend) {
    let app = fresh(backend).await;
    app.post("/tags", json!({"name": "hot"}))
        .await
        .assert_status(200);
    // Two of every three contacts are hot: 30 of 45.
    let created = create_many(&app, 45, |i| {
        if i % 3 != 0 {
            json!({"tags": ["hot"]})
        } else {
            Value::Null
        }
    })
    .await;
    let mut expected = uuids(&created);
    expected.reverse();

    // The whole walk, unfiltered.
    let mut walked = Vec::new();
    let mut body = list(&app, "").await;
    let mut pages = vec![body["meta"]["page"].clone()];
    walked.extend(uuids(body["contacts"].as_array().expect("contacts")));
    while !body["meta"]["next"].is_null() {
        body = list(&app, &format!("?after={}", next_cursor(&body))).await;
        pages.push(body["meta"]["page"].clone());
        assert_eq!(body["meta"]["pages"], 3);
        walked.extend(uuids(body["contacts"].as_array().expect("contacts")));
    }
    assert_eq!(walked, expected, "every contact once, newest first");
    assert_eq!(pages, [json!(1), json!(2), json!(3)]);
    // The walk's pages are the numbered pages.
    let first = list(&app, "").await;
    let second = list(&app, &format!("?after={}", next_cursor(&first))).await;
    assert_eq!(second["contacts"], list(&app, "?page=2").await["contacts"]);

    // page is ignored when after is present, whatever its value.
    let cursor = next_cursor(&first);
    for page in ["1", "3", "0", "501", "abc"] {
        let body = list(&app, &format!("?after={cursor}&page={page}")).await;
        assert_eq!(body, second, "page={page}");
    }

    // A filtered walk keeps its filter without it being repeated.
    let mut hot: Vec<String> = created
        .iter()
        .filter(|c| c["tags"] == json!(["hot"]))
        .map(|c| c["uuid"].as_str().expect("uuid").to_owned())
        .collect();
    hot.reverse();
    assert_eq!(hot.len(), 30);
    let first = list(&app, "?tags=HOT").await;
    assert_eq!(first["meta"]["pages"], 2);
    let cursor = next_cursor(&first);
    let rest = list(&app, &format!("?after={cursor}")).await;
    let same = list(&app, &format!("?after={cursor}&tags=HOT")).await;
    assert_eq!(rest, same, "repeating the filter changes nothing");
    assert_eq!(rest["meta"]["next"], Value::Null);
    assert_eq!(rest["meta"]["pages"], 2);
    let mut walked = uuids(first["contacts"].as_array().expect("contacts"));
    walked.extend(uuids(rest["contacts"].as_array().expect("contacts")));
    assert_eq!(walked, hot, "only the filtered contacts, each once");
}

async fn bad_cursors_are_refused(backend: Backend) {
    let app = fresh(backend).await;
    create_many(&app, 21, none).await;
    let first = list(&app, "").await;
    let cursor = next_cursor(&first);
    list(&app, &format!("?after={cursor}")).await;
    let (payload, signature) = cursor.split_once('.').expect("payload.signature");
    let flip = |text: &str, at: usize| {
        let mut chars: Vec<char> = text.chars().collect();
        chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect::<String>()
    };
    let mut bad = vec![
        "garbage".to_owned(),
        "a.b".to_owned(),
        ".".to_owned(),
        "%21%21%21".to_owned(),
        format!("{}.{signature}", flip(payload, 2)),
        format!("{}.{signature}", flip(payload, payload.len() / 2)),
        format!("{payload}.{}", flip(signature, 0)),
        format!("{payload}.{}", &signature[..signature.len() - 2]),
        format!("{payload}."),
        payload.to_owned(),
        format!("{cursor}x"),
    ];
    // A payload of another cursor does not fit this signature.
    let filtered = next_cursor(&list(&app, "?source=whatsapp").await);
    let (other_payload, _) = filtered.split_once('.').expect("payload.signature");
    assert_ne!(other_payload, payload);
    bad.push(format!("{other_payload}.{signature}"));
    for after in bad {
        let reply = app.get(&format!("/contacts?after={after}")).await;
        reply.assert_error(400, "invalid_cursor");
        assert_eq!(
            reply.body["error"]["message"], "Invalid pagination cursor",
            "after={after}"
        );
    }
    // Another account cannot use this account's cursor.
    let other = app.create_account("other").await;
    let them = app.as_key(&other);
    for i in 0..21 {
        them.post(
            "/contacts",
            json!({"identifier": format!("7{i:02}"), "source": "whatsapp", "name": "X"}),
        )
        .await
        .assert_status(200);
    }
    them.get(&format!("/contacts?after={cursor}"))
        .await
        .assert_error(400, "invalid_cursor");
    let theirs = them.get("/contacts").await;
    let their_cursor = next_cursor(&theirs.body);
    app.get(&format!("/contacts?after={their_cursor}"))
        .await
        .assert_error(400, "invalid_cursor");
    them.get(&format!("/contacts?after={their_cursor}"))
        .await
        .assert_status(200);
    // The valid cursor still works.
    assert_eq!(
        names(&list(&app, &format!("?after={cursor}")).await),
        ["C00"]
    );
}

on_both_backends!(
    get_answers_with_the_contact_in_an_array,
    field_types_are_described_on_request,
    list_pages_newest_first,
    pages_round_up,
    bad_page_values_are_refused,
    source_filter,
    tags_filter,
    team_filter,
    q_searches_names_and_phone_digits,
    include_field_types_on_the_list,
    the_cursor_walks_every_contact_once,
    bad_cursors_are_refused,
);
