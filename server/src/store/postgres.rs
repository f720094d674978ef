//! PostgreSQL, for several servers over one database (`--database postgres://…`).
//!
//! Driver and pool: the synchronous `postgres` client (tokio-postgres underneath, the maintained
//! PostgreSQL client of the Rust ecosystem) pooled by `r2d2`. The store's traits are synchronous, as
//! SQLite's nature makes them, so one shape serves both backends and async code reaches either through
//! the same hop to the blocking pool ([`super::blocking`]); an async pool would only add a second way in.
//! Statements are the same sea-query statements as SQLite's ([`super::sql`]), built for PostgreSQL.
//!
//! Migrations (`server/migrations/postgres/`, numbered as SQLite's) run at start inside a transaction
//! holding an advisory lock, so replicas starting together apply each one once. Nothing is cached: other
//! servers write the same rows.

use super::{
    ActivityRecord, Claim, Directory, ExportLedger, ExportedObject, JobQueue, ListRequest, OperationRecord, Operations,
    StoreError, UserRecord,
    sql::{self, Statement, status_from_ordinal},
};
use crate::odata::filter::Filter;
use chrono::{DateTime, Utc};
use postgres::{NoTls, Row, types::ToSql};
use r2d2_postgres::PostgresConnectionManager;
use sea_query::{PostgresQueryBuilder, UpdateStatement};
use sea_query_postgres::{PostgresBinder, PostgresValues};
use uuid::Uuid;

type Pool = r2d2::Pool<PostgresConnectionManager<NoTls>>;
type Connection = r2d2::PooledConnection<PostgresConnectionManager<NoTls>>;

/// PostgreSQL's migrations, numbered as SQLite's.
const MIGRATIONS: [(i64, &str); 9] = [
    (1, include_str!("../../migrations/postgres/0001_operations.sql")),
    (2, include_str!("../../migrations/postgres/0002_users.sql")),
    (3, include_str!("../../migrations/postgres/0003_export.sql")),
    (4, include_str!("../../migrations/postgres/0004_tenants.sql")),
    (5, include_str!("../../migrations/postgres/0005_tenant_indexes.sql")),
    (6, include_str!("../../migrations/postgres/0006_export_objects.sql")),
    (7, include_str!("../../migrations/postgres/0007_storage_secret.sql")),
    (8, include_str!("../../migrations/postgres/0008_export_object_etags.sql")),
    (9, include_str!("../../migrations/postgres/0009_leases.sql")),
];

/// Key of the advisory lock migrations run under ("dpo" in ASCII).
const MIGRATION_LOCK: i64 = 0x64_70_6f;

/// Operations, users and the export queue in a PostgreSQL database.
#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
}

fn backend(e: impl std::fmt::Display) -> StoreError {
    StoreError::Backend(e.to_string())
}

/// The SQLSTATE of a database error, if it is one.
fn sqlstate(e: &postgres::Error) -> Option<&postgres::error::SqlState> {
    e.code()
}

impl PostgresStore {
    /// Connects to `url` (a `postgres://` URL), with up to `connections` pooled connections, and brings
    /// the schema up to date.
    pub fn open(url: &str, connections: u32) -> Result<PostgresStore, StoreError> {
        let config: postgres::Config = url.parse().map_err(|e| backend(format!("the database URL: {e}")))?;
        let manager = PostgresConnectionManager::new(config, NoTls);
        let pool = r2d2::Pool::builder()
            .max_size(connections.max(2))
            .connection_timeout(std::time::Duration::from_secs(10))
            .build(manager)
            .map_err(|e| backend(format!("connecting to the database: {e}")))?;
        let store = PostgresStore { pool };
        store.migrate()?;
        Ok(store)
    }

    /// Applies the migrations not applied yet, one transaction each, under the migration lock.
    fn migrate(&self) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(backend)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).map_err(backend)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS dpo_migrations (version BIGINT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL \
             DEFAULT now())",
        )
        .map_err(backend)?;
        let applied: Vec<i64> = tx
            .query("SELECT version FROM dpo_migrations", &[])
            .map_err(backend)?
            .iter()
            .map(|row| row.get(0))
            .collect();
        for (version, text) in MIGRATIONS {
            if applied.contains(&version) {
                continue;
            }
            tx.batch_execute(text).map_err(|e| backend(format!("migration {version:04}: {e}")))?;
            tx.execute("INSERT INTO dpo_migrations (version) VALUES ($1)", &[&version]).map_err(backend)?;
        }
        tx.commit().map_err(backend)
    }

    fn conn(&self) -> Result<Connection, StoreError> {
        self.pool.get().map_err(backend)
    }

    /// Stores many operations (bulk loads: benchmarks, migrations from elsewhere).
    pub fn insert_many(&self, records: &[OperationRecord]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(backend)?;
        for chunk in records.chunks(1000) {
            execute(&mut tx, built(sql::insert_operations(chunk)))?;
        }
        tx.commit().map_err(backend)?;
        Ok(records.len())
    }

    /// The row of a fenced write that matched nothing: gone, or claimed anew.
    fn lost(conn: &mut impl postgres::GenericClient, id: Uuid) -> StoreError {
        match get_operation(conn, id) {
            Ok(None) => StoreError::Missing(id),
            Ok(Some(_)) => StoreError::LeaseLost(id),
            Err(e) => e,
        }
    }

    fn finish(&self, claim: &Claim, update: UpdateStatement) -> Result<OperationRecord, StoreError> {
        let mut conn = self.conn()?;
        let found = query(&mut *conn, built(update), record)?.pop();
        match found {
            Some(op) => Ok(op),
            None => Err(Self::lost(&mut *conn, claim.operation.id)),
        }
    }

    fn fenced(&self, claim: &Claim, update: UpdateStatement) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        match execute(&mut *conn, built(update))? {
            0 => Err(Self::lost(&mut *conn, claim.operation.id)),
            _ => Ok(()),
        }
    }
}

