//! The audit trail through the real binary: every submission (accepted or refused), change and
//! cancellation, and every call refused as another tenant's, recorded with who, whose, where and the
//! request-id; then the hash chain edited, deleted from and truncated directly in SQLite and PostgreSQL,
//! and `dpo-server audit verify` naming the first bad event.

use crate::common::{admin_http, http_with, import_users, serve, serve_logged};
use dpo_server::auth::{LOCAL_TENANT, USER_EXPORT_ALL, tokens::MintRequest};
use dpo_test_support::postgres_cluster::fresh_database;
use serde_json::json;
use std::{path::Path, process::Command};

/// `dpo-server audit <args>`: whether it succeeded, and what it printed.
fn audit(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dpo-server")).arg("audit").args(args).output().expect("it runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

/// Makes the calls that must be recorded against the server at `base`; returns the export's id and
/// the request-id of its submission.
async fn audited_calls(state: &Path, base: &str) -> (String, String) {
    let admin = admin_http(state);
    let location = format!("file://{}/", state.join("exports/out").display());
    // 1: an export, accepted.
    let accepted = admin
        .post(format!("{base}/v1.0/users/alice/exportPersonalData"))
        .json(&json!({ "storageLocation": location }))
        .send()
        .await
        .unwrap();
    assert_eq!(accepted.status(), 202);
    let request_id = accepted.headers()["request-id"].to_str().unwrap().to_string();
    let id = accepted.headers()["location"].to_str().unwrap().rsplit('/').next().unwrap().to_string();
    // 2: an export refused: a user without the administrator role.
    let mut plain = MintRequest::admin(LOCAL_TENANT);
    (plain.user, plain.admin, plain.permissions) = (Some("mallory".into()), false, vec![USER_EXPORT_ALL.into()]);
    let refused = http_with(state, &plain)
        .post(format!("{base}/v1.0/users/alice/exportPersonalData"))
        .json(&json!({ "storageLocation": location }))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    // 3: a change (PATCH with no real change still counts as a call on the operation).
    let patched = admin.patch(format!("{base}/v1.0/dataPolicyOperations/{id}")).json(&json!({})).send().await.unwrap();
    assert!(patched.status().is_success(), "{}", patched.status());
    // 4: another tenant's administrator reads alice's operation: told it does not exist.
    let other = http_with(state, &MintRequest::admin("11111111-2222-3333-4444-555555555555"));
    let read = other.get(format!("{base}/v1.0/dataPolicyOperations/{id}")).send().await.unwrap();
    assert_eq!(read.status(), 404, "another tenant's operation does not exist for it");
    // 5: a cancellation.
    let cancelled = admin.delete(format!("{base}/v1.0/dataPolicyOperations/{id}")).send().await.unwrap();
    assert_eq!(cancelled.status(), 204);
    (id, request_id)
}

/// An audit event as the test reads it back from the table.
#[derive(Debug)]
struct Recorded {
    activity: String,
    actor: String,
    result: String,
    user: Option<String>,
    operation: Option<String>,
    request_id: String,
    reason: Option<String>,
    tenant: String,
}

/// What `audit head` prints for the local tenant: its head hash.
fn head(store: &[&str]) -> String {
    let (ok, out) = audit(&[&["head", "--tenant", LOCAL_TENANT], store].concat());
    assert!(ok, "{out}");
    out.split_whitespace().nth(1).expect("a hash").to_string()
}

#[tokio::test]
async fn every_export_change_and_refusal_is_recorded_and_tampering_in_sqlite_is_found() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let server = serve(state.path(), &["--export-workers", "0"]);
    let (id, request_id) = audited_calls(state.path(), &server.base).await;
    drop(server);
    let dir = state.path().to_string_lossy().to_string();
    let store = ["--state-dir", dir.as_str()];

    let (ok, out) = audit(&[&["verify"], &store[..]].concat());
    assert!(ok, "{out}");
    assert!(out.contains(&format!("{LOCAL_TENANT}: 5 events, intact")), "{out}");
    assert!(!out.contains("11111111-2222-3333-4444-555555555555"), "the refused reader's own trail has nothing: {out}");

    // What was recorded, read back directly.
    let db = rusqlite::Connection::open(state.path().join(dpo_server::store::sqlite::DATABASE_FILE)).unwrap();
    let rows: Vec<Recorded> = db
        .prepare(
            "SELECT activity, actor_kind || ':' || actor_id, result, target_user, operation_id, request_id, reason, \
             tenant_id FROM audit_events ORDER BY tenant_id, seq",
        )
        .unwrap()
        .query_map([], |r| {
            Ok(Recorded {
                activity: r.get(0)?,
                actor: r.get(1)?,
                result: r.get(2)?,
                user: r.get(3)?,
                operation: r.get(4)?,
                request_id: r.get(5)?,
                reason: r.get(6)?,
                tenant: r.get(7)?,
            })
        })
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert!(rows.iter().all(|r| r.tenant == LOCAL_TENANT));
    // The refused read of another tenant's caller is the owner's to know, recorded off the request's path
    // (so its place among the others may vary).
    let (other, local): (Vec<_>, Vec<_>) = rows.into_iter().partition(|r| r.activity == "Read data policy operation");
    let activities: Vec<(&str, &str, &str)> =
        local.iter().map(|r| (r.activity.as_str(), r.actor.as_str(), r.result.as_str())).collect();
    assert_eq!(
        activities,
        [
            ("Export personal data", "user:local-admin", "success"),
            ("Export personal data", "user:mallory", "failure"),
            ("Update data policy operation", "user:local-admin", "success"),
            ("Cancel data policy operation", "user:local-admin", "success"),
        ]
    );
    assert_eq!((local[0].user.as_deref(), local[0].operation.as_deref()), (Some("alice"), Some(id.as_str())));
    assert_eq!(local[0].request_id, request_id, "the submission's request-id");
    assert!(local[1].reason.as_deref().unwrap().contains("company administrator"), "{:?}", local[1]);
    assert_eq!((other.len(), other[0].result.as_str()), (1, "failure"));
    let reason = other[0].reason.as_deref().unwrap();
    assert!(reason.contains("the caller to another") && reason.contains("11111111-2222"), "{:?}", other[0]);
    assert_eq!(other[0].operation.as_deref(), Some(id.as_str()));

    let anchored = head(&store);
    // A head in upper case is the same head; a tenant this store has no chain of is no intact chain.
    let upper = anchored.to_ascii_uppercase();
    assert!(audit(&[&["verify", "--tenant", LOCAL_TENANT, "--head", &upper], &store[..]].concat()).0);
    let (ok, out) = audit(&[&["verify", "--tenant", "no-such-tenant"], &store[..]].concat());
    assert!(!ok && out.contains("no audit events"), "{out}");
    let (ok, out) = audit(&[&["verify", "--tenant", LOCAL_TENANT, "--head", "3f5c"], &store[..]].concat());
    assert!(!ok && out.contains("64 hexadecimal digits"), "{out}");
    // An edited event is named.
    db.execute("UPDATE audit_events SET actor_id = 'someone-else' WHERE tenant_id = ?1 AND seq = 1", [LOCAL_TENANT])
        .unwrap();
    let (ok, out) = audit(&[&["verify"], &store[..]].concat());
    assert!(!ok && out.contains("event 1") && out.contains("was changed"), "{out}");
    db.execute("UPDATE audit_events SET actor_id = 'local-admin' WHERE tenant_id = ?1 AND seq = 1", [LOCAL_TENANT])
        .unwrap();
    assert!(audit(&[&["verify"], &store[..]].concat()).0, "restored, it holds again");
    // A deleted event is named.
    db.execute("DELETE FROM audit_events WHERE tenant_id = ?1 AND seq = 2", [LOCAL_TENANT]).unwrap();
    let (ok, out) = audit(&[&["verify"], &store[..]].concat());
    assert!(!ok && out.contains("event 2 is missing"), "{out}");
    // A cut tail holds as a chain, but not against the head anchored before.
    db.execute("DELETE FROM audit_events WHERE tenant_id = ?1 AND seq >= 2", [LOCAL_TENANT]).unwrap();
    let (ok, out) = audit(&[&["verify", "--tenant", LOCAL_TENANT], &store[..]].concat());
    assert!(ok, "a chain of one event is intact: {out}");
    let (ok, out) = audit(&[&["verify", "--tenant", LOCAL_TENANT, "--head", &anchored], &store[..]].concat());
    assert!(!ok && out.contains("cut off"), "{out}");
}

