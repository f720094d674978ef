//! The HTTP handlers: parse the request, call the domain, shape the answer. Every handler runs through
//! [`Call::run`], which authenticates and authorizes the caller first, then runs the handler's body, and
//! sends every failure as an OData error carrying the request's ids (`innerError`).

use crate::{
    audit_trail::{self, Activity, Subject},
    auth::{
        Caller,
        permissions::{Action, authorize},
        verified::TokenVerifier,
    },
    config::ServerConfig,
    endpoint_names::VERSION_PREFIXES,
    odata::{
        properties::{DATA_POLICY_OPERATION, NOTES, SUBJECT_RIGHTS_REQUEST},
        query::{self, allowed},
    },
    operations::OperationError,
    operations::{Operation, OperationService, PageSizes},
    request_wire,
    store::AuditLog,
    wire,
};
use chrono::{SubsecRound, Utc};
use dpo_api::extract::{CheckedBody, ODataQuery};
use dpo_api::{
    DataPolicyOperationsApi, GraphError,
    directory_audit::{DirectoryAudit, DirectoryAuditCollection},
    error::InnerError,
    model::{
        DataPolicyOperation, DataPolicyOperationCollection, ExportPersonalDataRequest,
        subject_rights::{
            AuthoredNote, AuthoredNoteCollection, RequestAction, SubjectRightsRequest, SubjectRightsRequestCollection,
        },
    },
    params::{DirectoryAuditPath, GetQuery, IfMatchHeader, ListQuery, OperationPath, RequestPath, UserPath},
    responses::{
        AcceptedNoContent, Answer, Download, EntityOrCount, EntityOrCountOf, ExportAcceptedHeaders, NoContent,
        ShapedCreated, ShapedOk,
    },
};
use dropshot::{Header, Path, RequestContext};
use http::{HeaderMap, HeaderName, HeaderValue, header};
use std::sync::{Arc, OnceLock};

/// State the handlers share.
pub struct AppContext {
    /// The operations service.
    pub operations: OperationService,
    /// Subject rights requests.
    pub requests: crate::subject_rights::RequestService,
    /// Where requests keep what they gathered (read for `getFinalAttachment`).
    pub requests_store: crate::export::request_store::RequestStore,
    /// The audit trail.
    pub audit: Arc<dyn AuditLog>,
    /// Requests a second per tenant and caller.
    pub throttle: Arc<crate::throttle::Throttle>,
    /// The server's settings.
    pub config: ServerConfig,
    /// Absolute base URL of the server, without a trailing slash; set once the listener is bound.
    pub base_url: OnceLock<String>,
    /// Checks bearer tokens.
    pub tokens: TokenVerifier,
    /// The metrics every answered request counts.
    pub request_metrics: crate::request_metrics::RequestMetrics,
    /// The log of each request's `request answered` line: the server's, not dropshot's per-request logger,
    /// whose values repeat the request id (`req_id`) and the listener's address on every line, formatted
    /// each time.
    pub requests_log: slog::Logger,
}

impl AppContext {
    /// Absolute base URL of the server, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or_default()
    }

    fn page_sizes(&self) -> PageSizes {
        PageSizes { default: self.config.default_page_size, max: self.config.max_page_size }
    }
}

/// The dpo implementation of [`DataPolicyOperationsApi`].
pub enum DpoApi {}

/// The status each kind of successful answer is sent with (for the request metrics).
pub(crate) trait SuccessStatus {
    /// The status.
    const STATUS: u16;
}

impl<T, const CREATED: bool> SuccessStatus for dpo_api::responses::Shaped<T, CREATED> {
    const STATUS: u16 = if CREATED { 201 } else { 200 };
}

impl<H> SuccessStatus for AcceptedNoContent<H> {
    const STATUS: u16 = 202;
}

impl SuccessStatus for Download {
    const STATUS: u16 = 200;
}

impl SuccessStatus for NoContent {
    const STATUS: u16 = 204;
}

impl<T> SuccessStatus for dpo_api::responses::EntityOrCountOf<T> {
    const STATUS: u16 = 200;
}

/// Per-request facts every answer needs: ids for correlation and the service root the client used.
pub(crate) struct Call<'r> {
    rqctx: &'r RequestContext<AppContext>,
    /// When the handler began, for the request metrics.
    started: std::time::Instant,
    request_id: String,
    client_request_id: Option<String>,
    /// Absolute service root of this request: the base URL plus `/v1.0` or `/beta` if the path had it.
    pub(crate) root: String,
}

/// Graph's correlation headers, named once: a `&str` name is parsed again on every use.
const REQUEST_ID: HeaderName = HeaderName::from_static("request-id");
const CLIENT_REQUEST_ID: HeaderName = HeaderName::from_static("client-request-id");

