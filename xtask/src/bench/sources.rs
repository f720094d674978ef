//! A configured data source at scale: one person's 1,000,000 PostgreSQL rows (a few columns of mixed
//! types) exported through the API into `<source>/<query>.jsonl`, next to `psql`'s `\copy` of the same
//! query into a file in the same run (the ceiling), and the server's peak RSS while it streams them.

use super::load::{DpoServer, peak_rss_mib};
use anyhow::{Context, bail};
use dpo_client::manifest::Manifest;
use dpo_server::{
    auth::LOCAL_TENANT,
    store::{Directory, UserRecord, sqlite::SqliteStore},
};
use dpo_test_support::postgres_cluster::{Cluster, bin_dir, create_database, execute};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// Rows of the person exported.
const ROWS: u64 = 1_000_000;
/// The query, with the person as a parameter (dpo) or a literal (psql).
const QUERY: &str = "SELECT id, placed, item, amount, paid, details FROM purchases WHERE customer = {who} ORDER BY id";

/// Runs of each side; the best of each is reported (this 2-core machine's runs vary by ±30%).
const RUNS: usize = 3;

/// The server's memory bound while it streams a source.
pub const RSS_BOUND_MIB: f64 = 100.0;

/// What the data source row measured.
pub struct Measured {
    /// The Markdown section.
    pub section: String,
    /// Whether the server stayed under [`RSS_BOUND_MIB`].
    pub within_memory: bool,
}

/// Measures and returns the Markdown section.
pub fn rows(release: &Path, dir: &Path) -> anyhow::Result<Measured> {
    println!("==> a PostgreSQL source: {ROWS} rows of one person");
    let _ = std::fs::remove_dir_all(dir);
    let cluster = Cluster::start(true).map_err(|e| anyhow::anyhow!("starting PostgreSQL: {e}"))?;
    let database = create_database(&cluster.url).map_err(|e| anyhow::anyhow!("{e}"))?;
    execute(
        &database,
        &format!(
            "CREATE TABLE purchases (id BIGINT PRIMARY KEY, customer TEXT NOT NULL, placed TIMESTAMPTZ NOT NULL, item \
             TEXT NOT NULL, amount NUMERIC(10, 2) NOT NULL, paid BOOLEAN NOT NULL, details JSONB);
             INSERT INTO purchases SELECT g, CASE WHEN g <= {ROWS} THEN 'heavy' ELSE 'other' || (g % 100) END,
               timestamptz '2025-01-01 00:00:00+00' + g * interval '1 minute', 'item number ' || (g % 977),
               (g % 100000) / 100.0, g % 3 = 0, jsonb_build_object('channel', 'web', 'basket', g % 7)
             FROM generate_series(1, {ROWS} + 100000) g;
             CREATE INDEX purchases_customer ON purchases (customer, id);
             ANALYZE purchases;"
        ),
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;

    // The ceiling: psql writing the same rows to a file, as an operator would by hand.
    let copied = dir.join("copy.csv");
    std::fs::create_dir_all(dir)?;
    let psql = bin_dir().map(|d| d.join("psql")).unwrap_or_else(|_| "psql".into());
    let mut psql_elapsed = Duration::MAX;
    for _ in 0..RUNS {
        let started = Instant::now();
        let copy = Command::new(&psql)
            .arg(&database)
            .arg("-c")
            .arg(format!("\\copy ({}) to '{}'", QUERY.replace("{who}", "'heavy'"), copied.display()))
            .output()
            .context("running psql")?;
        psql_elapsed = psql_elapsed.min(started.elapsed());
        if !copy.status.success() {
            bail!("psql \\copy failed: {}", String::from_utf8_lossy(&copy.stderr));
        }
        std::fs::remove_file(&copied)?;
    }

    let state = dir.join("state");
    let store = SqliteStore::open(&state)?;
    let user = UserRecord {
        id: "heavy".into(),
        user_principal_name: "heavy@contoso.example".into(),
        display_name: None,
        mail: None,
        attributes: Default::default(),
    };
    store.upsert_users(LOCAL_TENANT, &[user])?;
    drop(store);
    let sources = dir.join("sources.toml");
    std::fs::write(
        &sources,
        format!(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\n[[source.query]]\nname = \
             \"purchases\"\nsql = \"{}\"\n",
            QUERY.replace("{who}", ":id")
        ),
    )?;
    let server = DpoServer::start(release, &state, &["--retry-after", "1", "--sources", &sources.to_string_lossy()])?;
    let destination = dpo_server::config::absolute(&state.join("exports/heavy"));
    let (mut elapsed, mut size) = (Duration::MAX, 0);
    for _ in 0..RUNS {
        elapsed = elapsed.min(server.export("heavy", &format!("file://{}/", destination.display()))?);
        // The manifest must count every row, exactly.
        let folder = std::fs::read_dir(&destination)?.flatten().next().context("the export's folder")?.path();
        let manifest = Manifest::parse(&std::fs::read(folder.join("manifest.json"))?)?;
        let listed = manifest.objects.iter().find(|o| o.path == "shop/purchases.jsonl").context("the rows' file")?;
        if listed.rows != Some(ROWS) {
            bail!("the manifest counts {:?} rows, the database {ROWS}", listed.rows);
        }
        size = listed.size;
        std::fs::remove_dir_all(&destination)?;
    }
    let rss = peak_rss_mib(server.process.0.id());
    drop(server);
    drop(cluster);
    let _ = std::fs::remove_dir_all(dir);
    let per_second = |d: Duration| ROWS as f64 / d.as_secs_f64();
    let (dpo, ceiling) = (per_second(elapsed), per_second(psql_elapsed));
    let section = format!(
        "\n## A PostgreSQL data source\n\nOne person's {ROWS} rows (id, timestamptz, text, numeric, boolean, jsonb) in \
         a PostgreSQL 15 cluster on this machine, exported through the API by a `sql` source into \
         `shop/purchases.jsonl` ({:.0} MB; submission to `complete`, with the profile, the manifest and the \
         SHA-256 of every object), next to `psql -c \"\\copy (same query) to file\"` in the same run (the ceiling; \
         target: ≥ 70% of its rows/s). Each side ran {RUNS} times; the best run of each is shown.\n\n\
         | what | rows/s | of psql's |\n|---|---:|---:|\n\
         | dpo: export of a sql source to a local folder | {dpo:.0} | {:.0}% |\n\
         | psql `\\copy` to a file (text format) | {ceiling:.0} | |\n\
         \nPeak RSS of the server while it streamed the rows: {rss:.1} MiB (bound: 100 MiB{}). The manifest \
         counts {ROWS} rows, as `count(*)` does.\n",
        size as f64 / 1e6,
        100.0 * dpo / ceiling,
        if rss < RSS_BOUND_MIB { ", kept" } else { ", EXCEEDED" },
    );
    Ok(Measured { section, within_memory: rss < RSS_BOUND_MIB })
}
