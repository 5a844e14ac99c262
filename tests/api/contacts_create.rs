//! SPEC §3–§4: `POST /contacts` — every field, every validation rule, the
//! uniqueness of identifiers, and the Contact object it answers with.

use serde_json::{Value, json};

use crate::fixtures::{CONTACT_KEYS, details, keys, pairs};
use crate::helpers::{Backend, Reply, TestApp};
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

/// Every contact of the account, walking all pages.
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

fn is_public_id(value: &Value) -> bool {
    value.as_str().is_some_and(|s| {
        s.len() == 32
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// `YYYY-MM-DDTHH:MM:SSZ`, as seconds since the epoch.
fn parse_timestamp(value: &Value) -> i64 {
    let text = value.as_str().expect("timestamp is a string");
    let format =
        time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    assert_eq!(text.len(), 20, "timestamp {text}");
    time::PrimitiveDateTime::parse(text, &format)
        .unwrap_or_else(|e| panic!("timestamp {text}: {e}"))
        .assume_utc()
        .unix_timestamp()
}

fn unix_now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

fn whatsapp(identifier: &str, name: &str) -> Value {
    json!({"identifier": identifier, "source": "whatsapp", "name": name})
}

/// `body` with `extra`'s keys added.
fn with(mut body: Value, extra: Value) -> Value {
    let object = body.as_object_mut().expect("object");
    for (key, value) in extra.as_object().expect("object") {
        object.insert(key.clone(), value.clone());
    }
    body
}

/// Posts `body`, expects a 422 with `code` and exactly these details, and
/// checks that nothing was created.
async fn refused(app: &TestApp, body: Value, code: &str, expected: &[(&str, &str)]) -> Reply {
    let before = all_contacts(app).await;
    let reply = app.post("/contacts", body).await;
    reply.assert_error(422, code);
    assert_eq!(details(&reply), pairs(expected), "body: {}", reply.text);
    assert_eq!(
        all_contacts(app).await,
        before,
        "a refused create changed nothing"
    );
    reply
}

async fn post_ok(app: &TestApp, path: &str, body: Value) -> Value {
    let reply = app.post(path, body).await;
    reply.assert_status(200);
    reply.body
}

async fn create_channel(app: &TestApp, title: &str, kind: &str, main: bool) -> String {
    let body = post_ok(
        app,
        "/channels",
        json!({"title": title, "type": kind, "main": main}),
    )
    .await;
    body["channel"]["uuid"].as_str().expect("uuid").to_owned()
}

async fn create_answers_with_every_contact_field(backend: Backend) {
    let app = fresh(backend).await;
    let before = unix_now();
    let reply = app
        .post("/contacts", whatsapp("+39 333-12 34", "Ada Lovelace"))
        .await;
    let after = unix_now();
    reply.assert_status(200);
    assert!(
        reply
            .header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "content type {:?}",
        reply.header("content-type")
    );
    // The envelope: {"contact": [C]} and nothing else.
    let envelope = reply.body.as_object().expect("object");
    assert_eq!(envelope.keys().collect::<Vec<_>>(), ["contact"]);
    assert_eq!(reply.body["contact"].as_array().map(Vec::len), Some(1));
    let contact = reply.contact();
    assert_eq!(keys(contact), CONTACT_KEYS, "exactly the SPEC §3 fields");

    assert!(is_public_id(&contact["uuid"]), "uuid {}", contact["uuid"]);
    let uuid = contact["uuid"].as_str().expect("uuid");
    assert_eq!(contact["name"], "Ada Lovelace");
    assert_eq!(contact["phoneNumber"], "+39 333-12 34", "spelling kept");
    assert_eq!(contact["source"], "whatsapp");
    for null in [
        "avatarUrl",
        "blockedAt",
        "funnelId",
        "closedAt",
        "assignedUser",
        "bsuid",
        "note",
    ] {
        assert_eq!(contact[null], Value::Null, "{null}");
    }
    assert_eq!(contact["tags"], json!([]));
    assert_eq!(contact["customFields"], json!({}));
    let created_at = parse_timestamp(&contact["createdAt"]);
    assert!(
        before <= created_at && created_at <= after,
        "createdAt {created_at} within [{before}, {after}]"
    );

    let public_url = app.base.trim_end_matches("/v1");
    assert_eq!(contact["href"], format!("{public_url}/contacts/{uuid}"));
    let conversation = contact["conversationHref"]
        .as_str()
        .and_then(|h| h.strip_prefix(&format!("{public_url}/chat/")))
        .unwrap_or_else(|| panic!("conversationHref {}", contact["conversationHref"]));
    assert!(is_public_id(&json!(conversation)), "{conversation}");
    assert_ne!(conversation, uuid);

    // The default team, as a Team object.
    let teams = app.get("/teams").await;
    let general = teams.body["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .find(|t| t["default"] == true)
        .expect("a default team")
        .clone();
    assert_eq!(contact["team"], general);
    assert_eq!(
        contact["team"]
            .as_object()
            .map(|t| t.keys().cloned().collect::<Vec<_>>()),
        Some(
            ["uuid", "name", "createdAt", "default", "members"]
                .map(String::from)
                .to_vec()
        )
    );
    // The main WhatsApp channel, in the short channel shape.
    let channels = app.get("/channels?type=whatsapp").await;
    let main = &channels.body["channels"][0];
    assert_eq!(
        contact["channel"],
        json!({"uuid": main["uuid"], "title": main["title"], "type": "whatsapp", "main": true})
    );

    // What was answered is what is stored.
    let read = app.get(&format!("/contacts/{uuid}")).await;
    read.assert_status(200);
    assert_eq!(read.contact(), contact);
    // Another contact gets other ids.
    let other = app
        .create_contact(whatsapp("+39 333 0000", "Charles Babbage"))
        .await;
    assert_ne!(other["uuid"], contact["uuid"]);
    assert_ne!(other["conversationHref"], contact["conversationHref"]);
}

async fn hrefs_use_the_configured_public_url(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| {
        s.public_url = Some("https://crm.example.com/".to_owned());
    })
    .await;
    let contact = app.create_contact(whatsapp("123456789", "John Doe")).await;
    let uuid = contact["uuid"].as_str().expect("uuid");
    assert_eq!(
        contact["href"],
        format!("https://crm.example.com/contacts/{uuid}")
    );
    let conversation = contact["conversationHref"]
        .as_str()
        .and_then(|h| h.strip_prefix("https://crm.example.com/chat/"))
        .expect("conversationHref on the public URL");
    assert!(is_public_id(&json!(conversation)));
}

async fn the_docs_example_succeeds_on_the_demo_account(backend: Backend) {
    let app = demo(backend).await;
    let contact = app.create_contact(whatsapp("123456789", "John Doe")).await;
    assert_eq!(contact["phoneNumber"], "123456789");
    assert_eq!(contact["name"], "John Doe");
    assert_eq!(
        contact["channel"]["uuid"],
        "7c996996fea947f4a1d5a11e7fac84db"
    );
    assert_eq!(contact["team"]["uuid"], "ad42a09715814e6483b1c5debd6a2dbc");
}

async fn requires_identifier_source_and_name(backend: Backend) {
    let app = fresh(backend).await;
    refused(
        &app,
        json!({}),
        "required",
        &[
            ("source", "required"),
            ("identifier", "required"),
            ("name", "required"),
        ],
    )
    .await;
    refused(
        &app,
        whatsapp("   ", "Ada"),
        "blank",
        &[("identifier", "blank")],
    )
    .await;
    refused(
        &app,
        whatsapp("+39 333 1234", " \t "),
        "blank",
        &[("name", "blank")],
    )
    .await;
    refused(
        &app,
        whatsapp("call me maybe", "Ada"),
        "invalid_phone_number",
        &[("identifier", "invalid_phone_number")],
    )
    .await;
    refused(
        &app,
        json!({"identifier": "123", "source": "fax", "name": "Ada"}),
        "invalid_type",
        &[("source", "invalid_type")],
    )
    .await;
    refused(
        &app,
        json!({"identifier": "123", "source": "whatsapp", "name": 5}),
        "invalid_type",
        &[("name", "invalid_type")],
    )
    .await;
    refused(
        &app,
        json!({"identifier": "123", "source": "whatsapp", "name": null}),
        "required",
        &[("name", "required")],
    )
    .await;
    assert_eq!(all_contacts(&app).await, Vec::<Value>::new());
}

async fn tags_come_as_an_array_or_a_comma_separated_string(backend: Backend) {
    let app = demo(backend).await;
    // Canonical spelling, duplicates collapsed, order kept.
    let contact = app
        .create_contact(with(
            whatsapp("1001", "Array"),
            json!({"tags": ["call BACK", "interested", "Call back", "SALES", " hot "]}),
        ))
        .await;
    assert_eq!(
        contact["tags"],
        json!(["Call back", "Interested", "sales", "hot"])
    );
    let contact = app
        .create_contact(with(
            whatsapp("1002", "String"),
            json!({"tags": "hot, Call back ,sales,HOT"}),
        ))
        .await;
    assert_eq!(contact["tags"], json!(["hot", "Call back", "sales"]));
    let contact = app
        .create_contact(with(whatsapp("1003", "Single"), json!({"tags": "lead"})))
        .await;
    assert_eq!(contact["tags"], json!(["lead"]));
    let contact = app
        .create_contact(with(whatsapp("1004", "None"), json!({"tags": []})))
        .await;
    assert_eq!(contact["tags"], json!([]));
    // Read back in the same order.
    let uuid = contact["uuid"].as_str().expect("uuid");
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact()["tags"],
        json!([])
    );
    let listed = all_contacts(&app).await;
    let string = listed
        .iter()
        .find(|c| c["name"] == "String")
        .expect("listed");
    assert_eq!(string["tags"], json!(["hot", "Call back", "sales"]));
}

async fn names_every_unknown_tag(backend: Backend) {
    let app = demo(backend).await;
    let reply = refused(
        &app,
        with(
            whatsapp("2001", "Tags"),
            json!({"tags": ["sales", "Nope", "hot", "Missing"]}),
        ),
        "unknown_tag",
        &[("tags[1]", "unknown_tag"), ("tags[3]", "unknown_tag")],
    )
    .await;
    let messages: Vec<&str> = reply.body["error"]["details"]
        .as_array()
        .expect("details")
        .iter()
        .map(|d| d["message"].as_str().expect("message"))
        .collect();
    assert!(messages[0].contains("'Nope'"), "{messages:?}");
    assert!(messages[1].contains("'Missing'"), "{messages:?}");
    refused(
        &app,
        with(
            whatsapp("2002", "Tags"),
            json!({"tags": "Nope, sales, Other"}),
        ),
        "unknown_tag",
        &[("tags[0]", "unknown_tag"), ("tags[2]", "unknown_tag")],
    )
    .await;
    refused(
        &app,
        with(whatsapp("2003", "Tags"), json!({"tags": ["sales", 7]})),
        "invalid_type",
        &[("tags[1]", "invalid_type")],
    )
    .await;
    refused(
        &app,
        with(whatsapp("2004", "Tags"), json!({"tags": 7})),
        "invalid_type",
        &[("tags", "invalid_type")],
    )
    .await;
}

async fn accepts_every_custom_field_type_in_its_forms(backend: Backend) {
    let app = demo(backend).await;
    let contact = app
        .create_contact(with(
            whatsapp("3001", "Fields"),
            json!({"custom_fields": {
                "zipCode": 12345,
                "VAT": "IT 0123",
                "Work Email": "ada@example.com",
                "orderNumber": 42,
                "Birth Date": "2024-02-29",
                "Status": "inactive",
                "Features": ["analytics", "Dark Mode"],
                "Address": null
            }}),
        ))
        .await;
    assert_eq!(
        contact["customFields"],
        json!({
            "zipCode": "12345",
            "VAT": "IT 0123",
            "Work Email": "ada@example.com",
            "orderNumber": "42",
            "Birth Date": "2024-02-29",
            "Status": "Inactive",
            "Features": "[\"Analytics\", \"Dark Mode\"]"
        })
    );
    // Field names match case-insensitively; values are shown under the
    // field's own name.
    let contact = app
        .create_contact(with(
            whatsapp("3002", "Decimals"),
            json!({"custom_fields": {"ordernumber": "3.50", "STATUS": "ACTIVE", "features": ["Notifications"]}}),
        ))
        .await;
    assert_eq!(
        contact["customFields"],
        json!({"orderNumber": "3.50", "Status": "Active", "Features": "[\"Notifications\"]"})
    );
    for (index, (value, shown)) in [
        (json!(-1.5), "-1.5"),
        (json!("-12"), "-12"),
        (json!(0), "0"),
        (json!("007"), "007"),
    ]
    .into_iter()
    .enumerate()
    {
        let contact = app
            .create_contact(with(
                whatsapp(&format!("310{index}"), "Number"),
                json!({"custom_fields": {"orderNumber": value}}),
            ))
            .await;
        assert_eq!(contact["customFields"], json!({"orderNumber": shown}));
    }
    let contact = app
        .create_contact(with(
            whatsapp("3003", "Text number"),
            json!({"custom_fields": {"zipCode": 2.5, "Birth Date": "1999-12-31"}}),
        ))
        .await;
    assert_eq!(
        contact["customFields"],
        json!({"zipCode": "2.5", "Birth Date": "1999-12-31"})
    );
    // Only nulls: no values at all.
    let contact = app
        .create_contact(with(
            whatsapp("3004", "Nulls"),
            json!({"custom_fields": {"zipCode": null, "Features": null, "Status": null}}),
        ))
        .await;
    assert_eq!(contact["customFields"], json!({}));
    // What a create answered is what a read shows.
    let uuid = contact["uuid"].as_str().expect("uuid");
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact()["customFields"],
        json!({})
    );
}

async fn refuses_custom_field_values_that_do_not_fit(backend: Backend) {
    let app = demo(backend).await;
    let cases: Vec<(&str, Value)> = vec![
        ("zipCode", json!(true)),
        ("zipCode", json!(["a"])),
        ("zipCode", json!({"a": 1})),
        ("Work Email", json!("jane")),
        ("Work Email", json!("jane@")),
        ("Work Email", json!("jane doe@email.com")),
        ("Work Email", json!(5)),
        ("orderNumber", json!("")),
        ("orderNumber", json!("12a")),
        ("orderNumber", json!("1.2.3")),
        ("orderNumber", json!("twelve")),
        ("orderNumber", json!(true)),
        ("orderNumber", json!([1])),
        ("Birth Date", json!("2023-02-29")),
        ("Birth Date", json!("2024-04-31")),
        ("Birth Date", json!("2024-13-01")),
        ("Birth Date", json!("2024-1-01")),
        ("Birth Date", json!("01/02/2024")),
        ("Birth Date", json!(20240101)),
        ("Status", json!("Pending")),
        ("Status", json!(["Active"])),
        ("Status", json!(1)),
        ("Features", json!("Analytics")),
        ("Features", json!(["Telepathy"])),
        ("Features", json!(["Analytics", "analytics"])),
        ("Features", json!(["Analytics", 1])),
        ("Features", json!({"Analytics": true})),
    ];
    for (index, (field, value)) in cases.into_iter().enumerate() {
        let path = format!("custom_fields.{field}");
        let reply = refused(
            &app,
            with(
                whatsapp(&format!("40{index}"), "Bad"),
                json!({"custom_fields": {field: value}}),
            ),
            "invalid_custom_field_value",
            &[(&path, "invalid_custom_field_value")],
        )
        .await;
        assert!(
            reply.body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains(field)),
            "the message names the field: {}",
            reply.text
        );
    }
    // Every offending field at once, unknown fields too.
    refused(
        &app,
        with(
            whatsapp("4100", "Bad"),
            json!({"custom_fields": {
                "zipCode": "fine",
                "Work Email": "nope",
                "Unknown Field": "x",
                "Birth Date": "2023-02-29"
            }}),
        ),
        "validation_failed",
        &[
            ("custom_fields.Work Email", "invalid_custom_field_value"),
            ("custom_fields.Unknown Field", "unknown_custom_field"),
            ("custom_fields.Birth Date", "invalid_custom_field_value"),
        ],
    )
    .await;
    refused(
        &app,
        with(
            whatsapp("4101", "Bad"),
            json!({"custom_fields": ["zipCode"]}),
        ),
        "invalid_type",
        &[("custom_fields", "invalid_type")],
    )
    .await;
}

