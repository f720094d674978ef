//! Configured data sources: the organisation's own systems an export reads a person's data from, at
//! export time, streamed, with nothing copied into dpo first.
//!
//! [`file`] reads and checks the sources file (`sql` sources: queries of a database; `objects` sources:
//! the objects under a prefix of an object store, read through the same drives as users' drives);
//! [`params`] binds the person's identities to named parameters; [`sql`] runs a query on PostgreSQL or
//! SQLite and streams its rows; [`values`] turns
//! database values into JSON with their types kept; [`encode`] writes rows as JSON lines or CSV;
//! [`tools`] are the operator's `sources check` and `sources preview`.

pub mod encode;
pub mod erase;
pub mod erase_sql;
pub mod file;
pub mod http;
pub mod params;
pub mod sql;
pub mod tools;
pub mod values;

pub use file::{Database, Format, Query, Source, SourceKind, Sources, SourcesFileError, SqlSource};

use dpo_domain::store::UserRecord;

/// A configured source's file for one person, a piece at a time: a query's rows or an HTTP source's
/// records.
pub enum Pieces {
    /// A query's rows.
    Rows(sql::EncodedRows),
    /// An HTTP source's records.
    Records(http::HttpRecords),
}

impl Pieces {
    /// Pages fetched so far, for the sources that read pages (HTTP APIs).
    pub fn pages_read(&self) -> Option<u64> {
        match self {
            Pieces::Rows(_) => None,
            Pieces::Records(records) => Some(records.pages_read()),
        }
    }

    /// Whether a call to [`Pieces::next`] would fetch another page.
    pub fn would_fetch(&self) -> bool {
        match self {
            Pieces::Rows(_) => false,
            Pieces::Records(records) => records.would_fetch(),
        }
    }

    /// Reads every piece, keeping none: how many rows or records and bytes the file would hold.
    pub async fn tally(mut self) -> Result<(u64, u64), SourceError> {
        let (mut count, mut bytes) = (0, 0);
        while let Some(piece) = self.next().await {
            let (piece, rows) = piece?;
            count += rows;
            bytes += piece.len() as u64;
        }
        Ok((count, bytes))
    }

    /// The next piece of the file and how many rows or records it holds; `None` at the end.
    pub async fn next(&mut self) -> Option<Result<(Vec<u8>, u64), SourceError>> {
        match self {
            Pieces::Rows(rows) => rows.next().await,
            Pieces::Records(records) => records.next().await,
        }
    }
}

/// The identities of the person being exported: a user of the directory, or a person a subject rights
/// request names (a customer has an email address and a name, no directory id). What the person does not
/// have binds as nothing: a query naming it matches nothing, a prefix or URL naming it reads nothing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identities {
    /// The directory id.
    pub id: Option<String>,
    /// The sign-in name.
    pub user_principal_name: Option<String>,
    /// The mail address, if the directory (or the request) has one.
    pub mail: Option<String>,
    /// The first name, as a request gives it.
    pub first_name: Option<String>,
    /// The last name, as a request gives it.
    pub last_name: Option<String>,
    /// The country or region of residency, as a request gives it.
    pub residency: Option<String>,
    /// The entry's further attributes, as text (numbers and booleans as JSON writes them).
    pub attributes: std::collections::BTreeMap<String, String>,
    /// Only what has a value was given (a person a request names): a query naming anything else is not
    /// about this person and is skipped, not run. For a user of the directory, a name without a value
    /// binds NULL (which matches nothing), as it always did.
    pub given_only: bool,
}

/// Why a query (`prefix` ':', its parameters) or a prefix or URL (`prefix` '{', its placeholders) naming the
/// identities `missing` is not about a person a request names: "it names :id, which the request does not give".
pub fn not_given_text(missing: &[&str], prefix: char) -> String {
    let names: Vec<String> =
        missing.iter().map(|n| if prefix == '{' { format!("{{{n}}}") } else { format!("{prefix}{n}") }).collect();
    format!("it names {}, which the request does not give", names.join(", "))
}

impl Identities {
    /// The names `names` holds that this person has no value for, when only what was given counts.
    pub fn not_given<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Vec<&'a str> {
        if !self.given_only {
            return Vec::new();
        }
        let mut missing: Vec<&str> = names.into_iter().filter(|n| self.get(n).is_none()).collect();
        missing.dedup();
        missing
    }

    /// Why the query, statement or retain entry `sql` is not run for this person ("it names :id, which the
    /// request does not give"): it names as a parameter an identity they were not given; `None`: it runs.
    pub fn not_given_in_sql(&self, sql: &str) -> Option<String> {
        let names = params::positional(sql, |_| String::new()).names;
        let missing = self.not_given(names.iter().map(String::as_str));
        (!missing.is_empty()).then(|| not_given_text(&missing, ':'))
    }
}

