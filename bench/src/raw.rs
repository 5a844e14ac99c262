//! This machine's raw limits for the work bellbook does, measured in the
//! same run on the core the server had: durable inserts of contacts as
//! bellbook stores them, one-row lookups, keyset pages, and static HTTP
//! answers of the sizes bellbook sends.

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, bail};
use rusqlite::{Connection, params};

use crate::load::{Script, Wrk};
use crate::process::Server;
use crate::progress;
use crate::seed::{PgDatabase, Population, Rng, Sampled, pg_connect, random_suffix};

/// The core the server runs on, and so the raw limits too.
pub const SERVER_CORE: usize = 0;

/// The server's own connection settings (src/store/sql/sqlite.rs).
const SQLITE_PRAGMAS: &str = "PRAGMA journal_mode = WAL;
     PRAGMA synchronous = FULL;
     PRAGMA foreign_keys = ON;
     PRAGMA temp_store = MEMORY;
     PRAGMA cache_size = -8192;";

/// What a contact needs to exist: an account, its channel and team, and
/// the tag and custom field the inserted contacts carry. Explicit ids, so
/// the inserts below can name them.
const MINIMUM_ROWS: &str = "
    INSERT INTO accounts (id, uuid, name, created_at)
        VALUES (1, '0190000000007000800000000000000a', 'Bench', 0);
    INSERT INTO channels (id, uuid, account_id, title, type, is_main, created_at)
        VALUES (1, '0190000000007000800000000000000c', 1, 'phone_number_1', 'whatsapp', 1, 0);
    INSERT INTO teams (id, uuid, account_id, name, is_default, created_at)
        VALUES (1, '0190000000007000800000000000000d', 1, 'General', 1, 0);
    INSERT INTO tags (id, account_id, name, name_key, created_at)
        VALUES (1, 1, 'lead', 'lead', 0), (2, 1, 'hot', 'hot', 0);
    INSERT INTO custom_fields (id, account_id, name, name_key, type, created_at)
        VALUES (1, 1, 'zipCode', 'zipcode', 'text', 0),
               (2, 1, 'orderNumber', 'ordernumber', 'number', 0);";

/// bellbook's own contact insert (src/store/sql/contacts.rs, insert_row).
const INSERT_CONTACT: &str = "INSERT INTO contacts (uuid, account_id, seq, name, name_key,
         identifier, identifier_digits, identifier_key, source, channel_id, team_id,
         assigned_user_id, avatar_url, blocked_at, bsuid, note, created_at, updated_at,
         conversation_uuid, closed_at, funnel_id, bot_id, bot_status, bot_version,
         bot_started_at, tag_ids, field_values)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
         $18, $19, $20, $21, $22, $23, $24, $25, $26, $27)
     ON CONFLICT (channel_id, identifier_key) DO NOTHING";
const INSERT_TAG: &str =
    "INSERT INTO contact_tags (contact_id, tag_id, created_at, seq) VALUES ($1, $2, $3, $4)";
const INSERT_VALUE: &str =
    "INSERT INTO contact_field_values (contact_id, field_id, value) VALUES ($1, $2, $3)";
const INSERT_SEARCH: &str =
    "INSERT INTO contacts_search (rowid, name_key, identifier_digits) VALUES ($1, $2, $3)";
const LOOKUP: &str = "SELECT * FROM contacts WHERE uuid = $1";
const KEYSET_PAGE: &str = "SELECT * FROM contacts WHERE account_id = $1
     AND (created_at, seq) < ($2, $3) ORDER BY created_at DESC, seq DESC LIMIT 20";

/// Contacts per transaction of the insert limits, SQLite and PostgreSQL.
const SQLITE_BATCHES: [u64; 3] = [100, 1, 20_000];
const POSTGRES_BATCHES: [u64; 2] = [100, 1];

/// A rate and the latency of one unit of work (a transaction, a request).
#[derive(Debug, Clone, Copy, Default)]
pub struct Rate {
    pub per_second: f64,
    pub p50_us: f64,
    pub p99_us: f64,
}

/// One raw limit: its repeats, and how the report names it.
#[derive(Debug, Clone)]
pub struct Limit {
    pub what: String,
    /// What is counted per second: "contacts", "lookups", "pages", "requests".
    pub unit: &'static str,
    /// What one latency sample is: "tx", "lookup", "page", "request".
    pub latency_of: &'static str,
    pub runs: Vec<Rate>,
}

