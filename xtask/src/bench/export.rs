//! Export throughput: one user with a 1 GiB drive file exported by a release server to a local folder
//! and to Azurite, each next to a plain upload of the same bytes by a single client (the ceiling), and
//! the server's peak RSS.

use super::load::{DpoServer, peak_rss_mib};
use crate::test::{AZURITE, npm_tool};
use anyhow::{Context, bail};
use dpo_server::{
    auth::LOCAL_TENANT,
    store::{Directory, UserRecord, sqlite::SqliteStore},
};
use dpo_test_support::azurite as emulator;
use std::{
    io::{Read, Write},
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
const CONTAINER: &str = "exports";

/// Megabytes per second of `bytes` moved in `elapsed`.
fn rate(bytes: f64, elapsed: Duration) -> f64 {
    bytes / elapsed.as_secs_f64() / 1e6
}

/// Writes 1 GiB of non-repeating-looking bytes to `path`.
fn write_source(path: &Path) -> anyhow::Result<()> {
    let block: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8).collect();
    let mut file = std::fs::File::create(path)?;
    for _ in 0..256 {
        file.write_all(&block)?;
    }
    file.sync_all()?;
    Ok(())
}

/// Waits until the kernel has written every dirty page to disk (`sync`).
fn flush_writes() -> anyhow::Result<()> {
    if !Command::new("sync").status()?.success() {
        bail!("sync failed");
    }
    Ok(())
}

/// A single client writing the file to a folder: 4 MiB reads and writes, then fsync (the export's
/// local sink fsyncs every object too).
fn plain_local_upload(source: &Path, target: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let mut from = std::fs::File::open(source)?;
    let mut to = std::fs::File::create(target)?;
    let mut buffer = vec![0u8; 4 * 1024 * 1024];
    loop {
        let n = from.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        to.write_all(&buffer[..n])?;
    }
    to.sync_all()?;
    let elapsed = started.elapsed();
    std::fs::remove_file(target)?;
    Ok(elapsed)
}

/// A single client uploading the file to a blob in one `PUT` (curl).
fn plain_blob_upload(source: &Path, container_url: &str, sas: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("curl")
        .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "x-ms-blob-type: BlockBlob", "-T"])
        .arg(source)
        .arg(format!("{container_url}/plain-upload.bin?{sas}"))
        .output()?;
    let status = String::from_utf8_lossy(&out.stdout).to_string();
    if status != "201" {
        bail!("the plain upload to Azurite answered {status}");
    }
    Ok(started.elapsed())
}

/// A single client uploading the file as Azure's SDKs upload files over 64 MiB: Put Block of 4 MiB
/// blocks, one at a time, then Put Block List.
fn plain_block_upload(source: &Path, container_url: &str, sas: &str) -> anyhow::Result<Duration> {
    use base64::{Engine, engine::general_purpose::STANDARD};
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let blob = format!("{container_url}/plain-blocks.bin");
    let http = reqwest::Client::new();
    let started = Instant::now();
    runtime.block_on(async {
        let mut from = std::fs::File::open(source)?;
        let mut ids = Vec::new();
        loop {
            let mut block = vec![0u8; 4 * 1024 * 1024];
            let n = from.read(&mut block)?;
            if n == 0 {
                break;
            }
            block.truncate(n);
            let id = STANDARD.encode(format!("block-{:06}", ids.len()));
            let encoded: String = url::form_urlencoded::byte_serialize(id.as_bytes()).collect();
            let answer = http.put(format!("{blob}?comp=block&blockid={encoded}&{sas}")).body(block).send().await?;
            if answer.status().as_u16() != 201 {
                bail!("Put Block answered {}", answer.status());
            }
            ids.push(id);
        }
        let list: String = ids.iter().map(|id| format!("<Latest>{id}</Latest>")).collect();
        let body = format!("<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>{list}</BlockList>");
        let answer = http.put(format!("{blob}?comp=blocklist&{sas}")).body(body).send().await?;
        if answer.status().as_u16() != 201 {
            bail!("Put Block List answered {}", answer.status());
        }
        Ok(())
    })?;
    Ok(started.elapsed())
}

