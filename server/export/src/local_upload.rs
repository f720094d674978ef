//! A file written into a local export folder, block by block, by a writer thread of its own: staged as
//! `<name>#<n>` (the name [`super::sink::Sink::remove_staging_leftovers`] clears after a crash), flushed to
//! disk as it goes, and renamed into place once whole and durable.
//!
//! object_store's local multipart upload fsyncs a file only at the end, so the disk writes all of it
//! while the export waits. Here the writer thread flushes every [`FLUSH_EVERY`] bytes while the export
//! goes on reading and hashing, which leaves only the last stretch to wait for.

use super::ExportError;
use bytes::Bytes;
use std::{
    fs::File,
    io::Write,
    path::{Path, PathBuf},
};
use tokio::sync::mpsc;

/// Bytes written between two flushes to disk.
const FLUSH_EVERY: u64 = 16 * 1024 * 1024;

/// A staged file being written.
pub struct LocalUpload {
    blocks: mpsc::Sender<Bytes>,
    /// The writer thread, until its outcome has been taken (a `JoinHandle` may be awaited only once).
    writer: Option<tokio::task::JoinHandle<Result<(), ExportError>>>,
    staged: PathBuf,
    dest: PathBuf,
}

fn failed(what: &str, path: &Path, e: std::io::Error) -> ExportError {
    ExportError::writing(format!("{what} {}", path.display()), e)
}

impl LocalUpload {
    /// Stages `dest` (creating its folders durably), with room for `in_flight` blocks queued for the
    /// writer thread.
    pub async fn start(dest: PathBuf, in_flight: usize) -> Result<LocalUpload, ExportError> {
        let for_staging = dest.clone();
        let (file, staged) = tokio::task::spawn_blocking(move || stage(&for_staging))
            .await
            .map_err(|e| ExportError::writing("staging a file", e))??;
        let (blocks, mut queued) = mpsc::channel::<Bytes>(in_flight.max(1));
        let at = staged.clone();
        let writer = tokio::task::spawn_blocking(move || {
            let mut file = file;
            let mut unflushed = 0u64;
            while let Some(block) = queued.blocking_recv() {
                file.write_all(&block).map_err(|e| failed("writing", &at, e))?;
                unflushed += block.len() as u64;
                if unflushed >= FLUSH_EVERY {
                    file.sync_data().map_err(|e| failed("flushing", &at, e))?;
                    unflushed = 0;
                }
            }
            file.sync_all().map_err(|e| failed("flushing", &at, e))
        });
        Ok(LocalUpload { blocks, writer: Some(writer), staged, dest })
    }

    /// Queues `block`, waiting while the writer thread has [`LocalUpload::start`]'s `in_flight` queued.
    pub async fn write(&mut self, block: Bytes) -> Result<(), ExportError> {
        if self.blocks.send(block).await.is_err() {
            // The writer stopped on an error: `finish` reports it.
            return Err(self.writer_error().await);
        }
        Ok(())
    }

    async fn writer_error(&mut self) -> ExportError {
        let Some(writer) = self.writer.take() else {
            return ExportError::write_failed(format!("the writer of {} had stopped", self.staged.display()));
        };
        match writer.await {
            Ok(Err(e)) => e,
            Ok(Ok(())) => ExportError::write_failed(format!("the writer of {} stopped", self.staged.display())),
            Err(e) => ExportError::writing(format!("the writer of {} failed", self.staged.display()), e),
        }
    }

    /// Waits until every block is on disk, then puts the file in place (and that, too, on disk).
    pub async fn finish(self) -> Result<(), ExportError> {
        let LocalUpload { blocks, writer, staged, dest } = self;
        drop(blocks);
        let written = match writer {
            Some(writer) => {
                writer.await.map_err(|e| ExportError::writing(format!("writing {}", staged.display()), e))?
            }
            None => Err(ExportError::write_failed(format!("the writer of {} had stopped", staged.display()))),
        };
        tokio::task::spawn_blocking(move || {
            if let Err(e) = written {
                let _ = std::fs::remove_file(&staged);
                return Err(e);
            }
            std::fs::rename(&staged, &dest).map_err(|e| failed("renaming", &staged, e))?;
            sync_parent(&dest)
        })
        .await
        .map_err(|e| ExportError::writing("placing a file", e))?
    }

    /// Gives up: the staged file is removed (also after a failed [`LocalUpload::write`]).
    pub async fn abort(self) {
        let LocalUpload { blocks, writer, staged, .. } = self;
        drop(blocks);
        if let Some(writer) = writer {
            let _ = writer.await;
        }
        let _ = tokio::task::spawn_blocking(move || std::fs::remove_file(staged)).await;
    }
}

/// Creates `dest`'s missing folders (each made durable in its parent) and a new staging file beside it.
fn stage(dest: &Path) -> Result<(File, PathBuf), ExportError> {
    let parent = dest.parent().ok_or_else(|| ExportError::write_failed(format!("{} has no folder", dest.display())))?;
    create_folders(parent)?;
    for n in 1u32.. {
        let mut staged = dest.as_os_str().to_owned();
        staged.push(format!("#{n}"));
        let staged = PathBuf::from(staged);
        match File::options().write(true).create_new(true).open(&staged) {
            Ok(file) => return Ok((file, staged)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(failed("creating", &staged, e)),
        }
    }
    Err(ExportError::write_failed(format!("no free staging name beside {}", dest.display())))
}

/// Creates `folder` and its missing ancestors, fsyncing the parent of each one created.
fn create_folders(folder: &Path) -> Result<(), ExportError> {
    if folder.is_dir() {
        return Ok(());
    }
    if let Some(parent) = folder.parent() {
        create_folders(parent)?;
    }
    match std::fs::create_dir(folder) {
        Ok(()) => sync_parent(folder),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(failed("creating", folder, e)),
    }
}

/// Makes the entry of `path` in its folder durable.
fn sync_parent(path: &Path) -> Result<(), ExportError> {
    let Some(parent) = path.parent() else { return Ok(()) };
    File::open(parent).and_then(|dir| dir.sync_all()).map_err(|e| failed("flushing", parent, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_file_appears_whole_only_when_finished_and_an_abort_leaves_nothing() {
        let dir = tempfile::tempdir().expect("a folder");
        let dest = dir.path().join("a/b/file.bin");
        let mut upload = LocalUpload::start(dest.clone(), 2).await.expect("staged");
        let block = Bytes::from(vec![7u8; 5 * 1024 * 1024]);
        for _ in 0..5 {
            upload.write(block.clone()).await.expect("written");
        }
        assert!(!dest.exists(), "not in place before it is whole");
        upload.finish().await.expect("finished");
        assert_eq!(std::fs::read(&dest).expect("the file").len(), 25 * 1024 * 1024);
        let names: Vec<_> =
            std::fs::read_dir(dest.parent().unwrap()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(names, vec![std::ffi::OsString::from("file.bin")], "no staging file is left");

        let other = dir.path().join("a/other.bin");
        let mut upload = LocalUpload::start(other.clone(), 2).await.expect("staged");
        upload.write(block).await.expect("written");
        upload.abort().await;
        assert!(!other.exists());
        assert_eq!(std::fs::read_dir(dir.path().join("a")).unwrap().count(), 1, "only b/ is left");
    }
}
