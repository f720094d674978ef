//! Several `dpo-server` replicas over one PostgreSQL database (a fresh database in the throwaway test
//! cluster, or in `DPO_TEST_DATABASE_URL`'s): they share the export queue, survive the loss of any one of
//! them, cancel an export wherever it runs, hand running exports over on SIGTERM, and migrate a fresh
//! database together.

use crate::common::{Log, Server, serve_logged, sigterm};
use dpo_client::manifest::Manifest;
use dpo_server::{auth::LOCAL_TENANT, export::drive_files::drive_dir, store::postgres::PostgresStore};
use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

/// A state folder several replicas share (token key, drives, local exports), and their database.
struct Shared {
    state: tempfile::TempDir,
    database: String,
    http: reqwest::Client,
}

impl Shared {
    /// Users `(id, size of their one big drive file)`, imported into a fresh database.
    fn new(users: &[(String, usize)]) -> Shared {
        let state = tempfile::tempdir().unwrap();
        let database = dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster");
        let listed: Vec<serde_json::Value> = users
            .iter()
            .map(|(id, _)| serde_json::json!({"id": id, "userPrincipalName": format!("{id}@contoso.example")}))
            .collect();
        crate::common::import_users(state.path(), &serde_json::to_string(&listed).unwrap(), Some(&database));
        for (id, size) in users {
            let drive = drive_dir(&state.path().join("drives"), LOCAL_TENANT, id);
            std::fs::create_dir_all(&drive).unwrap();
            let block: Vec<u8> = (0..*size as u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
            std::fs::write(drive.join("data.bin"), block).unwrap();
            std::fs::write(drive.join("notes.txt"), format!("notes of {id}")).unwrap();
        }
        // The key is made before any replica starts, so that they all find the same one.
        let http = crate::common::admin_http(state.path());
        Shared { state, database, http }
    }

    /// A replica over the shared state and database, logging at `info`.
    fn replica(&self, extra: &[&str]) -> Server {
        serve_logged(self.state.path(), &[&["--database", &self.database], extra].concat())
    }

    /// Where the exports go (under the default local export root).
    fn exports(&self) -> PathBuf {
        self.state.path().join("exports/run")
    }

    fn location(&self) -> String {
        format!("file://{}/", self.exports().display())
    }

    async fn submit(&self, replica: &Server, user: &str) -> String {
        crate::common::submit_export(&self.http, &replica.base, user, &self.location()).await
    }

    async fn operation(&self, replica: &Server, id: &str) -> (u16, serde_json::Value) {
        crate::common::operation(&self.http, &replica.base, id).await
    }

    async fn count(&self, replica: &Server, status: &str) -> u64 {
        let url = format!("{}/v1.0/dataPolicyOperations/$count", replica.base);
        let filter = format!("status eq '{status}'");
        let text = self.http.get(url).query(&[("$filter", filter)]).send().await.unwrap().text().await.unwrap();
        text.trim().parse().unwrap_or_else(|_| panic!("a count: {text}"))
    }

    /// Waits until the operation is running with some progress, as `replica` answers.
    async fn wait_running(&self, replica: &Server, id: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, op) = self.operation(replica, id).await;
            if op["status"] == "running" && op["progress"].as_f64().unwrap_or(0.0) > 0.0 {
                return;
            }
            assert!(op["status"] != "complete", "finished too soon: {op}");
            assert!(Instant::now() < deadline, "never ran: {op}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn wait_final(&self, replica: &Server, id: &str) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let (_, op) = self.operation(replica, id).await;
            if op["status"] == "complete" || op["status"] == "failed" {
                return op;
            }
            assert!(Instant::now() < deadline, "did not finish: {op}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Checks an export folder against its manifest: exactly the listed objects, each once, each with its
/// SHA-256.
fn verify_export(folder: &Path) {
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).expect("a manifest")).unwrap();
    manifest.verify_folder(folder).unwrap_or_else(|e| panic!("{}: {e}", folder.display()));
    let mut listed = BTreeSet::new();
    for object in &manifest.objects {
        assert!(listed.insert(object.path.clone()), "{} listed twice in {}", object.path, folder.display());
    }
    let on_disk: BTreeSet<String> = walkdir::WalkDir::new(folder)
        .into_iter()
        .map(Result::unwrap)
        .filter(|e| e.file_type().is_file())
        .map(|e| e.path().strip_prefix(folder).unwrap().to_string_lossy().into_owned())
        .filter(|p| p != "manifest.json")
        .collect();
    assert_eq!(on_disk, listed, "{} holds exactly what its manifest lists", folder.display());
}

/// The value logged for `key` in a log line (`key: value, ...`).
fn logged_value<'a>(line: &'a str, key: &str) -> Option<&'a str> {
    let start = line.find(&format!("{key}: "))? + key.len() + 2;
    let rest = &line[start..];
    Some(rest[..rest.find([',', ' ']).unwrap_or(rest.len())].trim())
}

