//! Microsoft's own Graph SDKs, unmodified, pointed at a dpo server: the JavaScript SDK exports, gets and
//! lists; the page iterators of the JavaScript and Python SDKs walk a collection page by page.

use crate::common::{TestServer, sas_url, submit, throttled_so_far};
use serde_json::Value;
use std::path::PathBuf;

fn sdk() -> PathBuf {
    if let Ok(path) = std::env::var("DPO_GRAPH_SDK") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/node_modules/@microsoft/microsoft-graph-client")
}

#[tokio::test]
async fn the_javascript_graph_sdk_exports_gets_and_lists() {
    let sdk = sdk();
    assert!(
        sdk.join("package.json").exists(),
        "@microsoft/microsoft-graph-client is not installed at {}: run `cargo xtask test` or set DPO_GRAPH_SDK",
        sdk.display()
    );
    let server = TestServer::start(30).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/graph-sdk.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .env("GRAPH_SDK", &sdk)
        .env("BASE_URL", format!("{}/", server.base_url))
        .env("TOKEN", server.admin_token())
        .env("USER_ID", "alice")
        .env("STORAGE", sas_url())
        .output()
        .await
        .expect("node runs");
    assert!(out.status.success(), "the SDK script failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(seen["status"], 202);
    assert_eq!(seen["retryAfter"], "30");
    let id = seen["location"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert!(seen["location"].as_str().unwrap().starts_with(&server.url("/v1.0/dataPolicyOperations/")));
    assert_eq!(seen["operation"]["id"], id.as_str());
    assert_eq!(seen["operation"]["status"], "notStarted");
    assert_eq!(seen["operation"]["userId"], "alice");
    assert_eq!(seen["count"], 1);
    assert_eq!(seen["listed"], serde_json::json!([id]));
    assert_eq!(seen["missing"]["statusCode"], 404);
    assert_eq!(seen["missing"]["code"], "Request_ResourceNotFound");
    server.stop().await;
}

/// The Python interpreter with Microsoft's Python Graph SDK (msgraph-sdk) installed.
fn python_sdk() -> PathBuf {
    if let Ok(path) = std::env::var("DPO_PYTHON_GRAPH_SDK") {
        return PathBuf::from(path);
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python")
}

/// 250 operations of the test tenant, in submission order.
async fn two_hundred_fifty(server: &TestServer) -> Vec<String> {
    let mut ids = Vec::new();
    for i in 0..250 {
        ids.push(submit(server, &format!("user{i}")).await);
    }
    ids
}

/// Checks what a page-iterator script saw: a first page of `$top`, then every operation once, in order.
fn walked_every_page(out: std::process::Output, expected: &[String], who: &str) {
    assert!(out.status.success(), "the {who} script failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(seen["firstPage"], 100, "{who}: $top=100 is the page size");
    assert!(seen["firstNextLink"].as_str().is_some_and(|next| next.contains("$top=100")), "{who}: {seen}");
    let ids: Vec<String> = serde_json::from_value(seen["ids"].clone()).expect("ids");
    assert_eq!(ids, expected, "{who}: every operation once, in order, across three pages");
}

#[tokio::test]
async fn the_javascript_sdk_page_iterator_walks_every_page_of_top() {
    let sdk = sdk();
    assert!(
        sdk.join("package.json").exists(),
        "@microsoft/microsoft-graph-client is not installed at {}",
        sdk.display()
    );
    // The SDK follows a next link only when it is an https URL (anything else it takes for a path), as
    // Graph's are: this server speaks https with a certificate node is told to trust.
    let server =
        TestServer::start_with(crate::common::Options { retry_after: 30, tls: true, ..Default::default() }).await;
    let expected = two_hundred_fifty(&server).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/graph-sdk-paging.cjs");
    let out = tokio::process::Command::new("node")
        .arg(&script)
        .env("GRAPH_SDK", &sdk)
        .env("BASE_URL", format!("{}/", server.base_url))
        .env("TOKEN", server.admin_token())
        .env("TOP", "100")
        .env("NODE_EXTRA_CA_CERTS", server.state.path().join("tls/cert.pem"))
        .output()
        .await
        .expect("node runs");
    walked_every_page(out, &expected, "JavaScript SDK");
    server.stop().await;
}

#[tokio::test]
async fn the_python_sdk_page_iterator_walks_every_page_of_top() {
    let python = python_sdk();
    assert!(
        python.exists(),
        "no Python with msgraph-sdk at {}: run `cargo xtask test` or set DPO_PYTHON_GRAPH_SDK",
        python.display()
    );
    let server = TestServer::start(30).await;
    let expected = two_hundred_fifty(&server).await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/graph-sdk-paging.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env("BASE_URL", format!("{}/v1.0", server.base_url))
        .env("TOKEN", server.admin_token())
        .env("TOP", "100")
        .output()
        .await
        .expect("python runs");
    walked_every_page(out, &expected, "Python SDK");
    server.stop().await;
}

/// A server that lets each caller send 2 requests a second.
async fn throttled_server() -> TestServer {
    let throttle =
        dpo_server::throttle::ThrottleLimits { per_caller: std::num::NonZeroU32::new(2), ..Default::default() };
    TestServer::start_with(crate::common::Options { retry_after: 30, throttle, ..Default::default() }).await
}

/// Runs `command` (one of the throttled scripts) and checks that all its calls succeeded and that the
/// server did throttle it meanwhile (no other test of this binary is throttled).
async fn rides_out_throttling(mut command: tokio::process::Command, who: &str) {
    let before = throttled_so_far();
    let out = command.env("CALLS", "6").output().await.expect("the SDK's runtime runs");
    assert!(out.status.success(), "the {who} script failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    assert_eq!(seen["ok"], 6, "{who}: every call succeeded");
    assert!(throttled_so_far() > before, "{who}: the server did answer 429 meanwhile");
}

#[tokio::test]
async fn microsofts_sdks_retry_handlers_ride_out_throttling() {
    let (sdk, python) = (sdk(), python_sdk());
    assert!(sdk.join("package.json").exists(), "@microsoft/microsoft-graph-client is not installed");
    assert!(python.exists(), "no Python with msgraph-sdk at {}", python.display());
    let server = throttled_server().await;
    let interop = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop");
    let mut node = tokio::process::Command::new("node");
    node.arg(interop.join("graph-sdk-throttled.cjs"))
        .env("GRAPH_SDK", &sdk)
        .env("BASE_URL", format!("{}/", server.base_url))
        .env("TOKEN", server.admin_token());
    rides_out_throttling(node, "JavaScript SDK").await;
    let mut py = tokio::process::Command::new(&python);
    py.arg(interop.join("graph-sdk-throttled.py"))
        .env("BASE_URL", format!("{}/v1.0", server.base_url))
        .env("TOKEN", server.admin_token());
    rides_out_throttling(py, "Python SDK").await;
    // What a caller over its rate sees: Graph's 429, saying when to come back.
    let http = reqwest::Client::new();
    let mut refused = None;
    for _ in 0..5 {
        let answer =
            http.get(server.url("/v1.0/dataPolicyOperations")).bearer_auth(server.admin_token()).send().await.unwrap();
        if answer.status() == 429 {
            refused = Some(answer);
            break;
        }
    }
    let refused = refused.expect("five requests at once are over 2 a second");
    let wait: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After: {wait}");
    assert!(refused.headers().contains_key("request-id"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests", "{body}");
    server.stop().await;
}
