//! `microsoft.graph.subjectRightsRequest` on the wire (Graph v1.0, `/security/subjectRightsRequests`), the
//! types it holds, and `microsoft.graph.authoredNote`, in Microsoft's shapes: what may be null is
//! `anyOf: [T, null object]` ([`OrNull`]), collections are never null.

use super::{OrNull, nullable};
use chrono::{DateTime, Utc};
use schemars::{
    JsonSchema,
    r#gen::SchemaGenerator,
    schema::{InstanceType, Schema, SchemaObject},
};
use serde::{Deserialize, Serialize};

/// A subject rights request: a case about one person's data, with a deadline, stages and history.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.subjectRightsRequest")]
pub struct SubjectRightsRequest {
    /// Unique id (a GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub id: Option<String>,
    /// OData type annotation; Graph leaves it out for the declared type.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
    /// Who the request is assigned to.
    #[serde(default)]
    #[schemars(with = "OrNull<Identity>")]
    pub assigned_to: Option<Identity>,
    /// When it was closed (UTC).
    #[serde(default)]
    pub closed_date_time: Option<DateTime<Utc>>,
    /// Who created it.
    #[serde(default)]
    #[schemars(with = "OrNull<IdentitySet>")]
    pub created_by: Option<IdentitySet>,
    /// When it was created (UTC).
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
    /// The person the request is about.
    #[serde(default)]
    #[schemars(with = "OrNull<DataSubject>")]
    pub data_subject: Option<DataSubject>,
    /// What kind of person that is.
    #[serde(default)]
    #[schemars(with = "OrNull<DataSubjectType>")]
    pub data_subject_type: Option<DataSubjectType>,
    /// What the request is about.
    #[serde(default)]
    pub description: Option<String>,
    /// Its name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// The id another system tracks it by; cannot change after creation.
    #[serde(default)]
    pub external_id: Option<String>,
    /// Every change of stage and every action, oldest first.
    #[serde(default)]
    pub history: Vec<SubjectRightsRequestHistory>,
    /// What was found: counts and sizes.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestDetail>")]
    pub insight: Option<SubjectRightsRequestDetail>,
    /// When it is due internally (UTC).
    #[serde(default)]
    pub internal_due_date_time: Option<DateTime<Utc>>,
    /// Who changed it last.
    #[serde(default)]
    #[schemars(with = "OrNull<IdentitySet>")]
    pub last_modified_by: Option<IdentitySet>,
    /// When it changed last (UTC).
    #[serde(default)]
    pub last_modified_date_time: Option<DateTime<Utc>>,
    /// Whether it waits after the estimate until approved.
    #[serde(default)]
    pub pause_after_estimate: Option<bool>,
    /// The regulations it fulfils, e.g. `GDPR`, `CCPA`.
    #[serde(default)]
    #[schemars(with = "Vec<Option<String>>")]
    pub regulations: Vec<String>,
    /// Its stages, in order.
    #[serde(default)]
    pub stages: Vec<SubjectRightsRequestStageDetail>,
    /// Whether it is active or closed.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestStatus>")]
    pub status: Option<SubjectRightsRequestStatus>,
    /// What is asked: a copy (`access`, `export`), erasure (`delete`), ...
    #[serde(default, rename = "type")]
    #[schemars(with = "OrNull<SubjectRightsRequestType>")]
    pub kind: Option<SubjectRightsRequestType>,
}

