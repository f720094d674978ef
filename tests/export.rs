//! The export engine end to end: real server, real SQLite, real Azurite, real SAS URLs.

use crate::common::{Options, TestServer, submit_to};
use dpo_client::manifest::Manifest;
use dpo_test_support::azurite::Azurite;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::{collections::BTreeSet, time::Duration};

/// Gives user `alice` a drive (nested folders, a name with a space, a file larger than one upload block)
/// and `n` activity records.
fn give_alice_data(server: &TestServer, activities: usize) -> u64 {
    let drive = server.drive("alice");
    std::fs::create_dir_all(drive.join("Documents/Tax returns")).unwrap();
    std::fs::create_dir_all(drive.join("Pictures")).unwrap();
    std::fs::write(drive.join("Documents/Tax returns/2025 final.pdf"), vec![7u8; 300_000]).unwrap();
    let big: Vec<u8> = (0..9_500_000u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(drive.join("Pictures/holiday.mov"), &big).unwrap();
    std::fs::write(drive.join("todo.txt"), b"export my data\n").unwrap();
    let records: Vec<_> = (0..activities)
        .map(|i| dpo_server::store::ActivityRecord {
            user_id: "alice".into(),
            occurred_at: chrono::Utc::now() - chrono::Duration::minutes(i as i64),
            kind: "signIn".into(),
            detail: serde_json::json!({ "n": i }),
        })
        .collect();
    server.store.directory.add_activities(crate::common::TENANT, &records).unwrap();
    300_000 + big.len() as u64 + 15
}

async fn wait_final(server: &TestServer, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (_, op) = crate::common::get_json(server, &format!("/dataPolicyOperations/{id}")).await;
        if op["status"] == "complete" || op["status"] == "failed" {
            return op;
        }
        assert!(std::time::Instant::now() < deadline, "export did not finish: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Lists the export, downloads every object and checks it against the manifest; returns the manifest.
async fn verify_export(azurite: &Azurite, container: &str, folder: &str) -> Manifest {
    let blobs: BTreeSet<String> = azurite.list(container, folder).await.into_iter().collect();
    let manifest =
        Manifest::parse(&azurite.download(container, &format!("{folder}/manifest.json")).await).expect("a manifest");
    let mut listed: BTreeSet<String> = manifest.objects.iter().map(|o| format!("{folder}/{}", o.path)).collect();
    listed.insert(format!("{folder}/manifest.json"));
    assert_eq!(blobs, listed, "the container holds exactly what the manifest lists");
    for object in &manifest.objects {
        let bytes = azurite.download(container, &format!("{folder}/{}", object.path)).await;
        object.check(bytes.len() as u64, &hex::encode(Sha256::digest(&bytes))).expect("the object is as listed");
    }
    manifest
}

/// Azurite with an `exports` container, a proxy in front of it that fails every `every`th request (0: none)
/// after waiting `delay`, and a server with `workers` export workers that may use the proxy; alice has data.
struct ThroughProxy {
    azurite: Azurite,
    proxy: crate::common::flaky::FlakyProxy,
    server: TestServer,
    /// A SAS URL of the container, through the proxy.
    location: String,
}

async fn through_proxy(every: u64, delay: Duration, workers: usize, activities: usize) -> ThroughProxy {
    let azurite = Azurite::start();
    azurite.create_container("exports").await;
    let proxy = crate::common::flaky::FlakyProxy::start_with_delay(&azurite.host, every, delay).await;
    let server = TestServer::start_with(Options {
        retry_after: 1,
        workers,
        emulator_hosts: vec![proxy.host.clone()],
        ..Options::default()
    })
    .await;
    give_alice_data(&server, activities);
    let location = format!(
        "http://{}/{}/exports?{}",
        proxy.host,
        dpo_test_support::azurite::ACCOUNT,
        azurite.sas("rwdl", "2099-01-01T00:00:00Z")
    );
    ThroughProxy { azurite, proxy, server, location }
}

#[tokio::test]
async fn an_export_to_azurite_writes_every_object_and_a_manifest_that_verifies() {
    let azurite = Azurite::start();
    azurite.create_container("exports").await;
    let server = TestServer::start_with(Options {
        retry_after: 1,
        workers: 2,
        emulator_hosts: vec![azurite.host.clone()],
        ..Options::default()
    })
    .await;
    let drive_bytes = give_alice_data(&server, 2500);
    let location =
        format!("{}/exports/gdpr/requests?{}", azurite.account_url(), azurite.sas("rwl", "2099-01-01T00:00:00Z"));

    // Through the generated client, waiting as Retry-After says.
    let client = server.client_at(&server.url("/v1.0"));
    let accepted = client
        .users_user_export_personal_data(
            "alice@contoso.example",
            &dpo_client::types::UsersUserExportPersonalDataBody { storage_location: Some(location) },
        )
        .await
        .unwrap();
    let id = dpo_client::operation_id_from_location(&accepted).unwrap();
    let done = client.wait_for_operation(&id, &dpo_client::WaitOptions::default()).await.unwrap();
    assert_eq!(dpo_client::waiting::status_of(&done).map(|s| s.to_string()).as_deref(), Some("complete"), "{done:?}");
    assert!(done.completed_date_time.is_some());
    let (_, op) = crate::common::get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(op["progress"], 100.0);
    assert!(op["storageLocation"].as_str().unwrap().contains("sig=REDACTED"), "{op}");

    let folder = format!("gdpr/requests/{id}");
    let manifest = verify_export(&azurite, "exports", &folder).await;
    assert_eq!(manifest.operation_id, id);
    assert_eq!(manifest.user_id, "alice");
    let paths: Vec<&str> = manifest.objects.iter().map(|o| o.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "profile.json",
            "drive/Documents/Tax returns/2025 final.pdf",
            "drive/Pictures/holiday.mov",
            "drive/todo.txt",
            "activity.jsonl",
            "index.html"
        ]
    );
    let drive_total: u64 = manifest.objects.iter().filter(|o| o.path.starts_with("drive/")).map(|o| o.size).sum();
    assert_eq!(drive_total, drive_bytes);
    let activity = azurite.download("exports", &format!("{folder}/activity.jsonl")).await;
    let lines: Vec<Value> =
        activity.split(|b| *b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice(l).unwrap()).collect();
    assert_eq!(lines.len(), 2500);
    assert_eq!(lines[0]["kind"], "signIn");
    let profile: Value =
        serde_json::from_slice(&azurite.download("exports", &format!("{folder}/profile.json")).await).unwrap();
    assert_eq!(profile["userPrincipalName"], "alice@contoso.example");
    server.stop().await;
}

#[tokio::test]
async fn a_sas_that_expires_before_the_export_runs_fails_the_operation_with_a_clear_reason() {
    let azurite = Azurite::start();
    azurite.create_container("exports").await;
    // Accept the export on a server that runs none, with a SAS valid for two more seconds.
    let options =
        Options { retry_after: 1, workers: 0, emulator_hosts: vec![azurite.host.clone()], ..Options::default() };
    let server = TestServer::start_with(options.clone()).await;
    give_alice_data(&server, 10);
    let expiry = (chrono::Utc::now() + chrono::Duration::seconds(2)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let id = submit_to(&server, "alice", &format!("{}/exports?{}", azurite.account_url(), azurite.sas("rwl", &expiry)))
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    // A server with workers picks it up after the SAS expired.
    let server = server.restart_with(Options { workers: 1, ..options }).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    assert!(op["completedDateTime"].is_string());
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("expired"), "{reason}");
    assert!(azurite.list("exports", &id).await.is_empty(), "nothing was written");
    server.stop().await;
}

#[tokio::test]
async fn a_revoked_sas_fails_the_operation_and_no_manifest_is_written() {
    let azurite = Azurite::start();
    azurite.create_container("exports").await;
    let server = TestServer::start_with(Options {
        retry_after: 1,
        workers: 1,
        emulator_hosts: vec![azurite.host.clone()],
        ..Options::default()
    })
    .await;
    give_alice_data(&server, 10);
    let location = format!("{}/exports?{}", azurite.account_url(), azurite.revoked_sas("rwl", "2099-01-01T00:00:00Z"));
    let id = submit_to(&server, "alice", &location).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("SAS"), "{reason}");
    assert!(
        !reason.contains(&location[location.find("sig=").unwrap() + 4..]),
        "the signature is not repeated: {reason}"
    );
    assert!(!azurite.list("exports", &id).await.iter().any(|b| b.ends_with("manifest.json")));
    server.stop().await;
}

#[tokio::test]
async fn an_export_through_a_storage_endpoint_that_fails_some_requests_still_completes_whole() {
    let ThroughProxy { azurite, proxy: flaky, server, location } = through_proxy(3, Duration::ZERO, 1, 1200).await;
    let id = submit_to(&server, "alice", &location).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "complete", "{op}");
    assert!(flaky.failed() > 0, "the proxy did fail some requests");
    verify_export(&azurite, "exports", &id).await;
    server.stop().await;
}

