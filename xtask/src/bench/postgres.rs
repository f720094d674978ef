//! The PostgreSQL rows of `cargo xtask bench`: the same operations in a throwaway PostgreSQL cluster
//! (fsync on: submissions are as durable as SQLite's), one replica and then two over it.

use super::{
    ROUNDS,
    load::{DpoServer, Figures, median, wrk},
    random_get_script, seed,
};
use dpo_server::store::postgres::PostgresStore;
use dpo_test_support::postgres_cluster::{Cluster, create_database};
use std::{path::Path, time::Instant};

/// What the PostgreSQL rows measured.
pub struct Rows {
    random_get: Figures,
    list: Figures,
    submissions: Figures,
    /// Two replicas over the one database, each under its own load: their sum.
    two_replicas: Figures,
}

/// Seeds `operations` operations into a fresh cluster and measures GET at random, the list and
/// submissions with one replica, then submissions with two.
pub fn rows(release: &Path, root: &Path, operations: u64, seconds: u64, post: &Path) -> anyhow::Result<Rows> {
    println!("==> PostgreSQL: a cluster, seeding {operations} operations");
    let cluster = Cluster::start(true).map_err(|e| anyhow::anyhow!("starting PostgreSQL: {e}"))?;
    let database = create_database(&cluster.url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let seeded = Instant::now();
    let store = PostgresStore::open(&database, 4)?;
    let seeded_ops = seed(&store, |records| store.insert_many(records), operations)?;
    drop(store);
    // As after any bulk load: fresh planner statistics (autovacuum would take them a minute later).
    dpo_test_support::postgres_cluster::execute(&database, "ANALYZE").map_err(|e| anyhow::anyhow!("{e}"))?;
    println!("    seeded in {:.1} s", seeded.elapsed().as_secs_f64());
    let state = root.join("target/bench-state-postgres");
    let _ = std::fs::remove_dir_all(&state);
    let random = root.join("target/bench-random-get-postgres.lua");
    random_get_script(&random, &seeded_ops.sample, &root.join("target/bench-ids-postgres.txt"))?;
    let args = ["--export-workers", "0", "--database", &database];
    let first = DpoServer::start(release, &state, &args)?;
    let token = first.token.clone();
    let (mut random_gets, mut lists, mut submissions) = (Vec::new(), Vec::new(), Vec::new());
    for round in 1..=ROUNDS {
        println!("==> PostgreSQL round {round} of {ROUNDS}");
        random_gets.push(wrk(
            &format!("{}/v1.0/dataPolicyOperations/x", first.url),
            Some(&token),
            Some(&random),
            seconds,
        )?);
        let list = format!("{}/v1.0/dataPolicyOperations?$filter=userId%20eq%20'user42'&$top=20", first.url);
        lists.push(wrk(&list, Some(&token), None, seconds)?);
        let export = format!("{}/v1.0/users/user1/exportPersonalData", first.url);
        submissions.push(wrk(&export, Some(&token), Some(post), seconds)?);
    }
    let second = DpoServer::start(release, &state, &args)?;
    let mut pairs = Vec::new();
    for round in 1..=ROUNDS {
        println!("==> PostgreSQL, two replicas, round {round} of {ROUNDS}");
        let both = std::thread::scope(|s| {
            let load = |url: &str| {
                let export = format!("{url}/v1.0/users/user1/exportPersonalData");
                let token = token.clone();
                s.spawn(move || wrk(&export, Some(&token), Some(post), seconds))
            };
            let (a, b) = (load(&first.url), load(&second.url));
            (a.join(), b.join())
        });
        let (Ok(a), Ok(b)) = both else { anyhow::bail!("a wrk thread panicked") };
        let (a, b) = (a?, b?);
        pairs.push(Figures {
            requests_per_second: a.requests_per_second + b.requests_per_second,
            p50_ms: a.p50_ms.max(b.p50_ms),
            p99_ms: a.p99_ms.max(b.p99_ms),
            non_2xx: a.non_2xx + b.non_2xx,
        });
    }
    drop((first, second, cluster));
    Ok(Rows {
        random_get: median(random_gets),
        list: median(lists),
        submissions: median(submissions),
        two_replicas: median(pairs),
    })
}

/// The PostgreSQL section of BENCHMARKS.md, with its targets against the SQLite rows of the same run.
pub fn render(rows: &Rows, sqlite: &[(&str, Figures)]) -> String {
    let sqlite_random =
        sqlite.iter().find(|(name, _)| name.contains("at random")).map(|(_, f)| f.requests_per_second.max(1.0));
    let random_ratio = match sqlite_random {
        Some(sqlite) => format!("{:.0}%", 100.0 * rows.random_get.requests_per_second / sqlite),
        None => "not measured (no SQLite rows in this run)".to_string(),
    };
    let mut out = String::from(
        "\n## PostgreSQL\n\nThe same operations in a PostgreSQL 15 cluster on this machine (fsync on), served by the \
         same release build with `--database`; the two-replica row runs a second server over the same database and \
         loads both at once (wrk each, 32 connections each; requests/s summed, latencies the worse of the two). \
         Over PostgreSQL nothing is remembered between requests, so every GET reads the database.\n\n\
         | what | requests/s | p50 | p99 | non-2xx |\n|---|---:|---:|---:|---:|\n",
    );
    for (name, f) in [
        ("PostgreSQL: GET /dataPolicyOperations/{id} (100,000 ids at random)", rows.random_get),
        ("PostgreSQL: list with $filter (userId eq, top 20)", rows.list),
        ("PostgreSQL: POST exportPersonalData (durable 202s), one replica", rows.submissions),
        ("PostgreSQL: POST exportPersonalData (durable 202s), two replicas", rows.two_replicas),
    ] {
        out.push_str(&format!(
            "| {name} | {:.0} | {:.2} ms | {:.2} ms | {} |\n",
            f.requests_per_second, f.p50_ms, f.p99_ms, f.non_2xx
        ));
    }
    out.push_str(&format!(
        "\nTargets: GET at random ≥ 50% of SQLite's: {random_ratio}; submissions ≥ 2,000/s: {:.0}/s with one replica, {:.0}/s \
         with two; list p99 < 25 ms: {:.1} ms.\n",
        rows.submissions.requests_per_second,
        rows.two_replicas.requests_per_second,
        rows.list.p99_ms,
    ));
    out
}
