//! `bellbook pull`: an account copied from a running server (the demo
//! account and a few hundred contacts) into another database through the
//! API only, by the real binary; then compared field by field through the
//! API of both. Run again, it doubles nothing and brings changes over;
//! behind a proxy that throttles, fails and restarts, it still completes;
//! against a source that keeps failing it stops with a clear error and
//! finishes on the next run.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Notify;

use crate::binary::{BIN, ENVIRONMENT};
use crate::helpers::{Backend, Caller, TestApp, TestDatabase};
use crate::on_both_backends;

/// A whole pull, notes too, paced no slower than a test needs.
const WITH_MESSAGES: &[&str] = &["--with-messages", "--rps", "5000"];

const SUPPORT_TEAM: &str = "47aad5f9b4ca423c9d630f06ab93fe1f";
const DEMO_CHANNEL: &str = "7c996996fea947f4a1d5a11e7fac84db";
const FUNNELS: [&str; 2] = [
    "ff0f96b9-b003-4d0c-b14f-27f3f6868dd6",
    "8c51dfc8-667a-4f7f-9c83-ae065524483a",
];

/// What one `bellbook pull` run did.
struct Run {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn assert_success(&self) -> &Self {
        assert_eq!(self.code, Some(0), "pull failed:\n{}", self.stderr);
        self
    }

    #[track_caller]
    fn assert_tally(&self, kind: &str, created: u64, updated: u64, unchanged: u64) -> &Self {
        let line = format!("{kind}: {created} created, {updated} updated, {unchanged} unchanged");
        assert!(
            self.stderr.lines().any(|l| l == line),
            "expected {line:?} in:\n{}",
            self.stderr
        );
        self
    }

