//! Users' drives elsewhere than the state folder (`--drives-url`): in a local folder of its own, and in an
//! S3 bucket (a real S3 API: moto's server, from PyPI, installed into `.tools/venv` by `cargo xtask test`),
//! exported through the real binary.

use crate::common::{
    Azurite, Helper, admin_http, import_users, operation, serve_with_env, start_helper, submit_export, tool,
};
use dpo_client::manifest::Manifest;
use dpo_server::{auth::LOCAL_TENANT, export::drive_files::drive_folder_name};
use object_store::{ObjectStoreExt, PutPayload, aws::AmazonS3Builder, path::Path as ObjectPath};
use sha2::{Digest, Sha256};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

/// A moto S3 server (from PyPI, installed into `.tools/venv` by `cargo xtask test`).
struct Moto(Helper);

impl Moto {
    fn start() -> Moto {
        let program = tool("DPO_MOTO", ".tools/venv/bin/moto_server");
        Moto(start_helper("moto", &program, &["-H", "127.0.0.1", "-p", "{port}"], "run `cargo xtask test`"))
    }

    fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.0.port)
    }

    /// A new bucket `name` (moto creates one on a plain PUT), and a client of it.
    async fn bucket(&self, name: &str) -> object_store::aws::AmazonS3 {
        let created = reqwest::Client::new().put(format!("{}/{name}", self.endpoint())).send().await.unwrap();
        assert!(created.status().is_success(), "bucket created: {}", created.status());
        AmazonS3Builder::new()
            .with_endpoint(self.endpoint())
            .with_allow_http(true)
            .with_access_key_id("testing")
            .with_secret_access_key("testing")
            .with_region("us-east-1")
            .with_bucket_name(name)
            .build()
            .unwrap()
    }

    /// What the server (and object_store here) needs to reach it.
    fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT", self.endpoint()),
            ("AWS_ALLOW_HTTP", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", "us-east-1".into()),
        ]
    }
}

/// Writes `content` as alice's drive through `store`, under `prefix`.
async fn put_drive(store: &dyn object_store::ObjectStore, prefix: &str, content: &BTreeMap<String, Vec<u8>>) {
    let alice = format!("{prefix}/{}/alice", drive_folder_name(LOCAL_TENANT));
    for (name, bytes) in content {
        let key = ObjectPath::from_iter(alice.split('/').chain(name.split('/')));
        store.put(&key, PutPayload::from(bytes.clone())).await.unwrap();
    }
}

/// A state folder with user `alice` in its directory, and an administrator's client.
fn state_with_alice() -> (tempfile::TempDir, reqwest::Client) {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id":"alice","userPrincipalName":"alice@contoso.example"}]"#, None);
    let http = admin_http(state.path());
    (state, http)
}

/// Exports alice through the server at `base` into `<state>/exports/alice` and returns the export's
/// folder once complete.
async fn export_alice(base: &str, http: &reqwest::Client, state: &Path) -> PathBuf {
    let destination = state.join("exports/alice");
    let id = submit_export(http, base, "alice", &format!("file://{}/", destination.display())).await;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, op) = operation(http, base, &id).await;
        if op["status"] == "complete" {
            return destination.join(&id);
        }
        assert!(op["status"] != "failed", "export failed: {op}");
        assert!(Instant::now() < deadline, "export did not finish: {op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Exports alice through a server reading drives at `drives_url` (with `env` added to its environment);
/// returns her drive files as the export's manifest lists them.
async fn export_alice_with_drives(drives_url: &str, env: &[(&str, String)]) -> BTreeMap<String, String> {
    let (state, http) = state_with_alice();
    let server = serve_with_env(state.path(), &["--export-workers", "1", "--drives-url", drives_url], env);
    let folder = export_alice(&server.base, &http, state.path()).await;
    exported_drive(&folder)
}

/// The drive files the export's manifest lists, with their SHA-256, each checked against the file written.
fn exported_drive(folder: &Path) -> BTreeMap<String, String> {
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).expect("a manifest");
    manifest.verify_folder(folder).expect("every object is as listed");
    let drive =
        manifest.objects.iter().filter_map(|o| Some((o.path.strip_prefix("drive/")?.to_string(), o.sha256.clone())));
    drive.collect()
}

