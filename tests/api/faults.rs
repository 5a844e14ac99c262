//! The promises of SPEC §1 — an acknowledged write is kept, a failed one
//! changed nothing, nothing is half done — kept under faults, by the real
//! binary: `kill -9` again and again in the middle of creates, patches and
//! deletes; a SQLite disk that fills up and is freed again; a PostgreSQL
//! server that goes down under load and comes back; SIGTERM while 64
//! clients write.
//!
//! After each fault the tests read back everything the clients were told,
//! and resolve what they were never told (a request cut off by the fault)
//! by reading what the database holds: either outcome is allowed, half of
//! one never is. The disk-full test mounts a tmpfs and the PostgreSQL test
//! runs a cluster of its own; both need root, which the tests have here
//! and in CI.

use std::collections::HashSet;
use std::fs::File;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use crate::binary::{Server, signal};
use crate::fixtures::client;
use crate::helpers::{Backend, Caller, DEMO_API_KEY, Reply, TestDatabase, try_send};
use crate::on_both_backends;
use crate::process::{Create, UNDER_LOAD, spawn_writers};
use crate::storage::sqlite_path;

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// The two custom fields of a contact at `serial`. Every create (serial 0)
/// and every patch sets both in one request, so a write applied by half
/// shows as two fields that disagree.
fn fields_at(serial: u32) -> Value {
    json!({"zipCode": format!("{serial:05}"), "orderNumber": serial})
}

/// The serial both custom fields of `contact` agree on.
#[track_caller]
fn serial_of(contact: &Value) -> u32 {
    let fields = &contact["customFields"];
    let serial: u32 = fields["orderNumber"]
        .as_str()
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no orderNumber: {contact}"));
    assert_eq!(
        fields["zipCode"],
        format!("{serial:05}"),
        "half of a write is there: {contact}"
    );
    serial
}

/// Asserts that no contact has the number `identifier`.
async fn assert_absent(api: &Caller, identifier: &str, why: &str) {
    let reply = api
        .get(&format!("/contacts/phone/{}", digits(identifier)))
        .await;
    assert_eq!(
        reply.status, 404,
        "{why}, yet contact {identifier} exists: {}",
        reply.text
    );
}

/// Asserts that the contact acknowledged as `contact` is there, unchanged.
async fn assert_kept(api: &Caller, contact: &Value) {
    let uuid = contact["uuid"].as_str().expect("uuid");
    let reply = api.get(&format!("/contacts/{uuid}")).await;
    assert_eq!(
        reply.status, 200,
        "acknowledged contact {uuid} lost: {}",
        reply.text
    );
    assert_eq!(reply.contact(), contact, "contact {uuid} changed");
}

/// Asserts every acknowledged contact is there as answered, and that
/// none of the refused creates (refused because `why`) left a contact.
async fn assert_acknowledged_only(api: &Caller, kept: &[Value], refused: &[String], why: &str) {
    for contact in kept {
        assert_kept(api, contact).await;
    }
    for identifier in refused {
        assert_absent(api, identifier, why).await;
    }
}

/// Asserts SPEC §1's 503 answer with `code`, and that it says when to retry.
#[track_caller]
fn assert_refused(reply: &Reply, code: &str) {
    reply.assert_error(503, code);
    let retry_after = reply
        .header("retry-after")
        .and_then(|s| s.parse::<u32>().ok());
    assert!(
        retry_after.is_some_and(|s| s > 0),
        "a 503 says when to retry: {:?}",
        reply.headers
    );
}

/// SQLite's own check of the whole file finds nothing wrong.
fn assert_sqlite_intact(url: &str) {
    let db = rusqlite::Connection::open(sqlite_path(url)).expect("open the SQLite file");
    let mut check = db
        .prepare("PRAGMA integrity_check")
        .expect("prepare the check");
    let found: Vec<String> = check
        .query_map([], |row| row.get(0))
        .expect("run the check")
        .collect::<Result<_, _>>()
        .expect("read the check");
    assert_eq!(found, ["ok"], "the database file is damaged");
}

// ---------------------------------------------------------------------------
// kill -9, again and again, in the middle of creates, patches and deletes

/// Times the server is killed.
const KILL_CYCLES: usize = 5;
/// Concurrent writers of each cycle.
const MIXED_WRITERS: usize = 6;

