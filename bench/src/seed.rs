//! The database under test: created fresh, given the demo account, filled
//! with N generated contacts through `bellbook import`, and sampled.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::process::{Server, run_bounded};
use crate::progress;

/// The demo account's API key (`bellbook serve --demo`).
pub const API_KEY: &str = "test_gshuPaZoeEG6ovbc8M79w0QyM";

/// Where the contacts live.
pub enum Database {
    Sqlite { path: PathBuf },
    Postgres(PgDatabase),
}

impl Database {
    /// A SQLite file in `dir`, or a new PostgreSQL database made through
    /// `postgres_admin`.
    pub fn create(dir: &Path, postgres_admin: Option<&str>) -> Result<Database> {
        match postgres_admin {
            None => Ok(Database::Sqlite {
                path: dir.join("bench.db"),
            }),
            Some(admin) => Ok(Database::Postgres(PgDatabase::create(
                admin,
                &format!("bellbook_bench_{}", random_suffix()),
            )?)),
        }
    }

    pub fn url(&self) -> String {
        match self {
            Database::Sqlite { path } => format!("sqlite://{}", path.display()),
            Database::Postgres(pg) => pg.url.clone(),
        }
    }

    pub fn backend(&self) -> &'static str {
        match self {
            Database::Sqlite { .. } => "SQLite",
            Database::Postgres(_) => "PostgreSQL",
        }
    }
}

/// A PostgreSQL database of the bench's own, dropped when this is dropped
/// (unless kept).
pub struct PgDatabase {
    admin_url: String,
    pub name: String,
    pub url: String,
    pub keep: bool,
}

impl PgDatabase {
    pub fn create(admin_url: &str, name: &str) -> Result<PgDatabase> {
        let mut admin =
            pg_connect(admin_url).with_context(|| format!("cannot connect to {admin_url}"))?;
        // The name is ours (letters, digits, underscores): no quoting needed.
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .with_context(|| format!("cannot create the database {name}"))?;
        Ok(PgDatabase {
            admin_url: admin_url.to_owned(),
            name: name.to_owned(),
            url: with_database(admin_url, name),
            keep: false,
        })
    }
}

impl Drop for PgDatabase {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let dropped = pg_connect(&self.admin_url).and_then(|mut admin| {
            admin.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
        });
        if let Err(error) = dropped {
            eprintln!("could not drop the database {}: {error}", self.name);
        }
    }
}

/// Connects without TLS (the server is local), giving up after 10 s.
pub fn pg_connect(url: &str) -> Result<postgres::Client, postgres::Error> {
    let mut config: postgres::Config = url.parse()?;
    config.connect_timeout(Duration::from_secs(10));
    config.connect(postgres::NoTls)
}

/// `admin_url` with its database name replaced by `name`.
fn with_database(admin_url: &str, name: &str) -> String {
    let (base, query) = match admin_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (admin_url, None),
    };
    let authority_start = base.find("://").map_or(0, |i| i + 3);
    let host_end = base[authority_start..]
        .find('/')
        .map_or(base.len(), |i| authority_start + i);
    let mut url = format!("{}/{name}", &base[..host_end]);
    if let Some(query) = query {
        url.push('?');
        url.push_str(query);
    }
    url
}

/// Distinct enough for database names of concurrent runs.
pub fn random_suffix() -> String {
    uuid::Uuid::new_v4().simple().to_string()[..12].to_owned()
}

/// A small deterministic generator (xorshift64*): the same seed makes the
/// same contacts on every run.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
}

const FIRST_NAMES: [&str; 20] = [
    "Giulia", "Marco", "Anna", "Luca", "Sara", "Paolo", "Elena", "Matteo", "Chiara", "Davide",
    "Laura", "Andrea", "Marta", "Simone", "Irene", "Fabio", "Alice", "Stefano", "Noemi", "Pietro",
];
// Surnames are one piece of each list: all the same length, so no surname
// is a substring of another and a `q` search for one finds only its own.
const SURNAME_HEADS: [&str; 10] = ["Ba", "Ca", "De", "Fo", "Ga", "Lu", "Ma", "Pe", "Ro", "Se"];
const SURNAME_MIDDLES: [&str; 10] = ["ra", "le", "ni", "to", "vi", "ma", "ru", "ce", "po", "di"];
const SURNAME_TAILS: [&str; 10] = [
    "nti", "lli", "tti", "rri", "ssi", "cci", "zzi", "ggi", "ppi", "ndi",
];

