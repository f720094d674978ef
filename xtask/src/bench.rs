//! `cargo xtask bench`: throughput and latency of dpo next to the ceiling of its stack and to what a user
//! would pick instead, over loopback, written to BENCHMARKS.md. Not part of the tests.
//!
//! Side by side in one run: dpo (release build, SQLite holding `--operations` operations) for
//! `GET /dataPolicyOperations/{id}`, a list with `$filter`, and durable `exportPersonalData` submissions; a
//! bare dropshot handler answering a constant (the ceiling); Stoplight Prism mocking the bundled document.
//! The load tool is wrk (Debian's package, installed with apt-get if missing).

use crate::test::{npm_tool, workspace_root};
use anyhow::{Context, bail};
use dpo_server::{
    auth::LOCAL_TENANT,
    store::{OperationRecord, OperationStore, UserRecord, sqlite::SqliteStore},
};
use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

const PRISM: &str = "@stoplight/prism-cli@5.16.0";

struct Process(Child);

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// One wrk run's figures.
struct Figures {
    requests_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    non_2xx: u64,
}

fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    println!("==> installing wrk (apt-get)");
    let _ = Command::new("apt-get").args(["update", "-qq"]).status();
    let ok =
        Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]).status().map(|s| s.success()).unwrap_or(false);
    if !ok {
        bail!("wrk is needed: install it (Debian: apt-get install wrk)");
    }
    Ok(())
}

/// Starts `command`, reads its first line of output (which says where it listens), and returns both.
fn start_listening(mut command: Command) -> anyhow::Result<(Process, String)> {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::null()).spawn()?;
    let stdout = child.stdout.take().context("output")?;
    let process = Process(child);
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url =
        line.split_whitespace().find(|w| w.starts_with("http://")).context("no URL in the first line")?.to_string();
    Ok((process, url.trim_end_matches('/').to_string()))
}

fn wait_for_port(port: u16, timeout: Duration) -> anyhow::Result<()> {
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > timeout {
            bail!("nothing listens on port {port}");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    Ok(())
}

fn millis(text: &str) -> f64 {
    let (number, factor) = if let Some(n) = text.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = text.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1000.0)
    } else {
        (text, 1.0)
    };
    number.parse::<f64>().unwrap_or(f64::NAN) * factor
}

fn wrk(url: &str, token: Option<&str>, script: Option<&Path>, seconds: u64) -> anyhow::Result<Figures> {
    let mut command = Command::new("wrk");
    command.args(["-t2", "-c32", "--latency", "-d"]).arg(format!("{seconds}s"));
    if let Some(token) = token {
        command.arg("-H").arg(format!("Authorization: Bearer {token}"));
    }
    if let Some(script) = script {
        command.arg("-s").arg(script);
    }
    let out = command.arg(url).output().context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|r| r.trim().to_string())).unwrap_or_default()
    };
    Ok(Figures {
        requests_per_second: field("Requests/sec:").parse().unwrap_or(0.0),
        p50_ms: millis(&field("50%")),
        p99_ms: millis(&field("99%")),
        non_2xx: field("Non-2xx or 3xx responses:").parse().unwrap_or(0),
    })
}

fn seed(state: &Path, operations: u64) -> anyhow::Result<String> {
    let store = SqliteStore::open(state)?;
    let users: Vec<UserRecord> = (0..1000)
        .map(|i| UserRecord {
            id: format!("user{i}"),
            user_principal_name: format!("user{i}@contoso.example"),
            display_name: None,
            mail: None,
        })
        .collect();
    store.upsert_users(LOCAL_TENANT, &users)?;
    let start = chrono::Utc::now() - chrono::Duration::days(365);
    let mut probe = String::new();
    let batch = 50_000;
    for chunk in 0..operations.div_ceil(batch) {
        let records: Vec<OperationRecord> = (chunk * batch..((chunk + 1) * batch).min(operations))
            .map(|i| OperationRecord {
                id: uuid::Uuid::now_v7(),
                tenant_id: LOCAL_TENANT.into(),
                user_id: format!("user{}", i % 1000),
                status: dpo_api::model::DataPolicyOperationStatus::Complete,
                progress: 100.0,
                storage_location: Some(
                    "https://acct.blob.core.windows.net/exports?sv=1&sp=cw&se=2099-01-01T00:00:00Z&sig=x".into(),
                ),
                submitted_at: start + chrono::Duration::milliseconds(i as i64 * 10),
                completed_at: Some(start + chrono::Duration::milliseconds(i as i64 * 10 + 5000)),
                version: 2,
                failure_reason: None,
            })
            .collect();
        if probe.is_empty() {
            probe = records[records.len() / 2].id.to_string();
        }
        store.insert_many(&records)?;
    }
    Ok(probe)
}

