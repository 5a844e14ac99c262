//! The one SQL implementation of [`Store`](super::Store), for SQLite and
//! PostgreSQL alike. Queries are written once in the SQL both speak (`$n`
//! placeholders, `RETURNING`, `ON CONFLICT`), over sqlx's `Any` driver with
//! only INTEGER and TEXT columns. What differs per backend is confined to
//! [`Backend`]: connection set-up, how a transaction starts, and migrations.

mod admin;
mod contacts;
mod settings;
mod transfer;

use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyArguments, AnyPoolOptions, AnyRow};
use sqlx::query::Query;
use sqlx::{Any, AnyConnection, AnyPool, AssertSqlSafe, Executor, Row, Transaction};
use tokio::sync::{Mutex, MutexGuard};

use super::{StoreError, StoreResult};
use crate::domain::{FunnelId, PublicId, Source, Timestamp};

/// Which database is underneath.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn for_url(url: &str) -> StoreResult<Backend> {
        if url.starts_with("sqlite:") {
            Ok(Backend::Sqlite)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Ok(Backend::Postgres)
        } else {
            Err(StoreError::other(
                "unsupported database URL: use sqlite://PATH or postgres://USER@HOST/DB",
            ))
        }
    }

    /// Starts a transaction that will write. On SQLite it takes the write
    /// lock up front (`IMMEDIATE`): a deferred transaction that reads first
    /// can fail to upgrade when another process wrote in between.
    fn begin_write(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN IMMEDIATE",
            Backend::Postgres => "BEGIN",
        }
    }

    /// Starts a transaction whose reads all see one snapshot.
    fn begin_read(self) -> &'static str {
        match self {
            Backend::Sqlite => "BEGIN",
            Backend::Postgres => "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY",
        }
    }
}

/// Applied to every SQLite connection. WAL lets readers run beside the one
/// writer; `synchronous = FULL` makes every acknowledged commit durable
/// even across power loss, not only a process crash.
const SQLITE_PRAGMAS: [&str; 4] = [
    "PRAGMA journal_mode = WAL",
    "PRAGMA synchronous = FULL",
    "PRAGMA foreign_keys = ON",
    "PRAGMA busy_timeout = 10000",
];

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("migrations/postgres");

pub struct SqlStore {
    pool: AnyPool,
    backend: Backend,
    /// SQLite has one writer at a time. Queuing writers here, in process,
    /// is cheaper and fairer than letting them spin on the file lock.
    write_gate: Option<Mutex<()>>,
}

/// A write transaction; dropped without `commit`, it rolls back.
pub(crate) struct WriteTx<'s> {
    tx: Transaction<'static, Any>,
    _gate: Option<MutexGuard<'s, ()>>,
}

impl WriteTx<'_> {
    fn conn(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }

    async fn commit(self) -> StoreResult<()> {
        self.tx.commit().await.map_err(db_error)
    }
}

impl SqlStore {
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        sqlx::any::install_default_drivers();
        let backend = Backend::for_url(url)?;
        let url = match backend {
            Backend::Sqlite => sqlite_url_creating_file(url),
            Backend::Postgres => url.to_owned(),
        };
        let options = AnyPoolOptions::new()
            .max_connections(match backend {
                Backend::Sqlite => 8,
                Backend::Postgres => 16,
            })
            .acquire_timeout(Duration::from_secs(15))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        for pragma in SQLITE_PRAGMAS {
                            conn.execute(pragma).await?;
                        }
                    }
                    Ok(())
                })
            });
        let pool = options.connect(&url).await.map_err(db_error)?;
        let migrator = match backend {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        };
        migrator
            .run(&pool)
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(SqlStore {
            pool,
            backend,
            write_gate: (backend == Backend::Sqlite).then(|| Mutex::new(())),
        })
    }

    /// Waits for in-flight queries and closes every connection.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Copies a SQLite database, consistent at one instant, to `path`.
    pub async fn backup_to(&self, path: &str) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::other(
                "backup copies SQLite databases; use pg_dump for PostgreSQL",
            ));
        }
        sqlx::query("VACUUM INTO $1")
            .bind(path.to_owned())
            .execute(&self.pool)
            .await
            .map_err(db_error)?;
        Ok(())
    }

    async fn begin_write(&self) -> StoreResult<WriteTx<'_>> {
        let gate = match &self.write_gate {
            Some(gate) => Some(gate.lock().await),
            None => None,
        };
        let tx = self
            .pool
            .begin_with(self.backend.begin_write())
            .await
            .map_err(db_error)?;
        Ok(WriteTx { tx, _gate: gate })
    }

    async fn begin_read(&self) -> StoreResult<Transaction<'static, Any>> {
        self.pool
            .begin_with(self.backend.begin_read())
            .await
            .map_err(db_error)
    }
}

