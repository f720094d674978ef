//! The server's log on stderr (or in a file), written by a background thread: human-readable lines, or one JSON object
//! a line for a log pipeline (`--log-format json`).
//!
//! Unlike dropshot's `ConfigLogging`, the level is checked on the calling thread, before a record
//! is queued: dropshot logs every request at `info`, and queueing records that are then dropped
//! wakes the log thread once per request.

use slog::{Drain, Level, Logger};

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
    logger_to(Box::new(std::io::stderr()), true, level, format)
}

/// Like [`stderr_logger`], appending to the file at `path` (created if missing) instead.
pub fn file_logger(
    path: &std::path::Path,
    level: Level,
    format: LogFormat,
) -> std::io::Result<(Logger, slog_async::AsyncGuard)> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(logger_to(Box::new(file), false, level, format))
}

fn logger_to(
    out: Box<dyn std::io::Write + Send>,
    terminal: bool,
    level: Level,
    format: LogFormat,
) -> (Logger, slog_async::AsyncGuard) {
    let (queued, guard) = match format {
        LogFormat::Text if terminal => {
            let decorator = slog_term::TermDecorator::new().stderr().build();
            let lines = slog_term::FullFormat::new(decorator).build().fuse();
            slog_async::Async::new(lines).chan_size(1024).build_with_guard()
        }
        LogFormat::Text => {
            let lines = slog_term::FullFormat::new(slog_term::PlainSyncDecorator::new(out)).build().fuse();
            slog_async::Async::new(lines).chan_size(1024).build_with_guard()
        }
        LogFormat::Json => {
            let objects = slog_json::Json::new(out).add_default_keys().build().fuse();
            slog_async::Async::new(objects).chan_size(1024).build_with_guard()
        }
    };
    // A record logged after the guard wrote the rest out (by a task still stopping) is dropped, not a panic.
    (Logger::root(queued.ignore_res().filter_level(level).fuse(), slog::o!("name" => "dpo")), guard)
}

#[cfg(test)]
mod tests {
    use super::*;

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
