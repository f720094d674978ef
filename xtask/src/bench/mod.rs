//! `cargo xtask bench`: throughput and latency of dpo next to the ceiling of its stack and to what a user
//! would pick instead, over loopback, written to BENCHMARKS.md. Not part of the tests.
//!
//! Side by side in one run: dpo (release build, SQLite holding `--operations` operations) for
//! `GET /dataPolicyOperations/{id}`, a list with `$filter`, and durable `exportPersonalData` submissions; a
//! bare dropshot handler answering a constant (the ceiling); Stoplight Prism mocking the bundled document.
//! The load tool is wrk (Debian's package, installed with apt-get if missing).

mod attachment;
mod erasure;
mod export;
mod findings;
mod load;
mod polled;
mod postgres;
mod scale;
mod sources;

use crate::test::{npm_tool, workspace_root};
use anyhow::{Context, bail};
use dpo_server::{
    auth::LOCAL_TENANT,
    store::{Directory, OperationRecord, StoreError, UserRecord, sqlite::SqliteStore},
};
use load::{DpoServer, Figures, ensure_wrk, median, start_listening, wrk};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

const PRISM: &str = "@stoplight/prism-cli@5.16.0";
/// Rounds of the dpo GET and ceiling rows, alternated so that both see the same machine; the median counts.
const ROUNDS: usize = 3;

/// What seeding leaves for the load: one operation to poll, and a sample of ids to read at random.
struct Seeded {
    probe: String,
    sample: Vec<String>,
}

/// Seeds `operations` operations (and the 1,000 users they belong to) through `directory` and
/// `insert_many`, the same data whichever the store.
fn seed(
    directory: &dyn Directory,
    insert_many: impl Fn(&[OperationRecord]) -> Result<usize, StoreError>,
    operations: u64,
) -> anyhow::Result<Seeded> {
    let users: Vec<UserRecord> = (0..1000)
        .map(|i| UserRecord {
            id: format!("user{i}"),
            user_principal_name: format!("user{i}@contoso.example"),
            display_name: None,
            mail: None,
            attributes: Default::default(),
        })
        .collect();
    directory.upsert_users(LOCAL_TENANT, &users)?;
    let start = chrono::Utc::now() - chrono::Duration::days(365);
    let mut probe = String::new();
    let mut sample = Vec::new();
    let batch = 50_000;
    for chunk in 0..operations.div_ceil(batch) {
        let records: Vec<OperationRecord> = (chunk * batch..((chunk + 1) * batch).min(operations))
            .map(|i| OperationRecord {
                id: uuid::Uuid::now_v7(),
                tenant_id: LOCAL_TENANT.into(),
                user_id: format!("user{}", i % 1000),
                status: dpo_api::model::DataPolicyOperationStatus::Complete,
                progress: 100.0,
                storage_location: Some(
                    "https://acct.blob.core.windows.net/exports?sv=1&sp=cw&se=2099-01-01T00:00:00Z&sig=REDACTED".into(),
                ),
                storage_secret: Some(
                    "https://acct.blob.core.windows.net/exports?sv=1&sp=cw&se=2099-01-01T00:00:00Z&sig=x".into(),
                ),
                submitted_at: start + chrono::Duration::milliseconds(i as i64 * 10),
                completed_at: Some(start + chrono::Duration::milliseconds(i as i64 * 10 + 5000)),
                version: 2,
                failure_reason: None,
                request_id: None,
            })
            .collect();
        if probe.is_empty() {
            probe = records[records.len() / 2].id.to_string();
        }
        sample.extend(records.iter().step_by(10).map(|r| r.id.to_string()));
        insert_many(&records)?;
    }
    Ok(Seeded { probe, sample })
}

/// A wrk script that GETs the ids listed in `ids_file` at random.
fn random_get_script(path: &Path, ids: &[String], ids_file: &Path) -> anyhow::Result<()> {
    std::fs::write(ids_file, ids.join("\n") + "\n")?;
    std::fs::write(
        path,
        format!(
            "local ids = {{}}\nfor line in io.lines(\"{}\") do ids[#ids + 1] = line end\n\
             math.randomseed(os.time())\n\
             request = function()\n  return wrk.format(\"GET\", \"/v1.0/dataPolicyOperations/\" .. ids[math.random(#ids)])\nend\n",
            ids_file.display()
        ),
    )?;
    Ok(())
}

