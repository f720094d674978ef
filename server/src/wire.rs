//! How domain values look on the wire: entities as Graph JSON, `$select` projections, OData context URLs,
//! ETags, and domain errors as OData errors.

use crate::{
    auth::AuthError,
    odata::QueryError,
    operations::{Operation, OperationError, Precondition},
};
use dpo_api::GraphError;
use dropshot::ErrorStatusCode;
use serde_json::{Map, Value};

/// Instance annotation that says why a failed operation failed.
pub const FAILURE_REASON: &str = "@dpo.failureReason";

/// One entity on the wire: its annotations, then the properties of `dpo_model::DataPolicyOperation` in
/// the model's order, borrowed from the operation (a polled operation is answered many times a second: no
/// copies of its strings, and timestamps written whole, not a character at a time).
/// `the_body_is_the_model_s` holds the two to the same bytes.
#[derive(serde::Serialize)]
#[serde(rename_all = "camelCase")]
struct EntityBody<'a> {
    #[serde(rename = "@odata.context", skip_serializing_if = "Option::is_none")]
    context: Option<&'a str>,
    #[serde(rename = "@odata.etag")]
    etag: String,
    /// An instance annotation: Graph clients ignore annotations they do not know.
    #[serde(rename = "@dpo.failureReason", skip_serializing_if = "Option::is_none")]
    failure_reason: Option<&'a str>,
    id: uuid::Uuid,
    completed_date_time: Option<Timestamp>,
    progress: f64,
    status: dpo_api::model::DataPolicyOperationStatus,
    storage_location: Option<&'a str>,
    submitted_date_time: Timestamp,
    user_id: &'a str,
}

impl<'a> EntityBody<'a> {
    fn new(op: &'a Operation, context: Option<&'a str>) -> Self {
        EntityBody {
            context,
            etag: op.etag(),
            failure_reason: op.failure_reason.as_deref(),
            id: op.id,
            completed_date_time: op.completed_at.map(Timestamp),
            progress: op.progress,
            status: op.status,
            storage_location: op.storage_location.as_deref(),
            submitted_date_time: Timestamp(op.submitted_at),
            user_id: &op.user_id,
        }
    }
}

/// A timestamp as chrono's serde writes it (RFC 3339, `Z`, as many fraction digits as it needs), formatted
/// into one string first: chrono's own `Serialize` hands serde_json one character at a time.
struct Timestamp(chrono::DateTime<chrono::Utc>);

impl serde::Serialize for Timestamp {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true))
    }
}

pub(crate) fn internal(e: serde_json::Error) -> GraphError {
    GraphError::internal(format!("serialising the entity: {e}"))
}

/// The entity as JSON with `@odata.etag`, keeping only the selected properties (and `id`).
pub fn entity_json(op: &Operation, selected: Option<&[String]>) -> Result<Value, GraphError> {
    projected(op, None, selected)
}

/// The entity as JSON with its annotations (and `@odata.context` when given), keeping only the selected
/// properties and `id`.
fn projected(op: &Operation, context: Option<&str>, selected: Option<&[String]>) -> Result<Value, GraphError> {
    let Value::Object(all) = serde_json::to_value(EntityBody::new(op, context)).map_err(internal)? else {
        return Err(GraphError::internal("entity did not serialise to an object"));
    };
    let keep = |key: &str| match selected {
        None => true,
        Some(names) => key.starts_with('@') || key == "id" || names.iter().any(|n| n == key),
    };
    Ok(Value::Object(all.into_iter().filter(|(key, _)| keep(key)).collect::<Map<_, _>>()))
}

/// The entity as the serialised body of a single-entity answer, with `@odata.context`.
pub fn entity_body(op: &Operation, context: &str, selected: Option<&[String]>) -> Result<Vec<u8>, GraphError> {
    match selected {
        // The common case (a client polling an operation) goes straight to bytes.
        None => serde_json::to_vec(&EntityBody::new(op, Some(context))).map_err(internal),
        Some(_) => serde_json::to_vec(&projected(op, Some(context), selected)?).map_err(internal),
    }
}

/// A page of the collection on the wire.
#[derive(serde::Serialize)]
struct CollectionBody<'a> {
    #[serde(rename = "@odata.context")]
    context: &'a str,
    #[serde(rename = "@odata.count", skip_serializing_if = "Option::is_none")]
    count: Option<u64>,
    value: Items<'a>,
    #[serde(rename = "@odata.nextLink", skip_serializing_if = "Option::is_none")]
    next_link: Option<&'a str>,
}

/// The entities of a page: whole, straight from the operations, or projected by `$select`.
#[derive(serde::Serialize)]
#[serde(untagged)]
enum Items<'a> {
    Whole(Vec<EntityBody<'a>>),
    Projected(Vec<Value>),
}

/// What a page of the collection says besides its operations.
pub struct PageAnnotations<'a> {
    /// `@odata.context`.
    pub context: &'a str,
    /// `@odata.count`, when asked for.
    pub count: Option<u64>,
    /// `@odata.nextLink`, when there is a next page.
    pub next_link: Option<&'a str>,
}

