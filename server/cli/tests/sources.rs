//! Configured data sources (`--sources`), exported through the real binary: a PostgreSQL source in the
//! test cluster (every column type, NULLs, unicode, a hostile user id bound harmlessly, an empty query,
//! a failing one), a SQLite source on a real file, and `http` sources against a scripted local server
//! (paging both ways, a 429 with Retry-After, a 500, a next link to a host that is not allowed).

use crate::common::{
    Reply, ScriptedHttp, admin_http, import_users, operation, serve, serve_logged, serve_logged_with_env, submit_export,
};
use dpo_client::manifest::{ExportStatus, Manifest, SourceOutcome};
use dpo_test_support::postgres_cluster::{execute, fresh_database};
use dpo_test_support::requests::stage_status;
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// A user id with quotes and an injection attempt: bound as a parameter it is only text.
const HOSTILE: &str = "o'brien\"; DROP TABLE orders; --";

/// Exports `user` through the server at `base` into `<state>/exports/<user>`; returns the operation as
/// it ended (complete or failed) and the export's folder.
async fn export(base: &str, http: &reqwest::Client, state: &Path, user: &str) -> (Value, PathBuf) {
    let destination = state.join("exports/out");
    let id = submit_export(http, base, &urlencoding(user), &format!("file://{}/", destination.display())).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, op) = operation(http, base, &id).await;
        if op["status"] == "complete" || op["status"] == "failed" {
            return (op, destination.join(&id));
        }
        assert!(Instant::now() < deadline, "export did not finish: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn urlencoding(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn lines(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines().map(|line| serde_json::from_str(line).expect("each line is JSON")).collect()
}

/// A state folder whose directory holds alice (with a mail address) and the hostile id.
fn state_with_users() -> (tempfile::TempDir, reqwest::Client) {
    let state = tempfile::tempdir().unwrap();
    let users = json!([
        {"id": "alice", "userPrincipalName": "alice@contoso.example", "mail": "Alice.Smith@contoso.example"},
        {"id": HOSTILE, "userPrincipalName": "obrien@contoso.example"}
    ]);
    import_users(state.path(), &users.to_string(), None);
    let http = admin_http(state.path());
    (state, http)
}

fn write_sources(state: &Path, text: &str) -> PathBuf {
    let path = state.join("sources.toml");
    std::fs::write(&path, text).unwrap();
    path
}

const SHOP: &str = "
CREATE TABLE orders (
    id BIGINT PRIMARY KEY, customer TEXT NOT NULL, mail TEXT, paid BOOLEAN, quantity INT, weight REAL,
    total NUMERIC(12, 2), huge NUMERIC, big BIGINT, placed TIMESTAMPTZ, local_time TIMESTAMP, day DATE,
    details JSONB, raw JSON, receipt BYTEA, ref UUID, note VARCHAR(200), code CHAR(3)
);
INSERT INTO orders VALUES
 (1, 'alice', 'alice.smith@contoso.example', true, 3, 1.5, 1234.50, 123456789012345678901234.5, 9007199254740993,
  '2026-03-01 10:00:00+02', '2026-03-01 08:00:00', '2026-03-01', '{\"gift\": true, \"tags\": [\"a\", \"é\"]}',
  '[1, 2]', '\\x00ff10', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 'Grüße, 東京 🎉', 'abc'),
 (2, 'alice', NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
 (3, 'bob', 'bob@contoso.example', false, 1, 2, 5, 5, 5, now(), now(), now(), '{}', '{}', '', NULL, 'b', 'b'),
 (4, 'o''brien\"; DROP TABLE orders; --', NULL, true, 1, 1, 1, 1, 1, now(), now(), now(), '{}', '{}', '', NULL, 'x', 'x');
";

fn postgres_sources(database: &str) -> String {
    format!(
        r#"
[[source]]
name = "shop"
kind = "sql"
url = "{database}"

[[source.query]]
name = "orders"
sql = "SELECT * FROM orders WHERE customer = :id ORDER BY id"

[[source.query]]
name = "by_mail"
sql = "SELECT id, mail FROM orders WHERE lower(mail) = lower(:mail) ORDER BY id"

[[source.query]]
name = "returns"
sql = "SELECT id FROM orders WHERE customer = :id AND false"

[[source.query]]
name = "orders_sheet"
sql = "SELECT id, note, total FROM orders WHERE customer = :id ORDER BY id"
format = "csv"
"#
    )
}

#[tokio::test]
async fn a_postgres_source_exports_every_column_type_with_identities_bound() {
    let database = fresh_database().expect("a database in the test cluster");
    execute(&database, SHOP).unwrap();
    let (state, http) = state_with_users();
    let sources = write_sources(state.path(), &postgres_sources(&database));
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);

    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).expect("every file as listed");
    let orders = lines(&folder.join("shop/orders.jsonl"));
    assert_eq!(orders.len(), 2, "alice's two orders, not bob's: {orders:?}");
    assert_eq!(
        orders[0],
        json!({
            "id": 1, "customer": "alice", "mail": "alice.smith@contoso.example", "paid": true, "quantity": 3,
            "weight": 1.5, "total": 1234.5, "huge": "123456789012345678901234.5", "big": "9007199254740993",
            "placed": "2026-03-01T08:00:00Z", "local_time": "2026-03-01T08:00:00Z", "day": "2026-03-01",
            "details": {"gift": true, "tags": ["a", "é"]}, "raw": [1, 2], "receipt": "AP8Q",
            "ref": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11", "note": "Grüße, 東京 🎉", "code": "abc"
        })
    );
    let keys: Vec<&String> = orders[0].as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 18);
    assert!(
        orders[1]
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, _)| !["id", "customer"].contains(&k.as_str()))
            .all(|(_, v)| v.is_null())
    );
    // The raw line keeps the query's column order.
    let raw = std::fs::read_to_string(folder.join("shop/orders.jsonl")).unwrap();
    assert!(raw.starts_with("{\"id\":1,\"customer\":\"alice\",\"mail\":"), "{raw}");
    assert_eq!(lines(&folder.join("shop/by_mail.jsonl")), [json!({"id": 1, "mail": "alice.smith@contoso.example"})]);
    // A query with no rows for the person is an empty file, not an error.
    assert_eq!(std::fs::read(folder.join("shop/returns.jsonl")).unwrap(), b"");
    assert_eq!(
        std::fs::read_to_string(folder.join("shop/orders_sheet.csv")).unwrap(),
        "id,note,total\n1,\"Grüße, 東京 🎉\",1234.50\n2,,\n"
    );
    // The manifest says what each source held: kinds, queries, rows per file and per source.
    let orders_file = manifest.objects.iter().find(|o| o.path == "shop/orders.jsonl").expect("listed");
    assert_eq!((orders_file.source.as_deref(), orders_file.rows), (Some("shop"), Some(2)));
    let returns_file = manifest.objects.iter().find(|o| o.path == "shop/returns.jsonl").expect("listed");
    assert_eq!(returns_file.rows, Some(0));
    let outcomes: Vec<(&str, &str, SourceOutcome, Option<u64>)> =
        manifest.sources.iter().map(|s| (s.name.as_str(), s.kind.as_str(), s.outcome, s.rows)).collect();
    assert_eq!(
        outcomes,
        [
            ("profile", "profile", SourceOutcome::Complete, None),
            ("drive", "drive", SourceOutcome::Empty, None),
            ("activity", "activity", SourceOutcome::Empty, Some(0)),
            // orders 2, by_mail 1, returns 0, orders_sheet 2
            ("shop", "sql", SourceOutcome::Complete, Some(5)),
        ]
    );
    let shop = &manifest.sources[3];
    assert_eq!(
        shop.queries.iter().map(|q| q.name.as_str()).collect::<Vec<_>>(),
        ["orders", "by_mail", "returns", "orders_sheet"]
    );
    assert_eq!(shop.queries[1].sql, "SELECT id, mail FROM orders WHERE lower(mail) = lower(:mail) ORDER BY id");
    assert_eq!(shop.objects, 4);
    // The page the person reads: every source, with its files linked, and nothing from elsewhere.
    let page = std::fs::read_to_string(folder.join("index.html")).unwrap();
    assert!(page.contains("<h2>shop</h2>") && page.contains("records in a database: 4 files"), "{page}");
    assert!(page.contains("<a href=\"shop/orders.jsonl\">shop/orders.jsonl</a>"), "{page}");
    assert!(page.contains("<h2>drive</h2>\n<p class=\"empty\">"), "{page}");
    assert!(!page.contains("https://") && !page.contains("src="), "self-contained");
    assert_eq!(manifest.objects.last().map(|o| (o.path.as_str(), o.source.as_deref())), Some(("index.html", None)));

    // The hostile id is only a value: it finds its own row, and the table survives.
    let (op, folder) = export(&server.base, &http, state.path(), HOSTILE).await;
    assert_eq!(op["status"], "complete", "{op}");
    let theirs = lines(&folder.join("shop/orders.jsonl"));
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0]["customer"], HOSTILE);
    // Their directory entry has no mail: :mail is NULL and matches nothing.
    assert!(lines(&folder.join("shop/by_mail.jsonl")).is_empty());
    execute(&database, "SELECT count(*) FROM orders").expect("the orders table is still there");
}

