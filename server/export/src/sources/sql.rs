//! Runs a `sql` source's query for one person and streams its rows, a batch at a time, never the whole
//! result in memory: PostgreSQL through a cursor (a portal fetched [`BATCH`] rows at a time, in a
//! read-only transaction), SQLite by stepping the statement on a blocking thread (opened read-only).
//! Identities are always bound as parameters.

use super::{
    Identities, Query, SourceError, encode::Encoder, file::Database, file::Format, params::positional, values,
};
use tokio::sync::mpsc;
use tokio_postgres::{NoTls, types::ToSql};

/// A query's rows for one person as the bytes of its file, a piece at a time: what an export writes and
/// what `sources preview` counts.
pub struct EncodedRows {
    rows: Rows,
}

impl EncodedRows {
    /// Starts `query` on `database` for `who` (see [`run`]).
    pub async fn start(database: &Database, query: &Query, who: &Identities) -> Result<EncodedRows, SourceError> {
        Ok(EncodedRows { rows: run(database, &query.sql, query.format, who).await? })
    }

    /// The next piece of the file and how many rows it holds (the CSV header first, with none); `None`
    /// once every row was read.
    pub async fn next(&mut self) -> Option<Result<(Vec<u8>, u64), SourceError>> {
        self.rows.next().await
    }
}

/// Rows fetched and handed on at a time (PostgreSQL's first batch; SQLite's every batch).
pub const BATCH: usize = 1000;
/// About how many bytes of rows PostgreSQL sends a batch: small rows come many at a time (fewer round
/// trips), large ones few (memory stays bounded by bytes, not by rows).
const BATCH_BYTES: usize = 1 << 20;
/// The fewest and most rows a PostgreSQL batch asks for.
const BATCH_ROWS: (usize, usize) = (16, 16_384);

/// How many rows to ask for after a batch of `rows` rows that were written as `bytes` bytes: about
/// [`BATCH_BYTES`] of rows their size.
fn batch_after(rows: usize, bytes: usize) -> usize {
    if rows == 0 {
        return BATCH;
    }
    (BATCH_BYTES.saturating_mul(rows) / bytes.max(1)).clamp(BATCH_ROWS.0, BATCH_ROWS.1)
}
/// Batches waiting for the writer at most: the bound on a query's memory.
const AHEAD: usize = 2;

/// A query's result, written in a format as it is read: its column names, then the bytes of its rows a
/// batch at a time (encoded by the task that reads them, so that no row is held twice).
pub struct Rows {
    /// Column names, in the query's order.
    pub columns: Vec<String>,
    batches: mpsc::Receiver<Result<(Vec<u8>, u64), SourceError>>,
}

impl Rows {
    /// The next piece of the file (the CSV header first) and how many rows it holds; `None` once every
    /// row was read.
    pub async fn next(&mut self) -> Option<Result<(Vec<u8>, u64), SourceError>> {
        self.batches.recv().await
    }
}

/// Starts `sql` on `database` for the person `who`, its rows written as `format`; answers once the
/// columns are known (a query that does not prepare fails here, before anything is written).
pub async fn run(database: &Database, sql: &str, format: Format, who: &Identities) -> Result<Rows, SourceError> {
    match database {
        Database::Postgres(url) => postgres(url.clone(), sql, format, who).await,
        Database::Sqlite(path) => sqlite(path.clone(), sql, format, who).await,
    }
}

/// The CSV header, as the first piece (JSON lines have none).
fn header(encoder: &mut Encoder) -> Result<Option<(Vec<u8>, u64)>, SourceError> {
    let header = encoder.header()?;
    Ok((!header.is_empty()).then_some((header, 0)))
}

/// PostgreSQL's positional parameters: `$1`.
fn dollar(position: usize) -> String {
    format!("${position}")
}

/// SQLite's positional parameters: `?1`.
fn question(position: usize) -> String {
    format!("?{position}")
}

/// `text` prepared in `tx`, how each of its columns is read, and their names: a column type dpo cannot
/// export fails here, before any row.
async fn prepare(
    tx: &tokio_postgres::Transaction<'_>,
    text: &str,
) -> Result<(tokio_postgres::Statement, Vec<values::PostgresKind>, Vec<String>), SourceError> {
    let statement = tx.prepare(text).await?;
    let kinds = values::check_postgres_columns(statement.columns())?;
    let names = statement.columns().iter().map(|c| c.name().to_string()).collect();
    Ok((statement, kinds, names))
}