/// A page of the collection as the serialised body of a list answer.
pub fn collection_body(
    ops: &[Operation],
    selected: Option<&[String]>,
    page: PageAnnotations<'_>,
) -> Result<Vec<u8>, GraphError> {
    let value = match selected {
        None => Items::Whole(ops.iter().map(|op| EntityBody::new(op, None)).collect()),
        Some(_) => Items::Projected(ops.iter().map(|op| entity_json(op, selected)).collect::<Result<_, _>>()?),
    };
    let body = CollectionBody { context: page.context, count: page.count, value, next_link: page.next_link };
    serde_json::to_vec(&body).map_err(internal)
}

/// `@odata.context` of the entity set (`entity = false`) or of one entity, with a `$select` projection.
pub fn context_url(base: &str, selected: Option<&[String]>, entity: bool) -> String {
    let suffix = if entity { "/$entity" } else { "" };
    // Joined, not `format!`ted: every read of an operation makes one.
    [base, "/$metadata#dataPolicyOperations", &projection(selected), suffix].concat()
}

/// The `$select` part of an `@odata.context`: `(a,b)`, or nothing.
pub fn projection(selected: Option<&[String]>) -> String {
    selected.map(|names| format!("({})", names.join(","))).unwrap_or_default()
}

/// Reads an `If-Match` header value.
pub fn precondition(if_match: Option<&str>) -> Precondition {
    let Some(value) = if_match.map(str::trim).filter(|v| !v.is_empty()) else {
        return Precondition::Any;
    };
    if value == "*" {
        return Precondition::Any;
    }
    let tag = value.strip_prefix("W/").unwrap_or(value);
    tag.strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .and_then(|t| t.parse().ok())
        .map_or(Precondition::Never, Precondition::Version)
}

impl From<OperationError> for GraphError {
    fn from(error: OperationError) -> Self {
        match &error {
            OperationError::InvalidId(_) => GraphError::bad_request(error.to_string()),
            OperationError::NotFound(_) | OperationError::OtherTenant { .. } | OperationError::UserNotFound(_) => {
                GraphError::resource_not_found(error.to_string())
            }
            OperationError::Query(q) => query_error(q.clone()),
            OperationError::Invalid { property, .. } => {
                GraphError::bad_request(error.to_string()).with_target(*property)
            }
            OperationError::PreconditionFailed { .. } => GraphError::precondition_failed(error.to_string()),
            OperationError::Store(crate::store::StoreError::Unavailable(detail)) => GraphError::service_unavailable(
                "the service's database cannot be reached for a moment: ask again after Retry-After",
                detail.to_string(),
            ),
            OperationError::Store(e) => GraphError::internal(e.to_string()),
        }
    }
}

/// A refusal as it goes on the wire: the OData error, and whether it challenges the client to
/// authenticate (`WWW-Authenticate: Bearer`, with 401).
pub struct Refusal {
    /// The error.
    pub error: GraphError,
    /// Whether to send `WWW-Authenticate: Bearer`.
    pub challenge: bool,
}

impl From<GraphError> for Refusal {
    fn from(error: GraphError) -> Self {
        Refusal { error, challenge: false }
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unauthenticated { message, .. } => Refusal {
                error: GraphError::new(ErrorStatusCode::UNAUTHORIZED, "InvalidAuthenticationToken", message),
                challenge: true,
            },
            AuthError::Forbidden(message) => Refusal {
                error: GraphError::new(ErrorStatusCode::FORBIDDEN, "Authorization_RequestDenied", message),
                challenge: false,
            },
        }
    }
}

/// 405 `MethodNotAllowed` for `method` on `path`, naming the methods it allows.
pub fn method_not_allowed(method: &http::Method, path: &str, allow: &str) -> GraphError {
    GraphError::new(
        ErrorStatusCode::METHOD_NOT_ALLOWED,
        dpo_api::error::codes::METHOD_NOT_ALLOWED,
        format!("The HTTP method '{method}' is not allowed for the resource {path}; allowed: {allow}"),
    )
}

/// A query option that was not accepted, as Graph answers it: 400 naming the option.
pub fn query_error(error: QueryError) -> GraphError {
    GraphError::bad_request(error.message).with_target(error.option)
}

