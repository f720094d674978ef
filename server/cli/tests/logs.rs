//! The server's log as a machine reads it (`--log-format json`): one JSON object a line, request lines
//! with Graph's request-id and the caller's client-request-id, an export's start, sources and end with
//! its operation id; and, over a whole export to Azurite with a SAS URL and bearer tokens, not one line
//! with a SAS signature, a token or the storage account's key.

use crate::common::{Azurite, admin_http, import_users, operation, serve_logged};
use dpo_server::auth::{LOCAL_TENANT, mint_local, tokens::MintRequest};
use dpo_test_support::azurite::{ACCOUNT, ACCOUNT_KEY, account_sas};
use serde_json::{Value, json};
use std::time::{Duration, Instant};

#[tokio::test]
async fn json_logs_carry_the_ids_and_never_a_secret() {
    let azurite = Azurite::start();
    azurite.container("exports").await;
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    std::fs::create_dir_all(state.path().join(format!("drives/{LOCAL_TENANT}/alice"))).unwrap();
    std::fs::write(state.path().join(format!("drives/{LOCAL_TENANT}/alice/notes.txt")), b"alice's notes").unwrap();
    let emulator = azurite.host.clone();
    let server =
        serve_logged(state.path(), &["--log-format", "json", "--export-workers", "1", "--emulator-host", &emulator]);
    let sas = account_sas("rwdlac", "2099-01-01T00:00:00Z", ACCOUNT_KEY).unwrap();
    let signature = sas.split("sig=").nth(1).unwrap().split('&').next().unwrap().to_string();
    let location = format!("http://{emulator}/{ACCOUNT}/exports/gdpr?{sas}");
    let http = admin_http(state.path());
    let accepted = http
        .post(format!("{}/v1.0/users/alice/exportPersonalData", server.base))
        .header("client-request-id", "c0ffee00-1111-2222-3333-444455556666")
        .json(&json!({ "storageLocation": location }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let request_id = accepted.headers()["request-id"].to_str().unwrap().to_string();
    let id = accepted.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let deadline = Instant::now() + Duration::from_secs(60);
    while operation(&http, &server.base, &id).await.1["status"] != "complete" {
        assert!(Instant::now() < deadline, "the export did not complete");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // A refused call, whose token must not show either.
    let expired = {
        let mut request = MintRequest::admin(LOCAL_TENANT);
        request.lifetime_seconds = -600;
        mint_local(state.path(), &request).unwrap()
    };
    let refused = reqwest::Client::new()
        .get(format!("{}/v1.0/dataPolicyOperations/{id}", server.base))
        .bearer_auth(&expired)
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 401);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    // A token in the query (which dpo does not take): its request line must not carry it into the log.
    let in_query = reqwest::Client::new()
        .get(format!("{}/v1.0/dataPolicyOperations?access_token={token}", server.base))
        .send()
        .await
        .unwrap();
    assert_eq!(in_query.status(), 401);
    // The last lines of an export come after it completes, and the requests' lines reach the log in
    // batches: wait for its end line and the four requests' (submission, a poll, the two refused).
    let deadline = Instant::now() + Duration::from_secs(10);
    while server.logged("export complete").is_empty() || server.logged("\"request answered\"").len() < 4 {
        assert!(Instant::now() < deadline, "no end line");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let lines: Vec<Value> = server
        .logged("")
        .into_iter()
        .map(|(_, line)| serde_json::from_str(&line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect();
    assert!(lines.len() > 10, "a whole export's lines: {lines:?}");
    // stdout too: its one line, where it listens, is JSON like every other.
    let announced: Value = serde_json::from_str(&server.announced).expect("the listening line is JSON");
    assert_eq!((&announced["msg"], &announced["url"]), (&json!("dpo-server listening"), &json!(server.base)));
    assert!(lines.iter().all(|l| l["msg"].is_string() && l["level"].is_string() && l["ts"].is_string()));
    // One line per request at info: dpo's, not dropshot's repetition of it (nor a line per connection).
    let answered = lines.iter().filter(|l| l["msg"] == "request answered").count();
    assert!(answered >= 4, "{answered} request lines");
    for repeated in ["request completed", "accepted connection"] {
        assert!(!lines.iter().any(|l| l["msg"] == repeated), "a '{repeated}' line at info");
    }
    let submitted = lines
        .iter()
        .find(|l| l["msg"] == "request answered" && l["operation"] == "users.user.exportPersonalData")
        .expect("the submission's request line");
    assert_eq!(submitted["request_id"], request_id.as_str());
    assert_eq!(submitted["client_request_id"], "c0ffee00-1111-2222-3333-444455556666");
    assert_eq!(submitted["status"], 202);
    assert_eq!(submitted["method"], "POST");
    assert!(submitted["uri"].as_str().is_some_and(|uri| uri.ends_with("/exportPersonalData")), "{submitted}");
    assert!(submitted["remote_addr"].as_str().is_some_and(|peer| peer.starts_with("127.0.0.1:")), "{submitted}");
    // The request's id once, not again as dropshot's `req_id`; the listener's address is in its start line.
    assert!(submitted.get("req_id").is_none() && submitted.get("local_addr").is_none(), "{submitted}");
    for message in ["export started", "data source read", "export complete"] {
        let line = lines.iter().find(|l| l["msg"] == message).unwrap_or_else(|| panic!("no '{message}' line"));
        assert_eq!(line["operation"], id.as_str(), "{line}");
    }
    for line in server.logged("") {
        for secret in [&signature, &expired, &token, &ACCOUNT_KEY.to_string()] {
            assert!(!line.1.contains(secret.as_str()), "a secret in the log: {}", line.1);
        }
        let decoded = percent_encoding::percent_decode_str(&signature).decode_utf8_lossy().into_owned();
        assert!(!line.1.contains(&decoded), "a decoded signature in the log: {}", line.1);
    }
}
