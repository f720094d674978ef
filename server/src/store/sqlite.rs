//! The embedded default store: one SQLite file (WAL, `synchronous=FULL`, so an answered write survives a
//! crash), migrated on open from `server/migrations/`.

use super::{
    ActivityRecord, ExportedObject, ListRequest, OperationRecord, OperationStore, StoreError, UserRecord,
    sql::{self, status_from_ordinal, status_ordinal, timestamp},
};
use crate::odata::filter::Filter;
use chrono::{DateTime, Utc};
use dpo_api::model::DataPolicyOperationStatus;
use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{OptionalExtension, Row, params};
use rusqlite_migration::{M, Migrations};
use sea_query::SqliteQueryBuilder;
use sea_query_rusqlite::RusqliteBinder;
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

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(include_str!("../../migrations/0001_operations.sql")),
        M::up(include_str!("../../migrations/0002_users.sql")),
        M::up(include_str!("../../migrations/0003_export.sql")),
        M::up(include_str!("../../migrations/0004_tenants.sql")),
        M::up(include_str!("../../migrations/0005_tenant_indexes.sql")),
        M::up(include_str!("../../migrations/0006_export_objects.sql")),
        M::up_with_hook(include_str!("../../migrations/0007_storage_secret.sql"), redact_stored_locations),
        M::up(include_str!("../../migrations/0008_export_object_etags.sql")),
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
        let (shown, secret) = match crate::export::target::stored_form(&whole) {
            Some(stored) => (stored.shown, stored.secret),
            None => (crate::export::target::redact_text(&whole), Some(whole)),
        };
        update.execute(params![id, shown, secret])?;
    }
    Ok(())
}

impl SqliteStore {
    /// Opens (creating if needed) the database in `state_dir` and brings its schema up to date.
    pub fn open(state_dir: &Path) -> Result<SqliteStore, StoreError> {
        std::fs::create_dir_all(state_dir).map_err(|e| backend(format!("creating {}: {e}", state_dir.display())))?;
        let manager = SqliteConnectionManager::file(state_dir.join(DATABASE_FILE)).with_init(|c| {
            c.execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; PRAGMA busy_timeout = 10000; \
                 PRAGMA foreign_keys = ON;",
            )
        });
        // Local files do not go stale like network connections: no liveness query per checkout.
        let pool = r2d2::Pool::builder().max_size(8).test_on_check_out(false).build(manager).map_err(backend)?;
        let mut conn = pool.get().map_err(backend)?;
        migrations().to_latest(&mut conn).map_err(|e| backend(format!("migrating the database: {e}")))?;
        Ok(SqliteStore { pool, turn: Arc::new(Mutex::new(())) })
    }

    /// A connection to write with, once it is this caller's turn.
    fn writer(&self) -> Result<Writer<'_>, StoreError> {
        // The guarded value is `()`: a panic elsewhere cannot leave it inconsistent.
        let turn = self.turn.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        Ok(Writer { conn: self.conn()?, _turn: turn })
    }

    fn conn(&self) -> Result<r2d2::PooledConnection<SqliteConnectionManager>, StoreError> {
        self.pool.get().map_err(backend)
    }
}

/// The operation with this id, over `conn`.
fn get_operation(conn: &rusqlite::Connection, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
    let mut stmt = conn
        .prepare_cached(&format!("SELECT {} FROM operations WHERE id = ?1", sql::COLUMNS.join(", ")))
        .map_err(backend)?;
    let mut rows = stmt.query(params![id.to_string()]).map_err(backend)?;
    match rows.next().map_err(backend)? {
        Some(row) => record(row).map(Some),
        None => Ok(None),
    }
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
}

fn record(row: &Row<'_>) -> Result<OperationRecord, StoreError> {
    let get_err = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
    let id: String = row.get(0).map_err(get_err)?;
    let status: i64 = row.get(2).map_err(get_err)?;
    let submitted: String = row.get(5).map_err(get_err)?;
    let completed: Option<String> = row.get(6).map_err(get_err)?;
    let version: i64 = row.get(7).map_err(get_err)?;
    Ok(OperationRecord {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("id {id:?}: {e}")))?,
        user_id: row.get(1).map_err(get_err)?,
        status: status_from_ordinal(status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        progress: row.get(3).map_err(get_err)?,
        storage_location: row.get(4).map_err(get_err)?,
        submitted_at: parse_time(&submitted)?,
        completed_at: completed.as_deref().map(parse_time).transpose()?,
        version: u64::try_from(version).map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
        failure_reason: row.get(8).map_err(get_err)?,
        tenant_id: row.get(9).map_err(get_err)?,
        storage_secret: row.get(10).map_err(get_err)?,
    })
}

fn user(row: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord { id: row.get(0)?, user_principal_name: row.get(1)?, display_name: row.get(2)?, mail: row.get(3)? })
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

