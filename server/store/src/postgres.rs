//! PostgreSQL, for several servers over one database (`--database postgres://…`).
//!
//! Driver and pool: `tokio-postgres` (the maintained PostgreSQL client of the Rust ecosystem, with
//! pipelining and LISTEN/NOTIFY) pooled by `deadpool-postgres` (which also caches prepared statements per
//! connection, so a statement costs one round trip). The store's synchronous traits (the engine's and the
//! tools' way in, as SQLite's nature makes them) hand each call to a small runtime the store owns and wait
//! for the answer on a plain channel: safe from any thread, including a test's async one. The request
//! path instead awaits the same calls as futures ([`AsyncOperations`], [`AsyncDirectory`]): no thread
//! waits for them, and its reads (a GET, a page, a count) share a few pipelined connections
//! ([`readers`]). On a small machine those thread hand-offs were most of a GET's cost. The
//! synchronous `postgres` crate could not be used: it starts a runtime of its own per connection and
//! panics when called, or dropped, inside another.
//! Statements are the same sea-query statements as SQLite's ([`super::sql`]), built for PostgreSQL.
//!
//! Migrations (`server/store/migrations/postgres/`, numbered as SQLite's) run at start inside a transaction
//! holding an advisory lock, so replicas starting together apply each one once. Nothing is cached: other
//! servers write the same rows. New exports and exports handed back are announced on the channel
//! [`QUEUE_CHANNEL`] (`NOTIFY`), which [`PostgresStore::listen`] turns into a wake-up of the engine.

use super::{
    ActivityRecord, AsyncDirectory, AsyncOperations, AuditEvent, AuditLog, AuditPage, Claim, Directory, ExportLedger,
    ExportedObject, JobQueue, ListRequest, OperationRecord, Operations, Pending, StoreError, UserRecord, decode,
    failure::{Failure, Unwritable},
    requests::{NoteRecord, RequestList, RequestRecord, SubjectRightsRequests},
    statements::{self, Statement, requests},
    timing,
};
use chrono::{DateTime, Utc};
use deadpool_postgres::{GenericClient, Manager, ManagerConfig, Pool, RecyclingMethod};
use dpo_domain::odata::filter::Filter;
use dpo_model::DataPolicyOperationStatus;
use sea_query::{PostgresQueryBuilder, UpdateStatement};
use sea_query_postgres::{PostgresBinder, PostgresValues};
use std::{future::Future, sync::Arc, time::Duration};
use tokio::sync::Notify;
use tokio_postgres::{AsyncMessage, NoTls, Row, error::SqlState};
use uuid::Uuid;

/// PostgreSQL's migrations, numbered as SQLite's.
const MIGRATIONS: [(i64, &str); 17] = [
    (1, include_str!("../migrations/postgres/0001_operations.sql")),
    (2, include_str!("../migrations/postgres/0002_users.sql")),
    (3, include_str!("../migrations/postgres/0003_export.sql")),
    (4, include_str!("../migrations/postgres/0004_tenants.sql")),
    (5, include_str!("../migrations/postgres/0005_tenant_indexes.sql")),
    (6, include_str!("../migrations/postgres/0006_export_objects.sql")),
    (7, include_str!("../migrations/postgres/0007_storage_secret.sql")),
    (8, include_str!("../migrations/postgres/0008_export_object_etags.sql")),
    (9, include_str!("../migrations/postgres/0009_leases.sql")),
    (10, include_str!("../migrations/postgres/0010_id_order_indexes.sql")),
    (11, include_str!("../migrations/postgres/0011_export_object_rows.sql")),
    (12, include_str!("../migrations/postgres/0012_user_attributes.sql")),
    (13, include_str!("../migrations/postgres/0013_audit.sql")),
    (14, include_str!("../migrations/postgres/0014_unique_mail.sql")),
    (15, include_str!("../migrations/postgres/0015_subject_rights_requests.sql")),
    (16, include_str!("../migrations/postgres/0016_request_jobs.sql")),
    (17, include_str!("../migrations/postgres/0017_request_erasure.sql")),
];

/// How many migrations a database brought up to date has applied.
pub const MIGRATION_COUNT: usize = MIGRATIONS.len();

/// Key of the advisory lock migrations run under ("dpo" in ASCII).
const MIGRATION_LOCK: i64 = 0x64_70_6f;

/// The channel on which new and handed-back exports are announced to every replica.
pub const QUEUE_CHANNEL: &str = "dpo_export_queue";

