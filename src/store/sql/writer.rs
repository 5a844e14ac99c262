//! Group commit: every write of this process runs on one thread that owns
//! the write connection. Writes that arrive while a commit is being synced
//! wait for the next one and then share it: one transaction, one fsync.
//!
//! A write that fails (a duplicate contact, a bad reference) is undone
//! alone and its neighbours commit. Almost every write succeeds, so a
//! batch first runs its writes one after another with nothing between
//! them; only if one fails is the transaction rolled back and the batch
//! run again with each write in a savepoint of its own (a savepoint costs
//! SQLite a statement journal per write: a tenth of a create). A write's
//! work may therefore run twice; only the last run's result is answered.
//! Nobody is answered before the transaction holding their write has
//! committed; if that commit fails, everyone in it is told so, even those
//! whose own write had failed (their answer depended on the others).
//!
//! A full disk fails the whole batch at once (running its writes again
//! would only fill it again), and everyone is told the disk is full; once
//! space is freed, the next batch commits. A transaction that could not be
//! ended leaves the connection in a state nobody knows: the next batch
//! gets a fresh one, so that a failed commit never wedges the writer.

use std::sync::Mutex;

use prometheus_client::metrics::histogram::Histogram;
use tokio::sync::{mpsc, oneshot};

use super::db::Db;
use crate::store::{StoreError, StoreResult};

/// Writes waiting beyond this many make callers wait to queue theirs.
const QUEUE_DEPTH: usize = 4096;
/// Most writes in one transaction: enough to share a sync among all the
/// connections of a busy server, few enough to keep each commit short.
const MAX_BATCH: usize = 512;

/// A queued write: its work, and where its answer goes.
trait Job: Send {
    /// Runs the work in the open transaction; tells whether it succeeded.
    /// Runs again, from the start, in a new transaction if its batch was
    /// rolled back.
    fn run(&mut self, db: &mut dyn Db) -> bool;
    /// Answers the caller once the transaction is over: with the work's
    /// own result if it committed, else with why it did not.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
    /// Takes the last run's failure if it was a full disk.
    fn take_full_disk(&mut self) -> Option<StoreError>;
}

struct Pending<T, F> {
    work: F,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: Fn(&mut dyn Db) -> StoreResult<T> + Send,
{
    fn run(&mut self, db: &mut dyn Db) -> bool {
        let result = (self.work)(db);
        let succeeded = result.is_ok();
        self.result = Some(result);
        succeeded
    }

    fn answer(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Ok(()), None) => Err(StoreError::other("a write was never run")),
            (Err(error), _) => Err(not_committed(error)),
        };
        // The caller may have gone away (a dropped connection); the write
        // stands either way.
        let _ = self.reply.send(answer);
    }

    fn take_full_disk(&mut self) -> Option<StoreError> {
        match self.result.take() {
            Some(Err(full @ StoreError::Full(_))) => Some(full),
            other => {
                self.result = other;
                None
            }
        }
    }
}

/// What a write whose transaction did not commit is answered: a full disk
/// stays a full disk (the caller must wait for space, not just retry).
fn not_committed(error: &StoreError) -> StoreError {
    let cause = format!("the write was not committed: {error}").into();
    match error {
        StoreError::Full(_) => StoreError::Full(cause),
        _ => StoreError::Unavailable(cause),
    }
}

/// Opens the writer's connection, again after it is lost.
pub type Connect = Box<dyn Fn() -> StoreResult<Box<dyn Db>> + Send>;

pub struct Writer {
    queue: Mutex<Option<mpsc::Sender<Box<dyn Job>>>>,
    /// Resolves when the thread has answered everything queued and ended.
    finished: Mutex<Option<oneshot::Receiver<()>>>,
}

