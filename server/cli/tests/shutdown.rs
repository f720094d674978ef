//! SIGTERM through the real binary: the server refuses new connections, finishes the requests in flight, and
//! does not wait for ever for one that never ends (`--shutdown-timeout`).

use crate::common::{admin_http, import_users, serve_logged, sigterm};
use std::{
    io::{Read, Write},
    net::TcpStream,
    time::{Duration, Instant},
};

/// A connection that has sent an export request's head and the first part of its body.
fn half_sent_export(base: &str, token: &str, body: &str, sent: usize) -> TcpStream {
    let address = base.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).expect("the server accepts");
    let head = format!(
        "POST /v1.0/users/alice/exportPersonalData HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(&body.as_bytes()[..sent]).unwrap();
    stream
}

#[tokio::test]
async fn sigterm_finishes_requests_in_flight_and_cuts_off_those_that_never_end() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let token = dpo_server::auth::mint_local(
        state.path(),
        &dpo_server::auth::tokens::MintRequest::admin(dpo_server::auth::LOCAL_TENANT),
    )
    .unwrap();
    let mut server = serve_logged(state.path(), &["--shutdown-timeout", "3", "--export-workers", "0"]);
    // The server answers before anything happens.
    let ok = admin_http(state.path()).get(format!("{}/v1.0/dataPolicyOperations", server.base)).send().await.unwrap();
    assert_eq!(ok.status(), 200);

    let location = format!("file://{}/", state.path().join("exports/out").display());
    let body = format!("{{\"storageLocation\": \"{location}\"}}");
    let mut finishing = half_sent_export(&server.base, &token, &body, 10);
    let _never_ends = half_sent_export(&server.base, &token, &body, 10);
    std::thread::sleep(Duration::from_millis(300)); // both requests are in the server now
    let stopped_at = Instant::now();
    sigterm(&server);
    std::thread::sleep(Duration::from_millis(500));

    // New connections are refused at once (not left waiting in the listener's queue until the end)...
    let address = server.base.trim_start_matches("http://").to_string();
    let refused = TcpStream::connect(&address);
    assert_eq!(
        refused.as_ref().map_err(std::io::Error::kind).err(),
        Some(std::io::ErrorKind::ConnectionRefused),
        "a new connection was taken: {refused:?}"
    );
    // ...but the request in flight is finished and answered.
    finishing.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    finishing.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 202"), "the request in flight was answered: {answer}");

    // The one that never ends does not hold the server up beyond the timeout.
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(stopped_at.elapsed() < Duration::from_secs(15), "the server did not stop");
        std::thread::sleep(Duration::from_millis(50));
    };
    let took = stopped_at.elapsed();
    assert!(status.success(), "{status:?}");
    assert!(took >= Duration::from_secs(3), "it waited for the request in flight ({took:?})");
    assert!(server.logs("requests still in flight at shutdown were cut off").await, "the cut is logged");
    // The finished request's export was committed before the answer, so the next start has it.
    let restarted = crate::common::serve(state.path(), &["--export-workers", "0"]);
    let list = crate::common::list(&admin_http(state.path()), &restarted.base, "").await;
    assert_eq!(list["value"].as_array().map(Vec::len), Some(1), "{list}");
}
