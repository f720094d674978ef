//! The rules of data policy operations: what may be submitted, read, changed and removed.
//!
//! Graph documents every property of a dataPolicyOperation as read-only. dpo applies that as follows,
//! for POST (create) and PATCH alike: a read-only property (`id`, `status`, `progress`, `userId` after
//! creation, `submittedDateTime`, `completedDateTime`) may be sent only with the value it already has (so a
//! client can send back what it read); any other value is rejected with 400 and nothing changes. The one
//! property that may change is `storageLocation`, and only before the export has started.

use crate::{
    odata::{QueryError, query::CollectionQuery, skiptoken::SkipToken},
    store::{
        AsyncOperations, AuditEvent, Cursor, ListRequest, OperationRecord, Operations, Pending, StoreError, Stores,
        blocking::blocking, statements::sort_values,
    },
};
use chrono::{DateTime, SubsecRound, Utc};
use dpo_api::model::{DataPolicyOperation, DataPolicyOperationStatus};
use dpo_contract::location::{LocationPolicy, StorageLocation, StoredLocation};
use std::sync::Arc;
use tokio::sync::{Notify, Semaphore};
use uuid::Uuid;

/// Why an operation request was refused.
#[derive(Debug, thiserror::Error)]
pub enum OperationError {
    /// The id is not an operation id at all.
    #[error("'{0}' is not a valid dataPolicyOperation id: ids are GUIDs such as d007e3da-cd9b-4b02-8d66-422403c53e3f")]
    InvalidId(String),
    /// No operation has this id.
    #[error("dataPolicyOperation '{0}' does not exist")]
    NotFound(Uuid),
    /// The operation belongs to another tenant: answered and recorded for the caller exactly as
    /// [`OperationError::NotFound`], and recorded in the owner's audit trail.
    #[error("dataPolicyOperation '{id}' does not exist")]
    OtherTenant {
        /// The operation.
        id: Uuid,
        /// The tenant it belongs to.
        owner: String,
    },
    /// A property has a value that is not allowed.
    #[error("{message}")]
    Invalid {
        /// The property.
        property: &'static str,
        /// What is wrong and what would be right.
        message: String,
    },
    /// No user has this id or userPrincipalName.
    #[error("Resource '{0}' does not exist or one of its queried reference-property objects are not present.")]
    UserNotFound(String),
    /// A query option is invalid.
    #[error(transparent)]
    Query(#[from] QueryError),
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

/// One page of a list.
#[derive(Debug, Clone)]
pub struct Page {
    /// The operations on the page.
    pub items: Vec<Operation>,
    /// How many operations match in all, when `$count=true` asked for it.
    pub total: Option<u64>,
    /// Where the next page starts, if there is one.
    pub next: Option<SkipToken>,
}

/// Page sizes of server-driven paging.
#[derive(Debug, Clone, Copy)]
pub struct PageSizes {
    /// Page size when the client does not ask for fewer with `$top`.
    pub default: u64,
    /// Largest page ever sent.
    pub max: u64,
}

/// Reads of a blocking store (gets, lists, counts, user lookups) that run at once on the blocking pool.
/// Without a bound, 32 concurrent lists started a thread each, most of them only to wait for one of the
/// store's connections, and every started thread keeps its stack and allocator heap. Writes are not
/// counted: they take turns in the store's writer anyway, and a submission over SQLite awaits its group
/// commit without a thread.
const READS_AT_ONCE: usize = 4;

/// The operations service.
#[derive(Clone)]
pub struct OperationService {
    store: Stores,
    policy: LocationPolicy,
    submitted: Arc<Notify>,
    /// Permits for [`READS_AT_ONCE`].
    reads: Arc<Semaphore>,
}

impl OperationService {
    /// A service over `store` that accepts storage locations under `policy` and notifies `submitted` of
    /// every newly queued export.
    pub fn new(store: Stores, policy: LocationPolicy, submitted: Arc<Notify>) -> Self {
        OperationService { store, policy, submitted, reads: Arc::new(Semaphore::new(READS_AT_ONCE)) }
    }

    /// Records a new export of `user_id`'s data to `storage_location`, not started yet, together with
    /// the audit event `recorded_as` makes of it, in one commit.
    pub async fn submit_export(
        &self,
        tenant: &str,
        user_id: &str,
        storage_location: Option<&str>,
        recorded_as: impl FnOnce(&OperationRecord) -> AuditEvent,
    ) -> Result<Operation, OperationError> {
        let location = self.validate_storage_location(storage_location)?;
        let wanted = user_id.trim().to_string();
        let in_tenant = tenant.to_string();
        let at_once = self.store.directory.find_user_without_waiting(&in_tenant, &wanted);
        let user = match (at_once, self.store.directory.lookup_without_blocking()) {
            (Some(found), _) => found?,
            (None, Some(directory)) => directory.find_user(&in_tenant, &wanted).await?,
            (None, None) => {
                let _permit = self.read_permit().await;
                blocking(&self.store.directory, move |directory| directory.find_user(&in_tenant, &wanted)).await?
            }
        }
        .ok_or_else(|| OperationError::UserNotFound(user_id.to_string()))?;
        let record = OperationRecord {
            // Version 7: time-ordered, so ids (the last sort key) follow submission order.
            id: Uuid::now_v7(),
            tenant_id: tenant.to_string(),
            user_id: user.id,
            status: DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: Some(location.shown),
            storage_secret: location.secret,
            submitted_at: now(),
            completed_at: None,
            version: 1,
            failure_reason: None,
            request_id: None,
        };
        let event = recorded_as(&record);
        match self.store.operations.insert_recorded_queued(&record, &event) {
            Some(queued) => {
                queued.await?;
            }
            None => {
                let (stored, also) = (record.clone(), event.clone());
                self.call(
                    |store| store.insert_recorded(&record, event),
                    move |store| store.insert_recorded(&stored, also),
                )
                .await?;
            }
        }
        self.submitted.notify_one();
        Ok(record)
    }

    /// A storage location must be acceptable to the export engine (see [`crate::export::target`]).
    fn validate_storage_location(&self, location: Option<&str>) -> Result<StoredLocation, OperationError> {
        let location = location.map(str::trim).unwrap_or_default();
        if location.is_empty() {
            return Err(OperationError::Invalid {
                property: "storageLocation",
                message: "storageLocation is required: a shared access signature (SAS) URL of an Azure Storage \
                          container, e.g. https://account.blob.core.windows.net/exports?sv=...&sp=cw&se=...&sig=..."
                    .into(),
            });
        }
        if location.len() > 4096 {
            return Err(OperationError::Invalid {
                property: "storageLocation",
                message: "storageLocation is longer than 4096 characters".into(),
            });
        }
        StorageLocation::accept(location, &self.policy, Utc::now())
            .map(|(_, stored)| stored)
            .map_err(|e| OperationError::Invalid { property: "storageLocation", message: e.to_string() })
    }

    /// Runs a call of the operations store: awaited as is when the store offers it without blocking,
    /// otherwise (`blocking`, the same call) on the blocking pool.
    async fn call<T: Send + 'static>(
        &self,
        nonblocking: impl FnOnce(&dyn AsyncOperations) -> Pending<T>,
        blocking: impl FnOnce(&dyn Operations) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, OperationError> {
        match self.store.operations.without_blocking() {
            Some(store) => Ok(nonblocking(store).await?),
            None => self.blocking(blocking).await,
        }
    }

    /// Runs a call of the operations store on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Operations) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, OperationError> {
        Ok(blocking(&self.store.operations, move |operations| call(operations)).await?)
    }

    /// Runs a read of the operations store: awaited as is when the store offers it without blocking,
    /// otherwise (`blocking`, the same read) as [`OperationService::reading`] does.
    async fn read<T: Send + 'static>(
        &self,
        nonblocking: impl FnOnce(&dyn AsyncOperations) -> Pending<T>,
        blocking: impl FnOnce(&dyn Operations) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, OperationError> {
        let _permit = match self.store.operations.without_blocking() {
            Some(_) => None,
            None => self.read_permit().await,
        };
        self.call(nonblocking, blocking).await
    }

    /// Runs a read of the operations store on the blocking pool, once one of [`READS_AT_ONCE`] is free.
    async fn reading<T: Send + 'static>(
        &self,
        call: impl FnOnce(&dyn Operations) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, OperationError> {
        let _permit = self.read_permit().await;
        self.blocking(call).await
    }

    /// A permit of [`READS_AT_ONCE`]. The semaphore is never closed, so this always waits for one; a
    /// closed semaphore (impossible) would let the read run unbounded rather than fail it.
    async fn read_permit(&self) -> Option<tokio::sync::SemaphorePermit<'_>> {
        self.reads.acquire().await.ok()
    }

