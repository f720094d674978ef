//! The audit trail: every export submission (accepted or refused), cancellation and change of a data
//! policy operation, and every call refused because the operation is another tenant's (in the owner's
//! trail: the caller's sees what an unknown id leaves), appended to a
//! hash chain per tenant in the store (`audit_events`). Each event carries the SHA-256 of its
//! predecessor, so that editing or deleting one is detectable ([`verify`]); a truncated tail is detectable
//! against a head hash anchored elsewhere ([`verify`] with `head`, [`head`]).

use crate::{
    auth::{Caller, Identity},
    store::{AuditEvent, AuditLog, GENESIS_HASH, StoreError, blocking::blocking},
};
use chrono::{SecondsFormat, SubsecRound, Utc};
use std::sync::Arc;

/// Graph's `category` for what dpo records.
pub const CATEGORY: &str = "DataPolicyOperations";

/// What was done, as Graph's `activityDisplayName` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Activity {
    /// `POST /users/{id}/exportPersonalData`.
    ExportPersonalData,
    /// `POST /dataPolicyOperations`.
    CreateOperation,
    /// `PATCH /dataPolicyOperations/{id}`.
    UpdateOperation,
    /// `DELETE /dataPolicyOperations/{id}`: cancels a running export.
    CancelOperation,
    /// `GET /dataPolicyOperations/{id}`: recorded only when refused as another tenant's, in the owner's trail.
    ReadOperation,
}

/// Graph's `loggedByService` of every event dpo records.
pub const LOGGED_BY_SERVICE: &str = "dpo";

impl Activity {
    /// Every activity.
    pub const ALL: [Activity; 5] = [
        Activity::ExportPersonalData,
        Activity::CreateOperation,
        Activity::UpdateOperation,
        Activity::CancelOperation,
        Activity::ReadOperation,
    ];

    /// Graph's `operationType`: `Add`, `Update`, `Delete` or `Other`.
    pub fn operation_type(self) -> &'static str {
        match self {
            Activity::ExportPersonalData | Activity::CreateOperation => "Add",
            Activity::UpdateOperation => "Update",
            Activity::CancelOperation => "Delete",
            Activity::ReadOperation => "Other",
        }
    }

    /// The activity of a display name, as stored.
    pub fn named(name: &str) -> Option<Activity> {
        Activity::ALL.into_iter().find(|a| a.name() == name)
    }

    /// The display name.
    pub fn name(self) -> &'static str {
        match self {
            Activity::ExportPersonalData => "Export personal data",
            Activity::CreateOperation => "Create data policy operation",
            Activity::UpdateOperation => "Update data policy operation",
            Activity::CancelOperation => "Cancel data policy operation",
            Activity::ReadOperation => "Read data policy operation",
        }
    }
}

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
}

/// The display names of the activities whose `operationType` is `kind` (none for an unknown kind).
pub fn activities_of_operation_type(kind: &str) -> Vec<&'static str> {
    Activity::ALL.into_iter().filter(|a| a.operation_type() == kind).map(Activity::name).collect()
}

/// The refusal recorded in the owner's trail for a call on its operation by a caller of another tenant.
pub const OTHER_TENANT: &str = "refused: the operation belongs to this tenant, the caller to another";

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
        category: CATEGORY.into(),
        activity: activity.name().into(),
        actor_kind: actor_kind.into(),
        actor_id,
        target_user: subject.user,
        operation_id: subject.operation,
        storage_location: subject.storage_location.map(|l| dpo_contract::redact::redact_secrets(&l)),
        result: if outcome.is_ok() { "success" } else { "failure" }.into(),
        reason: outcome.err(),
        request_id: request_id.into(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Appends `event` to its tenant's chain.
pub async fn record(log: &Arc<dyn AuditLog>, event: AuditEvent) -> Result<AuditEvent, StoreError> {
    blocking(log, move |s| s.append(event)).await
}

/// Events read at a time while verifying.
const PAGE: u64 = 1000;

/// A chain that holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// Its events.
    pub events: u64,
    /// The hash of its last event ([`GENESIS_HASH`] when it has none).
    pub head: String,
}