/// What a 503 asks the client to wait: the database restarting or failing over takes seconds.
const UNAVAILABLE_RETRY_AFTER_SECONDS: u64 = 2;

impl<'r> Call<'r> {
    pub(crate) fn new(rqctx: &'r RequestContext<AppContext>) -> Self {
        let client_request_id =
            rqctx.request.headers().get(&CLIENT_REQUEST_ID).and_then(|v| v.to_str().ok()).map(str::to_string);
        let path = rqctx.request.uri().path();
        let prefix = VERSION_PREFIXES
            .iter()
            .find(|p| path.strip_prefix(**p).is_some_and(|rest| rest.starts_with('/')))
            .copied()
            .unwrap_or("");
        Call {
            rqctx,
            started: std::time::Instant::now(),
            request_id: rqctx.request_id.clone(),
            client_request_id,
            root: [rqctx.context().base_url(), prefix].concat(),
        }
    }

    /// Runs a handler's `body` for a caller allowed to do `action`: a refused caller gets its 401/403,
    /// a failure its OData error, each with the request's ids.
    pub(crate) async fn run<R: SuccessStatus>(
        &self,
        action: Action,
        body: impl AsyncFnOnce(Caller) -> Result<R, GraphError>,
    ) -> Result<Answer<R>, GraphError> {
        let caller = match self.authenticate().await {
            Ok(caller) => caller,
            Err(refusal) => return self.measured(Ok(self.refused_caller(refusal))),
        };
        if let Some(throttled) = self.throttled(&caller) {
            return self.measured(Ok(throttled));
        }
        if let Err(refusal) = authorize(&caller, action) {
            return self.measured(Ok(self.refused_caller(refusal)));
        }
        self.measured(body(caller).await.map(Answer::Ok).map_err(|e| self.fail(e)))
    }

    /// Counts and times the answer `outcome` (and a refusal for its token), by operationId and status.
    fn measured<R: SuccessStatus>(&self, outcome: Result<Answer<R>, GraphError>) -> Result<Answer<R>, GraphError> {
        // A 503 says when to ask again, so that the client and Microsoft's SDKs retry by themselves.
        let outcome = match outcome {
            Err(error) if error.status() == http::StatusCode::SERVICE_UNAVAILABLE => {
                let mut headers = self.headers();
                headers.insert(header::RETRY_AFTER, HeaderValue::from(UNAVAILABLE_RETRY_AFTER_SECONDS));
                Ok(Answer::Refused { error, headers })
            }
            other => other,
        };
        let status = match &outcome {
            Ok(Answer::Ok(_)) => R::STATUS,
            Ok(Answer::Refused { error, .. }) | Err(error) => error.status().as_u16(),
        };
        let operation = crate::endpoint_names::operation_id(&self.rqctx.endpoint.operation_id);
        let elapsed = self.started.elapsed();
        let (context, request) = (self.rqctx.context(), &self.rqctx.request);
        slog::info!(context.requests_log, "request answered";
            "operation" => operation, "status" => status, "request_id" => &self.request_id,
            "client_request_id" => self.client_request_id.as_deref().unwrap_or(""),
            "latency_us" => elapsed.as_micros() as u64, "method" => request.method().as_str(),
            "uri" => crate::logging::RequestTarget(request.uri()),
            "remote_addr" => crate::logging::PeerAddress(request.remote_addr()));
        context.request_metrics.record(operation, status, elapsed.as_secs_f64());
        outcome
    }

    /// Like [`Call::run`], and records the outcome in the audit trail as `activity` on what the body
    /// says it concerns (`subject`, filled in as it learns it): done, failed, or refused for want of a
    /// permission. A caller without a valid token has no tenant, so no chain to record it in (it is
    /// logged).
    pub(crate) async fn run_audited<R: SuccessStatus>(
        &self,
        action: Action,
        activity: Activity,
        subject: Subject,
        body: impl AsyncFnOnce(Caller, &mut Subject) -> Result<R, GraphError>,
    ) -> Result<Answer<R>, GraphError> {
        let mut subject = subject;
        let caller = match self.authenticate().await {
            Ok(caller) => caller,
            Err(refusal) => return self.measured(Ok(self.refused_caller(refusal))),
        };
        if let Some(throttled) = self.throttled(&caller) {
            return self.measured(Ok(throttled));
        }
        if let Err(refusal) = authorize(&caller, action) {
            self.audit(&caller, activity, subject, Err(format!("refused: {refusal}"))).await;
            return self.measured(Ok(self.refused_caller(refusal)));
        }
        let outcome = body(caller.clone(), &mut subject).await;
        if subject.recorded {
            return self.measured(outcome.map(Answer::Ok).map_err(|e| self.fail(e)));
        }
        let recorded = match &outcome {
            Ok(_) => Ok(()),
            Err(e) => Err(format!("{}: {}", e.error.code, e.error.message)),
        };
        if let (Some(owner), Some(operation)) = (subject.owner.take(), subject.operation.as_deref()) {
            self.tell_owner(&caller, &owner, activity, operation);
        }
        self.audit(&caller, activity, subject, recorded).await;
        self.measured(outcome.map(Answer::Ok).map_err(|e| self.fail(e)))
    }

