//! `dpo-server`: runs the dpo API, loads its directory, and shows an export end to end (`demo`).

use anyhow::{Context, bail};
use clap::{Args, Parser, Subcommand};
use dpo_contract::location::LocationPolicy;
use dpo_server::{
    ServerConfig,
    auth::tokens::{MintRequest, TokenRules},
    config::{AuthConfig, TlsFiles},
    config_file::{self, ConfigFile},
    connection_guard::ConnectionLimits,
    demo, import,
    sources::{
        self, Identities, Sources,
        tools::{Checked, Previewed},
    },
    store::{AuditLog, Directory, postgres::PostgresStore, sqlite::SqliteStore},
};
use std::{net::SocketAddr, path::PathBuf, time::Duration};

/// The dpo server: Microsoft Graph data policy operations, self-hosted.
#[derive(Parser)]
#[command(name = "dpo-server", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
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
enum ConfigCommand {
    /// Read the config file (and the sources file it names), check every setting as `serve` would at
    /// start, and print the effective settings, each with where it came from (flag, env, file or
    /// default), passwords masked. Takes every flag of `serve`.
    Check(Box<ServeArgs>),
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Walk every tenant's chain (or one) from its first event, checking each event's hash and link;
    /// fails naming the first event that was changed, removed or is missing. With `--head`, also fails
    /// if the chain no longer reaches that hash (its tail was cut off).
    Verify {
        /// Only this tenant's chain.
        #[arg(long)]
        tenant: Option<String>,
        /// A head printed earlier by `audit head` (or logged by the server), to prove nothing after it
        /// was cut.
        #[arg(long, requires = "tenant", value_parser = dpo_server::audit::parse_head)]
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
enum SourcesCommand {
    /// Read the sources file, connect to every source and prepare every query (without running it);
    /// say for each whether it is ok or the exact error. Fails if any is not ok.
    Check {
        /// The sources file.
        #[arg(long, env = "DPO_SOURCES")]
        sources: PathBuf,
    },
    /// Run every query for one person and say how many rows and bytes each file of an export would
    /// hold; nothing is written.
    Preview {
        /// The person: a user id or userPrincipalName of the directory.
        user: String,
        /// The sources file.
        #[arg(long, env = "DPO_SOURCES")]
        sources: PathBuf,
        #[command(flatten)]
        directory: DirectoryArgs,
    },
}

/// Which directory a command reads or writes, and for which tenant.
#[derive(Args)]
struct DirectoryArgs {
    /// The tenant the records (or the user) belong to.
    #[arg(long, default_value = dpo_server::auth::LOCAL_TENANT)]
    tenant: String,
    #[command(flatten)]
    store: StoreArgs,
}

/// Which store a command works on.
#[derive(Args)]
struct StoreArgs {
    /// Folder of the server's durable state.
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    state_dir: PathBuf,
    /// PostgreSQL URL of the servers' shared database (instead of SQLite in the state folder).
    #[arg(long, env = "DPO_DATABASE_URL")]
    database: Option<String>,
}

#[derive(Args)]
struct TokenArgs {
    /// Tenant (`tid`).
    #[arg(long, default_value = dpo_server::auth::LOCAL_TENANT)]
    tenant: String,
    /// Sign in as this user (a delegated token, `scp`).
    #[arg(long, conflicts_with = "app")]
    user: Option<String>,
    /// An application token (`roles`) instead of a user's.
    #[arg(long)]
    app: bool,
    /// The user is a company administrator (Global Administrator in `wids`).
    #[arg(long)]
    admin: bool,
    /// Permissions granted, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "User.Export.All")]
    scopes: Vec<String>,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    lifetime: i64,
    /// Folder of the server's durable state (its key signs the token).
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    state_dir: PathBuf,
}

#[derive(Subcommand)]
enum ImportCommand {
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
struct ServeArgs {
    /// A config file (TOML) holding any of these flags as keys (`export-workers = 4`): below flags and
    /// the environment, above the defaults. See the README for a complete example.
    #[arg(long, env = "DPO_CONFIG")]
    config: Option<PathBuf>,
    /// Address to listen on (loopback by default; port 0 picks a free port).
    #[arg(long, env = "DPO_BIND", default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Address of the admin listener: /metrics (Prometheus), /healthz, /readyz, without a token, so keep
    /// it on loopback or a private network (port 0 picks a free port; the log says which).
    #[arg(long, env = "DPO_ADMIN_BIND", default_value = "127.0.0.1:0")]
    admin_bind: SocketAddr,
    /// No admin listener.
    #[arg(long)]
    no_admin: bool,
    /// Requests a second (and burst) each tenant may send, all its callers together; beyond it the answer
    /// is 429 TooManyRequests with Retry-After, as Graph throttles. 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_TENANT", default_value_t = 0)]
    throttle_tenant: u32,
    /// Requests a second (and burst) each caller (a user or an application) may send within its tenant.
    /// 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_CALLER", default_value_t = 0)]
    throttle_caller: u32,
    /// Requests a second (and burst) each application may send within a tenant, all its users together
    /// (the token's appid or azp: an application acting as itself, or the one users signed in to), as
    /// Graph limits per app and tenant. 0: no limit.
    #[arg(long, env = "DPO_THROTTLE_APP", default_value_t = 0)]
    throttle_app: u32,
    /// Absolute URL clients use to reach this server, used in Location headers and OData links
    /// (default: http://<bind address>).
    #[arg(long, env = "DPO_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seconds clients are told to wait before polling a submitted export (Retry-After).
    #[arg(long, env = "DPO_RETRY_AFTER", default_value_t = 60)]
    retry_after: u32,
    /// Log level: trace, debug, info, warn, error or critical.
    #[arg(long, env = "DPO_LOG_LEVEL", default_value = "info")]
    log_level: String,
    /// Log format: text (lines for people) or json (one object a line, for log pipelines).
    #[arg(long, env = "DPO_LOG_FORMAT", value_enum, default_value_t = dpo_server::logging::LogFormat::Text)]
    log_format: dpo_server::logging::LogFormat,
    /// Append the log to this file instead of writing it to stderr.
    #[arg(long, env = "DPO_LOG_FILE")]
    log_file: Option<PathBuf>,
    /// Folder of the server's durable state: the SQLite database, its token key, users' drives
    /// (drives/<tenant>/<user id>/) and,
    /// by default, local export folders (exports/).
    #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
    state_dir: PathBuf,
    /// Exports run at once (0: accept exports but run none here).
    #[arg(long, env = "DPO_EXPORT_WORKERS", default_value_t = 2)]
    export_workers: usize,
    /// Exports of one tenant running at once at most, across every server of the store, so that one tenant
    /// cannot fill the worker pool (0: no cap).
    #[arg(long, env = "DPO_EXPORTS_PER_TENANT", default_value_t = 0)]
    exports_per_tenant: u32,
    /// Seconds between the log lines that give every tenant's audit head (its latest hash), to anchor
    /// outside the database (0: none).
    #[arg(long, env = "DPO_AUDIT_HEAD_INTERVAL", default_value_t = 3600)]
    audit_head_interval: u64,
    /// PostgreSQL URL (postgres://user:password@host:port/database) of a database several servers share:
    /// any of them answers any request and they share the exports. Without it: SQLite in --state-dir.
    #[arg(long, env = "DPO_DATABASE_URL")]
    database: Option<String>,
    /// Where users' drives are, laid out as <tenant>/<user id>/…: file:///folder, s3://bucket/prefix or
    /// az://container/prefix (credentials and endpoints from the environment: AWS_*, AZURE_*). Several
    /// replicas need drives they can all read. Default: <state dir>/drives.
    #[arg(long, env = "DPO_DRIVES_URL")]
    drives_url: Option<String>,
    /// A sources file (TOML): the organisation's own databases an export also reads the person's data
    /// from, one folder of the export per source (see the README). Checked at start.
    #[arg(long, env = "DPO_SOURCES")]
    sources: Option<PathBuf>,
    /// Seconds an export's claim lasts without renewal: how soon another server resumes the exports of a
    /// server that is gone.
    #[arg(long, env = "DPO_EXPORT_LEASE", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..))]
    export_lease: u64,
    /// Storage hosts exports may go to, over https (repeat for several; `*.suffix` matches subdomains).
    #[arg(
        long = "storage-host",
        env = "DPO_STORAGE_HOSTS",
        value_delimiter = ',',
        default_value = dpo_contract::location::DEFAULT_STORAGE_HOST,
        value_parser = dpo_contract::location::check_host_pattern
    )]
    storage_hosts: Vec<String>,
    /// Storage emulator hosts (host:port) reached over plain http with path-style URLs, e.g. Azurite.
    #[arg(
        long = "emulator-host",
        env = "DPO_EMULATOR_HOSTS",
        value_delimiter = ',',
        value_parser = dpo_contract::location::check_host_pattern
    )]
    emulator_hosts: Vec<String>,
    /// Folder under which file:// storage locations may lie (default: <state dir>/exports).
    #[arg(long, env = "DPO_LOCAL_EXPORT_ROOT")]
    local_export_root: Option<PathBuf>,
    /// Expected token issuer; {tid} stands for the token's tenant.
    #[arg(long, env = "DPO_TOKEN_ISSUER", default_value = dpo_server::auth::tokens::DEFAULT_ISSUER)]
    token_issuer: String,
    /// Accepted token audiences.
    #[arg(
        long = "token-audience",
        env = "DPO_TOKEN_AUDIENCES",
        value_delimiter = ',',
        default_values_t = dpo_server::auth::tokens::DEFAULT_AUDIENCES.map(String::from)
    )]
    token_audiences: Vec<String>,
    /// JWKS file of the identity provider's signing keys (RS256/ES256).
    #[arg(long, env = "DPO_JWKS_FILE")]
    jwks_file: Option<PathBuf>,
    /// JWKS URL of the identity provider (Entra ID: https://login.microsoftonline.com/<tenant>/discovery/v2.0/keys),
    /// fetched at start and again when its cache headers say, when a token names an unknown key, and at
    /// least every --jwks-max-age seconds; a failed fetch keeps the last good keys.
    #[arg(long, env = "DPO_JWKS_URL")]
    jwks_url: Option<String>,
    /// Longest time in seconds the fetched keys are used without fetching them again, whatever the cache
    /// headers allow: a key the provider removed is refused within it.
    #[arg(long, env = "DPO_JWKS_MAX_AGE", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
    jwks_max_age: u64,
    /// Least time in seconds between two fetches of the JWKS, whatever tokens with unknown keys ask for.
    #[arg(long, env = "DPO_JWKS_MIN_INTERVAL", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    jwks_min_interval: u64,
    /// Refuse tokens signed with this state directory's own key (`dpo-server token`).
    #[arg(long, env = "DPO_NO_LOCAL_KEY")]
    no_local_key: bool,
    /// Serve https with this PEM certificate chain (with --tls-key); links then start with https://.
    #[arg(long, env = "DPO_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM (PKCS #8) private key of --tls-cert.
    #[arg(long, env = "DPO_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Client connections open at once; beyond it the longest silent are closed (lowered to what the
    /// open-file limit allows).
    #[arg(long, env = "DPO_MAX_CONNECTIONS", default_value_t = 4096, value_parser = clap::value_parser!(u64).range(1..))]
    max_connections: u64,
    /// Seconds a new connection has to start its request before it is closed.
    #[arg(long, env = "DPO_HEADER_TIMEOUT", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    header_timeout: u64,
    /// Seconds a connection may stay silent (between requests, or waiting for an answer) before it is closed.
    #[arg(long, env = "DPO_IDLE_TIMEOUT", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    idle_timeout: u64,
    /// Do not enforce the three limits above (their watcher needs Linux's /proc/self/fd): only behind a
    /// load balancer that enforces such limits.
    #[arg(long, env = "DPO_NO_CONNECTION_GUARD")]
    no_connection_guard: bool,
    /// Seconds SIGTERM (or Ctrl-C) waits for requests in flight to finish before cutting them off; running
    /// exports are handed back to the queue at once either way.
    #[arg(long, env = "DPO_SHUTDOWN_TIMEOUT", default_value_t = 30)]
    shutdown_timeout: u64,
    /// Largest page a list answers, whatever $top asks for.
    #[arg(long, env = "DPO_MAX_PAGE_SIZE", default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..))]
    max_page_size: u64,
}

