//! dpo-model: the resources on the wire, apart from the API traits so that the crates below the server's
//! edge (dpo-domain, dpo-store) use them without depending on dropshot.
//!
//! The resources on the wire: `microsoft.graph.dataPolicyOperation`, its collection, and the
//! `exportPersonalData` action body; `microsoft.graph.subjectRightsRequest` and what it holds in
//! [`subject_rights`].
//!
//! Where schemars would describe a field differently from Microsoft's document, a small schema type
//! ([`ProgressSchema`], [`StatusSchema`]) or `#[schemars(with = ...)]` gives it Microsoft's exact shape.
#![warn(missing_docs)]

use chrono::{DateTime, Utc};
use schemars::{
    JsonSchema,
    r#gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject, SubschemaValidation},
};
use serde::{Deserialize, Deserializer, Serialize};

/// Where an operation stands. Graph may add values later; clients map unknown ones to `unknownFutureValue`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.dataPolicyOperationStatus")]
#[allow(missing_docs)]
pub enum DataPolicyOperationStatus {
    NotStarted,
    Running,
    Complete,
    Failed,
    UnknownFutureValue,
}

impl DataPolicyOperationStatus {
    /// The wire name, e.g. `notStarted`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NotStarted => "notStarted",
            Self::Running => "running",
            Self::Complete => "complete",
            Self::Failed => "failed",
            Self::UnknownFutureValue => "unknownFutureValue",
        }
    }

    /// Whether the operation has finished, one way or the other.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Complete | Self::Failed)
    }
}

/// A submitted data policy operation (all properties are read-only on Graph).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.dataPolicyOperation")]
pub struct DataPolicyOperation {
    /// Unique key of the operation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub id: Option<String>,
    /// OData type annotation; Graph leaves it out for the declared type.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
    /// When the operation completed (UTC); null until then.
    #[serde(default)]
    pub completed_date_time: Option<DateTime<Utc>>,
    /// Progress of the operation, 0 to 100.
    #[serde(default, deserialize_with = "progress_from_number_or_string", skip_serializing_if = "Option::is_none")]
    #[schemars(with = "ProgressSchema")]
    pub progress: Option<f64>,
    /// Where the operation stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "StatusSchema")]
    pub status: Option<DataPolicyOperationStatus>,
    /// The URL location to where data is being exported.
    #[serde(default)]
    pub storage_location: Option<String>,
    /// When the operation was submitted (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DateTime<Utc>")]
    pub submitted_date_time: Option<DateTime<Utc>>,
    /// The id of the user whose data the operation is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub user_id: Option<String>,
}

/// OData's `Edm.Double` may arrive as a number or as a string (`"50"`, `"NaN"`); both are read.
fn progress_from_number_or_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum NumberOrString {
        Number(f64),
        Text(String),
    }
    match Option::<NumberOrString>::deserialize(d)? {
        None => Ok(None),
        Some(NumberOrString::Number(n)) => Ok(Some(n)),
        Some(NumberOrString::Text(t)) => match t.as_str() {
            "INF" => Ok(Some(f64::INFINITY)),
            "-INF" => Ok(Some(f64::NEG_INFINITY)),
            "NaN" => Ok(Some(f64::NAN)),
            other => other
                .parse()
                .map(Some)
                .map_err(|_| serde::de::Error::custom(format!("progress must be a number, not {other:?}"))),
        },
    }
}

/// A page of operations.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.dataPolicyOperationCollectionResponse")]
pub struct DataPolicyOperationCollection {
    /// OData context URL. Graph sends it on every response; Microsoft's document does not list it.
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub odata_context: Option<String>,
    /// Total number of matching operations, when `$count=true` was asked for.
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// URL of the next page, absent on the last one.
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    /// The operations on this page.
    #[serde(default)]
    pub value: Vec<DataPolicyOperation>,
}

/// Body of `POST /users/{user-id}/exportPersonalData`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ExportPersonalDataRequest {
    /// Shared access signature (SAS) URL of the Azure Storage location to export to.
    #[serde(rename = "storageLocation", default)]
    pub storage_location: Option<String>,
}