    /// How the submission of an operation by `caller` is recorded as `activity` (its success event, written
    /// in the operation's own commit): what `subject` knows, completed with the operation.
    fn submission(
        &self,
        caller: &Caller,
        activity: Activity,
        subject: &Subject,
    ) -> impl FnOnce(&crate::store::OperationRecord) -> crate::store::AuditEvent + use<> {
        let (caller, request_id, location) =
            (caller.clone(), self.request_id.clone(), subject.storage_location.clone());
        move |op| {
            let subject = Subject {
                user: Some(op.user_id.clone()),
                operation: Some(op.id.to_string()),
                storage_location: location,
                ..Subject::default()
            };
            audit_trail::event(&caller, activity, subject, Ok(()), &request_id)
        }
    }

    /// Records one event; a store that cannot record it is logged as an error (the answer stands: the
    /// operation already happened).
    async fn audit(&self, caller: &Caller, activity: Activity, subject: Subject, outcome: Result<(), String>) {
        let event = audit_trail::event(caller, activity, subject, outcome, &self.request_id);
        if let Err(e) = audit_trail::record(&self.rqctx.context().audit, event).await {
            slog::error!(self.rqctx.log, "recording an audit event failed"; "activity" => activity.name(), "error" => %e);
        }
    }

    /// `error` as a read answers it: an operation of another tenant is answered as not found, as Graph
    /// does, and recorded as a refused read in its owner's trail. Reads are not recorded otherwise.
    async fn refused_read(&self, caller: &Caller, error: OperationError) -> GraphError {
        if let OperationError::OtherTenant { id, owner } = &error {
            self.tell_owner(caller, owner, Activity::ReadOperation, &id.to_string());
        }
        error.into()
    }

    /// Records in `owner`'s trail that `caller`, of another tenant, was refused `activity` on its operation.
    /// Off the request's path: the answer must not take longer than an unknown id's, or its time would
    /// tell the caller that the operation exists.
    fn tell_owner(&self, caller: &Caller, owner: &str, activity: Activity, operation: &str) {
        let event = audit_trail::refused_for_owner(caller, owner, activity, operation, &self.request_id);
        let (store, log) = (self.rqctx.context().audit.clone(), self.rqctx.log.clone());
        tokio::spawn(async move {
            if let Err(e) = audit_trail::record(&store, event).await {
                slog::error!(log, "recording an audit event failed"; "activity" => activity.name(), "error" => %e);
            }
        });
    }

    /// The 429 of a caller over its (or its tenant's) request rate, if it is.
    fn throttled<R>(&self, caller: &Caller) -> Option<Answer<R>> {
        let over = self.rqctx.context().throttle.check(caller).err()?;
        metrics::counter!(dpo_domain::metric_names::THROTTLED, "scope" => over.scope).increment(1);
        let seconds = over.retry_after.as_secs();
        let error = GraphError::too_many_requests(format!(
            "Too many requests for this {}: retry after {seconds} s, as Retry-After says",
            over.scope
        ));
        let mut headers = self.headers();
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
        Some(Answer::Refused { error: self.fail(error), headers })
    }

