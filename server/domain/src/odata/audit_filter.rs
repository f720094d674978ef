//! `$filter` of `/auditLogs/directoryAudits`, as Graph documents it for `directoryAudit`: comparisons of
//! `activityDateTime` (`eq ne gt ge lt le`), equality (`eq ne`) of `id`, `category`,
//! `activityDisplayName`, `result`, `correlationId`, `loggedByService`, `operationType`,
//! `initiatedBy/user/id` and `initiatedBy/app/appId`, `startswith(activityDisplayName|category, '…')`,
//! and `targetResources/any(t: t/id eq '…')`; combined with `and`, `or`, `not` and parentheses.
//! Bounded in length and nesting like the operations' `$filter`.

use super::{
    QueryError,
    expr::{self, Cursor, Logic, Token, describe, err},
    filter::CmpOp,
};
use chrono::{DateTime, Utc};

/// A property of `directoryAudit` that `$filter` compares as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuditField {
    /// `id`.
    Id,
    /// `category`.
    Category,
    /// `activityDisplayName`.
    Activity,
    /// `result`.
    Result,
    /// `correlationId` (the request's `request-id`).
    CorrelationId,
    /// `loggedByService`.
    LoggedByService,
    /// `operationType`.
    OperationType,
    /// `initiatedBy/user/id`.
    UserId,
    /// `initiatedBy/app/appId`.
    AppId,
}

impl AuditField {
    fn parse(path: &str) -> Option<AuditField> {
        Some(match path {
            "id" => AuditField::Id,
            "category" => AuditField::Category,
            "activityDisplayName" => AuditField::Activity,
            "result" => AuditField::Result,
            "correlationId" => AuditField::CorrelationId,
            "loggedByService" => AuditField::LoggedByService,
            "operationType" => AuditField::OperationType,
            "initiatedBy/user/id" => AuditField::UserId,
            "initiatedBy/app/appId" => AuditField::AppId,
            _ => return None,
        })
    }
}

/// A checked `$filter` of audit events.
#[derive(Debug, Clone, PartialEq)]
pub enum AuditFilter {
    /// Both hold.
    And(Box<AuditFilter>, Box<AuditFilter>),
    /// Either holds.
    Or(Box<AuditFilter>, Box<AuditFilter>),
    /// The inner one does not hold.
    Not(Box<AuditFilter>),
    /// `activityDateTime op <time>`.
    Time(CmpOp, DateTime<Utc>),
    /// `field eq|ne 'value'`.
    Text {
        /// The property.
        field: AuditField,
        /// `false` for `ne`.
        equal: bool,
        /// The value.
        value: String,
    },
    /// `startswith(field, 'prefix')`.
    StartsWith(AuditField, String),
    /// `targetResources/any(t: t/id eq 'id')`.
    Target(String),
}

/// Parses and checks `$filter` of audit events.
pub fn parse(input: &str) -> Result<AuditFilter, QueryError> {
    expr::parse(input, condition)
}

impl Logic for AuditFilter {
    fn and(left: AuditFilter, right: AuditFilter) -> AuditFilter {
        AuditFilter::And(Box::new(left), Box::new(right))
    }

    fn or(left: AuditFilter, right: AuditFilter) -> AuditFilter {
        AuditFilter::Or(Box::new(left), Box::new(right))
    }

    fn not(inner: AuditFilter) -> AuditFilter {
        AuditFilter::Not(Box::new(inner))
    }
}

/// The properties, for messages.
const PROPERTIES: &str = "activityDateTime, id, category, activityDisplayName, result, correlationId, \
                          loggedByService, operationType, initiatedBy/user/id, initiatedBy/app/appId, \
                          targetResources/any(t: t/id eq '…')";

