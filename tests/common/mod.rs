//! Helpers shared by the integration tests: a real dpo server on 127.0.0.1:0 over a real SQLite file in a
//! temporary state directory, or, with `DPO_TEST_STORE=postgres`, over a database of its own in a real
//! PostgreSQL cluster (`DPO_TEST_DATABASE_URL`'s, or one the tests start); and clients for it.
#![allow(dead_code)]

pub mod flaky;
pub mod redirect;

use dpo_client::location::LocationPolicy;
use dpo_server::{
    RunningServer, ServerConfig,
    auth::tokens::MintRequest,
    config::{AuthConfig, TlsFiles},
    connection_guard::ConnectionLimits,
    store::{Stores, UserRecord},
};

/// Whether the suites run over PostgreSQL (`DPO_TEST_STORE=postgres`) rather than SQLite.
pub fn on_postgres() -> bool {
    std::env::var("DPO_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// The tenant of test tokens.
pub const TENANT: &str = dpo_server::auth::LOCAL_TENANT;

/// Users every test server knows.
pub fn test_users() -> Vec<UserRecord> {
    let named = ["alice", "bob", "carol", "dave", "erin", "f"];
    named
        .iter()
        .map(|n| n.to_string())
        .chain((0..300).map(|i| format!("user{i}")))
        .map(|id| UserRecord {
            user_principal_name: format!("{id}@contoso.example"),
            display_name: Some(id.clone()),
            mail: Some(format!("{id}@contoso.example")),
            attributes: Default::default(),
            id,
        })
        .collect()
}

/// How a test server is set up.
#[derive(Debug, Clone)]
pub struct Options {
    /// What it tells pollers in `Retry-After`.
    pub retry_after: u32,
    /// Page size of lists.
    pub page_size: u64,
    /// Export workers (0: exports are accepted but not run).
    pub workers: usize,
    /// `host:port`s of storage emulators exports may go to.
    pub emulator_hosts: Vec<String>,
    /// How callers are authenticated.
    pub auth: AuthConfig,
    /// Serve https with a self-signed certificate for 127.0.0.1 (written to `<state>/tls/`).
    pub tls: bool,
    /// Limits on client connections.
    pub connections: ConnectionLimits,
    /// Requests a second per tenant and caller.
    pub throttle: dpo_server::throttle::ThrottleLimits,
    /// The sources file.
    pub sources: Option<std::path::PathBuf>,
    /// How long a closed request's collected data is kept (default: the server's).
    pub requests_retention: Option<std::time::Duration>,
}

impl Default for Options {
    fn default() -> Self {
        // No exports by default: these servers' storage locations point at Azure, which tests never reach.
        Options {
            retry_after: 60,
            page_size: 100,
            workers: 0,
            emulator_hosts: Vec::new(),
            auth: AuthConfig::default(),
            tls: false,
            connections: ConnectionLimits::default(),
            throttle: dpo_server::throttle::ThrottleLimits::default(),
            sources: None,
            requests_retention: None,
        }
    }
}

/// A self-signed certificate for 127.0.0.1 in `dir` (`cert.pem`, `key.pem`), made once per folder.
pub fn self_signed_certificate(dir: &std::path::Path) -> TlsFiles {
    let files = TlsFiles { cert: dir.join("cert.pem"), key: dir.join("key.pem") };
    if !files.cert.exists() {
        let made = rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_string(), "localhost".to_string()])
            .expect("certificate made");
        std::fs::create_dir_all(dir).expect("tls folder");
        std::fs::write(&files.cert, made.cert.pem()).expect("certificate written");
        std::fs::write(&files.key, made.signing_key.serialize_pem()).expect("key written");
    }
    files
}

/// A running test server with the store it uses.
pub struct TestServer {
    pub server: RunningServer,
    /// The server's own stores (writes through them are seen by the server at once).
    pub store: Stores,
    pub base_url: String,
    pub state: tempfile::TempDir,
    /// The PostgreSQL database it uses, if not SQLite.
    pub database: Option<String>,
    pub options: Options,
    pub page_size: u64,
}