#[tokio::test]
async fn a_failing_query_fails_the_operation_saying_which_source_and_why() {
    let database = fresh_database().expect("a database in the test cluster");
    execute(&database, SHOP).unwrap();
    let (state, http) = state_with_users();
    let text = format!(
        "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"orders\"\nsql = \
         \"SELECT * FROM orders WHERE customer = :id\"\n[[source.query]]\nname = \"refunds\"\nsql = \"SELECT * FROM \
         refunds WHERE customer = :id\"\n[[source]]\nname = \"later\"\nkind = \"sql\"\nurl = \"{database}\"\n\
         [[source.query]]\nname = \"orders\"\nsql = \"SELECT * FROM orders WHERE customer = :id\"\n"
    );
    let sources = write_sources(state.path(), &text);
    let server = serve_logged(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().expect("a failure reason");
    assert!(
        reason.contains("source shop, query refunds") && reason.contains("relation \"refunds\" does not exist"),
        "{reason}"
    );
    assert!(server.logs("refunds").await, "the server log says which source failed");
    // What was read before the failure stays, listed in a manifest that says the export is incomplete.
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).expect("what was written is as listed");
    assert_eq!(manifest.status, ExportStatus::Failed);
    let shop = manifest.sources.iter().find(|s| s.name == "shop").unwrap();
    assert_eq!(shop.outcome, SourceOutcome::Failed);
    assert!(shop.reason.as_deref().unwrap().contains("relation \"refunds\" does not exist"), "{shop:?}");
    assert_eq!((shop.objects, shop.rows), (1, Some(2)), "orders.jsonl, whole: {shop:?}");
    assert!(!folder.join("shop/refunds.jsonl").exists(), "the failed query wrote nothing");
    let later = manifest.sources.iter().find(|s| s.name == "later").unwrap();
    assert_eq!((later.outcome, later.objects), (SourceOutcome::Skipped, 0));
    assert!(!folder.join("later").exists());
    let page = std::fs::read_to_string(folder.join("index.html")).unwrap();
    assert!(page.contains("This export is incomplete"), "{page}");
}

#[tokio::test]
async fn a_sqlite_source_on_a_real_file_is_exported_read_only() {
    let (state, http) = state_with_users();
    let db = state.path().join("legacy.db");
    {
        let conn = rusqlite::Connection::open(&db).unwrap();
        conn.execute_batch(
            "CREATE TABLE notes (id INTEGER PRIMARY KEY, upn TEXT, body TEXT, score REAL, blob BLOB, huge INTEGER);
             INSERT INTO notes VALUES (1, 'alice@contoso.example', 'première note', 4.5, x'0102', 9223372036854775807);
             INSERT INTO notes VALUES (2, 'bob@contoso.example', 'not hers', NULL, NULL, NULL);
             INSERT INTO notes VALUES (3, 'alice@contoso.example', NULL, NULL, NULL, 7);",
        )
        .unwrap();
    }
    let before = std::fs::read(&db).unwrap();
    let sources = write_sources(
        state.path(),
        "[[source]]\nname = \"legacy\"\nkind = \"sql\"\nurl = \"sqlite:legacy.db\"\n[[source.query]]\nname = \
         \"notes\"\nsql = \"SELECT id, body, score, blob, huge FROM notes WHERE upn = :user_principal_name ORDER BY \
         id\"\n",
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    assert_eq!(
        lines(&folder.join("legacy/notes.jsonl")),
        [
            json!({"id": 1, "body": "première note", "score": 4.5, "blob": "AQI=", "huge": "9223372036854775807"}),
            json!({"id": 3, "body": null, "score": null, "blob": null, "huge": 7}),
        ]
    );
    assert_eq!(std::fs::read(&db).unwrap(), before, "the source database is untouched");
}

#[test]
fn a_broken_sources_file_stops_the_server_with_the_file_line_and_reason() {
    let state = tempfile::tempdir().unwrap();
    let sources = write_sources(
        state.path(),
        "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"sqlite:shop.db\"\n\n[[source.query]]\nname = \
         \"orders\"\nsql = \"SELECT * FROM orders WHERE phone = :phone\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_dpo-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--sources"])
        .arg(&sources)
        .arg("--state-dir")
        .arg(state.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("sources.toml, line 6") && stderr.contains(":phone"), "{stderr}");
}

/// Whether an upload of `name` is under way in `folder` (a local target stages it as `<name>#<n>`).
fn staging(folder: &Path, name: &str) -> bool {
    std::fs::read_dir(folder)
        .map(|entries| entries.flatten().any(|e| e.file_name().to_string_lossy().starts_with(&format!("{name}#"))))
        .unwrap_or(false)
}

