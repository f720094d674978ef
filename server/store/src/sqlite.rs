//! The embedded default store: one SQLite file (WAL, `synchronous=FULL`, so an answered write survives a
//! crash), migrated on open from `server/store/migrations/`. One server uses it at a time (the state directory's
//! lock), so its writers take turns in the process; the request path's writes (submissions, audit
//! events) are committed in groups by one writer thread ([`super::group_commit`]).

use super::{
    ActivityRecord, AuditEvent, AuditLog, AuditPage, Claim, Directory, ExportLedger, ExportedObject, JobQueue,
    ListRequest, OperationRecord, Operations, Pending, StoreError, UserRecord, decode,
    failure::{Failure, Unwritable},
    requests::{NoteRecord, RequestList, RequestRecord, SubjectRightsRequests},
    statements::{self, Statement, requests},
};
use chrono::{DateTime, Utc};
use dpo_domain::odata::filter::Filter;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Row, params};
use rusqlite_migration::{M, Migrations};
use sea_query::{SqliteQueryBuilder, UpdateStatement};
use sea_query_rusqlite::{RusqliteBinder, RusqliteValues};
use std::{
    path::Path,
    sync::{Arc, Mutex, MutexGuard},
};
use uuid::Uuid;

/// Name of the database file inside the state directory.
pub const DATABASE_FILE: &str = "dpo.sqlite";

/// Operations and users in a SQLite file.
#[derive(Clone)]
pub struct SqliteStore {
    pool: r2d2::Pool<SqliteConnectionManager>,
    /// Writers take turns here rather than in SQLite, whose busy handler waits by sleeping with
    /// back-off: under many concurrent submissions that sleep, not the disk, made the slowest answers.
    turn: Arc<Mutex<()>>,
    /// The writes of the request path (submissions, audit events), committed in groups.
    commits: Arc<super::group_commit::GroupCommit>,
}

/// A connection for writing, held with the writers' turn.
struct Writer<'a> {
    conn: r2d2::PooledConnection<SqliteConnectionManager>,
    _turn: MutexGuard<'a, ()>,
}

impl std::ops::Deref for Writer<'_> {
    type Target = rusqlite::Connection;
    fn deref(&self) -> &rusqlite::Connection {
        &self.conn
    }
}

impl std::ops::DerefMut for Writer<'_> {
    fn deref_mut(&mut self) -> &mut rusqlite::Connection {
        &mut self.conn
    }
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../migrations/0001_operations.sql")),
        M::up(include_str!("../migrations/0002_users.sql")),
        M::up(include_str!("../migrations/0003_export.sql")),
        M::up(include_str!("../migrations/0004_tenants.sql")),
        M::up(include_str!("../migrations/0005_tenant_indexes.sql")),
        M::up(include_str!("../migrations/0006_export_objects.sql")),
        M::up_with_hook(include_str!("../migrations/0007_storage_secret.sql"), redact_stored_locations),
        M::up(include_str!("../migrations/0008_export_object_etags.sql")),
        M::up(include_str!("../migrations/0009_leases.sql")),
        M::up(include_str!("../migrations/0010_id_order_indexes.sql")),
        M::up(include_str!("../migrations/0011_export_object_rows.sql")),
        M::up(include_str!("../migrations/0012_user_attributes.sql")),
        M::up(include_str!("../migrations/0013_audit.sql")),
        M::up(include_str!("../migrations/0014_unique_mail.sql")),
        M::up(include_str!("../migrations/0015_subject_rights_requests.sql")),
        M::up(include_str!("../migrations/0016_request_jobs.sql")),
        M::up(include_str!("../migrations/0017_request_erasure.sql")),
    ])
}

