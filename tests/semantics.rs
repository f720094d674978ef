//! Graph-faithful behaviour of single resources, the action, the service roots and the edges of HTTP.

use crate::common::{TestServer, get_json, ids, sas_url, submit};
use serde_json::{Value, json};

#[tokio::test]
async fn operations_survive_a_restart_over_the_same_state_directory() {
    let server = TestServer::start(60).await;
    let mut submitted = Vec::new();
    for user in ["alice", "bob", "carol"] {
        submitted.push(submit(&server, user).await);
    }
    let (_, before) = get_json(&server, "/dataPolicyOperations").await;
    let server = server.restart().await;
    let (status, after) = get_json(&server, "/dataPolicyOperations").await;
    assert_eq!(status, 200);
    assert_eq!(ids(&after), submitted);
    assert_eq!(before["value"], after["value"], "every property and ETag kept");
    let count = crate::common::count(&server, "/dataPolicyOperations/$count").await;
    assert_eq!(count, "3");
    // ETags still guard writes after the restart.
    let response = server
        .http()
        .delete(server.url(&format!("/dataPolicyOperations/{}", submitted[0])))
        .header("If-Match", "W/\"1\"")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 204);
    server.stop().await;
}

#[tokio::test]
async fn a_second_server_over_the_same_state_directory_is_refused_until_the_first_stops() {
    let server = TestServer::start(60).await;
    let config = dpo_server::ServerConfig {
        state_dir: server.state.path().to_path_buf(),
        database: server.database.clone(),
        ..Default::default()
    };
    if server.database.is_some() {
        // The lock is SQLite's rule: replicas over one PostgreSQL database may share a state directory,
        // and each answers for what the other wrote.
        let second = dpo_server::start(config).await.expect("a second replica starts");
        let id = submit(&server, "alice").await;
        let url = format!("{}/dataPolicyOperations/{id}", second.base_url());
        let seen = server.http().get(url).send().await.unwrap();
        assert_eq!(seen.status().as_u16(), 200, "the second replica reads the first's operation");
        second.close().await.expect("second server stops");
        server.stop().await;
        return;
    }
    let refused = dpo_server::start(config.clone()).await.err().expect("a second server is refused");
    let message = refused.to_string();
    assert!(message.contains("another dpo server is using this state directory"), "{message}");
    let state = server.state.path().to_path_buf();
    server.server.close().await.expect("server stops");
    let second = dpo_server::start(dpo_server::ServerConfig { state_dir: state, ..config })
        .await
        .expect("starts once the first has stopped");
    second.close().await.expect("second server stops");
}

#[tokio::test]
async fn the_api_answers_under_graphs_service_roots_with_links_to_match() {
    let server = TestServer::start(60).await;
    let http = server.http();
    for root in ["/v1.0", "/beta"] {
        let accepted = http
            .post(server.url(&format!("{root}/users/alice/exportPersonalData")))
            .json(&json!({"storageLocation": sas_url()}))
            .send()
            .await
            .unwrap();
        assert_eq!(accepted.status().as_u16(), 202);
        let location = accepted.headers()["location"].to_str().unwrap().to_string();
        assert!(location.starts_with(&server.url(&format!("{root}/dataPolicyOperations/"))), "{location}");
        let entity: Value = http.get(&location).send().await.unwrap().json().await.unwrap();
        assert_eq!(entity["userId"], "alice");
        assert_eq!(
            entity["@odata.context"],
            server.url(&format!("{root}/$metadata#dataPolicyOperations/$entity")),
            "the context names the root the client used"
        );
        let count = http.get(server.url(&format!("{root}/dataPolicyOperations/$count"))).send().await.unwrap();
        assert!(count.status().is_success());
    }
    let client = server.client_at(&server.url("/v1.0"));
    assert_eq!(client.count_operations(None, None).await.unwrap(), 2);
    server.stop().await;
}

#[tokio::test]
async fn exporting_needs_a_known_user_and_a_storage_location() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let post = |user: &str, body: Value| {
        http.post(server.url(&format!("/users/{user}/exportPersonalData"))).json(&body).send()
    };
    let unknown = post("mallory", json!({"storageLocation": sas_url()})).await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);
    let body: Value = unknown.json().await.unwrap();
    assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    assert!(body["error"]["message"].as_str().unwrap().contains("'mallory'"));

    // A user can be named by userPrincipalName too (case-insensitively); the operation records the id.
    let by_upn = post("ALICE@contoso.example", json!({"storageLocation": sas_url()})).await.unwrap();
    assert_eq!(by_upn.status().as_u16(), 202);
    let location = by_upn.headers()["location"].to_str().unwrap().to_string();
    let entity: Value = http.get(&location).send().await.unwrap().json().await.unwrap();
    assert_eq!(entity["userId"], "alice");
    assert!(entity["submittedDateTime"].as_str().unwrap().ends_with('Z'), "ISO 8601 UTC: {entity}");
    assert_eq!(entity["completedDateTime"], Value::Null);

    let missing = post("alice", json!({})).await.unwrap();
    assert_eq!(missing.status().as_u16(), 400);
    let count = crate::common::count(&server, "/dataPolicyOperations/$count").await;
    assert_eq!(count, "1", "only the accepted export is stored");
    server.stop().await;
}

