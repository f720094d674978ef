//! Identity and permissions as Microsoft Graph defines them for data policy operations.

use crate::common::{Options, TENANT, TestServer, sas_url, submit};
use dpo_server::auth::{USER_EXPORT_ALL, USER_READ_ALL, tokens::MintRequest};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::Method;
use serde_json::{Value, json};

/// Every operation, as (method, path, body).
fn every_operation(id: &str) -> Vec<(Method, String, Option<Value>)> {
    vec![
        (Method::GET, "/dataPolicyOperations".into(), None),
        (Method::GET, "/dataPolicyOperations/$count".into(), None),
        (Method::POST, "/dataPolicyOperations".into(), Some(json!({"userId": "alice", "storageLocation": sas_url()}))),
        (Method::GET, format!("/dataPolicyOperations/{id}"), None),
        (Method::PATCH, format!("/dataPolicyOperations/{id}"), Some(json!({"storageLocation": sas_url()}))),
        (Method::DELETE, format!("/dataPolicyOperations/{id}"), None),
        (Method::POST, "/users/alice/exportPersonalData".into(), Some(json!({"storageLocation": sas_url()}))),
    ]
}

async fn call(
    client: &reqwest::Client,
    server: &TestServer,
    (method, path, body): &(Method, String, Option<Value>),
) -> reqwest::Response {
    let mut request = client.request(method.clone(), server.url(path));
    if let Some(body) = body {
        request = request.json(body);
    }
    request.send().await.expect("request sent")
}

fn forge(claims_from: &str) -> String {
    // Same header and claims, signature made with another key.
    let mut parts: Vec<&str> = claims_from.split('.').collect();
    parts[2] = "c2lnbmVkIHdpdGggYW5vdGhlciBrZXk";
    parts.join(".")
}

