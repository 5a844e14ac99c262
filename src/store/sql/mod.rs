//! The one SQL implementation of [`Store`](super::Store), for SQLite and
//! PostgreSQL alike. Statements are written once, in the SQL both speak
//! (`$n` placeholders, `RETURNING`, `ON CONFLICT`, row values), against the
//! narrow [`db::Db`] interface; what differs per backend is the driver
//! behind it, the migration tree, and the text search of `q`.
//!
//! Reads run in a read transaction on a pooled connection: on the calling
//! thread for SQLite, whose statements take microseconds, on a blocking
//! thread for PostgreSQL. Writes run on the group-commit writer.

mod admin;
mod anchors;
mod cache;
mod contacts;
mod counts;
mod dashboard;
pub(crate) mod db;
mod events;
mod idempotency;
mod listing;
mod matches;
mod migrate;
mod postgres;
mod settings;
mod sqlite;
mod transfer;
mod trigrams;
mod writer;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use scheduled_thread_pool::ScheduledThreadPool;

use super::{StoreError, StoreResult};
use cache::SettingsCache;
use db::Db;
use postgres::{PgDb, PgManager};
use sqlite::{ReaderManager, Role, SqliteDb, SqliteLocation};
use writer::Writer;

pub use contacts::Imported;
pub use events::unix_ms;
pub use transfer::{CopyError, CopyProgress, CopySummary, copy_database};

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
}

/// Most pooled read connections per process.
const READERS: u32 = 16;

/// One thread, shared by every pool of the process, that opens and retires
/// pooled connections in the background.
static POOL_THREAD: LazyLock<Arc<ScheduledThreadPool>> = LazyLock::new(|| {
    Arc::new(
        ScheduledThreadPool::builder()
            .num_threads(1)
            .thread_name_pattern("bellbook-pool-{}")
            .build(),
    )
});

enum Readers {
    Sqlite {
        pool: r2d2::Pool<ReaderManager>,
        location: SqliteLocation,
    },
    Postgres(r2d2::Pool<PgManager>),
}

pub struct SqlStore {
    backend: Backend,
    readers: Readers,
    writer: Writer,
    cache: Arc<SettingsCache>,
    listing_memory: Arc<listing::ListingMemory>,
    events: Arc<events::Events>,
    stats: StoreStats,
    /// Of the read pool (see [`Reachability`]).
    reachable: Reachability,
}

/// What the store measures of itself, for `GET /metrics`.
#[derive(Debug, Clone)]
pub struct StoreStats {
    /// Writes per group commit.
    pub batch_sizes: prometheus_client::metrics::histogram::Histogram,
    /// Reads waiting for a pooled connection.
    pub pool_waiting: prometheus_client::metrics::gauge::Gauge,
}

/// Longest a read waits for a pooled connection. Reads take milliseconds,
/// so waiting this long means the database is down or swamped: a 503 is
/// then the better answer. r2d2 also retries a failed connect at least
/// every half of it, which bounds how long reads take to come back.
const READ_WAIT: Duration = Duration::from_secs(5);

fn pool<M>(manager: M, reachable: &Reachability) -> r2d2::Pool<M>
where
    M: r2d2::ManageConnection<Error = StoreError>,
{
    r2d2::Pool::builder()
        .max_size(READERS)
        .min_idle(Some(0))
        .test_on_check_out(false)
        .connection_timeout(READ_WAIT)
        .error_handler(Box::new(reachable.clone()))
        .event_handler(Box::new(reachable.clone()))
        .thread_pool(POOL_THREAD.clone())
        .build_unchecked(manager)
}

/// Whether the read pool's last attempt to open a connection failed.
/// While it did, a read that finds no idle connection fails at once
/// instead of waiting out [`READ_WAIT`] for one that cannot be made: a
/// database that is down answers every read with a quick 503, not a slow
/// one that ties up a thread. r2d2 goes on retrying in the background;
/// its first success clears this.
#[derive(Debug, Clone, Default)]
struct Reachability {
    /// Shared by the store and the pool's handlers.
    failing: Arc<AtomicBool>,
}

impl Reachability {
    fn failing(&self) -> bool {
        self.failing.load(Ordering::Relaxed)
    }
}

impl r2d2::HandleError<StoreError> for Reachability {
    fn handle_error(&self, error: StoreError) {
        // Once per outage, not at every retry.
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(%error, "cannot open a database connection; retrying");
        }
    }
}

impl r2d2::HandleEvent for Reachability {
    fn handle_acquire(&self, _event: r2d2::event::AcquireEvent) {
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!("database connections open again");
        }
    }
}

impl SqlStore {
    /// Opens the database named by `url` and brings its schema up to date.
    pub async fn connect(url: &str) -> StoreResult<SqlStore> {
        let url = url.to_owned();
        tokio::task::spawn_blocking(move || SqlStore::connect_blocking(&url))
            .await
            .map_err(|e| StoreError::Other(Box::new(e)))?
    }

