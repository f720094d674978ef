//! Writing export objects to a target through `object_store`: small objects in one request, files in
//! blocks (Azure Put Block / Put Block List) so that memory stays bounded whatever their size. Transient
//! failures (429, 5xx, dropped connections) are retried with exponential backoff by `object_store`.

use super::{ExportError, local_upload::LocalUpload};
use bytes::Bytes;
use dpo_contract::location::StorageLocation;
use dpo_domain::store::ExportedObject;
use futures::TryStreamExt;
use object_store::{
    BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart,
    azure::{AzureConfigKey, MicrosoftAzureBuilder},
    client::{HttpClient, HttpConnector},
    local::LocalFileSystem,
    path::Path as ObjectPath,
};
use sha2::{Digest, Sha256};
use std::{path::PathBuf, sync::Arc, time::Duration};
use url::Url;

/// Version of the Blob service REST API of the requests dpo makes itself.
const AZURE_API_VERSION: &str = "2021-08-06";

/// Size of one uploaded block, and the most a single upload holds in memory per block in flight.
pub const BLOCK_SIZE: usize = 4 * 1024 * 1024;
/// Size of one uploaded part in an object store of dpo's own: S3 refuses parts under 5 MiB (but the last).
const OBJECT_STORE_BLOCK_SIZE: usize = 8 * 1024 * 1024;
/// Bytes read from a local file at a time.
const READ_CHUNK: usize = 1024 * 1024;
/// Blocks of one file in flight at once (as many as Microsoft's SDKs upload with `max_concurrency=4`).
pub const BLOCKS_IN_FLIGHT: usize = 4;

/// The export folder of one operation in its target.
pub struct Sink {
    store: Arc<dyn ObjectStore>,
    folder: String,
    /// The folder on disk, for a local target.
    local_folder: Option<PathBuf>,
    /// The container's URL and its SAS, for an Azure target (see [`Sink::remove_all`]).
    container: Option<(Url, String)>,
    /// The size of each block a streamed object is uploaded in.
    block_size: usize,
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

/// The HTTP client of every request to a storage location. It follows no redirect: the SAS travels in the
/// query, and a redirect would carry it to whichever host the answer names, off the allowed list. Azure Blob
/// Storage never redirects these requests, so a redirect fails the request (object_store reports the 3xx).
fn storage_http(allow_http: bool) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .https_only(!allow_http)
        // object_store's own defaults for its clients.
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
}

/// Gives object_store the storage client of [`storage_http`] instead of its own, which follows redirects.
#[derive(Debug)]
struct NoRedirects {
    allow_http: bool,
}

impl HttpConnector for NoRedirects {
    fn connect(&self, _options: &ClientOptions) -> object_store::Result<HttpClient> {
        let client = storage_http(self.allow_http)
            .map_err(|source| object_store::Error::Generic { store: "MicrosoftAzure", source: Box::new(source) })?;
        Ok(HttpClient::new(client))
    }
}

impl Sink {
    /// Opens the folder `operation` of `target`.
    pub fn open(target: &StorageLocation, operation: &str) -> Result<Sink, ExportError> {
        let folder = target.folder_for(operation);
        let (local_folder, container) = match target {
            StorageLocation::Local { dir } => (Some(dir.join(&folder)), None),
            StorageLocation::AzureBlob { endpoint, container, sas, .. } => {
                let url = Url::parse(&format!("{endpoint}/"))
                    .and_then(|u| u.join(container))
                    .map_err(|e| ExportError::writing("the container URL", e))?;
                (None, Some((url, sas.clone())))
            }
        };
        let store: Arc<dyn ObjectStore> = match target {
            StorageLocation::AzureBlob { endpoint, account, container, sas, .. } => Arc::new(
                MicrosoftAzureBuilder::new()
                    .with_account(account)
                    .with_container_name(container)
                    .with_endpoint(endpoint.clone())
                    .with_allow_http(endpoint.starts_with("http://"))
                    .with_config(AzureConfigKey::SasKey, sas.clone())
                    .with_retry(retry())
                    .with_http_connector(NoRedirects { allow_http: endpoint.starts_with("http://") })
                    .build()?,
            ),
            StorageLocation::Local { dir } => {
                std::fs::create_dir_all(dir)
                    .map_err(|e| ExportError::writing(format!("creating {}", dir.display()), e))?;
                // fsync every object before it counts as written, as a blob service stores it durably
                // before it answers: the manifest (last) then only names objects that survive a crash.
                Arc::new(LocalFileSystem::new_with_prefix(dir)?.with_fsync(true))
            }
        };
        Ok(Sink { store, folder, local_folder, container, block_size: BLOCK_SIZE })
    }

