//! The `dpo` binary against a real dpo server (real SQLite or PostgreSQL, real export to a local folder).

use dpo_server::{
    ServerConfig,
    auth::{LOCAL_TENANT, mint_local, tokens::MintRequest},
    store::UserRecord,
};
use std::path::Path;

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn dpo(base_url: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_dpo"));
    command.args(args).env("DPO_BASE_URL", base_url).env_remove("DPO_TOKEN").env_remove("DPO_OUTPUT");
    if let Some(token) = token {
        command.env("DPO_TOKEN", token);
    }
    let out = command.output().await.expect("dpo runs");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// A server with user alice (a drive of two files) that runs exports, and an administrator's token. It
/// runs over SQLite in `state`, or over a fresh PostgreSQL database with `DPO_TEST_STORE=postgres` (as
/// `cargo xtask test` runs the suites a second time).
async fn server(state: &Path) -> (dpo_server::RunningServer, String) {
    server_with(state, dpo_server::throttle::ThrottleLimits::default()).await
}

/// Like [`server`], throttling requests as `throttle` says.
async fn server_with(
    state: &Path,
    throttle: dpo_server::throttle::ThrottleLimits,
) -> (dpo_server::RunningServer, String) {
    server_reading(state, throttle, None).await
}

/// Like [`server_with`], reading the sources file `sources` too.
async fn server_reading(
    state: &Path,
    throttle: dpo_server::throttle::ThrottleLimits,
    sources: Option<std::path::PathBuf>,
) -> (dpo_server::RunningServer, String) {
    let database = std::env::var("DPO_TEST_STORE")
        .is_ok_and(|s| s == "postgres")
        .then(|| dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster"));
    let drive = dpo_server::export::drive_files::drive_dir(&state.join("drives"), LOCAL_TENANT, "alice");
    std::fs::create_dir_all(drive.join("Documents")).unwrap();
    std::fs::write(drive.join("Documents/cv.docx"), vec![42u8; 200_000]).unwrap();
    std::fs::write(drive.join("notes.txt"), b"hello").unwrap();
    let config = ServerConfig {
        state_dir: state.to_path_buf(),
        retry_after_seconds: 1,
        log_level: "error".into(),
        export_workers: 1,
        database,
        throttle,
        sources_file: sources,
        ..Default::default()
    };
    let server = dpo_server::start(config).await.unwrap();
    let alice = UserRecord {
        id: "alice".into(),
        user_principal_name: "alice@contoso.example".into(),
        display_name: None,
        mail: None,
        attributes: Default::default(),
    };
    let directory = server.stores().directory;
    tokio::task::spawn_blocking(move || directory.upsert_users(LOCAL_TENANT, &[alice])).await.unwrap().unwrap();
    let token = mint_local(state, &MintRequest::admin(LOCAL_TENANT)).unwrap();
    (server, token)
}

#[tokio::test]
async fn an_export_with_wait_ends_complete_and_downloads_verified() {
    let state = tempfile::tempdir().unwrap();
    let (server, token) = server(state.path()).await;
    let base = format!("{}/v1.0", server.base_url());
    let folder = state.path().join("exports/alice");

    let run =
        dpo(&base, Some(&token), &["export", "alice", "--to", folder.to_str().unwrap(), "--wait", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let op: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(op["status"], "complete");
    assert_eq!(op["progress"], 100.0);
    let id = op["id"].as_str().unwrap().to_string();

    let run = dpo(&base, Some(&token), &["list", "--filter", "userId eq 'alice'", "--all", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let ops: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(ops.len(), 1);
    assert_eq!(ops[0]["id"], id.as_str());
    let run = dpo(&base, Some(&token), &["list", "--filter", "status eq 'failed'"]).await;
    assert_eq!(run.code, 0);
    assert_eq!(run.stdout.lines().count(), 1, "a table with only its header: {}", run.stdout);

    let run = dpo(&base, Some(&token), &["count"]).await;
    assert_eq!((run.code, run.stdout.trim()), (0, "1"));

    let target = tempfile::tempdir().unwrap();
    let run = dpo(&base, Some(&token), &["download", &id, "--to", target.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("all match the manifest"), "{}", run.stdout);
    assert_eq!(std::fs::read(target.path().join("drive/notes.txt")).unwrap(), b"hello");
    assert!(target.path().join("manifest.json").exists());

    // A tampered export fails verification with its own exit code.
    let exported = folder.join(&id).join("drive/notes.txt");
    std::fs::write(&exported, b"tampered").unwrap();
    let again = tempfile::tempdir().unwrap();
    let run = dpo(&base, Some(&token), &["download", &id, "--to", again.path().to_str().unwrap()]).await;
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(run.stderr.contains("notes.txt"), "{}", run.stderr);

    let run = dpo(&base, Some(&token), &["delete", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    server.close().await.unwrap();
}

#[tokio::test]
async fn failures_print_the_odata_code_and_message_and_exit_with_a_useful_code() {
    let state = tempfile::tempdir().unwrap();
    let (server, token) = server(state.path()).await;
    let base = format!("{}/v1.0", server.base_url());

    let run = dpo(&base, Some(&token), &["get", "not-a-guid"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.starts_with("error: BadRequest: 'not-a-guid' is not a valid"), "{}", run.stderr);
    assert!(run.stderr.contains("request-id"), "{}", run.stderr);
    assert!(!run.stderr.contains("ErrorResponse") && !run.stderr.contains("{ "), "no debug dump: {}", run.stderr);

    let run = dpo(&base, None, &["count"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("InvalidAuthenticationToken"), "{}", run.stderr);

    let run = dpo(
        &base,
        Some(&token),
        &["export", "nobody", "--to", "https://a.blob.core.windows.net/c?sp=w&se=2099-01-01T00:00:00Z&sig=x"],
    )
    .await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("Request_ResourceNotFound"), "{}", run.stderr);

    let run = dpo(&base, Some(&token), &["list", "--filter", "color eq 'red'"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("'color'"), "{}", run.stderr);
    server.close().await.unwrap();

    // Nothing listens any more: a transport failure.
    let run = dpo(&base, Some(&token), &["count"]).await;
    assert_eq!(run.code, 4, "{}", run.stderr);

    let run = dpo(&base, None, &["completions", "bash"]).await;
    assert_eq!(run.code, 0);
    assert!(run.stdout.contains("dpo") && run.stdout.contains("download"));
    let run = dpo(&base, None, &["export"]).await;
    assert_eq!(run.code, 2, "usage errors are clap's exit 2");
}

#[tokio::test]
async fn list_shows_one_page_of_top_and_all_walks_every_page() {
    let state = tempfile::tempdir().unwrap();
    let (server, token) = server(state.path()).await;
    let base = format!("{}/v1.0", server.base_url());
    let exports = url::Url::from_directory_path(state.path().join("exports/alice")).unwrap().to_string();
    let http = reqwest::Client::new();
    for _ in 0..25 {
        let response = http
            .post(format!("{base}/users/alice/exportPersonalData"))
            .bearer_auth(&token)
            .json(&serde_json::json!({ "storageLocation": exports }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 202);
    }
    let listed = |args: &'static [&'static str]| {
        let (base, token) = (base.clone(), token.clone());
        async move {
            let run = dpo(&base, Some(&token), args).await;
            assert_eq!(run.code, 0, "{}", run.stderr);
            serde_json::from_str::<Vec<serde_json::Value>>(&run.stdout).unwrap().len()
        }
    };
    assert_eq!(listed(&["list", "--top", "10", "-o", "json"]).await, 10, "one page of $top");
    assert_eq!(listed(&["list", "--top", "10", "--all", "-o", "json"]).await, 25, "every page, ten at a time");
    assert_eq!(listed(&["list", "--all", "-o", "json"]).await, 25);
    server.close().await.unwrap();
}

#[tokio::test]
async fn audit_list_shows_who_exported_whose_data() {
    let state = tempfile::tempdir().unwrap();
    let (server, token) = server(state.path()).await;
    let base = format!("{}/v1.0", server.base_url());
    for _ in 0..3 {
        let folder = state.path().join("exports/alice");
        let run = dpo(&base, Some(&token), &["export", "alice", "--to", folder.to_str().unwrap()]).await;
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    // The exporting token lacks AuditLog.Read.All: the service refuses, and dpo says so.
    let run = dpo(&base, Some(&token), &["audit", "list"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("Authorization_RequestDenied"), "{}", run.stderr);

    let request = MintRequest {
        permissions: vec!["User.Export.All".into(), "AuditLog.Read.All".into()],
        ..MintRequest::admin(LOCAL_TENANT)
    };
    let auditor = mint_local(state.path(), &request).unwrap();
    let run = dpo(&base, Some(&auditor), &["audit", "list"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(lines[0].starts_with("TIME") && lines[0].contains("ACTIVITY"), "{}", run.stdout);
    assert_eq!(lines.len(), 4, "a header and three events:\n{}", run.stdout);
    assert!(lines[1].contains("Export personal data") && lines[1].contains("user local-admin"), "{}", run.stdout);
    assert!(lines[1].contains("alice") && lines[1].contains("success"), "{}", run.stdout);

    let filter = "targetResources/any(t: t/id eq 'alice')";
    let run =
        dpo(&base, Some(&auditor), &["audit", "list", "--filter", filter, "--top", "1", "--all", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let events: Vec<serde_json::Value> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(events.len(), 3, "--all follows the next links, a page of one at a time");
    assert!(events.iter().all(|e| e["category"] == "DataPolicyOperations"));
    let oldest = dpo(&base, Some(&auditor), &["audit", "list", "--oldest-first", "-o", "json"]).await;
    let oldest: Vec<serde_json::Value> = serde_json::from_str(&oldest.stdout).unwrap();
    assert_eq!(oldest.first().map(|e| &e["id"]), events.last().map(|e| &e["id"]));

    let id = events[0]["id"].as_str().unwrap();
    let run = dpo(&base, Some(&auditor), &["audit", "get", id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(id) && run.stdout.contains("previousHash"), "{}", run.stdout);
    let run = dpo(&base, Some(&auditor), &["audit", "list", "--filter", "bogus eq 'x'"]).await;
    assert_eq!(run.code, 3);
    assert!(run.stderr.contains("BadRequest") && run.stderr.contains("bogus"), "{}", run.stderr);
    server.close().await.unwrap();
}

#[tokio::test]
async fn every_command_rides_out_throttling_as_retry_after_says() {
    let state = tempfile::tempdir().unwrap();
    let throttle =
        dpo_server::throttle::ThrottleLimits { per_caller: std::num::NonZeroU32::new(1), ..Default::default() };
    let (server, token) = server_with(state.path(), throttle).await;
    let base = format!("{}/v1.0", server.base_url());
    let started = std::time::Instant::now();
    // One request a second for this caller: back to back, all but the first are answered 429 at first.
    for args in [&["list"][..], &["count"], &["list", "-o", "json"]] {
        let run = dpo(&base, Some(&token), args).await;
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
    }
    assert!(started.elapsed() >= std::time::Duration::from_secs(1), "the retries waited as Retry-After said");
    server.close().await.unwrap();
}

#[tokio::test]
async fn requests_are_created_listed_shown_annotated_and_refused_where_they_wait() {
    let state = tempfile::tempdir().unwrap();
    let (server, _) = server(state.path()).await;
    let base = format!("{}/v1.0", server.base_url());
    let mut writer = MintRequest::admin(LOCAL_TENANT);
    writer.user = Some("privacy".into());
    writer.permissions = vec!["SubjectRightsRequest.ReadWrite.All".into()];
    let token = mint_local(state.path(), &writer).unwrap();
    let token = Some(token.as_str());

    let run = dpo(
        &base,
        token,
        &[
            "requests",
            "create",
            "--email",
            "casey@shop.example",
            "--first-name",
            "Casey",
            "--name",
            "Casey's copy",
            "--description",
            "everything",
            "--regulation",
            "CCPA",
            "--external-id",
            "t-1",
            "-o",
            "json",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let created: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let id = created["id"].as_str().expect("an id").to_string();
    assert_eq!(created["type"], "access");
    assert_eq!(created["dataSubjectType"], "customer");
    assert_eq!(created["regulations"], serde_json::json!(["CCPA"]));

    // The estimate runs at once; the request then waits for a person (pauseAfterEstimate).
    let run = dpo(&base, token, &["requests", "wait", &id, "--timeout", "60", "-o", "json"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let waiting: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(waiting["stages"][0]["status"], "completed", "{waiting}");

    let run = dpo(&base, token, &["requests", "list", "--filter", "externalId eq 't-1'", "--all"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.starts_with("ID"), "{}", run.stdout);
    assert!(run.stdout.contains(&id) && run.stdout.contains("contentRetrieval (notStarted)"), "{}", run.stdout);
    assert!(run.stdout.contains("casey@shop.example"), "{}", run.stdout);

    let run = dpo(&base, token, &["requests", "notes", &id, "--add", "called back"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dpo(&base, token, &["requests", "notes", &id, "-o", "json"]).await;
    let notes: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    assert_eq!(notes[0]["content"]["content"], "called back");
    assert_eq!(notes[0]["author"]["id"], "privacy");

    // Where the request does not wait, the service refuses with 409: exit code 3, its message shown.
    for args in [vec!["close", id.as_str()], vec!["report", id.as_str()]] {
        let run = dpo(&base, token, &[&["requests"][..], &args].concat()).await;
        assert_eq!(run.code, 3, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains("contentRetrieval (notStarted)"), "{}", run.stderr);
    }
    let run = dpo(&base, token, &["requests", "approve", &id, "--comment", "identity checked"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dpo(&base, token, &["requests", "wait", &id, "--timeout", "60"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("caseResolved (current)"), "{}", run.stdout);
    let run = dpo(&base, token, &["requests", "report", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains(&format!("Subject rights request {id}")), "{}", run.stdout);
    let zip = state.path().join("casey.zip");
    let run = dpo(&base, token, &["requests", "attachment", &id, "--to", &zip.to_string_lossy()]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(std::fs::read(&zip).unwrap().starts_with(b"PK\x03\x04"), "a zip");
    let run = dpo(&base, token, &["requests", "close", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("closed"), "{}", run.stdout);
    let run = dpo(&base, token, &["requests", "get", "not-a-guid"]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let run = dpo(&base, token, &["requests", "create", "--email", "x@y", "--name", "n", "--description", "d"]).await;
    assert_eq!(run.code, 2, "a regulation is required: {}", run.stderr);
    server.close().await.unwrap();
}

#[tokio::test]
async fn a_delete_request_shows_its_estimate_waits_for_another_admin_and_shows_what_it_erased() {
    let state = tempfile::tempdir().unwrap();
    let desk = state.path().join("desk.db");
    rusqlite::Connection::open(&desk)
        .unwrap()
        .execute_batch(
            "CREATE TABLE tickets (id INTEGER PRIMARY KEY, email TEXT, subject TEXT);
             INSERT INTO tickets (email, subject) VALUES ('casey@shop.example', 'refund'), ('casey@shop.example', 'late'),
                                                         ('robin@shop.example', 'hello');",
        )
        .unwrap();
    let sources = state.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[[source]]\nname = \"desk\"\nkind = \"sql\"\nurl = \"sqlite:{0}\"\nerase_url = \"sqlite:{0}\"\n\
             [[source.query]]\nname = \"tickets\"\nsql = \"SELECT id FROM tickets WHERE email = :mail\"\n\
             [[source.erase]]\nname = \"tickets\"\nsql = \"DELETE FROM tickets WHERE email = :mail\"\n",
            desk.display()
        ),
    )
    .unwrap();
    let (server, _) = server_reading(state.path(), Default::default(), Some(sources)).await;
    let base = format!("{}/v1.0", server.base_url());
    let privacy_admin = |user: &str| {
        let mut writer = MintRequest::admin(LOCAL_TENANT);
        writer.user = Some(user.into());
        writer.permissions = vec!["SubjectRightsRequest.ReadWrite.All".into()];
        mint_local(state.path(), &writer).unwrap()
    };
    let (creator, second) = (privacy_admin("privacy"), privacy_admin("second"));
    let create = [
        "requests",
        "create",
        "--type",
        "delete",
        "--email",
        "casey@shop.example",
        "--name",
        "Erase Casey",
        "--description",
        "forget me",
        "--regulation",
        "GDPR",
        "-o",
        "json",
    ];
    let run = dpo(&base, Some(&creator), &create).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let created: serde_json::Value = serde_json::from_str(&run.stdout).expect("JSON");
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["type"], "delete");
    let run = dpo(&base, Some(&creator), &["requests", "wait", &id, "--timeout", "60"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dpo(&base, Some(&creator), &["requests", "get", &id]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("approval (current)"), "{}", run.stdout);
    assert!(run.stdout.contains("estimate, to erase: 2 items") && run.stdout.contains("  desk: 2"), "{}", run.stdout);
    // Its creator may not approve it: refused (exit code 3), with the reason.
    let run = dpo(&base, Some(&creator), &["requests", "approve", &id]).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("must be approved by another administrator"), "{}", run.stderr);
    let run = dpo(&base, Some(&second), &["requests", "approve", &id, "--comment", "checked"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dpo(&base, Some(&creator), &["requests", "wait", &id, "--timeout", "60"]).await;
    assert_eq!(run.code, 0, "{}", run.stderr);
    let run = dpo(&base, Some(&creator), &["requests", "get", &id]).await;
    assert!(run.stdout.contains("erased: 2 items") && run.stdout.contains("caseResolved (current)"), "{}", run.stdout);
    let run = dpo(&base, Some(&creator), &["requests", "report", &id]).await;
    assert!(run.stdout.contains("desk/erase:tickets: 2 rows (estimated 2)"), "{}", run.stdout);
    let left: i64 =
        rusqlite::Connection::open(&desk).unwrap().query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).unwrap();
    assert_eq!(left, 1, "Robin's ticket stays");
    server.close().await.unwrap();
}
