//! SPEC §2: the account settings API (tags, custom fields, users, teams,
//! channels, bots, funnels), its envelopes, its rules, and what deleting a
//! setting does to the contacts that use it.

use serde_json::{Value, json};

use crate::fixtures::demo::{
    BOT as DEMO_BOT, CHANNEL as DEMO_CHANNEL, GENERAL as DEMO_GENERAL, JOHN as DEMO_JOHN,
    MARIO as DEMO_MARIO, SUPPORT as DEMO_SUPPORT,
};
use crate::fixtures::{assert_timestamp, keys};
use crate::helpers::{Backend, TestApp};
use crate::on_both_backends;

/// 32 lowercase hex characters.
#[track_caller]
fn assert_public_id(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{value} is no string"));
    assert!(
        text.len() == 32 && text.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')),
        "{text} is not a public id"
    );
}

/// The values of `field` in the objects of an array.
#[track_caller]
fn column<'v>(list: &'v Value, field: &str) -> Vec<&'v Value> {
    list.as_array()
        .unwrap_or_else(|| panic!("{list} is no array"))
        .iter()
        .map(|item| &item[field])
        .collect()
}

fn names(list: &Value) -> Vec<String> {
    column(list, "name")
        .into_iter()
        .map(|n| n.as_str().expect("name").to_owned())
        .collect()
}

// ---------------------------------------------------------------- tags

async fn tags_are_created_read_renamed_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let empty = app.get("/tags").await;
    empty.assert_status(200);
    assert_eq!(empty.body, json!({"tags": []}));

    let created = app.post("/tags", json!({"name": "  Call back "})).await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["tag"]);
    assert_eq!(keys(&created.body["tag"]), ["createdAt", "name"]);
    assert_eq!(created.body["tag"]["name"], "Call back");
    assert_timestamp(&created.body["tag"]["createdAt"]);
    app.post("/tags", json!({"name": "VIP"}))
        .await
        .assert_status(200);

    let listed = app.get("/tags").await;
    listed.assert_status(200);
    assert_eq!(keys(&listed.body), ["tags"]);
    assert_eq!(names(&listed.body["tags"]), ["Call back", "VIP"]);

    // Addressed by name, URL-encoded and case-insensitive.
    for path in [
        "/tags/Call%20back",
        "/tags/call%20BACK",
        "/tags/CALL%20BACK",
    ] {
        let got = app.get(path).await;
        got.assert_status(200);
        assert_eq!(got.body, json!({"tag": created.body["tag"].clone()}));
    }

    let renamed = app
        .patch("/tags/call%20back", json!({"name": "Callback"}))
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.body["tag"]["name"], "Callback");
    assert_eq!(
        renamed.body["tag"]["createdAt"],
        created.body["tag"]["createdAt"]
    );
    app.get("/tags/Call%20back")
        .await
        .assert_error(404, "not_found");
    app.get("/tags/callback").await.assert_status(200);
    // A new spelling of its own name is just a new canonical spelling.
    let respelled = app
        .patch("/tags/callback", json!({"name": "CallBack"}))
        .await;
    respelled.assert_status(200);
    assert_eq!(respelled.body["tag"]["name"], "CallBack");

    let deleted = app.delete("/tags/CALLBACK").await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "tag was destroyed"}));
    app.get("/tags/CallBack")
        .await
        .assert_error(404, "not_found");
    app.delete("/tags/CallBack")
        .await
        .assert_error(404, "not_found");
    app.patch("/tags/CallBack", json!({"name": "Again"}))
        .await
        .assert_error(404, "not_found");
    assert_eq!(names(&app.get("/tags").await.body["tags"]), ["VIP"]);
}

async fn tag_names_are_unique_case_insensitively(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    for name in ["CALL BACK", "call back", " Call back"] {
        app.post("/tags", json!({ "name": name }))
            .await
            .assert_error(409, "tag_exists");
    }
    // Renaming onto another tag's name collides too.
    app.patch("/tags/hot", json!({"name": "SALES"}))
        .await
        .assert_error(409, "tag_exists");
    let hot = app.get("/tags/hot").await;
    hot.assert_status(200);
    assert_eq!(hot.body["tag"]["name"], "hot");
    // The stored spelling is canonical: contacts get it whatever they send.
    let contact = app
        .create_contact(json!({
            "identifier": "+44 20 7946 0000",
            "source": "whatsapp",
            "name": "Canon",
            "tags": ["CALL BACK", "Hot", "hot"]
        }))
        .await;
    assert_eq!(contact["tags"], json!(["Call back", "hot"]));
    // A renamed tag shows under its new name on every contact.
    app.patch("/tags/HOT", json!({"name": "Very hot"}))
        .await
        .assert_status(200);
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(
        mario.contact()["tags"],
        json!(["sales", "lead", "Very hot"])
    );
    let uuid = contact["uuid"].as_str().expect("uuid");
    let canon = app.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(canon.contact()["tags"], json!(["Call back", "Very hot"]));
    let filtered = app.get("/contacts?tags=very%20HOT").await;
    assert_eq!(filtered.body["contacts"].as_array().map(Vec::len), Some(2));
}

async fn bad_tag_input_is_refused_with_details(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let cases = [
        (json!({}), "required"),
        (json!({"name": ""}), "blank"),
        (json!({"name": "   "}), "blank"),
        (json!({"name": 7}), "invalid_type"),
        (json!({"name": null}), "required"),
        (json!({"name": "a,b"}), "invalid_tag_name"),
        (json!({"name": "x".repeat(256)}), "too_long"),
    ];
    for (body, code) in cases {
        let reply = app.post("/tags", body.clone()).await;
        reply.assert_error(422, code);
        assert_eq!(reply.error_fields(), ["name"], "{body}");
    }
    app.post("/tags", json!({"name": "x".repeat(255)}))
        .await
        .assert_status(200);
    app.post("/tags", json!({"name": "Old"}))
        .await
        .assert_status(200);
    let reply = app.patch("/tags/Old", json!({"name": ""})).await;
    reply.assert_error(422, "blank");
    assert_eq!(reply.error_fields(), ["name"]);
    app.patch("/tags/Old", json!({}))
        .await
        .assert_error(422, "required");
    assert_eq!(
        app.get("/tags").await.body["tags"].as_array().map(Vec::len),
        Some(2)
    );
}

async fn names_are_addressed_url_encoded(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (name, path, other_spelling) in [
        (
            "Café Crème",
            "Caf%C3%A9%20Cr%C3%A8me",
            "CAF%C3%89%20CR%C3%88ME",
        ),
        ("A/B test", "A%2FB%20test", "a%2fb%20TEST"),
        ("100% sure?", "100%25%20sure%3F", "100%25%20SURE%3F"),
        ("x+y #1", "x%2By%20%231", "X%2BY%20%231"),
    ] {
        app.post("/tags", json!({ "name": name }))
            .await
            .assert_status(200);
        for spelling in [path, other_spelling] {
            let got = app.get(&format!("/tags/{spelling}")).await;
            got.assert_status(200);
            assert_eq!(got.body["tag"]["name"], name, "{spelling}");
        }
        app.post("/custom_fields", json!({"name": name, "type": "text"}))
            .await
            .assert_status(200);
        let got = app.get(&format!("/custom_fields/{other_spelling}")).await;
        got.assert_status(200);
        assert_eq!(got.body["custom_field"]["name"], name);
        app.delete(&format!("/custom_fields/{path}"))
            .await
            .assert_status(200);
        app.delete(&format!("/tags/{other_spelling}"))
            .await
            .assert_status(200);
        app.get(&format!("/tags/{path}"))
            .await
            .assert_error(404, "not_found");
    }
    assert_eq!(app.get("/tags").await.body, json!({"tags": []}));
    assert_eq!(
        app.get("/custom_fields").await.body,
        json!({"custom_fields": []})
    );
}

