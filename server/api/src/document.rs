//! The OpenAPI document the server's API traits describe, derived without running (or even compiling) a
//! server: from the traits' stub descriptions, merged into one document.

use crate::api::{count_api_mod, data_policy_operations_api_mod};
use serde_json::Value;

/// Title of the derived document.
pub const TITLE: &str = "dpo: Microsoft Graph data policy operations";

/// Why the document could not be derived.
#[derive(Debug)]
pub struct DocumentError(pub String);

impl std::fmt::Display for DocumentError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "deriving the server's OpenAPI document: {}", self.0)
    }
}

impl std::error::Error for DocumentError {}

/// The server's OpenAPI document: both API traits' stub descriptions, merged.
pub fn openapi_document() -> Result<Value, DocumentError> {
    let version = semver::Version::new(1, 0, 0);
    let main = data_policy_operations_api_mod::stub_api_description().map_err(|e| DocumentError(e.to_string()))?;
    let count = count_api_mod::stub_api_description().map_err(|e| DocumentError(e.to_string()))?;
    let mut document = main.openapi(TITLE, version.clone()).json().map_err(|e| DocumentError(e.to_string()))?;
    let extra = count.openapi(TITLE, version).json().map_err(|e| DocumentError(e.to_string()))?;
    merge_into(&mut document, &extra, "paths")?;
    merge_into(&mut document, &extra, "components")?;
    Ok(document)
}

/// Adds `from[key]` into `into[key]`, one level of maps deep; a name both define differently is an error.
fn merge_into(into: &mut Value, from: &Value, key: &str) -> Result<(), DocumentError> {
    let Some(source) = from.get(key).and_then(Value::as_object) else {
        return Ok(());
    };
    let target = into
        .as_object_mut()
        .ok_or_else(|| DocumentError("document is not an object".into()))?
        .entry(key.to_string())
        .or_insert_with(|| Value::Object(Default::default()));
    for (name, value) in source {
        let slot = target.as_object_mut().ok_or_else(|| DocumentError(format!("{key} is not an object")))?;
        match (slot.get_mut(name), value) {
            (None, v) => {
                slot.insert(name.clone(), v.clone());
            }
            (Some(Value::Object(existing)), Value::Object(more)) => {
                for (inner, v) in more {
                    match existing.get(inner) {
                        Some(old) if old != v => {
                            return Err(DocumentError(format!("{key}.{name}.{inner} differs between the two APIs")));
                        }
                        _ => {
                            existing.insert(inner.clone(), v.clone());
                        }
                    }
                }
            }
            (Some(old), v) if old == v => {}
            _ => {
                return Err(DocumentError(format!("{key}.{name} differs between the two APIs")));
            }
        }
    }
    Ok(())
}
