//! The real `dpo-server` binary against clients that open connections and send nothing (issue 15): they
//! are closed after the header timeout and never lock out a client that sends its request.

mod common;

use dpo_server::auth::{LOCAL_TENANT, mint_local, tokens::MintRequest};
use std::time::Duration;
use tokio::io::AsyncReadExt;

#[tokio::test]
async fn idle_connections_are_closed_and_never_lock_out_a_well_behaved_client() {
    // This process holds 2,000 sockets of its own.
    let _ = rlimit::increase_nofile_limit(u64::MAX);
    let state = tempfile::tempdir().unwrap();
    // Started with a soft limit of 1,024 open files, a common service default.
    let server = common::serve_with_open_files(state.path(), 1024, &["--header-timeout", "2"]);
    let token = mint_local(state.path(), &MintRequest::admin(LOCAL_TENANT)).unwrap();
    let address = server.base.trim_start_matches("http://").to_string();
    let mut idle = Vec::new();
    for _ in 0..2000 {
        idle.push(tokio::net::TcpStream::connect(&address).await.expect("an idle connection"));
    }
    // A client that sends its request gets its answer while the 2,000 sit there (a lockout would hang
    // here until the idle ones leave, which they never do by themselves).
    let http = reqwest::Client::new();
    let ask = http.get(format!("{}/v1.0/dataPolicyOperations/$count", server.base)).bearer_auth(&token).send();
    let answer = tokio::time::timeout(Duration::from_secs(60), ask).await.expect("answered").expect("sent");
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.text().await.unwrap(), "0");
    // The server closes every idle one once it has said nothing for the header timeout.
    let mut closed = 0;
    for socket in &mut idle {
        let mut byte = [0u8; 1];
        if let Ok(Ok(0)) = tokio::time::timeout(Duration::from_secs(30), socket.read(&mut byte)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 2000, "every idle connection was closed by the server");
}
