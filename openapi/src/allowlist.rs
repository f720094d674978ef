//! The reviewed allow-list: differences between the spec and the server that dropshot cannot avoid.
//!
//! The file (`openapi/drift-allowlist.toml`) holds `[[allow]]` entries, each with `at` (a location as the
//! drift report prints it; it covers that location and everything below it) and `reason` (why the difference
//! is unavoidable and harmless). An entry that matches nothing is stale and fails the check, so the list
//! cannot outlive the problems it excuses.

use crate::{SpecError, diff::SEPARATOR};
use serde::Deserialize;
use std::path::Path;

/// One accepted difference.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct Allowance {
    /// Location, segments separated by `" > "`.
    pub at: String,
    /// Why the difference is accepted.
    pub reason: String,
}

impl Allowance {
    /// The location's segments.
    pub fn segments(&self) -> Vec<&str> {
        self.at.split(SEPARATOR.trim()).map(str::trim).collect()
    }

    /// Whether this entry covers a difference found at `at`.
    pub fn covers(&self, at: &[String]) -> bool {
        let mine = self.segments();
        mine.len() <= at.len() && mine.iter().zip(at).all(|(a, b)| *a == b.as_str())
    }
}

/// The whole allow-list.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AllowList {
    /// The entries, in file order.
    #[serde(default)]
    pub allow: Vec<Allowance>,
}

impl AllowList {
    /// Reads and checks the allow-list file.
    pub fn load(path: &Path) -> Result<Self, SpecError> {
        let text = std::fs::read_to_string(path).map_err(|e| SpecError::io(path, e))?;
        Self::parse(&text).map_err(|message| SpecError::AllowList { path: path.to_path_buf(), message })
    }

    /// Parses allow-list text; every entry needs a non-empty location and reason.
    pub fn parse(text: &str) -> Result<Self, String> {
        let list: AllowList = toml::from_str(text).map_err(|e| e.to_string())?;
        for entry in &list.allow {
            if entry.at.trim().is_empty() || entry.reason.trim().is_empty() {
                return Err(format!("entry {:?} needs both `at` and a `reason`", entry.at));
            }
        }
        Ok(list)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_covers_its_location_and_below_only() {
        let list = AllowList::parse("[[allow]]\nat = \"GET /x > parameters\"\nreason = \"r\"\n").unwrap();
        let e = &list.allow[0];
        let s = |v: &[&str]| v.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert!(e.covers(&s(&["GET /x", "parameters", "query $a"])));
        assert!(e.covers(&s(&["GET /x", "parameters"])));
        assert!(!e.covers(&s(&["GET /x"])));
        assert!(!e.covers(&s(&["GET /y", "parameters"])));
    }

    #[test]
    fn an_entry_without_reason_is_rejected() {
        assert!(AllowList::parse("[[allow]]\nat = \"GET /x\"\nreason = \" \"\n").is_err());
        assert!(AllowList::parse("[[allow]]\nat = \"GET /x\"\n").is_err());
    }
}