impl ServeArgs {
    fn config(self) -> ServerConfig {
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

/// mimalloc: a request allocates many small, short-lived values (headers, JSON), which it serves
/// markedly faster than the system allocator under concurrency (see BENCHMARKS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Threads of the blocking pool besides the exports' own: the SQLite pool's 8 connections (reads take at
/// most four of them at once; the rest are writes waiting for their turn). Each pool thread keeps its
/// stack and its allocator heap once started (about 1.3 MiB measured), so an unbounded pool (tokio's
/// default is 512) grew the server to 140 MiB under 32 concurrent lists, and 16 threads still to 100 MiB.
const BLOCKING_THREADS: usize = 8;
/// How long an idle blocking thread waits for work before it exits. With tokio's 10 s the pool's threads
/// ended between two loads (GETs use no pool thread) and new ones started for the next lists; kept, they
/// reuse their stacks and heaps. Peak RSS measured the same either way (the growth once suspected here was
/// the metrics recorder's unfolded samples, see `admin::keep_up`).
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(600);
/// Blocking threads one export worker may hold at once: a file's reader, a local file's writer, and a
/// store call.
const BLOCKING_THREADS_PER_EXPORT: usize = 3;

fn main() -> anyhow::Result<()> {
    let (cli, layers) = parse_cli()?;
    let blocking = match &cli.command {
        Command::Serve(args) => BLOCKING_THREADS + BLOCKING_THREADS_PER_EXPORT * args.export_workers,
        _ => BLOCKING_THREADS + BLOCKING_THREADS_PER_EXPORT * ServerConfig::default().export_workers,
    };
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(blocking)
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("starting the runtime")?
        .block_on(run(cli, layers))
}

async fn run(cli: Cli, layers: Option<Layers>) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.config()).await,
        Command::Config { command: ConfigCommand::Check(args) } => check_config(*args, &layers),
        Command::Demo { state_dir } => run_demo(state_dir).await,
        Command::Token(args) => {
            if args.user.is_none() && !args.app {
                bail!("say who the token is for: --user <id> (delegated) or --app (application)");
            }
            let mut request = MintRequest::admin(&args.tenant);
            request.user = args.user;
            request.admin = args.admin;
            request.permissions = args.scopes;
            request.lifetime_seconds = args.lifetime;
            println!("{}", dpo_server::auth::mint_local(&args.state_dir, &request)?);
            Ok(())
        }
        Command::Users { command: ImportCommand::Import { file, directory } } => {
            let users = import::read_users(&file)?;
            let (store, name) = open_directory(&directory)?;
            println!("imported {} users into {name}", store.upsert_users(&directory.tenant, &users)?);
            Ok(())
        }
        Command::Sources { command: SourcesCommand::Check { sources } } => check_sources(&sources).await,
        Command::Audit { command } => audit(command),
        Command::Sources { command: SourcesCommand::Preview { user, sources, directory } } => {
            preview_sources(&sources, &user, &directory).await
        }
        Command::Activities { command: ImportCommand::Import { file, directory } } => {
            let records = import::read_activities(&file)?;
            let (store, name) = open_directory(&directory)?;
            let n = store.add_activities(&directory.tenant, &records)?;
            println!("imported {n} activity records into {name}");
            Ok(())
        }
    }
}