async fn assigns_users_by_email_in_any_case(backend: Backend) {
    let app = demo(backend).await;
    let contact = app
        .create_contact(with(
            whatsapp("5001", "Assigned"),
            json!({"assigned_user": "JANE.Doe@Email.COM"}),
        ))
        .await;
    assert_eq!(contact["assignedUser"], "jane.doe@email.com");
    refused(
        &app,
        with(
            whatsapp("5002", "Assigned"),
            json!({"assigned_user": "nobody@email.com"}),
        ),
        "unknown_user",
        &[("assigned_user", "unknown_user")],
    )
    .await;
    refused(
        &app,
        with(whatsapp("5003", "Assigned"), json!({"assigned_user": 7})),
        "invalid_type",
        &[("assigned_user", "invalid_type")],
    )
    .await;
}

async fn puts_contacts_in_the_default_team_or_the_one_named(backend: Backend) {
    let app = demo(backend).await;
    let contact = app.create_contact(whatsapp("6001", "Default")).await;
    assert_eq!(contact["team"]["uuid"], "ad42a09715814e6483b1c5debd6a2dbc");
    assert_eq!(contact["team"]["name"], "General");
    assert_eq!(contact["team"]["default"], true);
    let contact = app
        .create_contact(with(
            whatsapp("6002", "Support"),
            json!({"team_uuid": "47aad5f9b4ca423c9d630f06ab93fe1f"}),
        ))
        .await;
    assert_eq!(contact["team"]["uuid"], "47aad5f9b4ca423c9d630f06ab93fe1f");
    assert_eq!(contact["team"]["name"], "Support");
    assert_eq!(contact["team"]["default"], false);
    for team in [
        "00000000000000000000000000000000",
        "not-a-team",
        "47AAD5F9B4CA423C9D630F06AB93FE1F",
    ] {
        refused(
            &app,
            with(whatsapp("6003", "Team"), json!({"team_uuid": team})),
            "unknown_team",
            &[("team_uuid", "unknown_team")],
        )
        .await;
    }
    // Another account's team does not exist here.
    let other = app.create_account("other").await;
    let their_team = app.as_key(&other).get("/teams").await.body["teams"][0]["uuid"]
        .as_str()
        .expect("their team")
        .to_owned();
    refused(
        &app,
        with(whatsapp("6004", "Team"), json!({"team_uuid": their_team})),
        "unknown_team",
        &[("team_uuid", "unknown_team")],
    )
    .await;
}

