//! Group commit: every write of this process runs on one thread that owns
//! the write connection. Writes that arrive while a commit is being synced
//! wait for the next one and then share it: one transaction, one fsync.
//!
//! Each write runs in a savepoint of its own, so one that fails (a
//! duplicate contact, a bad reference) is undone alone and its neighbours
//! commit. Nobody is answered before the transaction holding their write
//! has committed; if that commit fails, everyone in it is told so, even
//! those whose own write had failed (their answer depended on the others).

use std::sync::Mutex;

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
    fn run(&mut self, db: &mut dyn Db) -> bool;
    /// Answers the caller once the transaction is over: with the work's
    /// own result if it committed, else with why it did not.
    fn answer(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Pending<T, F> {
    work: Option<F>,
    result: Option<StoreResult<T>>,
    reply: oneshot::Sender<StoreResult<T>>,
}

impl<T, F> Job for Pending<T, F>
where
    T: Send,
    F: FnOnce(&mut dyn Db) -> StoreResult<T> + Send,
{
    fn run(&mut self, db: &mut dyn Db) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        let result = work(db);
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
}

fn not_committed(error: &StoreError) -> StoreError {
    StoreError::Unavailable(format!("the write was not committed: {error}").into())
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
    pub fn start(db: Box<dyn Db>, connect: Connect) -> StoreResult<Writer> {
        let (sender, receiver) = mpsc::channel(QUEUE_DEPTH);
        let (done, finished) = oneshot::channel();
        std::thread::Builder::new()
            .name("bellbook-writer".into())
            .spawn(move || {
                write_loop(db, connect, receiver);
                let _ = done.send(());
            })
            .map_err(|e| StoreError::Other(Box::new(e)))?;
        Ok(Writer {
            queue: Mutex::new(Some(sender)),
            finished: Mutex::new(Some(finished)),
        })
    }

    /// Runs `work` in the next group commit; resolves once it committed.
    pub async fn run<T, F>(&self, work: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut dyn Db) -> StoreResult<T> + Send + 'static,
    {
        let sender = self
            .queue
            .lock()
            .map_err(|_| StoreError::other("writer queue poisoned"))?
            .clone()
            .ok_or_else(stopped)?;
        let (reply, answer) = oneshot::channel();
        let job: Box<dyn Job> = Box::new(Pending {
            work: Some(work),
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

fn write_loop(mut db: Box<dyn Db>, connect: Connect, mut queue: mpsc::Receiver<Box<dyn Job>>) {
    while let Some(first) = queue.blocking_recv() {
        let mut jobs = vec![first];
        while jobs.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => jobs.push(job),
                Err(_) => break,
            }
        }
        if db.is_broken() {
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
        commit_batch(db.as_mut(), jobs);
    }
}

/// Runs `jobs` in one transaction and answers each.
fn commit_batch(db: &mut dyn Db, mut jobs: Vec<Box<dyn Job>>) {
    if let Err(error) = db.begin_write() {
        for job in jobs {
            job.answer(Err(&error));
        }
        return;
    }
    // A lone write needs no savepoint: if it fails, the transaction is
    // rolled back whole.
    if jobs.len() == 1 {
        let mut job = jobs.remove(0);
        if run_guarded(db, job.as_mut()) {
            let committed = db.commit();
            if committed.is_err() {
                let _ = db.rollback();
            }
            job.answer(committed.as_ref().map(|_| ()));
        } else {
            let rolled_back = db.rollback();
            job.answer(rolled_back.as_ref().map(|_| ()));
        }
        return;
    }
    let mut failure = None;
    for job in &mut jobs {
        if let Err(error) = run_in_savepoint(db, job.as_mut()) {
            failure = Some(error);
            break;
        }
    }
    let outcome = match failure {
        Some(error) => Err(error),
        None => db.commit(),
    };
    if outcome.is_err() {
        let _ = db.rollback();
    }
    for job in jobs {
        job.answer(outcome.as_ref().map(|_| ()));
    }
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
