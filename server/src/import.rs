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

/// Users from `path`: a JSON array of `{"id","userPrincipalName","displayName","mail", …}`, or, for a
/// `.csv` file, a header `id,userPrincipalName,displayName,mail,…` and one user a row. Any other field or
/// column is a further attribute of the user (a string, number or boolean; an empty CSV cell or a JSON
/// null is none), named like a query parameter: letters, digits and `_`, not starting with a digit.
pub fn read_users(path: &Path) -> Result<Vec<UserRecord>, ImportError> {
    let mut users: Vec<UserRecord> = if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv")) {
        users_from_csv(path)?
    } else {
        let text = std::fs::read_to_string(path).map_err(|e| error(path, e.to_string()))?;
        serde_json::from_str(&text).map_err(|e| error(path, format!("expected a JSON array of users: {e}")))?
    };
    // Which user first used each id, userPrincipalName and mail (the last two in any case).
    let mut first: std::collections::HashMap<(&str, String), usize> = std::collections::HashMap::new();
    for (i, u) in users.iter_mut().enumerate() {
        if u.id.trim().is_empty() || u.user_principal_name.trim().is_empty() {
            return Err(error(path, format!("user {} needs an id and a userPrincipalName", i + 1)));
        }
        let keys = [
            ("id", Some(u.id.clone())),
            ("userPrincipalName", Some(u.user_principal_name.to_lowercase())),
            ("mail", u.mail.as_ref().map(|m| m.to_lowercase())),
        ];
        for (what, value) in keys {
            let Some(value) = value else { continue };
            if let Some(earlier) = first.insert((what, value), i + 1) {
                return Err(error(path, format!("user {} has the same {what} as user {earlier}", i + 1)));
            }
        }
        u.attributes.retain(|_, value| !value.is_null());
        for (name, value) in &u.attributes {
            if !attribute_name(name) {
                return Err(error(
                    path,
                    format!(
                        "user {}: the attribute name {name:?} must be letters, digits and _ (not starting with a \
                         digit), so that a data source can name it as :{name}",
                        i + 1
                    ),
                ));
            }
            if value.is_array() || value.is_object() {
                return Err(error(
                    path,
                    format!("user {}: the attribute {name} must be a string, number or boolean", i + 1),
                ));
            }
        }
    }
    Ok(users)
}

pub use dpo_domain::directory::attribute_name;

/// Users of a CSV file by its header: the four known columns, and every other column an attribute.
fn users_from_csv(path: &Path) -> Result<Vec<UserRecord>, ImportError> {
    let mut reader = csv::Reader::from_path(path).map_err(|e| error(path, e.to_string()))?;
    let headers = reader.headers().map_err(|e| error(path, e.to_string()))?.clone();
    let mut users = Vec::new();
    for (line, record) in reader.records().enumerate() {
        let record = record.map_err(|e| error(path, e.to_string()))?;
        let mut user = UserRecord::default();
        for (name, value) in headers.iter().zip(record.iter()) {
            let optional = || (!value.is_empty()).then(|| value.to_string());
            match name {
                "id" => user.id = value.to_string(),
                "userPrincipalName" => user.user_principal_name = value.to_string(),
                "displayName" => user.display_name = optional(),
                "mail" => user.mail = optional(),
                _ if value.is_empty() => {}
                _ => {
                    user.attributes.insert(name.to_string(), serde_json::Value::String(value.to_string()));
                }
            }
        }
        if headers.len() != record.len() {
            return Err(error(
                path,
                format!("line {}: {} fields, the header has {}", line + 2, record.len(), headers.len()),
            ));
        }
        users.push(user);
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
    fn two_users_with_one_mail_or_one_user_principal_name_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("u.csv");
        for (rows, what) in [
            ("a1,a@x.example,,Same@x.example\nb2,b@x.example,,same@X.example\n", "mail"),
            ("a1,a@x.example,,\nb2,A@x.example,,\n", "userPrincipalName"),
            ("a1,a@x.example,,\na1,b@x.example,,\n", "id"),
        ] {
            std::fs::write(&file, format!("id,userPrincipalName,displayName,mail\n{rows}")).unwrap();
            let refused = read_users(&file).expect_err(what).to_string();
            assert!(refused.ends_with(&format!("user 2 has the same {what} as user 1")), "{refused}");
        }
        std::fs::write(&file, "id,userPrincipalName,displayName,mail\na1,a@x.example,,\nb2,b@x.example,,\n").unwrap();
        assert_eq!(read_users(&file).expect("two users without mail").len(), 2);
    }

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

    #[test]
    fn other_fields_and_columns_are_further_attributes() {
        let dir = tempfile::tempdir().unwrap();
        let csv = dir.path().join("u.csv");
        std::fs::write(
            &csv,
            "id,userPrincipalName,employeeId,mail,region\na1,a@x.example,E-17,,\nb2,b@x.example,,b@x.example,eu\n",
        )
        .unwrap();
        let users = read_users(&csv).unwrap();
        assert_eq!(users[0].attributes, [("employeeId".to_string(), serde_json::json!("E-17"))].into());
        assert_eq!((users[0].mail.as_deref(), users[1].mail.as_deref()), (None, Some("b@x.example")));
        assert_eq!(users[1].attributes, [("region".to_string(), serde_json::json!("eu"))].into());
        let json = dir.path().join("u.json");
        std::fs::write(
            &json,
            r#"[{"id":"c3","userPrincipalName":"c@x.example","customerNumber":4711,"vip":true,"gone":null}]"#,
        )
        .unwrap();
        let user = &read_users(&json).unwrap()[0];
        assert_eq!(user.attributes.len(), 2);
        assert_eq!(user.attributes["customerNumber"], 4711);
        let profile = serde_json::to_value(user).unwrap();
        assert_eq!(profile["customerNumber"], 4711, "the profile shows them beside the known fields: {profile}");
        std::fs::write(&json, r#"[{"id":"c3","userPrincipalName":"c@x.example","tags":["a"]}]"#).unwrap();
        assert!(read_users(&json).unwrap_err().message.contains("string, number or boolean"));
        std::fs::write(&json, r#"[{"id":"c3","userPrincipalName":"c@x.example","first-name":"C"}]"#).unwrap();
        assert!(read_users(&json).unwrap_err().message.contains("letters, digits and _"));
        std::fs::write(&csv, "id,userPrincipalName\na1,a@x.example,extra\n").unwrap();
        assert!(read_users(&csv).is_err());
    }
}
