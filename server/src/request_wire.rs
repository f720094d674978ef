//! Subject rights requests on the wire: their bodies (with `@odata.context`, `$select` projections and
//! `@odata.etag`), their pages and next links, and how their errors are answered.

use crate::{
    subject_rights::{ENTITY, RequestError},
    wire::{internal, projection, query_error},
};
use dpo_api::GraphError;
use dpo_domain::requests::{NoteRecord, RequestRecord};
use serde_json::{Map, Value};

/// Where the requests live below a service root.
pub const COLLECTION: &str = "/security/subjectRightsRequests";

/// The `ETag` of a request at `version`.
pub fn etag(record: &RequestRecord) -> String {
    format!("W/\"{}\"", record.version)
}

/// A request as a JSON object, only `selected` properties (and its id) if some are.
pub fn request_json(record: &RequestRecord, selected: Option<&[String]>) -> Result<Map<String, Value>, GraphError> {
    let Value::Object(mut object) = serde_json::to_value(&record.request).map_err(internal)? else {
        return Err(GraphError::internal(format!("a {ENTITY} is not a JSON object")));
    };
    if let Some(names) = selected {
        object.retain(|name, _| name == "id" || names.iter().any(|n| n == name));
    }
    object.insert("@odata.etag".into(), etag(record).into());
    Ok(object)
}

/// The body of an answer about one request.
pub fn request_body(root: &str, record: &RequestRecord, selected: Option<&[String]>) -> Result<Vec<u8>, GraphError> {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{root}/$metadata#security/subjectRightsRequests{}/$entity", projection(selected)).into(),
    );
    body.extend(request_json(record, selected)?);
    serde_json::to_vec(&body).map_err(internal)
}

/// The body of a page of requests.
pub fn requests_page(
    root: &str,
    records: &[RequestRecord],
    selected: Option<&[String]>,
    count: Option<u64>,
    next_link: Option<String>,
) -> Result<Vec<u8>, GraphError> {
    let value = records.iter().map(|r| request_json(r, selected).map(Value::Object)).collect::<Result<Vec<_>, _>>()?;
    page(format!("{root}/$metadata#security/subjectRightsRequests{}", projection(selected)), value, count, next_link)
}

/// A note as JSON.
pub fn note_json(record: &NoteRecord) -> Result<Value, GraphError> {
    serde_json::to_value(&record.note).map_err(internal)
}

/// The body of an answer about one note.
pub fn note_body(root: &str, record: &NoteRecord) -> Result<Vec<u8>, GraphError> {
    let mut body = Map::new();
    body.insert(
        "@odata.context".into(),
        format!("{root}/$metadata#security/subjectRightsRequests('{}')/notes/$entity", record.request_id).into(),
    );
    if let Value::Object(note) = note_json(record)? {
        body.extend(note);
    }
    serde_json::to_vec(&body).map_err(internal)
}

/// The body of a page of notes.
pub fn notes_page(
    root: &str,
    request: uuid::Uuid,
    notes: &[NoteRecord],
    count: Option<u64>,
    next_link: Option<String>,
) -> Result<Vec<u8>, GraphError> {
    let value = notes.iter().map(note_json).collect::<Result<Vec<_>, _>>()?;
    page(format!("{root}/$metadata#security/subjectRightsRequests('{request}')/notes"), value, count, next_link)
}

fn page(
    context: String,
    value: Vec<Value>,
    count: Option<u64>,
    next_link: Option<String>,
) -> Result<Vec<u8>, GraphError> {
    let mut body = Map::new();
    body.insert("@odata.context".into(), context.into());
    if let Some(count) = count {
        body.insert("@odata.count".into(), count.into());
    }
    body.insert("value".into(), value.into());
    if let Some(link) = next_link {
        body.insert("@odata.nextLink".into(), link.into());
    }
    serde_json::to_vec(&body).map_err(internal)
}

impl From<RequestError> for GraphError {
    fn from(error: RequestError) -> Self {
        match error {
            RequestError::InvalidId(_) => GraphError::bad_request(error.to_string()),
            RequestError::NotFound(_) => GraphError::resource_not_found(error.to_string()),
            RequestError::Invalid { property, message } => GraphError::bad_request(message).with_target(property),
            RequestError::Query(q) => query_error(q),
            RequestError::WrongStage { .. } | RequestError::Closed(_) => {
                GraphError::new(dropshot::ErrorStatusCode::CONFLICT, dpo_api::error::codes::CONFLICT, error.to_string())
            }
            RequestError::CreatorApproves(_) => {
                GraphError::new(dropshot::ErrorStatusCode::FORBIDDEN, "Authorization_RequestDenied", error.to_string())
            }
            RequestError::NoAttachment(_) => GraphError::bad_request(error.to_string()),
            RequestError::CollectedRemoved { .. } => {
                GraphError::new(dropshot::ErrorStatusCode::GONE, "Gone", error.to_string())
            }
            RequestError::Conflict(_) => {
                GraphError::new(dropshot::ErrorStatusCode::CONFLICT, dpo_api::error::codes::CONFLICT, error.to_string())
            }
            RequestError::Store(e) => crate::operations::OperationError::Store(e).into(),
        }
    }
}
