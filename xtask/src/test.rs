//! `cargo xtask test`: everything CI runs, installing what it needs into `.tools/` first.
//!
//! Steps, in order: formatting, clippy, the spec gate (`cargo xtask check`), the OpenAPI validator
//! (openapi-spec-validator from PyPI, in `.tools/venv`), schemathesis (PyPI, same venv) against a live
//! server, and every test of the workspace, with Azurite and Microsoft's JavaScript Graph SDK (from npm, in
//! `.tools/node_modules`), Microsoft's Python Graph SDK (msgraph-sdk from PyPI, in `.tools/venv`) and moto
//! (PyPI, same venv: the S3 API drives are read from) for the export, interop and drives tests; then the
//! end-to-end suites once more over a throwaway PostgreSQL cluster (Debian's `postgresql` package,
//! installed if missing).

use anyhow::{Context, bail};
use dpo_test_support::postgres_cluster::{self, Cluster, DATABASE_URL_VARIABLE};
use std::{
    path::{Path, PathBuf},
    process::Command,
};

/// openapi-spec-validator release the test command installs.
const SPEC_VALIDATOR: &str = "openapi-spec-validator==0.8.5";
/// Azurite (the Azure Storage emulator) release the export tests run against.
pub const AZURITE: &str = "azurite@3.37.0";
/// schemathesis release the conformance step runs.
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
/// Microsoft's JavaScript Graph SDK release the interop test drives.
const GRAPH_SDK: &str = "@microsoft/microsoft-graph-client@3.0.7";
/// moto (an S3 API server) release the drives tests read users' drives from.
const MOTO: &str = "moto[server]==5.1.18";
/// Microsoft's Python Graph SDK release whose page iterator the interop test drives.
const PYTHON_GRAPH_SDK: &str = "msgraph-sdk==1.65.0";
/// Prometheus' own Python client, whose parser reads the admin listener's `/metrics` in the tests.
const PROMETHEUS_CLIENT: &str = "prometheus-client==0.21.1";

/// The root of the checkout xtask was run in (found at run time, see
/// [`dpo_openapi::layout::SpecLayout::of_this_checkout`]).
pub fn workspace_root() -> PathBuf {
    dpo_openapi::layout::SpecLayout::of_this_checkout().root().to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

fn run(step: &str, command: &mut Command) -> anyhow::Result<()> {
    println!("==> {step}");
    let status = command.current_dir(workspace_root()).status().with_context(|| format!("starting: {step}"))?;
    if !status.success() {
        bail!("step failed: {step} ({status})");
    }
    Ok(())
}

/// A Python virtual environment under `.tools/venv` with `package` installed; returns its bin folder.
/// `installed` is a file of the venv that exists once the package is there (its executable, or a marker
/// this function writes for a library, relative to the venv).
pub fn python_tool(package: &str, installed: &str) -> anyhow::Result<PathBuf> {
    let venv = workspace_root().join(".tools").join("venv");
    let bin = venv.join("bin");
    if !bin.join("python").exists() {
        run("create .tools/venv", Command::new("python3").args(["-m", "venv"]).arg(&venv))?;
    }
    let marker = venv.join(installed);
    if !marker.exists() {
        run(
            &format!("install {package} into .tools/venv"),
            Command::new(bin.join("python")).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                package,
            ]),
        )?;
        if !marker.exists() {
            std::fs::write(&marker, format!("{package}\n"))?;
        }
    }
    Ok(bin)
}

/// Installs an npm package into `.tools/node_modules` unless `marker` (a path inside `node_modules`) is
/// already there; returns the marker's full path.
pub fn npm_tool(package: &str, marker: &str) -> anyhow::Result<PathBuf> {
    let tools = workspace_root().join(".tools");
    let path = tools.join("node_modules").join(marker);
    if !path.exists() {
        std::fs::create_dir_all(&tools)?;
        run(
            &format!("install {package} into .tools"),
            Command::new("npm").args(["install", "--prefix"]).arg(&tools).args([
                "--no-audit",
                "--no-fund",
                "--loglevel=error",
                package,
            ]),
        )?;
    }
    Ok(path)
}

/// Runs the whole pipeline.
pub fn run_all() -> anyhow::Result<()> {
    run("cargo fmt --check", cargo().args(["fmt", "--all", "--", "--check"]))?;
    run("cargo clippy", cargo().args(["clippy", "--workspace", "--all-targets", "--quiet", "--", "-D", "warnings"]))?;
    println!("==> cargo xtask check");
    crate::spec::check()?;
    let bin = python_tool(SPEC_VALIDATOR, "bin/openapi-spec-validator")?;
    run(
        "openapi-spec-validator openapi/dpo.json",
        Command::new(bin.join("openapi-spec-validator")).arg("openapi/dpo.json"),
    )?;
    conformance()?;
    let azurite = npm_tool(AZURITE, ".bin/azurite-blob")?;
    let graph_sdk = npm_tool(GRAPH_SDK, "@microsoft/microsoft-graph-client/package.json")?;
    let graph_sdk = graph_sdk.parent().map(Path::to_path_buf).unwrap_or_default();
    let python_graph_sdk = python_tool(PYTHON_GRAPH_SDK, "msgraph-sdk.installed")?.join("python");
    let moto = python_tool(MOTO, "bin/moto_server")?.join("moto_server");
    let prometheus = python_tool(PROMETHEUS_CLIENT, "prometheus-client.installed")?.join("python");
    // One throwaway PostgreSQL cluster for the whole run: the replica tests use it in the first pass, and
    // the second pass runs the end-to-end suites over it instead of SQLite.
    let cluster = postgres_cluster()?;
    let tools = [
        ("DPO_AZURITE", azurite.into_os_string()),
        ("DPO_GRAPH_SDK", graph_sdk.into_os_string()),
        ("DPO_PYTHON_GRAPH_SDK", python_graph_sdk.into_os_string()),
        ("DPO_MOTO", moto.into_os_string()),
        ("DPO_PROMETHEUS_PYTHON", prometheus.into_os_string()),
        (DATABASE_URL_VARIABLE, cluster.url.clone().into()),
    ];
    println!("==> cargo test (SQLite)");
    let (mut passed, mut failed) = cargo_test(&["--workspace"], &tools)?;
    println!("==> cargo test (the end-to-end suites over PostgreSQL)");
    let mut on_postgres = tools.to_vec();
    on_postgres.push(("DPO_TEST_STORE", "postgres".into()));
    let (p, f) = cargo_test(&END_TO_END_SUITES, &on_postgres)?;
    (passed, failed) = (passed + p, failed + f);
    drop(cluster);
    // One closing line for the whole run (cargo prints one per test binary, the last often a doc-test
    // binary with nothing in it).
    println!("tests: {passed} passed, {failed} failed");
    if failed > 0 {
        bail!("{failed} tests failed");
    }
    Ok(())
}

