//! The store's ports: the records dpo keeps and one trait per concern: [`Operations`] (the entities),
//! [`JobQueue`] (exports claimed under a lease, every later write fenced by the claim's attempt),
//! [`Directory`] (users and their activity records), [`ExportLedger`] (objects an export has written
//! whole) and [`AuditLog`]. A backend (`dpo-server`'s SQLite and PostgreSQL adapters) implements them;
//! [`Stores`] holds them, so a wrapper such as the read cache wraps only what it must.
//!
//! The traits are synchronous, as SQLite is. A store whose driver is asynchronous (PostgreSQL) also offers
//! the calls of the request path as futures ([`AsyncOperations`], [`AsyncDirectory`]), which async code
//! awaits without a hop to the blocking pool.

use std::{future::Future, pin::Pin, sync::Arc};

use crate::odata::{filter::Filter, orderby::SortKey};
use crate::requests::SubjectRightsRequests;
use chrono::{DateTime, Utc};
use dpo_model::DataPolicyOperationStatus;
use uuid::Uuid;

/// A data policy operation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    /// Unique key.
    pub id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// The user whose data the operation is about.
    pub user_id: String,
    /// Where the operation stands.
    pub status: DataPolicyOperationStatus,
    /// Progress, 0 to 100.
    pub progress: f64,
    /// Where the export goes, with its SAS signature redacted: the form answers show and queries match.
    pub storage_location: Option<String>,
    /// Where the export goes, whole (with the signature): only the export reads it, never a query.
    pub storage_secret: Option<String>,
    /// When the operation was submitted (millisecond precision).
    pub submitted_at: DateTime<Utc>,
    /// When it completed or failed.
    pub completed_at: Option<DateTime<Utc>>,
    /// Bumped on every change; the ETag is derived from it.
    pub version: u64,
    /// Why the operation failed, for people.
    pub failure_reason: Option<String>,
    /// The subject rights request whose stages this operation runs: dpo's own operation, never listed
    /// nor answered as a dataPolicyOperation.
    pub request_id: Option<Uuid>,
}

impl OperationRecord {
    /// The operation's ETag (weak: it names a version, not bytes).
    pub fn etag(&self) -> String {
        // Written piece by piece: a polled operation's ETag is made on every read, and `format!` costs
        // several times as much.
        let mut tag = String::with_capacity(24);
        tag.push_str("W/\"");
        tag.push_str(itoa::Buffer::new().format(self.version));
        tag.push('"');
        tag
    }
}

/// An object an export has written whole to its target, as its manifest lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ExportedObject {
    /// Path relative to the export folder.
    pub path: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, lower-case hex.
    pub sha256: String,
    /// The target's ETag of the object as written, so that a resumed export can tell that the object
    /// is still the one it wrote (size alone cannot). Not part of the manifest.
    #[serde(skip)]
    pub etag: Option<String>,
    /// Rows a data source's query wrote into it (`None` for objects that are not rows).
    #[serde(skip)]
    pub rows: Option<u64>,
}

/// One activity record of a user (a sign-in, a file access, ...), exported as a line of JSON.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ActivityRecord {
    /// The user.
    pub user_id: String,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// What kind of activity, e.g. `signIn`.
    pub kind: String,
    /// Details, as recorded.
    #[serde(default)]
    pub detail: serde_json::Value,
}

/// A user of the directory.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserRecord {
    /// The user's id (a GUID on Graph; any non-empty string here).
    pub id: String,
    /// Sign-in name, e.g. `alice@contoso.com`.
    pub user_principal_name: String,
    /// Name shown to people.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Mail address.
    #[serde(default)]
    pub mail: Option<String>,
    /// Further attributes of the entry (`employeeId`, `customerNumber`…), strings, numbers or booleans:
    /// the users file's other fields or columns. Exported in the profile, and bound as data sources'
    /// parameters (`:employeeId`, `{employeeId}`) when the sources file declares them.
    #[serde(flatten, default)]
    pub attributes: std::collections::BTreeMap<String, serde_json::Value>,
}

