//! The server's log: human-readable lines on stderr, written by a background thread.
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

/// A logger writing records at `level` or more severe to stderr.
pub fn stderr_logger(level: Level) -> Logger {
    let decorator = slog_term::TermDecorator::new().stderr().build();
    let format = slog_term::FullFormat::new(decorator).build().fuse();
    let queued = slog_async::Async::new(format).chan_size(1024).build().fuse();
    Logger::root(queued.filter_level(level).fuse(), slog::o!("name" => "dpo"))
}

#[cfg(test)]
mod tests {
    use super::*;

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
