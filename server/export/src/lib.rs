//! dpo-export: the export engine. Depends on `dpo-domain` (the store's ports, never an adapter of
//! them) and `dpo-contract`; nothing here knows HTTP.
//!
//! The export engine gathers a user's data and writes it to the operation's storage location, while the
//! operation's `status`, `progress` and `completedDateTime` tell the truth.
//!
//! [`target`] checks a storage location before the `202`; [`sink`] writes objects there (Azure Blob Storage
//! through the SAS URL, or a local folder, both through `object_store`, except that a local folder's streamed
//! files go through [`local_upload`], which flushes them to disk as it writes); [`drive_files`] lists and reads
//! the files of users' drives, found through [`drives`] (a local folder or an object store); [`sources`] holds
//! the organisation's own data sources (`sources.toml`: databases, object stores, HTTP APIs); [`job`] runs one
//! export; [`engine`] runs queued exports on a bounded pool of workers.
//!
//! An export writes, under `<storage location>/<operation id>/`: `profile.json`, `drive/<path>` for every
//! drive file (paths kept), `activity.jsonl` (one activity record a line), a folder per configured data
//! source, `index.html` (what was found, for the person to read: [`index`]), and last `manifest.json`, which
//! lists every object with its size and SHA-256. A reader knows an export is whole when `manifest.json`
//! exists; an operation is only reported `complete` after it was written. Each drive file written whole is
//! recorded in the store, so an export interrupted by a crash resumes after the files it had finished.

pub mod drive_files;
pub mod drives;
pub mod engine;
pub mod index;
pub mod job;
pub mod local_upload;
pub mod retry;
pub mod sink;
pub mod sources;

use dpo_contract::location::LocationError;
use dpo_domain::store::StoreError;

/// Why an export failed; the text becomes the operation's failure reason.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The storage location is not acceptable (any more).
    #[error("{0}")]
    Target(#[from] LocationError),
    /// The storage service refused or failed a write.
    #[error("writing to the storage location failed: {0}")]
    Storage(String),
    /// The user's data could not be read.
    #[error("reading the user's data failed: {0}")]
    Source(String),
    /// A configured data source failed (the export's manifest says so, and lists what was written).
    #[error("reading the source {name}{}: {cause}", query.as_ref().map(|q| format!(", query {q}")).unwrap_or_default())]
    DataSource {
        /// The source.
        name: String,
        /// Its query, for a `sql` source.
        query: Option<String>,
        /// Why.
        #[source]
        cause: Box<crate::sources::SourceError>,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The operation was deleted while it ran.
    #[error("the operation was cancelled")]
    Cancelled,
    /// The export stopped on a bug (a panic), which the text describes.
    #[error("the export stopped unexpectedly: {0}")]
    Panicked(String),
    /// Another worker claimed the operation (this one's lease ran out): it carries on, this one stops.
    #[error("another worker took the export over")]
    LeaseLost,
    /// The export failed, and what it had written could not be removed either.
    #[error("{cause}; what was written so far could not be removed: {removal}")]
    NotRemoved {
        /// Why the export failed.
        #[source]
        cause: Box<ExportError>,
        /// Why removing its objects failed.
        removal: Box<ExportError>,
    },
}

impl ExportError {
    /// Whether the export stopped because dpo's own store could not be reached for a moment: not the
    /// export's failure. What it wrote stays, and it goes back to the queue to resume.
    pub fn store_unavailable(&self) -> bool {
        matches!(self, ExportError::Store(StoreError::Unavailable(_)))
    }
}

impl From<object_store::Error> for ExportError {
    fn from(e: object_store::Error) -> Self {
        let text = e.to_string();
        let hint =
            if text.contains("403") || text.contains("AuthenticationFailed") || text.contains("AuthorizationFailure") {
                " (the storage service refused the SAS token: it may have expired or been revoked)"
            } else {
                ""
            };
        ExportError::Storage(format!("{}{hint}", dpo_contract::redact::redact_secrets(&text)))
    }
}
