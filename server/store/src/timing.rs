//! The store's query latency, as the metric `dpo_store_query_duration_seconds{store, statement}`:
//! SQLite reports each statement's run time itself (its profile trace), PostgreSQL's is timed around the
//! round trip.

use std::time::{Duration, Instant};

/// Records one statement of `store` (`sqlite` or `postgres`) that took `took`.
pub fn record(store: &'static str, sql: &str, took: Duration) {
    metrics::histogram!(dpo_domain::metric_names::STORE_QUERY_SECONDS, "store" => store, "statement" => kind(sql))
        .record(took.as_secs_f64());
}

/// The statement's kind, a label of few values: its first keyword.
fn kind(sql: &str) -> &'static str {
    let first = sql.trim_start().split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
    match first.to_ascii_uppercase().as_str() {
        "SELECT" | "WITH" => "select",
        "INSERT" => "insert",
        "UPDATE" => "update",
        "DELETE" => "delete",
        "BEGIN" | "COMMIT" | "ROLLBACK" => "transaction",
        _ => "other",
    }
}

/// The SQLite trace callback: every statement's run time, as SQLite measured it.
pub fn sqlite_profile(event: rusqlite::trace::TraceEvent<'_>) {
    if let rusqlite::trace::TraceEvent::Profile(statement, took) = event {
        record("sqlite", &statement.sql(), took);
    }
}

/// Times `query` as one PostgreSQL statement `sql`.
pub async fn postgres<T>(sql: &str, query: impl std::future::Future<Output = T>) -> T {
    let started = Instant::now();
    let outcome = query.await;
    record("postgres", sql, started.elapsed());
    outcome
}

#[cfg(test)]
mod tests {
    #[test]
    fn statements_are_told_apart_by_their_first_keyword() {
        assert_eq!(super::kind("  SELECT \"id\" FROM x"), "select");
        assert_eq!(super::kind("with q as (select 1) select * from q"), "select");
        assert_eq!(super::kind("INSERT INTO x"), "insert");
        assert_eq!(super::kind("update x set"), "update");
        assert_eq!(super::kind("DELETE FROM x"), "delete");
        assert_eq!(super::kind("COMMIT"), "transaction");
        assert_eq!(super::kind("PRAGMA wal_checkpoint"), "other");
        assert_eq!(super::kind(""), "other");
    }
}
