//! The admin listener (`--admin-bind`, loopback by default, no token): `/metrics` in Prometheus' text
//! format, `/healthz` (the process answers) and `/readyz` (the store answers and the server is not
//! draining; 503 otherwise), on a port of its own so that the API's port never exposes them.
//!
//! Metrics are recorded through the `metrics` facade anywhere in the server ([`names`]) and rendered by
//! `metrics-exporter-prometheus`, whose own HTTP listener is off (it would bind 0.0.0.0).

use crate::store::{JobQueue, Stores, blocking::blocking};
use dropshot::{ApiDescription, Body, ConfigDropshot, HttpError, HttpServer, RequestContext, ServerBuilder, endpoint};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use std::{
    net::SocketAddr,
    sync::{
        Arc, OnceLock,
        atomic::{AtomicBool, Ordering},
    },
};

use dpo_domain::metric_names as names;

/// Buckets of the latency histograms, in seconds.
const BUCKETS: [f64; 14] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 600.0];

/// Buckets of the store's query latency, in seconds: 10 µs to 1 s.
const STORE_BUCKETS: [f64; 11] = [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.01, 0.1, 1.0];

/// The process's metrics recorder, installed on first use (one per process, shared by every server in
/// it, as the `metrics` facade has one global recorder).
pub fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            // A statement of the store takes microseconds where a request takes milliseconds.
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(names::STORE_QUERY_SECONDS.into()), &STORE_BUCKETS)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Suffix("_seconds".into()), &BUCKETS))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(handle) => {
                    keep_up(handle.clone());
                    handle
                }
                // Another recorder is installed already (a host application's): render an empty set.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// How often histogram samples are folded into their buckets.
const UPKEEP_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Folds the histograms' recorded samples into their buckets every [`UPKEEP_EVERY`]. An installed
/// recorder keeps every sample until upkeep runs, and nothing else runs it unless `/metrics` is scraped:
/// unscraped, the samples of each request (its latency, its store statements) added about 40 bytes per
/// request for good, 10 MiB per 250,000 GETs.
fn keep_up(handle: PrometheusHandle) {
    let started = std::thread::Builder::new().name("dpo-metrics-upkeep".into()).spawn(move || {
        loop {
            std::thread::sleep(UPKEEP_EVERY);
            handle.run_upkeep();
        }
    });
    if let Err(e) = started {
        eprintln!("metrics upkeep did not start ({e}): histograms keep their samples until /metrics is read");
    }
}

/// What the admin endpoints read.
pub struct AdminContext {
    stores: Stores,
    draining: Arc<AtomicBool>,
    metrics: PrometheusHandle,
}

/// Whether the server can take traffic: not draining, and its store answers. `Err` says why not.
pub async fn readiness(queue: &Arc<dyn JobQueue>, draining: &AtomicBool) -> Result<u64, String> {
    if draining.load(Ordering::SeqCst) {
        return Err("draining: the server is shutting down".into());
    }
    blocking(queue, |q| q.queued()).await.map_err(|e| format!("the store does not answer: {e}"))
}

fn text(status: http::StatusCode, content_type: &'static str, body: String) -> Result<http::Response<Body>, HttpError> {
    http::Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Body::from(body))
        .map_err(|e| HttpError::for_internal_error(e.to_string()))
}

/// Prometheus' text exposition format.
#[endpoint { method = GET, path = "/metrics" }]
async fn scrape(rqctx: RequestContext<AdminContext>) -> Result<http::Response<Body>, HttpError> {
    let ctx = rqctx.context();
    if let Ok(depth) = blocking(&ctx.stores.queue, |q| q.queued()).await {
        metrics::gauge!(names::QUEUE_DEPTH).set(depth as f64);
    }
    text(http::StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", ctx.metrics.render())
}

/// The process is alive.
#[endpoint { method = GET, path = "/healthz" }]
async fn healthz(_rqctx: RequestContext<AdminContext>) -> Result<http::Response<Body>, HttpError> {
    text(http::StatusCode::OK, "text/plain; charset=utf-8", "ok\n".into())
}

/// The server can take traffic: its store answers (migrations were applied when it opened) and it is not
/// draining.
#[endpoint { method = GET, path = "/readyz" }]
async fn readyz(rqctx: RequestContext<AdminContext>) -> Result<http::Response<Body>, HttpError> {
    let ctx = rqctx.context();
    match readiness(&ctx.stores.queue, &ctx.draining).await {
        Ok(_) => text(http::StatusCode::OK, "text/plain; charset=utf-8", "ready\n".into()),
        Err(why) => text(http::StatusCode::SERVICE_UNAVAILABLE, "text/plain; charset=utf-8", format!("{why}\n")),
    }
}

/// Starts the admin listener on `bind`.
pub fn start(
    bind: SocketAddr,
    stores: Stores,
    draining: Arc<AtomicBool>,
    log: slog::Logger,
) -> Result<HttpServer<AdminContext>, String> {
    let mut api = ApiDescription::new();
    api.register(scrape).map_err(|e| e.to_string())?;
    api.register(healthz).map_err(|e| e.to_string())?;
    api.register(readyz).map_err(|e| e.to_string())?;
    let context = AdminContext { stores, draining, metrics: handle() };
    ServerBuilder::new(api, context, log)
        .config(ConfigDropshot { bind_address: bind, ..Default::default() })
        .start()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;

    #[tokio::test]
    async fn a_draining_server_is_not_ready() {
        let dir = tempfile::tempdir().unwrap();
        let stores = Stores::over(Arc::new(SqliteStore::open(dir.path()).unwrap()));
        let draining = AtomicBool::new(false);
        assert_eq!(readiness(&stores.queue, &draining).await, Ok(0));
        draining.store(true, Ordering::SeqCst);
        assert!(readiness(&stores.queue, &draining).await.unwrap_err().contains("draining"));
    }
}