async fn picks_the_channel_by_uuid_or_the_main_one_of_the_source(backend: Backend) {
    let app = fresh(backend).await;
    let main = app.get("/channels?type=whatsapp").await.body["channels"][0]["uuid"]
        .as_str()
        .expect("main channel")
        .to_owned();
    let second = create_channel(&app, "Second line", "whatsapp", false).await;
    let contact = app
        .create_contact(with(
            whatsapp("+44 20 7946 0000", "Second"),
            json!({"channel_uuid": second}),
        ))
        .await;
    assert_eq!(
        contact["channel"],
        json!({"uuid": second, "title": "Second line", "type": "whatsapp", "main": false})
    );
    // Without channel_uuid: the main channel of the source.
    let contact = app
        .create_contact(whatsapp("+44 20 7946 0000", "Main"))
        .await;
    assert_eq!(contact["channel"]["uuid"], main);

    // No facebook channel yet: nowhere to put the contact.
    let facebook = json!({"identifier": "fb.ada", "source": "facebook", "name": "Ada"});
    refused(
        &app,
        facebook.clone(),
        "no_channel",
        &[("source", "no_channel")],
    )
    .await;
    let page = create_channel(&app, "Page", "facebook", true).await;
    let contact = app.create_contact(facebook.clone()).await;
    assert_eq!(contact["source"], "facebook");
    assert_eq!(contact["phoneNumber"], "fb.ada");
    assert_eq!(
        contact["channel"],
        json!({"uuid": page, "title": "Page", "type": "facebook", "main": true})
    );

    // A channel of another type than the source.
    refused(
        &app,
        with(
            whatsapp("+44 20 7946 0001", "Mismatch"),
            json!({"channel_uuid": page}),
        ),
        "channel_source_mismatch",
        &[("channel_uuid", "channel_source_mismatch")],
    )
    .await;
    // Unknown and malformed channels.
    for channel in ["00000000000000000000000000000000", "line-2"] {
        refused(
            &app,
            with(
                whatsapp("+44 20 7946 0002", "Unknown"),
                json!({"channel_uuid": channel}),
            ),
            "unknown_channel",
            &[("channel_uuid", "unknown_channel")],
        )
        .await;
    }
    // A discarded channel takes no new contacts, named or as the main one.
    app.patch(&format!("/channels/{second}"), json!({"discarded": true}))
        .await
        .assert_status(200);
    refused(
        &app,
        with(
            whatsapp("+44 20 7946 0003", "Discarded"),
            json!({"channel_uuid": second}),
        ),
        "channel_discarded",
        &[("channel_uuid", "channel_discarded")],
    )
    .await;
    app.patch(&format!("/channels/{page}"), json!({"discarded": true}))
        .await
        .assert_status(200);
    refused(
        &app,
        json!({"identifier": "fb.bob", "source": "facebook", "name": "Bob"}),
        "no_channel",
        &[("source", "no_channel")],
    )
    .await;
    // A channel that is not main is used only when named.
    let telegram = create_channel(&app, "Bot", "telegram", false).await;
    let body = json!({"identifier": "@ada", "source": "telegram", "name": "Ada"});
    refused(
        &app,
        body.clone(),
        "no_channel",
        &[("source", "no_channel")],
    )
    .await;
    let contact = app
        .create_contact(with(body, json!({"channel_uuid": telegram})))
        .await;
    assert_eq!(contact["channel"]["uuid"], telegram);
    assert_eq!(contact["source"], "telegram");
}

