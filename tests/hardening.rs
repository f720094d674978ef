//! Regression tests for what a hostile caller found (issue 15): each test fails on the code before its fix.

use crate::common::{TENANT, TestServer, count, get_json, ids, submit_to};
use dpo_server::auth::{USER_READ_ALL, tokens::MintRequest};

/// A SAS whose signature a reader must never be able to learn.
const SECRET_SAS: &str = "https://account.blob.core.windows.net/exports?sv=2023-11-03&sp=racwl&se=2099-01-01T00:00:00Z&sr=c&sig=Zx9SECRETsig%2B";

/// An application token that may only read (`User.Read.All`).
fn reader(server: &TestServer) -> reqwest::Client {
    server.http_with(&server.token(&MintRequest {
        user: None,
        admin: false,
        permissions: vec![USER_READ_ALL.into()],
        ..MintRequest::admin(TENANT)
    }))
}

async fn matches(client: &reqwest::Client, server: &TestServer, query: &str) -> (u16, String) {
    let response = client.get(server.url(&format!("/dataPolicyOperations/$count?{query}"))).send().await.unwrap();
    (response.status().as_u16(), response.text().await.unwrap())
}

#[tokio::test]
async fn no_query_option_can_reach_the_sas_signature() {
    let server = TestServer::start(60).await;
    let id = submit_to(&server, "alice", SECRET_SAS).await;
    let client = reader(&server);
    // The oracle of the attack: a yes/no answer per guessed prefix of the signature.
    for query in [
        "$filter=contains(storageLocation,'sig=Z')",
        "$filter=contains(storageLocation,'SECRET')",
        "$filter=endswith(storageLocation,'sig%2B')",
        "$filter=storageLocation ge 'https://account.blob.core.windows.net/exports?sv=2023-11-03&sp=racwl&se=2099-01-01T00:00:00Z&sr=c&sig=Z'",
        "$search=\"SECRET\"",
        "$search=\"sig=Zx9\"",
    ] {
        let query = query.replace(' ', "%20").replace('&', "%26");
        let (status, text) = matches(&client, &server, &query).await;
        assert_eq!((status, text.as_str()), (200, "0"), "{query} must not match the secret");
    }
    // The redacted form is what queries see, so they still work on it.
    let (status, text) = matches(&client, &server, "$filter=contains(storageLocation,'sig=REDACTED')").await;
    assert_eq!((status, text.as_str()), (200, "1"));
    let (_, page) = get_json(&server, "/dataPolicyOperations?$orderby=storageLocation").await;
    assert_eq!(ids(&page), [id]);
    let shown = page["value"][0]["storageLocation"].as_str().unwrap();
    assert!(!shown.contains("SECRET") && shown.ends_with("&sig=REDACTED"), "{shown}");
    assert_eq!(count(&server, "/dataPolicyOperations/$count").await, "1");
}