impl TestServer {
    /// Starts a server on a free loopback port over a new state directory; `retry_after` is what it tells
    /// pollers.
    pub async fn start(retry_after: u32) -> TestServer {
        Self::start_with(Options { retry_after, ..Options::default() }).await
    }

    /// Like [`TestServer::start`], with lists paged `page_size` at a time.
    pub async fn start_paged(retry_after: u32, page_size: u64) -> TestServer {
        Self::start_with(Options { retry_after, page_size, ..Options::default() }).await
    }

    /// Starts a server set up as `options` say, with the test users loaded.
    pub async fn start_with(options: Options) -> TestServer {
        let state = tempfile::tempdir().expect("temporary state directory");
        let database = on_postgres()
            .then(|| dpo_test_support::postgres_cluster::fresh_database().expect("a database in the test cluster"));
        let server = Self::start_in(state, database, options).await;
        server.store.directory.upsert_users(TENANT, &test_users()).expect("users load");
        server
    }

    async fn start_in(state: tempfile::TempDir, database: Option<String>, options: Options) -> TestServer {
        let config = ServerConfig {
            retry_after_seconds: options.retry_after,
            // Every record, in a file of the test's own, which `stop` searches for secrets.
            log_level: "info".into(),
            log_format: dpo_server::logging::LogFormat::Json,
            log_file: Some(state.path().join(LOG_FILE)),
            state_dir: state.path().to_path_buf(),
            default_page_size: options.page_size,
            export_workers: options.workers,
            storage: LocationPolicy { http_hosts: options.emulator_hosts.clone(), ..LocationPolicy::default() },
            auth: options.auth.clone(),
            tls: options.tls.then(|| self_signed_certificate(&state.path().join("tls"))),
            connections: Some(options.connections),
            database: database.clone(),
            throttle: options.throttle,
            sources_file: options.sources.clone(),
            requests_retention: options.requests_retention.unwrap_or(ServerConfig::default().requests_retention),
            ..Default::default()
        };
        let server = dpo_server::start(config).await.expect("server starts");
        let store = server.stores();
        let base_url = server.base_url();
        let page_size = options.page_size;
        TestServer { server, store, base_url, state, database, options, page_size }
    }

    /// Runs `statement` on the server's database directly, behind its back (to plant what the API
    /// would never write).
    pub fn raw_sql(&self, statement: &str) {
        match &self.database {
            Some(url) => dpo_test_support::postgres_cluster::execute(url, statement).expect("statement runs"),
            None => {
                let db = rusqlite::Connection::open(self.state.path().join("dpo.sqlite")).expect("database");
                db.execute_batch(statement).expect("statement runs");
            }
        }
    }

    /// Stops the server and starts a new one over the same state directory.
    pub async fn restart(self) -> TestServer {
        let options = self.options.clone();
        self.restart_with(options).await
    }

    /// Stops the server and starts a new one over the same state directory, set up anew.
    pub async fn restart_with(self, options: Options) -> TestServer {
        let TestServer { server, state, store, database, .. } = self;
        server.close().await.expect("server stops");
        assert_no_secret_logged(state.path());
        drop(store);
        Self::start_in(state, database, options).await
    }

    /// Where user `id`'s drive files go.
    pub fn drive(&self, id: &str) -> std::path::PathBuf {
        dpo_server::export::drive_files::drive_dir(&self.state.path().join("drives"), TENANT, id)
    }

    /// A token of a company administrator of the test tenant with `User.Export.All`.
    pub fn admin_token(&self) -> String {
        self.token(&MintRequest::admin(TENANT))
    }

    /// A token signed with this server's local key.
    pub fn token(&self, request: &MintRequest) -> String {
        dpo_server::auth::mint_local(self.state.path(), request).expect("token minted")
    }