    /// Creates an operation from a POSTed entity (see the module documentation for read-only properties),
    /// recorded as [`OperationService::submit_export`] does.
    pub async fn create(
        &self,
        tenant: &str,
        input: &DataPolicyOperation,
        recorded_as: impl FnOnce(&OperationRecord) -> AuditEvent,
    ) -> Result<Operation, OperationError> {
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
            tenant_id: tenant.to_string(),
            user_id: user_id.to_string(),
            status: DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: None,
            storage_secret: None,
            submitted_at: now(),
            completed_at: None,
            version: 1,
            failure_reason: None,
            request_id: None,
        };
        check_read_only(&fresh, input, false)?;
        self.submit_export(tenant, user_id, input.storage_location.as_deref(), recorded_as).await
    }

    /// The operation of `tenant` with this id. Another tenant's operation is "not found", like a missing
    /// one, so that its existence does not leak.
    pub async fn get(&self, tenant: &str, id: &str) -> Result<Operation, OperationError> {
        let id = parse_id(id)?;
        // The hot read: answered on this thread when the store can do so at once, sparing two thread
        // hand-offs per request; otherwise on the blocking pool.
        let found = match self.store.operations.get_without_waiting(id) {
            Some(found) => found?,
            None => self.read(|store| store.get(id), move |store| store.get(id)).await?,
        };
        match found {
            // The operation a subject rights request runs is dpo's own: no dataPolicyOperation.
            Some(op) if op.request_id.is_some() => Err(OperationError::NotFound(id)),
            Some(op) if op.tenant_id == tenant => Ok(op),
            Some(op) => Err(OperationError::OtherTenant { id, owner: op.tenant_id }),
            None => Err(OperationError::NotFound(id)),
        }
    }

    /// One page of the operations `query` selects, in its order (submission order by default).
    ///
    /// As on Graph, `$top` is the page size (up to `sizes.max`), not a bound on the whole list: while more
    /// operations match, the page ends with a next link, which repeats `$top`.
    pub async fn list(&self, tenant: &str, query: CollectionQuery, sizes: PageSizes) -> Result<Page, OperationError> {
        let page_size = query.top.map_or(sizes.default, |top| top.min(sizes.max));
        let skip = if query.skiptoken.is_some() { 0 } else { query.skip };
        let cursor = query.skiptoken.as_ref().map(|t| Cursor { keys: t.keys.clone(), last_id: t.last_id.clone() });
        let want_count = query.count;
        let (mut items, total) = if let Some(store) = self.store.operations.without_blocking() {
            let request = ListRequest {
                tenant,
                filter: query.filter.as_ref(),
                search: query.search.as_deref(),
                order: &query.orderby,
                after: cursor.as_ref(),
                skip,
                limit: page_size.saturating_add(1),
            };
            // The page and its count at once, on two pooled connections.
            let counted = want_count.then(|| store.count(tenant, query.filter.as_ref(), query.search.as_deref()));
            let counted = async move {
                match counted {
                    Some(counted) => counted.await.map(Some),
                    None => Ok(None),
                }
            };
            futures::try_join!(store.list(&request), counted)?
        } else {
            let q = query.clone();
            let tenant = tenant.to_string();
            self.reading(move |store| {
                let request = ListRequest {
                    tenant: &tenant,
                    filter: q.filter.as_ref(),
                    search: q.search.as_deref(),
                    order: &q.orderby,
                    after: cursor.as_ref(),
                    skip,
                    limit: page_size.saturating_add(1),
                };
                let items = store.list(&request)?;
                let total =
                    if want_count { Some(store.count(&tenant, q.filter.as_ref(), q.search.as_deref())?) } else { None };
                Ok((items, total))
            })
            .await?
        };
        let more = items.len() as u64 > page_size;
        items.truncate(usize::try_from(page_size).unwrap_or(usize::MAX));
        let next = match (more, items.last()) {
            (true, Some(last)) => Some(SkipToken {
                keys: sort_values(last, &query.orderby),
                last_id: last.id.to_string(),
                query: query.fingerprint.clone(),
            }),
            _ => None,
        };
        Ok(Page { items, total, next })
    }

    /// How many operations match `query`'s `$filter` and `$search`.
    pub async fn count(&self, tenant: &str, query: CollectionQuery) -> Result<u64, OperationError> {
        let tenant = tenant.to_string();
        if let Some(store) = self.store.operations.without_blocking() {
            return Ok(store.count(&tenant, query.filter.as_ref(), query.search.as_deref()).await?);
        }
        self.reading(move |store| store.count(&tenant, query.filter.as_ref(), query.search.as_deref())).await
    }

    /// Applies a PATCH (see the module documentation) under `precondition`.
    ///
    /// Without a precondition the client asked for no version, so a concurrent write (another PATCH, the
    /// export's progress) is no reason to refuse it: the patch is applied again to the newer version.
    /// Only a client that sent `If-Match` gets 412 (RFC 9110 §13.1.1).
    pub async fn update(
        &self,
        tenant: &str,
        id: &str,
        patch: &DataPolicyOperation,
        precondition: Precondition,
    ) -> Result<Operation, OperationError> {
        loop {
            match self.update_once(tenant, id, patch, precondition).await {
                Err(OperationError::PreconditionFailed { .. }) if precondition == Precondition::Any => continue,
                outcome => return outcome,
            }
        }
    }

    /// One read-check-write of [`OperationService::update`].
    async fn update_once(
        &self,
        tenant: &str,
        id: &str,
        patch: &DataPolicyOperation,
        precondition: Precondition,
    ) -> Result<Operation, OperationError> {
        let current = self.get(tenant, id).await?;
        check_precondition(&current, precondition)?;
        check_read_only(&current, patch, true)?;
        if patch.id.as_deref().is_some_and(|given| parse_id(given).ok() != Some(current.id)) {
            return Err(read_only("id"));
        }
        let mut next = current.clone();
        // The entity shows storageLocation with its SAS signature redacted; sending that back is no change,
        // and neither is the whole location in any spelling that means the same.
        let unchanged = |given: &str| {
            current.storage_location.as_deref() == Some(given)
                || dpo_contract::location::stored_form(given).is_some_and(|g| {
                    Some(&g.shown) == current.storage_location.as_ref() && g.secret == current.storage_secret
                })
        };
        if let Some(location) = &patch.storage_location
            && !unchanged(location)
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
            let stored = self.validate_storage_location(Some(location))?;
            next.storage_location = Some(stored.shown);
            next.storage_secret = stored.secret;
        }
        if next == current {
            return Ok(current);
        }
        next.version += 1;
        let stored = next.clone();
        match self.call(|store| store.replace(&next), move |store| store.replace(&stored)).await {
            Ok(()) => Ok(next),
            Err(OperationError::Store(StoreError::VersionMismatch { actual, .. })) => {
                Err(OperationError::PreconditionFailed { current_etag: format!("W/\"{actual}\"") })
            }
            Err(OperationError::Store(StoreError::Missing(id))) => Err(OperationError::NotFound(id)),
            Err(other) => Err(other),
        }
    }

    /// Deletes an operation under `precondition`.
    pub async fn delete(&self, tenant: &str, id: &str, precondition: Precondition) -> Result<(), OperationError> {
        let current = self.get(tenant, id).await?;
        check_precondition(&current, precondition)?;
        let version = match precondition {
            Precondition::Any => None,
            _ => Some(current.version),
        };
        let id = current.id;
        match self.call(|store| store.delete(id, version), move |store| store.delete(id, version)).await {
            Err(OperationError::Store(StoreError::VersionMismatch { actual, .. })) => {
                Err(OperationError::PreconditionFailed { current_etag: format!("W/\"{actual}\"") })
            }
            Err(OperationError::Store(StoreError::Missing(id))) => Err(OperationError::NotFound(id)),
            other => other,
        }
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
        message: format!("property '{property}' is read-only: leave it out, or send the value it has"),
    }
}

fn check_precondition(current: &Operation, precondition: Precondition) -> Result<(), OperationError> {
    match precondition {
        Precondition::Any => Ok(()),
        Precondition::Version(v) if v == current.version => Ok(()),
        _ => Err(OperationError::PreconditionFailed { current_etag: current.etag() }),
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
    if input.submitted_date_time.is_some_and(|t| t != current.submitted_at) {
        return Err(read_only("submittedDateTime"));
    }
    if input.completed_date_time.is_some_and(|t| Some(t) != current.completed_at) {
        return Err(read_only("completedDateTime"));
    }
    if user_is_read_only && input.user_id.as_deref().is_some_and(|u| u != current.user_id) {
        return Err(read_only("userId"));
    }
    Ok(())
}
