//! Erasure (subject rights requests of type `delete`) when the server running it dies or freezes: a
//! `dpo-server` killed between two erase steps resumes at the first step not recorded after a restart;
//! of three replicas over PostgreSQL, one SIGSTOPped in the middle of a step past its lease runs nothing
//! more once continued, while another finishes the request. Each step's committed runs are counted by a
//! trigger in the source's own database.

use crate::common::{Server, http_with, serve, serve_logged};
use dpo_server::auth::{LOCAL_TENANT, tokens::MintRequest};
use dpo_test_support::postgres_cluster::{count, execute, fresh_database};
use dpo_test_support::requests::{stage_error, stage_status};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

const CASEY: &str = "casey@shop.example";

/// A shop whose second erase step is slow (a third of a second a row, ten rows of Casey's), each step's
/// committed runs written by a statement trigger into `ran`; and a sources file over it.
fn slow_shop(dir: &Path) -> (String, PathBuf) {
    let database = fresh_database().expect("a database in the test cluster");
    let reviews: Vec<String> = (1..=10).map(|i| format!("({i}, '{CASEY}', 'review {i}')")).collect();
    execute(
        &database,
        &format!(
            "CREATE TABLE customers (id INT PRIMARY KEY, email TEXT, name TEXT);
             INSERT INTO customers VALUES (1, '{CASEY}', 'Casey'), (2, 'robin@shop.example', 'Robin');
             CREATE TABLE reviews (id INT PRIMARY KEY, email TEXT, body TEXT);
             INSERT INTO reviews VALUES {}, (11, 'robin@shop.example', 'meh');
             CREATE TABLE notes (id INT PRIMARY KEY, email TEXT, body TEXT);
             INSERT INTO notes VALUES (1, '{CASEY}', 'vip'), (2, 'robin@shop.example', 'new');
             CREATE TABLE ran (step TEXT, at TIMESTAMPTZ DEFAULT clock_timestamp());
             CREATE FUNCTION record_run() RETURNS trigger LANGUAGE plpgsql AS $$
             BEGIN INSERT INTO ran (step) VALUES (TG_ARGV[0]); RETURN NULL; END $$;
             CREATE TRIGGER customers_ran AFTER UPDATE ON customers FOR EACH STATEMENT EXECUTE FUNCTION record_run('customers');
             CREATE TRIGGER reviews_ran AFTER DELETE ON reviews FOR EACH STATEMENT EXECUTE FUNCTION record_run('reviews');
             CREATE TRIGGER notes_ran AFTER DELETE ON notes FOR EACH STATEMENT EXECUTE FUNCTION record_run('notes');",
            reviews.join(", ")
        ),
    )
    .expect("the shop's tables");
    let sources = dir.join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            r#"[[source]]
name = "shop"
kind = "sql"
url = "{database}"
erase_url = "{database}"
[[source.query]]
name = "customers"
sql = "SELECT id, name FROM customers WHERE email = :mail"
[[source.query]]
name = "reviews"
sql = "SELECT id, body FROM reviews WHERE email = :mail"
[[source.query]]
name = "notes"
sql = "SELECT id, body FROM notes WHERE email = :mail"
[[source.erase]]
name = "customers"
sql = "UPDATE customers SET name = NULL, email = 'erased-' || id || '@invalid' WHERE email = :mail"
[[source.erase]]
name = "reviews"
sql = "DELETE FROM reviews WHERE email = :mail AND pg_sleep(0.3) IS NOT NULL"
[[source.erase]]
name = "notes"
sql = "DELETE FROM notes WHERE email = :mail"
"#
        ),
    )
    .unwrap();
    (database, sources)
}

/// A privacy administrator `user` of the local tenant, signed with `state`'s key.
fn privacy_admin(state: &Path, user: &str) -> reqwest::Client {
    let mut request = MintRequest::admin(LOCAL_TENANT);
    request.user = Some(user.into());
    request.permissions = vec!["SubjectRightsRequest.ReadWrite.All".into()];
    http_with(state, &request)
}