/// Migration 0007's data step: locations stored whole before it move to `storage_secret`, and
/// `storage_location` keeps them redacted (in canonical form when they still parse).
fn redact_stored_locations(tx: &rusqlite::Transaction<'_>) -> rusqlite_migration::HookResult {
    let moved: Vec<(String, String)> = {
        let mut stmt = tx.prepare("SELECT id, storage_secret FROM operations WHERE storage_secret IS NOT NULL")?;
        stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?.collect::<Result<_, _>>()?
    };
    let mut update = tx.prepare("UPDATE operations SET storage_location = ?2, storage_secret = ?3 WHERE id = ?1")?;
    for (id, whole) in moved {
        let (shown, secret) = match dpo_contract::location::stored_form(&whole) {
            Some(stored) => (stored.shown, stored.secret),
            None => (dpo_contract::redact::redact_secrets(&whole), Some(whole)),
        };
        update.execute(params![id, shown, secret])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Replaces a request at the version before `record`'s, queueing `job` with it, appending `event` to its
    /// tenant's trail and, with `fence`, only while that claim holds its operation, whose lease it extends:
    /// one commit for all of it.
    fn replace_request_fenced(
        &self,
        record: &RequestRecord,
        job: Option<&OperationRecord>,
        fence: Option<(&Claim, DateTime<Utc>)>,
        event: Option<AuditEvent>,
    ) -> Result<(), StoreError> {
        let statement = requests::replace_request(record).map_err(|source| Unwritable { what: "a request", source })?;
        let (statement, probe) = (built(statement), built(requests::request_version(&record.tenant_id, record.id)));
        let queued = job.map(|job| (built(statements::insert_operations(std::slice::from_ref(job))), job.id));
        let heartbeat = fence.map(|(claim, until)| (built(statements::heartbeat(claim, &until)), claim.operation.id));
        let (id, expected) = (record.id, record.version.saturating_sub(1));
        self.commits.run(move |conn| {
            if let Some((heartbeat, operation)) = heartbeat
                && execute(conn, heartbeat)? == 0
            {
                return Err(lost(conn, operation));
            }
            if execute(conn, statement)? == 1 {
                if let Some((queued, job_id)) = queued {
                    insert_on(conn, queued, job_id)?;
                }
                if let Some(event) = event {
                    append_on(conn, event)?;
                }
                return Ok(());
            }
            Err(not_replaced(conn, probe, id, expected))
        })
    }

    /// Opens (creating if needed) the database in `state_dir` and brings its schema up to date.
    pub fn open(state_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(state_dir)
            .map_err(|source| Failure::StateDir { path: state_dir.to_path_buf(), source })?;
        let manager = SqliteConnectionManager::file(state_dir.join(DATABASE_FILE)).with_init(|c| {
            c.trace_v2(rusqlite::trace::TraceEventCodes::SQLITE_TRACE_PROFILE, Some(super::timing::sqlite_profile));
            // Plans that do not depend on bound values: otherwise SQLite reads a bound `LIMIT ?` while
            // planning, and every new binding of it expires the cached statement, so each lookup of a user
            // (and each page of a list) was parsed and planned again.
            c.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)?;
            // `temp_store = MEMORY`: the group commit's savepoints keep their statement journals in memory
            // instead of spilling each batch's to a temporary file that is created, written and deleted.
            // A page cache of 1 MiB per connection (SQLite's default is 2): it holds the upper levels of
            // the table and its indexes, and every commit empties the cache of the other connections anyway.
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON; PRAGMA temp_store = MEMORY; PRAGMA cache_size = -1024;",
            )
        });
        // Local files do not go stale like network connections: no liveness query per checkout.
        let pool =
            r2d2::Pool::builder().max_size(8).test_on_check_out(false).build(manager).map_err(StoreError::backend)?;
        let mut conn = pool.get().map_err(StoreError::backend)?;
        migrations()
            .to_latest(&mut conn)
            .map_err(|e| Failure::Opening { step: "migrating the database", source: e.into() })?;
        drop(conn);
        let turn = Arc::new(Mutex::new(()));
        let commits = Arc::new(super::group_commit::GroupCommit::start(pool.clone(), turn.clone())?);
        Ok(SqliteStore { pool, turn, commits })
    }

    /// A connection to write with, once it is this caller's turn.
    fn writer(&self) -> Result<Writer<'_>, StoreError> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        let turn = self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Writer { conn: self.conn()?, _turn: turn })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        self.pool.get().map_err(StoreError::backend)
    }

    /// Stores many operations in one statement (bulk loads: benchmarks, migrations from elsewhere).
    pub fn insert_many(&self, records: &[OperationRecord]) -> Result<usize, StoreError> {
        let conn = self.writer()?;
        for chunk in records.chunks(1000) {
            execute(&conn, built(statements::insert_operations(chunk)))?;
        }
        Ok(records.len())
    }

    /// Runs a fenced UPDATE of `claim`'s operation that returns the record.
    fn finish(&self, claim: &Claim, update: UpdateStatement) -> Result<OperationRecord, StoreError> {
        let conn = self.writer()?;
        let found = query(&conn, built(update), |row| decode::operation(row))?.pop();
        found.ok_or_else(|| lost(&conn, claim.operation.id))
    }

    /// Runs a fenced UPDATE of `claim`'s operation.
    fn fenced(&self, claim: &Claim, update: UpdateStatement) -> Result<(), StoreError> {
        let conn = self.writer()?;
        match execute(&conn, built(update))? {
            0 => Err(lost(&conn, claim.operation.id)),
            _ => Ok(()),
        }
    }
}

