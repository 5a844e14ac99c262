//! SPEC §4: looking contacts up by phone number and by bsuid, and deleting
//! them.

use serde_json::{Value, json};

use crate::fixtures::demo::{CHANNEL as DEMO_CHANNEL, JOHN as DEMO_JOHN, MARIO as DEMO_MARIO};
use crate::fixtures::plain_contact;
use crate::helpers::{Backend, Reply, TestApp};
use crate::on_both_backends;

fn uuid_of(contact: &Value) -> String {
    contact["uuid"].as_str().expect("uuid").to_owned()
}

async fn contacts_are_found_by_the_digits_of_their_number(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    let mario = mario.contact().clone();
    for spelling in [
        "3311223344",
        "%2B33%2011%2022%2033%2044",
        "33112233%2044",
        "+3311223344",
        "%2B33-11-22-33-44",
        "(33)%201122%203344",
        "33.11.22.33.44",
    ] {
        let found = app.get(&format!("/contacts/phone/{spelling}")).await;
        let contact = plain_contact(&found);
        assert_eq!(contact, &mario, "{spelling}");
        assert_eq!(contact["phoneNumber"], "+33 11 22 33 44", "spelling kept");
    }
    let john = app.get("/contacts/phone/5790372023").await;
    assert_eq!(plain_contact(&john)["uuid"], DEMO_JOHN);
    // The default channel is the main WhatsApp channel; naming it is the same.
    let named = app
        .get(&format!(
            "/contacts/phone/5790372023?channel_uuid={DEMO_CHANNEL}"
        ))
        .await;
    assert_eq!(plain_contact(&named)["uuid"], DEMO_JOHN);

    for missing in [
        "3311223345",
        "33112233",
        "331122334455",
        "0033112233%2044",
        "no-digits",
        "%20",
    ] {
        app.get(&format!("/contacts/phone/{missing}"))
            .await
            .assert_error(404, "not_found");
    }
    // Lookups are scoped to the account.
    let other = app.create_account("other").await;
    app.as_key(&other)
        .get("/contacts/phone/3311223344")
        .await
        .assert_error(404, "not_found");
    app.as_key(&other)
        .get(&format!(
            "/contacts/phone/3311223344?channel_uuid={DEMO_CHANNEL}"
        ))
        .await
        .assert_error(404, "not_found");
}

async fn phone_lookups_choose_a_channel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let line2 = app
        .post("/channels", json!({"title": "Line 2", "type": "whatsapp"}))
        .await;
    line2.assert_status(200);
    let line2 = uuid_of(&line2.body["channel"]);
    let telegram = app
        .post(
            "/channels",
            json!({"title": "Telegram", "type": "telegram"}),
        )
        .await;
    let telegram = uuid_of(&telegram.body["channel"]);

    let on_main = app
        .create_contact(json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Main"}))
        .await;
    let on_line2 = app
        .create_contact(json!({
            "identifier": "+1 (555) 0100", "source": "whatsapp", "name": "Line two",
            "channel_uuid": line2
        }))
        .await;
    let only_line2 = app
        .create_contact(json!({
            "identifier": "1-555-0199", "source": "whatsapp", "name": "Only two",
            "channel_uuid": line2
        }))
        .await;
    let on_telegram = app
        .create_contact(json!({"identifier": "+1 555 0100", "source": "telegram", "name": "Tg"}))
        .await;

    let found = app.get("/contacts/phone/15550100").await;
    assert_eq!(plain_contact(&found)["uuid"], on_main["uuid"]);
    let found = app
        .get(&format!("/contacts/phone/15550100?channel_uuid={line2}"))
        .await;
    assert_eq!(plain_contact(&found)["uuid"], on_line2["uuid"]);
    assert_eq!(plain_contact(&found)["phoneNumber"], "+1 (555) 0100");
    let found = app
        .get(&format!(
            "/contacts/phone/%2B1%20555%200100?channel_uuid={telegram}"
        ))
        .await;
    assert_eq!(plain_contact(&found)["uuid"], on_telegram["uuid"]);
    assert_eq!(plain_contact(&found)["source"], "telegram");

    app.get("/contacts/phone/15550199")
        .await
        .assert_error(404, "not_found");
    let found = app
        .get(&format!("/contacts/phone/15550199?channel_uuid={line2}"))
        .await;
    assert_eq!(plain_contact(&found)["uuid"], only_line2["uuid"]);

    // Unknown or foreign channels find nothing; a value that cannot be a
    // channel id is a bad query (400, like every bad query value).
    let other = app.create_account("other").await;
    let theirs = app.as_key(&other).get("/channels").await;
    let theirs = uuid_of(&theirs.body["channels"][0]);
    for channel in ["00000000000000000000000000000000", &theirs] {
        app.get(&format!("/contacts/phone/15550100?channel_uuid={channel}"))
            .await
            .assert_error(404, "not_found");
    }
    for channel in ["nope", &line2.to_uppercase()] {
        app.get(&format!("/contacts/phone/15550100?channel_uuid={channel}"))
            .await
            .assert_error(400, "invalid_query");
    }

    // The default follows the main WhatsApp channel.
    app.patch(&format!("/channels/{line2}"), json!({"main": true}))
        .await
        .assert_status(200);
    let found = app.get("/contacts/phone/15550199").await;
    assert_eq!(plain_contact(&found)["uuid"], only_line2["uuid"]);
    let found = app.get("/contacts/phone/15550100").await;
    assert_eq!(plain_contact(&found)["uuid"], on_line2["uuid"]);
}

