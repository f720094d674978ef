//! The real `dpo-server` binary, started for a test and killed (SIGKILL) when dropped.
#![allow(dead_code)]

use std::{
    io::{BufRead, BufReader},
    path::Path,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::Instant,
};

/// Imports the users of `users_json` with the real binary, into the SQLite store of `state` or, with
/// `database`, into that PostgreSQL database.
pub fn import_users(state: &Path, users_json: &str, database: Option<&str>) {
    let file = state.join("users.json");
    std::fs::create_dir_all(state).expect("state folder");
    std::fs::write(&file, users_json).expect("users file");
    let mut import = Command::new(env!("CARGO_BIN_EXE_dpo-server"));
    import.args(["users", "import"]).arg(&file).arg("--state-dir").arg(state);
    if let Some(url) = database {
        import.args(["--database", url]);
    }
    assert!(import.status().expect("dpo-server runs").success(), "users imported");
}

/// An HTTP client with an administrator's token minted with `state`'s local key (made there if missing).
pub fn admin_http(state: &Path) -> reqwest::Client {
    use dpo_server::auth::{LOCAL_TENANT, tokens::MintRequest};
    http_with(state, &MintRequest::admin(LOCAL_TENANT))
}

/// An HTTP client of a privacy administrator (`SubjectRightsRequest.ReadWrite.All`) of the local tenant,
/// signed with `state`'s local key.
pub fn privacy_admin_http(state: &Path) -> reqwest::Client {
    let mut request = dpo_server::auth::tokens::MintRequest::admin(dpo_server::auth::LOCAL_TENANT);
    request.user = Some("privacy-admin".into());
    request.permissions = vec!["SubjectRightsRequest.ReadWrite.All".into()];
    http_with(state, &request)
}

/// An HTTP client whose token `request` describes, signed with `state`'s local key.
pub fn http_with(state: &Path, request: &dpo_server::auth::tokens::MintRequest) -> reqwest::Client {
    let token = dpo_server::auth::mint_local(state, request).expect("token minted");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
    reqwest::Client::builder().default_headers(headers).build().expect("client")
}

/// Submits an export of `user`'s data to `location` through the server at `base`; returns its id.
pub async fn submit_export(http: &reqwest::Client, base: &str, user: &str, location: &str) -> String {
    let accepted = http
        .post(format!("{base}/v1.0/users/{user}/exportPersonalData"))
        .json(&serde_json::json!({ "storageLocation": location }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(accepted.status().as_u16(), 202, "export of {user} accepted");
    let location = accepted.headers()["location"].to_str().expect("Location is text");
    location.rsplit('/').next().expect("Location names the operation").to_string()
}

/// `GET /v1.0/dataPolicyOperations/{id}` on the server at `base`: status and body.
pub async fn operation(http: &reqwest::Client, base: &str, id: &str) -> (u16, serde_json::Value) {
    let response = http.get(format!("{base}/v1.0/dataPolicyOperations/{id}")).send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or_default())
}

/// `GET /v1.0/dataPolicyOperations?<query>` on the server at `base`: the page as JSON.
pub async fn list(http: &reqwest::Client, base: &str, query: &str) -> serde_json::Value {
    let response = http.get(format!("{base}/v1.0/dataPolicyOperations?{query}")).send().await.expect("request sent");
    response.json().await.expect("a JSON page")
}

/// Lines a server logged, each with the moment the test read it.
pub type Log = Arc<Mutex<Vec<(Instant, String)>>>;
pub use dpo_test_support::{
    azurite::Azurite,
    process::{Listening as Helper, announcement, peak_rss_mib},
    tool,
};

/// Starts `program` with `args`, where `{port}` stands for a free loopback port, and waits until it
/// listens there; panics (the test's failure) when it cannot.
pub fn start_helper(what: &str, program: &Path, args: &[&str], installed_by: &str) -> Helper {
    dpo_test_support::process::start_listening(what, program, args, installed_by).unwrap_or_else(|e| panic!("{e}"))
}

/// A running `dpo-server serve`.
pub struct Server {
    /// The process.
    pub child: Child,
    /// Its base URL, as it printed it.
    pub base: String,
    /// What it logged so far (with [`serve_logged`]).
    pub log: Log,
    /// The line it printed on stdout once listening.
    pub announced: String,
}

impl Server {
    /// The lines logged so far that contain `text`.
    pub fn logged(&self, text: &str) -> Vec<(Instant, String)> {
        logged(&self.log, text)
    }

    /// Waits (up to 10 s) until a line containing `text` was logged: the log is written asynchronously.
    pub async fn logs(&self, text: &str) -> bool {
        let deadline = Instant::now() + std::time::Duration::from_secs(10);
        while self.logged(text).is_empty() {
            if Instant::now() > deadline {
                return false;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        true
    }
}

/// The lines of `log` so far that contain `text`.
pub fn logged(log: &Log, text: &str) -> Vec<(Instant, String)> {
    let lines = log.lock().unwrap_or_else(|p| p.into_inner());
    lines.iter().filter(|(_, line)| line.contains(text)).cloned().collect()
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Sends SIGTERM to `server`, as a service manager stops it.
pub fn sigterm(server: &Server) {
    let sent = Command::new("kill").args(["-TERM", &server.child.id().to_string()]).status().expect("kill runs");
    assert!(sent.success(), "SIGTERM sent");
}

/// Starts `dpo-server serve` on a free loopback port over `state`, with `extra` arguments.
pub fn serve(state: &Path, extra: &[&str]) -> Server {
    serve_command(Command::new(env!("CARGO_BIN_EXE_dpo-server")), state, extra)
}

/// Like [`serve`], with `env` added to its environment.
pub fn serve_with_env(state: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dpo-server"));
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    serve_command(command, state, extra)
}

/// Like [`serve`], started with a soft limit of `open_files` open files, as a service manager may
/// start it (the hard limit stays).
pub fn serve_with_open_files(state: &Path, open_files: u64, extra: &[&str]) -> Server {
    let mut command = Command::new("sh");
    command.args(["-c", &format!("ulimit -S -n {open_files} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_dpo-server")]);
    serve_command(command, state, extra)
}

/// Like [`serve`], started with soft and hard limits of `open_files` open files: no raising it.
pub fn serve_with_hard_open_files(state: &Path, open_files: u64, extra: &[&str]) -> Server {
    let mut command = Command::new("sh");
    command.args(["-c", &format!("ulimit -n {open_files} && exec \"$0\" \"$@\""), env!("CARGO_BIN_EXE_dpo-server")]);
    serve_command(command, state, extra)
}

/// Like [`serve`], logging at `info`: every line it logs is kept in [`Server::log`].
pub fn serve_logged(state: &Path, extra: &[&str]) -> Server {
    serve_logged_with_env(state, extra, &[])
}

/// Like [`serve_logged`], with `env` added to its environment.
pub fn serve_logged_with_env(state: &Path, extra: &[&str], env: &[(&str, String)]) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_dpo-server"));
    command.envs(env.iter().map(|(k, v)| (*k, v.as_str())));
    command.stderr(Stdio::piped());
    let mut server = serve_command(command, state, &[&["--log-level", "info"], extra].concat());
    let stderr = server.child.stderr.take().expect("stderr");
    let log = server.log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            log.lock().unwrap_or_else(|p| p.into_inner()).push((Instant::now(), line));
        }
    });
    server
}

