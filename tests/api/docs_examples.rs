//! The Callbell documentation's own example requests (`shared/seeds/` and
//! the research copies of every contacts, teams, channels, funnels and auth
//! page), sent verbatim against the demo account with only the host
//! replaced: same method, path, headers and body bytes as each language's
//! example puts on the wire, including the quirks (Content-Type on GET,
//! C#'s empty body on GET, trailing commas, the invalid JSON of
//! PATCH /teams, axios re-encoding string bodies).
//!
//! Each language runs the whole family in one order on a fresh demo
//! server: POST, PATCH, GET list, GET one, phone and bsuid lookups, close,
//! open, note, update_funnel (both routes), bot GET and POST, messages,
//! DELETE (last, because every other example addresses the contact it
//! destroys), then teams, channels, funnels and auth. A separate test runs
//! the cURL examples through `sh` and the real `curl`.

use reqwest::Method;
use serde_json::{Value, json};

use crate::helpers::{Backend, Reply, TestApp, send};
use crate::on_both_backends;

/// Every example's host; replaced by the test server's.
const DOCS: &str = "https://api.callbell.eu/v1";
/// Every example's header, verbatim.
const AUTHORIZATION: &str = "Bearer test_gshuPaZoeEG6ovbc8M79w0QyM";

/// The tabs of every example.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lang {
    Curl,
    /// axios
    Node,
    /// Net::HTTP
    Ruby,
    /// net/http
    Go,
    /// ext-curl
    Php,
    /// requests
    Python,
    /// HttpClient
    CSharp,
    /// HttpURLConnection
    Java,
    /// reqwest::blocking
    Rust,
}

use crate::fixtures::demo::{AWARENESS, BOT, CHANNEL, GENERAL, JOHN, MARIO, SUPPORT};
use crate::fixtures::{CONTACT_KEYS, is_timestamp};
use Lang::{CSharp, Curl, Go, Java, Node, Php, Python, Ruby, Rust};

impl Lang {
    /// The headers each client adds on its own (hop-by-hop ones left out).
    fn client_headers(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Curl => &[("User-Agent", "curl/7.88.1"), ("Accept", "*/*")],
            Node => &[
                ("Accept", "application/json, text/plain, */*"),
                ("User-Agent", "axios/1.7.9"),
                ("Accept-Encoding", "gzip, compress, deflate, br"),
            ],
            Ruby => &[
                ("Accept-Encoding", "gzip;q=1.0,deflate;q=0.6,identity;q=0.3"),
                ("Accept", "*/*"),
                ("User-Agent", "Ruby"),
            ],
            Go => &[
                ("User-Agent", "Go-http-client/1.1"),
                ("Accept-Encoding", "gzip"),
            ],
            Php => &[("Accept", "*/*")],
            Python => &[
                ("User-Agent", "python-requests/2.32.3"),
                ("Accept-Encoding", "gzip, deflate"),
                ("Accept", "*/*"),
            ],
            CSharp => &[],
            // HttpURLConnection's own Accept, which is not even well formed.
            Java => &[
                ("User-Agent", "Java/17.0.13"),
                (
                    "Accept",
                    "text/html, image/gif, image/jpeg, *; q=.2, */*; q=.2",
                ),
            ],
            Rust => &[("Accept", "*/*")],
        }
    }

    /// What a GET or DELETE example sends as its body: C# sets
    /// `new StringContent("")` (an empty body, `Content-Length: 0`) even
    /// there; the others send none.
    fn no_body(self) -> Option<String> {
        match self {
            CSharp => Some(String::new()),
            _ => None,
        }
    }

    /// The body of a POST the example sends without data (close, open):
    /// C#'s empty StringContent; Net::HTTP, net/http and requests send an
    /// empty body with `Content-Length: 0`; curl, ext-curl,
    /// HttpURLConnection and reqwest send none.
    fn empty_post(self) -> Option<String> {
        match self {
            // axios.post(url, '', {headers: {'Content-Type':
            // 'application/json'}}): '' is not valid JSON, so axios's
            // stringifySafely sends JSON.stringify('') = `""`.
            Node => Some(axios_string("")),
            CSharp | Ruby | Go | Python => Some(String::new()),
            Curl | Php | Java | Rust => None,
        }
    }
}

/// What axios puts on the wire for a *string* `data` with a JSON
/// Content-Type (`stringifySafely` in axios/lib/defaults): the string
/// itself (trimmed) if it parses as JSON, else the string JSON-encoded.
fn axios_string(data: &str) -> String {
    match serde_json::from_str::<Value>(data) {
        Ok(_) => data.trim().to_owned(),
        Err(_) => serde_json::to_string(data).expect("a string encodes"),
    }
}

