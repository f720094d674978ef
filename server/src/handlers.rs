//! The HTTP handlers: parse the request, call the domain, shape the answer. Every failure leaves as an
//! OData error carrying the request's ids (`innerError`).

use crate::{config::ServerConfig, operations::OperationService, wire};
use chrono::Utc;
use dpo_api::{
    DataPolicyOperationsApi, GraphError,
    error::InnerError,
    model::{DataPolicyOperation, DataPolicyOperationCollection, ExportPersonalDataRequest},
    params::{CountQuery, GetQuery, IfMatchHeader, ListQuery, OperationPath, UserPath},
    responses::{AcceptedNoContent, EntityOrCount, ExportAcceptedHeaders, ShapedCreated, ShapedOk},
};
use dropshot::{
    Header, HttpResponseDeleted, HttpResponseHeaders, Path, Query, RequestContext, TypedBody,
};
use http::{HeaderMap, HeaderValue};
use serde_json::Value;
use std::sync::OnceLock;

/// Page size when the client does not ask for one.
pub const DEFAULT_PAGE_SIZE: u64 = 100;
/// Largest page the server sends, whatever `$top` says.
pub const MAX_PAGE_SIZE: u64 = 1000;

/// State the handlers share.
pub struct AppContext {
    /// The operations service.
    pub operations: OperationService,
    /// The server's settings.
    pub config: ServerConfig,
    /// Absolute base URL of the API, without a trailing slash; set once the listener is bound.
    pub base_url: OnceLock<String>,
}

impl AppContext {
    /// Absolute base URL of the API, without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.base_url.get().map(String::as_str).unwrap_or_default()
    }
}

/// The dpo implementation of [`DataPolicyOperationsApi`].
pub enum DpoApi {}

/// Per-request facts every answer needs: ids for correlation.
struct Call {
    request_id: String,
    client_request_id: Option<String>,
}

impl Call {
    fn new(rqctx: &RequestContext<AppContext>) -> Self {
        let client_request_id = rqctx
            .request
            .headers()
            .get("client-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        Call {
            request_id: rqctx.request_id.clone(),
            client_request_id,
        }
    }

    /// `request-id` and the echoed `client-request-id`, as Graph sends them on every answer.
    fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_str(&self.request_id) {
            headers.insert("request-id", v);
        }
        if let Some(v) = self
            .client_request_id
            .as_deref()
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert("client-request-id", v);
        }
        headers
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
            date: Some(Utc::now()),
        })
    }
}

fn reject_expand(expand: Option<&[String]>) -> Result<(), GraphError> {
    match expand {
        Some(names) if !names.is_empty() => Err(GraphError::bad_request(format!(
            "Could not find a navigation property named '{}' on type 'microsoft.graph.dataPolicyOperation': \
             it has none, so $expand cannot be used",
            names[0]
        ))
        .with_target("$expand")),
        _ => Ok(()),
    }
}

fn not_yet_supported(option: &str, value: Option<&impl std::fmt::Debug>) -> Result<(), GraphError> {
    match value {
        Some(_) => Err(GraphError::bad_request(format!(
            "the query option {option} is not supported yet"
        ))
        .with_target(option.to_string())),
        None => Ok(()),
    }
}

fn entity_headers(call: &Call, op: &crate::operations::Operation) -> HeaderMap {
    let mut headers = call.headers();
    if let Ok(v) = HeaderValue::from_str(&op.etag()) {
        headers.insert(http::header::ETAG, v);
    }
    headers
}

impl DataPolicyOperationsApi for DpoApi {
    type Context = AppContext;

    async fn list_data_policy_operations(
        rqctx: RequestContext<AppContext>,
        query: Query<ListQuery>,
    ) -> Result<ShapedOk<DataPolicyOperationCollection>, GraphError> {
        let call = Call::new(&rqctx);
        let ctx = rqctx.context();
        let q = query.into_inner();
        let answer = (|| {
            reject_expand(q.expand.as_ref().map(|e| e.items()))?;
            not_yet_supported("$filter", q.filter.as_ref())?;
            not_yet_supported("$search", q.search.as_ref())?;
            not_yet_supported("$orderby", q.orderby.as_ref())?;
            let selected = wire::selection(q.select.as_ref().map(|s| s.items()))?;
            let skip = q.skip.unwrap_or(0);
            let wanted = q.top.unwrap_or(u64::MAX);
            let page_size = wanted.min(if q.top.is_some() {
                MAX_PAGE_SIZE
            } else {
                DEFAULT_PAGE_SIZE
            });
            let page = ctx
                .operations
                .list(skip, page_size)
                .map_err(GraphError::from)?;
            let items = page
                .items
                .iter()
                .map(|op| wire::entity_json(op, selected.as_deref()))
                .collect::<Result<Vec<_>, _>>()?;
            let served = skip + items.len() as u64;
            let remaining_wanted = wanted.saturating_sub(items.len() as u64);
            let next_link = (served < page.total && remaining_wanted > 0).then(|| {
                let mut link = format!("{}/dataPolicyOperations?$skip={served}", ctx.base_url());
                if q.top.is_some() {
                    link.push_str(&format!("&$top={remaining_wanted}"));
                }
                if let Some(names) = &selected {
                    link.push_str(&format!("&$select={}", names.join(",")));
                }
                if q.count == Some(true) {
                    link.push_str("&$count=true");
                }
                link
            });
            let mut body = serde_json::Map::new();
            body.insert(
                "@odata.context".into(),
                Value::String(wire::context_url(
                    ctx.base_url(),
                    selected.as_deref(),
                    false,
                )),
            );
            if q.count == Some(true) {
                body.insert("@odata.count".into(), Value::from(page.total));
            }
            if let Some(link) = next_link {
                body.insert("@odata.nextLink".into(), Value::String(link));
            }
            body.insert("value".into(), Value::Array(items));
            Ok::<_, GraphError>(Value::Object(body))
        })();
        answer
            .map(|body| ShapedOk::new(body, call.headers()))
            .map_err(|e| call.fail(&rqctx, e))
    }

