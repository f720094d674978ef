//! Subject rights requests as stored: the entity as the wire has it, with its tenant and version, its
//! notes, and the port a store implements for them ([`SubjectRightsRequests`]).

use crate::{
    odata::{filter::Filter, orderby::SortKey},
    store::{Cursor, OperationRecord, StoreError},
};
use chrono::{DateTime, Utc};
use dpo_model::subject_rights::{AuthoredNote, SubjectRightsRequest};
use uuid::Uuid;

/// A request as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestRecord {
    /// Its id.
    pub id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// Bumped by every change; the `ETag` and the guard of concurrent updates.
    pub version: u64,
    /// The entity, as the wire has it (its `id` included).
    pub request: SubjectRightsRequest,
    /// The final report, once generateReport made it; it stays after what the request collected is
    /// deleted.
    pub report: Option<String>,
    /// When what the request collected was deleted from the request store (its retention ended).
    pub collected_removed_at: Option<DateTime<Utc>>,
}

/// A note as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct NoteRecord {
    /// Its id.
    pub id: Uuid,
    /// The tenant it belongs to.
    pub tenant_id: String,
    /// The request it is on.
    pub request_id: Uuid,
    /// When it was written.
    pub created_at: DateTime<Utc>,
    /// The note, as the wire has it.
    pub note: AuthoredNote,
}

/// Which requests to read, in which order.
#[derive(Debug, Clone, Copy)]
pub struct RequestList<'a> {
    /// Only requests of this tenant.
    pub tenant: &'a str,
    /// Only requests matching this.
    pub filter: Option<&'a Filter>,
    /// Sort keys; the id is always the last tie-breaker.
    pub order: &'a [SortKey],
    /// Continue after this request.
    pub after: Option<&'a Cursor>,
    /// Skip this many first.
    pub skip: u64,
    /// Return at most this many.
    pub limit: u64,
}

/// The subject rights requests and their notes. Every method is atomic and, once it returns, durable.
pub trait SubjectRightsRequests: Send + Sync + 'static {
    /// Stores a new request and queues `job`, the operation that runs its stages, in one transaction.
    fn insert_request(&self, record: &RequestRecord, job: &OperationRecord) -> Result<(), StoreError>;
    /// The request of `tenant` with this id, if any (another tenant's is none).
    fn get_request(&self, tenant: &str, id: Uuid) -> Result<Option<RequestRecord>, StoreError>;
    /// Replaces a request whose stored version is `record.version - 1`, and queues `job` (the operation
    /// that runs its next stages) in the same transaction; [`StoreError::VersionMismatch`] when it changed
    /// meanwhile, [`StoreError::Missing`] when it is gone.
    fn replace_request(&self, record: &RequestRecord, job: Option<&OperationRecord>) -> Result<(), StoreError>;
    /// The requests `list` selects, in its order.
    fn list_requests(&self, list: &RequestList<'_>) -> Result<Vec<RequestRecord>, StoreError>;
    /// How many requests of `tenant` match `filter`.
    fn count_requests(&self, tenant: &str, filter: Option<&Filter>) -> Result<u64, StoreError>;
    /// Appends a note to its request.
    fn add_note(&self, note: &NoteRecord) -> Result<(), StoreError>;
    /// Up to `limit` notes of the request after place `after` (0 for the first), with their places.
    fn notes(&self, tenant: &str, request: Uuid, after: i64, limit: u64) -> Result<Vec<(i64, NoteRecord)>, StoreError>;
    /// How many notes the request has.
    fn count_notes(&self, tenant: &str, request: Uuid) -> Result<u64, StoreError>;
    /// Up to `limit` requests of any tenant closed before `closed_before` whose collected data is still in
    /// the request store, the longest closed first.
    fn requests_to_remove(&self, closed_before: DateTime<Utc>, limit: u64) -> Result<Vec<RequestRecord>, StoreError>;
}