/// `POST /contacts` (seed 000/002 and the docs repository's snippets).
fn create_body(lang: Lang) -> String {
    let indented = "{\n        \"source\": \"whatsapp\",\n        \"identifier\": \"123456789\",\n        \"name\": \"John Doe\"\n    }";
    match lang {
        Curl | Go | Php | CSharp | Java => indented.to_owned(),
        Rust => format!("\n{indented}\n"),
        // JSON.stringify / to_json of the literal object.
        Node | Ruby => {
            r#"{"source":"whatsapp","identifier":"123456789","name":"John Doe"}"#.to_owned()
        }
        // requests' json= (json.dumps).
        Python => {
            r#"{"source": "whatsapp", "identifier": "123456789", "name": "John Doe"}"#.to_owned()
        }
    }
}

/// `PATCH /contacts/:uuid`: the current example (seed 001, with
/// custom_fields) and, where the docs repository still has it, the older
/// name-only one. Java's cannot be sent at all (see the flow).
fn patch_bodies(lang: Lang) -> Vec<String> {
    // C#, Java and Rust as in the docs repository; the others as seed 001
    // renders them (its indentation is lost).
    let rendered = "{\n\"name\": \"Joe Doe NEW\",\n\"custom_fields\": {\n\"orderNumber\": 123,\n\"zipCode\": \"98765430\"\n}\n}";
    let repo = "{\n        \"name\": \"Joe Doe NEW\",\n        \"custom_fields\": {\n          \"orderNumber\": 123,\n          \"zipCode\": \"98765430\"\n        }\n      }";
    let compact =
        r#"{"name":"Joe Doe NEW","custom_fields":{"orderNumber":123,"zipCode":"98765430"}}"#;
    let name_only = r#"{"name": "Joe Doe NEW"}"#;
    let name_only_compact = r#"{"name":"Joe Doe NEW"}"#;
    let current = match lang {
        Curl | Go => rendered.to_owned(),
        Php => "{\n \"name\": \"Joe Doe NEW\",\n \"custom_fields\": {\n \"orderNumber\": 123,\n \"zipCode\": \"98765430\"\n }\n }".to_owned(),
        Node | Ruby => compact.to_owned(),
        Python => r#"{"name": "Joe Doe NEW", "custom_fields": {"orderNumber": 123, "zipCode": "98765430"}}"#.to_owned(),
        CSharp | Java => repo.to_owned(),
        Rust => format!("\n{repo}\n"),
    };
    match lang {
        Curl | Go | Php | Python => vec![current, name_only.to_owned()],
        Node | Ruby => vec![current, name_only_compact.to_owned()],
        CSharp | Java | Rust => vec![current],
    }
}

/// `POST /contacts/:uuid/conversation/note`; cURL also has a stored
/// version with a trailing comma.
fn note_bodies(lang: Lang) -> Vec<String> {
    let spaced = r#"{ "text": "Hey @john.doe, look here!" }"#.to_owned();
    match lang {
        Curl => vec![
            spaced,
            "{\n        \"text\": \"Hey @john.doe, look here!\",\n    }".to_owned(),
        ],
        Go | Php | CSharp | Java | Rust => vec![spaced],
        Node | Ruby => vec![r#"{"text":"Hey @john.doe, look here!"}"#.to_owned()],
        Python => vec![r#"{"text": "Hey @john.doe, look here!"}"#.to_owned()],
    }
}

/// update_funnel: every language sends the same string, trailing comma
/// included.
fn funnel_body(lang: Lang) -> String {
    let text = "{\n        \"funnel_id\": \"ff0f96b9-b003-4d0c-b14f-27f3f6868dd6\",\n    }";
    match lang {
        Rust => format!("\n{text}\n"),
        // A string that is not valid JSON: axios sends it JSON-encoded.
        Node => axios_string(text),
        _ => text.to_owned(),
    }
}

/// `POST /contacts/:uuid/bot`.
fn bot_body(lang: Lang) -> String {
    let indented = "{\n        \"status\": \"bot_start\"\n      }";
    match lang {
        Curl | Go | Php | CSharp | Java => indented.to_owned(),
        Rust => format!("\n{indented}\n"),
        Node | Ruby => r#"{"status":"bot_start"}"#.to_owned(),
        Python => r#"{"status": "bot_start"}"#.to_owned(),
    }
}

/// `PATCH /teams/:uuid`: invalid JSON in every language.
fn team_body(lang: Lang) -> String {
    let text = r#"{"name": New team name"}"#;
    match lang {
        Node => axios_string(text),
        _ => text.to_owned(),
    }
}

/// `PATCH /channels/:uuid`.
fn channel_body(lang: Lang) -> String {
    match lang {
        Node | Ruby => r#"{"title":"New title"}"#.to_owned(),
        _ => r#"{"title": "New title"}"#.to_owned(),
    }
}

/// Sends one example: the docs' URL with the host replaced, the client's
/// own headers, the example's `Authorization` and `Content-Type` (every
/// example sets it, on every method; requests adds it for `json=` where
/// the Python example comments it out), and the body bytes.
async fn example(
    app: &TestApp,
    lang: Lang,
    method: Method,
    docs_url: &str,
    body: Option<String>,
) -> Reply {
    assert!(docs_url.starts_with(DOCS), "{docs_url}");
    let url = docs_url.replacen(DOCS, &app.base, 1);
    let mut request = app.client.request(method, url);
    for (name, value) in lang.client_headers() {
        request = request.header(*name, *value);
    }
    request = request
        .header("Authorization", AUTHORIZATION)
        .header("Content-Type", "application/json");
    if let Some(body) = body {
        request = request.body(body);
    }
    send(request).await
}

fn is_hex32(value: &Value) -> bool {
    value.as_str().is_some_and(|t| {
        t.len() == 32
            && t.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
    })
}

/// The body's only key is `key`.
#[track_caller]
fn only_key<'a>(reply: &'a Reply, key: &str) -> &'a Value {
    let object = reply
        .body
        .as_object()
        .unwrap_or_else(|| panic!("not a JSON object: {}", reply.text));
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec![key],
        "envelope; body: {}",
        reply.text
    );
    &object[key]
}