/// Prepared statements a pooled connection keeps before it forgets them all (list queries vary with
/// their `$filter`, so the cache must not grow without bound).
const STATEMENTS_PER_CONNECTION: usize = 512;

mod readers;

/// Connections shared by the request path's reads (see [`readers`]).
const SHARED_READERS: usize = 2;

/// Operations, users and the export queue in a PostgreSQL database.
pub struct PostgresStore {
    pool: Pool,
    readers: Arc<readers::Readers>,
    config: tokio_postgres::Config,
    /// Runs every statement; shut down in the background when the store is dropped.
    runtime: Option<tokio::runtime::Runtime>,
    /// Audit events waiting for [`append_batches`].
    audit_queue: tokio::sync::mpsc::UnboundedSender<QueuedEvent>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Dropping a runtime waits for its threads, which a caller's async thread may not do.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A driver's error as the store's: [`StoreError::Unavailable`] when the connection, not the statement,
/// failed (closed, refused, an I/O error, the server shutting down or not accepting connections yet).
fn pg(e: tokio_postgres::Error) -> StoreError {
    use tokio_postgres::error::SqlState;
    let unavailable = e.is_closed()
        || match e.code() {
            None => e.as_db_error().is_none(),
            Some(code) => {
                code.code().starts_with("08")
                    || [SqlState::ADMIN_SHUTDOWN, SqlState::CRASH_SHUTDOWN, SqlState::CANNOT_CONNECT_NOW].contains(code)
            }
        };
    if unavailable { StoreError::unavailable(e) } else { StoreError::backend(e) }
}

/// A pool's failure to hand out a connection: the database could not be reached in time.
fn unreachable(e: impl std::error::Error + Send + Sync + 'static) -> StoreError {
    Failure::Connecting(Box::new(e)).into()
}

impl PostgresStore {
    /// Replaces a request at the version before `record`'s, queueing `job` with it (and announcing it),
    /// appending `event` to its tenant's trail and, with `fence`, only while that claim holds its operation,
    /// whose lease it extends: one transaction.
    fn replace_request_fenced(
        &self,
        record: &RequestRecord,
        job: Option<&OperationRecord>,
        fence: Option<(&Claim, DateTime<Utc>)>,
        event: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let statement = requests::replace_request(record).map_err(|source| Unwritable { what: "a request", source })?;
        let (statement, probe) = (built(statement), built(requests::request_version(&record.tenant_id, record.id)));
        let queued = job.map(|job| built(statements::insert_operations(std::slice::from_ref(job))));
        let heartbeat = fence.map(|(claim, until)| (built(statements::heartbeat(claim, &until)), claim.operation.id));
        let (id, expected) = (record.id, record.version.saturating_sub(1));
        self.with(move |mut conn| async move {
            let tx = conn.transaction().await.map_err(pg)?;
            if let Some(event) = &event {
                // The chain's lock first, as the audit writer takes it, before any row's.
                lock_chain(&tx, &event.tenant_id).await?;
            }
            if let Some((heartbeat, operation)) = heartbeat
                && execute(&tx, heartbeat).await? == 0
            {
                return Err(lost(&tx, operation).await);
            }
            if execute(&tx, statement).await? == 1 {
                if let Some(queued) = queued {
                    execute(&tx, queued).await?;
                    Self::announce(&tx).await?;
                }
                if let Some(event) = event {
                    append_locked(&tx, event).await?;
                }
                return tx.commit().await.map_err(pg);
            }
            Err(not_replaced(&tx, probe, id, expected).await)
        })
    }

    /// Connects to `url` (a `postgres://` URL), with up to `connections` pooled connections, and brings
    /// the schema up to date.
    pub fn open(url: &str, connections: u32) -> Result<PostgresStore, StoreError> {
        let config: tokio_postgres::Config = url
            .parse()
            .map_err(|e: tokio_postgres::Error| Failure::Opening { step: "the database URL", source: e.into() })?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("dpo-postgres")
            .enable_all()
            .build()
            .map_err(|e| Failure::Opening { step: "starting the database runtime", source: e.into() })?;
        let manager =
            Manager::from_config(config.clone(), NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(connections.max(2) as usize)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(10)))
            .build()
            .map_err(|e| Failure::Opening { step: "the database pool", source: e.into() })?;
        let readers = Arc::new(readers::Readers::new(config.clone(), runtime.handle().clone(), SHARED_READERS));
        let (audit_queue, queued) = tokio::sync::mpsc::unbounded_channel();
        runtime.spawn(append_batches(pool.clone(), queued));
        let store = PostgresStore { pool, readers, config, runtime: Some(runtime), audit_queue };
        let pool = store.pool.clone();
        store.run(async move { migrate(&pool).await })?;
        Ok(store)
    }

