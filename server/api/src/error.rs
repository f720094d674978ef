//! The OData error body (`{"error":{"code","message",...}}`) that every failure of the API carries.

use chrono::{DateTime, Utc};
use dropshot::{ErrorStatusCode, HttpError, HttpResponseError};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::fmt;

/// Error codes dpo uses, named as Microsoft Graph names them.
pub mod codes {
    /// The request is malformed or names something invalid.
    pub const BAD_REQUEST: &str = "BadRequest";
    /// The addressed resource does not exist.
    pub const RESOURCE_NOT_FOUND: &str = "Request_ResourceNotFound";
    /// The path or method is not part of the API.
    pub const NOT_FOUND: &str = "NotFound";
    /// The method is not allowed on this resource.
    pub const METHOD_NOT_ALLOWED: &str = "MethodNotAllowed";
    /// An `If-Match` precondition did not hold.
    pub const PRECONDITION_FAILED: &str = "PreconditionFailed";
    /// The request body is larger than the server accepts.
    pub const PAYLOAD_TOO_LARGE: &str = "RequestEntityTooLarge";
    /// The request body has a media type the operation does not accept.
    pub const UNSUPPORTED_MEDIA_TYPE: &str = "UnsupportedMediaType";
    /// Something failed inside the server.
    pub const INTERNAL: &str = "InternalServerError";
    /// The request (its body) did not arrive in time.
    pub const REQUEST_TIMEOUT: &str = "RequestTimeout";
    /// The server is not able to serve the request now.
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    /// The request conflicts with the resource's state (another change won, or the wrong stage).
    pub const CONFLICT: &str = "Conflict";
    /// The caller (or its tenant) sent more requests than it may: it should wait as `Retry-After` says.
    pub const TOO_MANY_REQUESTS: &str = "TooManyRequests";
}

/// An API error: the OData error body plus the HTTP status it is sent with.
#[derive(Debug, Clone, Serialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.ODataErrors.ODataError")]
pub struct GraphError {
    /// The error itself (boxed: errors travel in `Result`s and should stay small).
    pub error: Box<MainError>,
    #[serde(skip)]
    status: ErrorStatusCode,
    /// Detail for the server's log only, never sent to the client.
    #[serde(skip)]
    internal_message: Option<String>,
}

/// The `error` member of an OData error body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.ODataErrors.MainError")]
pub struct MainError {
    /// Machine-readable code, e.g. `BadRequest`.
    pub code: String,
    /// What went wrong, for people.
    pub message: String,
    /// The part of the request the error is about, e.g. a query option.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// Further errors behind this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetails>,
    /// Request correlation data.
    #[serde(rename = "innerError", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "InnerError")]
    pub inner_error: Option<InnerError>,
}

/// One entry of [`MainError::details`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.ODataErrors.ErrorDetails")]
pub struct ErrorDetails {
    /// Machine-readable code.
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// The part of the request the entry is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// Correlation data Graph adds to every error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.ODataErrors.InnerError")]
pub struct InnerError {
    /// The server's id of the request.
    #[serde(rename = "request-id", default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The id the client sent in `client-request-id`.
    #[serde(rename = "client-request-id", default, skip_serializing_if = "Option::is_none")]
    pub client_request_id: Option<String>,
    /// When the error happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<DateTime<Utc>>,
}

impl GraphError {
    /// An error with this status, code and message.
    pub fn new(status: ErrorStatusCode, code: &str, message: impl Into<String>) -> Self {
        GraphError {
            error: Box::new(MainError {
                code: code.to_string(),
                message: message.into(),
                target: None,
                details: Vec::new(),
                inner_error: None,
            }),
            status,
            internal_message: None,
        }
    }

    /// 400 `BadRequest`.
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(ErrorStatusCode::BAD_REQUEST, codes::BAD_REQUEST, message)
    }

    /// 404 `Request_ResourceNotFound`.
    pub fn resource_not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorStatusCode::NOT_FOUND, codes::RESOURCE_NOT_FOUND, message)
    }

    /// 429 `TooManyRequests` (send `Retry-After` with it).
    pub fn too_many_requests(message: impl Into<String>) -> Self {
        Self::new(ErrorStatusCode::TOO_MANY_REQUESTS, codes::TOO_MANY_REQUESTS, message)
    }

    /// 412 `PreconditionFailed`.
    pub fn precondition_failed(message: impl Into<String>) -> Self {
        Self::new(ErrorStatusCode::PRECONDITION_FAILED, codes::PRECONDITION_FAILED, message)
    }

    /// 503 `ServiceUnavailable`: asking again shortly may work (send `Retry-After` with it); `detail`
    /// goes to the log, not to the client.
    pub fn service_unavailable(message: impl Into<String>, detail: impl Into<String>) -> Self {
        let mut e = Self::new(ErrorStatusCode::SERVICE_UNAVAILABLE, codes::SERVICE_UNAVAILABLE, message);
        e.internal_message = Some(detail.into());
        e
    }

    /// 500 `InternalServerError`; `detail` goes to the log, not to the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        let mut e = Self::new(
            ErrorStatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            "the server failed to handle the request; see its log for the request id",
        );
        e.internal_message = Some(detail.into());
        e
    }

    /// The same error, saying which part of the request it is about.
    pub fn with_target(mut self, target: impl Into<String>) -> Self {
        self.error.target = Some(target.into());
        self
    }

    /// The same error, with correlation data.
    pub fn with_inner_error(mut self, inner: InnerError) -> Self {
        self.error.inner_error = Some(inner);
        self
    }

    /// The HTTP status the error is sent with.
    pub fn status(&self) -> ErrorStatusCode {
        self.status
    }

    /// The log-only detail, if any.
    pub fn internal_message(&self) -> Option<&str> {
        self.internal_message.as_deref()
    }
}

impl fmt::Display for GraphError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({}): {}", self.error.code, self.status.as_u16(), self.error.message)?;
        if let Some(detail) = &self.internal_message {
            write!(f, " [{detail}]")?;
        }
        Ok(())
    }
}

impl std::error::Error for GraphError {}

impl HttpResponseError for GraphError {
    fn status_code(&self) -> ErrorStatusCode {
        self.status
    }
}

/// Errors dropshot raises itself (bad query strings, bodies, headers) become OData errors too.
impl From<HttpError> for GraphError {
    fn from(error: HttpError) -> Self {
        // dropshot reports an unacceptable media type and an oversized body as plain 400s; HTTP (and
        // Graph) have dedicated statuses for them, which clients act on. Tests pin these messages.
        let message = error.external_message.as_str();
        let status = if message.starts_with("unsupported content-type") {
            ErrorStatusCode::UNSUPPORTED_MEDIA_TYPE
        } else if message.starts_with("request body exceeded maximum size") {
            ErrorStatusCode::PAYLOAD_TOO_LARGE
        } else {
            error.status_code
        };
        let code = match status.as_u16() {
            400 => codes::BAD_REQUEST,
            404 => codes::NOT_FOUND,
            405 => codes::METHOD_NOT_ALLOWED,
            408 => codes::REQUEST_TIMEOUT,
            413 => codes::PAYLOAD_TOO_LARGE,
            415 => codes::UNSUPPORTED_MEDIA_TYPE,
            503 => codes::SERVICE_UNAVAILABLE,
            s if s >= 500 => codes::INTERNAL,
            _ => codes::BAD_REQUEST,
        };
        let mut e = GraphError::new(status, code, error.external_message);
        e.internal_message = Some(error.internal_message);
        e
    }
}
