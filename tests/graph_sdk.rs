//! Microsoft's own JavaScript Graph SDK, unmodified, pointed at a dpo server: export, get and list work.

mod common;

use common::{TestServer, sas_url};
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