#[tokio::test]
async fn a_server_killed_in_the_middle_of_a_source_finishes_it_after_a_restart_with_each_row_once() {
    let database = fresh_database().expect("a database in the test cluster");
    // 4,000 rows that take about a millisecond each to produce: a few seconds in all, 1,000 at a time.
    let slow = "SELECT g AS n, :id AS owner, pg_sleep(0.001)::text AS slept FROM generate_series(1, 4000) g";
    let (state, http) = state_with_users();
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"slow\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"quick\"\nsql = \
             \"SELECT 1 AS one\"\n[[source.query]]\nname = \"rows\"\nsql = \"{slow}\"\n"
        ),
    );
    let args = ["--export-workers", "1", "--export-lease", "2", "--sources", &sources.to_string_lossy()];
    let first = serve(state.path(), &args);
    let destination = state.path().join("exports/out");
    let id = submit_export(&http, &first.base, "alice", &format!("file://{}/", destination.display())).await;
    let rows_folder = destination.join(&id).join("slow");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !staging(&rows_folder, "rows.jsonl") {
        assert!(Instant::now() < deadline, "the slow query never started writing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(1000)).await;
    let (_, op) = operation(&http, &first.base, &id).await;
    assert_eq!(op["status"], "running", "killed in the middle of the source: {op}");
    drop(first); // kill -9

    let second = serve(state.path(), &args);
    let deadline = Instant::now() + Duration::from_secs(120);
    let op = loop {
        let (_, op) = operation(&http, &second.base, &id).await;
        if op["status"] == "complete" || op["status"] == "failed" {
            break op;
        }
        assert!(Instant::now() < deadline, "the export did not finish after the restart: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(op["status"], "complete", "{op}");
    let rows = lines(&rows_folder.join("rows.jsonl"));
    let numbers: Vec<i64> = rows.iter().map(|r| r["n"].as_i64().expect("a number")).collect();
    assert_eq!(numbers, (1..=4000).collect::<Vec<_>>(), "each row once, in order");
    assert!(!staging(&rows_folder, "rows.jsonl"), "the upload the kill cut off is gone");
    let folder = destination.join(&id);
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).unwrap();
    // The file the first run finished was kept, and its rows are still counted.
    let rows: Vec<(&str, Option<u64>)> = manifest
        .objects
        .iter()
        .filter(|o| o.source.as_deref() == Some("slow"))
        .map(|o| (o.path.as_str(), o.rows))
        .collect();
    assert_eq!(rows, [("slow/quick.jsonl", Some(1)), ("slow/rows.jsonl", Some(4000))]);
}

#[tokio::test]
async fn a_server_killed_while_a_request_gathers_finishes_it_after_a_restart_and_the_zip_is_whole() {
    let database = fresh_database().expect("a database in the test cluster");
    // 3,000 rows of the person that take about a millisecond each: seconds to read, 1,000 at a time.
    let slow = "SELECT g AS n, :mail AS owner, pg_sleep(0.001)::text AS slept FROM generate_series(1, 3000) g";
    let (state, _) = state_with_users();
    let http = crate::common::privacy_admin_http(state.path());
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"slow\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"rows\"\nsql = \"{slow}\"\n"
        ),
    );
    let args = ["--export-workers", "1", "--export-lease", "2", "--sources", &sources.to_string_lossy()];
    let first = serve(state.path(), &args);
    let body = json!({
        "dataSubject": {"email": "casey@shop.example"}, "dataSubjectType": "customer", "displayName": "Casey",
        "description": "a copy", "regulations": ["CCPA"], "type": "export", "pauseAfterEstimate": false
    });
    let response =
        http.post(format!("{}/security/subjectRightsRequests", first.base)).json(&body).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let folder = state.path().join("requests").join(&id);
    let deadline = Instant::now() + Duration::from_secs(60);
    while !staging(&folder.join("slow"), "rows.jsonl") {
        assert!(Instant::now() < deadline, "the retrieval never started writing");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(800)).await;
    let url = format!("{}/security/subjectRightsRequests/{id}", first.base);
    let during: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(stage_status(&during, "contentRetrieval"), "current", "killed in the middle of it: {during}");
    drop(first); // kill -9

    let second = serve(state.path(), &args);
    let url = format!("{}/security/subjectRightsRequests/{id}", second.base);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let request: Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        if stage_status(&request, "generateReport") == "completed" {
            break;
        }
        assert!(Instant::now() < deadline, "the request did not finish after the restart: {request}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let rows = lines(&folder.join("slow/rows.jsonl"));
    let numbers: Vec<i64> = rows.iter().map(|r| r["n"].as_i64().expect("a number")).collect();
    assert_eq!(numbers, (1..=3000).collect::<Vec<_>>(), "each row once, in order");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).unwrap();
    // The zip holds every file as the manifest describes it, and a second download is the same.
    let zipped = http.get(format!("{url}/getFinalAttachment()")).send().await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped.to_vec())).expect("a zip");
    for object in &manifest.objects {
        let mut entry = archive.by_name(&object.path).expect("every object is in the zip");
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        object.check(content.len() as u64, &hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&content))).unwrap();
    }
    let again = http.get(format!("{url}/getFinalAttachment")).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(again, zipped);
}

fn dpo_server(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dpo-server")).args(args).output().expect("dpo-server runs");
    (out.status.success(), format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
}

#[test]
fn sources_check_reports_each_query_as_ok_or_its_exact_error() {
    let database = fresh_database().expect("a database in the test cluster");
    execute(&database, SHOP).unwrap();
    let state = tempfile::tempdir().unwrap();
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"orders\"\nsql = \
             \"SELECT id, total FROM orders WHERE customer = :id\"\n[[source.query]]\nname = \"refunds\"\nsql = \"SELECT * \
             FROM refunds WHERE customer = :id\"\n[[source.query]]\nname = \"tags\"\nsql = \"SELECT ARRAY['a'] AS \
             tags\"\n\n[[source]]\nname = \"gone\"\nkind = \"sql\"\nurl = \"sqlite:missing.db\"\n[[source.query]]\nname = \
             \"notes\"\nsql = \"SELECT 1\"\n"
        ),
    );
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &sources.to_string_lossy()]);
    assert!(!ok, "{out}");
    assert!(out.contains("shop/orders: ok (2 columns: id, total)"), "{out}");
    assert!(out.contains("shop/refunds: ERROR: relation \"refunds\" does not exist"), "{out}");
    assert!(out.contains("shop/tags: column tags is of type _text") && out.contains("tags::text"), "{out}");
    assert!(out.contains("gone/notes: opening") && out.contains("missing.db"), "{out}");
    assert!(out.contains("3 of 4 checks failed"), "{out}");

    let good = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"orders\"\nsql = \
             \"SELECT id FROM orders WHERE customer = :id\"\n"
        ),
    );
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &good.to_string_lossy()]);
    assert!(ok, "{out}");
    assert!(out.contains("1 sources, 1 checks, all ok"), "{out}");
}

#[test]
fn sources_preview_counts_what_an_export_would_hold_and_writes_nothing() {
    let database = fresh_database().expect("a database in the test cluster");
    execute(&database, SHOP).unwrap();
    let (state, _http) = state_with_users();
    let sources = write_sources(state.path(), &postgres_sources(&database));
    let state_dir = state.path().to_string_lossy().into_owned();
    let (ok, out) = dpo_server(&[
        "sources",
        "preview",
        "alice",
        "--sources",
        &sources.to_string_lossy(),
        "--state-dir",
        &state_dir,
    ]);
    assert!(ok, "{out}");
    assert!(out.contains("shop/orders.jsonl: 2 rows, "), "{out}");
    assert!(out.contains("shop/by_mail.jsonl: 1 rows, "), "{out}");
    assert!(out.contains("shop/returns.jsonl: 0 rows, 0 bytes"), "{out}");
    let sheet = "id,note,total\n1,\"Grüße, 東京 🎉\",1234.50\n2,,\n".len();
    assert!(out.contains(&format!("shop/orders_sheet.csv: 2 rows, {sheet} bytes")), "{out}");
    assert!(!state.path().join("exports").exists(), "nothing written");
    let (ok, out) = dpo_server(&[
        "sources",
        "preview",
        "nobody",
        "--sources",
        &sources.to_string_lossy(),
        "--state-dir",
        &state_dir,
    ]);
    assert!(!ok && out.contains("user nobody is not in"), "{out}");
}

