//! Guarantees of the storage layer (`docs/storage.md`): a database made by
//! the first schema upgrades in place when a newer bellbook starts on it;
//! `q` finds exactly the contacts a brute-force substring match finds,
//! whichever way the listing finds them; and the totals kept beside every
//! write stay exact through creates, edits, deletions and settings changes.
//!
//! A listing shows its total only as `meta.pages` (20 contacts a page). A
//! total is checked exactly by bringing it to a multiple of 20 with
//! contacts that match the filter and then adding one more: only the
//! exact count gives the right page count both times (see
//! [`assert_exact_total`]).

use std::collections::BTreeSet;

use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};
use serde_json::{Value, json};
use sha2::{Digest, Sha256, Sha384};

use crate::binary::{Server, admin, admin_output};
use crate::helpers::{Backend, Caller, TestApp, TestDatabase, uuids};
use crate::on_both_backends;

const PAGE_SIZE: usize = 20;

fn uuid_of(value: &Value) -> String {
    value["uuid"]
        .as_str()
        .unwrap_or_else(|| panic!("a uuid in {value}"))
        .to_owned()
}

fn contacts_of(body: &Value) -> &Vec<Value> {
    body["contacts"]
        .as_array()
        .unwrap_or_else(|| panic!("contacts in {body}"))
}

/// `meta.pages` for `n` matching contacts.
fn pages_for(n: usize) -> u64 {
    u64::try_from(n.div_ceil(PAGE_SIZE).max(1)).expect("small")
}

fn listing_path(query: &str, page: Option<u64>) -> String {
    match (query, page) {
        ("", None) => "/contacts".to_owned(),
        ("", Some(page)) => format!("/contacts?page={page}"),
        (query, None) => format!("/contacts?{query}"),
        (query, Some(page)) => format!("/contacts?{query}&page={page}"),
    }
}

fn encode(text: &str) -> String {
    utf8_percent_encode(text, NON_ALPHANUMERIC).to_string()
}

/// What differs between two lists of contacts, by name, for messages.
fn difference(expected: &[&Value], actual: &[Value]) -> String {
    let wanted: BTreeSet<String> = expected.iter().map(|c| uuid_of(c)).collect();
    let got: BTreeSet<String> = actual.iter().map(uuid_of).collect();
    let missing: Vec<&Value> = expected
        .iter()
        .filter(|c| !got.contains(&uuid_of(c)))
        .map(|c| &c["name"])
        .collect();
    let extra: Vec<&Value> = actual
        .iter()
        .filter(|c| !wanted.contains(&uuid_of(c)))
        .map(|c| &c["name"])
        .collect();
    format!(
        "{} expected, {} listed; missing {missing:?}; not expected {extra:?}",
        expected.len(),
        actual.len()
    )
}

/// Which pages must say how many pages there are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PagesSaid {
    /// Every page, numbered or reached by cursor.
    Everywhere,
    /// The numbered pages only (the cursor walk's first page is page 1).
    /// For searches, whose cursor pages say less on SQLite: see
    /// [`a_search_says_its_pages_along_a_cursor_walk`].
    OnNumberedPages,
}

/// Asserts that `GET /contacts?{query}` lists exactly `expected`, newest
/// first, both walked by cursor and read page by page, and that every page
/// says how many pages there are.
async fn assert_listing(api: &Caller, query: &str, expected: &[&Value]) {
    assert_listing_saying(api, query, expected, PagesSaid::Everywhere).await;
}

async fn assert_listing_saying(api: &Caller, query: &str, expected: &[&Value], said: PagesSaid) {
    let pages = pages_for(expected.len());
    let wanted: Vec<String> = expected.iter().map(|c| uuid_of(c)).collect();

    let mut walked = Vec::new();
    let mut reply = api.get(&listing_path(query, None)).await;
    let mut number = 1;
    loop {
        reply.assert_status(200);
        let meta = &reply.body["meta"];
        if number == 1 || said == PagesSaid::Everywhere {
            assert_eq!(
                meta["pages"], pages,
                "{query}: meta.pages on page {number} of the cursor walk ({meta})"
            );
        }
        assert_eq!(meta["page"], number, "{query}");
        walked.extend(contacts_of(&reply.body).iter().cloned());
        let Some(next) = meta["next"].as_str() else {
            break;
        };
        number += 1;
        assert!(number <= pages + 1, "{query}: the walk goes on");
        reply = api.get(&format!("/contacts?after={next}")).await;
    }
    assert!(
        walked.iter().map(uuid_of).eq(wanted.iter().cloned()),
        "{query}: the cursor walk: {}",
        difference(expected, &walked)
    );

    let mut numbered = Vec::new();
    for page in 1..=pages {
        let reply = api.get(&listing_path(query, Some(page))).await;
        reply.assert_status(200);
        assert_eq!(
            reply.body["meta"]["pages"], pages,
            "{query}: meta.pages on page={page}"
        );
        assert_eq!(
            reply.body["meta"]["next"].is_null(),
            page == pages,
            "{query}: meta.next on page={page}"
        );
        numbered.extend(contacts_of(&reply.body).iter().cloned());
    }
    assert!(
        numbered.iter().map(uuid_of).eq(wanted.iter().cloned()),
        "{query}: page by page: {}",
        difference(expected, &numbered)
    );
}

/// A listing filter whose total is a counter (`docs/storage.md`), and how
/// to make a contact that matches it.
#[derive(Debug, Clone)]
enum Counted {
    All,
    Tag(String),
    Team(String),
    Source(&'static str),
}

impl Counted {
    fn query(&self) -> String {
        match self {
            Counted::All => String::new(),
            Counted::Tag(name) => format!("tags={}", encode(name)),
            Counted::Team(uuid) => format!("team_uuid={uuid}"),
            Counted::Source(source) => format!("source={source}"),
        }
    }

