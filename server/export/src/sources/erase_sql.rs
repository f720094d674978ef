//! A `sql` source's erase statements on its writing connection, each in a transaction of its own that
//! waits for its caller to commit it or roll it back ([`Uncommitted`]): a `delete` request records the rows
//! a statement changed, under its lease, before committing it; `sources check` (prepared only), `sources
//! preview --erase` and a `delete` request's estimate always roll back. Identities are bound as
//! parameters, as in queries, and every statement runs under a time limit.

use super::{Identities, SourceError, file::Database, params::positional, values};
use std::time::Duration;
use tokio::sync::oneshot;
use tokio_postgres::{NoTls, types::ToSql};

/// How long one statement may run when it is only estimated.
pub const ESTIMATE_TIMEOUT: Duration = Duration::from_secs(30);

/// How long one statement may run when it erases.
pub const ERASE_TIMEOUT: Duration = Duration::from_secs(300);

/// A statement that ran in a transaction not yet ended. Dropped without a decision, it is rolled back.
pub struct Uncommitted {
    /// Rows it changed.
    pub changed: u64,
    decide: oneshot::Sender<bool>,
    ended: oneshot::Receiver<Result<(), SourceError>>,
}

impl Uncommitted {
    /// Commits the transaction.
    pub async fn commit(self) -> Result<(), SourceError> {
        self.end(true).await
    }

    /// Rolls the transaction back, and returns the rows the statement had changed.
    pub async fn roll_back(self) -> Result<u64, SourceError> {
        let changed = self.changed;
        self.end(false).await.map(|()| changed)
    }

    async fn end(self, commit: bool) -> Result<(), SourceError> {
        self.decide.send(commit).map_err(|_| SourceError::Interrupted)?;
        self.ended.await.unwrap_or(Err(SourceError::Interrupted))
    }
}

/// The rows `sql` would change for `who`, run inside a transaction that is rolled back; with `who` absent
/// it is only prepared (0). A statement running past `timeout` is stopped and fails.
pub async fn rolled_back(
    database: &Database,
    sql: &str,
    who: Option<&Identities>,
    timeout: Duration,
) -> Result<u64, SourceError> {
    Session::open(database).run(sql, who, timeout).await?.roll_back().await
}

/// One writing connection that runs statements one after another, each in a transaction of its own (a
/// `delete` request's steps of one source share it instead of connecting for each). It ends when dropped,
/// once the statement it runs has ended.
pub struct Session {
    database: Database,
    statements: tokio::sync::mpsc::Sender<Statement>,
}

/// A statement for a [`Session`], with where to say what it changed and to hear whether to commit.
struct Statement {
    /// With positional parameters, as the driver takes them.
    text: String,
    /// The values of the parameters; `None`: only prepare it.
    bound: Option<Vec<Option<String>>>,
    timeout: Duration,
    ran: oneshot::Sender<Result<u64, SourceError>>,
    decided: oneshot::Receiver<bool>,
    ending: oneshot::Sender<Result<(), SourceError>>,
}

