//! Subject rights requests: the rules of creating, reading, changing and annotating them (which
//! properties a caller may set, the deadline a regulation gives, who is recorded as creator), over the
//! store's [`SubjectRightsRequests`]. The HTTP edge (handlers) shapes what these return.

use crate::{
    auth::{Caller, Identity as CallerIdentity},
    odata::{QueryError, query::CollectionQuery},
    store::{Cursor, StoreError, blocking::blocking, statements::requests::sort_values},
};
use chrono::{DateTime, Duration, Utc};
use dpo_api::model::subject_rights::{
    AuthoredNote, BodyType, DataSubject, DataSubjectType, Identity, IdentitySet, ItemBody, SubjectRightsRequest,
    SubjectRightsRequestHistory, SubjectRightsRequestStage as Stage, SubjectRightsRequestStageStatus as StageStatus,
    SubjectRightsRequestStatus, SubjectRightsRequestType,
};
pub use dpo_domain::request_stages::{current_stage, report_done, stages_of, waiting_at};
use dpo_domain::{
    odata::skiptoken::SkipToken,
    request_stages::stage_mut,
    requests::{NoteRecord, RequestList, RequestRecord, SubjectRightsRequests},
    store::OperationRecord,
};
use serde_json::{Map, Value};
use std::sync::Arc;
use uuid::Uuid;

/// The entity type's name, as `@odata.type` and messages give it.
pub const ENTITY: &str = "microsoft.graph.subjectRightsRequest";

/// Longest displayName, description, externalId or note accepted, in characters.
const MAX_TEXT: usize = 10_000;

/// Why a call about requests failed.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The id is not a request id at all.
    #[error("'{0}' is not a valid subjectRightsRequest id: ids are GUIDs such as d007e3da-cd9b-4b02-8d66-422403c53e3f")]
    InvalidId(String),
    /// No request of the caller's tenant has this id.
    #[error("subjectRightsRequest '{0}' does not exist")]
    NotFound(Uuid),
    /// The body is not acceptable; `property` names what is wrong.
    #[error("{message}")]
    Invalid {
        /// The property at fault.
        property: String,
        /// What is wrong and what would be right.
        message: String,
    },
    /// A query option is invalid.
    #[error(transparent)]
    Query(#[from] QueryError),
    /// The request changed between reading and writing it (another change won): nothing was written.
    #[error("the subjectRightsRequest '{0}' was changed by another call meanwhile: read it and make the change again")]
    Conflict(Uuid),
    /// The action does not apply where the request stands (its stage names where that is).
    #[error("{action} does not apply now: the request is at stage {stage} ({status}); {when}")]
    WrongStage {
        /// The action, or the function asked for.
        action: &'static str,
        /// The stage the request is at.
        stage: &'static str,
        /// That stage's status.
        status: &'static str,
        /// When the action applies.
        when: &'static str,
    },
    /// What the request collected was deleted, its retention over (the report stays).
    #[error(
        "what subjectRightsRequest '{id}' collected was deleted on {at}, when its retention ended; its report stays (getFinalReport)"
    )]
    CollectedRemoved {
        /// The request.
        id: Uuid,
        /// When.
        at: DateTime<Utc>,
    },
    /// The caller created the request and may not approve its erasure: a second administrator must.
    #[error(
        "the subjectRightsRequest '{0}' was created by the caller: its erasure must be approved by another administrator"
    )]
    CreatorApproves(Uuid),
    /// A `delete` request collects nothing: it has a report and no attachment.
    #[error(
        "the subjectRightsRequest '{0}' is of type delete: it collects nothing to download; its report is getFinalReport"
    )]
    NoAttachment(Uuid),
    /// The request is closed: nothing about it changes any more.
    #[error("the subjectRightsRequest '{0}' is closed: a closed request cannot be changed")]
    Closed(Uuid),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What a person does to move a request on (dpo edit: Graph does it from Purview's UI).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageAction {
    /// Go on past the point where the request waits.
    Approve,
    /// Close the request where it waits, without going on.
    Reject,
    /// Resolve a request whose report is done.
    Close,
}

impl StageAction {
    /// The action's name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            StageAction::Approve => "approve",
            StageAction::Reject => "reject",
            StageAction::Close => "close",
        }
    }

    /// When it applies, for the message of a refusal.
    fn when(self) -> &'static str {
        match self {
            StageAction::Approve | StageAction::Reject => {
                "it applies where the request waits for a person: after the estimate when pauseAfterEstimate is true, or at approval"
            }
            StageAction::Close => "it applies once generateReport has completed",
        }
    }
}

fn invalid(property: &str, message: impl Into<String>) -> RequestError {
    RequestError::Invalid { property: property.to_string(), message: message.into() }
}

/// A page of requests.
pub struct Page {
    /// The requests on the page.
    pub items: Vec<RequestRecord>,
    /// How many match in all, when `$count=true` asked for it.
    pub total: Option<u64>,
    /// Where the next page starts, if there is one.
    pub next: Option<SkipToken>,
}

