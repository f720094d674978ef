//! Printing operations and audit events for people (aligned columns) or scripts (JSON).

use crate::Output;
use dpo_client::{
    types::{MicrosoftGraphDataPolicyOperation as Operation, MicrosoftGraphDirectoryAudit as AuditEvent},
    waiting::{progress_of, status_of},
};

fn row(op: &Operation) -> [String; 6] {
    let time = |t: &Option<chrono_like::Time>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or_else(|| "-".into())
    };
    [
        op.id.clone().unwrap_or_default(),
        op.user_id.clone().unwrap_or_default(),
        status_of(op).map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
        progress_of(op).map(|p| format!("{p:.0}%")).unwrap_or_else(|| "-".into()),
        time(&op.submitted_date_time),
        time(&op.completed_date_time),
    ]
}

mod chrono_like {
    /// The timestamp type of the generated client.
    pub type Time = chrono::DateTime<chrono::Utc>;
}

const HEADERS: [&str; 6] = ["ID", "USER", "STATUS", "PROGRESS", "SUBMITTED", "COMPLETED"];

/// Prints operations as a table or a JSON array.
pub fn operations(ops: &[Operation], output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(ops).unwrap_or_default()),
        Output::Table => table(&HEADERS, ops.iter().map(|op| row(op).to_vec()).collect()),
    }
}

/// Prints `rows` under `headers` in aligned columns.
pub(crate) fn table(headers: &[&str], rows: Vec<Vec<String>>) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (w, cell) in widths.iter_mut().zip(r) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect::<Vec<_>>().join("  ").trim_end().to_string()
    };
    println!("{}", line(headers.to_vec()));
    for r in &rows {
        println!("{}", line(r.iter().map(String::as_str).collect()));
    }
}

const AUDIT_HEADERS: [&str; 6] = ["TIME", "ACTIVITY", "RESULT", "ACTOR", "USER", "OPERATION"];

/// An audit event's columns, read from its JSON (the generated types wrap optional complex values).
fn audit_row(event: &AuditEvent) -> Vec<String> {
    let json = serde_json::to_value(event).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
    let actor = match (&json["initiatedBy"]["user"]["id"], &json["initiatedBy"]["app"]["appId"]) {
        (serde_json::Value::String(user), _) => format!("user {user}"),
        (_, serde_json::Value::String(app)) => format!("app {app}"),
        _ => "-".into(),
    };
    let target = |kind: &str| {
        json["targetResources"]
            .as_array()
            .and_then(|targets| targets.iter().find(|t| t["type"] == kind))
            .map_or_else(|| "-".to_string(), |t| text(&t["id"]))
    };
    let time = event.activity_date_time.map(|t| t.format("%Y-%m-%d %H:%M:%SZ").to_string()).unwrap_or("-".into());
    vec![
        time,
        text(&json["activityDisplayName"]),
        text(&json["result"]),
        actor,
        target("User"),
        target("DataPolicyOperation"),
    ]
}

/// Prints audit events as a table or a JSON array.
pub fn audit_events(events: &[AuditEvent], output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(events).unwrap_or_default()),
        Output::Table => table(&AUDIT_HEADERS, events.iter().map(audit_row).collect()),
    }
}

/// Prints one audit event: as `name: value` lines, or as JSON.
pub fn audit_event(event: &AuditEvent, output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(event).unwrap_or_default()),
        Output::Table => {
            println!("{:<16}{}", "id", event.id.as_deref().unwrap_or("-"));
            for (name, value) in AUDIT_HEADERS.iter().zip(audit_row(event)) {
                println!("{:<16}{value}", name.to_lowercase());
            }
            if let Some(reason) = &event.result_reason {
                println!("{:<16}{reason}", "reason");
            }
            for detail in &event.additional_details {
                let key = detail.key.as_deref().unwrap_or("-");
                println!("{key:<16}{}", detail.value.as_deref().unwrap_or("-"));
            }
        }
    }
}

/// Prints one operation: as `name: value` lines, or as JSON.
pub fn operation(op: &Operation, output: Output) {
    match output {
        Output::Json => println!("{}", serde_json::to_string_pretty(op).unwrap_or_default()),
        Output::Table => {
            let r = row(op);
            for (name, value) in ["id", "userId", "status", "progress", "submitted", "completed"].iter().zip(r) {
                println!("{name:<16}{value}");
            }
            if let Some(location) = &op.storage_location {
                println!("{:<16}{location}", "storageLocation");
            }
        }
    }
}
