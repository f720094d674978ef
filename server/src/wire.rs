//! How domain values look on the wire: entities as Graph JSON, `$select` projections, OData context URLs,
//! ETags, and domain errors as OData errors.

use crate::{
    export::target::redact,
    odata::QueryError,
    operations::{Operation, OperationError, Precondition},
};
use dpo_api::{GraphError, model::DataPolicyOperation};
use serde_json::{Map, Value};

/// Instance annotation that says why a failed operation failed.
pub const FAILURE_REASON: &str = "@dpo.failureReason";

/// The entity as Graph shows it (the SAS signature of `storageLocation` redacted).
pub fn entity(op: &Operation) -> DataPolicyOperation {
    DataPolicyOperation {
        id: Some(op.id.to_string()),
        odata_type: None,
        completed_date_time: op.completed_at,
        progress: Some(op.progress),
        status: Some(op.status),
        storage_location: op.storage_location.as_deref().map(redact),
        submitted_date_time: Some(op.submitted_at),
        user_id: Some(op.user_id.clone()),
    }
}

/// The entity as JSON with `@odata.etag`, keeping only the selected properties (and `id`).
pub fn entity_json(op: &Operation, selected: Option<&[String]>) -> Result<Value, GraphError> {
    let Value::Object(all) = serde_json::to_value(entity(op)).map_err(|e| GraphError::internal(e.to_string()))? else {
        return Err(GraphError::internal("entity did not serialise to an object"));
    };
    let mut out = Map::new();
    out.insert("@odata.etag".into(), Value::String(op.etag()));
    if let Some(reason) = &op.failure_reason {
        // An instance annotation: Graph clients ignore annotations they do not know.
        out.insert(FAILURE_REASON.into(), Value::String(reason.clone()));
    }
    for (key, value) in all {
        let keep = match selected {
            None => true,
            Some(names) => key == "id" || names.contains(&key),
        };
        if keep {
            out.insert(key, value);
        }
    }
    Ok(Value::Object(out))
}

/// `@odata.context` of the entity set (`entity = false`) or of one entity, with a `$select` projection.
pub fn context_url(base: &str, selected: Option<&[String]>, entity: bool) -> String {
    let projection = selected.map(|names| format!("({})", names.join(","))).unwrap_or_default();
    let suffix = if entity { "/$entity" } else { "" };
    format!("{base}/$metadata#dataPolicyOperations{projection}{suffix}")
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
            OperationError::NotFound(_) | OperationError::UserNotFound(_) => {
                GraphError::resource_not_found(error.to_string())
            }
            OperationError::Query(q) => q.clone().into(),
            OperationError::Invalid { property, .. } => {
                GraphError::bad_request(error.to_string()).with_target(*property)
            }
            OperationError::PreconditionFailed { .. } => GraphError::precondition_failed(error.to_string()),
            OperationError::Store(e) => GraphError::internal(e.to_string()),
        }
    }
}

impl From<QueryError> for GraphError {
    fn from(error: QueryError) -> Self {
        GraphError::bad_request(error.message).with_target(error.option)
    }
}

/// A query string for a link: `$` and `,` stay literal, as in Graph's own links.
pub fn link_query(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap_or_default().replace("%24", "$").replace("%2C", ",")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn if_match_values() {
        assert_eq!(precondition(None), Precondition::Any);
        assert_eq!(precondition(Some("*")), Precondition::Any);
        assert_eq!(precondition(Some("W/\"7\"")), Precondition::Version(7));
        assert_eq!(precondition(Some("\"7\"")), Precondition::Version(7));
        assert_eq!(precondition(Some("garbage")), Precondition::Never);
    }
}