#[tokio::test]
async fn without_a_valid_token_every_operation_answers_401_with_www_authenticate() {
    let server = TestServer::start(60).await;
    let id = submit(&server, "alice").await;
    let admin = server.admin_token();
    let expired = server.token(&MintRequest { lifetime_seconds: -3600, ..MintRequest::admin(TENANT) });
    let wrong_audience =
        server.token(&MintRequest { audience: "api://something-else".into(), ..MintRequest::admin(TENANT) });
    let wrong_issuer =
        server.token(&MintRequest { issuer: "https://evil.example/{tid}".into(), ..MintRequest::admin(TENANT) });
    let mut no_tenant = MintRequest::admin(TENANT);
    no_tenant.tenant = String::new();
    let no_tenant = server.token(&no_tenant);
    let other_server = TestServer::start(60).await;
    let other_key = other_server.admin_token();

    let anonymous = reqwest::Client::new();
    let cases: Vec<(&str, reqwest::Client)> = vec![
        ("no token", anonymous),
        ("garbage", server.http_with("not-a-jwt")),
        ("expired", server.http_with(&expired)),
        ("forged signature", server.http_with(&forge(&admin))),
        ("signed by another server's key", server.http_with(&other_key)),
        ("wrong audience", server.http_with(&wrong_audience)),
        ("wrong issuer", server.http_with(&wrong_issuer)),
        ("no tenant", server.http_with(&no_tenant)),
    ];
    for (what, client) in &cases {
        for operation in every_operation(&id) {
            let response = call(client, &server, &operation).await;
            assert_eq!(response.status().as_u16(), 401, "{what}: {} {}", operation.0, operation.1);
            assert_eq!(response.headers()["www-authenticate"], "Bearer", "{what}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "InvalidAuthenticationToken", "{what}");
        }
    }
    // Authentication comes before reading the request: a malformed body or query without a token is 401.
    let anonymous = reqwest::Client::new();
    for request in [
        anonymous
            .post(server.url("/users/alice/exportPersonalData"))
            .header("content-type", "application/json")
            .body("{oops"),
        anonymous.patch(server.url(&format!("/dataPolicyOperations/{id}"))).json(&json!({"progress": "lots"})),
        anonymous.get(server.url("/dataPolicyOperations?$top=many")),
    ] {
        let response = request.send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Bearer");
    }
    // Nothing was changed by any of them.
    let (_, op) = crate::common::get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(op["@odata.etag"], "W/\"1\"");
    let count = crate::common::count(&server, "/dataPolicyOperations/$count").await;
    assert_eq!(count, "1");
    other_server.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn permissions_follow_the_documented_rules() {
    let server = TestServer::start(60).await;
    let id = submit(&server, "alice").await;
    let mint = |user: Option<&str>, admin: bool, permissions: &[&str]| {
        server.token(&MintRequest {
            user: user.map(str::to_string),
            admin,
            permissions: permissions.iter().map(|p| p.to_string()).collect(),
            ..MintRequest::admin(TENANT)
        })
    };
    let export =
        (Method::POST, "/users/alice/exportPersonalData".to_string(), Some(json!({"storageLocation": sas_url()})));
    let read = (Method::GET, format!("/dataPolicyOperations/{id}"), None);
    let list = (Method::GET, "/dataPolicyOperations".to_string(), None);
    let cases = [
        ("admin, User.Export.All", mint(Some("u1"), true, &[USER_EXPORT_ALL]), 202, 200),
        ("non-admin user, User.Export.All", mint(Some("u2"), false, &[USER_EXPORT_ALL]), 403, 200),
        ("admin, User.Read.All", mint(Some("u3"), true, &[USER_READ_ALL]), 403, 200),
        ("admin, Mail.Read", mint(Some("u4"), true, &["Mail.Read"]), 403, 403),
        ("application, User.Export.All", mint(None, false, &[USER_EXPORT_ALL]), 202, 200),
        ("application, User.Read.All", mint(None, false, &[USER_READ_ALL]), 403, 200),
        ("application, no role", mint(None, false, &[]), 403, 403),
    ];
    for (who, token, export_status, read_status) in cases {
        let client = server.http_with(&token);
        let response = call(&client, &server, &export).await;
        assert_eq!(response.status().as_u16(), export_status, "{who} exporting");
        if export_status == 403 {
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "Authorization_RequestDenied", "{who}");
        }
        assert_eq!(call(&client, &server, &read).await.status().as_u16(), read_status, "{who} reading");
        assert_eq!(call(&client, &server, &list).await.status().as_u16(), read_status, "{who} listing");
    }
    server.stop().await;
}

#[tokio::test]
async fn tokens_of_an_identity_provider_are_checked_with_its_jwks() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let auth = dpo_server::config::AuthConfig {
        local_key: false,
        jwks_file: Some(fixtures.join("test-jwks.json")),
        ..Default::default()
    };
    let server = TestServer::start_with(Options { auth, ..Options::default() }).await;
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("test-rsa-key.pem")).unwrap()).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = |tid: &str, exp: u64| {
        json!({
            "iss": format!("https://login.microsoftonline.com/{tid}/v2.0"),
            "aud": "00000003-0000-0000-c000-000000000000",
            "exp": exp, "nbf": now - 10, "iat": now - 10,
            "tid": tid, "oid": "admin-object-id", "scp": "User.Export.All User.Read.All",
            "wids": [dpo_server::auth::GLOBAL_ADMINISTRATOR],
        })
    };
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-idp-key-1".into());
    let good = jsonwebtoken::encode(&header, &claims(TENANT, now + 600), &key).unwrap();
    let response = server.http_with(&good).get(server.url("/dataPolicyOperations")).send().await.unwrap();
    let status = response.status().as_u16();
    assert_eq!(status, 200, "{}", response.text().await.unwrap());

    let expired = jsonwebtoken::encode(&header, &claims(TENANT, now - 3600), &key).unwrap();
    let mut unknown_kid = header.clone();
    unknown_kid.kid = Some("rotated-away".into());
    let unknown = jsonwebtoken::encode(&unknown_kid, &claims(TENANT, now + 600), &key).unwrap();
    // The local key is off on this server, so its own tokens are refused too.
    for token in [expired, unknown, server.admin_token()] {
        let response = server.http_with(&token).get(server.url("/dataPolicyOperations")).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 401);
    }
    server.stop().await;
}