/// The SQLite database at `path`, opened read-only: an export never writes to it.
fn open_sqlite(path: &std::path::Path) -> Result<rusqlite::Connection, SourceError> {
    let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
    rusqlite::Connection::open_with_flags(path, flags)
        .map_err(|cause| SourceError::SqliteOpen { path: path.to_path_buf(), cause })
}

async fn postgres(url: String, sql: &str, format: Format, who: &Identities) -> Result<Rows, SourceError> {
    let query = positional(sql, dollar);
    let bound: Vec<values::TextParameter> =
        query.names.iter().map(|name| values::TextParameter(who.get(name).map(str::to_string))).collect();
    let (mut client, connection) = tokio_postgres::connect(&url, NoTls).await.map_err(SourceError::Postgres)?;
    let driver = tokio::spawn(connection);
    let (columns_sender, columns) = tokio::sync::oneshot::channel();
    let (sender, batches) = mpsc::channel(AHEAD);
    tokio::spawn(async move {
        let mut columns_sender = Some(columns_sender);
        let result = async {
            let tx = client.build_transaction().read_only(true).start().await?;
            let (statement, types, names) = prepare(&tx, &query.text).await?;
            let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
            let portal = tx.bind(&statement, &params).await?;
            let mut encoder = Encoder::new(format, names.clone());
            if let Some(columns) = columns_sender.take() {
                let _ = columns.send(Ok(names));
            }
            if let Some(header) = header(&mut encoder)?
                && sender.send(Ok(header)).await.is_err()
            {
                return Ok(());
            }
            let (mut asked, mut size) = (BATCH, BATCH);
            let mut rows = tx.query_portal(&portal, asked as i32).await?;
            loop {
                let done = rows.len() < asked;
                // The next batch is asked for before this one is written out, so the database works
                // while dpo encodes; its size follows the size of the rows written so far.
                let next = async { if done { Ok(Vec::new()) } else { tx.query_portal(&portal, size as i32).await } };
                let encode = async {
                    for row in &rows {
                        encoder.push(types.iter().enumerate().map(|(i, kind)| values::postgres_cell(row, i, *kind)))?;
                    }
                    Ok::<_, SourceError>((encoder.take()?, rows.len() as u64))
                };
                let (next, encoded) = futures::join!(next, encode);
                let encoded = encoded?;
                let asking = size;
                size = batch_after(rows.len(), encoded.0.len());
                if encoded.1 > 0 && sender.send(Ok(encoded)).await.is_err() {
                    break; // the writer stopped reading
                }
                if done {
                    break;
                }
                (rows, asked) = (next?, asking);
            }
            tx.rollback().await?;
            Ok::<_, SourceError>(())
        }
        .await;
        drop(client);
        driver.abort();
        if let Err(e) = result {
            // Before the columns were known the error answers `run`; afterwards it ends the rows.
            match columns_sender.take() {
                Some(columns) => {
                    let _ = columns.send(Err(e));
                }
                None => {
                    let _ = sender.send(Err(e)).await;
                }
            }
        }
    });
    let columns = columns.await.map_err(|_| SourceError::Interrupted)??;
    Ok(Rows { columns, batches })
}

