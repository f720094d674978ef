//! `dpo-server`: runs the dpo API, loads its directory, and shows an export end to end (`demo`). This file
//! starts the runtime and hands each subcommand to its module; the clap tree is in [`cli`].

mod audit;
mod cli;
mod demo;
mod layers;
mod serve;
mod sources;
mod stores;

use anyhow::{Context, bail};
use cli::{Cli, Command, ConfigCommand, ImportCommand, SourcesCommand};
use dpo_server::{ServerConfig, auth::tokens::MintRequest, import};
use stores::open_directory;

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
    let (cli, layers) = layers::parse_cli()?;
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

async fn run(cli: Cli, layers: Option<layers::Layers>) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(args.config()).await,
        Command::Config { command: ConfigCommand::Check(args) } => layers::check_config(*args, &layers),
        Command::Demo { state_dir } => demo::run(state_dir).await,
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
        Command::Sources { command: SourcesCommand::Check { sources } } => sources::check(&sources).await,
        Command::Audit { command } => audit::run(command),
        Command::Sources {
            command:
                SourcesCommand::Preview { user, email, first_name, last_name, residency, sources, erase, directory },
        } => {
            let person = match (user, email) {
                (Some(user), _) => sources::Person::User(user),
                (None, Some(email)) => {
                    sources::Person::Named(dpo_server::sources::NamedPerson { email, first_name, last_name, residency })
                }
                (None, None) => anyhow::bail!("name the person: a user, or --email"),
            };
            sources::preview(&sources, &person, &directory, erase).await
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