    /// Runs `work` on the store's runtime and waits for it on this thread.
    fn run<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| StoreError::from(Failure::Closed))?;
        let (answer, answered) = std::sync::mpsc::sync_channel(1);
        runtime.spawn(async move {
            let _ = answer.send(work.await);
        });
        answered.recv().map_err(|_| StoreError::from(Failure::WorkerGone("the database task")))?
    }

    /// Runs `work` with a pooled connection on the store's runtime, and waits for it.
    fn with<T, F>(&self, work: impl FnOnce(deadpool_postgres::Client) -> F + Send + 'static) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let pool = self.pool.clone();
        self.run(async move { work(connection(&pool).await?).await })
    }

    /// `work` with a pooled connection, run on the store's runtime, as a future the caller awaits on its
    /// own: the async request path reaches the database with one task hand-off and no thread blocked.
    fn pending<T, F>(&self, work: impl FnOnce(deadpool_postgres::Client) -> F + Send + 'static) -> Pending<T>
    where
        T: Send + 'static,
        F: Future<Output = Result<T, StoreError>> + Send + 'static,
    {
        let Some(runtime) = self.runtime.as_ref() else {
            return Box::pin(std::future::ready(Err(StoreError::from(Failure::Closed))));
        };
        let pool = self.pool.clone();
        let task = runtime.spawn(async move { work(connection(&pool).await?).await });
        Box::pin(async move { task.await.map_err(|e| StoreError::from(Failure::Task(e)))? })
    }

    /// Stores many operations in one transaction (bulk loads: benchmarks, migrations from elsewhere).
    pub fn insert_many(&self, records: &[OperationRecord]) -> Result<usize, StoreError> {
        self.in_transaction(records.chunks(1000).map(|chunk| built(statements::insert_operations(chunk))).collect())?;
        Ok(records.len())
    }

    /// Runs a fenced update that returns the record; a match of nothing means the claim is lost.
    fn finish(&self, claim: &Claim, update: UpdateStatement) -> Result<OperationRecord, StoreError> {
        let (id, statement) = (claim.operation.id, built(update));
        self.with(move |conn| async move {
            match query(&conn, statement, decode::operation).await?.pop() {
                Some(op) => Ok(op),
                None => Err(lost(&conn, id).await),
            }
        })
    }

    /// Runs a fenced update; a match of nothing means the claim is lost.
    fn fenced(&self, claim: &Claim, update: UpdateStatement) -> Result<(), StoreError> {
        let (id, statement) = (claim.operation.id, built(update));
        self.with(move |conn| async move {
            match execute(&conn, statement).await? {
                0 => Err(lost(&conn, id).await),
                _ => Ok(()),
            }
        })
    }

    /// Queues `event` (and `insert`) for [`append_batches`]; resolves once its transaction committed.
    fn queue_event(&self, event: AuditEvent, insert: Option<QueuedInsert>) -> Pending<AuditEvent> {
        let (answer, answered) = tokio::sync::oneshot::channel();
        if self.audit_queue.send(QueuedEvent { event, insert, answer }).is_err() {
            return Box::pin(std::future::ready(Err(StoreError::from(Failure::WorkerGone("the audit writer")))));
        }
        Box::pin(async move { answered.await.map_err(|_| StoreError::from(Failure::WorkerGone("the audit writer")))? })
    }

    /// Tells every replica's engine that an export waits.
    async fn announce(conn: &impl GenericClient) -> Result<(), StoreError> {
        conn.execute("SELECT pg_notify($1, '')", &[&QUEUE_CHANNEL]).await.map(|_| ()).map_err(pg)
    }
}

/// A connection from `pool`, with its statement cache kept bounded.
async fn connection(pool: &Pool) -> Result<deadpool_postgres::Client, StoreError> {
    let conn = pool.get().await.map_err(unreachable)?;
    if conn.statement_cache.size() > STATEMENTS_PER_CONNECTION {
        conn.statement_cache.clear();
    }
    Ok(conn)
}

