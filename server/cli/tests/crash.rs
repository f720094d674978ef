//! The real `dpo-server` binary killed with SIGKILL in the middle of an export: started again over the same
//! state directory, it runs the export again (its one file was not finished, so it is written once more)
//! and ends `complete` and whole; meanwhile its memory stays bounded by its buffers, not by the file size.

use crate::common::serve;
use dpo_client::manifest::Manifest;
use dpo_server::{auth::LOCAL_TENANT, export::drive_files::drive_dir};
use std::{
    path::Path,
    time::{Duration, Instant},
};

/// Peak resident memory of a process, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

async fn operation(http: &reqwest::Client, base: &str, id: &str) -> serde_json::Value {
    crate::common::operation(http, base, id).await.1
}

#[tokio::test]
async fn a_server_killed_mid_export_finishes_it_after_a_restart_with_bounded_memory() {
    let state = tempfile::tempdir().unwrap();
    crate::common::import_users(state.path(), r#"[{"id":"alice","userPrincipalName":"alice@contoso.example"}]"#, None);
    // 256 MiB in one file: far more than the server may hold in memory.
    let drive = drive_dir(&state.path().join("drives"), LOCAL_TENANT, "alice");
    std::fs::create_dir_all(&drive).unwrap();
    let block: Vec<u8> = (0..1024 * 1024u32).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    {
        use std::io::Write;
        let mut file = std::fs::File::create(drive.join("archive.bin")).unwrap();
        for _ in 0..256 {
            file.write_all(&block).unwrap();
        }
    }
    let http = crate::common::admin_http(state.path());

    let first = serve(state.path(), &[]);
    let destination = state.path().join("exports/alice");
    let id = crate::common::submit_export(&http, &first.base, "alice", &url_of(&destination)).await;

    // Wait until it is well under way, then SIGKILL.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let op = operation(&http, &first.base, &id).await;
        let progress = op["progress"].as_f64().unwrap_or(0.0);
        if op["status"] == "running" && progress > 0.0 {
            break;
        }
        assert!(op["status"] != "complete", "finished before it could be killed: {op}");
        assert!(Instant::now() < deadline, "never ran: {op}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    drop(first); // kill -9
    assert!(!destination.join(&id).join("manifest.json").exists(), "killed before the manifest");

    let second = serve(state.path(), &[]);
    let pid = second.child.id();
    let deadline = Instant::now() + Duration::from_secs(300);
    let done = loop {
        let op = operation(&http, &second.base, &id).await;
        if op["status"] == "complete" || op["status"] == "failed" {
            break op;
        }
        assert!(Instant::now() < deadline, "did not finish after the restart: {op}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(done["status"], "complete", "{done}");
    assert_eq!(done["progress"], 100.0);

    let folder = destination.join(&id);
    let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json")).unwrap()).expect("a manifest");
    manifest.verify_folder(&folder).expect("every object is as listed");
    assert!(manifest.objects.iter().any(|o| o.size == 256 * 1024 * 1024));
    // The upload the kill cut off was staged as `<name>#<n>`; the rerun removed it.
    let leftovers: Vec<String> = walkdir::WalkDir::new(&folder)
        .into_iter()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.contains('#'))
        .collect();
    assert!(leftovers.is_empty(), "staging files left in the export: {leftovers:?}");
    if let Some(peak) = peak_rss_kib(pid) {
        assert!(peak < 100 * 1024, "peak RSS {peak} KiB while streaming a 256 MiB file");
    }
}

fn url_of(folder: &Path) -> String {
    format!("file://{}/", folder.display())
}
