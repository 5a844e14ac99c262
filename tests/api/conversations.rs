//! SPEC §4, "Lookups and the rest of the family": a contact's conversation
//! (close, open, notes, funnel), its messages, and its bot.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::demo::{
    AWARENESS, BOT as DEMO_BOT, DESIRE, INTEREST, JOHN as DEMO_JOHN, MARIO as DEMO_MARIO,
    SUPPORT as DEMO_SUPPORT,
};
use crate::fixtures::{assert_timestamp, contact_in_array, keys, plain_contact};
use crate::helpers::{Backend, TestApp, send};
use crate::on_both_backends;

async fn new_contact(app: &TestApp, identifier: &str) -> String {
    let contact = app
        .create_contact(json!({"identifier": identifier, "source": "whatsapp", "name": "Talker"}))
        .await;
    contact["uuid"].as_str().expect("uuid").to_owned()
}

/// The texts of a contact's first page of messages, newest first.
async fn message_texts(app: &TestApp, uuid: &str) -> Vec<String> {
    let reply = app.get(&format!("/contacts/{uuid}/messages")).await;
    reply.assert_status(200);
    reply.body["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .map(|m| m["text"].as_str().expect("text").to_owned())
        .collect()
}

async fn closing_sets_closed_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0001").await;
    let before = app.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(
        before.contact()["closedAt"],
        Value::Null,
        "open when created"
    );

    // As Callbell's examples send it: no body, JSON content type.
    let close_path = format!("/contacts/{uuid}/conversation/close");
    let closed = send(
        app.request(Method::POST, &close_path)
            .header("Content-Type", "application/json"),
    )
    .await;
    let contact = plain_contact(&closed).clone();
    assert_eq!(contact["uuid"], uuid.as_str());
    assert_timestamp(&contact["closedAt"]);
    let closed_at = contact["closedAt"].clone();
    let reread = app.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(reread.contact(), &contact);

    // Closing again keeps the first time and records nothing more.
    for _ in 0..3 {
        let again = app.post(&close_path, json!({})).await;
        assert_eq!(plain_contact(&again)["closedAt"], closed_at);
    }
    let again = send(app.request(Method::POST, &close_path)).await;
    assert_eq!(plain_contact(&again)["closedAt"], closed_at);
    assert_eq!(
        message_texts(&app, &uuid).await,
        ["Conversation was closed"]
    );
    let reread = app.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(reread.contact()["closedAt"], closed_at);
    // The listing agrees.
    let listed = app.get("/contacts").await;
    assert_eq!(listed.body["contacts"][0]["closedAt"], closed_at);
}

async fn concurrent_closes_and_notes_all_count_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0006").await;
    let close_path = format!("/contacts/{uuid}/conversation/close");
    let note_path = format!("/contacts/{uuid}/conversation/note");
    let closes = (0..6).map(|_| app.post(&close_path, json!({})));
    let notes = (0..6).map(|n| app.post(&note_path, json!({ "text": format!("n{n}") })));
    let (closes, notes) = futures::join!(
        futures::future::join_all(closes),
        futures::future::join_all(notes)
    );
    let closed_at = plain_contact(&closes[0])["closedAt"].clone();
    assert_timestamp(&closed_at);
    for reply in &closes {
        assert_eq!(plain_contact(reply)["closedAt"], closed_at);
    }
    for reply in &notes {
        reply.assert_status(200);
    }
    let texts = message_texts(&app, &uuid).await;
    assert_eq!(texts.len(), 7, "{texts:?}");
    assert_eq!(
        texts
            .iter()
            .filter(|t| *t == "Conversation was closed")
            .count(),
        1
    );
}