#[test]
fn sources_preview_takes_a_person_by_email_as_a_request_names_them() {
    // A SQLite shop holding two customers, one of them also alice of the directory (by her mail).
    let (state, _http) = state_with_users();
    let shop = state.path().join("customers.db");
    let conn = rusqlite::Connection::open(&shop).unwrap();
    conn.execute_batch(
        "CREATE TABLE orders (id INTEGER PRIMARY KEY, email TEXT, first TEXT, country TEXT, owner TEXT);
         INSERT INTO orders (email, first, country, owner) VALUES
           ('casey@shop.example', 'Casey', 'DE', NULL), ('casey@shop.example', 'Casey', 'DE', NULL),
           ('robin@shop.example', 'Robin', 'FR', NULL), ('alice.smith@contoso.example', 'Alice', 'UK', 'alice');",
    )
    .unwrap();
    drop(conn);
    let sources = write_sources(
        state.path(),
        "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"sqlite:customers.db\"\n\
         [[source.query]]\nname = \"orders\"\nsql = \"SELECT id FROM orders WHERE lower(email) = lower(:mail)\"\n\
         [[source.query]]\nname = \"by_name\"\nsql = \"SELECT id FROM orders WHERE first = :first_name AND country = :residency\"\n\
         [[source.query]]\nname = \"by_owner\"\nsql = \"SELECT id FROM orders WHERE owner = :id\"\n",
    );
    let state_dir = state.path().to_string_lossy().into_owned();
    let sources = sources.to_string_lossy().into_owned();
    let preview = |extra: &[&str]| {
        let args = [&["sources", "preview", "--sources", &sources, "--state-dir", &state_dir][..], extra].concat();
        dpo_server(&args)
    };
    // A customer in no directory: their own rows, by mail and by name; nothing by a directory id.
    let (ok, out) = preview(&["--email", "Casey@Shop.example", "--first-name", "Casey", "--residency", "DE"]);
    assert!(ok, "{out}");
    assert!(out.contains("Casey@Shop.example is not a user of"), "{out}");
    assert!(out.contains("shop/orders.jsonl: 2 rows, "), "{out}");
    assert!(out.contains("shop/by_name.jsonl: 2 rows, "), "{out}");
    assert!(out.contains("shop/by_owner.jsonl: skipped: it names :id, which the request does not give"), "{out}");
    // The email of a user of the directory (her mail, in another case): her identities bind too.
    let (ok, out) = preview(&["--email", "ALICE.SMITH@contoso.example"]);
    assert!(ok, "{out}");
    assert!(out.contains("is the user alice of"), "{out}");
    assert!(out.contains("shop/orders.jsonl: 1 rows, "), "{out}");
    assert!(out.contains("shop/by_owner.jsonl: 1 rows, "), "{out}");
    assert!(
        out.contains("shop/by_name.jsonl: skipped: it names :first_name, :residency, which the request does not give"),
        "no name given: not run: {out}"
    );
    let (ok, out) = preview(&["alice", "--email", "x@y.example"]);
    assert!(!ok, "a user or an email, not both: {out}");
    // The same lookup over a PostgreSQL directory: the mail wins over another user's userPrincipalName, and
    // a user without a mail is found by the userPrincipalName.
    let database = fresh_database().expect("a database in the test cluster");
    let users = json!([
        {"id": "upn-only", "userPrincipalName": "pat@contoso.example"},
        {"id": "by-upn", "userPrincipalName": "casey@shop.example"},
        {"id": "by-mail", "userPrincipalName": "c.one@contoso.example", "mail": "Casey@Shop.Example"}
    ]);
    import_users(state.path(), &users.to_string(), Some(&database));
    let over_postgres = |email: &str| {
        dpo_server(&["sources", "preview", "--sources", &sources, "--database", &database, "--email", email])
    };
    let (ok, out) = over_postgres("casey@shop.example");
    assert!(ok && out.contains("is the user by-mail of"), "{out}");
    let (ok, out) = over_postgres("PAT@contoso.example");
    assert!(ok && out.contains("is the user upn-only of"), "{out}");
}

/// A state folder whose directory holds alice and mallory, whose mail address tries to climb out of an
/// objects source's prefix (`../bob`).
fn state_with_mallory() -> (tempfile::TempDir, reqwest::Client) {
    let state = tempfile::tempdir().unwrap();
    let users = json!([
        {"id": "alice", "userPrincipalName": "alice@contoso.example", "mail": "alice@contoso.example"},
        {"id": "mallory", "userPrincipalName": "mallory@contoso.example", "mail": "../bob"},
        {"id": "tilde", "userPrincipalName": "tilde@contoso.example", "mail": "tilde~user[1]@contoso.example"}
    ]);
    import_users(state.path(), &users.to_string(), None);
    let http = admin_http(state.path());
    (state, http)
}

#[tokio::test]
async fn an_objects_source_in_a_local_folder_copies_the_persons_objects_and_nobody_elses() {
    let (state, http) = state_with_mallory();
    let uploads = state.path().join("uploads");
    for (path, content) in [
        ("alice@contoso.example/cv.txt", "alice's cv"),
        ("alice@contoso.example/photos/me.jpg", "jpeg"),
        ("bob/secret.txt", "bob's"),
        ("tilde~user[1]@contoso.example/notes.txt", "tilde's"),
        ("tilde%7Euser%5B1%5D@contoso.example/decoy.txt", "not tilde's"),
    ] {
        std::fs::create_dir_all(uploads.join(path).parent().unwrap()).unwrap();
        std::fs::write(uploads.join(path), content).unwrap();
    }
    std::os::unix::fs::symlink(uploads.join("bob/secret.txt"), uploads.join("alice@contoso.example/link.txt")).unwrap();
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"uploads\"\nkind = \"objects\"\nurl = \"file://{}/{{mail}}/\"\n",
            uploads.display()
        ),
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);

    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).unwrap();
    let copied: Vec<&str> =
        manifest.objects.iter().filter(|o| o.source.as_deref() == Some("uploads")).map(|o| o.path.as_str()).collect();
    assert_eq!(copied, ["uploads/cv.txt", "uploads/photos/me.jpg"], "hers, links skipped");
    assert_eq!(std::fs::read_to_string(folder.join("uploads/cv.txt")).unwrap(), "alice's cv");
    let uploads_source = manifest.sources.iter().find(|s| s.name == "uploads").unwrap();
    assert_eq!((uploads_source.kind.as_str(), uploads_source.objects, uploads_source.bytes), ("objects", 2, 14));
    assert_eq!(uploads_source.outcome, SourceOutcome::Complete);

    // A folder named with characters a URL would encode is found as it is spelled, and only that one.
    let (op, folder) = export(&server.base, &http, state.path(), "tilde").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let copied: Vec<&str> =
        manifest.objects.iter().filter(|o| o.source.as_deref() == Some("uploads")).map(|o| o.path.as_str()).collect();
    assert_eq!(copied, ["uploads/notes.txt"]);

    // Mallory's `../bob` cannot be one folder's name: nothing of bob's.
    let (op, folder) = export(&server.base, &http, state.path(), "mallory").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest.objects.iter().all(|o| o.source.as_deref() != Some("uploads")), "{:?}", manifest.objects);
    assert_eq!(manifest.sources.iter().find(|s| s.name == "uploads").unwrap().outcome, SourceOutcome::Empty);
    assert!(!folder.join("uploads").exists());

    // The operator's tools see the same.
    let state_dir = state.path().to_string_lossy().into_owned();
    let preview = ["sources", "preview", "alice", "--sources", &sources.to_string_lossy(), "--state-dir", &state_dir];
    let (ok, out) = dpo_server(&preview);
    assert!(ok && out.contains("uploads/: 2 objects, 14 bytes"), "{out}");
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &sources.to_string_lossy()]);
    assert!(ok && out.contains("uploads: ok"), "{out}");
    let nowhere = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"uploads\"\nkind = \"objects\"\nurl = \"file://{}/nowhere/{{mail}}/\"\n",
            state.path().display()
        ),
    );
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &nowhere.to_string_lossy()]);
    assert!(!ok && out.contains("uploads: ") && out.contains("nowhere"), "{out}");
}

