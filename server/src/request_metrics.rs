//! The metrics every answered request counts (requests by operation and status, their latency by
//! operation), with their handles kept per operation and status: looking a metric up by its labels on
//! every request (the labels made into strings, a key built, hashed and compared) cost more than the
//! counting itself.

use dpo_domain::metric_names as names;
use metrics::{Counter, Histogram};
use std::{collections::HashMap, sync::RwLock};

/// The handles, by operation, then status.
#[derive(Default)]
pub struct RequestMetrics {
    handles: RwLock<HashMap<String, Vec<(u16, Counter, Histogram)>>>,
}

impl RequestMetrics {
    /// Counts a request of `operation` answered with `status` after `seconds`.
    pub fn record(&self, operation: &str, status: u16, seconds: f64) {
        if let Ok(handles) = self.handles.read()
            && let Some((_, requests, latency)) =
                handles.get(operation).and_then(|by_status| by_status.iter().find(|(s, ..)| *s == status))
        {
            requests.increment(1);
            latency.record(seconds);
            return;
        }
        let requests =
            metrics::counter!(names::REQUESTS, "operation" => operation.to_string(), "status" => status.to_string());
        let latency = metrics::histogram!(names::REQUEST_SECONDS, "operation" => operation.to_string());
        requests.increment(1);
        latency.record(seconds);
        if let Ok(mut handles) = self.handles.write() {
            let by_status = handles.entry(operation.to_string()).or_default();
            if !by_status.iter().any(|(s, ..)| *s == status) {
                by_status.push((status, requests, latency));
            }
        }
    }
}