/// One event of the audit trail, as stored: what happened, who did it, to whom, and the hash chain.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// The tenant whose chain it belongs to.
    pub tenant_id: String,
    /// Its place in the tenant's chain, from 1.
    pub seq: i64,
    /// Its id (a GUID, as Graph's `directoryAudit.id`).
    pub id: String,
    /// When it happened (RFC 3339, UTC, milliseconds).
    pub at: String,
    /// Graph's `category`: `DataPolicyOperations`.
    pub category: String,
    /// Graph's `activityDisplayName`: `Export personal data`, `Cancel data policy operation`…
    pub activity: String,
    /// `user` or `app`.
    pub actor_kind: String,
    /// The user's `oid` or the app's `appid`.
    pub actor_id: String,
    /// The user whose data it concerns.
    pub target_user: Option<String>,
    /// The data policy operation it concerns.
    pub operation_id: Option<String>,
    /// Where the export goes, with the SAS signature redacted.
    pub storage_location: Option<String>,
    /// `success` or `failure`.
    pub result: String,
    /// Why it failed or was refused.
    pub reason: Option<String>,
    /// The request's `request-id`.
    pub request_id: String,
    /// The hash of the tenant's previous event (64 zeros for the first).
    pub prev_hash: String,
    /// SHA-256 of `prev_hash` and this event's other fields (see `audit::hash`).
    pub hash: String,
}

/// The `prev_hash` of a tenant's first audit event.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

impl AuditEvent {
    /// The event at the place after `head` (the chain's last event's place and hash; `None` for an empty
    /// chain, which it starts), with its own hash: every store appends through this one rule.
    pub fn sealed_after(self, head: Option<(i64, String)>) -> AuditEvent {
        match head {
            Some((seq, hash)) => self.sealed(seq + 1, &hash),
            None => self.sealed(1, GENESIS_HASH),
        }
    }

    /// The event at place `seq` of its chain after an event whose hash is `prev_hash`, with its own hash.
    fn sealed(mut self, seq: i64, prev_hash: &str) -> AuditEvent {
        self.seq = seq;
        self.prev_hash = prev_hash.to_string();
        self.hash = self.expected_hash();
        self
    }

    /// The hash this event must have: SHA-256 (hex) of its fields but `hash`, each written as JSON in
    /// a fixed order, one a line; any change to a field, its place or its predecessor changes it.
    pub fn expected_hash(&self) -> String {
        use sha2::Digest;
        let fields = serde_json::json!([
            self.tenant_id,
            self.seq,
            self.id,
            self.at,
            self.category,
            self.activity,
            self.actor_kind,
            self.actor_id,
            self.target_user,
            self.operation_id,
            self.storage_location,
            self.result,
            self.reason,
            self.request_id,
            self.prev_hash,
        ]);
        let mut hasher = sha2::Sha256::new();
        if let serde_json::Value::Array(fields) = fields {
            for field in fields {
                hasher.update(field.to_string().as_bytes());
                hasher.update(b"\n");
            }
        }
        hex::encode(hasher.finalize())
    }
}

/// Where a list continues: the sort-key values and id of the last operation served.
#[derive(Debug, Clone, PartialEq)]
pub struct Cursor {
    /// Sort-key values, as the store's statements give them (`dpo_store::statements::sort_values`).
    pub keys: Vec<serde_json::Value>,
    /// Id of the last operation served.
    pub last_id: String,
}

/// Which operations to read, in which order.
#[derive(Debug, Clone, Copy)]
pub struct ListRequest<'a> {
    /// Only operations of this tenant.
    pub tenant: &'a str,
    /// Only operations matching this.
    pub filter: Option<&'a Filter>,
    /// Only operations whose userId or storageLocation contains this.
    pub search: Option<&'a str>,
    /// Sort keys; the id is always the last tie-breaker.
    pub order: &'a [SortKey],
    /// Continue after this operation.
    pub after: Option<&'a Cursor>,
    /// Skip this many first.
    pub skip: u64,
    /// Return at most this many.
    pub limit: u64,
}

/// Why a store failed, kept whole: shared, because a batch that failed to commit answers each of its writers
/// with the same cause.
pub type Cause = Arc<dyn std::error::Error + Send + Sync>;

