//! The worker pool: claims queued exports and runs them, at most `workers` at a time, so one slow export
//! never holds up the others beyond that bound.
//!
//! Every export runs under a lease in the store (see [`JobQueue`]): its worker renews it
//! while the export runs, and an export whose worker is gone (a crash, a lost machine) is claimed again
//! by any worker once its lease ends, and resumes after the files already written. Every write of the
//! export names its claim's attempt, so a worker that lost its lease cannot overwrite the one that took
//! over. A server that stops hands its running exports back to the queue at once; a server over a store
//! only it can use (SQLite) ends the leases of earlier servers when it starts, since they are gone.

use super::{
    ExportError,
    job::{JobContext, fenced, run},
};
use chrono::{SubsecRound, Utc};
use dpo_domain::metric_names as names;
use dpo_domain::{
    blocking::blocking,
    store::{Claim, JobQueue, OperationRecord, StoreError},
};
use futures::FutureExt;
use slog::Logger;
use std::{
    collections::HashMap,
    panic::AssertUnwindSafe,
    sync::{Arc, Mutex},
    time::Duration,
};
use tokio::{
    sync::{Notify, Semaphore},
    task::JoinSet,
};
use uuid::Uuid;

/// How often the queue is looked at when nobody signals new work (also how soon an expired lease of
/// another server is noticed).
const IDLE_POLL: Duration = Duration::from_secs(2);

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineSettings {
    /// Exports run at once.
    pub workers: usize,
    /// How long a claim holds an export without being renewed (renewed every third of it).
    pub lease: Duration,
    /// Whether this server is the only one that can use the store (then every other lease is ended).
    pub exclusive: bool,
    /// Exports of one tenant run at once at most (across the servers of a store), so that one tenant
    /// cannot fill the worker pool; `None`: no cap.
    pub per_tenant: Option<u32>,
}

/// The exports this engine is running, by operation.
type Running = Arc<Mutex<HashMap<Uuid, Claim>>>;

/// The running engine; dropping it stops every worker, leaving its exports to be claimed again once
/// their leases end (as a crash would); [`EngineHandle::hand_over`] gives them back at once.
pub struct EngineHandle {
    task: tokio::task::JoinHandle<()>,
    running: Running,
    queue: Arc<dyn JobQueue>,
    /// This engine's owner id in the store's leases.
    pub owner: String,
}

impl EngineHandle {
    /// Stops the engine at once; exports in flight keep their leases until they end.
    pub fn stop(&self) {
        self.task.abort();
    }

    /// Stops taking work, stops the running exports and gives them back to the queue, so that another
    /// server (or this one, restarted) resumes them at once.
    pub async fn hand_over(mut self) -> usize {
        self.task.abort();
        let _ = (&mut self.task).await;
        let claims: Vec<Claim> = lock(&self.running).drain().map(|(_, claim)| claim).collect();
        let mut released = 0;
        for claim in claims {
            if blocking(&self.queue, move |q| q.release(&claim)).await.is_ok() {
                released += 1;
            }
        }
        released
    }
}

impl Drop for EngineHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(running: &Running) -> std::sync::MutexGuard<'_, HashMap<Uuid, Claim>> {
    // Plain inserts and removals: a panic elsewhere cannot leave the map inconsistent.
    running.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Starts the engine: runs queued exports with `settings.workers` workers, waking early when `wake` is
/// notified.
pub async fn start(
    ctx: Arc<JobContext>,
    settings: EngineSettings,
    wake: Arc<Notify>,
    log: Logger,
) -> Result<EngineHandle, StoreError> {
    let owner = format!("dpo-{}-{}", std::process::id(), Uuid::new_v4().simple());
    let queue = ctx.stores.queue.clone();
    if settings.exclusive {
        let me = owner.clone();
        let ended = blocking(&queue, move |q| q.expire_leases_of_others(&me, Utc::now())).await?;
        if ended > 0 {
            slog::info!(log, "resuming exports an earlier run left unfinished"; "count" => ended);
        }
    }
    let running: Running = Arc::default();
    let task = tokio::spawn(work(ctx, settings.clone(), owner.clone(), running.clone(), wake, log));
    Ok(EngineHandle { task, running, queue, owner })
}

