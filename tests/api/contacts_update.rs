//! SPEC §4: `PATCH /contacts/:uuid` — what each field changes, what it
//! leaves alone, and that a refused update changes nothing.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::demo::{JOHN, SUPPORT};
use crate::fixtures::{details, pairs};
use crate::helpers::{Backend, TestApp, send};
use crate::on_both_backends;

/// A server with the SPEC §6 demo account, without a rate limit.
async fn demo(backend: Backend) -> TestApp {
    TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.rate_limit_rps = 0;
    })
    .await
}

async fn read(app: &TestApp, uuid: &str) -> Value {
    let reply = app.get(&format!("/contacts/{uuid}")).await;
    reply.assert_status(200);
    reply.contact().clone()
}

/// Patches, expects 200 and the `{"contact": [C]}` envelope, and checks
/// that a read shows what the update answered.
async fn patched(app: &TestApp, uuid: &str, body: Value) -> Value {
    let reply = app.patch(&format!("/contacts/{uuid}"), body).await;
    reply.assert_status(200);
    assert_eq!(
        reply
            .body
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect::<Vec<_>>()),
        Some(vec!["contact"])
    );
    assert_eq!(reply.body["contact"].as_array().map(Vec::len), Some(1));
    let contact = reply.contact().clone();
    assert_eq!(read(app, uuid).await, contact, "stored as answered");
    contact
}

/// Patches, expects a 422 with `code` and exactly these details, and checks
/// that the contact is exactly as before.
async fn refused(app: &TestApp, uuid: &str, body: Value, code: &str, expected: &[(&str, &str)]) {
    let before = read(app, uuid).await;
    let reply = app.patch(&format!("/contacts/{uuid}"), body).await;
    reply.assert_error(422, code);
    assert_eq!(details(&reply), pairs(expected), "body: {}", reply.text);
    assert_eq!(
        read(app, uuid).await,
        before,
        "a refused update changed nothing"
    );
}

/// A contact with something in every field PATCH can change.
async fn full_contact(app: &TestApp, identifier: &str) -> Value {
    app.create_contact(json!({
        "identifier": identifier,
        "source": "whatsapp",
        "name": "Ada Lovelace",
        "tags": ["sales", "hot"],
        "custom_fields": {"zipCode": "10115", "VAT": "DE1", "Status": "Active", "Features": ["Analytics"]},
        "assigned_user": "jane.doe@email.com",
        "note": "first note"
    }))
    .await
}

/// The status `GET /contacts/:uuid/bot` reports.
async fn bot_status(app: &TestApp, uuid: &str) -> Value {
    let reply = app.get(&format!("/contacts/{uuid}/bot")).await;
    reply.assert_status(200);
    reply.body["bot"]["status"].clone()
}

fn uuid_of(contact: &Value) -> String {
    contact["uuid"].as_str().expect("uuid").to_owned()
}

async fn the_docs_example_runs_verbatim(backend: Backend) {
    let app = demo(backend).await;
    let before = read(&app, JOHN).await;
    // The body exactly as the cURL example of the docs sends it.
    let body = "{\n\"name\": \"Joe Doe NEW\",\n\"custom_fields\": {\n\"orderNumber\": 123,\n\"zipCode\": \"98765430\"\n}\n}";
    let reply = send(
        app.request(Method::PATCH, &format!("/contacts/{JOHN}"))
            .header("Content-Type", "application/json")
            .body(body),
    )
    .await;
    reply.assert_status(200);
    let contact = reply.contact();
    assert_eq!(contact["uuid"], JOHN);
    assert_eq!(contact["name"], "Joe Doe NEW");
    assert_eq!(
        contact["customFields"],
        json!({
            "Billing Address": "3 Abbey Rd, London",
            "Stripe link": "https://stripe.com/contacts/cus1234567",
            "orderNumber": "123",
            "zipCode": "98765430"
        })
    );
    // Everything else is as it was.
    let mut expected = before.clone();
    expected["name"] = json!("Joe Doe NEW");
    expected["customFields"] = contact["customFields"].clone();
    assert_eq!(contact, &expected);
    assert_eq!(contact["phoneNumber"], "5790372023");
    assert_eq!(contact["tags"], json!(["sales", "lead"]));
    assert_eq!(contact["assignedUser"], "john.doe@email.com");
    assert_eq!(&read(&app, JOHN).await, contact);
}