#[tokio::test]
async fn an_encoded_or_repeated_signature_is_still_the_signature() {
    let server = TestServer::start(60).await;
    let base = "https://account.blob.core.windows.net/exports?sv=2023-11-03&sp=cw&se=2099-01-01T00:00:00Z";
    for spelled in ["%73ig", "SIG", "%53ig"] {
        let id = submit_to(&server, "alice", &format!("{base}&{spelled}=TOPSECRET")).await;
        let (status, op) = get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
        assert_eq!(status, 200);
        let shown = op["storageLocation"].as_str().unwrap();
        assert!(!shown.contains("TOPSECRET") && shown.ends_with("&sig=REDACTED"), "{spelled}: {shown}");
    }
    let (_, page) = get_json(&server, "/dataPolicyOperations").await;
    assert!(!page.to_string().contains("TOPSECRET"), "{page}");
    for twice in [format!("{base}&sig=a&sig=b"), format!("{base}&sig=a&%73ig=b"), format!("{base}&sig=a&SIG=b")] {
        let response = server
            .http()
            .post(server.url("/users/alice/exportPersonalData"))
            .json(&serde_json::json!({ "storageLocation": twice }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{twice}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("more than once"), "{body}");
    }
}

#[tokio::test]
async fn a_skip_beyond_what_sql_counts_is_a_bad_request_not_a_crash() {
    let server = TestServer::start(60).await;
    for skip in ["9223372036854775808", "18446744073709551615", "99999999999999999999"] {
        let (status, body) = get_json(&server, &format!("/dataPolicyOperations?$skip={skip}")).await;
        assert_eq!(status, 400, "$skip={skip}: {body}");
        assert_eq!(body["error"]["code"], "BadRequest");
    }
    let (status, body) = get_json(&server, "/dataPolicyOperations?$skip=9223372036854775807").await;
    assert_eq!((status, ids(&body).len()), (200, 0));
}

#[tokio::test]
async fn a_body_with_anything_after_its_json_value_is_refused_and_nothing_is_queued() {
    let server = TestServer::start(60).await;
    let body = format!(r#"{{"storageLocation":"{}"}} trailing ][ {{"#, crate::common::sas_url());
    for garbage in [body.clone(), format!(r#"{{"storageLocation":"{}"}}{{}}"#, crate::common::sas_url())] {
        let response = server
            .http()
            .post(server.url("/users/alice/exportPersonalData"))
            .header("content-type", "application/json")
            .body(garbage.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{garbage}");
        let error: serde_json::Value = response.json().await.unwrap();
        assert_eq!(error["error"]["code"], "BadRequest", "{error}");
    }
    assert_eq!(count(&server, "/dataPolicyOperations/$count").await, "0");
    let fine = format!("{{\"storageLocation\":\"{}\"}}\r\n ", crate::common::sas_url());
    let response = server
        .http()
        .post(server.url("/users/alice/exportPersonalData"))
        .header("content-type", "application/json")
        .body(fine)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 202, "white space after the value is fine");
}

#[tokio::test]
async fn concurrent_patches_without_if_match_all_succeed_and_each_one_counts() {
    let server = TestServer::start(60).await;
    let id = crate::common::submit(&server, "alice").await;
    let url = server.url(&format!("/dataPolicyOperations/{id}"));
    let http = server.http();
    let patches = (0..50).map(|i| {
        let (http, url) = (http.clone(), url.clone());
        let moved = format!(
            "https://account.blob.core.windows.net/exports{i}?sv=2023-11-03&sp=cw&se=2099-01-01T00:00:00Z&sig=s{i}"
        );
        async move { http.patch(&url).json(&serde_json::json!({ "storageLocation": moved })).send().await.unwrap() }
    });
    let answers = futures::future::join_all(patches).await;
    let statuses: Vec<u16> = answers.iter().map(|a| a.status().as_u16()).collect();
    assert!(statuses.iter().all(|s| *s == 200), "no precondition was sent, so none can fail: {statuses:?}");
    let (_, op) = get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(op["@odata.etag"], "W/\"51\"", "every patch applied once, on the version before it");
    // With If-Match, a stale tag is still refused.
    let stale =
        http.patch(&url).header("If-Match", "W/\"1\"").json(&serde_json::json!({ "storageLocation": SECRET_SAS }));
    assert_eq!(stale.send().await.unwrap().status().as_u16(), 412);
}

/// A token signed with the test server's local key, with `header` and `claims` as given.
fn signed(server: &TestServer, header: jsonwebtoken::Header, claims: serde_json::Value) -> String {
    let key = dpo_server::auth::keys::LocalKey::open(server.state.path()).unwrap();
    jsonwebtoken::encode(&header, &claims, &key.signing()).unwrap()
}

fn local_header() -> jsonwebtoken::Header {
    let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
    header.kid = Some(dpo_server::auth::keys::LOCAL_KEY_ID.into());
    header
}

fn reader_claims(aud: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "aud": aud,
        "exp": jsonwebtoken::get_current_timestamp() + 600, "tid": TENANT, "appid": "app", "roles": [USER_READ_ALL],
    })
}

async fn count_status(server: &TestServer, authorization: &str) -> u16 {
    let response = reqwest::Client::new()
        .get(server.url("/dataPolicyOperations/$count"))
        .header("Authorization", authorization)
        .send()
        .await
        .unwrap();
    response.status().as_u16()
}

#[tokio::test]
async fn tokens_follow_the_jwt_and_http_rules_to_the_letter() {
    let server = TestServer::start(60).await;
    let plain = signed(&server, local_header(), reader_claims("https://graph.microsoft.com".into()));
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        assert_eq!(count_status(&server, &format!("{scheme} {plain}")).await, 200, "scheme {scheme}");
    }
    assert_eq!(count_status(&server, &format!("Bearer   {plain}")).await, 200, "more than one space");
    assert_eq!(count_status(&server, &format!("Basic {plain}")).await, 401, "another scheme");
    assert_eq!(count_status(&server, &format!("Bearer{plain}")).await, 401, "no space after the scheme");

    // An array aud (RFC 7519 §4.1.3) is accepted when it holds an accepted audience, and only then.
    let many = signed(
        &server,
        local_header(),
        reader_claims(serde_json::json!(["api://other", "https://graph.microsoft.com"])),
    );
    assert_eq!(count_status(&server, &format!("Bearer {many}")).await, 200);
    let none = signed(&server, local_header(), reader_claims(serde_json::json!(["api://other", "api://else"])));
    assert_eq!(count_status(&server, &format!("Bearer {none}")).await, 401);

    // A critical extension dpo does not understand (RFC 7515 §4.1.11) makes the token unusable.
    let mut header = local_header();
    header.crit = Some(vec!["http://example.com/must-understand".into()]);
    let critical = signed(&server, header, reader_claims("https://graph.microsoft.com".into()));
    assert_eq!(count_status(&server, &format!("Bearer {critical}")).await, 401);
}

fn user(id: &str, upn: &str, mail: Option<&str>) -> dpo_server::store::UserRecord {
    dpo_server::store::UserRecord {
        id: id.into(),
        user_principal_name: upn.into(),
        display_name: None,
        mail: mail.map(Into::into),
        attributes: Default::default(),
    }
}