#[tokio::test]
async fn the_chain_holds_in_postgresql_and_tampering_there_is_found() {
    let database = fresh_database().expect("a database in the test cluster");
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, Some(&database));
    let server = serve(state.path(), &["--export-workers", "0", "--database", &database]);
    audited_calls(state.path(), &server.base).await;
    drop(server);
    let store = ["--database", database.as_str()];
    let (ok, out) = audit(&[&["verify"], &store[..]].concat());
    assert!(ok && out.contains(&format!("{LOCAL_TENANT}: 5 events, intact")), "{out}");
    let anchored = head(&store);

    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    client
        .execute("UPDATE audit_events SET target_user = 'bob' WHERE tenant_id = $1 AND seq = 3", &[&LOCAL_TENANT])
        .await
        .unwrap();
    let (ok, out) = audit(&[&["verify"], &store[..]].concat());
    assert!(!ok && out.contains("event 3") && out.contains("was changed"), "{out}");
    client.execute("DELETE FROM audit_events WHERE tenant_id = $1 AND seq >= 3", &[&LOCAL_TENANT]).await.unwrap();
    let (ok, out) = audit(&[&["verify", "--tenant", LOCAL_TENANT, "--head", &anchored], &store[..]].concat());
    assert!(!ok && out.contains("cut off"), "{out}");
}