/// `{"contact": [C]}`, as Callbell's examples wrap it.
#[track_caller]
fn contact_in_array(reply: &Reply) -> &Value {
    reply.assert_status(200);
    let array = only_key(reply, "contact")
        .as_array()
        .unwrap_or_else(|| panic!("contact must be an array: {}", reply.text));
    assert_eq!(array.len(), 1, "one contact; body: {}", reply.text);
    &array[0]
}

/// `{"contact": C}`.
#[track_caller]
fn contact_object(reply: &Reply) -> &Value {
    reply.assert_status(200);
    let contact = only_key(reply, "contact");
    assert!(
        contact.is_object(),
        "contact must be an object: {}",
        reply.text
    );
    contact
}

/// Every field of SPEC §3, with the types and links it prescribes.
#[track_caller]
fn assert_contact_shape(contact: &Value, site: &str) {
    for field in CONTACT_KEYS {
        assert!(contact.get(field).is_some(), "{field} missing: {contact}");
    }
    assert!(is_hex32(&contact["uuid"]), "uuid: {contact}");
    assert!(is_timestamp(&contact["createdAt"]), "createdAt: {contact}");
    assert!(
        contact["closedAt"].is_null() || is_timestamp(&contact["closedAt"]),
        "closedAt: {contact}"
    );
    let uuid = contact["uuid"].as_str().unwrap_or_default();
    assert_eq!(contact["href"], format!("{site}/contacts/{uuid}"));
    let conversation = contact["conversationHref"]
        .as_str()
        .and_then(|h| h.strip_prefix(&format!("{site}/chat/")))
        .map(|id| Value::String(id.to_owned()));
    assert!(
        conversation.as_ref().is_some_and(is_hex32),
        "conversationHref: {contact}"
    );
    assert!(contact["tags"].is_array(), "tags: {contact}");
    assert!(
        contact["customFields"]
            .as_object()
            .is_some_and(|f| f.values().all(Value::is_string)),
        "customFields: {contact}"
    );
    assert_eq!(
        contact["channel"],
        json!({"uuid": CHANNEL, "title": "phone_number_1", "type": "whatsapp", "main": true}),
        "channel: {contact}"
    );
}

fn general_team() -> Value {
    json!({
        "uuid": GENERAL,
        "name": "General",
        "createdAt": "2020-11-13T21:08:53Z",
        "default": true,
        "members": 2
    })
}

/// What the demo's John Doe looks like after the PATCH examples (or
/// without them, for Java).
fn john_fields(patched: bool) -> Value {
    let mut fields = json!({
        "Billing Address": "3 Abbey Rd, London",
        "Stripe link": "https://stripe.com/contacts/cus1234567"
    });
    if patched {
        fields["orderNumber"] = json!("123");
        fields["zipCode"] = json!("98765430");
    }
    fields
}