async fn deleting_a_tag_removes_it_from_every_contact(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.delete("/tags/LEAD").await.assert_status(200);
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(john.contact()["tags"], json!(["sales"]));
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["tags"], json!(["sales", "hot"]));
    let filtered = app.get("/contacts?tags=lead").await;
    filtered.assert_status(200);
    assert_eq!(filtered.body["contacts"], json!([]));
    // A new tag of the same name starts unused.
    app.post("/tags", json!({"name": "lead"}))
        .await
        .assert_status(200);
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["tags"], json!(["sales", "hot"]));
    // Contacts cannot use a deleted tag.
    app.delete("/tags/hot").await.assert_status(200);
    let reply = app
        .patch(&format!("/contacts/{DEMO_JOHN}"), json!({"tags": ["hot"]}))
        .await;
    reply.assert_error(422, "unknown_tag");
    assert_eq!(reply.error_fields(), ["tags[0]"]);
}

// ------------------------------------------------------- custom fields

async fn custom_fields_are_created_read_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(
        app.get("/custom_fields").await.body,
        json!({"custom_fields": []})
    );

    let text = app
        .post(
            "/custom_fields",
            json!({"name": "Billing Address", "type": "text"}),
        )
        .await;
    text.assert_status(200);
    assert_eq!(keys(&text.body), ["custom_field"]);
    assert_eq!(
        keys(&text.body["custom_field"]),
        ["createdAt", "name", "type"]
    );
    assert_eq!(text.body["custom_field"]["name"], "Billing Address");
    assert_eq!(text.body["custom_field"]["type"], "text");
    assert_timestamp(&text.body["custom_field"]["createdAt"]);

    let dropdown = app
        .post(
            "/custom_fields",
            json!({"name": "Status", "type": "dropdown", "options": ["Active", " Inactive "]}),
        )
        .await;
    dropdown.assert_status(200);
    assert_eq!(
        keys(&dropdown.body["custom_field"]),
        ["createdAt", "name", "options", "type"]
    );
    assert_eq!(
        dropdown.body["custom_field"]["options"],
        json!(["Active", "Inactive"])
    );

    let listed = app.get("/custom_fields").await;
    listed.assert_status(200);
    assert_eq!(keys(&listed.body), ["custom_fields"]);
    assert_eq!(
        names(&listed.body["custom_fields"]),
        ["Billing Address", "Status"]
    );

    for path in [
        "/custom_fields/Billing%20Address",
        "/custom_fields/billing%20address",
        "/custom_fields/BILLING%20ADDRESS",
    ] {
        let got = app.get(path).await;
        got.assert_status(200);
        assert_eq!(got.body, text.body);
    }

    let renamed = app
        .patch(
            "/custom_fields/billing%20address",
            json!({"name": "Invoice Address"}),
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(renamed.body["custom_field"]["name"], "Invoice Address");
    assert_eq!(renamed.body["custom_field"]["type"], "text");
    app.get("/custom_fields/Billing%20Address")
        .await
        .assert_error(404, "not_found");

    // Options can change (the type given again, unchanged, is fine).
    let reoptioned = app
        .patch(
            "/custom_fields/status",
            json!({"type": "dropdown", "options": ["Active", "Inactive", "Paused"]}),
        )
        .await;
    reoptioned.assert_status(200);
    assert_eq!(
        reoptioned.body["custom_field"]["options"],
        json!(["Active", "Inactive", "Paused"])
    );
    let contact = app
        .create_contact(json!({
            "identifier": "1001",
            "source": "whatsapp",
            "name": "Opt",
            "custom_fields": {"status": "Paused"}
        }))
        .await;
    assert_eq!(contact["customFields"], json!({"Status": "Paused"}));

    let deleted = app.delete("/custom_fields/INVOICE%20address").await;
    deleted.assert_status(200);
    assert_eq!(
        deleted.body,
        json!({"status": "custom field was destroyed"})
    );
    app.get("/custom_fields/Invoice%20Address")
        .await
        .assert_error(404, "not_found");
    app.delete("/custom_fields/Invoice%20Address")
        .await
        .assert_error(404, "not_found");
    assert_eq!(
        names(&app.get("/custom_fields").await.body["custom_fields"]),
        ["Status"]
    );
}

async fn custom_field_types_and_options_are_checked(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    for (name, kind) in [
        ("T", "text"),
        ("E", "email"),
        ("N", "number"),
        ("D", "date"),
    ] {
        let reply = app
            .post("/custom_fields", json!({"name": name, "type": kind}))
            .await;
        reply.assert_status(200);
        assert_eq!(reply.body["custom_field"]["type"], kind);
        assert!(reply.body["custom_field"].get("options").is_none());
    }
    for (name, kind) in [("Dd", "dropdown"), ("Cb", "checkbox")] {
        let reply = app
            .post(
                "/custom_fields",
                json!({"name": name, "type": kind, "options": ["A", "B"]}),
            )
            .await;
        reply.assert_status(200);
        assert_eq!(reply.body["custom_field"]["type"], kind);
        assert_eq!(reply.body["custom_field"]["options"], json!(["A", "B"]));
    }

    let refused = [
        (json!({"type": "text"}), "required", vec!["name"]),
        (json!({"name": "X"}), "required", vec!["type"]),
        (
            json!({"name": "X", "type": "color"}),
            "invalid_type",
            vec!["type"],
        ),
        (
            json!({"name": "X", "type": 3}),
            "invalid_type",
            vec!["type"],
        ),
        (
            json!({"name": "X", "type": "dropdown"}),
            "options_required",
            vec!["options"],
        ),
        (
            json!({"name": "X", "type": "checkbox", "options": []}),
            "options_required",
            vec!["options"],
        ),
        (
            json!({"name": "X", "type": "dropdown", "options": ["A", "B", "a"]}),
            "duplicate_option",
            vec!["options[2]"],
        ),
        (
            json!({"name": "X", "type": "checkbox", "options": ["A", " "]}),
            "invalid_option",
            vec!["options[1]"],
        ),
        (
            json!({"name": "X", "type": "text", "options": ["A"]}),
            "options_not_allowed",
            vec!["options"],
        ),
        (
            json!({"name": "X", "type": "number", "options": ["1"]}),
            "options_not_allowed",
            vec!["options"],
        ),
        (
            json!({"name": "", "type": "color"}),
            "validation_failed",
            vec!["name", "type"],
        ),
    ];
    for (body, code, fields) in refused {
        let reply = app.post("/custom_fields", body.clone()).await;
        reply.assert_error(422, code);
        let got = reply.error_fields();
        for field in &fields {
            assert!(
                got.contains(&(*field).to_owned()),
                "{field} not in {got:?} for {body}"
            );
        }
    }
    assert_eq!(
        app.get("/custom_fields").await.body["custom_fields"]
            .as_array()
            .map(Vec::len),
        Some(6),
        "nothing refused was created"
    );

    // The type is fixed; options belong to dropdown and checkbox only.
    let reply = app
        .patch("/custom_fields/T", json!({"type": "number"}))
        .await;
    reply.assert_error(422, "type_immutable");
    assert_eq!(reply.error_fields(), ["type"]);
    app.patch("/custom_fields/Dd", json!({"type": "checkbox"}))
        .await
        .assert_error(422, "type_immutable");
    app.patch("/custom_fields/T", json!({"options": ["A"]}))
        .await
        .assert_error(422, "options_not_allowed");
    app.patch("/custom_fields/Dd", json!({"options": []}))
        .await
        .assert_error(422, "options_required");
    app.patch("/custom_fields/Cb", json!({"options": ["A", "A"]}))
        .await
        .assert_error(422, "duplicate_option");
    app.patch("/custom_fields/T", json!({"name": " "}))
        .await
        .assert_error(422, "blank");
    assert_eq!(
        app.get("/custom_fields/T").await.body["custom_field"]["type"],
        "text"
    );
    let dd = app.get("/custom_fields/Dd").await;
    assert_eq!(dd.body["custom_field"]["type"], "dropdown");
    assert_eq!(dd.body["custom_field"]["options"], json!(["A", "B"]));
}