impl DpoServer {
    /// Exports `user` to `destination` and waits until the operation is complete; returns how long it took.
    pub(super) fn export(&self, user: &str, destination: &str) -> anyhow::Result<Duration> {
        let started = Instant::now();
        let head = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "/dev/null", "-X", "POST", "-H", "content-type: application/json", "-H"])
            .arg(format!("Authorization: Bearer {}", self.token))
            .arg("-d")
            .arg(serde_json::json!({ "storageLocation": destination }).to_string())
            .arg(format!("{}/v1.0/users/{user}/exportPersonalData", self.url))
            .output()?;
        let head = String::from_utf8_lossy(&head.stdout).to_string();
        if !head.starts_with("HTTP/1.1 202") {
            bail!("the export was not accepted: {}", head.lines().next().unwrap_or_default());
        }
        let location = head
            .lines()
            .find_map(|l| l.split_once(':').filter(|(name, _)| name.eq_ignore_ascii_case("location")))
            .map(|(_, value)| value.trim().to_string())
            .context("no Location in the 202")?;
        loop {
            // Polled over a plain socket, not by starting curl each time: the poll must not take CPU from
            // the export it times (a curl process every 50 ms took several percent of this machine).
            let operation = get_json(&location, &self.token)?;
            match operation["status"].as_str() {
                Some("complete") => return Ok(started.elapsed()),
                Some("failed") => bail!("the export failed: {}", operation["@dpo.failureReason"]),
                _ if started.elapsed() > Duration::from_secs(900) => bail!("the export did not finish in 15 minutes"),
                _ => std::thread::sleep(Duration::from_millis(50)),
            }
        }
    }
}

/// GETs `url` (`http://host:port/path`, on loopback) with a bearer token, one request on its own
/// connection, and reads the body as JSON (`null` if it is not).
pub(super) fn get_json(url: &str, token: &str) -> anyhow::Result<serde_json::Value> {
    use std::io::{Read, Write};
    let rest = url.strip_prefix("http://").context("an http:// URL")?;
    let (authority, path) = rest.split_once('/').map(|(a, p)| (a, format!("/{p}"))).unwrap_or((rest, "/".into()));
    let mut stream = std::net::TcpStream::connect(authority)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    let body = answer.windows(4).position(|w| w == b"\r\n\r\n").map(|at| &answer[at + 4..]).unwrap_or_default();
    Ok(serde_json::from_slice(body).unwrap_or_default())
}