#[track_caller]
fn assert_john(contact: &Value, site: &str, patched: bool) {
    assert_contact_shape(contact, site);
    assert_eq!(contact["uuid"], JOHN);
    let name = if patched { "Joe Doe NEW" } else { "John Doe" };
    assert_eq!(contact["name"], name);
    assert_eq!(contact["phoneNumber"], "5790372023");
    assert_eq!(contact["source"], "whatsapp");
    assert_eq!(contact["createdAt"], "2020-11-13T21:08:53Z");
    assert_eq!(contact["tags"], json!(["sales", "lead"]));
    assert_eq!(contact["assignedUser"], "john.doe@email.com");
    assert_eq!(contact["customFields"], john_fields(patched));
    assert_eq!(contact["team"], general_team());
}

/// The whole family, in order, as one language's examples send it.
async fn run_examples(backend: Backend, lang: Lang) {
    let app = TestApp::spawn_demo(backend).await;
    let site = app.base.trim_end_matches("/v1").to_owned();
    // HttpURLConnection.setRequestMethod("PATCH") throws
    // ProtocolException("Invalid HTTP method: PATCH") before anything is
    // sent: none of Java's PATCH examples (contacts, teams, channels) can
    // reach any server.
    let can_patch = lang != Java;
    // axios turns the string bodies of close/open ('') and update_funnel
    // (a trailing comma) into JSON *strings* (`""`, `"{\n ...,\n }"`):
    // close and open take no body, and a JSON string holding an object is
    // read as that object, so these examples work too.

    // POST /contacts
    let reply = example(
        &app,
        lang,
        Method::POST,
        "https://api.callbell.eu/v1/contacts",
        Some(create_body(lang)),
    )
    .await;
    let created = contact_in_array(&reply).clone();
    assert_contact_shape(&created, &site);
    assert_eq!(created["name"], "John Doe");
    assert_eq!(created["phoneNumber"], "123456789");
    assert_eq!(created["source"], "whatsapp");
    assert_eq!(created["tags"], json!([]));
    assert_eq!(created["assignedUser"], Value::Null);
    assert_eq!(created["customFields"], json!({}));
    assert_eq!(created["avatarUrl"], Value::Null);
    assert_eq!(created["closedAt"], Value::Null);
    assert_eq!(created["funnelId"], Value::Null);
    assert_eq!(created["team"], general_team());
    assert_ne!(created["uuid"], JOHN, "a new contact, not the demo's");

    // PATCH /contacts/:uuid
    if can_patch {
        for body in patch_bodies(lang) {
            let reply = example(
                &app,
                lang,
                Method::PATCH,
                "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8",
                Some(body),
            )
            .await;
            assert_john(contact_in_array(&reply), &site, true);
        }
    }

    // GET /contacts: newest first, the created contact before the demo's.
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let object = reply.body.as_object().expect("object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["contacts", "meta"],
        "{}",
        reply.text
    );
    assert_eq!(
        reply.body["meta"],
        json!({"page": 1, "pages": 1, "next": null})
    );
    let contacts = reply.body["contacts"].as_array().expect("contacts");
    let uuids: Vec<&Value> = contacts.iter().map(|c| &c["uuid"]).collect();
    assert_eq!(uuids, vec![&created["uuid"], &json!(MARIO), &json!(JOHN)]);
    for contact in contacts {
        assert_contact_shape(contact, &site);
    }
    assert_eq!(contacts[0], created);
    assert_eq!(contacts[1]["name"], "Mario Rossi");
    assert_eq!(contacts[1]["phoneNumber"], "+33 11 22 33 44");
    assert_eq!(contacts[1]["tags"], json!(["sales", "lead", "hot"]));
    assert_eq!(
        contacts[1]["customFields"],
        json!({"Stripe link": "https://stripe.com/contacts/cus124124153"})
    );
    assert_john(&contacts[2], &site, can_patch);

    // GET /contacts/:uuid: wrapped in an array, as documented.
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8",
        lang.no_body(),
    )
    .await;
    assert_john(contact_in_array(&reply), &site, can_patch);

    // GET /contacts/phone/:number: a plain object.
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts/phone/5790372023",
        lang.no_body(),
    )
    .await;
    assert_john(contact_object(&reply), &site, can_patch);

    // GET /contacts/bsuid/:bsuid: the demo has no bsuid, so give John
    // Doe the example's first (bellbook's PATCH extension).
    app.patch(
        &format!("/contacts/{JOHN}"),
        json!({"bsuid": "bsuid_abc123"}),
    )
    .await
    .assert_status(200);
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts/bsuid/bsuid_abc123",
        lang.no_body(),
    )
    .await;
    let contact = contact_object(&reply);
    assert_john(contact, &site, can_patch);
    assert_eq!(contact["bsuid"], "bsuid_abc123");

    // POST /contacts/:uuid/conversation/close: SPEC §4 answers a plain
    // object (the docs' example shows an array).
    let reply = example(
        &app,
        lang,
        Method::POST,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/close",
        lang.empty_post(),
    )
    .await;
    let contact = contact_object(&reply);
    assert_john(contact, &site, can_patch);
    assert!(is_timestamp(&contact["closedAt"]), "closedAt: {contact}");

    // POST /contacts/:uuid/conversation/open
    let reply = example(
        &app,
        lang,
        Method::POST,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/open",
        lang.empty_post(),
    )
    .await;
    let contact = contact_in_array(&reply);
    assert_john(contact, &site, can_patch);
    assert_eq!(contact["closedAt"], Value::Null);

    // POST /contacts/:uuid/conversation/note
    for body in note_bodies(lang) {
        let reply = example(
            &app,
            lang,
            Method::POST,
            "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/note",
            Some(body),
        )
        .await;
        reply.assert_status(200);
        assert_eq!(reply.body, json!({"success": true}));
    }

    // update_funnel: every example POSTs to .../messages/update_funnel;
    // the page's title documents PUT .../conversation/update_funnel, sent
    // here with the same headers and body.
    for (method, url) in [
        (
            Method::POST,
            "https://api.callbell.eu/v1/contacts/efd7d996470e463b89f079be6cf578ed/messages/update_funnel",
        ),
        (
            Method::PUT,
            "https://api.callbell.eu/v1/contacts/efd7d996470e463b89f079be6cf578ed/conversation/update_funnel",
        ),
    ] {
        let reply = example(&app, lang, method, url, Some(funnel_body(lang))).await;
        let contact = contact_in_array(&reply);
        assert_contact_shape(contact, &site);
        assert_eq!(contact["uuid"], MARIO);
        assert_eq!(contact["funnelId"], AWARENESS);
    }

    // GET /contacts/:uuid/bot: John Doe's bot is started and his
    // conversation open.
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/bot",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let bot = only_key(&reply, "bot");
    assert_eq!(bot["uuid"], BOT);
    assert_eq!(bot["name"], "My Bot");
    assert_eq!(bot["status"], "in_progress");
    assert!(is_timestamp(&bot["conversationStartedAt"]), "{bot}");
    assert_eq!(bot["version"], 5);
    assert_eq!(bot["latestBotVersion"], true);

    // POST /contacts/:uuid/bot
    let reply = example(
        &app,
        lang,
        Method::POST,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/bot",
        Some(bot_body(lang)),
    )
    .await;
    reply.assert_status(200);
    let bot = only_key(&reply, "bot");
    assert_eq!(bot["uuid"], BOT);
    assert_eq!(bot["name"], "My Bot");
    assert_eq!(bot["status"], "started");
    assert_eq!(bot["version"], 5);
    assert_eq!(bot["latestBotVersion"], true);
    assert!(bot.get("conversationStartedAt").is_some(), "{bot}");

    // GET /contacts/:uuid/messages: Mario Rossi's only event is the
    // funnel change above (when it went through).
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/contacts/efd7d996470e463b89f079be6cf578ed/messages",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let object = reply.body.as_object().expect("object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["messages", "meta"],
        "{}",
        reply.text
    );
    assert_eq!(reply.body["meta"], json!({"page": 1, "pages": 1}));
    let messages = reply.body["messages"].as_array().expect("messages");
    // The funnel change (the PUT set the same funnel again: no event).
    assert_eq!(messages.len(), 1, "{}", reply.text);
    for message in messages {
        assert!(is_hex32(&message["uuid"]), "{message}");
        assert!(is_timestamp(&message["createdAt"]), "{message}");
        assert!(
            message["text"].as_str().is_some_and(|t| !t.is_empty()),
            "{message}"
        );
        assert_eq!(message["status"], "note");
        assert_eq!(message["channel"], "whatsapp");
        assert!(message["from"].is_string() && message["to"].is_string());
    }

    // DELETE /contacts/:uuid
    let reply = example(
        &app,
        lang,
        Method::DELETE,
        "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    assert_eq!(reply.body, json!({"status": "contact was destroyed"}));
    app.get(&format!("/contacts/{JOHN}"))
        .await
        .assert_error(404, "not_found");

    // GET /teams
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/teams",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    assert_eq!(
        reply.body,
        json!({
            "teams": [
                general_team(),
                {
                    "uuid": SUPPORT,
                    "name": "Support",
                    "createdAt": "2020-11-13T21:10:33Z",
                    "default": false,
                    "members": 1
                }
            ],
            "meta": {"page": 1, "pages": 1}
        })
    );

    // GET /teams/:uuid
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/teams/ad42a09715814e6483b1c5debd6a2dbc",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    assert_eq!(reply.body, json!({"team": general_team()}));

    // PATCH /teams/:uuid: `{"name": New team name"}` is not JSON (and the
    // uuid is a contact's), so SPEC §1's 400 it is. axios sends the
    // broken text as a JSON string, which is valid JSON but no object.
    if can_patch {
        let reply = example(
            &app,
            lang,
            Method::PATCH,
            "https://api.callbell.eu/v1/teams/414a6d692bd645ed803f2e7ce360d4c8",
            Some(team_body(lang)),
        )
        .await;
        // Its body is invalid JSON in every language (axios wraps it in a
        // string, whose content is still invalid).
        reply.assert_error(400, "invalid_json");
    }

    // GET /channels
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/channels?type=whatsapp&active=true&page=1",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let object = reply.body.as_object().expect("object");
    assert_eq!(
        object.keys().collect::<Vec<_>>(),
        vec!["channels", "meta"],
        "{}",
        reply.text
    );
    assert_eq!(reply.body["meta"], json!({"page": 1, "pages": 1}));
    let channels = reply.body["channels"].as_array().expect("channels");
    assert_eq!(channels.len(), 1, "{}", reply.text);
    assert_eq!(channels[0]["uuid"], CHANNEL);
    assert_eq!(channels[0]["title"], "phone_number_1");
    assert_eq!(channels[0]["type"], "whatsapp");
    assert_eq!(channels[0]["main"], true);
    assert_eq!(channels[0]["discardedAt"], false);

    // GET /channels/:uuid
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/channels/7c996996fea947f4a1d5a11e7fac84db",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let channel = only_key(&reply, "channel");
    assert_eq!(channel["uuid"], CHANNEL);
    assert_eq!(channel["title"], "phone_number_1");
    assert_eq!(channel["type"], "whatsapp");
    assert_eq!(channel["main"], true);

    // PATCH /channels/:uuid
    if can_patch {
        let reply = example(
            &app,
            lang,
            Method::PATCH,
            "https://api.callbell.eu/v1/channels/7c996996fea947f4a1d5a11e7fac84db",
            Some(channel_body(lang)),
        )
        .await;
        reply.assert_status(200);
        let channel = only_key(&reply, "channel");
        assert_eq!(channel["uuid"], CHANNEL);
        assert_eq!(channel["title"], "New title");
        assert_eq!(channel["type"], "whatsapp");
        assert_eq!(channel["main"], true);
    }

    // GET /funnels
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/funnels",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    let funnels = only_key(&reply, "funnels").as_array().expect("funnels");
    let names: Vec<(&Value, &Value)> = funnels.iter().map(|f| (&f["uuid"], &f["name"])).collect();
    assert_eq!(
        names,
        vec![
            (&json!(AWARENESS), &json!("Awareness")),
            (
                &json!("1cd7845e-6b93-453d-b015-9dce35d16f39"),
                &json!("Interest")
            ),
            (
                &json!("1e6c0c57-c81d-49d2-81d2-fcec053a1ab6"),
                &json!("Desire")
            ),
            (
                &json!("8c51dfc8-667a-4f7f-9c83-ae065524483a"),
                &json!("Action")
            ),
        ]
    );
    for funnel in funnels {
        assert!(funnel["emoji"].is_string(), "{funnel}");
        assert!(funnel["position"].is_i64(), "{funnel}");
        assert!(is_timestamp(&funnel["createdAt"]), "{funnel}");
    }

    // GET /auth/me: the key's public prefix, never the secret.
    let reply = example(
        &app,
        lang,
        Method::GET,
        "https://api.callbell.eu/v1/auth/me",
        lang.no_body(),
    )
    .await;
    reply.assert_status(200);
    assert_eq!(
        reply.body,
        json!({
            "status": "ok",
            "user_email": "john.doe@email.com",
            "user_name": "John Doe",
            "api_key": "test_gshuPaZ"
        })
    );
}

