//! Starting and stopping a dpo server.

use crate::{
    auth::{
        jwks::{JwksRefresher, KeySet},
        keys::{LocalKey, VerificationKey, from_jwks},
        verified::{self, TokenVerifier},
    },
    config::ServerConfig,
    connection_guard::{self, ConnectionGuard, ConnectionLimits},
    export::{
        engine::{self, EngineHandle, EngineSettings},
        job::JobContext,
    },
    handlers::AppContext,
    logging,
    operations::OperationService,
    routes,
    store::{StoreError, Stores, cached, postgres::PostgresStore, sqlite::SqliteStore},
};
use dropshot::{ConfigDropshot, ConfigTls, HttpServer, ServerBuilder};
use std::{
    net::SocketAddr,
    sync::{Arc, OnceLock},
};
use tokio::sync::Notify;

/// Why a server could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The API description was rejected by dropshot.
    #[error("building the API description: {0}")]
    Api(String),
    /// The listener could not be bound or the server built.
    #[error("starting the HTTP server on {address}: {message}")]
    Listen {
        /// The address asked for.
        address: SocketAddr,
        /// What went wrong.
        message: String,
    },
    /// The connections' limits cannot be enforced on this system (`--no-connection-guard` turns them off).
    #[error("enforcing the connection limits")]
    Connections(#[from] connection_guard::GuardError),
    /// A setting is invalid.
    #[error("invalid setting: {0}")]
    Config(String),
    /// A storage host pattern would let exports go anywhere.
    #[error("storage hosts")]
    StorageHost(#[from] dpo_contract::location::HostPatternError),
    /// The https listener's certificate or key cannot be used.
    #[error("tls")]
    Tls(#[from] crate::tls::TlsError),
    /// The state directory could not be opened.
    #[error("opening the state in {path}: {message}")]
    State {
        /// The state directory.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A server that is running; stop it with [`RunningServer::close`].
pub struct RunningServer {
    server: HttpServer<AppContext>,
    /// The watcher of the connections' limits (unless turned off).
    guard: Option<ConnectionGuard>,
    /// Where clients connect.
    address: SocketAddr,
    engine: Option<EngineHandle>,
    store: Stores,
    /// The admin listener, if any.
    admin: Option<HttpServer<crate::admin::AdminContext>>,
    /// Set once the server begins to stop: `/readyz` then answers 503.
    draining: Arc<std::sync::atomic::AtomicBool>,
    /// How long [`RunningServer::shutdown`] waits for requests in flight.
    shutdown_timeout: std::time::Duration,
    /// Where the audit heads are logged at shutdown (when they are logged periodically).
    audit_heads: Option<slog::Logger>,
    /// The server's log.
    log: slog::Logger,
    /// Writes out the log records still queued when the server is dropped.
    _log_guard: logging::LogGuard,
    /// Deletes what closed requests collected once their retention ends; stopped with the server.
    _retention: crate::retention::Sweeper,
    /// Held while a SQLite server runs: one server per state directory (see [`lock_state_dir`]).
    _state_lock: Option<std::fs::File>,
}

impl RunningServer {
    /// The address the server listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// The stores the server reads and writes. Operations written behind its back (to the database
    /// file directly) may be answered from its memory of recent reads until they change again.
    pub fn stores(&self) -> Stores {
        self.store.clone()
    }

    /// The admin listener's address, if it has one.
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin.as_ref().map(HttpServer::local_addr)
    }

    /// Absolute base URL of the API.
    pub fn base_url(&self) -> String {
        self.server.app_private().base_url().to_string()
    }

    /// Waits until the server stops by itself (it does not, unless it fails).
    pub async fn wait(self) -> Result<(), StopError> {
        self.server.await.map_err(|reason| StopError::Http { listener: "API", reason })
    }

    /// Stops accepting requests, finishes those in flight, and returns. Exports in flight stop where
    /// they are and keep their leases until they end, as after a crash.
    pub async fn close(self) -> Result<(), StopError> {
        self.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(engine) = &self.engine {
            engine.stop();
        }
        drop(self.guard);
        if let Some(admin) = self.admin {
            admin.close().await.map_err(|reason| StopError::Http { listener: "admin", reason })?;
        }
        close_refusing(self.server, self.address, &self.log).await
    }

    /// Shuts down in order (SIGTERM): stops taking exports and hands the running ones back to the queue,
    /// so another server resumes them at once, then stops accepting requests and finishes those in
    /// flight, waiting for them at most `shutdown_timeout` (then they are cut off, and it says so).
    pub async fn shutdown(mut self) -> Result<(), StopError> {
        self.draining.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(engine) = self.engine.take() {
            engine.hand_over().await;
        }
        drop(self.guard);
        let bound = self.shutdown_timeout;
        match tokio::time::timeout(bound, close_refusing(self.server, self.address, &self.log)).await {
            Ok(closed) => closed?,
            Err(_) => slog::warn!(self.log, "requests still in flight at shutdown were cut off";
                "waited_seconds" => bound.as_secs_f64()),
        }
        // The last events of this server's life, anchored in the log like the periodic heads.
        if let Some(out) = &self.audit_heads {
            crate::audit_trail::log_heads(&self.store.audit, out).await;
        }
        match self.admin.take() {
            Some(admin) => admin.close().await.map_err(|reason| StopError::Http { listener: "admin", reason }),
            None => Ok(()),
        }
    }
}

/// Closes dropshot's server on `served`: it stops accepting and finishes the requests in flight, and new
/// connections are refused meanwhile instead of waiting in its listener's queue until the end.
async fn close_refusing(
    server: HttpServer<AppContext>,
    served: SocketAddr,
    log: &slog::Logger,
) -> Result<(), StopError> {
    let failed = |reason| StopError::Http { listener: "API", reason };
    let closing = server.close();
    tokio::pin!(closing);
    // The first poll sends dropshot its close signal; its accept loop leaves at its next turn. Stopped
    // under a running accept loop, the listener would make it log an accept error.
    if let std::task::Poll::Ready(closed) = futures::poll!(&mut closing) {
        return closed.map_err(failed);
    }
    tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    if let Err(e) = connection_guard::stop_listening(served) {
        slog::debug!(log, "new connections could not be refused while closing"; "error" => %e);
    }
    closing.await.map_err(failed)
}

/// Why a listener stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// dropshot's server failed; dropshot gives its reason as text only.
    #[error("the {listener} listener failed: {reason}")]
    Http {
        /// Which listener: the API's or the admin one.
        listener: &'static str,
        /// dropshot's reason.
        reason: String,
    },
}

/// The token verifier `config.auth` asks for: its fixed keys, and the identity provider's JWKS kept
/// current in the background.
async fn token_verifier(config: &ServerConfig, log: &slog::Logger) -> Result<TokenVerifier, StartError> {
    let auth = &config.auth;
    let keys = Arc::new(KeySet::new(fixed_keys(config)?));
    let refresher = match &auth.jwks_url {
        Some(url) => {
            let log = log.new(slog::o!("component" => "keys"));
            let refresher = JwksRefresher::start(url, auth.jwks_refresh, keys.clone(), log)
                .await
                .map_err(|e| StartError::Config(e.to_string()))?;
            refresher.keep_current();
            Some(refresher)
        }
        None => None,
    };
    if keys.current().keys.is_empty() {
        return Err(StartError::Config("no token keys: enable the local key or give a JWKS file or URL".into()));
    }
    Ok(TokenVerifier::over(keys, refresher, auth.rules.clone(), verified::DEFAULT_CAPACITY))
}

/// The keys that do not change while the server runs: the local key and a JWKS file.
fn fixed_keys(config: &ServerConfig) -> Result<Vec<VerificationKey>, StartError> {
    let auth = &config.auth;
    let mut keys = Vec::new();
    if auth.local_key {
        keys.push(LocalKey::open(&config.state_dir).map_err(|e| StartError::Config(e.to_string()))?.verification());
    }
    if let Some(path) = &auth.jwks_file {
        let text = std::fs::read_to_string(path).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?;
        keys.extend(from_jwks(&text).map_err(|e| StartError::Config(format!("{}: {e}", path.display())))?);
    }
    Ok(keys)
}

/// Starts a server over `config.database` (PostgreSQL, shared with other servers), or else over the SQLite
/// database in `config.state_dir`.
pub async fn start(config: ServerConfig) -> Result<RunningServer, StartError> {
    let state_error =
        |e: StoreError| StartError::State { path: config.state_dir.display().to_string(), message: e.to_string() };
    match config.database.clone() {
        Some(url) => {
            let store = tokio::task::spawn_blocking(move || PostgresStore::open(&url, POSTGRES_CONNECTIONS))
                .await
                .map_err(|e| StartError::Config(e.to_string()))?
                .map_err(state_error)?;
            start_shared(config, Stores::over(Arc::new(store))).await
        }
        None => {
            let store = SqliteStore::open(&config.state_dir).map_err(state_error)?;
            start_with_store(config, Stores::over(Arc::new(store))).await
        }
    }
}

/// Connections of a server's PostgreSQL pool.
const POSTGRES_CONNECTIONS: u32 = 16;

/// Starts a server over `store`, shared with other servers (PostgreSQL): nothing is remembered between
/// requests, the state directory is not locked, and exports are claimed under leases among all servers.
pub async fn start_shared(config: ServerConfig, store: Stores) -> Result<RunningServer, StartError> {
    launch(config, store, None).await
}

/// Name of the lock file in the state directory.
pub const LOCK_FILE: &str = "dpo.lock";

/// Takes the state directory for this process alone: the server remembers operations it read, which
/// stays true only if nobody else writes them. Released when the file is closed, also by a crash.
fn lock_state_dir(dir: &std::path::Path) -> Result<std::fs::File, StartError> {
    let state_error = |message: String| StartError::State { path: dir.display().to_string(), message };
    std::fs::create_dir_all(dir).map_err(|e| state_error(e.to_string()))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(LOCK_FILE))
        .map_err(|e| state_error(format!("opening {LOCK_FILE}: {e}")))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => {
            Err(state_error("another dpo server is using this state directory (it holds dpo.lock)".into()))
        }
        Err(std::fs::TryLockError::Error(e)) => Err(state_error(format!("locking {LOCK_FILE}: {e}"))),
    }
}

