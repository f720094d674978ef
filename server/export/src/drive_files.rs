//! The files of users' drives, as the export reads them: where a user's drive folder is
//! (`<drives>/<tenant>/<user>/`, like OneDrive), the files listed in it, and [`ChunkReader`], which reads a
//! file (or an object of an object store) ahead in chunks.

use super::ExportError;
use bytes::Bytes;
use std::{
    io::Read,
    path::{Path, PathBuf},
};
use tokio::sync::mpsc;

/// Chunks of a file read ahead on a blocking thread, so that reading the next chunk overlaps with
/// hashing and uploading this one. At most `ahead` chunks wait in memory.
pub struct ChunkReader {
    chunks: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl ChunkReader {
    /// Starts reading `path` in chunks of `chunk_size` bytes.
    pub fn open(path: PathBuf, chunk_size: usize, ahead: usize) -> ChunkReader {
        let (sender, chunks) = mpsc::channel(ahead.max(1));
        tokio::task::spawn_blocking(move || {
            let mut file = match std::fs::File::open(&path) {
                Ok(file) => file,
                Err(e) => {
                    let _ = sender.blocking_send(Err(e));
                    return;
                }
            };
            // What is left of the file as its size says, so that a small file's chunk is its size and
            // not `chunk_size` (a 1 KiB file read into a zeroed 1 MiB buffer kept all of it, and zeroed
            // another to find the end); one byte more finds the end in the same read.
            let mut left = file.metadata().map(|m| m.len()).unwrap_or(u64::MAX);
            loop {
                let size = usize::try_from(left.saturating_add(1)).map_or(chunk_size, |left| left.min(chunk_size));
                let mut chunk = vec![0u8; size];
                let mut filled = 0;
                // Fill the chunk: short reads would otherwise make short blocks.
                while filled < size {
                    match file.read(&mut chunk[filled..]) {
                        Ok(0) => break,
                        Ok(n) => filled += n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => {
                            let _ = sender.blocking_send(Err(e));
                            return;
                        }
                    }
                }
                if filled == 0 {
                    return;
                }
                chunk.truncate(filled);
                // Past the end the size said, the file grew: read on in whole chunks.
                left = left.checked_sub(filled as u64).unwrap_or(u64::MAX);
                // A closed channel means the export stopped reading: stop too.
                if sender.blocking_send(Ok(Bytes::from(chunk))).is_err() || filled < size {
                    return;
                }
            }
        });
        ChunkReader { chunks }
    }

    /// Chunks of the byte stream `open` yields, forwarded by a task as they come (an object store's
    /// stream chunks are as the network delivered them; the upload gathers them into blocks).
    pub fn from_stream<S>(
        open: impl std::future::Future<Output = Result<S, std::io::Error>> + Send + 'static,
        chunk_size: usize,
        ahead: usize,
    ) -> ChunkReader
    where
        S: futures::Stream<Item = Result<Bytes, std::io::Error>> + Send + Unpin + 'static,
    {
        use futures::StreamExt;
        let (sender, chunks) = mpsc::channel(ahead.max(1));
        tokio::spawn(async move {
            let mut stream = match open.await {
                Ok(stream) => stream,
                Err(e) => {
                    let _ = sender.send(Err(e)).await;
                    return;
                }
            };
            while let Some(chunk) = stream.next().await {
                let mut bytes = match chunk {
                    Ok(bytes) => bytes,
                    Err(e) => {
                        let _ = sender.send(Err(e)).await;
                        return;
                    }
                };
                // At most `chunk_size` a chunk, whatever the stream delivers.
                while !bytes.is_empty() {
                    let piece = bytes.split_to(bytes.len().min(chunk_size.max(1)));
                    if sender.send(Ok(piece)).await.is_err() {
                        return;
                    }
                }
            }
        });
        ChunkReader { chunks }
    }

    /// A reader whose first and only chunk is `error`.
    pub fn failed(error: std::io::Error) -> ChunkReader {
        let (sender, chunks) = mpsc::channel(1);
        let _ = sender.try_send(Err(error));
        ChunkReader { chunks }
    }

    /// The next chunk, or `None` at the end of the file.
    pub async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        self.chunks.recv().await
    }
}

/// A file of a user's drive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveFile {
    /// Path inside the drive, with `/` separators (kept in the export).
    pub relative: String,
    /// Where it is.
    pub location: DriveLocation,
    /// Its size when listed.
    pub size: u64,
}

/// Where a drive file is, as the drives that listed it ([`super::drives::Drives`]) read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DriveLocation {
    /// A file on disk: [`DriveFile::relative`] under this folder, shared by every file of one listing (a
    /// path of its own per file held 100 bytes more for each of 100,000 files).
    Local(std::sync::Arc<Path>),
    /// A file on disk whose path is not UTF-8: [`DriveFile::relative`] shows it with replacement
    /// characters, so it is found by its own path.
    LocalPath(PathBuf),
    /// An object in an object store.
    Object(object_store::path::Path),
}

/// The folder name of a user's drive: the id itself when it is a plain name, otherwise `x-<hex of the id>`
/// so that no id can name a path outside the drives folder. An id that itself begins with `x-` (in either
/// case) is never plain, so no id's folder is another id's escaped name (`x-2e2e` would be the drive of `..`).
pub fn drive_folder_name(user_id: &str) -> String {
    let plain = !user_id.is_empty()
        && !user_id.starts_with('.')
        && !user_id.get(..2).is_some_and(|start| start.eq_ignore_ascii_case("x-"))
        && user_id.chars().all(|c| c.is_ascii_alphanumeric() || "-_.@".contains(c));
    if plain { user_id.to_string() } else { format!("x-{}", hex::encode(user_id)) }
}

