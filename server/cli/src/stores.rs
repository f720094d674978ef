//! The stores the subcommands other than `serve` open: the SQLite store of a state folder, or the PostgreSQL
//! database the replicas share.

use crate::cli::{DirectoryArgs, StoreArgs};
use anyhow::Context;
use dpo_server::store::{AuditLog, Directory, postgres::PostgresStore, sqlite::SqliteStore};

pub(crate) fn open(state_dir: &std::path::Path) -> anyhow::Result<SqliteStore> {
    SqliteStore::open(state_dir).with_context(|| format!("opening the state in {}", state_dir.display()))
}

/// The directory of the PostgreSQL database if one is named, else of the SQLite store in the state
/// folder; and what to call it in messages (never the URL, which may hold a password).
pub(crate) fn open_directory(directory: &DirectoryArgs) -> anyhow::Result<(Box<dyn Directory>, String)> {
    let store = &directory.store;
    Ok(match &store.database {
        Some(url) => (Box::new(PostgresStore::open(url, 2).context("opening the database")?), "the database".into()),
        None => (Box::new(open(&store.state_dir)?), store.state_dir.display().to_string()),
    })
}

/// The audit trail of the PostgreSQL database if one is named, else of the SQLite store.
pub(crate) fn open_audit(store: &StoreArgs) -> anyhow::Result<Box<dyn AuditLog>> {
    Ok(match &store.database {
        Some(url) => Box::new(PostgresStore::open(url, 2).context("opening the database")?),
        None => Box::new(open(&store.state_dir)?),
    })
}
