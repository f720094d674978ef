//! The zip of what a subject rights request gathered (`getFinalAttachment`), streamed as it is read from
//! the request store: one entry after another, a chunk at a time, so memory stays bounded whatever the
//! size and no copy of the whole zip is ever made. Entries are stored (not compressed: most of it is
//! compressed already, and the person's copy is made at the speed of the disk), with UTF-8 names; each is
//! streamed with a data descriptor and Zip64 fields, so that an entry or an archive past 4 GiB is whole.
//!
//! The order is `index.html` (what the person opens first), `manifest.json`, then every object as the
//! manifest lists it; the same request always gives the same bytes, so a download cut off can be made
//! again and compared.

use crate::{ExportError, request_store::RequestStore, sink::Sink};
use async_zip::{Compression, ZipEntryBuilder, base::write::ZipFileWriter};
use bytes::Bytes;
use dpo_contract::manifest::Manifest;
use futures::{AsyncWriteExt, Stream, StreamExt};
use tokio_util::compat::TokioAsyncWriteCompatExt;
use uuid::Uuid;

/// Bytes buffered between the zip writer and the answer being sent.
const PIPE: usize = 1024 * 1024;
/// The most bytes of one frame of the answer.
const FRAME: usize = 256 * 1024;

/// What a request gathered, ready to be zipped.
pub struct Attachment {
    sink: Sink,
    manifest: Bytes,
    names: Vec<String>,
    /// When the data was gathered: every entry's time (the same zip on every download).
    gathered: async_zip::ZipDateTime,
}

impl Attachment {
    /// The request's folder in the request store `store`, read through its manifest (so that a folder
    /// without one, or with a broken one, fails before any byte of an answer is sent).
    pub async fn open(store: &RequestStore, request: Uuid) -> Result<Attachment, ExportError> {
        let sink = store.folder(request)?;
        let manifest = sink.read_whole("manifest.json").await?;
        let parsed = Manifest::parse(&manifest).map_err(|e| ExportError::reading("the request's manifest.json", e))?;
        let gathered = chrono::DateTime::parse_from_rfc3339(&parsed.exported_date_time)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|e| ExportError::reading("the request's manifest.json", e))?;
        let gathered = async_zip::ZipDateTimeBuilder::new()
            .year(chrono::Datelike::year(&gathered))
            .month(chrono::Datelike::month(&gathered))
            .day(chrono::Datelike::day(&gathered))
            .hour(chrono::Timelike::hour(&gathered))
            .minute(chrono::Timelike::minute(&gathered))
            .second(chrono::Timelike::second(&gathered))
            .build();
        let mut names = vec!["index.html".to_string(), "manifest.json".to_string()];
        for object in parsed.objects.into_iter().filter(|o| o.path != "index.html") {
            // A path that would leave the request's folder is never read.
            object.relative_path().map_err(|e| ExportError::reading("the request's manifest.json", e))?;
            names.push(object.path);
        }
        Ok(Attachment { sink, manifest, names, gathered })
    }

    /// The zip, a chunk at a time; an error ends the stream with it (the answer is then cut off, never
    /// a zip that looks whole).
    pub fn stream(self) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send + 'static {
        let (writer, reader) = tokio::io::duplex(PIPE);
        let writing = tokio::spawn(self.write(writer));
        let failure = futures::stream::once(async move {
            match writing.await {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(Err(std::io::Error::other(e))),
                Err(e) => Some(Err(std::io::Error::other(e))),
            }
        })
        .filter_map(std::future::ready);
        tokio_util::io::ReaderStream::with_capacity(reader, FRAME).chain(failure)
    }

    async fn write(self, out: tokio::io::DuplexStream) -> Result<(), ExportError> {
        let zip_failed = |e: async_zip::error::ZipError| ExportError::writing("the zip", e);
        let mut zip = ZipFileWriter::new(out.compat_write());
        for name in &self.names {
            let entry = ZipEntryBuilder::new(name.clone().into(), Compression::Stored)
                .unix_permissions(0o644)
                .last_modification_date(self.gathered);
            let mut entry = zip.write_entry_stream(entry).await.map_err(zip_failed)?;
            if name == "manifest.json" {
                entry.write_all(&self.manifest).await.map_err(|e| ExportError::writing("the zip", e))?;
            } else {
                let mut chunks = self.sink.read(name).await?;
                while let Some(chunk) = chunks.next().await {
                    entry.write_all(&chunk?).await.map_err(|e| ExportError::writing("the zip", e))?;
                }
            }
            entry.close().await.map_err(zip_failed)?;
        }
        let mut out = zip.close().await.map_err(zip_failed)?;
        out.close().await.map_err(|e| ExportError::writing("the zip", e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use std::io::{Seek, SeekFrom, Write};

    /// A request whose one file is past 4 GiB (a sparse file, so the test writes almost nothing) zips
    /// into an archive a Zip64 reader takes whole: the file's size and CRC-32 as they are.
    #[tokio::test]
    async fn an_entry_past_4_gib_is_written_with_zip64_sizes_a_reader_checks() {
        const BIG: u64 = (4 << 30) + 12345;
        let dir = tempfile::tempdir().unwrap();
        let request = Uuid::new_v4();
        let folder = dir.path().join(request.to_string());
        std::fs::create_dir_all(&folder).unwrap();
        std::fs::File::create(folder.join("big.bin")).unwrap().set_len(BIG).unwrap();
        std::fs::write(folder.join("index.html"), "<p>hello</p>").unwrap();
        let manifest = serde_json::json!({
            "formatVersion": 4, "operationId": "op", "userId": "casey@shop.example",
            "exportedDateTime": "2026-12-06T10:00:00.000Z", "status": "complete",
            "objects": [
                {"path": "big.bin", "size": BIG, "sha256": "-", "source": "files"},
                {"path": "index.html", "size": 12, "sha256": "-"}
            ],
            "sources": []
        });
        std::fs::write(folder.join("manifest.json"), manifest.to_string()).unwrap();
        let store = RequestStore::Local(dir.path().to_path_buf());
        let mut zip = std::pin::pin!(Attachment::open(&store, request).await.unwrap().stream());
        // Written sparse too: runs of zeros are skipped over, not written.
        let path = dir.path().join("request.zip");
        let mut out = std::fs::File::create(&path).unwrap();
        let mut length = 0u64;
        let zeros = vec![0u8; FRAME];
        while let Some(chunk) = zip.next().await {
            let chunk = chunk.unwrap();
            // Compared with memcmp: a byte loop over 4 GiB is slow in a debug build.
            if chunk.len() <= zeros.len() && chunk[..] == zeros[..chunk.len()] {
                out.seek(SeekFrom::Current(chunk.len() as i64)).unwrap();
            } else {
                out.write_all(&chunk).unwrap();
            }
            length += chunk.len() as u64;
        }
        out.set_len(length).unwrap();
        drop(out);
        assert!(length > BIG);
        let mut archive = ::zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
        let names: Vec<String> = archive.file_names().map(str::to_string).collect();
        assert_eq!(names, ["index.html", "manifest.json", "big.bin"]);
        let mut big = archive.by_name("big.bin").unwrap();
        assert_eq!(big.size(), BIG, "the Zip64 size");
        // Reading it to its end checks its CRC-32 against the one written.
        let (mut buffer, mut read) = (vec![0u8; 1 << 20], 0u64);
        loop {
            match std::io::Read::read(&mut big, &mut buffer).unwrap() {
                0 => break,
                n => read += n as u64,
            }
        }
        assert_eq!(read, BIG);
    }
}