/// A person as a subject rights request names them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NamedPerson {
    /// Their email address.
    pub email: String,
    /// Their first name.
    pub first_name: Option<String>,
    /// Their last name.
    pub last_name: Option<String>,
    /// Their country or region of residency.
    pub residency: Option<String>,
}

impl Identities {
    /// The identities of a directory entry.
    pub fn of(user: &UserRecord) -> Identities {
        Identities {
            id: Some(user.id.clone()),
            user_principal_name: Some(user.user_principal_name.clone()),
            mail: user.mail.clone(),
            first_name: None,
            last_name: None,
            residency: None,
            given_only: false,
            attributes: user
                .attributes
                .iter()
                .map(|(name, value)| {
                    let text = match value {
                        serde_json::Value::String(text) => text.clone(),
                        other => other.to_string(),
                    };
                    (name.clone(), text)
                })
                .collect(),
        }
    }

    /// The identities of the person a request names: their email and names, and, when the email is the
    /// mail or the userPrincipalName of a directory user (`user`), that user's identities and attributes too.
    pub fn of_person(person: &NamedPerson, user: Option<&UserRecord>) -> Identities {
        let mut who = user.map(Identities::of).unwrap_or_default();
        who.mail = Some(person.email.clone());
        who.first_name = person.first_name.clone();
        who.last_name = person.last_name.clone();
        who.residency = person.residency.clone();
        who.given_only = true;
        who
    }

    /// The identity (or further attribute) a query parameter names (`None`: unknown, or unknown for this
    /// person: bound as NULL, which matches nothing).
    pub fn get(&self, name: &str) -> Option<&str> {
        match name {
            "id" => self.id.as_deref(),
            "user_principal_name" => self.user_principal_name.as_deref(),
            "mail" => self.mail.as_deref(),
            "first_name" => self.first_name.as_deref(),
            "last_name" => self.last_name.as_deref(),
            "residency" => self.residency.as_deref(),
            other => self.attributes.get(other).map(String::as_str),
        }
    }
}

#[cfg(test)]
mod identity_tests {
    use super::*;

    fn user() -> UserRecord {
        UserRecord {
            id: "u-1".into(),
            user_principal_name: "casey@contoso.example".into(),
            display_name: None,
            mail: Some("casey@contoso.example".into()),
            attributes: [("employeeId".to_string(), serde_json::json!(17))].into(),
        }
    }

    #[test]
    fn a_person_a_request_names_binds_what_the_request_gives_and_a_matched_user_binds_the_rest() {
        let person = NamedPerson {
            email: "Casey@Shop.Example".into(),
            first_name: Some("Casey".into()),
            last_name: None,
            residency: Some("DE".into()),
        };
        let customer = Identities::of_person(&person, None);
        assert_eq!(customer.get("mail"), Some("Casey@Shop.Example"));
        assert_eq!(customer.get("first_name"), Some("Casey"));
        assert_eq!(customer.get("residency"), Some("DE"));
        for absent in ["id", "user_principal_name", "last_name", "employeeId"] {
            assert_eq!(customer.get(absent), None, "{absent}");
        }
        let employee = Identities::of_person(&person, Some(&user()));
        assert_eq!(employee.get("id"), Some("u-1"));
        assert_eq!(employee.get("user_principal_name"), Some("casey@contoso.example"));
        assert_eq!(employee.get("employeeId"), Some("17"));
        assert_eq!(employee.get("mail"), Some("Casey@Shop.Example"), "the address the request names");
        let directory = Identities::of(&user());
        assert_eq!((directory.get("first_name"), directory.get("mail")), (None, Some("casey@contoso.example")));
    }
}