#[tokio::test]
async fn many_small_files_are_written_several_at_once() {
    // Every storage request takes 150 ms: one file after another, 24 files would take 3.6 s or more.
    let ThroughProxy { azurite, proxy, server, location } = through_proxy(0, Duration::from_millis(150), 1, 10).await;
    let folder = server.drive("alice").join("Notes");
    std::fs::create_dir_all(&folder).unwrap();
    for i in 0..24 {
        std::fs::write(folder.join(format!("note-{i:02}.txt")), format!("note {i}\n").repeat(1000)).unwrap();
    }
    let id = submit_to(&server, "alice", &location).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "complete", "{op}");
    let peak = proxy.peak_in_flight();
    assert!(peak >= 4, "small files go several at once: at most {peak} requests were in flight");
    assert!(peak <= 12, "and boundedly so: {peak} requests were in flight at once");
    let manifest = verify_export(&azurite, "exports", &id).await;
    let notes: Vec<&str> =
        manifest.objects.iter().map(|o| o.path.as_str()).filter(|p| p.starts_with("drive/Notes/")).collect();
    let expected: Vec<String> = (0..24).map(|i| format!("drive/Notes/note-{i:02}.txt")).collect();
    assert_eq!(notes, expected, "every note, listed in order");
    server.stop().await;
}