/// Errors of a store.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// An operation with this id exists already.
    #[error("operation {0} exists already")]
    Duplicate(Uuid),
    /// The operation changed since the version the caller read.
    #[error("operation {id} is at version {actual}, not {expected}")]
    VersionMismatch {
        /// The operation.
        id: Uuid,
        /// The version the caller expected.
        expected: u64,
        /// The version it is at.
        actual: u64,
    },
    /// The operation does not exist.
    #[error("operation {0} does not exist")]
    Missing(Uuid),
    /// The claim is no longer the operation's current one: its lease expired and another worker claimed
    /// it, or it was released or finished. Its holder must stop writing.
    #[error("the claim on operation {0} was lost to a newer one")]
    LeaseLost(Uuid),
    /// A stored value could not be read back.
    #[error("stored data is corrupt: {0}")]
    Corrupt(#[source] Cause),
    /// The storage itself failed.
    #[error("storage failed: {0}")]
    Backend(#[source] Cause),
    /// The database could not be reached (refused, dropped, shutting down or restarting): worth asking
    /// again shortly. Requests answer 503 with `Retry-After`; an export keeps what it wrote and goes back
    /// to the queue.
    #[error("the database cannot be reached: {0}")]
    Unavailable(#[source] Cause),
}

impl StoreError {
    /// [`StoreError::Backend`] for `cause`.
    pub fn backend(cause: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Backend(Arc::new(cause))
    }

    /// [`StoreError::Corrupt`] for `cause`.
    pub fn corrupt(cause: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Corrupt(Arc::new(cause))
    }

    /// [`StoreError::Unavailable`] for `cause`.
    pub fn unavailable(cause: impl std::error::Error + Send + Sync + 'static) -> StoreError {
        StoreError::Unavailable(Arc::new(cause))
    }
}

/// The data policy operations. Every method is atomic and, once it returns, durable.
pub trait Operations: Send + Sync + 'static {
    /// Stores a new operation.
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError>;
    /// Stores a new operation and appends `event` (its submission) to the audit trail
    /// ([`AuditLog::append`]) in the same commit, and returns the event as stored: a submission costs one
    /// commit, not two, and neither lands without the other.
    fn insert_recorded(&self, record: &OperationRecord, event: AuditEvent) -> Result<AuditEvent, StoreError>;
    /// [`Operations::insert_recorded`] as a future that holds no thread while it waits for its commit,
    /// when the store queues its writes for a writer of its own; `None` when it does not (the caller
    /// then runs `insert_recorded` where it may block).
    fn insert_recorded_queued(&self, record: &OperationRecord, event: &AuditEvent) -> Option<Pending<AuditEvent>> {
        let _ = (record, event);
        None
    }
    /// The operation with this id, if any.
    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError>;
    /// [`Operations::get`] if the store can answer at once, without waiting for a connection or a
    /// lock; `None` when it cannot (the caller then uses `get` on a thread that may block).
    fn get_without_waiting(&self, id: Uuid) -> Option<Result<Option<OperationRecord>, StoreError>> {
        let _ = id;
        None
    }
    /// Operations as `request` asks.
    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError>;
    /// How many operations of `tenant` match.
    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError>;
    /// Replaces an operation if it is still at `record.version - 1`.
    fn replace(&self, record: &OperationRecord) -> Result<(), StoreError>;
    /// Deletes an operation if it is at `version` (any version when `None`).
    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError>;
    /// The same calls as futures that hold no thread while they wait, when the store's driver is
    /// asynchronous; `None` when its calls block (callers then run them on the blocking pool).
    fn without_blocking(&self) -> Option<&dyn AsyncOperations> {
        None
    }
}

/// A store call in flight; it owns what it needs (statements are built before it is returned).
pub type Pending<T> = Pin<Box<dyn Future<Output = Result<T, StoreError>> + Send + 'static>>;

/// [`Operations`] as futures, for stores whose driver is asynchronous: the same meaning, call by call.
pub trait AsyncOperations: Send + Sync {
    /// [`Operations::insert`].
    fn insert(&self, record: &OperationRecord) -> Pending<()>;
    /// [`Operations::insert_recorded`].
    fn insert_recorded(&self, record: &OperationRecord, event: AuditEvent) -> Pending<AuditEvent>;
    /// [`Operations::get`].
    fn get(&self, id: Uuid) -> Pending<Option<OperationRecord>>;
    /// [`Operations::list`].
    fn list(&self, request: &ListRequest<'_>) -> Pending<Vec<OperationRecord>>;
    /// [`Operations::count`].
    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Pending<u64>;
    /// [`Operations::replace`].
    fn replace(&self, record: &OperationRecord) -> Pending<()>;
    /// [`Operations::delete`].
    fn delete(&self, id: Uuid, version: Option<u64>) -> Pending<()>;
}

/// The lookup of the request path ([`Directory::find_user`]) as a future, for asynchronous drivers.
pub trait AsyncDirectory: Send + Sync {
    /// [`Directory::find_user`].
    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Pending<Option<UserRecord>>;
}

/// An operation claimed by an export worker: the operation as claimed, and the claim's attempt number.
/// Every write the export makes afterwards names the attempt, and fails with [`StoreError::LeaseLost`] once
/// a newer claim exists, so a worker that lost its lease can never overwrite the one that took over.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    /// The operation, `running`, as the claim left it.
    pub operation: OperationRecord,
    /// Bumped by every claim of the operation.
    pub attempt: u64,
}

/// The export queue: `notStarted` operations, and `running` ones whose lease expired, wait to be claimed.
pub trait JobQueue: Send + Sync + 'static {
    /// Claims the oldest operation waiting at `now` for `owner` until `until`: one `notStarted`, or one
    /// `running` whose lease expired (its worker is gone). Bumps its attempt and version.
    /// With `per_tenant`, an export of a tenant that already has that many running (under a live lease)
    /// waits, so that one tenant cannot fill every worker.
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_tenant: Option<u32>,
    ) -> Result<Option<Claim>, StoreError>;
    /// Extends the claim's lease to `until`.
    fn heartbeat(&self, claim: &Claim, until: DateTime<Utc>) -> Result<(), StoreError>;
    /// Records the export's progress (0 to 100).
    fn progress(&self, claim: &Claim, percent: f64) -> Result<(), StoreError>;
    /// Marks the operation `complete` at `at` and returns it.
    fn complete(&self, claim: &Claim, at: DateTime<Utc>) -> Result<OperationRecord, StoreError>;
    /// Marks the operation `failed` at `at`, saying why.
    fn fail(&self, claim: &Claim, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Gives the operation back to the queue at once (a worker that stops hands its exports over).
    fn release(&self, claim: &Claim) -> Result<(), StoreError>;
    /// Ends at `now` the leases of every owner but `owner`: for a store only one server can use (SQLite,
    /// whose state directory the server holds), every other owner is a server that is gone.
    fn expire_leases_of_others(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError>;
    /// How many exports wait to be claimed (`notStarted`), in every tenant: the queue's depth, and a
    /// cheap question that shows the store answers.
    fn queued(&self) -> Result<u64, StoreError>;
    /// Wakes `wake` whenever another server queues an export or hands one back (a store several
    /// servers share). A server's own submissions wake its engine directly, so a store only one server
    /// uses does nothing here.
    fn watch(&self, wake: Arc<tokio::sync::Notify>, log: slog::Logger) -> Result<(), StoreError> {
        let _ = (wake, log);
        Ok(())
    }
}

/// The user directory and the users' activity records.
pub trait Directory: Send + Sync + 'static {
    /// Adds or updates users of `tenant`; returns how many were written.
    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError>;
    /// The user of `tenant` with this id or userPrincipalName (case-insensitive), if any.
    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The user of `tenant` whose mail or userPrincipalName is `email` (case-insensitive), if any: the
    /// person a subject rights request names, when they are a user of the directory.
    fn find_user_by_email(&self, tenant: &str, email: &str) -> Result<Option<UserRecord>, StoreError>;
    /// [`Directory::find_user`] if the store can answer at once, without waiting for a connection or a
    /// lock; `None` when it cannot (the caller then uses `find_user` on a thread that may block).
    fn find_user_without_waiting(
        &self,
        tenant: &str,
        id_or_upn: &str,
    ) -> Option<Result<Option<UserRecord>, StoreError>> {
        let _ = (tenant, id_or_upn);
        None
    }
    /// Records activities of users of `tenant`; returns how many were written.
    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError>;
    /// How many activity records a user of `tenant` has.
    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError>;
    /// Up to `limit` of a user's activity records after sequence number `after`, with their numbers.
    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError>;
    /// [`Directory::find_user`] as a future that holds no thread, when the store's driver is asynchronous.
    fn lookup_without_blocking(&self) -> Option<&dyn AsyncDirectory> {
        None
    }
}