/// A multiplier coprime to 10^9 (a power of 3): `i * PHONE_SCRAMBLE mod
/// 10^9` is a permutation, so numbers look random and never repeat.
const PHONE_SCRAMBLE: u64 = 387_420_489;

/// The generated population: names, numbers, tags and fields.
pub struct Population {
    rng: Rng,
    surnames: Vec<String>,
}

/// One generated contact.
pub struct Person {
    pub name: String,
    pub identifier: String,
    pub digits: String,
    pub lead: bool,
    pub hot: bool,
    pub fields: bool,
}

impl Population {
    pub fn new(seed: u64) -> Population {
        let mut surnames = Vec::with_capacity(1000);
        for head in SURNAME_HEADS {
            for middle in SURNAME_MIDDLES {
                for tail in SURNAME_TAILS {
                    surnames.push(format!("{head}{middle}{tail}"));
                }
            }
        }
        Population {
            rng: Rng::new(seed),
            surnames,
        }
    }

    /// Every surname a contact may have.
    pub fn surnames(&self) -> &[String] {
        &self.surnames
    }

    /// The surname the `q` shape searches for.
    pub fn searched_surname(&self) -> &str {
        &self.surnames[self.surnames.len() / 2]
    }

    /// The `index`-th contact: `index` decides the phone number (unique
    /// for every index below 10^9), the generator the rest.
    pub fn person(&mut self, index: u64) -> Person {
        let first = FIRST_NAMES[self.rng.below(FIRST_NAMES.len())];
        let last = &self.surnames[self.rng.below(self.surnames.len())];
        let national = format!("3{:09}", index.wrapping_mul(PHONE_SCRAMBLE) % 1_000_000_000);
        Person {
            name: format!("{first} {last}"),
            identifier: format!("+39 {national}"),
            digits: format!("39{national}"),
            lead: self.rng.chance(0.5),
            hot: self.rng.chance(0.03),
            fields: self.rng.chance(1.0 / 3.0),
        }
    }
}