/// The wrk script of durable submissions.
fn post_script(path: &Path) -> anyhow::Result<()> {
    std::fs::write(
        path,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = \
         '{\"storageLocation\":\"https://acct.blob.core.windows.net/exports?sv=1&sp=cw&se=2099-01-01T00:00:00Z&sig=x\"}'\n",
    )?;
    Ok(())
}

/// The wrk script of durable subject rights request creations.
fn request_script(path: &Path) -> anyhow::Result<()> {
    std::fs::write(
        path,
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nwrk.body = \
         '{\"dataSubject\":{\"email\":\"casey@shop.example\"},\"dataSubjectType\":\"customer\",\
         \"displayName\":\"bench\",\"description\":\"a copy\",\"regulations\":[\"GDPR\"],\"type\":\"access\"}'\n",
    )?;
    Ok(())
}

/// Which part of the benchmarks to run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Only {
    /// Everything, written to BENCHMARKS.md.
    Nothing,
    /// The export section, printed.
    Export,
    /// The PostgreSQL rows, printed (their ratio against SQLite is left out).
    Postgres,
    /// The data source section, printed.
    Sources,
    /// The scaling curve, printed.
    Scale,
    /// The zip of a subject rights request, printed.
    Attachment,
    /// Erasure through a PostgreSQL source, printed.
    Erasure,
    /// The polled GET at every default against the ceiling, printed.
    PolledGet,
}

impl Only {
    pub fn from_flags(
        export: bool,
        postgres: bool,
        sources: bool,
        scale: bool,
        attachment: bool,
        erasure: bool,
        get: bool,
    ) -> Only {
        match (export, postgres, sources, scale, attachment, erasure, get) {
            (true, ..) => Only::Export,
            (false, true, ..) => Only::Postgres,
            (false, false, true, ..) => Only::Sources,
            (false, false, false, true, ..) => Only::Scale,
            (false, false, false, false, true, ..) => Only::Attachment,
            (false, false, false, false, false, true, _) => Only::Erasure,
            (false, false, false, false, false, false, true) => Only::PolledGet,
            (false, false, false, false, false, false, false) => Only::Nothing,
        }
    }
}

