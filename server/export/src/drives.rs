//! Where users' drives live: a folder tree per user, `<drives>/<tenant>/<user>/…`, either in a local folder
//! (the default, `<state dir>/drives`, or `--drives-url file:///…`) or in an object store every replica
//! can read (`--drives-url s3://bucket/prefix` or `az://container/prefix`, through `object_store`).
//! [`Drives`] is the one small interface the export reads them through.

use super::{
    ExportError,
    drive_files::{self, ChunkReader, DriveFile, DriveLocation, drive_folder_name},
};
use futures::StreamExt;
use object_store::{ObjectStore, ObjectStoreExt, path::Path as ObjectPath};
use std::{path::PathBuf, sync::Arc};
use url::Url;

/// Users' drives, as an export reads them.
#[async_trait::async_trait]
pub trait Drives: Send + Sync + 'static {
    /// Every file of the user's drive, sorted by path; an empty list for a user without a drive.
    async fn files(&self, tenant: &str, user_id: &str) -> Result<Vec<DriveFile>, ExportError> {
        self.files_under(&[drive_folder_name(tenant), drive_folder_name(user_id)]).await
    }
    /// Every file under the folder named by `parts`, each one folder name taken literally, sorted by path
    /// relative to it; an empty list when there is no such folder, and when a part cannot be one folder's
    /// name ([`folder_parts`]: it holds a `/` or is `.` or `..`), so it never climbs out.
    async fn files_under(&self, parts: &[String]) -> Result<Vec<DriveFile>, ExportError>;
    /// Whether the folder named by `parts` can be read, without listing all of it (`sources check`).
    async fn probe(&self, parts: &[String]) -> Result<(), ExportError>;
    /// Starts reading `file` in chunks of up to `chunk_size` bytes, at most `ahead` of them waiting.
    fn read(&self, file: &DriveFile, chunk_size: usize, ahead: usize) -> ChunkReader;
    /// Deletes `file`, as listed by these drives (an erasure); one already gone is no error.
    async fn delete(&self, file: &DriveFile) -> Result<(), ExportError>;
}

/// Why a drives URL was not accepted.
#[derive(Debug, thiserror::Error)]
pub enum DrivesUrlError {
    /// Not a URL.
    #[error("--drives-url {url:?} is not a URL: {source}")]
    NotAUrl {
        /// What was given.
        url: String,
        /// Why it did not parse.
        #[source]
        source: url::ParseError,
    },
    /// A `file:` URL that names no local folder.
    #[error("--drives-url {0:?} does not name a local folder")]
    NotAFolder(String),
    /// A scheme object_store does not serve, or settings it refused.
    #[error("--drives-url {url:?}: {source}")]
    Store {
        /// What was given.
        url: String,
        /// What object_store said.
        #[source]
        source: object_store::Error,
    },
}

/// The drives at `url`: `file:///folder`, `s3://bucket/prefix` or `az://container/prefix`. Credentials and
/// endpoints of object stores come from the environment, as object_store reads them (`AWS_*`, `AZURE_*`).
pub fn open(url: &str) -> Result<Arc<dyn Drives>, DrivesUrlError> {
    let parsed = Url::parse(url).map_err(|source| DrivesUrlError::NotAUrl { url: url.into(), source })?;
    if parsed.scheme() == "file" {
        // Not object_store's local store: it follows symbolic links, which must not reach out of a drive.
        let root = parsed.to_file_path().map_err(|()| DrivesUrlError::NotAFolder(url.into()))?;
        return Ok(Arc::new(LocalDrives { root }));
    }
    let options = std::env::vars().map(|(k, v)| (k.to_ascii_lowercase(), v));
    let (store, prefix) = object_store::parse_url_opts(&parsed, options)
        .map_err(|source| DrivesUrlError::Store { url: url.into(), source })?;
    let mut shown = parsed.clone();
    shown.set_query(None);
    let _ = shown.set_password(None);
    Ok(Arc::new(ObjectDrives { store: Arc::from(store), prefix, shown: shown.to_string() }))
}

/// `parts` as path segments taken literally (a person's folder is named as the person's identity is
/// spelled: `tilde~user@…`, `a[1]@…`), or `None` when one cannot be a single folder's name: it holds a
/// `/` or a control character, or is `.` or `..`. No folder of that name can exist, so there is nothing
/// there for the person. (Percent-encoding such characters, as object_store does when it joins a part,
/// named another folder than the one on disk or in the bucket.)
pub fn folder_parts(parts: &[String]) -> Option<Vec<object_store::path::PathPart<'_>>> {
    parts.iter().map(|part| object_store::path::PathPart::parse(part).ok()).collect()
}

/// The error of reading a file listed by another kind of drives.
fn elsewhere(file: &DriveFile) -> std::io::Error {
    std::io::Error::other(format!("{} was not listed by these drives", file.relative))
}

/// Drives in a local folder; symbolic links are skipped, so a drive cannot reach files outside itself.
pub struct LocalDrives {
    /// The folder holding `<tenant>/<user>/`.
    pub root: PathBuf,
}

