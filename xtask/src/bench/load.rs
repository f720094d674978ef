//! Driving servers and the load tool: processes stopped when dropped, and wrk runs read into figures.

use anyhow::{Context, bail};
use std::{
    path::Path,
    process::{Command, Stdio},
};

pub use dpo_test_support::process::Running as Process;

/// A release `dpo-server` over a state directory, and an administrator's token for it.
pub struct DpoServer {
    pub process: Process,
    pub url: String,
    pub token: String,
}

impl DpoServer {
    /// Starts `<release>/dpo-server serve` over `state` on a free loopback port, with `args` added, as a
    /// user runs it: every default on (logging at info), its log in a file of the state folder.
    pub fn start(release: &Path, state: &Path, args: &[&str]) -> anyhow::Result<DpoServer> {
        // The log file goes into the state folder, which a server over PostgreSQL has not made yet.
        std::fs::create_dir_all(state).with_context(|| format!("creating {}", state.display()))?;
        let mut serve = Command::new(release.join("dpo-server"));
        serve.args(["serve", "--bind", "127.0.0.1:0", "--log-file"]).arg(state.join("dpo-bench.log"));
        serve.args(args).arg("--state-dir").arg(state);
        let (process, url) = start_listening(serve)?;
        let token = mint_token(release, state, "bench", None)?;
        Ok(DpoServer { process, url, token })
    }
}

/// A two-hour administrator's token for `user`, with `scopes` (default: the export's), signed with the key
/// of the state folder `state` (`dpo-server token`).
pub fn mint_token(release: &Path, state: &Path, user: &str, scopes: Option<&str>) -> anyhow::Result<String> {
    let mut mint = Command::new(release.join("dpo-server"));
    mint.args(["token", "--user", user, "--admin", "--lifetime", "7200"]);
    if let Some(scopes) = scopes {
        mint.args(["--scopes", scopes]);
    }
    let minted = mint.arg("--state-dir").arg(state).output()?;
    Ok(String::from_utf8(minted.stdout)?.trim().to_string())
}

/// The permission of privacy administrators, for subject rights requests.
pub const PRIVACY_SCOPE: &str = "SubjectRightsRequest.ReadWrite.All";

/// One wrk run's figures.
#[derive(Clone, Copy)]
pub struct Figures {
    pub requests_per_second: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub non_2xx: u64,
}

/// Installs wrk with apt-get if it is missing.
pub fn ensure_wrk() -> anyhow::Result<()> {
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

/// Runs wrk (2 threads, 32 connections) against `url` for `seconds`, with a bearer token and a Lua script.
pub fn wrk(url: &str, token: Option<&str>, script: Option<&Path>, seconds: u64) -> anyhow::Result<Figures> {
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

/// The run with the median requests/s of `runs` (which must not be empty).
pub fn median(mut runs: Vec<Figures>) -> Figures {
    runs.sort_by(|a, b| a.requests_per_second.total_cmp(&b.requests_per_second));
    runs[runs.len() / 2]
}

/// Peak resident memory of a process in MiB (Linux's VmHWM).
pub fn peak_rss_mib(pid: u32) -> f64 {
    dpo_test_support::process::peak_rss_mib(pid).unwrap_or(f64::NAN)
}

/// Starts `command` (its stderr discarded), reads its first line of output (which says where it
/// listens), and returns the process and its URL.
pub fn start_listening(mut command: Command) -> anyhow::Result<(Process, String)> {
    let announced = dpo_test_support::process::start_announced("the server", command.stderr(Stdio::null()))?;
    Ok((announced.process, announced.url))
}
