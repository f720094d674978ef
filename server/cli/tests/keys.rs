//! Keys that rotate, through the real binary: an identity provider on loopback (written in the test)
//! publishes its JWKS, then a second key beside the first, signs with the second, removes the first, and
//! finally fails for a while. dpo follows every step without a restart and without failing a request.

use crate::common::{Reply, ScriptedHttp, serve_logged};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use sha2::Digest;
use std::{
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

const TENANT: &str = "7d5f4ba2-7a5c-4a8e-9f0e-1c2d3e4f5a6b";

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures")
}

/// The public key `n` of fixture JWKS `file`, as its one key.
fn published(file: &str) -> Value {
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(fixtures().join(file)).unwrap()).unwrap();
    doc["keys"][0].clone()
}

/// An application token of `TENANT` signed with the fixture key `pem` under `kid`.
fn token(pem: &str, kid: &str) -> String {
    let key = EncodingKey::from_rsa_pem(&std::fs::read(fixtures().join(pem)).unwrap()).unwrap();
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({
        "iss": format!("https://login.microsoftonline.com/{TENANT}/v2.0"), "aud": "https://graph.microsoft.com",
        "exp": now + 3600, "nbf": now - 10, "tid": TENANT, "appid": "rotation-test", "roles": ["User.Read.All"],
    });
    jsonwebtoken::encode(&header, &claims, &key).unwrap()
}

/// What the identity provider publishes now: a JWKS document, or `None` to answer 500.
type Published = Arc<Mutex<Option<Value>>>;

/// The provider: the current document with a one-second `max-age` and an `ETag`, `304` when the client
/// already has it.
fn identity_provider(published: Published) -> ScriptedHttp {
    ScriptedHttp::start(move |request, _| {
        let Some(doc) = published.lock().unwrap().clone() else {
            return Reply::json(500, json!({"error": "the key service is down"}));
        };
        let etag = format!("\"{}\"", hex::encode(&sha2::Sha256::digest(doc.to_string().as_bytes())[..8]));
        if request.header("if-none-match") == Some(etag.as_str()) {
            return Reply { status: 304, headers: vec![("ETag".into(), etag)], body: String::new() };
        }
        Reply::json(200, doc).with("Cache-Control", "public, max-age=1").with("ETag", &etag)
    })
}

async fn count_status(http: &reqwest::Client, base: &str, token: &str) -> u16 {
    let response = http
        .get(format!("{base}/v1.0/dataPolicyOperations/$count"))
        .bearer_auth(token)
        .send()
        .await
        .expect("dpo answers");
    response.status().as_u16()
}

/// Waits until the provider has answered `more` requests beyond `seen_before`.
async fn provider_asked(provider: &ScriptedHttp, server: &crate::common::Server, seen_before: usize, more: usize) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while provider.seen().len() < seen_before + more {
        assert!(
            Instant::now() < deadline,
            "dpo did not fetch the keys again: {} fetches; its log: {:#?}",
            provider.seen().len(),
            server.logged("")
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn keys_rotate_without_a_restart_and_without_a_failed_request() {
    let (key1, key2) = (published("test-jwks.json"), published("test-jwks-2.json"));
    let published: Published = Arc::new(Mutex::new(Some(json!({ "keys": [key1] }))));
    let provider = identity_provider(published.clone());
    let state = tempfile::tempdir().unwrap();
    let url = format!("{}/common/discovery/v2.0/keys", provider.base);
    let server = serve_logged(
        state.path(),
        &["--no-local-key", "--jwks-url", &url, "--jwks-min-interval", "1", "--jwks-max-age", "60"],
    );
    let (old, new) = (token("test-rsa-key.pem", "test-idp-key-1"), token("test-rsa-key-2.pem", "test-idp-key-2"));
    let http = reqwest::Client::new();
    assert_eq!(count_status(&http, &server.base, &old).await, 200);

    // A client calls without a pause through the whole rotation, with whichever token the provider
    // issues at the time.
    let current = Arc::new(Mutex::new(old.clone()));
    let (stop, calls, refused) =
        (Arc::new(AtomicBool::new(false)), Arc::new(AtomicUsize::new(0)), Arc::new(Mutex::new(Vec::new())));
    let caller = tokio::spawn({
        let (http, base, current, stop, calls, refused) =
            (http.clone(), server.base.clone(), current.clone(), stop.clone(), calls.clone(), refused.clone());
        async move {
            while !stop.load(Ordering::SeqCst) {
                let token = current.lock().unwrap().clone();
                let status = count_status(&http, &base, &token).await;
                calls.fetch_add(1, Ordering::SeqCst);
                if status != 200 {
                    refused.lock().unwrap().push(status);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;

    // The provider publishes its next key beside the current one and signs with it at once: the first
    // token naming it makes dpo fetch the set then (not at the next scheduled fetch).
    *published.lock().unwrap() = Some(json!({ "keys": [key1, key2] }));
    *current.lock().unwrap() = new.clone();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_status(&http, &server.base, &old).await, 200, "the old key is still published");

    // The old key is withdrawn: once dpo has fetched the set again, tokens signed with it are refused,
    // also one it had checked (and remembered) before.
    *published.lock().unwrap() = Some(json!({ "keys": [key2] }));
    provider_asked(&provider, &server, provider.seen().len(), 2).await;
    let response =
        http.get(format!("{}/v1.0/dataPolicyOperations/$count", server.base)).bearer_auth(&old).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 401, "a token of the withdrawn key is refused");
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "InvalidAuthenticationToken");
    assert!(body["error"]["message"].as_str().unwrap().contains("test-idp-key-1"), "{body}");

    // The provider fails: dpo keeps the last good set and goes on asking.
    *published.lock().unwrap() = None;
    provider_asked(&provider, &server, provider.seen().len(), 2).await;
    assert!(server.logs("fetching the token signing keys failed").await, "the failure is logged");
    assert_eq!(count_status(&http, &server.base, &new).await, 200, "the last good keys stay in use");

    // Tokens naming keys nobody published (30 at once) cannot make dpo ask the provider more than once
    // a second (the floor): they share the fetches.
    let forged: Vec<String> = (0..30).map(|n| token("test-rsa-key.pem", &format!("forged-{n}"))).collect();
    let before = provider.seen().len();
    let started = Instant::now();
    let statuses = futures::future::join_all(forged.iter().map(|t| count_status(&http, &server.base, t))).await;
    assert_eq!(statuses, vec![401; 30]);
    let seconds = started.elapsed().as_secs_f64();
    let fetched = provider.seen().len() - before;
    assert!(fetched as f64 <= seconds.ceil() + 2.0, "{fetched} fetches in {seconds:.1} s");

    stop.store(true, Ordering::SeqCst);
    caller.await.unwrap();
    let calls = calls.load(Ordering::SeqCst);
    assert!(calls > 20, "the client kept calling ({calls} calls)");
    assert_eq!(*refused.lock().unwrap(), Vec::<u16>::new(), "no call failed across the rotation ({calls} calls)");
    let conditional = provider.seen().iter().filter(|s| s.header("if-none-match").is_some()).count();
    assert!(conditional > 0, "dpo sends the ETag back");
    assert!(server.logs("token signing keys changed").await, "the change is logged");
}
