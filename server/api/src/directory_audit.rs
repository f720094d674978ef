//! The audit trail on the wire: `microsoft.graph.directoryAudit` and the types it holds, as Microsoft
//! Graph exposes audit events at `/auditLogs/directoryAudits`.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One audit event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.directoryAudit")]
pub struct DirectoryAudit {
    /// Unique id of the event (a GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub id: Option<String>,
    /// OData type annotation; Graph leaves it out for the declared type.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
    /// When it happened (UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "DateTime<Utc>")]
    pub activity_date_time: Option<DateTime<Utc>>,
    /// What was done, e.g. `Export personal data`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub activity_display_name: Option<String>,
    /// Further details: key and value pairs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<KeyValue>")]
    pub additional_details: Option<Vec<KeyValue>>,
    /// The resource category, e.g. `DataPolicyOperations`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub category: Option<String>,
    /// Correlates the activity across services; dpo puts the request's `request-id` here.
    #[serde(default)]
    pub correlation_id: Option<String>,
    /// Who did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "AuditActivityInitiator")]
    pub initiated_by: Option<AuditActivityInitiator>,
    /// The service that recorded it.
    #[serde(default)]
    pub logged_by_service: Option<String>,
    /// The kind of operation: `Add`, `Update`, `Delete`, `Other`.
    #[serde(default)]
    pub operation_type: Option<String>,
    /// How it ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "OrNull<OperationResult>")]
    pub result: Option<OperationResult>,
    /// Why it failed, if it did.
    #[serde(default)]
    pub result_reason: Option<String>,
    /// What it was done to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<TargetResource>")]
    pub target_resources: Option<Vec<TargetResource>>,
}

/// Who did an audited activity: a user or an application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.auditActivityInitiator")]
pub struct AuditActivityInitiator {
    /// The application, when an application acted as itself.
    #[serde(default)]
    #[schemars(with = "OrNull<AppIdentity>")]
    pub app: Option<AppIdentity>,
    /// The user, when a signed-in user acted.
    #[serde(default)]
    #[schemars(with = "OrNull<UserIdentity>")]
    pub user: Option<UserIdentity>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// An application in an audit event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.appIdentity")]
pub struct AppIdentity {
    /// The application's id (`appid` of its token).
    #[serde(default)]
    pub app_id: Option<String>,
    /// Its name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its service principal's object id.
    #[serde(default)]
    pub service_principal_id: Option<String>,
    /// Its service principal's name.
    #[serde(default)]
    pub service_principal_name: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A user in an audit event.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.userIdentity")]
pub struct UserIdentity {
    /// The user's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The user's object id (`oid` of the token).
    #[serde(default)]
    pub id: Option<String>,
    /// The client's IP address.
    #[serde(default)]
    pub ip_address: Option<String>,
    /// The user's sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A key and its value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.keyValue")]
pub struct KeyValue {
    /// The key.
    #[serde(default)]
    pub key: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// What an audited activity was done to.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.targetResource")]
pub struct TargetResource {
    /// Its name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// For a group, its kind.
    #[serde(default)]
    #[schemars(with = "OrNull<GroupType>")]
    pub group_type: Option<GroupType>,
    /// Its id.
    #[serde(default)]
    pub id: Option<String>,
    /// What changed in it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Vec<ModifiedProperty>")]
    pub modified_properties: Option<Vec<ModifiedProperty>>,
    /// Its kind: `User`, `DataPolicyOperation`, ...
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// For a user, its sign-in name.
    #[serde(default)]
    pub user_principal_name: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A property an activity changed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.modifiedProperty")]
pub struct ModifiedProperty {
    /// The property's name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its value after.
    #[serde(default)]
    pub new_value: Option<String>,
    /// Its value before.
    #[serde(default)]
    pub old_value: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// How an audited activity ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.operationResult")]
#[allow(missing_docs)]
pub enum OperationResult {
    Success,
    Failure,
    Timeout,
    UnknownFutureValue,
}

/// The kind of a group.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.groupType")]
#[allow(missing_docs)]
pub enum GroupType {
    #[serde(rename = "unifiedGroups")]
    UnifiedGroups,
    #[serde(rename = "azureAD")]
    AzureAd,
    #[serde(rename = "unknownFutureValue")]
    UnknownFutureValue,
}

/// A page of audit events.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.directoryAuditCollectionResponse")]
pub struct DirectoryAuditCollection {
    /// OData context URL (Microsoft's document does not list it).
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub odata_context: Option<String>,
    /// Total number of matching events, when `$count=true` was asked for.
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// URL of the next page, absent on the last one.
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    /// The events on this page.
    #[serde(default)]
    pub value: Vec<DirectoryAudit>,
}

pub use dpo_model::OrNull;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_serialises_in_graphs_shape() {
        let event = DirectoryAudit {
            id: Some("e".into()),
            activity_display_name: Some("Export personal data".into()),
            result: Some(OperationResult::Success),
            initiated_by: Some(AuditActivityInitiator {
                app: Some(AppIdentity { app_id: Some("a".into()), ..Default::default() }),
                ..Default::default()
            }),
            target_resources: Some(vec![TargetResource { kind: Some("User".into()), ..Default::default() }]),
            ..Default::default()
        };
        let json = serde_json::to_value(&event).unwrap();
        assert_eq!(json["result"], "success");
        assert_eq!(json["initiatedBy"]["app"]["appId"], "a");
        assert!(json["initiatedBy"]["user"].is_null());
        assert_eq!(json["targetResources"][0]["type"], "User");
        assert!(json["correlationId"].is_null());
    }
}
