//! The sources file (`--sources sources.toml`): which of the organisation's systems an export reads,
//! checked whole when the server starts so that a mistake stops it with the file, the line and the reason.

use super::params::positional;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use toml::Spanned;

/// The identities of the person being exported that a query may name as parameters (`:mail`).
pub const IDENTITIES: [&str; 6] = ["id", "user_principal_name", "mail", "first_name", "last_name", "residency"];

/// Names the export itself uses at its top level; a source may not take them.
const RESERVED: [&str; 5] = ["profile", "drive", "activity", "manifest", "index"];

/// Every configured source, in the file's order (the export's order too).
#[derive(Debug, Clone, PartialEq)]
pub struct Sources {
    /// The file they came from.
    pub path: PathBuf,
    /// The directory's further attributes the sources may name beside the identities (`employeeId`).
    pub attributes: Vec<String>,
    /// Which of dpo's own sources the export holds beside the configured ones.
    pub builtin: Builtin,
    /// The sources.
    pub sources: Vec<Source>,
}

/// dpo's own sources, each on unless the file's `builtin = [...]` leaves it out. The profile (the
/// directory entry) is always exported: it says whose data the export is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Builtin {
    /// The user's drive, `drive/`.
    pub drive: bool,
    /// The activity records, `activity.jsonl`.
    pub activity: bool,
}

impl Default for Builtin {
    fn default() -> Self {
        Builtin { drive: true, activity: true }
    }
}

/// One source: a folder of the export.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// Its name, the folder its files go to.
    pub name: String,
    /// Where in the file it is defined.
    pub line: usize,
    /// What it reads.
    pub kind: SourceKind,
    /// How much of it one export reads at most.
    pub limits: SourceLimits,
    /// How the person's data in it is erased, if it is (a request of type `delete`).
    pub erasure: Option<super::erase::Erasure>,
    /// The person's rows it keeps when erasing, and why (`sql` sources).
    pub retained: Vec<super::erase::Retained>,
}

/// The most one export reads of a source: an API whose every page links to another, or a query that
/// returns far more than one person's rows, must end with a reason, not run (and fill the disk) for ever.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLimits {
    /// Pages of an `http` source (`max_pages`); `None` for the other kinds.
    pub max_pages: Option<u64>,
    /// Bytes written of the source's files, all its queries together (`max_bytes`).
    pub max_bytes: u64,
    /// Seconds spent reading the source, all its queries together (`max_seconds`).
    pub max_seconds: u64,
}

/// Pages of an `http` source one export reads unless the file says.
pub const MAX_PAGES: u64 = 10_000;
/// Bytes of one source one export writes unless the file says (8 GiB).
pub const MAX_BYTES: u64 = 8 << 30;
/// Seconds one export reads one source unless the file says (an hour).
pub const MAX_SECONDS: u64 = 3600;

/// What a source reads.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// Rows of a database's queries.
    Sql(SqlSource),
    /// Every object under a prefix of an object store (or a local folder).
    Objects(ObjectsSource),
    /// The records an HTTP API answers about the person, every page of them.
    Http(super::http::HttpSource),
}

/// Objects under a prefix made from the person's identities: `s3://bucket/users/{id}/`,
/// `az://container/{user_principal_name}/`, `file:///srv/uploads/{id}/`.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectsSource {
    /// The URL as written, placeholders included (it holds no secret: credentials come from the
    /// environment, as object_store reads them).
    pub template: String,
    /// The store: the URL up to its path (`s3://bucket`, `file:///`).
    pub store: String,
    /// The path's segments, each literal text with `{identity}` placeholders.
    pub segments: Vec<String>,
}

impl ObjectsSource {
    /// The folder of the person `who`: each segment with its placeholders replaced by their values (a
    /// value is never more than part of one segment: the drives encode a `/` or `..` in it).
    pub fn parts(&self, who: &super::Identities) -> Vec<String> {
        self.segments
            .iter()
            .map(|segment| {
                let mut part = segment.clone();
                for name in placeholders(segment) {
                    part = part.replace(&format!("{{{name}}}"), who.get(name).unwrap_or_default());
                }
                part
            })
            .collect()
    }

    /// The names of the prefix's placeholders.
    pub fn names(&self) -> Vec<&str> {
        self.segments.iter().flat_map(|s| placeholders(s)).collect()
    }

    /// Whether a placeholder's value is missing for `who` (a person without a mail address has no
    /// objects under a `{mail}` prefix).
    pub fn missing_for(&self, who: &super::Identities) -> bool {
        self.segments.iter().flat_map(|s| placeholders(s)).any(|name| who.get(name).is_none_or(str::is_empty))
    }
}

/// The names of the `{name}` placeholders in `text` (checked when the file was read: none is unclosed).
pub(crate) fn placeholders(text: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else { break };
        names.push(&rest[open + 1..open + close]);
        rest = &rest[open + close + 1..];
    }
    names
}

/// A database and the queries that find a person's rows in it.
#[derive(Debug, Clone, PartialEq)]
pub struct SqlSource {
    /// The database.
    pub database: Database,
    /// The queries, each a file of the export.
    pub queries: Vec<Query>,
}