#[tokio::test]
async fn an_id_wins_over_another_users_principal_name() {
    let server = TestServer::start(60).await;
    // bob's UPN is carol's id: asking for "carol" must find carol, whichever row the database reads first.
    let users = [user("bob", "carol", None), user("carol", "carol@contoso.example", None)];
    server.store.directory.upsert_users(TENANT, &users).unwrap();
    for _ in 0..3 {
        let found = server.store.directory.find_user(TENANT, "carol").unwrap().map(|u| u.id);
        assert_eq!(found.as_deref(), Some("carol"));
    }
    assert_eq!(server.store.directory.find_user(TENANT, "CAROL").unwrap().map(|u| u.id).as_deref(), Some("bob"));
    let id = crate::common::submit(&server, "carol").await;
    let (_, op) = get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(op["userId"], "carol", "{op}");
    server.stop().await;
}

#[tokio::test]
async fn two_users_cannot_share_a_mail_address() {
    let server = TestServer::start(60).await;
    let directory = &server.store.directory;
    directory.upsert_users(TENANT, &[user("dora", "dora@contoso.example", Some("Dora@Contoso.example"))]).unwrap();
    let taken = user("eve", "eve@contoso.example", Some("dora@contoso.EXAMPLE"));
    assert!(directory.upsert_users(TENANT, &[taken]).is_err(), "a second user with dora's mail is refused");
    assert!(directory.find_user(TENANT, "eve").unwrap().is_none(), "and nothing of it is written");
    // Users without mail, and dora imported again, are fine.
    let fine = [user("f1", "f1@contoso.example", None), user("f2", "f2@contoso.example", None)];
    directory.upsert_users(TENANT, &fine).unwrap();
    directory.upsert_users(TENANT, &[user("dora", "dora@contoso.example", Some("dora@contoso.example"))]).unwrap();
    server.stop().await;
}

/// Sends `head` (a request's line and headers, and any body bytes) on a new connection to `server` and
/// returns the connection.
async fn raw(server: &TestServer, head: &str) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let address = server.base_url.trim_start_matches("http://").to_string();
    let mut socket = tokio::net::TcpStream::connect(&address).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket
}

/// The status line of the first answer read from `socket` within `within` (`None`: nothing by then).
async fn status_line(socket: &mut tokio::net::TcpStream, within: std::time::Duration) -> Option<String> {
    use tokio::io::AsyncReadExt;
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    while !answer.windows(2).any(|w| w == b"\r\n") {
        match tokio::time::timeout_at(deadline, socket.read(&mut buffer)).await {
            Ok(Ok(n)) if n > 0 => answer.extend_from_slice(&buffer[..n]),
            _ => return None,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    text.lines().next().map(str::to_string)
}

#[tokio::test]
async fn a_body_is_read_only_for_an_authenticated_caller_within_its_limits_of_size_and_time() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    let server = TestServer::start(60).await;
    let token = server.admin_token();
    let post = "POST /v1.0/users/alice/exportPersonalData HTTP/1.1\r\nHost: dpo\r\nContent-Type: application/json\r\n";

    // No token: 401 at once, without waiting for a body that never comes.
    let mut anonymous = raw(&server, &format!("{post}Content-Length: 1000\r\n\r\n")).await;
    let status = status_line(&mut anonymous, Duration::from_secs(3)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 401 ")), "{status:?}");

    // A declared length over the limit with Expect: 100-continue: 413, never 100 Continue.
    let head =
        format!("{post}Authorization: Bearer {token}\r\nExpect: 100-continue\r\nContent-Length: 1000000\r\n\r\n");
    let mut expecting = raw(&server, &head).await;
    let status = status_line(&mut expecting, Duration::from_secs(3)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 413 ")), "{status:?}");

    // A chunked body past the limit: 413 as soon as it is, not at its end (which never comes here).
    let head = format!("{post}Authorization: Bearer {token}\r\nTransfer-Encoding: chunked\r\n\r\n");
    let mut chunked = raw(&server, &head).await;
    let chunk = format!("{:x}\r\n{}\r\n", 10_000, "a".repeat(10_000));
    for _ in 0..8 {
        chunked.write_all(chunk.as_bytes()).await.unwrap();
    }
    let status = status_line(&mut chunked, Duration::from_secs(3)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 413 ")), "{status:?}");

    // A body dripping a byte every half second: cut off at the body timeout with 408.
    let head = format!("{post}Authorization: Bearer {token}\r\nContent-Length: 100\r\n\r\n");
    let mut dripping = raw(&server, &head).await;
    let started = Instant::now();
    let drip = async {
        for _ in 0..100 {
            if dripping.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(12), drip).await;
    let status = status_line(&mut dripping, Duration::from_secs(3)).await;
    assert!(status.as_deref().is_some_and(|s| s.contains(" 408 ")), "{status:?} after {:?}", started.elapsed());
    server.stop().await;
}