/// The requests, with their rules.
#[derive(Clone)]
pub struct RequestService {
    store: Arc<dyn SubjectRightsRequests>,
    /// Told when a request's stages are queued, so that the engine picks them up at once.
    queued: Arc<tokio::sync::Notify>,
}

/// Reads a request id.
pub fn parse_id(text: &str) -> Result<Uuid, RequestError> {
    Uuid::parse_str(text).map_err(|_| RequestError::InvalidId(text.to_string()))
}

impl RequestService {
    /// The service over `store`, which notifies `queued` when it queues a request's stages.
    pub fn new(store: Arc<dyn SubjectRightsRequests>, queued: Arc<tokio::sync::Notify>) -> Self {
        RequestService { store, queued }
    }

    /// Creates a request from a create body, for `caller`, at `now`.
    pub async fn create(
        &self,
        caller: &Caller,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<RequestRecord, RequestError> {
        let request = new_request(caller, body, now)?;
        let record = RequestRecord {
            id: parse_id(request.id.as_deref().unwrap_or_default())?,
            tenant_id: caller.tenant.clone(),
            version: 1,
            request,
            report: None,
            collected_removed_at: None,
            erasure: None,
        };
        let (stored, job) = (record.clone(), record.job(now));
        blocking(&self.store, move |s| s.insert_request(&stored, &job)).await?;
        self.queued.notify_one();
        Ok(record)
    }

    /// The request of `tenant` with this id.
    pub async fn get(&self, tenant: &str, id: Uuid) -> Result<RequestRecord, RequestError> {
        let tenant = tenant.to_string();
        blocking(&self.store, move |s| s.get_request(&tenant, id)).await?.ok_or(RequestError::NotFound(id))
    }

    /// Applies an update body to the request, for `caller`, at `now`.
    pub async fn update(
        &self,
        caller: &Caller,
        id: Uuid,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<RequestRecord, RequestError> {
        let mut record = self.get(&caller.tenant, id).await?;
        apply_update(&mut record.request, body)?;
        record.request.last_modified_by = Some(identity_set(caller));
        record.request.last_modified_date_time = Some(now);
        self.replace(&mut record, None).await?;
        Ok(record)
    }

    /// Stores a changed `record` as its next version, queuing `job` with it; a change that raced another
    /// is a conflict.
    async fn replace(&self, record: &mut RequestRecord, job: Option<OperationRecord>) -> Result<(), RequestError> {
        record.version += 1;
        let (stored, id, queues) = (record.clone(), record.id, job.is_some());
        match blocking(&self.store, move |s| s.replace_request(&stored, job.as_ref())).await {
            Ok(()) => {
                if queues {
                    self.queued.notify_one();
                }
                Ok(())
            }
            Err(StoreError::VersionMismatch { .. }) => Err(RequestError::Conflict(id)),
            Err(StoreError::Missing(_)) => Err(RequestError::NotFound(id)),
            Err(e) => Err(e.into()),
        }
    }

    /// How many of the tenant's requests match `query`'s `$filter`.
    pub async fn count(&self, tenant: &str, query: CollectionQuery) -> Result<u64, RequestError> {
        let mut filter = query.filter;
        if let Some(filter) = filter.as_mut() {
            fold_emails(filter);
        }
        let tenant = tenant.to_string();
        Ok(blocking(&self.store, move |s| s.count_requests(&tenant, filter.as_ref())).await?)
    }

    /// One page of the tenant's requests, as `query` asks.
    pub async fn list(
        &self,
        tenant: &str,
        query: CollectionQuery,
        default_page: u64,
        max_page: u64,
    ) -> Result<Page, RequestError> {
        let page_size = query.top.map_or(default_page, |top| top.min(max_page));
        let skip = if query.skiptoken.is_some() { 0 } else { query.skip };
        let cursor = query.skiptoken.as_ref().map(|t| Cursor { keys: t.keys.clone(), last_id: t.last_id.clone() });
        let tenant = tenant.to_string();
        let mut q = query.clone();
        if let Some(filter) = q.filter.as_mut() {
            fold_emails(filter);
        }
        let (mut items, total) = blocking(&self.store, move |s| {
            let list = RequestList {
                tenant: &tenant,
                filter: q.filter.as_ref(),
                order: &q.orderby,
                after: cursor.as_ref(),
                skip,
                limit: page_size.saturating_add(1),
            };
            let items = s.list_requests(&list)?;
            let total = if q.count { Some(s.count_requests(&tenant, q.filter.as_ref())?) } else { None };
            Ok((items, total))
        })
        .await?;
        let next = if items.len() as u64 > page_size {
            items.truncate(page_size as usize);
            items.last().map(|last| SkipToken {
                keys: sort_values(last, &query.orderby),
                last_id: last.id.to_string(),
                query: query.fingerprint.clone(),
            })
        } else {
            None
        };
        Ok(Page { items, total, next })
    }

    /// Applies `action` for `caller` at `now`; a `comment` becomes a note of the request.
    pub async fn act(
        &self,
        caller: &Caller,
        id: Uuid,
        action: StageAction,
        comment: Option<String>,
        now: DateTime<Utc>,
    ) -> Result<RequestRecord, RequestError> {
        let comment = match comment {
            Some(c) => text("comment", Value::String(c), false)?,
            None => None,
        };
        let mut record = self.get(&caller.tenant, id).await?;
        apply_action(id, &mut record.request, action, &identity_set(caller), now)?;
        // Approving sets the next stage going: its worker is queued with the change.
        let job = (action == StageAction::Approve).then(|| record.job(now));
        self.replace(&mut record, job).await?;
        if let Some(comment) = comment.filter(|c| !c.trim().is_empty()) {
            let mut body = Map::new();
            body.insert("content".into(), serde_json::json!({"content": comment, "contentType": "text"}));
            self.add_note(caller, id, body, now).await?;
        }
        Ok(record)
    }

    /// The request, if its report is done; `function` (`getFinalReport`, `getFinalAttachment`) names what
    /// was asked for when it is not.
    pub async fn with_report(
        &self,
        tenant: &str,
        id: Uuid,
        function: &'static str,
    ) -> Result<RequestRecord, RequestError> {
        let record = self.get(tenant, id).await?;
        if !report_done(&record.request) {
            let (stage, status) = current_stage(&record.request);
            return Err(RequestError::WrongStage {
                action: function,
                stage,
                status,
                when: "the report and the zip are made in generateReport, which has not completed",
            });
        }
        if function == "getFinalAttachment" && record.request.kind == Some(SubjectRightsRequestType::Delete) {
            return Err(RequestError::NoAttachment(id));
        }
        if let Some(at) = record.collected_removed_at.filter(|_| function == "getFinalAttachment") {
            return Err(RequestError::CollectedRemoved { id, at });
        }
        Ok(record)
    }

    /// Adds a note to the request, written by `caller`, at `now`.
    pub async fn add_note(
        &self,
        caller: &Caller,
        request: Uuid,
        body: Map<String, Value>,
        now: DateTime<Utc>,
    ) -> Result<NoteRecord, RequestError> {
        self.get(&caller.tenant, request).await?;
        let content = note_content(body)?;
        let id = Uuid::new_v4();
        let note = AuthoredNote {
            id: Some(id.to_string()),
            odata_type: None,
            author: Some(author(caller)),
            content: Some(content),
            created_date_time: Some(now),
        };
        let record = NoteRecord { id, tenant_id: caller.tenant.clone(), request_id: request, created_at: now, note };
        let stored = record.clone();
        match blocking(&self.store, move |s| s.add_note(&stored)).await {
            Ok(()) => Ok(record),
            Err(StoreError::Missing(_)) => Err(RequestError::NotFound(request)),
            Err(e) => Err(e.into()),
        }
    }

    /// Up to `limit` notes of the request after place `after`, with their places, and their number when
    /// `count`.
    pub async fn notes(
        &self,
        tenant: &str,
        request: Uuid,
        after: i64,
        limit: u64,
        count: bool,
    ) -> Result<(Vec<(i64, NoteRecord)>, Option<u64>), RequestError> {
        self.get(tenant, request).await?;
        let tenant = tenant.to_string();
        Ok(blocking(&self.store, move |s| {
            let notes = s.notes(&tenant, request, after, limit)?;
            let total = if count { Some(s.count_notes(&tenant, request)?) } else { None };
            Ok((notes, total))
        })
        .await?)
    }
}

/// Applies `action` by `who` at `now`, or says why it does not apply.
pub fn apply_action(
    id: Uuid,
    r: &mut SubjectRightsRequest,
    action: StageAction,
    who: &IdentitySet,
    now: DateTime<Utc>,
) -> Result<(), RequestError> {
    if r.status == Some(SubjectRightsRequestStatus::Closed) {
        return Err(RequestError::Closed(id));
    }
    let wrong = |r: &SubjectRightsRequest| {
        let (stage, status) = current_stage(r);
        RequestError::WrongStage { action: action.name(), stage, status, when: action.when() }
    };
    let (stage, kind) = match action {
        StageAction::Approve => {
            let at = waiting_at(r).ok_or_else(|| wrong(r))?;
            // Erasure needs four eyes: whoever created the request cannot also approve it.
            if at == Stage::Approval && r.created_by.as_ref().is_some_and(|creator| same_caller(creator, who)) {
                return Err(RequestError::CreatorApproves(id));
            }
            match stage_mut(r, at) {
                // A stage that failed runs again.
                Some(failed) if failed.status == Some(StageStatus::Failed) => {
                    failed.status = Some(StageStatus::Current);
                    failed.error = None;
                }
                waiting => {
                    if at == Stage::Approval
                        && let Some(approval) = waiting
                    {
                        approval.status = Some(StageStatus::Completed);
                    }
                    let after = r.stages.iter().position(|s| s.stage == Some(at)).map_or(0, |i| i + 1);
                    if let Some(next) = r.stages.get_mut(after) {
                        next.status = Some(StageStatus::Current);
                    }
                }
            }
            (at, "approved")
        }
        StageAction::Reject => {
            let at = waiting_at(r).ok_or_else(|| wrong(r))?;
            r.status = Some(SubjectRightsRequestStatus::Closed);
            r.closed_date_time = Some(now);
            (at, "rejected")
        }
        StageAction::Close => {
            if !report_done(r) {
                return Err(wrong(r));
            }
            if let Some(resolved) = stage_mut(r, Stage::CaseResolved) {
                resolved.status = Some(StageStatus::Completed);
            }
            r.status = Some(SubjectRightsRequestStatus::Closed);
            r.closed_date_time = Some(now);
            (Stage::CaseResolved, "closed")
        }
    };
    let status = r.stages.iter().find(|s| s.stage == Some(stage)).and_then(|s| s.status);
    r.history.push(SubjectRightsRequestHistory {
        changed_by: Some(who.clone()),
        event_date_time: Some(now),
        stage: Some(stage),
        stage_status: status,
        kind: Some(kind.into()),
        odata_type: None,
    });
    r.last_modified_by = Some(who.clone());
    r.last_modified_date_time = Some(now);
    Ok(())
}

/// Whether two identity sets name the same user or application.
fn same_caller(a: &IdentitySet, b: &IdentitySet) -> bool {
    fn id(i: &Option<Identity>) -> Option<&str> {
        i.as_ref().and_then(|i| i.id.as_deref())
    }
    (id(&a.user).is_some() && id(&a.user) == id(&b.user))
        || (id(&a.application).is_some() && id(&a.application) == id(&b.application))
}

/// Email addresses are stored lower-case (a person is found whatever the case they were written in), so
/// the values a filter compares them with are too.
fn fold_emails(filter: &mut dpo_domain::odata::filter::Filter) {
    use dpo_domain::odata::filter::{Filter, Value};
    let is_email = |name: &str| name == "dataSubject/email";
    match filter {
        Filter::And(a, b) | Filter::Or(a, b) => {
            fold_emails(a);
            fold_emails(b);
        }
        Filter::Not(a) => fold_emails(a),
        Filter::Compare { property, value: Value::String(s), .. } if is_email(property.name) => *s = s.to_lowercase(),
        Filter::In { property, values } if is_email(property.name) => {
            for value in values {
                if let Value::String(s) = value {
                    *s = s.to_lowercase();
                }
            }
        }
        _ => {}
    }
}

/// The caller as Graph's `identitySet`: the signed-in user, or the application acting as itself.
pub fn identity_set(caller: &Caller) -> IdentitySet {
    match &caller.identity {
        CallerIdentity::User { id, .. } => {
            IdentitySet { user: Some(Identity { id: Some(id.clone()), ..Default::default() }), ..Default::default() }
        }
        CallerIdentity::App { id, .. } => IdentitySet {
            application: Some(Identity { id: Some(id.clone()), ..Default::default() }),
            ..Default::default()
        },
    }
}

fn author(caller: &Caller) -> Identity {
    let (CallerIdentity::User { id, .. } | CallerIdentity::App { id, .. }) = &caller.identity;
    Identity { id: Some(id.clone()), ..Default::default() }
}

/// The properties Graph's request has that dpo does not take (Microsoft 365 searches, navigation
/// properties), each with why.
const NOT_SERVED: [&str; 9] = [
    "contentQuery",
    "includeAllVersions",
    "includeAuthoredContent",
    "mailboxLocations",
    "siteLocations",
    "approvers",
    "collaborators",
    "team",
    "notes",
];

/// Properties the service sets and a caller may not.
const READ_ONLY: [&str; 10] = [
    "id",
    "status",
    "stages",
    "history",
    "insight",
    "createdBy",
    "createdDateTime",
    "lastModifiedBy",
    "lastModifiedDateTime",
    "closedDateTime",
];

/// Checks a property that is neither settable here nor unknown, and says why it is refused.
fn refuse(name: &str, settable: &[&str]) -> RequestError {
    if READ_ONLY.contains(&name) {
        return invalid(name, format!("'{name}' is read-only: dpo sets it"));
    }
    if NOT_SERVED.contains(&name) {
        return invalid(
            name,
            format!(
                "'{name}' is not supported by dpo: it searches the organisation's configured data sources, not Microsoft 365 locations"
            ),
        );
    }
    let known = [&READ_ONLY[..], settable].concat();
    if known.contains(&name) {
        return invalid(name, format!("'{name}' cannot be changed: an update takes {}", settable.join(", ")));
    }
    invalid(name, format!("'{name}' is not a property of {ENTITY}"))
}

fn odata_type(value: &Value, expected: &str) -> Result<(), RequestError> {
    match value.as_str() {
        Some(t) if t.trim_start_matches('#') == expected => Ok(()),
        _ => Err(invalid("@odata.type", format!("@odata.type must be #{expected}"))),
    }
}

fn text(name: &str, value: Value, required: bool) -> Result<Option<String>, RequestError> {
    match value {
        Value::Null if !required => Ok(None),
        Value::String(s) if required && s.trim().is_empty() => {
            Err(invalid(name, format!("'{name}' must not be empty")))
        }
        Value::String(s) if s.chars().count() > MAX_TEXT => {
            Err(invalid(name, format!("'{name}' is longer than {MAX_TEXT} characters")))
        }
        Value::String(s) if s.chars().any(|c| c.is_control() && c != '\n' && c != '\r' && c != '\t') => {
            Err(invalid(name, format!("'{name}' may not contain control characters")))
        }
        Value::String(s) => Ok(Some(s)),
        _ => Err(invalid(name, format!("'{name}' must be a string"))),
    }
}

fn time(name: &str, value: Value) -> Result<Option<DateTime<Utc>>, RequestError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => DateTime::parse_from_rfc3339(&s).map(|t| Some(t.with_timezone(&Utc))).map_err(|_| {
            invalid(name, format!("'{name}' must be a DateTimeOffset such as 2026-01-31T00:00:00Z, not '{s}'"))
        }),
        _ => Err(invalid(name, format!("'{name}' must be a DateTimeOffset such as 2026-01-31T00:00:00Z"))),
    }
}

