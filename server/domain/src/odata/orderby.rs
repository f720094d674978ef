//! `$orderby`: one or more properties, each `asc` (default) or `desc`.

use super::{
    QueryError,
    properties::{EntityType, Property},
};

/// Most sort keys accepted.
pub const MAX_KEYS: usize = 7;

/// One sort key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SortKey {
    /// The property sorted by.
    pub property: Property,
    /// Whether the order is descending.
    pub descending: bool,
}

/// Parses `$orderby` items (already split at commas) of a collection of `entity`.
pub fn parse(entity: &EntityType, items: &[String]) -> Result<Vec<SortKey>, QueryError> {
    let err = |m: String| QueryError::new("$orderby", format!("Invalid $orderby: {m}"));
    if items.len() > MAX_KEYS {
        return Err(err(format!("at most {MAX_KEYS} sort keys are accepted")));
    }
    let mut keys: Vec<SortKey> = Vec::new();
    for item in items {
        let mut words = item.split_whitespace();
        let name = words.next().ok_or_else(|| err("an empty sort key".into()))?;
        let property = entity.property(name).ok_or_else(|| {
            err(format!(
                "could not find a property named '{name}' on type '{}'; properties are {}",
                entity.name,
                entity.names()
            ))
        })?;
        let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(err(format!("'{other}' after {name}: use asc or desc"))),
        };
        if let Some(extra) = words.next() {
            return Err(err(format!("unexpected '{extra}' in '{item}'")));
        }
        if keys.iter().any(|k| k.property == property) {
            return Err(err(format!("{name} is named twice")));
        }
        keys.push(SortKey { property, descending });
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odata::properties::DATA_POLICY_OPERATION;

    fn parse(items: &[String]) -> Result<Vec<SortKey>, QueryError> {
        super::parse(&DATA_POLICY_OPERATION, items)
    }

    #[test]
    fn keys_and_directions() {
        let keys = parse(&["status desc".into(), "submittedDateTime".into()]).unwrap();
        assert_eq!(keys.len(), 2);
        assert!(keys[0].descending && !keys[1].descending);
        assert!(parse(&["nope".into()]).unwrap_err().message.contains("'nope'"));
        assert!(parse(&["status sideways".into()]).is_err());
        assert!(parse(&["status".into(), "status desc".into()]).is_err());
    }
}
