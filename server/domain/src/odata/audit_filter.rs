//! `$filter` of `/auditLogs/directoryAudits`, as Graph documents it for `directoryAudit`: comparisons of
//! `activityDateTime` (`eq ne gt ge lt le`), equality (`eq ne`) of `id`, `category`,
//! `activityDisplayName`, `result`, `correlationId`, `loggedByService`, `operationType`,
//! `initiatedBy/user/id` and `initiatedBy/app/appId`, `startswith(activityDisplayName|category, '…')`,
//! and `targetResources/any(t: t/id eq '…')`; combined with `and`, `or`, `not` and parentheses.
//! Bounded in length and nesting like the operations' `$filter`.

use super::{
    QueryError,
    filter::{CmpOp, MAX_DEPTH, MAX_LENGTH},
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
    if input.chars().count() > MAX_LENGTH {
        return Err(err(format!("the expression is longer than {MAX_LENGTH} characters")));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(err("the expression is empty"));
    }
    let mut parser = Parser { tokens, pos: 0, depth: 0 };
    let filter = parser.or_expr()?;
    if let Some(extra) = parser.tokens.get(parser.pos) {
        return Err(err(format!("unexpected {} after a complete expression", extra.describe())));
    }
    Ok(filter)
}

fn err(message: impl Into<String>) -> QueryError {
    QueryError::new("$filter", format!("Invalid $filter: {}", message.into()))
}