fn member<T: Copy>(
    name: &str,
    value: &Value,
    named: fn(&str) -> Option<T>,
    allowed: &[&str],
) -> Result<T, RequestError> {
    value
        .as_str()
        .and_then(|v| allowed.contains(&v).then_some(v))
        .and_then(named)
        .ok_or_else(|| invalid(name, format!("'{name}' must be one of {}, not {value}", allowed.join(", "))))
}

fn identity(name: &str, value: Value) -> Result<Option<Identity>, RequestError> {
    if value.is_null() {
        return Ok(None);
    }
    let Value::Object(mut object) = value else {
        return Err(invalid(name, format!("'{name}' must be an identity: {{\"id\": \"…\", \"displayName\": \"…\"}}")));
    };
    let mut identity = Identity::default();
    for (key, v) in std::mem::take(&mut object) {
        let path = format!("{name}/{key}");
        match key.as_str() {
            "id" => identity.id = text(&path, v, false)?,
            "displayName" => identity.display_name = text(&path, v, false)?,
            "@odata.type" => odata_type(&v, "microsoft.graph.identity")?,
            _ => return Err(invalid(&path, format!("'{key}' is not a property of microsoft.graph.identity"))),
        }
    }
    Ok(Some(identity))
}

fn data_subject(value: Value) -> Result<DataSubject, RequestError> {
    let Value::Object(object) = value else {
        return Err(invalid("dataSubject", "'dataSubject' must be an object with at least an email"));
    };
    let mut subject = DataSubject::default();
    for (key, v) in object {
        let path = format!("dataSubject/{key}");
        match key.as_str() {
            "email" => subject.email = text(&path, v, false)?,
            "firstName" => subject.first_name = text(&path, v, false)?,
            "lastName" => subject.last_name = text(&path, v, false)?,
            "residency" => subject.residency = text(&path, v, false)?,
            "@odata.type" => odata_type(&v, "microsoft.graph.dataSubject")?,
            _ => return Err(invalid(&path, format!("'{key}' is not a property of microsoft.graph.dataSubject"))),
        }
    }
    match &subject.email {
        Some(email) if email.contains('@') && !email.trim().is_empty() => Ok(subject),
        Some(email) => Err(invalid("dataSubject/email", format!("'{email}' is not an email address"))),
        None => Err(invalid(
            "dataSubject/email",
            "'dataSubject/email' is required: dpo finds the person's data by their email address",
        )),
    }
}

