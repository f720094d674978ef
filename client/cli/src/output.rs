//! Printing operations for people (aligned columns) or scripts (JSON).

use crate::Output;
use dpo_client::{
    types::MicrosoftGraphDataPolicyOperation as Operation,
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
        Output::Table => {
            let rows: Vec<[String; 6]> = ops.iter().map(row).collect();
            let mut widths = HEADERS.map(str::len);
            for r in &rows {
                for (w, cell) in widths.iter_mut().zip(r) {
                    *w = (*w).max(cell.chars().count());
                }
            }
            let line = |cells: [&str; 6]| {
                cells
                    .iter()
                    .zip(widths)
                    .map(|(c, w)| format!("{c:<w$}"))
                    .collect::<Vec<_>>()
                    .join("  ")
                    .trim_end()
                    .to_string()
            };
            println!("{}", line(HEADERS));
            for r in &rows {
                println!("{}", line([&r[0], &r[1], &r[2], &r[3], &r[4], &r[5]].map(String::as_str)));
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
