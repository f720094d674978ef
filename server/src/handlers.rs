//! The HTTP handlers: parse the request, call the domain, shape the answer. Every failure leaves as an
//! OData error carrying the request's ids (`innerError`).

use crate::{
    auth::{
        AuthError, Caller,
        permissions::{Action, authorize},
        verified::TokenVerifier,
    },
    config::ServerConfig,
    odata::query::{self, allowed},
    operations::{Operation, OperationService, PageSizes},
    wire,
};
use chrono::{SubsecRound, Utc};
use dpo_api::extract::{CheckedBody, CheckedQuery};
use dpo_api::{
    DataPolicyOperationsApi, GraphError,
    error::InnerError,
    model::{DataPolicyOperation, DataPolicyOperationCollection, ExportPersonalDataRequest},
    params::{GetQuery, IfMatchHeader, ListQuery, OperationPath, UserPath},
    responses::{AcceptedNoContent, Answer, EntityOrCount, ExportAcceptedHeaders, NoContent, ShapedCreated, ShapedOk},
};
use dropshot::{ErrorStatusCode, Header, Path, RequestContext};
use http::{HeaderMap, HeaderValue, header};
use std::sync::OnceLock;

/// Path prefixes the API also answers under, as Graph's service roots (`https://graph.microsoft.com/v1.0`).
pub const VERSION_PREFIXES: [&str; 2] = ["/v1.0", "/beta"];

/// State the handlers share.
pub struct AppContext {
    /// The operations service.
    pub operations: OperationService,
    /// The server's settings.
    pub config: ServerConfig,
    /// Absolute base URL of the server, without a trailing slash; set once the listener is bound.
    pub base_url: OnceLock<String>,
    /// Checks bearer tokens.
    pub tokens: TokenVerifier,
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

/// Per-request facts every answer needs: ids for correlation and the service root the client used.
struct Call {
    request_id: String,
    client_request_id: Option<String>,
    /// Absolute service root of this request: the base URL plus `/v1.0` or `/beta` if the path had it.
    root: String,
}

impl Call {
    fn new(rqctx: &RequestContext<AppContext>) -> Self {
        let client_request_id =
            rqctx.request.headers().get("client-request-id").and_then(|v| v.to_str().ok()).map(str::to_string);
        let path = rqctx.request.uri().path();
        let prefix = VERSION_PREFIXES
            .iter()
            .find(|p| path.strip_prefix(**p).is_some_and(|rest| rest.starts_with('/')))
            .copied()
            .unwrap_or("");
        Call {
            request_id: rqctx.request_id.clone(),
            client_request_id,
            root: format!("{}{prefix}", rqctx.context().base_url()),
        }
    }

    /// `request-id` and the echoed `client-request-id`, as Graph sends them on every answer, and headers
    /// that keep answers about personal data out of caches and content sniffing.
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("request-id", v);
        }
        if let Some(v) = self.client_request_id.as_deref().and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert("client-request-id", v);
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

    /// The operation as a serialised JSON body with its `@odata.context`.
    fn entity(&self, op: &Operation, selected: Option<&[String]>) -> Result<Vec<u8>, GraphError> {
        wire::entity_body(op, &wire::context_url(&self.root, selected, true), selected)
    }

    /// Adds correlation data to a failure, and logs what the client is not told.
    fn fail(&self, rqctx: &RequestContext<AppContext>, error: impl Into<GraphError>) -> GraphError {
        let error = error.into();
        if let Some(detail) = error.internal_message() {
            slog::warn!(rqctx.log, "request failed"; "code" => &error.error.code, "detail" => detail);
        }
        error.with_inner_error(InnerError {
            request_id: Some(self.request_id.clone()),
            client_request_id: self.client_request_id.clone(),
            date: Some(Utc::now().trunc_subsecs(0)),
        })
    }
}