/// `sqlite://./bellbook.db` names a file that may not exist yet.
fn sqlite_url_creating_file(url: &str) -> String {
    if url.contains("mode=") || url.contains(":memory:") {
        return url.to_owned();
    }
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}mode=rwc")
}

/// Sorts database failures into what the caller can do about them.
pub(crate) fn db_error(error: sqlx::Error) -> StoreError {
    use sqlx::error::ErrorKind;
    match &error {
        sqlx::Error::RowNotFound => StoreError::NotFound,
        sqlx::Error::Database(db) => match db.kind() {
            ErrorKind::UniqueViolation => StoreError::conflict(
                "conflict",
                "the change collides with another object; it may have been made concurrently",
            ),
            ErrorKind::ForeignKeyViolation => StoreError::conflict(
                "settings_changed",
                "something this request refers to was deleted meanwhile; read it again and retry",
            ),
            _ if is_transient(db.as_ref()) => StoreError::Unavailable(Box::new(error)),
            _ => StoreError::Other(Box::new(error)),
        },
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Protocol(_) => StoreError::Unavailable(Box::new(error)),
        _ => StoreError::Other(Box::new(error)),
    }
}

/// Errors after which the same request may well succeed: SQLite's busy and
/// locked codes (with their extended variants), PostgreSQL's serialization
/// failures, deadlocks, shutdowns and connection exhaustion.
fn is_transient(error: &dyn sqlx::error::DatabaseError) -> bool {
    let code = error.code();
    if error
        .try_downcast_ref::<sqlx::sqlite::SqliteError>()
        .is_some()
    {
        return code
            .and_then(|c| c.parse::<i32>().ok())
            .is_some_and(|c| matches!(c & 0xff, 5 | 6));
    }
    code.is_some_and(|c| is_transient_postgres_code(&c))
}

fn is_transient_postgres_code(code: &str) -> bool {
    matches!(
        code,
        "40001" | "40P01" | "57P01" | "57P02" | "57P03" | "53300"
    )
}

/// Typed column access that reports a malformed row instead of panicking.
pub(crate) trait RowExt {
    fn int(&self, column: &str) -> StoreResult<i64>;
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>>;
    fn text(&self, column: &str) -> StoreResult<String>;
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>>;

    fn flag(&self, column: &str) -> StoreResult<bool> {
        Ok(self.int(column)? != 0)
    }
    fn time(&self, column: &str) -> StoreResult<Timestamp> {
        Ok(Timestamp::from_unix(self.int(column)?))
    }
    fn opt_time(&self, column: &str) -> StoreResult<Option<Timestamp>> {
        Ok(self.opt_int(column)?.map(Timestamp::from_unix))
    }
    fn public_id(&self, column: &str) -> StoreResult<PublicId> {
        parse_column(column, &self.text(column)?)
    }
    fn funnel_id(&self, column: &str) -> StoreResult<FunnelId> {
        parse_column(column, &self.text(column)?)
    }
    fn opt_funnel_id(&self, column: &str) -> StoreResult<Option<FunnelId>> {
        self.opt_text(column)?
            .map(|t| parse_column(column, &t))
            .transpose()
    }
    fn source(&self, column: &str) -> StoreResult<Source> {
        parse_column(column, &self.text(column)?)
    }
}

fn parse_column<T: FromStr>(column: &str, text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::other(format!("column {column} holds an unexpected value")))
}

impl RowExt for AnyRow {
    fn int(&self, column: &str) -> StoreResult<i64> {
        self.try_get(column).map_err(db_error)
    }
    fn opt_int(&self, column: &str) -> StoreResult<Option<i64>> {
        self.try_get(column).map_err(db_error)
    }
    fn text(&self, column: &str) -> StoreResult<String> {
        self.try_get(column).map_err(db_error)
    }
    fn opt_text(&self, column: &str) -> StoreResult<Option<String>> {
        self.try_get(column).map_err(db_error)
    }
}