#[tokio::test]
async fn an_objects_source_in_an_azure_container_copies_the_persons_blobs() {
    use object_store::{ObjectStoreExt, PutPayload, path::Path as ObjectPath};
    let azurite = crate::common::Azurite::start();
    let azure = azurite.container("crm").await;
    let big: Vec<u8> = (0..5 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
    azure.put(&ObjectPath::from("people/alice/contract.pdf"), PutPayload::from(big.clone())).await.unwrap();
    azure.put(&ObjectPath::from("people/alice/notes/call 1.txt"), PutPayload::from_static(b"called")).await.unwrap();
    azure.put(&ObjectPath::from("people/alicia/other.txt"), PutPayload::from_static(b"not hers")).await.unwrap();

    let (state, http) = state_with_mallory();
    let sources = write_sources(
        state.path(),
        "[[source]]\nname = \"crm\"\nkind = \"objects\"\nurl = \"az://crm/people/{id}/\"\n",
    );
    let server = crate::common::serve_with_env(
        state.path(),
        &["--export-workers", "1", "--sources", &sources.to_string_lossy()],
        &azurite.env(),
    );
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).unwrap();
    let copied: Vec<&str> =
        manifest.objects.iter().filter(|o| o.source.as_deref() == Some("crm")).map(|o| o.path.as_str()).collect();
    assert_eq!(copied, ["crm/contract.pdf", "crm/notes/call 1.txt"]);
    assert_eq!(std::fs::read(folder.join("crm/contract.pdf")).unwrap(), big);
}

#[test]
fn an_objects_prefix_without_an_identity_or_with_an_unknown_one_is_refused() {
    let state = tempfile::tempdir().unwrap();
    for (url, says) in [
        ("file:///srv/uploads/", "names no identity"),
        ("file:///srv/uploads/{phone}/", "{phone} is not an identity"),
        ("az://{id}/files/", "not in its bucket or host"),
        ("ftp://host/{id}/", "ftp"),
    ] {
        let sources =
            write_sources(state.path(), &format!("[[source]]\nname = \"up\"\nkind = \"objects\"\nurl = \"{url}\"\n"));
        let (ok, out) = dpo_server(&["sources", "check", "--sources", &sources.to_string_lossy()]);
        assert!(!ok && out.contains("sources.toml, line 1") && out.contains(says), "{url}: {out}");
    }
}

/// The scripted CRM: alice's records on three pages (an OData page with `@odata.nextLink`, a page whose
/// `Link` header names the next, a bare array), with a 429 before the first and a 500 before the second;
/// a ticket system whose second page lies on a host the source does not allow; 404 for anyone else.
fn crm() -> ScriptedHttp {
    ScriptedHttp::start(|request, base| {
        let records = "/people/Alice.Smith@contoso.example/records";
        let target = request.target.as_str();
        if request.header("authorization") != Some("Bearer s3cret-token") {
            return Reply::json(401, json!({"error": "no token"}));
        }
        match (target, request.hit) {
            (t, 1) if t == records => Reply::json(429, json!({"error": "slow down"})).with("Retry-After", "1"),
            // Written by hand: the keys' order (and the whitespace) are the API's, not serde_json's.
            (t, _) if t == records => Reply {
                status: 200,
                headers: vec![("Content-Type".into(), "application/json".into())],
                body: format!(
                    "{{\n  \"@odata.context\": \"x\",\n  \"value\": [\n    {{\"id\": 1, \"subject\": \"Grüße\", \"b\": 2, \
                     \"a\": 1}},\n    {{\"id\": 2, \"subject\": \"line\\nbreak\"}}\n  ],\n  \"@odata.nextLink\": \
                     \"{base}{records}?page=2\"\n}}"
                ),
            },
            (t, 1) if t == format!("{records}?page=2") => Reply::json(500, json!({"error": "oops"})),
            (t, _) if t == format!("{records}?page=2") => Reply::json(200, json!({"value": [{"id": 3}]}))
                .with("Link", &format!("<{records}?page=3>; rel=\"next\"")),
            (t, _) if t == format!("{records}?page=3") => Reply::json(200, json!([{"id": 4}])),
            ("/tickets/alice", _) => Reply::json(
                200,
                json!({"value": [{"ticket": 7}], "@odata.nextLink": base.replace("127.0.0.1", "localhost") + "/tickets/alice?page=2"}),
            ),
            _ => Reply::json(404, json!({"error": "unknown person"})),
        }
    })
}

fn http_sources(state: &Path, crm: &ScriptedHttp) -> PathBuf {
    std::fs::create_dir_all(state.join("uploads")).unwrap();
    write_sources(
        state,
        &format!(
            r#"
[[source]]
name = "crm"
kind = "http"
url = "{base}/people/{{mail}}/records"
token_env = "CRM_TOKEN"
retries = 3

[[source]]
name = "tickets"
kind = "http"
url = "{base}/tickets/{{id}}"
token_env = "CRM_TOKEN"

[[source]]
name = "uploads"
kind = "objects"
url = "file://{uploads}/{{id}}/"
"#,
            base = crm.base,
            uploads = state.join("uploads").display()
        ),
    )
}

