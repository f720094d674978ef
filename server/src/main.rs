//! `dpo-server`: runs the dpo API.

use anyhow::Context;
use clap::{Parser, Subcommand};
use dpo_server::{
    ServerConfig,
    store::{OperationStore, UserRecord, sqlite::SqliteStore},
};
use std::{net::SocketAddr, path::PathBuf};

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
    Serve {
        /// Address to listen on (loopback by default; port 0 picks a free port).
        #[arg(long, env = "DPO_BIND", default_value = "127.0.0.1:8080")]
        bind: SocketAddr,
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
        /// Folder of the server's durable state (SQLite database); created if missing.
        #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
        state_dir: PathBuf,
    },
    /// Manage the directory of users whose data can be exported.
    Users {
        #[command(subcommand)]
        command: UsersCommand,
    },
}

#[derive(Subcommand)]
enum UsersCommand {
    /// Add or update users from a JSON file: an array of {"id", "userPrincipalName", "displayName", "mail"}.
    Import {
        /// The JSON file.
        file: PathBuf,
        /// Folder of the server's durable state.
        #[arg(long, env = "DPO_STATE_DIR", default_value = "dpo-state")]
        state_dir: PathBuf,
    },
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Users { command: UsersCommand::Import { file, state_dir } } => {
            let text = std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
            let users: Vec<UserRecord> = serde_json::from_str(&text)
                .with_context(|| format!("{}: expected a JSON array of users", file.display()))?;
            if let Some(bad) = users.iter().find(|u| u.id.trim().is_empty() || u.user_principal_name.trim().is_empty())
            {
                anyhow::bail!("{}: every user needs an id and a userPrincipalName ({bad:?})", file.display());
            }
            let store = SqliteStore::open(&state_dir).with_context(|| format!("opening {}", state_dir.display()))?;
            let n = store.upsert_users(&users)?;
            println!("imported {n} users into {}", state_dir.display());
            Ok(())
        }
        Command::Serve { bind, public_url, retry_after, log_level, state_dir } => {
            let config = ServerConfig {
                bind_address: bind,
                public_base_url: public_url,
                retry_after_seconds: retry_after,
                log_level,
                state_dir,
                ..ServerConfig::default()
            };
            let server = dpo_server::start(config).await.context("starting dpo-server")?;
            println!("dpo-server listening on {}", server.base_url());
            shutdown_signal().await;
            server.close().await.map_err(anyhow::Error::msg).context("stopping dpo-server")?;
            Ok(())
        }
    }
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
