//! Retention of what subject rights requests collected: once a request has been closed for
//! `--requests-retention`, its folder in the request store is deleted and the request remembers when
//! (`getFinalAttachment` then answers 410); the request, its notes, history and report stay. Each deletion
//! is an event of the tenant's audit trail, by dpo itself. Every replica sweeps; the one whose change of
//! the request lands records the event (a deletion done twice deletes nothing more).

use crate::{
    export::{ExportError, request_store::RequestStore},
    store::{StoreError, blocking::blocking},
};
use chrono::{SubsecRound, Utc};
use dpo_domain::{
    audit::Activity,
    requests::{RequestRecord, SubjectRightsRequests},
    store::AuditLog,
};
use std::{sync::Arc, time::Duration};

/// Requests looked at in one pass.
const BATCH: u64 = 100;
/// Longest time between two passes.
const MOST_BETWEEN: Duration = Duration::from_secs(3600);

/// Why a request's collected data could not be deleted.
#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    /// The store failed.
    #[error("the store")]
    Store(#[from] StoreError),
    /// The request store refused.
    #[error("deleting what request {request} collected")]
    Removal {
        /// The request.
        request: uuid::Uuid,
        /// Why.
        #[source]
        cause: ExportError,
    },
}

/// The sweeping task; dropping it stops it.
pub struct Sweeper(tokio::task::JoinHandle<()>);

impl Drop for Sweeper {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Sweeps now, then every half of `retention` (at most hourly), until the returned [`Sweeper`] is dropped.
pub fn sweep_every(
    retention: Duration,
    requests: Arc<dyn SubjectRightsRequests>,
    audit: Arc<dyn AuditLog>,
    store: RequestStore,
    log: slog::Logger,
) -> Sweeper {
    let interval = (retention / 2).clamp(Duration::from_millis(200), MOST_BETWEEN);
    Sweeper(tokio::spawn(async move {
        loop {
            match sweep(retention, &requests, &audit, &store).await {
                Ok(0) => {}
                Ok(removed) => slog::info!(log, "collected data of closed requests deleted"; "requests" => removed),
                Err(e) => slog::warn!(log, "deleting the collected data of closed requests failed";
                    "error" => %e, "cause" => source_text(&e)),
            }
            tokio::time::sleep(interval).await;
        }
    }))
}

fn source_text(e: &RetentionError) -> String {
    std::error::Error::source(e).map(|s| s.to_string()).unwrap_or_default()
}

/// One pass: deletes the collected data of every request closed longer than `retention` ago; returns how
/// many this server deleted.
pub async fn sweep(
    retention: Duration,
    requests: &Arc<dyn SubjectRightsRequests>,
    audit: &Arc<dyn AuditLog>,
    store: &RequestStore,
) -> Result<usize, RetentionError> {
    let cutoff = Utc::now() - chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let mut removed = 0;
    loop {
        let due = blocking(requests, move |s| s.requests_to_remove(cutoff, BATCH)).await?;
        let last = due.len() < BATCH as usize;
        for record in due {
            if remove(record, requests, audit, store).await? {
                removed += 1;
            }
        }
        if last {
            return Ok(removed);
        }
    }
}

/// Deletes `record`'s folder and marks the request; `false` when another server marked it first.
async fn remove(
    mut record: RequestRecord,
    requests: &Arc<dyn SubjectRightsRequests>,
    audit: &Arc<dyn AuditLog>,
    store: &RequestStore,
) -> Result<bool, RetentionError> {
    let id = record.id;
    let removal = async { store.folder(id)?.remove_all().await };
    removal.await.map_err(|cause| RetentionError::Removal { request: id, cause })?;
    let now = Utc::now().trunc_subsecs(3);
    record.collected_removed_at = Some(now);
    record.version += 1;
    let stored = record.clone();
    match blocking(requests, move |s| s.replace_request(&stored, None)).await {
        Ok(()) => {}
        Err(StoreError::VersionMismatch { .. } | StoreError::Missing(_)) => return Ok(false),
        Err(e) => return Err(e.into()),
    }
    let event = dpo_domain::audit::by_dpo(&record.tenant_id, Activity::RemoveCollectedData, id, Ok(None));
    crate::audit_trail::record(audit, event).await?;
    Ok(true)
}