fn regulations(value: Value) -> Result<Vec<String>, RequestError> {
    let Value::Array(items) = value else {
        return Err(invalid("regulations", "'regulations' must be an array of strings, e.g. [\"GDPR\"]"));
    };
    let mut out = Vec::new();
    for item in items {
        match text("regulations", item, true)? {
            Some(r) => out.push(r),
            None => return Err(invalid("regulations", "'regulations' must not hold null")),
        }
    }
    if out.is_empty() {
        return Err(invalid("regulations", "'regulations' must name at least one regulation, e.g. [\"GDPR\"]"));
    }
    Ok(out)
}

/// Days a request's regulations give before it is due (dpo edit: Graph requires the due date).
fn days_due(regulations: &[String]) -> i64 {
    let named = |r: &str| regulations.iter().any(|x| x.trim().eq_ignore_ascii_case(r));
    if named("GDPR") || named("UK GDPR") || named("UKGDPR") {
        30
    } else if named("CCPA") || named("CPRA") {
        45
    } else {
        30
    }
}

/// The types dpo fulfils today.
const SERVED_TYPES: [&str; 3] = ["access", "export", "delete"];

fn new_request(
    caller: &Caller,
    body: Map<String, Value>,
    now: DateTime<Utc>,
) -> Result<SubjectRightsRequest, RequestError> {
    const SETTABLE: [&str; 10] = [
        "dataSubject",
        "dataSubjectType",
        "displayName",
        "description",
        "internalDueDateTime",
        "regulations",
        "type",
        "externalId",
        "pauseAfterEstimate",
        "assignedTo",
    ];
    let mut r = SubjectRightsRequest::default();
    for (name, value) in body {
        match name.as_str() {
            "@odata.type" => odata_type(&value, ENTITY)?,
            "dataSubject" => r.data_subject = Some(data_subject(value)?),
            "dataSubjectType" => {
                let allowed: Vec<&str> =
                    DataSubjectType::ALL.iter().map(|t| t.as_str()).filter(|t| *t != "unknownFutureValue").collect();
                r.data_subject_type = Some(member(&name, &value, DataSubjectType::named, &allowed)?);
            }
            "displayName" => r.display_name = text(&name, value, true)?,
            "description" => r.description = text(&name, value, true)?,
            "internalDueDateTime" => r.internal_due_date_time = time(&name, value)?,
            "regulations" => r.regulations = regulations(value)?,
            "type" => {
                if value.as_str() == Some("tagForAction") {
                    return Err(invalid(
                        "type",
                        format!(
                            "requests of type {value} are not fulfilled by this server: use access, export or delete"
                        ),
                    ));
                }
                r.kind = Some(member(&name, &value, SubjectRightsRequestType::named, &SERVED_TYPES)?);
            }
            "externalId" => r.external_id = text(&name, value, false)?,
            "pauseAfterEstimate" => match value {
                Value::Bool(b) => r.pause_after_estimate = Some(b),
                Value::Null => {}
                _ => return Err(invalid(&name, "'pauseAfterEstimate' must be true or false")),
            },
            "assignedTo" => r.assigned_to = identity(&name, value)?,
            // A client that sends back what it read sends dpo's own properties as null: nothing to set.
            other if value.is_null() && (READ_ONLY.contains(&other) || NOT_SERVED.contains(&other)) => {}
            other => return Err(refuse(other, &SETTABLE)),
        }
    }
    for (name, missing) in [
        ("dataSubject", r.data_subject.is_none()),
        ("dataSubjectType", r.data_subject_type.is_none()),
        ("displayName", r.display_name.is_none()),
        ("description", r.description.is_none()),
        ("regulations", r.regulations.is_empty()),
        ("type", r.kind.is_none()),
    ] {
        if missing {
            return Err(invalid(name, format!("'{name}' is required to create a {ENTITY}")));
        }
    }
    let kind = r.kind.unwrap_or(SubjectRightsRequestType::Access);
    let creator = identity_set(caller);
    r.id = Some(Uuid::new_v4().to_string());
    r.internal_due_date_time = Some(r.internal_due_date_time.unwrap_or(now + Duration::days(days_due(&r.regulations))));
    r.pause_after_estimate = Some(r.pause_after_estimate.unwrap_or(true));
    r.status = Some(SubjectRightsRequestStatus::Active);
    r.created_by = Some(creator.clone());
    r.last_modified_by = Some(creator.clone());
    r.created_date_time = Some(now);
    r.last_modified_date_time = Some(now);
    r.stages = dpo_domain::request_stages::not_started(kind);
    r.history = vec![SubjectRightsRequestHistory {
        changed_by: Some(creator),
        event_date_time: Some(now),
        stage: r.stages.first().and_then(|s| s.stage),
        stage_status: Some(StageStatus::NotStarted),
        kind: Some("created".into()),
        odata_type: None,
    }];
    Ok(r)
}

