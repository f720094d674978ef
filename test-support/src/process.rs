//! Processes a test or a benchmark starts and stops: a helper listening on a loopback port (an
//! emulator), and a server that says on its first line of output where it listens.

use std::{
    io::{BufRead, BufReader},
    net::{TcpListener, TcpStream},
    path::Path,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Why a process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The program is not where it should be.
    #[error("{what} is not installed at {path}: {installed_by}")]
    Missing {
        /// What it is.
        what: String,
        /// Where it was looked for.
        path: std::path::PathBuf,
        /// How to install it.
        installed_by: String,
    },
    /// Starting it, or reading from it, failed.
    #[error("starting {what}: {source}")]
    Io {
        /// What it is.
        what: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// It did not listen in time.
    #[error("{what} did not start listening on port {port} within {seconds} s")]
    NotListening {
        /// What it is.
        what: String,
        /// The port.
        port: u16,
        /// How long it was given.
        seconds: u64,
    },
    /// Its first line of output names no URL.
    #[error("{what} did not say where it listens: {line:?}")]
    NoUrl {
        /// What it is.
        what: String,
        /// The line.
        line: String,
    },
}

/// A child process, killed (and reaped) when dropped.
pub struct Running(pub Child);

impl Running {
    /// Its process id.
    pub fn id(&self) -> u32 {
        self.0.id()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A free loopback port (free when asked: another process may take it before it is used).
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// The most memory process `pid` has held (its peak resident set, `VmHWM`), in MiB; `None` when it is
/// gone or the system does not say.
pub fn peak_rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// A helper listening on a loopback port.
pub struct Listening {
    /// The process.
    pub process: Running,
    /// Its port.
    pub port: u16,
}

/// Starts `program` with `args`, where `{port}` stands for a free loopback port, and waits (up to 60 s)
/// until it listens there. `what` names it in errors; `installed_by` says how to install it.
pub fn start_listening(what: &str, program: &Path, args: &[&str], installed_by: &str) -> Result<Listening, StartError> {
    if !program.exists() {
        return Err(StartError::Missing {
            what: what.into(),
            path: program.to_path_buf(),
            installed_by: installed_by.into(),
        });
    }
    let io = |source| StartError::Io { what: what.into(), source };
    let port = free_port().map_err(io)?;
    let child = Command::new(program)
        .args(args.iter().map(|a| a.replace("{port}", &port.to_string())))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(io)?;
    let helper = Listening { process: Running(child), port };
    let limit = Duration::from_secs(60);
    let deadline = Instant::now() + limit;
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if Instant::now() > deadline {
            return Err(StartError::NotListening { what: what.into(), port, seconds: limit.as_secs() });
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(helper)
}

/// A server that announced where it listens.
pub struct Announced {
    /// The process (its stdout is read up to the announcement; the rest of it is not).
    pub process: Running,
    /// Its base URL, without a trailing `/`.
    pub url: String,
    /// The line it printed.
    pub line: String,
}

/// Starts `command` with its stdout piped, and reads its first line, which says where it listens (see
/// [`announcement`]).
pub fn start_announced(what: &str, command: &mut Command) -> Result<Announced, StartError> {
    let child =
        command.stdout(Stdio::piped()).spawn().map_err(|source| StartError::Io { what: what.into(), source })?;
    let mut process = Running(child);
    let (url, line) = announcement(what, &mut process.0)?;
    Ok(Announced { process, url, line })
}

/// Reads the first line of `child`'s piped stdout, which says where it listens: `… http://127.0.0.1:port`
/// in text, or a JSON object with `url` (`dpo-server --log-format json`). Returns the URL (without a
/// trailing `/`) and the line; the rest of stdout is left unread.
pub fn announcement(what: &str, child: &mut Child) -> Result<(String, String), StartError> {
    let mut line = String::new();
    if let Some(stdout) = child.stdout.take() {
        BufReader::new(stdout).read_line(&mut line).map_err(|source| StartError::Io { what: what.into(), source })?;
    }
    let url = match serde_json::from_str::<serde_json::Value>(&line) {
        Ok(announced) => announced["url"].as_str().map(str::to_string),
        Err(_) => {
            line.split_whitespace().find(|w| w.starts_with("http://") || w.starts_with("https://")).map(str::to_string)
        }
    };
    match url {
        Some(url) => Ok((url.trim_end_matches('/').to_string(), line)),
        None => Err(StartError::NoUrl { what: what.into(), line }),
    }
}