#[tokio::test]
async fn storage_locations_outside_the_policy_are_refused_before_202() {
    let server = TestServer::start_with(Options { workers: 1, ..Options::default() }).await;
    let http = server.http();
    for location in [
        "http://127.0.0.1:9/devstoreaccount1/c?sv=1&sp=w&se=2099-01-01T00:00:00Z&sig=x",
        "https://metadata.internal/c?sv=1&sp=w&se=2099-01-01T00:00:00Z&sig=x",
        "https://acct.blob.core.windows.net/c?sv=1&sp=r&se=2099-01-01T00:00:00Z&sig=x",
        "https://acct.blob.core.windows.net/c?sv=1&sp=w&se=2001-01-01T00:00:00Z&sig=x",
        "file:///etc",
    ] {
        let response = http
            .post(server.url("/users/alice/exportPersonalData"))
            .json(&serde_json::json!({ "storageLocation": location }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{location}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["target"], "storageLocation", "{location}");
    }
    let count = crate::common::count(&server, "/dataPolicyOperations/$count").await;
    assert_eq!(count, "0");
    server.stop().await;
}

/// Waits until the operation is running with some progress, and returns it.
async fn wait_running(server: &TestServer, id: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let (_, op) = crate::common::get_json(server, &format!("/dataPolicyOperations/{id}")).await;
        if op["status"] == "running" && op["progress"].as_f64().unwrap_or(0.0) > 0.0 {
            return op;
        }
        assert!(op["status"] != "complete" && op["status"] != "failed", "finished before it could be observed: {op}");
        assert!(std::time::Instant::now() < deadline, "export never ran: {op}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn progress_is_reported_while_running_and_deleting_a_running_export_stops_it() {
    let ThroughProxy { azurite, proxy: _slow, server, location } =
        through_proxy(0, Duration::from_millis(400), 1, 100).await;
    let id = submit_to(&server, "alice", &location).await;
    let running = wait_running(&server, &id).await;
    let progress = running["progress"].as_f64().unwrap();
    assert!(progress > 0.0 && progress < 100.0, "{running}");
    assert!(running["completedDateTime"].is_null());

    let deleted = server.http().delete(server.url(&format!("/dataPolicyOperations/{id}"))).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    // The job notices at its next progress write, stops, and removes what it had written (the SAS grants
    // delete): no manifest appears, and no partial copy of the person's data stays behind.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let written = azurite.list("exports", &id).await;
        assert!(!written.iter().any(|b| b.ends_with("manifest.json")), "{written:?}");
        if written.is_empty() {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "left behind after the cancel: {written:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = crate::common::get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test]
async fn a_slow_export_does_not_hold_up_another_one() {
    let azurite = Azurite::start();
    azurite.create_container("exports").await;
    let slow = crate::common::flaky::FlakyProxy::start_with_delay(&azurite.host, 0, Duration::from_millis(400)).await;
    let server = TestServer::start_with(Options {
        retry_after: 1,
        workers: 2,
        emulator_hosts: vec![slow.host.clone(), azurite.host.clone()],
        ..Options::default()
    })
    .await;
    give_alice_data(&server, 100);
    let sas = azurite.sas("rwl", "2099-01-01T00:00:00Z");
    let slow_id = submit_to(
        &server,
        "alice",
        &format!("http://{}/{}/exports?{sas}", slow.host, dpo_test_support::azurite::ACCOUNT),
    )
    .await;
    wait_running(&server, &slow_id).await;
    let fast_id = submit_to(&server, "bob", &format!("{}/exports?{sas}", azurite.account_url())).await;
    let fast = wait_final(&server, &fast_id).await;
    assert_eq!(fast["status"], "complete", "{fast}");
    let (_, slow_now) = crate::common::get_json(&server, &format!("/dataPolicyOperations/{slow_id}")).await;
    assert_eq!(slow_now["status"], "running", "the slow one is still going: {slow_now}");
    let slow_done = wait_final(&server, &slow_id).await;
    assert_eq!(slow_done["status"], "complete");
    verify_export(&azurite, "exports", &slow_id).await;
    server.stop().await;
}

#[tokio::test]
async fn an_export_interrupted_by_a_server_stop_resumes_and_ends_complete_and_whole() {
    let ThroughProxy { azurite, proxy: _slow, server, location } =
        through_proxy(0, Duration::from_millis(300), 1, 100).await;
    let options = server.options.clone();
    let id = submit_to(&server, "alice", &location).await;
    wait_running(&server, &id).await;
    // Stop once a drive file is whole in the target, before the export ends.
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let done_before = loop {
        let done = server.store.ledger.exported(uuid).unwrap();
        if !done.is_empty() {
            break done;
        }
        assert!(std::time::Instant::now() < deadline, "no drive file was written in a minute");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut etags_before = Vec::new();
    for object in &done_before {
        etags_before.push(azurite.etag("exports", &format!("{id}/{}", object.path)).await);
    }
    // The database still says `running`, as after a crash.
    let server = server.restart_with(Options { workers: 0, ..options.clone() }).await;
    let (_, op) = crate::common::get_json(&server, &format!("/dataPolicyOperations/{id}")).await;
    assert_eq!(op["status"], "running", "{op}");
    let server = server.restart_with(options).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "complete", "{op}");
    assert_eq!(op["progress"], 100.0);
    let manifest = verify_export(&azurite, "exports", &id).await;
    assert_eq!(manifest.objects.len(), 6, "profile, 3 drive files, activity, the page: {manifest:?}");
    // What the first run wrote whole was not written again.
    for (object, before) in done_before.iter().zip(etags_before) {
        assert_eq!(
            azurite.etag("exports", &format!("{id}/{}", object.path)).await,
            before,
            "{} rewritten",
            object.path
        );
    }
    server.stop().await;
}

/// A `file:` storage location for `folder`.
fn file_url(folder: &std::path::Path) -> String {
    url::Url::from_directory_path(folder).unwrap().to_string()
}

/// Checks a local export folder against its manifest: every object listed, hashed as listed, nothing else.
fn verify_local_export(folder: &std::path::Path) -> Manifest {
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).expect("a manifest");
    manifest.verify_folder(folder).expect("every object is as listed");
    let mut listed: BTreeSet<String> = BTreeSet::from(["manifest.json".to_string()]);
    listed.extend(manifest.objects.iter().map(|o| o.path.clone()));
    let on_disk: BTreeSet<String> = walkdir::WalkDir::new(folder)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(folder).unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(on_disk, listed, "the folder holds exactly what the manifest lists");
    manifest
}

#[tokio::test]
async fn a_resumed_export_writes_again_an_object_changed_in_the_target_and_clears_crash_leftovers() {
    let options = Options { retry_after: 1, workers: 1, ..Options::default() };
    let server = TestServer::start_with(options.clone()).await;
    give_alice_data(&server, 10);
    let folder = server.state.path().join("exports/alice");
    let id = submit_to(&server, "alice", &file_url(&folder)).await;
    assert_eq!(wait_final(&server, &id).await["status"], "complete");
    // As a crash would leave it: the operation still running, no manifest yet, a staged upload cut off,
    // and (by someone else) one finished object altered in the target with its size kept.
    let export = folder.join(&id);
    std::fs::remove_file(export.join("manifest.json")).unwrap();
    std::fs::write(export.join("drive/Pictures/holiday.mov#1"), b"half an upload").unwrap();
    let altered = export.join("drive/todo.txt");
    let original = std::fs::read(&altered).unwrap();
    std::fs::write(&altered, original.to_ascii_uppercase()).unwrap();
    let server = server.restart_with(Options { workers: 0, ..options.clone() }).await;
    let uuid = uuid::Uuid::parse_str(&id).unwrap();
    let mut op = server.store.operations.get(uuid).unwrap().unwrap();
    op.status = dpo_api::model::DataPolicyOperationStatus::Running;
    op.progress = 50.0;
    op.completed_at = None;
    op.version += 1;
    server.store.operations.replace(&op).unwrap();
    let unchanged_before = std::fs::metadata(export.join("drive/Pictures/holiday.mov")).unwrap().modified().unwrap();

    let server = server.restart_with(options).await;
    assert_eq!(wait_final(&server, &id).await["status"], "complete");
    verify_local_export(&export);
    assert_eq!(std::fs::read(&altered).unwrap(), original, "the altered object was written again");
    let unchanged_after = std::fs::metadata(export.join("drive/Pictures/holiday.mov")).unwrap().modified().unwrap();
    assert_eq!(unchanged_before, unchanged_after, "the untouched object was not written again");
    server.stop().await;
}

#[tokio::test]
async fn a_failed_export_says_why_and_leaves_no_partial_personal_data_behind() {
    let server = TestServer::start_with(Options { retry_after: 1, workers: 1, ..Options::default() }).await;
    give_alice_data(&server, 10);
    // An activity record that cannot be read back: the export fails after the profile and the drive.
    server.raw_sql(&format!(
        "INSERT INTO activities (tenant_id, user_id, occurred_at, kind, detail) \
         VALUES ('{}', 'alice', '2026-01-01T00:00:00.000Z', 'signIn', 'not json')",
        crate::common::TENANT
    ));
    let folder = server.state.path().join("exports/alice");
    let id = submit_to(&server, "alice", &file_url(&folder)).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("corrupt"), "{reason}");
    assert!(!folder.join(&id).exists(), "the profile and drive files written before the failure are gone");
    server.stop().await;
}

#[tokio::test]
async fn no_storage_request_follows_a_redirect_with_the_sas() {
    let redirector = crate::common::redirect::Redirector::start().await;
    let server = TestServer::start_with(Options {
        retry_after: 1,
        workers: 1,
        emulator_hosts: vec![redirector.host.clone()],
        ..Options::default()
    })
    .await;
    give_alice_data(&server, 10);
    // A SAS that may list, so that the clean-up after the failure lists the folder (and deletes what it finds).
    let location = format!(
        "http://{}/{}/exports?sv=2023-11-03&sp=rwdl&se=2099-01-01T00:00:00Z&sr=c&sig=REDIRECTEDsecret",
        redirector.host,
        dpo_test_support::azurite::ACCOUNT
    );
    let id = submit_to(&server, "alice", &location).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("307"), "the redirect is the reason: {reason}");
    assert_eq!(redirector.received_elsewhere(), Vec::<String>::new(), "nothing reached the other host");
    server.stop().await;
}

/// A tmpfs of `megabytes` mounted on `folder` (the tests run as root), unmounted when dropped.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(folder: &std::path::Path, megabytes: u32) -> SmallDisk {
        std::fs::create_dir_all(folder).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={megabytes}m"), "tmpfs"])
            .arg(folder)
            .status()
            .expect("mount runs");
        assert!(status.success(), "mounting a tmpfs on {} (the tests run as root)", folder.display());
        SmallDisk(folder.to_path_buf())
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg("-l").arg(&self.0).status();
    }
}

#[tokio::test]
async fn an_export_onto_a_full_disk_fails_with_the_reason_and_leaves_nothing_behind() {
    let server = TestServer::start_with(Options { retry_after: 1, workers: 1, ..Options::default() }).await;
    give_alice_data(&server, 10);
    // Room for the profile and the small files, not for the 9.5 MB video.
    let disk = SmallDisk::mount(&server.state.path().join("exports/full"), 4);
    let id = submit_to(&server, "alice", &file_url(&disk.0)).await;
    let op = wait_final(&server, &id).await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("No space left on device"), "{reason}");
    let left: Vec<_> = walkdir::WalkDir::new(&disk.0).into_iter().map(Result::unwrap).skip(1).collect();
    assert!(left.is_empty(), "nothing of the person's data stays on the disk: {left:?}");
    server.stop().await;
}