impl Session {
    /// Starts the session's connection to `database` (connected when its first statement comes).
    pub fn open(database: &Database) -> Session {
        let (statements, mut received) = tokio::sync::mpsc::channel::<Statement>(1);
        match database {
            Database::Postgres(url) => {
                let url = url.clone();
                tokio::spawn(async move {
                    let Some(first) = received.recv().await else { return };
                    let (mut client, connection) = match tokio_postgres::connect(&url, NoTls).await {
                        Ok(connected) => connected,
                        Err(e) => {
                            let _ = first.ran.send(Err(e.into()));
                            return;
                        }
                    };
                    let driver = tokio::spawn(connection);
                    let mut next = Some(first);
                    while let Some(statement) = next.take() {
                        let Statement { text, bound, timeout, ran, decided, ending } = statement;
                        let executed = async {
                            let tx = client.transaction().await?;
                            tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", timeout.as_millis())).await?;
                            let prepared = tx.prepare(&text).await?;
                            let changed = match &bound {
                                Some(bound) => {
                                    let values: Vec<values::TextParameter> =
                                        bound.iter().cloned().map(values::TextParameter).collect();
                                    let params: Vec<&(dyn ToSql + Sync)> =
                                        values.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                                    tx.execute(&prepared, &params).await?
                                }
                                None => 0,
                            };
                            Ok::<_, SourceError>((tx, changed))
                        }
                        .await;
                        match executed {
                            Err(e) => {
                                let _ = ran.send(Err(e));
                            }
                            // The caller gone, the transaction is dropped: rolled back.
                            Ok((tx, changed)) if ran.send(Ok(changed)).is_ok() => {
                                let outcome = match decided.await {
                                    Ok(true) => tx.commit().await,
                                    _ => tx.rollback().await,
                                };
                                let _ = ending.send(outcome.map_err(SourceError::from));
                            }
                            Ok(_) => {}
                        }
                        next = received.recv().await;
                    }
                    driver.abort();
                });
            }
            Database::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    let Some(first) = received.blocking_recv() else { return };
                    // Read-write (never created): a missing file is an error, not a new empty database.
                    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                    let mut conn = match rusqlite::Connection::open_with_flags(&path, flags) {
                        Ok(conn) => conn,
                        Err(cause) => {
                            let _ = first.ran.send(Err(SourceError::SqliteOpen { path: path.clone(), cause }));
                            return;
                        }
                    };
                    let mut next = Some(first);
                    while let Some(Statement { text, bound, timeout, ran, decided, ending }) = next.take() {
                        match begin_sqlite(&mut conn, &text, bound.as_deref(), timeout) {
                            Err(e) => {
                                let _ = ran.send(Err(e));
                            }
                            Ok((tx, changed)) if ran.send(Ok(changed)).is_ok() => {
                                let outcome = match decided.blocking_recv() {
                                    Ok(true) => tx.commit(),
                                    _ => tx.rollback(),
                                };
                                let _ = ending.send(outcome.map_err(SourceError::from));
                            }
                            Ok(_) => {}
                        }
                        next = received.blocking_recv();
                    }
                });
            }
        }
        Session { database: database.clone(), statements }
    }

    /// Runs `sql` for `who` (only prepares it when `who` is absent) in a transaction of its own, left open
    /// for the caller to end; the session's next statement waits until it has ended. A statement running
    /// past `timeout` is stopped and fails.
    pub async fn run(
        &self,
        sql: &str,
        who: Option<&Identities>,
        timeout: Duration,
    ) -> Result<Uncommitted, SourceError> {
        let query = match self.database {
            Database::Postgres(_) => positional(sql, |n| format!("${n}")),
            Database::Sqlite(_) => positional(sql, |n| format!("?{n}")),
        };
        let bound = who.map(|w| query.names.iter().map(|name| w.get(name).map(str::to_string)).collect());
        let (ran, changed) = oneshot::channel();
        let (decide, decided) = oneshot::channel();
        let (ending, ended) = oneshot::channel();
        let statement = Statement { text: query.text, bound, timeout, ran, decided, ending };
        self.statements.send(statement).await.map_err(|_| SourceError::Interrupted)?;
        let changed = changed.await.unwrap_or(Err(SourceError::Interrupted))?;
        Ok(Uncommitted { changed, decide, ended })
    }
}

/// Runs `sql` (bound to `bound`, or only prepared) in an immediate transaction of `conn`, interrupted once
/// `timeout` is up, and returns the transaction still open with the rows it changed.
fn begin_sqlite<'c>(
    conn: &'c mut rusqlite::Connection,
    sql: &str,
    bound: Option<&[Option<String>]>,
    timeout: Duration,
) -> Result<(rusqlite::Transaction<'c>, u64), SourceError> {
    conn.busy_timeout(timeout)?;
    // Interrupted from a watcher once the time is up; the watcher ends with the statement.
    let (done, finished) = std::sync::mpsc::channel::<()>();
    let interrupt = conn.get_interrupt_handle();
    std::thread::spawn(move || {
        if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
            interrupt.interrupt();
        }
    });
    // Immediate: the write lock is taken at the start, never upgraded midway.
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let changed = {
        let mut statement = tx.prepare(sql)?;
        match bound {
            Some(bound) => statement.execute(rusqlite::params_from_iter(bound.iter()))? as u64,
            None => 0,
        }
    };
    drop(done);
    Ok((tx, changed))
}
