//! Request parameters: path segments, OData query options and headers.
//!
//! Query options keep their OData names (`$top`, `$filter`, ...). These types describe them for the
//! document; the server reads the query string itself with OData's rules (see
//! [`crate::extract::ODataQuery`]). Microsoft declares `$select`, `$orderby` and `$expand` as arrays sent
//! comma-separated (`style: form, explode: false`); dropshot describes only scalar query parameters, so
//! they are described as one string ([`CommaList`]). That difference is listed, with this reason, in
//! `openapi/drift-allowlist.toml`.

use schemars::{
    JsonSchema,
    r#gen::SchemaGenerator,
    schema::{InstanceType, NumberValidation, Schema, SchemaObject},
};
use serde::Deserialize;

/// Path of a single operation: `/dataPolicyOperations/{dataPolicyOperation-id}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct OperationPath {
    /// The unique identifier of dataPolicyOperation.
    #[serde(rename = "dataPolicyOperation-id")]
    pub id: String,
}

/// Path of one audit event: `/auditLogs/directoryAudits/{directoryAudit-id}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct DirectoryAuditPath {
    /// The unique identifier of directoryAudit.
    #[serde(rename = "directoryAudit-id")]
    pub id: String,
}

/// Path of a subject rights request: `/security/subjectRightsRequests/{subjectRightsRequest-id}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct RequestPath {
    /// The unique identifier of subjectRightsRequest.
    #[serde(rename = "subjectRightsRequest-id")]
    pub id: String,
}

/// Path of a user: `/users/{user-id}`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
pub struct UserPath {
    /// The unique identifier (or userPrincipalName) of the user.
    #[serde(rename = "user-id")]
    pub user_id: String,
}

/// Query options of the list operation.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct ListQuery {
    /// Show only the first n items.
    #[serde(rename = "$top", default)]
    #[schemars(with = "Option<NonNegativeInteger>")]
    pub top: Option<u64>,
    /// Skip the first n items.
    #[serde(rename = "$skip", default)]
    #[schemars(with = "Option<NonNegativeInteger>")]
    pub skip: Option<u64>,
    /// Search items by search phrases.
    #[serde(rename = "$search", default)]
    pub search: Option<String>,
    /// Filter items by property values.
    #[serde(rename = "$filter", default)]
    pub filter: Option<String>,
    /// Include count of items.
    #[serde(rename = "$count", default)]
    pub count: Option<bool>,
    /// Order items by property values.
    #[serde(rename = "$orderby", default)]
    pub orderby: Option<CommaList>,
    /// Select properties to be returned.
    #[serde(rename = "$select", default)]
    pub select: Option<CommaList>,
    /// Expand related entities.
    #[serde(rename = "$expand", default)]
    pub expand: Option<CommaList>,
}

/// Query options of the single-entity GET.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct GetQuery {
    /// Select properties to be returned.
    #[serde(rename = "$select", default)]
    pub select: Option<CommaList>,
    /// Expand related entities.
    #[serde(rename = "$expand", default)]
    pub expand: Option<CommaList>,
}

/// Query options of `GET /dataPolicyOperations/$count`.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct CountQuery {
    /// Search items by search phrases.
    #[serde(rename = "$search", default)]
    pub search: Option<String>,
    /// Filter items by property values.
    #[serde(rename = "$filter", default)]
    pub filter: Option<String>,
}

/// The `If-Match` request header of DELETE.
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
pub struct IfMatchHeader {
    /// ETag
    #[serde(rename = "If-Match", default)]
    pub if_match: Option<String>,
}

/// A comma-separated list in one query parameter, e.g. `$select=id,status`, as sent: the server's OData
/// reader splits and checks it (an empty item or one named twice is an error there).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct CommaList(pub String);

impl JsonSchema for CommaList {
    fn schema_name() -> String {
        "CommaList".to_string()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        String::json_schema(generator)
    }
}

/// Microsoft's schema for `$top`/`$skip`: an integer of at least 0, with no format.
pub struct NonNegativeInteger;

impl JsonSchema for NonNegativeInteger {
    fn schema_name() -> String {
        "NonNegativeInteger".to_string()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        Schema::Object(SchemaObject {
            instance_type: Some(InstanceType::Integer.into()),
            number: Some(Box::new(NumberValidation { minimum: Some(0.0), ..Default::default() })),
            ..Default::default()
        })
    }
}