/// Where each setting of `serve` came from, for `config check`.
struct Layers {
    /// The final parse of the command line, the file's settings added.
    matches: clap::ArgMatches,
    /// The settings the file gave (those neither a flag nor the environment did).
    from_file: Vec<String>,
}

/// The command line, with the config file's settings added below flags and the environment.
fn parse_cli() -> anyhow::Result<(Cli, Option<Layers>)> {
    use clap::{CommandFactory, FromArgMatches};
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let command = Cli::command();
    let matches = command.clone().get_matches_from(&argv);
    let Some((serve, names)) = serve_flags(&matches) else {
        return Ok((Cli::from_arg_matches(&matches)?, None));
    };
    let serve_command = names
        .iter()
        .try_fold(&command, |parent, name| parent.find_subcommand(name))
        .context("the command taking serve's flags exists")?;
    let Some(path) = serve.get_one::<PathBuf>(config_file::CONFIG_FLAG) else {
        let layers = Layers { matches: serve.clone(), from_file: Vec::new() };
        return Ok((Cli::from_arg_matches(&matches)?, Some(layers)));
    };
    let file = ConfigFile::load(path, serve_command)?;
    let added = file.args_below(serve);
    let from_file = file.below(serve).map(|s| s.id.clone()).collect();
    let full: Vec<std::ffi::OsString> = argv.iter().chain(&added).cloned().collect();
    let all = match command.clone().try_get_matches_from(&full) {
        Ok(all) => all,
        Err(error) => match file.culprit(&command, &argv, serve) {
            Some(culprit) => return Err(culprit.into()),
            None => error.exit(),
        },
    };
    let cli = Cli::from_arg_matches(&all)?;
    let layers = serve_flags(&all).map(|(matches, _)| Layers { matches: matches.clone(), from_file });
    Ok((cli, layers))
}