impl Writer {
    /// Starts the writer thread on `db`.
    /// Each batch's size is observed in `batch_sizes`.
    pub fn start(db: Box<dyn Db>, connect: Connect, batch_sizes: Histogram) -> StoreResult<Writer> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("bellbook-writer".into())
            .spawn(move || {
                write_loop(db, connect, receiver, &batch_sizes);
                let _ = done.send(());
            })
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Writer {
            queue: Mutex::new(Some(sender)),
            finished: Mutex::new(Some(finished)),
        })
    }

    /// Runs `work` in the next group commit; resolves once it committed.
    /// `work` may run more than once (see the module's documentation).
    pub async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: Fn(&mut dyn Db) -> StoreResult<T> + Send + 'static,
    {
        let sender = self
            .queue
            .lock()
            .map_err(|_| StoreError::other("writer queue poisoned"))?
            .clone()
            .ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            work,
            result: None,
            reply,
        });
        sender.send(job).await.map_err(|_| stopped())?;
        answer.await.map_err(|_| stopped())?
    }

    /// Takes no more writes, and resolves once those queued have been
    /// committed and answered and the thread has ended.
    pub async fn stop(&self) {
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        let finished = self.finished.lock().ok().and_then(|mut f| f.take());
        if let Some(finished) = finished {
            let _ = finished.await;
        }
    }
}

fn stopped() -> StoreError {
    StoreError::Unavailable("the database writer has stopped".into())
}

fn write_loop(
    mut db: Box<dyn Db>,
    connect: Connect,
    mut queue: mpsc::Receiver<Box<dyn Job>>,
    batch_sizes: &Histogram,
) {
    // Whether the last batch left its transaction ended.
    let mut clean = true;
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if !clean || db.is_broken() {
            match connect() {
                Ok(fresh) => db = fresh,
                Err(error) => {
                    for job in jobs {
                        job.answer(Err(&error));
                    }
                    continue;
                }
            }
        }
        batch_sizes.observe(jobs.len() as f64);
        clean = commit_batch(db.as_mut(), jobs);
    }
}

/// Runs `jobs` in one transaction and answers each. Tells whether the
/// connection is left with no transaction open, as the next batch needs.
fn commit_batch(db: &mut dyn Db, mut jobs: Vec<Box<dyn Job>>) -> bool {
    if let Err(error) = db.begin_write() {
        for job in jobs {
            job.answer(Err(&error));
        }
        // Already in a transaction, or a connection that is gone.
        return false;
    }
    // All at once first; stops at the first that fails.
    let failed = jobs
        .iter_mut()
        .position(|job| !run_guarded(db, job.as_mut()));
    let outcome = match failed {
        None => db.commit(),
        Some(_) if jobs.len() == 1 => {
            // A lone write that failed is answered with its own failure:
            // nothing of it was committed, whether or not the rollback
            // found a transaction to end.
            let rolled_back = ended(db.rollback());
            for job in jobs {
                job.answer(Ok(()));
            }
            return rolled_back;
        }
        Some(at) => match jobs[at].take_full_disk() {
            Some(full) => Err(full),
            None => db
                .rollback()
                .and_then(|()| db.begin_write())
                .and_then(|()| run_each_in_savepoint(db, &mut jobs))
                .and_then(|()| db.commit()),
        },
    };
    let clean = outcome.is_ok() || ended(db.rollback());
    for job in jobs {
        job.answer(outcome.as_ref().map(|_| ()));
    }
    clean
}

/// Whether a rollback left no transaction open; logs why not.
fn ended(rollback: StoreResult<()>) -> bool {
    match rollback {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, "the writer's rollback failed; reconnecting");
            false
        }
    }
}

/// Runs every job again, each in a savepoint of its own.
fn run_each_in_savepoint(db: &mut dyn Db, jobs: &mut [Box<dyn Job>]) -> StoreResult<()> {
    for job in jobs {
        run_in_savepoint(db, job.as_mut())?;
    }
    Ok(())
}

/// Runs one job so that its failure undoes only its own changes. An error
/// here means the transaction itself is lost.
fn run_in_savepoint(db: &mut dyn Db, job: &mut dyn Job) -> StoreResult<()> {
    let mark = db.queue_mark();
    db.batch("SAVEPOINT write")?;
    if run_guarded(db, job) {
        db.batch("RELEASE SAVEPOINT write")
    } else {
        db.forget_queued_after(mark);
        db.batch("ROLLBACK TO SAVEPOINT write")?;
        db.batch("RELEASE SAVEPOINT write")
    }
}