/// Authenticates and authorizes the request, or returns early with the refusal (401 carries
/// `WWW-Authenticate: Bearer`, which only an [`Answer`] can send).
macro_rules! authorized {
    ($call:expr, $rqctx:expr, $action:expr) => {
        match $call.authorize(&$rqctx, $action) {
            Ok(caller) => caller,
            Err(refusal) => {
                let (error, headers) = *refusal;
                return Ok(Answer::Refused { error, headers });
            }
        }
    };
}

impl Call {
    /// Who is calling, if they may do `action`.
    fn authorize(
        &self,
        rqctx: &RequestContext<AppContext>,
        action: Action,
    ) -> Result<Caller, Box<(GraphError, HeaderMap)>> {
        let ctx = rqctx.context();
        let token = rqctx
            .request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(bearer_credentials);
        let outcome = match token {
            None | Some("") => {
                Err(AuthError::Unauthenticated("Access token is empty: send Authorization: Bearer <token>".into()))
            }
            Some(token) => ctx.tokens.check(token),
        }
        .and_then(|caller| authorize(&caller, action).map(|()| caller));
        outcome.map_err(|e| {
            let mut headers = self.headers();
            let error = match e {
                AuthError::Unauthenticated(message) => {
                    headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
                    GraphError::new(ErrorStatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message)
                }
                AuthError::Forbidden(message) => {
                    GraphError::new(ErrorStatusCode::FORBIDDEN, "Authorization_RequestDenied", message)
                }
            };
            Box::new((self.fail(rqctx, error), headers))
        })
    }
}

/// The token of an `Authorization: Bearer <token>` header; the scheme is case-insensitive (RFC 9110
/// §11.1) and may be followed by more than one space.
fn bearer_credentials(header: &str) -> Option<&str> {
    let (scheme, token) = header.trim_start().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
}

fn raw_query(rqctx: &RequestContext<AppContext>) -> &str {
    rqctx.request.uri().query().unwrap_or_default()
}

impl DpoApi {
    async fn list(rqctx: &RequestContext<AppContext>, call: &Call, caller: &Caller) -> Result<Vec<u8>, GraphError> {
        let ctx = rqctx.context();
        let q = query::parse_for_tenant(raw_query(rqctx), allowed::LIST, &caller.tenant)?;
        let selected = q.select.clone();
        let raw = q.raw.clone();
        let count = q.count;
        let top = q.top.map(|top| top.to_string());
        let page = ctx.operations.list(&caller.tenant, q, ctx.page_sizes()).await?;
        let next_link = page.next.map(|token| {
            let token = token.encode();
            let mut pairs: Vec<(&str, &str)> = Vec::new();
            for (name, value) in [
                ("$filter", &raw.filter),
                ("$search", &raw.search),
                ("$orderby", &raw.orderby),
                ("$select", &raw.select),
            ] {
                if let Some(v) = value {
                    pairs.push((name, v));
                }
            }
            if count {
                pairs.push(("$count", "true"));
            }
            if let Some(top) = &top {
                pairs.push(("$top", top));
            }
            pairs.push(("$skiptoken", &token));
            format!("{}/dataPolicyOperations?{}", call.root, wire::link_query(&pairs))
        });
        let context = wire::context_url(&call.root, selected.as_deref(), false);
        let annotations =
            wire::PageAnnotations { context: &context, count: page.total, next_link: next_link.as_deref() };
        wire::collection_body(&page.items, selected.as_deref(), annotations)
    }
}

impl DataPolicyOperationsApi for DpoApi {
    type Context = AppContext;