    /// `(created, updated, unchanged)` of a kind's summary line.
    fn tally(&self, kind: &str) -> (u64, u64, u64) {
        let prefix = format!("{kind}: ");
        let line = self
            .stderr
            .lines()
            .find_map(|l| l.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {kind} line in:\n{}", self.stderr));
        let numbers: Vec<u64> = line
            .split(", ")
            .map(|part| {
                part.split(' ')
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("a count")
            })
            .collect();
        (numbers[0], numbers[1], numbers[2])
    }

    /// The key a pull into an empty database printed.
    fn new_key(&self) -> String {
        let lines: Vec<&str> = self.stdout.lines().filter(|l| !l.is_empty()).collect();
        assert_eq!(lines.len(), 1, "one key on stdout: {:?}", self.stdout);
        lines[0].trim().to_owned()
    }
}

/// Runs `bellbook pull --from FROM --token TOKEN --database-url URL EXTRA…`.
/// Pulls into a new, empty database: the database (dropped with it), its
/// URL and the run.
async fn pull_into_new_database(
    backend: Backend,
    from: &str,
    token: &str,
    extra: &[&str],
) -> (TestDatabase, String, Run) {
    let (database, target_url) = TestDatabase::create(backend).await;
    let run = pull(from, token, &target_url, extra).await;
    (database, target_url, run)
}

async fn pull(from: &str, token: &str, database_url: &str, extra: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(BIN);
    command
        .args(["pull", "--from", from, "--token", token])
        .args(["--database-url", database_url])
        .args(extra)
        .stdin(std::process::Stdio::null());
    for name in ENVIRONMENT {
        command.env_remove(name);
    }
    command.env_remove("BELLBOOK_PULL_TOKEN");
    let output = command.output().await.expect("bellbook runs");
    let run = Run {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(
        !run.stdout.contains(token) && !run.stderr.contains(token),
        "the token was printed:\n{}\n{}",
        run.stdout,
        run.stderr
    );
    run
}

/// The demo account, without a rate limit, plus a Telegram channel, a team
/// "Sales", a dropdown "Tier", a tag "vip", and `count` contacts.
async fn source(backend: Backend, count: usize) -> TestApp {
    let app = TestApp::spawn_with(backend, |s| {
        s.demo = true;
        s.rate_limit_rps = 0;
    })
    .await;
    app.post(
        "/channels",
        json!({"title": "Telegram", "type": "telegram"}),
    )
    .await
    .assert_status(200);
    app.post("/teams", json!({"name": "Sales"}))
        .await
        .assert_status(200);
    app.post(
        "/custom_fields",
        json!({"name": "Tier", "type": "dropdown", "options": ["Gold", "Silver", "Bronze"]}),
    )
    .await
    .assert_status(200);
    app.post("/tags", json!({"name": "vip"}))
        .await
        .assert_status(200);
    add_contacts(&app, 0..count, &[]).await;
    app
}

async fn uuid_of(app: &TestApp, list: &str, field: &str, name: &str) -> String {
    let reply = app.get(&format!("/{list}")).await;
    reply.assert_status(200);
    reply.body[list]
        .as_array()
        .expect("a list")
        .iter()
        .find(|item| item[field] == name)
        .and_then(|item| item["uuid"].as_str())
        .unwrap_or_else(|| panic!("no {list} named {name}"))
        .to_owned()
}

/// Contacts numbered `range`, varied by number: WhatsApp and Telegram,
/// tags, every type of custom field, assignees, teams, notes, closed
/// conversations, funnels, bsuids and conversation notes.
async fn add_contacts(app: &TestApp, range: std::ops::Range<usize>, extra_tags: &[&str]) {
    let telegram = uuid_of(app, "channels", "title", "Telegram").await;
    let sales = uuid_of(app, "teams", "name", "Sales").await;
    let tags = ["sales", "lead", "hot", "vip", "Call back"];
    let numbers: Vec<usize> = range.collect();
    for chunk in numbers.chunks(100) {
        let bodies: Vec<Value> = chunk
            .iter()
            .map(|&i| {
                let mut body = if i % 7 == 0 {
                    json!({"identifier": format!("@user{i}"), "source": "telegram",
                           "channel_uuid": telegram})
                } else {
                    json!({"identifier": format!("+39 333 {i:07}"), "source": "whatsapp"})
                };
                body["name"] = format!("Contact {i}").into();
                let mut chosen: Vec<&str> = tags
                    .iter()
                    .enumerate()
                    .filter(|(bit, _)| i >> bit & 1 == 1)
                    .map(|(_, t)| *t)
                    .collect();
                chosen.extend(extra_tags);
                body["tags"] = json!(chosen);
                let mut fields = json!({"zipCode": format!("{i:05}")});
                fields["Status"] = ["Active", "Inactive"][i % 2].into();
                if i % 3 == 0 {
                    fields["Features"] = json!(["Dark Mode", "Analytics"]);
                }
                if i % 4 == 0 {
                    fields["orderNumber"] = format!("{i}.5").into();
                }
                if i % 5 == 0 {
                    fields["Birth Date"] = format!("1990-01-{:02}", i % 28 + 1).into();
                }
                if i % 6 == 0 {
                    fields["Work Email"] = format!("c{i}@work.example").into();
                }
                if i % 8 == 0 {
                    fields["Tier"] = "Silver".into();
                }
                body["custom_fields"] = fields;
                match i % 3 {
                    0 => body["assigned_user"] = "john.doe@email.com".into(),
                    1 => body["assigned_user"] = "jane.doe@email.com".into(),
                    _ => {}
                }
                match i % 4 {
                    1 => body["team_uuid"] = SUPPORT_TEAM.into(),
                    2 => body["team_uuid"] = sales.clone().into(),
                    _ => {}
                }
                if i % 5 == 0 {
                    body["note"] = format!("note of {i}").into();
                }
                body
            })
            .collect();
        let reply = app
            .post("/contacts/batch", json!({"contacts": bodies}))
            .await;
        reply.assert_status(200);
        for (result, &i) in reply.body["results"]
            .as_array()
            .expect("results")
            .iter()
            .zip(chunk)
        {
            assert_eq!(result["status"], 201, "{result}");
            let uuid = result["contact"]["uuid"].as_str().expect("uuid");
            if i % 6 == 0 {
                app.post(&format!("/contacts/{uuid}/conversation/close"), json!({}))
                    .await
                    .assert_status(200);
            }
            if i % 5 == 1 {
                let funnel = FUNNELS[i % 2];
                app.put(
                    &format!("/contacts/{uuid}/conversation/update_funnel"),
                    json!({"funnel_id": funnel}),
                )
                .await
                .assert_status(200);
            }
            if i % 10 == 3 {
                app.patch(
                    &format!("/contacts/{uuid}"),
                    json!({"bsuid": format!("bsuid-{i}")}),
                )
                .await
                .assert_status(200);
            }
            if i % 4 == 0 {
                for text in [format!("first note of {i}"), format!("second note of {i}")]
                    .iter()
                    .take(1 + usize::from(i % 8 == 0))
                {
                    app.post(
                        &format!("/contacts/{uuid}/conversation/note"),
                        json!({"text": text}),
                    )
                    .await
                    .assert_status(200);
                }
            }
        }
    }
}

/// Every contact, with its field types, by uuid.
async fn contacts(api: &Caller) -> BTreeMap<String, Value> {
    let mut all = BTreeMap::new();
    let mut path = "/contacts?include_field_types=true".to_owned();
    loop {
        let reply = api.get(&path).await;
        reply.assert_status(200);
        for contact in reply.body["contacts"].as_array().expect("contacts") {
            let uuid = contact["uuid"].as_str().expect("uuid").to_owned();
            assert!(all.insert(uuid, contact.clone()).is_none(), "listed twice");
        }
        match reply.body["meta"]["next"].as_str() {
            Some(next) => path = format!("/contacts?include_field_types=true&after={next}"),
            None => return all,
        }
    }
}

/// How a target's teams and channels answer to the source's.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Same {
    /// The same uuids (a pull into a new account).
    Uuids,
    /// Teams by name, channels by type and title (an existing account).
    Names,
}

const COMPARED: [&str; 12] = [
    "name",
    "phoneNumber",
    "source",
    "createdAt",
    "tags",
    "customFields",
    "assignedUser",
    "note",
    "funnelId",
    "closedAt",
    "bsuid",
    "avatarUrl",
];

/// Asserts that the target has each source contact, as the source has it.
/// Answers the target contact of each source uuid.
async fn assert_same_contacts(
    source: &Caller,
    target: &Caller,
    same: Same,
) -> HashMap<String, Value> {
    let (from, to) = (contacts(source).await, contacts(target).await);
    assert_eq!(from.len(), to.len(), "as many contacts in the target");
    let mut matched = HashMap::new();
    for (uuid, wanted) in &from {
        let found = to.get(uuid).or_else(|| {
            (same == Same::Names)
                .then(|| {
                    to.values().find(|c| {
                        digits(&c["phoneNumber"]) == digits(&wanted["phoneNumber"])
                            && c["channel"]["title"] == wanted["channel"]["title"]
                    })
                })
                .flatten()
        });
        let found = found.unwrap_or_else(|| panic!("contact {uuid} is not in the target"));
        for key in COMPARED {
            // A contact the target had already keeps its own spelling
            // and creation time.
            let own = matches!(key, "phoneNumber" | "createdAt");
            if !own || found["uuid"] == wanted["uuid"] {
                assert_eq!(found[key], wanted[key], "{key} of contact {uuid}");
            }
        }
        let (team, channel) = match same {
            Same::Uuids => ("/team/uuid", "/channel/uuid"),
            Same::Names => ("/team/name", "/channel/title"),
        };
        assert_eq!(found.pointer(team), wanted.pointer(team), "team of {uuid}");
        assert_eq!(
            found.pointer(channel),
            wanted.pointer(channel),
            "channel of {uuid}"
        );
        assert_eq!(found["channel"]["type"], wanted["channel"]["type"]);
        let metadata = wanted["customFieldsMetadata"].as_object().expect("types");
        // The same fields, perhaps in another order (the target's fields
        // are in the order the pull met them).
        let names = |fields: &serde_json::Map<String, Value>| {
            let mut names: Vec<String> = fields.keys().cloned().collect();
            names.sort();
            names
        };
        assert_eq!(
            found["customFieldsMetadata"].as_object().map(names),
            Some(names(metadata)),
            "typed fields of {uuid}"
        );
        for (name, field) in metadata {
            let copied = &found["customFieldsMetadata"][name];
            assert_eq!(copied["type"], field["type"], "type of {name} of {uuid}");
            assert_eq!(copied["value"], field["value"], "{name} of {uuid}");
            assert_eq!(copied["options"], field["options"], "options of {name}");
        }
        matched.insert(uuid.clone(), found.clone());
    }
    matched
}

fn digits(phone: &Value) -> String {
    phone
        .as_str()
        .expect("a phone number")
        .chars()
        .filter(char::is_ascii_digit)
        .collect()
}

/// Every source channel, team and funnel is in the target (with its uuid
/// when `same` says so).
async fn assert_same_settings(source: &Caller, target: &Caller, same: Same) {
    for (list, name) in [
        ("channels", "title"),
        ("teams", "name"),
        ("funnels", "name"),
    ] {
        let (from, to) = (
            source.get(&format!("/{list}")).await,
            target.get(&format!("/{list}")).await,
        );
        for wanted in from.body[list].as_array().expect("a list") {
            let found = to.body[list]
                .as_array()
                .expect("a list")
                .iter()
                .find(|item| match same {
                    Same::Uuids => item["uuid"] == wanted["uuid"],
                    Same::Names => item[name] == wanted[name],
                })
                .unwrap_or_else(|| panic!("{list}: {wanted} is not in the target"));
            assert_eq!(found[name], wanted[name], "{list}: {wanted}");
            if list == "channels" {
                assert_eq!(found["type"], wanted["type"]);
                assert_eq!(found["main"], wanted["main"], "main of {wanted}");
            }
            if list == "funnels" {
                assert_eq!(found["emoji"], wanted["emoji"]);
            }
        }
    }
}

/// Every message the source shows for `uuid` is in the target's
/// conversation of `target_uuid`, with its time and text.
async fn assert_notes_copied(source: &Caller, uuid: &str, target: &Caller, target_uuid: &str) {
    let (from, mut to) = (
        messages(source, uuid).await,
        messages(target, target_uuid).await,
    );
    for message in from {
        let at = to
            .iter()
            .position(|m| *m == message)
            .unwrap_or_else(|| panic!("{message:?} of {uuid} is not in the target"));
        to.remove(at);
    }
}

/// `(createdAt, text)` of each of a contact's messages.
async fn messages(api: &Caller, uuid: &str) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for page in 1.. {
        let reply = api
            .get(&format!("/contacts/{uuid}/messages?page={page}"))
            .await;
        reply.assert_status(200);
        let listed = reply.body["messages"].as_array().expect("messages");
        all.extend(listed.iter().map(|m| {
            (
                m["createdAt"].as_str().expect("time").to_owned(),
                m["text"].as_str().expect("text").to_owned(),
            )
        }));
        if page >= reply.body["meta"]["pages"].as_u64().expect("pages") {
            break;
        }
    }
    all
}

