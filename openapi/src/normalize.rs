//! Normalisation: reduces an OpenAPI 3.0 document to what a client can observe on the wire, so that two
//! documents written differently but describing the same API compare equal.
//!
//! The result is a JSON tree keyed by operation (`"GET /dataPolicyOperations"`), holding `operationId`,
//! sorted `tags`, `parameters` (keyed `"<in> <name>"`), `requestBody` and `responses` (keyed by status code),
//! with every schema fully inlined. The benign differences it removes, and why each is benign:
//!
//! 1. `$ref`s are resolved everywhere (schemas, parameters, responses, request bodies): where a type is
//!    declared does not change the wire format; dropshot inlines what Microsoft references and vice versa.
//! 2. `allOf` is flattened into one schema (properties and `required` united): schemars cannot emit
//!    `allOf: [entity, ...]`, it writes the merged object, which accepts the same JSON.
//! 3. Prose and tooling metadata are dropped: `description`, `summary`, `title`, `example(s)`, `externalDocs`,
//!    `discriminator`, `readOnly`/`writeOnly`, `deprecated` and `x-*` extensions.
//! 4. A `default` of `null`, `[]` or `{}` is dropped: it only restates what an absent optional value means
//!    (schemars writes it for every `#[serde(default)]` field); any other default is compared.
//! 5. `pattern` is dropped where `format: date-time` already says the same (Microsoft adds an ISO 8601
//!    pattern; schemars only writes the format).
//! 6. `nullable` is dropped from parameter schemas, and `style`/`explode` from parameters: a query string or
//!    header cannot carry null, and for scalar parameters the two styles put the same bytes on the wire.
//! 7. Header names are compared in lower case (HTTP header names are case-insensitive).
//! 8. Numbers are compared by value (`0` equals `0.0`).
//! 9. Path-level parameters are copied into each operation of the path.
//!
//! One more rule needs both documents at once and lives in [`crate::drift`]: a status range such as `2XX`
//! matches the single concrete code of that class (`202`) that dropshot always writes.

use crate::refs::resolve;
use serde_json::{Map, Value, json};

const METHODS: [&str; 8] = ["get", "put", "post", "delete", "options", "head", "patch", "trace"];

/// The normalised form of `document` (see the module documentation).
pub fn normalize(document: &Value) -> Value {
    let mut out = Map::new();
    if let Some(paths) = document.get("paths").and_then(Value::as_object) {
        for (path, item) in paths {
            let item = deref(document, item);
            let shared = item.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
            for method in METHODS {
                if let Some(op) = item.get(method) {
                    let key = format!("{} {path}", method.to_uppercase());
                    out.insert(key, operation(document, op, &shared));
                }
            }
        }
    }
    if let Some(security) = security(document) {
        out.insert("security".to_string(), security);
    }
    Value::Object(out)
}

fn security(document: &Value) -> Option<Value> {
    let schemes = document.pointer("/components/securitySchemes").and_then(Value::as_object);
    let requirement = document.get("security");
    if schemes.is_none_or(|s| s.is_empty()) && requirement.is_none() {
        return None;
    }
    let schemes: Map<String, Value> = schemes
        .into_iter()
        .flatten()
        .map(|(name, scheme)| (name.clone(), strip_prose(deref(document, scheme))))
        .collect();
    Some(json!({ "schemes": schemes, "requirement": requirement.cloned().unwrap_or(Value::Null) }))
}

fn strip_prose(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            Value::Object(map.iter().filter(|(k, _)| !is_prose(k)).map(|(k, v)| (k.clone(), strip_prose(v))).collect())
        }
        other => other.clone(),
    }
}

fn is_prose(key: &str) -> bool {
    matches!(
        key,
        "description"
            | "summary"
            | "title"
            | "example"
            | "examples"
            | "externalDocs"
            | "discriminator"
            | "readOnly"
            | "writeOnly"
            | "deprecated"
            | "xml"
    ) || key.starts_with("x-")
}