    /// The folder `folder` of an object store dpo writes with its own credentials (the request store).
    pub fn in_object_store(store: Arc<dyn ObjectStore>, folder: String) -> Sink {
        Sink { store, folder, local_folder: None, container: None, block_size: OBJECT_STORE_BLOCK_SIZE }
    }

    /// Removes what a crash left of uploads in progress in a local target: object_store stages a
    /// streamed file as `<name>#<n>` and renames it when whole, so such a file is never an export object.
    pub async fn remove_staging_leftovers(&self) -> Result<usize, ExportError> {
        let Some(folder) = self.local_folder.clone() else { return Ok(0) };
        tokio::task::spawn_blocking(move || {
            let mut removed = 0;
            for entry in walkdir::WalkDir::new(&folder).follow_links(false).into_iter().filter_map(Result::ok) {
                let name = entry.file_name().to_string_lossy();
                let staged =
                    name.rsplit_once('#').is_some_and(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()));
                if entry.file_type().is_file() && staged {
                    std::fs::remove_file(entry.path())
                        .map_err(|e| ExportError::writing(format!("removing {}", entry.path().display()), e))?;
                    removed += 1;
                }
            }
            Ok(removed)
        })
        .await
        .map_err(|e| ExportError::writing("cleaning the export folder", e))?
    }

    /// Removes every object of this export folder (an export that failed leaves no partial personal data
    /// behind where it can remove it); returns how many objects were removed.
    pub async fn remove_all(&self) -> Result<usize, ExportError> {
        if let Some(folder) = self.local_folder.clone() {
            return tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&folder) {
                Ok(()) => Ok(1),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(0),
                Err(e) => Err(ExportError::writing(format!("removing {}", folder.display()), e)),
            })
            .await
            .map_err(|e| ExportError::writing("removing the export folder", e))?;
        }
        let prefix = ObjectPath::parse(&self.folder)
            .map_err(|e| ExportError::writing(format!("invalid folder {:?}", self.folder), e))?;
        let objects: Vec<_> = self.store.list(Some(&prefix)).map_ok(|meta| meta.location).try_collect().await?;
        let Some((container, sas)) = &self.container else {
            // An object store of dpo's own: deleted through it, one object at a time.
            for object in &objects {
                match self.store.delete(object).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            return Ok(objects.len());
        };
        // One Delete Blob request per object: object_store deletes through Blob Batch, which a container
        // SAS and the Azurite emulator do not always allow.
        let client =
            storage_http(container.scheme() == "http").map_err(|e| ExportError::writing("the storage client", e))?;
        for object in &objects {
            let mut url = container.clone();
            url.path_segments_mut()
                .map_err(|()| ExportError::write_failed("the container URL cannot hold a path"))?
                .extend(object.parts().map(|part| part.as_ref().to_string()));
            url.set_query(Some(sas));
            let response = client
                .delete(url)
                .header("x-ms-version", AZURE_API_VERSION)
                .send()
                .await
                .map_err(|e| ExportError::writing(format!("deleting {object}"), crate::Redacted(e)))?;
            if !response.status().is_success() && response.status() != reqwest::StatusCode::NOT_FOUND {
                return Err(ExportError::write_failed(format!("deleting {object} answered {}", response.status())));
            }
        }
        Ok(objects.len())
    }

    fn path(&self, name: &str) -> Result<ObjectPath, ExportError> {
        ObjectPath::parse(format!("{}/{name}", self.folder))
            .map_err(|e| ExportError::writing(format!("invalid object name {name:?}"), e))
    }

    /// Writes a small object in one request.
    pub async fn put(&self, name: &str, content: Bytes) -> Result<ExportedObject, ExportError> {
        let sha256 = hex::encode(Sha256::digest(&content));
        let size = content.len() as u64;
        let written = self.store.put(&self.path(name)?, PutPayload::from(content)).await?;
        Ok(ExportedObject { path: name.to_string(), size, sha256, etag: written.e_tag, rows: None })
    }

    /// Writes object `name` as `produce` (blocking code: a page, a manifest) writes it, a block at a time,
    /// so that an object describing 100,000 files is never held whole; returns it and what `produce` gave
    /// back. The object appears only once whole, as every streamed object does.
    pub async fn put_written<T: Send + 'static>(
        &self,
        name: &str,
        produce: impl FnOnce(&mut dyn std::io::Write) -> std::io::Result<T> + Send + 'static,
    ) -> Result<(ExportedObject, T), ExportError> {
        let mut upload = self.upload(name).await?;
        let (blocks, mut produced) = tokio::sync::mpsc::channel::<Bytes>(1);
        let producer = tokio::task::spawn_blocking(move || {
            let mut out = BlockSender { blocks, block: Vec::with_capacity(WRITTEN_BLOCK) };
            let made = produce(&mut out)?;
            out.send()?;
            Ok::<T, std::io::Error>(made)
        });
        let mut copied = Ok(());
        while let Some(block) = produced.recv().await {
            if let Err(e) = upload.write(block).await {
                copied = Err(e);
                break;
            }
        }
        // The producer's next block finds no receiver, and it stops.
        drop(produced);
        let made = match producer.await {
            Ok(made) => made.map_err(|e| ExportError::writing(format!("writing {name}"), e)),
            Err(e) => Err(ExportError::writing(format!("writing {name}"), e)),
        };
        // The upload's own failure first: the producer's is then only that its blocks found no reader.
        match copied.and(made) {
            Ok(made) => Ok((upload.finish().await?, made)),
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }

    /// Object `name`, whole (a manifest; never a file of the person's data, which is streamed).
    pub async fn read_whole(&self, name: &str) -> Result<Bytes, ExportError> {
        Ok(self.store.get(&self.path(name)?).await?.bytes().await?)
    }

    /// Object `name` as it is read, a chunk at a time (of [`READ_CHUNK`] from a local folder:
    /// object_store reads local files 8 KiB at a time, each on the blocking pool, a third slower in all).
    pub async fn read(
        &self,
        name: &str,
    ) -> Result<futures::stream::BoxStream<'static, Result<Bytes, ExportError>>, ExportError> {
        use futures::StreamExt;
        let path = self.path(name)?;
        if let Some(folder) = &self.local_folder {
            let file = folder.join(name);
            let opened = tokio::fs::File::open(&file)
                .await
                .map_err(|e| ExportError::reading(format!("{}", file.display()), e))?;
            let chunks = tokio_util::io::ReaderStream::with_capacity(opened, READ_CHUNK);
            return Ok(chunks.map(move |chunk| chunk.map_err(|e| ExportError::reading(path.to_string(), e))).boxed());
        }
        let got = self.store.get(&path).await?;
        Ok(got.into_stream().map(|chunk| chunk.map_err(ExportError::from)).boxed())
    }

    /// The size and ETag of object `name` in the target, or `None` if it is not there.
    pub async fn version_of(&self, name: &str) -> Result<Option<(u64, Option<String>)>, ExportError> {
        match self.store.head(&self.path(name)?).await {
            Ok(meta) => Ok(Some((meta.size, meta.e_tag))),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    /// Starts a streamed object: feed it with [`Upload::write`], then [`Upload::finish`].
    pub async fn upload(&self, name: &str) -> Result<Upload, ExportError> {
        let path = self.path(name)?;
        let writer = match &self.local_folder {
            Some(folder) => Writer::Local(LocalUpload::start(folder.join(name), BLOCKS_IN_FLIGHT).await?),
            None => {
                let parts = self.store.put_multipart(&path).await?;
                Writer::Blocks(WriteMultipart::new_with_chunk_size(parts, self.block_size))
            }
        };
        Ok(Upload { name: name.to_string(), path, store: self.store.clone(), writer, hasher: Sha256::new(), size: 0 })
    }
}

/// The blocks [`Sink::put_written`] hands from its producer to the upload.
const WRITTEN_BLOCK: usize = 1024 * 1024;

/// Gathers what is written into blocks of [`WRITTEN_BLOCK`] and sends each to the upload, waiting while one
/// is queued.
struct BlockSender {
    blocks: tokio::sync::mpsc::Sender<Bytes>,
    block: Vec<u8>,
}

impl BlockSender {
    /// Sends the block gathered so far, if any.
    fn send(&mut self) -> std::io::Result<()> {
        if self.block.is_empty() {
            return Ok(());
        }
        let block = std::mem::replace(&mut self.block, Vec::with_capacity(WRITTEN_BLOCK));
        self.blocks
            .blocking_send(Bytes::from(block))
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::BrokenPipe, "the upload stopped"))
    }
}

