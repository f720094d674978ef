//! The config file through the real binary: `serve --config` takes its settings below flags and the
//! environment, `config check` prints where each effective setting came from with passwords masked, and
//! a wrong file stops both with its line.

use crate::common::{admin_http, import_users, list, serve, serve_with_env, submit_export};
use std::process::Command;

fn dpo_server() -> Command {
    Command::new(env!("CARGO_BIN_EXE_dpo-server"))
}

/// How many operations a list answers on a page, on a server started with `extra` and `env`: the
/// setting `max-page-size` at work.
async fn page_size(state: &std::path::Path, extra: &[&str], env: &[(&str, String)]) -> usize {
    let server = if env.is_empty() { serve(state, extra) } else { serve_with_env(state, extra, env) };
    let http = admin_http(state);
    let target = format!("file://{}/", state.join("exports/out").display());
    while operations(&http, &server.base).await < 4 {
        submit_export(&http, &server.base, "alice", &target).await;
    }
    let page = list(&http, &server.base, "$top=100").await;
    page["value"].as_array().map(Vec::len).unwrap_or_default()
}

async fn operations(http: &reqwest::Client, base: &str) -> u64 {
    let count = http.get(format!("{base}/v1.0/dataPolicyOperations/$count")).send().await.unwrap();
    count.text().await.unwrap().trim().parse().unwrap()
}

#[tokio::test]
async fn serve_takes_the_file_below_the_environment_and_flags() {
    let state = tempfile::tempdir().unwrap();
    import_users(state.path(), r#"[{"id": "alice", "userPrincipalName": "alice@contoso.example"}]"#, None);
    let file = state.path().join("dpo.toml");
    std::fs::write(
        &file,
        "# dpo.toml
max-page-size = 2
export_workers = 0
",
    )
    .unwrap();
    let config = file.to_str().unwrap();

    assert_eq!(page_size(state.path(), &[], &[]).await, 4, "without the file");
    assert_eq!(page_size(state.path(), &["--config", config], &[]).await, 2, "from the file");
    let env = [("DPO_MAX_PAGE_SIZE", "1".to_string())];
    assert_eq!(page_size(state.path(), &["--config", config], &env).await, 1, "the environment beats the file");
    let flag = ["--config", config, "--max-page-size", "3"];
    assert_eq!(page_size(state.path(), &flag, &env).await, 3, "a flag beats both");
    // DPO_CONFIG names the file as --config does.
    let by_env = [("DPO_CONFIG", config.to_string())];
    assert_eq!(page_size(state.path(), &[], &by_env).await, 2, "the file named by DPO_CONFIG");
}

#[test]
fn config_check_prints_the_effective_settings_and_where_they_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let sources = dir.path().join("sources.toml");
    std::fs::write(&sources, "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"sqlite:shop.db\"\n\n[[source.query]]\nname = \"orders\"\nsql = \"SELECT 1 WHERE :id = :id\"\n").unwrap();
    let file = dir.path().join("dpo.toml");
    std::fs::write(
        &file,
        format!(
            "bind = \"127.0.0.1:9090\"\nexport-workers = 4\nmax-page-size = 50\n\
             database = \"postgres://dpo:s3cret@127.0.0.1:5432/dpo\"\n\
             storage-host = [\"*.blob.core.windows.net\", \"*.blob.core.usgovcloudapi.net\"]\n\
             no-admin = true\nsources = \"{}\"\n",
            sources.display()
        ),
    )
    .unwrap();
    let out = dpo_server()
        .args(["config", "check", "--config"])
        .arg(&file)
        .args(["--export-workers", "1"])
        .env("DPO_MAX_PAGE_SIZE", "20")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    for line in [
        "bind = 127.0.0.1:9090  (file)",
        "export-workers = 1  (flag)",
        "max-page-size = 20  (env)",
        "database = postgres://dpo:REDACTED@127.0.0.1:5432/dpo  (file)",
        "storage-host = *.blob.core.windows.net,*.blob.core.usgovcloudapi.net  (file)",
        "no-admin = true  (file)",
        "retry-after = 60  (default)",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} missing from:\n{stdout}");
    }
    assert!(!stdout.contains("s3cret"), "the password is masked");
    assert!(stdout.contains("settings ok, sources file"), "{stdout}");
}