/// Files of a drive: a big one (several blocks), one in a folder with a space, one with a `#`.
fn drive_content() -> BTreeMap<String, Vec<u8>> {
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    BTreeMap::from([
        ("archive.bin".to_string(), big),
        ("My Documents/cv.txt".to_string(), b"curriculum vitae".to_vec()),
        ("notes #1.txt".to_string(), b"first notes".to_vec()),
    ])
}

fn digests(content: &BTreeMap<String, Vec<u8>>) -> BTreeMap<String, String> {
    content.iter().map(|(name, bytes)| (name.clone(), hex::encode(Sha256::digest(bytes)))).collect()
}

#[tokio::test]
async fn drives_in_an_s3_bucket_are_exported_whole() {
    let moto = Moto::start();
    let s3 = moto.bucket("drives").await;
    let content = drive_content();
    put_drive(&s3, "org", &content).await;
    // Another user's file beside alice's drive is not hers.
    s3.put(&ObjectPath::from("org/other/bob/secret.txt"), PutPayload::from_static(b"bob's")).await.unwrap();

    let exported = export_alice_with_drives("s3://drives/org", &moto.env()).await;
    assert_eq!(exported, digests(&content), "exactly alice's objects, whole");
}

#[tokio::test]
async fn a_request_store_in_an_s3_bucket_holds_what_a_request_gathers_and_the_zip_is_read_from_it() {
    let moto = Moto::start();
    let s3 = moto.bucket("requests").await;
    let (state, _) = state_with_alice();
    let drive = dpo_server::export::drive_files::drive_dir(&state.path().join("drives"), LOCAL_TENANT, "alice");
    std::fs::create_dir_all(&drive).unwrap();
    let big: Vec<u8> = (0..9 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    std::fs::write(drive.join("archive.bin"), &big).unwrap();
    let http = crate::common::privacy_admin_http(state.path());
    let args = ["--export-workers", "1", "--requests-location", "s3://requests/org"];
    let server = serve_with_env(state.path(), &args, &moto.env());
    let body = serde_json::json!({
        "dataSubject": {"email": "alice@contoso.example"}, "dataSubjectType": "currentEmployee",
        "displayName": "Alice", "description": "a copy", "regulations": ["GDPR"], "type": "access",
        "pauseAfterEstimate": false
    });
    let response = http.post(format!("{}/security/subjectRightsRequests", server.base)).json(&body).send().await;
    let created: serde_json::Value = response.unwrap().json().await.unwrap();
    let id = created["id"].as_str().expect("an id").to_string();
    let url = format!("{}/security/subjectRightsRequests/{id}", server.base);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let request: serde_json::Value = http.get(&url).send().await.unwrap().json().await.unwrap();
        let stages = request["stages"].as_array().cloned().unwrap_or_default();
        if stages.iter().any(|s| s["stage"] == "generateReport" && s["status"] == "completed") {
            break;
        }
        assert!(!stages.iter().any(|s| s["status"] == "failed"), "{request}");
        assert!(Instant::now() < deadline, "the request did not finish: {request}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Nothing in the state folder: all of it in the bucket, under the prefix.
    assert!(!state.path().join("requests").exists());
    let manifest = s3.get(&ObjectPath::from(format!("org/{id}/manifest.json"))).await.unwrap().bytes().await.unwrap();
    let manifest = Manifest::parse(&manifest).unwrap();
    let zipped = http.get(format!("{url}/getFinalAttachment()")).send().await.unwrap().bytes().await.unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped.to_vec())).expect("a zip");
    for object in &manifest.objects {
        let mut entry = archive.by_name(&object.path).expect("every object is in the zip");
        let mut content = Vec::new();
        std::io::Read::read_to_end(&mut entry, &mut content).unwrap();
        object.check(content.len() as u64, &hex::encode(Sha256::digest(&content))).unwrap();
    }
    let mut archive_bin = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("drive/archive.bin").unwrap(), &mut archive_bin).unwrap();
    assert_eq!(archive_bin, big);
    // What retention deletes, it deletes from the bucket: every object of the request's folder.
    let store = dpo_server::export::request_store::RequestStore::Objects {
        store: std::sync::Arc::new(s3),
        prefix: "org".into(),
        shown: "s3://requests/org".into(),
    };
    let removed = store.folder(id.parse().unwrap()).unwrap().remove_all().await.unwrap();
    assert_eq!(removed, manifest.objects.len() + 1, "every object and the manifest");
    let dpo_server::export::request_store::RequestStore::Objects { store, .. } = store else { unreachable!() };
    let left: Vec<_> =
        futures::TryStreamExt::try_collect::<Vec<_>>(store.list(Some(&ObjectPath::from(format!("org/{id}")))))
            .await
            .unwrap();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn drives_in_an_azure_container_are_exported_whole() {
    let azurite = Azurite::start();
    let azure = azurite.container("drives").await;
    let content = drive_content();
    put_drive(&azure, "gdpr", &content).await;
    let exported = export_alice_with_drives("az://drives/gdpr", &azurite.env()).await;
    assert_eq!(exported, digests(&content), "exactly alice's blobs, whole");
}