fn apply_update(r: &mut SubjectRightsRequest, body: Map<String, Value>) -> Result<(), RequestError> {
    const SETTABLE: [&str; 4] = ["displayName", "description", "internalDueDateTime", "assignedTo"];
    if r.status == Some(SubjectRightsRequestStatus::Closed) {
        return Err(invalid("status", "the request is closed: a closed request cannot be changed"));
    }
    for (name, value) in body {
        match name.as_str() {
            "@odata.type" => odata_type(&value, ENTITY)?,
            "displayName" => r.display_name = text(&name, value, true)?,
            "description" => r.description = text(&name, value, true)?,
            "internalDueDateTime" => {
                r.internal_due_date_time = Some(time(&name, value)?.ok_or_else(|| {
                    invalid("internalDueDateTime", "'internalDueDateTime' cannot be removed: a request has a due date")
                })?)
            }
            "assignedTo" => r.assigned_to = identity(&name, value)?,
            "externalId" => {
                return Err(invalid("externalId", "'externalId' cannot change after the request is created"));
            }
            other if value.is_null() && (READ_ONLY.contains(&other) || NOT_SERVED.contains(&other)) => {}
            other => return Err(refuse(other, &SETTABLE)),
        }
    }
    Ok(())
}

fn note_content(body: Map<String, Value>) -> Result<ItemBody, RequestError> {
    let mut content = None;
    for (name, value) in body {
        match name.as_str() {
            "@odata.type" => odata_type(&value, "microsoft.graph.authoredNote")?,
            "content" => {
                let Value::Object(object) = value else {
                    return Err(invalid(
                        "content",
                        "'content' must be an itemBody: {\"content\": \"…\", \"contentType\": \"text\"}",
                    ));
                };
                let mut body = ItemBody::default();
                for (key, v) in object {
                    let path = format!("content/{key}");
                    match key.as_str() {
                        "content" => body.content = text(&path, v, true)?,
                        "contentType" => {
                            body.content_type = Some(member(&path, &v, BodyType::named, &["text", "html"])?)
                        }
                        "@odata.type" => odata_type(&v, "microsoft.graph.itemBody")?,
                        _ => {
                            return Err(invalid(
                                &path,
                                format!("'{key}' is not a property of microsoft.graph.itemBody"),
                            ));
                        }
                    }
                }
                if body.content.is_none() {
                    return Err(invalid("content/content", "a note needs its text in 'content/content'"));
                }
                body.content_type.get_or_insert(BodyType::Text);
                content = Some(body);
            }
            "id" | "author" | "createdDateTime" => {
                return Err(invalid(&name, format!("'{name}' is read-only: dpo sets it")));
            }
            _ => return Err(invalid(&name, format!("'{name}' is not a property of microsoft.graph.authoredNote"))),
        }
    }
    content.ok_or_else(|| invalid("content", "'content' is required: the note's text, as an itemBody"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn set(r: &mut SubjectRightsRequest, stage: Stage, status: StageStatus) {
        stage_mut(r, stage).expect("the stage").status = Some(status);
    }

    fn has(r: &SubjectRightsRequest, stage: Stage, status: StageStatus) -> bool {
        r.stages.iter().any(|s| s.stage == Some(stage) && s.status == Some(status))
    }

    #[test]
    fn the_creator_of_a_delete_request_cannot_approve_its_erasure() {
        let mut v = valid();
        v["type"] = json!("delete");
        let mut r = new_request(&caller(), body(v), Utc::now()).unwrap();
        set(&mut r, Stage::ContentEstimate, StageStatus::Completed);
        set(&mut r, Stage::Approval, StageStatus::Current);
        let before = r.clone();
        let id = Uuid::new_v4();
        let creator = identity_set(&caller());
        assert!(matches!(
            apply_action(id, &mut r, StageAction::Approve, &creator, Utc::now()),
            Err(RequestError::CreatorApproves(_))
        ));
        assert_eq!(r, before, "a refused approval changes nothing");
        let other = IdentitySet {
            user: Some(Identity { id: Some("someone-else".into()), ..Default::default() }),
            ..Default::default()
        };
        apply_action(id, &mut r, StageAction::Approve, &other, Utc::now()).unwrap();
        assert!(has(&r, Stage::Approval, StageStatus::Completed));
        assert!(has(&r, Stage::ContentDeletion, StageStatus::Current));
        assert!(dpo_domain::request_stages::approved(&r));
    }

    #[test]
    fn actions_apply_only_where_the_request_stands() {
        let who = identity_set(&caller());
        let id = Uuid::new_v4();
        let fresh = new_request(&caller(), body(valid()), Utc::now()).unwrap();
        for action in [StageAction::Approve, StageAction::Reject, StageAction::Close] {
            let mut r = fresh.clone();
            match apply_action(id, &mut r, action, &who, Utc::now()) {
                Err(RequestError::WrongStage { stage, status, .. }) => {
                    assert_eq!((stage, status), ("contentEstimate", "notStarted"))
                }
                other => panic!("{action:?}: {other:?}"),
            }
            assert_eq!(r, fresh, "a refused action changes nothing");
        }
        // Waiting after the estimate: approve starts the retrieval.
        let mut r = fresh.clone();
        set(&mut r, Stage::ContentEstimate, StageStatus::Completed);
        assert_eq!(waiting_at(&r), Some(Stage::ContentEstimate));
        apply_action(id, &mut r, StageAction::Approve, &who, Utc::now()).unwrap();
        assert!(has(&r, Stage::ContentRetrieval, StageStatus::Current));
        assert_eq!(r.history.last().and_then(|h| h.kind.as_deref()), Some("approved"));
        assert_eq!(waiting_at(&r), None, "approved once");
        // Reject closes it where it waits.
        let mut r = fresh.clone();
        set(&mut r, Stage::ContentEstimate, StageStatus::Completed);
        apply_action(id, &mut r, StageAction::Reject, &who, Utc::now()).unwrap();
        assert_eq!(r.status, Some(SubjectRightsRequestStatus::Closed));
        assert!(r.closed_date_time.is_some());
        assert!(matches!(
            apply_action(id, &mut r, StageAction::Approve, &who, Utc::now()),
            Err(RequestError::Closed(_))
        ));
        // Close needs the report.
        let mut r = fresh.clone();
        for stage in [Stage::ContentEstimate, Stage::ContentRetrieval, Stage::GenerateReport] {
            set(&mut r, stage, StageStatus::Completed);
        }
        assert!(report_done(&r));
        apply_action(id, &mut r, StageAction::Close, &who, Utc::now()).unwrap();
        assert!(has(&r, Stage::CaseResolved, StageStatus::Completed));
        assert_eq!(r.status, Some(SubjectRightsRequestStatus::Closed));
        assert_eq!(current_stage(&r), ("caseResolved", "completed"));
    }

    fn caller() -> Caller {
        Caller {
            tenant: "t".into(),
            identity: CallerIdentity::User { id: "u".into(), scopes: vec![], admin: true, roles: vec![], app: None },
        }
    }

    fn body(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap_or_default()
    }

    fn valid() -> Value {
        json!({"dataSubject": {"email": "jo@example.com"}, "dataSubjectType": "customer", "displayName": "Jo",
               "description": "copy", "regulations": ["CCPA"], "type": "access"})
    }

    #[test]
    fn a_create_fills_in_what_dpo_sets_and_the_due_date_of_the_regulation() {
        let now = Utc::now();
        let r = new_request(&caller(), body(valid()), now).unwrap();
        assert_eq!(r.internal_due_date_time, Some(now + Duration::days(45)));
        assert_eq!(r.status, Some(SubjectRightsRequestStatus::Active));
        assert_eq!(r.stages.len(), 4);
        assert_eq!(r.history.len(), 1);
        assert_eq!(r.created_by.and_then(|c| c.user).and_then(|u| u.id).as_deref(), Some("u"));
        assert_eq!(r.pause_after_estimate, Some(true));
    }

    #[test]
    fn each_wrong_property_is_named() {
        let property = |patch: Value| {
            let mut v = valid();
            for (k, x) in patch.as_object().unwrap() {
                if x.is_null() {
                    v.as_object_mut().unwrap().remove(k);
                } else {
                    v[k] = x.clone();
                }
            }
            match new_request(&caller(), body(v), Utc::now()) {
                Err(RequestError::Invalid { property, .. }) => property,
                other => panic!("{patch}: {other:?}"),
            }
        };
        for required in ["dataSubject", "dataSubjectType", "displayName", "description", "regulations", "type"] {
            assert_eq!(property(json!({ required: null })), required);
        }
        assert_eq!(property(json!({"type": "sideways"})), "type");
        assert_eq!(property(json!({"type": "tagForAction"})), "type");
        assert_eq!(property(json!({"status": "closed"})), "status");
        assert_eq!(property(json!({"mailboxLocations": {}})), "mailboxLocations");
        assert_eq!(property(json!({"bogus": 1})), "bogus");
        assert_eq!(property(json!({"dataSubject": {"firstName": "Jo"}})), "dataSubject/email");
        assert_eq!(property(json!({"dataSubject": {"email": "a@b", "shoeSize": 9}})), "dataSubject/shoeSize");
        assert_eq!(property(json!({"internalDueDateTime": "tomorrow"})), "internalDueDateTime");
        assert_eq!(property(json!({"regulations": []})), "regulations");
    }

    #[test]
    fn an_update_takes_what_graph_documents_and_keeps_the_external_id() {
        let mut r = new_request(
            &caller(),
            body(
                json!({"externalId": "crm-1"})
                    .as_object()
                    .cloned()
                    .map(|mut m| {
                        m.extend(body(valid()));
                        Value::Object(m)
                    })
                    .unwrap(),
            ),
            Utc::now(),
        )
        .unwrap();
        apply_update(&mut r, body(json!({"displayName": "Renamed", "assignedTo": {"id": "x"}}))).unwrap();
        assert_eq!(r.display_name.as_deref(), Some("Renamed"));
        assert!(matches!(
            apply_update(&mut r, body(json!({"externalId": "crm-2"}))),
            Err(RequestError::Invalid { .. })
        ));
        assert!(matches!(
            apply_update(&mut r, body(json!({"regulations": ["GDPR"]}))),
            Err(RequestError::Invalid { .. })
        ));
        assert_eq!(r.external_id.as_deref(), Some("crm-1"));
    }
}
