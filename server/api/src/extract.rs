//! Request extractors that never fail on their own: the body is read only when the handler asks for it,
//! and the query string is kept as it came, so that the handler can authenticate the caller first (an
//! anonymous request with a bad body must get 401, not 400, and an anonymous client can make the server
//! read no body at all). They are documented exactly as dropshot's
//! `Query` and `TypedBody`.

use crate::error::GraphError;
use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, Query, RequestContext, ServerContext,
    SharedExtractor, TypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// OData query options, documented as `T` (the options Microsoft's document lists) and kept as the raw
/// query string: the server reads them once, with OData's rules (unknown and repeated system options,
/// `$skiptoken`, comma lists), which serde's reading of `T` would only repeat less strictly.
#[derive(Debug)]
pub struct ODataQuery<T> {
    raw: String,
    documented_as: std::marker::PhantomData<fn() -> T>,
}

impl<T> ODataQuery<T> {
    /// The query string as received (without `?`; empty when there is none).
    pub fn raw(&self) -> &str {
        &self.raw
    }
}

#[async_trait]
impl<T> SharedExtractor for ODataQuery<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, dropshot::HttpError> {
        let raw = rqctx.request.uri().query().unwrap_or_default().to_string();
        Ok(ODataQuery { raw, documented_as: std::marker::PhantomData })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <Query<T> as SharedExtractor>::metadata(body_content_type)
    }
}

/// Longest time a request's body may take to arrive, once the handler asks for it: a body of at most
/// the size limit (64 KiB by default) needs far less, and one that drips a byte at a time must not hold a
/// connection open for ever (the idle timeout never fires while bytes arrive).
pub const BODY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The JSON body as `T`, read only when the handler asks for it ([`CheckedBody::read`]): after the caller
/// is authenticated, so that an anonymous client can make the server wait for, or read, no body at all.
pub struct CheckedBody<T> {
    parts: http::request::Parts,
    body: dropshot::Body,
    documented_as: std::marker::PhantomData<fn() -> T>,
}

impl<T> std::fmt::Debug for CheckedBody<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CheckedBody").field("parts", &self.parts).finish_non_exhaustive()
    }
}

impl<T> CheckedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    /// Reads the body and parses it as `T`. A `Content-Length` over the limit is answered 413 before a
    /// byte is read (so a client sending `Expect: 100-continue` is never told to go on); a body that grows
    /// past the limit is cut off there (413), and one that takes longer than [`BODY_TIMEOUT`] gets 408.
    pub async fn read<C: ServerContext>(self, rqctx: &RequestContext<C>) -> Result<T, GraphError> {
        use http_body_util::BodyExt;
        let limit = rqctx.request_body_max_bytes();
        let too_large = || {
            GraphError::new(
                dropshot::ErrorStatusCode::PAYLOAD_TOO_LARGE,
                crate::error::codes::PAYLOAD_TOO_LARGE,
                format!("request body exceeded maximum size of {limit} bytes"),
            )
        };
        let declared = self
            .parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok());
        if declared.is_some_and(|n| n > limit as u64) {
            return Err(too_large());
        }
        let mut body = self.body;
        let collect = async {
            let mut bytes = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| GraphError::bad_request(format!("reading the request body: {e}")))?;
                if let Ok(data) = frame.into_data() {
                    if bytes.len() + data.len() > limit {
                        return Err(too_large());
                    }
                    bytes.extend_from_slice(&data);
                }
            }
            Ok(bytes)
        };
        let bytes = tokio::time::timeout(BODY_TIMEOUT, collect).await.map_err(|_| {
            GraphError::new(
                dropshot::ErrorStatusCode::REQUEST_TIMEOUT,
                crate::error::codes::REQUEST_TIMEOUT,
                format!("the request body did not arrive within {} s", BODY_TIMEOUT.as_secs()),
            )
        })??;
        let bytes = bytes::Bytes::from(bytes);
        // dropshot's own parser, for its content-type rules and messages; it reads one JSON value and
        // ignores what follows it, so the value is also checked to be all there is.
        let value = <TypedBody<T> as ExclusiveExtractor>::from_request(
            rqctx,
            hyper::Request::from_parts(self.parts, dropshot::Body::from(bytes.clone())),
        )
        .await
        .map(TypedBody::into_inner)
        .map_err(GraphError::from)?;
        nothing_after_the_value(&bytes).map_err(|e| *e)?;
        Ok(value)
    }

    /// Reads the body like [`CheckedBody::read`] (limits, media type, one JSON value), and returns it as a
    /// JSON object, for a caller that checks each property itself and names the one at fault.
    pub async fn read_object<C: ServerContext>(
        self,
        rqctx: &RequestContext<C>,
    ) -> Result<serde_json::Map<String, serde_json::Value>, GraphError> {
        let value = CheckedBody::<serde_json::Value> {
            parts: self.parts,
            body: self.body,
            documented_as: std::marker::PhantomData,
        }
        .read(rqctx)
        .await?;
        match value {
            serde_json::Value::Object(object) => Ok(object),
            other => Err(GraphError::bad_request(format!(
                "the request body must be a JSON object, not {}",
                match other {
                    serde_json::Value::Array(_) => "an array",
                    serde_json::Value::String(_) => "a string",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            ))),
        }
    }
}

#[async_trait]
impl<T> ExclusiveExtractor for CheckedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        _rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, dropshot::HttpError> {
        let (parts, body) = request.into_parts();
        Ok(CheckedBody { parts, body, documented_as: std::marker::PhantomData })
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(body_content_type)
    }
}

/// 400 unless `body` is one JSON value followed by nothing but white space.
fn nothing_after_the_value(body: &[u8]) -> Result<(), Box<GraphError>> {
    use serde::Deserialize;
    let mut reader = serde_json::Deserializer::from_slice(body);
    serde::de::IgnoredAny::deserialize(&mut reader).and_then(|_| reader.end()).map_err(|e| {
        Box::new(GraphError::bad_request(format!(
            "unable to parse JSON body: {e}: the body must be one JSON object and nothing after it"
        )))
    })
}
