//! `$ref` handling: finding dangling references and resolving local ones.

use serde_json::Value;

/// A `$ref` whose target does not exist.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DanglingRef {
    /// JSON pointer of the object that holds the `$ref`.
    pub at: String,
    /// The reference as written.
    pub target: String,
}

/// Every `$ref` in `document` that does not resolve inside it (only local `#/...` references are allowed).
pub fn dangling_refs(document: &Value) -> Vec<DanglingRef> {
    let mut found = Vec::new();
    walk(document, document, String::new(), &mut found);
    found
}

fn walk(root: &Value, value: &Value, at: String, found: &mut Vec<DanglingRef>) {
    match value {
        Value::Object(map) => {
            if let Some(Value::String(target)) = map.get("$ref")
                && resolve(root, target).is_none()
            {
                found.push(DanglingRef { at: at.clone(), target: target.clone() });
            }
            for (key, child) in map {
                walk(root, child, format!("{at}/{}", escape(key)), found);
            }
        }
        Value::Array(items) => {
            for (i, child) in items.iter().enumerate() {
                walk(root, child, format!("{at}/{i}"), found);
            }
        }
        _ => {}
    }
}

/// Resolves a local reference such as `#/components/schemas/x`.
pub fn resolve<'a>(root: &'a Value, reference: &str) -> Option<&'a Value> {
    root.pointer(reference.strip_prefix('#')?)
}

/// Escapes a key for use as one JSON-pointer segment.
pub fn escape(key: &str) -> String {
    key.replace('~', "~0").replace('/', "~1")
}