async fn pull_into_a_new_account(backend: Backend) {
    let source = source(backend, 240).await;
    let (_database, target_url, first) =
        pull_into_new_database(backend, &source.base, &source.key, WITH_MESSAGES).await;
    first.assert_success();
    let total = 242; // the demo's two and ours
    first
        .assert_tally("contacts", total, 0, 0)
        .assert_tally("teams", 3, 0, 0)
        .assert_tally("channels", 2, 0, 0)
        .assert_tally("funnels", 4, 0, 0);
    let target = TestApp::spawn_on(&target_url, &first.new_key(), |s| s.rate_limit_rps = 0).await;
    let (from, to) = (source.as_key(&source.key), target.as_key(&target.key));
    assert_same_settings(&from, &to, Same::Uuids).await;
    let copied = assert_same_contacts(&from, &to, Same::Uuids).await;
    for (uuid, contact) in copied.iter().take(40) {
        let target_uuid = contact["uuid"].as_str().expect("uuid");
        assert_notes_copied(&from, uuid, &to, target_uuid).await;
    }
    let notes = first.tally("notes");
    assert!(notes.0 > 60, "notes were copied: {notes:?}");

    // Again: nothing new, nothing doubled.
    let again = pull(&source.base, &source.key, &target_url, WITH_MESSAGES).await;
    again.assert_success();
    again
        .assert_tally("contacts", 0, 0, total)
        .assert_tally("notes", 0, 0, notes.0 + notes.2)
        .assert_tally("teams", 0, 0, 3)
        .assert_tally("channels", 0, 0, 2);
    assert!(
        again.stdout.trim().is_empty(),
        "no new account, no key: {}",
        again.stdout
    );
    assert_same_contacts(&from, &to, Same::Uuids).await;

    // Changes on the source, and new contacts with a new tag and a new
    // dropdown option.
    source
        .patch(
            "/custom_fields/Tier",
            json!({"options": ["Gold", "Silver", "Bronze", "Platinum"]}),
        )
        .await
        .assert_status(200);
    source
        .post("/tags", json!({"name": "fresh"}))
        .await
        .assert_status(200);
    let listed = contacts(&from).await;
    let mut picks = listed.values();
    let mut next = || {
        picks
            .next()
            .and_then(|c| c["uuid"].as_str())
            .expect("a contact")
            .to_owned()
    };
    let sales = uuid_of(&source, "teams", "name", "Sales").await;
    let changes = [
        json!({"tags": ["hot"], "custom_fields": {"Status": "Inactive", "zipCode": null},
               "unassign_user": true}),
        json!({"team_uuid": sales, "assigned_user": "jane.doe@email.com", "note": ""}),
        json!({"custom_fields": {"Tier": "Platinum", "Features": ["Notifications"]}}),
        json!({"note": "a new note", "bsuid": "changed-bsuid"}),
    ];
    for (k, change) in changes.into_iter().enumerate() {
        let uuid = next();
        let mut body = change;
        body["name"] = format!("Changed {k}").into();
        source
            .patch(&format!("/contacts/{uuid}"), body)
            .await
            .assert_status(200);
    }
    let (closed, opened, moved, noted) = (next(), next(), next(), next());
    source
        .post(&format!("/contacts/{closed}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    for uuid in [&opened, &closed] {
        // Reopened, and closed again later: a new closing time.
        source
            .post(&format!("/contacts/{uuid}/conversation/open"), json!({}))
            .await
            .assert_status(200);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    source
        .post(&format!("/contacts/{closed}/conversation/close"), json!({}))
        .await
        .assert_status(200);
    source
        .put(
            &format!("/contacts/{moved}/conversation/update_funnel"),
            json!({"funnel_id": null}),
        )
        .await
        .assert_status(200);
    source
        .post(
            &format!("/contacts/{noted}/conversation/note"),
            json!({"text": "written after the first pull"}),
        )
        .await
        .assert_status(200);
    add_contacts(&source, 1000..1015, &["fresh"]).await;
    let third = pull(&source.base, &source.key, &target_url, WITH_MESSAGES).await;
    third.assert_success();
    let (created, updated, _) = third.tally("contacts");
    assert_eq!(created, 15, "{}", third.stderr);
    // The four patched, the one closed anew, the one moved out of its
    // funnel; the one reopened unless it was open already.
    assert!((6..=7).contains(&updated), "{}", third.stderr);
    third.assert_tally("custom fields", 0, 1, 8);
    assert!(third.tally("notes").0 >= 1);
    let copied = assert_same_contacts(&from, &to, Same::Uuids).await;
    assert_notes_copied(&from, &noted, &to, &noted).await;
    let tier = to.get("/custom_fields/Tier").await;
    assert_eq!(
        tier.body["custom_field"]["options"],
        json!(["Gold", "Silver", "Bronze", "Platinum"])
    );
    assert_eq!(copied.len(), total as usize + 15);
    target.stop().await;
}

/// Into an account that exists: its default team and main channel are
/// matched by name and title, a contact it has under another uuid is
/// updated, not doubled.
async fn pull_into_an_existing_account(backend: Backend) {
    let source = source(backend, 30).await;
    let target = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let channel = target
        .post(
            "/channels",
            json!({"title": "phone_number_1", "type": "whatsapp", "main": true}),
        )
        .await;
    channel.assert_status(200);
    let own_channel = channel.body["channel"]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let own = target
        .create_contact(json!({"identifier": "393330000001", "source": "whatsapp",
                               "name": "Known already", "channel_uuid": own_channel}))
        .await;
    let run = pull(
        &source.base,
        &source.key,
        &target.database_url,
        &["--rps", "5000"],
    )
    .await;
    run.assert_success();
    run.assert_tally("contacts", 31, 1, 0);
    let (from, to) = (source.as_key(&source.key), target.as_key(&target.key));
    assert_same_settings(&from, &to, Same::Names).await;
    let copied = assert_same_contacts(&from, &to, Same::Names).await;
    let known = copied
        .values()
        .find(|c| c["phoneNumber"] == "393330000001")
        .expect("the known contact");
    assert_eq!(known["uuid"], own["uuid"], "updated under its own uuid");
    assert_eq!(known["name"], "Contact 1");
    assert_eq!(known["channel"]["uuid"], own_channel.as_str());
    // The team the target lacked keeps its uuid; General is the target's.
    let teams = to.get("/teams").await;
    assert!(
        teams.body["teams"]
            .as_array()
            .expect("teams")
            .iter()
            .any(|t| t["uuid"] == SUPPORT_TEAM)
    );
    assert!(
        !to.get("/channels").await.text.contains(DEMO_CHANNEL),
        "the demo channel was matched by title"
    );
    let again = pull(
        &source.base,
        &source.key,
        &target.database_url,
        &["--rps", "5000"],
    )
    .await;
    again.assert_success().assert_tally("contacts", 0, 0, 32);
    target.stop().await;
}

on_both_backends!(pull_into_a_new_account, pull_into_an_existing_account);

// ---------------------------------------------------------------------------
// A source that misbehaves: a proxy in front of the real one.

/// What the proxy does to requests.
#[derive(Debug, Clone, Copy)]
struct Faults {
    seed: u64,
    /// Of each 1000 requests, about this many get 429 `Retry-After: 1`…
    throttled: u64,
    /// …and this many 500.
    failed: u64,
    /// At this request the proxy goes away (connections cut, the port
    /// closed) for a moment and comes back.
    restart_at: Option<usize>,
}

const WELL_BEHAVED: Faults = Faults {
    seed: 1,
    throttled: 0,
    failed: 0,
    restart_at: None,
};

struct ProxyState {
    upstream: String,
    client: reqwest::Client,
    faults: Faults,
    random: Mutex<u64>,
    /// When each request came.
    arrivals: Mutex<Vec<Instant>>,
    throttled: AtomicUsize,
    failed: AtomicUsize,
    /// Every request after this many is answered 500.
    failing_after: AtomicUsize,
    restart: Notify,
    restarts: AtomicUsize,
}

struct Proxy {
    /// `http://127.0.0.1:PORT/v1`
    base: String,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Proxy {
    async fn start(source: &TestApp, faults: Faults) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let state = Arc::new(ProxyState {
            upstream: source.base.trim_end_matches("/v1").to_owned(),
            client: reqwest::Client::new(),
            faults,
            random: Mutex::new(faults.seed.max(1)),
            arrivals: Mutex::new(Vec::new()),
            throttled: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            failing_after: AtomicUsize::new(usize::MAX),
            restart: Notify::new(),
            restarts: AtomicUsize::new(0),
        });
        let task = tokio::spawn(accept(listener, address, state.clone()));
        Proxy {
            base: format!("http://{address}/v1"),
            state,
            task,
        }
    }

    fn requests(&self) -> Vec<Instant> {
        self.state.arrivals.lock().expect("arrivals").clone()
    }
}

async fn accept(mut listener: TcpListener, address: SocketAddr, state: Arc<ProxyState>) {
    let mut connections = tokio::task::JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => Some(accepted),
            () = state.restart.notified() => None,
        };
        match accepted {
            Some(Ok((stream, _))) => {
                let state = state.clone();
                connections.spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let state = state.clone();
                        async move { Ok::<_, Infallible>(state.answer(request).await) }
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
                });
            }
            Some(Err(_)) => {}
            None => {
                // A restart: every connection cut, the port closed a while.
                connections.abort_all();
                drop(listener);
                tokio::time::sleep(Duration::from_millis(1200)).await;
                listener = TcpListener::bind(address).await.expect("rebind");
            }
        }
    }
}