/// Writes `count` POST /contacts bodies, one a line.
pub fn write_ndjson(path: &Path, count: u64, population: &mut Population) -> Result<()> {
    let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::with_capacity(1 << 20, file);
    for index in 0..count {
        let person = population.person(index);
        let tags = match (person.lead, person.hot) {
            (true, true) => r#"["lead","hot"]"#,
            (true, false) => r#"["lead"]"#,
            (false, true) => r#"["hot"]"#,
            (false, false) => "[]",
        };
        // Every generated string is plain ASCII letters, digits, spaces
        // and `+`: nothing to escape.
        write!(
            out,
            r#"{{"source":"whatsapp","identifier":"{}","name":"{}","tags":{tags}"#,
            person.identifier, person.name
        )?;
        if person.fields {
            out.write_all(br#","custom_fields":{"zipCode":"01234","orderNumber":1234}"#)?;
        }
        out.write_all(b"}\n")?;
    }
    out.flush()?;
    Ok(())
}

/// Starts the server once with `--demo` on the empty database, which
/// creates the schema and the demo account, then stops it.
pub fn load_demo(bellbook: &Path, database: &Database, log: &Path) -> Result<()> {
    let mut command = Command::new(bellbook);
    command.args(["serve", "--demo", "--database-url"]);
    command.arg(database.url());
    command.args(["--listen", "127.0.0.1:0", "--rate-limit-rps", "0"]);
    let server = Server::start(command, "bellbook serve --demo", log)?;
    let status = server.stop()?;
    if !status.success() {
        bail!(
            "bellbook serve --demo exited with {status}; see {}",
            log.display()
        );
    }
    Ok(())
}

/// Runs `bellbook import`, and answers how long it took.
pub fn import(bellbook: &Path, database: &Database, file: &Path, count: u64) -> Result<Duration> {
    // Only a safety net: 200 contacts/s, far below any rate seen here
    // (35 000/s on SQLite, 2 500/s on PostgreSQL).
    let timeout = Duration::from_secs(120) + Duration::from_millis(5 * count);
    let started = Instant::now();
    let output = run_bounded(
        Command::new(bellbook)
            .arg("import")
            .arg(file)
            .arg("--database-url")
            .arg(database.url()),
        timeout,
    )?;
    let took = started.elapsed();
    let summary = String::from_utf8_lossy(&output.stderr);
    for line in summary.lines().filter(|l| !l.trim().is_empty()).take(20) {
        progress!("  import: {line}");
    }
    match output.status.code() {
        Some(0) => Ok(took),
        Some(3) => bail!("bellbook import rejected some generated lines: a bug of the bench"),
        _ => bail!("bellbook import failed ({})", output.status),
    }
}

/// Gives PostgreSQL its planner statistics, which autovacuum would gather
/// a minute or so after the import anyway: without them it plans keyset
/// pages as a sort of every row before the position, and when autovacuum
/// gets to it would decide which shapes ran with which plan.
pub fn analyze(database: &Database) -> Result<()> {
    if let Database::Postgres(pg) = database {
        let mut client =
            pg_connect(&pg.url).with_context(|| format!("cannot connect to {}", pg.url))?;
        client.batch_execute("ANALYZE")?;
    }
    Ok(())
}

/// A contact that exists, as the load scripts and raw loops need it.
#[derive(Debug, Clone)]
pub struct Sampled {
    pub uuid: String,
    pub digits: String,
    pub account_id: i64,
    pub created_at: i64,
    pub seq: i64,
}

/// The contacts the load scripts pick from: 10 000 of them, at random.
const SAMPLE_SQL: &str = "SELECT uuid, identifier_digits, account_id, created_at, seq
     FROM contacts ORDER BY random() LIMIT 10000";

/// Reads a random sample of the contacts straight from the database.
pub fn sample(database: &Database) -> Result<Vec<Sampled>> {
    let sample = match database {
        Database::Sqlite { path } => {
            let conn = rusqlite::Connection::open_with_flags(
                path,
                rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
            )
            .with_context(|| format!("cannot open {}", path.display()))?;
            let mut statement = conn.prepare(SAMPLE_SQL)?;
            let rows = statement.query_map([], |row| {
                Ok(Sampled {
                    uuid: row.get(0)?,
                    digits: row.get(1)?,
                    account_id: row.get(2)?,
                    created_at: row.get(3)?,
                    seq: row.get(4)?,
                })
            })?;
            rows.collect::<rusqlite::Result<Vec<_>>>()?
        }
        Database::Postgres(pg) => {
            let mut client =
                pg_connect(&pg.url).with_context(|| format!("cannot connect to {}", pg.url))?;
            client
                .query(SAMPLE_SQL, &[])?
                .iter()
                .map(|row| -> Result<Sampled> {
                    Ok(Sampled {
                        uuid: row.try_get(0)?,
                        digits: row.try_get(1)?,
                        account_id: row.try_get(2)?,
                        created_at: row.try_get(3)?,
                        seq: row.try_get(4)?,
                    })
                })
                .collect::<Result<Vec<_>>>()?
        }
    };
    if sample.is_empty() {
        bail!("no contacts in the database after import");
    }
    Ok(sample)
}

/// The sample as the Lua scripts read it: `uuid digits` a line.
pub fn write_sample(path: &Path, sample: &[Sampled]) -> Result<()> {
    let mut out = BufWriter::new(
        File::create(path).with_context(|| format!("cannot create {}", path.display()))?,
    );
    for contact in sample {
        writeln!(out, "{} {}", contact.uuid, contact.digits)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers_do_not_repeat() {
        let mut population = Population::new(7);
        let mut seen = std::collections::HashSet::new();
        for index in 0..200_000 {
            assert!(seen.insert(population.person(index).digits));
        }
    }

    #[test]
    fn surnames_are_distinct() {
        let population = Population::new(7);
        let distinct: std::collections::HashSet<_> = population.surnames.iter().collect();
        assert_eq!(distinct.len(), 1000);
    }

    #[test]
    fn admin_urls_point_at_the_new_database() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/postgres", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u@h/postgres?sslmode=disable", "b"),
            "postgres://u@h/b?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "b"), "postgres://u@h/b");
    }
}