/// The properties, for messages.
const PROPERTIES: &str = "activityDateTime, id, category, activityDisplayName, result, correlationId, \
                          loggedByService, operationType, initiatedBy/user/id, initiatedBy/app/appId, \
                          targetResources/any(t: t/id eq '…')";

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Colon,
    /// A name, a path (`initiatedBy/user/id`), a keyword, or an unquoted literal (a date).
    Word(String),
    Str(String),
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
            Token::Colon => "':'".into(),
            Token::Word(w) => format!("'{w}'"),
            Token::Str(s) => format!("the string '{s}'"),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        match chars[i] {
            c if c.is_whitespace() => i += 1,
            '(' => (tokens.push(Token::Open), i += 1).1,
            ')' => (tokens.push(Token::Close), i += 1).1,
            ',' => (tokens.push(Token::Comma), i += 1).1,
            ':' => (tokens.push(Token::Colon), i += 1).1,
            '\'' => {
                let (text, next) = super::filter::string_at(&chars, i)?;
                tokens.push(Token::Str(text));
                i = next;
            }
            c if c.is_ascii_alphanumeric() || c == '_' => {
                let start = i;
                // A date keeps its colons when it starts with a digit (`2026-01-01T00:00:00Z`).
                let date = c.is_ascii_digit();
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || "_/.-+".contains(chars[i]) || (date && chars[i] == ':'))
                {
                    i += 1;
                }
                tokens.push(Token::Word(chars[start..i].iter().collect()));
            }
            other => return Err(err(format!("unexpected character '{other}' at position {}", i + 1))),
        }
    }
    Ok(tokens)
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Parser {
    fn next(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.tokens.get(self.pos), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, wanted: Token) -> Result<(), QueryError> {
        match self.next() {
            Some(t) if t == wanted => Ok(()),
            Some(t) => Err(err(format!("expected {}, found {}", wanted.describe(), t.describe()))),
            None => Err(err(format!("expected {}, found the end of the expression", wanted.describe()))),
        }
    }

    fn string(&mut self, what: &str) -> Result<String, QueryError> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            Some(t) => Err(err(format!("{what} takes a quoted string, not {}", t.describe()))),
            None => Err(err(format!("{what} takes a quoted string"))),
        }
    }

    fn deeper(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<AuditFilter, QueryError> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.pos += 1;
            left = AuditFilter::Or(Box::new(left), Box::new(self.and_expr()?));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<AuditFilter, QueryError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            left = AuditFilter::And(Box::new(left), Box::new(self.unary()?));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<AuditFilter, QueryError> {
        if self.peek_word("not") {
            self.pos += 1;
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(AuditFilter::Not(Box::new(inner)));
        }
        if self.tokens.get(self.pos) == Some(&Token::Open) {
            self.pos += 1;
            self.deeper()?;
            let inner = self.or_expr()?;
            self.depth -= 1;
            self.expect(Token::Close)?;
            return Ok(inner);
        }
        self.condition()
    }

    fn condition(&mut self) -> Result<AuditFilter, QueryError> {
        let name = match self.next() {
            Some(Token::Word(name)) => name,
            Some(t) => return Err(err(format!("expected a property, found {}", t.describe()))),
            None => return Err(err("the expression ends where a condition was expected")),
        };
        if name.eq_ignore_ascii_case("startswith") {
            self.expect(Token::Open)?;
            let field = match self.next() {
                Some(Token::Word(p)) => match AuditField::parse(&p) {
                    Some(f @ (AuditField::Activity | AuditField::Category)) => f,
                    _ => return Err(err(format!("startswith() works on activityDisplayName and category, not '{p}'"))),
                },
                other => return Err(err(format!("startswith() takes a property first, not {other:?}"))),
            };
            self.expect(Token::Comma)?;
            let prefix = self.string("startswith()")?;
            self.expect(Token::Close)?;
            return Ok(AuditFilter::StartsWith(field, prefix));
        }
        if name == "targetResources/any" {
            return self.any_target();
        }
        let op = match self.next() {
            Some(Token::Word(w)) => CmpOp::parse(&w).ok_or_else(|| err(format!("'{w}' is not an operator")))?,
            Some(t) => return Err(err(format!("expected an operator after '{name}', found {}", t.describe()))),
            None => return Err(err(format!("expected an operator after '{name}'"))),
        };
        if name == "activityDateTime" {
            let at = match self.next() {
                Some(Token::Word(w)) => DateTime::parse_from_rfc3339(&w)
                    .map_err(|_| err(format!("'{w}' is not a date such as 2026-01-01T00:00:00Z")))?
                    .with_timezone(&Utc),
                Some(t) => return Err(err(format!("activityDateTime compares with a date, not {}", t.describe()))),
                None => return Err(err("activityDateTime compares with a date")),
            };
            return Ok(AuditFilter::Time(op, at));
        }
        let field = AuditField::parse(&name).ok_or_else(|| {
            err(format!("'{name}' is not a property of microsoft.graph.directoryAudit that can be filtered; use one of {PROPERTIES}"))
        })?;
        let equal = match op {
            CmpOp::Eq => true,
            CmpOp::Ne => false,
            other => return Err(err(format!("'{name}' supports eq and ne, not {}", other.as_str()))),
        };
        let value = self.string(&name)?;
        Ok(AuditFilter::Text { field, equal, value })
    }

    /// `targetResources/any(t: t/id eq 'x')`, after its name.
    fn any_target(&mut self) -> Result<AuditFilter, QueryError> {
        self.expect(Token::Open)?;
        let variable = match self.next() {
            Some(Token::Word(v)) if !v.contains('/') => v,
            other => return Err(err(format!("any() starts with a variable and ':', not {other:?}"))),
        };
        self.expect(Token::Colon)?;
        match self.next() {
            Some(Token::Word(path)) if path == format!("{variable}/id") => {}
            Some(t) => {
                return Err(err(format!(
                    "targetResources/any() compares {variable}/id (the user or operation), not {}",
                    t.describe()
                )));
            }
            None => return Err(err("any() ends too soon")),
        }
        if !self.peek_word("eq") {
            return Err(err(format!("{variable}/id supports eq")));
        }
        self.pos += 1;
        let id = self.string(&format!("{variable}/id"))?;
        self.expect(Token::Close)?;
        Ok(AuditFilter::Target(id))
    }
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
