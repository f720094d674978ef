//! Response types dropshot does not have: a `202 Accepted` without a body but with documented headers,
//! and the single-entity GET that also answers `/dataPolicyOperations/$count`.

use crate::model::DataPolicyOperation;
use dropshot::{
    ApiEndpointResponse, Body, HttpError, HttpResponse, HttpResponseCreated, HttpResponseHeaders, HttpResponseOk,
    HttpResponseUpdatedNoContent,
};
use http::{HeaderMap, HeaderValue, Response, StatusCode, header};
use schemars::JsonSchema;
use serde::Serialize;
use std::marker::PhantomData;

/// Headers of the `202` that `exportPersonalData` answers with.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct ExportAcceptedHeaders {
    /// URL to check on the status of the request.
    #[serde(rename = "Location")]
    pub location: String,
    /// Time period in seconds. Wait this long after submitting before checking the status.
    #[serde(rename = "Retry-After")]
    #[schemars(with = "i32")]
    pub retry_after: u32,
}

/// `202 Accepted` with no body and the named headers `H` (documented in the OpenAPI document).
#[derive(Debug, Clone)]
pub struct AcceptedNoContent<H> {
    /// The documented headers.
    pub headers: H,
    /// Further, undocumented headers (e.g. `request-id`).
    pub extra_headers: HeaderMap,
}

impl<H> AcceptedNoContent<H> {
    /// A 202 with these documented headers.
    pub fn new(headers: H) -> Self {
        AcceptedNoContent { headers, extra_headers: HeaderMap::new() }
    }
}

fn header_value(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s.clone()),
        other => Some(other.to_string()),
    }
}

impl<H: Serialize + JsonSchema + Send + Sync + 'static> HttpResponse for AcceptedNoContent<H> {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        let mut response = Response::new(Body::empty());
        *response.status_mut() = StatusCode::ACCEPTED;
        let named = serde_json::to_value(&self.headers)
            .map_err(|e| HttpError::for_internal_error(format!("response headers: {e}")))?;
        for (name, value) in named.as_object().into_iter().flatten() {
            let Some(text) = header_value(value) else {
                continue;
            };
            let name = header::HeaderName::try_from(name.as_str())
                .map_err(|e| HttpError::for_internal_error(format!("header name {name}: {e}")))?;
            let value = HeaderValue::try_from(text)
                .map_err(|e| HttpError::for_internal_error(format!("header {name}: {e}")))?;
            response.headers_mut().insert(name, value);
        }
        response.headers_mut().extend(self.extra_headers);
        Ok(response)
    }

    fn response_metadata() -> ApiEndpointResponse {
        let mut metadata = HttpResponseHeaders::<HttpResponseUpdatedNoContent, H>::response_metadata();
        metadata.success = Some(StatusCode::ACCEPTED);
        metadata.description = Some("Accepted".to_string());
        metadata
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::ACCEPTED
    }
}

/// Answer of `GET /dataPolicyOperations/{id}`: the entity, or, when the id segment is the literal `$count`,
/// the number of operations as `text/plain` (dropshot cannot route `$count` beside `{id}`; see
/// [`crate::api::CountApi`]).
#[derive(Debug, Clone)]
pub enum EntityOrCountOf<T> {
    /// `200` with the entity as JSON (already shaped by `$select`) and extra headers such as `ETag`.
    Entity {
        /// The JSON body, serialised.
        body: Vec<u8>,
        /// Extra headers.
        headers: HeaderMap,
    },
    /// `200` with the count as `text/plain`.
    Count {
        /// The count.
        count: u64,
        /// Extra headers.
        headers: HeaderMap,
    },
    /// Never made: it only ties the type to the entity `T` it is documented as.
    #[doc(hidden)]
    DocumentedAs(std::convert::Infallible, PhantomData<fn() -> T>),
}

/// The operations' [`EntityOrCountOf`].
pub type EntityOrCount = EntityOrCountOf<DataPolicyOperation>;

impl<T: JsonSchema + Serialize + Send + Sync + 'static> HttpResponse for EntityOrCountOf<T> {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        let (body, content_type, headers) = match self {
            EntityOrCountOf::Entity { body, headers } => (Body::from(body), "application/json", headers),
            EntityOrCountOf::Count { count, headers } => {
                (Body::from(count.to_string()), "text/plain; charset=utf-8", headers)
            }
            EntityOrCountOf::DocumentedAs(never, _) => match never {},
        };
        Ok(response(StatusCode::OK, body, Some(content_type), headers))
    }

    fn response_metadata() -> ApiEndpointResponse {
        let mut metadata = <HttpResponseOk<T> as HttpResponse>::response_metadata();
        metadata.description = Some("Retrieved entity".to_string());
        metadata
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::OK
    }
}

