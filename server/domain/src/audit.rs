//! The audit trail's vocabulary (what dpo records, as Graph's directoryAudits name it) and the hash chain's
//! check: [`verify`] walks a tenant's events through [`AuditLog`], whichever store holds them.

use crate::store::{AuditLog, GENESIS_HASH, StoreError};

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
    /// `POST /security/subjectRightsRequests`.
    CreateRequest,
    /// `PATCH /security/subjectRightsRequests/{id}`.
    UpdateRequest,
    /// `POST /security/subjectRightsRequests/{id}/notes`.
    AddRequestNote,
    /// `POST /security/subjectRightsRequests/{id}/approve`.
    ApproveRequest,
    /// `POST /security/subjectRightsRequests/{id}/reject`.
    RejectRequest,
    /// `POST /security/subjectRightsRequests/{id}/close`.
    CloseRequest,
    /// `GET /security/subjectRightsRequests/{id}/getFinalReport()`.
    DownloadReport,
    /// `GET /security/subjectRightsRequests/{id}/getFinalAttachment()`.
    DownloadAttachment,
    /// What a closed request collected was deleted from the request store, its retention over (by dpo).
    RemoveCollectedData,
    /// A stage of a request ended, completed (success) or failed (failure), as dpo ran it.
    EndRequestStage,
    /// One step of a `delete` request's erasure ran (a statement, a source's objects, a request), by dpo.
    EraseRequestData,
}

/// Graph's `category` for subject rights requests.
pub const REQUESTS_CATEGORY: &str = "SubjectRightsRequests";

/// Graph's `loggedByService` of every event dpo records.
pub const LOGGED_BY_SERVICE: &str = "dpo";

impl Activity {
    /// Every activity.
    pub const ALL: [Activity; 16] = [
        Activity::ExportPersonalData,
        Activity::CreateOperation,
        Activity::UpdateOperation,
        Activity::CancelOperation,
        Activity::ReadOperation,
        Activity::CreateRequest,
        Activity::UpdateRequest,
        Activity::AddRequestNote,
        Activity::ApproveRequest,
        Activity::RejectRequest,
        Activity::CloseRequest,
        Activity::DownloadReport,
        Activity::DownloadAttachment,
        Activity::RemoveCollectedData,
        Activity::EndRequestStage,
        Activity::EraseRequestData,
    ];

    /// Whether it concerns a subject rights request (its target is one), not a data policy operation.
    pub fn is_about_request(self) -> bool {
        matches!(
            self,
            Activity::CreateRequest
                | Activity::UpdateRequest
                | Activity::AddRequestNote
                | Activity::ApproveRequest
                | Activity::RejectRequest
                | Activity::CloseRequest
                | Activity::DownloadReport
                | Activity::DownloadAttachment
                | Activity::RemoveCollectedData
                | Activity::EndRequestStage
                | Activity::EraseRequestData
        )
    }

    /// Graph's `category` of the activity.
    pub fn category(self) -> &'static str {
        if self.is_about_request() { REQUESTS_CATEGORY } else { CATEGORY }
    }

    /// Graph's `operationType`: `Add`, `Update`, `Delete` or `Other`.
    pub fn operation_type(self) -> &'static str {
        match self {
            Activity::ExportPersonalData
            | Activity::CreateOperation
            | Activity::CreateRequest
            | Activity::AddRequestNote => "Add",
            Activity::UpdateOperation
            | Activity::UpdateRequest
            | Activity::ApproveRequest
            | Activity::RejectRequest
            | Activity::CloseRequest
            | Activity::EndRequestStage => "Update",
            Activity::CancelOperation | Activity::RemoveCollectedData | Activity::EraseRequestData => "Delete",
            Activity::ReadOperation | Activity::DownloadReport | Activity::DownloadAttachment => "Other",
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
            Activity::CreateRequest => "Create subject rights request",
            Activity::UpdateRequest => "Update subject rights request",
            Activity::AddRequestNote => "Add note to subject rights request",
            Activity::ApproveRequest => "Approve subject rights request",
            Activity::RejectRequest => "Reject subject rights request",
            Activity::CloseRequest => "Close subject rights request",
            Activity::DownloadReport => "Download subject rights request report",
            Activity::DownloadAttachment => "Download subject rights request attachment",
            Activity::RemoveCollectedData => "Delete subject rights request collected data",
            Activity::EndRequestStage => "End subject rights request stage",
            Activity::EraseRequestData => "Erase subject rights request data",
        }
    }
}

/// An event of dpo itself (the application `dpo`, no caller) doing `activity` to the subject rights request
/// `request` of `tenant`: a success with what it did (`Ok`), or a failure with why (`Err`); not yet placed in
/// its chain.
pub fn by_dpo(
    tenant: &str,
    activity: Activity,
    request: uuid::Uuid,
    outcome: Result<Option<String>, String>,
) -> crate::store::AuditEvent {
    let (result, reason) = match outcome {
        Ok(done) => ("success", done),
        Err(why) => ("failure", Some(why)),
    };
    crate::store::AuditEvent {
        tenant_id: tenant.to_string(),
        seq: 0,
        id: uuid::Uuid::now_v7().to_string(),
        at: chrono::SubsecRound::trunc_subsecs(chrono::Utc::now(), 3)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        category: activity.category().into(),
        activity: activity.name().into(),
        actor_kind: "app".into(),
        actor_id: LOGGED_BY_SERVICE.into(),
        target_user: None,
        operation_id: Some(request.to_string()),
        storage_location: None,
        result: result.into(),
        reason,
        request_id: String::new(),
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// The display names of the activities whose `operationType` is `kind` (none for an unknown kind).
pub fn activities_of_operation_type(kind: &str) -> Vec<&'static str> {
    Activity::ALL.into_iter().filter(|a| a.operation_type() == kind).map(Activity::name).collect()
}

/// The refusal recorded in the owner's trail for a call on its operation by a caller of another tenant.
pub const OTHER_TENANT: &str = "refused: the operation belongs to this tenant, the caller to another";

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

/// The hash of `tenant`'s latest event (what an operator anchors outside the database). Blocking.
pub fn head(log: &dyn AuditLog, tenant: &str) -> Result<Verified, VerifyError> {
    verify(log, tenant, None)
}
