//! The entity types whose collections take query options: their properties with their EDM types, as
//! `$filter`, `$orderby` and `$select` may name them.

/// An enum type: its name and members, as on the wire.
#[derive(Debug, PartialEq, Eq)]
pub struct EnumType {
    /// Its qualified name, e.g. `microsoft.graph.dataPolicyOperationStatus`.
    pub name: &'static str,
    /// Its members, in declaration order.
    pub members: &'static [&'static str],
}

impl EnumType {
    /// The name without its namespace, e.g. `dataPolicyOperationStatus`.
    pub fn short_name(&self) -> &'static str {
        self.name.rsplit('.').next().unwrap_or(self.name)
    }

    /// The member spelled `name`, if it is one.
    pub fn member(&self, name: &str) -> Option<&'static str> {
        self.members.iter().copied().find(|m| *m == name)
    }
}

/// The EDM type of a property, as far as filtering and sorting care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Edm.String`.
    String,
    /// The entity's id: an `Edm.String` holding a GUID.
    Id,
    /// `Edm.DateTimeOffset`.
    DateTime,
    /// `Edm.Double`.
    Double,
    /// An enum type.
    Enum(&'static EnumType),
}

/// A property of an entity type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// Its name (or path, `dataSubject/email`) on the wire.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether it can be null.
    pub nullable: bool,
}

/// An entity type whose collection takes query options.
#[derive(Debug, PartialEq, Eq)]
pub struct EntityType {
    /// Its qualified name, e.g. `microsoft.graph.dataPolicyOperation`.
    pub name: &'static str,
    /// The properties `$filter` and `$orderby` may name.
    pub properties: &'static [Property],
    /// The properties `$select` may name (the filterable ones and others).
    pub selectable: &'static [&'static str],
}

impl EntityType {
    /// The property with this name (OData names are case-sensitive).
    pub fn property(&self, name: &str) -> Option<Property> {
        self.properties.iter().copied().find(|p| p.name == name)
    }

    /// The names of the properties, for messages.
    pub fn names(&self) -> String {
        self.properties.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
    }
}

/// `microsoft.graph.dataPolicyOperationStatus`.
pub const OPERATION_STATUS: EnumType = EnumType {
    name: "microsoft.graph.dataPolicyOperationStatus",
    members: &["notStarted", "running", "complete", "failed", "unknownFutureValue"],
};

/// `microsoft.graph.dataPolicyOperation`, its properties in the order Graph documents them.
pub const DATA_POLICY_OPERATION: EntityType = EntityType {
    name: "microsoft.graph.dataPolicyOperation",
    properties: &[
        Property { name: "id", kind: Kind::Id, nullable: false },
        Property { name: "completedDateTime", kind: Kind::DateTime, nullable: true },
        Property { name: "progress", kind: Kind::Double, nullable: false },
        Property { name: "status", kind: Kind::Enum(&OPERATION_STATUS), nullable: false },
        Property { name: "storageLocation", kind: Kind::String, nullable: true },
        Property { name: "submittedDateTime", kind: Kind::DateTime, nullable: false },
        Property { name: "userId", kind: Kind::String, nullable: false },
    ],
    selectable: &["id", "completedDateTime", "progress", "status", "storageLocation", "submittedDateTime", "userId"],
};

/// `microsoft.graph.subjectRightsRequestStatus`.
pub const REQUEST_STATUS: EnumType = EnumType {
    name: "microsoft.graph.subjectRightsRequestStatus",
    members: &["active", "closed", "unknownFutureValue"],
};

/// `microsoft.graph.subjectRightsRequestType`.
pub const REQUEST_TYPE: EnumType = EnumType {
    name: "microsoft.graph.subjectRightsRequestType",
    members: &["export", "delete", "access", "tagForAction", "unknownFutureValue"],
};

/// `microsoft.graph.dataSubjectType`.
pub const DATA_SUBJECT_TYPE: EnumType = EnumType {
    name: "microsoft.graph.dataSubjectType",
    members: &[
        "customer",
        "currentEmployee",
        "formerEmployee",
        "prospectiveEmployee",
        "student",
        "teacher",
        "faculty",
        "other",
        "unknownFutureValue",
    ],
};

/// `microsoft.graph.subjectRightsRequest`: what `$filter` and `$orderby` take on a list of requests.
pub const SUBJECT_RIGHTS_REQUEST: EntityType = EntityType {
    name: "microsoft.graph.subjectRightsRequest",
    properties: &[
        Property { name: "id", kind: Kind::Id, nullable: false },
        Property { name: "closedDateTime", kind: Kind::DateTime, nullable: true },
        Property { name: "createdDateTime", kind: Kind::DateTime, nullable: false },
        Property { name: "dataSubject/email", kind: Kind::String, nullable: true },
        Property { name: "dataSubjectType", kind: Kind::Enum(&DATA_SUBJECT_TYPE), nullable: false },
        Property { name: "displayName", kind: Kind::String, nullable: false },
        Property { name: "externalId", kind: Kind::String, nullable: true },
        Property { name: "internalDueDateTime", kind: Kind::DateTime, nullable: true },
        Property { name: "status", kind: Kind::Enum(&REQUEST_STATUS), nullable: false },
        Property { name: "type", kind: Kind::Enum(&REQUEST_TYPE), nullable: false },
    ],
    selectable: &[
        "id",
        "assignedTo",
        "closedDateTime",
        "createdBy",
        "createdDateTime",
        "dataSubject",
        "dataSubjectType",
        "description",
        "displayName",
        "externalId",
        "history",
        "insight",
        "internalDueDateTime",
        "lastModifiedBy",
        "lastModifiedDateTime",
        "pauseAfterEstimate",
        "regulations",
        "stages",
        "status",
        "type",
    ],
};

/// `microsoft.graph.authoredNote`: notes are listed in the order written, and take no `$filter`.
pub const NOTES: EntityType = EntityType { name: "microsoft.graph.authoredNote", properties: &[], selectable: &[] };

#[cfg(test)]
mod tests {
    use super::*;
    use dpo_model::subject_rights::{DataSubjectType, SubjectRightsRequestStatus, SubjectRightsRequestType};

    #[test]
    fn the_enum_tables_are_the_wire_types_members_in_order() {
        let names = |all: &[&'static str]| all.to_vec();
        assert_eq!(
            names(REQUEST_STATUS.members),
            SubjectRightsRequestStatus::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(
            names(REQUEST_TYPE.members),
            SubjectRightsRequestType::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );
        assert_eq!(
            names(DATA_SUBJECT_TYPE.members),
            DataSubjectType::ALL.iter().map(|m| m.as_str()).collect::<Vec<_>>()
        );
        let statuses = dpo_model::DataPolicyOperationStatus::UnknownFutureValue.as_str();
        assert_eq!(OPERATION_STATUS.members.last(), Some(&statuses));
    }
}