async fn opening_clears_closed_at(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0002").await;
    let open_path = format!("/contacts/{uuid}/conversation/open");
    // Opening an open conversation changes and records nothing.
    let opened = app.post(&open_path, json!({})).await;
    assert_eq!(contact_in_array(&opened)["closedAt"], Value::Null);
    assert_eq!(message_texts(&app, &uuid).await, Vec::<String>::new());

    app.post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    let opened = send(
        app.request(Method::POST, &open_path)
            .header("Content-Type", "application/json"),
    )
    .await;
    let contact = contact_in_array(&opened).clone();
    assert_eq!(contact["uuid"], uuid.as_str());
    assert_eq!(contact["closedAt"], Value::Null);
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact(),
        &contact
    );
    let again = app.post(&open_path, json!({})).await;
    assert_eq!(contact_in_array(&again)["closedAt"], Value::Null);
    assert_eq!(
        message_texts(&app, &uuid).await,
        ["Conversation was reopened", "Conversation was closed"]
    );

    // Closed again, it gets a time of its own.
    let closed = app
        .post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
        .await;
    assert_timestamp(&plain_contact(&closed)["closedAt"]);
    assert_eq!(
        message_texts(&app, &uuid).await,
        [
            "Conversation was closed",
            "Conversation was reopened",
            "Conversation was closed"
        ]
    );
    // Open and close take no parameters: whatever body comes is ignored
    // (axios, for one, sends `""` for the docs' empty string).
    for body in ["[1]", "\"\"", "not json"] {
        let reply = send(
            app.request(Method::POST, &open_path)
                .header("Content-Type", "application/json")
                .body(body),
        )
        .await;
        reply.assert_status(200);
    }
}

async fn notes_are_added_as_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0003").await;
    let path = format!("/contacts/{uuid}/conversation/note");
    let added = app
        .post(&path, json!({"text": "Called back, no answer"}))
        .await;
    added.assert_status(200);
    assert_eq!(added.body, json!({"success": true}));

    let messages = app.get(&format!("/contacts/{uuid}/messages")).await;
    messages.assert_status(200);
    assert_eq!(keys(&messages.body), ["messages", "meta"]);
    assert_eq!(messages.body["meta"], json!({"page": 1, "pages": 1}));
    let list = messages.body["messages"].as_array().expect("messages");
    assert_eq!(list.len(), 1);
    let note = &list[0];
    assert_eq!(
        keys(note),
        [
            "channel",
            "createdAt",
            "from",
            "status",
            "text",
            "to",
            "uuid"
        ]
    );
    assert_eq!(note["text"], "Called back, no answer");
    assert_eq!(note["status"], "note");
    assert_eq!(note["channel"], "whatsapp");
    assert!(note["from"].is_string() && note["to"].is_string(), "{note}");
    assert_timestamp(&note["createdAt"]);
    let id = note["uuid"].as_str().expect("uuid");
    assert!(
        id.len() == 32 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{id}"
    );

    // Limits are counted in characters, not bytes.
    app.post(&path, json!({"text": "é".repeat(4096)}))
        .await
        .assert_status(200);
    app.post(&path, json!({"text": "n".repeat(4096)}))
        .await
        .assert_status(200);
    let refused = [
        (json!({}), "required"),
        (json!({"text": null}), "required"),
        (json!({"note": "wrong key"}), "required"),
        (json!({"text": ""}), "blank"),
        (json!({"text": " \n\t "}), "blank"),
        (json!({"text": 42}), "invalid_type"),
        (json!({"text": ["a"]}), "invalid_type"),
        (json!({"text": "n".repeat(4097)}), "too_long"),
        (json!({"text": "é".repeat(4097)}), "too_long"),
    ];
    for (body, code) in refused {
        let reply = app.post(&path, body.clone()).await;
        reply.assert_error(422, code);
        assert_eq!(reply.error_fields(), ["text"], "{body}");
    }
    send(app.request(Method::POST, &path))
        .await
        .assert_error(400, "invalid_json");
    let texts = message_texts(&app, &uuid).await;
    assert_eq!(texts.len(), 3, "nothing refused was recorded");
    assert_eq!(texts[0], "n".repeat(4096));
    assert_eq!(texts[1], "é".repeat(4096));
    // A note does not touch the conversation's state.
    assert_eq!(
        app.get(&format!("/contacts/{uuid}")).await.contact()["closedAt"],
        Value::Null
    );
}