async fn custom_field_names_are_unique_case_insensitively(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.post(
        "/custom_fields",
        json!({"name": "billing address", "type": "text"}),
    )
    .await
    .assert_error(409, "custom_field_exists");
    app.post(
        "/custom_fields",
        json!({"name": "STATUS", "type": "dropdown", "options": ["A"]}),
    )
    .await
    .assert_error(409, "custom_field_exists");
    app.patch("/custom_fields/VAT", json!({"name": "zipcode"}))
        .await
        .assert_error(409, "custom_field_exists");
    app.get("/custom_fields/vat").await.assert_status(200);
    // Renaming to another spelling of its own name is fine.
    let respelled = app
        .patch("/custom_fields/vat", json!({"name": "Vat"}))
        .await;
    respelled.assert_status(200);
    assert_eq!(respelled.body["custom_field"]["name"], "Vat");
}

async fn custom_field_changes_show_on_contacts(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let renamed = app
        .patch(
            "/custom_fields/stripe%20link",
            json!({"name": "Stripe URL"}),
        )
        .await;
    renamed.assert_status(200);
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(
        john.contact()["customFields"],
        json!({
            "Billing Address": "3 Abbey Rd, London",
            "Stripe URL": "https://stripe.com/contacts/cus1234567"
        })
    );
    // Options may be respelled; contacts' values follow.
    let set = app
        .patch(
            &format!("/contacts/{DEMO_MARIO}"),
            json!({"custom_fields": {"Status": "Active", "Features": ["Analytics", "Dark Mode"]}}),
        )
        .await;
    set.assert_status(200);
    let features_before = set.contact()["customFields"]["Features"]
        .as_str()
        .expect("checkbox values are a string")
        .to_owned();
    app.patch(
        "/custom_fields/Status",
        json!({"options": ["ACTIVE", "Inactive", "Paused"]}),
    )
    .await
    .assert_status(200);
    app.patch(
        "/custom_fields/features",
        json!({"options": ["dark mode", "Notifications", "analytics"]}),
    )
    .await
    .assert_status(200);
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["customFields"]["Status"], "ACTIVE");
    assert_eq!(
        mario.contact()["customFields"]["Features"],
        features_before
            .replace("Analytics", "analytics")
            .replace("Dark Mode", "dark mode")
    );
    // An option still in use cannot be taken away.
    app.patch("/custom_fields/Status", json!({"options": ["Inactive"]}))
        .await
        .assert_error(409, "option_in_use");
    assert_eq!(
        app.get("/custom_fields/status").await.body["custom_field"]["options"],
        json!(["ACTIVE", "Inactive", "Paused"])
    );
}

async fn deleting_a_custom_field_removes_its_values(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.delete("/custom_fields/stripe%20LINK")
        .await
        .assert_status(200);
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(
        john.contact()["customFields"],
        json!({"Billing Address": "3 Abbey Rd, London"})
    );
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["customFields"], json!({}));
    // A field created again under the same name starts empty.
    app.post(
        "/custom_fields",
        json!({"name": "Stripe link", "type": "text"}),
    )
    .await
    .assert_status(200);
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["customFields"], json!({}));
    // A deleted field is unknown to contacts.
    app.delete("/custom_fields/VAT").await.assert_status(200);
    let reply = app
        .patch(
            &format!("/contacts/{DEMO_MARIO}"),
            json!({"custom_fields": {"VAT": "IT123"}}),
        )
        .await;
    reply.assert_error(422, "unknown_custom_field");
    assert_eq!(reply.error_fields(), ["custom_fields.VAT"]);
}

// --------------------------------------------------------------- users