fn condition(cursor: &mut Cursor) -> Result<AuditFilter, QueryError> {
    let name = match cursor.take() {
        Some(Token::Word(name)) => name,
        Some(t) => return Err(err(format!("expected a property, found {}", t.describe()))),
        None => return Err(err("the expression ends where a condition was expected")),
    };
    if name.eq_ignore_ascii_case("startswith") {
        cursor.expect(Token::Open, "'('")?;
        let field = match cursor.take() {
            Some(Token::Word(p)) => match AuditField::parse(&p) {
                Some(f @ (AuditField::Activity | AuditField::Category)) => f,
                _ => return Err(err(format!("startswith() works on activityDisplayName and category, not '{p}'"))),
            },
            other => return Err(err(format!("startswith() takes a property first, not {}", describe(other.as_ref())))),
        };
        cursor.expect(Token::Comma, "','")?;
        let prefix = cursor.string("startswith()")?;
        cursor.expect(Token::Close, "')'")?;
        return Ok(AuditFilter::StartsWith(field, prefix));
    }
    if name == "targetResources/any" {
        return any_target(cursor);
    }
    let op = match cursor.take() {
        Some(Token::Word(w)) => CmpOp::parse(&w).ok_or_else(|| err(format!("'{w}' is not an operator")))?,
        Some(t) => return Err(err(format!("expected an operator after '{name}', found {}", t.describe()))),
        None => return Err(err(format!("expected an operator after '{name}'"))),
    };
    if name == "activityDateTime" {
        let at = match cursor.take() {
            Some(Token::DateTime(at)) => at,
            Some(t) => return Err(err(format!("activityDateTime compares with a date, not {}", t.describe()))),
            None => return Err(err("activityDateTime compares with a date")),
        };
        return Ok(AuditFilter::Time(op, at));
    }
    let field = AuditField::parse(&name).ok_or_else(|| {
        err(format!(
            "'{name}' is not a property of microsoft.graph.directoryAudit that can be filtered; use one of {PROPERTIES}"
        ))
    })?;
    let equal = match op {
        CmpOp::Eq => true,
        CmpOp::Ne => false,
        other => return Err(err(format!("'{name}' supports eq and ne, not {}", other.as_str()))),
    };
    let value = cursor.string(&name)?;
    Ok(AuditFilter::Text { field, equal, value })
}

/// `targetResources/any(t: t/id eq 'x')`, after its name.
fn any_target(cursor: &mut Cursor) -> Result<AuditFilter, QueryError> {
    cursor.expect(Token::Open, "'('")?;
    let variable = match cursor.take() {
        Some(Token::Word(v)) if !v.contains('/') => v,
        other => return Err(err(format!("any() starts with a variable and ':', not {}", describe(other.as_ref())))),
    };
    cursor.expect(Token::Colon, "':'")?;
    match cursor.take() {
        Some(Token::Word(path)) if path == format!("{variable}/id") => {}
        Some(t) => {
            return Err(err(format!(
                "targetResources/any() compares {variable}/id (the user or operation), not {}",
                t.describe()
            )));
        }
        None => return Err(err("any() ends too soon")),
    }
    if !cursor.peek_word("eq") {
        return Err(err(format!("{variable}/id supports eq")));
    }
    cursor.take();
    let id = cursor.string(&format!("{variable}/id"))?;
    cursor.expect(Token::Close, "')'")?;
    Ok(AuditFilter::Target(id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn graphs_documented_filters_parse() {
        let f = parse("activityDateTime ge 2026-01-01T00:00:00Z and category eq 'DataPolicyOperations'").unwrap();
        let AuditFilter::And(left, right) = f else { panic!("{f:?}") };
        assert!(matches!(*left, AuditFilter::Time(CmpOp::Ge, _)));
        assert_eq!(
            *right,
            AuditFilter::Text { field: AuditField::Category, equal: true, value: "DataPolicyOperations".into() }
        );
        assert_eq!(parse("targetResources/any(t: t/id eq 'alice')").unwrap(), AuditFilter::Target("alice".into()));
        assert_eq!(parse("targetResources/any(x:x/id eq 'a''b')").unwrap(), AuditFilter::Target("a'b".into()));
        assert!(matches!(
            parse("initiatedBy/user/id eq 'u' or initiatedBy/app/appId eq 'a'").unwrap(),
            AuditFilter::Or(..)
        ));
        assert_eq!(
            parse("startswith(activityDisplayName, 'Export')").unwrap(),
            AuditFilter::StartsWith(AuditField::Activity, "Export".into())
        );
        assert!(matches!(parse("not (result eq 'success')").unwrap(), AuditFilter::Not(_)));
    }

    #[test]
    fn wrong_filters_say_what_is_wrong() {
        let message = |text: &str| parse(text).unwrap_err().message;
        assert!(message("bogus eq 'x'").contains("not a property"));
        assert!(message("category gt 'x'").contains("supports eq and ne"));
        assert!(message("activityDateTime ge 'yesterday'").contains("compares with a date"));
        assert!(message("activityDateTime ge 2026-13-01T00:00:00Z").contains("not a date"));
        assert!(message("targetResources/any(t: t/displayName eq 'x')").contains("compares t/id"));
        assert!(message("category eq 'x' and").contains("ends where a condition"));
        assert!(message("category eq 'x' category").contains("unexpected"));
        assert!(message(&"(".repeat(100)).contains("nests deeper"));
        assert!(message("category eq 'x").contains("not closed"));
        assert!(message("").contains("empty"));
    }
}
