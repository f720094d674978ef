//! What went wrong inside an adapter, with its cause: the [`StoreError::Backend`],
//! [`StoreError::Unavailable`] and [`StoreError::Corrupt`] a caller sees carry one of these (or the
//! driver's own error) as their source, never its text.

use crate::StoreError;

/// A failure of the adapter itself, beyond a driver's error.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The state folder could not be created.
    #[error("creating {path}: {source}")]
    StateDir {
        /// The folder.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A step of opening the store failed.
    #[error("{step}: {source}")]
    Opening {
        /// What was being done ("the database URL", "the database pool", …).
        step: &'static str,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A migration failed.
    #[error("migration {version:04}: {source}")]
    Migration {
        /// Its number.
        version: i64,
        /// Why.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The store was closed before the call.
    #[error("the store is closed")]
    Closed,
    /// A writer or task the store hands work to is gone (it stopped or panicked).
    #[error("{0} is gone")]
    WorkerGone(&'static str),
    /// A task of the store's runtime failed (it panicked or was cancelled).
    #[error("the database task failed: {0}")]
    Task(#[source] tokio::task::JoinError),
    /// A lock was poisoned by a panic while held.
    #[error("{0} is poisoned")]
    Poisoned(&'static str),
    /// The audit chain's head kept moving under concurrent appends.
    #[error("the audit chain stayed contended for {0} attempts")]
    Contended(u32),
    /// The database could not be reached in time to hand out a connection.
    #[error("connecting to the database: {0}")]
    Connecting(#[source] Box<dyn std::error::Error + Send + Sync>),
}

/// A stored value that does not read back as what the store writes.
#[derive(Debug, thiserror::Error)]
pub enum BadValue {
    /// A timestamp that is not RFC 3339.
    #[error("timestamp {text:?}: {source}")]
    Timestamp {
        /// The stored text.
        text: String,
        /// Why.
        #[source]
        source: chrono::ParseError,
    },
    /// An id that is not a UUID.
    #[error("id {text:?}: {source}")]
    Id {
        /// The stored text.
        text: String,
        /// Why.
        #[source]
        source: uuid::Error,
    },
    /// A status ordinal the store never writes.
    #[error("status {0}")]
    Status(i64),
    /// A version below zero.
    #[error("version {0}")]
    Version(i64),
    /// A JSON column that does not parse as what it holds.
    #[error("{column} is not {expected}: {source}")]
    Json {
        /// The column.
        column: &'static str,
        /// What it should hold.
        expected: &'static str,
        /// Why.
        #[source]
        source: serde_json::Error,
    },
}

impl From<Failure> for StoreError {
    fn from(failure: Failure) -> StoreError {
        match failure {
            Failure::Connecting(_) => StoreError::unavailable(failure),
            _ => StoreError::backend(failure),
        }
    }
}

impl From<BadValue> for StoreError {
    fn from(value: BadValue) -> StoreError {
        StoreError::corrupt(value)
    }
}

/// A record that could not be written as JSON.
#[derive(Debug, thiserror::Error)]
#[error("writing {what} as JSON: {source}")]
pub struct Unwritable {
    /// What.
    pub what: &'static str,
    /// Why.
    #[source]
    pub source: serde_json::Error,
}

impl From<Unwritable> for StoreError {
    fn from(e: Unwritable) -> StoreError {
        StoreError::backend(e)
    }
}
