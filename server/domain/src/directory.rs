//! Rules of the directory of users, shared by its import and by the data sources that bind a user's
//! attributes as query parameters.

/// Whether `name` can name a further attribute (and a query parameter, `:name`).
pub fn attribute_name(name: &str) -> bool {
    name.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