/// Starts a server over `store`, a SQLite store that keeps its data in `config.state_dir`.
pub async fn start_with_store(config: ServerConfig, store: Stores) -> Result<RunningServer, StartError> {
    let state_lock = lock_state_dir(&config.state_dir)?;
    // The state directory is this server's alone, so every write goes through it: reads may be remembered.
    launch(config, cached::with_read_cache(store, cached::DEFAULT_CAPACITY), Some(state_lock)).await
}

/// Starts the server; `state_lock` is held by a server that is the store's only user.
async fn launch(
    config: ServerConfig,
    store: Stores,
    state_lock: Option<std::fs::File>,
) -> Result<RunningServer, StartError> {
    let exclusive = state_lock.is_some();
    let level = logging::level(&config.log_level).map_err(|e| StartError::Config(e.to_string()))?;
    let (log, log_guard) = match &config.log_file {
        Some(path) => logging::file_logger(path, level, config.log_format)
            .map_err(|e| StartError::Config(format!("log file {}: {e}", path.display())))?,
        None => logging::stderr_logger(level, config.log_format),
    };
    let api = routes::api().map_err(StartError::Api)?;
    let address = config.bind_address;
    let submitted = Arc::new(Notify::new());
    let policy = config.storage_policy();
    for pattern in policy.allowed_hosts.iter().chain(&policy.http_hosts) {
        dpo_contract::location::check_host_pattern(pattern)?;
    }
    let operations = OperationService::new(store.clone(), policy.clone(), submitted.clone());
    let tokens = token_verifier(&config, &log).await?;
    if config.admin_bind.is_some() {
        // The recorder first, so that nothing recorded before the admin listener is up is lost.
        crate::admin::handle();
    }
    let throttle = Arc::new(crate::throttle::Throttle::new(config.throttle));
    // Callers whose buckets are full again are forgotten now and then, so that memory stays bounded.
    let idle = Arc::downgrade(&throttle);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            match idle.upgrade() {
                Some(throttle) => throttle.forget_idle(),
                None => return,
            }
        }
    });
    let requests_store = config.requests_store().map_err(|e| StartError::Config(e.to_string()))?;
    let context = AppContext {
        operations,
        requests: crate::subject_rights::RequestService::new(store.requests.clone(), submitted.clone()),
        requests_store: requests_store.clone(),
        audit: store.audit.clone(),
        throttle: throttle.clone(),
        config: config.clone(),
        base_url: OnceLock::new(),
        tokens,
        request_metrics: Default::default(),
        requests_log: log.clone(),
    };
    // Read even when this server runs no exports: a broken file stops every server at start.
    let sources = config.sources().map_err(|e| StartError::Config(e.to_string()))?;
    let engine = if config.export_workers > 0 {
        let drives = config.drives().map_err(|e| StartError::Config(e.to_string()))?;
        let jobs = Arc::new(JobContext {
            stores: store.clone(),
            drives,
            sources,
            policy,
            log: log.new(slog::o!("component" => "export")),
            lease: config.export_lease,
            requests: Some(requests_store.clone()),
        });
        let settings = EngineSettings {
            workers: config.export_workers,
            lease: config.export_lease,
            exclusive,
            per_tenant: config.exports_per_tenant,
        };
        // Exports other servers queue or hand back wake this one too (PostgreSQL's LISTEN/NOTIFY).
        store
            .queue
            .watch(submitted.clone(), log.new(slog::o!("component" => "queue")))
            .map_err(|e| StartError::State { path: config.state_dir.display().to_string(), message: e.to_string() })?;
        let handle = engine::start(jobs, settings, submitted, log.new(slog::o!("component" => "export")))
            .await
            .map_err(|e| StartError::State { path: config.state_dir.display().to_string(), message: e.to_string() })?;
        Some(handle)
    } else {
        None
    };
    // The limits watch the connections dropshot accepts on its own listener.
    if config.connections.is_some() {
        ConnectionGuard::supported()?;
    }
    let limits = config.connections.map(|wanted| {
        let limits = ConnectionLimits {
            max_connections: connection_guard::connections_that_fit(wanted.max_connections),
            ..wanted
        };
        if limits.max_connections < wanted.max_connections {
            slog::warn!(log, "fewer connections than asked for fit in the open-file limit";
                "max_connections" => limits.max_connections);
        }
        limits
    });
    let dropshot_config = ConfigDropshot {
        bind_address: address,
        default_request_body_max_bytes: config.max_request_body_bytes,
        ..Default::default()
    };
    let tls = config.tls.as_ref().map(crate::tls::server_config).transpose()?.map(ConfigTls::Dynamic);
    let scheme = if tls.is_some() { "https" } else { "http" };
    let admin_log = log.new(slog::o!("component" => "admin"));
    let audit_log = log.new(slog::o!("component" => "audit"));
    let shutdown_log = log.new(slog::o!("component" => "shutdown"));
    let connections_log = log.new(slog::o!("component" => "connections"));
    let http_log = log.new(slog::o!("component" => "http"));
    let log_for_retention = log.new(slog::o!("component" => "retention"));
    let server = ServerBuilder::new(api, context, log)
        .config(dropshot_config)
        .tls(tls)
        .start()
        .map_err(|e| StartError::Listen { address, message: e.to_string() })?;
    // The base URL can only be known once the listener is bound (port 0 picks the port).
    let public_address = server.local_addr();
    let base_url = config
        .public_base_url
        .map(|u| u.trim_end_matches('/').to_string())
        .unwrap_or_else(|| format!("{scheme}://{public_address}"));
    // dropshot's own "listening" line is at info, which the log leaves to debug (see `logging`).
    slog::info!(http_log, "listening"; "url" => &base_url, "address" => %public_address);
    let _ = server.app_private().base_url.set(base_url);
    let draining = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let retention = crate::retention::sweep_every(
        config.requests_retention,
        store.requests.clone(),
        store.audit.clone(),
        requests_store,
        log_for_retention,
    );
    if let Some(interval) = config.audit_head_interval {
        crate::audit_trail::log_heads_every(interval, &store.audit, audit_log.clone());
    }
    let admin = match config.admin_bind {
        Some(bind) => {
            let admin = crate::admin::start(bind, store.clone(), draining.clone(), admin_log.clone())
                .map_err(|message| StartError::Listen { address: bind, message })?;
            slog::info!(admin_log, "admin listening"; "url" => format!("http://{}", admin.local_addr()));
            if !bind.ip().is_loopback() {
                slog::warn!(admin_log, "the admin listener answers without a token on an address beyond this machine: \
                    /metrics and /readyz are open to whoever reaches it"; "address" => %bind);
            }
            Some(admin)
        }
        None => None,
    };
    // The admin listener under the same timeouts, with a small cap of its own: its connections must
    // never take the descriptors the API needs.
    let guard = match limits {
        Some(limits) => {
            let mut watched = vec![(public_address, limits)];
            if let Some(admin) = &admin {
                let admin_limits =
                    ConnectionLimits { max_connections: connection_guard::ADMIN_MAX_CONNECTIONS, ..limits };
                watched.push((admin.local_addr(), admin_limits));
            }
            Some(ConnectionGuard::start(watched, connections_log)?)
        }
        None => None,
    };
    Ok(RunningServer {
        server,
        guard,
        address: public_address,
        engine,
        store,
        admin,
        draining,
        shutdown_timeout: config.shutdown_timeout,
        audit_heads: config.audit_head_interval.is_some().then_some(audit_log),
        _retention: retention,
        log: shutdown_log,
        _log_guard: log_guard,
        _state_lock: state_lock,
    })
}
