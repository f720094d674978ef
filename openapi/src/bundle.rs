//! Bundling: the YAML fragments in `openapi/sources/` become one deterministic JSON document.
//!
//! Fragments are deep-merged in file-name order. A key may be defined by one fragment only (two fragments
//! that disagree are an error, never a silent override). The result is checked ([`validate`]) and rendered
//! with sorted keys and a stable format ([`render`]), so that bundling twice gives identical bytes.

use crate::{SpecError, layout::SpecLayout, refs};
use serde_json::{Map, Value};
use std::path::{Path, PathBuf};

/// Reads and merges every `*.yaml` fragment of `layout`, then validates the result.
pub fn bundle(layout: &SpecLayout) -> Result<Value, SpecError> {
    let dir = layout.sources_dir();
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map_err(|e| SpecError::io(&dir, e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|ext| ext == "yaml" || ext == "yml"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(SpecError::Invalid(format!("no *.yaml fragments in {}", dir.display())));
    }
    let mut fragments = Vec::with_capacity(files.len());
    for path in files {
        let text = std::fs::read_to_string(&path).map_err(|e| SpecError::io(&path, e))?;
        let value: Value =
            serde_yaml::from_str(&text).map_err(|source| SpecError::Yaml { path: path.clone(), source })?;
        fragments.push((layout.display(&path), value));
    }
    let document = merge_fragments(&fragments)?;
    validate(&document)?;
    Ok(canonical(document))
}

/// Deep-merges named fragments; a key that two fragments set to different values is a [`SpecError::Conflict`].
pub fn merge_fragments(fragments: &[(String, Value)]) -> Result<Value, SpecError> {
    let mut merged = Value::Object(Map::new());
    for (name, fragment) in fragments {
        merge_into(&mut merged, fragment, "", &|pointer| {
            let first = fragments
                .iter()
                .find(|(_, f)| f.pointer(pointer).is_some())
                .map(|(n, _)| n.clone())
                .unwrap_or_default();
            SpecError::Conflict { key: pointer.to_string(), first, second: name.clone() }
        })?;
    }
    Ok(merged)
}

fn merge_into(
    target: &mut Value,
    incoming: &Value,
    pointer: &str,
    conflict: &dyn Fn(&str) -> SpecError,
) -> Result<(), SpecError> {
    match (target, incoming) {
        (Value::Object(t), Value::Object(i)) => {
            for (key, value) in i {
                let child = format!("{pointer}/{}", refs::escape(key));
                match t.get_mut(key) {
                    Some(existing) => merge_into(existing, value, &child, conflict)?,
                    None => {
                        t.insert(key.clone(), value.clone());
                    }
                }
            }
            Ok(())
        }
        (t, i) if t == i => Ok(()),
        _ => Err(conflict(pointer)),
    }
}

/// Checks the rules every bundled document must meet: OpenAPI 3.0.x (what progenitor reads), an
/// `info.version`, and no `$ref` that points nowhere.
pub fn validate(document: &Value) -> Result<(), SpecError> {
    let mut problems = Vec::new();
    match document.get("openapi").and_then(Value::as_str) {
        Some(v) if v.starts_with("3.0.") => {}
        Some(v) => problems.push(format!("`openapi: {v}`: must be 3.0.x (progenitor rejects 3.1)")),
        None => problems.push("`openapi` is missing".to_string()),
    }
    match document.pointer("/info/version").and_then(Value::as_str) {
        Some(v) if !v.trim().is_empty() => {}
        _ => problems.push("`info.version` is missing or empty".to_string()),
    }
    for dangling in refs::dangling_refs(document) {
        problems.push(format!("dangling $ref {} at {}", dangling.target, dangling.at));
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(SpecError::Invalid(problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n")))
    }
}

/// The same value with every object's keys in sorted order, whatever map type serde_json was built with.
pub fn canonical(value: Value) -> Value {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(String, Value)> = map.into_iter().collect();
            entries.sort_by(|a, b| a.0.cmp(&b.0));
            Value::Object(entries.into_iter().map(|(k, v)| (k, canonical(v))).collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(canonical).collect()),
        other => other,
    }
}

/// Renders a document the one way dpo stores it: sorted keys, two-space indent, final newline.
pub fn render(document: &Value) -> String {
    let mut text = serde_json::to_string_pretty(&canonical(document.clone())).unwrap_or_default();
    text.push('\n');
    text
}

/// Reads a stored JSON document.
pub fn read_document(path: &Path) -> Result<Value, SpecError> {
    let text = std::fs::read_to_string(path).map_err(|e| SpecError::io(path, e))?;
    serde_json::from_str(&text).map_err(|source| SpecError::Json { what: path.display().to_string(), source })
}

/// Whether the bundled file on disk is exactly what bundling the sources gives now.
pub fn bundled_is_fresh(layout: &SpecLayout) -> Result<bool, SpecError> {
    let expected = render(&bundle(layout)?);
    let path = layout.bundled();
    match std::fs::read_to_string(&path) {
        Ok(actual) => Ok(actual == expected),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(SpecError::io(path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragments_merge_deeply_and_identical_keys_are_allowed() {
        let merged = merge_fragments(&[
            ("a".into(), json!({"paths": {"/x": {"get": {}}}, "info": {"title": "t"}})),
            ("b".into(), json!({"paths": {"/y": {"get": {}}}, "info": {"title": "t"}})),
        ])
        .unwrap();
        assert_eq!(merged, json!({"paths": {"/x": {"get": {}}, "/y": {"get": {}}}, "info": {"title": "t"}}));
    }

    #[test]
    fn a_key_set_twice_differently_names_both_fragments() {
        let err = merge_fragments(&[
            ("a.yaml".into(), json!({"info": {"version": "1"}})),
            ("b.yaml".into(), json!({"info": {"version": "2"}})),
        ])
        .unwrap_err()
        .to_string();
        assert!(err.contains("/info/version") && err.contains("a.yaml") && err.contains("b.yaml"), "{err}");
    }

    #[test]
    fn validation_rejects_3_1_missing_version_and_dangling_refs() {
        let doc = json!({"openapi": "3.1.0", "info": {}, "paths": {"/x": {"$ref": "#/components/schemas/Nope"}}});
        let err = validate(&doc).unwrap_err().to_string();
        assert!(err.contains("3.0.x"), "{err}");
        assert!(err.contains("info.version"), "{err}");
        assert!(err.contains("#/components/schemas/Nope"), "{err}");
    }

    #[test]
    fn rendering_sorts_keys() {
        let text = render(&json!({"b": 1, "a": {"d": 1, "c": 2}}));
        assert_eq!(text, "{\n  \"a\": {\n    \"c\": 2,\n    \"d\": 1\n  },\n  \"b\": 1\n}\n");
    }
}