/// A statement as SQLite text and values.
struct Built(String, RusqliteValues);

fn built(statement: impl Into<Statement>) -> Built {
    let (text, values) = match statement.into() {
        Statement::Select(s) => s.build_rusqlite(SqliteQueryBuilder),
        Statement::Insert(s) => s.build_rusqlite(SqliteQueryBuilder),
        Statement::Update(s) => s.build_rusqlite(SqliteQueryBuilder),
        Statement::Delete(s) => s.build_rusqlite(SqliteQueryBuilder),
    };
    Built(text, values)
}

fn execute(conn: &rusqlite::Connection, Built(text, values): Built) -> Result<usize, StoreError> {
    conn.prepare_cached(&text).and_then(|mut s| s.execute(&*values.as_params())).map_err(|e| match e {
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY => {
            StoreError::Duplicate(Uuid::nil())
        }
        rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
            StoreError::Missing(Uuid::nil())
        }
        other => StoreError::backend(other),
    })
}

fn query<T>(
    conn: &rusqlite::Connection,
    Built(text, values): Built,
    read: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(&text).map_err(StoreError::backend)?;
    let mut rows = stmt.query(&*values.as_params()).map_err(StoreError::backend)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(StoreError::backend)? {
        out.push(read(row)?);
    }
    Ok(out)
}

/// The insert of `r` and the append of `event` as one job of a group commit, so one savepoint: the event
/// never lands without its row, nor the row without its event.
fn recorded_insert(
    r: &OperationRecord,
    event: AuditEvent,
) -> impl FnOnce(&rusqlite::Connection) -> Result<AuditEvent, StoreError> + Send + 'static {
    let (statement, id) = (built(statements::insert_operations(std::slice::from_ref(r))), r.id);
    move |conn| {
        insert_on(conn, statement, id)?;
        append_on(conn, event)
    }
}

/// The row of a fenced write that matched nothing: gone, or claimed anew.
fn lost(conn: &rusqlite::Connection, id: Uuid) -> StoreError {
    match get_operation(conn, id) {
        Ok(None) => StoreError::Missing(id),
        Ok(Some(_)) => StoreError::LeaseLost(id),
        Err(e) => e,
    }
}

