//! Erasure at scale: one customer's 100,000 rows across three PostgreSQL tables erased through a `delete`
//! subject rights request (from the second administrator's approval to `contentDeletion` completed: each
//! statement in its own transaction, each recorded, then the verification), next to `psql` running the
//! same three statements, each in its own transaction, in the same run (the ceiling). The person's rows
//! are put back between runs, outside the timings; the two sides alternate. With `DPO_BENCH_TRACE` set it
//! prints each run's history and the server's erase log lines, to see where the time goes.

use super::{
    export::get_json,
    load::{DpoServer, PRIVACY_SCOPE, mint_token},
};
use anyhow::{Context, bail};
use dpo_server::auth::LOCAL_TENANT;
use dpo_test_support::postgres_cluster::{Cluster, bin_dir, count, create_database, execute};
use std::{
    path::Path,
    process::Command,
    time::{Duration, Instant},
};

/// The person's rows, in all three tables.
const ROWS: u64 = 100_000;
/// The person.
const PERSON: &str = "heavy@shop.example";
/// Runs of each side, alternating; the best of each is reported.
const RUNS: usize = 5;
/// The tables, each holding a third of the person's rows and as many of others.
const TABLES: [&str; 3] = ["orders", "reviews", "messages"];

/// Measures and returns the Markdown section.
pub fn section(release: &Path, dir: &Path) -> anyhow::Result<String> {
    println!("==> erasure: {ROWS} rows of one person across {} PostgreSQL tables", TABLES.len());
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir)?;
    let cluster = Cluster::start(true).map_err(|e| anyhow::anyhow!("starting PostgreSQL: {e}"))?;
    let database = create_database(&cluster.url).map_err(|e| anyhow::anyhow!("{e}"))?;
    let per_table = ROWS / TABLES.len() as u64;
    let mut setup = String::new();
    for (i, table) in TABLES.iter().enumerate() {
        // The first table takes the remainder, so that the three hold exactly ROWS of the person.
        let mine = if i == 0 { ROWS - per_table * (TABLES.len() as u64 - 1) } else { per_table };
        setup.push_str(&format!(
            "CREATE TABLE {table} (id BIGINT PRIMARY KEY, email TEXT NOT NULL, body TEXT, at TIMESTAMPTZ);
             CREATE TABLE {table}_kept AS SELECT g AS id, '{PERSON}'::text AS email, 'the person''s ' || g AS body,
               timestamptz '2025-01-01' + g * interval '1 minute' AS at FROM generate_series(1, {mine}) g;
             INSERT INTO {table} SELECT * FROM {table}_kept;
             INSERT INTO {table} SELECT g, 'other' || (g % 1000) || '@shop.example', 'another''s ' || g,
               timestamptz '2025-01-01' FROM generate_series({mine} + 1, {mine} + {per_table}) g;
             CREATE INDEX {table}_by_email ON {table} (email);
             ANALYZE {table};\n"
        ));
    }
    execute(&database, &setup).map_err(|e| anyhow::anyhow!("{e}"))?;
    let restore = || -> anyhow::Result<()> {
        let mut again = String::new();
        for table in TABLES {
            again.push_str(&format!(
                "DELETE FROM {table} WHERE email = '{PERSON}'; INSERT INTO {table} SELECT * FROM {table}_kept;"
            ));
        }
        execute(&database, &again).map_err(|e| anyhow::anyhow!("{e}"))?;
        // One at a time: VACUUM runs in no transaction, and statements sent together share one.
        for table in TABLES {
            execute(&database, &format!("VACUUM ANALYZE {table}")).map_err(|e| anyhow::anyhow!("{e}"))?;
        }
        Ok(())
    };
    let left = || -> anyhow::Result<i64> {
        let counted: Vec<String> =
            TABLES.iter().map(|t| format!("(SELECT count(*) FROM {t} WHERE email = '{PERSON}')")).collect();
        count(&database, &format!("SELECT {}", counted.join(" + "))).map_err(|e| anyhow::anyhow!("{e}"))
    };

    let state = dir.join("state");
    std::fs::create_dir_all(&state)?;
    let sources = dir.join("sources.toml");
    let mut file =
        format!("[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"{database}\"\nerase_url = \"{database}\"\n");
    for table in TABLES {
        file.push_str(&format!(
            "[[source.query]]\nname = \"{table}\"\nsql = \"SELECT id, body, at FROM {table} WHERE email = :mail\"\n\
             [[source.erase]]\nname = \"{table}\"\nsql = \"DELETE FROM {table} WHERE email = :mail\"\nmax_rows = {ROWS}\n"
        ));
    }
    std::fs::write(&sources, file)?;
    let server = DpoServer::start(release, &state, &["--retry-after", "1", "--sources", &sources.to_string_lossy()])?;
    let token = |user: &str| mint_token(release, &state, user, Some(PRIVACY_SCOPE));
    let (creator, approver) = (token("privacy-admin")?, token("dpo-officer")?);
    let psql = bin_dir().map(|d| d.join("psql")).unwrap_or_else(|_| "psql".into());

    let (mut best_psql, mut best_dpo, mut best_estimate) = (Duration::MAX, Duration::MAX, Duration::MAX);
    let mut best_steps = Duration::MAX;
    for run in 1..=RUNS {
        println!("    run {run} of {RUNS}");
        restore()?;
        let mut psql_run = Command::new(&psql);
        psql_run.arg(&database).arg("-q");
        for table in TABLES {
            psql_run.arg("-c").arg(format!("DELETE FROM {table} WHERE email = '{PERSON}'"));
        }
        let started = Instant::now();
        let out = psql_run.output().context("running psql")?;
        best_psql = best_psql.min(started.elapsed());
        if !out.status.success() {
            bail!("psql failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        if left()? != 0 {
            bail!("psql left rows of the person");
        }

        restore()?;
        let (estimate, erased, steps) = erase_through_dpo(&server, &state, &creator, &approver)?;
        best_estimate = best_estimate.min(estimate);
        best_dpo = best_dpo.min(erased);
        best_steps = best_steps.min(steps);
        if left()? != 0 {
            bail!("dpo left rows of the person");
        }
    }
    drop(server);
    drop(cluster);
    if std::env::var("DPO_BENCH_TRACE").is_ok() {
        let log = std::fs::read_to_string(state.join("dpo-bench.log")).unwrap_or_default();
        for line in log.lines().filter(|l| l.contains("erase") || l.contains("export ")).rev().take(12) {
            println!("      {line}");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    let per_second = |d: Duration| ROWS as f64 / d.as_secs_f64();
    let (dpo, ceiling, steps) = (per_second(best_dpo), per_second(best_psql), per_second(best_steps));
    Ok(format!(
        "\n## Erasure through a PostgreSQL source (`cargo xtask bench --erasure-only`)\n\n\
         One customer's {ROWS} rows across {} tables (each with as many rows of other people, an index on the \
         email) in a PostgreSQL 15 cluster on this machine, erased by a `delete` subject rights request: from the \
         second administrator's `approve` to the last step recorded (each `DELETE` in its own transaction, \
         recorded before it commits and after), and to `contentDeletion` completed (then the verification \
         re-running the source's queries), next to \
         `psql` running the same three `DELETE`s, each in its own transaction, in the same run (the ceiling; \
         target: ≥ 80% of its rows/s). The person's rows are put back (and the tables vacuumed) before each run; \
         the sides alternate, {RUNS} runs each, the best of each shown.\n\n\
         | what | rows/s | of psql's |\n|---|---:|---:|\n\
         | dpo: approve → the last step's commit recorded (the statements, as psql runs them) | {steps:.0} | {:.0}% |\n\
         | dpo: approve → contentDeletion completed (with the verification) | {dpo:.0} | {:.0}% |\n\
         | psql: the three DELETEs | {ceiling:.0} | |\n\
         \nThe first dpo row is timed by the server's own clock (the approval in the request's history, the last \
         step's record in its erasure log); the second by the client, polling every 2 ms. The estimate before it \
         (each statement run and rolled back, the kept rows counted) took {:.2} s.\n",
        TABLES.len(),
        100.0 * steps / ceiling,
        100.0 * dpo / ceiling,
        best_estimate.as_secs_f64(),
    ))
}

/// Creates the person's erasure, waits for its estimate (timed), approves it as another administrator and
/// waits for `contentDeletion` to complete (timed); with the time from the approval to the last step's
/// record, by the server's clock (the request's history and its erasure log in the store of `state`).
fn erase_through_dpo(
    server: &DpoServer,
    state: &Path,
    creator: &str,
    approver: &str,
) -> anyhow::Result<(Duration, Duration, Duration)> {
    let body = serde_json::json!({
        "dataSubject": {"email": PERSON}, "dataSubjectType": "customer", "displayName": "bench",
        "description": "erase", "regulations": ["GDPR"], "type": "delete"
    });
    let started = Instant::now();
    let created = post(&format!("{}/v1.0/security/subjectRightsRequests", server.url), creator, &body)?;
    let id = created["id"].as_str().context("the request's id")?.to_string();
    let url = format!("{}/v1.0/security/subjectRightsRequests/{id}", server.url);
    wait_for(&url, creator, "approval", "current")?;
    let estimate = started.elapsed();
    let started = Instant::now();
    post(&format!("{url}/approve"), approver, &serde_json::json!({}))?;
    wait_for(&url, creator, "contentDeletion", "completed")?;
    let elapsed = started.elapsed();
    let request = get_json(&url, creator)?;
    if std::env::var("DPO_BENCH_TRACE").is_ok() {
        for h in request["history"].as_array().into_iter().flatten() {
            println!("      {} {} {}", h["eventDateTime"], h["stage"], h["type"]);
        }
    }
    let approved = request["history"]
        .as_array()
        .into_iter()
        .flatten()
        .find(|h| h["type"] == "approved")
        .and_then(|h| h["eventDateTime"].as_str())
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .context("the approval in the history")?;
    let store = dpo_server::store::sqlite::SqliteStore::open(state)?;
    let stored = dpo_server::store::requests::SubjectRightsRequests::get_request(
        &store,
        LOCAL_TENANT,
        uuid::Uuid::parse_str(&id)?,
    )?
    .context("the request in the store")?;
    let last = stored
        .erasure
        .iter()
        .flat_map(|log| &log.steps)
        .filter_map(|step| step.done.as_ref().map(|d| d.at))
        .max()
        .context("the steps' records")?;
    let steps = (last - approved.with_timezone(&chrono::Utc)).to_std().unwrap_or_default();
    Ok((estimate, elapsed, steps))
}

/// POSTs `body` as JSON with `token`; the answer as JSON, failing on anything but 2xx.
fn post(url: &str, token: &str, body: &serde_json::Value) -> anyhow::Result<serde_json::Value> {
    let out = Command::new("curl")
        .args(["-s", "-f", "-X", "POST", "-H", "content-type: application/json", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg("-d")
        .arg(body.to_string())
        .arg(url)
        .output()?;
    if !out.status.success() {
        bail!("POST {url} failed: {}", String::from_utf8_lossy(&out.stdout));
    }
    Ok(serde_json::from_slice(&out.stdout).unwrap_or_default())
}

/// Polls the request at `url` until `stage` has `status`; fails when a stage fails.
fn wait_for(url: &str, token: &str, stage: &str, status: &str) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let request = get_json(url, token)?;
        let stages = request["stages"].as_array().cloned().unwrap_or_default();
        if let Some(failed) = stages.iter().find(|s| s["status"] == "failed") {
            bail!("stage {} failed: {}", failed["stage"], failed["error"]["message"]);
        }
        if stages.iter().any(|s| s["stage"] == stage && s["status"] == status) {
            return Ok(());
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the request did not reach {stage} {status} in 10 minutes");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}