/// Runs the benchmarks and writes BENCHMARKS.md, or prints the one part asked for.
pub fn run(operations: u64, seconds: u64, only: Only) -> anyhow::Result<()> {
    ensure_wrk()?;
    let root = workspace_root();
    println!("==> cargo build --release");
    let built = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "dpo-server-cli", "-p", "xtask", "--bins"])
        .current_dir(&root)
        .status()?;
    if !built.success() {
        bail!("release build failed");
    }
    let release = root.join("target/release");
    match only {
        Only::Export => {
            println!("{}", export::throughput(&release, &root.join("target/bench-export"))?);
            return Ok(());
        }
        Only::Postgres => {
            let post = root.join("target/bench-post.lua");
            post_script(&post)?;
            let rows = postgres::rows(&release, &root, operations, seconds, &post)?;
            println!("{}", postgres::render(&rows, &[]));
            return Ok(());
        }
        Only::Sources => {
            let measured = sources::rows(&release, &root.join("target/bench-sources"))?;
            println!("{}", measured.section);
            return memory_kept(&measured);
        }
        Only::Scale => {
            let points = scale::curve(&release, &root.join("target/bench-scale"), seconds)?;
            println!("{}", scale::render(&points, None));
            return Ok(());
        }
        Only::Attachment => {
            println!("{}", attachment::section(&release, &root.join("target/bench-attachment"))?);
            return Ok(());
        }
        Only::Erasure => {
            println!("{}", erasure::section(&release, &root.join("target/bench-erasure"))?);
            return Ok(());
        }
        Only::PolledGet => {
            println!("{}", polled::measure(&release, &root.join("target/bench-polled"), seconds)?.render());
            return Ok(());
        }
        Only::Nothing => {}
    }
    let prism = npm_tool(PRISM, ".bin/prism")?;
    let state = root.join("target/bench-state");
    let _ = std::fs::remove_dir_all(&state);
    println!("==> seeding {operations} operations");
    let seeded = Instant::now();
    let sqlite = SqliteStore::open(&state)?;
    let seeded_ops = seed(&sqlite, |records| sqlite.insert_many(records), operations)?;
    println!("    seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    println!("==> the store alone: point reads and durable inserts, without HTTP");
    let store_ceiling = store_ceiling(&sqlite, &seeded_ops.sample, Duration::from_secs(seconds.min(5)))?;
    drop(sqlite);

    let DpoServer { process: dpo, url: dpo_url, token } =
        DpoServer::start(&release, &state, &["--export-workers", "0"])?;
    let (ceiling, ceiling_url) = start_listening(Command::new(release.join("dropshot-ceiling")))?;
    let post = root.join("target/bench-post.lua");
    post_script(&post)?;
    let random = root.join("target/bench-random-get.lua");
    random_get_script(&random, &seeded_ops.sample, &root.join("target/bench-ids.txt"))?;
    let get_url = format!("{dpo_url}/v1.0/dataPolicyOperations/{}", seeded_ops.probe);
    let ceiling_get = format!("{ceiling_url}/dataPolicyOperations/x");
    let list_url = format!("{dpo_url}/v1.0/dataPolicyOperations?$filter=userId%20eq%20'user42'&$top=20");
    let (mut dpo_gets, mut ceiling_gets) = (Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        println!("==> GET round {round} of {ROUNDS}");
        dpo_gets.push(wrk(&get_url, Some(&token), None, seconds)?);
        ceiling_gets.push(wrk(&ceiling_get, None, None, seconds)?);
    }
    drop(ceiling);
    let polled = median(dpo_gets);
    let ceiling = median(ceiling_gets);
    let creations_script = root.join("target/bench-requests.lua");
    request_script(&creations_script)?;
    let privacy_token = load::mint_token(&release, &state, "bench", Some(load::PRIVACY_SCOPE))?;
    let (mut random_gets, mut lists, mut submissions) = (Vec::new(), Vec::new(), Vec::new());
    let mut creations = Vec::new();
    for round in 1..=ROUNDS {
        println!("==> dpo round {round} of {ROUNDS}");
        let random_url = format!("{dpo_url}/v1.0/dataPolicyOperations/x");
        random_gets.push(wrk(&random_url, Some(&token), Some(&random), seconds)?);
        lists.push(wrk(&list_url, Some(&token), None, seconds)?);
        let export_url = format!("{dpo_url}/v1.0/users/user1/exportPersonalData");
        submissions.push(wrk(&export_url, Some(&token), Some(&post), seconds)?);
        let requests_url = format!("{dpo_url}/v1.0/security/subjectRightsRequests");
        creations.push(wrk(&requests_url, Some(&privacy_token), Some(&creations_script), seconds)?);
    }
    let creations = median(creations);
    let (random_get, list, submissions) = (median(random_gets), median(lists), median(submissions));
    drop(dpo);
    // The same polled GET with the connection limits off: what their watcher costs requests.
    let unguarded = {
        let DpoServer { process: _dpo, url, token } =
            DpoServer::start(&release, &state, &["--export-workers", "0", "--no-connection-guard"])?;
        let url = format!("{url}/v1.0/dataPolicyOperations/{}", seeded_ops.probe);
        let mut gets = Vec::new();
        for round in 1..=ROUNDS {
            println!("==> unguarded GET round {round} of {ROUNDS}");
            gets.push(wrk(&url, Some(&token), None, seconds)?);
        }
        median(gets)
    };
    // Prism runs alone: after a load it keeps a core busy for a while, which would weigh on other rows.
    let prism = {
        let document = root.join("openapi/dpo.json").to_string_lossy().into_owned();
        let args = ["mock", &document, "--host", "127.0.0.1", "--port", "{port}"];
        let prism = dpo_test_support::process::start_listening("Prism", &prism, &args, "npm installs it")?;
        wrk(&format!("http://127.0.0.1:{}/dataPolicyOperations/x", prism.port), Some(&token), None, seconds)?
    };
    let runs: Vec<(&str, Figures)> = vec![
        ("dpo: GET /dataPolicyOperations/{id} (one operation, polled)", polled),
        ("dpo --no-connection-guard: GET /dataPolicyOperations/{id} (polled)", unguarded),
        ("dropshot ceiling: constant GET", ceiling),
        ("dpo: GET /dataPolicyOperations/{id} (100,000 ids at random)", random_get),
        ("Prism mock: GET /dataPolicyOperations/{id}", prism),
        ("dpo: list with $filter (userId eq, top 20)", list),
        ("dpo: POST exportPersonalData (durable 202s)", submissions),
        ("dpo: POST subjectRightsRequests (durable 201s)", creations),
    ];
    let as_users_run_it = polled::measure(&release, &root.join("target/bench-polled"), seconds)?;
    let on_postgres = postgres::rows(&release, &root, operations, seconds, &post)?;
    let curve = scale::curve(&release, &root.join("target/bench-scale"), seconds)?;
    let store_section = store_ceiling.render(&runs);
    let export = export::throughput(&release, &root.join("target/bench-export"))?;
    let source = sources::rows(&release, &root.join("target/bench-sources"))?;
    let zip = attachment::section(&release, &root.join("target/bench-attachment"))?;
    let erased = erasure::section(&release, &root.join("target/bench-erasure"))?;
    let rps = |name: &str| runs.iter().find(|(n, _)| n.starts_with(name)).map_or(0.0, |(_, f)| f.requests_per_second);
    let missed = findings::render(&findings::Measured {
        ceiling: rps("dropshot ceiling"),
        polled: rps("dpo: GET /dataPolicyOperations/{id} (one"),
        unguarded: rps("dpo --no-connection-guard"),
        random: rps("dpo: GET /dataPolicyOperations/{id} (100"),
        store_reads: store_ceiling.reads_per_second,
        store_inserts: store_ceiling.inserts_per_second,
        submissions: rps("dpo: POST exportPersonalData"),
        request_creations: rps("dpo: POST subjectRightsRequests"),
        curve_rss_mib: scale::largest_rss_mib(&curve),
        cores: std::thread::available_parallelism().map_or(1.0, |n| n.get() as f64),
    });
    let report = render(&runs, operations, seconds)
        + &as_users_run_it.render()
        + &store_section
        + &scale::render(&curve, Some(ceiling.requests_per_second))
        + &postgres::render(&on_postgres, &runs)
        + &export
        + &zip
        + &erased
        + &source.section
        + &missed;
    std::fs::write(root.join("BENCHMARKS.md"), &report)?;
    println!("{report}");
    memory_kept(&source)
}