/// A value bound to a dynamically built statement.
#[derive(Debug, Clone)]
enum Arg {
    Int(i64),
    Text(String),
}

/// Builds a statement whose shape depends on the request (filters, lists
/// of ids) while keeping every value a bound parameter.
#[derive(Debug, Default)]
pub(crate) struct SqlBuilder {
    sql: String,
    args: Vec<Arg>,
}

impl SqlBuilder {
    pub fn new(sql: &str) -> Self {
        SqlBuilder {
            sql: sql.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn push(&mut self, sql: &str) -> &mut Self {
        self.sql.push_str(sql);
        self
    }

    fn placeholder(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        self.sql.push('$');
        self.sql.push_str(&self.args.len().to_string());
        self
    }

    pub fn int(&mut self, value: i64) -> &mut Self {
        self.placeholder(Arg::Int(value))
    }

    pub fn text(&mut self, value: impl Into<String>) -> &mut Self {
        self.placeholder(Arg::Text(value.into()))
    }

    /// `$a, $b, …` for a non-empty list.
    pub fn ints(&mut self, values: &[i64]) -> &mut Self {
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.int(*value);
        }
        self
    }

    pub fn texts(&mut self, values: &[String]) -> &mut Self {
        for (i, value) in values.iter().enumerate() {
            if i > 0 {
                self.sql.push_str(", ");
            }
            self.text(value.clone());
        }
        self
    }

    pub fn query(&self) -> Query<'static, Any, AnyArguments> {
        let mut query = sqlx::query(AssertSqlSafe(self.sql.clone()));
        for arg in &self.args {
            query = match arg {
                Arg::Int(v) => query.bind(*v),
                Arg::Text(v) => query.bind(v.clone()),
            };
        }
        query
    }
}

/// Takes the account row's write lock for the rest of the transaction, so
/// check-then-write changes of one account run one after another: two
/// contacts created at once with one number, or two changes of the default
/// team or of a main channel. Without it, two such transactions on
/// PostgreSQL each check against their own snapshot and the second then
/// collides with the first on a unique index (a 409 that names nothing).
/// SQLite's write transactions already run one at a time.
pub(crate) async fn lock_account(
    conn: &mut AnyConnection,
    account: super::AccountId,
) -> StoreResult<()> {
    sqlx::query("UPDATE accounts SET contact_seq = contact_seq WHERE id = $1")
        .bind(account.0)
        .execute(conn)
        .await
        .map_err(db_error)?;
    Ok(())
}

/// Maps a unique-index violation to the conflict it means for the caller
/// (a name taken, say); any other error converts as [`db_error`] says.
pub(crate) fn unique_means(
    code: &'static str,
    message: String,
) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |error| match db_error(error) {
        StoreError::Conflict(c) if c.code == "conflict" => StoreError::conflict(code, message),
        other => other,
    }
}

pub(crate) fn flag(value: bool) -> i64 {
    i64::from(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_urls_create_missing_files() {
        assert_eq!(
            sqlite_url_creating_file("sqlite://./bellbook.db"),
            "sqlite://./bellbook.db?mode=rwc"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://x.db?mode=ro"),
            "sqlite://x.db?mode=ro"
        );
        assert_eq!(
            sqlite_url_creating_file("sqlite://x.db?cache=shared"),
            "sqlite://x.db?cache=shared&mode=rwc"
        );
    }

    #[test]
    fn transient_postgres_errors_are_recognised() {
        assert!(is_transient_postgres_code("40001"));
        assert!(is_transient_postgres_code("40P01"));
        assert!(!is_transient_postgres_code("23505"));
        assert!(!is_transient_postgres_code("22021"));
    }

    #[test]
    fn builder_numbers_placeholders() {
        let mut sql = SqlBuilder::new("SELECT 1 WHERE a = ");
        sql.int(1)
            .push(" AND b IN (")
            .ints(&[2, 3])
            .push(") AND c = ")
            .text("x");
        assert_eq!(
            sql.sql,
            "SELECT 1 WHERE a = $1 AND b IN ($2, $3) AND c = $4"
        );
    }
}