/// The matches of the command that takes `serve`'s flags (`serve` itself, or `config check`), and the
/// names leading to it.
fn serve_flags(matches: &clap::ArgMatches) -> Option<(&clap::ArgMatches, &'static [&'static str])> {
    match matches.subcommand()? {
        ("serve", serve) => Some((serve, &["serve"])),
        ("config", config) => match config.subcommand()? {
            ("check", check) => Some((check, &["config", "check"])),
            _ => None,
        },
        _ => None,
    }
}

/// `config check`: every setting checked as `serve` checks it at start, then the effective settings.
fn check_config(args: ServeArgs, layers: &Option<Layers>) -> anyhow::Result<()> {
    let config = args.config();
    dpo_server::logging::level(&config.log_level).map_err(|e| anyhow::anyhow!("log-level: {e}"))?;
    config.drives().context("drives-url")?;
    let sources = config.sources().context("sources")?;
    if let Some(tls) = &config.tls {
        dpo_server::tls::server_config(tls).context("tls")?;
    }
    if let Some(path) = &config.auth.jwks_file {
        let text = std::fs::read_to_string(path).with_context(|| format!("jwks-file: {}", path.display()))?;
        dpo_server::auth::keys::from_jwks(&text).with_context(|| format!("jwks-file: {}", path.display()))?;
    }
    if let Some(layers) = layers {
        use clap::parser::ValueSource;
        let command = <ServeArgs as clap::Args>::augment_args(clap::Command::new("serve"));
        for arg in command.get_arguments() {
            let id = arg.get_id().as_str();
            let Some(long) = arg.get_long() else { continue };
            let values: Vec<String> = layers
                .matches
                .get_raw(id)
                .map(|raw| raw.map(|v| config_file::masked(&v.to_string_lossy())).collect())
                .unwrap_or_default();
            let origin = match layers.matches.value_source(id) {
                _ if layers.from_file.iter().any(|f| f == id) => "file",
                Some(ValueSource::CommandLine) => "flag",
                Some(ValueSource::EnvVariable) => "env",
                Some(ValueSource::DefaultValue) => "default",
                _ => "unset",
            };
            let shown = if values.is_empty() { "-".to_string() } else { values.join(",") };
            println!("{long} = {shown}  ({origin})");
        }
    }
    let sources_note = match &config.sources_file {
        Some(path) => format!(", sources file {} ({} sources)", path.display(), sources.sources.len()),
        None => String::new(),
    };
    println!("settings ok{sources_note}");
    Ok(())
}

