//! The server's log on stderr (or in a file): human-readable lines, or one JSON object a line for a log
//! pipeline (`--log-format json`). Lines are formatted where they are logged and written out in batches by
//! a thread of their own (see [`Lines`] for why).

use slog::{Level, Logger};

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
/// out what is still buffered when it is dropped (at shutdown).
pub fn stderr_logger(level: Level, format: LogFormat) -> (Logger, LogGuard) {
    logger_to(Box::new(std::io::stderr()), level, format)
}

/// Like [`stderr_logger`], appending to the file at `path` (created if missing) instead.
pub fn file_logger(path: &std::path::Path, level: Level, format: LogFormat) -> std::io::Result<(Logger, LogGuard)> {
    let file = std::fs::OpenOptions::new().create(true).append(true).open(path)?;
    Ok(logger_to(Box::new(file), level, format))
}

/// A peer's address as a log value, an IPv4 one written without `Display`'s formatting machinery: every
/// request's line carries one.
pub struct PeerAddress(pub std::net::SocketAddr);

impl slog::Value for PeerAddress {
    fn serialize(&self, _: &slog::Record<'_>, key: slog::Key, serializer: &mut dyn slog::Serializer) -> slog::Result {
        let std::net::SocketAddr::V4(v4) = self.0 else {
            return serializer.emit_arguments(key, &format_args!("{}", self.0));
        };
        // At most `255.255.255.255:65535`.
        let mut text = [0u8; 21];
        let mut len = 0;
        let mut put = |bytes: &[u8]| {
            text[len..len + bytes.len()].copy_from_slice(bytes);
            len += bytes.len();
        };
        let mut digits = itoa::Buffer::new();
        let [a, b, c, d] = v4.ip().octets();
        put(digits.format(a).as_bytes());
        for octet in [b, c, d] {
            put(b".");
            put(digits.format(octet).as_bytes());
        }
        put(b":");
        put(digits.format(v4.port()).as_bytes());
        serializer.emit_str(key, std::str::from_utf8(&text[..len]).unwrap_or_default())
    }
}

/// A request's target as a log value: its path and query as they came (a `&str` already), the whole URI
/// only in the rare absolute form.
pub struct RequestTarget<'a>(pub &'a http::Uri);

impl slog::Value for RequestTarget<'_> {
    fn serialize(&self, _: &slog::Record<'_>, key: slog::Key, serializer: &mut dyn slog::Serializer) -> slog::Result {
        match (self.0.scheme(), self.0.path_and_query()) {
            (None, Some(target)) => serializer.emit_str(key, target.as_str()),
            _ => serializer.emit_arguments(key, &format_args!("{}", self.0)),
        }
    }
}

/// How often lines waiting in the log's buffer are written out: writes are batched (one system call for
/// many lines under load), and a line waits at most this long.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(100);

/// Buffered lines past which the writer is woken before [`FLUSH_EVERY`] is up, so that a burst does not
/// hold megabytes.
const FLUSH_AT: usize = 256 * 1024;

/// Lines formatted by the threads that log, waiting for the writer thread.
struct Pending {
    lines: std::sync::Mutex<Vec<u8>>,
    wake: std::sync::Condvar,
    stopping: std::sync::atomic::AtomicBool,
}

/// Writes out what is still buffered and stops the log's writer thread when dropped (at shutdown); a record
/// logged after that (by a task still stopping) is dropped.
pub struct LogGuard {
    pending: std::sync::Arc<Pending>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        self.pending.stopping.store(true, std::sync::atomic::Ordering::Release);
        self.pending.wake.notify_one();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
    }
}

/// The thread that writes buffered lines to `out`: every [`FLUSH_EVERY`], or sooner past [`FLUSH_AT`]. The
/// buffer is swapped out under its lock and written without it, so a slow disk never holds up a request.
fn write_out(pending: &Pending, mut out: Box<dyn std::io::Write + Send>) {
    let mut spare = Vec::new();
    loop {
        let stopping = {
            let Ok(mut lines) = pending.lines.lock() else { return };
            let stopping = pending.stopping.load(std::sync::atomic::Ordering::Acquire);
            if lines.len() < FLUSH_AT && !stopping {
                lines = match pending.wake.wait_timeout(lines, FLUSH_EVERY) {
                    Ok((lines, _)) => lines,
                    Err(_) => return,
                };
            }
            std::mem::swap(&mut *lines, &mut spare);
            pending.stopping.load(std::sync::atomic::Ordering::Acquire)
        };
        if !spare.is_empty() {
            let _ = out.write_all(&spare);
            let _ = out.flush();
            // Keep a buffer of a usual size for the next swap, not the largest burst's.
            spare.clear();
            spare.shrink_to(FLUSH_AT);
        }
        if stopping {
            if let Ok(mut lines) = pending.lines.lock() {
                let _ = out.write_all(&lines);
                lines.clear();
            }
            let _ = out.flush();
            return;
        }
    }
}