impl Limit {
    /// The run with the median rate (the lower one of the middle two).
    pub fn median(&self) -> Rate {
        let mut runs = self.runs.clone();
        runs.sort_by(|a, b| a.per_second.total_cmp(&b.per_second));
        runs.get(runs.len().saturating_sub(1) / 2)
            .copied()
            .unwrap_or_default()
    }
}

/// Every raw limit measured, and which ones the request shapes are read
/// against (those of the backend under test).
#[derive(Debug, Default)]
pub struct Limits {
    pub all: Vec<Limit>,
    pub insert: Option<usize>,
    pub bulk_insert: Option<usize>,
    pub lookup: Option<usize>,
    pub page: Option<usize>,
    /// PostgreSQL's durability settings, which decide its insert limits.
    pub postgres_settings: Option<String>,
}

impl Limits {
    fn push(&mut self, limit: Limit) -> usize {
        self.all.push(limit);
        self.all.len() - 1
    }

    /// Adds a read limit; the last one of each kind is what shapes are
    /// read against (PostgreSQL's come after SQLite's).
    fn push_read(&mut self, read: Read, limit: Limit) {
        let index = Some(self.push(limit));
        match read {
            Read::Lookup => self.lookup = index,
            Read::Page => self.page = index,
        }
    }

    pub fn get(&self, index: Option<usize>) -> Option<&Limit> {
        index.and_then(|i| self.all.get(i))
    }
}

/// Where the raw limits run, and on what.
pub struct Plan<'a> {
    pub root: &'a Path,
    pub work: &'a Path,
    pub duration: Duration,
    pub repeat: u32,
    pub sample: &'a [Sampled],
    /// The seeded bench database when it is SQLite.
    pub sqlite_bench: Option<&'a Path>,
    /// The PostgreSQL admin URL and seeded bench database, with --postgres.
    pub postgres: Option<(&'a str, &'a str)>,
}

/// Measures every raw limit the plan allows.
pub fn measure(plan: &Plan<'_>, wrk: &Wrk, one_body: &[u8], page_body: &[u8]) -> Result<Limits> {
    let mut limits = Limits::default();
    let sqlite_migrations = migrations(plan.root, "sqlite")?;
    for per_tx in SQLITE_BATCHES {
        let what = format!("SQLite durable insert, {}", per_transaction(per_tx));
        let limit = measure_limit(plan, what, "contacts", "tx", |repeat| {
            let path = plan.work.join(format!("raw-insert-{per_tx}-{repeat}.db"));
            let rate = on_core(SERVER_CORE, || {
                sqlite_insert(&path, &sqlite_migrations, per_tx, plan.duration)
            });
            remove_sqlite(&path);
            rate
        })?;
        let index = limits.push(limit);
        match per_tx {
            100 => limits.insert = Some(index),
            20_000 => limits.bulk_insert = Some(index),
            _ => {}
        }
    }
    if let Some(bench) = plan.sqlite_bench {
        for (read, what, unit, per) in READS {
            let limit = measure_limit(plan, format!("SQLite {what}"), unit, per, |_| {
                on_core(SERVER_CORE, || {
                    sqlite_reads(bench, plan.sample, read, plan.duration)
                })
            })?;
            limits.push_read(read, limit);
        }
    }
    if let Some((admin, bench_url)) = plan.postgres {
        postgres_limits(plan, admin, bench_url, &mut limits)?;
    }
    http_limits(plan, wrk, one_body, page_body, &mut limits)?;
    Ok(limits)
}

/// The read limits: what each is called, counted and timed by.
const READS: [(Read, &str, &str, &str); 2] = [
    (
        Read::Lookup,
        "lookup by uuid, 1 read tx each",
        "lookups",
        "lookup",
    ),
    (
        Read::Page,
        "keyset page of 20, 1 read tx each",
        "pages",
        "page",
    ),
];

fn per_transaction(contacts: u64) -> String {
    match contacts {
        1 => "1 contact/tx".to_owned(),
        n => format!("{} contacts/tx", crate::report::count(n)),
    }
}

