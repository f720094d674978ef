//! Request extractors that never fail on their own: they keep a malformed query or body as an error for the
//! handler to report, so that the handler can authenticate the caller first (an anonymous request with a
//! bad body must get 401, not 400). They are documented exactly as dropshot's `Query` and `TypedBody`.

use crate::error::GraphError;
use async_trait::async_trait;
use dropshot::{
    ApiEndpointBodyContentType, ExclusiveExtractor, ExtractorMetadata, Query, RequestContext, ServerContext,
    SharedExtractor, TypedBody,
};
use schemars::JsonSchema;
use serde::de::DeserializeOwned;

/// The query string as `T`, or why it is not one.
#[derive(Debug)]
pub struct CheckedQuery<T>(pub Result<T, Box<GraphError>>);

impl<T> CheckedQuery<T> {
    /// The query, or the error to answer with.
    pub fn into_inner(self) -> Result<T, GraphError> {
        self.0.map_err(|e| *e)
    }
}

#[async_trait]
impl<T> SharedExtractor for CheckedQuery<T>
where
    T: JsonSchema + DeserializeOwned + Send + Sync + 'static,
{
    async fn from_request<Context: ServerContext>(
        rqctx: &RequestContext<Context>,
    ) -> Result<Self, dropshot::HttpError> {
        let parsed = <Query<T> as SharedExtractor>::from_request(rqctx).await;
        Ok(CheckedQuery(parsed.map(Query::into_inner).map_err(|e| Box::new(GraphError::from(e)))))
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
        let parsed = <TypedBody<T> as ExclusiveExtractor>::from_request(rqctx, request).await;
        Ok(CheckedBody(parsed.map(TypedBody::into_inner).map_err(|e| Box::new(GraphError::from(e)))))
    }

    fn metadata(body_content_type: ApiEndpointBodyContentType) -> ExtractorMetadata {
        <TypedBody<T> as ExclusiveExtractor>::metadata(body_content_type)
    }
}