/// Runs the benchmarks and writes BENCHMARKS.md.
pub fn run(operations: u64, seconds: u64) -> anyhow::Result<()> {
    ensure_wrk()?;
    let root = workspace_root();
    println!("==> cargo build --release");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "dpo-server", "-p", "xtask", "--bins"])
        .current_dir(&root)
        .status()?;
    if !built.success() {
        bail!("release build failed");
    }
    let prism = npm_tool(PRISM, ".bin/prism")?;
    let release = root.join("target/release");
    let state = root.join("target/bench-state");
    let _ = std::fs::remove_dir_all(&state);
    println!("==> seeding {operations} operations");
    let seeded = Instant::now();
    let probe = seed(&state, operations)?;
    println!("    seeded in {:.1} s", seeded.elapsed().as_secs_f64());

    let mut serve = Command::new(release.join("dpo-server"));
    serve
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "error", "--export-workers", "0", "--state-dir"])
        .arg(&state);
    let (_dpo, dpo_url) = start_listening(serve)?;
    let token_out = Command::new(release.join("dpo-server"))
        .args(["token", "--user", "bench", "--admin", "--lifetime", "7200", "--state-dir"])
        .arg(&state)
        .output()?;
    let token = String::from_utf8(token_out.stdout)?.trim().to_string();
    let (_ceiling, ceiling_url) = start_listening(Command::new(release.join("dropshot-ceiling")))?;
    let prism_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let _prism = Process(
        Command::new(&prism)
            .args(["mock", "openapi/dpo.json", "--host", "127.0.0.1", "--port", &prism_port.to_string()])
            .current_dir(&root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting Prism")?,
    );
    wait_for_port(prism_port, Duration::from_secs(60))?;

    let post = root.join("target/bench-post.lua");
    std::fs::write(
        &post,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = \
         '{\"storageLocation\":\"https://acct.blob.core.windows.net/exports?sv=1&sp=cw&se=2099-01-01T00:00:00Z&sig=x\"}'\n",
    )?;
    let get_url = format!("{dpo_url}/v1.0/dataPolicyOperations/{probe}");
    let list_url = format!("{dpo_url}/v1.0/dataPolicyOperations?$filter=userId%20eq%20'user42'&$top=20");
    let runs: Vec<(&str, Figures)> = vec![
        ("dpo: GET /dataPolicyOperations/{id}", wrk(&get_url, Some(&token), None, seconds)?),
        ("dropshot ceiling: constant GET", wrk(&format!("{ceiling_url}/dataPolicyOperations/x"), None, None, seconds)?),
        (
            "Prism mock: GET /dataPolicyOperations/{id}",
            wrk(&format!("http://127.0.0.1:{prism_port}/dataPolicyOperations/x"), Some(&token), None, seconds)?,
        ),
        ("dpo: list with $filter (userId eq, top 20)", wrk(&list_url, Some(&token), None, seconds)?),
        (
            "dpo: POST exportPersonalData (durable 202s)",
            wrk(&format!("{dpo_url}/v1.0/users/user1/exportPersonalData"), Some(&token), Some(&post), seconds)?,
        ),
    ];
    let export = export_throughput(&release, &root.join("target/bench-export"))?;
    let report = render(&runs, operations, seconds) + &export;
    std::fs::write(root.join("BENCHMARKS.md"), &report)?;
    println!("{report}");
    Ok(())
}