async fn sqlite(path: std::path::PathBuf, sql: &str, format: Format, who: &Identities) -> Result<Rows, SourceError> {
    let query = positional(sql, question);
    let bound: Vec<Option<String>> = query.names.iter().map(|name| who.get(name).map(str::to_string)).collect();
    let (columns_sender, columns) = tokio::sync::oneshot::channel();
    let (sender, batches) = mpsc::channel(AHEAD);
    tokio::task::spawn_blocking(move || {
        let mut columns_sender = Some(columns_sender);
        let result = (|| {
            let conn = open_sqlite(&path)?;
            let mut statement = conn.prepare(&query.text)?;
            let names: Vec<String> = statement.column_names().into_iter().map(str::to_string).collect();
            let width = names.len();
            let mut rows = statement.query(rusqlite::params_from_iter(bound.iter()))?;
            let mut encoder = Encoder::new(format, names.clone());
            if let Some(columns) = columns_sender.take() {
                let _ = columns.send(Ok(names));
            }
            if let Some(header) = header(&mut encoder)?
                && sender.blocking_send(Ok(header)).is_err()
            {
                return Ok(());
            }
            let mut count = 0;
            while let Some(row) = rows.next()? {
                encoder.push((0..width).map(|i| row.get_ref(i).map(values::sqlite_cell).map_err(SourceError::from)))?;
                count += 1;
                if count == BATCH as u64 && sender.blocking_send(Ok((encoder.take()?, count))).is_err() {
                    return Ok(());
                }
                count %= BATCH as u64;
            }
            if count > 0 {
                let _ = sender.blocking_send(Ok((encoder.take()?, count)));
            }
            Ok::<_, SourceError>(())
        })();
        if let Err(e) = result {
            match columns_sender.take() {
                Some(columns) => {
                    let _ = columns.send(Err(e));
                }
                None => {
                    let _ = sender.blocking_send(Err(e));
                }
            }
        }
    });
    let columns = columns.await.map_err(|_| SourceError::Interrupted)??;
    Ok(Rows { columns, batches })
}

/// How many rows each of `queries` finds for `who`, all on one read-only connection (`SELECT count(*)`
/// around each): what a `delete` request's verification reads, without encoding a row.
pub async fn counts(database: &Database, queries: &[String], who: &Identities) -> Result<Vec<u64>, SourceError> {
    let counting = |sql: &str| format!("SELECT count(*) FROM ({}) AS counted", sql.trim().trim_end_matches(';'));
    match database {
        Database::Postgres(url) => {
            let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
            let driver = tokio::spawn(connection);
            let counted = async {
                let tx = client.build_transaction().read_only(true).start().await?;
                let mut counts = Vec::new();
                for sql in queries {
                    let query = positional(&counting(sql), dollar);
                    let bound: Vec<values::TextParameter> = query
                        .names
                        .iter()
                        .map(|name| values::TextParameter(who.get(name).map(str::to_string)))
                        .collect();
                    let params: Vec<&(dyn ToSql + Sync)> = bound.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
                    let row = tx.query_one(&query.text, &params).await?;
                    counts.push(u64::try_from(row.get::<_, i64>(0)).unwrap_or_default());
                }
                Ok(counts)
            }
            .await;
            drop(client);
            driver.abort();
            counted
        }
        Database::Sqlite(path) => {
            let path = path.clone();
            let queries: Vec<(String, Vec<Option<String>>)> = queries
                .iter()
                .map(|sql| {
                    let query = positional(&counting(sql), question);
                    let bound = query.names.iter().map(|name| who.get(name).map(str::to_string)).collect();
                    (query.text, bound)
                })
                .collect();
            tokio::task::spawn_blocking(move || {
                let conn = open_sqlite(&path)?;
                let mut counts = Vec::new();
                for (text, bound) in &queries {
                    let n: i64 = conn.query_row(text, rusqlite::params_from_iter(bound.iter()), |row| row.get(0))?;
                    counts.push(u64::try_from(n).unwrap_or_default());
                }
                Ok(counts)
            })
            .await
            .map_err(|_| SourceError::Interrupted)?
        }
    }
}

/// Prepares `sql` on `database` without running it and returns its column names: what `sources check`
/// reports (the connection, the statement and its column types are all checked).
pub async fn describe(database: &Database, sql: &str) -> Result<Vec<String>, SourceError> {
    match database {
        Database::Postgres(url) => {
            let query = positional(sql, dollar);
            let (mut client, connection) = tokio_postgres::connect(url, NoTls).await?;
            let driver = tokio::spawn(connection);
            let described = async {
                let tx = client.build_transaction().read_only(true).start().await?;
                Ok(prepare(&tx, &query.text).await?.2)
            }
            .await;
            drop(client);
            driver.abort();
            described
        }
        Database::Sqlite(path) => {
            let (path, query) = (path.clone(), positional(sql, question));
            tokio::task::spawn_blocking(move || {
                let conn = open_sqlite(&path)?;
                let statement = conn.prepare(&query.text)?;
                Ok(statement.column_names().into_iter().map(str::to_string).collect())
            })
            .await
            .map_err(|_| SourceError::Interrupted)?
        }
    }
}