/// Where a chain breaks.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Broken {
    /// An event is missing or out of place.
    #[error("tenant {tenant}: event {expected} is missing (the next one is {found})")]
    Gap {
        /// The tenant.
        tenant: String,
        /// The place expected.
        expected: i64,
        /// The place found.
        found: i64,
    },
    /// An event does not follow its predecessor (the predecessor was changed or removed).
    #[error("tenant {tenant}: event {seq} ({id}) does not follow event {}: its predecessor was changed", seq - 1)]
    Unlinked {
        /// The tenant.
        tenant: String,
        /// The event's place.
        seq: i64,
        /// Its id.
        id: String,
    },
    /// An event's fields do not match its hash (it was edited).
    #[error("tenant {tenant}: event {seq} ({id}) was changed after it was recorded: its hash does not match")]
    Altered {
        /// The tenant.
        tenant: String,
        /// The event's place.
        seq: i64,
        /// Its id.
        id: String,
    },
    /// The anchored head is not in the chain: events after some point were cut off.
    #[error(
        "tenant {tenant}: the chain ends at event {events} and never reaches the head {head}: its tail was cut off"
    )]
    Truncated {
        /// The tenant.
        tenant: String,
        /// Events in the chain now.
        events: u64,
        /// The head anchored earlier.
        head: String,
    },
}

/// Why verifying could not finish.
#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    /// The chain is broken.
    #[error(transparent)]
    Broken(#[from] Broken),
    /// The tenant has no chain in this store (a wrong tenant id, or a store that lost every event).
    #[error("tenant {tenant}: no audit events in this store")]
    NoEvents {
        /// The tenant asked for.
        tenant: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why a head given to check against is not one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a head is the 64 hexadecimal digits of an event's hash, as `audit head` prints it: {0:?}")]
pub struct HeadError(String);

/// A head as `audit head` prints it (or the log gives it), in either case; kept in lower case, as hashes are.
pub fn parse_head(text: &str) -> Result<String, HeadError> {
    let head = text.trim();
    if head.len() == 64 && head.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(head.to_ascii_lowercase())
    } else {
        Err(HeadError(text.into()))
    }
}

/// Walks `tenant`'s chain from its first event; with `head`, also checks that an event with that hash
/// is in it (so that nothing after an anchored head was cut). A tenant without events has no chain to
/// verify: an error, so that a mistyped tenant is not reported intact. Blocking.
pub fn verify(log: &dyn AuditLog, tenant: &str, head: Option<&str>) -> Result<Verified, VerifyError> {
    let head = head.map(str::to_ascii_lowercase);
    let head = head.as_deref();
    let (mut after, mut prev, mut events, mut reached) = (0i64, GENESIS_HASH.to_string(), 0u64, head.is_none());
    loop {
        let page = log.audit_events(tenant, after, PAGE)?;
        let Some(last) = page.last() else { break };
        let last_seq = last.seq;
        for event in &page {
            let broken =
                |kind: fn(String, i64, String) -> Broken| kind(tenant.to_string(), event.seq, event.id.clone());
            if event.seq != after + 1 {
                return Err(Broken::Gap { tenant: tenant.into(), expected: after + 1, found: event.seq }.into());
            }
            if event.prev_hash != prev {
                return Err(broken(|tenant, seq, id| Broken::Unlinked { tenant, seq, id }).into());
            }
            if event.hash != event.expected_hash() {
                return Err(broken(|tenant, seq, id| Broken::Altered { tenant, seq, id }).into());
            }
            reached |= head == Some(event.hash.as_str());
            prev = event.hash.clone();
            after = event.seq;
            events += 1;
        }
        after = last_seq;
    }
    if events == 0 {
        return Err(VerifyError::NoEvents { tenant: tenant.into() });
    }
    if !reached {
        return Err(Broken::Truncated { tenant: tenant.into(), events, head: head.unwrap_or_default().into() }.into());
    }
    Ok(Verified { events, head: prev })
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

/// The hash of `tenant`'s latest event (what an operator anchors outside the database). Blocking.
pub fn head(log: &dyn AuditLog, tenant: &str) -> Result<Verified, VerifyError> {
    verify(log, tenant, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

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
