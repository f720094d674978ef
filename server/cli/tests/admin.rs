//! The admin listener through the real binary: `/healthz`, `/readyz` and `/metrics` on a loopback port of
//! their own, without a token, the metrics read by Prometheus' own parser (its Python client, installed
//! into `.tools/` by `cargo xtask test`).

use crate::common::{admin_http, import_users, operation, serve, submit_export, tool};
use serde_json::Value;
use std::{
    io::Write,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// A sample as Prometheus' parser reads it: its name, labels and value.
type Sample = (String, serde_json::Map<String, Value>, f64);

/// Every sample of `text` as Prometheus' parser reads it, and each family's name and type.
fn parse(text: &str) -> (Vec<Sample>, Vec<(String, String)>) {
    let python = tool("DPO_PROMETHEUS_PYTHON", ".tools/venv/bin/python");
    let script = "import json, sys\nfrom prometheus_client.parser import text_string_to_metric_families\n\
                  for f in text_string_to_metric_families(sys.stdin.read()):\n\
                  \x20   print(json.dumps({'family': f.name, 'type': f.type}))\n\
                  \x20   for s in f.samples:\n\
                  \x20       print(json.dumps({'name': s.name, 'labels': s.labels, 'value': s.value}))\n";
    let mut child = Command::new(python)
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "the parser refused the text: {}\n{text}", String::from_utf8_lossy(&out.stderr));
    let (mut samples, mut families) = (Vec::new(), Vec::new());
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let item: Value = serde_json::from_str(line).unwrap();
        match item.get("family") {
            Some(family) => families.push((family.as_str().unwrap().into(), item["type"].as_str().unwrap().into())),
            None => samples.push((
                item["name"].as_str().unwrap().into(),
                item["labels"].as_object().unwrap().clone(),
                item["value"].as_f64().unwrap(),
            )),
        }
    }
    (samples, families)
}

#[tokio::test]
async fn metrics_and_health_are_served_on_their_own_port_and_parse_as_prometheus_text() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let server = serve(state.path(), &["--export-workers", "1", "--admin-bind", &format!("127.0.0.1:{port}")]);
    let admin = format!("http://127.0.0.1:{port}");
    let anyone = reqwest::Client::new();
    let health = anyone.get(format!("{admin}/healthz")).send().await.unwrap();
    assert_eq!((health.status().as_u16(), health.text().await.unwrap()), (200, "ok\n".to_string()));
    let ready = anyone.get(format!("{admin}/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200, "no token needed, the store answers");

    // Traffic to count: an export to its end, a call without a token, an unknown operation.
    let http = admin_http(state.path());
    let location = format!("file://{}/", state.path().join("exports/out").display());
    let id = submit_export(&http, &server.base, "alice", &location).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while operation(&http, &server.base, &id).await.1["status"] != "complete" {
        assert!(Instant::now() < deadline, "the export did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let unauthenticated = anyone.get(format!("{}/v1.0/dataPolicyOperations", server.base)).send().await.unwrap();
    assert_eq!(unauthenticated.status(), 401);
    let missing = operation(&http, &server.base, "d007e3da-cd9b-4b02-8d66-422403c53e3f").await;
    assert_eq!(missing.0, 404);
    let not_here = anyone.get(format!("{}/metrics", server.base)).send().await.unwrap();
    assert_eq!(not_here.status(), 404, "the API's port does not serve the metrics");

    let scraped = anyone.get(format!("{admin}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status(), 200);
    let content_type = scraped.headers()["content-type"].to_str().unwrap().to_string();
    assert!(content_type.starts_with("text/plain; version=0.0.4"), "{content_type}");
    let (samples, families) = parse(&scraped.text().await.unwrap());
    let value = |name: &str, labels: &[(&str, &str)]| -> f64 {
        samples
            .iter()
            .filter(|(n, l, _)| n == name && labels.iter().all(|(k, v)| l.get(*k).and_then(Value::as_str) == Some(*v)))
            .map(|(_, _, v)| v)
            .sum()
    };
    let kind = |family: &str| families.iter().find(|(f, _)| f == family).map(|(_, t)| t.clone()).unwrap_or_default();
    let export = [("operation", "users.user.exportPersonalData"), ("status", "202")];
    assert_eq!(value("dpo_http_requests_total", &export), 1.0);
    let gets = [("operation", "dataPolicyOperations.dataPolicyOperation.GetDataPolicyOperation"), ("status", "200")];
    assert!(value("dpo_http_requests_total", &gets) >= 1.0, "the polling");
    assert!(value("dpo_http_requests_total", &[("status", "404")]) >= 1.0);
    assert_eq!(value("dpo_token_failures_total", &[("reason", "missing")]), 1.0);
    assert_eq!(value("dpo_exports_finished_total", &[("status", "complete")]), 1.0);
    assert_eq!(value("dpo_exports_running", &[]), 0.0);
    assert_eq!(value("dpo_export_queue_depth", &[]), 0.0);
    assert!(value("dpo_exported_bytes_total", &[]) > 0.0 && value("dpo_exported_objects_total", &[]) >= 3.0);
    assert_eq!(kind("dpo_http_request_duration_seconds"), "histogram");
    assert_eq!(kind("dpo_export_duration_seconds"), "histogram");
    assert_eq!(kind("dpo_export_queue_depth"), "gauge");
    assert!(value("dpo_http_request_duration_seconds_count", &export[..1]) >= 1.0);
    assert_eq!(kind("dpo_store_query_duration_seconds"), "histogram");
    let (inserts, selects) =
        ([("store", "sqlite"), ("statement", "insert")], [("store", "sqlite"), ("statement", "select")]);
    assert!(value("dpo_store_query_duration_seconds_count", &inserts) >= 1.0, "the submission's insert");
    assert!(value("dpo_store_query_duration_seconds_count", &selects) >= 1.0, "the claim and the reads");
}