/// The drain every record goes through: checked against the level on the thread that logs it, formatted
/// there (a hand-written line, one allocation-free pass over its values), its secrets taken out
/// ([`dpo_contract::redact::redact_secrets`]: records carry URLs, dropshot's `uri` or a source's error,
/// whose query may hold a token or a key), and appended to the buffer the writer thread empties. There is
/// no channel of records and no log thread formatting them: at one line per request, that thread's
/// formatting and wake-ups cost a tenth of the server's CPU under a polled GET.
struct Lines {
    pending: std::sync::Arc<Pending>,
    format: LogFormat,
    level: Level,
    /// At debug and trace, dropshot's own info lines are kept too.
    verbose: bool,
}

thread_local! {
    /// The line being formatted, and the second its timestamp prefix was formatted for.
    static LINE: std::cell::RefCell<(Vec<u8>, i64, String)> = const { std::cell::RefCell::new((Vec::new(), i64::MIN, String::new())) };
}

impl slog::Drain for Lines {
    type Ok = ();
    type Err = slog::Never;

    fn log(&self, record: &slog::Record<'_>, values: &slog::OwnedKVList) -> Result<(), slog::Never> {
        // At info, dropshot's own lines for each request ("request completed") and connection ("accepted
        // connection") only repeat what dpo's "request answered" says; they are dropped unless the log asks
        // for debug or more.
        if !record.level().is_at_least(self.level)
            || (!self.verbose && record.level() == Level::Info && record.module().starts_with("dropshot"))
            || self.pending.stopping.load(std::sync::atomic::Ordering::Relaxed)
        {
            return Ok(());
        }
        LINE.with(|cell| {
            let Ok(mut cell) = cell.try_borrow_mut() else { return };
            let (line, second, prefix) = &mut *cell;
            line.clear();
            format_line(line, (second, prefix), self.format, record, values);
            let redacted;
            let text: &[u8] = if dpo_contract::redact::may_hold_secrets(line) {
                redacted = dpo_contract::redact::redact_secrets(&String::from_utf8_lossy(line));
                redacted.as_bytes()
            } else {
                line
            };
            if let Ok(mut lines) = self.pending.lines.lock() {
                let was = lines.len();
                lines.extend_from_slice(text);
                if was < FLUSH_AT && lines.len() >= FLUSH_AT {
                    self.pending.wake.notify_one();
                }
            }
            // A line with a very long value does not keep its buffer on this thread.
            if line.capacity() > 64 * 1024 {
                *line = Vec::new();
            }
        });
        Ok(())
    }
}