async fn bot_status_needs_an_enabled_bot(backend: Backend) {
    let app = fresh(backend).await;
    refused(
        &app,
        with(whatsapp("7001", "Bot"), json!({"bot_status": "bot_start"})),
        "no_bot",
        &[("bot_status", "no_bot")],
    )
    .await;
    // No bot, none asked for: no bot state.
    let plain = app.create_contact(whatsapp("7002", "Plain")).await;
    let uuid = plain["uuid"].as_str().expect("uuid");
    app.get(&format!("/contacts/{uuid}/bot"))
        .await
        .assert_error(404, "no_bot");
    // A disabled bot is no bot.
    let bot = post_ok(
        &app,
        "/bots",
        json!({"name": "Greeter", "enabled": false, "version": 3}),
    )
    .await;
    let bot_uuid = bot["bot"]["uuid"].as_str().expect("bot uuid").to_owned();
    refused(
        &app,
        with(whatsapp("7003", "Bot"), json!({"bot_status": "bot_end"})),
        "no_bot",
        &[("bot_status", "no_bot")],
    )
    .await;
    refused(
        &app,
        with(whatsapp("7004", "Bot"), json!({"bot_status": "bot_pause"})),
        "invalid_type",
        &[("bot_status", "invalid_type")],
    )
    .await;
    app.patch(&format!("/bots/{bot_uuid}"), json!({"enabled": true}))
        .await
        .assert_status(200);
    // With an enabled bot and no bot_status, the bot starts.
    let started = app.create_contact(whatsapp("7005", "Started")).await;
    let uuid = started["uuid"].as_str().expect("uuid");
    let bot = app.get(&format!("/contacts/{uuid}/bot")).await;
    bot.assert_status(200);
    assert_eq!(bot.body["bot"]["uuid"], bot_uuid);
    assert_eq!(bot.body["bot"]["status"], "in_progress");
    assert_eq!(
        bot.body["bot"]["conversationStartedAt"],
        started["createdAt"]
    );
    assert_eq!(bot.body["bot"]["version"], 3);
    // bot_end and bot_start as asked.
    let ended = app
        .create_contact(with(
            whatsapp("7006", "Ended"),
            json!({"bot_status": "bot_end"}),
        ))
        .await;
    let uuid = ended["uuid"].as_str().expect("uuid");
    let bot = app.get(&format!("/contacts/{uuid}/bot")).await;
    bot.assert_status(200);
    assert_eq!(bot.body["bot"]["status"], "ended");
    let asked = app
        .create_contact(with(
            whatsapp("7007", "Asked"),
            json!({"bot_status": "bot_start"}),
        ))
        .await;
    let uuid = asked["uuid"].as_str().expect("uuid");
    let bot = app.get(&format!("/contacts/{uuid}/bot")).await;
    assert_eq!(bot.body["bot"]["status"], "in_progress");
    assert_eq!(bot.body["bot"]["conversationStartedAt"], asked["createdAt"]);
}