/// A contact the mixed writers made, as they were told it is.
#[derive(Debug, Clone)]
struct Tracked {
    uuid: String,
    identifier: String,
    /// Of its last acknowledged write: 0 the create, then each patch's.
    serial: u32,
}

/// A write whose answer never came: done or not, the writer cannot know.
#[derive(Debug)]
enum InDoubt {
    Create {
        identifier: String,
    },
    /// The patch of the writer's contact `index` to `serial`.
    Patch {
        index: usize,
        serial: u32,
    },
    Delete {
        index: usize,
    },
}

/// The contacts one writer owns. Only their owner patches and deletes
/// them, one request at a time, so every contact's expected state is
/// known exactly: its last acknowledged write, or the one in doubt.
#[derive(Debug, Default)]
struct Share {
    alive: Vec<Tracked>,
    deleted: Vec<Tracked>,
    in_doubt: Option<InDoubt>,
}

/// Creates, patches and deletes (two creates, two patches, one delete in
/// five) until a request goes unanswered: the server was killed. Every
/// acknowledged write is reported on `acknowledged` as it is answered.
async fn mixed_writer(
    api: Caller,
    names: String,
    mut share: Share,
    acknowledged: tokio::sync::mpsc::UnboundedSender<()>,
) -> Share {
    let mut made = 0u32;
    for step in 0usize.. {
        let pick = (step / 5) % share.alive.len().max(1);
        let (request, doubt) = match step % 5 {
            2 | 3 if !share.alive.is_empty() => {
                let serial = share.alive[pick].serial + 1;
                let path = format!("/contacts/{}", share.alive[pick].uuid);
                let request = api
                    .request(Method::PATCH, &path)
                    .json(&json!({"custom_fields": fields_at(serial)}));
                (
                    request,
                    InDoubt::Patch {
                        index: pick,
                        serial,
                    },
                )
            }
            4 if !share.alive.is_empty() => {
                // The oldest: often made before an earlier kill.
                let path = format!("/contacts/{}", share.alive[0].uuid);
                (
                    api.request(Method::DELETE, &path),
                    InDoubt::Delete { index: 0 },
                )
            }
            _ => {
                made += 1;
                let identifier = format!("+39 347 {names} {made:05}");
                let request = api.request(Method::POST, "/contacts").json(&json!({
                    "identifier": identifier,
                    "source": "whatsapp",
                    "name": format!("Faulty {names} {made}"),
                    "custom_fields": fields_at(0),
                }));
                (request, InDoubt::Create { identifier })
            }
        };
        let Ok(reply) = try_send(request).await else {
            share.in_doubt = Some(doubt);
            return share;
        };
        assert_eq!(reply.status, 200, "{doubt:?} failed: {}", reply.text);
        match doubt {
            InDoubt::Create { identifier } => {
                let contact = reply.contact();
                assert_eq!(serial_of(contact), 0, "{contact}");
                share.alive.push(Tracked {
                    uuid: contact["uuid"].as_str().expect("uuid").to_owned(),
                    identifier,
                    serial: 0,
                });
            }
            InDoubt::Patch { index, serial } => {
                assert_eq!(serial_of(reply.contact()), serial, "{}", reply.text);
                share.alive[index].serial = serial;
            }
            InDoubt::Delete { index } => {
                let gone = share.alive.remove(index);
                share.deleted.push(gone);
            }
        }
        // The test may have stopped counting; the writer goes on until
        // the server is gone.
        let _ = acknowledged.send(());
    }
    unreachable!("the server is killed long before")
}

