//! The server's log on stderr (or in a file), written by a background thread: human-readable lines, or one JSON object
//! a line for a log pipeline (`--log-format json`).
//!
//! Unlike dropshot's `ConfigLogging`, the level is checked on the calling thread, before a record
//! is queued: dropshot logs every request at `info`, and queueing records that are then dropped
//! wakes the log thread once per request.

use slog::{Drain, Level, Logger};
use std::io::Write;

/// Why a log level name was not accepted.
#[derive(Debug, thiserror::Error)]
#[error("log level '{0}': use trace, debug, info, warn, error or critical")]
pub struct UnknownLevel(pub String);

/// The level a name such as `info` stands for.
pub fn level(name: &str) -> Result<Level, UnknownLevel> {
    Ok(match name {
        "trace" => Level::Trace,
        "debug" => Level::Debug,
        "info" => Level::Info,
        "warn" => Level::Warning,
        "error" => Level::Error,
        "critical" => Level::Critical,
        other => return Err(UnknownLevel(other.to_string())),
    })
}

/// How log records are written.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Lines for people: time, level, message, then `key: value` pairs.
    #[default]
    Text,
    /// One JSON object a line: `ts`, `level`, `msg`, and every key of the record and its loggers.
    Json,
}

/// A logger writing records at `level` or more severe to stderr in `format`, and the guard that writes
/// out what is still queued when it is dropped (at shutdown).
pub fn stderr_logger(level: Level, format: LogFormat) -> (Logger, slog_async::AsyncGuard) {
    logger_to(Box::new(std::io::stderr()), level, format)
}

/// Like [`stderr_logger`], appending to the file at `path` (created if missing) instead.
pub fn file_logger(
    path: &std::path::Path,
    level: Level,
    format: LogFormat,
) -> std::io::Result<(Logger, slog_async::AsyncGuard)> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(logger_to(Box::new(file), level, format))
}

/// How often lines waiting in the log's buffer are written out: writes are batched (one system call for
/// many lines under load), and a line waits at most this long.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// The log's output, buffered, shared with the thread that writes it out every [`FLUSH_EVERY`].
type Buffered = std::sync::Arc<std::sync::Mutex<std::io::BufWriter<Box<dyn std::io::Write + Send>>>>;

/// Writes whole lines to `out` with their secrets taken out ([`dpo_contract::redact::redact_secrets`]):
/// records carry URLs (dropshot's `uri`, a source's error) whose query may hold a token or a key, and the
/// log is shipped where those must never go. Runs on the log's own thread, off the requests' path; the
/// formatters' flush after each record is not passed on (see [`FLUSH_EVERY`]).
struct Redacting {
    out: Buffered,
    line: Vec<u8>,
}

impl Redacting {
    /// Buffers `out` and starts the thread that writes it out, which ends with the last `Redacting`.
    fn new(out: Box<dyn std::io::Write + Send>) -> Redacting {
        let out: Buffered =
            std::sync::Arc::new(std::sync::Mutex::new(std::io::BufWriter::with_capacity(64 * 1024, out)));
        let flushed = std::sync::Arc::downgrade(&out);
        let _ = std::thread::Builder::new().name("dpo-log-flush".into()).spawn(move || {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                let Some(out) = flushed.upgrade() else { return };
                if let Ok(mut out) = out.lock() {
                    let _ = out.flush();
                }
            }
        });
        Redacting { out, line: Vec::new() }
    }

    fn put(&self, line: &[u8]) -> std::io::Result<()> {
        let mut out = self.out.lock().map_err(|_| std::io::Error::other("the log's buffer is poisoned"))?;
        if dpo_contract::redact::may_hold_secrets(line) {
            out.write_all(dpo_contract::redact::redact_secrets(&String::from_utf8_lossy(line)).as_bytes())
        } else {
            out.write_all(line)
        }
    }
}