    /// An HTTP client that sends `token`.
    pub fn http_with(&self, token: &str) -> reqwest::Client {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().expect("header"));
        let mut builder = reqwest::Client::builder().default_headers(headers);
        if self.options.tls {
            let pem = std::fs::read(self.state.path().join("tls/cert.pem")).expect("certificate");
            builder = builder.add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM certificate"));
        }
        builder.build().expect("client")
    }

    /// An HTTP client that sends an administrator's token.
    pub fn http(&self) -> reqwest::Client {
        self.http_with(&self.admin_token())
    }

    /// The generated client, pointed at this server, with an administrator's token.
    pub fn client(&self) -> dpo_client::Client {
        self.client_at(&self.base_url)
    }

    /// The generated client at `base_url`, with an administrator's token.
    pub fn client_at(&self, base_url: &str) -> dpo_client::Client {
        dpo_client::Client::new_with_client(base_url, self.http())
    }

    /// A URL on this server.
    pub fn url(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.base_url)
    }

    /// Stops the server, and fails if its log holds a secret (a SAS signature, a token, the account key).
    pub async fn stop(self) {
        self.server.close().await.expect("server stops");
        assert_no_secret_logged(self.state.path());
    }
}

/// The log of a test server, in its state directory.
pub const LOG_FILE: &str = "server.log";

/// Fails if the log in `state` holds a secret (it is complete once its server has stopped).
pub fn assert_no_secret_logged(state: &std::path::Path) {
    let log = std::fs::read_to_string(state.join(LOG_FILE)).unwrap_or_default();
    assert!(!log.is_empty(), "the server logged nothing at info: is the log going somewhere else?");
    let found = dpo_test_support::secrets::secrets_in(&log);
    assert!(found.is_empty(), "secrets in the server's log:\n{}", found.join("\n"));
}

/// A plausible SAS URL of a storage container.
pub fn sas_url() -> String {
    "https://account.blob.core.windows.net/exports?sv=2023-11-03&sp=cw&se=2099-01-01T00:00:00Z&sr=c&sig=abc".into()
}

/// Submits an export of `user`'s data over HTTP and returns the new operation's id.
pub async fn submit(server: &TestServer, user: &str) -> String {
    submit_to(server, user, &sas_url()).await
}

/// Submits an export of `user`'s data to `location` and returns the new operation's id.
pub async fn submit_to(server: &TestServer, user: &str, location: &str) -> String {
    let response = server
        .http()
        .post(server.url(&format!("/users/{user}/exportPersonalData")))
        .json(&serde_json::json!({ "storageLocation": location }))
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status().as_u16(), 202, "export of {user} accepted");
    let location = response.headers()["location"].to_str().expect("Location is text").to_string();
    location.rsplit('/').next().expect("Location names the operation").to_string()
}

/// Moves an operation to `status` directly in the store (as the export engine would).
pub fn set_status(server: &TestServer, id: &str, status: dpo_api::model::DataPolicyOperationStatus, progress: f64) {
    let uuid = uuid::Uuid::parse_str(id).expect("operation id is a GUID");
    let mut record = server.store.operations.get(uuid).expect("store reads").expect("operation exists");
    record.status = status;
    record.progress = progress;
    if status.is_final() {
        record.completed_at = Some(chrono::Utc::now());
    }
    record.version += 1;
    server.store.operations.replace(&record).expect("store writes");
}

/// GETs a URL on the server and returns status and JSON body.
pub async fn get_json(server: &TestServer, path_and_query: &str) -> (u16, serde_json::Value) {
    let response = server.http().get(server.url(path_and_query)).send().await.expect("request sent");
    let status = response.status().as_u16();
    (status, response.json().await.expect("JSON body"))
}

/// The ids of a collection page.
pub fn ids(page: &serde_json::Value) -> Vec<String> {
    page["value"]
        .as_array()
        .expect("value array")
        .iter()
        .map(|op| op["id"].as_str().unwrap_or_default().to_string())
        .collect()
}

/// The text of `GET <path>` (a `$count` URL) as an administrator of the test tenant.
pub async fn count(server: &TestServer, path_and_query: &str) -> String {
    server.http().get(server.url(path_and_query)).send().await.expect("request sent").text().await.expect("text body")
}

/// How many requests the servers of this process have answered 429 so far (their metrics).
pub fn throttled_so_far() -> f64 {
    dpo_server::admin::handle()
        .render()
        .lines()
        .filter(|l| l.starts_with("dpo_throttled_requests_total"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}