/// A database a `sql` source reads (never writes: PostgreSQL in a read-only transaction, SQLite opened
/// read-only).
#[derive(Clone, PartialEq)]
pub enum Database {
    /// A `postgres://` URL (secrets may be in it: it is only shown redacted).
    Postgres(String),
    /// A SQLite database file.
    Sqlite(PathBuf),
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.redacted())
    }
}

impl Database {
    /// The database as it may be shown: without a password.
    pub fn redacted(&self) -> String {
        match self {
            Database::Postgres(url) => match url::Url::parse(url) {
                Ok(mut parsed) => {
                    if parsed.password().is_some() {
                        let _ = parsed.set_password(Some("***"));
                    }
                    parsed.to_string()
                }
                Err(_) => "postgres://…".to_string(),
            },
            Database::Sqlite(path) => format!("sqlite://{}", path.display()),
        }
    }
}

/// A named query: its rows are one file of the export, `<source>/<name>.<format>`.
#[derive(Debug, Clone, PartialEq)]
pub struct Query {
    /// Its name, the file's.
    pub name: String,
    /// The SQL, with identities as named parameters (`:id`).
    pub sql: String,
    /// How its rows are written.
    pub format: Format,
}

/// How a query's rows are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// One JSON object a line, types kept.
    #[default]
    Jsonl,
    /// A header line, then one line a row (for spreadsheets).
    Csv,
}

impl Format {
    /// The file name extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::Jsonl => "jsonl",
            Format::Csv => "csv",
        }
    }
}

/// Why the sources file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum SourcesFileError {
    /// The file could not be read.
    #[error("{}: {cause}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: std::io::Error,
    },
    /// The file is not TOML of the expected shape (the cause names the line and column).
    #[error("{}: {cause}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        cause: toml::de::Error,
    },
    /// A source is not usable as written.
    #[error("{}, line {line}: {reason}", path.display())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// The line of the source (or query) at fault.
        line: usize,
        /// Why.
        reason: String,
    },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileToml {
    attributes: Option<Spanned<Vec<String>>>,
    builtin: Option<Spanned<Vec<String>>>,
    #[serde(default)]
    source: Vec<Spanned<SourceToml>>,
}

/// One `[[source]]` table as written; the fields a kind does not use must be absent (checked after, so
/// that every error keeps its line).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SourceToml {
    name: String,
    kind: Spanned<String>,
    url: Option<String>,
    url_env: Option<String>,
    #[serde(default)]
    query: Vec<Spanned<QueryToml>>,
    token_env: Option<String>,
    headers: Option<std::collections::BTreeMap<String, String>>,
    allowed_hosts: Option<Vec<String>>,
    timeout_seconds: Option<u64>,
    retries: Option<u32>,
    max_pages: Option<u64>,
    max_bytes: Option<u64>,
    max_seconds: Option<u64>,
    erase_url: Option<String>,
    erase_url_env: Option<String>,
    erase: Option<Spanned<super::erase::EraseToml>>,
    #[serde(default)]
    retain: Vec<Spanned<super::erase::RetainToml>>,
}

impl SourceToml {
    /// The fields only `http` sources have, that are set here.
    fn http_fields(&self) -> Vec<&'static str> {
        [
            ("token_env", self.token_env.is_some()),
            ("headers", self.headers.is_some()),
            ("allowed_hosts", self.allowed_hosts.is_some()),
            ("timeout_seconds", self.timeout_seconds.is_some()),
            ("retries", self.retries.is_some()),
            ("max_pages", self.max_pages.is_some()),
        ]
        .into_iter()
        .filter_map(|(name, set)| set.then_some(name))
        .collect()
    }
}

/// How long an `http` source's request may take unless the file says.
pub const HTTP_TIMEOUT_SECONDS: u64 = 30;
/// How many times an `http` source's failed request is asked again unless the file says.
pub const HTTP_RETRIES: u32 = 4;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryToml {
    name: String,
    sql: String,
    #[serde(default)]
    format: Format,
}

impl Sources {
    /// No sources: the export holds the built-in ones only.
    pub fn none() -> Sources {
        Sources { path: PathBuf::new(), attributes: Vec::new(), builtin: Builtin::default(), sources: Vec::new() }
    }

    /// How many queries the sources run for one export.
    pub fn query_count(&self) -> usize {
        self.sources
            .iter()
            .map(|s| match &s.kind {
                SourceKind::Sql(sql) => sql.queries.len(),
                SourceKind::Objects(_) => 0,
                SourceKind::Http(_) => 1,
            })
            .sum()
    }

    /// Reads and checks the sources file at `path` (environment variables it names are read now).
    pub fn load(path: &Path) -> Result<Sources, SourcesFileError> {
        let text = std::fs::read_to_string(path)
            .map_err(|cause| SourcesFileError::Read { path: path.to_path_buf(), cause })?;
        Sources::parse(path, &text, |name| std::env::var(name).ok())
    }