/// Formats `record` and the values of its loggers as one line: text
/// (`2026-12-06T16:11:02.071Z INFO message, key: value, …`) or a JSON object (`ts`, `level`, `msg`, then
/// every key). `clock` caches the timestamp's prefix down to the second, formatted once a second.
fn format_line(
    line: &mut Vec<u8>,
    clock: (&mut i64, &mut String),
    format: LogFormat,
    record: &slog::Record<'_>,
    values: &slog::OwnedKVList,
) {
    use slog::KV;
    use std::io::Write;
    let now = chrono::Utc::now();
    let (second, prefix) = clock;
    if *second != now.timestamp() {
        *second = now.timestamp();
        *prefix = now.format("%Y-%m-%dT%H:%M:%S").to_string();
    }
    // `.mmmZ`, three digits written by hand: `write!` with a width costs more than the rest of a short line.
    let millis = now.timestamp_subsec_millis().min(999);
    let digits = [b'.', b'0' + (millis / 100) as u8, b'0' + (millis / 10 % 10) as u8, b'0' + (millis % 10) as u8, b'Z'];
    match format {
        LogFormat::Text => {
            line.extend_from_slice(prefix.as_bytes());
            line.extend_from_slice(&digits);
            line.push(b' ');
            line.extend_from_slice(record.level().as_str().as_bytes());
            line.push(b' ');
            match record.msg().as_str() {
                Some(message) => line.extend_from_slice(message.as_bytes()),
                None => {
                    let _ = line.write_fmt(*record.msg());
                }
            }
            let mut pairs = Pairs { line, format };
            let _ = record.kv().serialize(record, &mut pairs);
            let _ = values.serialize(record, &mut pairs);
            // One record, one line: a newline in a message or a value (an upstream's error text) would
            // let it forge lines of its own.
            if memchr::memchr2(b'\n', b'\r', line).is_some() {
                let escaped = String::from_utf8_lossy(line).replace('\n', "\\n").replace('\r', "\\r");
                *line = escaped.into_bytes();
            }
            line.push(b'\n');
        }
        LogFormat::Json => {
            line.extend_from_slice(b"{\"ts\":\"");
            line.extend_from_slice(prefix.as_bytes());
            line.extend_from_slice(&digits);
            line.extend_from_slice(b"\",\"level\":\"");
            line.extend_from_slice(record.level().as_str().as_bytes());
            line.extend_from_slice(b"\",\"msg\":");
            json_string(line, record.msg());
            let mut pairs = Pairs { line, format };
            let _ = record.kv().serialize(record, &mut pairs);
            let _ = values.serialize(record, &mut pairs);
            line.extend_from_slice(b"}\n");
        }
    }
}

/// Writes `value` (a string, or format arguments written as they are formatted) as a JSON string, escaped
/// by serde_json.
fn json_string(line: &mut Vec<u8>, value: &(impl serde::Serialize + ?Sized)) {
    // Strings and format arguments always serialise; writing into a Vec cannot fail.
    let _ = serde_json::to_writer(line, value);
}

/// Writes a record's key-value pairs into its line.
struct Pairs<'a> {
    line: &'a mut Vec<u8>,
    format: LogFormat,
}

impl Pairs<'_> {
    /// Starts the pair of `key`: `, key: ` or `,"key":`.
    fn key(&mut self, key: slog::Key) {
        let key: &str = key.as_ref();
        match self.format {
            LogFormat::Text => {
                self.line.extend_from_slice(b", ");
                self.line.extend_from_slice(key.as_bytes());
                self.line.extend_from_slice(b": ");
            }
            LogFormat::Json => {
                self.line.push(b',');
                json_string(self.line, key);
                self.line.push(b':');
            }
        }
    }

    fn number(&mut self, key: slog::Key, value: impl itoa::Integer) -> slog::Result {
        self.key(key);
        self.line.extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        Ok(())
    }
}

impl slog::Serializer for Pairs<'_> {
    fn emit_arguments(&mut self, key: slog::Key, value: &std::fmt::Arguments<'_>) -> slog::Result {
        self.key(key);
        match self.format {
            LogFormat::Text => {
                let _ = std::io::Write::write_fmt(self.line, *value);
            }
            LogFormat::Json => json_string(self.line, value),
        }
        Ok(())
    }

    fn emit_str(&mut self, key: slog::Key, value: &str) -> slog::Result {
        self.key(key);
        match self.format {
            LogFormat::Text => self.line.extend_from_slice(value.as_bytes()),
            LogFormat::Json => json_string(self.line, value),
        }
        Ok(())
    }

    fn emit_u8(&mut self, key: slog::Key, value: u8) -> slog::Result {
        self.number(key, value)
    }
    fn emit_u16(&mut self, key: slog::Key, value: u16) -> slog::Result {
        self.number(key, value)
    }
    fn emit_u32(&mut self, key: slog::Key, value: u32) -> slog::Result {
        self.number(key, value)
    }
    fn emit_u64(&mut self, key: slog::Key, value: u64) -> slog::Result {
        self.number(key, value)
    }
    fn emit_usize(&mut self, key: slog::Key, value: usize) -> slog::Result {
        self.number(key, value)
    }
    fn emit_i8(&mut self, key: slog::Key, value: i8) -> slog::Result {
        self.number(key, value)
    }
    fn emit_i16(&mut self, key: slog::Key, value: i16) -> slog::Result {
        self.number(key, value)
    }
    fn emit_i32(&mut self, key: slog::Key, value: i32) -> slog::Result {
        self.number(key, value)
    }
    fn emit_i64(&mut self, key: slog::Key, value: i64) -> slog::Result {
        self.number(key, value)
    }
    fn emit_isize(&mut self, key: slog::Key, value: isize) -> slog::Result {
        self.number(key, value)
    }

    fn emit_bool(&mut self, key: slog::Key, value: bool) -> slog::Result {
        self.key(key);
        self.line.extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }

    fn emit_none(&mut self, key: slog::Key) -> slog::Result {
        self.key(key);
        self.line.extend_from_slice(match self.format {
            LogFormat::Text => b"None",
            LogFormat::Json => b"null",
        });
        Ok(())
    }
}