async fn users_are_created_read_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let listed = app.get("/users").await;
    listed.assert_status(200);
    assert_eq!(keys(&listed.body), ["users"]);
    let users = listed.body["users"].as_array().expect("users");
    assert_eq!(users.len(), 1);
    assert_eq!(users[0]["email"], "admin@bellbook.local");
    assert_eq!(users[0]["owner"], true);

    let created = app
        .post(
            "/users",
            json!({"email": "Ann.Lee@Example.com", "name": " Ann Lee "}),
        )
        .await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["user"]);
    let user = &created.body["user"];
    assert_eq!(keys(user), ["createdAt", "email", "name", "owner", "uuid"]);
    assert_public_id(&user["uuid"]);
    assert_eq!(user["email"], "Ann.Lee@Example.com");
    assert_eq!(user["name"], "Ann Lee");
    assert_eq!(user["owner"], false);
    assert_timestamp(&user["createdAt"]);
    let uuid = user["uuid"].as_str().expect("uuid");

    let got = app.get(&format!("/users/{uuid}")).await;
    got.assert_status(200);
    assert_eq!(got.body, created.body);
    assert_eq!(
        app.get("/users").await.body["users"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    // Contacts are assigned by e-mail, case-insensitively.
    let contact = app
        .create_contact(json!({
            "identifier": "2002",
            "source": "whatsapp",
            "name": "Assigned",
            "assigned_user": "ann.lee@example.com"
        }))
        .await;
    assert_eq!(contact["assignedUser"], "Ann.Lee@Example.com");

    let updated = app
        .patch(
            &format!("/users/{uuid}"),
            json!({"name": "Ann Smith", "email": "ann@example.com"}),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["user"]["name"], "Ann Smith");
    assert_eq!(updated.body["user"]["email"], "ann@example.com");
    assert_eq!(updated.body["user"]["uuid"], uuid);
    let contact_uuid = contact["uuid"].as_str().expect("uuid");
    let reread = app.get(&format!("/contacts/{contact_uuid}")).await;
    assert_eq!(reread.contact()["assignedUser"], "ann@example.com");

    let deleted = app.delete(&format!("/users/{uuid}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "user was destroyed"}));
    app.get(&format!("/users/{uuid}"))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/users/{uuid}"))
        .await
        .assert_error(404, "not_found");
    app.patch(&format!("/users/{uuid}"), json!({"name": "Ghost"}))
        .await
        .assert_error(404, "not_found");
}

async fn user_emails_are_valid_and_unique(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    app.post(
        "/users",
        json!({"email": "JANE.DOE@email.com", "name": "Jane Two"}),
    )
    .await
    .assert_error(409, "user_exists");
    for email in [
        "not-an-email",
        "a@b",
        "two words@email.com",
        "@email.com",
        "a@@email.com",
    ] {
        let reply = app
            .post("/users", json!({"email": email, "name": "Bad"}))
            .await;
        reply.assert_error(422, "invalid_email");
        assert_eq!(reply.error_fields(), ["email"], "{email}");
    }
    let reply = app.post("/users", json!({})).await;
    reply.assert_error(422, "required");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name"]);
    let reply = app.post("/users", json!({"email": 5, "name": ""})).await;
    reply.assert_error(422, "validation_failed");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["email", "name"]);
    assert_eq!(
        app.get("/users").await.body["users"]
            .as_array()
            .map(Vec::len),
        Some(2)
    );

    let jane = app.get("/users").await.body["users"][1]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    app.patch(
        &format!("/users/{jane}"),
        json!({"email": "John.Doe@EMAIL.com"}),
    )
    .await
    .assert_error(409, "user_exists");
    app.patch(&format!("/users/{jane}"), json!({"email": "nope"}))
        .await
        .assert_error(422, "invalid_email");
    app.patch(&format!("/users/{jane}"), json!({"name": ""}))
        .await
        .assert_error(422, "blank");
    // The account owner stays.
    let john = app.get("/users").await.body["users"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    app.delete(&format!("/users/{john}"))
        .await
        .assert_error(409, "owner_user");
    // A user may respell their own e-mail.
    let respelled = app
        .patch(
            &format!("/users/{john}"),
            json!({"email": "John.Doe@Email.com"}),
        )
        .await;
    respelled.assert_status(200);
    assert_eq!(respelled.body["user"]["email"], "John.Doe@Email.com");
    let jane_now = app.get(&format!("/users/{jane}")).await;
    assert_eq!(jane_now.body["user"]["email"], "jane.doe@email.com");
    assert_eq!(jane_now.body["user"]["name"], "Jane Doe");
}

async fn deleting_a_user_unassigns_their_contacts(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let users = app.get("/users").await;
    let jane = users.body["users"]
        .as_array()
        .expect("users")
        .iter()
        .find(|u| u["email"] == "jane.doe@email.com")
        .expect("jane")["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let assigned = app
        .patch(
            &format!("/contacts/{DEMO_MARIO}"),
            json!({"assigned_user": "jane.doe@email.com"}),
        )
        .await;
    assigned.assert_status(200);
    assert_eq!(assigned.contact()["assignedUser"], "jane.doe@email.com");
    assert_eq!(
        app.get(&format!("/teams/{DEMO_GENERAL}")).await.body["team"]["members"],
        2
    );

    app.delete(&format!("/users/{jane}"))
        .await
        .assert_status(200);
    let mario = app.get(&format!("/contacts/{DEMO_MARIO}")).await;
    assert_eq!(mario.contact()["assignedUser"], Value::Null);
    // John's assignment is untouched; Jane left her teams.
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(john.contact()["assignedUser"], "john.doe@email.com");
    assert_eq!(
        app.get(&format!("/teams/{DEMO_GENERAL}")).await.body["team"]["members"],
        1
    );
    assert_eq!(
        app.get(&format!("/teams/{DEMO_SUPPORT}")).await.body["team"]["members"],
        0
    );
    // Her e-mail no longer names anyone.
    app.patch(
        &format!("/contacts/{DEMO_JOHN}"),
        json!({"assigned_user": "jane.doe@email.com"}),
    )
    .await
    .assert_error(422, "unknown_user");
}

// --------------------------------------------------------------- teams

async fn teams_are_shaped_like_callbells(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let listed = app.get("/teams").await;
    listed.assert_status(200);
    assert_eq!(
        listed.body,
        json!({
            "teams": [
                {
                    "uuid": "ad42a09715814e6483b1c5debd6a2dbc",
                    "name": "General",
                    "createdAt": "2020-11-13T21:08:53Z",
                    "default": true,
                    "members": 2
                },
                {
                    "uuid": "47aad5f9b4ca423c9d630f06ab93fe1f",
                    "name": "Support",
                    "createdAt": "2020-11-13T21:10:33Z",
                    "default": false,
                    "members": 1
                }
            ],
            "meta": {"page": 1, "pages": 1}
        })
    );
    let got = app.get(&format!("/teams/{DEMO_SUPPORT}")).await;
    got.assert_status(200);
    assert_eq!(got.body, json!({"team": listed.body["teams"][1].clone()}));

    let renamed = app
        .patch(
            &format!("/teams/{DEMO_SUPPORT}"),
            json!({"name": "New team name"}),
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(
        renamed.body,
        json!({
            "team": {
                "uuid": DEMO_SUPPORT,
                "name": "New team name",
                "createdAt": "2020-11-13T21:10:33Z",
                "default": false,
                "members": 1
            }
        })
    );
    // Contacts show their team as it is now.
    let john = app
        .patch(
            &format!("/contacts/{DEMO_JOHN}"),
            json!({"team_uuid": DEMO_SUPPORT}),
        )
        .await;
    john.assert_status(200);
    assert_eq!(john.contact()["team"], renamed.body["team"]);
}

async fn teams_are_created_with_members_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let listed = app.get("/teams").await;
    let teams = listed.body["teams"].as_array().expect("teams");
    assert_eq!(teams.len(), 1);
    assert_eq!(teams[0]["name"], "General");
    assert_eq!(teams[0]["default"], true);
    assert_eq!(teams[0]["members"], 1);
    let general = teams[0]["uuid"].as_str().expect("uuid").to_owned();

    let user = app
        .post(
            "/users",
            json!({"email": "agent@example.com", "name": "Agent"}),
        )
        .await;
    let agent = user.body["user"]["uuid"].as_str().expect("uuid").to_owned();
    let created = app
        .post(
            "/teams",
            json!({"name": "Sales", "members": [agent, "ADMIN@bellbook.local", agent]}),
        )
        .await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["team"]);
    let team = &created.body["team"];
    assert_eq!(
        keys(team),
        ["createdAt", "default", "members", "name", "uuid"]
    );
    assert_public_id(&team["uuid"]);
    assert_eq!(team["name"], "Sales");
    assert_eq!(team["default"], false);
    assert_eq!(team["members"], 2);
    assert_timestamp(&team["createdAt"]);
    let sales = team["uuid"].as_str().expect("uuid").to_owned();

    let reply = app
        .post(
            "/teams",
            json!({"name": "Ghosts", "members": ["ghost@example.com"]}),
        )
        .await;
    reply.assert_error(422, "unknown_user");
    assert_eq!(reply.error_fields(), ["members[0]"]);
    let reply = app.post("/teams", json!({})).await;
    reply.assert_error(422, "required");
    assert_eq!(reply.error_fields(), ["name"]);
    app.post("/teams", json!({"name": ""}))
        .await
        .assert_error(422, "blank");
    app.post("/teams", json!({"name": "X", "default": "yes"}))
        .await
        .assert_error(422, "invalid_type");
    app.patch(&format!("/teams/{sales}"), json!({"name": "  "}))
        .await
        .assert_error(422, "blank");

    // A refused change changes nothing, not even its valid parts.
    let reply = app
        .patch(
            &format!("/teams/{sales}"),
            json!({"name": "Renamed", "members": [agent, "nobody@example.com"]}),
        )
        .await;
    reply.assert_error(422, "unknown_user");
    assert_eq!(reply.error_fields(), ["members[1]"]);
    let unchanged = app.get(&format!("/teams/{sales}")).await;
    assert_eq!(unchanged.body, created.body);
    let members = app
        .patch(&format!("/teams/{sales}"), json!({"members": [agent]}))
        .await;
    members.assert_status(200);
    assert_eq!(members.body["team"]["members"], 1);
    assert_eq!(members.body["team"]["name"], "Sales");

    // A team contacts belong to stays; so does the default team.
    let contact = app
        .create_contact(json!({
            "identifier": "3003", "source": "whatsapp", "name": "In Sales", "team_uuid": sales
        }))
        .await;
    assert_eq!(contact["team"]["uuid"], sales.as_str());
    app.delete(&format!("/teams/{sales}"))
        .await
        .assert_error(409, "team_in_use");
    app.delete(&format!("/teams/{general}"))
        .await
        .assert_error(409, "default_team");
    let contact_uuid = contact["uuid"].as_str().expect("uuid");
    app.patch(
        &format!("/contacts/{contact_uuid}"),
        json!({"team_uuid": general}),
    )
    .await
    .assert_status(200);
    let deleted = app.delete(&format!("/teams/{sales}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "team was destroyed"}));
    app.get(&format!("/teams/{sales}"))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/teams/{sales}"))
        .await
        .assert_error(404, "not_found");
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "3004", "source": "whatsapp", "name": "X", "team_uuid": sales}),
        )
        .await;
    reply.assert_error(422, "unknown_team");
    assert_eq!(reply.error_fields(), ["team_uuid"]);
    assert_eq!(
        app.get("/teams").await.body["teams"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
}

/// The default teams of a listing.
fn defaults(listed: &Value) -> Vec<String> {
    listed["teams"]
        .as_array()
        .expect("teams")
        .iter()
        .filter(|t| t["default"] == true)
        .map(|t| t["name"].as_str().expect("name").to_owned())
        .collect()
}

async fn there_is_exactly_one_default_team(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let general = app.get("/teams").await.body["teams"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let created = app
        .post("/teams", json!({"name": "Sales", "default": true}))
        .await;
    created.assert_status(200);
    assert_eq!(created.body["team"]["default"], true);
    let sales = created.body["team"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    assert_eq!(defaults(&app.get("/teams").await.body), ["Sales"]);
    assert_eq!(
        app.get(&format!("/teams/{general}")).await.body["team"]["default"],
        false
    );

    // New contacts land in the default team.
    let contact = app
        .create_contact(json!({"identifier": "4004", "source": "whatsapp", "name": "D"}))
        .await;
    assert_eq!(contact["team"]["uuid"], sales.as_str());

    let moved = app
        .patch(&format!("/teams/{general}"), json!({"default": true}))
        .await;
    moved.assert_status(200);
    assert_eq!(moved.body["team"]["default"], true);
    assert_eq!(defaults(&app.get("/teams").await.body), ["General"]);

    // The default team cannot stop being the default by itself.
    let reply = app
        .patch(
            &format!("/teams/{general}"),
            json!({"default": false, "name": "Renamed"}),
        )
        .await;
    reply.assert_error(422, "default_team_required");
    assert_eq!(reply.error_fields(), ["default"]);
    let still = app.get(&format!("/teams/{general}")).await;
    assert_eq!(still.body["team"]["default"], true);
    assert_eq!(still.body["team"]["name"], "General", "nothing half-done");
    // Asking a non-default team not to be the default changes nothing.
    let reply = app
        .patch(&format!("/teams/{sales}"), json!({"default": false}))
        .await;
    reply.assert_status(200);
    assert_eq!(reply.body["team"]["default"], false);
    // Making the default team the default again changes nothing.
    app.patch(&format!("/teams/{general}"), json!({"default": true}))
        .await
        .assert_status(200);
    assert_eq!(defaults(&app.get("/teams").await.body), ["General"]);
    // Deleting a team that is no longer the default works once unused.
    let contact_uuid = contact["uuid"].as_str().expect("uuid");
    app.patch(
        &format!("/contacts/{contact_uuid}"),
        json!({"team_uuid": general}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/teams/{sales}"))
        .await
        .assert_status(200);
    assert_eq!(defaults(&app.get("/teams").await.body), ["General"]);
}

// ------------------------------------------------------------ channels

async fn channels_are_shaped_like_callbells(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let listed = app.get("/channels?type=whatsapp&active=true&page=1").await;
    listed.assert_status(200);
    assert_eq!(keys(&listed.body), ["channels", "meta"]);
    assert_eq!(listed.body["meta"], json!({"page": 1, "pages": 1}));
    let channels = listed.body["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 1);
    let channel = &channels[0];
    assert_eq!(channel["uuid"], DEMO_CHANNEL);
    assert_eq!(channel["title"], "phone_number_1");
    assert_eq!(channel["type"], "whatsapp");
    assert_eq!(channel["main"], true);
    assert_eq!(channel["discardedAt"], false);

    let got = app.get(&format!("/channels/{DEMO_CHANNEL}")).await;
    got.assert_status(200);
    assert_eq!(got.body, json!({"channel": channel.clone()}));

    let renamed = app
        .patch(
            &format!("/channels/{DEMO_CHANNEL}"),
            json!({"title": "New title"}),
        )
        .await;
    renamed.assert_status(200);
    assert_eq!(keys(&renamed.body), ["channel"]);
    let mut expected = channel.clone();
    expected["title"] = json!("New title");
    assert_eq!(renamed.body["channel"], expected);
    // Contacts show the channel as it is now.
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(
        john.contact()["channel"],
        json!({"uuid": DEMO_CHANNEL, "title": "New title", "type": "whatsapp", "main": true})
    );
}

async fn channels_are_filtered_by_type_and_activity(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let created = app
        .post(
            "/channels",
            json!({"title": "Bot line", "type": "telegram"}),
        )
        .await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["channel"]);
    let telegram = &created.body["channel"];
    assert_public_id(&telegram["uuid"]);
    assert_eq!(telegram["title"], "Bot line");
    assert_eq!(telegram["type"], "telegram");
    assert_eq!(
        telegram["main"], true,
        "the first channel of its type is main"
    );
    assert_eq!(telegram["discardedAt"], false);

    let second = app
        .post(
            "/channels",
            json!({"title": "Second number", "type": "whatsapp"}),
        )
        .await;
    second.assert_status(200);
    assert_eq!(second.body["channel"]["main"], false);
    let second_uuid = second.body["channel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let discarded = app
        .patch(
            &format!("/channels/{second_uuid}"),
            json!({"discarded": true}),
        )
        .await;
    discarded.assert_status(200);
    assert_eq!(discarded.body["channel"]["discardedAt"], true);

    let titles = |reply: &crate::helpers::Reply| -> Vec<String> {
        reply.assert_status(200);
        column(&reply.body["channels"], "title")
            .into_iter()
            .map(|t| t.as_str().expect("title").to_owned())
            .collect()
    };
    assert_eq!(
        titles(&app.get("/channels").await),
        ["WhatsApp", "Bot line", "Second number"]
    );
    assert_eq!(
        titles(&app.get("/channels?type=whatsapp").await),
        ["WhatsApp", "Second number"]
    );
    assert_eq!(
        titles(&app.get("/channels?type=telegram").await),
        ["Bot line"]
    );
    assert_eq!(
        titles(&app.get("/channels?type=facebook").await),
        Vec::<String>::new()
    );
    assert_eq!(
        titles(&app.get("/channels?active=true").await),
        ["WhatsApp", "Bot line"]
    );
    assert_eq!(
        titles(&app.get("/channels?active=false").await),
        ["Second number"]
    );
    assert_eq!(
        titles(&app.get("/channels?type=whatsapp&active=false").await),
        ["Second number"]
    );
    let empty = app.get("/channels?type=instagram").await;
    assert_eq!(empty.body["meta"], json!({"page": 1, "pages": 1}));

    app.get("/channels?type=fax")
        .await
        .assert_error(400, "invalid_query");
    app.get("/channels?active=maybe")
        .await
        .assert_error(400, "invalid_query");
    app.get("/channels?page=0")
        .await
        .assert_error(400, "invalid_query");
}

async fn there_is_at_most_one_main_channel_per_type(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let first = app.get("/channels").await.body["channels"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let created = app
        .post(
            "/channels",
            json!({"title": "New main", "type": "whatsapp", "main": true}),
        )
        .await;
    created.assert_status(200);
    assert_eq!(created.body["channel"]["main"], true);
    let new_main = created.body["channel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let mains = |listed: &Value| -> Vec<String> {
        listed["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .filter(|c| c["main"] == true)
            .map(|c| c["uuid"].as_str().expect("uuid").to_owned())
            .collect()
    };
    assert_eq!(
        mains(&app.get("/channels?type=whatsapp").await.body),
        [new_main.as_str()]
    );
    assert_eq!(
        app.get(&format!("/channels/{first}")).await.body["channel"]["main"],
        false
    );

    // Contacts without channel_uuid go to the main channel of their source.
    let contact = app
        .create_contact(json!({"identifier": "5005", "source": "whatsapp", "name": "M"}))
        .await;
    assert_eq!(contact["channel"]["uuid"], new_main.as_str());
    assert_eq!(contact["channel"]["main"], true);

    let back = app
        .patch(&format!("/channels/{first}"), json!({"main": true}))
        .await;
    back.assert_status(200);
    assert_eq!(back.body["channel"]["main"], true);
    assert_eq!(
        mains(&app.get("/channels?type=whatsapp").await.body),
        [first.as_str()]
    );

    // A channel of another type does not take a WhatsApp channel's place.
    app.post(
        "/channels",
        json!({"title": "IG", "type": "instagram", "main": true}),
    )
    .await
    .assert_status(200);
    assert_eq!(
        mains(&app.get("/channels?type=whatsapp").await.body),
        [first.as_str()]
    );
    assert_eq!(mains(&app.get("/channels").await.body).len(), 2);

    // There is no "not main": another channel becomes main instead.
    let reply = app
        .patch(&format!("/channels/{first}"), json!({"main": false}))
        .await;
    reply.assert_error(422, "main_channel_required");
    assert_eq!(reply.error_fields(), ["main"]);
}

async fn channels_in_use_are_discarded_not_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let main = app.get("/channels").await.body["channels"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let contact = app
        .create_contact(json!({"identifier": "6006", "source": "whatsapp", "name": "Used"}))
        .await;
    app.delete(&format!("/channels/{main}"))
        .await
        .assert_error(409, "channel_in_use");

    let discarded = app
        .patch(&format!("/channels/{main}"), json!({"discarded": true}))
        .await;
    discarded.assert_status(200);
    assert_eq!(discarded.body["channel"]["discardedAt"], true);
    assert_eq!(discarded.body["channel"]["main"], false);
    // The contact that uses it stays readable.
    let uuid = contact["uuid"].as_str().expect("uuid");
    let reread = app.get(&format!("/contacts/{uuid}")).await;
    reread.assert_status(200);
    assert_eq!(reread.contact()["channel"]["uuid"], main.as_str());

    // New contacts cannot use it, named or as the main channel.
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "6007", "source": "whatsapp", "name": "N", "channel_uuid": main}),
        )
        .await;
    reply.assert_error(422, "channel_discarded");
    assert_eq!(reply.error_fields(), ["channel_uuid"]);
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "6007", "source": "whatsapp", "name": "N"}),
        )
        .await;
    reply.assert_error(422, "no_channel");
    assert_eq!(reply.error_fields(), ["source"]);
    // A discarded channel cannot be main.
    app.patch(&format!("/channels/{main}"), json!({"main": true}))
        .await
        .assert_error(409, "channel_discarded");
    // Still in use, still not deletable.
    app.delete(&format!("/channels/{main}"))
        .await
        .assert_error(409, "channel_in_use");

    // A channel nobody uses can go.
    let spare = app
        .post("/channels", json!({"title": "Spare", "type": "facebook"}))
        .await;
    let spare_uuid = spare.body["channel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let deleted = app.delete(&format!("/channels/{spare_uuid}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "channel was destroyed"}));
    app.get(&format!("/channels/{spare_uuid}"))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/channels/{spare_uuid}"))
        .await
        .assert_error(404, "not_found");
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "6008", "source": "facebook", "name": "F", "channel_uuid": spare_uuid}),
        )
        .await;
    reply.assert_error(422, "unknown_channel");
}

