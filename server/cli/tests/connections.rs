//! The real `dpo-server` binary against clients that hold connections without using them (issue 15):
//! those that send nothing go after the header timeout, those silent after a request after the idle
//! timeout, and beyond the connection limit the longest silent; none goes early, and none of them locks
//! out a client that sends its request.

use dpo_server::auth::{LOCAL_TENANT, mint_local, tokens::MintRequest};
use std::time::{Duration, Instant};
use tokio::{
    io::{AsyncReadExt, AsyncWriteExt},
    net::TcpStream,
};

/// Waits for the server to close `socket`; returns when, or None if it is still open after `within`.
async fn closed_within(socket: &mut TcpStream, within: Duration) -> Option<Instant> {
    let mut buffer = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, socket.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(Instant::now()),
            // An answer the test asked for earlier.
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Whether the server has not closed `socket` yet (a read that would wait).
fn still_open(socket: &TcpStream) -> bool {
    let mut byte = [0u8; 1];
    matches!(socket.try_read(&mut byte), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Sends `GET /v1.0/dataPolicyOperations/$count` on `socket` and reads its answer (keep-alive).
async fn ask_count(socket: &mut TcpStream, address: &str, token: &str) {
    let request = format!(
        "GET /v1.0/dataPolicyOperations/$count HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\r\n"
    );
    socket.write_all(request.as_bytes()).await.expect("request sent");
    let mut answer = Vec::new();
    let mut buffer = [0u8; 4096];
    // The body of `$count` is "0" here: the answer ends with it.
    while !answer.ends_with(b"\r\n\r\n0") {
        let read = socket.read(&mut buffer).await.expect("answer read");
        assert_ne!(read, 0, "the server answered before closing: {}", String::from_utf8_lossy(&answer));
        answer.extend_from_slice(&buffer[..read]);
    }
    assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
}

/// Up to `count` connections to `address` that send nothing, until one is refused (the accept queue may
/// be full while the server sits at its limit of open files).
async fn connect_idle(address: &str, count: usize) -> Vec<TcpStream> {
    let mut idle = Vec::new();
    for _ in 0..count {
        match TcpStream::connect(address).await {
            Ok(socket) => idle.push(socket),
            Err(_) => break,
        }
    }
    idle
}

/// Asserts that the server at `base` answers a `$count` with `token` within `within`: not locked out.
async fn assert_answered_within(base: &str, token: &str, within: Duration) {
    let ask = reqwest::Client::new().get(format!("{base}/v1.0/dataPolicyOperations/$count")).bearer_auth(token).send();
    let answer = tokio::time::timeout(within, ask).await.expect("answered, not locked out");
    assert_eq!(answer.expect("sent").status().as_u16(), 200);
}

/// The server started with `flags` in a state directory of its own, an administrator's token and the
/// address to connect to.
fn serving(flags: &[&str]) -> (tempfile::TempDir, crate::common::Server, String, String) {
    let state = tempfile::tempdir().unwrap();
    let server = crate::common::serve(state.path(), flags);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    let address = server.base.trim_start_matches("http://").to_string();
    (state, server, token, address)
}

#[tokio::test]
async fn silent_connections_are_closed_at_the_header_timeout_and_never_lock_out_a_well_behaved_client() {
    // This process holds 2,000 sockets of its own.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let state = tempfile::tempdir().unwrap();
    // Started with a soft limit of 1,024 open files, a common service default.
    let server = crate::common::serve_with_open_files(state.path(), 1024, &["--header-timeout", "2"]);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    let address = server.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        let socket = TcpStream::connect(&address).await.expect("an idle connection");
        idle.push((Instant::now(), socket));
    }
    // A client that sends its request gets its answer while the 2,000 sit there (a lockout would hang
    // here until the idle ones leave, which they never do by themselves).
    let http = reqwest::Client::new();
    let ask = http.get(format!("{}/v1.0/dataPolicyOperations/$count", server.base)).bearer_auth(&token).send();
    let answer = tokio::time::timeout(Duration::from_secs(60), ask).await.expect("answered").expect("sent");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap(), "0");
    // The server closes every idle one once it has said nothing for the header timeout, and not before.
    let mut early = Vec::new();
    for (connected, socket) in &mut idle {
        let closed = closed_within(socket, Duration::from_secs(30)).await.expect("closed by the server");
        let after = closed - *connected;
        if after < Duration::from_millis(1900) {
            early.push(after);
        }
    }
    assert!(early.is_empty(), "{} connections closed before the header timeout: {early:?}", early.len());
}

#[tokio::test]
async fn at_a_hard_limit_of_1024_files_idle_connections_never_lock_the_api_out() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let state = tempfile::tempdir().unwrap();
    // No raising the limit, and a header timeout longer than the test: only the cap can make room.
    let server = crate::common::serve_with_hard_open_files(state.path(), 1024, &["--header-timeout", "300"]);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    let address = server.base.trim_start_matches("http://").to_string();
    let idle = connect_idle(&address, 1100).await;
    assert!(idle.len() > 900, "{} idle connections made", idle.len());
    assert_answered_within(&server.base, &token, Duration::from_secs(30)).await;
    // The longest silent beyond the cap (1,024 less the 256 kept for the rest) were shut down.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = idle.iter().filter(|socket| still_open(socket)).count();
    assert!(open <= 1024 - 256, "{open} idle connections still open");
}

