//! The command line's tree: every subcommand of `dpo-server` and its flags, as clap parses them.

use clap::{Args, Parser, Subcommand};
use dpo_contract::location::LocationPolicy;
use dpo_server::{
    ServerConfig,
    auth::tokens::TokenRules,
    config::{AuthConfig, TlsFiles},
    connection_guard::ConnectionLimits,
};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The dpo server: Microsoft Graph data policy operations, self-hosted.
#[derive(Parser)]
#[command(name = "dpo-server", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Subcommand)]
pub(crate) enum Command {
    /// Serve the API until interrupted (Ctrl-C or SIGTERM).
    Serve(Box<ServeArgs>),
    /// Load demo users, export one of them to a local folder, verify the export and say where it is.
    Demo {
        /// Folder of the demo's state (created; reused if it exists).
        #[arg(long, default_value = "dpo-demo")]
        state_dir: PathBuf,
    },
    /// Manage the directory of users whose data can be exported.
    Users {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Manage users' activity records.
    Activities {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Print a bearer token signed with this state directory's key, for calling the server.
    Token(TokenArgs),
    /// Check the sources file, or preview what it would export for a person (nothing is written).
    Sources {
        #[command(subcommand)]
        command: SourcesCommand,
    },
    /// Check the audit trail's hash chains, or print their heads to keep outside the database.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Check the settings `serve` would run with.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
pub(crate) enum ConfigCommand {
    /// Read the config file (and the sources file it names), check every setting as `serve` would at
    /// start, and print the effective settings, each with where it came from (flag, env, file or
    /// default), passwords masked. Takes every flag of `serve`.
    Check(Box<ServeArgs>),
}

#[derive(Subcommand)]
pub(crate) enum AuditCommand {
    /// Walk every tenant's chain (or one) from its first event, checking each event's hash and link;
    /// fails naming the first event that was changed, removed or is missing. With `--head`, also fails
    /// if the chain no longer reaches that hash (its tail was cut off).
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<String>,
        /// A head printed earlier by `audit head` (or logged by the server), to prove nothing after it
        /// was cut.
        #[arg(long, requires = "tenant", value_parser = dpo_server::audit_trail::parse_head)]
        head: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Print each tenant's latest hash and event count (`<tenant> <hash> <events>`), after checking the
    /// chain, for the operator to keep outside the database.
    Head {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Subcommand)]
pub(crate) enum SourcesCommand {
    /// Read the sources file, connect to every source and prepare every query (without running it);
    /// say for each whether it is ok or the exact error. Fails if any is not ok.
    Check {
        /// The sources file.
        #[arg(long, env = "DPO_SOURCES")]
        sources: PathBuf,
    },
    /// Run every query for one person and say how many rows and bytes each file of an export would
    /// hold (or, with --erase, what erasing their data would change); nothing is written.
    Preview {
        /// The person: a user id or userPrincipalName of the directory.
        #[arg(required_unless_present = "email", conflicts_with = "email")]
        user: Option<String>,
        /// Or the person as a subject rights request names them: their email address (a customer in no
        /// directory; a user of the directory whose mail or userPrincipalName it is binds their identities too).
        #[arg(long)]
        email: Option<String>,
        /// With --email: their first name (`:first_name`).
        #[arg(long, requires = "email")]
        first_name: Option<String>,
        /// With --email: their last name (`:last_name`).
        #[arg(long, requires = "email")]
        last_name: Option<String>,
        /// With --email: their country or region of residency (`:residency`).
        #[arg(long, requires = "email")]
        residency: Option<String>,
        /// The sources file.
        #[arg(long, env = "DPO_SOURCES")]
        sources: PathBuf,
        /// Say instead what erasing the person's data would do: the rows each erase statement would change
        /// (run inside a transaction that is rolled back), the rows kept and why, the objects and requests.
        #[arg(long)]
        erase: bool,
        #[command(flatten)]
        directory: DirectoryArgs,
    },
}

/// Which directory a command reads or writes, and for which tenant.
#[derive(Args)]
pub(crate) struct DirectoryArgs {
    /// The tenant the records (or the user) belong to.
    #[arg(long, default_value = dpo_server::auth::LOCAL_TENANT)]
    pub(crate) tenant: String,
    #[command(flatten)]
    pub(crate) store: StoreArgs,
}

/// Which store a command works on.
#[derive(Args)]
pub(crate) struct StoreArgs {
    /// Folder of the server's durable state.
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    pub(crate) state_dir: PathBuf,
    /// PostgreSQL URL of the servers' shared database (instead of SQLite in the state folder).
    #[arg(long, env = "DPO_DATABASE_URL")]
    pub(crate) database: Option<String>,
}

#[derive(Args)]
pub(crate) struct TokenArgs {
    /// Tenant (`tid`).
    #[arg(long, default_value = dpo_server::auth::LOCAL_TENANT)]
    pub(crate) tenant: String,
    /// Sign in as this user (a delegated token, `scp`).
    #[arg(long, conflicts_with = "app")]
    pub(crate) user: Option<String>,
    /// An application token (`roles`) instead of a user's.
    #[arg(long)]
    pub(crate) app: bool,
    /// The user is a company administrator (Global Administrator in `wids`).
    #[arg(long)]
    pub(crate) admin: bool,
    /// Permissions granted, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "User.Export.All")]
    pub(crate) scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    pub(crate) lifetime: i64,
    /// Folder of the server's durable state (its key signs the token).
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    pub(crate) state_dir: PathBuf,
}

#[derive(Subcommand)]
pub(crate) enum ImportCommand {
    /// Add records from a file. Users: a JSON array of {"id","userPrincipalName","displayName","mail"} or a
    /// CSV file with that header. Activities: JSON lines of {"userId","occurredAt","kind","detail"}.
    Import {
        /// The file.
        file: PathBuf,
        #[command(flatten)]
        directory: DirectoryArgs,
    },
}

#[derive(Args)]
pub(crate) struct ServeArgs {
    /// A config file (TOML) holding any of these flags as keys (`export-workers = 4`): below flags and
    /// the environment, above the defaults. See the README for a complete example.
    #[arg(long, env = "DPO_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "DPO_BIND", default_value = "127.0.0.1:8080")]
    pub(crate) bind: SocketAddr,
    /// Address of the admin listener: /metrics (Prometheus), /healthz, /readyz, without a token, so keep
    /// it on loopback or a private network (port 0 picks a free port; the log says which).
    #[arg(long, env = "DPO_ADMIN_BIND", default_value = "127.0.0.1:0")]
    pub(crate) admin_bind: SocketAddr,
    /// No admin listener.
    #[arg(long)]
    pub(crate) no_admin: bool,
    /// Requests a second (and burst) each tenant may send, all its callers together; beyond it the answer
    /// is 429 TooManyRequests with Retry-After, as Graph throttles. 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_TENANT", default_value_t = 0)]
    pub(crate) throttle_tenant: u32,
    /// Requests a second (and burst) each caller (a user or an application) may send within its tenant.
    /// 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_CALLER", default_value_t = 0)]
    pub(crate) throttle_caller: u32,
    /// Requests a second (and burst) each application may send within a tenant, all its users together
    /// (the token's appid or azp: an application acting as itself, or the one users signed in to), as
    /// Graph limits per app and tenant. 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_APP", default_value_t = 0)]
    pub(crate) throttle_app: u32,
    /// Absolute URL clients use to reach this server, used in Location headers and OData links
    /// (default: http://<bind address>).
    #[arg(long, env = "DPO_PUBLIC_URL")]
    pub(crate) public_url: Option<String>,
    /// Seconds clients are told to wait before polling a submitted export (Retry-After).
    #[arg(long, env = "DPO_RETRY_AFTER", default_value_t = 60)]
    pub(crate) retry_after: u32,
    /// Log level: trace, debug, info, warn, error or critical.
    #[arg(long, env = "DPO_LOG_LEVEL", default_value = "info")]
    pub(crate) log_level: String,
    /// Log format: text (lines for people) or json (one object a line, for log pipelines).
    #[arg(long, env = "DPO_LOG_FORMAT", value_enum, default_value_t = dpo_server::logging::LogFormat::Text)]
    pub(crate) log_format: dpo_server::logging::LogFormat,
    /// Append the log to this file instead of writing it to stderr.
    #[arg(long, env = "DPO_LOG_FILE")]
    pub(crate) log_file: Option<PathBuf>,
    /// Folder of the server's durable state: the SQLite database, its token key, users' drives
    /// (drives/<tenant>/<user id>/) and,
    /// by default, local export folders (exports/).
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    pub(crate) state_dir: PathBuf,
    /// Exports run at once (0: accept exports but run none here).
    #[arg(long, env = "DPO_EXPORT_WORKERS", default_value_t = 2)]
    pub(crate) export_workers: usize,
    /// Exports of one tenant running at once at most, across every server of the store, so that one tenant
    /// cannot fill the worker pool (0: no cap).
    #[arg(long, env = "DPO_EXPORTS_PER_TENANT", default_value_t = 0)]
    pub(crate) exports_per_tenant: u32,
    /// Seconds between the log lines that give every tenant's audit head (its latest hash), to anchor
    /// outside the database (0: none).
    #[arg(long, env = "DPO_AUDIT_HEAD_INTERVAL", default_value_t = 3600)]
    pub(crate) audit_head_interval: u64,
    /// PostgreSQL URL (postgres://user:password@host:port/database) of a database several servers share:
    /// any of them answers any request and they share the exports. Without it: SQLite in --state-dir.
    #[arg(long, env = "DPO_DATABASE_URL")]
    pub(crate) database: Option<String>,
    /// Where users' drives are, laid out as <tenant>/<user id>/…: file:///folder, s3://bucket/prefix or
    /// az://container/prefix (credentials and endpoints from the environment: AWS_*, AZURE_*). Several
    /// replicas need drives they can all read. Default: <state dir>/drives.
    #[arg(long, env = "DPO_DRIVES_URL")]
    pub(crate) drives_url: Option<String>,
    /// Where subject rights requests keep what they gather for the person, a folder per request: a path,
    /// file:///folder, s3://bucket/prefix or az://container/prefix (credentials and endpoints from the
    /// environment: AWS_*, AZURE_*). Replicas need one they all reach. Default: <state dir>/requests.
    #[arg(long, env = "DPO_REQUESTS_LOCATION")]
    pub(crate) requests_location: Option<String>,
    /// Days what a closed subject rights request collected stays in the request store before it is deleted
    /// (audited); the request, its notes, history and report stay.
    #[arg(long, env = "DPO_REQUESTS_RETENTION", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=36500))]
    pub(crate) requests_retention: u64,
    /// A sources file (TOML): the organisation's own databases an export also reads the person's data
    /// from, one folder of the export per source (see the README). Checked at start.
    #[arg(long, env = "DPO_SOURCES")]
    pub(crate) sources: Option<PathBuf>,
    /// Seconds an export's claim lasts without renewal: how soon another server resumes the exports of a
    /// server that is gone.
    #[arg(long, env = "DPO_EXPORT_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) export_lease: u64,
    /// Storage hosts exports may go to, over https (repeat for several; `*.suffix` matches subdomains).
    #[arg(
        long = "storage-host",
        env = "DPO_STORAGE_HOSTS",
        value_delimiter = ',',
        default_value = dpo_contract::location::DEFAULT_STORAGE_HOST,
        value_parser = dpo_contract::location::check_host_pattern
    )]
    pub(crate) storage_hosts: Vec<String>,
    /// Storage emulator hosts (host:port) reached over plain http with path-style URLs, e.g. Azurite.
    #[arg(
        long = "emulator-host",
        env = "DPO_EMULATOR_HOSTS",
        value_delimiter = ',',
        value_parser = dpo_contract::location::check_host_pattern
    )]
    pub(crate) emulator_hosts: Vec<String>,
    /// Folder under which file:// storage locations may lie (default: <state dir>/exports).
    #[arg(long, env = "DPO_LOCAL_EXPORT_ROOT")]
    pub(crate) local_export_root: Option<PathBuf>,
    /// Expected token issuer; {tid} stands for the token's tenant.
    #[arg(long, env = "DPO_TOKEN_ISSUER", default_value = dpo_server::auth::tokens::DEFAULT_ISSUER)]
    pub(crate) token_issuer: String,
    /// Accepted token audiences.
    #[arg(
        long = "token-audience",
        env = "DPO_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_values_t = dpo_server::auth::tokens::DEFAULT_AUDIENCES.map(String::from)
    )]
    pub(crate) token_audiences: Vec<String>,
    /// JWKS file of the identity provider's signing keys (RS256/ES256).
    #[arg(long, env = "DPO_JWKS_FILE")]
    pub(crate) jwks_file: Option<PathBuf>,
    /// JWKS URL of the identity provider (Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys),
    /// fetched at start and again when its cache headers say, when a token names an unknown key, and at
    /// least every --jwks-max-age seconds; a failed fetch keeps the last good keys.
    #[arg(long, env = "DPO_JWKS_URL")]
    pub(crate) jwks_url: Option<String>,
    /// Longest time in seconds the fetched keys are used without fetching them again, whatever the cache
    /// headers allow: a key the provider removed is refused within it.
    #[arg(long, env = "DPO_JWKS_MAX_AGE", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) jwks_max_age: u64,
    /// Least time in seconds between two fetches of the JWKS, whatever tokens with unknown keys ask for.
    #[arg(long, env = "DPO_JWKS_MIN_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) jwks_min_interval: u64,
    /// Refuse tokens signed with this state directory's own key (`dpo-server token`).
    #[arg(long, env = "DPO_NO_LOCAL_KEY")]
    pub(crate) no_local_key: bool,
    /// Serve https with this PEM certificate chain (with --tls-key); links then start with https://.
    #[arg(long, env = "DPO_TLS_CERT", requires = "tls_key")]
    pub(crate) tls_cert: Option<PathBuf>,
    /// PEM (PKCS #8) private key of --tls-cert.
    #[arg(long, env = "DPO_TLS_KEY", requires = "tls_cert")]
    pub(crate) tls_key: Option<PathBuf>,
    /// Client connections open at once; beyond it the longest silent are closed (lowered to what the
    /// open-file limit allows).
    #[arg(long, env = "DPO_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_connections: u64,
    /// Seconds a new connection has to start its request before it is closed.
    #[arg(long, env = "DPO_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) header_timeout: u64,
    /// Seconds a connection may stay silent (between requests, or waiting for an answer) before it is closed.
    #[arg(long, env = "DPO_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) idle_timeout: u64,
    /// Do not enforce the three limits above (their watcher needs Linux's /proc/self/fd): only behind a
    /// load balancer that enforces such limits.
    #[arg(long, env = "DPO_NO_CONNECTION_GUARD")]
    pub(crate) no_connection_guard: bool,
    /// Seconds SIGTERM (or Ctrl-C) waits for requests in flight to finish before cutting them off; running
    /// exports are handed back to the queue at once either way.
    #[arg(long, env = "DPO_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    pub(crate) shutdown_timeout: u64,
    /// Largest page a list answers, whatever $top asks for.
    #[arg(long, env = "DPO_MAX_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) max_page_size: u64,
}