/// Applies the migrations not applied yet, in one transaction under the migration lock.
async fn migrate(pool: &Pool) -> Result<(), StoreError> {
    let mut conn = connection(pool).await?;
    let tx = conn.transaction().await.map_err(pg)?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await.map_err(pg)?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS dpo_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL \
         DEFAULT now())",
    )
    .await
    .map_err(pg)?;
    let applied: Vec<i64> =
        tx.query("SELECT version FROM dpo_migrations", &[]).await.map_err(pg)?.iter().map(|row| row.get(0)).collect();
    for (version, text) in MIGRATIONS {
        if applied.contains(&version) {
            continue;
        }
        tx.batch_execute(text).await.map_err(|e| Failure::Migration { version, source: e.into() })?;
        tx.execute("INSERT INTO dpo_migrations (version) VALUES ($1)", &[&version]).await.map_err(pg)?;
    }
    tx.commit().await.map_err(pg)
}

/// How long a failed listening connection waits before it is made again.
const LISTEN_RETRY: Duration = Duration::from_secs(1);

/// One listening connection: `LISTEN`, then a wake-up per notification until the connection fails.
async fn listen_once(config: &tokio_postgres::Config, wake: &Notify) -> Result<(), tokio_postgres::Error> {
    let (client, mut connection) = config.connect(NoTls).await?;
    let (sender, mut notifications) = tokio::sync::mpsc::unbounded_channel();
    let driver = tokio::spawn(async move {
        while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(_)) => {
                    if sender.send(()).is_err() {
                        break;
                    }
                }
                Ok(_) => {}
                Err(_) => break,
            }
        }
    });
    client.batch_execute(&format!("LISTEN {QUEUE_CHANNEL}")).await?;
    while notifications.recv().await.is_some() {
        wake.notify_one();
    }
    driver.abort();
    Ok(())
}

/// A statement as PostgreSQL text and values.
#[derive(Clone)]
struct Built(String, PostgresValues);

fn built(statement: impl Into<Statement>) -> Built {
    let (text, values) = match statement.into() {
        Statement::Select(s) => s.build_postgres(PostgresQueryBuilder),
        Statement::Insert(s) => s.build_postgres(PostgresQueryBuilder),
        Statement::Update(s) => s.build_postgres(PostgresQueryBuilder),
        Statement::Delete(s) => s.build_postgres(PostgresQueryBuilder),
    };
    Built(text, values)
}

/// An audit event waiting to be appended, the operation to insert in the same transaction (a submission),
/// and where the event as stored (or the failure) goes.
struct QueuedEvent {
    event: AuditEvent,
    insert: Option<QueuedInsert>,
    answer: tokio::sync::oneshot::Sender<Result<AuditEvent, StoreError>>,
}

/// A new operation written with its submission's audit event.
struct QueuedInsert {
    id: Uuid,
    /// `INSERT … ON CONFLICT DO NOTHING`: a duplicate id fails its own submission, not the transaction.
    statement: Built,
    /// It waits for an export: the replicas are told at commit.
    queued: bool,
}

/// The most events one audit transaction appends.
const AUDIT_BATCH: usize = 256;
/// First key of the advisory locks that serialise appends to one tenant's chain across replicas (the
/// second is the tenant's hash).
const AUDIT_LOCK: i32 = 0x0d90_a0d1;