/// The person a request is about.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.dataSubject")]
pub struct DataSubject {
    /// Their email address.
    #[serde(default)]
    pub email: Option<String>,
    /// Their first name.
    #[serde(default)]
    pub first_name: Option<String>,
    /// Their last name.
    #[serde(default)]
    pub last_name: Option<String>,
    /// Their country or region of residency.
    #[serde(default)]
    pub residency: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// An identity: a user or an application.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.identity")]
pub struct Identity {
    /// Its display name.
    #[serde(default)]
    pub display_name: Option<String>,
    /// Its id.
    #[serde(default)]
    pub id: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// Who acted: a user, an application or a device.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.identitySet")]
pub struct IdentitySet {
    /// The application.
    #[serde(default)]
    #[schemars(with = "OrNull<Identity>")]
    pub application: Option<Identity>,
    /// The device.
    #[serde(default)]
    #[schemars(with = "OrNull<Identity>")]
    pub device: Option<Identity>,
    /// The user.
    #[serde(default)]
    #[schemars(with = "OrNull<Identity>")]
    pub user: Option<Identity>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// One stage of a request and where it stands.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.subjectRightsRequestStageDetail")]
pub struct SubjectRightsRequestStageDetail {
    /// Why the stage failed, if it did.
    #[serde(default)]
    #[schemars(with = "OrNull<PublicError>")]
    pub error: Option<PublicError>,
    /// The stage.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestStage>")]
    pub stage: Option<SubjectRightsRequestStage>,
    /// Where it stands.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestStageStatus>")]
    pub status: Option<SubjectRightsRequestStageStatus>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// One change of a request: a stage moving on, or an action.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.subjectRightsRequestHistory")]
pub struct SubjectRightsRequestHistory {
    /// Who changed it.
    #[serde(default)]
    #[schemars(with = "OrNull<IdentitySet>")]
    pub changed_by: Option<IdentitySet>,
    /// When (UTC).
    #[serde(default)]
    pub event_date_time: Option<DateTime<Utc>>,
    /// The stage it concerned.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestStage>")]
    pub stage: Option<SubjectRightsRequestStage>,
    /// The stage's status after the change.
    #[serde(default)]
    #[schemars(with = "OrNull<SubjectRightsRequestStageStatus>")]
    pub stage_status: Option<SubjectRightsRequestStageStatus>,
    /// What happened, e.g. `created`, `stageChanged`, `approved`.
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// What a request found: counts and sizes, in all and per source.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.subjectRightsRequestDetail")]
pub struct SubjectRightsRequestDetail {
    /// Items excluded from the request.
    #[serde(default)]
    #[schemars(with = "NullableInt64")]
    pub excluded_item_count: Option<i64>,
    /// Items per insight.
    #[serde(default)]
    pub insight_counts: Vec<KeyValuePair>,
    /// Items found.
    #[serde(default)]
    #[schemars(with = "NullableInt64")]
    pub item_count: Option<i64>,
    /// Items that need review.
    #[serde(default)]
    #[schemars(with = "NullableInt64")]
    pub item_need_review: Option<i64>,
    /// Items per source (Graph: per product).
    #[serde(default)]
    pub product_item_counts: Vec<KeyValuePair>,
    /// Items signed off.
    #[serde(default)]
    #[schemars(with = "NullableInt64")]
    pub signed_off_item_count: Option<i64>,
    /// Bytes found in all.
    #[serde(default)]
    #[schemars(with = "NullableInt64")]
    pub total_item_size: Option<i64>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A name and a value.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.keyValuePair")]
pub struct KeyValuePair {
    /// The name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub name: Option<String>,
    /// The value.
    #[serde(default)]
    pub value: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// Why something failed, as a stage reports it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.publicError")]
pub struct PublicError {
    /// The error code.
    #[serde(default)]
    pub code: Option<String>,
    /// Details.
    #[serde(default)]
    pub details: Vec<PublicErrorDetail>,
    /// The inner error.
    #[serde(default)]
    #[schemars(with = "OrNull<PublicInnerError>")]
    pub inner_error: Option<PublicInnerError>,
    /// What went wrong.
    #[serde(default)]
    pub message: Option<String>,
    /// What it concerns.
    #[serde(default)]
    pub target: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A detail of a [`PublicError`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.publicErrorDetail")]
pub struct PublicErrorDetail {
    /// The error code.
    #[serde(default)]
    pub code: Option<String>,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
    /// What it concerns.
    #[serde(default)]
    pub target: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// The inner error of a [`PublicError`].
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.publicInnerError")]
pub struct PublicInnerError {
    /// The error code.
    #[serde(default)]
    pub code: Option<String>,
    /// Details.
    #[serde(default)]
    pub details: Vec<PublicErrorDetail>,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
    /// What it concerns.
    #[serde(default)]
    pub target: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

/// A note on a request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.authoredNote")]
pub struct AuthoredNote {
    /// Unique id (a GUID).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub id: Option<String>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
    /// Who wrote it.
    #[serde(default)]
    #[schemars(with = "OrNull<Identity>")]
    pub author: Option<Identity>,
    /// What it says.
    #[serde(default)]
    #[schemars(with = "OrNull<ItemBody>")]
    pub content: Option<ItemBody>,
    /// When it was written (UTC).
    #[serde(default)]
    pub created_date_time: Option<DateTime<Utc>>,
}

/// Text or HTML, as given: dpo stores and returns it, and never renders it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(rename = "microsoft.graph.itemBody")]
pub struct ItemBody {
    /// The content.
    #[serde(default)]
    pub content: Option<String>,
    /// `text` or `html`.
    #[serde(default)]
    #[schemars(with = "OrNull<BodyType>")]
    pub content_type: Option<BodyType>,
    /// OData type annotation.
    #[serde(rename = "@odata.type", default, skip_serializing_if = "Option::is_none")]
    #[schemars(with = "String")]
    pub odata_type: Option<String>,
}

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident, $schema:literal, [$($variant:ident = $wire:literal),* $(,)?]) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
        #[schemars(rename = $schema)]
        #[allow(missing_docs)]
        pub enum $name {
            $(#[serde(rename = $wire)] $variant,)*
        }

        impl $name {
            /// Every member, in the order Graph declares them.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The wire name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $wire,)*
                }
            }

            /// The member with this wire name.
            pub fn named(name: &str) -> Option<$name> {
                Self::ALL.iter().copied().find(|m| m.as_str() == name)
            }
        }
    };
}

wire_enum!(
    /// What kind of person a request is about.
    DataSubjectType, "microsoft.graph.dataSubjectType",
    [Customer = "customer", CurrentEmployee = "currentEmployee", FormerEmployee = "formerEmployee",
     ProspectiveEmployee = "prospectiveEmployee", Student = "student", Teacher = "teacher", Faculty = "faculty",
     Other = "other", UnknownFutureValue = "unknownFutureValue"]
);

wire_enum!(
    /// What a request asks for.
    SubjectRightsRequestType, "microsoft.graph.subjectRightsRequestType",
    [Export = "export", Delete = "delete", Access = "access", TagForAction = "tagForAction",
     UnknownFutureValue = "unknownFutureValue"]
);

wire_enum!(
    /// Whether a request is open.
    SubjectRightsRequestStatus, "microsoft.graph.subjectRightsRequestStatus",
    [Active = "active", Closed = "closed", UnknownFutureValue = "unknownFutureValue"]
);

wire_enum!(
    /// A stage of a request.
    SubjectRightsRequestStage, "microsoft.graph.subjectRightsRequestStage",
    [ContentRetrieval = "contentRetrieval", ContentReview = "contentReview", GenerateReport = "generateReport",
     ContentDeletion = "contentDeletion", CaseResolved = "caseResolved", ContentEstimate = "contentEstimate",
     UnknownFutureValue = "unknownFutureValue", Approval = "approval"]
);

wire_enum!(
    /// Where a stage stands.
    SubjectRightsRequestStageStatus, "microsoft.graph.subjectRightsRequestStageStatus",
    [NotStarted = "notStarted", Current = "current", Completed = "completed", Failed = "failed",
     UnknownFutureValue = "unknownFutureValue"]
);

wire_enum!(
    /// How a body's content is written.
    BodyType, "microsoft.graph.bodyType",
    [Text = "text", Html = "html"]
);

/// The body of an action on a request (`approve`, `reject`, `close`): an optional comment, kept as a note.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RequestAction {
    /// Why; becomes a note of the request.
    #[serde(default)]
    pub comment: Option<String>,
}

/// A page of requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.subjectRightsRequestCollectionResponse")]
pub struct SubjectRightsRequestCollection {
    /// OData context URL (Graph sends it; Microsoft's document does not list it).
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub odata_context: Option<String>,
    /// Total number of matching requests, when `$count=true` was asked for.
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// URL of the next page, absent on the last one.
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    /// The requests on this page.
    #[serde(default)]
    pub value: Vec<SubjectRightsRequest>,
}

/// A page of notes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[schemars(rename = "microsoft.graph.authoredNoteCollectionResponse")]
pub struct AuthoredNoteCollection {
    /// OData context URL.
    #[serde(rename = "@odata.context", default, skip_serializing_if = "Option::is_none")]
    #[schemars(skip)]
    pub odata_context: Option<String>,
    /// Total number of notes, when `$count=true` was asked for.
    #[serde(rename = "@odata.count", default, skip_serializing_if = "Option::is_none")]
    pub count: Option<i64>,
    /// URL of the next page, absent on the last one.
    #[serde(rename = "@odata.nextLink", default, skip_serializing_if = "Option::is_none")]
    pub next_link: Option<String>,
    /// The notes on this page.
    #[serde(default)]
    pub value: Vec<AuthoredNote>,
}

/// Microsoft's `Edm.Int64` that may be null: `type: number, format: int64, nullable: true`.
pub struct NullableInt64;

impl JsonSchema for NullableInt64 {
    fn schema_name() -> String {
        "NullableInt64".to_string()
    }

    fn is_referenceable() -> bool {
        false
    }

    fn json_schema(_: &mut SchemaGenerator) -> Schema {
        nullable(SchemaObject {
            instance_type: Some(InstanceType::Number.into()),
            format: Some("int64".to_string()),
            ..Default::default()
        })
    }
}