const INSERT_OPERATION: &str = "INSERT INTO operations (id, user_id, status, progress, storage_location, \
     submitted_at, completed_at, version, failure_reason, tenant_id, storage_secret) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)";

/// Inserts one operation on `conn` (a connection or a transaction).
fn insert_operation(conn: &rusqlite::Connection, r: &OperationRecord) -> rusqlite::Result<usize> {
    conn.prepare_cached(INSERT_OPERATION)?.execute(params![
        r.id.to_string(),
        r.user_id,
        status_ordinal(r.status),
        r.progress,
        r.storage_location,
        timestamp(&r.submitted_at),
        r.completed_at.as_ref().map(timestamp),
        to_i64(r.version),
        r.failure_reason,
        r.tenant_id,
        r.storage_secret,
    ])
}

impl SqliteStore {
    /// Stores many operations in one transaction (bulk loads: benchmarks, migrations from elsewhere).
    pub fn insert_many(&self, records: &[OperationRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(backend)?;
        for r in records {
            insert_operation(&tx, r).map_err(backend)?;
        }
        tx.commit().map_err(backend)?;
        Ok(records.len())
    }
}

impl OperationStore for SqliteStore {
    fn insert(&self, r: &OperationRecord) -> Result<(), StoreError> {
        let conn = self.writer()?;
        let result = insert_operation(&conn, r);
        match result {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqliteFailure(e, _)) if e.code == rusqlite::ErrorCode::ConstraintViolation => {
                Err(StoreError::Duplicate(r.id))
            }
            Err(e) => Err(backend(e)),
        }
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        let conn = self.conn()?;
        get_operation(&conn, id)
    }