/// Appends the events this server queues, as many as are waiting in one transaction (group commit):
/// concurrent submissions share one commit instead of racing for the same place in the chain, and a
/// submission's operation is inserted in the commit of its event.
async fn append_batches(pool: Pool, mut queue: tokio::sync::mpsc::UnboundedReceiver<QueuedEvent>) {
    while let Some(first) = queue.recv().await {
        let mut batch = vec![first];
        while batch.len() < AUDIT_BATCH {
            match queue.try_recv() {
                Ok(next) => batch.push(next),
                Err(_) => break,
            }
        }
        match append_all(&pool, &batch).await {
            Ok(outcomes) => {
                for (queued, outcome) in batch.into_iter().zip(outcomes) {
                    let _ = queued.answer.send(outcome);
                }
            }
            Err(e) => {
                for queued in batch {
                    let _ = queued.answer.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes `batch` in order in one transaction: each insert, then its event at the next place of its
/// tenant's chain (an insert refused as a duplicate fails alone, and its event is not appended). Each
/// tenant's chain is locked for the transaction (an advisory lock, taken in tenant order), so replicas
/// append one after the other; a place taken anyway (a writer without the lock) restarts the batch.
async fn append_all(pool: &Pool, batch: &[QueuedEvent]) -> Result<Vec<Result<AuditEvent, StoreError>>, StoreError> {
    let mut tenants: Vec<&str> = batch.iter().map(|q| q.event.tenant_id.as_str()).collect();
    tenants.sort_unstable();
    tenants.dedup();
    'attempt: for _ in 0..32 {
        let mut conn = connection(pool).await?;
        let tx = conn.transaction().await.map_err(pg)?;
        for tenant in &tenants {
            lock_chain(&tx, tenant).await?;
        }
        let mut heads: std::collections::HashMap<String, (i64, String)> = std::collections::HashMap::new();
        let mut outcomes = Vec::with_capacity(batch.len());
        let mut announce = false;
        for queued in batch {
            if let Some(insert) = &queued.insert {
                if execute(&tx, insert.statement.clone()).await? == 0 {
                    outcomes.push(Err(StoreError::Duplicate(insert.id)));
                    continue;
                }
                announce |= insert.queued;
            }
            let event = &queued.event;
            let head = match heads.get(&event.tenant_id) {
                Some(head) => Some(head.clone()),
                None => query(&tx, built(statements::audit_last(&event.tenant_id)), decode::audit_head).await?.pop(),
            };
            let event = event.clone().sealed_after(head);
            match execute(&tx, built(statements::audit_insert(&event))).await {
                Ok(_) => {}
                Err(StoreError::Duplicate(_)) => continue 'attempt, // rolled back when dropped
                Err(other) => return Err(other),
            }
            heads.insert(event.tenant_id.clone(), (event.seq, event.hash.clone()));
            outcomes.push(Ok(event));
        }
        if announce {
            // Delivered at commit, so a replica woken by it finds the rows.
            PostgresStore::announce(&tx).await?;
        }
        tx.commit().await.map_err(pg)?;
        return Ok(outcomes);
    }
    Err(Failure::Contended(32).into())
}

/// Takes the lock of `tenant`'s audit chain for the transaction: replicas append to it one after the other.
async fn lock_chain(tx: &impl GenericClient, tenant: &str) -> Result<(), StoreError> {
    tx.execute("SELECT pg_advisory_xact_lock($1, hashtext($2))", &[&AUDIT_LOCK, &tenant]).await.map(|_| ()).map_err(pg)
}

/// Appends `event` at the next place of its tenant's chain, whose lock the transaction holds.
async fn append_locked(tx: &impl GenericClient, event: AuditEvent) -> Result<AuditEvent, StoreError> {
    let head = query(tx, built(statements::audit_last(&event.tenant_id)), decode::audit_head).await?.pop();
    let event = event.sealed_after(head);
    execute(tx, built(statements::audit_insert(&event))).await?;
    Ok(event)
}

async fn execute(conn: &impl GenericClient, Built(text, values): Built) -> Result<u64, StoreError> {
    let statement = conn.prepare_cached(&text).await.map_err(pg)?;
    timing::postgres(&text, conn.execute(&statement, &values.as_params())).await.map_err(|e| match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION => StoreError::Duplicate(Uuid::nil()),
        Some(code) if *code == SqlState::FOREIGN_KEY_VIOLATION => StoreError::Missing(Uuid::nil()),
        _ => pg(e),
    })
}

async fn query<T>(
    conn: &impl GenericClient,
    Built(text, values): Built,
    read: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let statement = conn.prepare_cached(&text).await.map_err(pg)?;
    timing::postgres(&text, conn.query(&statement, &values.as_params())).await.map_err(pg)?.iter().map(read).collect()
}

async fn get_operation(conn: &impl GenericClient, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
    Ok(query(conn, built(statements::get_operation(id)), decode::operation).await?.pop())
}

/// Why a fenced write matched nothing: the operation is gone, or was claimed anew.
/// Why replacing request `id` at version `expected` changed no row (`probe` reads its version): it changed
/// meanwhile, or it is gone.
async fn not_replaced(conn: &impl GenericClient, probe: Built, id: Uuid, expected: u64) -> StoreError {
    match query(conn, probe, decode::count).await.map(|mut versions| versions.pop()) {
        Ok(Some(actual)) => StoreError::VersionMismatch { id, expected, actual },
        Ok(None) => StoreError::Missing(id),
        Err(e) => e,
    }
}

async fn lost(conn: &impl GenericClient, id: Uuid) -> StoreError {
    match get_operation(conn, id).await {
        Ok(None) => StoreError::Missing(id),
        Ok(Some(_)) => StoreError::LeaseLost(id),
        Err(e) => e,
    }
}

impl AsyncOperations for PostgresStore {
    fn insert(&self, r: &OperationRecord) -> Pending<()> {
        let (id, statement, queued) = (
            r.id,
            built(statements::insert_operations(std::slice::from_ref(r))),
            r.status == DataPolicyOperationStatus::NotStarted,
        );
        self.pending(move |conn| async move {
            let inserted = if queued {
                // Pipelined on the one connection, so in order: the insert commits (autocommit) before the
                // announcement, and a replica woken by it finds the row. A failed insert only costs a
                // needless wake-up, a failed announcement only time (the engines also poll).
                let (inserted, _announced) = futures::join!(execute(&conn, statement), Self::announce(&conn));
                inserted
            } else {
                execute(&conn, statement).await
            };
            match inserted {
                Err(StoreError::Duplicate(_)) => Err(StoreError::Duplicate(id)),
                other => other.map(|_| ()),
            }
        })
    }

    fn insert_recorded(&self, r: &OperationRecord, event: AuditEvent) -> Pending<AuditEvent> {
        let insert = QueuedInsert {
            id: r.id,
            statement: built(statements::insert_new_operation(r)),
            queued: r.status == DataPolicyOperationStatus::NotStarted,
        };
        self.queue_event(event, Some(insert))
    }

    fn get(&self, id: Uuid) -> Pending<Option<OperationRecord>> {
        let (readers, statement) = (self.readers.clone(), built(statements::get_operation(id)));
        Box::pin(async move { readers.query(statement).await?.first().map(decode::operation).transpose() })
    }

    fn list(&self, request: &ListRequest<'_>) -> Pending<Vec<OperationRecord>> {
        let (readers, statement) = (self.readers.clone(), built(statements::select_operations(request)));
        Box::pin(async move { readers.query(statement).await?.iter().map(decode::operation).collect() })
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Pending<u64> {
        let (readers, statement) = (self.readers.clone(), built(statements::count_operations(tenant, filter, search)));
        Box::pin(async move {
            Ok(readers.query(statement).await?.first().map(decode::count).transpose()?.unwrap_or_default())
        })
    }

    fn replace(&self, r: &OperationRecord) -> Pending<()> {
        let (id, expected, statement) = (r.id, r.version.saturating_sub(1), built(statements::replace_operation(r)));
        self.pending(move |conn| async move {
            if execute(&conn, statement).await? == 1 {
                return Ok(());
            }
            match get_operation(&conn, id).await? {
                None => Err(StoreError::Missing(id)),
                Some(now) => Err(StoreError::VersionMismatch { id, expected, actual: now.version }),
            }
        })
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Pending<()> {
        let statement = built(statements::delete_operation(id, version));
        self.pending(move |conn| async move {
            if execute(&conn, statement).await? == 1 {
                return Ok(());
            }
            match (get_operation(&conn, id).await?, version) {
                (Some(now), Some(expected)) => Err(StoreError::VersionMismatch { id, expected, actual: now.version }),
                _ => Err(StoreError::Missing(id)),
            }
        })
    }
}

/// The synchronous calls wait for the asynchronous ones on the store's runtime.
impl Operations for PostgresStore {
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError> {
        self.run(AsyncOperations::insert(self, record))
    }

    fn insert_recorded(&self, record: &OperationRecord, event: AuditEvent) -> Result<AuditEvent, StoreError> {
        self.run(AsyncOperations::insert_recorded(self, record, event))
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        self.run(AsyncOperations::get(self, id))
    }

    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError> {
        self.run(AsyncOperations::list(self, request))
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError> {
        self.run(AsyncOperations::count(self, tenant, filter, search))
    }

    fn replace(&self, record: &OperationRecord) -> Result<(), StoreError> {
        self.run(AsyncOperations::replace(self, record))
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        self.run(AsyncOperations::delete(self, id, version))
    }

    fn without_blocking(&self) -> Option<&dyn AsyncOperations> {
        Some(self)
    }
}

impl JobQueue for PostgresStore {
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_tenant: Option<u32>,
    ) -> Result<Option<Claim>, StoreError> {
        let statement = built(statements::claim(owner, &now, &until, per_tenant));
        self.with(move |conn| async move { Ok(query(&conn, statement, decode::claim).await?.pop()) })
    }

    fn heartbeat(&self, claim: &Claim, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.fenced(claim, statements::heartbeat(claim, &until))
    }

    fn progress(&self, claim: &Claim, percent: f64) -> Result<(), StoreError> {
        self.fenced(claim, statements::progress(claim, percent))
    }

    fn complete(&self, claim: &Claim, at: DateTime<Utc>) -> Result<OperationRecord, StoreError> {
        self.finish(claim, statements::complete(claim, &at))
    }

    fn fail(&self, claim: &Claim, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(claim, statements::fail(claim, reason, &at)).map(|_| ())
    }

    fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.finish(claim, statements::release(claim))?;
        // Another replica may take it over at once.
        self.with(|conn| async move { Self::announce(&conn).await })
    }

    fn expire_leases_of_others(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let statement = built(statements::expire_leases_of_others(owner, &now));
        self.with(move |conn| async move { execute(&conn, statement).await })
    }

    fn queued(&self) -> Result<u64, StoreError> {
        let statement = built(statements::count_queued());
        self.with(
            move |conn| async move { Ok(query(&conn, statement, decode::count).await?.pop().unwrap_or_default()) },
        )
    }

    /// Listens on [`QUEUE_CHANNEL`] for as long as the store lives, making the connection again after a
    /// failure. A missed announcement costs only time: the engine also polls.
    fn watch(&self, wake: Arc<Notify>, log: slog::Logger) -> Result<(), StoreError> {
        let runtime = self.runtime.as_ref().ok_or_else(|| StoreError::from(Failure::Closed))?;
        let config = self.config.clone();
        runtime.spawn(async move {
            loop {
                match listen_once(&config, &wake).await {
                    Ok(()) => slog::warn!(log, "the database closed the connection listening for exports"),
                    Err(e) => slog::warn!(log, "listening for exports failed"; "error" => %e),
                }
                // Whatever was announced meanwhile is found by looking.
                wake.notify_one();
                tokio::time::sleep(LISTEN_RETRY).await;
            }
        });
        Ok(())
    }
}

impl PostgresStore {
    /// Runs `statements` in one transaction.
    fn in_transaction(&self, statements: Vec<Built>) -> Result<(), StoreError> {
        self.with(move |mut conn| async move {
            let tx = conn.transaction().await.map_err(pg)?;
            for statement in statements {
                execute(&tx, statement).await?;
            }
            tx.commit().await.map_err(pg)
        })
    }
}

impl Directory for PostgresStore {
    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError> {
        self.in_transaction(users.chunks(500).map(|chunk| built(statements::upsert_users(tenant, chunk))).collect())?;
        Ok(users.len())
    }

    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
        self.run(AsyncDirectory::find_user(self, tenant, id_or_upn))
    }

    fn find_user_by_email(&self, tenant: &str, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let statement = built(statements::find_user_by_email(tenant, email));
        self.with(move |conn| async move { Ok(query(&conn, statement, decode::user).await?.pop()) })
    }

    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError> {
        self.in_transaction(
            activities.chunks(500).map(|chunk| built(statements::add_activities(tenant, chunk))).collect(),
        )?;
        Ok(activities.len())
    }

    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError> {
        let statement = built(statements::count_activities(tenant, user_id));
        self.with(move |conn| async move {
            Ok(query(&conn, statement, decode::count).await?.first().copied().unwrap_or_default())
        })
    }

    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError> {
        let statement = built(statements::activities(tenant, user_id, after, limit));
        self.with(move |conn| async move { query(&conn, statement, decode::activity).await })
    }

    fn lookup_without_blocking(&self) -> Option<&dyn AsyncDirectory> {
        Some(self)
    }
}

impl AsyncDirectory for PostgresStore {
    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Pending<Option<UserRecord>> {
        let statement = built(statements::find_user(tenant, id_or_upn));
        self.pending(move |conn| async move { Ok(query(&conn, statement, decode::user).await?.pop()) })
    }
}

impl AuditLog for PostgresStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEvent, StoreError> {
        self.run(self.queue_event(event, None))
    }

    fn audit_page(&self, tenant: &str, page: &AuditPage) -> Result<Vec<AuditEvent>, StoreError> {
        let statement = built(statements::audit_page(tenant, page));
        self.with(move |conn| async move { query(&conn, statement, decode::audit_event).await })
    }

    fn audit_tenants(&self) -> Result<Vec<String>, StoreError> {
        let statement = built(statements::audit_tenants());
        self.with(move |conn| async move { query(&conn, statement, decode::text).await })
    }

    fn audit_last(&self, tenant: &str) -> Result<Option<(i64, String)>, StoreError> {
        let statement = built(statements::audit_last(tenant));
        self.with(move |conn| async move { Ok(query(&conn, statement, decode::audit_head).await?.pop()) })
    }
}

impl ExportLedger for PostgresStore {
    fn record_exported(&self, claim: &Claim, object: &ExportedObject) -> Result<(), StoreError> {
        let id = claim.operation.id;
        let (fence, record) = (built(statements::fence(claim)), built(statements::record_exported(id, object)));
        self.with(move |mut conn| async move {
            let tx = conn.transaction().await.map_err(pg)?;
            // The fence locks the operation's row until commit: a new claim cannot slip in between.
            if execute(&tx, fence).await? == 0 {
                return Err(lost(&tx, id).await);
            }
            execute(&tx, record).await?;
            tx.commit().await.map_err(pg)
        })
    }

    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError> {
        let statement = built(statements::exported(operation));
        self.with(move |conn| async move { query(&conn, statement, decode::exported_object).await })
    }
}
impl SubjectRightsRequests for PostgresStore {
    fn insert_request(&self, record: &RequestRecord, job: &OperationRecord) -> Result<(), StoreError> {
        let statement = requests::insert_request(record).map_err(|source| Unwritable { what: "a request", source })?;
        let (statement, id) = (built(statement), record.id);
        let queued = built(statements::insert_operations(std::slice::from_ref(job)));
        self.with(move |mut conn| async move {
            let tx = conn.transaction().await.map_err(pg)?;
            match execute(&tx, statement).await {
                Err(StoreError::Duplicate(_)) => return Err(StoreError::Duplicate(id)),
                other => other?,
            };
            execute(&tx, queued).await?;
            Self::announce(&tx).await?;
            tx.commit().await.map_err(pg)
        })
    }

    fn get_request(&self, tenant: &str, id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        let statement = built(requests::get_request(tenant, id));
        self.with(move |conn| async move { Ok(query(&conn, statement, decode::request).await?.pop()) })
    }

    fn replace_request(&self, record: &RequestRecord, job: Option<&OperationRecord>) -> Result<(), StoreError> {
        self.replace_request_fenced(record, job, None, None)
    }

    fn replace_request_claimed(
        &self,
        record: &RequestRecord,
        claim: &Claim,
        until: DateTime<Utc>,
        event: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        self.replace_request_fenced(record, None, Some((claim, until)), event)
    }

    fn list_requests(&self, list: &RequestList<'_>) -> Result<Vec<RequestRecord>, StoreError> {
        let statement = built(requests::list_requests(list));
        self.with(move |conn| async move { query(&conn, statement, decode::request).await })
    }

    fn count_requests(&self, tenant: &str, filter: Option<&Filter>) -> Result<u64, StoreError> {
        let statement = built(requests::count_requests(tenant, filter));
        self.with(
            move |conn| async move { Ok(query(&conn, statement, decode::count).await?.pop().unwrap_or_default()) },
        )
    }

    fn add_note(&self, note: &NoteRecord) -> Result<(), StoreError> {
        let statement = requests::insert_note(note).map_err(|source| Unwritable { what: "a note", source })?;
        let (statement, request) = (built(statement), note.request_id);
        self.with(move |conn| async move {
            match execute(&conn, statement).await {
                Err(StoreError::Missing(_)) => Err(StoreError::Missing(request)),
                other => other.map(|_| ()),
            }
        })
    }

    fn notes(&self, tenant: &str, request: Uuid, after: i64, limit: u64) -> Result<Vec<(i64, NoteRecord)>, StoreError> {
        let statement = built(requests::notes(tenant, request, after, limit));
        self.with(move |conn| async move { query(&conn, statement, decode::note).await })
    }

    fn requests_to_remove(&self, closed_before: DateTime<Utc>, limit: u64) -> Result<Vec<RequestRecord>, StoreError> {
        let statement = built(requests::requests_to_remove(&closed_before, limit));
        self.with(move |conn| async move { query(&conn, statement, decode::request).await })
    }

    fn count_notes(&self, tenant: &str, request: Uuid) -> Result<u64, StoreError> {
        let statement = built(requests::count_notes(tenant, request));
        self.with(
            move |conn| async move { Ok(query(&conn, statement, decode::count).await?.pop().unwrap_or_default()) },
        )
    }
}
