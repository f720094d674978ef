//! A `sql` source's erase statements tried without changing anything: prepared (`sources check`) or run
//! for a person (`sources preview --erase`, and a `delete` request's estimate) inside a transaction that is
//! always rolled back, under a time limit, on the source's writing connection. Identities are bound as
//! parameters, as in queries.

use super::{Identities, SourceError, file::Database, params::positional, values};
use std::time::Duration;
use tokio_postgres::{NoTls, types::ToSql};

/// How long one statement may run when it is only estimated.
pub const ESTIMATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The rows `sql` would change for `who`, run inside a transaction that is rolled back; with `who` absent
/// it is only prepared (0). A statement running past `timeout` is stopped and fails.
pub async fn rolled_back(
    database: &Database,
    sql: &str,
    who: Option<&Identities>,
    timeout: Duration,
) -> Result<u64, SourceError> {
    match database {
        Database::Postgres(url) => {
            let query = positional(sql, |n| format!("${n}"));
            let bound: Vec<values::TextParameter> = query
                .names
                .iter()
                .map(|name| values::TextParameter(who.and_then(|w| w.get(name)).map(str::to_string)))
                .collect();
            let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
            let driver = tokio::spawn(connection);
            let changed = async {
                let tx = client.transaction().await?;
                tx.batch_execute(&format!("SET LOCAL statement_timeout = {}", timeout.as_millis())).await?;
                let statement = tx.prepare(&query.text).await?;
                let changed = match who {
                    Some(_) => {
                        let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                        tx.execute(&statement, &params).await?
                    }
                    None => 0,
                };
                tx.rollback().await?;
                Ok::<_, SourceError>(changed)
            }
            .await;
            drop(client);
            driver.abort();
            changed
        }
        Database::Sqlite(path) => {
            let query = positional(sql, |n| format!("?{n}"));
            let bound: Option<Vec<Option<String>>> =
                who.map(|w| query.names.iter().map(|name| w.get(name).map(str::to_string)).collect());
            let path = path.clone();
            tokio::task::spawn_blocking(move || {
                // Read-write (never created): a missing file is an error, not a new empty database.
                let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
                let mut conn = rusqlite::Connection::open_with_flags(&path, flags)
                    .map_err(|cause| SourceError::SqliteOpen { path: path.clone(), cause })?;
                conn.busy_timeout(timeout)?;
                // Interrupted from a watcher once the time is up; the watcher ends with the statement.
                let (done, finished) = std::sync::mpsc::channel::<()>();
                let interrupt = conn.get_interrupt_handle();
                std::thread::spawn(move || {
                    if let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = finished.recv_timeout(timeout) {
                        interrupt.interrupt();
                    }
                });
                let _done = done;
                let tx = conn.transaction()?;
                let changed = {
                    let mut statement = tx.prepare(&query.text)?;
                    match &bound {
                        Some(bound) => statement.execute(rusqlite::params_from_iter(bound.iter()))? as u64,
                        None => 0,
                    }
                };
                tx.rollback()?;
                Ok(changed)
            })
            .await
            .map_err(|_| SourceError::Interrupted)?
        }
    }
}
