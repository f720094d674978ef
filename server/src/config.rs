//! Server settings.

use crate::export::drives::{self, Drives, DrivesUrlError, LocalDrives};
use crate::export::request_store::{RequestStore, RequestStoreError};
use crate::sources::{Sources, SourcesFileError};
use crate::{auth::tokens::TokenRules, connection_guard::ConnectionLimits};
use dpo_contract::location::LocationPolicy;
use std::{net::SocketAddr, path::PathBuf};

/// How a dpo server runs.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// Address to listen on; port 0 picks a free one.
    pub bind_address: SocketAddr,
    /// Address of the admin listener (`/metrics`, `/healthz`, `/readyz`); `None`: none.
    pub admin_bind: Option<SocketAddr>,
    /// Absolute URL clients reach the API at (used in `Location` and `@odata.*` links); by default
    /// `http://<bound address>`.
    pub public_base_url: Option<String>,
    /// Seconds a client should wait before polling a submitted export (`Retry-After`); Graph says 60.
    pub retry_after_seconds: u32,
    /// Largest request body accepted, in bytes.
    pub max_request_body_bytes: usize,
    /// Log level: `trace`, `debug`, `info`, `warn`, `error` or `critical`.
    pub log_level: String,
    /// How log records are written.
    pub log_format: crate::logging::LogFormat,
    /// Append the log to this file instead of writing it to stderr.
    pub log_file: Option<PathBuf>,
    /// Requests a second allowed per tenant and per caller.
    pub throttle: crate::throttle::ThrottleLimits,
    /// Folder of the server's durable state: the SQLite database (without `database`), the token key,
    /// users' drives and local exports.
    pub state_dir: PathBuf,
    /// A PostgreSQL URL (`postgres://…`): the operations live there, shared by every server that names
    /// it, instead of in SQLite under `state_dir`.
    pub database: Option<String>,
    /// Where users' drives are (`file:///…`, `s3://bucket/prefix`, `az://container/prefix`); `None`:
    /// `<state_dir>/drives`.
    pub drives_url: Option<String>,
    /// Where subject rights requests keep what they gather (a path, `file://`, `s3://` or `az://` URL);
    /// `None`: `<state_dir>/requests`.
    pub requests_location: Option<String>,
    /// How long what a closed request collected stays in the request store (its report stays).
    pub requests_retention: std::time::Duration,
    /// The sources file: the organisation's systems an export also reads (see [`crate::sources`]).
    pub sources_file: Option<PathBuf>,
    /// Page size of lists when the client does not ask for fewer.
    pub default_page_size: u64,
    /// Largest page a list ever answers, whatever `$top` says.
    pub max_page_size: u64,
    /// Exports run at once; 0 accepts exports but runs none on this server.
    pub export_workers: usize,
    /// Exports of one tenant running at once at most, across the servers of the store; `None`: no cap.
    pub exports_per_tenant: Option<u32>,
    /// How often the log gets every tenant's audit head; `None`: never.
    pub audit_head_interval: Option<std::time::Duration>,
    /// How long an export's claim lasts without renewal: how soon another worker resumes the exports of
    /// a server that is gone.
    pub export_lease: std::time::Duration,
    /// Which storage locations exports may go to. Its `local_root`, when `None`, defaults to
    /// `<state_dir>/exports`.
    pub storage: LocationPolicy,
    /// How callers are authenticated.
    pub auth: AuthConfig,
    /// Serve https with this certificate, instead of plain http.
    pub tls: Option<TlsFiles>,
    /// How long a shutdown (SIGTERM) waits for requests in flight before cutting them off.
    pub shutdown_timeout: std::time::Duration,
    /// Limits on client connections (idle ones, and how many at once), enforced by a guard in front of
    /// dropshot; `None` lets dropshot listen itself (behind a load balancer that enforces them).
    pub connections: Option<ConnectionLimits>,
}

/// The certificate chain and private key of an https listener, as PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// The certificate chain, end-entity certificate first.
    pub cert: PathBuf,
    /// Its private key (PKCS #8).
    pub key: PathBuf,
}

/// Where the keys that sign accepted tokens come from, and what tokens must say.
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `iss` and `aud` rules.
    pub rules: TokenRules,
    /// Accept tokens signed with the state directory's own key (`dpo-server token` mints them).
    pub local_key: bool,
    /// A JWKS file of the identity provider's keys.
    pub jwks_file: Option<PathBuf>,
    /// A JWKS URL: fetched at start, then again as [`AuthConfig::jwks_refresh`] says.
    pub jwks_url: Option<String>,
    /// How often the JWKS URL is fetched again.
    pub jwks_refresh: crate::auth::jwks::RefreshPolicy,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            rules: TokenRules::default(),
            local_key: true,
            jwks_file: None,
            jwks_url: None,
            jwks_refresh: crate::auth::jwks::RefreshPolicy::default(),
        }
    }
}

impl ServerConfig {
    /// Folder holding one drive folder per user, when the drives are local and in the state folder.
    pub fn drives_root(&self) -> PathBuf {
        self.state_dir.join("drives")
    }

    /// The users' drives: at `drives_url`, or in [`ServerConfig::drives_root`].
    pub fn drives(&self) -> Result<std::sync::Arc<dyn Drives>, DrivesUrlError> {
        match &self.drives_url {
            Some(url) => drives::open(url),
            None => Ok(std::sync::Arc::new(LocalDrives { root: absolute(&self.drives_root()) })),
        }
    }

    /// The request store: where subject rights requests keep what they gather, a folder per request.
    pub fn requests_store(&self) -> Result<RequestStore, RequestStoreError> {
        match self.requests_location.as_deref() {
            None => Ok(RequestStore::Local(absolute(&self.state_dir.join("requests")))),
            Some(location) => match RequestStore::open(location)? {
                RequestStore::Local(dir) => Ok(RequestStore::Local(absolute(&dir))),
                objects => Ok(objects),
            },
        }
    }

    /// The configured data sources, read and checked now (none without a sources file).
    pub fn sources(&self) -> Result<std::sync::Arc<Sources>, SourcesFileError> {
        Ok(std::sync::Arc::new(match &self.sources_file {
            Some(path) => Sources::load(path)?,
            None => Sources::none(),
        }))
    }

    /// The storage policy with its defaults filled in.
    pub fn storage_policy(&self) -> LocationPolicy {
        let mut policy = self.storage.clone();
        if policy.local_root.is_none() {
            policy.local_root = Some(absolute(&self.state_dir.join("exports")));
        }
        policy
    }
}

/// `path` made absolute against the current directory (without touching the disk).
pub fn absolute(path: &std::path::Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            bind_address: SocketAddr::from(([127, 0, 0, 1], 0)),
            admin_bind: None,
            public_base_url: None,
            retry_after_seconds: 60,
            max_request_body_bytes: 64 * 1024,
            log_level: "info".to_string(),
            log_format: crate::logging::LogFormat::Text,
            log_file: None,
            throttle: crate::throttle::ThrottleLimits::default(),
            state_dir: PathBuf::from("dpo-state"),
            database: None,
            drives_url: None,
            requests_location: None,
            requests_retention: std::time::Duration::from_secs(30 * 24 * 3600),
            sources_file: None,
            default_page_size: 100,
            max_page_size: 1000,
            export_workers: 2,
            exports_per_tenant: None,
            audit_head_interval: None,
            export_lease: std::time::Duration::from_secs(30),
            storage: LocationPolicy::default(),
            auth: AuthConfig::default(),
            tls: None,
            connections: Some(ConnectionLimits::default()),
            shutdown_timeout: std::time::Duration::from_secs(30),
        }
    }
}