#[tokio::test]
async fn http_sources_follow_every_page_retry_when_asked_and_never_leave_their_hosts() {
    let (state, http) = state_with_users();
    let crm = crm();
    let sources = http_sources(state.path(), &crm);
    let server = serve_logged_with_env(
        state.path(),
        &["--export-workers", "1", "--sources", &sources.to_string_lossy()],
        &[("CRM_TOKEN", "s3cret-token".to_string())],
    );

    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "failed", "the tickets' next page is on a host not allowed: {op}");
    let reason = op["@dpo.failureReason"].as_str().expect("a failure reason");
    assert!(reason.contains("source tickets") && reason.contains("localhost"), "{reason}");

    // Every CRM page, in order, each record one line with its keys in the API's order.
    let records = lines(&folder.join("crm/crm.jsonl"));
    assert_eq!(records.iter().map(|r| r["id"].as_i64().unwrap()).collect::<Vec<_>>(), [1, 2, 3, 4]);
    let first_line = std::fs::read_to_string(folder.join("crm/crm.jsonl")).unwrap();
    assert!(first_line.starts_with(r#"{"id":1,"subject":"Grüße","b":2,"a":1}"#), "{first_line}");
    assert_eq!(records[1]["subject"], "line\nbreak");

    let seen = crm.seen();
    let path = "/people/Alice.Smith@contoso.example/records";
    let at = |target: &str, hit: usize| seen.iter().find(|s| s.target == target && s.hit == hit).map(|s| s.at);
    let (slowed, retried) = (at(path, 1).expect("the first try"), at(path, 2).expect("a second try"));
    assert!(retried - slowed >= Duration::from_millis(950), "Retry-After: 1 was honoured: {:?}", retried - slowed);
    assert!(at(&format!("{path}?page=2"), 2).is_some(), "the 500 was asked again");
    assert!(seen.iter().all(|s| s.header("authorization") == Some("Bearer s3cret-token")));
    assert!(!seen.iter().any(|s| s.target.contains("tickets/alice?page=2")), "the other host was never asked");

    // The manifest says what each source held; the failed one keeps its first page, marked partial.
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    manifest.verify_folder(&folder).expect("every file as listed");
    assert_eq!(manifest.status, ExportStatus::Failed);
    let source = |name: &str| manifest.sources.iter().find(|s| s.name == name).unwrap().clone();
    let crm_source = source("crm");
    assert_eq!(
        (crm_source.kind.as_str(), crm_source.outcome, crm_source.rows),
        ("http", SourceOutcome::Complete, Some(4))
    );
    assert_eq!(crm_source.location.as_deref(), Some(&*format!("{}/people/{{mail}}/records", crm.base)));
    let tickets = source("tickets");
    assert_eq!((tickets.outcome, tickets.rows), (SourceOutcome::Failed, Some(1)));
    assert!(tickets.reason.as_deref().unwrap().contains("allowed hosts"), "{tickets:?}");
    let cut = manifest.objects.iter().find(|o| o.path == "tickets/tickets.jsonl").expect("the first page");
    assert!(cut.partial && cut.rows == Some(1), "{cut:?}");
    assert_eq!(source("uploads").outcome, SourceOutcome::Skipped);
    assert!(server.logged("s3cret-token").is_empty(), "the token is never logged");

    // Someone the APIs do not know (404) or cannot be asked about (no mail address) has empty sources.
    let (op, folder) = export(&server.base, &http, state.path(), HOSTILE).await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    for name in ["crm", "tickets", "uploads"] {
        let source = manifest.sources.iter().find(|s| s.name == name).unwrap();
        assert_eq!(source.outcome, SourceOutcome::Empty, "{source:?}");
    }
    let asked: Vec<String> =
        crm.seen().iter().map(|s| s.target.clone()).filter(|t| t.starts_with("/tickets/o")).collect();
    assert_eq!(asked, ["/tickets/o'brien%22;%20DROP%20TABLE%20orders;%20--"], "the id is encoded in one path segment");
}

#[test]
fn sources_check_probes_http_sources_and_reports_a_refused_token() {
    let state = tempfile::tempdir().unwrap();
    let crm = crm();
    let sources = http_sources(state.path(), &crm);
    let check = |token: &str| {
        Command::new(env!("CARGO_BIN_EXE_dpo-server"))
            .args(["sources", "check", "--sources"])
            .arg(&sources)
            .env("CRM_TOKEN", token)
            .output()
            .unwrap()
    };
    let good = check("s3cret-token");
    let out = String::from_utf8_lossy(&good.stdout).into_owned() + &String::from_utf8_lossy(&good.stderr);
    assert!(good.status.success(), "{out}");
    assert!(out.contains("crm") && out.contains("answered 404"), "{out}");
    let bad = check("wrong");
    let out = String::from_utf8_lossy(&bad.stdout).into_owned() + &String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && out.contains("401") && out.contains("token_env"), "{out}");
    assert!(!out.contains("wrong"), "the token is never printed: {out}");
}

#[tokio::test]
async fn further_directory_attributes_find_a_persons_rows_and_show_in_the_profile() {
    let state = tempfile::tempdir().unwrap();
    let users = state.path().join("users.csv");
    std::fs::write(
        &users,
        "id,userPrincipalName,mail,employeeId\nalice,alice@contoso.example,,E-17\nbob,bob@contoso.example,,E-18\n",
    )
    .unwrap();
    let import = |extra: &[&str]| {
        let (ok, out) = dpo_server(&[&["users", "import", &users.to_string_lossy()], extra].concat());
        assert!(ok, "{out}");
    };
    import(&["--state-dir", &state.path().to_string_lossy()]);
    {
        let conn = rusqlite::Connection::open(state.path().join("hr.db")).unwrap();
        conn.execute_batch(
            "CREATE TABLE leave (employee TEXT, days INTEGER);
             INSERT INTO leave VALUES ('E-17', 3), ('E-18', 5), ('E-17', 1);",
        )
        .unwrap();
    }
    let sources = write_sources(
        state.path(),
        "attributes = [\"employeeId\"]\nbuiltin = [\"profile\"]\n\n[[source]]\nname = \"hr\"\nkind = \"sql\"\nurl = \"sqlite:hr.db\"\n\
         [[source.query]]\nname = \"leave\"\nsql = \"SELECT days FROM leave WHERE employee = :employeeId ORDER BY days\"\n",
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let http = admin_http(state.path());
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    assert_eq!(lines(&folder.join("hr/leave.jsonl")), [json!({"days": 1}), json!({"days": 3})], "alice's rows only");
    let profile: Value = serde_json::from_slice(&std::fs::read(folder.join("profile.json")).unwrap()).unwrap();
    assert_eq!(profile["employeeId"], "E-17", "{profile}");
    // Only the profile of dpo's own sources, as the file says.
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let names: Vec<&str> = manifest.sources.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["profile", "hr"]);
    assert!(!folder.join("activity.jsonl").exists() && !folder.join("drive").exists());

    // The PostgreSQL directory keeps them as well.
    let database = fresh_database().expect("a database in the test cluster");
    import(&["--database", &database]);
    let (ok, out) =
        dpo_server(&["sources", "preview", "bob", "--sources", &sources.to_string_lossy(), "--database", &database]);
    assert!(ok && out.contains("hr/leave.jsonl: 1 rows"), "{out}");
}

