//! Writing export objects to a target through `object_store`: small objects in one request, files in
//! blocks (Azure Put Block / Put Block List) so that memory stays bounded whatever their size. Transient
//! failures (429, 5xx, dropped connections) are retried with exponential backoff by `object_store`.

use super::{ExportError, target::Target};
use crate::store::ExportedObject;
use bytes::Bytes;
use object_store::{
    BackoffConfig, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    local::LocalFileSystem,
    path::Path as ObjectPath,
};
use sha2::{Digest, Sha256};
use std::{sync::Arc, time::Duration};

/// Size of one uploaded block, and the most a single upload holds in memory per block in flight.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// Blocks of one file in flight at once.
pub const BLOCKS_IN_FLIGHT: usize = 2;

/// The export folder of one operation in its target.
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    folder: String,
}

fn retry() -> RetryConfig {
    RetryConfig {
        backoff: BackoffConfig {
            init_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(5),
            base: 2.0,
        },
        max_retries: 8,
        retry_timeout: Duration::from_secs(120),
    }
}

impl Sink {
    /// Opens the folder `operation` of `target`.
    pub fn open(target: &Target, operation: &str) -> Result<Sink, ExportError> {
        let folder = target.folder_for(operation);
        let store: Arc<dyn ObjectStore> = match target {
            Target::AzureBlob { endpoint, account, container, sas, .. } => Arc::new(
                MicrosoftAzureBuilder::new()
                    .with_account(account)
                    .with_container_name(container)
                    .with_endpoint(endpoint.clone())
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_config(AzureConfigKey::SasKey, sas.clone())
                    .with_retry(retry())
                    .build()?,
            ),
            Target::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ExportError::Storage(format!("creating {}: {e}", dir.display())))?;
                // fsync every object before it counts as written, as a blob service stores it durably
                // before it answers: the manifest (last) then only names objects that survive a crash.
                Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_fsync(true))
            }
        };
        Ok(Sink { store, folder })
    }

    fn path(&self, name: &str) -> Result<ObjectPath, ExportError> {
        ObjectPath::parse(format!("{}/{name}", self.folder))
            .map_err(|e| ExportError::Storage(format!("invalid object name {name:?}: {e}")))
    }

    /// Writes a small object in one request.
    pub async fn put(&self, name: &str, content: Bytes) -> Result<ExportedObject, ExportError> {
        let sha256 = hex::encode(Sha256::digest(&content));
        let size = content.len() as u64;
        self.store.put(&self.path(name)?, PutPayload::from(content)).await?;
        Ok(ExportedObject { path: name.to_string(), size, sha256 })
    }

    /// The size of object `name` in the target, or `None` if it is not there.
    pub async fn size_of(&self, name: &str) -> Result<Option<u64>, ExportError> {
        match self.store.head(&self.path(name)?).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a streamed object: feed it with [`Upload::write`], then [`Upload::finish`].
    pub async fn upload(&self, name: &str) -> Result<Upload, ExportError> {
        let upload = self.store.put_multipart(&self.path(name)?).await?;
        Ok(Upload {
            name: name.to_string(),
            writer: WriteMultipart::new_with_chunk_size(upload, BLOCK_SIZE),
            hasher: Sha256::new(),
            size: 0,
        })
    }
}

/// An object being written in blocks.
pub struct Upload {
    name: String,
    writer: WriteMultipart,
    hasher: Sha256,
    size: u64,
}

impl Upload {
    /// Adds bytes, waiting while too many blocks are in flight. The bytes are not copied: whole
    /// chunks of [`BLOCK_SIZE`] go out as blocks as they are.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), ExportError> {
        self.writer.wait_for_capacity(BLOCKS_IN_FLIGHT).await?;
        self.hasher.update(&bytes);
        self.size += bytes.len() as u64;
        self.writer.put(bytes);
        Ok(())
    }

    /// Commits the object.
    pub async fn finish(self) -> Result<ExportedObject, ExportError> {
        self.writer.finish().await?;
        Ok(ExportedObject { path: self.name, size: self.size, sha256: hex::encode(self.hasher.finalize()) })
    }

    /// Gives up on the object (its blocks are discarded by the service).
    pub async fn abort(self) {
        let _ = self.writer.abort().await;
    }
}