async fn bad_channel_input_is_refused_with_details(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let reply = app.post("/channels", json!({})).await;
    reply.assert_error(422, "required");
    let mut fields = reply.error_fields();
    fields.sort();
    assert_eq!(fields, ["title", "type"]);
    let reply = app
        .post("/channels", json!({"title": "Fax", "type": "fax"}))
        .await;
    reply.assert_error(422, "invalid_type");
    assert_eq!(reply.error_fields(), ["type"]);
    app.post("/channels", json!({"title": "", "type": "whatsapp"}))
        .await
        .assert_error(422, "blank");
    app.post(
        "/channels",
        json!({"title": "T", "type": "whatsapp", "main": "yes"}),
    )
    .await
    .assert_error(422, "invalid_type");
    let main = app.get("/channels").await.body["channels"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let reply = app
        .patch(&format!("/channels/{main}"), json!({"type": "telegram"}))
        .await;
    reply.assert_error(422, "type_immutable");
    assert_eq!(reply.error_fields(), ["type"]);
    app.patch(&format!("/channels/{main}"), json!({"title": " "}))
        .await
        .assert_error(422, "blank");
    app.patch(&format!("/channels/{main}"), json!({"title": 5}))
        .await
        .assert_error(422, "invalid_type");
    let reply = app
        .patch(
            &format!("/channels/{main}"),
            json!({"title": "Changed", "type": "telegram"}),
        )
        .await;
    reply.assert_error(422, "type_immutable");
    let listed = app.get("/channels").await;
    assert_eq!(listed.body["channels"].as_array().map(Vec::len), Some(1));
    assert_eq!(listed.body["channels"][0]["title"], "WhatsApp");
    assert_eq!(listed.body["channels"][0]["type"], "whatsapp");
}

// ---------------------------------------------------------------- bots

async fn bots_are_created_read_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    assert_eq!(app.get("/bots").await.body, json!({"bots": []}));
    // Without an enabled bot, contacts cannot ask for one.
    let reply = app
        .post(
            "/contacts",
            json!({"identifier": "7007", "source": "whatsapp", "name": "B", "bot_status": "bot_start"}),
        )
        .await;
    reply.assert_error(422, "no_bot");
    assert_eq!(reply.error_fields(), ["bot_status"]);

    let created = app.post("/bots", json!({"name": "Helper"})).await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["bot"]);
    let bot = &created.body["bot"];
    assert_eq!(
        keys(bot),
        ["createdAt", "enabled", "name", "uuid", "version"]
    );
    assert_public_id(&bot["uuid"]);
    assert_eq!(bot["name"], "Helper");
    assert_eq!(bot["enabled"], true);
    assert_eq!(bot["version"], 1);
    assert_timestamp(&bot["createdAt"]);
    let uuid = bot["uuid"].as_str().expect("uuid").to_owned();
    assert_eq!(app.get(&format!("/bots/{uuid}")).await.body, created.body);
    assert_eq!(app.get("/bots").await.body, json!({"bots": [bot.clone()]}));

    app.post(
        "/contacts",
        json!({"identifier": "7007", "source": "whatsapp", "name": "B", "bot_status": "bot_start"}),
    )
    .await
    .assert_status(200);

    let updated = app
        .patch(
            &format!("/bots/{uuid}"),
            json!({"enabled": false, "version": 3, "name": "Helper 2"}),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["bot"]["enabled"], false);
    assert_eq!(updated.body["bot"]["version"], 3);
    assert_eq!(updated.body["bot"]["name"], "Helper 2");
    app.post(
        "/contacts",
        json!({"identifier": "7008", "source": "whatsapp", "name": "C", "bot_status": "bot_end"}),
    )
    .await
    .assert_error(422, "no_bot");

    for (body, code, field) in [
        (json!({"version": 0}), "invalid_version", "version"),
        (json!({"version": "2"}), "invalid_type", "version"),
        (json!({"enabled": "yes"}), "invalid_type", "enabled"),
        (json!({"name": ""}), "blank", "name"),
    ] {
        let reply = app.patch(&format!("/bots/{uuid}"), body.clone()).await;
        reply.assert_error(422, code);
        assert_eq!(reply.error_fields(), [field], "{body}");
    }
    let reply = app.post("/bots", json!({})).await;
    reply.assert_error(422, "required");
    assert_eq!(reply.error_fields(), ["name"]);
    app.post("/bots", json!({"name": "V", "version": -1}))
        .await
        .assert_error(422, "invalid_version");
    assert_eq!(app.get(&format!("/bots/{uuid}")).await.body, updated.body);

    let deleted = app.delete(&format!("/bots/{uuid}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "bot was destroyed"}));
    app.get(&format!("/bots/{uuid}"))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/bots/{uuid}"))
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.get("/bots").await.body, json!({"bots": []}));
}