fn open(state_dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(state_dir).with_context(|| format!("opening the state in {}", state_dir.display()))
}

/// The directory of the PostgreSQL database if one is named, else of the SQLite store in the state
/// folder; and what to call it in messages (never the URL, which may hold a password).
fn open_directory(directory: &DirectoryArgs) -> anyhow::Result<(Box<dyn Directory>, String)> {
    let store = &directory.store;
    Ok(match &store.database {
        Some(url) => (Box::new(PostgresStore::open(url, 2).context("opening the database")?), "the database".into()),
        None => (Box::new(open(&store.state_dir)?), store.state_dir.display().to_string()),
    })
}

/// The audit trail of the PostgreSQL database if one is named, else of the SQLite store.
fn open_audit(store: &StoreArgs) -> anyhow::Result<Box<dyn AuditLog>> {
    Ok(match &store.database {
        Some(url) => Box::new(PostgresStore::open(url, 2).context("opening the database")?),
        None => Box::new(open(&store.state_dir)?),
    })
}

/// `audit verify` and `audit head`: every tenant's chain (or one), checked from its first event.
fn audit(command: AuditCommand) -> anyhow::Result<()> {
    let (tenant, head, store, verify) = match command {
        AuditCommand::Verify { tenant, head, store } => (tenant, head, store, true),
        AuditCommand::Head { tenant, store } => (tenant, None, store, false),
    };
    let log = open_audit(&store)?;
    let tenants = match tenant {
        Some(tenant) => vec![tenant],
        None => log.audit_tenants()?,
    };
    let mut broken = 0;
    for tenant in &tenants {
        match dpo_server::audit::verify(log.as_ref(), tenant, head.as_deref()) {
            Ok(chain) if verify => println!("{tenant}: {} events, intact; head {}", chain.events, chain.head),
            Ok(chain) => println!("{tenant} {} {}", chain.head, chain.events),
            Err(e) => {
                println!("{e}");
                broken += 1;
            }
        }
    }
    if broken > 0 {
        bail!("{broken} of {} audit chains are broken", tenants.len());
    }
    Ok(())
}