    /// Checks the sources file `text` (read from `path`), reading environment variables with `env`.
    pub fn parse(path: &Path, text: &str, env: impl Fn(&str) -> Option<String>) -> Result<Sources, SourcesFileError> {
        let file: FileToml =
            toml::from_str(text).map_err(|cause| SourcesFileError::Parse { path: path.to_path_buf(), cause })?;
        let line_of = |offset: usize| text[..offset.min(text.len())].matches('\n').count() + 1;
        let invalid =
            |line: usize, reason: String| SourcesFileError::Invalid { path: path.to_path_buf(), line, reason };
        let folder = path.parent().unwrap_or(Path::new("."));
        // The names a query, a prefix or a URL may use: the identities, and the attributes declared.
        let (attributes_line, attributes) = match file.attributes {
            Some(declared) => (line_of(declared.span().start), declared.into_inner()),
            None => (1, Vec::new()),
        };
        let mut names: Vec<String> = IDENTITIES.map(String::from).to_vec();
        for attribute in &attributes {
            if !dpo_domain::directory::attribute_name(attribute) {
                return Err(invalid(
                    attributes_line,
                    format!(
                        "the attribute name {attribute:?} must be letters, digits and _, not starting with a digit"
                    ),
                ));
            }
            if names.iter().any(|n| n == attribute) {
                return Err(invalid(attributes_line, format!("{attribute:?} is named twice (or is an identity)")));
            }
            names.push(attribute.clone());
        }
        let builtin = match file.builtin {
            None => Builtin::default(),
            Some(listed) => {
                let line = line_of(listed.span().start);
                let listed = listed.into_inner();
                if let Some(unknown) = listed.iter().find(|n| !["profile", "drive", "activity"].contains(&n.as_str())) {
                    return Err(invalid(
                        line,
                        format!("builtin names {unknown:?}; dpo's own sources are profile, drive and activity"),
                    ));
                }
                if !listed.iter().any(|n| n == "profile") {
                    return Err(invalid(
                        line,
                        "builtin must keep \"profile\": it says whose data the export is".into(),
                    ));
                }
                Builtin { drive: listed.iter().any(|n| n == "drive"), activity: listed.iter().any(|n| n == "activity") }
            }
        };
        let mut sources: Vec<Source> = Vec::new();
        let source_headers = super::erase::header_lines(text, "source");
        let erase_headers = super::erase::header_lines(text, "source.erase");
        for spanned in file.source {
            let line = line_of(spanned.span().start);
            let mut sql = spanned.into_inner();
            if !["sql", "objects", "http"].contains(&sql.kind.get_ref().as_str()) {
                return Err(invalid(
                    line_of(sql.kind.span().start),
                    format!(
                        "source {:?} is of kind {:?}; the kinds are: sql, objects, http",
                        sql.name,
                        sql.kind.get_ref()
                    ),
                ));
            }
            let kind = sql.kind.get_ref().clone();
            if kind != "http" && !sql.http_fields().is_empty() {
                return Err(invalid(
                    line,
                    format!(
                        "source {:?} is of kind {kind}; {} belong to http sources only",
                        sql.name,
                        sql.http_fields().join(", ")
                    ),
                ));
            }
            if kind != "sql" && !sql.query.is_empty() {
                return Err(invalid(line, format!("source {:?} is of kind {kind}, which has no queries", sql.name)));
            }
            check_name("source", &sql.name).map_err(|reason| invalid(line, reason))?;
            if RESERVED.contains(&sql.name.to_ascii_lowercase().as_str()) {
                return Err(invalid(
                    line,
                    format!("the source name {:?} is the export's own; choose another", sql.name),
                ));
            }
            if let Some(other) = sources.iter().find(|s| s.name.eq_ignore_ascii_case(&sql.name)) {
                return Err(invalid(
                    line,
                    format!("a source named {:?} is already defined on line {}", sql.name, other.line),
                ));
            }
            if [sql.max_pages, sql.max_bytes, sql.max_seconds].contains(&Some(0)) {
                return Err(invalid(
                    line,
                    format!("source {:?}: max_pages, max_bytes and max_seconds are at least 1", sql.name),
                ));
            }
            let limits = SourceLimits {
                max_pages: (kind == "http").then_some(sql.max_pages.unwrap_or(MAX_PAGES)),
                max_bytes: sql.max_bytes.unwrap_or(MAX_BYTES),
                max_seconds: sql.max_seconds.unwrap_or(MAX_SECONDS),
            };
            // How it erases: checked per kind below.
            use super::erase::{EraseToml, Erasure};
            let erase_line = sql.erase.as_ref().map_or(line, |e| line_of(e.span().start));
            let erase_written = sql.erase.take().map(Spanned::into_inner);
            let retain_written: Vec<(usize, super::erase::RetainToml)> = std::mem::take(&mut sql.retain)
                .into_iter()
                .map(|r| (line_of(r.span().start), r.into_inner()))
                .collect();
            let erase_connection = match (sql.erase_url.take(), sql.erase_url_env.take()) {
                (None, None) => None,
                (Some(url), None) => Some(url),
                (None, Some(variable)) => Some(env(&variable).ok_or_else(|| {
                    invalid(line, format!("erase_url_env names the environment variable {variable}, which is not set"))
                })?),
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        line,
                        format!("source {:?} takes one of erase_url and erase_url_env", sql.name),
                    ));
                }
            };
            if kind != "sql" && (erase_connection.is_some() || !retain_written.is_empty()) {
                return Err(invalid(
                    line,
                    format!(
                        "source {:?} is of kind {kind}; erase_url, erase_url_env and [[source.retain]] belong to sql sources",
                        sql.name
                    ),
                ));
            }
            let wrong_erase = |expected: &str| {
                invalid(erase_line, format!("source {:?} is of kind {kind}: its erase is {expected}", sql.name))
            };
            let url = match (sql.url, sql.url_env) {
                (Some(url), None) => url,
                (None, Some(variable)) => env(&variable).ok_or_else(|| {
                    invalid(line, format!("url_env names the environment variable {variable}, which is not set"))
                })?,
                _ => {
                    return Err(invalid(
                        line,
                        format!(
                            "source {:?} needs exactly one of url and url_env (a variable holding the URL)",
                            sql.name
                        ),
                    ));
                }
            };
            if kind == "http" {
                let token = match &sql.token_env {
                    Some(variable) => Some((
                        variable.clone(),
                        super::http::Secret(env(variable).ok_or_else(|| {
                            invalid(
                                line,
                                format!("token_env names the environment variable {variable}, which is not set"),
                            )
                        })?),
                    )),
                    None => None,
                };
                let http = super::http::HttpSource::new(
                    &names,
                    url,
                    sql.headers.unwrap_or_default().into_iter().collect(),
                    token,
                    sql.allowed_hosts,
                    std::time::Duration::from_secs(sql.timeout_seconds.unwrap_or(HTTP_TIMEOUT_SECONDS)),
                    sql.retries.unwrap_or(HTTP_RETRIES),
                )
                .map_err(|reason| invalid(line, format!("source {:?}: {reason}", sql.name)))?;
                let erasure = match erase_written {
                    None => None,
                    Some(EraseToml::Request(request)) => {
                        let method = request.method.to_ascii_uppercase();
                        if !["DELETE", "POST", "PUT", "PATCH"].contains(&method.as_str()) {
                            return Err(invalid(
                                erase_line,
                                format!(
                                    "source {:?}: erase's method is DELETE, POST, PUT or PATCH, not {:?}",
                                    sql.name, request.method
                                ),
                            ));
                        }
                        let erase_request = super::http::HttpSource::new(
                            &names,
                            request.url,
                            http.headers.clone(),
                            http.token.clone(),
                            Some(http.allowed_hosts.clone()),
                            http.timeout,
                            http.retries,
                        )
                        .map_err(|reason| invalid(erase_line, format!("source {:?}, erase: {reason}", sql.name)))?;
                        if erase_request.names().is_empty() {
                            return Err(invalid(
                                erase_line,
                                format!(
                                    "source {:?}, erase: the URL names no identity of the person: it would be about everyone",
                                    sql.name
                                ),
                            ));
                        }
                        Some(Erasure::Http { method, request: erase_request })
                    }
                    Some(_) => return Err(wrong_erase("{ method = \"DELETE\", url = \"…{mail}…\" }")),
                };
                sources.push(Source {
                    name: sql.name,
                    line,
                    kind: SourceKind::Http(http),
                    limits,
                    erasure,
                    retained: Vec::new(),
                });
                continue;
            }
            if kind == "objects" {
                let objects = objects(&url, &names)
                    .map_err(|reason| invalid(line, format!("source {:?}: {reason}", sql.name)))?;
                let erasure = match erase_written {
                    None | Some(EraseToml::Flag(false)) => None,
                    Some(EraseToml::Flag(true)) => Some(Erasure::Objects),
                    Some(_) => return Err(wrong_erase("true or false")),
                };
                sources.push(Source {
                    name: sql.name,
                    line,
                    kind: SourceKind::Objects(objects),
                    limits,
                    erasure,
                    retained: Vec::new(),
                });
                continue;
            }
            let database = database(&url, folder).map_err(|reason| invalid(line, reason))?;
            if sql.query.is_empty() {
                return Err(invalid(line, format!("source {:?} has no [[source.query]]", sql.name)));
            }
            let mut queries: Vec<Query> = Vec::new();
            for spanned in sql.query {
                let query_line = line_of(spanned.span().start);
                let query = spanned.into_inner();
                check_name("query", &query.name).map_err(|reason| invalid(query_line, reason))?;
                if queries.iter().any(|q| q.name.eq_ignore_ascii_case(&query.name)) {
                    return Err(invalid(
                        query_line,
                        format!("source {:?} has two queries named {:?}", sql.name, query.name),
                    ));
                }
                let unknown: Vec<String> = positional(&query.sql, |n| format!("${n}"))
                    .names
                    .into_iter()
                    .filter(|n| !names.contains(n))
                    .collect();
                if !unknown.is_empty() {
                    return Err(invalid(
                        query_line,
                        format!(
                            "query {:?} names :{}, which is not an identity of the person (they are :{}; further \
                             attributes of the directory are named in `attributes = [...]` at the top of the file)",
                            query.name,
                            unknown.join(", :"),
                            names.join(", :")
                        ),
                    ));
                }
                queries.push(Query { name: query.name, sql: query.sql, format: query.format });
            }
            // The `[[source.erase]]` tables of this source are those between its header and the next one's.
            let next_source = source_headers.iter().copied().find(|l| *l > line).unwrap_or(usize::MAX);
            let mut statement_lines = erase_headers.iter().copied().filter(|l| *l >= line && *l < next_source);
            let erasure = match (erase_written, erase_connection) {
                (None, None) => None,
                (Some(EraseToml::Statements(written)), Some(connection)) => {
                    let writer = self::database(&connection, folder)
                        .map_err(|reason| invalid(line, format!("erase_url: {reason}")))?;
                    let mut statements: Vec<super::erase::EraseStatement> = Vec::new();
                    for written in written {
                        let statement_line = statement_lines.next().unwrap_or(erase_line);
                        let statement = super::erase::statement(written, statement_line, &names)
                            .map_err(|reason| invalid(statement_line, format!("source {:?}: {reason}", sql.name)))?;
                        if statements.iter().any(|s| s.name.eq_ignore_ascii_case(&statement.name)) {
                            return Err(invalid(
                                statement_line,
                                format!("source {:?} has two erase statements named {:?}", sql.name, statement.name),
                            ));
                        }
                        statements.push(statement);
                    }
                    Some(Erasure::Sql { database: writer, statements })
                }
                (Some(EraseToml::Statements(_)), None) => {
                    return Err(invalid(
                        line,
                        format!(
                            "source {:?} erases: it needs erase_url or erase_url_env, a connection whose role may write (its queries keep their read-only url)",
                            sql.name
                        ),
                    ));
                }
                (None, Some(_)) => {
                    return Err(invalid(
                        line,
                        format!("source {:?} names an erase_url but no [[source.erase]] statement", sql.name),
                    ));
                }
                (Some(_), _) => return Err(wrong_erase("a list of [[source.erase]] statements")),
            };
            let mut retained: Vec<super::erase::Retained> = Vec::new();
            for (retain_line, written) in retain_written {
                let kept = super::erase::retained(written, retain_line, &names)
                    .map_err(|reason| invalid(retain_line, format!("source {:?}: {reason}", sql.name)))?;
                if retained.iter().any(|r| r.name.eq_ignore_ascii_case(&kept.name)) {
                    return Err(invalid(
                        retain_line,
                        format!("source {:?} has two retain entries named {:?}", sql.name, kept.name),
                    ));
                }
                retained.push(kept);
            }
            sources.push(Source {
                name: sql.name,
                line,
                kind: SourceKind::Sql(SqlSource { database, queries }),
                limits,
                erasure,
                retained,
            });
        }
        Ok(Sources { path: path.to_path_buf(), attributes, builtin, sources })
    }
}

