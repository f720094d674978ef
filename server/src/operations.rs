//! The rules of data policy operations: what may be submitted, read, changed and removed.
//!
//! Graph documents every property of a dataPolicyOperation as read-only. dpo applies that as follows,
//! for POST (create) and PATCH alike: a read-only property (`id`, `status`, `progress`, `userId` after
//! creation, `submittedDateTime`, `completedDateTime`) may be sent only with the value it already has (so a
//! client can send back what it read); any other value is rejected with 400 and nothing changes. The one
//! property that may change is `storageLocation`, and only before the export has started.

use crate::store::{OperationRecord, OperationStore, Slice, StoreError};
use chrono::{DateTime, SubsecRound, Utc};
use dpo_api::model::{DataPolicyOperation, DataPolicyOperationStatus};
use std::sync::Arc;
use uuid::Uuid;

/// Why an operation request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The id is not an operation id at all.
    #[error(
        "'{0}' is not a valid dataPolicyOperation id: ids are GUIDs such as d007e3da-cd9b-4b02-8d66-422403c53e3f"
    )]
    InvalidId(String),
    /// No operation has this id.
    #[error("dataPolicyOperation '{0}' does not exist")]
    NotFound(Uuid),
    /// A property has a value that is not allowed.
    #[error("{message}")]
    Invalid {
        /// The property.
        property: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// The caller's ETag does not match the operation's.
    #[error("the dataPolicyOperation has changed: its ETag is now {current_etag}")]
    PreconditionFailed {
        /// The operation's ETag now.
        current_etag: String,
    },
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A data policy operation as the domain sees it.
pub type Operation = OperationRecord;

impl OperationRecord {
    /// The operation's ETag (weak: it names a version, not bytes).
    pub fn etag(&self) -> String {
        format!("W/\"{}\"", self.version)
    }
}

/// What the caller requires of the operation's current version (from `If-Match`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// No requirement, or `*`.
    Any,
    /// The operation must be at this version.
    Version(u64),
    /// An ETag that can never match (malformed or foreign).
    Never,
}

/// One page of operations plus the total.
#[derive(Debug, Clone)]
pub struct Page {
    /// The operations on the page.
    pub items: Vec<Operation>,
    /// How many operations there are in all.
    pub total: u64,
}

/// The operations service.
#[derive(Clone)]
pub struct OperationService {
    store: Arc<dyn OperationStore>,
}

impl OperationService {
    /// A service over `store`.
    pub fn new(store: Arc<dyn OperationStore>) -> Self {
        OperationService { store }
    }

    /// Records a new export of `user_id`'s data to `storage_location`, not started yet.
    pub fn submit_export(
        &self,
        user_id: &str,
        storage_location: Option<&str>,
    ) -> Result<Operation, OperationError> {
        let location = validate_storage_location(storage_location)?;
        let user_id = user_id.trim();
        if user_id.is_empty() {
            return Err(OperationError::Invalid {
                property: "userId",
                message: "the user id is empty".into(),
            });
        }
        let record = OperationRecord {
            id: Uuid::new_v4(),
            user_id: user_id.to_string(),
            status: DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: Some(location),
            submitted_at: now(),
            completed_at: None,
            version: 1,
        };
        self.store.insert(&record)?;
        Ok(record)
    }

    /// Creates an operation from a POSTed entity (see the module documentation for read-only properties).
    pub fn create(&self, input: &DataPolicyOperation) -> Result<Operation, OperationError> {
        let user_id = input.user_id.as_deref().unwrap_or_default();
        if user_id.trim().is_empty() {
            return Err(OperationError::Invalid {
                property: "userId",
                message: "userId is required: the id of the user whose data is exported".into(),
            });
        }
        if input.id.is_some() {
            return Err(read_only("id"));
        }
        let fresh = OperationRecord {
            id: Uuid::nil(),
            user_id: user_id.to_string(),
            status: DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: None,
            submitted_at: now(),
            completed_at: None,
            version: 1,
        };
        check_read_only(&fresh, input, false)?;
        self.submit_export(user_id, input.storage_location.as_deref())
    }

    /// The operation with this id.
    pub fn get(&self, id: &str) -> Result<Operation, OperationError> {
        let id = parse_id(id)?;
        self.store.get(id)?.ok_or(OperationError::NotFound(id))
    }

    /// A page of operations, oldest first.
    pub fn list(&self, skip: u64, limit: u64) -> Result<Page, OperationError> {
        let (items, total) = self.store.list(Slice { skip, limit })?;
        Ok(Page { items, total })
    }

    /// How many operations there are.
    pub fn count(&self) -> Result<u64, OperationError> {
        Ok(self.store.list(Slice { skip: 0, limit: 0 })?.1)
    }