/// The store's own calls, one thread, no HTTP: the ceiling of the store rows.
struct StoreCeiling {
    reads_per_second: f64,
    inserts_per_second: f64,
}

/// Point reads of `sample` ids (`Operations::get`) and durable single-row inserts
/// (`Operations::insert`: one commit each, WAL, `synchronous=FULL`), each for `span`.
fn store_ceiling(store: &SqliteStore, sample: &[String], span: Duration) -> anyhow::Result<StoreCeiling> {
    use dpo_server::store::Operations;
    let ids: Vec<uuid::Uuid> = sample.iter().filter_map(|id| uuid::Uuid::parse_str(id).ok()).collect();
    let started = Instant::now();
    let mut reads = 0u64;
    while started.elapsed() < span {
        let id = ids[(reads as usize).wrapping_mul(7919) % ids.len().max(1)];
        store.get(id)?.context("a seeded operation")?;
        reads += 1;
    }
    let reads_per_second = reads as f64 / started.elapsed().as_secs_f64();
    let template = store.get(ids[0])?.context("a seeded operation")?;
    let started = Instant::now();
    let mut inserts = 0u64;
    while started.elapsed() < span {
        store.insert(&OperationRecord { id: uuid::Uuid::now_v7(), ..template.clone() })?;
        inserts += 1;
    }
    Ok(StoreCeiling { reads_per_second, inserts_per_second: inserts as f64 / started.elapsed().as_secs_f64() })
}