impl ProxyState {
    /// 0..1000, from a seeded xorshift: the same faults every run.
    fn roll(&self) -> u64 {
        let mut state = self.random.lock().expect("random");
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state % 1000
    }

    async fn answer(&self, request: hyper::Request<Incoming>) -> hyper::Response<Full<Bytes>> {
        let number = {
            let mut arrivals = self.arrivals.lock().expect("arrivals");
            arrivals.push(Instant::now());
            arrivals.len()
        };
        let status = |code: u16| {
            hyper::Response::builder()
                .status(code)
                .header("retry-after", "1")
                .body(Full::new(Bytes::from_static(b"{}")))
                .expect("response")
        };
        if self.faults.restart_at == Some(number) {
            self.restarts.fetch_add(1, Ordering::SeqCst);
            self.restart.notify_one();
            // Cut off with the rest.
            tokio::time::sleep(Duration::from_secs(10)).await;
        }
        if number > self.failing_after.load(Ordering::SeqCst) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return status(500);
        }
        let roll = self.roll();
        let faulty = self.faults.throttled + self.faults.failed > 0;
        if faulty && (number == 3 || roll < self.faults.throttled) {
            self.throttled.fetch_add(1, Ordering::SeqCst);
            return status(429);
        }
        if faulty && (number == 5 || roll < self.faults.throttled + self.faults.failed) {
            self.failed.fetch_add(1, Ordering::SeqCst);
            return status(500);
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_owned();
        let mut forwarded = self.client.get(format!("{}{path}", self.upstream));
        if let Some(authorization) = request.headers().get("authorization") {
            forwarded = forwarded.header("authorization", authorization.clone());
        }
        match forwarded.send().await {
            Ok(response) => {
                let code = response.status().as_u16();
                let body = response.bytes().await.unwrap_or_default();
                hyper::Response::builder()
                    .status(code)
                    .header("content-type", "application/json")
                    .body(Full::new(body))
                    .expect("response")
            }
            Err(_) => status(502),
        }
    }
}