/// What each export has written whole, so that a resumed export skips it.
pub trait ExportLedger: Send + Sync + 'static {
    /// Records, under `claim`, that its export has written `object` whole (replacing an earlier record
    /// of the same path).
    fn record_exported(&self, claim: &Claim, object: &ExportedObject) -> Result<(), StoreError>;
    /// The objects recorded for the export of `operation`.
    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError>;
}

/// Which audit events a read wants: those `filter` keeps, in chain order (or newest first), from after
/// place `after` (keyset paging), at most `limit`.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditPage {
    /// `$filter`, checked.
    pub filter: Option<crate::odata::audit_filter::AuditFilter>,
    /// Newest first (Graph's order for audit logs) rather than oldest first.
    pub newest_first: bool,
    /// Start after this place in the chain (before it, when newest first).
    pub after: Option<i64>,
    /// The most events to read.
    pub limit: u64,
}

/// The audit trail: events appended to a hash chain per tenant, never changed.
pub trait AuditLog: Send + Sync + 'static {
    /// Appends `event` as the next of its tenant's chain, [sealed](AuditEvent::sealed) at that place (no two
    /// events ever share one), and returns it as stored.
    fn append(&self, event: AuditEvent) -> Result<AuditEvent, StoreError>;
    /// Up to `limit` events of `tenant` after `after_seq`, in order.
    fn audit_events(&self, tenant: &str, after_seq: i64, limit: u64) -> Result<Vec<AuditEvent>, StoreError> {
        self.audit_page(tenant, &AuditPage { filter: None, newest_first: false, after: Some(after_seq), limit })
    }
    /// The events of `tenant` that `page` selects, in its order.
    fn audit_page(&self, tenant: &str, page: &AuditPage) -> Result<Vec<AuditEvent>, StoreError>;
    /// Every tenant that has events.
    fn audit_tenants(&self) -> Result<Vec<String>, StoreError>;
    /// Each tenant's latest event: the tenant, its place and its hash (no chain is checked).
    fn audit_heads(&self) -> Result<Vec<(String, i64, String)>, StoreError> {
        let mut heads = Vec::new();
        for tenant in self.audit_tenants()? {
            if let Some(last) = self.audit_last(&tenant)? {
                heads.push((tenant, last.0, last.1));
            }
        }
        Ok(heads)
    }
    /// The place and hash of `tenant`'s latest event, if it has one.
    fn audit_last(&self, tenant: &str) -> Result<Option<(i64, String)>, StoreError>;
}

/// A backend: all six concerns.
pub trait Backend: Operations + JobQueue + Directory + ExportLedger + AuditLog + SubjectRightsRequests {}

impl<B: Operations + JobQueue + Directory + ExportLedger + AuditLog + SubjectRightsRequests> Backend for B {}

/// The store's concerns, each behind its own trait object.
#[derive(Clone)]
pub struct Stores {
    /// The entities.
    pub operations: Arc<dyn Operations>,
    /// The export queue.
    pub queue: Arc<dyn JobQueue>,
    /// Users and activity records.
    pub directory: Arc<dyn Directory>,
    /// Objects exports have written.
    pub ledger: Arc<dyn ExportLedger>,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Subject rights requests and their notes.
    pub requests: Arc<dyn SubjectRightsRequests>,
}

impl Stores {
    /// Every concern served by `backend`.
    pub fn over<B: Backend>(backend: Arc<B>) -> Stores {
        Stores {
            operations: backend.clone(),
            queue: backend.clone(),
            directory: backend.clone(),
            ledger: backend.clone(),
            audit: backend.clone(),
            requests: backend,
        }
    }
}