/// Resolves a write the kill left in doubt by what the database holds:
/// either outcome may be kept, but all of it or none.
async fn settle(api: &Caller, share: &mut Share) {
    match share.in_doubt.take() {
        None => {}
        Some(InDoubt::Create { identifier }) => {
            let reply = api
                .get(&format!("/contacts/phone/{}", digits(&identifier)))
                .await;
            match reply.status {
                404 => {}
                200 => {
                    let contact = reply.contact();
                    assert_eq!(serial_of(contact), 0, "{contact}");
                    share.alive.push(Tracked {
                        uuid: contact["uuid"].as_str().expect("uuid").to_owned(),
                        identifier,
                        serial: 0,
                    });
                }
                _ => panic!("looking up {identifier}: {}", reply.text),
            }
        }
        Some(InDoubt::Patch { index, serial }) => {
            let tracked = &mut share.alive[index];
            let reply = api.get(&format!("/contacts/{}", tracked.uuid)).await;
            reply.assert_status(200);
            let found = serial_of(reply.contact());
            assert!(
                found == serial || found == tracked.serial,
                "contact {} holds serial {found}: neither the acknowledged {} nor the patch to {serial}",
                tracked.uuid,
                tracked.serial
            );
            tracked.serial = found;
        }
        Some(InDoubt::Delete { index }) => {
            let uuid = share.alive[index].uuid.clone();
            let reply = api.get(&format!("/contacts/{uuid}")).await;
            match reply.status {
                404 => {
                    let gone = share.alive.remove(index);
                    share.deleted.push(gone);
                }
                200 => assert_eq!(serial_of(reply.contact()), share.alive[index].serial),
                _ => panic!("reading {uuid}: {}", reply.text),
            }
        }
    }
}

/// Every acknowledged write is there and nothing else of the writers':
/// each contact alive holds the values of its last acknowledged write,
/// each deleted one is gone, and the listing shows exactly the contacts
/// alive, each with both fields of one write.
async fn assert_as_acknowledged(api: &Caller, shares: &[Share]) {
    let mut alive = HashSet::new();
    for share in shares {
        for tracked in &share.alive {
            let reply = api.get(&format!("/contacts/{}", tracked.uuid)).await;
            assert_eq!(
                reply.status, 200,
                "acknowledged contact {} lost: {}",
                tracked.uuid, reply.text
            );
            let contact = reply.contact();
            assert_eq!(contact["phoneNumber"], tracked.identifier.as_str());
            assert_eq!(
                serial_of(contact),
                tracked.serial,
                "contact {} lost an acknowledged patch",
                tracked.uuid
            );
            alive.insert(tracked.uuid.clone());
        }
        for tracked in &share.deleted {
            let reply = api.get(&format!("/contacts/{}", tracked.uuid)).await;
            assert_eq!(
                reply.status, 404,
                "deleted contact {} is back: {}",
                tracked.uuid, reply.text
            );
        }
    }
    let listed: HashSet<String> = api
        .every_contact("/contacts")
        .await
        .iter()
        .filter(|c| c["name"].as_str().is_some_and(|n| n.starts_with("Faulty ")))
        .map(|c| {
            serial_of(c);
            c["uuid"].as_str().expect("uuid").to_owned()
        })
        .collect();
    assert_eq!(
        listed, alive,
        "the listing differs from what was acknowledged"
    );
}

async fn kill_9_in_the_middle_of_creates_patches_and_deletes(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let client = client();
    // Every writer's contacts, from cycle to cycle.
    let mut shares: Vec<Share> = (0..MIXED_WRITERS).map(|_| Share::default()).collect();
    for cycle in 0..KILL_CYCLES {
        let mut server = Server::start(&url, &UNDER_LOAD);
        let (sender, mut acknowledged) = tokio::sync::mpsc::unbounded_channel();
        let writers: Vec<_> = std::mem::take(&mut shares)
            .into_iter()
            .enumerate()
            .map(|(worker, share)| {
                let api = Caller::new(client.clone(), &server.base, DEMO_API_KEY);
                let names = format!("{cycle}{worker}");
                tokio::spawn(mixed_writer(api, names, share, sender.clone()))
            })
            .collect();
        drop(sender);
        // A different point of the load each time.
        for _ in 0..60 + 40 * cycle {
            acknowledged
                .recv()
                .await
                .unwrap_or_else(|| panic!("the writers stopped early\n{}", server.log()));
        }
        let status = server.kill_9();
        assert!(!status.success(), "killed, not exited: {status}");
        for writer in writers {
            shares.push(writer.await.expect("a writer failed"));
        }
        drop(server);
        if backend == Backend::Sqlite {
            assert_sqlite_intact(&url);
        }

        let server = Server::start(&url, &UNDER_LOAD);
        let api = Caller::new(client.clone(), &server.base, DEMO_API_KEY);
        for share in &mut shares {
            settle(&api, share).await;
        }
        assert_as_acknowledged(&api, &shares).await;
        let (status, log) = server.terminate();
        assert!(status.success(), "{status}\n{log}");
    }
    let deleted: usize = shares.iter().map(|s| s.deleted.len()).sum();
    assert!(deleted > 0, "the writers deleted nothing");
}