fn create_container(container_url: &str, sas: &str) -> anyhow::Result<()> {
    for _ in 0..40 {
        let out = Command::new("curl")
            .args(["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "PUT", "-H", "content-length: 0"])
            .arg(format!("{container_url}?restype=container&{sas}"))
            .output()?;
        if out.stdout == b"201" {
            return Ok(());
        }
        // Azurite may accept connections a moment before it answers them.
        std::thread::sleep(Duration::from_millis(250));
    }
    bail!("Azurite did not create the container")
}

/// The disk's limit: `cp` of the file, then `sync -f` of the copy (its bytes on the disk), timed together.
fn cp_and_sync(source: &Path, target: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    if !Command::new("cp").arg(source).arg(target).status()?.success() {
        bail!("cp failed");
    }
    if !Command::new("sync").arg("-f").arg(target).status()?.success() {
        bail!("sync -f failed");
    }
    let elapsed = started.elapsed();
    std::fs::remove_file(target)?;
    Ok(elapsed)
}

/// The hash's limit: SHA-256 of the file alone, by OpenSSL (which uses the CPU's SHA extensions).
fn sha256_alone(source: &Path) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let out = Command::new("openssl").args(["dgst", "-sha256", "-r"]).arg(source).output()?;
    if !out.status.success() {
        bail!("openssl dgst failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(started.elapsed())
}

/// Microsoft's Python SDK for Blob Storage, as a user would upload the file without dpo.
const AZURE_STORAGE_BLOB: &str = "azure-storage-blob==12.24.0";

/// What a user would run instead of dpo: Microsoft's Python SDK uploading the file with
/// `upload_blob(..., max_concurrency=4)` (4 MiB blocks), timed inside Python (the interpreter's start
/// left out).
fn python_sdk_upload(source: &Path, container_url: &str, sas: &str) -> anyhow::Result<Duration> {
    let bin = crate::test::python_tool(AZURE_STORAGE_BLOB, "azure-storage-blob.installed")?;
    let script = "import sys, time\nfrom azure.storage.blob import BlobClient\n\
                  client = BlobClient.from_blob_url(sys.argv[2], max_block_size=4*1024*1024, max_single_put_size=4*1024*1024)\n\
                  started = time.monotonic()\n\
                  with open(sys.argv[1], 'rb') as f:\n    client.upload_blob(f, overwrite=True, max_concurrency=4)\n\
                  print(time.monotonic() - started)\n";
    let out = Command::new(bin.join("python"))
        .args(["-c", script])
        .arg(source)
        .arg(format!("{container_url}/python-sdk.bin?{sas}"))
        .output()?;
    if !out.status.success() {
        bail!("the Python SDK's upload failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let seconds: f64 = String::from_utf8_lossy(&out.stdout).trim().parse().context("the upload's time")?;
    Ok(Duration::from_secs_f64(seconds))
}

/// CPU seconds (user and system) the process `pid` has used so far.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    (ticks(11) + ticks(12)) / 100.0
}

/// Drive files of the small-files row.
const SMALL_FILES: usize = 100_000;

/// One user whose drive holds [`SMALL_FILES`] files of 1 KiB, exported to a local folder by a server of
/// its own: files a second, and the server's peak RSS (which must not grow with the number of files).
fn small_files(release: &Path, dir: &Path) -> anyhow::Result<String> {
    println!("==> export of {SMALL_FILES} small drive files to a local folder");
    let state = dir.join("state");
    let store = SqliteStore::open(&state)?;
    let user = UserRecord {
        id: "many".into(),
        user_principal_name: "many@contoso.example".into(),
        display_name: None,
        mail: None,
        attributes: Default::default(),
    };
    store.upsert_users(LOCAL_TENANT, &[user])?;
    drop(store);
    let drive = dpo_server::export::drive_files::drive_dir(&state.join("drives"), LOCAL_TENANT, "many");
    let content = vec![b'x'; 1024];
    for i in 0..SMALL_FILES {
        let folder = drive.join(format!("f{:03}", i / 1000));
        std::fs::create_dir_all(&folder)?;
        std::fs::write(folder.join(format!("note{i:06}.txt")), &content)?;
    }
    flush_writes()?;
    let server = DpoServer::start(release, &state, &["--retry-after", "1"])?;
    let target = format!("file://{}/", dpo_server::config::absolute(&state.join("exports/many")).display());
    let took = server.export("many", &target)?;
    let rss = peak_rss_mib(server.process.0.id());
    drop(server);
    let _ = std::fs::remove_dir_all(dir);
    Ok(format!(
        "\nAn export of {SMALL_FILES} drive files of 1 KiB to a local folder (each fsync'd, listed in the \
         manifest): {:.0} files/s ({:.1} s), peak RSS of the server {rss:.1} MiB (target < 100 MiB).\n",
        SMALL_FILES as f64 / took.as_secs_f64(),
        took.as_secs_f64()
    ))
}

/// The median of `values` (the middle one of an odd count).
fn middle(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Measures and returns the Markdown section.
pub fn throughput(release: &Path, dir: &Path) -> anyhow::Result<String> {
    println!("==> export of a 1 GiB drive file to a local folder and to Azurite");
    let _ = std::fs::remove_dir_all(dir);
    let state = dir.join("state");
    let store = SqliteStore::open(&state)?;
    let user = |id: &str| UserRecord {
        id: id.into(),
        user_principal_name: format!("{id}@contoso.example"),
        display_name: None,
        mail: None,
        attributes: Default::default(),
    };
    store.upsert_users(LOCAL_TENANT, &[user("big")])?;
    drop(store);
    let drive = dpo_server::export::drive_files::drive_dir(&state.join("drives"), LOCAL_TENANT, "big");
    std::fs::create_dir_all(&drive)?;
    let source = drive.join("big.bin");
    write_source(&source)?;

    let azurite = dpo_test_support::azurite::Azurite::start_from(&npm_tool(AZURITE, ".bin/azurite-blob")?)?;
    let azurite_host = azurite.host.clone();
    let container_url = format!("http://{azurite_host}/{}/{CONTAINER}", emulator::ACCOUNT);
    let sas = emulator::account_sas("racwdl", "2099-01-01T00:00:00Z", emulator::ACCOUNT_KEY)?;
    create_container(&container_url, &sas)?;

    // Each export runs right after its ceilings, and every step starts with the disk's write-back done,
    // so that no step pays for the writes of the one before. The local rows are measured in 3 interleaved
    // rounds (the median counts): this machine's speed swings with its neighbours' load.
    let server = DpoServer::start(release, &state, &["--retry-after", "1", "--emulator-host", &azurite_host])?;
    let local_target = format!("file://{}/", dpo_server::config::absolute(&state.join("exports/big")).display());
    let (mut locals, mut copies, mut hashes, mut plains, mut cpu) = (vec![], vec![], vec![], vec![], vec![]);
    for round in 1..=3 {
        println!("    local export round {round} of 3");
        flush_writes()?;
        copies.push(rate(GIB, cp_and_sync(&source, &dir.join("cp-copy.bin"))?));
        hashes.push(rate(GIB, sha256_alone(&source)?));
        flush_writes()?;
        plains.push(rate(GIB, plain_local_upload(&source, &dir.join("plain-copy.bin"))?));
        flush_writes()?;
        let before = cpu_seconds(server.process.0.id());
        locals.push(rate(GIB, server.export("big", &local_target)?));
        cpu.push(cpu_seconds(server.process.0.id()) - before);
    }
    // Each round's share of that round's limit, and the spread of the export's rate: the median alone hid
    // runs at 72% of the limit.
    let shares: Vec<String> = locals
        .iter()
        .zip(copies.iter().zip(&hashes))
        .map(|(local, (copy, hash))| format!("{:.0}%", 100.0 * local / copy.min(*hash)))
        .collect();
    let spread = format!(
        "{:.0}–{:.0} MB/s; share of each round's min(disk, hash): {}",
        locals.iter().copied().fold(f64::INFINITY, f64::min),
        locals.iter().copied().fold(0.0, f64::max),
        shares.join(", ")
    );
    let (local, copy, hash, plain_local, cpu) =
        (middle(locals), middle(copies), middle(hashes), middle(plains), middle(cpu));
    flush_writes()?;
    let python_sdk = rate(GIB, python_sdk_upload(&source, &container_url, &sas)?);
    flush_writes()?;
    let plain_blocks = rate(GIB, plain_block_upload(&source, &container_url, &sas)?);
    flush_writes()?;
    let blob = rate(GIB, server.export("big", &format!("{container_url}?{sas}"))?);
    flush_writes()?;
    let plain_blob = rate(GIB, plain_blob_upload(&source, &container_url, &sas)?);
    let rss = peak_rss_mib(server.process.0.id());
    drop(server);
    let limit = copy.min(hash);
    let small = small_files(release, &dir.join("small"))?;
    let _ = std::fs::remove_dir_all(dir);
    Ok(format!(
        "\n## Export\n\nOne user whose drive holds a 1 GiB file, exported through the API (submission to \
         `complete`, SHA-256 of every object, manifest last), next to the limits of this machine and to what a \
         user would run instead, in the same run. Local rows: the median of 3 interleaved rounds.\n\n\
         | what | MB/s | export's share |\n|---|---:|---:|\n\
         | dpo: export to a local folder | {local:.0} | |\n\
         | `cp` of the file, then `sync -f` (the disk's limit) | {copy:.0} | {:.0}% |\n\
         | SHA-256 of the file alone (`openssl dgst`, the hash's limit) | {hash:.0} | {:.0}% |\n\
         | a plain copy in 4 MiB reads and writes, fsync | {plain_local:.0} | {:.0}% |\n\
         | dpo: export to Azurite (SAS URL) | {blob:.0} | |\n\
         | Microsoft's Python SDK (`azure-storage-blob`), `upload_blob(max_concurrency=4)` | {python_sdk:.0} | {:.0}% |\n\
         | plain upload in 4 MiB blocks, one at a time | {plain_blocks:.0} | {:.0}% |\n\
         | plain upload in one `PUT` (curl) | {plain_blob:.0} | {:.0}% |\n\
         \nTargets: local export ≥ 90% of `cp` + fsync (in practice of min(disk, hash) = {limit:.0} MB/s): \
         {:.0}% of it; export to Azurite ≥ 100% of Microsoft's SDK: {:.0}%. The local export used {:.2} s \
         of CPU per GiB (reading, hashing and writing). Local rounds: {spread}.\n\
         \nPeak RSS of the server over every export: {rss:.1} MiB (target < 100 MiB).\n{small}",
        100.0 * local / copy,
        100.0 * local / hash,
        100.0 * local / plain_local,
        100.0 * blob / python_sdk,
        100.0 * blob / plain_blocks,
        100.0 * blob / plain_blob,
        100.0 * local / limit,
        100.0 * blob / python_sdk,
        cpu,
    ))
}