async fn contacts_are_found_by_bsuid(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.get("/contacts/bsuid/US.13491208655302741918")
        .await
        .assert_error(404, "not_found");
    let patched = app
        .patch(
            &format!("/contacts/{DEMO_MARIO}"),
            json!({"bsuid": "US.13491208655302741918"}),
        )
        .await;
    patched.assert_status(200);
    assert_eq!(patched.contact()["bsuid"], "US.13491208655302741918");

    let found = app.get("/contacts/bsuid/US.13491208655302741918").await;
    let contact = plain_contact(&found);
    assert_eq!(contact["uuid"], DEMO_MARIO);
    assert_eq!(contact["bsuid"], "US.13491208655302741918");
    assert_eq!(
        contact,
        app.get(&format!("/contacts/{DEMO_MARIO}")).await.contact()
    );
    // Exact match only.
    for near in [
        "US.1349120865530274191",
        "US.134912086553027419180",
        "us.13491208655302741918",
    ] {
        app.get(&format!("/contacts/bsuid/{near}"))
            .await
            .assert_error(404, "not_found");
    }
    // URL-encoded characters are decoded.
    app.patch(&format!("/contacts/{DEMO_JOHN}"), json!({"bsuid": "a b/c"}))
        .await
        .assert_status(200);
    let found = app.get("/contacts/bsuid/a%20b%2Fc").await;
    assert_eq!(plain_contact(&found)["uuid"], DEMO_JOHN);
    // One contact per bsuid.
    app.patch(
        &format!("/contacts/{DEMO_JOHN}"),
        json!({"bsuid": "US.13491208655302741918"}),
    )
    .await
    .assert_error(409, "bsuid_taken");
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_JOHN}")).await.contact()["bsuid"],
        "a b/c"
    );
    // Another account does not see it.
    let other = app.create_account("other").await;
    app.as_key(&other)
        .get("/contacts/bsuid/US.13491208655302741918")
        .await
        .assert_error(404, "not_found");
    // Cleared, it finds nothing.
    let cleared = app
        .patch(&format!("/contacts/{DEMO_MARIO}"), json!({"bsuid": null}))
        .await;
    assert_eq!(cleared.contact()["bsuid"], Value::Null);
    app.get("/contacts/bsuid/US.13491208655302741918")
        .await
        .assert_error(404, "not_found");
    // Now John can have it.
    app.patch(
        &format!("/contacts/{DEMO_JOHN}"),
        json!({"bsuid": "US.13491208655302741918"}),
    )
    .await
    .assert_status(200);
    let found = app.get("/contacts/bsuid/US.13491208655302741918").await;
    assert_eq!(plain_contact(&found)["uuid"], DEMO_JOHN);
}

