//! The zip of a subject rights request (`getFinalAttachment`): a request holding about 1 GiB (one large
//! drive file and 10,000 small ones) streamed by a release server over loopback, next to Info-ZIP's
//! `zip -0 -r -` of the same folder to /dev/null in the same run, and the server's peak RSS.

use super::load::{DpoServer, peak_rss_mib};
use anyhow::{Context, bail};
use dpo_server::{
    auth::LOCAL_TENANT,
    store::{Directory, UserRecord, sqlite::SqliteStore},
};
use std::{
    io::Write,
    path::Path,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

/// The large file.
const LARGE: usize = 896 << 20;
/// The small files, and the size of each.
const SMALL: usize = 10_000;
const SMALL_SIZE: usize = 13 * 1024;

/// The person's drive: the large file and the small ones.
fn write_drive(drive: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(drive)?;
    let block: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut file = std::fs::File::create(drive.join("large.bin"))?;
    for _ in 0..LARGE / block.len() {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    for i in 0..SMALL {
        let folder = drive.join(format!("small/{:02}", i / 1000));
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("file{i:05}.bin")), &block[i..i + SMALL_SIZE])?;
    }
    Ok(())
}

/// Seconds of `command`, its output thrown away.
fn timed(command: &mut Command) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let status = command.stdout(Stdio::null()).stderr(Stdio::null()).status()?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(started.elapsed())
}

/// Megabytes per second.
fn rate(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / elapsed.as_secs_f64() / 1e6
}

/// Measures and returns the Markdown section.
pub fn section(release: &Path, dir: &Path) -> anyhow::Result<String> {
    println!("==> getFinalAttachment of a request holding 1 GiB, next to zip -0 -r -");
    let _ = std::fs::remove_dir_all(dir);
    let state = dir.join("state");
    let store = SqliteStore::open(&state)?;
    let person = UserRecord {
        id: "zipped".into(),
        user_principal_name: "zipped@contoso.example".into(),
        display_name: Some("Zipped Person".into()),
        mail: Some("zipped@contoso.example".into()),
        attributes: Default::default(),
    };
    store.upsert_users(LOCAL_TENANT, &[person])?;
    drop(store);
    write_drive(&dpo_server::export::drive_files::drive_dir(&state.join("drives"), LOCAL_TENANT, "zipped"))?;
    let server = DpoServer::start(release, &state, &["--retry-after", "1"])?;
    let token = super::load::mint_token(release, &state, "bench", Some(super::load::PRIVACY_SCOPE))?;
    let body = serde_json::json!({
        "dataSubject": {"email": "zipped@contoso.example"}, "dataSubjectType": "currentEmployee",
        "displayName": "bench", "description": "bench", "regulations": ["GDPR"], "type": "access",
        "pauseAfterEstimate": false
    });
    let created = Command::new("curl")
        .args(["-s", "-X", "POST", "-H", "content-type: application/json", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("-d")
        .arg(body.to_string())
        .arg(format!("{}/v1.0/security/subjectRightsRequests", server.url))
        .output()?;
    let created: serde_json::Value = serde_json::from_slice(&created.stdout).context("the created request")?;
    let id = created["id"].as_str().context("the request's id")?.to_string();
    let url = format!("{}/v1.0/security/subjectRightsRequests/{id}", server.url);
    let started = Instant::now();
    loop {
        let out =
            Command::new("curl").args(["-s", "-H"]).arg(format!("Authorization: Bearer {token}")).arg(&url).output()?;
        let request: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap_or_default();
        let stages = request["stages"].as_array().cloned().unwrap_or_default();
        if stages.iter().any(|s| s["stage"] == "generateReport" && s["status"] == "completed") {
            break;
        }
        if started.elapsed() > Duration::from_secs(900) {
            bail!("the request did not reach its report in 15 minutes: {request}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let folder = state.join("requests").join(&id);
    let zip_url = format!("{url}/getFinalAttachment()");
    let size_of = |path: &Path| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    // Once to a file, for its size and a check that it is a zip unzip reads whole.
    let zipped = dir.join("attachment.zip");
    let authorization = format!("Authorization: Bearer {token}");
    timed(Command::new("curl").args(["-s", "-o"]).arg(&zipped).args(["-H", &authorization]).arg(&zip_url))?;
    let zip_bytes = size_of(&zipped);
    timed(Command::new("unzip").arg("-tq").arg(&zipped))?;
    std::fs::remove_file(&zipped)?;
    let (mut dpo_rates, mut info_zip_rates) = (Vec::new(), Vec::new());
    for round in 1..=3 {
        println!("    round {round} of 3");
        let took = timed(Command::new("curl").args(["-s", "-o", "/dev/null", "-H", &authorization]).arg(&zip_url))?;
        dpo_rates.push(rate(zip_bytes, took));
        let info_zip = timed(Command::new("sh").arg("-c").arg("zip -q -0 -r - . > /dev/null").current_dir(&folder))?;
        info_zip_rates.push(rate(zip_bytes, info_zip));
    }
    let rss = peak_rss_mib(server.process.0.id());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
    let middle = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (dpo, info_zip) = (middle(dpo_rates), middle(info_zip_rates));
    Ok(format!(
        "\n## Subject rights request zip\n\n`getFinalAttachment()` of a request holding {:.2} GiB (a drive file of \
         896 MiB and {SMALL} files of 13 KiB, with its index.html and manifest.json), streamed by the server over \
         loopback to curl, next to Info-ZIP's `zip -0 -r -` of the same folder to /dev/null; the median of 3 \
         rounds.\n\n| what | MB/s |\n|---|---:|\n| dpo: getFinalAttachment() | {dpo:.0} |\n\
         | `zip -q -0 -r - .` to /dev/null | {info_zip:.0} |\n\nTarget ≥ 100% of Info-ZIP: {:.0}%. Peak RSS of the \
         server (gathering the request, then streaming it three times): {rss:.1} MiB (target < 100 MiB).\n",
        zip_bytes as f64 / (1024.0 * 1024.0 * 1024.0),
        100.0 * dpo / info_zip,
    ))
}