    fn get_without_waiting(&self, id: Uuid) -> Option<Result<Option<OperationRecord>, StoreError>> {
        // WAL readers never wait for the writer, so with a free connection a lookup by key is a few
        // microseconds of work on the calling thread.
        self.pool.try_get().map(|conn| get_operation(&conn, id))
    }

    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError> {
        let (text, values) = sql::select_operations(request).build_rusqlite(SqliteQueryBuilder);
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&text).map_err(backend)?;
        let mut rows = stmt.query(&*values.as_params()).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            out.push(record(row)?);
        }
        Ok(out)
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError> {
        let (text, values) = sql::count_operations(tenant, filter, search).build_rusqlite(SqliteQueryBuilder);
        let conn = self.conn()?;
        let mut stmt = conn.prepare_cached(&text).map_err(backend)?;
        let n: i64 = stmt.query_row(&*values.as_params(), |row| row.get(0)).map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    fn replace(&self, r: &OperationRecord) -> Result<(), StoreError> {
        let conn = self.writer()?;
        let changed = conn
            .execute(
                "UPDATE operations SET user_id = ?2, status = ?3, progress = ?4, storage_location = ?5, \
                 submitted_at = ?6, completed_at = ?7, version = ?8, failure_reason = ?10, storage_secret = ?11 \
                 WHERE id = ?1 AND version = ?9",
                params![
                    r.id.to_string(),
                    r.user_id,
                    status_ordinal(r.status),
                    r.progress,
                    r.storage_location,
                    timestamp(&r.submitted_at),
                    r.completed_at.as_ref().map(timestamp),
                    to_i64(r.version),
                    to_i64(r.version.saturating_sub(1)),
                    r.failure_reason,
                    r.storage_secret,
                ],
            )
            .map_err(backend)?;
        if changed == 1 {
            return Ok(());
        }
        match self.get(r.id)? {
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
        let changed = match version {
            Some(v) => conn
                .execute("DELETE FROM operations WHERE id = ?1 AND version = ?2", params![id.to_string(), to_i64(v)]),
            None => conn.execute("DELETE FROM operations WHERE id = ?1", params![id.to_string()]),
        }
        .map_err(backend)?;
        if changed == 1 {
            return Ok(());
        }
        match (self.get(id)?, version) {
            (Some(now), Some(expected)) => Err(StoreError::VersionMismatch { id, expected, actual: now.version }),
            _ => Err(StoreError::Missing(id)),
        }
    }

    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO users (tenant_id, id, user_principal_name, display_name, mail) \
                     VALUES (?5, ?1, ?2, ?3, ?4) \
                     ON CONFLICT (tenant_id, id) DO UPDATE SET user_principal_name = excluded.user_principal_name, \
                     display_name = excluded.display_name, mail = excluded.mail",
                )
                .map_err(backend)?;
            for u in users {
                stmt.execute(params![u.id, u.user_principal_name, u.display_name, u.mail, tenant])
                    .map_err(|e| backend(format!("user {}: {e}", u.id)))?;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(users.len())
    }

    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
        let conn = self.conn()?;
        conn.query_row(
            "SELECT id, user_principal_name, display_name, mail FROM users \
             WHERE tenant_id = ?2 AND (id = ?1 OR user_principal_name = ?1 COLLATE NOCASE) LIMIT 1",
            params![id_or_upn, tenant],
            user,
        )
        .optional()
        .map_err(backend)
    }

    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError> {
        let mut conn = self.writer()?;
        let tx = conn.transaction().map_err(backend)?;
        {
            let mut stmt = tx
                .prepare_cached(
                    "INSERT INTO activities (tenant_id, user_id, occurred_at, kind, detail) VALUES (?5, ?1, ?2, ?3, ?4)",
                )
                .map_err(backend)?;
            for a in activities {
                stmt.execute(params![a.user_id, timestamp(&a.occurred_at), a.kind, a.detail.to_string(), tenant])
                    .map_err(backend)?;
            }
        }
        tx.commit().map_err(backend)?;
        Ok(activities.len())
    }

    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError> {
        let conn = self.conn()?;
        let n: i64 = conn
            .query_row(
                "SELECT COUNT(*) FROM activities WHERE tenant_id = ?2 AND user_id = ?1",
                params![user_id, tenant],
                |r| r.get(0),
            )
            .map_err(backend)?;
        Ok(u64::try_from(n).unwrap_or_default())
    }

    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT seq, user_id, occurred_at, kind, detail FROM activities WHERE tenant_id = ?4 AND user_id = ?1 AND seq > ?2 \
                 ORDER BY seq LIMIT ?3",
            )
            .map_err(backend)?;
        let mut rows = stmt.query(params![user_id, after, to_i64(limit), tenant]).map_err(backend)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(backend)? {
            let get_err = |e: rusqlite::Error| StoreError::Corrupt(e.to_string());
            let occurred: String = row.get(2).map_err(get_err)?;
            let detail: String = row.get(4).map_err(get_err)?;
            out.push((
                row.get(0).map_err(get_err)?,
                ActivityRecord {
                    user_id: row.get(1).map_err(get_err)?,
                    occurred_at: parse_time(&occurred)?,
                    kind: row.get(3).map_err(get_err)?,
                    detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                },
            ));
        }
        Ok(out)
    }

    fn claim_next(&self) -> Result<Option<OperationRecord>, StoreError> {
        let conn = self.writer()?;
        let sql = format!(
            "UPDATE operations SET status = {running}, version = version + 1 WHERE id = \
             (SELECT id FROM operations WHERE status = {waiting} ORDER BY submitted_at, id LIMIT 1) RETURNING {}",
            sql::COLUMNS.join(", "),
            running = status_ordinal(DataPolicyOperationStatus::Running),
            waiting = status_ordinal(DataPolicyOperationStatus::NotStarted),
        );
        let mut stmt = conn.prepare_cached(&sql).map_err(backend)?;
        let mut rows = stmt.query([]).map_err(backend)?;
        match rows.next().map_err(backend)? {
            Some(row) => record(row).map(Some),
            None => Ok(None),
        }
    }

    fn requeue_running(&self) -> Result<u64, StoreError> {
        let conn = self.writer()?;
        let n = conn
            .execute(
                &format!(
                    "UPDATE operations SET status = {waiting}, progress = 0, version = version + 1 WHERE status = {running}",
                    running = status_ordinal(DataPolicyOperationStatus::Running),
                    waiting = status_ordinal(DataPolicyOperationStatus::NotStarted),
                ),
                [],
            )
            .map_err(backend)?;
        Ok(n as u64)
    }

    fn record_exported(&self, operation: Uuid, object: &ExportedObject) -> Result<(), StoreError> {
        let conn = self.writer()?;
        conn.execute(
            "INSERT INTO export_objects (operation_id, path, size, sha256, etag) VALUES (?1, ?2, ?3, ?4, ?5) \
             ON CONFLICT (operation_id, path) DO UPDATE SET size = excluded.size, sha256 = excluded.sha256, \
             etag = excluded.etag",
            params![operation.to_string(), object.path, to_i64(object.size), object.sha256, object.etag],
        )
        .map_err(|e| match e {
            // The operation is gone (deleted meanwhile): its objects go with it.
            rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY => {
                StoreError::Missing(operation)
            }
            other => backend(other),
        })?;
        Ok(())
    }

    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError> {
        let conn = self.conn()?;
        let mut stmt = conn
            .prepare_cached("SELECT path, size, sha256, etag FROM export_objects WHERE operation_id = ?1 ORDER BY path")
            .map_err(backend)?;
        let rows = stmt
            .query_map(params![operation.to_string()], |row| {
                Ok(ExportedObject {
                    path: row.get(0)?,
                    size: row.get::<_, i64>(1)?.max(0) as u64,
                    sha256: row.get(2)?,
                    etag: row.get(3)?,
                })
            })
            .map_err(backend)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(backend)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