    fn matches(&self, contact: &Value) -> bool {
        match self {
            Counted::All => true,
            Counted::Tag(name) => contact["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .any(|t| t.as_str().is_some_and(|t| t.eq_ignore_ascii_case(name))),
            Counted::Team(uuid) => contact["team"]["uuid"] == uuid.as_str(),
            Counted::Source(source) => contact["source"] == *source,
        }
    }

    /// A new contact that matches, number `n` of the padding.
    fn padding(&self, n: usize) -> Value {
        let whatsapp = json!({
            "identifier": format!("+31 6 9000 {n:04}"),
            "source": "whatsapp",
            "name": format!("Padding {n}")
        });
        match self {
            Counted::All => whatsapp,
            Counted::Tag(name) => {
                let mut body = whatsapp;
                body["tags"] = json!([name]);
                body
            }
            Counted::Team(uuid) => {
                let mut body = whatsapp;
                body["team_uuid"] = json!(uuid);
                body
            }
            Counted::Source("whatsapp") => whatsapp,
            Counted::Source(source) => json!({
                "identifier": format!("padding.{n}"),
                "source": source,
                "name": format!("Padding {n}")
            }),
        }
    }
}

/// Asserts that the total of `filter` is exactly the number of contacts
/// that match it in the whole listing, walked page by page: the listing
/// is compared with that brute force, then the total is brought to a
/// multiple of 20 with matching contacts (`meta.pages` = m tells the
/// counter is at most that), and one more is made (m + 1 tells it is at
/// least that). A cursor walk begun before the padding still counts only
/// the contacts it began with. `padded` numbers the padding contacts.
async fn assert_exact_total(api: &Caller, filter: &Counted, padded: &mut usize) {
    let query = filter.query();
    let all = api.every_contact("/contacts").await;
    let expected: Vec<&Value> = all.iter().filter(|c| filter.matches(c)).collect();
    let n = expected.len();
    assert_listing(api, &query, &expected).await;
    let first = api.get(&listing_path(&query, None)).await;
    first.assert_status(200);
    let cursor = first.body["meta"]["next"].as_str().map(str::to_owned);

    let to_fill = match n % PAGE_SIZE {
        0 if n == 0 => PAGE_SIZE,
        0 => 0,
        rest => PAGE_SIZE - rest,
    };
    for _ in 0..to_fill {
        *padded += 1;
        api.create_contact(filter.padding(*padded)).await;
    }
    let full = n + to_fill;
    let reply = api.get(&listing_path(&query, None)).await;
    reply.assert_status(200);
    assert_eq!(
        reply.body["meta"]["pages"],
        full / PAGE_SIZE,
        "{filter:?}: {n} contacts and {to_fill} more are {full}: the total is at most {n}"
    );
    *padded += 1;
    api.create_contact(filter.padding(*padded)).await;
    let reply = api.get(&listing_path(&query, None)).await;
    reply.assert_status(200);
    assert_eq!(
        reply.body["meta"]["pages"],
        full / PAGE_SIZE + 1,
        "{filter:?}: {full} + 1 contacts: the total is at least {n}"
    );

    if let Some(cursor) = cursor {
        let mut walked: Vec<Value> = contacts_of(&first.body).clone();
        let mut reply = api.get(&format!("/contacts?after={cursor}")).await;
        loop {
            reply.assert_status(200);
            assert_eq!(
                reply.body["meta"]["pages"],
                pages_for(n),
                "{filter:?}: a walk begun at {n} contacts counts {n}"
            );
            walked.extend(contacts_of(&reply.body).iter().cloned());
            let Some(next) = reply.body["meta"]["next"].as_str() else {
                break;
            };
            reply = api.get(&format!("/contacts?after={next}")).await;
        }
        assert!(
            walked
                .iter()
                .map(uuid_of)
                .eq(expected.iter().map(|c| uuid_of(c))),
            "{filter:?}: the walk begun before the padding: {}",
            difference(&expected, &walked)
        );
    }
}

// ---------------------------------------------------------------------
// a. A database made by the first schema, upgraded in place.

const SQLITE_INIT: &str = include_str!("../../migrations/sqlite/0001_init.sql");
const POSTGRES_INIT: &str = include_str!("../../migrations/postgres/0001_init.sql");

/// 3 + 40 characters, as `bellbook` makes them.
const LEGACY_KEY: &str = "bb_Legacy0123456789abcdefghijklmnopqrstuvwx";
const ACCOUNT: &str = "1e9ac0de00000000000000000000a001";
const OWNER: &str = "1e9ac0de00000000000000000000b001";
const KEY_ID: &str = "1e9ac0de00000000000000000000c001";
const GENERAL: &str = "1e9ac0de00000000000000000000d001";
const SUPPORT: &str = "1e9ac0de00000000000000000000d002";
const WHATSAPP: &str = "1e9ac0de00000000000000000000e001";
const TELEGRAM: &str = "1e9ac0de00000000000000000000e002";
/// 2024-03-01T09:00:00Z
const T0: i64 = 1_709_283_600;
const LEGACY_NAMES: [&str; 25] = [
    "Ada Lovelace",
    "Grace Hopper",
    "José Núñez",
    "ÅSA Öberg",
    "Alan Turing",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Margaret Hamilton",
    "Ken Thompson",
    "Dennis Ritchie",
    "Frances Allen",
    "John McCarthy",
    "Radia Perlman",
    "Tim Berners-Lee",
    "Katherine Johnson",
    "Niklaus Wirth",
    "Hedy Lamarr",
    "Leslie Lamport",
    "Sophie Wilson",
    "Guido van Rossum",
    "Annie Easley",
    "Linus Torvalds",
    "Mary Kenneth Keller",
    "Émile Zola",
];

/// A contact as the first schema held it.
struct LegacyContact {
    uuid: String,
    conversation: String,
    seq: i64,
    name: &'static str,
    identifier: String,
    source: &'static str,
    created_at: i64,
    support: bool,
    /// In the order they were set (`contact_tags.position`).
    tags: &'static [&'static str],
    plan: &'static str,
    score: Option<i64>,
    closed_at: Option<i64>,
    bsuid: Option<String>,
    assigned: bool,
}

fn legacy_contacts() -> Vec<LegacyContact> {
    LEGACY_NAMES
        .iter()
        .enumerate()
        .map(|(i, name)| {
            let n = i64::try_from(i).expect("small");
            let telegram = i % 7 == 3;
            LegacyContact {
                uuid: format!("1e9ac0de0000000000000000{n:08x}"),
                conversation: format!("1e9ac0de0000000000000001{n:08x}"),
                seq: n + 1,
                name,
                identifier: if telegram {
                    format!("tg_user_{i}")
                } else {
                    format!("+39 333 {i:03} {:04}", 1000 + i)
                },
                source: if telegram { "telegram" } else { "whatsapp" },
                // Not in creation order, and often at the same second: the
                // sequence number breaks the ties.
                created_at: T0 + (n * 7 % 13) * 60,
                support: i % 5 == 0,
                tags: match i % 4 {
                    0 => &["VIP", "Lead"],
                    1 => &["Lead"],
                    2 => &[],
                    _ => &["Cold", "VIP"],
                },
                plan: if i % 2 == 0 { "Pro" } else { "Free" },
                score: (i % 3 == 0).then_some(n * 3),
                closed_at: (i == 4).then_some(T0 + 3600),
                bsuid: (i == 6).then(|| "BS.legacy.6".to_owned()),
                assigned: i == 1,
            }
        })
        .collect()
}

fn digits(text: &str) -> String {
    text.chars().filter(char::is_ascii_digit).collect()
}

/// A SQL string literal.
fn lit(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

fn opt(value: Option<i64>) -> String {
    value.map_or_else(|| "NULL".to_owned(), |v| v.to_string())
}

/// The account, its key, settings and contacts, in SQL both databases
/// take, as the first version of bellbook wrote them (rows found by uuid,
/// ids left to the database).
fn legacy_data(contacts: &[LegacyContact]) -> String {
    let account = format!("(SELECT id FROM accounts WHERE uuid = {})", lit(ACCOUNT));
    let by_uuid =
        |table: &str, uuid: &str| format!("(SELECT id FROM {table} WHERE uuid = {})", lit(uuid));
    let tag = |name: &str| {
        format!(
            "(SELECT id FROM tags WHERE account_id = {account} AND name_key = {})",
            lit(&name.to_lowercase())
        )
    };
    let field = |name: &str| {
        format!(
            "(SELECT id FROM custom_fields WHERE account_id = {account} AND name_key = {})",
            lit(&name.to_lowercase())
        )
    };
    let prefix: String = LEGACY_KEY.chars().take(12).collect();
    let hash = hex::encode(Sha256::digest(LEGACY_KEY.as_bytes()));
    let mut sql = vec![
        format!(
            "INSERT INTO accounts (uuid, name, created_at, contact_seq) VALUES ({}, 'Legacy', {T0}, {})",
            lit(ACCOUNT),
            contacts.len()
        ),
        format!(
            "INSERT INTO api_keys (uuid, account_id, name, prefix, secret_hash, created_at)
             VALUES ({}, {account}, 'default', {}, {}, {T0})",
            lit(KEY_ID),
            lit(&prefix),
            lit(&hash)
        ),
        format!(
            "INSERT INTO users (uuid, account_id, email, email_key, name, is_owner, created_at)
             VALUES ({}, {account}, 'Owner@Legacy.example', 'owner@legacy.example', 'Legacy Owner', 1, {T0})",
            lit(OWNER)
        ),
        format!(
            "INSERT INTO teams (uuid, account_id, name, is_default, created_at)
             VALUES ({}, {account}, 'General', 1, {T0}), ({}, {account}, 'Support', 0, {T0})",
            lit(GENERAL),
            lit(SUPPORT)
        ),
        format!(
            "INSERT INTO team_members (team_id, user_id) VALUES ({}, {})",
            by_uuid("teams", GENERAL),
            by_uuid("users", OWNER)
        ),
        format!(
            "INSERT INTO channels (uuid, account_id, title, type, is_main, created_at)
             VALUES ({}, {account}, 'Main line', 'whatsapp', 1, {T0}),
                    ({}, {account}, 'Telegram', 'telegram', 1, {T0})",
            lit(WHATSAPP),
            lit(TELEGRAM)
        ),
        // Ids in this order; contacts list them in another.
        format!(
            "INSERT INTO tags (account_id, name, name_key, created_at)
             VALUES ({account}, 'Lead', 'lead', {T0}), ({account}, 'VIP', 'vip', {T0}),
                    ({account}, 'Cold', 'cold', {T0})"
        ),
        format!(
            "INSERT INTO custom_fields (account_id, name, name_key, type, options, created_at)
             VALUES ({account}, 'Plan', 'plan', 'dropdown', '[\"Free\",\"Pro\"]', {T0}),
                    ({account}, 'Score', 'score', 'number', NULL, {T0})"
        ),
    ];
    for c in contacts {
        let digits = digits(&c.identifier);
        let key = if c.source == "whatsapp" {
            digits.clone()
        } else {
            c.identifier.clone()
        };
        let channel = if c.source == "whatsapp" {
            WHATSAPP
        } else {
            TELEGRAM
        };
        let team = if c.support { SUPPORT } else { GENERAL };
        sql.push(format!(
            "INSERT INTO contacts (uuid, account_id, seq, name, name_key, identifier,
                 identifier_digits, identifier_key, source, channel_id, team_id, assigned_user_id,
                 bsuid, created_at, updated_at, conversation_uuid, closed_at)
             VALUES ({}, {account}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {})",
            lit(&c.uuid),
            c.seq,
            lit(c.name),
            lit(&c.name.trim().to_lowercase()),
            lit(&c.identifier),
            lit(&digits),
            lit(&key),
            lit(c.source),
            by_uuid("channels", channel),
            by_uuid("teams", team),
            if c.assigned {
                by_uuid("users", OWNER)
            } else {
                "NULL".to_owned()
            },
            c.bsuid.as_deref().map_or_else(|| "NULL".to_owned(), lit),
            c.created_at,
            c.created_at,
            lit(&c.conversation),
            opt(c.closed_at)
        ));
        for (position, name) in c.tags.iter().enumerate() {
            sql.push(format!(
                "INSERT INTO contact_tags (contact_id, tag_id, position) VALUES ({}, {}, {position})",
                by_uuid("contacts", &c.uuid),
                tag(name)
            ));
        }
        let mut values = vec![("Plan", c.plan.to_owned())];
        if let Some(score) = c.score {
            values.push(("Score", score.to_string()));
        }
        for (name, value) in values {
            sql.push(format!(
                "INSERT INTO contact_field_values (contact_id, field_id, value) VALUES ({}, {}, {})",
                by_uuid("contacts", &c.uuid),
                field(name),
                lit(&value)
            ));
        }
    }
    sql.push(format!(
        "INSERT INTO messages (uuid, contact_id, kind, text, created_at)
         VALUES ('1e9ac0de00000000000000000000f001', {}, 'note', 'Met at the conference', {})",
        by_uuid("contacts", &contacts[0].uuid),
        T0 + 120
    ));
    sql.join(";\n") + ";\n"
}

fn sha384_hex(text: &str) -> String {
    hex::encode(Sha384::digest(text.as_bytes()))
}

/// The database file of a `sqlite://` URL.
pub fn sqlite_path(url: &str) -> &str {
    url.strip_prefix("sqlite://").expect("a sqlite:// URL")
}

/// Makes the database as the first version of bellbook left it: schema
/// 0001 only, recorded in `_sqlx_migrations` as sqlx recorded it, and
/// `data` in it.
async fn create_legacy_database(backend: Backend, url: &str, data: &str) {
    let checksum = sha384_hex(match backend {
        Backend::Sqlite => SQLITE_INIT,
        Backend::Postgres => POSTGRES_INIT,
    });
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open(sqlite_path(url)).expect("open the SQLite file");
            db.execute_batch(SQLITE_INIT).expect("schema 0001");
            db.execute_batch(&format!(
                "CREATE TABLE _sqlx_migrations (
                     version BIGINT PRIMARY KEY,
                     description TEXT NOT NULL,
                     installed_on TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
                     success BOOLEAN NOT NULL,
                     checksum BLOB NOT NULL,
                     execution_time BIGINT NOT NULL
                 );
                 INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (1, 'init', TRUE, X'{checksum}', 1843000);"
            ))
            .expect("migration 0001 recorded");
            db.execute_batch(&format!("BEGIN;\n{data}COMMIT;"))
                .expect("the legacy data");
        }
        Backend::Postgres => {
            let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            let connection = tokio::spawn(connection);
            db.batch_execute(POSTGRES_INIT).await.expect("schema 0001");
            db.batch_execute(&format!(
                "CREATE TABLE _sqlx_migrations (
                     version BIGINT PRIMARY KEY,
                     description TEXT NOT NULL,
                     installed_on TIMESTAMPTZ NOT NULL DEFAULT now(),
                     success BOOLEAN NOT NULL,
                     checksum BYTEA NOT NULL,
                     execution_time BIGINT NOT NULL
                 );
                 INSERT INTO _sqlx_migrations (version, description, success, checksum, execution_time)
                 VALUES (1, 'init', TRUE, decode('{checksum}', 'hex'), 1843000);"
            ))
            .await
            .expect("migration 0001 recorded");
            db.batch_execute(&format!("BEGIN;\n{data}COMMIT;"))
                .await
                .expect("the legacy data");
            drop(db);
            let _ = connection.await;
        }
    }
}

