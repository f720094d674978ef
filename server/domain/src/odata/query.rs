//! Reading the query string of a collection request into a checked [`CollectionQuery`].
//!
//! The raw query string is read here rather than through dropshot's typed `Query` so that OData's rules
//! apply: an unknown or repeated system query option (`$...`) is an error, custom options (no `$`) are
//! ignored, and `$skiptoken` (which Microsoft's document does not list) is understood.

use super::{
    QueryError, filter,
    filter::Filter,
    orderby::{self, SortKey},
    properties::EntityType,
    skiptoken::{SkipToken, fingerprint},
};

/// The system query options of each kind of request.
pub mod allowed {
    /// `GET /dataPolicyOperations`.
    pub const LIST: &[&str] =
        &["$top", "$skip", "$search", "$filter", "$count", "$orderby", "$select", "$expand", "$skiptoken"];
    /// `GET /dataPolicyOperations/$count`.
    pub const COUNT: &[&str] = &["$search", "$filter"];
    /// `GET /dataPolicyOperations/{id}`, `GET /security/subjectRightsRequests/{id}`.
    pub const ENTITY: &[&str] = &["$select", "$expand"];
    /// `GET /security/subjectRightsRequests` (no `$search`: Graph's requests do not take it).
    pub const REQUESTS: &[&str] =
        &["$top", "$skip", "$filter", "$count", "$orderby", "$select", "$expand", "$skiptoken"];
    /// `GET /security/subjectRightsRequests/$count`.
    pub const REQUEST_COUNT: &[&str] = &["$filter"];
    /// `GET /security/subjectRightsRequests/{id}/notes`: paged, counted, in the order written.
    pub const NOTES: &[&str] = &["$top", "$count", "$skiptoken"];
}

/// A checked collection query.
#[derive(Debug, Clone, Default)]
pub struct CollectionQuery {
    /// `$filter`, parsed.
    pub filter: Option<Filter>,
    /// `$search` term (without its quotes).
    pub search: Option<String>,
    /// `$orderby` keys.
    pub orderby: Vec<SortKey>,
    /// `$top`.
    pub top: Option<u64>,
    /// `$skip`.
    pub skip: u64,
    /// `$count=true`.
    pub count: bool,
    /// `$select`ed property names; `None` for all.
    pub select: Option<Vec<String>>,
    /// `$skiptoken`, decoded.
    pub skiptoken: Option<SkipToken>,
    /// Fingerprint of `$filter`, `$search` and `$orderby`, for skip tokens (empty where `$skiptoken` is not
    /// allowed).
    pub fingerprint: String,
    /// The options as received, to carry into `@odata.nextLink`.
    pub raw: RawOptions,
}

/// The text of the options that a next link repeats.
#[derive(Debug, Clone, Default)]
pub struct RawOptions {
    /// `$filter` as sent.
    pub filter: Option<String>,
    /// `$search` as sent.
    pub search: Option<String>,
    /// `$orderby` as sent.
    pub orderby: Option<String>,
    /// `$select` as sent.
    pub select: Option<String>,
}

/// Reads `raw` (the URL's query string) of a request about `entity`, accepting only the system options in
/// `allowed`.
pub fn parse(entity: &'static EntityType, raw: &str, allowed: &[&str]) -> Result<CollectionQuery, QueryError> {
    parse_for_tenant(entity, raw, allowed, "")
}

/// Like [`parse`], for a caller of `tenant`: its skip tokens only work for that tenant.
pub fn parse_for_tenant(
    entity: &'static EntityType,
    raw: &str,
    allowed: &[&str],
    tenant: &str,
) -> Result<CollectionQuery, QueryError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| QueryError::new("query", format!("the query string cannot be read: {e}")))?;
    let mut seen: Vec<&str> = Vec::new();
    let mut q = CollectionQuery::default();
    for (name, value) in &pairs {
        if !name.starts_with('$') {
            continue; // OData custom query options are the application's; dpo has none and ignores them.
        }
        // An empty $filter, $search, $orderby, $select or $expand asks for nothing: it is taken as absent.
        let optional_text = ["$filter", "$search", "$orderby", "$select", "$expand"];
        if value.trim().is_empty() && optional_text.contains(&name.as_str()) {
            continue;
        }
        let Some(option) = allowed.iter().find(|a| *a == name) else {
            return Err(QueryError::new(
                name,
                format!("Query option '{name}' is not allowed here. Allowed: {}", allowed.join(", ")),
            ));
        };
        if seen.contains(option) {
            return Err(QueryError::new(name, format!("Query option '{name}' is given more than once")));
        }
        seen.push(option);
        match *option {
            "$filter" => {
                q.filter = Some(filter::parse(entity, value)?);
                q.raw.filter = Some(value.clone());
            }
            "$search" => {
                q.search = Some(search_term(value)?);
                q.raw.search = Some(value.clone());
            }
            "$orderby" => {
                q.orderby = orderby::parse(entity, &comma_list(option, value)?)?;
                q.raw.orderby = Some(value.clone());
            }
            "$select" => {
                q.select = selection(entity, &comma_list(option, value)?)?;
                q.raw.select = Some(value.clone());
            }
            "$expand" => {
                return Err(QueryError::new(
                    "$expand",
                    format!(
                        "Could not find a navigation property named '{}' on type '{}': it has none that dpo \
                         expands, so $expand cannot be used",
                        value.split(',').next().unwrap_or_default().trim(),
                        entity.name
                    ),
                ));
            }
            "$top" => q.top = Some(non_negative("$top", value)?),
            "$skip" => q.skip = non_negative("$skip", value)?,
            "$count" => {
                q.count = match value.as_str() {
                    "true" => true,
                    "false" => false,
                    _ => {
                        return Err(QueryError::new("$count", format!("$count must be true or false, not '{value}'")));
                    }
                }
            }
            _ => {} // $skiptoken: read below, once the fingerprint is known.
        }
    }
    // Only a query that pages needs its fingerprint (a read of one entity, made often, does not).
    if !allowed.contains(&"$skiptoken") {
        return Ok(q);
    }
    let orderby_text: Vec<String> = q
        .orderby
        .iter()
        .map(|k| format!("{} {}", k.property.name, if k.descending { "desc" } else { "asc" }))
        .collect();
    q.fingerprint = fingerprint(tenant, q.raw.filter.as_deref(), q.search.as_deref(), &orderby_text);
    if let Some((_, token)) = pairs.iter().find(|(n, _)| n == "$skiptoken") {
        q.skiptoken = Some(SkipToken::decode(token, &q.fingerprint)?);
    }
    Ok(q)
}