/// Runs one raw limit `plan.repeat` times (`run` is given the repeat's
/// number), reporting each run.
fn measure_limit(
    plan: &Plan<'_>,
    what: String,
    unit: &'static str,
    latency_of: &'static str,
    mut run: impl FnMut(u32) -> Result<Rate>,
) -> Result<Limit> {
    progress!("raw: {what}");
    let mut runs = Vec::new();
    for repeat in 0..plan.repeat {
        let rate = run(repeat)?;
        progress!(
            "  {what} run {}/{}: {:.0} {unit}/s, p50 {}/{latency_of}, p99 {}/{latency_of}",
            repeat + 1,
            plan.repeat,
            rate.per_second,
            crate::report::micros(rate.p50_us),
            crate::report::micros(rate.p99_us),
        );
        runs.push(rate);
    }
    Ok(Limit {
        what,
        unit,
        latency_of,
        runs,
    })
}

/// A backend's migrations, in file-name order, read from the repository.
fn migrations(root: &Path, backend: &str) -> Result<Vec<String>> {
    let dir = root.join("migrations").join(backend);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "sql"))
        .collect();
    files.sort();
    if files.is_empty() {
        bail!("no migrations in {}", dir.display());
    }
    files
        .iter()
        .map(|path| {
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
        })
        .collect()
}

/// Runs `work` on a thread of its own pinned to `core`.
fn on_core<T: Send>(core: usize, work: impl FnOnce() -> Result<T> + Send) -> Result<T> {
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                pin_current_thread(core)?;
                work()
            })
            .join()
            .map_err(|_| anyhow!("a raw limit measurement panicked"))?
    })
}

fn pin_current_thread(core: usize) -> Result<()> {
    // SAFETY: cpu_set_t is plain data for which all zeroes is the empty
    // set; CPU_SET and sched_setaffinity only read and write that set.
    let result = unsafe {
        let mut set: libc::cpu_set_t = std::mem::zeroed();
        libc::CPU_SET(core, &mut set);
        libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set)
    };
    if result != 0 {
        bail!(
            "cannot pin to core {core}: {}",
            std::io::Error::last_os_error()
        );
    }
    Ok(())
}

/// Repeats `unit` (one transaction, answering how many items it did) for
/// `duration`; one clock reading per unit both times it and ends the loop.
fn timed(duration: Duration, unit: impl FnMut() -> Result<u64>) -> Result<Rate> {
    Ok(Timed::run(duration, unit)?.rate())
}

/// What a timed loop did: units of work, for how long, each one's latency.
struct Timed {
    items: u64,
    elapsed: Duration,
    latencies_ns: Vec<u64>,
}

impl Timed {
    fn run(duration: Duration, mut unit: impl FnMut() -> Result<u64>) -> Result<Timed> {
        let mut latencies_ns: Vec<u64> = Vec::with_capacity(1 << 20);
        let mut items = 0u64;
        let started = Instant::now();
        let mut before = started;
        loop {
            items += unit()?;
            let after = Instant::now();
            latencies_ns.push((after - before).as_nanos() as u64);
            before = after;
            if after - started >= duration {
                break;
            }
        }
        Ok(Timed {
            items,
            elapsed: before - started,
            latencies_ns,
        })
    }

    /// Loops run side by side as one: their work summed over the longest
    /// of their times, their latencies together.
    fn merge(all: Vec<Timed>) -> Timed {
        let mut merged = Timed {
            items: 0,
            elapsed: Duration::ZERO,
            latencies_ns: Vec::new(),
        };
        for timed in all {
            merged.items += timed.items;
            merged.elapsed = merged.elapsed.max(timed.elapsed);
            merged.latencies_ns.extend(timed.latencies_ns);
        }
        merged
    }

    fn rate(self) -> Rate {
        let Timed {
            items,
            elapsed,
            mut latencies_ns,
        } = self;
        rate_of(items, elapsed, &mut latencies_ns)
    }
}