/// A source's or query's name becomes a folder or file name of the export: plain characters only.
pub(super) fn check_name(what: &str, name: &str) -> Result<(), String> {
    let plain = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        && !name.starts_with('-');
    if plain {
        Ok(())
    } else {
        Err(format!(
            "the {what} name {name:?} must be 1 to 64 letters, digits, '-' or '_' (it names a {} of the export)",
            if what == "source" { "folder" } else { "file" }
        ))
    }
}

/// The store and prefix template of an `objects` source's URL.
fn objects(url: &str, names: &[String]) -> Result<ObjectsSource, String> {
    let (scheme, rest) = url.split_once("://").ok_or("the URL must look like s3://bucket/users/{id}/")?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    if authority.contains('{') {
        return Err("identities may only be in the URL's path, not in its bucket or host".into());
    }
    let store = format!("{scheme}://{authority}");
    crate::drives::open(&store).map_err(|e| match std::error::Error::source(&e) {
        Some(cause) => format!("{store} cannot be opened: {cause}"),
        None => format!("{store} cannot be opened"),
    })?;
    let segments: Vec<String> = path.split('/').filter(|s| !s.is_empty()).map(str::to_string).collect();
    for segment in &segments {
        if segment == "." || segment == ".." {
            return Err(format!("the path may not hold {segment:?} segments"));
        }
        let mut rest = segment.as_str();
        while let Some(open) = rest.find('{') {
            let close = rest[open..].find('}').ok_or_else(|| format!("an unclosed {{ in {segment:?}"))? + open;
            let name = &rest[open + 1..close];
            if !names.iter().any(|n| n == name) {
                return Err(format!(
                    "{{{name}}} is not an identity of the person (they are {{{}}})",
                    names.join("}, {")
                ));
            }
            rest = &rest[close + 1..];
        }
    }
    if !segments.iter().any(|s| s.contains('{')) {
        return Err("the prefix names no identity ({id}, {user_principal_name} or {mail}): every export would                     copy the same objects"
            .into());
    }
    Ok(ObjectsSource { template: url.to_string(), store, segments })
}