/// Why replacing request `id` at version `expected` changed no row (`probe` reads its version): it changed
/// meanwhile, or it is gone.
fn not_replaced(conn: &rusqlite::Connection, probe: Built, id: Uuid, expected: u64) -> StoreError {
    match query(conn, probe, |row| decode::count(row)).map(|mut versions| versions.pop()) {
        Ok(Some(actual)) => StoreError::VersionMismatch { id, expected, actual },
        Ok(None) => StoreError::Missing(id),
        Err(e) => e,
    }
}

/// The operation with this id, over `conn`.
fn get_operation(conn: &rusqlite::Connection, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
    Ok(query(conn, built(statements::get_operation(id)), |row| decode::operation(row))?.pop())
}

/// The user of `tenant` with this id or userPrincipalName, over `conn`.
fn find_user_on(conn: &rusqlite::Connection, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
    Ok(query(conn, built(statements::find_user(tenant, id_or_upn)), |row| decode::user(row))?.pop())
}

impl Operations for SqliteStore {
    fn insert(&self, r: &OperationRecord) -> Result<(), StoreError> {
        let (statement, id) = (built(statements::insert_operations(std::slice::from_ref(r))), r.id);
        self.commits.run(move |conn| insert_on(conn, statement, id))
    }

    fn insert_recorded(&self, r: &OperationRecord, event: AuditEvent) -> Result<AuditEvent, StoreError> {
        self.commits.run(recorded_insert(r, event))
    }

    fn insert_recorded_queued(&self, r: &OperationRecord, event: &AuditEvent) -> Option<Pending<AuditEvent>> {
        Some(Box::pin(self.commits.queue(recorded_insert(r, event.clone()))))
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        get_operation(&*self.conn()?, id)
    }

    fn get_without_waiting(&self, id: Uuid) -> Option<Result<Option<OperationRecord>, StoreError>> {
        // WAL readers never wait for the writer, so with a free connection a lookup by key is a few
        // microseconds of work on the calling thread.
        self.pool.try_get().map(|conn| get_operation(&conn, id))
    }

    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError> {
        query(&*self.conn()?, built(statements::select_operations(request)), |row| decode::operation(row))
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError> {
        let counted = query(&*self.conn()?, built(statements::count_operations(tenant, filter, search)), |row| {
            decode::count(row)
        })?;
        Ok(counted.first().copied().unwrap_or_default())
    }

    fn replace(&self, r: &OperationRecord) -> Result<(), StoreError> {
        let conn = self.writer()?;
        if execute(&conn, built(statements::replace_operation(r)))? == 1 {
            return Ok(());
        }
        match get_operation(&conn, r.id)? {
            None => Err(StoreError::Missing(r.id)),
            Some(now) => Err(StoreError::VersionMismatch {
                id: r.id,
                expected: r.version.saturating_sub(1),
                actual: now.version,
            }),
        }
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        let conn = self.writer()?;
        if execute(&conn, built(statements::delete_operation(id, version)))? == 1 {
            return Ok(());
        }
        match (get_operation(&conn, id)?, version) {
            (Some(now), Some(expected)) => Err(StoreError::VersionMismatch { id, expected, actual: now.version }),
            _ => Err(StoreError::Missing(id)),
        }
    }
}

impl JobQueue for SqliteStore {
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_tenant: Option<u32>,
    ) -> Result<Option<Claim>, StoreError> {
        let conn = self.writer()?;
        Ok(query(&conn, built(statements::claim(owner, &now, &until, per_tenant)), |row| decode::claim(row))?.pop())
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
        self.finish(claim, statements::release(claim)).map(|_| ())
    }

    fn expire_leases_of_others(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let conn = self.writer()?;
        Ok(execute(&conn, built(statements::expire_leases_of_others(owner, &now)))? as u64)
    }

    fn queued(&self) -> Result<u64, StoreError> {
        Ok(query(&*self.conn()?, built(statements::count_queued()), |row| decode::count(row))?
            .pop()
            .unwrap_or_default())
    }
}