    /// Who is calling: the checked token's caller.
    async fn authenticate(&self) -> Result<Caller, crate::auth::AuthError> {
        let token = self
            .rqctx
            .request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| crate::auth::AuthError::Unauthenticated {
                reason: crate::auth::TokenFailure::Missing,
                message: "Access token is empty: send Authorization: Bearer <token>".into(),
            })?;
        self.rqctx.context().tokens.check(token).await
    }

    /// The answer to a caller refused for its token (or its permissions), counted by reason.
    fn refused_caller<R>(&self, refusal: crate::auth::AuthError) -> Answer<R> {
        let reason = match &refusal {
            crate::auth::AuthError::Unauthenticated { reason, .. } => reason.as_str(),
            crate::auth::AuthError::Forbidden(_) => "forbidden",
        };
        metrics::counter!(dpo_domain::metric_names::TOKEN_FAILURES, "reason" => reason).increment(1);
        self.refused(refusal)
    }

    /// A refused caller's answer: 401 carries `WWW-Authenticate: Bearer`, which only an [`Answer`] can send.
    pub(crate) fn refused<R>(&self, error: impl Into<wire::Refusal>) -> Answer<R> {
        let wire::Refusal { error, challenge } = error.into();
        let mut headers = self.headers();
        if challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        Answer::Refused { error: self.fail(error), headers }
    }

    /// The headers of a download: [`Call::headers`], its media type, and the file name it is saved as.
    pub(crate) fn download_headers(&self, media_type: &'static str, file_name: &str) -> Result<HeaderMap, GraphError> {
        let mut headers = self.headers();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(media_type));
        let disposition = format!("attachment; filename=\"{file_name}\"");
        headers.insert(
            header::CONTENT_DISPOSITION,
            HeaderValue::from_str(&disposition).map_err(|e| GraphError::internal(e.to_string()))?,
        );
        Ok(headers)
    }

    /// `request-id` and the echoed `client-request-id`, as Graph sends them on every answer, and headers
    /// that keep answers about personal data out of caches and content sniffing.
    pub(crate) fn headers(&self) -> HeaderMap {
        // Room for these, an ETag or a Location, and Retry-After, without growing.
        let mut headers = HeaderMap::with_capacity(8);
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert(REQUEST_ID, v);
        }
        if let Some(v) = self.client_request_id.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(CLIENT_REQUEST_ID, v);
        }
        headers
    }

    /// The headers of an answer about one operation: ids plus its `ETag`.
    fn entity_headers(&self, op: &Operation) -> HeaderMap {
        let mut headers = self.headers();
        if let Ok(v) = HeaderValue::from_str(&op.etag()) {
            headers.insert(header::ETAG, v);
        }
        headers
    }

    /// The headers of an answer about one subject rights request: ids plus its `ETag`.
    fn request_headers(&self, record: &dpo_domain::requests::RequestRecord) -> Result<HeaderMap, GraphError> {
        let mut headers = self.headers();
        let etag =
            HeaderValue::from_str(&request_wire::etag(record)).map_err(|e| GraphError::internal(e.to_string()))?;
        headers.insert(header::ETAG, etag);
        Ok(headers)
    }

    /// The operation as a serialised JSON body with its `@odata.context`.
    fn entity(&self, op: &Operation, selected: Option<&[String]>) -> Result<Vec<u8>, GraphError> {
        wire::entity_body(op, &wire::context_url(&self.root, selected, true), selected)
    }

    /// `Location` of an operation, with the ids headers.
    fn location_headers(&self, op: &Operation, mut headers: HeaderMap) -> Result<HeaderMap, GraphError> {
        let location = format!("{}/dataPolicyOperations/{}", self.root, op.id);
        headers.insert(
            header::LOCATION,
            HeaderValue::from_str(&location).map_err(|e| GraphError::internal(e.to_string()))?,
        );
        Ok(headers)
    }

    /// Adds correlation data to a failure, and logs what the client is not told.
    pub(crate) fn fail(&self, error: impl Into<GraphError>) -> GraphError {
        let error = error.into();
        if let Some(detail) = error.internal_message() {
            slog::warn!(self.rqctx.log, "request failed"; "code" => &error.error.code, "detail" => detail);
        }
        error.with_inner_error(InnerError {
            request_id: Some(self.request_id.clone()),
            client_request_id: self.client_request_id.clone(),
            date: Some(Utc::now().trunc_subsecs(0)),
        })
    }

    /// One page of the collection, as the list's query string asks.
    /// The `@odata.nextLink` of a list at `path` (below the service root): the options it repeats
    /// (`pairs`), `$top`, then the next page's `$skiptoken`.
    pub(crate) fn next_link(&self, path: &str, repeated: Vec<(&str, &str)>, top: Option<u64>, token: &str) -> String {
        let top = top.map(|t| t.to_string());
        let mut pairs = repeated;
        pairs.extend(top.as_deref().map(|top| ("$top", top)));
        pairs.push(("$skiptoken", token));
        format!("{}{path}?{}", self.root, wire::link_query(&pairs))
    }

    /// A page of the caller's audit trail, as the body of `GET /auditLogs/directoryAudits`.
    async fn audit_list(&self, caller: &Caller, raw_query: &str) -> Result<Vec<u8>, GraphError> {
        let ctx = self.rqctx.context();
        let q = crate::directory_audits::parse_query(raw_query, &caller.tenant, crate::directory_audits::allowed::LIST)
            .map_err(crate::wire::query_error)?;
        let page = crate::directory_audits::page(&ctx.audit, &caller.tenant, &q, ctx.page_sizes())
            .await
            .map_err(OperationError::from)?;
        let selected = q.select.as_deref();
        let value = page
            .events
            .iter()
            .map(|event| {
                projected(&crate::directory_audits::directory_audit(event), selected).map(serde_json::Value::Object)
            })
            .collect::<Result<Vec<_>, _>>()?;
        let mut body = serde_json::Map::new();
        let context = format!("{}/$metadata#auditLogs/directoryAudits{}", self.root, wire::projection(selected));
        body.insert("@odata.context".into(), context.into());
        body.insert("value".into(), value.into());
        if let Some(token) = page.next {
            let repeated = q.repeated.iter().map(|(n, v)| (*n, v.as_str())).collect();
            let link = self.next_link("/auditLogs/directoryAudits", repeated, q.top, &token);
            body.insert("@odata.nextLink".into(), link.into());
        }
        serde_json::to_vec(&body).map_err(wire::internal)
    }

    async fn list(&self, caller: &Caller, raw_query: &str) -> Result<Vec<u8>, GraphError> {
        let ctx = self.rqctx.context();
        let q = query::parse_for_tenant(&DATA_POLICY_OPERATION, raw_query, allowed::LIST, &caller.tenant)
            .map_err(crate::wire::query_error)?;
        let selected = q.select.clone();
        let raw = q.raw.clone();
        let count = q.count;
        let top = q.top;
        let page = ctx.operations.list(&caller.tenant, q, ctx.page_sizes()).await?;
        let next_link = page
            .next
            .map(|token| self.next_link("/dataPolicyOperations", repeated_options(&raw, count), top, &token.encode()));
        let context = wire::context_url(&self.root, selected.as_deref(), false);
        let annotations =
            wire::PageAnnotations { context: &context, count: page.total, next_link: next_link.as_deref() };
        wire::collection_body(&page.items, selected.as_deref(), annotations)
    }
}