    async fn create_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        body: TypedBody<DataPolicyOperation>,
    ) -> Result<ShapedCreated<DataPolicyOperation>, GraphError> {
        let call = Call::new(&rqctx);
        let ctx = rqctx.context();
        let answer = ctx
            .operations
            .create(&body.into_inner())
            .map_err(GraphError::from)
            .and_then(|op| {
                let mut json = wire::entity_json(&op, None)?;
                json["@odata.context"] =
                    Value::String(wire::context_url(ctx.base_url(), None, true));
                let mut headers = entity_headers(&call, &op);
                let location = format!("{}/dataPolicyOperations/{}", ctx.base_url(), op.id);
                if let Ok(v) = HeaderValue::from_str(&location) {
                    headers.insert(http::header::LOCATION, v);
                }
                Ok(ShapedCreated::new(json, headers))
            });
        answer.map_err(|e| call.fail(&rqctx, e))
    }

    async fn get_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        query: Query<GetQuery>,
    ) -> Result<EntityOrCount, GraphError> {
        let call = Call::new(&rqctx);
        let ctx = rqctx.context();
        let id = path.into_inner().id;
        if id == "$count" {
            let answer = (|| {
                let raw = rqctx.request.uri().query().unwrap_or_default();
                let q: CountQuery = serde_urlencoded::from_str(raw).map_err(|e| {
                    GraphError::bad_request(format!("unable to parse query string: {e}"))
                })?;
                not_yet_supported("$filter", q.filter.as_ref())?;
                not_yet_supported("$search", q.search.as_ref())?;
                ctx.operations.count().map_err(GraphError::from)
            })();
            return answer
                .map(|count| EntityOrCount::Count {
                    count,
                    headers: call.headers(),
                })
                .map_err(|e| call.fail(&rqctx, e));
        }
        let q = query.into_inner();
        let answer = (|| {
            reject_expand(q.expand.as_ref().map(|e| e.items()))?;
            let selected = wire::selection(q.select.as_ref().map(|s| s.items()))?;
            let op = ctx.operations.get(&id)?;
            let mut json = wire::entity_json(&op, selected.as_deref())?;
            json["@odata.context"] =
                Value::String(wire::context_url(ctx.base_url(), selected.as_deref(), true));
            let mut headers = entity_headers(&call, &op);
            if !op.status.is_final() {
                headers.insert(
                    http::header::RETRY_AFTER,
                    HeaderValue::from(ctx.config.retry_after_seconds),
                );
            }
            Ok::<_, GraphError>(EntityOrCount::Entity {
                body: json,
                headers,
            })
        })();
        answer.map_err(|e| call.fail(&rqctx, e))
    }

    async fn update_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        body: TypedBody<DataPolicyOperation>,
    ) -> Result<ShapedOk<DataPolicyOperation>, GraphError> {
        let call = Call::new(&rqctx);
        let ctx = rqctx.context();
        let if_match = rqctx
            .request
            .headers()
            .get(http::header::IF_MATCH)
            .and_then(|v| v.to_str().ok());
        let precondition = wire::precondition(if_match);
        let answer = ctx
            .operations
            .update(&path.into_inner().id, &body.into_inner(), precondition)
            .map_err(GraphError::from)
            .and_then(|op| {
                let mut json = wire::entity_json(&op, None)?;
                json["@odata.context"] =
                    Value::String(wire::context_url(ctx.base_url(), None, true));
                Ok(ShapedOk::new(json, entity_headers(&call, &op)))
            });
        answer.map_err(|e| call.fail(&rqctx, e))
    }

    async fn delete_data_policy_operation(
        rqctx: RequestContext<AppContext>,
        path: Path<OperationPath>,
        if_match: Header<IfMatchHeader>,
    ) -> Result<HttpResponseHeaders<HttpResponseDeleted>, GraphError> {
        let call = Call::new(&rqctx);
        let precondition = wire::precondition(if_match.into_inner().if_match.as_deref());
        match rqctx
            .context()
            .operations
            .delete(&path.into_inner().id, precondition)
        {
            Ok(()) => {
                let mut response = HttpResponseHeaders::new_unnamed(HttpResponseDeleted());
                response.headers_mut().extend(call.headers());
                Ok(response)
            }
            Err(e) => Err(call.fail(&rqctx, e)),
        }
    }

    async fn export_personal_data(
        rqctx: RequestContext<AppContext>,
        path: Path<UserPath>,
        body: TypedBody<ExportPersonalDataRequest>,
    ) -> Result<AcceptedNoContent<ExportAcceptedHeaders>, GraphError> {
        let call = Call::new(&rqctx);
        let ctx = rqctx.context();
        let request = body.into_inner();
        match ctx.operations.submit_export(
            &path.into_inner().user_id,
            request.storage_location.as_deref(),
        ) {
            Ok(op) => {
                let mut accepted = AcceptedNoContent::new(ExportAcceptedHeaders {
                    location: format!("{}/dataPolicyOperations/{}", ctx.base_url(), op.id),
                    retry_after: ctx.config.retry_after_seconds,
                });
                accepted.extra_headers = call.headers();
                Ok(accepted)
            }
            Err(e) => Err(call.fail(&rqctx, e)),
        }
    }
}