fn render(runs: &[(&str, Figures)], operations: u64, seconds: u64) -> String {
    let rps =
        |name: &str| runs.iter().find(|(n, _)| n.starts_with(name)).map(|(_, f)| f.requests_per_second).unwrap_or(0.0);
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str(&format!(
        "Measured by `cargo xtask bench --operations {operations} --seconds {seconds}` on {} ({} cores), {}.\n\
         Load: wrk, 2 threads, 32 connections, {seconds} s per row, over loopback, on the same machine as the \
         servers (they share its cores). dpo is the release build over SQLite holding {operations} operations.\n\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        chrono::Utc::now().format("%Y-%m-%d"),
    ));
    out.push_str("| what | requests/s | p50 | p99 | non-2xx |\n|---|---:|---:|---:|---:|\n");
    for (name, f) in runs {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} |\n",
            f.requests_per_second, f.p50_ms, f.p99_ms, f.non_2xx
        ));
    }
    let dpo_get = rps("dpo: GET");
    out.push_str(&format!(
        "\nRatios: dpo GET is {:.0}% of the bare dropshot ceiling (target ≥ 70%) and {:.1}× Prism (target ≥ 20×).\n",
        100.0 * dpo_get / rps("dropshot ceiling").max(1.0),
        dpo_get / rps("Prism").max(1.0),
    ));
    out
}

/// Peak resident memory of a process in MiB (Linux's VmHWM).
fn peak_rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| l.strip_prefix("VmHWM:").map(|v| v.trim().trim_end_matches("kB").trim().to_string()))
        })
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// Exports one user with a 1 GiB drive file to a local folder through a release server, and compares the
/// rate with a plain copy of the same bytes; reports the server's peak RSS.
fn export_throughput(release: &Path, dir: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    println!("==> export of a 1 GiB drive file to a local folder");
    let _ = std::fs::remove_dir_all(dir);
    let state = dir.join("state");
    let store = SqliteStore::open(&state)?;
    let user = UserRecord {
        id: "big".into(),
        user_principal_name: "big@contoso.example".into(),
        display_name: None,
        mail: None,
    };
    store.upsert_users(LOCAL_TENANT, &[user])?;
    drop(store);
    let drive = dpo_server::export::sources::drive_dir(&state.join("drives"), LOCAL_TENANT, "big");
    std::fs::create_dir_all(&drive)?;
    let source = drive.join("big.bin");
    let block: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut file = std::fs::File::create(&source)?;
    for _ in 0..256 {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    drop(file);
    let bytes = 1024.0 * 1024.0 * 1024.0;

    let copied = Instant::now();
    std::fs::copy(&source, dir.join("plain-copy.bin"))?;
    let plain = bytes / copied.elapsed().as_secs_f64() / 1e6;
    let _ = std::fs::remove_file(dir.join("plain-copy.bin"));

    let mut serve = Command::new(release.join("dpo-server"));
    serve
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "error", "--retry-after", "1", "--state-dir"])
        .arg(&state);
    let (server, url) = start_listening(serve)?;
    let pid = server.0.id();
    let token = String::from_utf8(
        Command::new(release.join("dpo-server"))
            .args(["token", "--user", "bench", "--admin", "--state-dir"])
            .arg(&state)
            .output()?
            .stdout,
    )?
    .trim()
    .to_string();
    let destination = format!("file://{}/", dpo_server::config::absolute(&state.join("exports/big")).display());
    let started = Instant::now();
    let submitted = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-X",
            "POST",
            "-H",
            "content-type: application/json",
            "-H",
        ])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("-d")
        .arg(format!("{{\"storageLocation\":\"{destination}\"}}"))
        .arg(format!("{url}/v1.0/users/big/exportPersonalData"))
        .output()?;
    if String::from_utf8_lossy(&submitted.stdout) != "202" {
        bail!("the export was not accepted: {}", String::from_utf8_lossy(&submitted.stdout));
    }
    let count_complete = || -> anyhow::Result<String> {
        let out = Command::new("curl")
            .args(["-s", "-H"])
            .arg(format!("Authorization: Bearer {token}"))
            .arg(format!("{url}/v1.0/dataPolicyOperations/$count?$filter=status%20eq%20'complete'"))
            .output()?;
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    };
    while count_complete()? != "1" {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the 1 GiB export did not finish in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let rate = bytes / started.elapsed().as_secs_f64() / 1e6;
    let rss = peak_rss_mib(pid);
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
    Ok(format!(
        "\n## Export\n\n| what | MB/s | note |\n|---|---:|---|\n\
         | dpo: export of a 1 GiB drive file to a local folder (hashing, manifest) | {rate:.0} | {:.0}% of the plain copy |\n\
         | plain copy of the same bytes (the ceiling) | {plain:.0} | `std::fs::copy` |\n\
         \nPeak RSS of the server during that export: {rss:.1} MiB (target < 100 MiB).\n\
         \nNot measured yet: export throughput to Azurite against a plain upload of the same bytes.\n",
        100.0 * rate / plain
    ))
}