#[tokio::test]
async fn the_admin_listener_has_the_same_timeouts_and_a_small_cap_of_its_own() {
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let state = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let admin = format!("127.0.0.1:{port}");
    let flags = ["--admin-bind", admin.as_str(), "--header-timeout", "300", "--idle-timeout", "3"];
    let server = crate::common::serve_with_hard_open_files(state.path(), 1024, &flags);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    // 1,100 idle connections to the admin port, no token needed: the API must still answer.
    let idle = connect_idle(&admin, 1100).await;
    assert_answered_within(&server.base, &token, Duration::from_secs(30)).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let open = idle.iter().filter(|socket| still_open(socket)).count();
    assert!(open <= dpo_server::connection_guard::ADMIN_MAX_CONNECTIONS, "{open} idle admin connections still open");
    // A scrape is answered, and its connection, silent afterwards, goes at the idle timeout.
    drop(idle);
    let mut scrape = TcpStream::connect(&admin).await.expect("the admin port");
    scrape.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {admin}\r\n\r\n").as_bytes()).await.unwrap();
    let asked = Instant::now();
    let closed = closed_within(&mut scrape, Duration::from_secs(10)).await.expect("closed at the idle timeout");
    assert!(closed - asked >= Duration::from_millis(2900), "closed after {:?}", closed - asked);
}

#[tokio::test]
async fn a_connection_silent_after_its_requests_is_closed_at_the_idle_timeout_and_not_while_in_use() {
    let (_state, _server, token, address) = serving(&["--header-timeout", "1", "--idle-timeout", "3"]);
    // One asks once and then says nothing; the other asks every half second for 5 s (the header timeout
    // does not apply to a connection that has sent its requests).
    let mut quiet = TcpStream::connect(&address).await.unwrap();
    ask_count(&mut quiet, &address, &token).await;
    let asked = Instant::now();
    let quiet = tokio::spawn(async move { closed_within(&mut quiet, Duration::from_secs(10)).await });
    let mut busy = TcpStream::connect(&address).await.unwrap();
    while asked.elapsed() < Duration::from_secs(5) {
        ask_count(&mut busy, &address, &token).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let closed = quiet.await.unwrap().expect("the quiet one closed") - asked;
    // Measured from its last byte, which left before `asked`.
    assert!(closed > Duration::from_millis(2900), "closed {closed:?} after its answer, before the idle timeout");
    assert!(closed < Duration::from_millis(4500), "closed {closed:?} after its answer");
    assert!(still_open(&busy), "the busy one stays open");
    ask_count(&mut busy, &address, &token).await;
}

#[tokio::test]
async fn beyond_the_connection_limit_the_longest_silent_are_closed() {
    let (_state, _server, token, address) = serving(&["--max-connections", "10", "--header-timeout", "60"]);
    let mut old = Vec::new();
    for _ in 0..5 {
        old.push(TcpStream::connect(&address).await.unwrap());
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    // Ten newer ones, one of which keeps asking: fifteen in all, five over the limit.
    let mut newer = Vec::new();
    for _ in 0..10 {
        newer.push(TcpStream::connect(&address).await.unwrap());
    }
    for _ in 0..6 {
        ask_count(&mut newer[0], &address, &token).await;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for socket in &mut old {
        assert!(closed_within(socket, Duration::from_secs(5)).await.is_some(), "an old silent one was closed");
    }
    assert!(newer.iter().all(still_open), "the ten newer ones stay, the limit being ten");
    ask_count(&mut newer[0], &address, &token).await;
}