/// The database a URL names: `postgres://…` (or `postgresql://…`), `sqlite:///absolute/path.db`, or
/// `sqlite:relative/path.db` (beside the sources file).
fn database(url: &str, folder: &Path) -> Result<Database, String> {
    let scheme = url.split_once(':').map(|(s, _)| s.to_ascii_lowercase()).unwrap_or_default();
    match scheme.as_str() {
        "postgres" | "postgresql" => {
            url.parse::<tokio_postgres::Config>().map_err(|e| format!("the PostgreSQL URL: {e}"))?;
            Ok(Database::Postgres(url.to_string()))
        }
        "sqlite" => {
            let rest = &url["sqlite:".len()..];
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err("a sqlite URL names a file: sqlite:///srv/app.db or sqlite:app.db".into());
            }
            let path = PathBuf::from(path);
            Ok(Database::Sqlite(if path.is_absolute() { path } else { folder.join(path) }))
        }
        // Only the scheme is repeated: what follows it may be a password.
        _ => Err(format!(
            "the database URL must start with postgres://, postgresql:// or sqlite: (its scheme is {:?})",
            url.split_once(':').map_or("", |(scheme, _)| scheme).chars().take(20).collect::<String>()
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Sources, SourcesFileError> {
        Sources::parse(Path::new("/etc/dpo/sources.toml"), text, |name| {
            (name == "SHOP_DATABASE_URL").then(|| "postgres://dpo:secret@db.internal/shop".to_string())
        })
    }

    fn invalid_line(text: &str) -> (usize, String) {
        match parse(text) {
            Err(SourcesFileError::Invalid { line, reason, .. }) => (line, reason),
            other => panic!("expected an invalid source, got {other:?}"),
        }
    }

    /// The README's TOML example whose first line is `# <marker>`, read as a sources file (with the
    /// environment variables the examples name).
    fn readme_sources(marker: &str) -> Sources {
        let readme = include_str!("../../../../README.md");
        let opening = format!("```toml\n# {marker}\n");
        let start = readme.find(&opening).expect("the README's example") + "```toml\n".len();
        let text = &readme[start..start + readme[start..].find("```").expect("its end")];
        Sources::parse(Path::new("/etc/dpo/sources.toml"), text, |name| match name {
            "SHOP_DATABASE_URL" => Some("postgres://dpo_reader@db.internal/shop".into()),
            "SHOP_ERASE_DATABASE_URL" => Some("postgres://dpo_eraser@db.internal/shop".into()),
            "CRM_TOKEN" => Some("token".into()),
            _ => None,
        })
        .unwrap_or_else(|e| panic!("the README's {marker} example: {e}"))
    }

    #[test]
    fn the_readme_example_is_a_valid_sources_file() {
        let sources = readme_sources("sources.toml");
        let kinds: Vec<&str> = sources
            .sources
            .iter()
            .map(|s| match s.kind {
                SourceKind::Sql(_) => "sql",
                SourceKind::Objects(_) => "objects",
                SourceKind::Http(_) => "http",
            })
            .collect();
        assert_eq!(kinds, ["sql", "sql", "objects", "http"]);
        assert_eq!(sources.attributes, ["employeeId"]);
    }

    #[test]
    fn declared_attributes_can_be_named_beside_the_identities() {
        let sources = parse(
            "attributes = [\"employeeId\"]\n[[source]]\nname = \"hr\"\nkind = \"sql\"\nurl = \"sqlite:hr.db\"\n\
             [[source.query]]\nname = \"leave\"\nsql = \"SELECT * FROM leave WHERE employee = :employeeId\"\n\
             [[source]]\nname = \"badges\"\nkind = \"objects\"\nurl = \"file:///srv/badges/{employeeId}/\"\n",
        )
        .unwrap();
        assert_eq!(sources.attributes, ["employeeId"]);
        let SourceKind::Objects(badges) = &sources.sources[1].kind else { panic!("an objects source") };
        let mut who = crate::sources::Identities {
            id: Some("a".into()),
            user_principal_name: Some("a@x".into()),
            attributes: [("employeeId".to_string(), "E/17".to_string())].into(),
            ..Default::default()
        };
        assert_eq!(badges.parts(&who), ["srv", "badges", "E/17"], "a value stays one segment (encoded by the store)");
        who.attributes.clear();
        assert!(badges.missing_for(&who));
        let (line, reason) = invalid_line(
            "[[source]]\nname = \"hr\"\nkind = \"sql\"\nurl = \"sqlite:hr.db\"\n[[source.query]]\nname = \"q\"\nsql = \
             \"SELECT :employeeId\"\n",
        );
        assert_eq!(line, 5);
        assert!(reason.contains(":employeeId") && reason.contains("attributes = [...]"), "{reason}");
        let only_profile = parse("builtin = [\"profile\"]\n").unwrap();
        assert_eq!(only_profile.builtin, Builtin { drive: false, activity: false });
        assert_eq!(parse("").unwrap().builtin, Builtin { drive: true, activity: true });
        assert!(invalid_line("builtin = [\"drive\"]\n").1.contains("profile"));
        assert!(invalid_line("builtin = [\"profile\", \"mailbox\"]\n").1.contains("mailbox"));
        let (line, reason) = invalid_line("attributes = [\"mail\"]\n");
        assert_eq!(line, 1);
        assert!(reason.contains("identity"), "{reason}");
        let (_, reason) = invalid_line("attributes = [\"first-name\"]\n");
        assert!(reason.contains("letters, digits"), "{reason}");
    }

    #[test]
    fn a_complete_file_reads_in_order_with_lines() {
        let sources = parse(
            r#"
[[source]]
name = "shop"
kind = "sql"
url_env = "SHOP_DATABASE_URL"

[[source.query]]
name = "orders"
sql = "SELECT * FROM orders WHERE customer = :mail"

[[source.query]]
name = "invoices"
sql = "SELECT * FROM invoices WHERE customer = :id"
format = "csv"

[[source]]
name = "legacy"
kind = "sql"
url = "sqlite:legacy/app.db"
[[source.query]]
name = "notes"
sql = "SELECT * FROM notes WHERE upn = :user_principal_name"
"#,
        )
        .unwrap();
        assert_eq!(sources.sources.len(), 2);
        let shop = &sources.sources[0];
        assert_eq!((shop.name.as_str(), shop.line), ("shop", 2));
        let SourceKind::Sql(sql) = &shop.kind else { panic!("a sql source") };
        assert_eq!(sql.database.redacted(), "postgres://dpo:***@db.internal/shop");
        assert_eq!(sql.queries.iter().map(|q| q.format).collect::<Vec<_>>(), [Format::Jsonl, Format::Csv]);
        let SourceKind::Sql(legacy) = &sources.sources[1].kind else { panic!("a sql source") };
        assert_eq!(legacy.database, Database::Sqlite(PathBuf::from("/etc/dpo/legacy/app.db")));
    }

    #[test]
    fn mistakes_name_their_line_and_reason() {
        let (line, reason) = invalid_line(
            "[[source]]\nname = \"shop\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\n[[source.query]]\nname = \"o\"\nsql = \
             \"SELECT :phone\"\n",
        );
        assert_eq!(line, 5);
        assert!(reason.contains(":phone") && reason.contains(":mail"), "{reason}");
        let (line, reason) = invalid_line(
            "[[source]]\nname = \"a\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\n[[source.query]]\nname = \"q\"\nsql = \
             \"SELECT 1\"\n\n[[source]]\nname = \"A\"\nkind = \"sql\"\nurl = \"sqlite:b.db\"\n",
        );
        assert_eq!(line, 9);
        assert!(reason.contains("line 1"), "{reason}");
        let (_, reason) = invalid_line("[[source]]\nname = \"../up\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\n");
        assert!(reason.contains("letters, digits"), "{reason}");
        let (_, reason) = invalid_line("[[source]]\nname = \"drive\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\n");
        assert!(reason.contains("export's own"), "{reason}");
        let (_, reason) = invalid_line("[[source]]\nname = \"s\"\nkind = \"sql\"\nurl_env = \"NOT_SET_ANYWHERE\"\n");
        assert!(reason.contains("NOT_SET_ANYWHERE"), "{reason}");
        let (_, reason) = invalid_line("[[source]]\nname = \"s\"\nkind = \"sql\"\nurl = \"mysql://x/y\"\n");
        assert!(reason.contains("postgres://"), "{reason}");
        let (_, reason) = invalid_line("[[source]]\nname = \"s\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\n");
        assert!(reason.contains("no [[source.query]]"), "{reason}");
        let (_, reason) =
            invalid_line("[[source]]\nname = \"s\"\nkind = \"objects\"\nurl = \"file:///x/{id}/\"\nmax_pages = 3\n");
        assert!(reason.contains("max_pages belong to http sources only"), "{reason}");
        let (_, reason) =
            invalid_line("[[source]]\nname = \"s\"\nkind = \"objects\"\nurl = \"file:///x/{id}/\"\nmax_bytes = 0\n");
        assert!(reason.contains("at least 1"), "{reason}");
    }

    #[test]
    fn every_source_has_limits_with_defaults() {
        let sources = parse(
            "[[source]]\nname = \"api\"\nkind = \"http\"\nurl = \"https://api.example/{id}\"\nmax_seconds = 60\n\n             [[source]]\nname = \"files\"\nkind = \"objects\"\nurl = \"file:///x/{id}/\"\nmax_bytes = 1000\n",
        )
        .unwrap();
        let limits: Vec<SourceLimits> = sources.sources.iter().map(|s| s.limits).collect();
        assert_eq!(
            limits,
            [
                SourceLimits { max_pages: Some(MAX_PAGES), max_bytes: MAX_BYTES, max_seconds: 60 },
                SourceLimits { max_pages: None, max_bytes: 1000, max_seconds: MAX_SECONDS },
            ]
        );
    }

    #[test]
    fn toml_errors_name_the_line() {
        let err = parse("[[source]]\nname = \"s\"\nkind = \"sql\"\nurl = \"sqlite:a.db\"\ncolour = 1\n").unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("/etc/dpo/sources.toml: ") && text.contains("line 5"), "{text}");
        let (line, reason) = invalid_line("[[source]]\nname = \"s\"\nkind = \"ftp\"\n");
        assert_eq!(line, 3);
        assert!(reason.contains("ftp") && reason.contains("sql"), "{reason}");
    }

    const ERASING: &str = r#"
[[source]]
name = "shop"
kind = "sql"
url_env = "SHOP_DATABASE_URL"
erase_url = "postgres://dpo_eraser@db.internal/shop"

[[source.query]]
name = "orders"
sql = "SELECT * FROM orders WHERE email = :mail"

[[source.erase]]
name = "mask_orders"
sql = "UPDATE orders SET name = NULL, email = NULL WHERE email = :mail"

[[source.erase]]
name = "reviews"
sql = "DELETE FROM reviews WHERE email = :mail"
max_rows = 50

[[source.retain]]
name = "invoices"
sql = "SELECT id FROM invoices WHERE email = :mail"
reason = "invoices, 10 years"

[[source]]
name = "uploads"
kind = "objects"
url = "file:///srv/uploads/{mail}/"
erase = true

[[source]]
name = "crm"
kind = "http"
url = "https://crm.internal/people/{mail}/records"
erase = { method = "delete", url = "https://crm.internal/people/{mail}" }
"#;

    #[test]
    fn erase_statements_retained_rows_objects_and_requests_are_read_with_their_lines() {
        let sources = parse(ERASING).unwrap();
        let shop = &sources.sources[0];
        let Some(crate::sources::erase::Erasure::Sql { database, statements }) = &shop.erasure else {
            panic!("{:?}", shop.erasure)
        };
        assert!(database.redacted().contains("dpo_eraser"));
        let read: Vec<(&str, u64, usize)> = statements.iter().map(|s| (s.name.as_str(), s.max_rows, s.line)).collect();
        assert_eq!(read, [("mask_orders", 10_000, 12), ("reviews", 50, 16)]);
        assert_eq!(
            (shop.retained[0].name.as_str(), shop.retained[0].reason.as_str()),
            ("invoices", "invoices, 10 years")
        );
        assert_eq!(sources.sources[1].erasure, Some(crate::sources::erase::Erasure::Objects));
        match &sources.sources[2].erasure {
            Some(crate::sources::erase::Erasure::Http { method, request }) => {
                assert_eq!(
                    (method.as_str(), request.template.as_str()),
                    ("DELETE", "https://crm.internal/people/{mail}")
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_erase_that_is_not_one_persons_delete_or_update_is_refused_with_its_line() {
        let with = |from: &str, to: &str| {
            assert!(ERASING.contains(from), "{from}");
            ERASING.replacen(from, to, 1)
        };
        let cases = [
            (with("UPDATE orders SET", "SELECT orders SET"), 12, "must be one DELETE or UPDATE statement"),
            (with("DELETE FROM reviews WHERE email = :mail", "DELETE FROM reviews"), 16, "names no identity"),
            (
                with("WHERE email = :mail\"\nmax_rows", "WHERE email = :mail; DROP TABLE x\"\nmax_rows"),
                16,
                "more than one statement",
            ),
            (with("DELETE FROM reviews WHERE email = :mail", "DELETE FROM reviews WHERE email = :phone"), 16, ":phone"),
            (with("max_rows = 50", "max_rows = 0"), 16, "max_rows is at least 1"),
            (
                with("erase_url = \"postgres://dpo_eraser@db.internal/shop\"\n", ""),
                2,
                "needs erase_url or erase_url_env",
            ),
            (with("reason = \"invoices, 10 years\"", "reason = \" \""), 21, "needs a reason"),
            (with("sql = \"SELECT id FROM invoices", "sql = \"DELETE FROM invoices"), 21, "must be a SELECT"),
            (
                with("erase = true", "erase = { method = \"DELETE\", url = \"file:///x\" }"),
                30,
                "its erase is true or false",
            ),
            (with("erase = { method = \"delete\"", "erase = { method = \"GET\""), 36, "DELETE, POST, PUT or PATCH"),
            (
                with("url = \"https://crm.internal/people/{mail}\" }", "url = \"https://evil.example/{mail}\" }"),
                36,
                "erase",
            ),
            (
                with("url = \"https://crm.internal/people/{mail}\" }", "url = \"https://crm.internal/people\" }"),
                36,
                "names no identity",
            ),
        ];
        for (text, line, reason) in cases {
            let (at, why) = invalid_line(&text);
            assert!(why.contains(reason), "{reason}: {why}");
            assert_eq!(at, line, "{why}");
        }
        let retain_on_objects = with(
            "erase = true",
            "erase = true\n[[source.retain]]\nname = \"x\"\nsql = \"SELECT 1 WHERE :mail\"\nreason = \"r\"",
        );
        assert!(invalid_line(&retain_on_objects).1.contains("belong to sql sources"));
    }

    #[test]
    fn the_readme_erasure_example_is_a_valid_sources_file() {
        let sources = readme_sources("erasure");
        let shop = &sources.sources[0];
        assert!(
            matches!(&shop.erasure, Some(crate::sources::erase::Erasure::Sql { statements, .. }) if statements.len() == 2)
        );
        assert_eq!(shop.retained.len(), 1);
    }
}