/// A query string for a link: `$` and `,` stay literal, as in Graph's own links.
pub fn link_query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default().replace("%24", "$").replace("%2C", ",")
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpo_api::model::DataPolicyOperation;

    #[test]
    fn if_match_values() {
        assert_eq!(precondition(None), Precondition::Any);
        assert_eq!(precondition(Some("*")), Precondition::Any);
        assert_eq!(precondition(Some("W/\"7\"")), Precondition::Version(7));
        assert_eq!(precondition(Some("\"7\"")), Precondition::Version(7));
        assert_eq!(precondition(Some("garbage")), Precondition::Never);
    }

    /// The operation as the model holds it (the SAS signature of `storageLocation` redacted).
    fn entity(op: &Operation) -> DataPolicyOperation {
        DataPolicyOperation {
            id: Some(op.id.to_string()),
            odata_type: None,
            completed_date_time: op.completed_at,
            progress: Some(op.progress),
            status: Some(op.status),
            storage_location: op.storage_location.clone(),
            submitted_date_time: Some(op.submitted_at),
            user_id: Some(op.user_id.clone()),
        }
    }

    #[test]
    fn the_body_is_the_model_s() {
        // The body as the model writes it: the annotations, then `DataPolicyOperation` flattened.
        #[derive(serde::Serialize)]
        struct ModelBody<'a> {
            #[serde(rename = "@odata.context", skip_serializing_if = "Option::is_none")]
            context: Option<&'a str>,
            #[serde(rename = "@odata.etag")]
            etag: String,
            #[serde(rename = "@dpo.failureReason", skip_serializing_if = "Option::is_none")]
            failure_reason: Option<&'a str>,
            #[serde(flatten)]
            entity: DataPolicyOperation,
        }
        let failed = failed_operation();
        let mut running = failed_operation();
        running.status = dpo_api::model::DataPolicyOperationStatus::Running;
        (running.completed_at, running.failure_reason, running.storage_location) = (None, None, None);
        running.progress = 12.5;
        // Fractions of a second: milliseconds, microseconds, nanoseconds, and a "quote" to escape.
        running.submitted_at += chrono::Duration::milliseconds(206);
        let mut odd = failed_operation();
        odd.submitted_at += chrono::Duration::microseconds(7);
        odd.completed_at = odd.completed_at.map(|at| at + chrono::Duration::nanoseconds(1));
        odd.user_id = "a \"quoted\" \u{1}name".into();
        for op in [&failed, &running, &odd] {
            for context in [None, Some("https://dpo.example/v1.0/$metadata#dataPolicyOperations/$entity")] {
                let model = ModelBody {
                    context,
                    etag: op.etag(),
                    failure_reason: op.failure_reason.as_deref(),
                    entity: entity(op),
                };
                let ours = serde_json::to_string(&EntityBody::new(op, context)).unwrap();
                assert_eq!(ours, serde_json::to_string(&model).unwrap());
            }
        }
    }

    fn failed_operation() -> Operation {
        use chrono::{TimeZone, Utc};
        Operation {
            id: uuid::Uuid::nil(),
            tenant_id: "t".into(),
            user_id: "u".into(),
            status: dpo_api::model::DataPolicyOperationStatus::Failed,
            progress: 40.0,
            storage_location: Some("https://a.blob.core.windows.net/c?sv=1&sig=REDACTED".into()),
            storage_secret: Some("https://a.blob.core.windows.net/c?sv=1&sig=secret".into()),
            submitted_at: Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap(),
            completed_at: Some(Utc.with_ymd_and_hms(2026, 1, 2, 3, 5, 0).unwrap()),
            version: 3,
            failure_reason: Some("the SAS expired".into()),
            request_id: None,
        }
    }

    #[test]
    fn the_body_straight_to_bytes_says_what_the_json_value_says() {
        let op = failed_operation();
        let body: Value = serde_json::from_slice(&entity_body(&op, "ctx", None).unwrap()).unwrap();
        let mut expected = entity_json(&op, None).unwrap();
        expected["@odata.context"] = Value::String("ctx".into());
        assert_eq!(body, expected);
        assert_eq!(body[FAILURE_REASON], "the SAS expired");
        assert_eq!(body["@odata.etag"], "W/\"3\"");
        assert_eq!(body["completedDateTime"], "2026-01-02T03:05:00Z");
        assert!(!body["storageLocation"].as_str().unwrap().contains("secret"));
    }

    #[test]
    fn a_page_says_what_its_entities_say_with_its_annotations() {
        let op = failed_operation();
        let page = |selected: Option<&[String]>| -> Value {
            let annotations = PageAnnotations { context: "ctx", count: Some(7), next_link: Some("next") };
            serde_json::from_slice(&collection_body(&[op.clone(), op.clone()], selected, annotations).unwrap()).unwrap()
        };
        let whole = page(None);
        assert_eq!(whole["@odata.context"], "ctx");
        assert_eq!(whole["@odata.count"], 7);
        assert_eq!(whole["@odata.nextLink"], "next");
        assert_eq!(whole["value"][1], entity_json(&op, None).unwrap());
        let selected = ["progress".to_string()];
        assert_eq!(page(Some(&selected))["value"][0], entity_json(&op, Some(&selected)).unwrap());
        let bare = collection_body(&[], None, PageAnnotations { context: "c", count: None, next_link: None }).unwrap();
        assert_eq!(String::from_utf8(bare).unwrap(), r#"{"@odata.context":"c","value":[]}"#);
    }

    #[test]
    fn a_projection_keeps_the_selected_properties_id_and_annotations() {
        let op = failed_operation();
        let body: Value =
            serde_json::from_slice(&entity_body(&op, "ctx", Some(&["status".to_string()])).unwrap()).unwrap();
        let mut keys: Vec<&str> = body.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["@dpo.failureReason", "@odata.context", "@odata.etag", "id", "status"]);
    }
}