impl Directory for SqliteStore {
    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(StoreError::backend)?;
        for chunk in users.chunks(500) {
            execute(&tx, built(statements::upsert_users(tenant, chunk)))?;
        }
        tx.commit().map_err(StoreError::backend)?;
        Ok(users.len())
    }

    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
        find_user_on(&*self.conn()?, tenant, id_or_upn)
    }

    fn find_user_by_email(&self, tenant: &str, email: &str) -> Result<Option<UserRecord>, StoreError> {
        let statement = built(statements::find_user_by_email(tenant, email));
        Ok(query(&*self.conn()?, statement, |row| decode::user(row))?.pop())
    }

    fn find_user_without_waiting(
        &self,
        tenant: &str,
        id_or_upn: &str,
    ) -> Option<Result<Option<UserRecord>, StoreError>> {
        // As `get_without_waiting`: a key lookup on a free connection never waits for the writer. A
        // submission then holds a thread of the blocking pool only while it waits for its commit.
        self.pool.try_get().map(|conn| find_user_on(&conn, tenant, id_or_upn))
    }

    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(StoreError::backend)?;
        for chunk in activities.chunks(500) {
            execute(&tx, built(statements::add_activities(tenant, chunk)))?;
        }
        tx.commit().map_err(StoreError::backend)?;
        Ok(activities.len())
    }

    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError> {
        let counted =
            query(&*self.conn()?, built(statements::count_activities(tenant, user_id)), |row| decode::count(row))?;
        Ok(counted.first().copied().unwrap_or_default())
    }

    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError> {
        query(&*self.conn()?, built(statements::activities(tenant, user_id, after, limit)), |row| decode::activity(row))
    }
}

/// Runs the INSERT of operation `id` on `conn`, naming `id` when it exists already.
fn insert_on(conn: &rusqlite::Connection, statement: Built, id: Uuid) -> Result<(), StoreError> {
    match execute(conn, statement) {
        Err(StoreError::Duplicate(_)) => Err(StoreError::Duplicate(id)),
        other => other.map(|_| ()),
    }
}

/// Appends `event` at the next place of its tenant's chain on `conn`, inside a group commit: the events
/// before it in its batch are already visible there, so places follow on.
fn append_on(conn: &rusqlite::Connection, event: AuditEvent) -> Result<AuditEvent, StoreError> {
    let last = query(conn, built(statements::audit_last(&event.tenant_id)), |row| decode::audit_head(row))?.pop();
    let event = event.sealed_after(last);
    execute(conn, built(statements::audit_insert(&event)))?;
    Ok(event)
}

impl AuditLog for SqliteStore {
    fn append(&self, event: AuditEvent) -> Result<AuditEvent, StoreError> {
        self.commits.run(move |conn| append_on(conn, event))
    }

    fn audit_page(&self, tenant: &str, page: &AuditPage) -> Result<Vec<AuditEvent>, StoreError> {
        query(&*self.conn()?, built(statements::audit_page(tenant, page)), |row| decode::audit_event(row))
    }

    fn audit_tenants(&self) -> Result<Vec<String>, StoreError> {
        query(&*self.conn()?, built(statements::audit_tenants()), |row| decode::text(row))
    }

    fn audit_last(&self, tenant: &str) -> Result<Option<(i64, String)>, StoreError> {
        Ok(query(&*self.conn()?, built(statements::audit_last(tenant)), |row| decode::audit_head(row))?.pop())
    }
}

impl ExportLedger for SqliteStore {
    fn record_exported(&self, claim: &Claim, object: &ExportedObject) -> Result<(), StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(StoreError::backend)?;
        if execute(&tx, built(statements::fence(claim)))? == 0 {
            return Err(lost(&tx, claim.operation.id));
        }
        execute(&tx, built(statements::record_exported(claim.operation.id, object)))?;
        tx.commit().map_err(StoreError::backend)
    }

    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError> {
        query(&*self.conn()?, built(statements::exported(operation)), |row| decode::exported_object(row))
    }
}