#[async_trait::async_trait]
impl Drives for LocalDrives {
    async fn files_under(&self, parts: &[String]) -> Result<Vec<DriveFile>, ExportError> {
        // Each part one folder name: a `/` or a `..` in it cannot leave the folder.
        let Some(parts) = folder_parts(parts) else { return Ok(Vec::new()) };
        let folder = parts.iter().fold(self.root.clone(), |folder, part| folder.join(part.as_ref()));
        tokio::task::spawn_blocking(move || drive_files::files_under(&folder))
            .await
            .map_err(|e| ExportError::reading("listing files failed", e))?
    }

    async fn probe(&self, parts: &[String]) -> Result<(), ExportError> {
        let folder = parts.iter().fold(self.root.clone(), |folder, part| folder.join(part));
        match tokio::fs::metadata(&folder).await {
            Ok(metadata) if metadata.is_dir() => Ok(()),
            Ok(_) => Err(ExportError::unreadable(format!("{} is not a folder", folder.display()))),
            Err(e) => Err(ExportError::reading(format!("{}", folder.display()), e)),
        }
    }

    fn read(&self, file: &DriveFile, chunk_size: usize, ahead: usize) -> ChunkReader {
        match &file.location {
            DriveLocation::Local(folder) => ChunkReader::open(folder.join(&file.relative), chunk_size, ahead),
            DriveLocation::LocalPath(path) => ChunkReader::open(path.clone(), chunk_size, ahead),
            DriveLocation::Object(_) => ChunkReader::failed(elsewhere(file)),
        }
    }

    async fn delete(&self, file: &DriveFile) -> Result<(), ExportError> {
        let path = match &file.location {
            DriveLocation::Local(folder) => folder.join(&file.relative),
            DriveLocation::LocalPath(path) => path.clone(),
            DriveLocation::Object(_) => return Err(ExportError::reading("deleting", elsewhere(file))),
        };
        match tokio::fs::remove_file(&path).await {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                Err(ExportError::reading(format!("deleting {}", path.display()), e))
            }
            _ => Ok(()),
        }
    }
}

/// Drives in an object store: the objects under `<prefix>/<tenant>/<user>/`.
pub struct ObjectDrives {
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
    /// The drives URL without secrets, for messages.
    shown: String,
}

#[async_trait::async_trait]
impl Drives for ObjectDrives {
    async fn files_under(&self, parts: &[String]) -> Result<Vec<DriveFile>, ExportError> {
        // Each part one path segment, literally: a `/` or a `..` in it names nothing.
        let Some(parts) = folder_parts(parts) else { return Ok(Vec::new()) };
        let drive = parts.into_iter().fold(self.prefix.clone(), |prefix, part| prefix.join(part));
        let mut listed = self.store.list(Some(&drive));
        let mut files = Vec::new();
        while let Some(object) = listed.next().await {
            let object = object.map_err(|e| ExportError::reading(format!("listing {}", self.shown), e))?;
            // Names as people gave them: object_store keeps some characters percent-encoded.
            let relative = object
                .location
                .prefix_match(&drive)
                .map(|parts| {
                    parts
                        .map(|p| percent_encoding::percent_decode_str(p.as_ref()).decode_utf8_lossy().into_owned())
                        .collect::<Vec<_>>()
                        .join("/")
                })
                .unwrap_or_default();
            if relative.is_empty() {
                continue;
            }
            files.push(DriveFile { relative, location: DriveLocation::Object(object.location), size: object.size });
        }
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        Ok(files)
    }

    async fn probe(&self, parts: &[String]) -> Result<(), ExportError> {
        let Some(parts) = folder_parts(parts) else { return Ok(()) };
        let prefix = parts.into_iter().fold(self.prefix.clone(), |prefix, part| prefix.join(part));
        match self.store.list(Some(&prefix)).next().await {
            Some(Err(e)) => Err(ExportError::reading(format!("listing {}", self.shown), e)),
            _ => Ok(()),
        }
    }

    fn read(&self, file: &DriveFile, chunk_size: usize, ahead: usize) -> ChunkReader {
        let DriveLocation::Object(location) = &file.location else { return ChunkReader::failed(elsewhere(file)) };
        let (store, location) = (self.store.clone(), location.clone());
        ChunkReader::from_stream(
            async move {
                let got = store.get(&location).await.map_err(std::io::Error::other)?;
                Ok(got.into_stream().map(|chunk| chunk.map_err(std::io::Error::other)))
            },
            chunk_size,
            ahead,
        )
    }

    async fn delete(&self, file: &DriveFile) -> Result<(), ExportError> {
        let DriveLocation::Object(location) = &file.location else {
            return Err(ExportError::reading("deleting", elsewhere(file)));
        };
        match self.store.delete(location).await {
            Err(e) if !matches!(e, object_store::Error::NotFound { .. }) => {
                Err(ExportError::reading(format!("deleting {} from {}", file.relative, self.shown), e))
            }
            _ => Ok(()),
        }
    }
}