/// `(version, description, success, checksum hex)` of `_sqlx_migrations`.
async fn recorded_migrations(backend: Backend, url: &str) -> Vec<(i64, String, bool, String)> {
    match backend {
        Backend::Sqlite => {
            let db = rusqlite::Connection::open(sqlite_path(url)).expect("open the SQLite file");
            let mut statement = db
                .prepare(
                    "SELECT version, description, success, lower(hex(checksum))
                     FROM _sqlx_migrations ORDER BY version",
                )
                .expect("prepare");
            statement
                .query_map([], |row| {
                    Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?))
                })
                .expect("query")
                .collect::<Result<_, _>>()
                .expect("rows")
        }
        Backend::Postgres => {
            let (db, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
                .await
                .expect("connect to the test database");
            let connection = tokio::spawn(connection);
            let rows = db
                .query(
                    "SELECT version, description, success, encode(checksum, 'hex')
                     FROM _sqlx_migrations ORDER BY version",
                    &[],
                )
                .await
                .expect("query");
            drop(db);
            let _ = connection.await;
            rows.iter()
                .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
                .collect()
        }
    }
}

/// The migration files of a backend, `(version, text)`, in order.
fn migration_files(backend: Backend) -> Vec<(i64, String)> {
    let dir = format!(
        "{}/migrations/{}",
        env!("CARGO_MANIFEST_DIR"),
        match backend {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    );
    let mut files: Vec<(i64, String)> = std::fs::read_dir(&dir)
        .expect("the migrations directory")
        .map(|entry| {
            let path = entry.expect("a directory entry").path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .expect("a file name")
                .to_owned();
            let version = name[..4].parse().expect("a numbered migration");
            (
                version,
                std::fs::read_to_string(&path).expect("a migration file"),
            )
        })
        .collect();
    files.sort();
    files
}

fn iso(unix: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix)
        .expect("a time")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("formatted")
}

/// The case-insensitive substring rule of `q` (SPEC §4, `Search::new`).
fn q_matches(q: &str, contact: &Value) -> bool {
    let q = q.trim();
    let name = contact["name"]
        .as_str()
        .expect("name")
        .trim()
        .to_lowercase();
    if name.contains(&q.to_lowercase()) {
        return true;
    }
    let phone_like = q.chars().any(|c| c.is_ascii_digit())
        && q.chars()
            .all(|c| c.is_ascii_digit() || " +-().".contains(c));
    phone_like && digits(contact["phoneNumber"].as_str().expect("phoneNumber")).contains(&digits(q))
}

/// Asserts that `q` lists exactly the contacts of `all` it matches.
async fn assert_search(api: &Caller, all: &[Value], q: &str, said: PagesSaid) {
    let expected: Vec<&Value> = all.iter().filter(|c| q_matches(q, c)).collect();
    assert_listing_saying(api, &format!("q={}", encode(q)), &expected, said).await;
}