/// The drive folder of `user_id` of `tenant` under `drives_root`: `<drives>/<tenant>/<user>`.
pub fn drive_dir(drives_root: &Path, tenant: &str, user_id: &str) -> PathBuf {
    drives_root.join(drive_folder_name(tenant)).join(drive_folder_name(user_id))
}

/// Every regular file of the user's drive, sorted by path. Symbolic links are skipped, so a drive cannot
/// reach files outside itself. A user without a drive folder has an empty drive.
pub fn drive_files(drives_root: &Path, tenant: &str, user_id: &str) -> Result<Vec<DriveFile>, ExportError> {
    files_under(&drive_dir(drives_root, tenant, user_id))
}

/// Every regular file under `root`, sorted by path relative to it; symbolic links are skipped. A folder
/// that does not exist holds no files.
pub fn files_under(root: &Path) -> Result<Vec<DriveFile>, ExportError> {
    if !root.exists() {
        return Ok(Vec::new());
    }
    let folder: std::sync::Arc<Path> = std::sync::Arc::from(root);
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(false).sort_by_file_name() {
        let entry = entry.map_err(|e| ExportError::reading("listing the drive", e))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let relative = entry
            .path()
            .strip_prefix(root)
            .map_err(|e| ExportError::reading("listing the drive", e))?
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect::<Vec<_>>()
            .join("/");
        let size = entry.metadata().map_err(|e| ExportError::reading(relative.as_str(), e))?.len();
        let location = match entry.path().to_str() {
            Some(_) => DriveLocation::Local(folder.clone()),
            None => DriveLocation::LocalPath(entry.path().to_path_buf()),
        };
        files.push(DriveFile { relative, location, size });
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn files_are_read_whole_in_full_chunks_whatever_their_size() {
        let folder = tempfile::tempdir().unwrap();
        for len in [0usize, 1, 15, 16, 17, 48, 53] {
            let path = folder.path().join(format!("f{len}"));
            let content: Vec<u8> = (0..len).map(|i| i as u8).collect();
            std::fs::write(&path, &content).unwrap();
            let mut reader = ChunkReader::open(path, 16, 2);
            let mut chunks = Vec::new();
            while let Some(chunk) = reader.next().await {
                chunks.push(chunk.unwrap());
            }
            assert_eq!(chunks.concat(), content, "{len} bytes");
            assert!(chunks.iter().all(|c| !c.is_empty()), "{len} bytes: an empty chunk");
            let (last, whole) = chunks.split_last().map_or((0, &[][..]), |(l, w)| (l.len(), w));
            assert!(whole.iter().all(|c| c.len() == 16) && last <= 16, "{len} bytes: {chunks:?}");
        }
    }

    #[test]
    fn odd_user_ids_cannot_escape_the_drives_folder() {
        assert_eq!(drive_folder_name("alice@contoso.com"), "alice@contoso.com");
        assert_eq!(drive_folder_name(".."), "x-2e2e");
        assert_eq!(drive_folder_name("a/../../etc"), format!("x-{}", hex::encode("a/../../etc")));
    }

    #[test]
    fn no_two_user_ids_share_a_drive_folder() {
        let ids = ["..", "x-2e2e", "a b", "x-612062", "X-612062", "x-", "x", "alice", "x-alice", "X-alice"];
        let folders: std::collections::BTreeSet<_> = ids.iter().map(|id| drive_folder_name(id)).collect();
        assert_eq!(folders.len(), ids.len(), "{folders:?}");
        assert_eq!(drive_folder_name("x-2e2e"), format!("x-{}", hex::encode("x-2e2e")));
    }

    #[test]
    fn files_are_listed_with_relative_paths_and_links_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let drive = drive_dir(dir.path(), "t1", "u1");
        std::fs::create_dir_all(drive.join("Documents/Taxes")).unwrap();
        std::fs::write(drive.join("Documents/Taxes/2025.pdf"), b"pdf").unwrap();
        std::fs::write(drive.join("notes.txt"), b"hello").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink("/etc/hostname", drive.join("escape")).unwrap();
        let files = drive_files(dir.path(), "t1", "u1").unwrap();
        let names: Vec<&str> = files.iter().map(|f| f.relative.as_str()).collect();
        assert_eq!(names, ["Documents/Taxes/2025.pdf", "notes.txt"]);
        assert_eq!(files[1].size, 5);
        assert!(drive_files(dir.path(), "t1", "nobody").unwrap().is_empty());
        assert!(drive_files(dir.path(), "t2", "u1").unwrap().is_empty(), "another tenant's drive is another folder");
    }

    #[tokio::test]
    async fn a_file_is_read_in_whole_chunks_and_a_shorter_last_one() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("data.bin");
        let content: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &content).unwrap();
        let mut reader = ChunkReader::open(path, 4096, 2);
        let mut sizes = Vec::new();
        let mut read = Vec::new();
        while let Some(chunk) = reader.next().await {
            let chunk = chunk.unwrap();
            sizes.push(chunk.len());
            read.extend_from_slice(&chunk);
        }
        assert_eq!(sizes, [4096, 4096, 1808]);
        assert_eq!(read, content);
    }

    #[tokio::test]
    async fn a_missing_file_is_an_error_not_an_empty_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut reader = ChunkReader::open(dir.path().join("gone.bin"), 4096, 2);
        assert!(matches!(reader.next().await, Some(Err(_))));
        assert!(reader.next().await.is_none());
    }
}