fn deref<'a>(document: &'a Value, value: &'a Value) -> &'a Value {
    let mut current = value;
    // A chain of references is followed, but never forever.
    for _ in 0..32 {
        match current.get("$ref").and_then(Value::as_str).and_then(|r| resolve(document, r)) {
            Some(target) => current = target,
            None => break,
        }
    }
    current
}

fn operation(document: &Value, op: &Value, shared: &[Value]) -> Value {
    let mut out = Map::new();
    if let Some(id) = op.get("operationId") {
        out.insert("operationId".into(), id.clone());
    }
    let mut tags: Vec<Value> = op.get("tags").and_then(Value::as_array).cloned().unwrap_or_default();
    tags.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
    out.insert("tags".into(), Value::Array(tags));

    let mut parameters = Map::new();
    let own = op.get("parameters").and_then(Value::as_array).cloned().unwrap_or_default();
    // Operation-level parameters override path-level ones of the same name and location.
    for p in shared.iter().chain(own.iter()) {
        let p = deref(document, p);
        let location = p.get("in").and_then(Value::as_str).unwrap_or("?");
        let mut name = p.get("name").and_then(Value::as_str).unwrap_or("?").to_string();
        if location == "header" {
            name = name.to_lowercase();
        }
        let required = p.get("required").and_then(Value::as_bool).unwrap_or(location == "path");
        let mut schema = p.get("schema").map(|s| schema(document, s, &mut Vec::new())).unwrap_or(json!({}));
        if let Some(map) = schema.as_object_mut() {
            map.remove("nullable");
        }
        parameters.insert(format!("{location} {name}"), json!({ "required": required, "schema": schema }));
    }
    out.insert("parameters".into(), Value::Object(parameters));

    if let Some(body) = op.get("requestBody") {
        let body = deref(document, body);
        let required = body.get("required").and_then(Value::as_bool).unwrap_or(false);
        out.insert("requestBody".into(), json!({ "required": required, "content": content(document, body) }));
    }

    let mut responses = Map::new();
    for (code, response) in op.get("responses").and_then(Value::as_object).into_iter().flatten() {
        let response = deref(document, response);
        let mut r = Map::new();
        let headers: Map<String, Value> = response
            .get("headers")
            .and_then(Value::as_object)
            .into_iter()
            .flatten()
            .map(|(name, header)| {
                let header = deref(document, header);
                let required = header.get("required").and_then(Value::as_bool).unwrap_or(false);
                let schema = header.get("schema").map(|s| schema(document, s, &mut Vec::new())).unwrap_or(json!({}));
                (name.to_lowercase(), json!({ "required": required, "schema": schema }))
            })
            .collect();
        if !headers.is_empty() {
            r.insert("headers".into(), Value::Object(headers));
        }
        let content = content(document, response);
        if !content.as_object().is_some_and(Map::is_empty) {
            r.insert("content".into(), content);
        }
        responses.insert(code.to_uppercase(), Value::Object(r));
    }
    out.insert("responses".into(), Value::Object(responses));
    Value::Object(out)
}

fn content(document: &Value, holder: &Value) -> Value {
    let map: Map<String, Value> = holder
        .get("content")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(media_type, media)| {
            let schema = media.get("schema").map(|s| schema(document, s, &mut Vec::new())).unwrap_or(json!({}));
            (media_type.clone(), schema)
        })
        .collect();
    Value::Object(map)
}

