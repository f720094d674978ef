//! Subject rights requests as stored: the entity as the wire has it, with its tenant and version, its
//! notes, and the port a store implements for them ([`SubjectRightsRequests`]).

use crate::{
    odata::{filter::Filter, orderby::SortKey},
    store::{AuditEvent, Claim, Cursor, OperationRecord, StoreError},
};
use chrono::{DateTime, Utc};
use dpo_model::subject_rights::{AuthoredNote, SubjectRightsRequest};
use serde::{Deserialize, Serialize};
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
    /// A `delete` request's plan and what each of its steps did, once its estimate ran.
    pub erasure: Option<ErasureLog>,
}

impl RequestRecord {
    /// The operation that runs the request's stages from where it stands (dpo's own: no dataPolicyOperation),
    /// queued at `now`.
    pub fn job(&self, now: DateTime<Utc>) -> OperationRecord {
        OperationRecord {
            id: Uuid::now_v7(),
            tenant_id: self.tenant_id.clone(),
            user_id: String::new(),
            status: dpo_model::DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: None,
            storage_secret: None,
            submitted_at: now,
            completed_at: None,
            version: 1,
            failure_reason: None,
            request_id: Some(self.id),
        }
    }
}

/// What a `delete` request's stages planned and did in the sources, step by step: written by the estimate
/// (the plan a person approves), then after each step of `contentDeletion` before the next one starts, and
/// by the verification. Kept beside the request (Graph's entity has no place for it); the report is made
/// from it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureLog {
    /// Every step, in the order they run.
    pub steps: Vec<ErasureStep>,
    /// The rows each source keeps of the person, and why.
    pub kept: Vec<KeptRows>,
    /// Sources that hold something of the person and have nothing to erase it with.
    pub unerased: Vec<Unerased>,
    /// What the verification found, once it ran.
    pub verified: Option<Verification>,
}

/// What kind of step erases.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum StepKind {
    /// A `DELETE` or `UPDATE` statement of a `sql` source, in a transaction of its own.
    Statement,
    /// Every object under the person's prefix of an `objects` source, one by one.
    Objects,
    /// One request to an `http` source.
    Request,
}

/// One step of an erasure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErasureStep {
    /// The source.
    pub source: String,
    /// The statement's name; `objects` or `request` for the other kinds.
    pub name: String,
    /// Its kind.
    pub kind: StepKind,
    /// What the estimate found it would change: rows, objects, or the records the source reads (a request).
    pub estimated: u64,
    /// A fingerprint of what the step runs (the statement, the request), so that a sources file changed
    /// after the estimate was approved is noticed instead of running what nobody approved.
    pub fingerprint: String,
    /// Why it does not run: it names an identity the request does not give.
    pub skipped: Option<String>,
    /// Rows its transaction changed when it was about to commit: a crash after the commit and before the
    /// step was recorded done runs it again, and a second run changing nothing means the first committed.
    pub committing: Option<u64>,
    /// Objects deleted so far by runs that did not finish.
    pub deleted_so_far: u64,
    /// What it changed, once done.
    pub done: Option<StepDone>,
}

/// A step's outcome.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StepDone {
    /// Rows changed or objects deleted (0 for a request).
    pub changed: u64,
    /// The status the API answered (a request).
    pub status: Option<u16>,
    /// When it was done.
    pub at: DateTime<Utc>,
}

/// Rows a source keeps of the person, counted by a `[[source.retain]]` query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeptRows {
    /// The source.
    pub source: String,
    /// The retain entry's name.
    pub name: String,
    /// Its reason (the legal basis).
    pub reason: String,
    /// Rows it found.
    pub rows: u64,
}

/// A source holding something of the person without erase entries: nothing of it is erased.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Unerased {
    /// The source.
    pub source: String,
    /// Items it holds of the person.
    pub items: u64,
}

/// The verification after the steps: each erasing source's access queries run again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verification {
    /// When it ran.
    pub at: DateTime<Utc>,
    /// Each source read again, with what it still found.
    pub sources: Vec<Verified>,
}

/// What one erasing source still holds of the person after the steps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Verified {
    /// The source.
    pub source: String,
    /// Items its access queries (objects, records) still find.
    pub found: u64,
    /// Rows its retain entries keep: what is found up to this many is kept on purpose.
    pub kept: u64,
    /// What still finds something (`<query>: N`), when more is found than is kept.
    pub remaining: Vec<String>,
}

impl Verified {
    /// Whether everything still found is kept on purpose.
    pub fn passed(&self) -> bool {
        self.found <= self.kept
    }
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
    /// Like [`SubjectRightsRequests::replace_request`] without a job, only while `claim` still holds its
    /// operation, whose lease it extends to `until` in the same transaction: a worker that lost its claim
    /// writes nothing ([`StoreError::LeaseLost`]), and a stage's record and its heartbeat are one commit.
    /// With `event`, that commit also appends it to its tenant's audit trail: what a stage or an erase step
    /// did is never recorded without its event, nor the event without it.
    fn replace_request_claimed(
        &self,
        record: &RequestRecord,
        claim: &Claim,
        until: DateTime<Utc>,
        event: Option<AuditEvent>,
    ) -> Result<(), StoreError>;
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