/// schemathesis against a live server: every operation, its examples and generated cases, every check.
fn conformance() -> anyhow::Result<()> {
    let bin = python_tool(SCHEMATHESIS, "bin/st")?;
    run("cargo build --bins", cargo().args(["build", "--workspace", "--bins", "--quiet"]))?;
    let root = workspace_root();
    let server_bin = root.join("target/debug/dpo-server");
    let state = root.join(".tools/conformance-state");
    let _ = std::fs::remove_dir_all(&state);
    std::fs::create_dir_all(&state)?;
    std::fs::write(
        state.join("users.json"),
        r#"[{"id":"alice","userPrincipalName":"alice@contoso.example"},{"id":"0","userPrincipalName":"zero@contoso.example"}]"#,
    )?;
    run(
        "load the conformance users",
        Command::new(&server_bin)
            .args(["users", "import"])
            .arg(state.join("users.json"))
            .arg("--state-dir")
            .arg(&state),
    )?;
    let mut serve = Command::new(&server_bin);
    serve
        .args(["serve", "--bind", "127.0.0.1:0", "--log-level", "error", "--export-workers", "0", "--state-dir"])
        .arg(&state);
    let server = dpo_test_support::process::start_announced("dpo-server", &mut serve)?;
    let base = server.url.clone();
    let token = Command::new(&server_bin)
        .args([
            "token",
            "--user",
            "conformance",
            "--admin",
            "--scopes",
            "User.Export.All,AuditLog.Read.All,SubjectRightsRequest.ReadWrite.All",
            "--state-dir",
        ])
        .arg(&state)
        .output()
        .context("minting a token")?;
    let token = String::from_utf8(token.stdout)?.trim().to_string();
    run(
        "schemathesis run openapi/dpo.json (all checks)",
        Command::new(bin.join("st"))
            .arg("--config-file")
            .arg(root.join("openapi/schemathesis.toml"))
            .args(["run", "openapi/dpo.json", "--checks", "all", "--max-examples", "25", "--no-color", "--url"])
            .arg(format!("{base}/v1.0"))
            .arg("-H")
            .arg(format!("Authorization: Bearer {token}")),
    )?;
    drop(server);
    Ok(())
}

/// The end-to-end suites, which run once over each store: every suite of the root package's test binary
/// but the drift check (which starts no server), and the dpo CLI's.
const END_TO_END_SUITES: [&str; 10] =
    ["-p", "dpo", "--test", "all", "-p", "dpo-cli", "--test", "cli", "--", "--skip=drift::"];

/// A throwaway PostgreSQL cluster for the run, installing Debian's `postgresql` package first if the
/// machine has no PostgreSQL and this runs as root.
fn postgres_cluster() -> anyhow::Result<Cluster> {
    if postgres_cluster::bin_dir().is_err() {
        run(
            "apt-get install postgresql",
            Command::new("sh")
                .args(["-c", "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql"]),
        )?;
    }
    println!("==> start a PostgreSQL cluster for the tests");
    Cluster::start(false).map_err(|e| anyhow::anyhow!("starting PostgreSQL: {e}"))
}

/// Runs `cargo test` with `selection` (packages and test targets), echoing cargo's output, and adds up
/// its per-binary results.
fn cargo_test(selection: &[&str], env: &[(&str, std::ffi::OsString)]) -> anyhow::Result<(u64, u64)> {
    use std::io::{BufRead, BufReader};
    let mut child = cargo()
        .args(["test", "--no-fail-fast"])
        .args(selection)
        .envs(env.iter().map(|(k, v)| (*k, v.as_os_str())))
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .context("starting cargo test")?;
    let (mut passed, mut failed) = (0, 0);
    if let Some(out) = child.stdout.take() {
        for line in BufReader::new(out).lines() {
            let line = line?;
            println!("{line}");
            if let Some(rest) = line.strip_prefix("test result: ") {
                let number_before = |word: &str| -> u64 {
                    rest.split(';')
                        .find_map(|part| {
                            part.trim()
                                .trim_start_matches("ok.")
                                .trim_start_matches("FAILED.")
                                .trim()
                                .strip_suffix(word)
                        })
                        .and_then(|n| n.trim().parse().ok())
                        .unwrap_or(0)
                };
                passed += number_before("passed");
                failed += number_before("failed");
            }
        }
    }
    let status = child.wait()?;
    if !status.success() && failed == 0 {
        bail!("cargo test failed ({status})");
    }
    Ok((passed, failed))
}
