//! Loading the directory: users from JSON or CSV, activity records from JSON lines.

use crate::store::{ActivityRecord, UserRecord};
use std::path::Path;

/// Why a file could not be imported.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ImportError {
    /// The file.
    pub path: String,
    /// What is wrong, with the line or record where it helps.
    pub message: String,
}

fn error(path: &Path, message: impl Into<String>) -> ImportError {
    ImportError { path: path.display().to_string(), message: message.into() }
}

/// Users from `path`: a JSON array of `{"id","userPrincipalName","displayName","mail"}`, or, for a `.csv`
/// file, a header `id,userPrincipalName,displayName,mail` and one user a row.
pub fn read_users(path: &Path) -> Result<Vec<UserRecord>, ImportError> {
    let users: Vec<UserRecord> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        let mut reader = csv::Reader::from_path(path).map_err(|e| error(path, e.to_string()))?;
        reader.deserialize().collect::<Result<_, _>>().map_err(|e| error(path, e.to_string()))?
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| error(path, e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(path, format!("expected a JSON array of users: {e}")))?
    };
    for (i, u) in users.iter().enumerate() {
        if u.id.trim().is_empty() || u.user_principal_name.trim().is_empty() {
            return Err(error(path, format!("user {} needs an id and a userPrincipalName", i + 1)));
        }
    }
    Ok(users)
}

/// Activity records from `path`: one JSON object `{"userId","occurredAt","kind","detail"}` a line.
pub fn read_activities(path: &Path) -> Result<Vec<ActivityRecord>, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|e| error(path, e.to_string()))?;
    text.lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| serde_json::from_str(l).map_err(|e| error(path, format!("line {}: {e}", i + 1))))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn users_from_csv_and_json_and_activities_from_lines() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("u.csv");
        std::fs::write(&csv, "id,userPrincipalName,displayName,mail\na1,a@x.example,A,a@x.example\nb2,b@x.example,,\n")
            .unwrap();
        let users = read_users(&csv).unwrap();
        assert_eq!(users.len(), 2);
        assert_eq!(users[1].display_name, None);
        let json = dir.path().join("u.json");
        std::fs::write(&json, r#"[{"id":"c3","userPrincipalName":"c@x.example"}]"#).unwrap();
        assert_eq!(read_users(&json).unwrap()[0].id, "c3");
        std::fs::write(&json, r#"[{"id":"","userPrincipalName":"c@x.example"}]"#).unwrap();
        assert!(read_users(&json).unwrap_err().message.contains("user 1"));
        let lines = dir.path().join("a.jsonl");
        std::fs::write(&lines, "{\"userId\":\"a1\",\"occurredAt\":\"2026-01-01T00:00:00Z\",\"kind\":\"signIn\",\"detail\":{\"ip\":\"10.0.0.1\"}}\n\nnot json\n").unwrap();
        assert!(read_activities(&lines).unwrap_err().message.contains("line 3"));
    }
}