async fn curl_examples(backend: Backend) {
    run_examples(backend, Curl).await;
}

async fn node_examples(backend: Backend) {
    run_examples(backend, Node).await;
}

async fn ruby_examples(backend: Backend) {
    run_examples(backend, Ruby).await;
}

async fn go_examples(backend: Backend) {
    run_examples(backend, Go).await;
}

async fn php_examples(backend: Backend) {
    run_examples(backend, Php).await;
}

async fn python_examples(backend: Backend) {
    run_examples(backend, Python).await;
}

async fn csharp_examples(backend: Backend) {
    run_examples(backend, CSharp).await;
}

async fn java_examples(backend: Backend) {
    run_examples(backend, Java).await;
}

async fn rust_examples(backend: Backend) {
    run_examples(backend, Rust).await;
}

/// The docs' create example run a second time (another language's tab
/// against the same server) meets the first contact: 409 naming it.
async fn the_create_example_twice_is_a_conflict(backend: Backend) {
    let app = TestApp::spawn_demo(backend).await;
    let first = example(
        &app,
        Curl,
        Method::POST,
        "https://api.callbell.eu/v1/contacts",
        Some(create_body(Curl)),
    )
    .await;
    let uuid = contact_in_array(&first)["uuid"].clone();
    let again = example(
        &app,
        Python,
        Method::POST,
        "https://api.callbell.eu/v1/contacts",
        Some(create_body(Python)),
    )
    .await;
    again.assert_error(409, "contact_exists");
    assert!(
        again.text.contains(uuid.as_str().unwrap_or("?")),
        "the existing contact's uuid is in the details: {}",
        again.text
    );
}

