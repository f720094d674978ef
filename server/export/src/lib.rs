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

pub mod attachment;
pub mod drive_files;
pub mod drives;
pub mod engine;
pub mod index;
pub mod job;
pub mod local_upload;
pub mod request_store;
pub mod request_work;
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
    Storage(#[source] Failed),
    /// The user's data could not be read.
    #[error("reading the user's data failed: {0}")]
    Source(#[source] Failed),
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
        let doing = match e {
            // A SAS token that expired or was revoked is what a refusal almost always means.
            object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. } => {
                "the storage service refused the SAS token (it may have expired or been revoked)"
            }
            _ => "the storage service",
        };
        ExportError::writing(doing, Redacted(e))
    }
}

/// A cause kept whole.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

/// What an export was doing when a read or a write failed, and why (when something else failed).
#[derive(Debug, thiserror::Error)]
#[error("{doing}{}", cause.as_ref().map(|c| format!(": {c}")).unwrap_or_default())]
pub struct Failed {
    /// What was being done ("creating /exports/…", "the profile", …).
    pub doing: String,
    /// Why it failed.
    #[source]
    pub cause: Option<Cause>,
}

impl ExportError {
    /// A write that failed while `doing`, because of `cause`.
    pub fn writing(doing: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        ExportError::Storage(Failed { doing: doing.into(), cause: Some(Box::new(cause)) })
    }

    /// A write that failed as `what` says, with no further cause.
    pub fn write_failed(what: impl Into<String>) -> Self {
        ExportError::Storage(Failed { doing: what.into(), cause: None })
    }

    /// A read of the person's data that failed while `doing`, because of `cause`.
    pub fn reading(doing: impl Into<String>, cause: impl std::error::Error + Send + Sync + 'static) -> Self {
        ExportError::Source(Failed { doing: doing.into(), cause: Some(Box::new(cause)) })
    }

    /// A read of the person's data that failed as `what` says, with no further cause.
    pub fn unreadable(what: impl Into<String>) -> Self {
        ExportError::Source(Failed { doing: what.into(), cause: None })
    }
}

/// An error of a storage client whose text may name the SAS-signed URL: shown with secrets redacted.
/// It hides the errors below it too (their text holds the same URL); the error itself is kept for a
/// caller to match on.
#[derive(Debug)]
pub struct Redacted<E>(pub E);

impl<E: std::fmt::Display> std::fmt::Display for Redacted<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&dpo_contract::redact::redact_secrets(&self.0.to_string()))
    }
}

impl<E: std::fmt::Debug + std::fmt::Display> std::error::Error for Redacted<E> {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_of_the_storage_service_is_told_apart_by_its_kind_and_its_url_is_redacted() {
        let path = "c/op/profile.json".to_string();
        let cause = "PUT https://a.blob.core.windows.net/c/op/profile.json?sv=1&sig=SECRET: 403 Forbidden";
        let refused = ExportError::from(object_store::Error::PermissionDenied { path, source: cause.into() });
        let text = refused.to_string();
        assert!(text.contains("refused the SAS token"), "{text}");
        assert!(!text.contains("SECRET"), "{text}");
        let other = ExportError::from(object_store::Error::Generic { store: "MicrosoftAzure", source: cause.into() });
        assert!(!other.to_string().contains("refused the SAS token"), "{other}");
        assert!(!other.to_string().contains("SECRET"), "{other}");
        assert!(matches!(other, ExportError::Storage(Failed { cause: Some(_), .. })), "the cause is kept");
    }
}