impl SubjectRightsRequests for SqliteStore {
    fn insert_request(&self, record: &RequestRecord, job: &OperationRecord) -> Result<(), StoreError> {
        let statement = requests::insert_request(record).map_err(|source| Unwritable { what: "a request", source })?;
        let (statement, id) = (built(statement), record.id);
        let (queued, job_id) = (built(statements::insert_operations(std::slice::from_ref(job))), job.id);
        self.commits.run(move |conn| {
            match execute(conn, statement) {
                Err(StoreError::Duplicate(_)) => return Err(StoreError::Duplicate(id)),
                other => other?,
            };
            insert_on(conn, queued, job_id)
        })
    }

    fn get_request(&self, tenant: &str, id: Uuid) -> Result<Option<RequestRecord>, StoreError> {
        Ok(query(&*self.conn()?, built(requests::get_request(tenant, id)), |row| decode::request(row))?.pop())
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
        query(&*self.conn()?, built(requests::list_requests(list)), |row| decode::request(row))
    }

    fn count_requests(&self, tenant: &str, filter: Option<&Filter>) -> Result<u64, StoreError> {
        let counted = query(&*self.conn()?, built(requests::count_requests(tenant, filter)), |row| decode::count(row))?;
        Ok(counted.first().copied().unwrap_or_default())
    }

    fn add_note(&self, note: &NoteRecord) -> Result<(), StoreError> {
        let statement = requests::insert_note(note).map_err(|source| Unwritable { what: "a note", source })?;
        let (statement, request) = (built(statement), note.request_id);
        self.commits.run(move |conn| match execute(conn, statement) {
            Err(StoreError::Missing(_)) => Err(StoreError::Missing(request)),
            other => other.map(|_| ()),
        })
    }

    fn notes(&self, tenant: &str, request: Uuid, after: i64, limit: u64) -> Result<Vec<(i64, NoteRecord)>, StoreError> {
        query(&*self.conn()?, built(requests::notes(tenant, request, after, limit)), |row| decode::note(row))
    }

    fn requests_to_remove(&self, closed_before: DateTime<Utc>, limit: u64) -> Result<Vec<RequestRecord>, StoreError> {
        query(&*self.conn()?, built(requests::requests_to_remove(&closed_before, limit)), |row| decode::request(row))
    }