async fn note_is_at_most_1000_unicode_scalar_values(backend: Backend) {
    let app = fresh(backend).await;
    // 1000 scalar values, 4000 bytes, 2000 UTF-16 code units.
    let crabs = "🦀".repeat(1000);
    let contact = app
        .create_contact(with(whatsapp("8001", "Crabs"), json!({"note": crabs})))
        .await;
    assert_eq!(contact["note"], crabs);
    let accents = "é".repeat(1000);
    let contact = app
        .create_contact(with(whatsapp("8002", "Accents"), json!({"note": accents})))
        .await;
    assert_eq!(contact["note"], accents);
    let uuid = contact["uuid"].as_str().expect("uuid");
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact()["note"],
        accents
    );
    refused(
        &app,
        with(
            whatsapp("8003", "Too long"),
            json!({"note": format!("{crabs}🦀")}),
        ),
        "too_long",
        &[("note", "too_long")],
    )
    .await;
    refused(
        &app,
        with(
            whatsapp("8004", "Too long"),
            json!({"note": "x".repeat(1001)}),
        ),
        "too_long",
        &[("note", "too_long")],
    )
    .await;
    refused(
        &app,
        with(whatsapp("8005", "Wrong"), json!({"note": 5})),
        "invalid_type",
        &[("note", "invalid_type")],
    )
    .await;
}