async fn a_database_of_the_first_schema_upgrades_in_place(backend: Backend) {
    let (_database, url) = TestDatabase::create(backend).await;
    let legacy = legacy_contacts();
    create_legacy_database(backend, &url, &legacy_data(&legacy)).await;

    let server = Server::start(&url, &["--rate-limit-rps", "0"]);
    assert_eq!(
        server.first_run_key(),
        None,
        "a database with an account is no first run: {:?}",
        server.printed
    );
    let api = Caller::new(crate::fixtures::client(), &server.base, LEGACY_KEY);
    let me = api.get("/auth/me").await;
    me.assert_status(200);
    assert_eq!(me.body["user_email"], "Owner@Legacy.example", "{}", me.text);

    // Every contact, newest first (ties broken by creation order), as it
    // was stored.
    let mut order: Vec<&LegacyContact> = legacy.iter().collect();
    order.sort_by_key(|c| std::cmp::Reverse((c.created_at, c.seq)));
    let all = api.every_contact("/contacts").await;
    let listed: Vec<String> = all.iter().map(uuid_of).collect();
    let wanted: Vec<String> = order.iter().map(|c| c.uuid.clone()).collect();
    assert_eq!(listed, wanted, "newest first");
    for (contact, old) in all.iter().zip(&order) {
        let what = old.name;
        assert_eq!(contact["name"], old.name, "{what}");
        assert_eq!(contact["phoneNumber"], old.identifier.as_str(), "{what}");
        assert_eq!(contact["source"], old.source, "{what}");
        assert_eq!(contact["createdAt"], iso(old.created_at), "{what}");
        assert_eq!(contact["tags"], json!(old.tags), "{what}: in the order set");
        let mut fields = json!({"Plan": old.plan});
        if let Some(score) = old.score {
            fields["Score"] = json!(score.to_string());
        }
        assert_eq!(contact["customFields"], fields, "{what}");
        let team = if old.support { SUPPORT } else { GENERAL };
        assert_eq!(contact["team"]["uuid"], team, "{what}");
        let channel = if old.source == "whatsapp" {
            WHATSAPP
        } else {
            TELEGRAM
        };
        assert_eq!(contact["channel"]["uuid"], channel, "{what}");
        assert_eq!(
            contact["closedAt"],
            old.closed_at.map_or(Value::Null, |t| json!(iso(t))),
            "{what}"
        );
        assert_eq!(
            contact["bsuid"],
            old.bsuid.as_deref().map_or(Value::Null, |b| json!(b)),
            "{what}"
        );
        assert_eq!(
            contact["assignedUser"],
            if old.assigned {
                json!("Owner@Legacy.example")
            } else {
                Value::Null
            },
            "{what}"
        );
        let one = api.get(&format!("/contacts/{}", old.uuid)).await;
        one.assert_status(200);
        assert_eq!(one.body["contact"], json!([contact]), "{what}");
    }
    let total = all.len();
    assert_listing(&api, "", &all.iter().collect::<Vec<_>>()).await;
    assert_eq!(total, 25);

    // Filters, each compared with the brute force over the listing.
    let tagged = |names: &[&str], any: bool| {
        let names: Vec<String> = names.iter().map(|n| n.to_lowercase()).collect();
        let has = move |c: &Value, name: &String| {
            c["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .any(|t| t.as_str().expect("tag").to_lowercase() == *name)
        };
        all.iter()
            .filter(|c| {
                if any {
                    names.iter().any(|n| has(c, n))
                } else {
                    names.iter().all(|n| has(c, n))
                }
            })
            .collect::<Vec<_>>()
    };
    for (query, expected) in [
        ("tags=lead", tagged(&["Lead"], false)),
        ("tags=VIP", tagged(&["VIP"], false)),
        ("tags=COLD", tagged(&["Cold"], false)),
        ("tags=vip,lead", tagged(&["VIP", "Lead"], false)),
        (
            "tags=cold,lead&tags_mode=any",
            tagged(&["Cold", "Lead"], true),
        ),
    ] {
        assert!(!expected.is_empty(), "{query} matches some");
        assert_listing(&api, query, &expected).await;
    }
    for (query, expected) in [
        (
            format!("team_uuid={SUPPORT}"),
            all.iter()
                .filter(|c| c["team"]["uuid"] == SUPPORT)
                .collect::<Vec<_>>(),
        ),
        (
            "source=telegram".to_owned(),
            all.iter().filter(|c| c["source"] == "telegram").collect(),
        ),
        (
            format!("source=whatsapp&team_uuid={GENERAL}"),
            all.iter()
                .filter(|c| c["source"] == "whatsapp" && c["team"]["uuid"] == GENERAL)
                .collect(),
        ),
    ] {
        assert!(!expected.is_empty(), "{query} matches some");
        assert_listing(&api, &query, &expected).await;
    }
    // q: by part of the name, and by phone digits.
    for q in [
        "lovelace",
        "ADA",
        "núñ",
        "ÅSA",
        "öberg",
        "an",
        "la",
        "333 007",
        "+39 333 01",
        "1012",
        "tg_user",
        "zola",
        "son",
        "zzz",
    ] {
        assert_search(&api, &all, q, PagesSaid::Everywhere).await;
    }
    let finds = |q: &str| all.iter().any(|c| q_matches(q, c));
    assert!(
        finds("lovelace") && finds("333 007") && finds("núñ") && !finds("tg_user"),
        "the searches find something (not the Telegram usernames: no phone number)"
    );

    // Lookups and messages of the old rows.
    let found = api.get("/contacts/bsuid/BS.legacy.6").await;
    found.assert_status(200);
    assert_eq!(found.body["contact"]["uuid"], legacy[6].uuid.as_str());
    let found = api
        .get(&format!(
            "/contacts/phone/{}",
            digits(&legacy[2].identifier)
        ))
        .await;
    found.assert_status(200);
    assert_eq!(found.body["contact"]["uuid"], legacy[2].uuid.as_str());
    let messages = api
        .get(&format!("/contacts/{}/messages", legacy[0].uuid))
        .await;
    messages.assert_status(200);
    assert_eq!(
        messages.body["messages"][0]["text"], "Met at the conference",
        "{}",
        messages.text
    );

    // The upgraded rows change like new ones: renamed, retagged, deleted,
    // and a new contact comes first with the next sequence number.
    api.patch(
        &format!("/contacts/{}", legacy[0].uuid),
        json!({"name": "Ada King", "tags": ["Cold"]}),
    )
    .await
    .assert_status(200);
    api.delete(&format!("/contacts/{}", legacy[1].uuid))
        .await
        .assert_status(200);
    api.get(&format!("/contacts/{}", legacy[1].uuid))
        .await
        .assert_error(404, "not_found");
    let newest = api
        .create_contact(
            json!({"identifier": "+39 333 999 0000", "source": "whatsapp", "name": "Newcomer",
                       "tags": ["lead"], "team_uuid": SUPPORT}),
        )
        .await;
    let all = api.every_contact("/contacts").await;
    assert_eq!(all[0], newest, "the new contact is the newest");
    assert_eq!(all.len(), 25);
    for q in ["lovelace", "king", "hopper", "grace", "newcomer", "333 999"] {
        assert_search(&api, &all, q, PagesSaid::Everywhere).await;
    }
    assert_eq!(
        all.iter().filter(|c| q_matches("king", c)).count(),
        1,
        "Ada is found by her new name"
    );

    // Every counter the upgrade computed, exactly.
    let mut padded = 0;
    for filter in [
        Counted::All,
        Counted::Tag("Lead".to_owned()),
        Counted::Tag("VIP".to_owned()),
        Counted::Tag("Cold".to_owned()),
        Counted::Team(GENERAL.to_owned()),
        Counted::Team(SUPPORT.to_owned()),
        Counted::Source("whatsapp"),
        Counted::Source("telegram"),
    ] {
        assert_exact_total(&api, &filter, &mut padded).await;
    }
    let (status, log) = server.terminate();
    assert!(status.success(), "{status}\n{log}");

    // Every migration is recorded as sqlx would have, and running them
    // again finds nothing to do.
    let expected: Vec<(i64, bool, String)> = migration_files(backend)
        .into_iter()
        .map(|(version, text)| (version, true, sha384_hex(&text)))
        .collect();
    assert!(expected.len() >= 2, "{expected:?}");
    let recorded = recorded_migrations(backend, &url).await;
    let recorded_summary: Vec<(i64, bool, String)> = recorded
        .iter()
        .map(|(v, _, ok, sum)| (*v, *ok, sum.clone()))
        .collect();
    assert_eq!(recorded_summary, expected);
    assert_eq!(recorded[0].1, "init");
    admin(&["migrate"], &url);
    assert_eq!(recorded_migrations(backend, &url).await, recorded);
    let again = Server::start(&url, &[]);
    let listed = Caller::new(crate::fixtures::client(), &again.base, LEGACY_KEY)
        .get("/contacts")
        .await;
    listed.assert_status(200);
    assert_eq!(
        listed.body["contacts"][0]["name"],
        format!("Padding {padded}"),
        "the upgraded database, restarted, is as it was left"
    );
}

// ---------------------------------------------------------------------
// b. `q` finds what a brute-force substring match finds.

const SEARCH_NAMES: [&str; 50] = [
    "José Núñez",
    "JOSÉ NÚÑEZ",
    "josé núñez",
    "Jose Nunez",
    "ÅSA",
    "Åsa Berg",
    "åsa-maria",
    "Maria",
    "Mariana Ruiz",
    "Anna Maria",
    "María José",
    "MARIO Rossi",
    "Omar Sy",
    "Tamara",
    "Marc",
    "50% off",
    "100%_real",
    "under_score",
    "a_b",
    "a%b",
    "Back\\slash",
    "Conan \"The\" O'Brien",
    "O'Brien",
    "Zoë",
    "Ødegaard",
    "Straße",
    "STRASSE",
    "İstanbul",
    "Ελένη",
    "ΟΔΟΣ",
    "李小龍",
    "🙂 Smiley",
    "Agent 007",
    "555 12 Street",
    "Room 101",
    "Ma",
    "ma",
    "M",
    "Ab",
    "Élodie",
    "ÉLODIE",
    "Ünal",
    "Çelik",
    "Łukasz",
    "Dvořák",
    "Ñandú",
    "Spaced  Out",
    "+44 20",
    "(555) 12",
    "Ana-María de la Cruz",
];

const SEARCH_SUFFIXES: [&str; 4] = ["", " Jr", " de la Mar", " II"];

const SEARCHES: [&str; 62] = [
    "mar",
    "MAR",
    "Mari",
    "ARIA",
    "ria",
    "josé",
    "JOSÉ",
    "jose",
    "núñez",
    "ÑEZ",
    "åsa",
    "ÅSA",
    "Ås",
    "as",
    "ma",
    "jo",
    "é",
    "%",
    "_",
    "50%",
    "0%_",
    "%_r",
    "a_b",
    "a%b",
    "\\",
    "back\\",
    "o'b",
    "\"the\"",
    "straße",
    "STRASSE",
    "strasse",
    "ss",
    "İst",
    "ελένη",
    "ΕΛΈΝΗ",
    "οδος",
    "ΟΔΟΣ",
    "李小",
    "🙂",
    "007",
    "555 12",
    "555-12",
    "(555) 12",
    "+1 555",
    "555",
    "12",
    "7946",
    "20 7946 00",
    "333",
    "+44",
    "renamed",
    "  mar  ",
    "spaced  out",
    "zzz",
    "a",
    "r jr",
    " jr",
    "de la",
    "la mar",
    "e ii",
    "crowd",
    "1555",
];

fn search_phone(i: usize) -> (String, &'static str) {
    if i % 10 == 9 {
        return (format!("tg_{i}_555_12{i}"), "telegram");
    }
    let phone = match i % 4 {
        0 => format!("+1 (555) 12{i:03}"),
        1 => format!("+44 20 7946 {i:04}"),
        2 => format!("555-{:02}-{i:04}", i % 13),
        _ => format!("+39 333 {:07}", i * 7919),
    };
    (phone, "whatsapp")
}

/// Compares every search with the brute force over the whole listing.
async fn assert_every_search(api: &Caller) {
    let all = api.every_contact("/contacts").await;
    for q in SEARCHES {
        assert_search(api, &all, q, PagesSaid::OnNumberedPages).await;
    }
    // With other filters: the search is checked on each contact they find.
    let tagged =
        |c: &Value, tag: &str| c["tags"].as_array().expect("tags").iter().any(|t| t == tag);
    for q in ["mar", "555 12", "josé", "a_b", "ma", "12", "crowd"] {
        for (filter, expected) in [
            (
                "tags=vip".to_owned(),
                all.iter()
                    .filter(|c| q_matches(q, c) && tagged(c, "vip"))
                    .collect::<Vec<_>>(),
            ),
            (
                "tags=vip,lead".to_owned(),
                all.iter()
                    .filter(|c| q_matches(q, c) && tagged(c, "vip") && tagged(c, "lead"))
                    .collect(),
            ),
            (
                "tags=vip,lead&tags_mode=any".to_owned(),
                all.iter()
                    .filter(|c| q_matches(q, c) && (tagged(c, "vip") || tagged(c, "lead")))
                    .collect(),
            ),
            (
                "source=telegram".to_owned(),
                all.iter()
                    .filter(|c| q_matches(q, c) && c["source"] == "telegram")
                    .collect(),
            ),
        ] {
            let query = format!("q={}&{filter}", encode(q));
            assert_listing_saying(api, &query, &expected, PagesSaid::OnNumberedPages).await;
        }
    }
    let found = |q: &str| all.iter().filter(|c| q_matches(q, c)).count();
    // The searches are worth something: some find many (over several
    // pages), some few, some none.
    assert!(found("mar") > 40, "{}", found("mar"));
    assert!(found("555 12") > 20, "{}", found("555 12"));
    assert!(found("a_b") >= 1 && found("a_b") < 10, "{}", found("a_b"));
    assert_eq!(found("zzz"), 0);
}

async fn q_finds_what_brute_force_finds(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let api = app.as_key(&app.key);
    api.post(
        "/channels",
        json!({"title": "Telegram", "type": "telegram", "main": true}),
    )
    .await
    .assert_status(200);
    for tag in ["vip", "lead"] {
        api.post("/tags", json!({"name": tag}))
            .await
            .assert_status(200);
    }
    let mut created = Vec::new();
    for i in 0..150 {
        let name = format!(
            "{}{}",
            SEARCH_NAMES[i % SEARCH_NAMES.len()],
            SEARCH_SUFFIXES[i / SEARCH_NAMES.len()]
        );
        let (identifier, source) = search_phone(i);
        let tags = match i % 6 {
            0 => json!(["vip"]),
            1 | 4 => json!(["lead"]),
            3 => json!(["vip", "lead"]),
            _ => json!([]),
        };
        created.push(
            api.create_contact(
                json!({"identifier": identifier, "source": source, "name": name,
                              "tags": tags}),
            )
            .await,
        );
    }
    // Renamed: into names that other searches find, and out of them.
    for i in (0..150).step_by(11) {
        let name = match i % 3 {
            0 => format!("Renamed {}", SEARCH_NAMES[(i * 7 + 3) % SEARCH_NAMES.len()]),
            1 => SEARCH_NAMES[(i + 5) % SEARCH_NAMES.len()].to_uppercase(),
            _ => format!("renamed {i}"),
        };
        let reply = api
            .patch(
                &format!("/contacts/{}", uuid_of(&created[i])),
                json!({"name": name}),
            )
            .await;
        reply.assert_status(200);
        assert_eq!(reply.contact()["name"], name.as_str());
    }
    // Renamed twice, the second time back to the first name.
    for i in [4, 8] {
        let path = format!("/contacts/{}", uuid_of(&created[i]));
        let original = created[i]["name"].clone();
        api.patch(&path, json!({"name": "Interim Name"}))
            .await
            .assert_status(200);
        api.patch(&path, json!({"name": original}))
            .await
            .assert_status(200);
    }
    for i in (3..150).step_by(13) {
        api.delete(&format!("/contacts/{}", uuid_of(&created[i])))
            .await
            .assert_status(200);
    }
    assert_every_search(&api).await;

    // Another account with thousands of names and numbers that the same
    // searches find: on SQLite the search then walks the newest-first
    // order instead of looking the candidates up. None of them is ours.
    let crowd = app.create_account("Crowd").await;
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("crowd.ndjson");
    let lines: String = (0..2100)
        .map(|i| {
            format!(
                "{}\n",
                json!({"identifier": format!("+1 555 12{i:05}"), "source": "whatsapp",
                       "name": format!("Maria José Crowd {i}")})
            )
        })
        .collect();
    std::fs::write(&file, lines).expect("the crowd's file");
    let output = admin_output(
        &[
            "import",
            file.to_str().expect("a UTF-8 path"),
            "--account",
            "Crowd",
        ],
        &app.database_url,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let crowd_listing = app.as_key(&crowd).get("/contacts?q=crowd").await;
    crowd_listing.assert_status(200);
    assert_eq!(crowd_listing.body["meta"]["pages"], 105);
    assert_every_search(&api).await;
}

/// Makes `tags` and a team "Support"; answers the team's uuid.
async fn tags_and_a_team(api: &Caller, tags: &[&str]) -> String {
    for tag in tags {
        api.post("/tags", json!({"name": tag}))
            .await
            .assert_status(200);
    }
    let support = api.post("/teams", json!({"name": "Support"})).await;
    support.assert_status(200);
    uuid_of(&support.body["team"])
}

/// A search asked for again answers from what it found before only while
/// nothing it could find changed (docs/storage.md, "`q`: substrings
/// through trigrams"): after each kind of change — made by this server or
/// by another process on the same database — every search is compared
/// again with the brute force, on every page and along a cursor walk.
async fn a_search_follows_every_change_after_it_was_asked(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let api = app.as_key(&app.key);
    let support = tags_and_a_team(&api, &["lead"]).await;
    let mut created = Vec::new();
    for n in 0..45 {
        let name = match n % 3 {
            0 => format!("Anna Zanetti {n}"),
            1 => format!("Zanettini {n}"),
            _ => format!("Someone Else {n}"),
        };
        let mut body = json!({"identifier": format!("+39 02 7700 {n:04}"),
                              "source": "whatsapp", "name": name, "tags": ["lead"]});
        if n % 2 == 0 {
            body["team_uuid"] = json!(support);
        }
        let contact = api.create_contact(body).await;
        created.push(uuid_of(&contact));
    }
    let searches = ["zanetti", "anett", "zanettini", "7700 001"];
    let check = async |step: &str| {
        let all = api.every_contact("/contacts").await;
        for q in searches {
            println!("after {step}: q={q}");
            assert_search(&api, &all, q, PagesSaid::OnNumberedPages).await;
            let in_team: Vec<&Value> = all
                .iter()
                .filter(|c| q_matches(q, c) && c["team"]["uuid"] == support.as_str())
                .collect();
            let query = format!("q={}&team_uuid={support}", encode(q));
            assert_listing_saying(&api, &query, &in_team, PagesSaid::OnNumberedPages).await;
        }
    };
    check("the creates").await;
    // Asked again with nothing changed: the same answers.
    check("nothing").await;

    let general = api.get("/teams").await;
    general.assert_status(200);
    let general = uuid_of(&general.body["teams"][0]);
    let path = |k: usize| format!("/contacts/{}", created[k]);
    let changes = [
        ("a rename out of the searches", 0, json!({"name": "Nobody"})),
        ("a rename into them", 2, json!({"name": "Marco Zanetti"})),
        ("a rename within them", 1, json!({"name": "Zanetti Anna"})),
        ("a team change", 4, json!({"team_uuid": general})),
        ("a note", 6, json!({"note": "called back"})),
    ];
    for (step, k, change) in changes {
        api.patch(&path(k), change).await.assert_status(200);
        check(step).await;
    }
    api.delete(&path(9)).await.assert_status(200);
    check("a delete").await;
    api.create_contact(
        json!({"identifier": "+39 02 7700 9001", "source": "whatsapp",
                              "name": "Newest Zanetti", "team_uuid": support}),
    )
    .await;
    check("a create").await;

    // Another process: an import that adds one contact and renames another
    // (`--upsert`), beside the running server.
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("more.ndjson");
    let lines = [
        json!({"identifier": "+39 02 7700 9002", "source": "whatsapp",
               "name": "Imported Zanetti"}),
        json!({"identifier": "+39 02 7700 0004", "source": "whatsapp",
               "name": "Renamed Elsewhere"}),
    ]
    .map(|line| format!("{line}\n"))
    .concat();
    std::fs::write(&file, lines).expect("the import's file");
    let output = admin_output(
        &["import", file.to_str().expect("a UTF-8 path"), "--upsert"],
        &app.database_url,
    );
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    check("another process's import").await;

    api.delete("/tags/lead").await.assert_status(200);
    check("a tag deleted").await;
}

/// SPEC §4: `meta.pages` = ceil(matching / 20) on every page, also of a
/// cursor walk — as the unfiltered walk (and every other filter) says it on
/// each of its pages, so must a search.
async fn a_search_says_its_pages_along_a_cursor_walk(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let api = app.as_key(&app.key);
    for i in 0..45 {
        api.create_contact(
            json!({"identifier": format!("+1 555 01{i:02}"), "source": "whatsapp",
                          "name": format!("Maria {i:02}")}),
        )
        .await;
    }
    let all = api.every_contact("/contacts").await;
    assert_eq!(all.len(), 45);
    // Every page of these walks says 3 pages.
    assert_listing(&api, "", &all.iter().collect::<Vec<_>>()).await;
    for q in ["maria", "ma", "555 01"] {
        assert_search(&api, &all, q, PagesSaid::Everywhere).await;
    }
}

// ---------------------------------------------------------------------
// c. Counters stay exact.

/// splitmix64: a small generator with a fixed seed, so that every run
/// makes the same changes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % u64::try_from(n).expect("small")).expect("small")
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// What the test expects a contact to be.
#[derive(Debug, Clone, PartialEq)]
struct Expected {
    uuid: String,
    source: String,
    channel: String,
    identifier: String,
    team: String,
    tags: Vec<String>,
}

/// The account's settings as the test made them.
struct Setup {
    tags: Vec<String>,
    /// `(name, uuid)`; the default first.
    teams: Vec<(String, String)>,
    /// The channels contacts may be made on: `(source, uuid, main)`.
    channels: Vec<(&'static str, String, bool)>,
}

/// A random tag list: canonical names, and how to send them (in random
/// case, sometimes twice, sometimes as one comma-separated string).
fn random_tags(rng: &mut Rng, setup: &Setup) -> (Vec<String>, Value) {
    let mut canonical: Vec<String> = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..rng.below(4) {
        let tag = rng.pick(&setup.tags).clone();
        let spelled = match rng.below(3) {
            0 => tag.to_uppercase(),
            1 => tag.to_lowercase(),
            _ => tag.clone(),
        };
        if !canonical.contains(&tag) {
            canonical.push(tag);
        }
        sent.push(spelled);
    }
    let body = if rng.below(4) == 0 {
        json!(sent.join(", "))
    } else {
        json!(sent)
    };
    (canonical, body)
}

/// Asserts that the listing holds exactly the expected contacts.
async fn assert_model(api: &Caller, model: &[Expected]) {
    let all = api.every_contact("/contacts").await;
    let mut listed: Vec<Expected> = all
        .iter()
        .map(|c| Expected {
            uuid: uuid_of(c),
            source: c["source"].as_str().expect("source").to_owned(),
            channel: uuid_of(&c["channel"]),
            identifier: c["phoneNumber"].as_str().expect("phoneNumber").to_owned(),
            team: c["team"]["uuid"].as_str().expect("a team").to_owned(),
            tags: c["tags"]
                .as_array()
                .expect("tags")
                .iter()
                .map(|t| t.as_str().expect("tag").to_owned())
                .collect(),
        })
        .collect();
    let mut wanted = model.to_vec();
    listed.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    wanted.sort_by(|a, b| a.uuid.cmp(&b.uuid));
    assert_eq!(listed.len(), wanted.len(), "how many contacts there are");
    for (listed, wanted) in listed.iter().zip(&wanted) {
        assert_eq!(listed, wanted);
    }
}

/// Every counted filter of the setup, and a few combined ones, listed as
/// the brute force over the whole listing says.
async fn assert_filters(api: &Caller, setup: &Setup) {
    let all = api.every_contact("/contacts").await;
    for filter in counted_filters(setup) {
        let expected: Vec<&Value> = all.iter().filter(|c| filter.matches(c)).collect();
        assert_listing(api, &filter.query(), &expected).await;
    }
    let has = |c: &Value, tag: &str| Counted::Tag(tag.to_owned()).matches(c);
    let (a, b) = (&setup.tags[0], &setup.tags[1]);
    let support = &setup.teams[1].1;
    let combined: [(String, Vec<&Value>); 4] = [
        (
            format!("tags={},{}", encode(a), encode(b)),
            all.iter().filter(|c| has(c, a) && has(c, b)).collect(),
        ),
        (
            format!("tags={},{}&tags_mode=any", encode(a), encode(b)),
            all.iter().filter(|c| has(c, a) || has(c, b)).collect(),
        ),
        (
            format!("source=whatsapp&team_uuid={support}"),
            all.iter()
                .filter(|c| c["source"] == "whatsapp" && c["team"]["uuid"] == support.as_str())
                .collect(),
        ),
        (
            format!("tags={}&source=telegram", encode(b)),
            all.iter()
                .filter(|c| has(c, b) && c["source"] == "telegram")
                .collect(),
        ),
    ];
    for (query, expected) in combined {
        assert_listing(api, &query, &expected).await;
    }
}

/// Whether new contacts can still be made on the contact's channel.
fn active(setup: &Setup, contact: &Expected) -> bool {
    setup.channels.iter().any(|(_, c, _)| *c == contact.channel)
}

fn counted_filters(setup: &Setup) -> Vec<Counted> {
    let mut filters = vec![Counted::All];
    filters.extend(setup.tags.iter().map(|t| Counted::Tag(t.clone())));
    filters.extend(
        setup
            .teams
            .iter()
            .map(|(_, uuid)| Counted::Team(uuid.clone())),
    );
    filters.extend(
        ["whatsapp", "telegram", "facebook", "instagram"]
            .into_iter()
            .map(Counted::Source),
    );
    filters
}

async fn counters_stay_exact(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let api = app.as_key(&app.key);
    let mut setup = Setup {
        tags: Vec::new(),
        teams: Vec::new(),
        channels: Vec::new(),
    };
    for tag in ["alpha", "Beta", "gamma", "Delta", "epsilon"] {
        api.post("/tags", json!({"name": tag}))
            .await
            .assert_status(200);
        setup.tags.push(tag.to_owned());
    }
    let teams = api.get("/teams").await;
    teams.assert_status(200);
    let general = &teams.body["teams"][0];
    assert_eq!(general["default"], true, "{}", teams.text);
    setup.teams.push(("General".to_owned(), uuid_of(general)));
    for name in ["Support", "Sales", "Night shift"] {
        let reply = api.post("/teams", json!({"name": name})).await;
        reply.assert_status(200);
        setup
            .teams
            .push((name.to_owned(), uuid_of(&reply.body["team"])));
    }
    let channels = api.get("/channels").await;
    channels.assert_status(200);
    setup
        .channels
        .push(("whatsapp", uuid_of(&channels.body["channels"][0]), true));
    for (title, source, main) in [
        ("WA 2", "whatsapp", false),
        ("TG", "telegram", true),
        ("FB", "facebook", true),
        ("IG", "instagram", true),
    ] {
        let reply = api
            .post(
                "/channels",
                json!({"title": title, "type": source, "main": main}),
            )
            .await;
        reply.assert_status(200);
        setup
            .channels
            .push((source, uuid_of(&reply.body["channel"]), main));
    }
    let second_whatsapp = setup.channels[1].1.clone();

    let mut rng = Rng(0x5EED_B311_B00C);
    let mut model: Vec<Expected> = Vec::new();
    let mut numbers = 0usize;
    for step in 0..260 {
        match step {
            100 => {
                // A discarded channel's contacts stay, and stay counted.
                api.patch(
                    &format!("/channels/{second_whatsapp}"),
                    json!({"discarded": true}),
                )
                .await
                .assert_status(200);
                setup
                    .channels
                    .retain(|(_, uuid, _)| *uuid != second_whatsapp);
                assert_model(&api, &model).await;
                assert_filters(&api, &setup).await;
            }
            130 => {
                api.delete("/tags/gamma").await.assert_status(200);
                setup.tags.retain(|t| t != "gamma");
                for contact in &mut model {
                    contact.tags.retain(|t| t != "gamma");
                }
                let gone = api.get("/contacts?tags=gamma").await;
                gone.assert_status(200);
                assert_eq!(gone.body["contacts"], json!([]));
                assert_eq!(gone.body["meta"]["pages"], 1);
                assert_model(&api, &model).await;
                assert_filters(&api, &setup).await;
            }
            160 => {
                api.patch("/tags/Delta", json!({"name": "Delta Force"}))
                    .await
                    .assert_status(200);
                for tag in setup
                    .tags
                    .iter_mut()
                    .chain(model.iter_mut().flat_map(|c| c.tags.iter_mut()))
                {
                    if tag == "Delta" {
                        *tag = "Delta Force".to_owned();
                    }
                }
            }
            190 => {
                let (night, sales) = (setup.teams[3].1.clone(), setup.teams[2].1.clone());
                if !model.iter().any(|c| c.team == night) {
                    numbers += 1;
                    let identifier = format!("+1 202 555 {numbers:04}");
                    let contact = api
                        .create_contact(json!({"identifier": identifier, "source": "whatsapp",
                                       "name": "Night owl", "team_uuid": night}))
                        .await;
                    model.push(Expected {
                        uuid: uuid_of(&contact),
                        source: "whatsapp".to_owned(),
                        channel: setup.channels[0].1.clone(),
                        identifier,
                        team: night.clone(),
                        tags: Vec::new(),
                    });
                }
                api.delete(&format!("/teams/{night}"))
                    .await
                    .assert_error(409, "team_in_use");
                for contact in model.iter_mut().filter(|c| c.team == night) {
                    api.patch(
                        &format!("/contacts/{}", contact.uuid),
                        json!({"team_uuid": sales}),
                    )
                    .await
                    .assert_status(200);
                    contact.team = sales.clone();
                }
                api.delete(&format!("/teams/{night}"))
                    .await
                    .assert_status(200);
                setup.teams.retain(|(_, uuid)| *uuid != night);
                let gone = api.get(&format!("/contacts?team_uuid={night}")).await;
                gone.assert_status(200);
                assert_eq!(gone.body["contacts"], json!([]));
                assert_model(&api, &model).await;
                assert_filters(&api, &setup).await;
            }
            220 => {
                // A new tag of a deleted one's name starts from nothing.
                api.post("/tags", json!({"name": "gamma"}))
                    .await
                    .assert_status(200);
                setup.tags.push("gamma".to_owned());
                let fresh = api.get("/contacts?tags=gamma").await;
                fresh.assert_status(200);
                assert_eq!(fresh.body["contacts"], json!([]));
            }
            _ => {}
        }
        let roll = rng.below(100);
        match roll {
            // Create.
            0..45 => {
                let (source, channel, main) = rng.pick(&setup.channels).clone();
                numbers += 1;
                let identifier = if source == "whatsapp" {
                    format!("+1 202 555 {numbers:04}")
                } else {
                    format!("user.{numbers}")
                };
                let (tags, tags_body) = random_tags(&mut rng, &setup);
                let mut body = json!({
                    "identifier": identifier,
                    "source": source,
                    "name": format!("Step {step}"),
                    "tags": tags_body,
                });
                // The main channel of its type may go unnamed.
                if !main || rng.below(2) == 0 {
                    body["channel_uuid"] = json!(channel);
                }
                let team = if rng.below(4) == 0 {
                    setup.teams[0].1.clone()
                } else {
                    let team = rng.pick(&setup.teams).1.clone();
                    body["team_uuid"] = json!(team);
                    team
                };
                let contact = api.create_contact(body).await;
                assert_eq!(contact["tags"], json!(tags));
                assert_eq!(contact["team"]["uuid"], team.as_str());
                assert_eq!(contact["channel"]["uuid"], channel.as_str());
                model.push(Expected {
                    uuid: uuid_of(&contact),
                    source: source.to_owned(),
                    channel,
                    identifier,
                    team,
                    tags,
                });
            }
            // Change the tags (45..60), the team (60..70), or both and
            // the name (70..75).
            45..75 if !model.is_empty() => {
                let at = rng.below(model.len());
                let mut body = json!({});
                let mut changed = model[at].clone();
                if !(60..70).contains(&roll) {
                    let (tags, tags_body) = random_tags(&mut rng, &setup);
                    body["tags"] = tags_body;
                    changed.tags = tags;
                }
                if roll >= 60 {
                    let team = rng.pick(&setup.teams).1.clone();
                    body["team_uuid"] = json!(team);
                    changed.team = team;
                }
                if roll >= 70 {
                    body["name"] = json!(format!("Renamed at {step}"));
                }
                let reply = api
                    .patch(&format!("/contacts/{}", changed.uuid), body)
                    .await;
                reply.assert_status(200);
                assert_eq!(reply.contact()["tags"], json!(changed.tags));
                model[at] = changed;
            }
            // Delete.
            75..88 if !model.is_empty() => {
                let gone = model.swap_remove(rng.below(model.len()));
                api.delete(&format!("/contacts/{}", gone.uuid))
                    .await
                    .assert_status(200);
            }
            // A duplicate on its channel (a WhatsApp number spelt
            // otherwise): refused, whatever else it says.
            88..93 if model.iter().any(|c| active(&setup, c)) => {
                let candidates: Vec<&Expected> =
                    model.iter().filter(|c| active(&setup, c)).collect();
                let existing = *rng.pick(&candidates);
                let identifier = if existing.source == "whatsapp" {
                    digits(&existing.identifier)
                } else {
                    existing.identifier.clone()
                };
                let (_, tags) = random_tags(&mut rng, &setup);
                let team = rng.pick(&setup.teams).1.clone();
                api.post(
                    "/contacts",
                    json!({"identifier": identifier, "source": existing.source,
                           "channel_uuid": existing.channel, "name": "Duplicate",
                           "tags": tags, "team_uuid": team}),
                )
                .await
                .assert_error(409, "contact_exists");
            }
            // Refused changes change nothing.
            93..100 => {
                let unknown_tag = json!({"identifier": "+1 202 555 9999", "source": "whatsapp",
                                         "name": "Nope", "tags": [setup.tags[0].clone(), "no such tag"]});
                api.post("/contacts", unknown_tag)
                    .await
                    .assert_error(422, "unknown_tag");
                if let Some(target) = model.first() {
                    api.patch(
                        &format!("/contacts/{}", target.uuid),
                        json!({"tags": [], "team_uuid": "00000000000000000000000000000000"}),
                    )
                    .await
                    .assert_status(422);
                }
            }
            _ => {}
        }
    }
    assert!(model.len() > 60, "{} contacts", model.len());
    assert_model(&api, &model).await;
    assert_filters(&api, &setup).await;

    // A burst of writes at once, sharing commits: new contacts, duplicates
    // (each refused alone, in its own savepoint), contacts given other tags
    // and teams, and deletions, each of other contacts.
    let mut order: Vec<usize> = (0..model.len()).collect();
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i + 1));
    }
    let (changed, rest) = order.split_at(12);
    let (deleted, rest) = rest.split_at(10);
    let twins: Vec<&Expected> = rest
        .iter()
        .map(|&i| &model[i])
        .filter(|c| active(&setup, c))
        .take(10)
        .collect();
    assert!(twins.len() >= 5, "{} contacts to duplicate", twins.len());
    let api = &api;
    let creates: Vec<_> = (0..20)
        .map(|i| {
            let (source, channel, _) = rng.pick(&setup.channels).clone();
            let (tags, tags_body) = random_tags(&mut rng, &setup);
            let team = rng.pick(&setup.teams).1.clone();
            let identifier = if source == "whatsapp" {
                format!("+1 303 555 {i:04}")
            } else {
                format!("burst.{i}")
            };
            let body = json!({"identifier": identifier, "source": source, "channel_uuid": channel,
                              "name": format!("Burst {i}"), "tags": tags_body, "team_uuid": team});
            let expected = Expected {
                uuid: String::new(),
                source: source.to_owned(),
                channel,
                identifier,
                team,
                tags,
            };
            async move { (expected, api.post("/contacts", body).await) }
        })
        .collect();
    let duplicates: Vec<_> = twins
        .iter()
        .map(|twin| {
            let (_, tags) = random_tags(&mut rng, &setup);
            let body = json!({"identifier": twin.identifier, "source": twin.source,
                              "channel_uuid": twin.channel, "name": "Twin", "tags": tags});
            async move { api.post("/contacts", body).await }
        })
        .collect();
    let patches: Vec<_> = changed
        .iter()
        .map(|&i| {
            let mut expected = model[i].clone();
            let (tags, tags_body) = random_tags(&mut rng, &setup);
            let team = rng.pick(&setup.teams).1.clone();
            expected.tags = tags;
            expected.team = team.clone();
            let path = format!("/contacts/{}", expected.uuid);
            let body = json!({"tags": tags_body, "team_uuid": team});
            async move { (expected, api.patch(&path, body).await) }
        })
        .collect();
    let deletions: Vec<_> = deleted
        .iter()
        .map(|&i| {
            let path = format!("/contacts/{}", model[i].uuid);
            async move { api.delete(&path).await }
        })
        .collect();
    let (created, refused, patched, removed) = futures::join!(
        futures::future::join_all(creates),
        futures::future::join_all(duplicates),
        futures::future::join_all(patches),
        futures::future::join_all(deletions),
    );
    for reply in refused {
        reply.assert_error(409, "contact_exists");
    }
    for reply in removed {
        reply.assert_status(200);
    }
    for (expected, reply) in patched {
        reply.assert_status(200);
        let at = model
            .iter()
            .position(|c| c.uuid == expected.uuid)
            .expect("a contact of the model");
        model[at] = expected;
    }
    let gone: BTreeSet<String> = deleted.iter().map(|&i| model[i].uuid.clone()).collect();
    model.retain(|c| !gone.contains(&c.uuid));
    for (mut expected, reply) in created {
        reply.assert_status(200);
        assert_eq!(reply.contact()["tags"], json!(expected.tags));
        expected.uuid = uuid_of(reply.contact());
        model.push(expected);
    }
    assert_model(api, &model).await;
    assert_filters(api, &setup).await;
    let mut padded = 0;
    for filter in counted_filters(&setup) {
        assert_exact_total(api, &filter, &mut padded).await;
    }
}

