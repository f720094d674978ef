//! The operator's tools over a sources file: `sources check` (can every query run?) and `sources preview`
//! (what would an export of this person hold?), both writing nothing anywhere.

use super::{Identities, SourceError, SourceKind, Sources, encode::Encoder, sql};

/// What checking one query found.
#[derive(Debug)]
pub struct Checked {
    /// `<source>/<query>`.
    pub query: String,
    /// Its column names, or why it cannot run.
    pub outcome: Result<Vec<String>, SourceError>,
}

/// Connects to every source and prepares every query (without running it).
pub async fn check(sources: &Sources) -> Vec<Checked> {
    let mut checked = Vec::new();
    for source in &sources.sources {
        let SourceKind::Sql(sql_source) = &source.kind;
        for query in &sql_source.queries {
            let outcome = sql::describe(&sql_source.database, &query.sql).await;
            checked.push(Checked { query: format!("{}/{}", source.name, query.name), outcome });
        }
    }
    checked
}

/// What one query would write for a person.
#[derive(Debug)]
pub struct Previewed {
    /// The file it would write, `<source>/<query>.<format>`.
    pub path: String,
    /// Its rows and bytes, or why it failed.
    pub outcome: Result<(u64, u64), SourceError>,
}

/// Runs every query for the person `who`, counting the rows and bytes each would write; keeps nothing.
pub async fn preview(sources: &Sources, who: &Identities) -> Vec<Previewed> {
    let mut previewed = Vec::new();
    for source in &sources.sources {
        let SourceKind::Sql(sql_source) = &source.kind;
        for query in &sql_source.queries {
            let outcome = async {
                let mut rows = sql::run(&sql_source.database, &query.sql, who).await?;
                let mut encoder = Encoder::new(query.format, rows.columns.clone());
                let (mut count, mut bytes) = (0u64, encoder.header()?.len() as u64);
                while let Some(batch) = rows.next().await {
                    let batch = batch?;
                    count += batch.len() as u64;
                    bytes += encoder.rows(&batch)?.len() as u64;
                }
                Ok((count, bytes))
            }
            .await;
            let path = format!("{}/{}.{}", source.name, query.name, query.format.extension());
            previewed.push(Previewed { path, outcome });
        }
    }
    previewed
}