/// A JSON answer documented as `T` but sent as an already-shaped JSON value, so that `$select` projections
/// and OData annotations (`@odata.context`, `@odata.etag`) can be added; `CREATED` picks 201 over 200.
#[derive(Debug, Clone)]
pub struct Shaped<T, const CREATED: bool = false> {
    /// The JSON body, serialised.
    pub body: Vec<u8>,
    /// Extra headers (`ETag`, `request-id`, ...).
    pub headers: HeaderMap,
    documented_as: PhantomData<fn() -> T>,
}

/// `200 OK` with a shaped body documented as `T`.
pub type ShapedOk<T> = Shaped<T, false>;
/// `201 Created` with a shaped body documented as `T`.
pub type ShapedCreated<T> = Shaped<T, true>;

impl<T, const CREATED: bool> Shaped<T, CREATED> {
    /// An answer with this serialised JSON body and these extra headers.
    pub fn new(body: Vec<u8>, headers: HeaderMap) -> Self {
        Shaped { body, headers, documented_as: PhantomData }
    }
}

fn json_response(status: StatusCode, body: Vec<u8>, headers: HeaderMap) -> Result<Response<Body>, HttpError> {
    Ok(response(status, Body::from(body), Some("application/json"), headers))
}

/// An answer with `headers` as they are (taken over, not copied in one by one: every answer has a few), and
/// `content_type` unless they name one.
fn response(status: StatusCode, body: Body, content_type: Option<&'static str>, headers: HeaderMap) -> Response<Body> {
    let mut response = Response::new(body);
    *response.status_mut() = status;
    *response.headers_mut() = headers;
    if let Some(content_type) = content_type {
        response.headers_mut().entry(header::CONTENT_TYPE).or_insert(HeaderValue::from_static(content_type));
    }
    response
}

impl<T, const CREATED: bool> HttpResponse for Shaped<T, CREATED>
where
    T: JsonSchema + Serialize + Send + Sync + 'static,
{
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        json_response(self.status_code(), self.body, self.headers)
    }

    fn response_metadata() -> ApiEndpointResponse {
        if CREATED {
            <HttpResponseCreated<T> as HttpResponse>::response_metadata()
        } else {
            <HttpResponseOk<T> as HttpResponse>::response_metadata()
        }
    }

    fn status_code(&self) -> StatusCode {
        if CREATED { StatusCode::CREATED } else { StatusCode::OK }
    }
}

/// A handler's answer: the documented success `R`, or a refusal that needs response headers an error
/// cannot carry in dropshot (`401` with `WWW-Authenticate`). Documented exactly as `R`.
#[derive(Debug)]
pub enum Answer<R> {
    /// The documented success.
    Ok(R),
    /// An OData error sent with extra headers.
    Refused {
        /// The error.
        error: crate::error::GraphError,
        /// Headers to send with it.
        headers: HeaderMap,
    },
}

impl<R: HttpResponse + Send + Sync + 'static> HttpResponse for Answer<R> {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        match self {
            Answer::Ok(r) => r.to_result(),
            Answer::Refused { error, headers } => {
                let body = serde_json::to_vec(&error)
                    .map_err(|e| HttpError::for_internal_error(format!("serialising the error: {e}")))?;
                json_response(error.status().as_status(), body, headers)
            }
        }
    }

    fn response_metadata() -> ApiEndpointResponse {
        R::response_metadata()
    }

    fn status_code(&self) -> StatusCode {
        match self {
            Answer::Ok(r) => r.status_code(),
            Answer::Refused { error, .. } => error.status().as_status(),
        }
    }
}

/// `200 OK` with a body streamed as it is made (a report, a zip), its own `Content-Type` and
/// `Content-Disposition` among `headers`. dropshot documents such a body as `*/*` of any schema; Microsoft's
/// document says `application/octet-stream`: the allow-list records the difference.
pub struct Download {
    /// The body.
    pub body: Body,
    /// `Content-Type`, `Content-Disposition` and the ids.
    pub headers: HeaderMap,
}

impl std::fmt::Debug for Download {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Download").field("headers", &self.headers).finish_non_exhaustive()
    }
}

impl HttpResponse for Download {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        Ok(response(StatusCode::OK, self.body, None, self.headers))
    }

    fn response_metadata() -> ApiEndpointResponse {
        ApiEndpointResponse {
            schema: None,
            headers: Vec::new(),
            success: Some(StatusCode::OK),
            description: Some("Success".to_string()),
        }
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::OK
    }
}

/// `204 No Content` with extra headers, documented as dropshot's `HttpResponseDeleted`.
#[derive(Debug, Default)]
pub struct NoContent {
    /// Extra headers (`request-id`, ...).
    pub headers: HeaderMap,
}

impl HttpResponse for NoContent {
    fn to_result(self) -> Result<Response<Body>, HttpError> {
        Ok(response(StatusCode::NO_CONTENT, Body::empty(), None, self.headers))
    }

    fn response_metadata() -> ApiEndpointResponse {
        <dropshot::HttpResponseDeleted as HttpResponse>::response_metadata()
    }

    fn status_code(&self) -> StatusCode {
        StatusCode::NO_CONTENT
    }
}