/// The options a next link repeats: those the list was asked with (`$top` and `$skiptoken` apart).
fn repeated_options(raw: &query::RawOptions, count: bool) -> Vec<(&'static str, &str)> {
    let mut pairs: Vec<(&'static str, &str)> =
        [("$filter", &raw.filter), ("$search", &raw.search), ("$orderby", &raw.orderby), ("$select", &raw.select)]
            .into_iter()
            .filter_map(|(name, value)| value.as_deref().map(|v| (name, v)))
            .collect();
    if count {
        pairs.push(("$count", "true"));
    }
    pairs
}

/// `approve`, `reject` or `close` on a request: the action, audited as its activity.
async fn act_on_request(
    rqctx: RequestContext<AppContext>,
    path: Path<RequestPath>,
    body: CheckedBody<RequestAction>,
    action: crate::subject_rights::StageAction,
) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
    use crate::subject_rights::StageAction;
    let activity = match action {
        StageAction::Approve => Activity::ApproveRequest,
        StageAction::Reject => Activity::RejectRequest,
        StageAction::Close => Activity::CloseRequest,
    };
    let call = Call::new(&rqctx);
    call.run_audited(Action::WriteRequests, activity, Subject::default(), async |caller, subject| {
        let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
        subject.operation = Some(id.to_string());
        let input = body.read(&rqctx).await?;
        let now = Utc::now().trunc_subsecs(3);
        let comment = input.comment.clone();
        let record = rqctx.context().requests.act(&caller, id, action, input.comment, now).await?;
        // The trail says what was approved or rejected (the stage) and the comment given with it.
        let stage = record.request.history.last().and_then(|h| h.stage).map_or("-", |s| s.as_str());
        subject.detail = Some(match comment.filter(|c| !c.trim().is_empty()) {
            Some(comment) => format!("{} at {stage}: {comment}", action.name()),
            None => format!("{} at {stage}", action.name()),
        });
        let headers = call.request_headers(&record)?;
        Ok(ShapedOk::new(request_wire::request_body(&call.root, &record, None)?, headers))
    })
    .await
}