pub mod subject_rights;

/// Microsoft's schema for a property that may hold a `T` or null: `anyOf: [T, {type: object, nullable}]`.
pub struct OrNull<T>(std::marker::PhantomData<T>);

impl<T: JsonSchema> JsonSchema for OrNull<T> {
    fn schema_name() -> String {
        format!("{}OrNull", T::schema_name())
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let object = SchemaObject { instance_type: Some(InstanceType::Object.into()), ..Default::default() };
        Schema::Object(SchemaObject {
            subschemas: Some(Box::new(SubschemaValidation {
                any_of: Some(vec![generator.subschema_for::<T>(), nullable(object)]),
                ..Default::default()
            })),
            ..Default::default()
        })
    }
}

fn nullable(mut schema: SchemaObject) -> Schema {
    schema.extensions.insert("nullable".to_string(), serde_json::Value::Bool(true));
    Schema::Object(schema)
}

/// Microsoft's schema for `progress`: a double, a string, or one of the special values `-INF`, `INF`, `NaN`.
pub struct ProgressSchema;

impl JsonSchema for ProgressSchema {
    fn schema_name() -> String {
        "dataPolicyOperationProgress".to_string()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let number = SchemaObject {
            instance_type: Some(InstanceType::Number.into()),
            format: Some("double".to_string()),
            ..Default::default()
        };
        let string = SchemaObject { instance_type: Some(InstanceType::String.into()), ..Default::default() };
        Schema::Object(SchemaObject {
            subschemas: Some(Box::new(SubschemaValidation {
                one_of: Some(vec![nullable(number), nullable(string), generator.subschema_for::<ReferenceNumeric>()]),
                ..Default::default()
            })),
            ..Default::default()
        })
    }
}

/// Microsoft's `ReferenceNumeric`: the special values of `Edm.Double` that JSON numbers cannot carry.
pub struct ReferenceNumeric;

impl JsonSchema for ReferenceNumeric {
    fn schema_name() -> String {
        "ReferenceNumeric".to_string()
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        nullable(SchemaObject {
            instance_type: Some(InstanceType::String.into()),
            enum_values: Some(vec!["-INF".into(), "INF".into(), "NaN".into()]),
            ..Default::default()
        })
    }
}

/// Microsoft's schema for `status`: the status enum, or a (null) object for values this version lacks.
pub struct StatusSchema;

impl JsonSchema for StatusSchema {
    fn schema_name() -> String {
        "dataPolicyOperationStatusValue".to_string()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        let object = SchemaObject { instance_type: Some(InstanceType::Object.into()), ..Default::default() };
        Schema::Object(SchemaObject {
            subschemas: Some(Box::new(SubschemaValidation {
                any_of: Some(vec![generator.subschema_for::<DataPolicyOperationStatus>(), nullable(object)]),
                ..Default::default()
            })),
            ..Default::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn microsofts_example_without_odata_type_parses() {
        let op: DataPolicyOperation = serde_json::from_str(
            r#"{"id":"d007e3da-cd9b-4b02-8d66-422403c53e3f","status":"running","progress":"50",
                "storageLocation":"https://x.blob.core.windows.net/c?sig=a","userId":"u",
                "submittedDateTime":"2014-01-01T00:00:00Z","completedDateTime":null}"#,
        )
        .unwrap();
        assert_eq!(op.status, Some(DataPolicyOperationStatus::Running));
        assert_eq!(op.progress, Some(50.0));
        assert_eq!(op.completed_date_time, None);
    }

    #[test]
    fn a_pending_operation_serialises_completed_date_time_as_null() {
        let op = DataPolicyOperation { id: Some("x".into()), ..Default::default() };
        let json = serde_json::to_value(&op).unwrap();
        assert!(json.get("completedDateTime").is_some_and(|v| v.is_null()), "{json}");
        assert!(json.get("@odata.type").is_none(), "{json}");
    }
}
