//! Subject rights requests over HTTP (`/security/subjectRightsRequests`): create, get, update, list with
//! OData options, notes, permissions, tenants, the audit trail, bad input, and Microsoft's Python SDK.

use crate::common::{TENANT, TestServer};
use dpo_server::auth::tokens::MintRequest;
use dpo_test_support::requests::stage_status;
use serde_json::{Value, json};

const WRITE: &str = "SubjectRightsRequest.ReadWrite.All";
const READ: &str = "SubjectRightsRequest.Read.All";

fn token(server: &TestServer, tenant: &str, user: Option<&str>, admin: bool, permissions: &[&str]) -> String {
    let mut request = MintRequest::admin(tenant);
    request.user = user.map(str::to_string);
    request.admin = admin;
    request.permissions = permissions.iter().map(|p| p.to_string()).collect();
    server.token(&request)
}

/// A privacy administrator of the test tenant.
fn writer(server: &TestServer) -> reqwest::Client {
    server.http_with(&token(server, TENANT, Some("privacy-admin"), true, &[WRITE]))
}

fn body(email: &str, name: &str) -> Value {
    json!({
        "dataSubject": {"email": email, "firstName": "Casey"},
        "dataSubjectType": "customer",
        "displayName": name,
        "description": "a copy of everything",
        "regulations": ["GDPR"],
        "type": "access"
    })
}

async fn create(server: &TestServer, http: &reqwest::Client, body: &Value) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = http.post(server.url("/v1.0/security/subjectRightsRequests")).json(body).send().await.expect("sent");
    let (status, headers) = (response.status().as_u16(), response.headers().clone());
    (status, response.json().await.expect("JSON"), headers)
}

async fn get(http: &reqwest::Client, url: &str) -> (u16, Value) {
    let response = http.get(url).send().await.expect("sent");
    (response.status().as_u16(), response.json().await.expect("JSON"))
}

async fn count(server: &TestServer) -> u64 {
    let (_, page) = get(&writer(server), &server.url("/security/subjectRightsRequests?$count=true&$top=1")).await;
    page["@odata.count"].as_u64().expect("a count")
}

