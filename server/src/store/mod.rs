//! Persistence of data policy operations.
//!
//! [`OperationStore`] is what the domain needs from storage; [`memory::MemoryStore`] keeps everything in
//! memory.

pub mod memory;

use chrono::{DateTime, Utc};
use dpo_api::model::DataPolicyOperationStatus;
use uuid::Uuid;

/// A data policy operation as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct OperationRecord {
    /// Unique key.
    pub id: Uuid,
    /// The user whose data the operation is about.
    pub user_id: String,
    /// Where the operation stands.
    pub status: DataPolicyOperationStatus,
    /// Progress, 0 to 100.
    pub progress: f64,
    /// Where the export goes.
    pub storage_location: Option<String>,
    /// When the operation was submitted.
    pub submitted_at: DateTime<Utc>,
    /// When it completed (or failed).
    pub completed_at: Option<DateTime<Utc>>,
    /// Bumped on every change; the ETag is derived from it.
    pub version: u64,
}

/// Which slice of the operations to read, in submission order.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Slice {
    /// How many to skip.
    pub skip: u64,
    /// How many to return at most.
    pub limit: u64,
}

/// Errors of a store.
#[derive(Debug, thiserror::Error)]
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
    /// The storage itself failed.
    #[error("storage failed: {0}")]
    Backend(String),
}

/// Storage of operations. Every method is atomic.
pub trait OperationStore: Send + Sync + 'static {
    /// Stores a new operation.
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError>;
    /// The operation with this id, if any.
    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError>;
    /// A slice of all operations, oldest submission first, and how many there are in all.
    fn list(&self, slice: Slice) -> Result<(Vec<OperationRecord>, u64), StoreError>;
    /// Replaces an operation if it is still at `record.version - 1`.
    fn replace(&self, record: &OperationRecord) -> Result<(), StoreError>;
    /// Deletes an operation if it is at `version` (any version when `None`).
    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError>;
}
