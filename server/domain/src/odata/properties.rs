//! The properties of `microsoft.graph.dataPolicyOperation` that query options may name, with their EDM types.

/// The EDM type of a property, as far as filtering and sorting care.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `Edm.String`.
    String,
    /// The operation id: an `Edm.String` holding a GUID.
    Id,
    /// `Edm.DateTimeOffset`.
    DateTime,
    /// `Edm.Double`.
    Double,
    /// `microsoft.graph.dataPolicyOperationStatus`.
    Status,
}

/// A property of the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Property {
    /// Its name on the wire.
    pub name: &'static str,
    /// Its type.
    pub kind: Kind,
    /// Whether it can be null.
    pub nullable: bool,
}

/// Every property, in the order Graph documents them.
pub const PROPERTIES: [Property; 7] = [
    Property { name: "id", kind: Kind::Id, nullable: false },
    Property { name: "completedDateTime", kind: Kind::DateTime, nullable: true },
    Property { name: "progress", kind: Kind::Double, nullable: false },
    Property { name: "status", kind: Kind::Status, nullable: false },
    Property { name: "storageLocation", kind: Kind::String, nullable: true },
    Property { name: "submittedDateTime", kind: Kind::DateTime, nullable: false },
    Property { name: "userId", kind: Kind::String, nullable: false },
];

/// The property with this name (OData names are case-sensitive).
pub fn property(name: &str) -> Option<Property> {
    PROPERTIES.iter().copied().find(|p| p.name == name)
}

/// The names, for messages.
pub fn names() -> String {
    PROPERTIES.iter().map(|p| p.name).collect::<Vec<_>>().join(", ")
}