#[tokio::test]
async fn a_dropped_database_connection_is_asked_again_and_each_row_written_once() {
    let database = fresh_database().expect("a database in the test cluster");
    execute(&database, "CREATE TABLE visits (id INT); INSERT INTO visits SELECT generate_series(1, 3);").unwrap();
    let (state, http) = state_with_users();
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"web\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"visits\"\nsql \
             = \"WITH pause AS (SELECT pg_sleep(2)) SELECT id FROM visits, pause WHERE :id::text IS NOT NULL ORDER BY id\"\n"
        ),
    );
    let server = serve_logged(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let destination = state.path().join("exports/out");
    let id = submit_export(&http, &server.base, "alice", &format!("file://{}/", destination.display())).await;

    // The database ends the export's connection while its query runs (as a failover or a restart would).
    let (admin, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let ended = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'WITH pause%' AND pid <> \
                 pg_backend_pid()",
                &[],
            )
            .await
            .unwrap();
        if ended.iter().any(|row| row.get::<_, bool>(0)) {
            break;
        }
        assert!(Instant::now() < deadline, "the export's query never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let deadline = Instant::now() + Duration::from_secs(60);
    let op = loop {
        let (_, op) = operation(&http, &server.base, &id).await;
        if op["status"] == "complete" || op["status"] == "failed" {
            break op;
        }
        assert!(Instant::now() < deadline, "export did not finish: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(op["status"], "complete", "the query was asked again: {op}");
    let folder = destination.join(&id);
    assert_eq!(lines(&folder.join("web/visits.jsonl")), [json!({"id": 1}), json!({"id": 2}), json!({"id": 3})]);
    Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap().verify_folder(&folder).unwrap();
    assert!(server.logs("writing its file again").await, "the log says the source was asked again");
}

#[tokio::test]
async fn a_million_rows_of_one_person_are_streamed_and_counted_exactly() {
    let database = fresh_database().expect("a database in the test cluster");
    // alice has 1,000,000 of the 1,111,111 rows, bob the rest.
    execute(
        &database,
        "CREATE TABLE events (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, at TIMESTAMPTZ NOT NULL,
           amount NUMERIC(10, 2) NOT NULL, detail JSONB);
         INSERT INTO events SELECT g, CASE WHEN g % 10 = 0 THEN 'bob' ELSE 'alice' END,
           timestamptz '2025-01-01 00:00:00+00' + g * interval '1 second', (g % 100000) / 100.0,
           jsonb_build_object('page', g % 13)
         FROM generate_series(1, 1111111) g;
         CREATE INDEX events_customer ON events (customer, id);",
    )
    .unwrap();
    let (client, connection) = tokio_postgres::connect(&database, tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let count: i64 =
        client.query_one("SELECT count(*) FROM events WHERE customer = 'alice'", &[]).await.unwrap().get(0);
    assert_eq!(count, 1_000_000);

    let (state, http) = state_with_users();
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"web\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \"events\"\nsql \
             = \"SELECT id, at, amount, detail FROM events WHERE customer = :id ORDER BY id\"\n"
        ),
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let listed = manifest.objects.iter().find(|o| o.path == "web/events.jsonl").expect("the rows' file");
    assert_eq!(listed.rows, Some(count as u64), "the manifest counts every row, as count(*) does");

    // Each line one row, in order, read back without holding the file.
    use std::io::BufRead;
    let file = std::io::BufReader::new(std::fs::File::open(folder.join("web/events.jsonl")).unwrap());
    let (mut lines, mut last_id) = (0u64, 0i64);
    for line in file.lines() {
        let row: Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = row["id"].as_i64().unwrap();
        assert!(id > last_id && id % 10 != 0, "in order, alice's only: {row}");
        last_id = id;
        lines += 1;
    }
    assert_eq!(lines, count as u64);
    manifest.verify_folder(&folder).expect("every file as listed");
    match crate::common::peak_rss_mib(server.child.id()) {
        Some(mib) => eprintln!("peak RSS of the server (a debug build) while it streamed 1,000,000 rows: {mib:.1} MiB"),
        None => eprintln!("peak RSS of the server: not readable here"),
    }
}

#[tokio::test]
async fn a_key_in_an_http_sources_url_shows_nowhere_even_when_the_api_echoes_it() {
    let (state, http) = state_with_users();
    // The API answers 400 repeating the URL it was asked, key included, as some do.
    let api =
        ScriptedHttp::start(|request, _| Reply::json(400, json!({"error": format!("bad request {}", request.target)})));
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"keyed\"\nkind = \"http\"\nurl = \"{}/people/{{id}}?api_key=K3Ysecret\"\n",
            api.base
        ),
    );
    let server = serve_logged(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("400") && reason.contains("api_key=REDACTED"), "{reason}");
    assert!(!op.to_string().contains("K3Ysecret"), "{op}");
    let manifest = std::fs::read_to_string(folder.join("manifest.json")).unwrap();
    assert!(!manifest.contains("K3Ysecret"), "{manifest}");
    assert!(api.seen().iter().any(|s| s.target.contains("api_key=K3Ysecret")), "the API did get its key");
    assert!(server.logged("K3Ysecret").is_empty(), "{:?}", server.logged("K3Ysecret"));
}

/// An API whose every page of one record links to the next, answering each page after `delay`.
fn endless_api(delay: Duration) -> ScriptedHttp {
    ScriptedHttp::start(move |request, base| {
        std::thread::sleep(delay);
        let n: u64 = request.target.rsplit("page=").next().and_then(|n| n.parse().ok()).unwrap_or(0);
        Reply::json(200, json!({"value": [{"n": n}], "@odata.nextLink": format!("{base}/people/alice?page={}", n + 1)}))
    })
}

#[tokio::test]
async fn an_endless_api_ends_at_the_sources_max_pages_with_that_reason() {
    let (state, http) = state_with_users();
    let api = endless_api(Duration::ZERO);
    let sources = write_sources(
        state.path(),
        &format!(
            "[[source]]\nname = \"endless\"\nkind = \"http\"\nurl = \"{}/people/{{id}}\"\nmax_pages = 40\n",
            api.base
        ),
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "failed", "{op}");
    let reason = op["@dpo.failureReason"].as_str().unwrap();
    assert!(reason.contains("source endless") && reason.contains("max_pages of 40"), "{reason}");
    assert_eq!(api.seen().len(), 40, "no page past the limit is asked for");
    // What was read is kept, marked partial, as for any failed source.
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let kept = manifest.objects.iter().find(|o| o.path == "endless/endless.jsonl").expect("the pages read");
    assert!(kept.partial && kept.rows == Some(40), "{kept:?}");
}