// --------------------------------------------------------- concurrency

async fn concurrent_changes_keep_one_default_team_and_one_main_channel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let mut team_paths = Vec::new();
    for n in 0..6 {
        let team = app.post("/teams", json!({ "name": format!("T{n}") })).await;
        team.assert_status(200);
        let uuid = team.body["team"]["uuid"].as_str().expect("uuid");
        team_paths.push(format!("/teams/{uuid}"));
    }
    // Making teams the default at once: each request simply moves it.
    let replies = futures::future::join_all(
        team_paths
            .iter()
            .map(|path| app.patch(path, json!({"default": true}))),
    )
    .await;
    for reply in &replies {
        reply.assert_status(200);
        assert_eq!(reply.body["team"]["default"], true);
    }
    assert_eq!(defaults(&app.get("/teams").await.body).len(), 1);

    // Main channels created at once: each takes the place of the one before.
    let replies = futures::future::join_all((0..6).map(|n| {
        app.post(
            "/channels",
            json!({"title": format!("Main {n}"), "type": "whatsapp", "main": true}),
        )
    }))
    .await;
    for reply in &replies {
        reply.assert_status(200);
        assert_eq!(reply.body["channel"]["main"], true);
    }
    // The first channels of a new type: exactly one becomes main.
    let replies = futures::future::join_all((0..6).map(|n| {
        app.post(
            "/channels",
            json!({"title": format!("Tg {n}"), "type": "telegram"}),
        )
    }))
    .await;
    for reply in &replies {
        reply.assert_status(200);
    }
    let listed = app.get("/channels").await;
    for kind in ["whatsapp", "telegram"] {
        let mains = listed.body["channels"]
            .as_array()
            .expect("channels")
            .iter()
            .filter(|c| c["type"] == kind && c["main"] == true)
            .count();
        assert_eq!(mains, 1, "{kind}: {}", listed.text);
    }

    // One name, created at once: one tag, the rest are told it exists.
    let replies =
        futures::future::join_all((0..6).map(|_| app.post("/tags", json!({"name": "Same"})))).await;
    let created = replies.iter().filter(|r| r.status == 200).count();
    assert_eq!(created, 1);
    for reply in replies.iter().filter(|r| r.status != 200) {
        reply.assert_error(409, "tag_exists");
    }
    assert_eq!(names(&app.get("/tags").await.body["tags"]), ["Same"]);
}