async fn update_funnel_sets_and_clears_the_funnel(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let put_path = format!("/contacts/{DEMO_JOHN}/conversation/update_funnel");
    let post_path = format!("/contacts/{DEMO_JOHN}/messages/update_funnel");
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_JOHN}")).await.contact()["funnelId"],
        Value::Null
    );

    let moved = app.put(&put_path, json!({"funnel_id": AWARENESS})).await;
    let contact = contact_in_array(&moved).clone();
    assert_eq!(contact["funnelId"], AWARENESS);
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_JOHN}")).await.contact(),
        &contact
    );

    let moved = app.post(&post_path, json!({"funnel_id": INTEREST})).await;
    assert_eq!(contact_in_array(&moved)["funnelId"], INTEREST);
    // The same funnel again changes and records nothing.
    let same = app.put(&put_path, json!({"funnel_id": INTEREST})).await;
    assert_eq!(contact_in_array(&same)["funnelId"], INTEREST);

    let moved = app.put(&put_path, json!({"funnel_id": DESIRE})).await;
    assert_eq!(contact_in_array(&moved)["funnelId"], DESIRE);

    let other = app.create_account("other").await;
    let other_funnel = app
        .as_key(&other)
        .post("/funnels", json!({"name": "Theirs"}))
        .await;
    other_funnel.assert_status(200);
    let theirs = other_funnel.body["funnel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    for funnel in [
        json!("00000000-0000-0000-0000-000000000000"),
        json!("nope"),
        json!("ff0f96b9b0034d0cb14f27f3f6868dd6"),
        json!("FF0F96B9-B003-4D0C-B14F-27F3F6868DD6"),
        json!(""),
        json!(theirs),
    ] {
        for reply in [
            app.put(&put_path, json!({ "funnel_id": funnel })).await,
            app.post(&post_path, json!({ "funnel_id": funnel })).await,
        ] {
            reply.assert_error(422, "unknown_funnel");
            assert_eq!(reply.error_fields(), ["funnel_id"], "{funnel}");
        }
    }
    for (body, code) in [
        (json!({}), "required"),
        (json!({"funnelId": AWARENESS}), "required"),
        (json!({"funnel_id": 5}), "invalid_type"),
    ] {
        for reply in [
            app.put(&put_path, body.clone()).await,
            app.post(&post_path, body.clone()).await,
        ] {
            reply.assert_error(422, code);
            assert_eq!(reply.error_fields(), ["funnel_id"], "{body}");
        }
    }
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_JOHN}")).await.contact()["funnelId"],
        DESIRE,
        "nothing refused changed the funnel"
    );

    let cleared = app.post(&post_path, json!({"funnel_id": null})).await;
    assert_eq!(contact_in_array(&cleared)["funnelId"], Value::Null);
    let cleared = app.put(&put_path, json!({"funnel_id": null})).await;
    assert_eq!(contact_in_array(&cleared)["funnelId"], Value::Null);
    assert_eq!(
        message_texts(&app, DEMO_JOHN).await,
        [
            "Conversation was removed from its funnel",
            "Conversation was moved to funnel Desire",
            "Conversation was moved to funnel Interest",
            "Conversation was moved to funnel Awareness",
        ]
    );
    // Only John moved.
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_MARIO}")).await.contact()["funnelId"],
        Value::Null
    );
    // The funnel shows on listings too.
    app.put(&put_path, json!({"funnel_id": AWARENESS}))
        .await
        .assert_status(200);
    let listed = app.get("/contacts").await;
    let john = listed.body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .find(|c| c["uuid"] == DEMO_JOHN)
        .expect("john listed");
    assert_eq!(john["funnelId"], AWARENESS);
}

