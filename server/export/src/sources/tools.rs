//! The operator's tools over a sources file: `sources check` (can every source be read?) and `sources
//! preview` (what would an export of this person hold?), both writing nothing anywhere.

use super::{
    Identities, Pieces, SourceError, SourceKind, Sources,
    erase::Erasure,
    erase_sql,
    file::Source,
    http::HttpRecords,
    sql::{self, EncodedRows},
};
use crate::drives;

/// What checking one query (or one objects source) found.
#[derive(Debug)]
pub struct Checked {
    /// `<source>/<query>`, or `<source>` for an objects source.
    pub query: String,
    /// Its column names (nothing for objects, the status for an HTTP source), or why it cannot be read.
    pub outcome: Result<Vec<String>, SourceError>,
}

/// Connects to every source: prepares every query (without running it) and reads the fixed part of every
/// objects source's prefix (one listing request, never the whole store).
pub async fn check(sources: &Sources) -> Vec<Checked> {
    let mut checked = Vec::new();
    for source in &sources.sources {
        match &source.kind {
            SourceKind::Sql(sql_source) => {
                for query in &sql_source.queries {
                    let outcome = sql::describe(&sql_source.database, &query.sql).await;
                    checked.push(Checked { query: format!("{}/{}", source.name, query.name), outcome });
                }
                for kept in &source.retained {
                    let outcome = sql::describe(&sql_source.database, &kept.sql).await;
                    checked.push(Checked { query: format!("{}/retain:{}", source.name, kept.name), outcome });
                }
                if let Some(Erasure::Sql { database, statements }) = &source.erasure {
                    for statement in statements {
                        // Prepared on the writing connection inside a transaction that is rolled back.
                        let outcome =
                            erase_sql::rolled_back(database, &statement.sql, None, erase_sql::ESTIMATE_TIMEOUT)
                                .await
                                .map(|_| Vec::new());
                        checked.push(Checked { query: format!("{}/erase:{}", source.name, statement.name), outcome });
                    }
                }
            }
            SourceKind::Objects(objects) => {
                let literal: Vec<String> = objects.segments.iter().take_while(|s| !s.contains('{')).cloned().collect();
                let outcome = async {
                    let store = drives::open(&objects.store).map_err(|e| SourceError::Objects(e.into()))?;
                    store.probe(&literal).await.map_err(|e| SourceError::Objects(e.into()))?;
                    Ok(Vec::new())
                }
                .await;
                checked.push(Checked { query: source.name.clone(), outcome });
            }
            SourceKind::Http(http) => {
                let outcome = http.probe().await.map(|status| vec![format!("answered {status}")]);
                checked.push(Checked { query: source.name.clone(), outcome });
            }
        }
    }
    checked
}

/// What one query (or objects source) would write for a person.
#[derive(Debug)]
pub struct Previewed {
    /// The file it would write, `<source>/<query>.<format>`, or the source's folder (`<source>/`).
    pub path: String,
    /// Its rows (objects, for an objects source) and bytes, or why it failed.
    pub outcome: Result<(u64, u64), SourceError>,
    /// Why it was not run: it names an identity the person (as a request names them) does not have.
    pub skipped: Option<String>,
}

/// Why a query or template naming `missing` is not run for a person a request names.
fn skipped(missing: &[&str], prefix: char) -> Option<String> {
    (!missing.is_empty()).then(|| format!("skipped: {}", super::not_given_text(missing, prefix)))
}

/// Why the query, statement or retain entry `sql` is not run for the person `who` (`None`: it runs).
fn sql_skipped(sql: &str, who: &Identities) -> Option<String> {
    who.not_given_in_sql(sql).map(|text| format!("skipped: {text}"))
}

/// The objects under the person's prefix of `objects`, and their bytes: none when an identity the prefix
/// names is unknown for them.
async fn objects_of(objects: &super::file::ObjectsSource, who: &Identities) -> Result<(u64, u64), SourceError> {
    if objects.missing_for(who) {
        return Ok((0, 0));
    }
    let store = drives::open(&objects.store).map_err(|e| SourceError::Objects(e.into()))?;
    let files = store.files_under(&objects.parts(who)).await.map_err(|e| SourceError::Objects(e.into()))?;
    Ok((files.len() as u64, files.iter().map(|f| f.size).sum()))
}

/// Runs every query for the person `who`, counting the rows and bytes each would write, and lists every
/// objects source's objects of the person; keeps nothing.
pub async fn preview(sources: &Sources, who: &Identities) -> Vec<Previewed> {
    let mut previewed = Vec::new();
    for source in &sources.sources {
        previewed.extend(preview_source(source, who).await);
    }
    previewed
}