/// Why a source could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// PostgreSQL refused or failed (its own message, with its detail and hint when it gives them).
    #[error("{}", postgres_text(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// SQLite refused or failed.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The SQLite database file could not be opened.
    #[error("opening {}: {cause}", path.display())]
    SqliteOpen {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        cause: rusqlite::Error,
    },
    /// A column's type has no faithful JSON form here.
    #[error(
        "column {column} is of type {type_name}, which dpo does not export as is: cast it in the query (e.g. {column}::text)"
    )]
    UnsupportedType {
        /// The column.
        column: String,
        /// Its PostgreSQL type.
        type_name: String,
    },
    /// An objects source's store could not be listed.
    #[error("{0}")]
    Objects(#[source] crate::Cause),
    /// An HTTP source's URL could not be made for the person.
    #[error("the URL {url}: {reason}")]
    HttpUrl {
        /// The template (or the page) it came from.
        url: String,
        /// Why.
        reason: String,
    },
    /// A request, a next page or a redirect would have left the source's allowed hosts (or https).
    #[error("{url} is not on the source's allowed hosts ({allowed}) over https: not requested")]
    HttpNotAllowed {
        /// Where it would have gone (without its query).
        url: String,
        /// The allowed host patterns.
        allowed: String,
    },
    /// The HTTP client could not be set up.
    #[error("setting up the HTTP client: {cause}")]
    HttpClient {
        /// Why.
        #[source]
        cause: reqwest::Error,
    },
    /// The request failed (connecting, a timeout, the connection dropped), after every retry.
    #[error("requesting {url}: {}", error_chain(.cause))]
    HttpRequest {
        /// The URL (without its query).
        url: String,
        /// Why.
        #[source]
        cause: reqwest::Error,
    },
    /// The server answered with an error status (after every retry, for those worth retrying).
    #[error("{url} answered {status}: {body}")]
    HttpStatus {
        /// The URL (without its query).
        url: String,
        /// The status.
        status: u16,
        /// The start of its body.
        body: String,
    },
    /// A page could not be read as records.
    #[error("{url}: {reason}")]
    HttpBody {
        /// The URL (without its query).
        url: String,
        /// Why.
        reason: String,
    },
    /// A next link pointed back at a page already read.
    #[error("{url}: the next link leads back to a page already read")]
    HttpPaging {
        /// The URL (without its query).
        url: String,
    },
    /// A row could not be written out.
    #[error("writing a row: {0}")]
    Encode(#[from] csv::Error),
    /// The task reading the rows ended without an answer.
    #[error("the query stopped unexpectedly")]
    Interrupted,
    /// The source reached a limit of the sources file before its end.
    #[error("the source reached its {setting} of {limit} before its end (the sources file can raise it)")]
    Limit {
        /// `max_pages`, `max_bytes` or `max_seconds`.
        setting: &'static str,
        /// Its value.
        limit: u64,
    },
}

/// An error with its causes, which reqwest keeps apart ("error sending request" alone says little).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut cause = error.source();
    while let Some(inner) = cause {
        text.push_str(&format!(": {inner}"));
        cause = inner.source();
    }
    text
}

impl SourceError {
    /// Whether asking again may well succeed: a connection that failed or was closed, a server shutting
    /// down or out of connections, a serialization failure or deadlock, a busy SQLite file. (HTTP sources
    /// ask again per request, so their errors are final.)
    pub fn is_transient(&self) -> bool {
        use tokio_postgres::error::SqlState;
        match self {
            SourceError::Postgres(e) => match e.code() {
                None => e.as_db_error().is_none(),
                Some(code) => {
                    code.code().starts_with("08")
                        || [
                            SqlState::ADMIN_SHUTDOWN,
                            SqlState::CRASH_SHUTDOWN,
                            SqlState::CANNOT_CONNECT_NOW,
                            SqlState::TOO_MANY_CONNECTIONS,
                            SqlState::T_R_SERIALIZATION_FAILURE,
                            SqlState::T_R_DEADLOCK_DETECTED,
                        ]
                        .contains(code)
                }
            },
            SourceError::Sqlite(e) => matches!(
                e.sqlite_error_code(),
                Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
            ),
            _ => false,
        }
    }
}

/// PostgreSQL's message for an error (tokio-postgres only says "db error" for a server's refusal).
fn postgres_text(error: &tokio_postgres::Error) -> String {
    match error.as_db_error() {
        Some(db) => {
            let mut text = format!("{}: {}", db.severity(), db.message());
            if let Some(detail) = db.detail() {
                text.push_str(&format!(" ({detail})"));
            }
            if let Some(hint) = db.hint() {
                text.push_str(&format!("; hint: {hint}"));
            }
            text
        }
        None => match std::error::Error::source(error) {
            Some(cause) => format!("{error}: {cause}"),
            None => error.to_string(),
        },
    }
}