    fn count_notes(&self, tenant: &str, request: Uuid) -> Result<u64, StoreError> {
        let counted = query(&*self.conn()?, built(requests::count_notes(tenant, request)), |row| decode::count(row))?;
        Ok(counted.first().copied().unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_event_are_written_under_a_claim_only_while_the_claim_holds() {
        use dpo_domain::store::JobQueue;
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("opens");
        let now = Utc::now();
        let mut record = RequestRecord {
            id: Uuid::new_v4(),
            tenant_id: "t".into(),
            version: 1,
            request: Default::default(),
            report: None,
            collected_removed_at: None,
            erasure: None,
        };
        let job = record.job(now);
        store.insert_request(&record, &job).expect("inserted");
        // A lease that is already over: the next claim takes the job again, as attempt 2.
        let first = store.claim("a", now, now - chrono::Duration::seconds(1), None).expect("claims").expect("the job");
        record.version = 2;
        record.erasure = Some(Default::default());
        let event = |what: &str| {
            let outcome = Ok(Some(what.to_string()));
            Some(dpo_domain::audit::by_dpo("t", dpo_domain::audit::Activity::EndRequestStage, record.id, outcome))
        };
        store
            .replace_request_claimed(&record, &first, now + chrono::Duration::seconds(30), event("the first's"))
            .expect("while it holds");
        assert_eq!(store.audit_last("t").expect("reads").map(|(seq, _)| seq), Some(1), "its event with it");
        let second = store
            .claim("b", now + chrono::Duration::seconds(60), now + chrono::Duration::seconds(90), None)
            .expect("claims")
            .expect("taken over");
        assert_eq!(second.attempt, 2);
        record.version = 3;
        record.report = Some("the zombie's".into());
        match store.replace_request_claimed(&record, &first, now + chrono::Duration::seconds(30), event("the zombie's"))
        {
            Err(StoreError::LeaseLost(id)) => assert_eq!(id, job.id),
            other => panic!("{other:?}"),
        }
        let kept = store.get_request("t", record.id).expect("reads").expect("there");
        assert_eq!((kept.version, kept.report, kept.erasure), (2, None, Some(Default::default())), "nothing written");
        assert_eq!(store.audit_last("t").expect("reads").map(|(seq, _)| seq), Some(1), "nor its event");
        store
            .replace_request_claimed(&record, &second, now + chrono::Duration::seconds(120), event("the owner's"))
            .expect("the new owner");
        assert_eq!(store.audit_last("t").expect("reads").map(|(seq, _)| seq), Some(2));
        // A write that is refused for its version appends nothing either.
        match store.replace_request_claimed(&record, &second, now + chrono::Duration::seconds(120), event("stale")) {
            Err(StoreError::VersionMismatch { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert_eq!(store.audit_last("t").expect("reads").map(|(seq, _)| seq), Some(2), "no event for a stale write");
    }

    #[test]
    fn locations_stored_whole_before_0007_are_moved_out_of_reach_of_queries() {
        let dir = tempfile::tempdir().expect("temp dir");
        let whole = "https://a.blob.core.windows.net/c?sv=1&sp=cw&se=2030-01-01T00:00:00Z&%73ig=SECRET";
        {
            let mut conn = rusqlite::Connection::open(dir.path().join(DATABASE_FILE)).expect("opens");
            migrations().to_version(&mut conn, 6).expect("migrates to 0006");
            conn.execute(
                "INSERT INTO operations (id, user_id, status, progress, storage_location, submitted_at, version, \
                 tenant_id) VALUES (?1, 'u', 0, 0, ?2, '2026-01-01T00:00:00.000Z', 1, 't')",
                params![Uuid::nil().to_string(), whole],
            )
            .expect("old row");
        }
        let store = SqliteStore::open(dir.path()).expect("opens and migrates");
        let op = store.get(Uuid::nil()).expect("reads").expect("row kept");
        assert_eq!(
            op.storage_location.as_deref(),
            Some("https://a.blob.core.windows.net/c?sv=1&sp=cw&se=2030-01-01T00:00:00Z&sig=REDACTED")
        );
        assert_eq!(
            op.storage_secret.as_deref(),
            Some("https://a.blob.core.windows.net/c?sv=1&sp=cw&se=2030-01-01T00:00:00Z&sig=SECRET")
        );
        assert_eq!(store.count("t", None, Some("SECRET")).expect("counts"), 0);
    }

    #[test]
    fn a_cached_statement_with_a_bound_limit_is_not_prepared_again() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(dir.path()).expect("opens");
        let user = |id: &str| UserRecord {
            id: id.into(),
            user_principal_name: format!("{id}@contoso.example"),
            display_name: None,
            mail: None,
            attributes: Default::default(),
        };
        store.upsert_users("t", &[user("ada"), user("bob")]).expect("users");
        let conn = store.conn().expect("a connection");
        for wanted in ["ada", "BOB@contoso.example", "nobody", "ada"] {
            find_user_on(&conn, "t", wanted).expect("looks up");
        }
        let Built(text, _) = built(statements::find_user("t", "ada"));
        let statement = conn.prepare_cached(&text).expect("the cached statement");
        // Without the planner's stability guarantee SQLite reads the bound LIMIT while planning, and each
        // new binding expires the statement: three of the four lookups were prepared again.
        assert_eq!(statement.get_status(rusqlite::StatementStatus::RePrepare), 0);
        assert_eq!(
            find_user_on(&conn, "t", "Bob@Contoso.Example").expect("looks up").map(|u| u.id),
            Some("bob".into())
        );
    }
}
