//! A throwaway PostgreSQL cluster: `initdb` and `postgres` from the system's PostgreSQL (the folder
//! `pg_config --bindir` names), in a temporary folder, on a free loopback port, stopped when dropped.
//!
//! `initdb` refuses to run as root, so as root the cluster runs as the `postgres` system user that
//! Debian's package creates. Tests get a database of their own each ([`fresh_database`]); the cluster is
//! the one named by `DPO_TEST_DATABASE_URL` (as `cargo xtask test` starts it), or else one this process
//! starts for itself and stops when it exits.

use std::{
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

/// The variable naming a cluster to use: `postgres://user@host:port` (no database).
pub const DATABASE_URL_VARIABLE: &str = "DPO_TEST_DATABASE_URL";

/// A running cluster; stopped (immediately, its files removed) when dropped.
pub struct Cluster {
    postgres: Child,
    folder: tempfile::TempDir,
    data: PathBuf,
    bin: PathBuf,
    port: u16,
    durable: bool,
    /// `postgres://postgres@127.0.0.1:<port>`, without a database.
    pub url: String,
}

/// Why a cluster could not be started.
#[derive(Debug)]
pub struct ClusterError(pub String);

impl std::fmt::Display for ClusterError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ClusterError {}

fn failed(what: &str, e: impl std::fmt::Display) -> ClusterError {
    ClusterError(format!("{what}: {e}"))
}

/// The folder of PostgreSQL's server programs: what `pg_config --bindir` names, else the newest
/// `/usr/lib/postgresql/<version>/bin` (Debian's layout).
pub fn bin_dir() -> Result<PathBuf, ClusterError> {
    let named = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|out| out.status.success())
        .map(|out| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()));
    let debian = || {
        let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|entry| entry.path().join("bin"))
            .collect();
        versions.sort();
        versions.pop()
    };
    named
        .filter(|bin| bin.join("initdb").exists())
        .or_else(debian)
        .filter(|bin| bin.join("initdb").exists())
        .ok_or_else(|| {
            ClusterError("no PostgreSQL server programs (install them: apt-get install postgresql; or set DPO_TEST_DATABASE_URL)".into())
        })
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// `program` run as the `postgres` user when this process is root (initdb refuses root).
fn command(program: &Path) -> Command {
    if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl Cluster {
    /// Starts a new cluster; `durable` keeps fsync on (benchmarks), otherwise it is off (tests).
    pub fn start(durable: bool) -> Result<Cluster, ClusterError> {
        let bin = bin_dir()?;
        let folder =
            tempfile::Builder::new().prefix("dpo-pg-").tempdir().map_err(|e| failed("a temporary folder", e))?;
        let data = folder.path().join("data");
        if is_root() {
            let owned = Command::new("chown").arg("-R").arg("postgres").arg(folder.path()).status();
            if !owned.is_ok_and(|s| s.success()) {
                return Err(ClusterError("giving the cluster's folder to the postgres user failed".into()));
            }
        }
        let init = command(&bin.join("initdb"))
            .args(["-A", "trust", "-U", "postgres", "-E", "UTF8", "--locale=C", "--no-sync", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .map_err(|e| failed("running initdb", e))?;
        if !init.status.success() {
            return Err(ClusterError(format!("initdb failed: {}", String::from_utf8_lossy(&init.stderr))));
        }
        let port =
            TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map_err(|e| failed("a port", e))?.port();
        let postgres = spawn_postgres(&bin, &data, folder.path(), port, durable)?;
        let cluster = Cluster {
            postgres,
            folder,
            data,
            bin,
            port,
            durable,
            url: format!("postgres://postgres@127.0.0.1:{port}"),
        };
        cluster.wait_accepting()?;
        Ok(cluster)
    }

    /// Waits until the cluster accepts connections (at most 30 s).
    fn wait_accepting(&self) -> Result<(), ClusterError> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while execute(&format!("{}/postgres", self.url), "SELECT 1").is_err() {
            if Instant::now() > deadline {
                return Err(ClusterError(format!("postgres did not accept connections on port {}", self.port)));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the cluster as `pg_ctl stop -m fast` does (clients are disconnected), leaving its data.
    pub fn stop(&mut self) -> Result<(), ClusterError> {
        let stopped = command(&self.bin.join("pg_ctl"))
            .arg("-D")
            .arg(&self.data)
            .args(["stop", "-m", "fast"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .map_err(|e| failed("running pg_ctl stop", e))?;
        let _ = self.postgres.wait();
        if !stopped.success() {
            return Err(ClusterError("pg_ctl stop failed".into()));
        }
        Ok(())
    }

    /// Starts a stopped cluster again on its port, and waits until it accepts connections.
    pub fn start_again(&mut self) -> Result<(), ClusterError> {
        self.postgres = spawn_postgres(&self.bin, &self.data, self.folder.path(), self.port, self.durable)?;
        self.wait_accepting()
    }

    /// The folder the cluster lives in.
    pub fn folder(&self) -> &Path {
        self.folder.path()
    }
}

/// The postgres server of the cluster in `data`, on loopback port `port`, its socket in `sockets`.
fn spawn_postgres(bin: &Path, data: &Path, sockets: &Path, port: u16, durable: bool) -> Result<Child, ClusterError> {
    let mut server = command(&bin.join("postgres"));
    server
        .arg("-D")
        .arg(data)
        .args(["-p", &port.to_string(), "-c", "listen_addresses=127.0.0.1", "-c", "max_connections=300"])
        .arg("-k")
        .arg(sockets)
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if !durable {
        server.args(["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"]);
    }
    server.spawn().map_err(|e| failed("starting postgres", e))
}

impl Cluster {
    /// The command that stops the cluster at once (it is thrown away).
    fn stop_command(&self) -> Command {
        let mut stop = command(&self.bin.join("pg_ctl"));
        stop.arg("-D").arg(&self.data).args(["stop", "-m", "immediate"]).stdout(Stdio::null()).stderr(Stdio::null());
        stop
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.stop_command().status();
        let _ = self.postgres.wait();
    }
}

/// Runs `statements` in the database at `url`, from any thread (the synchronous client starts a runtime
/// of its own, which a thread already driving one may not, so it runs on a thread of its own).
pub fn execute(url: &str, statements: &str) -> Result<(), ClusterError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| failed(url, e))?;
            client.batch_execute(statements).map_err(|e| failed(statements, e))
        })
        .join()
        .unwrap_or_else(|_| Err(ClusterError("the statement's thread panicked".into())))
    })
}

/// The number one `SELECT count(*) …` in the database at `url` answers (from any thread, as [`execute`]).
pub fn count(url: &str, select: &str) -> Result<i64, ClusterError> {
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut client = postgres::Client::connect(url, postgres::NoTls).map_err(|e| failed(url, e))?;
            client.query_one(select, &[]).map(|row| row.get::<_, i64>(0)).map_err(|e| failed(select, e))
        })
        .join()
        .unwrap_or_else(|_| Err(ClusterError("the query's thread panicked".into())))
    })
}