async fn name_changes_and_must_not_be_blank(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "1001").await;
    let uuid = uuid_of(&contact);
    let updated = patched(&app, &uuid, json!({"name": "Ada King"})).await;
    let mut expected = contact.clone();
    expected["name"] = json!("Ada King");
    assert_eq!(updated, expected, "only the name changed");
    refused(
        &app,
        &uuid,
        json!({"name": "  "}),
        "blank",
        &[("name", "blank")],
    )
    .await;
    refused(
        &app,
        &uuid,
        json!({"name": 7}),
        "invalid_type",
        &[("name", "invalid_type")],
    )
    .await;
    // An empty body changes nothing.
    assert_eq!(patched(&app, &uuid, json!({})).await, expected);
}

async fn tags_replace_the_whole_list(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "2001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(contact["tags"], json!(["sales", "hot"]));
    let updated = patched(
        &app,
        &uuid,
        json!({"tags": ["call back", "LEAD", "Call Back"]}),
    )
    .await;
    assert_eq!(updated["tags"], json!(["Call back", "lead"]));
    let updated = patched(&app, &uuid, json!({"tags": "interested, SALES"})).await;
    assert_eq!(updated["tags"], json!(["Interested", "sales"]));
    // Order is the order given.
    let updated = patched(&app, &uuid, json!({"tags": ["sales", "Interested"]})).await;
    assert_eq!(updated["tags"], json!(["sales", "Interested"]));
    // Omitted: unchanged.
    let updated = patched(&app, &uuid, json!({"name": "Renamed"})).await;
    assert_eq!(updated["tags"], json!(["sales", "Interested"]));
    // Unknown tags: every one named, nothing changed.
    refused(
        &app,
        &uuid,
        json!({"tags": ["Ghost", "hot", "Phantom"]}),
        "unknown_tag",
        &[("tags[0]", "unknown_tag"), ("tags[2]", "unknown_tag")],
    )
    .await;
    // [] clears.
    let updated = patched(&app, &uuid, json!({"tags": []})).await;
    assert_eq!(updated["tags"], json!([]));
    let updated = patched(&app, &uuid, json!({"tags": "hot"})).await;
    assert_eq!(updated["tags"], json!(["hot"]));
}

async fn custom_fields_merge(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "3001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(
        contact["customFields"],
        json!({"zipCode": "10115", "VAT": "DE1", "Status": "Active", "Features": "[\"Analytics\"]"})
    );
    // Keys given are set, null removes, keys not given stay.
    let updated = patched(
        &app,
        &uuid,
        json!({"custom_fields": {"zipcode": 20095, "VAT": null, "Birth Date": "2000-01-31", "Features": ["notifications", "Dark Mode"]}}),
    )
    .await;
    assert_eq!(
        updated["customFields"],
        json!({
            "zipCode": "20095",
            "Status": "Active",
            "Birth Date": "2000-01-31",
            "Features": "[\"Notifications\", \"Dark Mode\"]"
        })
    );
    // An empty object, or none, changes nothing.
    let same = patched(&app, &uuid, json!({"custom_fields": {}})).await;
    assert_eq!(same["customFields"], updated["customFields"]);
    let same = patched(&app, &uuid, json!({"name": "Other"})).await;
    assert_eq!(same["customFields"], updated["customFields"]);
    // Removing a key that has no value is fine.
    let same = patched(&app, &uuid, json!({"custom_fields": {"Address": null}})).await;
    assert_eq!(same["customFields"], updated["customFields"]);
    // A bad value refuses the whole update, good keys included.
    refused(
        &app,
        &uuid,
        json!({"custom_fields": {"zipCode": "1", "Status": "Pending", "Ghost": "x"}}),
        "validation_failed",
        &[
            ("custom_fields.Status", "invalid_custom_field_value"),
            ("custom_fields.Ghost", "unknown_custom_field"),
        ],
    )
    .await;
    refused(
        &app,
        &uuid,
        json!({"custom_fields": {"orderNumber": "1,5"}}),
        "invalid_custom_field_value",
        &[("custom_fields.orderNumber", "invalid_custom_field_value")],
    )
    .await;
    // Every value removed.
    let cleared = patched(
        &app,
        &uuid,
        json!({"custom_fields": {"zipCode": null, "Status": null, "Birth Date": null, "Features": null}}),
    )
    .await;
    assert_eq!(cleared["customFields"], json!({}));
}