#[tokio::test]
async fn the_log_gives_each_tenants_audit_head_to_anchor_elsewhere() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let server =
        serve_logged(state.path(), &["--export-workers", "0", "--audit-head-interval", "1", "--log-format", "json"]);
    let location = format!("file://{}/", state.path().join("exports/out").display());
    crate::common::submit_export(&admin_http(state.path()), &server.base, "alice", &location).await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let logged: serde_json::Value = loop {
        let heads: Vec<serde_json::Value> = server
            .logged("audit head")
            .into_iter()
            .filter_map(|(_, line)| serde_json::from_str(&line).ok())
            .filter(|line: &serde_json::Value| line["tenant"] == LOCAL_TENANT && line["events"] == 1)
            .collect();
        if let Some(head) = heads.last() {
            break head.clone();
        }
        assert!(std::time::Instant::now() < deadline, "no audit head in the log");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    drop(server);
    let dir = state.path().to_string_lossy().to_string();
    assert_eq!(
        logged["hash"].as_str(),
        Some(head(&["--state-dir", dir.as_str()]).as_str()),
        "the logged head is the chain's"
    );
}

#[tokio::test]
async fn the_last_head_is_logged_at_shutdown() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    // Heads every hour: only the shutdown logs one within this test.
    let mut server =
        serve_logged(state.path(), &["--export-workers", "0", "--audit-head-interval", "3600", "--log-format", "json"]);
    let location = format!("file://{}/", state.path().join("exports/out").display());
    crate::common::submit_export(&admin_http(state.path()), &server.base, "alice", &location).await;
    crate::common::sigterm(&server);
    assert!(server.child.wait().expect("it stops").success());
    let heads: Vec<serde_json::Value> = server
        .logged("audit head")
        .into_iter()
        .filter_map(|(_, line)| serde_json::from_str(&line).ok())
        .filter(|line: &serde_json::Value| line["tenant"] == LOCAL_TENANT)
        .collect();
    let dir = state.path().to_string_lossy().to_string();
    assert_eq!(heads.len(), 1, "one head, at shutdown: {heads:?}");
    assert_eq!(heads[0]["hash"].as_str(), Some(head(&["--state-dir", dir.as_str()]).as_str()));
}