impl std::io::Write for Redacting {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.line.extend_from_slice(bytes);
        let mut start = 0;
        while let Some(end) = self.line[start..].iter().position(|&b| b == b'\n') {
            self.put(&self.line[start..=start + end])?;
            start += end + 1;
        }
        self.line.drain(..start);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for Redacting {
    fn drop(&mut self) {
        let rest = std::mem::take(&mut self.line);
        if !rest.is_empty() {
            let _ = self.put(&rest);
        }
        if let Ok(mut out) = self.out.lock() {
            let _ = out.flush();
        }
    }
}

fn logger_to(out: Box<dyn std::io::Write + Send>, level: Level, format: LogFormat) -> (Logger, slog_async::AsyncGuard) {
    let out = Box::new(Redacting::new(out));
    let (queued, guard) = match format {
        LogFormat::Text => {
            // Plain, also on a terminal: slog_term's coloured decorator writes to stderr itself, past
            // the redaction.
            let lines = slog_term::FullFormat::new(slog_term::PlainSyncDecorator::new(out)).build().fuse();
            slog_async::Async::new(lines).chan_size(1024).build_with_guard()
        }
        LogFormat::Json => {
            let objects = slog_json::Json::new(out).add_default_keys().build().fuse();
            slog_async::Async::new(objects).chan_size(1024).build_with_guard()
        }
    };
    // At info, dropshot's own lines for each request ("request completed") and connection ("accepted
    // connection") only repeat what dpo's "request answered" says; queued, they halved the requests a
    // second of a polled GET. They are dropped on the calling thread, before anything is queued, unless
    // the log asks for debug or more.
    let verbose = !level.is_at_least(Level::Info);
    let kept = queued.ignore_res().filter(move |record: &slog::Record| {
        record.level().is_at_least(level)
            && (verbose || record.level() != Level::Info || !record.module().starts_with("dropshot"))
    });
    // A record logged after the guard wrote the rest out (by a task still stopping) is dropped, not a panic.
    (Logger::root(kept.fuse(), slog::o!("name" => "dpo")), guard)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Shared(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().map_err(|_| std::io::Error::other("poisoned"))?.extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn no_token_or_key_in_a_url_reaches_the_log() {
        for format in [LogFormat::Text, LogFormat::Json] {
            let written = Shared::default();
            let (log, guard) = logger_to(Box::new(written.clone()), Level::Info, format);
            slog::info!(log, "request completed"; "uri" => "/v1.0/dataPolicyOperations?access_token=eyJ.secret.jwt",
                "error" => "https://api.example/people?api_key=k3y&page=2: 500");
            drop(log);
            drop(guard);
            let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
            assert!(text.contains("access_token=REDACTED") && text.contains("api_key=REDACTED&page=2"), "{text}");
            assert!(!text.contains("secret") && !text.contains("k3y"), "{format:?}: {text}");
        }
    }

    #[test]
    fn every_level_is_compiled_in_in_every_profile() {
        // slog drops records above a level fixed at compile time: by default `debug` in debug builds and
        // `info` in release builds, so `--log-level debug` printed nothing in the binary users run. The
        // workspace asks for `max_level_trace` and no `release_max_level_*`, which caps both profiles at
        // trace; a `release_max_level_*` feature anywhere in the graph would lower release again, so the
        // features are checked as well as this build's level.
        assert_eq!(slog::__slog_static_max_level(), slog::FilterLevel::Trace);
        let manifest = include_str!("../../Cargo.toml");
        let slog = manifest.lines().find(|l| l.starts_with("slog = ")).expect("the workspace's slog");
        assert!(slog.contains("max_level_trace") && !slog.contains("release_max_level"), "{slog}");
    }

    #[test]
    fn names_map_to_levels() {
        assert_eq!(level("warn").ok(), Some(Level::Warning));
        assert_eq!(level("trace").ok(), Some(Level::Trace));
        assert_eq!(
            level("loud").map_err(|e| e.to_string()).err().as_deref(),
            Some("log level 'loud': use trace, debug, info, warn, error or critical")
        );
    }
}