/// Runs a job; a job that panics counts as failed (and its caller is told
/// so) instead of taking the writer thread down with it.
fn run_guarded(db: &mut dyn Db, job: &mut dyn Job) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run(db))).unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use super::*;
    use crate::store::sql::db::params;
    use crate::store::sql::sqlite::{Role, SqliteDb, SqliteLocation};

    /// What one batch of three writes did: each answer, how many times a
    /// write's work ran, and the rows left in the table.
    struct Batch {
        answers: Vec<StoreResult<i64>>,
        runs: usize,
        written: Vec<i64>,
    }

    /// Writes 1, 2 and 3 in one group commit, each inserting its number
    /// and then failing with `fails(n)` if that gives an error.
    fn run_batch(fails: fn(i64) -> Option<StoreError>) -> Batch {
        let dir = tempfile::tempdir().expect("temp dir");
        let url = format!("sqlite://{}", dir.path().join("writer.db").display());
        let location = SqliteLocation::parse(&url).expect("url");
        let mut db = SqliteDb::open(&location, Role::Writer).expect("db");
        db.batch("CREATE TABLE written (n INTEGER NOT NULL)")
            .expect("table");
        let reopen = location.clone();
        let connect: Connect =
            Box::new(move || Ok(Box::new(SqliteDb::open(&reopen, Role::Writer)?) as Box<dyn Db>));
        let writer =
            Arc::new(Writer::start(Box::new(db), connect, Histogram::new([1.0])).expect("writer"));
        let runs = Arc::new(AtomicUsize::new(0));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        let answers = runtime.block_on(async {
            // Holds the writer while the three others queue: they then
            // share the next batch.
            let holder = tokio::spawn({
                let writer = writer.clone();
                async move {
                    writer
                        .run(|_| {
                            std::thread::sleep(Duration::from_millis(1000));
                            Ok(())
                        })
                        .await
                }
            });
            tokio::time::sleep(Duration::from_millis(100)).await;
            let write = |n: i64| {
                let writer = writer.clone();
                let runs = runs.clone();
                tokio::spawn(async move {
                    writer
                        .run(move |db| {
                            runs.fetch_add(1, Ordering::SeqCst);
                            db.execute("INSERT INTO written (n) VALUES ($1)", &params![n])?;
                            fails(n).map_or(Ok(n), Err)
                        })
                        .await
                })
            };
            // Queued in this order.
            let mut writes = Vec::new();
            for n in 1..=3 {
                writes.push(write(n));
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            holder.await.expect("holder").expect("held");
            let mut answers = Vec::new();
            for handle in writes {
                answers.push(handle.await.expect("write"));
            }
            writer.stop().await;
            answers
        });
        let mut reader = SqliteDb::open(&location, Role::Reader).expect("reader");
        let reader: &mut dyn Db = &mut reader;
        let written: Vec<i64> = reader
            .all("SELECT n FROM written ORDER BY n", &[])
            .expect("rows");
        Batch {
            answers,
            runs: runs.load(Ordering::SeqCst),
            written,
        }
    }

    /// One write of a batch fails after it wrote: it is undone alone, its
    /// neighbours commit (run a second time, in savepoints), and each is
    /// answered with its own result.
    #[test]
    fn a_failing_write_is_undone_alone_and_its_neighbours_commit() {
        let batch =
            run_batch(|n| (n == 2).then(|| StoreError::conflict("refused", "two is refused")));
        assert!(matches!(batch.answers[0], Ok(1)));
        assert!(matches!(batch.answers[1], Err(StoreError::Conflict(_))));
        assert!(matches!(batch.answers[2], Ok(3)));
        assert_eq!(
            batch.runs, 5,
            "1 and 2 at once (2 fails, 3 never starts), then all three in savepoints"
        );
        assert_eq!(batch.written, [1, 3]);
    }

    /// A write that finds the disk full fails its whole batch at once,
    /// without running it again, and everyone in it is told the disk is
    /// full.
    #[test]
    fn a_full_disk_fails_the_whole_batch() {
        let batch = run_batch(|n| (n == 2).then(|| StoreError::Full("no space left".into())));
        for answer in &batch.answers {
            assert!(matches!(answer, Err(StoreError::Full(_))), "{answer:?}");
        }
        assert_eq!(batch.runs, 2, "1 and 2 at once, and no second run");
        assert!(batch.written.is_empty(), "{:?}", batch.written);
    }
}
