//! The audit trail: every export submission (accepted or refused), cancellation and change of a data
//! policy operation, and every call refused because the operation is another tenant's (in the owner's
//! trail: the caller's sees what an unknown id leaves), appended to a
//! hash chain per tenant in the store (`audit_events`). Each event carries the SHA-256 of its
//! predecessor, so that editing or deleting one is detectable ([`verify`]); a truncated tail is detectable
//! against a head hash anchored elsewhere ([`verify`] with `head`, [`head`]).

pub use dpo_domain::audit::*;

use crate::{
    auth::{Caller, Identity},
    store::{AuditEvent, AuditLog, StoreError, blocking::blocking},
};
use chrono::{SecondsFormat, SubsecRound, Utc};
use std::sync::Arc;

/// What an event is about, filled in as the call learns it.
#[derive(Debug, Clone, Default)]
pub struct Subject {
    /// The user whose data it concerns.
    pub user: Option<String>,
    /// The operation.
    pub operation: Option<String>,
    /// The storage location, SAS signature redacted.
    pub storage_location: Option<String>,
    /// The tenant whose operation it was, when that is not the caller's: the caller is answered, and its
    /// own trail records, exactly what an unknown id gets; the owner's trail records the refusal.
    pub owner: Option<String>,
    /// The event is already recorded, in the commit of the call's own write (a submission): the call
    /// must not record it again.
    pub recorded: bool,
    /// What a successful call did, beyond its activity (an approval's stage and comment).
    pub detail: Option<String>,
}

impl Subject {
    /// `error` as the call answers it, noting first whose operation it was when not the caller's tenant's.
    pub fn note(&mut self, error: crate::operations::OperationError) -> dpo_api::GraphError {
        if let crate::operations::OperationError::OtherTenant { owner, .. } = &error {
            self.owner = Some(owner.clone());
        }
        error.into()
    }
}

/// The event recorded in the trail of `owner` when `caller`, of another tenant, did `activity` to one of
/// its operations and was told it does not exist. `caller_tenant` names where the caller came from.
pub fn refused_for_owner(
    caller: &Caller,
    owner: &str,
    activity: Activity,
    operation: &str,
    request_id: &str,
) -> AuditEvent {
    let subject = Subject { operation: Some(operation.to_string()), ..Subject::default() };
    let reason = format!("{OTHER_TENANT} ({})", caller.tenant);
    AuditEvent { tenant_id: owner.to_string(), ..event(caller, activity, subject, Err(reason), request_id) }
}

/// The event of `caller` doing `activity` to `subject` in request `request_id`, with its outcome
/// (`Err`: why it failed or was refused), not yet placed in its chain.
pub fn event(
    caller: &Caller,
    activity: Activity,
    subject: Subject,
    outcome: Result<(), String>,
    request_id: &str,
) -> AuditEvent {
    let (actor_kind, actor_id) = match &caller.identity {
        Identity::User { id, .. } => ("user", id.clone()),
        Identity::App { id, .. } => ("app", id.clone()),
    };
    AuditEvent {
        tenant_id: caller.tenant.clone(),
        seq: 0,
        id: uuid::Uuid::now_v7().to_string(),
        at: Utc::now().trunc_subsecs(3).to_rfc3339_opts(SecondsFormat::Millis, true),
        category: activity.category().into(),
        activity: activity.name().into(),
        actor_kind: actor_kind.into(),
        actor_id,
        target_user: subject.user,
        operation_id: subject.operation,
        storage_location: subject.storage_location.map(|l| dpo_contract::redact::redact_secrets(&l)),
        result: if outcome.is_ok() { "success" } else { "failure" }.into(),
        reason: outcome.err().or(subject.detail),
        request_id: request_id.into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends `event` to its tenant's chain.
pub async fn record(log: &Arc<dyn AuditLog>, event: AuditEvent) -> Result<AuditEvent, StoreError> {
    blocking(log, move |s| s.append(event)).await
}

/// Logs every tenant's latest event (its place and hash) every `interval`, for as long as `log` (the
/// store) is alive: an operator who ships the log elsewhere keeps the heads out of the database's reach,
/// and `audit verify --head` proves later that nothing before them was cut.
pub fn log_heads_every(interval: std::time::Duration, log: &Arc<dyn AuditLog>, out: slog::Logger) {
    let store = Arc::downgrade(log);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(interval).await;
            let Some(store) = store.upgrade() else { return };
            log_heads(&store, &out).await;
        }
    });
}

/// Logs every tenant's latest event once (as [`log_heads_every`] does; also at shutdown, so that the last
/// events of a server's life are anchored too).
pub async fn log_heads(store: &Arc<dyn AuditLog>, out: &slog::Logger) {
    match blocking(store, |s| s.audit_heads()).await {
        Ok(heads) => {
            for (tenant, seq, hash) in heads {
                slog::info!(out, "audit head"; "tenant" => tenant, "events" => seq, "hash" => hash);
            }
        }
        Err(e) => slog::warn!(out, "reading the audit heads failed"; "error" => %e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{GENESIS_HASH, sqlite::SqliteStore};

    fn admin() -> Caller {
        Caller {
            tenant: "t1".into(),
            identity: Identity::User {
                id: "oid-1".into(),
                scopes: Vec::new(),
                admin: true,
                roles: Vec::new(),
                app: None,
            },
        }
    }

    #[test]
    fn events_chain_in_order_and_never_show_a_sas_signature() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path()).unwrap();
        let location = "https://acct.blob.core.windows.net/exports?sp=cw&se=2030-01-01T00:00:00Z&sig=s3cr3t";
        let subject =
            Subject { user: Some("alice".into()), storage_location: Some(location.into()), ..Subject::default() };
        let first = store.append(event(&admin(), Activity::ExportPersonalData, subject, Ok(()), "r-1")).unwrap();
        assert_eq!((first.seq, first.prev_hash.as_str()), (1, GENESIS_HASH));
        assert_eq!(first.storage_location.as_deref(), Some(location.replace("s3cr3t", "REDACTED").as_str()));
        let app = Caller { tenant: "t1".into(), identity: Identity::App { id: "app-9".into(), roles: Vec::new() } };
        let second =
            store.append(event(&app, Activity::CancelOperation, Subject::default(), Err("no".into()), "r-2")).unwrap();
        assert_eq!(
            (second.seq, second.prev_hash.as_str(), second.actor_kind.as_str()),
            (2, first.hash.as_str(), "app")
        );
        assert_eq!(second.result, "failure");
        let chain = verify(&store, "t1", Some(&first.hash)).unwrap();
        assert_eq!((chain.events, chain.head.clone()), (2, second.hash.clone()));
        assert!(
            matches!(verify(&store, "t2", None), Err(VerifyError::NoEvents { .. })),
            "a tenant without events is no intact chain"
        );
        let upper = chain.head.to_ascii_uppercase();
        assert_eq!(verify(&store, "t1", Some(&upper)).unwrap().events, 2, "a head in upper case is the same head");
        assert_eq!(parse_head(&upper), Ok(chain.head.clone()));
        assert!(parse_head("3f5c").is_err() && parse_head(&"g".repeat(64)).is_err());
        assert!(matches!(verify(&store, "t1", Some("feed")), Err(VerifyError::Broken(Broken::Truncated { .. }))));
    }
}