fn logger_to(out: Box<dyn std::io::Write + Send>, level: Level, format: LogFormat) -> (Logger, LogGuard) {
    let pending = std::sync::Arc::new(Pending {
        lines: std::sync::Mutex::new(Vec::with_capacity(FLUSH_AT)),
        wake: std::sync::Condvar::new(),
        stopping: std::sync::atomic::AtomicBool::new(false),
    });
    let writing = pending.clone();
    let writer = std::thread::Builder::new().name("dpo-log".into()).spawn(move || write_out(&writing, out)).ok();
    let lines = Lines { pending: pending.clone(), format, level, verbose: !level.is_at_least(Level::Info) };
    (Logger::root(lines, slog::o!("name" => "dpo")), LogGuard { pending, writer })
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
    fn lines_are_json_objects_or_text_with_every_value() {
        let logged = |format| {
            let written = Shared::default();
            let (log, guard) = logger_to(Box::new(written.clone()), Level::Info, format);
            let log = log.new(slog::o!("component" => "test"));
            slog::info!(log, "quote \" and\nnewline"; "status" => 202u16, "latency_us" => 17u64, "ok" => true,
                "reason" => "tab\there \u{1} \\", "shown" => format_args!("{}-{}", 1, 2), "none" => None::<u8>);
            slog::debug!(log, "not at info");
            drop(log);
            drop(guard);
            String::from_utf8(written.0.lock().unwrap().clone()).unwrap()
        };
        let json = logged(LogFormat::Json);
        assert_eq!(json.lines().count(), 1, "{json}");
        let line: serde_json::Value = serde_json::from_str(json.trim_end()).unwrap();
        assert_eq!(line["msg"], "quote \" and\nnewline");
        assert_eq!(line["level"], "INFO");
        assert!(chrono::DateTime::parse_from_rfc3339(line["ts"].as_str().unwrap()).is_ok(), "{line}");
        assert_eq!((&line["status"], &line["latency_us"], &line["ok"]), (&202.into(), &17.into(), &true.into()));
        assert_eq!((&line["reason"], &line["shown"]), (&"tab\there \u{1} \\".into(), &"1-2".into()));
        assert_eq!(
            (&line["none"], &line["component"], &line["name"]),
            (&serde_json::Value::Null, &"test".into(), &"dpo".into())
        );
        let text = logged(LogFormat::Text);
        assert_eq!(text.lines().count(), 1, "{text}");
        let (stamp, rest) = text.split_once(' ').unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(stamp).is_ok(), "{text}");
        assert_eq!(
            rest,
            "INFO quote \" and\\nnewline, none: None, shown: 1-2, reason: tab\there \u{1} \\, ok: true, latency_us: 17, \
             status: 202, component: test, name: dpo\n"
        );
    }

    #[test]
    fn a_request_s_values_read_as_their_display_does() {
        let written = Shared::default();
        let (log, guard) = logger_to(Box::new(written.clone()), Level::Info, LogFormat::Json);
        let peers: [std::net::SocketAddr; 4] =
            ["0.0.0.0:0", "255.255.255.255:65535", "127.0.0.1:8080", "[::1]:443"].map(|a| a.parse().unwrap());
        let targets: [http::Uri; 2] =
            ["/v1.0/dataPolicyOperations/x?$select=id", "http://dpo.example/v1.0/users"].map(|u| u.parse().unwrap());
        for (i, peer) in peers.iter().enumerate() {
            let target = &targets[i % 2];
            slog::info!(log, "answered {}", i; "peer" => PeerAddress(*peer), "target" => RequestTarget(target));
        }
        drop(log);
        drop(guard);
        let text = String::from_utf8(written.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), peers.len(), "{text}");
        for (i, (line, peer)) in lines.iter().zip(&peers).enumerate() {
            assert_eq!(line["msg"], format!("answered {i}"));
            assert_eq!(line["peer"], peer.to_string());
            assert_eq!(line["target"], targets[i % 2].to_string());
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