/// Reads the request at `url` until `done` (or `seconds` pass).
async fn wait_until(http: &reqwest::Client, url: &str, seconds: u64, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    loop {
        let request: Value = http.get(url).send().await.unwrap().json().await.unwrap();
        if done(&request) {
            return request;
        }
        assert!(Instant::now() < deadline, "the request did not get there: {request}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Creates Casey's erasure through `base`, waits for its estimate and has a second administrator approve
/// it; returns the request's path (`/security/subjectRightsRequests/{id}`).
async fn approved_erasure(state: &Path, base: &str) -> String {
    let creator = privacy_admin(state, "privacy-admin");
    let body = json!({
        "dataSubject": {"email": CASEY}, "dataSubjectType": "customer", "displayName": "Erase Casey",
        "description": "forget me", "regulations": ["GDPR"], "type": "delete"
    });
    let response = creator.post(format!("{base}/security/subjectRightsRequests")).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let path = format!("/security/subjectRightsRequests/{}", created["id"].as_str().unwrap());
    wait_until(&creator, &format!("{base}{path}"), 60, |r| stage_status(r, "approval") == "current").await;
    let second = privacy_admin(state, "second-admin");
    let approved = second.post(format!("{base}{path}/approve")).json(&json!({})).send().await.unwrap();
    assert_eq!(approved.status().as_u16(), 200);
    path
}

/// Waits until the slow step's statement is running in the database (the step before it committed).
async fn in_the_slow_step(database: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let masked = count(database, &format!("SELECT count(*) FROM customers WHERE email = '{CASEY}'")).unwrap() == 0;
        let deleting = count(
            database,
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE 'DELETE FROM reviews%'",
        )
        .unwrap();
        if masked && deleting > 0 {
            return;
        }
        assert!(Instant::now() < deadline, "the slow step never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// How many committed runs each step had, by its table.
fn committed_runs(database: &str) -> Vec<(String, i64)> {
    ["customers", "reviews", "notes"]
        .iter()
        .map(|step| {
            (step.to_string(), count(database, &format!("SELECT count(*) FROM ran WHERE step = '{step}'")).unwrap())
        })
        .collect()
}

/// Casey's rows left, and Robin's.
fn rows_left(database: &str) -> (i64, i64) {
    let casey = count(
        database,
        &format!(
            "SELECT (SELECT count(*) FROM customers WHERE email = '{CASEY}') + (SELECT count(*) FROM reviews WHERE email = \
             '{CASEY}') + (SELECT count(*) FROM notes WHERE email = '{CASEY}')"
        ),
    )
    .unwrap();
    let robin = count(
        database,
        "SELECT (SELECT count(*) FROM customers WHERE name = 'Robin') + (SELECT count(*) FROM reviews WHERE email = \
         'robin@shop.example') + (SELECT count(*) FROM notes WHERE email = 'robin@shop.example')",
    )
    .unwrap();
    (casey, robin)
}

fn runs(list: &[(&str, i64)]) -> Vec<(String, i64)> {
    list.iter().map(|(s, n)| (s.to_string(), *n)).collect()
}

#[tokio::test]
async fn a_server_killed_between_two_erase_steps_resumes_at_the_first_step_not_recorded() {
    let state = tempfile::tempdir().unwrap();
    let (database, sources) = slow_shop(state.path());
    let args = ["--export-workers", "1", "--export-lease", "2", "--sources", &sources.to_string_lossy()];
    let first = serve(state.path(), &args);
    let path = approved_erasure(state.path(), &first.base).await;
    in_the_slow_step(&database).await;
    drop(first); // kill -9, in the middle of the second step
    assert_eq!(committed_runs(&database), runs(&[("customers", 1), ("reviews", 0), ("notes", 0)]));

    let second: Server = serve(state.path(), &args);
    let http = privacy_admin(state.path(), "privacy-admin");
    let url = format!("{}{path}", second.base);
    let done = wait_until(&http, &url, 120, |r| stage_status(r, "generateReport") == "completed").await;
    assert_eq!(stage_status(&done, "contentDeletion"), "completed", "{done}");
    // Every step ran, the first only once (recorded before the kill), none lost; the verification passed.
    assert_eq!(committed_runs(&database), runs(&[("customers", 1), ("reviews", 1), ("notes", 1)]));
    assert_eq!(rows_left(&database), (0, 3));
    let report = http.get(format!("{url}/getFinalReport()")).send().await.unwrap().text().await.unwrap();
    for expected in [
        "shop/erase:customers: 1 rows (estimated 1)",
        "shop/erase:reviews: 10 rows (estimated 10)",
        "shop/erase:notes: 1 rows (estimated 1)",
        "shop: ok, 0 items still found, 0 kept",
    ] {
        assert!(report.contains(expected), "{expected}: {report}");
    }
}

#[tokio::test]
async fn a_replica_frozen_past_its_lease_in_an_erase_step_runs_nothing_more_once_continued() {
    let state = tempfile::tempdir().unwrap();
    let (database, sources) = slow_shop(state.path());
    let store = fresh_database().expect("dpo's own database");
    // The key is made before any replica starts, so that they all find the same one.
    let _ = privacy_admin(state.path(), "privacy-admin");
    let args = [
        "--database",
        store.as_str(),
        "--export-workers",
        "1",
        "--export-lease",
        "2",
        "--sources",
        &sources.to_string_lossy(),
    ];
    let replicas: Vec<Server> = (0..3).map(|_| serve_logged(state.path(), &args)).collect();
    let path = approved_erasure(state.path(), &replicas[0].base).await;
    in_the_slow_step(&database).await;
    // The replica in the slow step: the one that logged starting the request's second operation (the
    // estimate ran as the first), by the time in the line (logs are written in batches).
    let deadline = Instant::now() + Duration::from_secs(10);
    let started = || -> Vec<(String, usize)> {
        let lines = replicas
            .iter()
            .enumerate()
            .flat_map(|(i, r)| r.logged("export started").into_iter().map(move |(_, line)| (line, i)));
        let mut lines: Vec<(String, usize)> = lines.collect();
        lines.sort();
        lines
    };
    while started().len() < 2 {
        assert!(Instant::now() < deadline, "the replicas did not log starting the request's operations");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let erasing = started()[1].1;
    let pid = replicas[erasing].child.id().to_string();
    let signal = |name: &str| {
        assert!(std::process::Command::new("kill").args([name, &pid]).status().unwrap().success());
    };
    signal("-STOP");
    // Another replica claims the request once the lease is over, and waits on the frozen transaction's locks.
    let deadline = Instant::now() + Duration::from_secs(30);
    let took_over = |r: &Server| r.logged("export started").iter().any(|(_, line)| !line.contains("attempt: 1"));
    while !replicas.iter().enumerate().any(|(i, r)| i != erasing && took_over(r)) {
        if Instant::now() > deadline {
            for (i, r) in replicas.iter().enumerate() {
                eprintln!("replica {i} (erasing: {}): {:?}", i == erasing, r.logged(""));
            }
            panic!("no other replica took the request over");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    signal("-CONT");

    let http = privacy_admin(state.path(), "privacy-admin");
    let survivor = replicas.iter().enumerate().find(|(i, _)| *i != erasing).map(|(_, r)| r).unwrap();
    let url = format!("{}{path}", survivor.base);
    let done = wait_until(&http, &url, 120, |r| stage_status(r, "generateReport") == "completed").await;
    assert_eq!(stage_status(&done, "contentDeletion"), "completed", "{done}");
    // The frozen replica's statement was rolled back when it found its lease gone: each step committed once.
    assert_eq!(committed_runs(&database), runs(&[("customers", 1), ("reviews", 1), ("notes", 1)]));
    assert_eq!(rows_left(&database), (0, 3));
    assert!(replicas[erasing].logs("export taken over by another worker").await, "the frozen replica stopped");
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(committed_runs(&database), runs(&[("customers", 1), ("reviews", 1), ("notes", 1)]), "nothing after");
    // The trail says each step once: a step's event is written with its record, under the claim, so the
    // frozen replica, whose record was refused, wrote no event either.
    let mut auditor = MintRequest::admin(LOCAL_TENANT);
    auditor.user = Some("auditor".into());
    auditor.permissions = vec!["AuditLog.Read.All".into()];
    let filter = "activityDisplayName eq 'Erase subject rights request data' and result eq 'success'";
    let query = reqwest::Url::parse_with_params(
        &format!("{}/v1.0/auditLogs/directoryAudits", survivor.base),
        [("$filter", filter), ("$top", "100")],
    )
    .unwrap();
    let page: Value = http_with(state.path(), &auditor).get(query).send().await.unwrap().json().await.unwrap();
    let mut steps: Vec<String> = page["value"]
        .as_array()
        .expect("a page of events")
        .iter()
        .map(|e| e["resultReason"].as_str().unwrap_or_default().split(": ").next().unwrap_or_default().to_string())
        .collect();
    steps.sort();
    assert_eq!(steps, ["shop/erase:customers", "shop/erase:notes", "shop/erase:reviews"], "{page}");
}

#[tokio::test]
async fn an_objects_source_in_an_azure_container_deletes_the_persons_blobs_and_only_theirs() {
    use object_store::{ObjectStoreExt, PutPayload, path::Path as ObjectPath};
    let azurite = crate::common::Azurite::start();
    let azure = azurite.container("crm").await;
    for blob in [format!("people/{CASEY}/contract.pdf"), format!("people/{CASEY}/notes/call 1.txt")] {
        azure.put(&ObjectPath::from(blob), PutPayload::from_static(b"Casey's")).await.unwrap();
    }
    azure
        .put(&ObjectPath::from("people/robin@shop.example/other.txt"), PutPayload::from_static(b"not hers"))
        .await
        .unwrap();
    let state = tempfile::tempdir().unwrap();
    let sources = state.path().join("sources.toml");
    std::fs::write(
        &sources,
        "[[source]]\nname = \"crm\"\nkind = \"objects\"\nurl = \"az://crm/people/{mail}/\"\nerase = true\n",
    )
    .unwrap();
    let server = crate::common::serve_with_env(
        state.path(),
        &["--export-workers", "1", "--sources", &sources.to_string_lossy()],
        &azurite.env(),
    );
    let path = approved_erasure(state.path(), &server.base).await;
    let http = privacy_admin(state.path(), "privacy-admin");
    let url = format!("{}{path}", server.base);
    let done = wait_until(&http, &url, 60, |r| stage_status(r, "generateReport") == "completed").await;
    assert_eq!(done["insight"]["itemCount"], 2, "{done}");
    assert_eq!(azurite.list("crm", "people/").await, ["people/robin@shop.example/other.txt"]);
    let report = http.get(format!("{url}/getFinalReport()")).send().await.unwrap().text().await.unwrap();
    assert!(report.contains("crm/objects: 2 objects (estimated 2)"), "{report}");
    assert!(report.contains("crm: ok, 0 items still found"), "{report}");
}

#[tokio::test]
async fn a_sources_file_changed_after_the_estimate_erases_nothing() {
    let state = tempfile::tempdir().unwrap();
    let (database, sources) = slow_shop(state.path());
    let args = ["--export-workers", "1", "--sources", &sources.to_string_lossy()];
    let first = serve(state.path(), &args);
    let creator = privacy_admin(state.path(), "privacy-admin");
    let body = json!({
        "dataSubject": {"email": CASEY}, "dataSubjectType": "customer", "displayName": "Erase Casey",
        "description": "forget me", "regulations": ["GDPR"], "type": "delete"
    });
    let created: Value = creator
        .post(format!("{}/security/subjectRightsRequests", first.base))
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/security/subjectRightsRequests/{}", created["id"].as_str().unwrap());
    wait_until(&creator, &format!("{}{path}", first.base), 60, |r| stage_status(r, "approval") == "current").await;
    drop(first);
    // Someone widens a statement after the estimate a person is about to approve.
    let file = std::fs::read_to_string(&sources).unwrap();
    std::fs::write(
        &sources,
        file.replace("DELETE FROM notes WHERE email = :mail", "DELETE FROM notes WHERE email = :mail OR body = 'new'"),
    )
    .unwrap();
    let second = serve(state.path(), &args);
    let url = format!("{}{path}", second.base);
    let approved = privacy_admin(state.path(), "second-admin").post(format!("{url}/approve")).json(&json!({}));
    assert_eq!(approved.send().await.unwrap().status().as_u16(), 200);
    let failed = wait_until(&creator, &url, 60, |r| stage_status(r, "contentDeletion") == "failed").await;
    let message = stage_error(&failed, "contentDeletion");
    assert!(message.contains("the sources file changed since the estimate was approved (shop/notes)"), "{message}");
    assert_eq!(committed_runs(&database), runs(&[("customers", 0), ("reviews", 0), ("notes", 0)]), "nothing ran");
    assert_eq!(rows_left(&database), (12, 3));
}
