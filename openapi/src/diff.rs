//! Structural diff of two normalised documents, reported as readable locations.

use serde_json::Value;
use std::fmt;

/// Separator between the segments of a [`Difference`]'s location, as printed and as written in the allow-list.
pub const SEPARATOR: &str = " > ";

/// One place where the bundled document (the spec) and the server's document disagree.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    /// Where: operation, then keys down to the differing value, e.g. `GET /x`, `parameters`, `query $top`.
    pub at: Vec<String>,
    /// What differs there.
    pub kind: DifferenceKind,
}

/// The kind of a [`Difference`].
#[derive(Debug, Clone, PartialEq)]
pub enum DifferenceKind {
    /// The spec has this and the server does not.
    OnlyInSpec(Value),
    /// The server has this and the spec does not.
    OnlyInServer(Value),
    /// Both have it, with different values.
    Differs {
        /// The spec's value.
        spec: Value,
        /// The server's value.
        server: Value,
    },
}

/// Every difference between the normalised `spec` and `server` trees.
pub fn diff(spec: &Value, server: &Value) -> Vec<Difference> {
    let mut out = Vec::new();
    walk(spec, server, &mut Vec::new(), &mut out);
    out
}

fn walk(spec: &Value, server: &Value, at: &mut Vec<String>, out: &mut Vec<Difference>) {
    if spec == server {
        return;
    }
    match (spec, server) {
        (Value::Object(a), Value::Object(b)) => {
            let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
            keys.sort();
            keys.dedup();
            for key in keys {
                at.push(key.clone());
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => walk(x, y, at, out),
                    (Some(x), None) => {
                        out.push(Difference { at: at.clone(), kind: DifferenceKind::OnlyInSpec(x.clone()) })
                    }
                    (None, Some(y)) => {
                        out.push(Difference { at: at.clone(), kind: DifferenceKind::OnlyInServer(y.clone()) })
                    }
                    (None, None) => {}
                }
                at.pop();
            }
        }
        (Value::Array(a), Value::Array(b)) if a.len() == b.len() && a.iter().all(Value::is_object) => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                at.push(format!("[{i}]"));
                walk(x, y, at, out);
                at.pop();
            }
        }
        _ => out.push(Difference {
            at: at.clone(),
            kind: DifferenceKind::Differs { spec: spec.clone(), server: server.clone() },
        }),
    }
}

/// Compact JSON, cut to a readable length.
fn brief(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() > 160 { format!("{}…", text.chars().take(160).collect::<String>()) } else { text }
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: ", self.at.join(SEPARATOR))?;
        match &self.kind {
            DifferenceKind::OnlyInSpec(v) => write!(f, "only in the spec: {}", brief(v)),
            DifferenceKind::OnlyInServer(v) => write!(f, "only in the server: {}", brief(v)),
            DifferenceKind::Differs { spec, server } => {
                write!(f, "the spec says {}, the server says {}", brief(spec), brief(server))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reports_each_difference_at_its_location() {
        let spec = json!({"GET /x": {"parameters": {"query $top": {"schema": {"type": "integer"}}}, "tags": ["a"]}});
        let server = json!({"GET /x": {"parameters": {"query $top": {"schema": {"type": "string"}}, "query $y": {}}}});
        let lines: Vec<String> = diff(&spec, &server).iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "GET /x > parameters > query $top > schema > type: the spec says \"integer\", the server says \"string\"",
                "GET /x > parameters > query $y: only in the server: {}",
                "GET /x > tags: only in the spec: [\"a\"]",
            ]
        );
    }

    #[test]
    fn equal_trees_have_no_difference() {
        let v = json!({"a": [1, {"b": 2}]});
        assert!(diff(&v, &v).is_empty());
    }
}