async fn messages_come_twenty_a_page_newest_first(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0004").await;
    let empty = app.get(&format!("/contacts/{uuid}/messages")).await;
    empty.assert_status(200);
    assert_eq!(
        empty.body,
        json!({"messages": [], "meta": {"page": 1, "pages": 1}})
    );

    let path = format!("/contacts/{uuid}/conversation/note");
    for n in 1..=41 {
        app.post(&path, json!({ "text": format!("note {n}") }))
            .await
            .assert_status(200);
    }
    let mut seen = Vec::new();
    for (page, first, count) in [(1, 41, 20), (2, 21, 20), (3, 1, 1)] {
        let reply = app
            .get(&format!("/contacts/{uuid}/messages?page={page}"))
            .await;
        reply.assert_status(200);
        assert_eq!(reply.body["meta"], json!({"page": page, "pages": 3}));
        let list = reply.body["messages"].as_array().expect("messages");
        assert_eq!(list.len(), count);
        for (i, message) in list.iter().enumerate() {
            assert_eq!(message["text"], format!("note {}", first - i));
            assert_eq!(message["status"], "note");
            seen.push(message["uuid"].as_str().expect("uuid").to_owned());
        }
    }
    seen.sort();
    seen.dedup();
    assert_eq!(seen.len(), 41, "every message once, each with its own uuid");
    // Without `page` it is page 1.
    let first = app.get(&format!("/contacts/{uuid}/messages")).await;
    assert_eq!(first.body["meta"], json!({"page": 1, "pages": 3}));
    assert_eq!(first.body["messages"][0]["text"], "note 41");
    // Past the end: an empty page.
    let past = app.get(&format!("/contacts/{uuid}/messages?page=4")).await;
    past.assert_status(200);
    assert_eq!(
        past.body,
        json!({"messages": [], "meta": {"page": 4, "pages": 3}})
    );
    for bad in ["0", "-1", "abc", "1.5"] {
        app.get(&format!("/contacts/{uuid}/messages?page={bad}"))
            .await
            .assert_error(400, "invalid_query");
    }
}