#[tokio::test]
async fn http_edges_answer_with_odata_errors_and_the_right_status() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let id = submit(&server, "alice").await;

    let cases = [
        (http.put(server.url("/dataPolicyOperations")), 405, "MethodNotAllowed"),
        (http.post(server.url(&format!("/dataPolicyOperations/{id}"))), 405, "MethodNotAllowed"),
        (http.get(server.url("/users/alice/exportPersonalData")), 405, "MethodNotAllowed"),
        (http.delete(server.url("/v1.0/dataPolicyOperations")), 405, "MethodNotAllowed"),
        (
            http.post(server.url("/users/alice/exportPersonalData"))
                .header("content-type", "text/plain")
                .body(format!("{{\"storageLocation\":\"{}\"}}", sas_url())),
            415,
            "UnsupportedMediaType",
        ),
        (
            http.post(server.url("/users/alice/exportPersonalData"))
                .header("content-type", "application/json")
                .body(format!("{{\"storageLocation\":\"https://x/?{}\"}}", "a".repeat(70_000))),
            413,
            "RequestEntityTooLarge",
        ),
        (http.get(server.url("/dataPolicyOperations?$apply=groupby")), 400, "BadRequest"),
        (http.get(server.url(&format!("/dataPolicyOperations/{id}?$filter=x"))), 400, "BadRequest"),
    ];
    for (request, status, code) in cases {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), status);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], code, "{body}");
        assert!(body["error"]["message"].as_str().is_some_and(|m| !m.is_empty()));
    }
    let put = http.put(server.url(&format!("/v1.0/dataPolicyOperations/{id}"))).send().await.unwrap();
    assert_eq!(put.status().as_u16(), 405);
    assert_eq!(put.headers()["allow"], "GET, PATCH, DELETE", "405 says what is allowed");
    // Custom query options (without `$`) are the application's; dpo has none and ignores them.
    let (status, _) = get_json(&server, "/dataPolicyOperations?tracking=1").await;
    assert_eq!(status, 200);
    // Unknown paths get 404 (dropshot's router answers them itself, in its own body shape).
    let unknown = http.get(server.url("/groups")).send().await.unwrap();
    assert_eq!(unknown.status().as_u16(), 404);

    let count = crate::common::count(&server, "/dataPolicyOperations/$count").await;
    assert_eq!(count, "1", "no rejected request stored anything");
    server.stop().await;
}

#[tokio::test]
async fn every_answer_carries_request_ids_and_echoes_the_clients() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let ok = http.get(server.url("/dataPolicyOperations")).header("client-request-id", "abc-123").send().await.unwrap();
    assert!(ok.headers().contains_key("request-id"));
    assert_eq!(ok.headers()["client-request-id"], "abc-123");
    let failed = http
        .get(server.url("/dataPolicyOperations/not-a-guid"))
        .header("client-request-id", "def-456")
        .send()
        .await
        .unwrap();
    assert_eq!(failed.status().as_u16(), 400);
    let request_id = failed.headers()["x-request-id"].to_str().unwrap().to_string();
    let body: Value = failed.json().await.unwrap();
    assert_eq!(body["error"]["innerError"]["client-request-id"], "def-456");
    assert_eq!(body["error"]["innerError"]["request-id"], request_id);
    assert!(body["error"]["innerError"]["date"].as_str().unwrap().ends_with('Z'));
    server.stop().await;
}

#[tokio::test]
async fn etags_guard_patch_and_delete() {
    let server = TestServer::start(60).await;
    let http = server.http();
    let id = submit(&server, "bob").await;
    let url = server.url(&format!("/dataPolicyOperations/{id}"));
    let got = http.get(&url).send().await.unwrap();
    let etag = got.headers()["etag"].to_str().unwrap().to_string();
    let body: Value = got.json().await.unwrap();
    assert_eq!(body["@odata.etag"], etag.as_str());

    let moved = format!("{}&moved=1", sas_url());
    let patched =
        http.patch(&url).header("If-Match", &etag).json(&json!({"storageLocation": moved})).send().await.unwrap();
    assert_eq!(patched.status().as_u16(), 200);
    let new_etag = patched.headers()["etag"].to_str().unwrap().to_string();
    assert_ne!(new_etag, etag);
    // The old ETag is stale now: both PATCH and DELETE refuse it, and nothing changes.
    let stale =
        http.patch(&url).header("If-Match", &etag).json(&json!({"storageLocation": sas_url()})).send().await.unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let stale = http.delete(&url).header("If-Match", &etag).send().await.unwrap();
    assert_eq!(stale.status().as_u16(), 412);
    let (_, now) = get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(now["storageLocation"], moved.replace("sig=abc", "sig=REDACTED").as_str());
    let deleted = http.delete(&url).header("If-Match", "*").send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let (status, body) = get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    server.stop().await;
}