impl ServeArgs {
    pub(crate) fn config(self) -> ServerConfig {
        ServerConfig {
            bind_address: self.bind,
            admin_bind: (!self.no_admin).then_some(self.admin_bind),
            public_base_url: self.public_url,
            retry_after_seconds: self.retry_after,
            log_level: self.log_level,
            log_format: self.log_format,
            log_file: self.log_file,
            throttle: dpo_server::throttle::ThrottleLimits {
                per_tenant: std::num::NonZeroU32::new(self.throttle_tenant),
                per_caller: std::num::NonZeroU32::new(self.throttle_caller),
                per_app: std::num::NonZeroU32::new(self.throttle_app),
            },
            state_dir: self.state_dir,
            export_workers: self.export_workers,
            exports_per_tenant: (self.exports_per_tenant > 0).then_some(self.exports_per_tenant),
            audit_head_interval: (self.audit_head_interval > 0).then(|| Duration::from_secs(self.audit_head_interval)),
            database: self.database,
            drives_url: self.drives_url,
            requests_location: self.requests_location,
            requests_retention: Duration::from_secs(self.requests_retention * 24 * 3600),
            sources_file: self.sources,
            export_lease: Duration::from_secs(self.export_lease),
            max_page_size: self.max_page_size,
            shutdown_timeout: Duration::from_secs(self.shutdown_timeout),
            connections: (!self.no_connection_guard).then(|| ConnectionLimits {
                max_connections: usize::try_from(self.max_connections).unwrap_or(usize::MAX),
                header_timeout: Duration::from_secs(self.header_timeout),
                idle_timeout: Duration::from_secs(self.idle_timeout),
            }),
            tls: self.tls_cert.zip(self.tls_key).map(|(cert, key)| TlsFiles { cert, key }),
            storage: LocationPolicy {
                allowed_hosts: self.storage_hosts,
                http_hosts: self.emulator_hosts,
                local_root: self.local_export_root.map(|p| dpo_server::config::absolute(&p)),
                require_write: true,
            },
            auth: AuthConfig {
                rules: TokenRules { issuer: self.token_issuer, audiences: self.token_audiences },
                local_key: !self.no_local_key,
                jwks_file: self.jwks_file,
                jwks_url: self.jwks_url,
                jwks_refresh: dpo_server::auth::jwks::RefreshPolicy {
                    max_age: Duration::from_secs(self.jwks_max_age),
                    min_interval: Duration::from_secs(self.jwks_min_interval),
                },
            },
            ..ServerConfig::default()
        }
    }
}