async fn check_sources(path: &std::path::Path) -> anyhow::Result<()> {
    let sources = Sources::load(path)?;
    let checked = sources::tools::check(&sources).await;
    let failed = checked.iter().filter(|c| c.outcome.is_err()).count();
    for Checked { query, outcome } in &checked {
        match outcome {
            Ok(columns) if columns.is_empty() => println!("{query}: ok"),
            Ok(columns) => println!("{query}: ok ({} columns: {})", columns.len(), columns.join(", ")),
            Err(e) => println!("{query}: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} checks failed", checked.len());
    }
    println!("{}: {} sources, {} checks, all ok", path.display(), sources.sources.len(), checked.len());
    Ok(())
}

async fn preview_sources(path: &std::path::Path, user: &str, directory: &DirectoryArgs) -> anyhow::Result<()> {
    let sources = Sources::load(path)?;
    let (store, name) = open_directory(directory)?;
    let found = store.find_user(&directory.tenant, user)?.with_context(|| format!("user {user} is not in {name}"))?;
    let previewed = sources::tools::preview(&sources, &Identities::of(&found)).await;
    let failed = previewed.iter().filter(|p| p.outcome.is_err()).count();
    for Previewed { path, outcome } in &previewed {
        match outcome {
            Ok((objects, bytes)) if path.ends_with('/') => println!("{path}: {objects} objects, {bytes} bytes"),
            Ok((rows, bytes)) => println!("{path}: {rows} rows, {bytes} bytes"),
            Err(e) => println!("{path}: {e}"),
        }
    }
    if failed > 0 {
        bail!("{failed} of {} queries failed: an export of {} would fail", previewed.len(), found.id);
    }
    Ok(())
}

async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let format = config.log_format;
    let server = dpo_server::start(config).await.context("starting dpo-server")?;
    // On stdout whatever the log level (scripts read the address from it), in the log's own format: a log
    // pipeline reading JSON reads stdout and stderr together.
    match format {
        dpo_server::logging::LogFormat::Text => println!("dpo-server listening on {}", server.base_url()),
        dpo_server::logging::LogFormat::Json => println!(
            "{}",
            serde_json::json!({
                "msg": "dpo-server listening",
                "level": "INFO",
                "ts": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Micros, false),
                "url": server.base_url(),
            })
        ),
    }
    shutdown_signal().await;
    // Running exports go back to the queue at once, for another replica (or the next start) to resume.
    server.shutdown().await.map_err(anyhow::Error::msg).context("stopping dpo-server")
}