async fn pull_survives_a_flaky_source(backend: Backend) {
    let source = source(backend, 50).await;
    let proxy = Proxy::start(
        &source,
        Faults {
            seed: 7,
            throttled: 20,
            failed: 120,
            restart_at: Some(30),
        },
    )
    .await;
    let (_database, target_url, run) =
        pull_into_new_database(backend, &proxy.base, &source.key, WITH_MESSAGES).await;
    run.assert_success().assert_tally("contacts", 52, 0, 0);
    assert!(proxy.state.throttled.load(Ordering::SeqCst) >= 1);
    assert!(proxy.state.failed.load(Ordering::SeqCst) >= 3);
    assert_eq!(proxy.state.restarts.load(Ordering::SeqCst), 1);
    let target = TestApp::spawn_on(&target_url, &run.new_key(), |s| s.rate_limit_rps = 0).await;
    let (from, to) = (source.as_key(&source.key), target.as_key(&target.key));
    assert_same_settings(&from, &to, Same::Uuids).await;
    assert_same_contacts(&from, &to, Same::Uuids).await;
    target.stop().await;
}

async fn pull_stops_on_a_failing_source_and_resumes(backend: Backend) {
    let source = source(backend, 60).await;
    let proxy = Proxy::start(&source, WELL_BEHAVED).await;
    // Settings and the first two pages of contacts, then nothing but 500s.
    proxy.state.failing_after.store(8, Ordering::SeqCst);
    let (_database, target_url, failed) = pull_into_new_database(
        backend,
        &proxy.base,
        &source.key,
        &["--rps", "5000", "--retries", "2"],
    )
    .await;
    assert_eq!(failed.code, Some(1), "{}", failed.stderr);
    let expected = format!("GET {}/contacts", proxy.base);
    assert!(
        failed.stderr.contains(&expected) && failed.stderr.contains("failed 3 times"),
        "the error names the URL and the attempts:\n{}",
        failed.stderr
    );
    let key = failed.new_key();
    proxy
        .state
        .failing_after
        .store(usize::MAX, Ordering::SeqCst);
    let resumed = pull(&proxy.base, &source.key, &target_url, &["--rps", "5000"]).await;
    resumed.assert_success();
    let (created, updated, unchanged) = resumed.tally("contacts");
    assert_eq!(
        (created + unchanged, updated),
        (62, 0),
        "{}",
        resumed.stderr
    );
    assert!(unchanged >= 20, "the first run's contacts were kept");
    let target = TestApp::spawn_on(&target_url, &key, |s| s.rate_limit_rps = 0).await;
    let (from, to) = (source.as_key(&source.key), target.as_key(&target.key));
    assert_same_contacts(&from, &to, Same::Uuids).await;
    target.stop().await;
}