async fn messages_record_conversation_events(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let contact = format!("/contacts/{DEMO_MARIO}");
    assert_eq!(message_texts(&app, DEMO_MARIO).await, Vec::<String>::new());

    app.patch(&contact, json!({"assigned_user": "jane.doe@email.com"}))
        .await
        .assert_status(200);
    app.patch(&contact, json!({"team_uuid": DEMO_SUPPORT}))
        .await
        .assert_status(200);
    app.put(
        &format!("{contact}/conversation/update_funnel"),
        json!({"funnel_id": AWARENESS}),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("{contact}/conversation/note"),
        json!({"text": "Wants a call"}),
    )
    .await
    .assert_status(200);
    app.post(&format!("{contact}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    app.post(&format!("{contact}/conversation/open"), json!({}))
        .await
        .assert_status(200);
    // Changes that change nothing record nothing.
    app.patch(
        &contact,
        json!({"assigned_user": "JANE.DOE@email.com", "team_uuid": DEMO_SUPPORT}),
    )
    .await
    .assert_status(200);
    app.patch(&contact, json!({"name": "Mario R.", "tags": ["hot"]}))
        .await
        .assert_status(200);
    app.patch(&contact, json!({"unassign_user": true}))
        .await
        .assert_status(200);
    // A refused change records nothing either.
    app.patch(
        &contact,
        json!({"assigned_user": "john.doe@email.com", "team_uuid": "00000000000000000000000000000000"}),
    )
    .await
    .assert_error(422, "unknown_team");

    let reply = app.get(&format!("{contact}/messages")).await;
    reply.assert_status(200);
    let list = reply.body["messages"].as_array().expect("messages");
    let texts: Vec<&str> = list
        .iter()
        .map(|m| m["text"].as_str().expect("text"))
        .collect();
    assert_eq!(
        texts,
        [
            "Conversation was unassigned",
            "Conversation was reopened",
            "Conversation was closed",
            "Wants a call",
            "Conversation was moved to funnel Awareness",
            "Conversation was moved to team Support",
            "Conversation was assigned to Jane Doe",
        ]
    );
    for message in list {
        assert_eq!(
            keys(message),
            [
                "channel",
                "createdAt",
                "from",
                "status",
                "text",
                "to",
                "uuid"
            ]
        );
        assert_eq!(message["status"], "note");
        assert_eq!(message["channel"], "whatsapp");
        assert_timestamp(&message["createdAt"]);
    }
    // John's conversation is his own.
    assert_eq!(message_texts(&app, DEMO_JOHN).await, Vec::<String>::new());
}

async fn the_bot_follows_start_and_end(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let bot_path = format!("/contacts/{DEMO_JOHN}/bot");
    let got = app.get(&bot_path).await;
    got.assert_status(200);
    assert_eq!(
        got.body,
        json!({
            "bot": {
                "uuid": DEMO_BOT,
                "name": "My Bot",
                "status": "in_progress",
                "conversationStartedAt": "2020-11-13T21:08:53Z",
                "version": 5,
                "latestBotVersion": true
            }
        })
    );

    let ended = app.post(&bot_path, json!({"status": "bot_end"})).await;
    ended.assert_status(200);
    assert_eq!(keys(&ended.body), ["bot"]);
    let bot = &ended.body["bot"];
    assert_eq!(
        keys(bot),
        [
            "conversationStartedAt",
            "latestBotVersion",
            "name",
            "status",
            "uuid",
            "version"
        ]
    );
    assert_eq!(bot["uuid"], DEMO_BOT);
    assert_eq!(bot["name"], "My Bot");
    assert_eq!(bot["status"], "ended");
    assert_eq!(bot["version"], 5);
    assert_eq!(bot["latestBotVersion"], true);
    assert_eq!(app.get(&bot_path).await.body["bot"]["status"], "ended");

    let started = app.post(&bot_path, json!({"status": "bot_start"})).await;
    started.assert_status(200);
    assert_eq!(started.body["bot"]["status"], "started");
    assert_eq!(
        app.get(&bot_path).await.body["bot"]["status"],
        "in_progress"
    );
    // Started but closed is just started.
    app.post(
        &format!("/contacts/{DEMO_JOHN}/conversation/close"),
        json!({}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.get(&bot_path).await.body["bot"]["status"], "started");
    app.post(&bot_path, json!({"status": "bot_end"}))
        .await
        .assert_status(200);
    assert_eq!(app.get(&bot_path).await.body["bot"]["status"], "ended");

    // A newer bot version: the contact runs the old one until restarted.
    app.patch(&format!("/bots/{DEMO_BOT}"), json!({"version": 6}))
        .await
        .assert_status(200);
    let old = app.get(&format!("/contacts/{DEMO_MARIO}/bot")).await;
    assert_eq!(old.body["bot"]["version"], 5);
    assert_eq!(old.body["bot"]["latestBotVersion"], false);
    let restarted = app
        .post(
            &format!("/contacts/{DEMO_MARIO}/bot"),
            json!({"status": "bot_start"}),
        )
        .await;
    restarted.assert_status(200);
    assert_eq!(restarted.body["bot"]["version"], 6);
    assert_eq!(restarted.body["bot"]["latestBotVersion"], true);

    for (body, code) in [
        (json!({}), "required"),
        (json!({"status": null}), "required"),
        (json!({"status": "bot_pause"}), "invalid_type"),
        (json!({"status": "started"}), "invalid_type"),
        (json!({"status": 1}), "invalid_type"),
    ] {
        let reply = app.post(&bot_path, body.clone()).await;
        reply.assert_error(422, code);
        assert_eq!(reply.error_fields(), ["status"], "{body}");
    }
    assert_eq!(app.get(&bot_path).await.body["bot"]["status"], "ended");
}

async fn without_an_enabled_bot_there_is_no_bot(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let uuid = new_contact(&app, "+39 333 100 0005").await;
    let bot_path = format!("/contacts/{uuid}/bot");
    app.get(&bot_path).await.assert_error(404, "no_bot");
    app.post(&bot_path, json!({"status": "bot_start"}))
        .await
        .assert_error(404, "no_bot");
    app.post(&bot_path, json!({"status": "bot_pause"}))
        .await
        .assert_error(422, "invalid_type");
    // A contact that does not exist is not found, bot or no bot.
    for id in ["00000000000000000000000000000000", "nope"] {
        app.get(&format!("/contacts/{id}/bot"))
            .await
            .assert_error(404, "not_found");
        app.post(
            &format!("/contacts/{id}/bot"),
            json!({"status": "bot_start"}),
        )
        .await
        .assert_error(404, "not_found");
    }

    // An enabled bot runs for contacts that never had one.
    let created = app.post("/bots", json!({"name": "Helper"})).await;
    created.assert_status(200);
    let bot_uuid = created.body["bot"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let got = app.get(&bot_path).await;
    got.assert_status(200);
    assert_eq!(got.body["bot"]["uuid"], bot_uuid.as_str());
    assert_eq!(got.body["bot"]["name"], "Helper");
    let ended = app.post(&bot_path, json!({"status": "bot_end"})).await;
    assert_eq!(ended.body["bot"]["status"], "ended");

    // Disabled, it is gone again.
    app.patch(&format!("/bots/{bot_uuid}"), json!({"enabled": false}))
        .await
        .assert_status(200);
    app.get(&bot_path).await.assert_error(404, "no_bot");
    app.post(&bot_path, json!({"status": "bot_start"}))
        .await
        .assert_error(404, "no_bot");
    // Deleted, too.
    app.patch(&format!("/bots/{bot_uuid}"), json!({"enabled": true}))
        .await
        .assert_status(200);
    app.get(&bot_path).await.assert_status(200);
    app.delete(&format!("/bots/{bot_uuid}"))
        .await
        .assert_status(200);
    app.get(&bot_path).await.assert_error(404, "no_bot");
}

async fn unknown_contacts_are_not_found_on_every_route(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let other = app.create_account("other").await;
    let them = app.as_key(&other);
    // They have a bot and a funnel of their own, so only the contact is missing.
    them.post("/bots", json!({"name": "Their bot"}))
        .await
        .assert_status(200);
    let their_funnel = them.post("/funnels", json!({"name": "Theirs"})).await;
    let their_funnel = their_funnel.body["funnel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();

    let routes = |id: &str| {
        [
            (
                Method::POST,
                format!("/contacts/{id}/conversation/close"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/contacts/{id}/conversation/open"),
                json!({}),
            ),
            (
                Method::POST,
                format!("/contacts/{id}/conversation/note"),
                json!({"text": "x"}),
            ),
            (
                Method::PUT,
                format!("/contacts/{id}/conversation/update_funnel"),
                json!({"funnel_id": null}),
            ),
            (
                Method::POST,
                format!("/contacts/{id}/messages/update_funnel"),
                json!({"funnel_id": null}),
            ),
            (Method::GET, format!("/contacts/{id}/messages"), Value::Null),
            (Method::GET, format!("/contacts/{id}/bot"), Value::Null),
            (
                Method::POST,
                format!("/contacts/{id}/bot"),
                json!({"status": "bot_end"}),
            ),
        ]
    };
    for id in [
        "nope",
        "414A6D692BD645ED803F2E7CE360D4C8",
        "414a6d69-2bd6-45ed-803f-2e7ce360d4c8",
        "0",
        "00000000000000000000000000000000",
    ] {
        for (method, path, body) in routes(id) {
            let mut request = app.request(method.clone(), &path);
            if !body.is_null() {
                request = request.json(&body);
            }
            send(request).await.assert_error(404, "not_found");
        }
    }
    // Demo contacts, seen from another account.
    for id in [DEMO_JOHN, DEMO_MARIO] {
        for (method, path, body) in routes(id) {
            let mut request = them.request(method.clone(), &path);
            if !body.is_null() {
                request = request.json(&body);
            }
            let reply = send(request).await;
            reply.assert_error(404, "not_found");
        }
        let reply = send(
            them.request(
                Method::PUT,
                &format!("/contacts/{id}/conversation/update_funnel"),
            )
            .json(&json!({ "funnel_id": their_funnel })),
        )
        .await;
        reply.assert_error(404, "not_found");
    }
    // Nothing happened to them.
    for id in [DEMO_JOHN, DEMO_MARIO] {
        let contact = app.get(&format!("/contacts/{id}")).await;
        assert_eq!(contact.contact()["closedAt"], Value::Null);
        assert_eq!(contact.contact()["funnelId"], Value::Null);
        assert_eq!(message_texts(&app, id).await, Vec::<String>::new());
        assert_eq!(
            app.get(&format!("/contacts/{id}/bot")).await.body["bot"]["status"],
            "in_progress"
        );
    }
}

on_both_backends!(
    closing_sets_closed_at_once,
    concurrent_closes_and_notes_all_count_once,
    opening_clears_closed_at,
    notes_are_added_as_messages,
    update_funnel_sets_and_clears_the_funnel,
    messages_come_twenty_a_page_newest_first,
    messages_record_conversation_events,
    the_bot_follows_start_and_end,
    without_an_enabled_bot_there_is_no_bot,
    unknown_contacts_are_not_found_on_every_route,
);
