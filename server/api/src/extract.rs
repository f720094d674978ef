//! Request extractors that never fail on their own: they keep a malformed body as an error for the handler
//! to report, and the query string as it came, so that the handler can authenticate the caller first (an
//! anonymous request with a bad body must get 401, not 400). They are documented exactly as dropshot's
//! `Query` and `TypedBody`.

use crate::error::GraphError;
use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, Query, RequestContext, ServerContext,
    SharedExtractor, TypedBody, UntypedBody,
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

/// The JSON body as `T`, or why it is not one.
#[derive(Debug)]
pub struct CheckedBody<T>(pub Result<T, Box<GraphError>>);

impl<T> CheckedBody<T> {
    /// The body, or the error to answer with.
    pub fn into_inner(self) -> Result<T, GraphError> {
        self.0.map_err(|e| *e)
    }
}

#[async_trait]
impl<T> ExclusiveExtractor for CheckedBody<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
        request: hyper::Request<dropshot::Body>,
    ) -> Result<Self, dropshot::HttpError> {
        // dropshot reads one JSON value and ignores what follows it; a body is one value and nothing
        // else, so the bytes are read here (with dropshot's size limit), checked to end after the value,
        // and handed to dropshot's own parser (which keeps its content-type rules and messages).
        let (parts, body) = request.into_parts();
        let bytes = match <UntypedBody as ExclusiveExtractor>::from_request(
            rqctx,
            hyper::Request::from_parts(parts.clone(), body),
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(e) => return Ok(CheckedBody(Err(Box::new(GraphError::from(e))))),
        };
        let bytes = bytes::Bytes::copy_from_slice(bytes.as_bytes());
        let parsed = <TypedBody<T> as ExclusiveExtractor>::from_request(
            rqctx,
            hyper::Request::from_parts(parts, dropshot::Body::from(bytes.clone())),
        )
        .await
        .map(TypedBody::into_inner)
        .map_err(|e| Box::new(GraphError::from(e)))
        .and_then(|value| nothing_after_the_value(&bytes).map(|()| value));
        Ok(CheckedBody(parsed))
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