// ---------------------------------------------------------------------
// d. Numbered pages follow every change.

/// Asserts that `page=3` and `page=4` of the listing (asked for in this
/// order, twice, so that the second time each starts from where the server
/// remembered it begins) are those pages of the cursor walk, which never
/// uses the remembered starts, and say how many pages there are.
async fn assert_deep_pages(api: &Caller, query: &str) {
    let all = uuids(&api.every_contact(&listing_path(query, None)).await);
    let pages = pages_for(all.len());
    for page in [3, 4, 3, 4, 2] {
        let reply = api.get(&listing_path(query, Some(page))).await;
        reply.assert_status(200);
        let from = (usize::try_from(page).expect("small") - 1) * PAGE_SIZE;
        let from = from.min(all.len());
        let to = (from + PAGE_SIZE).min(all.len());
        assert_eq!(
            uuids(contacts_of(&reply.body)),
            all[from..to],
            "{query}: page={page}"
        );
        assert_eq!(reply.body["meta"]["pages"], pages, "{query}: page={page}");
    }
}

/// `page=N` starts where the server remembers the page begins
/// (docs/storage.md, "Numbered pages"): every kind of change before it —
/// a contact created, deleted, tagged, untagged or moved to another team,
/// a tag deleted — moves the pages after it at once.
async fn numbered_pages_follow_every_change(backend: Backend) {
    let app = TestApp::spawn_with(backend, |s| s.rate_limit_rps = 0).await;
    let api = app.as_key(&app.key);
    let support = tags_and_a_team(&api, &["lead", "hot"]).await;
    let mut created = Vec::new();
    for n in 0..90 {
        let tags = if n % 3 == 0 {
            json!([])
        } else {
            json!(["lead"])
        };
        let contact = api
            .create_contact(json!({"identifier": format!("+1 202 555 {n:04}"),
                                   "source": "whatsapp", "name": format!("Number {n}"),
                                   "tags": tags, "team_uuid": support}))
            .await;
        created.push(uuid_of(&contact));
    }
    let listings = [
        String::new(),
        "tags=lead".to_owned(),
        format!("team_uuid={support}"),
        "source=whatsapp".to_owned(),
        "tags=lead,hot&tags_mode=any".to_owned(),
    ];
    let check = async |step: &str| {
        for query in &listings {
            println!("after {step}: {query}");
            assert_deep_pages(&api, query).await;
        }
    };
    check("the creates").await;

    // The newest contacts are on page 1 of every listing.
    let newest = |k: usize| created[created.len() - 1 - k].clone();
    api.delete(&format!("/contacts/{}", newest(0)))
        .await
        .assert_status(200);
    check("a delete").await;
    let general = api.get("/teams").await;
    general.assert_status(200);
    let general = uuid_of(&general.body["teams"][0]);
    let changes = [
        ("a tag taken off", 1, json!({"tags": []})),
        ("a tag put on", 3, json!({"tags": ["lead"]})),
        ("one tag for another", 2, json!({"tags": ["hot"]})),
        ("a team change", 4, json!({"team_uuid": general})),
        // A change that moves nothing leaves every page where it was.
        ("a rename", 5, json!({"name": "Renamed"})),
    ];
    for (step, k, change) in changes {
        api.patch(&format!("/contacts/{}", newest(k)), change)
            .await
            .assert_status(200);
        check(step).await;
    }
    api.create_contact(
        json!({"identifier": "+1 202 555 9999", "source": "whatsapp",
                              "name": "Newest", "tags": ["lead"], "team_uuid": support}),
    )
    .await;
    check("a create").await;
    api.delete("/tags/lead").await.assert_status(200);
    check("the tag deleted").await;
}

on_both_backends!(
    a_database_of_the_first_schema_upgrades_in_place,
    q_finds_what_brute_force_finds,
    a_search_follows_every_change_after_it_was_asked,
    a_search_says_its_pages_along_a_cursor_walk,
    counters_stay_exact,
    numbered_pages_follow_every_change,
);