async fn users_are_assigned_and_unassigned(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "4001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(contact["assignedUser"], "jane.doe@email.com");
    let updated = patched(&app, &uuid, json!({"assigned_user": "John.Doe@EMAIL.com"})).await;
    assert_eq!(updated["assignedUser"], "john.doe@email.com");
    refused(
        &app,
        &uuid,
        json!({"assigned_user": "ghost@email.com"}),
        "unknown_user",
        &[("assigned_user", "unknown_user")],
    )
    .await;
    refused(
        &app,
        &uuid,
        json!({"assigned_user": "jane.doe@email.com", "unassign_user": true}),
        "conflicting_fields",
        &[("unassign_user", "conflicting_fields")],
    )
    .await;
    let updated = patched(&app, &uuid, json!({"unassign_user": true})).await;
    assert_eq!(updated["assignedUser"], Value::Null);
    // Unassigning an unassigned contact is fine.
    let updated = patched(&app, &uuid, json!({"unassign_user": true})).await;
    assert_eq!(updated["assignedUser"], Value::Null);
    let updated = patched(&app, &uuid, json!({"assigned_user": "jane.doe@email.com"})).await;
    assert_eq!(updated["assignedUser"], "jane.doe@email.com");
    // Omitted: unchanged.
    let updated = patched(&app, &uuid, json!({"name": "Still Jane's"})).await;
    assert_eq!(updated["assignedUser"], "jane.doe@email.com");
}

async fn team_changes(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "5001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(contact["team"]["name"], "General");
    let updated = patched(&app, &uuid, json!({"team_uuid": SUPPORT})).await;
    assert_eq!(updated["team"]["uuid"], SUPPORT);
    assert_eq!(updated["team"]["name"], "Support");
    for team in ["00000000000000000000000000000000", "support"] {
        refused(
            &app,
            &uuid,
            json!({"team_uuid": team}),
            "unknown_team",
            &[("team_uuid", "unknown_team")],
        )
        .await;
    }
    let updated = patched(&app, &uuid, json!({"name": "Kept team"})).await;
    assert_eq!(updated["team"]["uuid"], SUPPORT);
}

async fn bot_status_changes_the_contacts_bot(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "6001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(bot_status(&app, &uuid).await, "in_progress");
    let updated = patched(&app, &uuid, json!({"bot_status": "bot_end"})).await;
    assert_eq!(bot_status(&app, &uuid).await, "ended");
    assert_eq!(updated, contact, "the Contact object shows no bot field");
    patched(&app, &uuid, json!({"bot_status": "bot_start"})).await;
    assert_eq!(bot_status(&app, &uuid).await, "in_progress");
    refused(
        &app,
        &uuid,
        json!({"bot_status": "start"}),
        "invalid_type",
        &[("bot_status", "invalid_type")],
    )
    .await;
    assert_eq!(bot_status(&app, &uuid).await, "in_progress");

    // Without an enabled bot, bot_status is refused.
    let bot_uuid = "f7155fc557b74597b429bd3dbb5ca677";
    app.patch(&format!("/bots/{bot_uuid}"), json!({"enabled": false}))
        .await
        .assert_status(200);
    refused(
        &app,
        &uuid,
        json!({"bot_status": "bot_end"}),
        "no_bot",
        &[("bot_status", "no_bot")],
    )
    .await;
    // ...and nothing else of that request is applied.
    refused(
        &app,
        &uuid,
        json!({"name": "Not applied", "bot_status": "bot_start"}),
        "no_bot",
        &[("bot_status", "no_bot")],
    )
    .await;
}

