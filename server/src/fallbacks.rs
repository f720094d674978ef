//! Answers for requests the API's operations do not take, registered beside them by [`crate::routes`]:
//! an OData `405` with `Allow` for another method on a known path (`OPTIONS`: `204` with `Allow`), and
//! Graph's `400` "Resource not found for the segment …" for a path that names nothing.

use crate::{
    endpoint_names::VERSION_PREFIXES,
    handlers::{AppContext, Call},
    wire,
};
use dpo_api::{
    GraphError,
    params::{DirectoryAuditPath, OperationPath, RequestPath, UserPath},
    responses::{Answer, NoContent},
};
use dropshot::{Path, RequestContext};
use http::{HeaderValue, header};

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

/// Answers a method a subject rights request does not support.
pub async fn method_not_allowed_on_request(
    rqctx: RequestContext<AppContext>,
    path: Path<RequestPath>,
) -> Result<Answer<NoContent>, GraphError> {
    // The same route serves `.../subjectRightsRequests/$count`, which only answers GET.
    let allow = if path.into_inner().id == "$count" { "GET" } else { "GET, PATCH" };
    Ok(not_allowed(&rqctx, allow))
}

/// Answers a method a request's notes do not support.
pub async fn method_not_allowed_on_notes(
    rqctx: RequestContext<AppContext>,
    _path: Path<RequestPath>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "GET, POST"))
}

/// Answers a method the user action does not support.
pub async fn method_not_allowed_on_user(
    rqctx: RequestContext<AppContext>,
    _path: Path<UserPath>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "POST"))
}

/// Answers a method the audit trail does not support: it is read-only.
pub async fn method_not_allowed_on_audits(rqctx: RequestContext<AppContext>) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "GET"))
}

/// Answers a method an audit event does not support: it is read-only.
pub async fn method_not_allowed_on_audit(
    rqctx: RequestContext<AppContext>,
    _path: Path<DirectoryAuditPath>,
) -> Result<Answer<NoContent>, GraphError> {
    Ok(not_allowed(&rqctx, "GET"))
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

/// Answers a service root, `/users` or `/auditLogs`, which have no resources of their own here.
pub async fn unknown_resource(rqctx: RequestContext<AppContext>) -> Result<Answer<NoContent>, GraphError> {
    let path = rqctx.request.uri().path().trim_end_matches('/');
    let segment = path.rsplit('/').next().unwrap_or_default();
    if segment.is_empty() || VERSION_PREFIXES.contains(&path) {
        let message = "The service root has no content: use /dataPolicyOperations, /users/{id}/exportPersonalData \
                       or /auditLogs/directoryAudits below it.";
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
    Call::new(rqctx).refused(GraphError::bad_request(message))
}

/// 405 with the `Allow` header HTTP requires; for `OPTIONS`, 204 with `Allow`.
fn not_allowed(rqctx: &RequestContext<AppContext>, allow: &'static str) -> Answer<NoContent> {
    let call = Call::new(rqctx);
    let mut answer = if rqctx.request.method() == http::Method::OPTIONS {
        Answer::Ok(NoContent { headers: call.headers() })
    } else {
        call.refused(wire::method_not_allowed(rqctx.request.method(), rqctx.request.uri().path(), allow))
    };
    let headers = match &mut answer {
        Answer::Ok(NoContent { headers }) | Answer::Refused { headers, .. } => headers,
    };
    headers.insert(header::ALLOW, HeaderValue::from_static(allow));
    answer
}
