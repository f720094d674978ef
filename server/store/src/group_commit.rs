//! Group commit for the SQLite store: one writer thread runs the writes that concurrent callers queue
//! in one transaction, each in a savepoint of its own, and commits them together, so that many answers
//! share one fsync. Every caller gets its result only after that commit: a `202` is still sent only once
//! its row is on disk.
//!
//! A write that fails is rolled back to its savepoint and fails alone; a commit that fails fails every
//! write of its batch. A caller alone waits for no one: its write is a batch of one.

use super::{StoreError, failure::Failure};
use r2d2_sqlite::SqliteConnectionManager;
use std::sync::{Arc, Mutex, mpsc};

/// The most writes one transaction takes.
const MAX_BATCH: usize = 512;

/// What a queued write tells its caller once the batch's fate is known.
type Deliver = Box<dyn FnOnce(Result<(), StoreError>) + Send>;
/// A queued write: run on the batch's connection (or told why there is none); says whether to keep its
/// changes, and how to deliver the outcome.
type Job = Box<dyn FnOnce(Result<&rusqlite::Connection, &StoreError>) -> (bool, Deliver) + Send>;

/// The queue of the writer thread.
pub struct GroupCommit {
    queue: mpsc::Sender<Job>,
}

impl GroupCommit {
    /// Starts the writer thread over `pool`, taking `turn` (the store's writers' lock) for each batch.
    pub fn start(pool: r2d2::Pool<SqliteConnectionManager>, turn: Arc<Mutex<()>>) -> Result<Self, StoreError> {
        let (queue, jobs) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("dpo-sqlite-writer".into())
            .spawn(move || write_batches(&pool, &turn, &jobs))
            .map_err(|e| Failure::Opening { step: "starting the SQLite writer thread", source: e.into() })?;
        Ok(GroupCommit { queue })
    }

    /// Runs `write` in the next batch and returns its result once the batch is committed. Blocks: call
    /// it where blocking is allowed (the store's methods run on the blocking pool).
    pub fn run<T: Send + 'static>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (reply, outcome) = mpsc::sync_channel::<Result<T, StoreError>>(1);
        self.enqueue(write, move |result| {
            let _ = reply.send(result);
        })?;
        outcome.recv().map_err(|_| stopped())?
    }

    /// [`GroupCommit::run`] as a future: the caller holds no thread while its batch commits, so as many
    /// callers as are waiting share a commit, not only as many as the blocking pool has threads.
    pub fn queue<T: Send + 'static>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
    ) -> impl Future<Output = Result<T, StoreError>> + Send + 'static {
        let (reply, outcome) = tokio::sync::oneshot::channel::<Result<T, StoreError>>();
        let queued = self.enqueue(write, move |result| {
            let _ = reply.send(result);
        });
        async move {
            queued?;
            outcome.await.map_err(|_| stopped())?
        }
    }

    /// Queues `write` for the next batch; `reply` gets its result once the batch's fate is known.
    fn enqueue<T: Send + 'static>(
        &self,
        write: impl FnOnce(&rusqlite::Connection) -> Result<T, StoreError> + Send + 'static,
        reply: impl FnOnce(Result<T, StoreError>) + Send + 'static,
    ) -> Result<(), StoreError> {
        let job: Job = Box::new(move |conn| {
            let result = match conn {
                Ok(conn) => write(conn),
                Err(e) => Err(e.clone()),
            };
            let keep = result.is_ok();
            let deliver: Deliver = Box::new(move |committed| reply(committed.and(result)));
            (keep, deliver)
        });
        self.queue.send(job).map_err(|_| stopped())
    }
}

fn stopped() -> StoreError {
    Failure::WorkerGone("the SQLite writer thread").into()
}

/// The writer thread: takes what is queued (up to [`MAX_BATCH`]), runs it in one transaction, commits,
/// delivers; until every sender is gone.
fn write_batches(pool: &r2d2::Pool<SqliteConnectionManager>, turn: &Mutex<()>, jobs: &mpsc::Receiver<Job>) {
    while let Ok(first) = jobs.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match jobs.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let _turn = turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut deliveries = Vec::with_capacity(batch.len());
        let committed = commit_batch(pool, batch, &mut deliveries);
        for deliver in deliveries {
            deliver(match &committed {
                Ok(()) => Ok(()),
                Err(e) => Err(e.clone()),
            });
        }
    }
}