impl std::io::Write for BlockSender {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.block.extend_from_slice(bytes);
        if self.block.len() >= WRITTEN_BLOCK {
            self.send()?;
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Where an upload's blocks go.
enum Writer {
    /// Put Block requests, [`BLOCKS_IN_FLIGHT`] at once.
    Blocks(WriteMultipart),
    /// A local file, flushed to disk as it is written.
    Local(LocalUpload),
}

/// An object being written in blocks.
pub struct Upload {
    name: String,
    path: ObjectPath,
    store: Arc<dyn ObjectStore>,
    writer: Writer,
    hasher: Sha256,
    size: u64,
}

impl Upload {
    /// Adds bytes, waiting while too many blocks are in flight. The bytes are not copied: whole
    /// chunks of [`BLOCK_SIZE`] go out as blocks as they are.
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), ExportError> {
        self.hasher.update(&bytes);
        self.size += bytes.len() as u64;
        match &mut self.writer {
            Writer::Blocks(writer) => {
                writer.wait_for_capacity(BLOCKS_IN_FLIGHT).await?;
                writer.put(bytes);
            }
            Writer::Local(writer) => writer.write(bytes).await?,
        }
        Ok(())
    }

    /// Commits the object.
    pub async fn finish(self) -> Result<ExportedObject, ExportError> {
        let etag = match self.writer {
            Writer::Blocks(writer) => writer.finish().await?.e_tag,
            Writer::Local(writer) => {
                writer.finish().await?;
                // The ETag as the store reports it, which a resumed export compares with.
                self.store.head(&self.path).await?.e_tag
            }
        };
        Ok(ExportedObject {
            path: self.name,
            size: self.size,
            sha256: hex::encode(self.hasher.finalize()),
            etag,
            rows: None,
        })
    }

    /// Commits the object if `copied` (the writes that fed it) succeeded; otherwise gives it up and returns
    /// why.
    pub async fn finish_unless(self, copied: Result<(), ExportError>) -> Result<ExportedObject, ExportError> {
        match copied {
            Ok(()) => self.finish().await,
            Err(e) => {
                self.abort().await;
                Err(e)
            }
        }
    }

    /// Gives up on the object (its blocks are discarded by the service, a local file removed).
    pub async fn abort(self) {
        match self.writer {
            Writer::Blocks(writer) => {
                let _ = writer.abort().await;
            }
            Writer::Local(writer) => writer.abort().await,
        }
    }
}