#[tokio::test]
async fn a_tenant_never_sees_or_changes_another_tenants_operations() {
    let server = TestServer::start(60).await;
    let ours = submit(&server, "alice").await;
    // Tenant B has its own directory, with a user of the same id.
    const OTHER: &str = "00000000-0000-0000-0000-0000000000b2";
    server.store.directory.upsert_users(OTHER, &crate::common::test_users()[..1]).unwrap();
    let theirs_client = server.http_with(&server.token(&MintRequest::admin(OTHER)));

    // Every operation on A's operation, as B: 404, as if it did not exist.
    for operation in every_operation(&ours) {
        if !operation.1.contains(&ours) {
            continue;
        }
        let response = call(&theirs_client, &server, &operation).await;
        assert_eq!(response.status().as_u16(), 404, "{} {}", operation.0, operation.1);
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "Request_ResourceNotFound");
    }
    let stale_match = theirs_client
        .delete(server.url(&format!("/dataPolicyOperations/{ours}")))
        .header("If-Match", "*")
        .send()
        .await
        .unwrap();
    assert_eq!(stale_match.status().as_u16(), 404);

    // B's list and count hold only B's operations, even with a filter naming A's.
    let page: Value =
        theirs_client.get(server.url("/dataPolicyOperations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 0);
    let count = theirs_client
        .get(server.url(&format!("/dataPolicyOperations/$count?$filter=id%20eq%20{ours}")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "0");

    // B exports its own alice; each tenant then sees exactly its own.
    let response = theirs_client
        .post(server.url("/users/alice/exportPersonalData"))
        .json(&json!({"storageLocation": sas_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202);
    // B cannot export A's users: they are not in B's directory.
    let response = theirs_client
        .post(server.url("/users/bob/exportPersonalData"))
        .json(&json!({"storageLocation": sas_url()}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let page: Value =
        theirs_client.get(server.url("/dataPolicyOperations")).send().await.unwrap().json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 1);
    let (_, ours_page) = crate::common::get_json(&server, "/dataPolicyOperations").await;
    assert_eq!(crate::common::ids(&ours_page), vec![ours.clone()]);

    // A paging token of A's is refused to B.
    for i in 0..3 {
        submit(&server, &format!("user{i}")).await;
    }
    let (_, page) = crate::common::get_json(&server, "/dataPolicyOperations?$top=2").await;
    assert!(page["@odata.nextLink"].as_str().is_some_and(|next| next.contains("$top=2")), "{page}");
    let paged = TestServer::start_paged(60, 2).await;
    for i in 0..3 {
        submit(&paged, &format!("user{i}")).await;
    }
    let (_, first) = crate::common::get_json(&paged, "/dataPolicyOperations").await;
    let next = first["@odata.nextLink"].as_str().unwrap().to_string();
    paged.store.directory.upsert_users(OTHER, &crate::common::test_users()[..1]).unwrap();
    let other_on_paged = paged.http_with(&paged.token(&MintRequest::admin(OTHER)));
    let response = other_on_paged.get(&next).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 400, "the token belongs to another tenant");
    paged.stop().await;
    server.stop().await;
}

#[tokio::test]
async fn the_jwks_can_come_from_a_url_fetched_at_start() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let jwks = std::fs::read_to_string(fixtures.join("test-jwks.json")).unwrap();
    // A one-shot identity provider on loopback that serves the JWKS document.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/discovery/v2.0/keys", listener.local_addr().unwrap());
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        if let Ok((mut stream, _)) = listener.accept().await {
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{jwks}",
                jwks.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
        }
    });
    let auth = dpo_server::config::AuthConfig { local_key: false, jwks_url: Some(url), ..Default::default() };
    let server = TestServer::start_with(Options { auth, ..Options::default() }).await;
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixtures.join("test-rsa-key.pem")).unwrap()).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some("test-idp-key-1".into());
    let token = jsonwebtoken::encode(
        &header,
        &json!({
            "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "aud": "https://graph.microsoft.com",
            "exp": now + 600, "tid": TENANT, "appid": "some-app", "roles": ["User.Read.All"],
        }),
        &key,
    )
    .unwrap();
    let response = server.http_with(&token).get(server.url("/dataPolicyOperations/$count")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 200);
    server.stop().await;
}