/// A statement as PostgreSQL text and values.
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

fn params(values: &PostgresValues) -> Vec<&(dyn ToSql + Sync)> {
    values.as_params()
}

fn execute(conn: &mut impl postgres::GenericClient, Built(text, values): Built) -> Result<u64, StoreError> {
    conn.execute(text.as_str(), &params(&values)).map_err(|e| match sqlstate(&e) {
        Some(code) if *code == postgres::error::SqlState::UNIQUE_VIOLATION => StoreError::Duplicate(Uuid::nil()),
        _ => backend(e),
    })
}

fn query<T>(
    conn: &mut impl postgres::GenericClient,
    Built(text, values): Built,
    read: impl Fn(&Row) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    conn.query(text.as_str(), &params(&values)).map_err(backend)?.iter().map(read).collect()
}

fn get_operation(conn: &mut impl postgres::GenericClient, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
    Ok(query(conn, built(sql::get_operation(id)), record)?.pop())
}

fn parse_time(text: &str) -> Result<DateTime<Utc>, StoreError> {
    DateTime::parse_from_rfc3339(text)
        .map(|d| d.with_timezone(&Utc))
        .map_err(|e| StoreError::Corrupt(format!("timestamp {text:?}: {e}")))
}

fn corrupt(e: postgres::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

/// A row of [`sql::COLUMNS`].
fn record(row: &Row) -> Result<OperationRecord, StoreError> {
    let id: String = row.try_get(0).map_err(corrupt)?;
    let status: i64 = row.try_get(2).map_err(corrupt)?;
    let submitted: String = row.try_get(5).map_err(corrupt)?;
    let completed: Option<String> = row.try_get(6).map_err(corrupt)?;
    let version: i64 = row.try_get(7).map_err(corrupt)?;
    Ok(OperationRecord {
        id: Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt(format!("id {id:?}: {e}")))?,
        user_id: row.try_get(1).map_err(corrupt)?,
        status: status_from_ordinal(status).ok_or_else(|| StoreError::Corrupt(format!("status {status}")))?,
        progress: row.try_get(3).map_err(corrupt)?,
        storage_location: row.try_get(4).map_err(corrupt)?,
        submitted_at: parse_time(&submitted)?,
        completed_at: completed.as_deref().map(parse_time).transpose()?,
        version: u64::try_from(version).map_err(|_| StoreError::Corrupt(format!("version {version}")))?,
        failure_reason: row.try_get(8).map_err(corrupt)?,
        tenant_id: row.try_get(9).map_err(corrupt)?,
        storage_secret: row.try_get(10).map_err(corrupt)?,
    })
}

/// A row of [`sql::claim_columns`].
fn claim(row: &Row) -> Result<Claim, StoreError> {
    let attempt: i64 = row.try_get(sql::COLUMNS.len()).map_err(corrupt)?;
    Ok(Claim { operation: record(row)?, attempt: u64::try_from(attempt).unwrap_or_default() })
}

fn count(row: &Row) -> Result<u64, StoreError> {
    Ok(u64::try_from(row.try_get::<_, i64>(0).map_err(corrupt)?).unwrap_or_default())
}

impl Operations for PostgresStore {
    fn insert(&self, r: &OperationRecord) -> Result<(), StoreError> {
        match execute(&mut *self.conn()?, built(sql::insert_operations(std::slice::from_ref(r)))) {
            Err(StoreError::Duplicate(_)) => Err(StoreError::Duplicate(r.id)),
            other => other.map(|_| ()),
        }
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        get_operation(&mut *self.conn()?, id)
    }

    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError> {
        query(&mut *self.conn()?, built(sql::select_operations(request)), record)
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError> {
        let counted = query(&mut *self.conn()?, built(sql::count_operations(tenant, filter, search)), count)?;
        Ok(counted.first().copied().unwrap_or_default())
    }

    fn replace(&self, r: &OperationRecord) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        if execute(&mut *conn, built(sql::replace_operation(r)))? == 1 {
            return Ok(());
        }
        match get_operation(&mut *conn, r.id)? {
            None => Err(StoreError::Missing(r.id)),
            Some(now) => Err(StoreError::VersionMismatch {
                id: r.id,
                expected: r.version.saturating_sub(1),
                actual: now.version,
            }),
        }
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        if execute(&mut *conn, built(sql::delete_operation(id, version)))? == 1 {
            return Ok(());
        }
        match (get_operation(&mut *conn, id)?, version) {
            (Some(now), Some(expected)) => Err(StoreError::VersionMismatch { id, expected, actual: now.version }),
            _ => Err(StoreError::Missing(id)),
        }
    }
}