/// Runs `batch` in one transaction, each job in a savepoint, and commits it; every job's delivery goes
/// into `deliveries`, whatever happens.
fn commit_batch(
    pool: &r2d2::Pool<SqliteConnectionManager>,
    batch: Vec<Job>,
    deliveries: &mut Vec<Deliver>,
) -> Result<(), StoreError> {
    let mut conn = match pool.get() {
        Ok(conn) => conn,
        Err(e) => return refuse_all(batch, deliveries, StoreError::backend(e)),
    };
    let mut tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => return refuse_all(batch, deliveries, StoreError::backend(e)),
    };
    let mut jobs = batch.into_iter();
    while let Some(job) = jobs.next() {
        let savepoint = match tx.savepoint() {
            Ok(savepoint) => savepoint,
            Err(e) => {
                let e = StoreError::backend(e);
                let (_, deliver) = job(Err(&e));
                deliveries.push(deliver);
                return refuse_all(jobs.collect(), deliveries, e);
            }
        };
        let (keep, deliver) = job(Ok(&savepoint));
        deliveries.push(deliver);
        if keep {
            savepoint.commit().map_err(StoreError::backend)?;
        } // else dropped: rolled back to where the job began
    }
    tx.commit().map_err(StoreError::backend)
}

/// Tells every job of `batch` that it could not run, and returns the reason for the rest of the batch.
fn refuse_all(batch: Vec<Job>, deliveries: &mut Vec<Deliver>, why: StoreError) -> Result<(), StoreError> {
    for job in batch {
        let (_, deliver) = job(Err(&why));
        deliveries.push(deliver);
    }
    Err(why)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> (tempfile::TempDir, GroupCommit, r2d2::Pool<SqliteConnectionManager>) {
        let dir = tempfile::tempdir().expect("temp dir");
        let manager = SqliteConnectionManager::file(dir.path().join("t.sqlite"))
            .with_init(|c| c.execute_batch("PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL;"));
        let pool = r2d2::Pool::builder().max_size(4).build(manager).expect("pool");
        pool.get().unwrap().execute_batch("CREATE TABLE t (id INTEGER PRIMARY KEY)").unwrap();
        let commits = GroupCommit::start(pool.clone(), Arc::new(Mutex::new(()))).expect("writer");
        (dir, commits, pool)
    }

    #[test]
    fn concurrent_writes_all_land_and_a_failing_one_fails_alone() {
        let (_dir, commits, pool) = store();
        let commits = Arc::new(commits);
        let threads: Vec<_> = (0..64)
            .map(|i| {
                let commits = commits.clone();
                std::thread::spawn(move || {
                    // Every eighth write collides with an id another one writes.
                    let id = if i % 8 == 7 { i - 1 } else { i };
                    commits.run(move |conn| {
                        conn.execute("INSERT INTO t (id) VALUES (?1)", [id]).map_err(StoreError::backend)
                    })
                })
            })
            .collect();
        let outcomes: Vec<_> = threads.into_iter().map(|t| t.join().expect("thread")).collect();
        let failed = outcomes.iter().filter(|o| o.is_err()).count();
        assert_eq!(failed, 8, "each duplicate fails, and only it");
        let rows: i64 = pool.get().unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 56);
    }

    #[test]
    fn a_write_sees_the_writes_before_it_in_its_batch() {
        let (_dir, commits, _pool) = store();
        commits.run(|conn| conn.execute("INSERT INTO t (id) VALUES (1)", []).map_err(StoreError::backend)).unwrap();
        let next: i64 = commits
            .run(|conn| conn.query_row("SELECT max(id) + 1 FROM t", [], |r| r.get(0)).map_err(StoreError::backend))
            .unwrap();
        assert_eq!(next, 2);
    }

    #[tokio::test(flavor = "current_thread")]
    async fn queued_writes_are_awaited_on_one_thread_and_a_failing_one_fails_alone() {
        let (_dir, commits, pool) = store();
        // One runtime thread and no blocking pool in use: 64 writes in flight at once can only be
        // awaited, not waited for on threads of their own.
        let queued: Vec<_> = (0..64)
            .map(|i: i64| {
                let id = if i % 8 == 7 { i - 1 } else { i };
                commits.queue(move |conn| {
                    conn.execute("INSERT INTO t (id) VALUES (?1)", [id]).map_err(StoreError::backend)
                })
            })
            .collect();
        let outcomes = futures::future::join_all(queued).await;
        assert_eq!(outcomes.iter().filter(|o| o.is_err()).count(), 8, "each duplicate fails, and only it");
        let rows: i64 = pool.get().unwrap().query_row("SELECT count(*) FROM t", [], |r| r.get(0)).unwrap();
        assert_eq!(rows, 56);
    }
}
