//! The audit trail read through Graph's `GET /auditLogs/directoryAudits`: Microsoft's `directoryAudit`
//! shape, `$filter` on the properties Graph documents (with `any()`), paging, `$select`, one event by id,
//! the permission Graph asks for (`AuditLog.Read.All`), and tenants kept apart.

use crate::common::{TENANT, TestServer, sas_url, submit};
use dpo_server::auth::{USER_EXPORT_ALL, tokens::MintRequest};
use serde_json::Value;

const AUDIT_LOG_READ_ALL: &str = "AuditLog.Read.All";

/// An administrator of `tenant` who may export and read audit logs.
fn auditor(tenant: &str) -> MintRequest {
    MintRequest { permissions: vec![USER_EXPORT_ALL.into(), AUDIT_LOG_READ_ALL.into()], ..MintRequest::admin(tenant) }
}

async fn audits(server: &TestServer, token: &str, query: &str) -> (u16, Value) {
    let response =
        server.http_with(token).get(server.url(&format!("/auditLogs/directoryAudits{query}"))).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

fn values(page: &Value) -> Vec<Value> {
    page["value"].as_array().cloned().unwrap_or_default()
}

fn ids(page: &Value) -> Vec<String> {
    values(page).iter().map(|e| e["id"].as_str().unwrap_or_default().to_string()).collect()
}

/// Three exports (alice, bob, alice), one refused for want of a permission, and a cancellation: five
/// events. Returns the operations' ids and the request-id of the first submission.
async fn some_history(server: &TestServer) -> (Vec<String>, String) {
    let http = server.http_with(&server.token(&auditor(TENANT)));
    let first = http
        .post(server.url("/users/alice/exportPersonalData"))
        .json(&serde_json::json!({ "storageLocation": sas_url() }))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let request_id = first.headers()["request-id"].to_str().unwrap().to_string();
    let first_id = first.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    let second = submit(server, "bob").await;
    let third = submit(server, "alice").await;
    let reader = server.token(&MintRequest { permissions: vec!["User.Read.All".into()], ..MintRequest::admin(TENANT) });
    let refused = server
        .http_with(&reader)
        .post(server.url("/users/bob/exportPersonalData"))
        .json(&serde_json::json!({ "storageLocation": sas_url() }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    let cancelled = server.http().delete(server.url(&format!("/dataPolicyOperations/{third}"))).send().await.unwrap();
    assert_eq!(cancelled.status(), 204);
    (vec![first_id, second, third], request_id)
}

#[tokio::test]
async fn the_audit_trail_reads_as_graphs_directory_audits() {
    let server = TestServer::start(1).await;
    let (operations, request_id) = some_history(&server).await;
    let token = server.token(&auditor(TENANT));

    let (status, page) = audits(&server, &token, "").await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["@odata.context"], format!("{}/$metadata#auditLogs/directoryAudits", server.base_url));
    let events = values(&page);
    assert_eq!(events.len(), 5, "{page}");
    let activities: Vec<&str> = events.iter().map(|e| e["activityDisplayName"].as_str().unwrap()).collect();
    assert_eq!(
        activities,
        [
            "Cancel data policy operation",
            "Export personal data",
            "Export personal data",
            "Export personal data",
            "Export personal data"
        ],
        "newest first"
    );
    let times: Vec<chrono::DateTime<chrono::Utc>> =
        events.iter().map(|e| e["activityDateTime"].as_str().unwrap().parse().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "{times:?}");

    let first = events.last().unwrap();
    assert_eq!(first["category"], "DataPolicyOperations");
    assert_eq!(first["operationType"], "Add");
    assert_eq!(first["loggedByService"], "dpo");
    assert_eq!(first["result"], "success");
    assert_eq!(first["correlationId"], request_id.as_str(), "the submission's request-id");
    assert_eq!(first["initiatedBy"]["user"]["id"], "local-admin");
    assert!(first["initiatedBy"]["app"].is_null());
    let targets = first["targetResources"].as_array().unwrap();
    assert_eq!(targets[0]["type"], "User");
    assert_eq!(targets[0]["id"], "alice");
    assert_eq!(targets[1]["type"], "DataPolicyOperation");
    assert_eq!(targets[1]["id"], operations[0].as_str());
    let details = first["additionalDetails"].as_array().unwrap();
    let detail = |key: &str| details.iter().find(|d| d["key"] == key).map(|d| d["value"].as_str().unwrap().to_string());
    let location = detail("storageLocation").expect("the storage location");
    assert!(location.contains("account.blob.core.windows.net") && !location.contains("sig=abc"), "{location}");
    assert_eq!(detail("sequence").as_deref(), Some("1"));
    assert_eq!(detail("previousHash").unwrap(), "0".repeat(64));

    let refused = &events[1];
    assert_eq!(refused["result"], "failure");
    assert!(refused["resultReason"].as_str().unwrap().contains("User.Export.All"), "{refused}");
    assert_eq!(events[0]["operationType"], "Delete");

    // One event by id, whole or projected.
    let id = first["id"].as_str().unwrap();
    let (status, one) = get_json_with(&server, &token, &format!("/auditLogs/directoryAudits/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["id"], id);
    assert_eq!(one["@odata.context"], format!("{}/$metadata#auditLogs/directoryAudits/$entity", server.base_url));
    assert_eq!(one["targetResources"], first["targetResources"]);
    let (_, projected) =
        get_json_with(&server, &token, &format!("/auditLogs/directoryAudits/{id}?$select=id,category")).await;
    let keys: Vec<&String> = projected.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["@odata.context", "category", "id"], "{projected}");
    let (status, listed_only) =
        get_json_with(&server, &token, &format!("/auditLogs/directoryAudits/{id}?$top=1")).await;
    assert_eq!((status, listed_only["error"]["target"].as_str()), (400, Some("$top")), "{listed_only}");
    let (status, missing) = get_json_with(&server, &token, "/auditLogs/directoryAudits/no-such-event").await;
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    // Under Graph's service root too.
    let under_root =
        server.http_with(&token).get(server.url("/v1.0/auditLogs/directoryAudits?$top=1")).send().await.unwrap();
    assert_eq!(under_root.status(), 200);
    server.stop().await;
}

async fn get_json_with(server: &TestServer, token: &str, path: &str) -> (u16, Value) {
    let response = server.http_with(token).get(server.url(path)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn filters_select_what_graph_documents() {
    let server = TestServer::start(1).await;
    let (operations, request_id) = some_history(&server).await;
    let token = server.token(&auditor(TENANT));
    let count = |query: &'static str| {
        let (server, token) = (&server, &token);
        async move {
            let (status, page) = audits(server, token, &format!("?$filter={}", urlencode(query))).await;
            assert_eq!(status, 200, "{query}: {page}");
            values(&page).len()
        }
    };
    assert_eq!(count("category eq 'DataPolicyOperations'").await, 5);
    assert_eq!(count("category eq 'UserManagement'").await, 0);
    assert_eq!(count("activityDisplayName eq 'Export personal data'").await, 4);
    assert_eq!(count("startswith(activityDisplayName, 'Cancel')").await, 1);
    assert_eq!(count("result eq 'failure'").await, 1);
    assert_eq!(count("not (result eq 'failure')").await, 4);
    assert_eq!(count("operationType eq 'Delete'").await, 1);
    assert_eq!(count("initiatedBy/user/id eq 'local-admin'").await, 5);
    assert_eq!(count("initiatedBy/app/appId eq 'dpo-local-client'").await, 0);
    assert_eq!(count("targetResources/any(t: t/id eq 'alice')").await, 2);
    assert_eq!(count("targetResources/any(t: t/id eq 'bob')").await, 2, "the export and the refused one");
    assert_eq!(count("targetResources/any(t: t/id eq 'alice') or result eq 'failure'").await, 3);
    assert_eq!(count("activityDateTime ge 2020-01-01T00:00:00Z and activityDateTime le 2999-01-01T00:00:00Z").await, 5);
    assert_eq!(count("activityDateTime lt 2020-01-01T00:00:00Z").await, 0);
    let (_, page) =
        audits(&server, &token, &format!("?$filter={}", urlencode(&format!("correlationId eq '{request_id}'")))).await;
    assert_eq!(values(&page).len(), 1);
    let third = &operations[2];
    let by_operation = format!("targetResources/any(t: t/id eq '{third}')");
    let (_, page) = audits(&server, &token, &format!("?$filter={}", urlencode(&by_operation))).await;
    assert_eq!(values(&page).len(), 2, "its export and its cancellation: {page}");

    // Bad filters and options get OData errors naming the option.
    for (query, option) in [
        ("?$filter=bogus eq 'x'", "$filter"),
        ("?$filter=category gt 'x'", "$filter"),
        ("?$filter=targetResources/any(t: t/type eq 'User')", "$filter"),
        ("?$count=true", "$count"),
        ("?$skip=2", "$skip"),
        ("?$orderby=category", "$orderby"),
        ("?$select=bogus", "$select"),
    ] {
        let (status, body) = audits(&server, &token, query).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest", "{query}");
        assert!(!body["error"]["message"].as_str().unwrap_or_default().is_empty());
        let target = body["error"]["target"].as_str().unwrap_or_default().to_string();
        assert_eq!(target, option, "{query}: {body}");
    }
    server.stop().await;
}

fn urlencode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}

#[tokio::test]
async fn pages_follow_next_links_to_the_end_in_either_order() {
    let server = TestServer::start(1).await;
    some_history(&server).await;
    for _ in 0..4 {
        submit(&server, "bob").await;
    }
    let token = server.token(&auditor(TENANT));
    let (_, all) = audits(&server, &token, "?$top=100").await;
    let all = ids(&all);
    assert_eq!(all.len(), 9);
    for order in ["", "&$orderby=activityDateTime%20asc"] {
        let mut seen = Vec::new();
        let (status, mut page) = audits(&server, &token, &format!("?$top=2{order}")).await;
        assert_eq!(status, 200);
        loop {
            let ids = ids(&page);
            assert!(ids.len() <= 2, "{page}");
            seen.extend(ids);
            let Some(next) = page["@odata.nextLink"].as_str().map(str::to_string) else { break };
            assert!(next.starts_with(&format!("{}/auditLogs/directoryAudits?", server.base_url)), "{next}");
            assert!(next.contains("$top=2"), "{next}");
            let response = server.http_with(&token).get(&next).send().await.unwrap();
            assert_eq!(response.status(), 200);
            page = response.json().await.unwrap();
        }
        let mut expected = all.clone();
        if !order.is_empty() {
            expected.reverse();
        }
        assert_eq!(seen, expected, "every event once, in order ({order:?})");
    }
    // A next link keeps its filter, and its token works for nobody else.
    let (_, page) = audits(&server, &token, "?$top=1&$filter=result%20eq%20'success'").await;
    let next = page["@odata.nextLink"].as_str().unwrap().to_string();
    assert!(next.contains("$filter=result"), "{next}");
    let other = server.token(&auditor("another-tenant"));
    let refused = server.http_with(&other).get(&next).send().await.unwrap();
    assert_eq!(refused.status(), 400, "another tenant's skip token");
    server.stop().await;
}

#[tokio::test]
async fn only_audit_log_readers_of_the_tenant_see_its_trail() {
    let server = TestServer::start(1).await;
    some_history(&server).await;
    let (_, page) = audits(&server, &server.token(&auditor(TENANT)), "").await;
    let some_id = ids(&page)[0].clone();
    // Without AuditLog.Read.All (the exporting administrator's usual token): 403.
    let (status, body) = audits(&server, &server.admin_token(), "").await;
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("Authorization_RequestDenied")), "{body}");
    // Delegated, the user also needs a directory role that may read audit logs.
    let plain_user = MintRequest { admin: false, ..auditor(TENANT) };
    let (status, body) = audits(&server, &server.token(&plain_user), "").await;
    assert_eq!(status, 403, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("directory role"), "{body}");
    // An application with the permission reads it.
    let app = MintRequest {
        user: None,
        admin: false,
        permissions: vec![AUDIT_LOG_READ_ALL.into()],
        ..MintRequest::admin(TENANT)
    };
    let (status, page) = audits(&server, &server.token(&app), "").await;
    assert_eq!((status, values(&page).len()), (200, 5));
    // Another tenant sees none of it.
    let other = server.token(&auditor("another-tenant"));
    let (status, page) = audits(&server, &other, "").await;
    assert_eq!((status, values(&page).len()), (200, 0));
    let (status, _) = get_json_with(&server, &other, &format!("/auditLogs/directoryAudits/{some_id}")).await;
    assert_eq!(status, 404);
    // Read-only: other methods are 405 with Allow.
    let post = server.http().post(server.url("/auditLogs/directoryAudits")).send().await.unwrap();
    assert_eq!(post.status(), 405);
    assert_eq!(post.headers()["allow"], "GET");
    let delete =
        server.http().delete(server.url(&format!("/auditLogs/directoryAudits/{some_id}"))).send().await.unwrap();
    assert_eq!(delete.status(), 405);
    // Reading the trail is not itself an event.
    let (_, page) = audits(&server, &server.token(&auditor(TENANT)), "").await;
    assert_eq!(values(&page).len(), 5);
    server.stop().await;
}

/// What a caller of another tenant learns from asking for `id` by `method`: the status, the body with
/// the id taken out, and what its own trail then holds (reasons, the id taken out).
async fn what_a_stranger_learns(server: &TestServer, stranger: &str, method: reqwest::Method, id: &str) -> Value {
    let before = values(&audits(server, stranger, "").await.1).len();
    let patch = method == reqwest::Method::PATCH;
    let mut request = server.http_with(stranger).request(method, server.url(&format!("/dataPolicyOperations/{id}")));
    if patch {
        request = request.json(&serde_json::json!({}));
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let mut body: Value = response.json().await.unwrap();
    body["error"]["innerError"] = Value::Null;
    let trail = values(&audits(server, stranger, "").await.1);
    let recorded: Vec<Value> = trail[..trail.len() - before]
        .iter()
        .map(|e| serde_json::json!([e["activityDisplayName"], e["result"], e["resultReason"]]))
        .collect();
    serde_json::from_str(&serde_json::json!([status, body, recorded]).to_string().replace(id, "<id>")).unwrap()
}

#[tokio::test]
async fn another_tenants_operation_and_an_unknown_one_look_the_same() {
    let server = TestServer::start(60).await;
    let owner = server.token(&auditor(TENANT));
    let id = submit(&server, "alice").await;
    let stranger = server.token(&auditor("another-tenant"));
    let unknown = uuid::Uuid::new_v4().to_string();
    for method in [reqwest::Method::GET, reqwest::Method::PATCH, reqwest::Method::DELETE] {
        let foreign = what_a_stranger_learns(&server, &stranger, method.clone(), &id).await;
        let missing = what_a_stranger_learns(&server, &stranger, method.clone(), &unknown).await;
        assert_eq!(foreign, missing, "{method}: another tenant's operation must look like no operation");
        assert_eq!(foreign[0], 404, "{foreign}");
    }
    // The owner's trail has the three refusals, naming where the caller came from.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let refused = loop {
        let (_, page) = audits(&server, &owner, "?$filter=result%20eq%20'failure'").await;
        let refused = values(&page);
        if refused.len() == 3 || std::time::Instant::now() > deadline {
            break refused;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(refused.len(), 3, "{refused:?}");
    for event in &refused {
        let reason = event["resultReason"].as_str().unwrap();
        assert!(reason.contains("another") && reason.contains("another-tenant"), "{event}");
    }
    server.stop().await;
}