/// One cURL example as the docs print it, and what its output must be.
struct CurlExample {
    script: String,
    check: Box<dyn Fn(&Value)>,
}

fn curl(script: &str, check: impl Fn(&Value) + 'static) -> CurlExample {
    CurlExample {
        script: script.to_owned(),
        check: Box::new(check),
    }
}

/// The cURL examples, verbatim from the docs (the current versions, plus
/// the older PATCH and note ones), in the same order as `run_examples`.
fn curl_scripts() -> Vec<CurlExample> {
    let contact_array = |v: &Value| {
        let array = v["contact"].as_array().expect("contact array");
        assert_eq!(array.len(), 1, "{v}");
    };
    vec![
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json" \
    -d '{
        "source": "whatsapp",
        "identifier": "123456789",
        "name": "John Doe"
    }'"#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["phoneNumber"], "123456789");
                assert_eq!(v["contact"][0]["name"], "John Doe");
            },
        ),
        // Seed 001 (as rendered, indentation lost).
        curl(
            r#"curl -X PATCH "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8" \
-H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
-H "Content-Type: application/json" \
-d '{
"name": "Joe Doe NEW",
"custom_fields": {
"orderNumber": 123,
"zipCode": "98765430"
}
}'"#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["name"], "Joe Doe NEW");
                assert_eq!(v["contact"][0]["customFields"]["orderNumber"], "123");
                assert_eq!(v["contact"][0]["customFields"]["zipCode"], "98765430");
            },
        ),
        // The older name-only version, two leading spaces and all.
        curl(
            r#"  curl -X PATCH "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8" \
      -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
      -H "Content-Type: application/json" \
      -d '{"name": "Joe Doe NEW"}'"#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["name"], "Joe Doe NEW");
                assert_eq!(v["contact"][0]["customFields"]["orderNumber"], "123");
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["contacts"].as_array().map(Vec::len), Some(3), "{v}");
                assert_eq!(v["meta"], json!({"page": 1, "pages": 1, "next": null}));
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["uuid"], JOHN);
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts/phone/5790372023" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| assert_eq!(v["contact"]["uuid"], JOHN, "{v}"),
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts/bsuid/bsuid_abc123" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["contact"]["uuid"], JOHN, "{v}");
                assert_eq!(v["contact"]["bsuid"], "bsuid_abc123");
            },
        ),
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/close" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            |v| assert!(is_timestamp(&v["contact"]["closedAt"]), "{v}"),
        ),
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/open" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["closedAt"], Value::Null);
            },
        ),
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/note" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json" \
    -d '{ "text": "Hey @john.doe, look here!" }'"#,
            |v| assert_eq!(v, &json!({"success": true})),
        ),
        // The stored version with a trailing comma.
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/conversation/note" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json" \
    -d '{
        "text": "Hey @john.doe, look here!",
    }'"#,
            |v| assert_eq!(v, &json!({"success": true})),
        ),
        // `\ \` hands curl a second URL, " ", which it rejects after the
        // first transfer (exit status 3): the request itself goes through.
        curl(
            r#"curl -X POST "https://api.callbell.eu/v1/contacts/efd7d996470e463b89f079be6cf578ed/messages/update_funnel" \ \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json" \
    -d '{
        "funnel_id": "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6",
    }'"#,
            move |v| {
                contact_array(v);
                assert_eq!(v["contact"][0]["funnelId"], AWARENESS);
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/bot" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["bot"]["uuid"], BOT, "{v}");
                assert_eq!(v["bot"]["status"], "in_progress");
            },
        ),
        curl(
            r#"  curl -X POST "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8/bot" \
      -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
      -H "Content-Type: application/json" \
      -d '{
        "status": "bot_start"
      }'"#,
            |v| {
                assert_eq!(v["bot"]["uuid"], BOT, "{v}");
                assert_eq!(v["bot"]["status"], "started");
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/contacts/efd7d996470e463b89f079be6cf578ed/messages" \
    -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
    -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["messages"].as_array().map(Vec::len), Some(1), "{v}");
                assert_eq!(v["meta"], json!({"page": 1, "pages": 1}));
            },
        ),
        curl(
            r#"curl -X DELETE "https://api.callbell.eu/v1/contacts/414a6d692bd645ed803f2e7ce360d4c8" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| assert_eq!(v, &json!({"status": "contact was destroyed"})),
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/teams" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["teams"].as_array().map(Vec::len), Some(2), "{v}");
                assert_eq!(v["meta"], json!({"page": 1, "pages": 1}));
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/teams/ad42a09715814e6483b1c5debd6a2dbc" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| assert_eq!(v, &json!({"team": general_team()})),
        ),
        curl(
            r#"curl -X PATCH "https://api.callbell.eu/v1/teams/414a6d692bd645ed803f2e7ce360d4c8" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json" \
  -d '{"name": New team name"}'"#,
            |v| {
                assert_eq!(v["error"]["status"], 400, "{v}");
                assert_eq!(v["error"]["code"], "invalid_json");
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/channels?type=whatsapp&active=true&page=1" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["channels"][0]["uuid"], CHANNEL, "{v}");
                assert_eq!(v["meta"], json!({"page": 1, "pages": 1}));
            },
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/channels/7c996996fea947f4a1d5a11e7fac84db" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| assert_eq!(v["channel"]["title"], "phone_number_1", "{v}"),
        ),
        curl(
            r#"curl -X PATCH "https://api.callbell.eu/v1/channels/7c996996fea947f4a1d5a11e7fac84db" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json" \
  -d '{"title": "New title"}'"#,
            |v| assert_eq!(v["channel"]["title"], "New title", "{v}"),
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/funnels" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| assert_eq!(v["funnels"].as_array().map(Vec::len), Some(4), "{v}"),
        ),
        curl(
            r#"curl -X GET "https://api.callbell.eu/v1/auth/me" \
  -H "Authorization: Bearer test_gshuPaZoeEG6ovbc8M79w0QyM" \
  -H "Content-Type: application/json""#,
            |v| {
                assert_eq!(v["status"], "ok", "{v}");
                assert_eq!(v["user_email"], "john.doe@email.com");
            },
        ),
    ]
}