/// `entity` as a JSON object, only its `selected` properties if some are.
fn projected(
    entity: &dpo_api::directory_audit::DirectoryAudit,
    selected: Option<&[String]>,
) -> Result<serde_json::Map<String, serde_json::Value>, GraphError> {
    let json = serde_json::to_value(entity).map_err(wire::internal)?;
    let serde_json::Value::Object(mut object) = json else {
        return Err(GraphError::internal("a directoryAudit is not a JSON object"));
    };
    if let Some(names) = selected {
        object.retain(|name, _| names.iter().any(|n| n == name));
    }
    Ok(object)
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 9110
/// §11.1) and may be followed by more than one space.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

impl DataPolicyOperationsApi for DpoApi {
    type Context = AppContext;

    async fn list_data_policy_operations(
        rqctx: RequestContext<AppContext>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperationCollection>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::Read, async |caller| Ok(ShapedOk::new(call.list(&caller, query.raw()).await?, call.headers())))
            .await
    }

    async fn create_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedCreated<DataPolicyOperation>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(Action::Export, Activity::CreateOperation, Subject::default(), async |caller, subject| {
            let input = body.read(&rqctx).await?;
            subject.user = input.user_id.clone();
            subject.storage_location = input.storage_location.clone();
            let recorded_as = call.submission(&caller, Activity::CreateOperation, subject);
            let op = rqctx.context().operations.create(&caller.tenant, &input, recorded_as).await?;
            subject.recorded = true;
            let headers = call.location_headers(&op, call.entity_headers(&op))?;
            Ok(ShapedCreated::new(call.entity(&op, None)?, headers))
        })
        .await
    }

    async fn get_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCount>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::Read, async |caller| {
            let ctx = rqctx.context();
            let id = path.into_inner().id;
            // dropshot routes `/dataPolicyOperations/$count` here (it cannot route it beside `{id}`).
            if id == "$count" {
                let q = query::parse(&DATA_POLICY_OPERATION, query.raw(), allowed::COUNT)
                    .map_err(crate::wire::query_error)?;
                let count = ctx.operations.count(&caller.tenant, q).await?;
                return Ok(EntityOrCount::Count { count, headers: call.headers() });
            }
            let q =
                query::parse(&DATA_POLICY_OPERATION, query.raw(), allowed::ENTITY).map_err(crate::wire::query_error)?;
            let op = match ctx.operations.get(&caller.tenant, &id).await {
                Ok(op) => op,
                Err(e) => return Err(call.refused_read(&caller, e).await),
            };
            let mut headers = call.entity_headers(&op);
            if !op.status.is_final() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(ctx.config.retry_after_seconds));
            }
            Ok(EntityOrCount::Entity { body: call.entity(&op, q.select.as_deref())?, headers })
        })
        .await
    }

    async fn update_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperation>>, GraphError> {
        let call = Call::new(&rqctx);
        let id = path.into_inner().id;
        let subject = Subject { operation: Some(id.clone()), ..Subject::default() };
        call.run_audited(Action::Export, Activity::UpdateOperation, subject, async |caller, subject| {
            let if_match = rqctx.request.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok());
            let precondition = wire::precondition(if_match);
            let patch = body.read(&rqctx).await?;
            subject.storage_location = patch.storage_location.clone();
            let op = match rqctx.context().operations.update(&caller.tenant, &id, &patch, precondition).await {
                Ok(op) => op,
                Err(e) => return Err(subject.note(e)),
            };
            subject.user = op.user_id.clone().into();
            Ok(ShapedOk::new(call.entity(&op, None)?, call.entity_headers(&op)))
        })
        .await
    }

    async fn delete_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        if_match: Header<IfMatchHeader>,
    ) -> Result<Answer<NoContent>, GraphError> {
        let call = Call::new(&rqctx);
        let id = path.into_inner().id;
        let subject = Subject { operation: Some(id.clone()), ..Subject::default() };
        call.run_audited(Action::Export, Activity::CancelOperation, subject, async |caller, subject| {
            let precondition = wire::precondition(if_match.into_inner().if_match.as_deref());
            if let Err(e) = rqctx.context().operations.delete(&caller.tenant, &id, precondition).await {
                return Err(subject.note(e));
            }
            Ok(NoContent { headers: call.headers() })
        })
        .await
    }

    async fn export_personal_data(
        rqctx: RequestContext<AppContext>,
        path: Path<UserPath>,
        body: CheckedBody<ExportPersonalDataRequest>,
    ) -> Result<Answer<AcceptedNoContent<ExportAcceptedHeaders>>, GraphError> {
        let call = Call::new(&rqctx);
        let user = path.into_inner().user_id;
        let subject = Subject { user: Some(user.clone()), ..Subject::default() };
        call.run_audited(Action::Export, Activity::ExportPersonalData, subject, async |caller, subject| {
            let ctx = rqctx.context();
            let request = body.read(&rqctx).await?;
            subject.storage_location = request.storage_location.clone();
            let recorded_as = call.submission(&caller, Activity::ExportPersonalData, subject);
            let location = request.storage_location.as_deref();
            let op = ctx.operations.submit_export(&caller.tenant, &user, location, recorded_as).await?;
            subject.recorded = true;
            let mut accepted = AcceptedNoContent::new(ExportAcceptedHeaders {
                location: format!("{}/dataPolicyOperations/{}", call.root, op.id),
                retry_after: ctx.config.retry_after_seconds,
            });
            accepted.extra_headers = call.headers();
            Ok(accepted)
        })
        .await
    }

    async fn list_directory_audits(
        rqctx: RequestContext<AppContext>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<DirectoryAuditCollection>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::ReadAudit, async |caller| {
            Ok(ShapedOk::new(call.audit_list(&caller, query.raw()).await?, call.headers()))
        })
        .await
    }

    async fn get_directory_audit(
        rqctx: RequestContext<AppContext>,
        path: Path<DirectoryAuditPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<ShapedOk<DirectoryAudit>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::ReadAudit, async |caller| {
            let id = path.into_inner().id;
            let q = crate::directory_audits::parse_query(query.raw(), &caller.tenant, crate::directory_audits::allowed::ENTITY)
                .map_err(crate::wire::query_error)?;
            let event = crate::directory_audits::one(&rqctx.context().audit, &caller.tenant, &id)
                .await
                .map_err(OperationError::from)?
                .ok_or_else(|| GraphError::resource_not_found(format!("Resource '{id}' does not exist or one of its queried reference-property objects are not present.")))?;
            let selected = q.select.as_deref();
            let mut body = projected(&crate::directory_audits::directory_audit(&event), selected)?;
            let context = format!("{}/$metadata#auditLogs/directoryAudits{}/$entity", call.root, wire::projection(selected));
            body.insert("@odata.context".into(), context.into());
            let body = serde_json::to_vec(&body).map_err(wire::internal)?;
            Ok(ShapedOk::new(body, call.headers()))
        })
        .await
    }

    async fn list_subject_rights_requests(
        rqctx: RequestContext<AppContext>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequestCollection>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::ReadRequests, async |caller| {
            let ctx = rqctx.context();
            let q = query::parse_for_tenant(&SUBJECT_RIGHTS_REQUEST, query.raw(), allowed::REQUESTS, &caller.tenant)
                .map_err(crate::wire::query_error)?;
            let (selected, raw, count, top) = (q.select.clone(), q.raw.clone(), q.count, q.top);
            let sizes = ctx.page_sizes();
            let page = ctx.requests.list(&caller.tenant, q, sizes.default, sizes.max).await?;
            let next_link = page.next.map(|token| {
                call.next_link(request_wire::COLLECTION, repeated_options(&raw, count), top, &token.encode())
            });
            let body =
                request_wire::requests_page(&call.root, &page.items, selected.as_deref(), page.total, next_link)?;
            Ok(ShapedOk::new(body, call.headers()))
        })
        .await
    }

    async fn create_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedCreated<SubjectRightsRequest>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(Action::WriteRequests, Activity::CreateRequest, Subject::default(), async |caller, subject| {
            let input = body.read_object(&rqctx).await?;
            let record = rqctx.context().requests.create(&caller, input, Utc::now().trunc_subsecs(3)).await?;
            subject.operation = Some(record.id.to_string());
            let mut headers = call.request_headers(&record)?;
            let location = format!("{}{}/{}", call.root, request_wire::COLLECTION, record.id);
            headers.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|e| GraphError::internal(e.to_string()))?,
            );
            Ok(ShapedCreated::new(request_wire::request_body(&call.root, &record, None)?, headers))
        })
        .await
    }

    async fn get_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCountOf<SubjectRightsRequest>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::ReadRequests, async |caller| {
            let id = path.into_inner().id;
            // dropshot routes `/security/subjectRightsRequests/$count` here (it cannot route it beside `{id}`).
            if id == "$count" {
                let q = query::parse(&SUBJECT_RIGHTS_REQUEST, query.raw(), allowed::REQUEST_COUNT)
                    .map_err(crate::wire::query_error)?;
                let count = rqctx.context().requests.count(&caller.tenant, q).await?;
                return Ok(EntityOrCountOf::Count { count, headers: call.headers() });
            }
            let q = query::parse(&SUBJECT_RIGHTS_REQUEST, query.raw(), allowed::ENTITY)
                .map_err(crate::wire::query_error)?;
            let id = crate::subject_rights::parse_id(&id)?;
            let record = rqctx.context().requests.get(&caller.tenant, id).await?;
            let headers = call.request_headers(&record)?;
            let body = request_wire::request_body(&call.root, &record, q.select.as_deref())?;
            Ok(EntityOrCountOf::Entity { body, headers })
        })
        .await
    }

    async fn update_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(Action::WriteRequests, Activity::UpdateRequest, Subject::default(), async |caller, subject| {
            let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
            subject.operation = Some(id.to_string());
            let input = body.read_object(&rqctx).await?;
            let record = rqctx.context().requests.update(&caller, id, input, Utc::now().trunc_subsecs(3)).await?;
            let headers = call.request_headers(&record)?;
            Ok(ShapedOk::new(request_wire::request_body(&call.root, &record, None)?, headers))
        })
        .await
    }

    async fn list_subject_rights_request_notes(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<AuthoredNoteCollection>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run(Action::ReadRequests, async |caller| {
            let ctx = rqctx.context();
            let q = query::parse(&NOTES, query.raw(), allowed::NOTES).map_err(crate::wire::query_error)?;
            let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
            let sizes = ctx.page_sizes();
            let size = q.top.map_or(sizes.default, |top| top.min(sizes.max));
            let after = match &q.skiptoken {
                Some(token) => token.last_id.parse::<i64>().map_err(|_| {
                    GraphError::bad_request("Invalid $skiptoken: use the @odata.nextLink of the previous page as it is")
                        .with_target("$skiptoken")
                })?,
                None => 0,
            };
            let (mut notes, total) =
                ctx.requests.notes(&caller.tenant, id, after, size.saturating_add(1), q.count).await?;
            let next_link = if notes.len() as u64 > size {
                notes.truncate(size as usize);
                notes.last().map(|(seq, _)| {
                    let token = dpo_domain::odata::skiptoken::SkipToken {
                        keys: Vec::new(),
                        last_id: seq.to_string(),
                        query: q.fingerprint.clone(),
                    };
                    let pairs = repeated_options(&q.raw, q.count);
                    call.next_link(&format!("{}/{id}/notes", request_wire::COLLECTION), pairs, q.top, &token.encode())
                })
            } else {
                None
            };
            let notes: Vec<_> = notes.into_iter().map(|(_, n)| n).collect();
            Ok(ShapedOk::new(request_wire::notes_page(&call.root, id, &notes, total, next_link)?, call.headers()))
        })
        .await
    }

    async fn create_subject_rights_request_note(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<AuthoredNote>,
    ) -> Result<Answer<ShapedCreated<AuthoredNote>>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(
            Action::WriteRequests,
            Activity::AddRequestNote,
            Subject::default(),
            async |caller, subject| {
                let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
                subject.operation = Some(id.to_string());
                let input = body.read_object(&rqctx).await?;
                let note = rqctx.context().requests.add_note(&caller, id, input, Utc::now().trunc_subsecs(3)).await?;
                let mut headers = call.headers();
                let location = format!("{}{}/{id}/notes/{}", call.root, request_wire::COLLECTION, note.id);
                headers.insert(
                    header::LOCATION,
                    HeaderValue::from_str(&location).map_err(|e| GraphError::internal(e.to_string()))?,
                );
                Ok(ShapedCreated::new(request_wire::note_body(&call.root, &note)?, headers))
            },
        )
        .await
    }

    async fn get_final_report(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(Action::ReadRequests, Activity::DownloadReport, Subject::default(), async |caller, subject| {
            let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
            subject.operation = Some(id.to_string());
            let record = rqctx.context().requests.with_report(&caller.tenant, id, "getFinalReport").await?;
            let headers = call.download_headers("text/plain; charset=utf-8", &format!("report-{id}.txt"))?;
            let report = record.report.ok_or_else(|| GraphError::internal(format!("request {id} has no report")))?;
            Ok(Download { body: dropshot::Body::from(report), headers })
        })
        .await
    }

    async fn get_final_attachment(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError> {
        let call = Call::new(&rqctx);
        call.run_audited(
            Action::ReadRequests,
            Activity::DownloadAttachment,
            Subject::default(),
            async |caller, subject| {
                let id = crate::subject_rights::parse_id(&path.into_inner().id)?;
                subject.operation = Some(id.to_string());
                rqctx.context().requests.with_report(&caller.tenant, id, "getFinalAttachment").await?;
                let attachment = crate::export::attachment::Attachment::open(&rqctx.context().requests_store, id)
                    .await
                    .map_err(|e| GraphError::internal(format!("the collection of request {id} cannot be read: {e}")))?;
                let headers = call.download_headers("application/zip", &format!("request-{id}.zip"))?;
                let frames = futures::StreamExt::map(attachment.stream(), |chunk| chunk.map(http_body::Frame::data));
                Ok(Download { body: dropshot::Body::wrap(http_body_util::StreamBody::new(frames)), headers })
            },
        )
        .await
    }

    async fn approve_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
        act_on_request(rqctx, path, body, crate::subject_rights::StageAction::Approve).await
    }

    async fn reject_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
        act_on_request(rqctx, path, body, crate::subject_rights::StageAction::Reject).await
    }

    async fn close_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
        act_on_request(rqctx, path, body, crate::subject_rights::StageAction::Close).await
    }

    async fn privacy_list_subject_rights_requests(
        rqctx: RequestContext<AppContext>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequestCollection>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::list_subject_rights_requests(rqctx, query).await
    }

    async fn privacy_create_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedCreated<SubjectRightsRequest>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::create_subject_rights_request(rqctx, body).await
    }

    async fn privacy_get_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCountOf<SubjectRightsRequest>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::get_subject_rights_request(rqctx, path, query).await
    }

    async fn privacy_update_subject_rights_request(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::update_subject_rights_request(rqctx, path, body).await
    }

    async fn privacy_list_subject_rights_request_notes(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<AuthoredNoteCollection>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::list_subject_rights_request_notes(rqctx, path, query).await
    }

    async fn privacy_create_subject_rights_request_note(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
        body: CheckedBody<AuthoredNote>,
    ) -> Result<Answer<ShapedCreated<AuthoredNote>>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::create_subject_rights_request_note(rqctx, path, body).await
    }

    async fn privacy_get_final_report(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::get_final_report(rqctx, path).await
    }

    async fn privacy_get_final_attachment(
        rqctx: RequestContext<AppContext>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError> {
        <DpoApi as DataPolicyOperationsApi>::get_final_attachment(rqctx, path).await
    }
}