/// One run of an export by one replica, from the log: when it started and, if it ended, when.
#[derive(Debug, Clone)]
struct Run {
    replica: usize,
    attempt: u64,
    started: Instant,
    ended: Option<Instant>,
}

/// Every run of every export in the replicas' logs, by operation.
fn runs(logs: &[&Log]) -> BTreeMap<String, Vec<Run>> {
    const ENDS: [&str; 4] = ["export complete", "export cancelled", "export taken over", "export failed"];
    let mut runs: BTreeMap<String, Vec<Run>> = BTreeMap::new();
    for (replica, log) in logs.iter().enumerate() {
        let lines = crate::common::logged(log, "export");
        for (at, line) in &lines {
            let Some(op) = logged_value(line, "operation") else { continue };
            if line.contains("export started") {
                let attempt = logged_value(line, "attempt").and_then(|a| a.parse().ok()).expect("an attempt");
                runs.entry(op.to_string()).or_default().push(Run { replica, attempt, started: *at, ended: None });
            } else if ENDS.iter().any(|end| line.contains(end)) {
                let run = runs
                    .get_mut(op)
                    .and_then(|r| r.iter_mut().rev().find(|r| r.replica == replica && r.ended.is_none()));
                if let Some(run) = run {
                    run.ended = Some(*at);
                }
            }
        }
    }
    runs
}