    fn connect_blocking(url: &str) -> StoreResult<SqlStore> {
        let backend = Backend::for_url(url)?;
        let reachable = Reachability::default();
        let (mut db, connect, readers): (Box<dyn Db>, writer::Connect, Readers) = match backend {
            Backend::Sqlite => {
                let location = SqliteLocation::parse(url)?;
                let db = SqliteDb::open(&location, Role::Writer)?;
                let reopen = location.clone();
                let connect: writer::Connect = Box::new(move || {
                    Ok(Box::new(SqliteDb::open(&reopen, Role::Writer)?) as Box<dyn Db>)
                });
                (
                    Box::new(db),
                    connect,
                    Readers::Sqlite {
                        pool: pool(
                            ReaderManager {
                                location: location.clone(),
                            },
                            &reachable,
                        ),
                        location,
                    },
                )
            }
            Backend::Postgres => {
                let db = PgDb::connect(url)?;
                let reconnect = url.to_owned();
                let connect: writer::Connect =
                    Box::new(move || Ok(Box::new(PgDb::connect(&reconnect)?) as Box<dyn Db>));
                (
                    Box::new(db),
                    connect,
                    Readers::Postgres(pool(
                        PgManager {
                            url: url.to_owned(),
                        },
                        &reachable,
                    )),
                )
            }
        };
        migrate::run(db.as_mut())?;
        let stats = StoreStats {
            batch_sizes: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(1.0, 2.0, 10),
            ),
            pool_waiting: Default::default(),
        };
        Ok(SqlStore {
            backend,
            readers,
            writer: Writer::start(db, connect, stats.batch_sizes.clone())?,
            cache: Arc::new(SettingsCache::default()),
            listing_memory: Arc::default(),
            events: Arc::default(),
            stats,
            reachable,
        })
    }

    pub fn stats(&self) -> &StoreStats {
        &self.stats
    }

    /// The read pool's connections: open, and of those idle.
    pub fn pool_state(&self) -> (u32, u32) {
        let state = match &self.readers {
            Readers::Sqlite { pool, .. } => pool.state(),
            Readers::Postgres(pool) => pool.state(),
        };
        (state.connections, state.idle_connections)
    }

    /// From now on every change records its events (docs/webhooks.md),
    /// their payloads written by `payloads`. `serve` sets this before it
    /// takes a request; until it is set, nothing records events (what
    /// `bellbook import` does without `--emit-events`).
    pub fn record_events_with(&self, payloads: Arc<dyn super::EventPayloads>) {
        self.events.record_with(payloads);
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Lets queued writes commit and stops the writer.
    pub async fn close(&self) {
        self.writer.stop().await;
    }

    /// Copies a SQLite database, consistent at one instant, to `path`.
    pub async fn backup_to(&self, path: &str) -> StoreResult<()> {
        let Readers::Sqlite { location, .. } = &self.readers else {
            return Err(StoreError::other(
                "backup copies SQLite databases; use pg_dump for PostgreSQL",
            ));
        };
        // VACUUM INTO only reads, but it runs outside any transaction and
        // writes a file: a connection of its own, not a pooled reader.
        let location = location.clone();
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || {
            let mut db = SqliteDb::open(&location, Role::Writer)?;
            db.execute("VACUUM INTO $1", &db::params![path.as_str()])
                .map(|_| ())
        })
        .await
        .map_err(|e| StoreError::Other(Box::new(e)))?
    }

    /// SQLite's own check of the whole file (`PRAGMA integrity_check`):
    /// `Ok` when it finds nothing wrong, else what it found.
    pub async fn check_integrity(&self) -> StoreResult<()> {
        if self.backend != Backend::Sqlite {
            return Err(StoreError::other("only SQLite files are checked this way"));
        }
        let problems: Vec<String> = self
            .read_statement(|db| db.all("PRAGMA integrity_check", &[]))
            .await?;
        if problems == ["ok"] {
            Ok(())
        } else {
            Err(StoreError::other(format!(
                "the database file is damaged: {}",
                problems.join("; ")
            )))
        }
    }

    /// Runs `work` in a read transaction.
    async fn read<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db, &SettingsCache) -> StoreResult<T> + Send + 'static,
    {
        let cache = self.cache.clone();
        self.read_statement(move |db| in_read_transaction(db, |db| work(db, &cache)))
            .await
    }

    /// Runs `work` on a reader connection outside any transaction: for one
    /// statement, which is a snapshot of its own (the API-key check is
    /// spared a `BEGIN` and a `ROLLBACK`), or for [`read`](Self::read).
    /// On SQLite it runs on the calling thread, on PostgreSQL on a blocking
    /// one (see docs/storage.md, "Reads").
    async fn read_statement<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> StoreResult<T> + Send + 'static,
    {
        match &self.readers {
            Readers::Sqlite { pool, .. } => {
                let mut conn = pooled(pool, &self.reachable, &self.stats.pool_waiting)?;
                work(&mut *conn)
            }
            Readers::Postgres(pool) => {
                let pool = pool.clone();
                let reachable = self.reachable.clone();
                let waiting = self.stats.pool_waiting.clone();
                tokio::task::spawn_blocking(move || {
                    let mut conn = pooled(&pool, &reachable, &waiting)?;
                    work(&mut *conn)
                })
                .await
                .map_err(|e| StoreError::Other(Box::new(e)))?
            }
        }
    }

    /// Runs `work`, which may record events, in the next group commit;
    /// once it committed, wakes whoever waits for events.
    async fn write_recording<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Db, &SettingsCache, &events::Events) -> StoreResult<T> + Send + 'static,
    {
        let events = self.events.clone();
        let written = self
            .write(move |db, cache| work(db, cache, &events))
            .await?;
        self.events.signal();
        Ok(written)
    }

    /// Runs `delete` (a `DELETE` of rows older than `$1`, at most `$2` of
    /// them) again and again, each time its own write, until it deletes
    /// fewer than a batch; answers how many it deleted. One statement
    /// deleting a week of a busy account's rows would hold the writer for
    /// seconds.
    async fn delete_in_batches(
        &self,
        delete: &'static str,
        before: crate::domain::Timestamp,
    ) -> StoreResult<u64> {
        const BATCH: u32 = 2000;
        let mut purged = 0;
        loop {
            let deleted = self
                .write(move |db, _| db.execute(delete, &db::params![before, i64::from(BATCH)]))
                .await?;
            purged += deleted;
            if deleted < u64::from(BATCH) {
                return Ok(purged);
            }
        }
    }

    /// Runs `work` in the next group commit.
    async fn write<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Db, &SettingsCache) -> StoreResult<T> + Send + 'static,
    {
        let cache = self.cache.clone();
        self.writer.run(move |db| work(db, &cache)).await
    }
}