    /// Applies a PATCH (see the module documentation) under `precondition`.
    pub fn update(
        &self,
        id: &str,
        patch: &DataPolicyOperation,
        precondition: Precondition,
    ) -> Result<Operation, OperationError> {
        let current = self.get(id)?;
        check_precondition(&current, precondition)?;
        check_read_only(&current, patch, true)?;
        if patch
            .id
            .as_deref()
            .is_some_and(|given| parse_id(given).ok() != Some(current.id))
        {
            return Err(read_only("id"));
        }
        let mut next = current.clone();
        if let Some(location) = &patch.storage_location
            && current.storage_location.as_deref() != Some(location.as_str())
        {
            if current.status != DataPolicyOperationStatus::NotStarted {
                return Err(OperationError::Invalid {
                    property: "storageLocation",
                    message: format!(
                        "storageLocation can only change before the export starts; this one is {}",
                        current.status.as_str()
                    ),
                });
            }
            next.storage_location = Some(validate_storage_location(Some(location))?);
        }
        if next == current {
            return Ok(current);
        }
        next.version += 1;
        self.store.replace(&next).map_err(|e| match e {
            StoreError::VersionMismatch { .. } => match self.store.get(current.id) {
                Ok(Some(now)) => OperationError::PreconditionFailed {
                    current_etag: now.etag(),
                },
                _ => OperationError::NotFound(current.id),
            },
            StoreError::Missing(id) => OperationError::NotFound(id),
            other => other.into(),
        })?;
        Ok(next)
    }

    /// Deletes an operation under `precondition`.
    pub fn delete(&self, id: &str, precondition: Precondition) -> Result<(), OperationError> {
        let current = self.get(id)?;
        check_precondition(&current, precondition)?;
        let version = match precondition {
            Precondition::Any => None,
            _ => Some(current.version),
        };
        self.store.delete(current.id, version).map_err(|e| match e {
            StoreError::VersionMismatch { actual, .. } => OperationError::PreconditionFailed {
                current_etag: format!("W/\"{actual}\""),
            },
            StoreError::Missing(id) => OperationError::NotFound(id),
            other => other.into(),
        })
    }
}

fn now() -> DateTime<Utc> {
    // Stored and shown with millisecond precision, as Graph shows its timestamps.
    Utc::now().trunc_subsecs(3)
}

fn parse_id(id: &str) -> Result<Uuid, OperationError> {
    Uuid::parse_str(id).map_err(|_| OperationError::InvalidId(id.to_string()))
}

fn read_only(property: &'static str) -> OperationError {
    OperationError::Invalid {
        property,
        message: format!(
            "property '{property}' is read-only: leave it out, or send the value it has"
        ),
    }
}

fn check_precondition(
    current: &Operation,
    precondition: Precondition,
) -> Result<(), OperationError> {
    match precondition {
        Precondition::Any => Ok(()),
        Precondition::Version(v) if v == current.version => Ok(()),
        _ => Err(OperationError::PreconditionFailed {
            current_etag: current.etag(),
        }),
    }
}

/// Rejects read-only properties whose value differs from `current`'s.
fn check_read_only(
    current: &Operation,
    input: &DataPolicyOperation,
    user_is_read_only: bool,
) -> Result<(), OperationError> {
    if input.status.is_some_and(|s| s != current.status) {
        return Err(read_only("status"));
    }
    if input.progress.is_some_and(|p| p != current.progress) {
        return Err(read_only("progress"));
    }
    if input
        .submitted_date_time
        .is_some_and(|t| t != current.submitted_at)
    {
        return Err(read_only("submittedDateTime"));
    }
    if input
        .completed_date_time
        .is_some_and(|t| Some(t) != current.completed_at)
    {
        return Err(read_only("completedDateTime"));
    }
    if user_is_read_only
        && input
            .user_id
            .as_deref()
            .is_some_and(|u| u != current.user_id)
    {
        return Err(read_only("userId"));
    }
    Ok(())
}

/// A storage location must be an absolute http(s) URL. (Which hosts and SAS tokens are accepted is the
/// export engine's concern.)
fn validate_storage_location(location: Option<&str>) -> Result<String, OperationError> {
    let location = location.map(str::trim).unwrap_or_default();
    if location.is_empty() {
        return Err(OperationError::Invalid {
            property: "storageLocation",
            message: "storageLocation is required: a shared access signature (SAS) URL of an Azure Storage \
                      container, e.g. https://account.blob.core.windows.net/exports?sv=...&sig=..."
                .into(),
        });
    }
    let scheme_ok = location.starts_with("https://") || location.starts_with("http://");
    if !scheme_ok || location.len() > 4096 {
        return Err(OperationError::Invalid {
            property: "storageLocation",
            message: format!(
                "storageLocation must be an absolute https URL (a SAS URL of an Azure Storage container), not '{}'",
                location.chars().take(80).collect::<String>()
            ),
        });
    }
    Ok(location.to_string())
}