fn rate_of(items: u64, elapsed: Duration, latencies_ns: &mut [u64]) -> Rate {
    latencies_ns.sort_unstable();
    let percentile = |p: f64| {
        let index = ((latencies_ns.len() as f64 * p).ceil() as usize).clamp(1, latencies_ns.len());
        latencies_ns[index - 1] as f64 / 1000.0
    };
    Rate {
        per_second: items as f64 / elapsed.as_secs_f64(),
        p50_us: percentile(0.50),
        p99_us: percentile(0.99),
    }
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

fn v7() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

fn remove_sqlite(path: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// Durable inserts on a fresh file with bellbook's schema: each contact a
/// contacts row, its tag, its field value and its search entry, the search
/// entries of a transaction written together just before its COMMIT (as
/// the server does).
fn sqlite_insert(
    path: &Path,
    migrations: &[String],
    per_tx: u64,
    duration: Duration,
) -> Result<Rate> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    for migration in migrations {
        conn.execute_batch(migration)
            .context("applying a migration")?;
    }
    conn.execute_batch(MINIMUM_ROWS)?;
    let mut begin = conn.prepare("BEGIN IMMEDIATE")?;
    let mut commit = conn.prepare("COMMIT")?;
    let mut insert_contact = conn.prepare(INSERT_CONTACT)?;
    let mut insert_tag = conn.prepare(INSERT_TAG)?;
    let mut insert_value = conn.prepare(INSERT_VALUE)?;
    let mut insert_search = conn.prepare(INSERT_SEARCH)?;
    let mut population = Population::new(0x5eed);
    let mut seq = 0i64;
    let mut searches: Vec<(i64, String, String)> = Vec::new();
    timed(duration, || {
        begin.execute([])?;
        for _ in 0..per_tx {
            seq += 1;
            let person = population.person(seq as u64);
            let name_key = person.name.to_lowercase();
            let now = unix_now();
            let null: Option<&str> = None;
            let no_number: Option<i64> = None;
            insert_contact.execute(params![
                v7(),
                1,
                seq,
                person.name,
                name_key,
                person.identifier,
                person.digits,
                person.digits,
                "whatsapp",
                1,
                1,
                no_number,
                null,
                no_number,
                null,
                null,
                now,
                now,
                v7(),
                no_number,
                no_number,
                no_number,
                null,
                no_number,
                no_number,
                "1",
                r#"{"1":"01234"}"#,
            ])?;
            let id = conn.last_insert_rowid();
            insert_tag.execute(params![id, 1, now, seq])?;
            insert_value.execute(params![id, 1, "01234"])?;
            searches.push((id, name_key, person.digits));
        }
        for (id, name_key, digits) in searches.drain(..) {
            insert_search.execute(params![id, name_key, digits])?;
        }
        commit.execute([])?;
        Ok(per_tx)
    })
}

#[derive(Debug, Clone, Copy)]
enum Read {
    Lookup,
    Page,
}

/// Read transactions on the seeded bench database, each one statement on
/// a random sample contact, reading every column of every row.
fn sqlite_reads(path: &Path, sample: &[Sampled], read: Read, duration: Duration) -> Result<Rate> {
    let conn = Connection::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    conn.execute_batch(SQLITE_PRAGMAS)?;
    conn.execute_batch("PRAGMA query_only = ON")?;
    let mut begin = conn.prepare("BEGIN")?;
    let mut commit = conn.prepare("COMMIT")?;
    let mut statement = conn.prepare(match read {
        Read::Lookup => LOOKUP,
        Read::Page => KEYSET_PAGE,
    })?;
    let columns = statement.column_count();
    let mut rng = Rng::new(unix_now() as u64);
    timed(duration, || {
        let contact = &sample[rng.below(sample.len())];
        begin.execute([])?;
        let mut rows = match read {
            Read::Lookup => statement.query(params![contact.uuid])?,
            Read::Page => {
                statement.query(params![contact.account_id, contact.created_at, contact.seq])?
            }
        };
        let mut bytes = 0usize;
        while let Some(row) = rows.next()? {
            for column in 0..columns {
                bytes += match row.get_ref(column)? {
                    rusqlite::types::ValueRef::Text(text) => text.len(),
                    _ => 8,
                };
            }
        }
        drop(rows);
        black_box(bytes);
        commit.execute([])?;
        Ok(1)
    })
}

fn postgres_limits(
    plan: &Plan<'_>,
    admin: &str,
    bench_url: &str,
    limits: &mut Limits,
) -> Result<()> {
    let postgres_migrations = migrations(plan.root, "postgres")?;
    let mut client = pg_connect(bench_url)?;
    let settings: Vec<String> = ["fsync", "synchronous_commit", "shared_buffers"]
        .iter()
        .map(|name| -> Result<String> {
            let value: String = client.query_one(&format!("SHOW {name}"), &[])?.try_get(0)?;
            Ok(format!("{name}={value}"))
        })
        .collect::<Result<_>>()?;
    limits.postgres_settings = Some(settings.join(", "));
    drop(client);

    for per_tx in POSTGRES_BATCHES {
        let what = format!("PostgreSQL durable insert, {}", per_transaction(per_tx));
        let limit = measure_limit(plan, what, "contacts", "tx", |_| {
            // Scratch, dropped after each run even with --keep.
            let database =
                PgDatabase::create(admin, &format!("bellbook_bench_raw_{}", random_suffix()))?;
            on_core(SERVER_CORE, || {
                postgres_insert(&database.url, &postgres_migrations, per_tx, plan.duration)
            })
        })?;
        let index = limits.push(limit);
        if per_tx == 100 {
            limits.insert = Some(index);
        }
    }
    for (read, what, unit, per) in READS {
        let what = format!("PostgreSQL {what}, {POSTGRES_READ_CONNECTIONS} connections");
        let limit = measure_limit(plan, what, unit, per, |_| {
            on_core(SERVER_CORE, || {
                postgres_reads(bench_url, plan.sample, read, plan.duration)
            })
        })?;
        limits.push_read(read, limit);
    }
    Ok(())
}

/// As [`sqlite_insert`], on a fresh PostgreSQL database (whose trigram
/// indexes stand for SQLite's search table).
fn postgres_insert(
    url: &str,
    migrations: &[String],
    per_tx: u64,
    duration: Duration,
) -> Result<Rate> {
    let mut client = pg_connect(url)?;
    for migration in migrations {
        client
            .batch_execute(migration)
            .context("applying a migration")?;
    }
    client.batch_execute(MINIMUM_ROWS)?;
    let insert_contact = client.prepare(&format!("{INSERT_CONTACT} RETURNING id"))?;
    let insert_tag = client.prepare(INSERT_TAG)?;
    let insert_value = client.prepare(INSERT_VALUE)?;
    let mut population = Population::new(0x5eed);
    let mut seq = 0i64;
    timed(duration, || {
        let mut tx = client.transaction()?;
        for _ in 0..per_tx {
            seq += 1;
            let person = population.person(seq as u64);
            let name_key = person.name.to_lowercase();
            let now = unix_now();
            let null: Option<&str> = None;
            let no_number: Option<i64> = None;
            let row = tx.query_one(
                &insert_contact,
                &[
                    &v7(),
                    &1i64,
                    &seq,
                    &person.name,
                    &name_key,
                    &person.identifier,
                    &person.digits,
                    &person.digits,
                    &"whatsapp",
                    &1i64,
                    &1i64,
                    &no_number,
                    &null,
                    &no_number,
                    &null,
                    &null,
                    &now,
                    &now,
                    &v7(),
                    &no_number,
                    &no_number,
                    &no_number,
                    &null,
                    &no_number,
                    &no_number,
                    &"1",
                    &r#"{"1":"01234"}"#,
                ],
            )?;
            let id: i64 = row.try_get(0)?;
            tx.execute(&insert_tag, &[&id, &1i64, &now, &seq])?;
            tx.execute(&insert_value, &[&id, &1i64, &"01234"])?;
        }
        tx.commit()?;
        Ok(per_tx)
    })
}

/// Connections the PostgreSQL read limits use at once: as many as a
/// bellbook process pools for its reads. One connection alone waits for a
/// round trip per statement and measures the network, not the server.
pub const POSTGRES_READ_CONNECTIONS: usize = 16;

fn postgres_reads(url: &str, sample: &[Sampled], read: Read, duration: Duration) -> Result<Rate> {
    // The threads inherit the caller's core.
    let runs = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..POSTGRES_READ_CONNECTIONS)
            .map(|_| scope.spawn(|| postgres_reads_on_one_connection(url, sample, read, duration)))
            .collect();
        threads
            .into_iter()
            .map(|thread| {
                thread
                    .join()
                    .map_err(|_| anyhow::anyhow!("a PostgreSQL read thread panicked"))?
            })
            .collect::<Result<Vec<Timed>>>()
    })?;
    Ok(Timed::merge(runs).rate())
}