impl JobQueue for PostgresStore {
    fn claim(&self, owner: &str, now: DateTime<Utc>, until: DateTime<Utc>) -> Result<Option<Claim>, StoreError> {
        Ok(query(&mut *self.conn()?, built(sql::claim(owner, &now, &until)), claim)?.pop())
    }

    fn heartbeat(&self, claim: &Claim, until: DateTime<Utc>) -> Result<(), StoreError> {
        self.fenced(claim, sql::heartbeat(claim, &until))
    }

    fn progress(&self, claim: &Claim, percent: f64) -> Result<(), StoreError> {
        self.fenced(claim, sql::progress(claim, percent))
    }

    fn complete(&self, claim: &Claim, at: DateTime<Utc>) -> Result<OperationRecord, StoreError> {
        self.finish(claim, sql::complete(claim, &at))
    }

    fn fail(&self, claim: &Claim, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.finish(claim, sql::fail(claim, reason, &at)).map(|_| ())
    }

    fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.finish(claim, sql::release(claim)).map(|_| ())
    }

    fn expire_leases_of_others(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        execute(&mut *self.conn()?, built(sql::expire_leases_of_others(owner, &now)))
    }
}

impl Directory for PostgresStore {
    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(backend)?;
        for chunk in users.chunks(500) {
            execute(&mut tx, built(sql::upsert_users(tenant, chunk)))?;
        }
        tx.commit().map_err(backend)?;
        Ok(users.len())
    }

    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
        let read = |row: &Row| -> Result<UserRecord, StoreError> {
            Ok(UserRecord {
                id: row.try_get(0).map_err(corrupt)?,
                user_principal_name: row.try_get(1).map_err(corrupt)?,
                display_name: row.try_get(2).map_err(corrupt)?,
                mail: row.try_get(3).map_err(corrupt)?,
            })
        };
        Ok(query(&mut *self.conn()?, built(sql::find_user(tenant, id_or_upn)), read)?.pop())
    }

    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(backend)?;
        for chunk in activities.chunks(500) {
            execute(&mut tx, built(sql::add_activities(tenant, chunk)))?;
        }
        tx.commit().map_err(backend)?;
        Ok(activities.len())
    }

    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError> {
        let counted = query(&mut *self.conn()?, built(sql::count_activities(tenant, user_id)), count)?;
        Ok(counted.first().copied().unwrap_or_default())
    }

    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError> {
        let read = |row: &Row| -> Result<(i64, ActivityRecord), StoreError> {
            let occurred: String = row.try_get(2).map_err(corrupt)?;
            let detail: String = row.try_get(4).map_err(corrupt)?;
            Ok((
                row.try_get(0).map_err(corrupt)?,
                ActivityRecord {
                    user_id: row.try_get(1).map_err(corrupt)?,
                    occurred_at: parse_time(&occurred)?,
                    kind: row.try_get(3).map_err(corrupt)?,
                    detail: serde_json::from_str(&detail).map_err(|e| StoreError::Corrupt(e.to_string()))?,
                },
            ))
        };
        query(&mut *self.conn()?, built(sql::activities(tenant, user_id, after, limit)), read)
    }
}

impl ExportLedger for PostgresStore {
    fn record_exported(&self, claim: &Claim, object: &ExportedObject) -> Result<(), StoreError> {
        let mut conn = self.conn()?;
        let mut tx = conn.transaction().map_err(backend)?;
        // The fence locks the operation's row until commit: a new claim cannot slip in between.
        if execute(&mut tx, built(sql::fence(claim)))? == 0 {
            return Err(Self::lost(&mut tx, claim.operation.id));
        }
        execute(&mut tx, built(sql::record_exported(claim.operation.id, object)))?;
        tx.commit().map_err(backend)
    }

    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError> {
        let read = |row: &Row| -> Result<ExportedObject, StoreError> {
            Ok(ExportedObject {
                path: row.try_get(0).map_err(corrupt)?,
                size: u64::try_from(row.try_get::<_, i64>(1).map_err(corrupt)?).unwrap_or_default(),
                sha256: row.try_get(2).map_err(corrupt)?,
                etag: row.try_get(3).map_err(corrupt)?,
            })
        };
        query(&mut *self.conn()?, built(sql::exported(operation)), read)
    }
}