async fn one_contact_per_number_even_when_created_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let spellings = [
        "+39 333 222 1111",
        "393332221111",
        "+39-333-222-1111",
        "(39) 333 2221111",
        "39 333 222 1111",
        "+393332221111",
    ];
    for round in 0..2 {
        let replies = futures::future::join_all(spellings.iter().map(|identifier| {
            app.post(
                "/contacts",
                json!({"identifier": identifier, "source": "whatsapp", "name": "Twin"}),
            )
        }))
        .await;
        let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
        assert_eq!(winners.len(), 1, "round {round}");
        let winner = uuid_of(winners[0].contact());
        for reply in replies.iter().filter(|r| r.status != 200) {
            reply.assert_error(409, "contact_exists");
            assert_eq!(
                reply.body["error"]["details"][0]["uuid"], winner,
                "the duplicate names the contact that exists: {}",
                reply.text
            );
        }
        let found = app.get("/contacts/phone/393332221111").await;
        assert_eq!(plain_contact(&found)["uuid"], winner);
        let listed = app.get("/contacts").await;
        assert_eq!(listed.body["contacts"].as_array().map(Vec::len), Some(1));
        // Deleted, the number is free for the next round.
        app.delete(&format!("/contacts/{winner}"))
            .await
            .assert_status(200);
    }
}

async fn one_contact_per_bsuid_even_when_set_at_once(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut paths = Vec::new();
    for n in 0..4 {
        let contact = app
            .create_contact(
                json!({"identifier": format!("100{n}"), "source": "whatsapp", "name": "B"}),
            )
            .await;
        paths.push(format!("/contacts/{}", uuid_of(&contact)));
    }
    let replies = futures::future::join_all(
        paths
            .iter()
            .map(|path| app.patch(path, json!({"bsuid": "BS.shared"}))),
    )
    .await;
    let winners: Vec<&Reply> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(winners.len(), 1);
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.assert_error(409, "bsuid_taken");
    }
    let found = app.get("/contacts/bsuid/BS.shared").await;
    assert_eq!(plain_contact(&found)["uuid"], winners[0].contact()["uuid"]);
}

