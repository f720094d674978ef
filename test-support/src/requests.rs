//! Reading subject rights requests as the wire has them, for the suites and the benchmarks alike.

use serde_json::Value;

/// The status of `stage` in `request` (`""` when it has no such stage).
pub fn stage_status(request: &Value, stage: &str) -> String {
    stage_detail(request, stage).and_then(|s| s["status"].as_str()).unwrap_or_default().to_string()
}

/// The error message of `stage` in `request` (`""` when it has none).
pub fn stage_error(request: &Value, stage: &str) -> String {
    stage_detail(request, stage).and_then(|s| s["error"]["message"].as_str()).unwrap_or_default().to_string()
}

fn stage_detail<'a>(request: &'a Value, stage: &str) -> Option<&'a Value> {
    request["stages"].as_array()?.iter().find(|s| s["stage"] == stage)
}