pub(super) fn in_read_transaction<T>(
    db: &mut dyn Db,
    work: impl FnOnce(&mut dyn Db) -> StoreResult<T>,
) -> StoreResult<T> {
    db.begin_read()?;
    let outcome = work(db);
    // Nothing was written: ending the transaction either way is the same.
    let ended = db.rollback();
    let value = outcome?;
    ended?;
    Ok(value)
}

/// A pooled connection, counted in `waiting` while none is free.
fn pooled<M: r2d2::ManageConnection>(
    pool: &r2d2::Pool<M>,
    reachable: &Reachability,
    waiting: &prometheus_client::metrics::gauge::Gauge,
) -> StoreResult<r2d2::PooledConnection<M>> {
    if let Some(conn) = pool.try_get() {
        return Ok(conn);
    }
    if reachable.failing() {
        return Err(StoreError::Unavailable(
            "no connection to the database can be opened".into(),
        ));
    }
    waiting.inc();
    let conn = pool.get();
    waiting.dec();
    conn.map_err(pool_error)
}

fn pool_error(error: r2d2::Error) -> StoreError {
    StoreError::Unavailable(Box::new(error))
}

/// What a unique index refusing a change means when nothing more specific
/// is known: the change collides with one made concurrently.
pub(crate) fn unique_violation() -> StoreError {
    StoreError::conflict(
        "conflict",
        "the change collides with another object; it may have been made concurrently",
    )
}

pub(crate) fn foreign_key_violation() -> StoreError {
    StoreError::conflict(
        "settings_changed",
        "something this request refers to was deleted meanwhile; read it again and retry",
    )
}

/// Maps a unique-index violation to the conflict it means for the caller
/// (a name taken, say); any other error passes through.
pub(crate) fn unique_means(
    code: &'static str,
    message: String,
) -> impl FnOnce(StoreError) -> StoreError {
    move |error| match error {
        StoreError::Conflict(c) if c.code == "conflict" => StoreError::conflict(code, message),
        other => other,
    }
}

/// Takes the account row's write lock for the rest of the transaction, so
/// check-then-write changes of one account run one after another: two
/// contacts created at once with one number, or two changes of the default
/// team or of a main channel. Without it, two such transactions on
/// PostgreSQL each check against their own snapshot and the second then
/// collides with the first on a unique index (a 409 that names nothing).
/// SQLite's write transactions already run one at a time.
pub(crate) fn lock_account(db: &mut dyn Db, account: super::AccountId) -> StoreResult<()> {
    if db.backend() == Backend::Postgres {
        db.execute(
            "UPDATE accounts SET contact_seq = contact_seq WHERE id = $1",
            &db::params![account.0],
        )?;
    }
    Ok(())
}

/// A temporary SQLite database holding the demo account, for the unit
/// tests of the store's statements (the directory goes when dropped).
#[cfg(test)]
fn demo_database() -> (tempfile::TempDir, SqliteLocation) {
    let dir = tempfile::tempdir().expect("temp dir");
    let url = format!("sqlite://{}", dir.path().join("demo.db").display());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let store = SqlStore::connect(&url).await.expect("store");
        crate::demo::install(&store).await.expect("demo account");
        store.close().await;
    });
    (dir, SqliteLocation::parse(&url).expect("url"))
}