impl StoreCeiling {
    fn render(&self, runs: &[(&str, Figures)]) -> String {
        let rps = |name: &str| {
            runs.iter().find(|(n, _)| n.starts_with(name)).map(|(_, f)| f.requests_per_second).unwrap_or(0.0)
        };
        let (random, submissions) =
            (rps("dpo: GET /dataPolicyOperations/{id} (100"), rps("dpo: POST exportPersonalData"));
        format!(
            "\n## The store alone\n\nThe same SQLite file, through the store's own calls on one thread, without \
             HTTP, measured in the same run before the server started: the ceiling of the store rows above.\n\n\
             | what | per second | dpo's row |\n|---|---:|---:|\n\
             | point reads (`Operations::get` of the 100,000 ids at random) | {:.0} | {:.0}% |\n\
             | durable single-row inserts (`Operations::insert`, one after the other, each committed) | {:.0} | {:.0}% |\n\
             \nThe submissions row can pass the insert ceiling: concurrent submissions share one commit (group \
             commit), which a loop of one writer cannot. Target: durable submissions ≥ 5,000/s: {submissions:.0}/s.\n",
            self.reads_per_second,
            100.0 * random / self.reads_per_second.max(1.0),
            self.inserts_per_second,
            100.0 * submissions / self.inserts_per_second.max(1.0),
        )
    }
}

/// The memory bound is a hard one: the bench fails when a source's streaming exceeded it.
fn memory_kept(measured: &sources::Measured) -> anyhow::Result<()> {
    if !measured.within_memory {
        bail!("the server exceeded {} MiB while streaming a data source", sources::RSS_BOUND_MIB);
    }
    Ok(())
}

fn render(runs: &[(&str, Figures)], operations: u64, seconds: u64) -> String {
    let rps =
        |name: &str| runs.iter().find(|(n, _)| n.starts_with(name)).map(|(_, f)| f.requests_per_second).unwrap_or(0.0);
    let mut out = String::from("# Benchmarks\n\n");
    out.push_str(&format!(
        "Measured by `cargo xtask bench --operations {operations} --seconds {seconds}` on {} ({} cores), {}.\n\
         Load: wrk, 2 threads, 32 connections, {seconds} s per row, over loopback, on the same machine as the \
         servers (they share its cores). dpo is the release build over SQLite holding {operations} operations, \
         started as users run it (logging at info, to a file: `--log-file`; connection limits on) with \
         `--export-workers 0` (these rows run no export); the second row adds `--no-connection-guard`. \
         Every dpo row and the ceiling are measured {ROUNDS} times (the first two rows \
         alternating) and show the median round by requests/s; Prism runs once, alone. \"One operation, polled\" is \
         what a client waiting for its export does: after the first read dpo answers it from its memory of \
         recently read operations; \"at random\" reads mostly operations it has not read yet, from SQLite.\n\n",
        std::env::consts::ARCH,
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        chrono::Utc::now().format("%Y-%m-%d"),
    ));
    out.push_str("| what | requests/s | p50 | p99 | non-2xx |\n|---|---:|---:|---:|---:|\n");
    for (name, f) in runs {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} |\n",
            f.requests_per_second, f.p50_ms, f.p99_ms, f.non_2xx
        ));
    }
    let (polled, random) =
        (rps("dpo: GET /dataPolicyOperations/{id} (one"), rps("dpo: GET /dataPolicyOperations/{id} (100"));
    let (ceiling, prism) = (rps("dropshot ceiling").max(1.0), rps("Prism").max(1.0));
    out.push_str(&format!(
        "\nRatios (targets: ≥ 70% of the bare dropshot ceiling, ≥ 20× Prism): dpo GET of a polled operation is \
         {:.0}% of the ceiling and {:.1}× Prism; of operations at random {:.0}% and {:.1}×.\n",
        100.0 * polled / ceiling,
        polled / prism,
        100.0 * random / ceiling,
        random / prism,
    ));
    let unguarded = rps("dpo --no-connection-guard").max(1.0);
    out.push_str(&format!(
        "With the connection limits off (`--no-connection-guard`) the polled GET is {:.0}% of the ceiling, and with \
         them on {:.0}% of that: the watcher that enforces them looks at the sockets from a thread of its own, \
         a few times per timeout, never on a request's path.\n",
        100.0 * unguarded / ceiling,
        100.0 * polled / unguarded,
    ));
    out
}