    async fn list_data_policy_operations(
        rqctx: RequestContext<AppContext>,
        query: CheckedQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperationCollection>>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Read);
        query.into_inner().map_err(|e| call.fail(&rqctx, e))?;
        match DpoApi::list(&rqctx, &call, &caller).await {
            Ok(body) => Ok(Answer::Ok(ShapedOk::new(body, call.headers()))),
            Err(e) => Err(call.fail(&rqctx, e)),
        }
    }

    async fn create_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedCreated<DataPolicyOperation>>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Export);
        let answer = async {
            let op = rqctx.context().operations.create(&caller.tenant, &body.into_inner()?).await?;
            let mut headers = call.entity_headers(&op);
            let location = format!("{}/dataPolicyOperations/{}", call.root, op.id);
            headers.insert(
                header::LOCATION,
                HeaderValue::from_str(&location).map_err(|e| GraphError::internal(e.to_string()))?,
            );
            Ok::<_, GraphError>(Answer::Ok(ShapedCreated::new(call.entity(&op, None)?, headers)))
        };
        answer.await.map_err(|e| call.fail(&rqctx, e))
    }

    async fn get_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        query: CheckedQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCount>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Read);
        query.into_inner().map_err(|e| call.fail(&rqctx, e))?;
        let ctx = rqctx.context();
        let id = path.into_inner().id;
        let answer = async {
            if id == "$count" {
                let q = query::parse(raw_query(&rqctx), allowed::COUNT)?;
                let count = ctx.operations.count(&caller.tenant, q).await?;
                return Ok::<_, GraphError>(Answer::Ok(EntityOrCount::Count { count, headers: call.headers() }));
            }
            let q = query::parse(raw_query(&rqctx), allowed::ENTITY)?;
            let op = ctx.operations.get(&caller.tenant, &id).await?;
            let mut headers = call.entity_headers(&op);
            if !op.status.is_final() {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(ctx.config.retry_after_seconds));
            }
            Ok(Answer::Ok(EntityOrCount::Entity { body: call.entity(&op, q.select.as_deref())?, headers }))
        };
        answer.await.map_err(|e| call.fail(&rqctx, e))
    }

    async fn update_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperation>>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Export);
        let if_match = rqctx.request.headers().get(header::IF_MATCH).and_then(|v| v.to_str().ok());
        let precondition = wire::precondition(if_match);
        let answer = async {
            let op = rqctx
                .context()
                .operations
                .update(&caller.tenant, &path.into_inner().id, &body.into_inner()?, precondition)
                .await?;
            Ok::<_, GraphError>(Answer::Ok(ShapedOk::new(call.entity(&op, None)?, call.entity_headers(&op))))
        };
        answer.await.map_err(|e| call.fail(&rqctx, e))
    }

    async fn delete_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        if_match: Header<IfMatchHeader>,
    ) -> Result<Answer<NoContent>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Export);
        let precondition = wire::precondition(if_match.into_inner().if_match.as_deref());
        match rqctx.context().operations.delete(&caller.tenant, &path.into_inner().id, precondition).await {
            Ok(()) => Ok(Answer::Ok(NoContent { headers: call.headers() })),
            Err(e) => Err(call.fail(&rqctx, e)),
        }
    }

    async fn export_personal_data(
        rqctx: RequestContext<AppContext>,
        path: Path<UserPath>,
        body: CheckedBody<ExportPersonalDataRequest>,
    ) -> Result<Answer<AcceptedNoContent<ExportAcceptedHeaders>>, GraphError> {
        let call = Call::new(&rqctx);
        let caller = authorized!(call, rqctx, Action::Export);
        let ctx = rqctx.context();
        let request = body.into_inner().map_err(|e| call.fail(&rqctx, e))?;
        match ctx
            .operations
            .submit_export(&caller.tenant, &path.into_inner().user_id, request.storage_location.as_deref())
            .await
        {
            Ok(op) => {
                let mut accepted = AcceptedNoContent::new(ExportAcceptedHeaders {
                    location: format!("{}/dataPolicyOperations/{}", call.root, op.id),
                    retry_after: ctx.config.retry_after_seconds,
                });
                accepted.extra_headers = call.headers();
                Ok(Answer::Ok(accepted))
            }
            Err(e) => Err(call.fail(&rqctx, e)),
        }
    }
}

/// Answers a method the collection does not support.
pub async fn method_not_allowed(rqctx: RequestContext<AppContext>) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "GET, POST"))
}

/// Answers a method a single operation does not support.
pub async fn method_not_allowed_on_operation(
    rqctx: RequestContext<AppContext>,
    path: Path<OperationPath>,
) -> Result<Answer<NoContent>, GraphError> {
    // The same route serves `/dataPolicyOperations/$count`, which only answers GET.
    let allow = if path.into_inner().id == "$count" { "GET" } else { "GET, PATCH, DELETE" };
    Ok(not_allowed(&rqctx, allow))
}