/// Checks `$select` names of `entity`; `None` means all properties.
pub fn selection(entity: &EntityType, names: &[String]) -> Result<Option<Vec<String>>, QueryError> {
    if names.is_empty() || names.iter().any(|n| n == "*") {
        return Ok(None);
    }
    for name in names {
        if !entity.selectable.contains(&name.as_str()) {
            return Err(QueryError::new(
                "$select",
                format!(
                    "Could not find a property named '{name}' on type '{}'. $select accepts: {}",
                    entity.name,
                    entity.selectable.join(", ")
                ),
            ));
        }
    }
    Ok(Some(names.to_vec()))
}

/// The items of a comma-separated option; an empty item or one named twice is an error.
fn comma_list(option: &str, value: &str) -> Result<Vec<String>, QueryError> {
    let items: Vec<String> = value.split(',').map(|s| s.trim().to_string()).collect();
    if items.iter().any(String::is_empty) {
        return Err(QueryError::new(option, format!("{option} has an empty item: '{value}'")));
    }
    for (i, item) in items.iter().enumerate() {
        if items[..i].contains(item) {
            return Err(QueryError::new(option, format!("{option} names '{item}' twice")));
        }
    }
    Ok(items)
}

/// A whole number from 0 to `i64::MAX` (what SQL can take as a count of rows).
fn non_negative(option: &str, value: &str) -> Result<u64, QueryError> {
    value.trim().parse::<u64>().ok().filter(|n| i64::try_from(*n).is_ok()).ok_or_else(|| {
        QueryError::new(option, format!("{option} must be a whole number from 0 to {}, not '{value}'", i64::MAX))
    })
}

/// `$search="term"` (Graph's form) or `$search=term`.
fn search_term(value: &str) -> Result<String, QueryError> {
    let trimmed = value.trim();
    let term = trimmed.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(trimmed);
    if term.is_empty() {
        return Err(QueryError::new("$search", "$search needs a term, e.g. $search=\"alice\""));
    }
    if term.chars().count() > 256 {
        return Err(QueryError::new("$search", "the $search term is longer than 256 characters"));
    }
    Ok(term.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::properties::DATA_POLICY_OPERATION;

    fn parse(raw: &str, allowed: &[&str]) -> Result<CollectionQuery, QueryError> {
        super::parse(&DATA_POLICY_OPERATION, raw, allowed)
    }

    #[test]
    fn reads_the_list_options() {
        let q = parse(
            "$top=5&$skip=2&$count=true&$orderby=status%20desc,userId&$select=id,status&$search=%22al%22&x=1",
            allowed::LIST,
        )
        .unwrap();
        assert_eq!((q.top, q.skip, q.count), (Some(5), 2, true));
        assert_eq!(q.orderby.len(), 2);
        assert_eq!(q.select, Some(vec!["id".to_string(), "status".to_string()]));
        assert_eq!(q.search.as_deref(), Some("al"));
    }

    #[test]
    fn unknown_repeated_and_misplaced_options_are_refused() {
        assert!(parse("$foo=1", allowed::LIST).unwrap_err().message.contains("'$foo'"));
        assert!(parse("$top=1&$top=2", allowed::LIST).unwrap_err().message.contains("more than once"));
        assert!(parse("$top=1", allowed::COUNT).is_err());
        assert!(parse("$count=yes", allowed::LIST).is_err());
        assert!(parse("$top=-1", allowed::LIST).is_err());
        assert!(parse("$skip=9223372036854775808", allowed::LIST).unwrap_err().message.contains("from 0 to"));
        assert!(parse("$skip=9223372036854775807", allowed::LIST).is_ok());
        assert!(parse("$search=%22%22", allowed::LIST).is_err());
        assert!(parse("$filter=&$select=&$orderby=%20", allowed::LIST).is_ok(), "empty options are absent");
        assert!(parse("$select=,,", allowed::LIST).is_err());
        assert!(parse("$select=id,id", allowed::LIST).is_err());
    }
}