async fn note_is_set_kept_and_cleared(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "7001").await;
    let uuid = uuid_of(&contact);
    assert_eq!(contact["note"], "first note");
    let updated = patched(&app, &uuid, json!({"name": "Noted"})).await;
    assert_eq!(updated["note"], "first note", "omitted leaves it");
    let updated = patched(&app, &uuid, json!({"note": "second note"})).await;
    assert_eq!(updated["note"], "second note");
    let long = "ß".repeat(1000);
    let updated = patched(&app, &uuid, json!({"note": long})).await;
    assert_eq!(updated["note"], long);
    refused(
        &app,
        &uuid,
        json!({"note": "ß".repeat(1001)}),
        "too_long",
        &[("note", "too_long")],
    )
    .await;
    let updated = patched(&app, &uuid, json!({"note": ""})).await;
    assert_eq!(updated["note"], Value::Null, "\"\" clears");
    let updated = patched(&app, &uuid, json!({"name": "Still no note"})).await;
    assert_eq!(updated["note"], Value::Null);
}

async fn bsuid_is_set_cleared_and_unique(backend: Backend) {
    let app = demo(backend).await;
    let ada = full_contact(&app, "8001").await;
    let ada_uuid = uuid_of(&ada);
    let bob = full_contact(&app, "8002").await;
    let bob_uuid = uuid_of(&bob);
    assert_eq!(ada["bsuid"], Value::Null);
    let updated = patched(&app, &ada_uuid, json!({"bsuid": "US.1234567890"})).await;
    assert_eq!(updated["bsuid"], "US.1234567890");
    let found = app.get("/contacts/bsuid/US.1234567890").await;
    found.assert_status(200);
    assert_eq!(found.contact()["uuid"], ada_uuid.as_str());
    // Setting the same bsuid again on its holder is fine.
    patched(&app, &ada_uuid, json!({"bsuid": "US.1234567890"})).await;
    // Another contact cannot take it.
    let reply = app
        .patch(
            &format!("/contacts/{bob_uuid}"),
            json!({"bsuid": "US.1234567890", "name": "Not applied"}),
        )
        .await;
    reply.assert_error(409, "bsuid_taken");
    assert_eq!(read(&app, &bob_uuid).await, bob, "nothing changed");
    // Cleared with null, it is free again.
    let cleared = patched(&app, &ada_uuid, json!({"bsuid": null})).await;
    assert_eq!(cleared["bsuid"], Value::Null);
    app.get("/contacts/bsuid/US.1234567890")
        .await
        .assert_error(404, "not_found");
    let updated = patched(&app, &bob_uuid, json!({"bsuid": "US.1234567890"})).await;
    assert_eq!(updated["bsuid"], "US.1234567890");
    refused(
        &app,
        &ada_uuid,
        json!({"bsuid": "  "}),
        "invalid_bsuid",
        &[("bsuid", "invalid_bsuid")],
    )
    .await;
}

async fn the_identifier_cannot_change(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "+39 333-12 34").await;
    let uuid = uuid_of(&contact);
    let updated = patched(
        &app,
        &uuid,
        json!({
            "identifier": "999",
            "identifiant": "999",
            "phoneNumber": "999",
            "source": "telegram",
            "uuid": "00000000000000000000000000000000",
            "name": "Renamed"
        }),
    )
    .await;
    let mut expected = contact.clone();
    expected["name"] = json!("Renamed");
    assert_eq!(updated, expected);
    assert_eq!(updated["phoneNumber"], "+39 333-12 34");
    app.get("/contacts/phone/999")
        .await
        .assert_error(404, "not_found");
    let found = app.get("/contacts/phone/393331234").await;
    found.assert_status(200);
    assert_eq!(found.contact()["uuid"], uuid.as_str());
}

async fn unknown_malformed_and_foreign_contacts_are_not_found(backend: Backend) {
    let app = demo(backend).await;
    for uuid in [
        "00000000000000000000000000000000",
        "efd7d996470e463b89f079be6cf578e0",
        "nope",
        "414A6D692BD645ED803F2E7CE360D4C8",
        "414a6d69-2bd6-45ed-803f-2e7ce360d4c8",
    ] {
        app.patch(&format!("/contacts/{uuid}"), json!({"name": "Ghost"}))
            .await
            .assert_error(404, "not_found");
    }
    // Another account's contact is not found, and stays as it is.
    let other = app.create_account("other").await;
    let them = app.as_key(&other);
    let theirs = them
        .post(
            "/contacts",
            json!({"identifier": "1234", "source": "whatsapp", "name": "Theirs"}),
        )
        .await;
    theirs.assert_status(200);
    let their_uuid = theirs.contact()["uuid"].as_str().expect("uuid").to_owned();
    app.patch(
        &format!("/contacts/{their_uuid}"),
        json!({"name": "Mine now"}),
    )
    .await
    .assert_error(404, "not_found");
    them.patch(&format!("/contacts/{JOHN}"), json!({"name": "Mine now"}))
        .await
        .assert_error(404, "not_found");
    let still = them.get(&format!("/contacts/{their_uuid}")).await;
    assert_eq!(still.contact()["name"], "Theirs");
    assert_eq!(read(&app, JOHN).await["name"], "John Doe");
}

