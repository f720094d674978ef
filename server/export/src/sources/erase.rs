//! How a source erases a person's data, as the sources file says (subject rights requests of type
//! `delete`): a `sql` source's statements on a connection that may write (`erase_url`, `[[source.erase]]`,
//! each one `DELETE` or `UPDATE`, masking allowed) and the rows it keeps by law (`[[source.retain]]`, a
//! `SELECT` and its reason); an `objects` source's `erase = true` (every object under the person's prefix);
//! an `http` source's `erase = { method, url }`. Checked when the file is read, with the line at fault.

use super::{file::Database, http::HttpSource, params::positional};
use serde::Deserialize;

/// Rows one erase statement may change unless the file says: an estimate above it stops the request.
pub const MAX_ROWS: u64 = 10_000;

/// What erasing the person's data in a source does.
#[derive(Debug, Clone, PartialEq)]
pub enum Erasure {
    /// Statements run in order, each in its own transaction, on a connection that may write.
    Sql {
        /// The connection (the source's queries keep their read-only one).
        database: Database,
        /// The statements.
        statements: Vec<EraseStatement>,
    },
    /// Every object under the person's prefix is deleted.
    Objects,
    /// One request to the API, under the source's host rules.
    Http {
        /// `DELETE`, `POST`, `PUT` or `PATCH`.
        method: String,
        /// The request's URL template, headers and token (checked as the source's own).
        request: HttpSource,
    },
}

/// One statement that erases (or masks) the person's rows.
#[derive(Debug, Clone, PartialEq)]
pub struct EraseStatement {
    /// Its name, in reports.
    pub name: String,
    /// The SQL, with identities as named parameters (`:mail`).
    pub sql: String,
    /// The most rows it may change.
    pub max_rows: u64,
    /// Where the file defines it.
    pub line: usize,
}

/// Rows of the person a source keeps, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Retained {
    /// Its name, in reports.
    pub name: String,
    /// A `SELECT` of the rows kept, with identities as named parameters.
    pub sql: String,
    /// The legal basis ("invoices, 10 years").
    pub reason: String,
    /// Where the file defines it.
    pub line: usize,
}

/// `erase = …` as written: a flag (objects), a request (http) or statements (sql).
#[derive(Deserialize)]
#[serde(untagged)]
pub(super) enum EraseToml {
    Flag(bool),
    Request(RequestToml),
    Statements(Vec<StatementToml>),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RequestToml {
    pub(super) method: String,
    pub(super) url: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct StatementToml {
    name: String,
    sql: String,
    max_rows: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RetainToml {
    name: String,
    sql: String,
    reason: String,
}

/// The first word of `sql`, upper-case, after whitespace and `--` or `/* */` comments.
fn first_keyword(sql: &str) -> String {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, next)| next).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, next)| next).trim_start();
        } else {
            break;
        }
    }
    rest.chars().take_while(|c| c.is_ascii_alphabetic()).collect::<String>().to_ascii_uppercase()
}

/// Checks the identities `sql` names: each known, at least one (a statement naming none is about every
/// row, never one person's).
fn named(what: &str, sql: &str, names: &[String]) -> Result<(), String> {
    let used = positional(sql, |n| format!("${n}")).names;
    if let Some(unknown) = used.iter().find(|n| !names.contains(n)) {
        return Err(format!(
            "{what} names :{unknown}, which is not an identity of the person (they are :{})",
            names.join(", :")
        ));
    }
    if used.is_empty() {
        return Err(format!("{what} names no identity of the person (:mail, :id, …): it would be about every row"));
    }
    Ok(())
}

/// One statement, or why it cannot be one: `DELETE` or `UPDATE` only, a single statement, about the person.
pub(super) fn statement(written: StatementToml, line: usize, names: &[String]) -> Result<EraseStatement, String> {
    super::file::check_name("erase", &written.name)?;
    let what = format!("erase {:?}", written.name);
    let keyword = first_keyword(&written.sql);
    if keyword != "DELETE" && keyword != "UPDATE" {
        return Err(format!("{what} must be one DELETE or UPDATE statement (it starts with {keyword:?})"));
    }
    if written.sql.trim_end().trim_end_matches(';').contains(';') {
        return Err(format!("{what} holds more than one statement: one DELETE or UPDATE each"));
    }
    named(&what, &written.sql, names)?;
    let max_rows = written.max_rows.unwrap_or(MAX_ROWS);
    if max_rows == 0 {
        return Err(format!("{what}: max_rows is at least 1"));
    }
    Ok(EraseStatement { name: written.name, sql: written.sql, max_rows, line })
}

/// One retained set of rows, or why it cannot be one: a `SELECT` about the person, with a reason.
pub(super) fn retained(written: RetainToml, line: usize, names: &[String]) -> Result<Retained, String> {
    super::file::check_name("retain", &written.name)?;
    let what = format!("retain {:?}", written.name);
    let keyword = first_keyword(&written.sql);
    if keyword != "SELECT" && keyword != "WITH" {
        return Err(format!("{what} must be a SELECT of the rows kept (it starts with {keyword:?})"));
    }
    named(&what, &written.sql, names)?;
    if written.reason.trim().is_empty() {
        return Err(format!("{what} needs a reason: the legal basis for keeping the rows"));
    }
    Ok(Retained { name: written.name, sql: written.sql, reason: written.reason, line })
}

/// The lines of the `[[header]]` tables of `text`, in order.
pub(super) fn header_lines(text: &str, header: &str) -> Vec<usize> {
    let wanted = format!("[[{header}]]");
    text.lines()
        .enumerate()
        .filter(|(_, l)| l.trim().split('#').next().unwrap_or("").trim() == wanted)
        .map(|(i, _)| i + 1)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_keyword_skips_comments_and_space() {
        assert_eq!(first_keyword("  -- mask them\n  /* names */ update customers SET name = NULL"), "UPDATE");
        assert_eq!(first_keyword("\nDELETE FROM t"), "DELETE");
        assert_eq!(first_keyword("with x as (select 1) select * from x"), "WITH");
    }
}
