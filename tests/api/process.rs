//! The real `bellbook` binary as a child process, on a fresh database of
//! each backend: the first run's key, `--demo` twice, the admin commands
//! beside a running server, SIGTERM with a request in flight, the request
//! log, and `kill -9` in the middle of writes.
//!
//! Readiness is the `Listening on` line on the child's stdout; every child
//! is killed when its [`Server`] goes away, so a failing test leaves no
//! process behind.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{Server, account_rows, admin, admin_output, only_line, signal};
use crate::fixtures::client;
use crate::fixtures::demo::{JOHN, MARIO};
use crate::helpers::{Backend, Caller, DEMO_API_KEY, Reply, TestDatabase, try_send};
use crate::on_both_backends;

async fn get(client: &reqwest::Client, url: &str, key: &str) -> (u16, Value) {
    let response = client
        .get(url)
        .bearer_auth(key)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

async fn post(client: &reqwest::Client, url: &str, key: &str, body: &Value) -> (u16, Value) {
    let response = client
        .post(url)
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body read");
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

fn uuids(list: &Value) -> Vec<&str> {
    list["contacts"]
        .as_array()
        .map(|contacts| contacts.iter().filter_map(|c| c["uuid"].as_str()).collect())
        .unwrap_or_default()
}

async fn first_run_prints_a_working_key_once(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    let server = Server::start(&url, &[]);
    let key = server
        .first_run_key()
        .unwrap_or_else(|| panic!("no key printed: {:?}", server.printed));
    assert!(
        key.len() >= 22 && !key.contains(char::is_whitespace),
        "{key:?}"
    );
    let (status, me) = get(&client, &server.url("/auth/me"), &key).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["status"], "ok");
    assert!(!me.to_string().contains(&key), "the secret is never shown");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");

    let again = Server::start(&url, &[]);
    assert_eq!(again.first_run_key(), None, "{:?}", again.printed);
    assert!(
        !again.printed.iter().any(|l| l.contains(&key)),
        "{:?}",
        again.printed
    );
    let (status, me) = get(&client, &again.url("/auth/me"), &key).await;
    assert_eq!(status, 200, "the first key still works: {me}");
    let accounts = admin(&["accounts", "list"], &url);
    assert_eq!(account_rows(&accounts).len(), 1, "{accounts}");
}

async fn demo_twice_loads_nothing_new(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    let first = Server::start(&url, &["--demo"]);
    assert_eq!(first.first_run_key(), None, "{:?}", first.printed);
    let (status, list) = get(&client, &first.url("/contacts"), DEMO_API_KEY).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(uuids(&list), vec![MARIO, JOHN]);
    let (status, created) = post(
        &client,
        &first.url("/contacts"),
        DEMO_API_KEY,
        &json!({"identifier": "+44 20 7946 0000", "source": "whatsapp", "name": "Between Starts"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let own = created["contact"][0]["uuid"]
        .as_str()
        .expect("uuid")
        .to_owned();
    let (status, log) = first.terminate();
    assert!(status.success(), "{status}\n{log}");

    let second = Server::start(&url, &["--demo"]);
    assert_eq!(second.first_run_key(), None, "{:?}", second.printed);
    let (status, list) = get(&client, &second.url("/contacts"), DEMO_API_KEY).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(uuids(&list), vec![own.as_str(), MARIO, JOHN]);
    for (path, key, count) in [("/teams", "teams", 2), ("/funnels", "funnels", 4)] {
        let (status, body) = get(&client, &second.url(path), DEMO_API_KEY).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body[key].as_array().map(Vec::len), Some(count), "{body}");
    }
    let accounts = admin(&["accounts", "list"], &url);
    let rows = account_rows(&accounts);
    assert_eq!(rows.len(), 1, "{accounts}");
    assert!(rows[0].ends_with("demo"), "{accounts}");
}

async fn admin_commands_work_while_a_server_runs(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    let server = Server::start(&url, &[]);
    let first_key = server.first_run_key().expect("first-run key");
    let me = |key: String| {
        let url = server.url("/auth/me");
        let client = client.clone();
        async move { get(&client, &url, &key).await }
    };

    let acme_key = only_line(&admin(
        &[
            "accounts",
            "create",
            "acme",
            "--owner-email",
            "owner@acme.example",
        ],
        &url,
    ));
    let (status, body) = me(acme_key.clone()).await;
    assert_eq!(status, 200, "the new account's key works at once: {body}");
    assert_eq!(body["user_email"], "owner@acme.example");

    let ci_key = only_line(&admin(
        &["keys", "create", "--account", "acme", "--name", "ci"],
        &url,
    ));
    assert_ne!(ci_key, acme_key);
    let (status, body) = me(ci_key.clone()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user_email"], "owner@acme.example");

    let listing = admin(&["keys", "list", "--account", "acme"], &url);
    assert!(listing.contains("ci"), "{listing}");
    for key in [&acme_key, &ci_key] {
        let prefix = bellbook::auth::key_prefix(key);
        assert!(listing.contains(prefix), "prefix {prefix} in {listing}");
        assert!(!listing.contains(key.as_str()), "a secret in {listing}");
        assert!(
            !listing.contains(&key[prefix.len()..]),
            "a secret in {listing}"
        );
    }

    let ci_prefix = bellbook::auth::key_prefix(&ci_key).to_owned();
    admin(&["keys", "revoke", &ci_prefix, "--account", "acme"], &url);
    let (status, body) = me(ci_key).await;
    assert_eq!(status, 401, "a revoked key is refused at once: {body}");
    assert_eq!(me(acme_key).await.0, 200, "the other key still works");
    assert_eq!(me(first_key).await.0, 200, "another account is untouched");

    let accounts = admin(&["accounts", "list"], &url);
    let rows = account_rows(&accounts);
    assert_eq!(rows.len(), 2, "{accounts}");
    assert!(rows.iter().any(|r| r.ends_with("acme")), "{accounts}");
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
}

/// Reads an HTTP response head, up to the blank line.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let read = stream.read(&mut byte).expect("read the response");
        assert_eq!(read, 1, "connection closed in the head: {head:?}");
        head.push(byte[0]);
    }
    String::from_utf8(head).expect("an ASCII head")
}

/// Returns once the server no longer accepts connections: it has taken
/// the signal in and closed its listener.
fn wait_until_refused(port: u16) {
    while let Ok(probe) = TcpStream::connect(("127.0.0.1", port)) {
        drop(probe);
        std::thread::yield_now();
    }
}

async fn sigterm_finishes_the_request_in_flight_and_exits_zero(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let mut server = Server::start(&url, &[]);
    let key = server.first_run_key().expect("first-run key");
    let body = r#"{"identifier": "+1 555 0199", "source": "whatsapp", "name": "In Flight"}"#;
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    // Only a safety net against a hung server; nothing waits on it.
    stream
        .set_read_timeout(Some(Duration::from_secs(120)))
        .expect("timeout");
    write!(
        stream,
        "POST /v1/contacts HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nExpect: 100-continue\r\n\r\n",
        server.port,
        body.len()
    )
    .expect("send the head");
    // The server says 100 Continue when the handler starts reading the
    // body: from here on the request is in flight.
    let interim = read_head(&mut stream);
    assert!(interim.starts_with("HTTP/1.1 100"), "{interim}");

    signal(server.child.id(), "TERM");
    wait_until_refused(server.port);
    stream.write_all(body.as_bytes()).expect("send the body");
    let head = read_head(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}\n{}", server.log());
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .expect("a Content-Length");
    let mut content = vec![0u8; length];
    stream
        .read_exact(&mut content)
        .expect("the whole body arrives");
    let reply: Value = serde_json::from_slice(&content).expect("a complete JSON body");
    let contact = reply["contact"][0].clone();
    assert_eq!(contact["name"], "In Flight", "{reply}");

    let status = server.wait();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    drop(server);

    // What it acknowledged was kept.
    let again = Server::start(&url, &[]);
    let uuid = contact["uuid"].as_str().expect("uuid");
    let (status, found) = get(&client(), &again.url(&format!("/contacts/{uuid}")), &key).await;
    assert_eq!(status, 200, "{found}");
    assert_eq!(found["contact"][0]["name"], "In Flight");
    assert_eq!(found["contact"][0]["phoneNumber"], "+1 555 0199");
}

async fn the_request_log_has_a_line_per_request_and_no_secrets(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    let server = Server::start(&url, &[]);
    let key = server.first_run_key().expect("first-run key");
    let wrong_key = "bb_NotAKeyButShapedLikeOne0123456789ABCDEFGH";
    let site = server.base.trim_end_matches("/v1").to_owned();

    assert_eq!(get(&client, &server.url("/auth/me"), &key).await.0, 200);
    let (status, body) = post(
        &client,
        &server.url("/contacts"),
        &key,
        &json!({"identifier": "+1 555 0100", "source": "whatsapp", "name": "Logged"}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let missing = "/contacts/00000000000000000000000000000000";
    assert_eq!(get(&client, &server.url(missing), &key).await.0, 404);
    assert_eq!(
        get(&client, &server.url("/auth/me"), wrong_key).await.0,
        401
    );
    let outside = client
        .get(format!("{site}/nothing-here"))
        .send()
        .await
        .expect("sent");
    assert_eq!(outside.status().as_u16(), 404);
    let expected = [
        ("GET", "/v1/auth/me".to_owned(), "200"),
        ("POST", "/v1/contacts".to_owned(), "200"),
        ("GET", format!("/v1{missing}"), "404"),
        ("GET", "/v1/auth/me".to_owned(), "401"),
        ("GET", "/nothing-here".to_owned(), "404"),
    ];

    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    let lines: Vec<&str> = log.lines().filter(|l| l.contains("latency")).collect();
    assert_eq!(lines.len(), expected.len(), "one line per request:\n{log}");
    for (line, (method, path, status)) in lines.iter().zip(&expected) {
        let words: Vec<&str> = line
            .split(|c: char| c.is_whitespace() || c == '=' || c == '"')
            .collect();
        assert!(words.contains(method), "{method} in {line}");
        assert!(words.contains(&path.as_str()), "{path} in {line}");
        assert!(words.contains(status), "{status} in {line}");
    }
    let secret = &key[bellbook::auth::key_prefix(&key).len()..];
    for leak in [key.as_str(), secret, wrong_key] {
        assert!(!log.contains(leak), "{leak} leaked into the log:\n{log}");
    }
    assert!(
        !log.to_ascii_lowercase().contains("bearer"),
        "an Authorization value in the log:\n{log}"
    );
}

/// `--log-format json`: one JSON object a line, the request line with its
/// request id (the client's when it sent one), and no secret.
async fn the_json_log_carries_request_ids(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    let server = Server::start(&url, &["--log-format", "json"]);
    let key = server.first_run_key().expect("first-run key");
    let response = client
        .get(server.url("/auth/me"))
        .bearer_auth(&key)
        .header("X-Request-Id", "probe-7")
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("probe-7")
    );
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    let lines: Vec<Value> = log
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|_| panic!("not JSON: {line}")))
        .collect();
    let request = lines
        .iter()
        .find(|line| line["request_id"] == "probe-7")
        .unwrap_or_else(|| panic!("no request line:\n{log}"));
    assert_eq!(request["method"], "GET");
    assert_eq!(request["path"], "/v1/auth/me");
    assert_eq!(request["status"], 200);
    assert!(!log.contains(&key[bellbook::auth::key_prefix(&key).len()..]));
}

/// `serve` flags for a server the writers load: the demo account, no rate
/// limit (so every refusal is a real one), and a fixed public URL (so
/// `href`s stay equal across restarts).
pub const UNDER_LOAD: [&str; 5] = [
    "--demo",
    "--rate-limit-rps",
    "0",
    "--public-url",
    "http://bellbook.test",
];

/// What became of one create a writer of [`spawn_writers`] sent.
#[derive(Debug)]
pub enum Create {
    /// Answered 200 with this contact.
    Acknowledged(Value),
    /// Answered with an error; `sent` is when the request went out.
    Refused {
        identifier: String,
        reply: Reply,
        sent: Instant,
    },
    /// No whole answer came: the client cannot know whether it was done.
    Unanswered { identifier: String },
}

impl Create {
    /// The contact of a 200; fails the test on anything else.
    #[track_caller]
    pub fn acknowledged(self) -> Value {
        match self {
            Create::Acknowledged(contact) => contact,
            other => panic!("a create was not acknowledged: {other:?}"),
        }
    }
}

/// Creates contacts from `workers` concurrent clients, each reporting what
/// became of every create it sent. A worker stops when a create goes
/// unanswered (the server is gone), or when nobody listens any more.
pub fn spawn_writers(
    base: &str,
    workers: usize,
    client: &reqwest::Client,
    sent: &tokio::sync::mpsc::UnboundedSender<Create>,
) -> Vec<tokio::task::JoinHandle<()>> {
    // Only a bound on a runaway loop; the tests stop the server far sooner.
    const MAX_CONTACTS: u32 = 50_000;
    let next = Arc::new(AtomicU32::new(0));
    (0..workers)
        .map(|_| {
            let api = Caller::new(client.clone(), base, DEMO_API_KEY);
            let next = next.clone();
            let sent = sent.clone();
            tokio::spawn(async move {
                loop {
                    let n = next.fetch_add(1, Ordering::SeqCst);
                    if n >= MAX_CONTACTS {
                        return;
                    }
                    let identifier = format!("+39 333 {n:07}");
                    let body = json!({
                        "identifier": identifier,
                        "source": "whatsapp",
                        "name": format!("Durable {n}"),
                        "tags": ["sales", "Call back"],
                        "custom_fields": {"zipCode": format!("{n:05}"), "orderNumber": n}
                    });
                    let request = api.request(Method::POST, "/contacts").json(&body);
                    let sent_at = Instant::now();
                    let (outcome, go_on) = match try_send(request).await {
                        Ok(reply) if reply.status == 200 => {
                            (Create::Acknowledged(reply.contact().clone()), true)
                        }
                        Ok(reply) => (
                            Create::Refused {
                                identifier,
                                reply,
                                sent: sent_at,
                            },
                            true,
                        ),
                        Err(_) => (Create::Unanswered { identifier }, false),
                    };
                    let refused = matches!(outcome, Create::Refused { .. });
                    if sent.send(outcome).is_err() || !go_on {
                        return;
                    }
                    if refused {
                        // Told to come back later: a client does not spin.
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }
            })
        })
        .collect()
}

async fn acknowledged_contacts_survive_kill_9(backend: Backend) {
    /// Acknowledged creates before the kill.
    const KILL_AFTER: usize = 60;
    let (_database, url) = TestDatabase::create(backend).await;
    let flags = UNDER_LOAD;
    let mut server = Server::start(&url, &flags);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let writers = spawn_writers(&server.base, 8, &client(), &sender);
    drop(sender);
    let mut acknowledged: Vec<Value> = Vec::new();
    while acknowledged.len() < KILL_AFTER {
        let create = receiver
            .recv()
            .await
            .unwrap_or_else(|| panic!("the writers stopped early\n{}", server.log()));
        acknowledged.push(create.acknowledged());
    }
    // The writers are still sending: requests are in flight.
    let status = server.kill_9();
    assert!(!status.success(), "killed, not exited: {status}");
    while let Some(create) = receiver.recv().await {
        match create {
            Create::Acknowledged(contact) => acknowledged.push(contact),
            Create::Unanswered { .. } => {}
            refused => panic!("a create failed: {refused:?}"),
        }
    }
    for writer in writers {
        writer.await.expect("a writer failed");
    }
    drop(server);

    let server = Server::start(&url, &flags);
    let client = client();
    for contact in &acknowledged {
        let uuid = contact["uuid"].as_str().expect("uuid");
        let (status, found) = get(
            &client,
            &server.url(&format!("/contacts/{uuid}")),
            DEMO_API_KEY,
        )
        .await;
        assert_eq!(status, 200, "acknowledged contact {uuid} lost: {found}");
        assert_eq!(&found["contact"][0], contact, "contact {uuid} changed");
    }
    // Nothing is half there: every contact that exists has all of what its
    // create asked for.
    let mut durable = 0;
    let mut next = server.url("/contacts");
    loop {
        let (status, page) = get(&client, &next, DEMO_API_KEY).await;
        assert_eq!(status, 200, "{page}");
        for contact in page["contacts"].as_array().expect("contacts") {
            if contact["name"]
                .as_str()
                .is_some_and(|n| n.starts_with("Durable "))
            {
                durable += 1;
                assert_eq!(contact["tags"], json!(["sales", "Call back"]), "{contact}");
                let fields = contact["customFields"].as_object().expect("fields");
                assert_eq!(fields.len(), 2, "{contact}");
            }
        }
        match page["meta"]["next"].as_str() {
            Some(cursor) => {
                let cursor: String = form_urlencoded::byte_serialize(cursor.as_bytes()).collect();
                next = server.url(&format!("/contacts?after={cursor}"));
            }
            None => break,
        }
    }
    assert!(durable >= acknowledged.len(), "{durable} contacts listed");
}

/// `bellbook backup` copies a SQLite database, consistent at one instant,
/// while a server writes to it; PostgreSQL has its own tools.
async fn backup_copies_a_sqlite_database_beside_a_running_server(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let target = dir.path().join("backup.db");
    let target_text = target.display().to_string();
    let server = Server::start(&url, &["--demo"]);
    let client = client();
    let (status, created) = post(
        &client,
        &server.url("/contacts"),
        DEMO_API_KEY,
        &json!({"identifier": "+1 555 0123", "source": "whatsapp", "name": "Backed Up"}),
    )
    .await;
    assert_eq!(status, 200, "{created}");
    let output = admin_output(&["backup", "--to", &target_text], &url);
    if backend == Backend::Postgres {
        assert!(
            !output.status.success(),
            "backup of PostgreSQL should refuse"
        );
        assert!(String::from_utf8_lossy(&output.stderr).contains("pg_dump"));
        return;
    }
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // The copy is a database of its own, with everything acknowledged.
    let restored = Server::start(&format!("sqlite://{target_text}"), &[]);
    assert_eq!(
        restored.first_run_key(),
        None,
        "the backup has its accounts"
    );
    let (status, listed) = get(&client, &restored.url("/contacts"), DEMO_API_KEY).await;
    assert_eq!(status, 200);
    let names: Vec<&str> = listed["contacts"]
        .as_array()
        .expect("contacts")
        .iter()
        .filter_map(|c| c["name"].as_str())
        .collect();
    assert_eq!(names, ["Backed Up", "Mario Rossi", "John Doe"]);
    // It never overwrites a file.
    let again = admin_output(&["backup", "--to", &target_text], &url);
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("already exists"));
}

/// A backup taken while writers run restores, into an empty database of
/// either backend, with every write acknowledged before the backup began;
/// a damaged file and a target that is not empty are refused.
async fn a_backup_taken_under_load_restores_every_earlier_write(backend: Backend) {
    const BEFORE: usize = 40;
    // Backups are of SQLite files; `backend` is where it is restored to.
    let (_database, url) = TestDatabase::create(Backend::Sqlite).await;
    let flags = UNDER_LOAD;
    let server = Server::start(&url, &flags);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let writers = spawn_writers(&server.base, 8, &client(), &sender);
    drop(sender);
    let mut before = Vec::new();
    while before.len() < BEFORE {
        before.push(
            receiver
                .recv()
                .await
                .expect("the writers run")
                .acknowledged(),
        );
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let backup = dir.path().join("under-load.db");
    let backup_text = backup.display().to_string();
    // While the writers go on.
    admin(&["backup", "--to", &backup_text], &url);
    drop(server);
    while receiver.recv().await.is_some() {}
    for writer in writers {
        writer.await.expect("a writer failed");
    }

    let (_target, target_url) = TestDatabase::create(backend).await;
    let said = admin_output(&["restore", "--from", &backup_text], &target_url);
    assert!(
        said.status.success(),
        "{}",
        String::from_utf8_lossy(&said.stderr)
    );
    let restored = Server::start(&target_url, &flags);
    let client = client();
    for contact in &before {
        let uuid = contact["uuid"].as_str().expect("uuid");
        let (status, found) = get(
            &client,
            &restored.url(&format!("/contacts/{uuid}")),
            DEMO_API_KEY,
        )
        .await;
        assert_eq!(
            status, 200,
            "contact {uuid} acknowledged before the backup is missing"
        );
        assert_eq!(&found["contact"][0], contact);
    }
    drop(restored);
    // Not into a database that holds accounts.
    let again = admin_output(&["restore", "--from", &backup_text], &target_url);
    assert!(!again.status.success());
    // Not from a damaged file; the target is left alone.
    let damaged = dir.path().join("damaged.db");
    let mut bytes = std::fs::read(&backup).expect("read backup");
    let middle = bytes.len() / 2;
    for byte in &mut bytes[middle..middle + 8192] {
        *byte = 0x5a;
    }
    std::fs::write(&damaged, bytes).expect("write");
    let (_empty, empty_url) = TestDatabase::create(backend).await;
    let refused = admin_output(
        &["restore", "--from", &damaged.display().to_string()],
        &empty_url,
    );
    assert!(!refused.status.success(), "a damaged backup was restored");
    let unchanged = Server::start(&empty_url, &[]);
    assert!(
        unchanged.first_run_key().is_some(),
        "the target stayed empty"
    );
}

on_both_backends!(
    a_backup_taken_under_load_restores_every_earlier_write,
    backup_copies_a_sqlite_database_beside_a_running_server,
    first_run_prints_a_working_key_once,
    demo_twice_loads_nothing_new,
    admin_commands_work_while_a_server_runs,
    sigterm_finishes_the_request_in_flight_and_exits_zero,
    the_request_log_has_a_line_per_request_and_no_secrets,
    acknowledged_contacts_survive_kill_9,
    the_json_log_carries_request_ids,
);