/// [`preview`] of one source.
pub async fn preview_source(source: &Source, who: &Identities) -> Vec<Previewed> {
    let mut previewed = Vec::new();
    match &source.kind {
        SourceKind::Sql(sql_source) => {
            for query in &sql_source.queries {
                let path = format!("{}/{}.{}", source.name, query.name, query.format.extension());
                if let Some(reason) = sql_skipped(&query.sql, who) {
                    previewed.push(Previewed { path, outcome: Ok((0, 0)), skipped: Some(reason) });
                    continue;
                }
                let outcome = match EncodedRows::start(&sql_source.database, query, who).await {
                    Ok(rows) => Pieces::Rows(rows).tally().await,
                    Err(e) => Err(e),
                };
                previewed.push(Previewed { path, outcome, skipped: None });
            }
        }
        SourceKind::Objects(objects) => {
            if let Some(reason) = skipped(&who.not_given(objects.names()), '{') {
                let path = format!("{}/", source.name);
                previewed.push(Previewed { path, outcome: Ok((0, 0)), skipped: Some(reason) });
                return previewed;
            }
            let outcome = objects_of(objects, who).await;
            previewed.push(Previewed { path: format!("{}/", source.name), outcome, skipped: None });
        }
        SourceKind::Http(http) => {
            let outcome = match HttpRecords::start(http, who) {
                Ok(records) => Pieces::Records(records).tally().await,
                Err(e) => Err(e),
            };
            previewed.push(Previewed { path: format!("{0}/{0}.jsonl", source.name), outcome, skipped: None });
        }
    }
    previewed
}

/// What erasing one person's data would do in one place, found without changing anything.
#[derive(Debug)]
pub struct ErasePreviewed {
    /// The source.
    pub source: String,
    /// The erase statement's or retain entry's name (empty for objects and a request).
    pub name: String,
    /// `<source>/erase:<statement>`, `<source>/retain:<name>`, `<source>/` (objects) or `<source>` (a request).
    pub what: String,
    /// What it would do, or why it cannot be told.
    pub outcome: Result<ErasePlan, SourceError>,
    /// Why it would not run: it names an identity the person does not have.
    pub skipped: Option<String>,
}

/// What one erase step would do.
#[derive(Debug, PartialEq, Eq)]
pub enum ErasePlan {
    /// An erase statement would change this many rows (and stop the request above `max_rows`).
    Rows {
        /// Rows it would change.
        changed: u64,
        /// The most it may change.
        max_rows: u64,
    },
    /// Rows kept, and why.
    Kept {
        /// Rows of the person kept.
        rows: u64,
        /// The reason.
        reason: String,
    },
    /// Objects that would be deleted.
    Objects(u64),
    /// The request that would be sent.
    Request(String),
}

/// Runs every erase statement for the person `who` inside a transaction that is rolled back, counts the rows
/// each source keeps and the objects it would delete, and says what request it would send; changes nothing.
pub async fn preview_erase(sources: &Sources, who: &Identities) -> Vec<ErasePreviewed> {
    let mut previewed = Vec::new();
    for source in &sources.sources {
        match (&source.erasure, &source.kind) {
            (Some(Erasure::Sql { database, statements }), _) => {
                for statement in statements {
                    let what = format!("{}/erase:{}", source.name, statement.name);
                    if let Some(reason) = sql_skipped(&statement.sql, who) {
                        previewed.push(ErasePreviewed {
                            source: source.name.clone(),
                            name: statement.name.clone(),
                            what,
                            outcome: Ok(ErasePlan::Rows { changed: 0, max_rows: statement.max_rows }),
                            skipped: Some(reason),
                        });
                        continue;
                    }
                    let outcome =
                        erase_sql::rolled_back(database, &statement.sql, Some(who), erase_sql::ESTIMATE_TIMEOUT)
                            .await
                            .map(|changed| ErasePlan::Rows { changed, max_rows: statement.max_rows });
                    let name = statement.name.clone();
                    previewed.push(ErasePreviewed { source: source.name.clone(), name, what, outcome, skipped: None });
                }
            }
            (Some(Erasure::Objects), SourceKind::Objects(objects)) => {
                let what = format!("{}/", source.name);
                if let Some(reason) = skipped(&who.not_given(objects.names()), '{') {
                    previewed.push(ErasePreviewed {
                        source: source.name.clone(),
                        name: String::new(),
                        what,
                        outcome: Ok(ErasePlan::Objects(0)),
                        skipped: Some(reason),
                    });
                    continue;
                }
                let outcome = objects_of(objects, who).await.map(|(objects, _)| ErasePlan::Objects(objects));
                let (source, name) = (source.name.clone(), String::new());
                previewed.push(ErasePreviewed { source, name, what, outcome, skipped: None });
            }
            (Some(Erasure::Http { method, request }), _) => {
                let what = source.name.clone();
                let skipped_because = skipped(&who.not_given(request.names()), '{');
                let shown = format!("{method} {}", dpo_contract::redact::redact_secrets(&request.template));
                previewed.push(ErasePreviewed {
                    source: source.name.clone(),
                    name: String::new(),
                    what,
                    outcome: Ok(ErasePlan::Request(shown)),
                    skipped: skipped_because,
                });
            }
            _ => {}
        }
        if let SourceKind::Sql(sql_source) = &source.kind {
            for kept in &source.retained {
                let what = format!("{}/retain:{}", source.name, kept.name);
                let query =
                    super::file::Query { name: kept.name.clone(), sql: kept.sql.clone(), format: Default::default() };
                let outcome = match EncodedRows::start(&sql_source.database, &query, who).await {
                    Ok(rows) => Pieces::Rows(rows).tally().await,
                    Err(e) => Err(e),
                }
                .map(|(rows, _)| ErasePlan::Kept { rows, reason: kept.reason.clone() });
                let name = kept.name.clone();
                previewed.push(ErasePreviewed { source: source.name.clone(), name, what, outcome, skipped: None });
            }
        }
    }
    previewed
}