async fn accepts_the_french_spellings(backend: Backend) {
    let app = demo(backend).await;
    let contact = app
        .create_contact(json!({
            "identifiant": "+33 6 12 34 56 78",
            "source": "whatsapp",
            "nom": "Jean Dupont",
            "champs_personnalisés": {"zipCode": "75001", "Status": "Active"},
            "utilisateur_assigné": "jane.doe@email.com"
        }))
        .await;
    assert_eq!(contact["phoneNumber"], "+33 6 12 34 56 78");
    assert_eq!(contact["name"], "Jean Dupont");
    assert_eq!(
        contact["customFields"],
        json!({"zipCode": "75001", "Status": "Active"})
    );
    assert_eq!(contact["assignedUser"], "jane.doe@email.com");
    // Both spellings with the same value are one parameter.
    let contact = app
        .create_contact(json!({
            "identifier": "+33 6 00 00 00 01",
            "identifiant": "+33 6 00 00 00 01",
            "source": "whatsapp",
            "name": "Marie",
            "nom": "Marie"
        }))
        .await;
    assert_eq!(contact["name"], "Marie");
    // Both with different values: refused, naming every conflict.
    refused(
        &app,
        json!({
            "identifier": "+33 6 00 00 00 02",
            "identifiant": "+33 6 00 00 00 03",
            "source": "whatsapp",
            "name": "Marie",
            "nom": "Marie-Claire",
            "custom_fields": {"zipCode": "1"},
            "champs_personnalisés": {"zipCode": "2"},
            "assigned_user": "jane.doe@email.com",
            "utilisateur_assigné": "john.doe@email.com"
        }),
        "conflicting_fields",
        &[
            ("identifier", "conflicting_fields"),
            ("name", "conflicting_fields"),
            ("custom_fields", "conflicting_fields"),
            ("assigned_user", "conflicting_fields"),
        ],
    )
    .await;
}