fn postgres_reads_on_one_connection(
    url: &str,
    sample: &[Sampled],
    read: Read,
    duration: Duration,
) -> Result<Timed> {
    let mut client = pg_connect(url)?;
    let statement = client.prepare(match read {
        Read::Lookup => LOOKUP,
        Read::Page => KEYSET_PAGE,
    })?;
    let integer_columns: Vec<bool> = statement
        .columns()
        .iter()
        .map(|column| *column.type_() == postgres::types::Type::INT8)
        .collect();
    let mut rng = Rng::new(unix_now() as u64);
    Timed::run(duration, || {
        let contact = &sample[rng.below(sample.len())];
        let mut tx = client.transaction()?;
        let rows = match read {
            Read::Lookup => tx.query(&statement, &[&contact.uuid])?,
            Read::Page => tx.query(
                &statement,
                &[&contact.account_id, &contact.created_at, &contact.seq],
            )?,
        };
        let mut bytes = 0usize;
        for row in &rows {
            for (column, integer) in integer_columns.iter().enumerate() {
                bytes += if *integer {
                    row.try_get::<_, Option<i64>>(column)?;
                    8
                } else {
                    row.try_get::<_, Option<&str>>(column)?.map_or(0, str::len)
                };
            }
        }
        black_box(bytes);
        tx.commit()?;
        Ok(1)
    })
}