async fn a_refused_update_changes_nothing(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "9001").await;
    let uuid = uuid_of(&contact);
    // Valid changes to every field, and one bad team.
    refused(
        &app,
        &uuid,
        json!({
            "name": "Changed",
            "tags": ["lead"],
            "custom_fields": {"zipCode": "99999", "VAT": null},
            "unassign_user": true,
            "team_uuid": "00000000000000000000000000000000",
            "bot_status": "bot_end",
            "note": "",
            "bsuid": "BS.1"
        }),
        "unknown_team",
        &[("team_uuid", "unknown_team")],
    )
    .await;
    // Every problem at once.
    let reply = app
        .patch(
            &format!("/contacts/{uuid}"),
            json!({
                "name": "",
                "tags": ["Ghost"],
                "custom_fields": {"Birth Date": "2023-02-29"},
                "assigned_user": "ghost@email.com",
                "team_uuid": "x",
                "note": "n".repeat(1001)
            }),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    let mut expected = vec![
        "assigned_user",
        "custom_fields.Birth Date",
        "name",
        "note",
        "tags[0]",
        "team_uuid",
    ];
    expected.sort_unstable();
    assert_eq!(fields, expected, "body: {}", reply.text);
    assert_eq!(read(&app, &uuid).await, contact);
    // The bot is untouched too.
    let bot = app.get(&format!("/contacts/{uuid}/bot")).await;
    assert_eq!(bot.body["bot"]["status"], "in_progress");
}

async fn french_spellings_work_on_update(backend: Backend) {
    let app = demo(backend).await;
    let contact = full_contact(&app, "9101").await;
    let uuid = uuid_of(&contact);
    let updated = patched(
        &app,
        &uuid,
        json!({
            "nom": "Jean Dupont",
            "champs_personnalisés": {"VAT": "FR1"},
            "utilisateur_assigné": "john.doe@email.com"
        }),
    )
    .await;
    assert_eq!(updated["name"], "Jean Dupont");
    assert_eq!(updated["customFields"]["VAT"], "FR1");
    assert_eq!(updated["customFields"]["zipCode"], "10115", "still a merge");
    assert_eq!(updated["assignedUser"], "john.doe@email.com");
    let same = patched(&app, &uuid, json!({"nom": "Marie", "name": "Marie"})).await;
    assert_eq!(same["name"], "Marie");
    refused(
        &app,
        &uuid,
        json!({"nom": "Marie", "name": "Mary"}),
        "conflicting_fields",
        &[("name", "conflicting_fields")],
    )
    .await;
    refused(
        &app,
        &uuid,
        json!({
            "utilisateur_assigné": "john.doe@email.com",
            "assigned_user": "jane.doe@email.com"
        }),
        "conflicting_fields",
        &[("assigned_user", "conflicting_fields")],
    )
    .await;
}