fn serve_command(mut command: Command, state: &Path, extra: &[&str]) -> Server {
    command.args(["serve", "--bind", "127.0.0.1:0", "--retry-after", "1", "--state-dir"]).arg(state);
    if !extra.contains(&"--log-level") {
        command.args(["--log-level", "error"]);
    }
    let mut child = command.args(extra).stdout(Stdio::piped()).spawn().expect("dpo-server starts");
    let (base, line) = match announcement("dpo-server", &mut child) {
        Ok(announced) => announced,
        Err(e) => {
            let _ = child.kill();
            panic!("{e}")
        }
    };
    Server { child, base, log: Log::default(), announced: line }
}

/// A request a [`ScriptedHttp`] server received.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The method.
    pub method: String,
    /// The path and query, as sent.
    pub target: String,
    /// The headers, names lower-case.
    pub headers: Vec<(String, String)>,
    /// How many requests for this target came before it, plus one.
    pub hit: usize,
    /// When it arrived.
    pub at: Instant,
}

impl Seen {
    /// The value of the header `name` (lower-case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// An answer of a [`ScriptedHttp`] server.
pub struct Reply {
    /// The status.
    pub status: u16,
    /// Headers beside Content-Length and Connection.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: String,
}

impl Reply {
    /// A JSON answer.
    pub fn json(status: u16, body: serde_json::Value) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), "application/json".into())], body: body.to_string() }
    }

    /// The answer with the header `name: value` added.
    pub fn with(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.into(), value.into()));
        self
    }
}

/// A small HTTP/1.1 server on loopback that answers each request as the test's script says (one
/// connection per request) and keeps every request it saw: the other end of `http` data sources.
pub struct ScriptedHttp {
    /// `http://127.0.0.1:<port>`.
    pub base: String,
    seen: Arc<Mutex<Vec<Seen>>>,
}

impl ScriptedHttp {
    /// Starts answering with `script(request, base)`.
    pub fn start(script: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static) -> ScriptedHttp {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let base = format!("http://{}", listener.local_addr().expect("its address"));
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let script = Arc::new(script);
        let (shared_seen, shared_base) = (seen.clone(), base.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let (seen, script, base) = (shared_seen.clone(), script.clone(), shared_base.clone());
                std::thread::spawn(move || {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        match stream.read(&mut byte) {
                            Ok(1) => head.push(byte[0]),
                            _ => return,
                        }
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let mut lines = head.split("\r\n");
                    let mut first = lines.next().unwrap_or_default().split(' ');
                    let method = first.next().unwrap_or_default().to_string();
                    let target = first.next().unwrap_or_default().to_string();
                    let headers = lines
                        .filter_map(|l| l.split_once(':'))
                        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
                        .collect();
                    let request = {
                        let mut seen = seen.lock().unwrap_or_else(|p| p.into_inner());
                        let hit = seen.iter().filter(|s| s.target == target).count() + 1;
                        let request = Seen { method, target, headers, hit, at: Instant::now() };
                        seen.push(request.clone());
                        request
                    };
                    let reply = script(&request, &base);
                    let mut answer = format!(
                        "HTTP/1.1 {} Scripted\r\nContent-Length: {}\r\nConnection: close\r\n",
                        reply.status,
                        reply.body.len()
                    );
                    for (name, value) in &reply.headers {
                        answer.push_str(&format!("{name}: {value}\r\n"));
                    }
                    answer.push_str("\r\n");
                    if request.method != "HEAD" {
                        answer.push_str(&reply.body);
                    }
                    let _ = stream.write_all(answer.as_bytes());
                });
            }
        });
        ScriptedHttp { base, seen }
    }

    /// Every request so far, in order of arrival.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}