/// The static HTTP limits: a minimal axum server on the server's core
/// answering the captured bodies, driven by the same wrk command.
fn http_limits(
    plan: &Plan<'_>,
    wrk: &Wrk,
    one_body: &[u8],
    page_body: &[u8],
    limits: &mut Limits,
) -> Result<()> {
    let one = plan.work.join("one.json");
    let page = plan.work.join("page.json");
    std::fs::write(&one, one_body)?;
    std::fs::write(&page, page_body)?;
    let mut command = Command::new("taskset");
    command
        .args(["-c", &SERVER_CORE.to_string()])
        .arg(std::env::current_exe().context("cannot find the bench's own binary")?)
        .arg("serve-static")
        .arg("--one")
        .arg(&one)
        .arg("--page")
        .arg(&page);
    let server = Server::start(
        command,
        "the raw HTTP server",
        &plan.work.join("raw-http.log"),
    )?;
    for (path, body) in [("/one", one_body), ("/page", page_body)] {
        let what = format!(
            "HTTP static `GET {path}` ({} B, axum)",
            crate::report::count(body.len() as u64)
        );
        progress!("raw: {}", what.replace('`', ""));
        let measured = wrk.measure(
            &format!("HTTP {path}"),
            &format!("{}{path}", server.url()),
            &Script::Static,
            &|_| Vec::new(),
        )?;
        if measured.non2xx() > 0 || measured.socket_errors() > 0 {
            bail!("the raw HTTP server answered errors: a bug of the bench");
        }
        limits.push(Limit {
            what,
            unit: "requests",
            latency_of: "request",
            runs: measured
                .runs
                .iter()
                .map(|run| Rate {
                    per_second: run.rps,
                    p50_us: run.p50_us,
                    p99_us: run.p99_us,
                })
                .collect(),
        });
    }
    server.stop()?;
    Ok(())
}

/// The raw HTTP server (the hidden `serve-static` subcommand): static
/// JSON bodies, as cheap as an answer of that size can be.
pub fn serve_static(one: &Path, page: &Path) -> Result<()> {
    use axum::body::Bytes;
    use axum::http::header::CONTENT_TYPE;
    use axum::routing::get;

    let one = Bytes::from(std::fs::read(one).with_context(|| format!("{}", one.display()))?);
    let page = Bytes::from(std::fs::read(page).with_context(|| format!("{}", page.display()))?);
    // Built like bellbook's runtime (#[tokio::main]): a worker per core it
    // may run on, so one under taskset.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        let app = axum::Router::new()
            .route(
                "/one",
                get(move || {
                    let body = one.clone();
                    async move { ([(CONTENT_TYPE, "application/json")], body) }
                }),
            )
            .route(
                "/page",
                get(move || {
                    let body = page.clone();
                    async move { ([(CONTENT_TYPE, "application/json")], body) }
                }),
            );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        println!("Listening on http://{}", listener.local_addr()?);
        axum::serve(listener, app).await?;
        Ok(())
    })
}
