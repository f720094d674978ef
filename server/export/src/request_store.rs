//! The request store: where subject rights requests keep what they gather, a folder per request. A local
//! folder (the default, `<state dir>/requests`, or a path or `file:///…`), or an object store every replica
//! reaches (`s3://bucket/prefix`, `az://container/prefix`; credentials and endpoints from the environment,
//! `AWS_*`, `AZURE_*`, as for drives).

use crate::{ExportError, sink::Sink};
use dpo_contract::location::StorageLocation;
use object_store::ObjectStore;
use std::{path::PathBuf, sync::Arc};
use url::Url;
use uuid::Uuid;

/// Where requests keep what they gather.
#[derive(Clone)]
pub enum RequestStore {
    /// A local folder.
    Local(PathBuf),
    /// An object store, under a prefix.
    Objects {
        /// The store.
        store: Arc<dyn ObjectStore>,
        /// The prefix every request's folder is under (may be empty).
        prefix: String,
        /// The location without secrets, for messages.
        shown: String,
    },
}

impl std::fmt::Debug for RequestStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

/// Why a request store location was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum RequestStoreError {
    /// Not a URL, nor a path.
    #[error("{location:?} is not a URL")]
    NotAUrl {
        /// What was given.
        location: String,
        /// Why it did not parse.
        #[source]
        source: url::ParseError,
    },
    /// A `file:` URL that names no local folder.
    #[error("{0:?} does not name a local folder")]
    NotAFolder(String),
    /// A scheme object_store does not serve, or settings it refused.
    #[error(
        "{location:?} is not a store dpo can write: give a folder, file:///…, s3://bucket/prefix or az://container/prefix"
    )]
    Store {
        /// What was given.
        location: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
}

impl RequestStore {
    /// The store at `location`: a path, `file:///folder`, `s3://bucket/prefix` or `az://container/prefix`.
    pub fn open(location: &str) -> Result<RequestStore, RequestStoreError> {
        if !location.contains("://") {
            return Ok(RequestStore::Local(PathBuf::from(location)));
        }
        let parsed =
            Url::parse(location).map_err(|source| RequestStoreError::NotAUrl { location: location.into(), source })?;
        if parsed.scheme() == "file" {
            let dir = parsed.to_file_path().map_err(|()| RequestStoreError::NotAFolder(location.into()))?;
            return Ok(RequestStore::Local(dir));
        }
        let options = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
        let (store, prefix) = object_store::parse_url_opts(&parsed, options)
            .map_err(|source| RequestStoreError::Store { location: location.into(), source })?;
        let mut shown = parsed.clone();
        shown.set_query(None);
        let _ = shown.set_password(None);
        Ok(RequestStore::Objects { store: Arc::from(store), prefix: prefix.to_string(), shown: shown.to_string() })
    }

    /// The folder of `request`, to write and read.
    pub fn folder(&self, request: Uuid) -> Result<Sink, ExportError> {
        match self {
            RequestStore::Local(dir) => Sink::open(&StorageLocation::Local { dir: dir.clone() }, &request.to_string()),
            RequestStore::Objects { store, prefix, .. } => {
                let folder = if prefix.is_empty() { request.to_string() } else { format!("{prefix}/{request}") };
                Ok(Sink::in_object_store(store.clone(), folder))
            }
        }
    }

    /// Where it is, without secrets.
    pub fn describe(&self) -> String {
        match self {
            RequestStore::Local(dir) => dir.display().to_string(),
            RequestStore::Objects { shown, .. } => shown.clone(),
        }
    }
}