// ---------------------------------------------------------------------------
// SIGTERM while 64 clients write

async fn sigterm_under_load_finishes_or_refuses_every_request(backend: Backend) {
    const CLIENTS: usize = 64;
    /// Acknowledged creates before the signal.
    const TERMINATE_AFTER: usize = 200;
    let (_database, url) = TestDatabase::create(backend).await;
    let mut server = Server::start(&url, &UNDER_LOAD);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let writers = spawn_writers(&server.base, CLIENTS, &client(), &sender);
    drop(sender);
    let mut creates = Vec::new();
    while creates.len() < TERMINATE_AFTER {
        let create = receiver
            .recv()
            .await
            .unwrap_or_else(|| panic!("the writers stopped early\n{}", server.log()));
        creates.push(create);
    }
    signal(server.child.id(), "TERM");
    // Each writer stops at its first create that goes unanswered.
    while let Some(create) = receiver.recv().await {
        creates.push(create);
    }
    for writer in writers {
        writer.await.expect("a writer failed");
    }
    let status = server.wait();
    assert!(status.success(), "exit status {status}\n{}", server.log());
    drop(server);

    let again = Server::start(&url, &UNDER_LOAD);
    let api = Caller::new(client(), &again.base, DEMO_API_KEY);
    let mut acknowledged = 0;
    for create in &creates {
        match create {
            Create::Acknowledged(contact) => {
                assert_kept(&api, contact).await;
                acknowledged += 1;
            }
            Create::Refused {
                identifier, reply, ..
            } => {
                assert_eq!(reply.status, 503, "a create failed: {}", reply.text);
                assert_absent(&api, identifier, "refused with a 503").await;
            }
            Create::Unanswered { identifier } => {
                assert_absent(&api, identifier, "its answer never came").await;
            }
        }
    }
    assert!(
        acknowledged >= TERMINATE_AFTER,
        "{acknowledged} acknowledged"
    );
}

on_both_backends!(
    kill_9_in_the_middle_of_creates_patches_and_deletes,
    sigterm_under_load_finishes_or_refuses_every_request,
);

// ---------------------------------------------------------------------------
// A full disk under SQLite