async fn run_demo(state_dir: PathBuf) -> anyhow::Result<()> {
    let store = open(&state_dir)?;
    let mut config = ServerConfig {
        state_dir: state_dir.clone(),
        log_level: "warn".into(),
        retry_after_seconds: 1,
        ..ServerConfig::default()
    };
    let data = demo::generate(&store, &config.drives_root(), dpo_server::auth::LOCAL_TENANT, 2026)?;
    let shop = demo::write_shop(&state_dir, &data.users, 2026)?;
    config.sources_file = Some(shop.sources_file.clone());
    println!(
        "demo directory: {} users, {} drive files ({:.1} MiB), {} activity records, in {}",
        data.users.len(),
        data.files,
        data.bytes as f64 / (1024.0 * 1024.0),
        data.activities,
        state_dir.display()
    );
    println!(
        "demo data source: a SQLite shop database of {} orders, named in {}",
        shop.orders,
        shop.sources_file.display()
    );
    let exports = config.storage_policy().local_root.context("local exports are enabled")?;
    let server = dpo_server::start(config).await.context("starting dpo-server")?;
    let token = dpo_server::auth::mint_local(&state_dir, &MintRequest::admin(dpo_server::auth::LOCAL_TENANT))?;
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse()?);
    let http = reqwest::Client::builder().default_headers(headers).build()?;
    let client = dpo_client::Client::new_with_client(&format!("{}/v1.0", server.base_url()), http);
    let user = &data.users[0];
    let destination = exports.join(&user.id);
    let location = url::Url::from_directory_path(&destination)
        .map_err(|_| anyhow::anyhow!("{} is not an absolute folder", destination.display()))?;
    println!("exporting {} ({}) to {location}", user.display_name.as_deref().unwrap_or(&user.id), user.id);
    let accepted = client
        .users_user_export_personal_data(
            &user.id,
            &dpo_client::types::UsersUserExportPersonalDataBody { storage_location: Some(location.to_string()) },
        )
        .await?;
    let id = dpo_client::operation_id_from_location(&accepted)?;
    let options = dpo_client::WaitOptions {
        default_interval: Duration::from_millis(250),
        max_interval: Duration::from_millis(500),
        timeout: Duration::from_secs(600),
    };
    let done = client.wait_for_operation(&id, &options).await?;
    server.close().await.map_err(anyhow::Error::msg)?;
    let status = dpo_client::waiting::status_of(&done).map(|s| s.to_string()).unwrap_or_default();
    if status != "complete" {
        bail!("the export ended {status}");
    }
    let folder = destination.join(&id);
    let manifest_path = folder.join("manifest.json");
    let manifest = dpo_contract::manifest::Manifest::parse(&std::fs::read(&manifest_path)?)?;
    let checked = folder.clone();
    let verified = manifest.clone();
    tokio::task::spawn_blocking(move || verified.verify_folder(&checked)).await??;
    println!("operation {id}: {status}, {} objects verified against their SHA-256", manifest.objects.len());
    for source in &manifest.sources {
        let rows = source.rows.map(|rows| format!(", {rows} rows")).unwrap_or_default();
        println!("  {}: {} objects, {} bytes{rows}", source.name, source.objects, source.bytes);
    }
    println!("files:    {}", folder.display());
    println!("manifest: {}", manifest_path.display());
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The README's complete `dpo.toml`: the text of the TOML block that starts with `# dpo.toml`.
    fn readme_example() -> String {
        let readme = include_str!("../../../README.md");
        let start = readme.find("```toml\n# dpo.toml\n").expect("the README has the example") + "```toml\n".len();
        let end = start + readme[start..].find("```").expect("the example ends");
        readme[start..end].to_string()
    }

    #[test]
    fn the_readme_config_example_names_every_serve_flag_and_parses() {
        let command = Cli::command();
        let serve = command.find_subcommand("serve").expect("serve");
        let file = ConfigFile::parse(std::path::Path::new("README.md"), &readme_example(), serve)
            .expect("the README's example is a good config file");
        let named: Vec<&str> = file.settings.iter().map(|s| s.id.as_str()).collect();
        for arg in serve.get_arguments() {
            let id = arg.get_id().as_str();
            if arg.get_long().is_some() && id != config_file::CONFIG_FLAG && id != "help" {
                assert!(named.contains(&id), "the README's dpo.toml lacks {:?}", arg.get_long());
            }
        }
        let argv: Vec<std::ffi::OsString> = ["dpo-server".into(), "serve".into()]
            .into_iter()
            .chain(file.settings.iter().flat_map(|s| s.args.clone()))
            .collect();
        let parsed = Cli::try_parse_from(argv).expect("every value of the example is one serve accepts");
        let Command::Serve(args) = parsed.command else { panic!("serve") };
        let config = args.config();
        assert_eq!(config.export_workers, 2);
        assert_eq!(config.state_dir, PathBuf::from("/var/lib/dpo"));
        assert!(config.admin_bind.is_some() && config.auth.jwks_url.is_some());
    }
}
