//! The metrics every answered request counts (requests by operation and status, their latency by
//! operation), with their handles kept per operation and status: looking a metric up by its labels on
//! every request (the labels made into strings, a key built, hashed and compared) cost more than the
//! counting itself.

use dpo_domain::metric_names as names;
use metrics::{Counter, Histogram};
use std::{collections::HashMap, sync::RwLock};

/// The handles of one operation answered with one status.
struct Handles {
    status: u16,
    requests: Counter,
    latency: Histogram,
}

/// The handles, by operation.
#[derive(Default)]
pub struct RequestMetrics {
    by_operation: RwLock<HashMap<String, Vec<Handles>>>,
}

impl RequestMetrics {
    /// Counts a request of `operation` answered with `status` after `seconds`.
    pub fn record(&self, operation: &str, status: u16, seconds: f64) {
        if let Ok(by_operation) = self.by_operation.read()
            && let Some(handles) = by_operation.get(operation).and_then(|all| all.iter().find(|h| h.status == status))
        {
            handles.requests.increment(1);
            handles.latency.record(seconds);
            return;
        }
        let requests =
            metrics::counter!(names::REQUESTS, "operation" => operation.to_string(), "status" => status.to_string());
        let latency = metrics::histogram!(names::REQUEST_SECONDS, "operation" => operation.to_string());
        requests.increment(1);
        latency.record(seconds);
        if let Ok(mut by_operation) = self.by_operation.write() {
            let all = by_operation.entry(operation.to_string()).or_default();
            if !all.iter().any(|h| h.status == status) {
                all.push(Handles { status, requests, latency });
            }
        }
    }
}
