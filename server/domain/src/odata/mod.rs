//! OData query options: parsing and checking them against a resource's properties ([`expr`] holds what
//! every `$filter` shares). The result ([`query::CollectionQuery`]) is plain data that the store turns into SQL.

pub mod audit_filter;
pub mod expr;
pub mod filter;
pub mod orderby;
pub mod properties;
pub mod query;
pub mod skiptoken;

/// Why a query option was refused; always answered `400 BadRequest`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct QueryError {
    /// The query option at fault, e.g. `$filter`.
    pub option: String,
    /// What is wrong and, where it helps, what would be right.
    pub message: String,
}

impl QueryError {
    /// An error about `option`.
    pub fn new(option: &str, message: impl Into<String>) -> Self {
        QueryError { option: option.to_string(), message: message.into() }
    }
}
