//! The worker pool: claims queued operations and runs them, at most `workers` at a time, so one slow export
//! never holds up the others beyond that bound. A crash leaves nothing `running`: on start, operations
//! found running are queued again and resume after the files they had finished (an export is only
//! `complete` once whole).

use super::{
    ExportError,
    job::{JobContext, blocking, run, update},
};
use crate::store::{OperationRecord, StoreError};
use chrono::{SubsecRound, Utc};
use dpo_api::model::DataPolicyOperationStatus;
use slog::Logger;
use std::{sync::Arc, time::Duration};
use tokio::{
    sync::{Notify, Semaphore},
    task::JoinSet,
};

/// How often the queue is looked at when nobody signals new work.
const IDLE_POLL: Duration = Duration::from_secs(2);

/// The running engine; dropping it (or [`EngineHandle::stop`]) stops every worker.
pub struct EngineHandle {
    task: tokio::task::JoinHandle<()>,
}

impl EngineHandle {
    /// Stops the engine; exports in flight are abandoned and run again on the next start.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts the engine: requeues what a crash left running, then runs queued exports with `workers` workers,
/// waking early when `wake` is notified.
pub async fn start(
    ctx: Arc<JobContext>,
    workers: usize,
    wake: Arc<Notify>,
    log: Logger,
) -> Result<EngineHandle, StoreError> {
    let requeued = blocking(&ctx.store, |s| s.requeue_running()).await?;
    if requeued > 0 {
        slog::info!(log, "requeued exports left running by an earlier run"; "count" => requeued);
    }
    let task = tokio::spawn(async move {
        let slots = Arc::new(Semaphore::new(workers));
        let mut jobs = JoinSet::new();
        loop {
            let Ok(slot) = slots.clone().acquire_owned().await else { break };
            while jobs.try_join_next().is_some() {}
            match blocking(&ctx.store, |s| s.claim_next()).await {
                Ok(Some(op)) => {
                    let (ctx, log) = (ctx.clone(), log.clone());
                    jobs.spawn(async move {
                        let id = op.id;
                        slog::info!(log, "export started"; "operation" => %id);
                        let outcome = run(&ctx, op).await;
                        record_outcome(&ctx, id, outcome, &log).await;
                        drop(slot);
                    });
                }
                Ok(None) => {
                    drop(slot);
                    tokio::select! {
                        _ = wake.notified() => {}
                        _ = tokio::time::sleep(IDLE_POLL) => {}
                    }
                }
                Err(e) => {
                    drop(slot);
                    slog::error!(log, "claiming an export failed"; "error" => %e);
                    tokio::time::sleep(IDLE_POLL).await;
                }
            }
        }
    });
    Ok(EngineHandle { task })
}

async fn record_outcome(ctx: &JobContext, id: uuid::Uuid, outcome: Result<OperationRecord, ExportError>, log: &Logger) {
    let error = match outcome {
        Ok(_) => {
            slog::info!(log, "export complete"; "operation" => %id);
            return;
        }
        Err(ExportError::Cancelled) => {
            slog::info!(log, "export cancelled: the operation was deleted"; "operation" => %id);
            return;
        }
        Err(e) => e,
    };
    slog::warn!(log, "export failed"; "operation" => %id, "reason" => %error);
    let (completed_at, reason) = (Some(Utc::now().trunc_subsecs(3)), Some(error.to_string()));
    let failed = update(&ctx.store, id, move |op| {
        op.status = DataPolicyOperationStatus::Failed;
        op.completed_at = completed_at;
        op.failure_reason = reason.clone();
    });
    if let Err(e) = failed.await {
        slog::error!(log, "recording the failed export"; "operation" => %id, "error" => %e);
    }
}