#[tokio::test]
async fn a_cancelled_export_stops_reading_an_api_within_a_second_and_keeps_nothing() {
    let (state, http) = state_with_users();
    let api = endless_api(Duration::from_millis(50));
    let sources = write_sources(
        state.path(),
        &format!("[[source]]\nname = \"endless\"\nkind = \"http\"\nurl = \"{}/people/{{id}}\"\n", api.base),
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let destination = state.path().join("exports/out");
    let id = submit_export(&http, &server.base, "alice", &format!("file://{}/", destination.display())).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while api.seen().len() < 10 {
        assert!(Instant::now() < deadline, "the API is being read");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let deleted = http.delete(format!("{}/v1.0/dataPolicyOperations/{id}", server.base)).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let cancelled_at = Instant::now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let late: Vec<Duration> = api.seen().iter().filter(|s| s.at > cancelled_at).map(|s| s.at - cancelled_at).collect();
    assert!(late.iter().all(|after| *after < Duration::from_millis(1500)), "pages asked after the DELETE: {late:?}");
    assert!(!destination.join(&id).exists(), "what the export had written is removed");
}

/// The peak resident memory in MiB of a server that exported alice with one `http` source whose only
/// page holds `records` records of about 1 KiB.
async fn peak_rss_reading_a_page_of(records: usize) -> f64 {
    let (state, http) = state_with_users();
    let record = format!("{{\"id\":0,\"text\":\"{}\"}}", "x".repeat(1000));
    let page = format!("{{\"value\":[{}]}}", vec![record.as_str(); records].join(","));
    let api = ScriptedHttp::start(move |_, _| Reply {
        status: 200,
        headers: vec![("Content-Type".into(), "application/json".into())],
        body: page.clone(),
    });
    let sources = write_sources(
        state.path(),
        &format!("[[source]]\nname = \"big\"\nkind = \"http\"\nurl = \"{}/people/{{id}}\"\n", api.base),
    );
    let server = serve(state.path(), &["--export-workers", "1", "--sources", &sources.to_string_lossy()]);
    let (op, folder) = export(&server.base, &http, state.path(), "alice").await;
    assert_eq!(op["status"], "complete", "{op}");
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).unwrap();
    let file = manifest.objects.iter().find(|o| o.path == "big/big.jsonl").expect("the records");
    assert_eq!(file.rows, Some(records as u64));
    crate::common::peak_rss_mib(server.child.id()).expect("the server's peak memory")
}

#[tokio::test]
async fn a_large_page_is_not_held_several_times_over() {
    let (small, large) = (peak_rss_reading_a_page_of(10).await, peak_rss_reading_a_page_of(30_000).await);
    // The page (30 MB) is held once while it is handed out in pieces of 1 MiB (54 MiB of growth measured
    // in a debug build, with the reading's buffers): it used to be held about three times (the body as it
    // grew by doubling, and every record copied out of it at once: 102 MiB).
    let grown = large - small;
    assert!(grown < 75.0, "a 30 MB page grew the server's peak by {grown:.1} MiB ({small:.1} → {large:.1})");
}

/// A shop in PostgreSQL (a read-only role for its queries, a writing one for erasure) and a support desk in
/// SQLite, each holding two customers' rows, with erase statements, retained invoices and an objects source.
fn erasing_sources(state: &Path) -> (PathBuf, String, PathBuf) {
    let database = fresh_database().expect("a database in the test cluster");
    let suffix = database.rsplit('/').next().unwrap_or("db").to_string();
    execute(
        &database,
        &format!(
            "CREATE TABLE customers (id INT PRIMARY KEY, email TEXT, name TEXT);
             INSERT INTO customers VALUES (1, 'casey@shop.example', 'Casey'), (2, 'robin@shop.example', 'Robin');
             CREATE TABLE reviews (id INT PRIMARY KEY, email TEXT, body TEXT);
             INSERT INTO reviews VALUES (1, 'casey@shop.example', 'great'), (2, 'casey@shop.example', 'ok'),
                                        (3, 'robin@shop.example', 'meh');
             CREATE TABLE invoices (id INT PRIMARY KEY, email TEXT, total NUMERIC);
             INSERT INTO invoices VALUES (1, 'casey@shop.example', 12.5);
             CREATE ROLE reader_{suffix} LOGIN; GRANT SELECT ON ALL TABLES IN SCHEMA public TO reader_{suffix};
             CREATE ROLE eraser_{suffix} LOGIN;
             GRANT SELECT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO eraser_{suffix};"
        ),
    )
    .unwrap();
    let as_role = |role: &str| {
        let mut url = url::Url::parse(&database).unwrap();
        url.set_username(&format!("{role}_{suffix}")).unwrap();
        url.to_string()
    };
    let desk = state.join("desk.db");
    let conn = rusqlite::Connection::open(&desk).unwrap();
    conn.execute_batch(
        "CREATE TABLE tickets (id INTEGER PRIMARY KEY, email TEXT, subject TEXT);
         INSERT INTO tickets (email, subject) VALUES ('casey@shop.example', 'refund'), ('robin@shop.example', 'late');",
    )
    .unwrap();
    drop(conn);
    let uploads = state.join("uploads/casey@shop.example");
    std::fs::create_dir_all(&uploads).unwrap();
    std::fs::write(uploads.join("photo.jpg"), b"jpeg").unwrap();
    let sources = write_sources(
        state,
        &format!(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{reader}\"\nerase_url = \"{eraser}\"\n\
             [[source.query]]\nname = \"customers\"\nsql = \"SELECT * FROM customers WHERE email = :mail\"\n\
             [[source.erase]]\nname = \"mask_customer\"\nsql = \"UPDATE customers SET name = NULL WHERE email = :mail\"\n\
             [[source.erase]]\nname = \"reviews\"\nsql = \"DELETE FROM reviews WHERE email = :mail\"\nmax_rows = 1\n\
             [[source.erase]]\nname = \"by_id\"\nsql = \"DELETE FROM reviews WHERE email = :id\"\n\
             [[source.retain]]\nname = \"invoices\"\nsql = \"SELECT id FROM invoices WHERE email = :mail\"\nreason = \"invoices, 10 years\"\n\
             [[source]]\nname = \"desk\"\nkind = \"sql\"\nurl = \"sqlite:desk.db\"\nerase_url = \"sqlite:desk.db\"\n\
             [[source.query]]\nname = \"tickets\"\nsql = \"SELECT * FROM tickets WHERE email = :mail\"\n\
             [[source.erase]]\nname = \"tickets\"\nsql = \"DELETE FROM tickets WHERE email = :mail\"\n\
             [[source]]\nname = \"uploads\"\nkind = \"objects\"\nurl = \"file://{}/uploads/{{mail}}/\"\nerase = true\n",
            state.display(),
            reader = as_role("reader"),
            eraser = as_role("eraser"),
        ),
    );
    (sources, database, desk)
}

#[test]
fn sources_check_prepares_erase_statements_and_preview_erase_counts_what_they_would_change_changing_nothing() {
    let (state, _http) = state_with_users();
    let (sources, database, desk) = erasing_sources(state.path());
    let sources = sources.to_string_lossy().into_owned();
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &sources]);
    assert!(ok, "{out}");
    for line in
        ["shop/erase:mask_customer: ok", "shop/erase:reviews: ok", "shop/retain:invoices: ok", "desk/erase:tickets: ok"]
    {
        assert!(out.contains(line), "{line}: {out}");
    }
    let state_dir = state.path().to_string_lossy().into_owned();
    let erase_preview = || {
        dpo_server(&[
            "sources",
            "preview",
            "--erase",
            "--sources",
            &sources,
            "--state-dir",
            &state_dir,
            "--email",
            "casey@shop.example",
        ])
    };
    let (ok, out) = erase_preview();
    assert!(out.contains("shop/erase:mask_customer: would change 1 rows (max_rows 10000; rolled back)"), "{out}");
    assert!(out.contains("shop/erase:reviews: would change 2 rows, over its max_rows of 1"), "{out}");
    assert!(out.contains("shop/erase:by_id: skipped: it names :id, which the request does not give"), "{out}");
    assert!(out.contains("shop/retain:invoices: 1 rows kept (invoices, 10 years)"), "{out}");
    assert!(out.contains("desk/erase:tickets: would change 1 rows"), "{out}");
    assert!(out.contains("uploads/: 1 objects would be deleted"), "{out}");
    assert!(!ok, "a step over its max_rows fails the preview: {out}");
    // Nothing changed anywhere.
    let count = |select: &str| dpo_test_support::postgres_cluster::count(&database, select).unwrap();
    assert_eq!(count("SELECT count(*) FROM customers WHERE name IS NOT NULL"), 2);
    assert_eq!(count("SELECT count(*) FROM reviews"), 3);
    let tickets: i64 =
        rusqlite::Connection::open(&desk).unwrap().query_row("SELECT count(*) FROM tickets", [], |r| r.get(0)).unwrap();
    assert_eq!(tickets, 2);
    assert!(state.path().join("uploads/casey@shop.example/photo.jpg").exists());
    // A statement the writing role may not run fails the check, saying so.
    let broken = std::fs::read_to_string(&sources)
        .unwrap()
        .replace("DELETE FROM reviews WHERE email = :mail", "DELETE FROM nowhere WHERE email = :mail");
    std::fs::write(&sources, broken).unwrap();
    let (ok, out) = dpo_server(&["sources", "check", "--sources", &sources]);
    assert!(!ok, "{out}");
    assert!(out.contains("shop/erase:reviews: ") && out.contains("nowhere"), "{out}");
}