/// The normalised form of one schema; `stack` holds the references being expanded (recursion guard).
pub fn schema(document: &Value, value: &Value, stack: &mut Vec<String>) -> Value {
    let Some(obj) = value.as_object() else {
        return value.clone();
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        if stack.iter().any(|r| r == reference) {
            return json!({ "recursive": reference });
        }
        let Some(target) = resolve(document, reference) else {
            return json!({ "dangling": reference });
        };
        stack.push(reference.to_string());
        let out = schema(document, target, stack);
        stack.pop();
        return out;
    }
    let mut out = Map::new();
    if let Some(members) = obj.get("allOf").and_then(Value::as_array) {
        for member in members {
            if let Value::Object(m) = schema(document, member, stack) {
                merge_schema(&mut out, m);
            }
        }
    }
    let mut own = Map::new();
    for (key, v) in obj {
        if is_prose(key) || key == "allOf" {
            continue;
        }
        let normalised = match key.as_str() {
            "properties" => Value::Object(
                v.as_object()
                    .into_iter()
                    .flatten()
                    .map(|(name, p)| (name.clone(), schema(document, p, stack)))
                    .collect(),
            ),
            "items" | "not" => schema(document, v, stack),
            "additionalProperties" if v.is_object() => schema(document, v, stack),
            "oneOf" | "anyOf" => {
                Value::Array(v.as_array().into_iter().flatten().map(|s| schema(document, s, stack)).collect())
            }
            "required" => {
                let mut names: Vec<Value> = v.as_array().cloned().unwrap_or_default();
                names.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                names.dedup();
                Value::Array(names)
            }
            _ => number_by_value(v),
        };
        own.insert(key.clone(), normalised);
    }
    merge_schema(&mut out, own);
    if out.get("format").and_then(Value::as_str) == Some("date-time") {
        out.remove("pattern");
    }
    let drop_defaults = [
        ("nullable", json!(false)),
        ("uniqueItems", json!(false)),
        ("additionalProperties", json!(true)),
        ("required", json!([])),
        ("default", Value::Null),
        ("default", json!([])),
        ("default", json!({})),
    ];
    for (key, default) in drop_defaults {
        if out.get(key) == Some(&default) {
            out.remove(key);
        }
    }
    Value::Object(out)
}

fn merge_schema(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (key, value) in from {
        match (key.as_str(), into.get_mut(&key), value) {
            ("properties", Some(Value::Object(existing)), Value::Object(more)) => existing.extend(more),
            ("required", Some(Value::Array(existing)), Value::Array(more)) => {
                existing.extend(more);
                existing.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                existing.dedup();
            }
            (_, Some(_), _) => {}
            (_, None, value) => {
                into.insert(key, value);
            }
        }
    }
}

fn number_by_value(v: &Value) -> Value {
    match v.as_f64() {
        Some(f) if v.is_f64() && f.fract() == 0.0 && f.abs() < 9.0e15 => json!(f as i64),
        _ => v.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refs_and_all_of_flatten_into_one_object() {
        let doc = json!({
            "components": {"schemas": {
                "entity": {"type": "object", "properties": {"id": {"type": "string", "description": "x"}}},
                "thing": {"allOf": [{"$ref": "#/components/schemas/entity"},
                                    {"type": "object", "title": "thing", "properties": {"n": {"type": "number", "minimum": 0.0}}}]}
            }}
        });
        let s = schema(&doc, &json!({"$ref": "#/components/schemas/thing"}), &mut Vec::new());
        assert_eq!(
            s,
            json!({"type": "object", "properties": {"id": {"type": "string"}, "n": {"type": "number", "minimum": 0}}})
        );
    }

    #[test]
    fn recursive_schemas_terminate() {
        let doc = json!({"components": {"schemas": {"node": {"type": "object", "properties": {
            "next": {"$ref": "#/components/schemas/node"}}}}}});
        let s = schema(&doc, &json!({"$ref": "#/components/schemas/node"}), &mut Vec::new());
        assert_eq!(s["properties"]["next"], json!({"recursive": "#/components/schemas/node"}));
    }

    #[test]
    fn date_time_pattern_is_benign_but_other_patterns_count() {
        let doc = json!({});
        let dt = schema(&doc, &json!({"type": "string", "format": "date-time", "pattern": "^x$"}), &mut Vec::new());
        assert_eq!(dt, json!({"type": "string", "format": "date-time"}));
        let other = schema(&doc, &json!({"type": "string", "pattern": "^x$"}), &mut Vec::new());
        assert_eq!(other["pattern"], "^x$");
    }
}