#[test]
fn two_replicas_appending_at_once_keep_one_unbroken_chain_per_tenant() {
    use dpo_server::{
        audit_trail::{Activity, Subject, event},
        auth::{Caller, Identity},
        store::{AuditLog, postgres::PostgresStore},
    };
    let database = fresh_database().expect("a database in the test cluster");
    let replicas: Vec<std::sync::Arc<PostgresStore>> =
        (0..2).map(|_| std::sync::Arc::new(PostgresStore::open(&database, 8).expect("a replica's store"))).collect();
    let caller = |tenant: &str| Caller {
        tenant: tenant.into(),
        identity: Identity::App { id: "load".into(), roles: Vec::new() },
    };
    // 16 writers (8 per replica), 25 events each, over two tenants.
    let writers: Vec<_> = (0..16)
        .map(|i| {
            let store = replicas[i % 2].clone();
            let tenant = if i % 4 < 2 { "tenant-a" } else { "tenant-b" };
            let caller = caller(tenant);
            std::thread::spawn(move || {
                for n in 0..25 {
                    let subject = Subject { user: Some(format!("user-{i}-{n}")), ..Subject::default() };
                    store.append(event(&caller, Activity::ExportPersonalData, subject, Ok(()), "r")).expect("appended");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer");
    }
    for tenant in ["tenant-a", "tenant-b"] {
        let chain = dpo_server::audit_trail::verify(replicas[0].as_ref(), tenant, None).expect("an unbroken chain");
        assert_eq!(chain.events, 200, "{tenant}: every event once");
    }
}

/// How the submissions of [`submissions_land_with_their_events`] are written.
#[derive(Clone, Copy)]
enum Writers {
    /// 32 threads calling [`Operations::insert_recorded`].
    Threads,
    /// 32 futures of [`Operations::insert_recorded_queued`] awaited together on one runtime thread.
    Queued,
}

/// Submissions written with their events, 32 at once, every eighth with an id another one uses: each
/// duplicate fails alone, leaving neither its row nor its event, and every operation stored has exactly
/// one event, in one unbroken chain.
fn submissions_land_with_their_events(store: std::sync::Arc<dyn dpo_server::store::Backend>, writers: Writers) {
    use dpo_server::{
        audit_trail::{Activity, Subject, event},
        auth::{Caller, Identity},
        store::{OperationRecord, StoreError},
    };
    let caller = Caller { tenant: "tenant-s".into(), identity: Identity::App { id: "load".into(), roles: Vec::new() } };
    let ids: Vec<uuid::Uuid> = (0..32).map(|_| uuid::Uuid::now_v7()).collect();
    let submissions: Vec<_> = (0..32)
        .map(|i| {
            let id = if i % 8 == 7 { ids[i - 1] } else { ids[i] };
            let record = OperationRecord {
                id,
                tenant_id: "tenant-s".into(),
                user_id: format!("user-{i}"),
                status: dpo_api::model::DataPolicyOperationStatus::NotStarted,
                progress: 0.0,
                storage_location: None,
                storage_secret: None,
                submitted_at: chrono::Utc::now(),
                completed_at: None,
                version: 1,
                failure_reason: None,
                request_id: None,
            };
            let subject =
                Subject { user: Some(record.user_id.clone()), operation: Some(id.to_string()), ..Subject::default() };
            let recorded = event(&caller, Activity::ExportPersonalData, subject, Ok(()), "r");
            (record, recorded)
        })
        .collect();
    let outcomes: Vec<_> = match writers {
        Writers::Threads => {
            let threads: Vec<_> = submissions
                .into_iter()
                .map(|(record, recorded)| {
                    let store = store.clone();
                    std::thread::spawn(move || store.insert_recorded(&record, recorded))
                })
                .collect();
            threads.into_iter().map(|w| w.join().expect("a writer")).collect()
        }
        Writers::Queued => {
            let runtime = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
            let queued: Vec<_> = submissions
                .iter()
                .map(|(record, recorded)| store.insert_recorded_queued(record, recorded).expect("a queued insert"))
                .collect();
            runtime.block_on(futures::future::join_all(queued))
        }
    };
    let refused = outcomes.iter().filter(|o| matches!(o, Err(StoreError::Duplicate(_)))).count();
    assert_eq!(refused, 4, "each duplicate fails, and only it: {outcomes:?}");
    let chain = dpo_server::audit_trail::verify(store.as_ref(), "tenant-s", None).expect("an unbroken chain");
    assert_eq!(chain.events, 28, "one event per stored operation");
    let events = store.audit_events("tenant-s", 0, 100).expect("the events");
    for id in ids.iter().enumerate().filter(|(i, _)| i % 8 != 7).map(|(_, id)| id) {
        let stored = store.get(*id).expect("a read").expect("the operation is stored");
        let theirs = events.iter().filter(|e| e.operation_id.as_deref() == Some(&stored.id.to_string())).count();
        assert_eq!(theirs, 1, "operation {id} has one event");
    }
}

#[test]
fn a_submission_and_its_event_land_in_one_commit_in_sqlite() {
    let state = tempfile::tempdir().expect("a state dir");
    let store = dpo_server::store::sqlite::SqliteStore::open(state.path()).expect("the store");
    submissions_land_with_their_events(std::sync::Arc::new(store), Writers::Threads);
}

#[test]
fn a_queued_submission_and_its_event_land_in_one_commit_in_sqlite() {
    let state = tempfile::tempdir().expect("a state dir");
    let store = dpo_server::store::sqlite::SqliteStore::open(state.path()).expect("the store");
    submissions_land_with_their_events(std::sync::Arc::new(store), Writers::Queued);
}

#[test]
fn a_submission_and_its_event_land_in_one_commit_in_postgresql() {
    let database = fresh_database().expect("a database in the test cluster");
    let store = dpo_server::store::postgres::PostgresStore::open(&database, 8).expect("the store");
    submissions_land_with_their_events(std::sync::Arc::new(store), Writers::Threads);
}