#[tokio::test]
async fn three_replicas_share_300_exports_and_lose_none_when_one_is_killed() {
    // Thirty users; every tenth has a 16 MiB file, so that some exports take long enough to be cut off.
    let users: Vec<(String, usize)> =
        (0..30).map(|i| (format!("user{i}"), if i % 10 == 0 { 16 << 20 } else { 256 << 10 })).collect();
    let shared = Shared::new(&users);
    let args = ["--export-workers", "2", "--export-lease", "3"];
    let mut replicas: Vec<Option<Server>> = (0..3).map(|_| Some(shared.replica(&args))).collect();
    let (mut ids, mut big) = (Vec::new(), BTreeSet::new());
    // The victim is SIGKILLed in the middle of a big export: while submissions still come in, or after.
    let in_a_big_export = |victim: &Server, big: &BTreeSet<String>| {
        runs(&[&victim.log]).iter().any(|(op, list)| big.contains(op) && list.iter().any(|r| r.ended.is_none()))
    };
    let mut killed: Option<(Log, Instant)> = None;
    let mut kill = |replicas: &mut Vec<Option<Server>>| {
        let victim = replicas[1].take().expect("the victim runs");
        let log = victim.log.clone();
        drop(victim); // kill -9
        killed = Some((log, Instant::now()));
    };
    for i in 0..300 {
        let replica = replicas[i % 3].as_ref().or(replicas[0].as_ref()).unwrap();
        let (user, size) = &users[i % users.len()];
        let id = shared.submit(replica, user).await;
        if *size > 1 << 20 {
            big.insert(id.clone());
        }
        ids.push(id);
        if replicas[1].as_ref().is_some_and(|victim| in_a_big_export(victim, &big)) {
            kill(&mut replicas);
        }
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while replicas[1].is_some() {
        if in_a_big_export(replicas[1].as_ref().unwrap(), &big) {
            kill(&mut replicas);
            break;
        }
        assert!(Instant::now() < deadline, "replica 1 never ran a big export");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (victim_log, killed_at) = killed.expect("the victim was killed");

    let survivor = replicas[0].as_ref().unwrap();
    let deadline = Instant::now() + Duration::from_secs(300);
    while shared.count(survivor, "complete").await + shared.count(survivor, "failed").await < 300 {
        assert!(Instant::now() < deadline, "not every export finished");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert_eq!(shared.count(survivor, "complete").await, 300, "every export completed");
    assert_eq!(shared.count(survivor, "running").await, 0, "none is left running");
    for id in &ids {
        verify_export(&shared.exports().join(id));
    }

    // No export ever ran in two places at once: each run began after the one before it ended (the
    // killed replica's runs end when it was killed).
    let everyone = [&replicas[0].as_ref().unwrap().log, &victim_log, &replicas[2].as_ref().unwrap().log];
    let runs = runs(&everyone);
    assert_eq!(runs.len(), 300, "every export ran");
    let mut taken_over = 0;
    for (op, mut list) in runs {
        list.sort_by_key(|r| r.started);
        for pair in list.windows(2) {
            let before = pair[0].ended.or((pair[0].replica == 1).then_some(killed_at));
            let before = before.unwrap_or_else(|| panic!("{op}: a run on a live replica never ended: {list:?}"));
            assert!(pair[1].started >= before, "{op} ran twice at once: {list:?}");
            assert!(pair[1].attempt > pair[0].attempt, "{op}: every claim is a new attempt: {list:?}");
        }
        if list.len() > 1 {
            taken_over += 1;
        }
        // A run of the killed replica that finished in its last moments may have lost its closing log line
        // (the log is written out every 100 ms, and SIGKILL leaves no time to flush): that its export
        // completed is what the store said above.
        let last = list.last().unwrap();
        assert!(last.ended.is_some() || last.replica == 1, "{op}: its last run ended: {list:?}");
    }
    assert!(taken_over >= 1, "the exports the killed replica was running were taken over");
}

#[tokio::test]
async fn a_delete_on_one_replica_cancels_the_export_running_on_another() {
    let shared = Shared::new(&[("alice".into(), 128 << 20)]);
    let front = shared.replica(&["--export-workers", "0"]);
    let worker = shared.replica(&["--export-workers", "1"]);
    let id = shared.submit(&front, "alice").await;
    shared.wait_running(&front, &id).await;
    let deleted = shared.http.delete(format!("{}/v1.0/dataPolicyOperations/{id}", front.base)).send().await.unwrap();
    assert_eq!(deleted.status().as_u16(), 204);
    let deadline = Instant::now() + Duration::from_secs(30);
    while worker.logged("export cancelled").is_empty() {
        assert!(Instant::now() < deadline, "the worker did not stop the export");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(shared.operation(&worker, &id).await.0, 404, "gone on every replica");
    let folder = shared.exports().join(&id);
    let deadline = Instant::now() + Duration::from_secs(30);
    while folder.exists() {
        assert!(Instant::now() < deadline, "the cancelled export's files were not removed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn sigterm_hands_running_exports_to_another_replica_at_once() {
    let shared = Shared::new(&[("alice".into(), 128 << 20)]);
    // A long lease: only the hand-over can explain a quick resumption.
    let args = ["--export-workers", "1", "--export-lease", "120"];
    let mut leaving = shared.replica(&args);
    let id = shared.submit(&leaving, "alice").await;
    shared.wait_running(&leaving, &id).await;
    let staying = shared.replica(&args);
    let asked = Instant::now();
    sigterm(&leaving);
    let exited = loop {
        if let Some(status) = leaving.child.try_wait().unwrap() {
            break status;
        }
        assert!(asked.elapsed() < Duration::from_secs(20), "the replica did not exit after SIGTERM");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(exited.success(), "a clean exit: {exited}");
    let deadline = asked + Duration::from_secs(30);
    while staying.logged("export started").is_empty() {
        assert!(Instant::now() < deadline, "the other replica did not take the export over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let started = staying.logged("export started");
    assert_eq!(logged_value(&started[0].1, "attempt"), Some("2"), "{}", started[0].1);
    assert_eq!(shared.wait_final(&staying, &id).await["status"], "complete");
    verify_export(&shared.exports().join(&id));
}

#[test]
fn replicas_migrating_a_fresh_database_at_once_all_start() {
    let database = dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster");
    let opened: Vec<_> = std::thread::scope(|s| {
        let starting: Vec<_> = (0..4).map(|_| s.spawn(|| PostgresStore::open(&database, 2).map(|_| ()))).collect();
        starting.into_iter().map(|t| t.join().unwrap()).collect()
    });
    for result in opened {
        result.expect("every replica starts");
    }
    let applied = dpo_test_support::postgres_cluster::execute(
        &database,
        &format!(
            "DO $$ BEGIN IF (SELECT count(*) FROM dpo_migrations) <> {n} THEN RAISE 'not {n} migrations'; END IF; END $$",
            n = dpo_server::store::postgres::MIGRATION_COUNT
        ),
    );
    applied.expect("each migration applied once");
}

#[tokio::test]
async fn every_replica_answers_with_what_another_just_wrote() {
    let shared = Shared::new(&[("alice".into(), 1024)]);
    let (writer, reader) = (shared.replica(&["--export-workers", "0"]), shared.replica(&["--export-workers", "0"]));
    let id = shared.submit(&writer, "alice").await;
    // The reader reads it over and over, so that any memory of reads it kept would hold the old versions.
    for round in 0..100 {
        assert_eq!(shared.operation(&reader, &id).await.0, 200);
        let moved = format!("{}round{round}/", shared.location());
        let patched = shared
            .http
            .patch(format!("{}/v1.0/dataPolicyOperations/{id}", writer.base))
            .json(&serde_json::json!({ "storageLocation": moved }))
            .send()
            .await
            .unwrap();
        assert_eq!(patched.status().as_u16(), 200);
        let written: serde_json::Value = patched.json().await.unwrap();
        let (_, read) = shared.operation(&reader, &id).await;
        assert_eq!(read["@odata.etag"], written["@odata.etag"], "round {round}: the other replica's answer is current");
        assert_eq!(read["storageLocation"], written["storageLocation"]);
    }
}

#[test]
fn a_tenant_at_its_cap_of_running_exports_waits_on_postgresql_too() {
    use dpo_server::store::{JobQueue, OperationRecord, Operations, postgres::PostgresStore};
    let database = dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster");
    let store = PostgresStore::open(&database, 2).expect("the store opens");
    let now = chrono::Utc::now();
    let of = |tenant: &str, age: i64| OperationRecord {
        id: uuid::Uuid::now_v7(),
        tenant_id: tenant.into(),
        user_id: "u".into(),
        status: dpo_api::model::DataPolicyOperationStatus::NotStarted,
        progress: 0.0,
        storage_location: None,
        storage_secret: None,
        submitted_at: chrono::SubsecRound::trunc_subsecs(now - chrono::Duration::seconds(age), 3),
        completed_at: None,
        version: 1,
        failure_reason: None,
        request_id: None,
    };
    let (a1, a2, b1) = (of("a", 30), of("a", 20), of("b", 10));
    for op in [&a1, &a2, &b1] {
        store.insert(op).unwrap();
    }
    let until = now + chrono::Duration::seconds(30);
    let first = store.claim("w", now, until, Some(1)).unwrap().expect("a1");
    assert_eq!(first.operation.id, a1.id);
    assert_eq!(store.claim("w", now, until, Some(1)).unwrap().map(|c| c.operation.id), Some(b1.id));
    assert!(store.claim("w", now, until, Some(1)).unwrap().is_none(), "a2 waits while a1 runs");
    store.complete(&first, now).unwrap();
    assert_eq!(store.claim("w", now, until, Some(1)).unwrap().map(|c| c.operation.id), Some(a2.id));
}

#[tokio::test]
async fn a_database_restart_mid_export_keeps_what_was_written_and_the_export_completes() {
    use crate::common::{Reply, ScriptedHttp};
    use std::os::unix::fs::MetadataExt;
    // A cluster of this test's own: it is stopped and started again under the server.
    let mut cluster = dpo_test_support::postgres_cluster::Cluster::start(false).expect("a cluster");
    let database = dpo_test_support::postgres_cluster::create_database(&cluster.url).expect("a database");
    let state = tempfile::tempdir().unwrap();
    crate::common::import_users(
        state.path(),
        r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#,
        Some(&database),
    );
    let drive = drive_dir(&state.path().join("drives"), LOCAL_TENANT, "alice");
    std::fs::create_dir_all(&drive).unwrap();
    std::fs::write(drive.join("notes.txt"), "alice's notes").unwrap();
    // An API of 40 pages, 100 ms each: the export is inside it when the database goes away.
    let api = ScriptedHttp::start(|request, base| {
        std::thread::sleep(Duration::from_millis(100));
        let n: u64 = request.target.rsplit("page=").next().and_then(|n| n.parse().ok()).unwrap_or(1);
        let next = (n < 40).then(|| format!("{base}/people/alice?page={}", n + 1));
        Reply::json(200, serde_json::json!({"value": [{"n": n}], "@odata.nextLink": next}))
    });
    let sources = state.path().join("sources.toml");
    std::fs::write(
        &sources,
        format!("[[source]]\nname = \"crm\"\nkind = \"http\"\nurl = \"{}/people/{{id}}\"\n", api.base),
    )
    .unwrap();
    let sources = sources.to_string_lossy().into_owned();
    let server = serve_logged(
        state.path(),
        &["--database", &database, "--export-workers", "1", "--export-lease", "5", "--sources", &sources],
    );
    let http = crate::common::admin_http(state.path());
    let exports = state.path().join("exports/out");
    let id =
        crate::common::submit_export(&http, &server.base, "alice", &format!("file://{}/", exports.display())).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.seen().len() < 30 {
        assert!(Instant::now() < deadline, "the API is being read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let written = exports.join(&id).join("drive/notes.txt");
    let inode = std::fs::metadata(&written).expect("the drive file, written first").ino();

    // Down until the source has ended (its file is recorded then) and a little more.
    cluster.stop().expect("the cluster stops");
    let asked = http.get(format!("{}/v1.0/dataPolicyOperations/{id}", server.base)).send().await.unwrap();
    assert_eq!(asked.status().as_u16(), 503, "a request while the database is away");
    assert!(asked.headers().get("retry-after").is_some(), "with Retry-After, which clients and SDKs honour");
    let body: serde_json::Value = asked.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ServiceUnavailable", "{body}");
    while api.seen().len() < 40 {
        assert!(Instant::now() < deadline, "the API is read to its end");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    cluster.start_again().expect("the cluster starts again");

    let deadline = Instant::now() + Duration::from_secs(60);
    let op = loop {
        let (status, op) = crate::common::operation(&http, &server.base, &id).await;
        if status == 200 && (op["status"] == "complete" || op["status"] == "failed") {
            break op;
        }
        assert!(Instant::now() < deadline, "the export did not end: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(op["status"], "complete", "{op}");
    let folder = exports.join(&id);
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).expect("whole");
    assert_eq!(manifest.objects.iter().find(|o| o.path == "crm/crm.jsonl").and_then(|o| o.rows), Some(40));
    assert_eq!(std::fs::metadata(&written).unwrap().ino(), inode, "what was written before the outage stayed");
    assert!(server.logged("export failed").is_empty(), "{:?}", server.logged("export failed"));
    assert!(server.logs("goes back to the queue").await, "the export was handed back");
}

#[tokio::test]
async fn three_replicas_finish_a_request_whose_replica_is_killed_mid_retrieval() {
    let shared = Shared::new(&[("alice".into(), 384 << 20)]);
    let http = crate::common::privacy_admin_http(shared.state.path());
    let args = ["--export-workers", "1", "--export-lease", "2"];
    let mut replicas: Vec<Option<Server>> = (0..3).map(|_| Some(shared.replica(&args))).collect();
    let first = replicas[0].as_ref().unwrap().base.clone();
    let body = serde_json::json!({
        "dataSubject": {"email": "alice@contoso.example"}, "dataSubjectType": "currentEmployee",
        "displayName": "Alice", "description": "a copy", "regulations": ["GDPR"], "type": "access",
        "pauseAfterEstimate": false
    });
    let response = http.post(format!("{first}/security/subjectRightsRequests")).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: serde_json::Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let stage = |request: &serde_json::Value, name: &str| {
        let stages = request["stages"].as_array().cloned().unwrap_or_default();
        stages.iter().find(|s| s["stage"] == name).map(|s| s["status"].as_str().unwrap_or_default().to_string())
    };
    // Wait until the retrieval runs, then kill -9 the replica running it.
    let url = format!("{first}/security/subjectRightsRequests/{id}");
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        if stage(&request, "contentRetrieval").as_deref() == Some("current") {
            break;
        }
        assert!(stage(&request, "contentRetrieval").as_deref() != Some("completed"), "finished too soon");
        assert!(Instant::now() < deadline, "the retrieval never started: {request}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The log is written asynchronously: the line may come a little after the work began.
    let deadline = Instant::now() + Duration::from_secs(10);
    let running = loop {
        let found = replicas.iter().position(|r| r.as_ref().is_some_and(|r| !r.logged("export started").is_empty()));
        if let Some(found) = found {
            break found;
        }
        assert!(Instant::now() < deadline, "no replica logged running the request");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    drop(replicas[running].take()); // kill -9
    let survivor = replicas.iter().flatten().next().unwrap();
    let url = format!("{}/security/subjectRightsRequests/{id}", survivor.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    let done = loop {
        let request: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        if stage(&request, "generateReport").as_deref() == Some("completed") {
            break request;
        }
        assert!(Instant::now() < deadline, "no other replica finished the request: {request}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(stage(&done, "contentRetrieval").as_deref(), Some("completed"));
    let took_over: Vec<String> =
        replicas.iter().flatten().flat_map(|r| r.logged("export started")).map(|(_, line)| line).collect();
    assert!(
        took_over.iter().any(|line| logged_value(line, "attempt").is_some_and(|a| a != "1")),
        "another replica claimed it again: {took_over:?}"
    );
    let folder = shared.state.path().join("requests").join(&id);
    verify_export(&folder);
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let drive = manifest.objects.iter().find(|o| o.path == "drive/data.bin").expect("the drive file");
    assert_eq!(drive.size, 384 << 20);
}
