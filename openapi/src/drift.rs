//! The drift check: does the server's derived document say what the bundled document says?

use crate::{
    allowlist::{AllowList, Allowance},
    diff::{Difference, diff},
    normalize::normalize,
};
use serde_json::{Map, Value};
use std::fmt;

/// Outcome of comparing the bundled document with the server's.
#[derive(Debug, Clone, Default)]
pub struct DriftReport {
    /// Differences no allow-list entry covers: each one fails the check.
    pub unexplained: Vec<Difference>,
    /// Differences covered by an allow-list entry, with that entry's reason.
    pub allowed: Vec<(Difference, String)>,
    /// Allow-list entries that cover nothing any more: they fail the check too.
    pub stale: Vec<Allowance>,
}

impl DriftReport {
    /// Whether the server matches the document (modulo the allow-list) and the allow-list is current.
    pub fn is_clean(&self) -> bool {
        self.unexplained.is_empty() && self.stale.is_empty()
    }
}

/// Compares the bundled document `spec` with the server's derived document `server`.
pub fn check(spec: &Value, server: &Value, allowlist: &AllowList) -> DriftReport {
    let mut spec = normalize(spec);
    let server = normalize(server);
    match_status_ranges(&mut spec, &server);
    let mut report = DriftReport::default();
    let mut used = vec![false; allowlist.allow.len()];
    for difference in diff(&spec, &server) {
        match allowlist.allow.iter().position(|a| a.covers(&difference.at)) {
            Some(i) => {
                used[i] = true;
                report.allowed.push((difference, allowlist.allow[i].reason.clone()));
            }
            None => report.unexplained.push(difference),
        }
    }
    report.stale = allowlist.allow.iter().zip(used).filter(|(_, used)| !used).map(|(a, _)| a.clone()).collect();
    report
}

/// Where the spec declares a range (`2XX`) and the server the one concrete code of that class it always
/// answers with (`202`), the range is renamed to that code so that the two compare.
fn match_status_ranges(spec: &mut Value, server: &Value) {
    let Some(operations) = spec.as_object_mut() else {
        return;
    };
    for (key, operation) in operations.iter_mut() {
        let Some(theirs) =
            server.pointer(&format!("/{}/responses", crate::refs::escape(key))).and_then(Value::as_object)
        else {
            continue;
        };
        let Some(Value::Object(ours)) = operation.get_mut("responses") else {
            continue;
        };
        for class in ['1', '2', '3', '4', '5'] {
            let range = format!("{class}XX");
            let concrete = |m: &Map<String, Value>| -> Vec<String> {
                m.keys().filter(|k| k.starts_with(class) && !k.ends_with("XX")).cloned().collect()
            };
            let their_codes = concrete(theirs);
            if ours.contains_key(&range)
                && concrete(ours).is_empty()
                && their_codes.len() == 1
                && !theirs.contains_key(&range)
                && let Some(response) = ours.remove(&range)
            {
                ours.insert(their_codes[0].clone(), response);
            }
        }
    }
}

impl fmt::Display for DriftReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_clean() {
            return writeln!(
                f,
                "the server matches openapi/dpo.json ({} reviewed differences in openapi/drift-allowlist.toml)",
                self.allowed.len()
            );
        }
        if !self.unexplained.is_empty() {
            writeln!(f, "the server has drifted from openapi/dpo.json ({} differences):", self.unexplained.len())?;
            for d in &self.unexplained {
                writeln!(f, "  - {d}")?;
            }
            writeln!(
                f,
                "Fix the handler or its wire types in server/api so they match the document, or change the \
                 document in openapi/sources and run `cargo xtask bundle`. Only a difference dropshot cannot \
                 express belongs in openapi/drift-allowlist.toml, with its reason."
            )?;
        }
        if !self.stale.is_empty() {
            writeln!(f, "stale entries in openapi/drift-allowlist.toml (they match no difference; remove them):")?;
            for a in &self.stale {
                writeln!(f, "  - {}", a.at)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(code: &str, param_type: &str) -> Value {
        json!({"paths": {"/x": {"get": {
            "operationId": "x",
            "parameters": [{"name": "$top", "in": "query", "schema": {"type": param_type}}],
            "responses": {code: {"description": "d"}}}}}})
    }

    #[test]
    fn a_range_matches_the_servers_single_concrete_code() {
        let report = check(&doc("2XX", "integer"), &doc("200", "integer"), &AllowList::default());
        assert!(report.is_clean(), "{report}");
    }

    #[test]
    fn a_changed_parameter_is_reported_unless_allowed() {
        let report = check(&doc("200", "integer"), &doc("200", "string"), &AllowList::default());
        assert!(!report.is_clean());
        assert!(report.to_string().contains("GET /x > parameters > query $top > schema > type"), "{report}");
        let allow = AllowList::parse("[[allow]]\nat = \"GET /x > parameters > query $top\"\nreason = \"r\"\n").unwrap();
        assert!(check(&doc("200", "integer"), &doc("200", "string"), &allow).is_clean());
    }

    #[test]
    fn an_allowance_that_matches_nothing_is_stale() {
        let allow = AllowList::parse("[[allow]]\nat = \"GET /gone\"\nreason = \"r\"\n").unwrap();
        let report = check(&doc("200", "integer"), &doc("200", "integer"), &allow);
        assert!(!report.is_clean());
        assert!(report.to_string().contains("stale"), "{report}");
    }
}