/// A new, empty database in `server` (a `postgres://…` URL without a database); returns its URL.
pub fn create_database(server: &str) -> Result<String, ClusterError> {
    let name = format!("dpo_test_{}", uuid::Uuid::new_v4().simple());
    execute(&format!("{server}/postgres"), &format!("CREATE DATABASE {name}"))?;
    Ok(format!("{server}/{name}"))
}

/// The cluster of this test process: `DPO_TEST_DATABASE_URL`'s, or one started for this process (it
/// stops when the process exits: a watchdog ends it once its parent is gone).
pub fn shared_server() -> Result<String, ClusterError> {
    static SERVER: OnceLock<Result<String, String>> = OnceLock::new();
    SERVER
        .get_or_init(|| match std::env::var(DATABASE_URL_VARIABLE) {
            Ok(url) => Ok(url.trim_end_matches('/').to_string()),
            Err(_) => {
                let cluster = Cluster::start(false).map_err(|e| e.0)?;
                let url = cluster.url.clone();
                watch_until_this_process_exits(cluster);
                Ok(url)
            }
        })
        .clone()
        .map_err(ClusterError)
}

/// Keeps `cluster` for the life of this process: a shell waits for this process to exit, then ends it.
fn watch_until_this_process_exits(cluster: Cluster) {
    let stop = format!("{:?}", cluster.stop_command()).replace('"', "");
    let _ = Command::new("sh")
        .args(["-c", &format!("while kill -0 {} 2>/dev/null; do sleep 1; done; {stop}", std::process::id())])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    // The cluster's folder must outlive this function; the watchdog stops the server, the OS the rest.
    std::mem::forget(cluster);
}

/// A fresh database for one test, in the shared cluster.
pub fn fresh_database() -> Result<String, ClusterError> {
    create_database(&shared_server()?)
}