async fn refuses_a_second_contact_with_the_same_number(backend: Backend) {
    let app = fresh(backend).await;
    let first = app.create_contact(whatsapp("+39 333-12 34", "First")).await;
    let uuid = first["uuid"].as_str().expect("uuid");
    let before = all_contacts(&app).await;
    for spelling in [
        "393331234",
        "+39 333-12 34",
        "(39) 333 1234",
        " 39.333.1234 ",
    ] {
        let reply = app.post("/contacts", whatsapp(spelling, "Second")).await;
        reply.assert_error(409, "contact_exists");
        let details = reply.body["error"]["details"].as_array().expect("details");
        assert_eq!(details.len(), 1, "body: {}", reply.text);
        assert_eq!(details[0]["uuid"], uuid, "body: {}", reply.text);
        assert_eq!(details[0]["field"], "identifier");
    }
    // A conflict is detected before anything else is written.
    let reply = app
        .post(
            "/contacts",
            with(whatsapp("393331234", "Third"), json!({"note": "n"})),
        )
        .await;
    reply.assert_error(409, "contact_exists");
    assert_eq!(all_contacts(&app).await, before, "nothing changed");
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact(),
        &first
    );

    // Another digit sequence is another number.
    app.create_contact(whatsapp("+39 333-12 345", "Longer"))
        .await;
    // The same number on another channel of the account is fine.
    let second = create_channel(&app, "Second", "whatsapp", false).await;
    let other_channel = app
        .create_contact(with(
            whatsapp("393331234", "Other channel"),
            json!({"channel_uuid": second}),
        ))
        .await;
    assert_eq!(other_channel["channel"]["uuid"], second);
    let reply = app
        .post(
            "/contacts",
            with(
                whatsapp("+39 333 1234", "Again"),
                json!({"channel_uuid": second}),
            ),
        )
        .await;
    reply.assert_error(409, "contact_exists");
    assert_eq!(
        reply.body["error"]["details"][0]["uuid"],
        other_channel["uuid"]
    );
    // So is the same number in another account.
    let other = app.create_account("other").await;
    let theirs = app
        .as_key(&other)
        .post("/contacts", whatsapp("+39 333-12 34", "Theirs"))
        .await;
    theirs.assert_status(200);
    assert_ne!(theirs.contact()["uuid"], first["uuid"]);
}

async fn compares_other_sources_by_the_exact_identifier(backend: Backend) {
    let app = fresh(backend).await;
    create_channel(&app, "Telegram", "telegram", true).await;
    let telegram =
        |identifier: &str| json!({"identifier": identifier, "source": "telegram", "name": "T"});
    let first = app.create_contact(telegram("user 42")).await;
    // Same digits, other identifiers: other contacts.
    app.create_contact(telegram("user42")).await;
    app.create_contact(telegram("42")).await;
    app.create_contact(telegram("USER 42")).await;
    let reply = app.post("/contacts", telegram("user 42")).await;
    reply.assert_error(409, "contact_exists");
    assert_eq!(reply.body["error"]["details"][0]["uuid"], first["uuid"]);
    // A telegram identifier needs no digits.
    let named = app.create_contact(telegram("@ada_lovelace")).await;
    assert_eq!(named["phoneNumber"], "@ada_lovelace");
    assert_eq!(all_contacts(&app).await.len(), 5);
}