#[tokio::test]
async fn a_request_is_created_for_a_customer_read_back_and_changed_as_graph_documents() {
    let server = TestServer::start(7).await;
    let http = writer(&server);
    let (status, created, headers) = create(&server, &http, &body("Casey@Shop.Example", "Casey's copy")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().expect("an id").to_string();
    let location = headers["location"].to_str().unwrap();
    assert_eq!(location, server.url(&format!("/v1.0/security/subjectRightsRequests/{id}")));
    assert_eq!(headers["etag"], "W/\"1\"");
    assert_eq!(created["status"], "active");
    assert_eq!(created["createdBy"]["user"]["id"], "privacy-admin");
    assert_eq!(created["lastModifiedBy"]["user"]["id"], "privacy-admin");
    assert_eq!(created["dataSubject"]["email"], "Casey@Shop.Example", "kept as given");
    assert_eq!(created["pauseAfterEstimate"], true);
    let stages: Vec<&str> =
        created["stages"].as_array().unwrap().iter().map(|s| s["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["contentEstimate", "contentRetrieval", "generateReport", "caseResolved"]);
    assert_eq!(created["history"][0]["type"], "created");
    // No due date given: GDPR's 30 days (a dpo edit; Graph requires the date).
    let created_at = chrono::DateTime::parse_from_rfc3339(created["createdDateTime"].as_str().unwrap()).unwrap();
    let due = chrono::DateTime::parse_from_rfc3339(created["internalDueDateTime"].as_str().unwrap()).unwrap();
    assert_eq!(due - created_at, chrono::Duration::days(30));

    let (status, got) = get(&http, location).await;
    assert_eq!(status, 200);
    for key in ["id", "displayName", "dataSubject", "stages", "history", "internalDueDateTime", "createdBy"] {
        assert_eq!(got[key], created[key], "{key}");
    }

    let patch = json!({"displayName": "Casey's copy (verified)", "description": "phone check done",
                       "internalDueDateTime": "2031-01-31T00:00:00Z", "assignedTo": {"id": "dpo", "displayName": "DPO"}});
    let response = http.patch(location).json(&patch).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["etag"], "W/\"2\"");
    let (_, got) = get(&http, location).await;
    assert_eq!(got["displayName"], "Casey's copy (verified)");
    assert_eq!(got["internalDueDateTime"], "2031-01-31T00:00:00Z");
    assert_eq!(got["assignedTo"]["displayName"], "DPO");
    assert_eq!(got["createdDateTime"], created["createdDateTime"], "creation stays");

    // What a client read and sends back holds dpo's own properties as null: they are left alone.
    let mut echoed = body("echo@shop.example", "echoed");
    for key in ["id", "status", "closedDateTime", "createdBy", "insight", "mailboxLocations"] {
        echoed[key] = Value::Null;
    }
    let (status, echoed, _) = create(&server, &http, &echoed).await;
    assert_eq!(status, 201, "{echoed}");
    assert_eq!(echoed["status"], "active");

    // CCPA gives 45 days.
    let mut ccpa = body("ccpa@shop.example", "CCPA");
    ccpa["regulations"] = json!(["CCPA"]);
    let (_, ccpa, _) = create(&server, &http, &ccpa).await;
    let (created, due) = (&ccpa["createdDateTime"], &ccpa["internalDueDateTime"]);
    let days = chrono::DateTime::parse_from_rfc3339(due.as_str().unwrap()).unwrap()
        - chrono::DateTime::parse_from_rfc3339(created.as_str().unwrap()).unwrap();
    assert_eq!(days, chrono::Duration::days(45));
    server.stop().await;
}

#[tokio::test]
async fn bad_bodies_get_odata_errors_naming_the_property_and_create_nothing() {
    let server = TestServer::start(7).await;
    let http = writer(&server);
    let full = body("a@b.example", "ok");
    let mut cases: Vec<(Value, &str)> = Vec::new();
    for required in ["dataSubject", "dataSubjectType", "displayName", "description", "regulations", "type"] {
        let mut b = full.clone();
        b.as_object_mut().unwrap().remove(required);
        cases.push((b, required));
    }
    let with = |key: &str, value: Value| {
        let mut b = full.clone();
        b[key] = value;
        b
    };
    cases.push((with("type", json!("sideways")), "type"));
    cases.push((with("dataSubjectType", json!("alien")), "dataSubjectType"));
    cases.push((with("shoeSize", json!(44)), "shoeSize"));
    cases.push((with("status", json!("closed")), "status"));
    cases.push((with("mailboxLocations", json!({})), "mailboxLocations"));
    cases.push((with("internalDueDateTime", json!("next week")), "internalDueDateTime"));
    cases.push((with("dataSubject", json!({"firstName": "No mail"})), "dataSubject/email"));
    cases.push((with("regulations", json!("GDPR")), "regulations"));
    cases.push((with("displayName", json!("  ")), "displayName"));
    for (bad, target) in cases {
        let (status, error, _) = create(&server, &http, &bad).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert_eq!(error["error"]["code"], "BadRequest", "{error}");
        assert_eq!(error["error"]["target"], target, "{bad}: {error}");
        assert!(error["error"]["message"].as_str().unwrap().contains(target.rsplit('/').next().unwrap()), "{error}");
    }
    // Not an object, not JSON, too large.
    for raw in ["[]", "\"x\"", "{\"displayName\":", "null"] {
        let response = http
            .post(server.url("/security/subjectRightsRequests"))
            .header("content-type", "application/json")
            .body(raw)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{raw}");
        let error: Value = response.json().await.unwrap();
        assert!(error["error"]["message"].is_string(), "{error}");
    }
    let mut huge = full.clone();
    huge["description"] = json!("x".repeat(200_000));
    let (status, error, _) = create(&server, &http, &huge).await;
    assert_eq!(status, 413, "{error}");
    assert_eq!(count(&server).await, 0, "nothing was half-created");

    // A request to change: only what Graph documents, never externalId.
    let mut with_external = full.clone();
    with_external["externalId"] = json!("crm-1");
    let (_, created, _) = create(&server, &http, &with_external).await;
    let url = server.url(&format!("/security/subjectRightsRequests/{}", created["id"].as_str().unwrap()));
    for (patch, target) in [
        (json!({"externalId": "crm-2"}), "externalId"),
        (json!({"regulations": ["CCPA"]}), "regulations"),
        (json!({"status": "closed"}), "status"),
        (json!({"bogus": true}), "bogus"),
        (json!({"internalDueDateTime": null}), "internalDueDateTime"),
    ] {
        let response = http.patch(&url).json(&patch).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{patch}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["target"], target, "{error}");
    }
    let (_, got) = get(&http, &url).await;
    assert_eq!(got["externalId"], "crm-1");
    assert_eq!(got["regulations"], json!(["GDPR"]));
    // Ids that are not GUIDs, ids that do not exist, methods that do not apply.
    let (status, error) = get(&http, &server.url("/security/subjectRightsRequests/nope")).await;
    assert_eq!((status, error["error"]["code"].as_str()), (400, Some("BadRequest")));
    let missing = server.url(&format!("/security/subjectRightsRequests/{}", uuid::Uuid::new_v4()));
    let (status, error) = get(&http, &missing).await;
    assert_eq!((status, error["error"]["code"].as_str()), (404, Some("Request_ResourceNotFound")));
    let response = http.patch(&missing).json(&json!({"displayName": "x"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let response = http.delete(&url).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    assert_eq!(response.headers()["allow"], "GET, PATCH");
    server.stop().await;
}

#[tokio::test]
async fn lists_filter_sort_page_count_and_select_like_the_operations() {
    let server = TestServer::start_paged(7, 3).await;
    let http = writer(&server);
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut b = body(&format!("Person{i}@Example.com"), &format!("request {i}"));
        if i % 2 == 1 {
            b["type"] = json!("export");
            b["dataSubjectType"] = json!("formerEmployee");
        }
        b["externalId"] = json!(format!("crm-{i}"));
        let (status, created, _) = create(&server, &http, &b).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let listed = async |query: &str| -> Vec<String> {
        let mut url = server.url(&format!("/v1.0/security/subjectRightsRequests?{query}"));
        let mut seen = Vec::new();
        loop {
            let (status, page) = get(&http, &url).await;
            assert_eq!(status, 200, "{query}: {page}");
            seen.extend(
                page["value"].as_array().unwrap().iter().map(|r| r["displayName"].as_str().unwrap().to_string()),
            );
            match page["@odata.nextLink"].as_str() {
                Some(next) => url = next.to_string(),
                None => return seen,
            }
        }
    };
    let names = |range: &[usize]| range.iter().map(|i| format!("request {i}")).collect::<Vec<_>>();
    assert_eq!(listed("$orderby=displayName").await, names(&[0, 1, 2, 3, 4, 5, 6]), "paged by 3, every one once");
    assert_eq!(listed("$orderby=displayName desc&$top=2").await, names(&[6, 5, 4, 3, 2, 1, 0]));
    assert_eq!(listed("$filter=type eq 'export'&$orderby=displayName").await, names(&[1, 3, 5]));
    assert_eq!(
        listed("$filter=dataSubjectType eq 'customer' and status eq 'active'&$orderby=displayName").await,
        names(&[0, 2, 4, 6])
    );
    assert_eq!(
        listed("$filter=dataSubject/email eq 'PERSON3@example.com'").await,
        names(&[3]),
        "emails match case-insensitively"
    );
    assert_eq!(listed("$filter=externalId in ('crm-1','crm-6')&$orderby=displayName").await, names(&[1, 6]));
    assert_eq!(listed("$filter=startswith(displayName,'request 5')").await, names(&[5]));
    assert_eq!(
        listed("$filter=closedDateTime eq null and createdDateTime gt 2020-01-01T00:00:00Z&$orderby=displayName")
            .await
            .len(),
        7
    );
    assert_eq!(listed("$filter=internalDueDateTime lt 2020-01-01T00:00:00Z").await.len(), 0);

    let (_, page) =
        get(&http, &server.url("/security/subjectRightsRequests?$count=true&$select=displayName,status&$top=2")).await;
    assert_eq!(page["@odata.count"], 7);
    let first = page["value"][0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).filter(|k| !k.starts_with('@')).collect();
    keys.sort();
    assert_eq!(keys, ["displayName", "id", "status"]);
    assert!(page["@odata.nextLink"].as_str().unwrap().contains("$select=displayName,status"));

    for bad in
        ["$filter=shoeSize eq 1", "$filter=type eq 'sideways'", "$orderby=nope", "$select=nope", "$search=x", "$top=-1"]
    {
        let (status, error) = get(&http, &server.url(&format!("/security/subjectRightsRequests?{bad}"))).await;
        assert_eq!(status, 400, "{bad}: {error}");
        assert!(error["error"]["target"].is_string(), "{bad}: {error}");
    }
    server.stop().await;
}

#[tokio::test]
async fn notes_keep_their_author_and_content_as_given_and_page_in_order() {
    let server = TestServer::start_paged(7, 2).await;
    let http = writer(&server);
    let (_, created, _) = create(&server, &http, &body("n@example.com", "noted")).await;
    let notes = server.url(&format!("/v1.0/security/subjectRightsRequests/{}/notes", created["id"].as_str().unwrap()));
    let html = "<script>alert(1)</script><b>kept as written</b>";
    let mut written = Vec::new();
    for (text, kind) in
        [("first", None), (html, Some("html")), ("third", Some("text")), ("fourth", None), ("fifth", None)]
    {
        let mut content = json!({"content": text});
        if let Some(kind) = kind {
            content["contentType"] = json!(kind);
        }
        let response = http.post(&notes).json(&json!({"content": content})).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 201);
        assert!(response.headers()["location"].to_str().unwrap().contains("/notes/"));
        let note: Value = response.json().await.unwrap();
        assert_eq!(note["author"]["id"], "privacy-admin");
        assert_eq!(note["content"]["content"], text);
        assert_eq!(note["content"]["contentType"], kind.unwrap_or("text"));
        written.push(note["id"].as_str().unwrap().to_string());
    }
    let mut url = format!("{notes}?$count=true");
    let mut seen = Vec::new();
    loop {
        let (status, page) = get(&http, &url).await;
        assert_eq!(status, 200, "{page}");
        assert_eq!(page["@odata.count"], 5);
        seen.extend(page["value"].as_array().unwrap().iter().map(|n| n["id"].as_str().unwrap().to_string()));
        match page["@odata.nextLink"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(seen, written, "every note once, in the order written");
    for (bad, target) in [
        (json!({}), "content"),
        (json!({"content": {"contentType": "text"}}), "content/content"),
        (json!({"content": {"content": "x", "contentType": "pdf"}}), "content/contentType"),
        (json!({"content": {"content": "x"}, "author": {"id": "someone else"}}), "author"),
    ] {
        let response = http.post(&notes).json(&bad).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 400, "{bad}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["target"], target, "{error}");
    }
    let missing = server.url(&format!("/security/subjectRightsRequests/{}/notes", uuid::Uuid::new_v4()));
    let response = http.post(&missing).json(&json!({"content": {"content": "x"}})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    server.stop().await;
}

#[tokio::test]
async fn permissions_roles_and_tenants_are_checked_and_every_change_is_audited() {
    let server = TestServer::start(7).await;
    let http = writer(&server);
    let (_, created, _) = create(&server, &http, &body("t@example.com", "tenant's own")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let url = server.url(&format!("/security/subjectRightsRequests/{id}"));
    let list = server.url("/security/subjectRightsRequests");

    // Read permission: reads, but does not create or change.
    let reader = server.http_with(&token(&server, TENANT, Some("reader"), true, &[READ]));
    assert_eq!(get(&reader, &url).await.0, 200);
    assert_eq!(get(&reader, &list).await.0, 200);
    let (status, _, _) = create(&server, &reader, &body("x@example.com", "x")).await;
    assert_eq!(status, 403);
    assert_eq!(reader.patch(&url).json(&json!({"displayName": "x"})).send().await.unwrap().status().as_u16(), 403);
    // The operations' permission is not this one.
    let exporter = server.http_with(&token(&server, TENANT, Some("exporter"), true, &["User.Export.All"]));
    assert_eq!(get(&exporter, &url).await.0, 403);
    // Delegated without a role that handles requests.
    let plain = server.http_with(&token(&server, TENANT, Some("plain"), false, &[WRITE]));
    let (status, error, _) = create(&server, &plain, &body("x@example.com", "x")).await;
    assert_eq!(status, 403, "{error}");
    // An application with the application permission (a dpo edit).
    let app = server.http_with(&token(&server, TENANT, None, false, &[WRITE]));
    let (status, by_app, _) = create(&server, &app, &body("app@example.com", "by an app")).await;
    assert_eq!(status, 201, "{by_app}");
    assert!(by_app["createdBy"]["application"]["id"].is_string(), "{by_app}");
    // Another tenant sees nothing of this one's requests.
    let other = server.http_with(&token(&server, "00000000-0000-0000-0000-0000000000ff", Some("x"), true, &[WRITE]));
    assert_eq!(get(&other, &url).await.0, 404);
    assert_eq!(other.patch(&url).json(&json!({"displayName": "mine"})).send().await.unwrap().status().as_u16(), 404);
    let notes = format!("{url}/notes");
    assert_eq!(
        other.post(&notes).json(&json!({"content": {"content": "x"}})).send().await.unwrap().status().as_u16(),
        404
    );
    let (_, page) = get(&other, &list).await;
    assert_eq!(page["value"], json!([]));
    let (_, got) = get(&http, &url).await;
    assert_eq!(got["displayName"], "tenant's own");

    // The changes are in the audit trail, targeted at the request.
    assert_eq!(http.patch(&url).json(&json!({"displayName": "renamed"})).send().await.unwrap().status().as_u16(), 200);
    assert_eq!(
        http.post(&notes).json(&json!({"content": {"content": "x"}})).send().await.unwrap().status().as_u16(),
        201
    );
    let auditor = server.http_with(&token(&server, TENANT, Some("auditor"), true, &["AuditLog.Read.All"]));
    let filter = format!("category eq 'SubjectRightsRequests' and targetResources/any(t: t/id eq '{id}')");
    let audits =
        reqwest::Url::parse_with_params(&server.url("/auditLogs/directoryAudits"), [("$filter", filter)]).unwrap();
    let (status, page) = get(&auditor, audits.as_str()).await;
    assert_eq!(status, 200, "{page}");
    let activities: Vec<&str> =
        page["value"].as_array().unwrap().iter().map(|e| e["activityDisplayName"].as_str().unwrap()).collect();
    for activity in
        ["Create subject rights request", "Update subject rights request", "Add note to subject rights request"]
    {
        assert!(activities.contains(&activity), "{activity}: {activities:?}");
    }
    let event = &page["value"][0];
    assert_eq!(event["targetResources"][0]["type"], "SubjectRightsRequest", "{event}");
    assert_eq!(event["result"], "success");
    server.stop().await;
}

#[tokio::test]
async fn microsofts_python_sdk_creates_reads_lists_updates_and_annotates_requests() {
    let python = std::env::var("DPO_PYTHON_GRAPH_SDK")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".tools/venv/bin/python"));
    assert!(python.exists(), "no Python with msgraph-sdk at {}: run `cargo xtask test`", python.display());
    let server = TestServer::start_with(crate::common::Options { workers: 1, ..Default::default() }).await;
    let script = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/graph-sdk-requests.py");
    let out = tokio::process::Command::new(&python)
        .arg(&script)
        .env("BASE_URL", format!("{}/v1.0", server.base_url))
        .env("TOKEN", token(&server, TENANT, Some("sdk-user"), true, &[WRITE]))
        .output()
        .await
        .expect("python runs");
    assert!(out.status.success(), "the Python SDK script failed: {}", String::from_utf8_lossy(&out.stderr));
    let seen: Value = serde_json::from_slice(&out.stdout).expect("the script prints JSON");
    let id = seen["created"]["id"].as_str().expect("an id");
    assert_eq!(seen["created"]["status"], "active");
    assert_eq!(
        seen["created"]["stages"],
        json!(["contentEstimate", "contentRetrieval", "generateReport", "caseResolved"])
    );
    assert_eq!(seen["created"]["createdBy"], "sdk-user");
    assert!(seen["created"]["due"].as_str().unwrap().starts_with("2031-01-31T00:00:00"), "{seen}");
    assert_eq!(seen["got"]["id"], id);
    assert_eq!(seen["got"]["externalId"], "ticket-4711");
    assert_eq!(seen["listed"]["count"], 1);
    assert_eq!(seen["listed"]["ids"], json!([id]));
    assert_eq!(seen["patched"]["displayName"], "Access request of Casey One (verified)");
    assert_eq!(
        seen["afterPatch"],
        json!({"displayName": "Access request of Casey One (verified)", "assignedTo": "dpo-officer"})
    );
    assert_eq!(seen["report"], 409, "getFinalReport() reaches dpo and waits for generateReport");
    assert_eq!(seen["approved"], 200);
    assert_eq!(seen["final"]["stages"]["generateReport"], "completed", "{seen}");
    assert_eq!(seen["final"]["insight"], 0, "a customer in no source: nothing found");
    let report = seen["final"]["report"].as_str().unwrap();
    assert!(report.contains(&format!("Subject rights request {id}")) && report.contains("not applicable"), "{report}");
    assert_eq!(seen["final"]["zip"], json!(["index.html", "manifest.json"]));
    assert_eq!(seen["viaPrivacy"], id, "client.privacy.subject_rights_requests reaches the same request");
    assert_eq!(seen["notes"]["first"]["author"], "sdk-user");
    assert_eq!(
        seen["notes"]["listed"],
        json!([["Identity checked by phone", "text"], ["<p>Sent the <b>form</b></p>", "html"]])
    );
    server.stop().await;
}

#[tokio::test]
async fn the_report_the_zip_and_the_actions_wait_for_their_stage() {
    let server = TestServer::start(7).await;
    let http = writer(&server);
    let (_, created, _) = create(&server, &http, &body("wait@example.com", "waiting")).await;
    let id = created["id"].as_str().unwrap().to_string();
    let base = server.url(&format!("/v1.0/security/subjectRightsRequests/{id}"));
    for function in
        ["getFinalReport()", "getFinalReport", "getFinalReport%28%29", "getFinalAttachment()", "getFinalAttachment"]
    {
        let response = http.get(format!("{base}/{function}")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 409, "{function}");
        let error: Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "Conflict", "{error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains("contentEstimate (notStarted)") && message.contains("generateReport"), "{message}");
    }
    for action in ["approve", "reject", "close"] {
        let response =
            http.post(format!("{base}/{action}")).json(&json!({"comment": "looked at it"})).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 409, "{action}");
        let error: Value = response.json().await.unwrap();
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.starts_with(action) && message.contains("contentEstimate (notStarted)"), "{message}");
    }
    // Nothing changed, no comment was kept.
    let response = http.get(&base).send().await.unwrap();
    assert_eq!(response.headers()["etag"], "W/\"1\"");
    let (_, notes) = get(&http, &format!("{base}/notes?$count=true")).await;
    assert_eq!(notes["@odata.count"], 0);
    // A reader may download but not act; ids are checked first.
    let reader = server.http_with(&token(&server, TENANT, Some("reader"), true, &[READ]));
    assert_eq!(reader.post(format!("{base}/approve")).json(&json!({})).send().await.unwrap().status().as_u16(), 403);
    assert_eq!(reader.get(format!("{base}/getFinalReport()")).send().await.unwrap().status().as_u16(), 409);
    let missing = server.url(&format!("/security/subjectRightsRequests/{}/getFinalReport()", uuid::Uuid::new_v4()));
    assert_eq!(http.get(missing).send().await.unwrap().status().as_u16(), 404);
    let bad = server.url("/security/subjectRightsRequests/nope/close");
    assert_eq!(http.post(bad).json(&json!({})).send().await.unwrap().status().as_u16(), 400);
    let response = http.post(format!("{base}/approve")).json(&json!({"comment": 7})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400, "a comment is text");
    // The refusals are in the audit trail.
    let auditor = server.http_with(&token(&server, TENANT, Some("auditor"), true, &["AuditLog.Read.All"]));
    let filter = "activityDisplayName eq 'Download subject rights request report'".to_string();
    let audits =
        reqwest::Url::parse_with_params(&server.url("/auditLogs/directoryAudits"), [("$filter", filter)]).unwrap();
    let (_, page) = get(&auditor, audits.as_str()).await;
    assert!(page["value"].as_array().unwrap().iter().all(|e| e["result"] == "failure"), "{page}");
    assert!(!page["value"].as_array().unwrap().is_empty(), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn the_deprecated_privacy_paths_serve_the_same_requests() {
    let server = TestServer::start(7).await;
    let http = writer(&server);
    let response = http
        .post(server.url("/v1.0/privacy/subjectRightsRequests"))
        .json(&body("old@client.example", "through /privacy"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let (status, same) = get(&http, &server.url(&format!("/security/subjectRightsRequests/{id}"))).await;
    assert_eq!((status, &same["displayName"]), (200, &created["displayName"]));
    let (status, page) = get(&http, &server.url("/beta/privacy/subjectRightsRequests?$count=true")).await;
    assert_eq!((status, page["@odata.count"].as_u64()), (200, Some(1)));
    let privacy = server.url(&format!("/privacy/subjectRightsRequests/{id}"));
    let response = http.patch(&privacy).json(&json!({"description": "changed"})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let response =
        http.post(format!("{privacy}/notes")).json(&json!({"content": {"content": "n"}})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let (_, notes) = get(&http, &format!("{privacy}/notes")).await;
    assert_eq!(notes["value"].as_array().unwrap().len(), 1);
    for function in ["getFinalReport()", "getFinalAttachment"] {
        assert_eq!(http.get(format!("{privacy}/{function}")).send().await.unwrap().status().as_u16(), 409);
    }
    let response = http.delete(&privacy).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 405);
    server.stop().await;
}

/// Reads the request at `url` until `done` says it is as expected (or a minute passes).
async fn wait_until(http: &reqwest::Client, url: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (status, request) = get(http, url).await;
        assert_eq!(status, 200, "{request}");
        if done(&request) {
            return request;
        }
        assert!(std::time::Instant::now() < deadline, "the request did not get there: {request}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

/// The entries of a zip, by name, in order.
fn unzip(bytes: &[u8]) -> Vec<(String, Vec<u8>)> {
    use std::io::Read;
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    (0..archive.len())
        .map(|i| {
            let mut entry = archive.by_index(i).expect("an entry");
            let mut content = Vec::new();
            entry.read_to_end(&mut content).expect("readable");
            (entry.name().to_string(), content)
        })
        .collect()
}

/// A shop in PostgreSQL and a support desk in SQLite, each holding two customers' rows, and a sources file
/// reading them by the person's email (and one query by directory id, which a customer does not have).
fn customer_sources(dir: &std::path::Path) -> std::path::PathBuf {
    let database = dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster");
    dpo_test_support::postgres_cluster::execute(
        &database,
        "CREATE TABLE orders (id INT PRIMARY KEY, email TEXT, item TEXT);
         INSERT INTO orders VALUES (1, 'casey@shop.example', 'tea'), (2, 'other@shop.example', 'not hers'),
                                   (3, 'Casey@Shop.Example', 'cups'), (4, 'alice@contoso.example', 'pens');",
    )
    .expect("the shop's tables");
    let desk = dir.join("desk.db");
    let conn = rusqlite::Connection::open(&desk).expect("the desk's database");
    conn.execute_batch(
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, email TEXT, subject TEXT);
         INSERT INTO tickets VALUES (1, 'other@shop.example', 'other''s ticket'), (2, 'casey@shop.example', 'refund');",
    )
    .expect("the desk's tables");
    let path = dir.join("sources.toml");
    std::fs::write(
        &path,
        format!(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\n\
             [[source.query]]\nname = \"orders\"\nsql = \"SELECT id, item FROM orders WHERE lower(email) = lower(:mail) ORDER BY id\"\n\
             [[source.query]]\nname = \"staff\"\nsql = \"SELECT id FROM orders WHERE email = :id\"\n\
             [[source]]\nname = \"desk\"\nkind = \"sql\"\nurl = \"sqlite:{}\"\n\
             [[source.query]]\nname = \"tickets\"\nsql = \"SELECT id, subject FROM tickets WHERE email = :mail ORDER BY id\"\n",
            desk.display()
        ),
    )
    .expect("the sources file");
    path
}

#[tokio::test]
async fn a_customers_request_is_estimated_approved_gathered_reported_and_zipped_with_only_their_rows() {
    let sources_dir = tempfile::tempdir().unwrap();
    let sources = customer_sources(sources_dir.path());
    let server =
        TestServer::start_with(crate::common::Options { workers: 1, sources: Some(sources), ..Default::default() })
            .await;
    let http = writer(&server);
    let (status, created, _) = create(&server, &http, &body("casey@shop.example", "Casey's copy")).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let url = server.url(&format!("/v1.0/security/subjectRightsRequests/{id}"));

    // pauseAfterEstimate is true unless said otherwise: the estimate, then a wait for a person.
    let estimated = wait_until(&http, &url, |r| stage_status(r, "contentEstimate") == "completed").await;
    assert_eq!(stage_status(&estimated, "contentRetrieval"), "notStarted", "{estimated}");
    let insight = &estimated["insight"];
    assert_eq!(
        (insight["itemCount"].as_i64(), insight["totalItemSize"].as_i64().map(|n| n > 0)),
        (Some(3), Some(true))
    );
    let per_source: Vec<(String, String)> = insight["productItemCounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|kv| (kv["name"].as_str().unwrap().into(), kv["value"].as_str().unwrap().into()))
        .collect();
    assert_eq!(per_source, [("shop".into(), "2".into()), ("desk".into(), "1".into())], "{insight}");
    let response = http.get(format!("{url}/getFinalReport()")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 409, "no report before generateReport");

    let response = http.post(format!("{url}/approve")).json(&json!({"comment": "identity checked"})).send().await;
    assert_eq!(response.unwrap().status().as_u16(), 200);
    let done = wait_until(&http, &url, |r| stage_status(r, "generateReport") == "completed").await;
    assert_eq!(stage_status(&done, "contentRetrieval"), "completed", "{done}");
    assert_eq!(stage_status(&done, "caseResolved"), "current", "{done}");
    let kinds: Vec<&str> = done["history"].as_array().unwrap().iter().map(|h| h["type"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        [
            "created",
            "stageStarted",
            "stageCompleted",
            "approved",
            "stageStarted",
            "stageCompleted",
            "stageStarted",
            "stageCompleted"
        ],
        "{done}"
    );

    // The zip: the page first, the manifest, then exactly the person's rows, nobody else's.
    let response = http.get(format!("{url}/getFinalAttachment()")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(response.headers()["content-type"], "application/zip");
    let disposition = response.headers()["content-disposition"].to_str().unwrap().to_string();
    assert_eq!(disposition, format!("attachment; filename=\"request-{id}.zip\""));
    let zipped = response.bytes().await.unwrap();
    let entries = unzip(&zipped);
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["index.html", "manifest.json", "shop/orders.jsonl", "desk/tickets.jsonl"]);
    let text = |name: &str| String::from_utf8(entries.iter().find(|(n, _)| n == name).unwrap().1.clone()).unwrap();
    let orders: Vec<Value> = text("shop/orders.jsonl").lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(orders, [json!({"id": 1, "item": "tea"}), json!({"id": 3, "item": "cups"})]);
    assert_eq!(text("desk/tickets.jsonl").trim(), r#"{"id":2,"subject":"refund"}"#);
    for (name, content) in &entries {
        let content = String::from_utf8_lossy(content);
        assert!(!content.contains("not hers") && !content.contains("other's ticket"), "{name} holds another's rows");
    }
    let manifest = dpo_client::manifest::Manifest::parse(text("manifest.json").as_bytes()).unwrap();
    for object in &manifest.objects {
        let (_, content) = entries.iter().find(|(n, _)| *n == object.path).expect("every object is in the zip");
        object.check(content.len() as u64, &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(content))).unwrap();
    }
    let outcome = |name: &str| manifest.sources.iter().find(|s| s.name == name).map(|s| (s.outcome, s.reason.clone()));
    let not_a_user = Some("not a user of the directory".to_string());
    assert_eq!(outcome("profile"), Some((dpo_client::manifest::SourceOutcome::NotApplicable, not_a_user)));
    let shop = outcome("shop").unwrap();
    assert_eq!(shop.0, dpo_client::manifest::SourceOutcome::Complete);
    assert!(shop.1.unwrap().contains("query staff not run: it names :id"), "the query by directory id is skipped");
    let page = text("index.html");
    assert!(page.contains("does not concern you"), "{page}");
    assert!(page.contains("<p>Hello Casey,</p>"), "the page greets the person: {page}");
    assert!(
        page.contains("<h3>shop/orders.jsonl</h3>") && page.contains("<td>cups</td>"),
        "records as a table: {page}"
    );
    assert!(page.contains("<td>refund</td>"), "{page}");

    // The report names every source and the manifest it describes.
    let response = http.get(format!("{url}/getFinalReport")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let report = response.text().await.unwrap();
    let manifest_sha = hex::encode(<sha2::Sha256 as sha2::Digest>::digest(text("manifest.json").as_bytes()));
    for expected in [
        "Person: Casey <casey@shop.example>",
        "profile (profile): not applicable",
        "shop (sql): complete; 1 objects",
        "2 rows",
        "desk (sql): complete; 1 objects",
        &format!("manifest.json SHA-256: {manifest_sha}"),
    ] {
        assert!(report.contains(expected), "{expected}: {report}");
    }

    // A download cut off is made again whole: the same bytes.
    let mut cut = http.get(format!("{url}/getFinalAttachment")).send().await.unwrap();
    let _first_chunk = cut.chunk().await.unwrap();
    drop(cut);
    let again = http.get(format!("{url}/getFinalAttachment")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(again, zipped);

    let response = http.post(format!("{url}/close")).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let (_, closed) = get(&http, &url).await;
    assert_eq!(
        (closed["status"].as_str(), stage_status(&closed, "caseResolved").as_str()),
        (Some("closed"), "completed")
    );
    // Each stage's end is in the audit trail, by dpo, targeted at the request.
    let auditor = server.http_with(&token(&server, TENANT, Some("auditor"), true, &["AuditLog.Read.All"]));
    let filter =
        format!("activityDisplayName eq 'End subject rights request stage' and targetResources/any(t: t/id eq '{id}')");
    let audits = reqwest::Url::parse_with_params(
        &server.url("/auditLogs/directoryAudits"),
        [("$filter", filter), ("$orderby", "activityDateTime".into())],
    )
    .unwrap();
    let (status, page) = get(&auditor, audits.as_str()).await;
    assert_eq!(status, 200, "{page}");
    let reasons: Vec<&str> =
        page["value"].as_array().unwrap().iter().map(|e| e["resultReason"].as_str().unwrap_or_default()).collect();
    assert_eq!(
        reasons,
        ["contentEstimate completed: 3 items, 73 bytes", "contentRetrieval completed", "generateReport completed"],
        "{page}"
    );
    assert_eq!(page["value"][0]["initiatedBy"]["app"]["appId"], "dpo", "{page}");
    // The request's own operation is dpo's, never a dataPolicyOperation.
    let (_, operations) = get(&server.http(), &server.url("/v1.0/dataPolicyOperations?$count=true")).await;
    assert_eq!(operations["@odata.count"], 0, "{operations}");
    server.stop().await;
}

#[tokio::test]
async fn a_request_naming_a_directory_user_gathers_their_profile_drive_and_activity_without_pausing() {
    let sources_dir = tempfile::tempdir().unwrap();
    let sources = customer_sources(sources_dir.path());
    let server =
        TestServer::start_with(crate::common::Options { workers: 1, sources: Some(sources), ..Default::default() })
            .await;
    let drive = server.drive("alice");
    std::fs::create_dir_all(drive.join("docs")).unwrap();
    std::fs::write(drive.join("docs/cv.txt"), "Alice's CV").unwrap();
    let activity = |kind: &str| dpo_server::store::ActivityRecord {
        user_id: "alice".into(),
        occurred_at: chrono::Utc::now(),
        kind: kind.into(),
        detail: json!({"app": "Teams"}),
    };
    server.store.directory.add_activities(TENANT, &[activity("signIn"), activity("fileAccessed")]).unwrap();
    let http = writer(&server);
    let mut request = body("ALICE@contoso.example", "Alice's copy");
    request["dataSubjectType"] = json!("currentEmployee");
    request["pauseAfterEstimate"] = json!(false);
    let (status, created, _) = create(&server, &http, &request).await;
    assert_eq!(status, 201, "{created}");
    let url = server.url(&format!("/v1.0/security/subjectRightsRequests/{}", created["id"].as_str().unwrap()));
    let done = wait_until(&http, &url, |r| stage_status(r, "generateReport") == "completed").await;
    let counts = done["insight"]["productItemCounts"].as_array().unwrap();
    assert_eq!(counts[0], json!({"name": "profile", "value": "1"}), "{done}");
    assert_eq!(counts[1], json!({"name": "drive", "value": "1"}), "{done}");
    assert_eq!(counts[2], json!({"name": "activity", "value": "2"}), "{done}");
    let zipped = http.get(format!("{url}/getFinalAttachment()")).send().await.unwrap().bytes().await.unwrap();
    let entries = unzip(&zipped);
    // The estimate's bytes are what the retrieval wrote, source by source (the shop's and desk's files as
    // written, the profile, the drive file and the activity lines).
    let written: i64 =
        entries.iter().filter(|(n, _)| n != "index.html" && n != "manifest.json").map(|(_, c)| c.len() as i64).sum();
    assert_eq!(done["insight"]["totalItemSize"].as_i64(), Some(written), "{done}");
    let names: Vec<&str> = entries.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "index.html",
            "manifest.json",
            "profile.json",
            "drive/docs/cv.txt",
            "activity.jsonl",
            "shop/orders.jsonl",
            "shop/staff.jsonl",
            "desk/tickets.jsonl"
        ]
    );
    let profile: Value = serde_json::from_slice(&entries[2].1).unwrap();
    assert_eq!(profile["id"], "alice");
    assert_eq!(entries[3].1, b"Alice's CV");
    server.stop().await;
}

#[tokio::test]
async fn what_a_closed_request_collected_is_deleted_after_its_retention_and_the_deletion_is_audited() {
    let sources_dir = tempfile::tempdir().unwrap();
    let server = TestServer::start_with(crate::common::Options {
        workers: 1,
        sources: Some(customer_sources(sources_dir.path())),
        requests_retention: Some(std::time::Duration::from_secs(1)),
        ..Default::default()
    })
    .await;
    let http = writer(&server);
    let mut ids = Vec::new();
    for email in ["casey@shop.example", "other@shop.example"] {
        let mut request = body(email, email);
        request["pauseAfterEstimate"] = json!(false);
        let (_, created, _) = create(&server, &http, &request).await;
        let id = created["id"].as_str().unwrap().to_string();
        let url = server.url(&format!("/v1.0/security/subjectRightsRequests/{id}"));
        wait_until(&http, &url, |r| stage_status(r, "generateReport") == "completed").await;
        ids.push((id, url));
    }
    let ((closed, closed_url), (open, open_url)) = (&ids[0], &ids[1]);
    let response = http.post(format!("{closed_url}/close")).json(&json!({})).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let folder = |id: &str| server.state.path().join("requests").join(id);
    assert!(folder(closed).join("manifest.json").exists());

    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let gone = loop {
        let response = http.get(format!("{closed_url}/getFinalAttachment()")).send().await.unwrap();
        if response.status().as_u16() == 410 {
            break response.json::<Value>().await.unwrap();
        }
        assert_eq!(response.status().as_u16(), 200);
        assert!(std::time::Instant::now() < deadline, "the closed request's data was never deleted");
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    };
    assert_eq!(gone["error"]["code"], "Gone", "{gone}");
    assert!(gone["error"]["message"].as_str().unwrap().contains("when its retention ended"), "{gone}");
    assert!(!folder(closed).exists(), "the request store holds nothing of it");
    // The report, the request and its history stay; a request still open keeps what it collected.
    let response = http.get(format!("{closed_url}/getFinalReport()")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    assert!(response.text().await.unwrap().contains("shop (sql): complete"));
    assert_eq!(get(&http, closed_url).await.0, 200);
    let response = http.get(format!("{open_url}/getFinalAttachment()")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200, "an open request keeps its data");
    assert!(folder(open).join("manifest.json").exists());
    // The deletion is in the audit trail, by dpo, targeted at the request; once.
    let auditor = server.http_with(&token(&server, TENANT, Some("auditor"), true, &["AuditLog.Read.All"]));
    let filter = "activityDisplayName eq 'Delete subject rights request collected data'".to_string();
    let audits =
        reqwest::Url::parse_with_params(&server.url("/auditLogs/directoryAudits"), [("$filter", filter)]).unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
    let (_, page) = get(&auditor, audits.as_str()).await;
    let events = page["value"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{page}");
    assert_eq!(events[0]["targetResources"][0]["id"], closed.as_str(), "{page}");
    assert_eq!(events[0]["operationType"], "Delete", "{page}");
    assert_eq!(events[0]["result"], "success", "{page}");
    server.stop().await;
}