/// One PATCH of the merge property test: each named field set to a value
/// or cleared (`None` is `null`), and maybe a new tag list.
#[derive(Debug, Clone)]
struct Patch {
    fields: Vec<(&'static str, Option<String>)>,
    tags: Option<Vec<&'static str>>,
}

fn patch_strategy() -> impl proptest::strategy::Strategy<Value = Patch> {
    use proptest::prelude::*;
    let field = prop_oneof![
        Just("zipCode"),
        Just("VAT"),
        Just("Address"),
        Just("ZIPCODE")
    ];
    let value = proptest::option::of("[a-z0-9]{1,6}");
    let tags = proptest::option::of(proptest::sample::subsequence(
        vec!["sales", "lead", "hot", "Interested"],
        0..=4,
    ));
    (proptest::collection::vec((field, value), 0..4), tags)
        .prop_map(|(fields, tags)| Patch { fields, tags })
}

/// SPEC §4's PATCH semantics as a property: over any sequence of patches,
/// `custom_fields` merges key by key (case-insensitive names, `null`
/// clears), `tags` replaces the whole list when given and is left alone
/// when not, and every answer is what a read shows.
async fn any_sequence_of_patches_merges_like_a_map(backend: Backend) {
    use proptest::test_runner::{Config, TestRunner};
    use std::collections::BTreeMap;

    let app = demo(backend).await;
    let runtime = tokio::runtime::Handle::current();
    let mut runner = TestRunner::new(Config {
        cases: 12,
        failure_persistence: None,
        ..Config::default()
    });
    let strategy = proptest::collection::vec(patch_strategy(), 1..6);
    let counter = std::sync::atomic::AtomicU32::new(0);
    let outcome = runner.run(&strategy, |patches| {
        tokio::task::block_in_place(|| {
            runtime.block_on(async {
                let n = counter.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let contact = app
                    .create_contact(json!({
                        "identifier": format!("+3955{n:04}"), "source": "whatsapp", "name": "P",
                        "tags": ["sales"], "custom_fields": {"VAT": "start"}
                    }))
                    .await;
                let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
                let mut fields: BTreeMap<String, String> =
                    BTreeMap::from([("VAT".into(), "start".into())]);
                let mut tags = vec!["sales".to_owned()];
                for patch in &patches {
                    let mut body = serde_json::Map::new();
                    // A name given twice in one patch is refused; send each once.
                    let mut sent: BTreeMap<String, (&str, Option<String>)> = BTreeMap::new();
                    for (name, value) in &patch.fields {
                        sent.insert(name.to_lowercase(), (name, value.clone()));
                    }
                    let custom_fields: serde_json::Map<String, Value> = sent
                        .values()
                        .map(|(name, value)| (name.to_string(), json!(value)))
                        .collect();
                    if !custom_fields.is_empty() {
                        body.insert("custom_fields".into(), Value::Object(custom_fields));
                    }
                    if let Some(new_tags) = &patch.tags {
                        body.insert("tags".into(), json!(new_tags));
                    }
                    let answer = patched(&app, &uuid, Value::Object(body)).await;
                    for (name, value) in sent.values() {
                        let canonical = if name.eq_ignore_ascii_case("zipcode") {
                            "zipCode"
                        } else {
                            name
                        };
                        match value {
                            Some(value) => fields.insert(canonical.to_owned(), value.clone()),
                            None => fields.remove(canonical),
                        };
                    }
                    if let Some(new_tags) = &patch.tags {
                        tags = new_tags.iter().map(|t| (*t).to_owned()).collect();
                    }
                    let shown: BTreeMap<String, String> = answer["customFields"]
                        .as_object()
                        .expect("customFields")
                        .iter()
                        .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_owned()))
                        .collect();
                    proptest::prop_assert_eq!(&shown, &fields, "after {:?}", patch);
                    let mut shown_tags: Vec<String> = answer["tags"]
                        .as_array()
                        .expect("tags")
                        .iter()
                        .map(|t| t.as_str().expect("tag").to_owned())
                        .collect();
                    shown_tags.sort();
                    let mut expected_tags = tags.clone();
                    expected_tags.sort();
                    proptest::prop_assert_eq!(shown_tags, expected_tags, "after {:?}", patch);
                }
                Ok(())
            })
        })
    });
    if let Err(failure) = outcome {
        panic!("{failure}");
    }
}

on_both_backends!(
    any_sequence_of_patches_merges_like_a_map,
    the_docs_example_runs_verbatim,
    name_changes_and_must_not_be_blank,
    tags_replace_the_whole_list,
    custom_fields_merge,
    users_are_assigned_and_unassigned,
    team_changes,
    bot_status_changes_the_contacts_bot,
    note_is_set_kept_and_cleared,
    bsuid_is_set_cleared_and_unique,
    the_identifier_cannot_change,
    unknown_malformed_and_foreign_contacts_are_not_found,
    a_refused_update_changes_nothing,
    french_spellings_work_on_update,
);