#[test]
fn a_wrong_file_stops_serve_and_config_check_with_its_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        ("bind = \"127.0.0.1:0\"\n\nexport-workers = \"many\"\n", "line 3: export-workers: invalid value 'many'"),
        ("bind = \"127.0.0.1:0\"\nexprot-workers = 1\n", "line 2: exprot-workers: no such setting"),
        ("no-admin = \"yes\"\n", "line 1: no-admin: is a switch"),
        ("bind = \n", "TOML parse error at line 1"),
        ("bind = \"not an address\"\n", "line 1: bind: invalid value 'not an address'"),
        ("storage-host = \"*\"\n", "line 1: storage-host: invalid value '*'"),
    ];
    for (text, expected) in cases {
        let file = dir.path().join("dpo.toml");
        std::fs::write(&file, text).unwrap();
        for command in [&["serve", "--state-dir"][..], &["config", "check", "--state-dir"][..]] {
            let out = dpo_server().args(command).arg(dir.path()).arg("--config").arg(&file).output().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{command:?} with {text:?} fails");
            assert!(stderr.contains(expected), "{command:?} with {text:?}: {stderr}");
            assert!(stderr.contains("dpo.toml"), "the message names the file: {stderr}");
        }
    }
    // A broken sources file named by the config file stops config check too.
    let file = dir.path().join("dpo.toml");
    std::fs::write(dir.path().join("sources.toml"), "[[source]]\nname = \"x\"\nkind = \"nope\"\n").unwrap();
    std::fs::write(&file, format!("sources = \"{}\"\n", dir.path().join("sources.toml").display())).unwrap();
    let out = dpo_server().args(["config", "check", "--config"]).arg(&file).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("sources.toml"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A self-signed certificate and its key, as PEM.
fn certificate() -> (String, String) {
    let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string()]).expect("a certificate");
    (made.cert.pem(), made.signing_key.serialize_pem())
}

#[test]
fn a_certificate_that_cannot_serve_stops_serve_and_config_check_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let ((cert, _), (_, other_key)) = (certificate(), certificate());
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let (cert, other_key, empty) = (write("cert.pem", &cert), write("other.pem", &other_key), write("empty.pem", ""));
    let cases =
        [(&cert, &other_key, "does not go with the certificate"), (&empty, &other_key, "holds no PEM certificate")];
    for (cert, key, expected) in cases {
        for command in [&["serve", "--bind", "127.0.0.1:0", "--no-admin"][..], &["config", "check"][..]] {
            let out = dpo_server()
                .args(command)
                .arg("--state-dir")
                .arg(dir.path().join("state"))
                .arg("--tls-cert")
                .arg(cert)
                .arg("--tls-key")
                .arg(key)
                .output()
                .unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{command:?} fails without a panic: {stderr}");
            assert!(stderr.contains(expected), "{command:?}: {stderr}");
            assert!(!stderr.contains("panicked"), "{stderr}");
        }
    }
}

#[test]
fn config_check_shows_no_secret_in_any_form() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let state = state.to_str().unwrap();
    // Each setting as config check shows it (no server starts: nothing is reached).
    let cases: [(&[&str], &str); 6] = [
        (&["--database", "postgres://dpo@127.0.0.1/dpo?password=s3cretA"], "password=REDACTED"),
        (&["--database", "postgres://dpo@127.0.0.1/dpo?sslpassword=s3cretB"], "sslpassword=REDACTED"),
        (&["--database", "host=127.0.0.1 user=dpo password=s3cretC"], "password=REDACTED"),
        (&["--database", "postgres://dpo:s3cretD@[broken/dpo"], "database = REDACTED"),
        (&["--jwks-url", "https://idp.example/keys?client_secret=s3cretE"], "client_secret=REDACTED"),
        (&["--drives-url", "file:///srv/drives?token=s3cretF"], "token=REDACTED"),
    ];
    for (flags, shown) in cases {
        let out = dpo_server().args(["config", "check", "--state-dir", state]).args(flags).output().unwrap();
        let printed = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        assert!(!printed.contains("s3cret"), "{flags:?}: {printed}");
        assert!(printed.contains(shown), "{flags:?}: {printed}");
    }
    // A sources file whose database URL is wrong names its scheme only.
    let sources = dir.path().join("sources.toml");
    std::fs::write(&sources, "[[source]]\nname = \"x\"\nkind = \"sql\"\nurl = \"mysql://u:s3cretG@db/x\"\n").unwrap();
    let out = dpo_server().args(["config", "check", "--state-dir", state, "--sources"]).arg(&sources).output().unwrap();
    let printed = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && printed.contains("\"mysql\"") && !printed.contains("s3cret"), "{printed}");
}