/// A tmpfs of its own, unmounted when dropped, also when the test fails.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(megabytes: u32) -> Tmpfs {
        let dir = tempfile::tempdir().expect("temp dir");
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(dir.path())
            .status()
            .expect("mount runs");
        assert!(
            status.success(),
            "mounting a tmpfs failed: the test needs root"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.dir.path()).status();
        if !unmounted.is_ok_and(|s| s.success()) {
            // Still in use by a child that is exiting: detached now, gone
            // when its last file closes.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// Fills the file system under `dir` with one file, until a write finds
/// no space left; returns the file.
fn fill(dir: &Path) -> PathBuf {
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("create the filler");
    let chunk = vec![0x5a_u8; 64 * 1024];
    loop {
        match file.write_all(&chunk) {
            Ok(()) => {}
            Err(error) if error.kind() == ErrorKind::StorageFull => return path,
            Err(error) => panic!("filling the disk: {error}"),
        }
    }
}

fn identifier_of(n: u32) -> String {
    format!("+39 348 {n:07}")
}

fn contact_body(n: u32) -> Value {
    json!({
        "identifier": identifier_of(n),
        "source": "whatsapp",
        "name": format!("Stored {n}"),
        "custom_fields": fields_at(0),
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_a_full_disk_refuses_writes_until_space_is_freed() {
    // Dropped last: after the server, whose files are on it.
    let disk = Tmpfs::mount(32);
    let url = format!("sqlite://{}", disk.path().join("bellbook.db").display());
    let server = Server::start(&url, &UNDER_LOAD);
    let api = Caller::new(client(), &server.base, DEMO_API_KEY);
    let mut kept = Vec::new();
    for n in 0..10 {
        kept.push(api.create_contact(contact_body(n)).await);
    }

    let filler = fill(disk.path());
    // A write may still fit where the WAL already had room; past that,
    // every write is refused.
    let mut n = 10;
    loop {
        let reply = api.post("/contacts", contact_body(n)).await;
        n += 1;
        if reply.status == 200 {
            kept.push(reply.contact().clone());
            assert!(n < 2_000, "writes never found the disk full");
            continue;
        }
        assert_refused(&reply, "storage_full");
        break;
    }
    let mut refused = vec![identifier_of(n - 1)];
    // Alone and in one group commit.
    let burst = (n..n + 16).map(|n| api.post("/contacts", contact_body(n)));
    for reply in futures::future::join_all(burst).await {
        assert_refused(&reply, "storage_full");
    }
    refused.extend((n..n + 16).map(identifier_of));
    let first = kept[0]["uuid"].as_str().expect("uuid").to_owned();
    let second = kept[1]["uuid"].as_str().expect("uuid").to_owned();
    let patch = json!({"custom_fields": fields_at(1)});
    assert_refused(
        &api.patch(&format!("/contacts/{first}"), patch.clone())
            .await,
        "storage_full",
    );
    assert_refused(
        &api.delete(&format!("/contacts/{second}")).await,
        "storage_full",
    );
    assert_refused(
        &api.post("/tags", json!({"name": "Disk Full"})).await,
        "storage_full",
    );
    // Reads go on.
    for contact in &kept {
        assert_kept(&api, contact).await;
    }
    let listed = api.every_contact("/contacts").await;
    assert_eq!(listed.len(), kept.len() + 2, "the demo's two and ours");

    // Space again: the next writes succeed, with no restart.
    std::fs::remove_file(filler).expect("remove the filler");
    kept.push(api.create_contact(contact_body(n + 16)).await);
    let patched = api.patch(&format!("/contacts/{first}"), patch).await;
    patched.assert_status(200);
    kept[0] = patched.contact().clone();
    api.delete(&format!("/contacts/{second}"))
        .await
        .assert_status(200);
    kept.remove(1);
    api.post("/tags", json!({"name": "Disk Full"}))
        .await
        .assert_status(200);
    assert_acknowledged_only(&api, &kept, &refused, "refused with storage_full").await;
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
    assert_sqlite_intact(&url);
}

// ---------------------------------------------------------------------------
// PostgreSQL going down under load, and coming back

/// A PostgreSQL cluster of the test's own, so that it can be stopped and
/// started: made by `initdb` in a temporary directory and run as the
/// `postgres` OS user (PostgreSQL refuses to run as root) on a free port.
/// Stopped, and its files removed, when dropped.
struct Cluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
    port: u16,
}

impl Cluster {
    fn create() -> Cluster {
        let bin = postgres_bindir();
        let dir = tempfile::Builder::new()
            .prefix("bellbook-pg-")
            .tempdir()
            .expect("temp dir");
        let id = |flag: &str| -> u32 {
            let output = Command::new("id")
                .args([flag, "postgres"])
                .output()
                .expect("id runs");
            String::from_utf8_lossy(&output.stdout)
                .trim()
                .parse()
                .expect("a postgres OS user")
        };
        std::os::unix::fs::chown(dir.path(), Some(id("-u")), Some(id("-g")))
            .expect("hand the directory to postgres");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let cluster = Cluster { dir, bin, port };
        cluster.run(
            "initdb",
            &[
                "-D",
                &cluster.data(),
                "-A",
                "trust",
                "-U",
                "postgres",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
        );
        cluster.start();
        cluster
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    /// Runs one of PostgreSQL's programs as the `postgres` OS user.
    fn run(&self, program: &str, args: &[&str]) {
        let output = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(program))
            .args(args)
            .output()
            .expect("runuser runs");
        assert!(
            output.status.success(),
            "{program} {args:?} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }

    fn start(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run(
            "pg_ctl",
            &[
                "start",
                "-w",
                "-D",
                &self.data(),
                "-l",
                &log,
                "-o",
                &options,
            ],
        );
    }

    /// As a crash would: no checkpoint, every session cut off.
    fn stop_immediately(&self) {
        self.run(
            "pg_ctl",
            &["stop", "-w", "-m", "immediate", "-D", &self.data()],
        );
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

/// Where PostgreSQL's server programs are: `pg_config --bindir`, else
/// the newest of Debian's `/usr/lib/postgresql/*/bin`.
fn postgres_bindir() -> PathBuf {
    let said = Command::new("pg_config").arg("--bindir").output();
    if let Ok(output) = said
        && output.status.success()
    {
        return PathBuf::from(String::from_utf8_lossy(&output.stdout).trim());
    }
    let mut installed: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL's server programs are needed (pg_config or /usr/lib/postgresql)")
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    installed.sort();
    installed.pop().expect("no PostgreSQL server programs").1
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = Command::new("runuser")
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join("pg_ctl"))
            .args(["stop", "-w", "-m", "immediate", "-D", &self.data()])
            .output();
    }
}

/// What the writers report next; they never stop by themselves.
async fn next(
    receiver: &mut tokio::sync::mpsc::UnboundedReceiver<Create>,
    server: &Server,
) -> Create {
    receiver
        .recv()
        .await
        .unwrap_or_else(|| panic!("the writers stopped\n{}", server.log()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_going_down_mid_load_answers_503_and_recovers_by_itself() {
    /// Longest any request may take, up or down: a request that waits
    /// longer hangs.
    const ANSWER_WITHIN: Duration = Duration::from_secs(10);
    /// Longest bellbook may take to write again once PostgreSQL is back.
    const RECOVERY: Duration = Duration::from_secs(30);
    let cluster = Cluster::create();
    let server = Server::start(&cluster.url(), &UNDER_LOAD);
    let client = reqwest::Client::builder()
        .timeout(ANSWER_WITHIN)
        .build()
        .expect("client");
    let api = Caller::new(client.clone(), &server.base, DEMO_API_KEY);
    let (sender, mut receiver) = tokio::sync::mpsc::unbounded_channel();
    let writers = spawn_writers(&server.base, 8, &client, &sender);
    drop(sender);
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();

    while acknowledged.len() < 30 {
        acknowledged.push(next(&mut receiver, &server).await.acknowledged());
    }
    cluster.stop_immediately();
    let down = Instant::now();
    // Writes in flight at the stop may still have been acknowledged.
    let mut refusals = 0;
    while refusals < 20 {
        match next(&mut receiver, &server).await {
            Create::Acknowledged(contact) => acknowledged.push(contact),
            Create::Refused {
                identifier,
                reply,
                sent,
            } => {
                assert_refused(&reply, "storage_unavailable");
                // A create whose COMMIT was on its way when PostgreSQL
                // died may have been committed, though the lost session
                // left bellbook no way to know: only those sent once it
                // was down are surely not.
                if sent > down {
                    refused.push(identifier);
                }
                refusals += 1;
            }
            unanswered @ Create::Unanswered { .. } => {
                panic!(
                    "while PostgreSQL was down: {unanswered:?}\n{}",
                    server.log()
                )
            }
        }
    }
    let uuid = acknowledged[0]["uuid"].as_str().expect("uuid").to_owned();
    for path in [format!("/contacts/{uuid}"), "/contacts".to_owned()] {
        let read = try_send(api.request(Method::GET, &path))
            .await
            .unwrap_or_else(|e| panic!("GET {path} while PostgreSQL was down: {e}"));
        assert_refused(&read, "storage_unavailable");
    }

    cluster.start();
    let back = Instant::now();
    let mut since = 0;
    while since < 30 {
        match next(&mut receiver, &server).await {
            Create::Acknowledged(contact) => {
                acknowledged.push(contact);
                since += 1;
            }
            Create::Refused {
                identifier, reply, ..
            } => {
                assert_refused(&reply, "storage_unavailable");
                assert!(
                    back.elapsed() < RECOVERY,
                    "still refusing writes {:?} after PostgreSQL came back\n{}",
                    back.elapsed(),
                    server.log()
                );
                refused.push(identifier);
            }
            unanswered @ Create::Unanswered { .. } => {
                panic!(
                    "after PostgreSQL came back: {unanswered:?}\n{}",
                    server.log()
                )
            }
        }
    }
    drop(receiver);
    for writer in writers {
        writer.await.expect("a writer failed");
    }
    // Reads come back by themselves too.
    loop {
        let read = api.get(&format!("/contacts/{uuid}")).await;
        if read.status == 200 {
            break;
        }
        assert_refused(&read, "storage_unavailable");
        assert!(
            back.elapsed() < RECOVERY,
            "still refusing reads {:?} after PostgreSQL came back\n{}",
            back.elapsed(),
            server.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    assert_acknowledged_only(&api, &acknowledged, &refused, "refused with a 503").await;
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");
}