async fn deleted_contacts_are_gone_with_their_messages(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let contact = app
        .create_contact(
            json!({"identifier": "+39 333 123 4567", "source": "whatsapp", "name": "Gone"}),
        )
        .await;
    let uuid = uuid_of(&contact);
    let keeper = app
        .create_contact(
            json!({"identifier": "+39 333 765 4321", "source": "whatsapp", "name": "Stays"}),
        )
        .await;
    app.patch(&format!("/contacts/{uuid}"), json!({"bsuid": "BS.gone"}))
        .await
        .assert_status(200);
    app.post(
        &format!("/contacts/{uuid}/conversation/note"),
        json!({"text": "last words"}),
    )
    .await
    .assert_status(200);
    app.post(
        &format!("/contacts/{}/conversation/note", uuid_of(&keeper)),
        json!({"text": "still here"}),
    )
    .await
    .assert_status(200);

    let deleted = app.delete(&format!("/contacts/{uuid}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "contact was destroyed"}));

    app.get(&format!("/contacts/{uuid}"))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/contacts/{uuid}/messages"))
        .await
        .assert_error(404, "not_found");
    app.get("/contacts/phone/393331234567")
        .await
        .assert_error(404, "not_found");
    app.get("/contacts/bsuid/BS.gone")
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/contacts/{uuid}"))
        .await
        .assert_error(404, "not_found");
    let listed = app.get("/contacts").await;
    assert_eq!(listed.body["contacts"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["contacts"][0]["uuid"], keeper["uuid"]);
    let kept = app
        .get(&format!("/contacts/{}/messages", uuid_of(&keeper)))
        .await;
    assert_eq!(kept.body["messages"][0]["text"], "still here");

    // The number is free again, for a new contact with a new conversation.
    let again = app
        .create_contact(json!({"identifier": "393331234567", "source": "whatsapp", "name": "Back"}))
        .await;
    assert_ne!(again["uuid"], contact["uuid"]);
    assert_ne!(again["conversationHref"], contact["conversationHref"]);
    assert_eq!(again["bsuid"], Value::Null);
    assert_eq!(again["closedAt"], Value::Null);
    let messages = app
        .get(&format!("/contacts/{}/messages", uuid_of(&again)))
        .await;
    assert_eq!(
        messages.body,
        json!({"messages": [], "meta": {"page": 1, "pages": 1}})
    );
    let found = app.get("/contacts/phone/+39%20333%20123%204567").await;
    assert_eq!(plain_contact(&found)["uuid"], again["uuid"]);
    // So is the bsuid.
    app.patch(
        &format!("/contacts/{}", uuid_of(&again)),
        json!({"bsuid": "BS.gone"}),
    )
    .await
    .assert_status(200);
}

async fn deleting_contacts_frees_their_team_and_channel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let channel = app
        .post("/channels", json!({"title": "Line 2", "type": "whatsapp"}))
        .await;
    let channel = uuid_of(&channel.body["channel"]);
    let team = app.post("/teams", json!({"name": "Sales"})).await;
    let team = uuid_of(&team.body["team"]);
    let contact = app
        .create_contact(json!({
            "identifier": "1", "source": "whatsapp", "name": "Only",
            "channel_uuid": channel, "team_uuid": team
        }))
        .await;
    app.delete(&format!("/channels/{channel}"))
        .await
        .assert_error(409, "channel_in_use");
    app.delete(&format!("/teams/{team}"))
        .await
        .assert_error(409, "team_in_use");
    app.delete(&format!("/contacts/{}", uuid_of(&contact)))
        .await
        .assert_status(200);
    app.delete(&format!("/channels/{channel}"))
        .await
        .assert_status(200);
    app.delete(&format!("/teams/{team}"))
        .await
        .assert_status(200);
}

async fn only_existing_contacts_of_the_account_are_deleted(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    for id in [
        "nope",
        "414A6D692BD645ED803F2E7CE360D4C8",
        "414a6d69-2bd6-45ed-803f-2e7ce360d4c8",
        "00000000000000000000000000000000",
    ] {
        app.delete(&format!("/contacts/{id}"))
            .await
            .assert_error(404, "not_found");
    }
    let other = app.create_account("other").await;
    app.as_key(&other)
        .delete(&format!("/contacts/{DEMO_MARIO}"))
        .await
        .assert_error(404, "not_found");
    app.get(&format!("/contacts/{DEMO_MARIO}"))
        .await
        .assert_status(200);

    app.delete(&format!("/contacts/{DEMO_MARIO}"))
        .await
        .assert_status(200);
    let listed = app.get("/contacts").await;
    let uuids: Vec<&Value> = listed.body["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .map(|c| &c["uuid"])
        .collect();
    assert_eq!(uuids, [DEMO_JOHN]);
    app.get("/contacts/phone/3311223344")
        .await
        .assert_error(404, "not_found");
    // Tags it had are still there for others.
    assert_eq!(
        app.get(&format!("/contacts/{DEMO_JOHN}")).await.contact()["tags"],
        json!(["sales", "lead"])
    );
    let hot = app.get("/tags/hot").await;
    hot.assert_status(200);
}

on_both_backends!(
    contacts_are_found_by_the_digits_of_their_number,
    phone_lookups_choose_a_channel,
    contacts_are_found_by_bsuid,
    one_contact_per_number_even_when_created_at_once,
    one_contact_per_bsuid_even_when_set_at_once,
    deleted_contacts_are_gone_with_their_messages,
    deleting_contacts_frees_their_team_and_channel,
    only_existing_contacts_of_the_account_are_deleted,
);