/// Answers a method the user action does not support.
pub async fn method_not_allowed_on_user(
    rqctx: RequestContext<AppContext>,
    _path: Path<UserPath>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "POST"))
}

/// Path variables of a route below an operation, e.g. `/dataPolicyOperations/{id}/foo/bar`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct BelowOperation {
    #[serde(rename = "dataPolicyOperation-id")]
    _id: String,
    segment: String,
    #[serde(rename = "rest")]
    _rest: Vec<String>,
}

/// Path variables of a route below the export action, e.g. `/users/{id}/exportPersonalData/foo`.
#[derive(serde::Deserialize, schemars::JsonSchema)]
pub struct BelowExport {
    #[serde(rename = "user-id")]
    _user: String,
    segment: String,
    #[serde(rename = "rest")]
    _rest: Vec<String>,
}

/// Answers a path below a single operation, which has no further resources.
pub async fn unknown_below_operation(
    rqctx: RequestContext<AppContext>,
    path: Path<BelowOperation>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(unknown_segment(&rqctx, &path.into_inner().segment))
}

/// Answers a path below the export action, which has no further resources.
pub async fn unknown_below_export(
    rqctx: RequestContext<AppContext>,
    path: Path<BelowExport>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(unknown_segment(&rqctx, &path.into_inner().segment))
}

/// Answers a user, which dpo knows only as the subject of the export action.
pub async fn unknown_user_resource(
    rqctx: RequestContext<AppContext>,
    path: Path<UserPath>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(unknown_segment(&rqctx, &path.into_inner().user_id))
}

/// Answers a service root or `/users`, which have no resources of their own here.
pub async fn unknown_resource(rqctx: RequestContext<AppContext>) -> Result<Answer<NoContent>, GraphError> {
    let path = rqctx.request.uri().path().trim_end_matches('/');
    let segment = path.rsplit('/').next().unwrap_or_default();
    if segment.is_empty() || VERSION_PREFIXES.contains(&path) {
        let message = "The service root has no content: use /dataPolicyOperations or /users/{id}/exportPersonalData \
                       below it.";
        return Ok(bad_path(&rqctx, message));
    }
    Ok(unknown_segment(&rqctx, segment))
}

/// 400 naming the first segment of the path that names nothing, in Graph's words.
fn unknown_segment(rqctx: &RequestContext<AppContext>, segment: &str) -> Answer<NoContent> {
    bad_path(rqctx, format!("Resource not found for the segment '{segment}'."))
}

/// 400 `BadRequest` for a path that names nothing, saying why.
fn bad_path(rqctx: &RequestContext<AppContext>, message: impl Into<String>) -> Answer<NoContent> {
    let call = Call::new(rqctx);
    let error = call.fail(rqctx, GraphError::bad_request(message));
    Answer::Refused { error, headers: call.headers() }
}

/// 405 with the `Allow` header HTTP requires; for `OPTIONS`, 204 with `Allow`.
fn not_allowed(rqctx: &RequestContext<AppContext>, allow: &'static str) -> Answer<NoContent> {
    if rqctx.request.method() == http::Method::OPTIONS {
        let mut headers = Call::new(rqctx).headers();
        headers.insert(header::ALLOW, HeaderValue::from_static(allow));
        return Answer::Ok(NoContent { headers });
    }
    let call = Call::new(rqctx);
    let method = rqctx.request.method().clone();
    let path = rqctx.request.uri().path().to_string();
    let error = call.fail(
        rqctx,
        GraphError::new(
            dropshot::ErrorStatusCode::METHOD_NOT_ALLOWED,
            dpo_api::error::codes::METHOD_NOT_ALLOWED,
            format!("The HTTP method '{method}' is not allowed for the resource {path}; allowed: {allow}"),
        ),
    );
    let mut headers = call.headers();
    headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    Answer::Refused { error, headers }
}