/// Claims and runs exports until aborted.
async fn work(
    ctx: Arc<JobContext>,
    settings: EngineSettings,
    owner: String,
    running: Running,
    wake: Arc<Notify>,
    log: Logger,
) {
    let slots = Arc::new(Semaphore::new(settings.workers));
    let mut jobs = JoinSet::new();
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        while jobs.try_join_next().is_some() {}
        let (me, lease, per_tenant) = (owner.clone(), settings.lease, settings.per_tenant);
        let claimed =
            blocking(&ctx.stores.queue, move |q| q.claim(&me, Utc::now(), Utc::now() + lease, per_tenant)).await;
        match claimed {
            Ok(Some(claim)) => {
                lock(&running).insert(claim.operation.id, claim.clone());
                let (ctx, log, running, done) = (ctx.clone(), log.clone(), running.clone(), wake.clone());
                jobs.spawn(async move {
                    let id = claim.operation.id;
                    export(&ctx, claim, lease, &log).await;
                    lock(&running).remove(&id);
                    drop(slot);
                    // An export of a tenant at its cap may be claimable now.
                    done.notify_one();
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
}

/// Runs one claimed export while renewing its lease, and records how it ended. A panic in the export
/// fails the operation rather than leaving it `running`.
async fn export(ctx: &JobContext, claim: Claim, lease: Duration, log: &Logger) {
    let id = claim.operation.id;
    slog::info!(log, "export started"; "operation" => %id, "attempt" => claim.attempt);
    let running = RunningGauge::start();
    let work = AssertUnwindSafe(run(ctx, claim.clone())).catch_unwind();
    let outcome = tokio::select! {
        outcome = work => outcome.unwrap_or_else(|panic| {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_default();
            Err(ExportError::Panicked(what))
        }),
        lost = keep_lease(ctx.stores.queue.clone(), claim.clone(), lease, log) => Err(lost),
    };
    let status = match &outcome {
        Ok(_) => "complete",
        Err(ExportError::Cancelled) => "cancelled",
        Err(ExportError::LeaseLost) => "taken_over",
        Err(away) if away.store_unavailable() => "handed_back",
        Err(_) => "failed",
    };
    metrics::counter!(names::EXPORTS_FINISHED, "status" => status).increment(1);
    metrics::histogram!(names::EXPORT_SECONDS, "status" => status).record(running.started.elapsed().as_secs_f64());
    record_outcome(ctx, &claim, outcome, log).await;
}

/// Counts an export as running while it lives (also when its task is stopped by a hand-over).
struct RunningGauge {
    started: std::time::Instant,
}

impl RunningGauge {
    fn start() -> RunningGauge {
        metrics::gauge!(names::EXPORTS_RUNNING).increment(1.0);
        RunningGauge { started: std::time::Instant::now() }
    }
}

impl Drop for RunningGauge {
    fn drop(&mut self) {
        metrics::gauge!(names::EXPORTS_RUNNING).decrement(1.0);
    }
}

/// Renews the claim's lease every third of it; returns only when the claim is lost (another worker
/// took the export over, or the lease ran out while the store could not be reached), and the export
/// must stop writing. A deleted operation is left for the export to notice at its next write, so that it
/// removes what it wrote.
async fn keep_lease(queue: Arc<dyn JobQueue>, claim: Claim, lease: Duration, log: &Logger) -> ExportError {
    let mut renewed = tokio::time::Instant::now();
    loop {
        tokio::time::sleep(lease / 3).await;
        let (held, until) = (claim.clone(), Utc::now() + lease);
        match blocking(&queue, move |q| q.heartbeat(&held, until)).await {
            Ok(()) => renewed = tokio::time::Instant::now(),
            Err(StoreError::Missing(_)) => std::future::pending::<()>().await,
            Err(StoreError::LeaseLost(_)) => return ExportError::LeaseLost,
            Err(e) if renewed.elapsed() >= lease => {
                slog::warn!(log, "the export's lease ran out while the store failed"; "error" => %e);
                return ExportError::LeaseLost;
            }
            Err(e) => slog::warn!(log, "renewing an export's lease failed"; "error" => %e),
        }
    }
}

/// Gives the claim back (the export waits in the queue again, to be resumed by this server or another),
/// asking the store again with backoff for as long as a lease lasts; if it cannot be reached by then,
/// the lease runs out by itself and the export is claimed again all the same.
async fn hand_back(ctx: &JobContext, claim: &Claim, log: &Logger) {
    let deadline = tokio::time::Instant::now() + ctx.lease;
    let mut waits = crate::retry::delays(Duration::from_millis(100), Duration::from_secs(2));
    loop {
        let wait = waits.next().unwrap_or(Duration::from_secs(2));
        let held = claim.clone();
        match blocking(&ctx.stores.queue, move |q| q.release(&held)).await {
            Ok(()) | Err(StoreError::LeaseLost(_) | StoreError::Missing(_)) => return,
            Err(e) if tokio::time::Instant::now() + wait >= deadline => {
                slog::warn!(log, "the claim could not be given back: its lease will run out"; "error" => %e);
                return;
            }
            Err(_) => tokio::time::sleep(wait).await,
        }
    }
}

async fn record_outcome(ctx: &JobContext, claim: &Claim, outcome: Result<OperationRecord, ExportError>, log: &Logger) {
    let id = claim.operation.id;
    let error = match outcome {
        Ok(_) => {
            slog::info!(log, "export complete"; "operation" => %id);
            return;
        }
        Err(ExportError::Cancelled) => {
            slog::info!(log, "export cancelled: the operation was deleted"; "operation" => %id);
            return;
        }
        Err(ExportError::LeaseLost) => {
            slog::info!(log, "export taken over by another worker"; "operation" => %id);
            return;
        }
        Err(away) if away.store_unavailable() => {
            slog::warn!(log, "the store could not be reached: the export goes back to the queue to resume";
                "operation" => %id, "error" => %away);
            hand_back(ctx, claim, log).await;
            return;
        }
        Err(e) => e,
    };
    slog::warn!(log, "export failed"; "operation" => %id, "reason" => %error);
    // The reason is shown to every reader of the operation: no secret of a source or a target in it.
    let (held, reason, at) =
        (claim.clone(), dpo_contract::redact::redact_secrets(&error.to_string()), Utc::now().trunc_subsecs(3));
    match blocking(&ctx.stores.queue, move |q| q.fail(&held, &reason, at)).await.map_err(fenced) {
        Ok(()) | Err(ExportError::Cancelled | ExportError::LeaseLost) => {}
        Err(e) => slog::error!(log, "recording the failed export"; "operation" => %id, "error" => %e),
    }
}