// ------------------------------------------------------------- funnels

async fn funnels_are_listed_created_updated_and_deleted(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let listed = app.get("/funnels").await;
    listed.assert_status(200);
    assert_eq!(keys(&listed.body), ["funnels"]);
    assert_eq!(
        names(&listed.body["funnels"]),
        ["Awareness", "Interest", "Desire", "Action"]
    );
    assert_eq!(
        column(&listed.body["funnels"], "uuid"),
        [
            "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6",
            "1cd7845e-6b93-453d-b015-9dce35d16f39",
            "1e6c0c57-c81d-49d2-81d2-fcec053a1ab6",
            "8c51dfc8-667a-4f7f-9c83-ae065524483a"
        ]
    );
    let first = &listed.body["funnels"][0];
    assert_eq!(
        keys(first),
        ["createdAt", "emoji", "name", "position", "uuid"]
    );
    assert_timestamp(&first["createdAt"]);

    let created = app
        .post("/funnels", json!({"name": "Loyalty", "emoji": "💎"}))
        .await;
    created.assert_status(200);
    assert_eq!(keys(&created.body), ["funnel"]);
    let funnel = &created.body["funnel"];
    assert_eq!(funnel["name"], "Loyalty");
    assert_eq!(funnel["emoji"], "💎");
    assert_eq!(funnel["position"], 5, "appended after the last position");
    assert_timestamp(&funnel["createdAt"]);
    let uuid = funnel["uuid"].as_str().expect("uuid").to_owned();
    assert!(
        uuid.len() == 36 && uuid.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12],
        "{uuid} is a dashed UUID"
    );
    assert_eq!(
        app.get(&format!("/funnels/{uuid}")).await.body,
        created.body
    );
    // Dashed is the one form funnel ids take.
    app.get(&format!("/funnels/{}", uuid.replace('-', "")))
        .await
        .assert_error(404, "not_found");

    let updated = app
        .patch(
            &format!("/funnels/{uuid}"),
            json!({"name": "Retention", "emoji": null}),
        )
        .await;
    updated.assert_status(200);
    assert_eq!(updated.body["funnel"]["name"], "Retention");
    assert_eq!(updated.body["funnel"]["emoji"], Value::Null);
    assert_eq!(updated.body["funnel"]["position"], 5);
    // Funnels are listed by position.
    app.patch(&format!("/funnels/{uuid}"), json!({"position": 0}))
        .await
        .assert_status(200);
    assert_eq!(
        names(&app.get("/funnels").await.body["funnels"]),
        ["Retention", "Awareness", "Interest", "Desire", "Action"]
    );

    // Contacts in a deleted funnel are left without one.
    let moved = app
        .put(
            &format!("/contacts/{DEMO_JOHN}/conversation/update_funnel"),
            json!({"funnel_id": uuid}),
        )
        .await;
    moved.assert_status(200);
    assert_eq!(moved.contact()["funnelId"], uuid.as_str());
    let deleted = app.delete(&format!("/funnels/{uuid}")).await;
    deleted.assert_status(200);
    assert_eq!(deleted.body, json!({"status": "funnel was destroyed"}));
    let john = app.get(&format!("/contacts/{DEMO_JOHN}")).await;
    assert_eq!(john.contact()["funnelId"], Value::Null);
    app.get(&format!("/funnels/{uuid}"))
        .await
        .assert_error(404, "not_found");
    app.delete(&format!("/funnels/{uuid}"))
        .await
        .assert_error(404, "not_found");
    assert_eq!(app.get("/funnels").await.body, listed.body);

    let reply = app.post("/funnels", json!({})).await;
    reply.assert_error(422, "required");
    assert_eq!(reply.error_fields(), ["name"]);
    app.post("/funnels", json!({"name": "P", "position": "first"}))
        .await
        .assert_error(422, "invalid_type");
    app.post("/funnels", json!({"name": "E", "emoji": "x".repeat(17)}))
        .await
        .assert_error(422, "too_long");
    assert_eq!(app.get("/funnels").await.body, listed.body);
}