#[tokio::test]
async fn drives_in_a_folder_of_their_own_are_exported_and_links_stay_out() {
    let drives = tempfile::tempdir().unwrap();
    let content = drive_content();
    let alice = drives.path().join(drive_folder_name(LOCAL_TENANT)).join("alice");
    for (name, bytes) in &content {
        std::fs::create_dir_all(alice.join(name).parent().unwrap()).unwrap();
        std::fs::write(alice.join(name), bytes).unwrap();
    }
    std::os::unix::fs::symlink("/etc/hostname", alice.join("escape")).unwrap();
    let exported = export_alice_with_drives(&format!("file://{}", drives.path().display()), &[]).await;
    assert_eq!(exported, digests(&content));
}

#[test]
fn a_drives_url_dpo_cannot_read_stops_the_server_with_a_clear_message() {
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_dpo-server"))
        .args(["serve", "--bind", "127.0.0.1:0", "--drives-url", "ftp://drives.example/x", "--state-dir"])
        .arg(state.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("--drives-url \"ftp://drives.example/x\""), "{said}");
}

/// The peak resident memory in MiB of the server that exported a drive of `files` small files of alice's,
/// after checking the export is whole.
async fn peak_rss_exporting(files: usize) -> f64 {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let alice = state.path().join("drives").join(drive_folder_name(LOCAL_TENANT)).join("alice");
    for i in 0..files {
        let folder = alice.join(format!("f{:03}", i / 1000));
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::write(folder.join(format!("note{i:06}.txt")), format!("note {i}\n").repeat(10)).unwrap();
    }
    let server = crate::common::serve(state.path(), &["--export-workers", "1"]);
    let http = admin_http(state.path());
    let destination = state.path().join("exports/out");
    let id = submit_export(&http, &server.base, "alice", &format!("file://{}/", destination.display())).await;
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        let (_, op) = operation(&http, &server.base, &id).await;
        if op["status"] == "complete" {
            break;
        }
        assert!(op["status"] != "failed" && Instant::now() < deadline, "{op}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let manifest = Manifest::parse(&std::fs::read(destination.join(&id).join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.objects.iter().filter(|o| o.path.starts_with("drive/")).count(), files);
    crate::common::peak_rss_mib(server.child.id()).expect("the server's peak memory")
}

#[tokio::test]
async fn memory_does_not_grow_with_the_number_of_drive_files() {
    let (few, many) = (peak_rss_exporting(1_000).await, peak_rss_exporting(9_000).await);
    // What must grow per file (its listing, its manifest entry, the manifest and index written) is well
    // under 1 KiB; each copy prepared up front took about 3 KiB, over 20 MiB here.
    let grown_mib = many - few;
    assert!(
        grown_mib < 12.0,
        "8,000 more files grew the server's peak by {grown_mib:.1} MiB ({few:.1} → {many:.1} MiB)"
    );
    // And the whole of it stays small: with transparent huge pages, mimalloc's arenas were backed by 2 MiB
    // pages and the same export peaked at 97 MiB (49 without); a small file was read into a 1 MiB buffer
    // kept until it was written, the index and the manifest were held whole.
    assert!(many < 75.0, "exporting 9,000 files the server peaked at {many:.1} MiB");
}