async fn failing_requests_change_nothing(backend: Backend) {
    let app = demo(backend).await;
    let before = all_contacts(&app).await;
    // Everything valid but one unknown tag.
    let reply = app
        .post(
            "/contacts",
            json!({
                "identifier": "9001",
                "source": "whatsapp",
                "name": "Almost",
                "tags": ["sales", "hot", "Ghost"],
                "custom_fields": {"zipCode": "1", "Status": "Active"},
                "assigned_user": "jane.doe@email.com",
                "team_uuid": "47aad5f9b4ca423c9d630f06ab93fe1f",
                "bot_status": "bot_end",
                "note": "a note"
            }),
        )
        .await;
    reply.assert_error(422, "unknown_tag");
    assert_eq!(details(&reply), pairs(&[("tags[2]", "unknown_tag")]));
    // Everything wrong at once: every field is named.
    let reply = app
        .post(
            "/contacts",
            json!({
                "identifier": "",
                "source": "whatsapp",
                "name": "",
                "tags": ["Ghost"],
                "custom_fields": {"orderNumber": "x"},
                "assigned_user": "ghost@email.com",
                "team_uuid": "00000000000000000000000000000000",
                "channel_uuid": "00000000000000000000000000000000",
                "note": "n".repeat(1001)
            }),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    let mut expected = vec![
        "identifier",
        "name",
        "tags[0]",
        "custom_fields.orderNumber",
        "assigned_user",
        "team_uuid",
        "channel_uuid",
        "note",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected, "body: {}", reply.text);
    assert_eq!(all_contacts(&app).await, before);
    // The same number can still be created afterwards: nothing was reserved.
    app.create_contact(whatsapp("9001", "Now")).await;
    assert_eq!(all_contacts(&app).await.len(), before.len() + 1);
}

/// A POST with this exact body text (the numbers in it as the client
/// wrote them, which `json!` would turn into floats).
async fn post_raw(app: &TestApp, body: &str) -> Reply {
    crate::helpers::send(
        app.request(reqwest::Method::POST, "/contacts")
            .header("content-type", "application/json")
            .body(body.to_owned()),
    )
    .await
}

/// SPEC §3/§4 and README "Numbers": a number is kept as the exact decimal
/// the client wrote, in number and text fields alike; an exponent is
/// written out, `-0` loses its sign, and one too long to keep is a 422.
async fn numbers_are_kept_exactly_as_written(backend: Backend) {
    let app = demo(backend).await;
    let cases = [
        ("18446744073709551616", "18446744073709551616"),
        ("12345678901234567.5", "12345678901234567.5"),
        ("1.50", "1.50"),
        ("-0", "0"),
        ("-0.0", "0.0"),
        ("1e2", "100"),
        ("1E+2", "100"),
        ("1.5e-3", "0.0015"),
        ("-2.50e1", "-25.0"),
        ("0.1", "0.1"),
        (
            "123456789012345678901234567890e-30",
            "0.123456789012345678901234567890",
        ),
        ("1e400", &format!("1{}", "0".repeat(400))),
    ];
    for (index, (literal, kept)) in cases.iter().enumerate() {
        let body = format!(
            r#"{{"identifier": "+3940{index:02}", "source": "whatsapp", "name": "N",
                "custom_fields": {{"orderNumber": {literal}, "zipCode": {literal}}}}}"#
        );
        let reply = post_raw(&app, &body).await;
        reply.assert_status(200);
        let expected = json!({"orderNumber": kept, "zipCode": kept});
        assert_eq!(reply.contact()["customFields"], expected, "{literal}");
        let uuid = reply.contact()["uuid"].as_str().expect("uuid").to_owned();
        let read = app.get(&format!("/contacts/{uuid}")).await;
        assert_eq!(
            read.contact()["customFields"],
            expected,
            "{literal} read back"
        );
        // A PATCH keeps the literal the same way.
        let patched = crate::helpers::send(
            app.request(reqwest::Method::PATCH, &format!("/contacts/{uuid}"))
                .header("content-type", "application/json")
                .body(format!(
                    r#"{{"custom_fields": {{"orderNumber": null, "zipCode": {literal}}}}}"#
                )),
        )
        .await;
        patched.assert_status(200);
        assert_eq!(
            patched.contact()["customFields"],
            json!({"zipCode": kept}),
            "{literal} patched"
        );
    }
    // Too long once written out: refused, naming the field, creating nothing.
    let count = |reply: crate::helpers::Reply| reply.body["contacts"].as_array().map(Vec::len);
    let before = count(app.get("/contacts").await);
    assert!(before.is_some_and(|n| n > 0));
    for literal in ["1e5000", "-1e-5000", "1e99999999999999999999"] {
        let body = format!(
            r#"{{"identifier": "+394099", "source": "whatsapp", "name": "N",
                "custom_fields": {{"orderNumber": {literal}}}}}"#
        );
        let reply = post_raw(&app, &body).await;
        reply.assert_error(422, "too_long");
        assert_eq!(
            reply.error_fields(),
            ["custom_fields.orderNumber"],
            "{literal}"
        );
    }
    assert_eq!(count(app.get("/contacts").await), before);
}

on_both_backends!(
    create_answers_with_every_contact_field,
    hrefs_use_the_configured_public_url,
    the_docs_example_succeeds_on_the_demo_account,
    requires_identifier_source_and_name,
    tags_come_as_an_array_or_a_comma_separated_string,
    names_every_unknown_tag,
    accepts_every_custom_field_type_in_its_forms,
    numbers_are_kept_exactly_as_written,
    refuses_custom_field_values_that_do_not_fit,
    assigns_users_by_email_in_any_case,
    puts_contacts_in_the_default_team_or_the_one_named,
    picks_the_channel_by_uuid_or_the_main_one_of_the_source,
    bot_status_needs_an_enabled_bot,
    note_is_at_most_1000_unicode_scalar_values,
    accepts_the_french_spellings,
    refuses_a_second_contact_with_the_same_number,
    compares_other_sources_by_the_exact_identifier,
    failing_requests_change_nothing,
);