/// The cURL examples run by `sh` and the real curl, with only the host
/// replaced. Skipped (with a note) where curl is not installed.
async fn curl_examples_run_by_curl(backend: Backend) {
    let installed = tokio::process::Command::new("sh")
        .args(["-c", "command -v curl"])
        .output()
        .await
        .is_ok_and(|o| o.status.success());
    if !installed {
        eprintln!("curl is not installed; the cURL examples were not run by curl");
        return;
    }
    let app = TestApp::spawn_demo(backend).await;
    let host = app.base.trim_end_matches("/v1").to_owned();
    for (index, example) in curl_scripts().into_iter().enumerate() {
        // Before the bsuid lookup, give John Doe the example's bsuid.
        if example.script.contains("/contacts/bsuid/") {
            app.patch(
                &format!("/contacts/{JOHN}"),
                json!({"bsuid": "bsuid_abc123"}),
            )
            .await
            .assert_status(200);
        }
        let script = example.script.replace("https://api.callbell.eu", &host);
        assert_ne!(script, example.script);
        let output = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(&script)
            .output()
            .await
            .expect("sh runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        let body: Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
            panic!("example {index}: not JSON ({e}): {stdout}\nstderr: {stderr}\n{script}")
        });
        if !script.contains("\\ \\") {
            assert!(
                output.status.success(),
                "example {index} failed: {stderr}\n{script}"
            );
        }
        (example.check)(&body);
    }
}

on_both_backends!(
    curl_examples,
    node_examples,
    ruby_examples,
    go_examples,
    php_examples,
    python_examples,
    csharp_examples,
    java_examples,
    rust_examples,
    the_create_example_twice_is_a_conflict,
    curl_examples_run_by_curl,
);