// ------------------------------------------------- scope and bad ids

async fn another_accounts_settings_are_not_found_nor_listed(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let other = app.create_account("other").await;
    let them = app.as_key(&other);

    assert_eq!(them.get("/tags").await.body, json!({"tags": []}));
    assert_eq!(
        them.get("/custom_fields").await.body,
        json!({"custom_fields": []})
    );
    assert_eq!(them.get("/bots").await.body, json!({"bots": []}));
    assert_eq!(them.get("/funnels").await.body, json!({"funnels": []}));
    let users = them.get("/users").await;
    assert_eq!(
        column(&users.body["users"], "email"),
        ["owner@other.example.com"]
    );
    let teams = them.get("/teams").await;
    assert_eq!(teams.body["teams"].as_array().map(Vec::len), Some(1));
    assert_ne!(teams.body["teams"][0]["uuid"], DEMO_GENERAL);
    let channels = them.get("/channels").await;
    assert_eq!(channels.body["channels"].as_array().map(Vec::len), Some(1));
    assert_ne!(channels.body["channels"][0]["uuid"], DEMO_CHANNEL);

    let jane = app.get("/users").await.body["users"][1]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let funnel = "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6";
    let paths = [
        "/tags/sales".to_owned(),
        "/custom_fields/VAT".to_owned(),
        format!("/users/{jane}"),
        format!("/teams/{DEMO_SUPPORT}"),
        format!("/channels/{DEMO_CHANNEL}"),
        format!("/bots/{DEMO_BOT}"),
        format!("/funnels/{funnel}"),
    ];
    for path in &paths {
        them.get(path).await.assert_error(404, "not_found");
        them.patch(path, json!({"name": "Mine", "title": "Mine"}))
            .await
            .assert_error(404, "not_found");
        them.delete(path).await.assert_error(404, "not_found");
    }
    // Their names are theirs to use.
    them.post("/tags", json!({"name": "sales"}))
        .await
        .assert_status(200);
    them.post(
        "/users",
        json!({"email": "jane.doe@email.com", "name": "Their Jane"}),
    )
    .await
    .assert_status(200);
    // Nor can their contacts refer to ours.
    let reply = them
        .post(
            "/contacts",
            json!({
                "identifier": "8008",
                "source": "whatsapp",
                "name": "X",
                "team_uuid": DEMO_SUPPORT,
                "channel_uuid": DEMO_CHANNEL,
                "tags": ["lead"]
            }),
        )
        .await;
    reply.assert_error(422, "validation_failed");
    let fields = reply.error_fields();
    for field in ["team_uuid", "channel_uuid", "tags[0]"] {
        assert!(
            fields.contains(&field.to_owned()),
            "{field} not in {fields:?}"
        );
    }
    // Ours are untouched.
    for path in &paths {
        app.get(path).await.assert_status(200);
    }
    assert_eq!(app.get("/tags/sales").await.body["tag"]["name"], "sales");
    assert_eq!(
        app.get(&format!("/users/{jane}")).await.body["user"]["name"],
        "Jane Doe"
    );
}

async fn malformed_setting_ids_are_not_found(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let ids = [
        "nope",
        "AD42A09715814E6483B1C5DEBD6A2DBC",
        "ad42a097-1581-4e64-83b1-c5debd6a2dbc",
        "0",
        "00000000000000000000000000000000",
    ];
    for resource in ["users", "teams", "channels", "bots"] {
        for id in ids {
            let path = format!("/{resource}/{id}");
            app.get(&path).await.assert_error(404, "not_found");
            app.patch(&path, json!({"name": "x"}))
                .await
                .assert_error(404, "not_found");
            app.delete(&path).await.assert_error(404, "not_found");
        }
    }
    for id in [
        "nope",
        "FF0F96B9-B003-4D0C-B14F-27F3F6868DD6",
        "ff0f96b9b0034d0cb14f27f3f6868dd6",
        "00000000-0000-0000-0000-000000000000",
    ] {
        let path = format!("/funnels/{id}");
        app.get(&path).await.assert_error(404, "not_found");
        app.patch(&path, json!({"name": "x"}))
            .await
            .assert_error(404, "not_found");
        app.delete(&path).await.assert_error(404, "not_found");
    }
    for path in ["/tags/Nope", "/custom_fields/Nope"] {
        app.get(path).await.assert_error(404, "not_found");
        app.delete(path).await.assert_error(404, "not_found");
    }
    app.patch("/tags/Nope", json!({"name": "x"}))
        .await
        .assert_error(404, "not_found");
    app.patch("/custom_fields/Nope", json!({"name": "x"}))
        .await
        .assert_error(404, "not_found");
}

/// JSON does not tell 2 from 2.0; whole-number fields take both.
async fn whole_numbers_may_carry_a_zero_fraction(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let bot = app
        .post("/bots", json!({"name": "Helper", "version": 2.0}))
        .await;
    bot.assert_status(200);
    assert_eq!(bot.body["bot"]["version"], 2);
    let funnel = app
        .post("/funnels", json!({"name": "Stage", "position": 7.0}))
        .await;
    funnel.assert_status(200);
    assert_eq!(funnel.body["funnel"]["position"], 7);
    app.post("/bots", json!({"name": "Helper", "version": 2.5}))
        .await
        .assert_error(422, "invalid_type");
}

/// `main: false` is refused only where it would leave a type without a
/// main channel; elsewhere it is already so.
async fn main_false_is_refused_only_on_the_main_channel(backend: Backend) {
    let app = TestApp::spawn(backend).await;
    let channels = app.get("/channels").await;
    let main = channels.body["channels"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let second = app
        .post("/channels", json!({"title": "Second", "type": "whatsapp"}))
        .await;
    let second = second.body["channel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let kept = app
        .patch(&format!("/channels/{second}"), json!({"main": false}))
        .await;
    kept.assert_status(200);
    assert_eq!(kept.body["channel"]["main"], false);
    app.patch(&format!("/channels/{main}"), json!({"main": false}))
        .await
        .assert_error(422, "main_channel_required");
    app.patch(
        "/channels/00000000000000000000000000000000",
        json!({"main": false}),
    )
    .await
    .assert_error(404, "not_found");
}

on_both_backends!(
    whole_numbers_may_carry_a_zero_fraction,
    main_false_is_refused_only_on_the_main_channel,
    tags_are_created_read_renamed_and_deleted,
    tag_names_are_unique_case_insensitively,
    bad_tag_input_is_refused_with_details,
    names_are_addressed_url_encoded,
    deleting_a_tag_removes_it_from_every_contact,
    custom_fields_are_created_read_updated_and_deleted,
    custom_field_types_and_options_are_checked,
    custom_field_names_are_unique_case_insensitively,
    custom_field_changes_show_on_contacts,
    deleting_a_custom_field_removes_its_values,
    users_are_created_read_updated_and_deleted,
    user_emails_are_valid_and_unique,
    deleting_a_user_unassigns_their_contacts,
    teams_are_shaped_like_callbells,
    teams_are_created_with_members_and_deleted,
    there_is_exactly_one_default_team,
    channels_are_shaped_like_callbells,
    channels_are_filtered_by_type_and_activity,
    there_is_at_most_one_main_channel_per_type,
    channels_in_use_are_discarded_not_deleted,
    bad_channel_input_is_refused_with_details,
    concurrent_changes_keep_one_default_team_and_one_main_channel,
    bots_are_created_read_updated_and_deleted,
    funnels_are_listed_created_updated_and_deleted,
    another_accounts_settings_are_not_found_nor_listed,
    malformed_setting_ids_are_not_found,
);