/// `--rps 20`: no second sees more than 20 requests (21 at the edges of
/// a window), however fast the source answers.
async fn pull_paces_its_requests(backend: Backend) {
    let source = source(backend, 25).await;
    let proxy = Proxy::start(&source, WELL_BEHAVED).await;
    let (_database, target_url) = TestDatabase::create(backend).await;
    pull(
        &proxy.base,
        &source.key,
        &target_url,
        &["--with-messages", "--rps", "20"],
    )
    .await
    .assert_success();
    let requests = proxy.requests();
    assert!(requests.len() > 30, "{} requests", requests.len());
    let busiest = requests
        .iter()
        .map(|start| {
            requests
                .iter()
                .filter(|t| **t >= *start && t.duration_since(*start) < Duration::from_secs(1))
                .count()
        })
        .max()
        .unwrap_or(0);
    assert!(busiest <= 21, "{busiest} requests in one second");
}

mod sqlite_only {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pull_survives_a_flaky_source() {
        super::pull_survives_a_flaky_source(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pull_stops_on_a_failing_source_and_resumes() {
        super::pull_stops_on_a_failing_source_and_resumes(Backend::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn pull_paces_its_requests() {
        super::pull_paces_its_requests(Backend::Sqlite).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_token_is_a_clear_error() {
    let source = source(Backend::Sqlite, 0).await;
    let (_database, target_url) = TestDatabase::create(Backend::Sqlite).await;
    let run = pull(&source.base, "not-the-key", &target_url, &[]).await;
    assert_eq!(run.code, Some(1));
    assert!(
        run.stderr.contains("401") && run.stderr.contains("--token"),
        "{}",
        run.stderr
    );
}

/// A contact the target cannot take (here: a number where the target's
/// field of that name holds dates) is reported with the API's reason; the
/// rest is copied, and the exit status says some were refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_contacts_are_reported_and_the_rest_copied() {
    let source = source(Backend::Sqlite, 8).await;
    let target = TestApp::spawn_with(Backend::Sqlite, |s| s.rate_limit_rps = 0).await;
    target
        .post(
            "/custom_fields",
            json!({"name": "orderNumber", "type": "date"}),
        )
        .await
        .assert_status(200);
    let run = pull(
        &source.base,
        &source.key,
        &target.database_url,
        &["--rps", "5000"],
    )
    .await;
    assert_eq!(run.code, Some(3), "{}", run.stderr);
    // Contacts 0 and 4 have an orderNumber.
    let refused: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.starts_with("contact ") && l.contains("orderNumber"))
        .collect();
    assert_eq!(refused.len(), 2, "{}", run.stderr);
    assert!(run.stderr.contains("contacts rejected: 2"));
    run.assert_tally("contacts", 8, 0, 0);
    let copied = contacts(&target.as_key(&target.key)).await;
    assert_eq!(copied.len(), 8);
    target.stop().await;
}
