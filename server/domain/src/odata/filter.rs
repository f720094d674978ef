//! `$filter`: a small OData expression parser, checked against the entity's properties while parsing.
//!
//! Supported: `eq ne gt ge lt le`, `and or not`, parentheses, `in (...)`, `startswith/endswith/contains`
//! (optionally `eq true|false`), and the literals string (`'it''s'`), number, `null`, DateTimeOffset
//! (`2024-01-01T00:00:00Z`), GUID and enum (`'running'` or
//! `microsoft.graph.dataPolicyOperationStatus'running'`). Input is bounded in length and nesting, so a
//! hostile expression cannot exhaust the stack.

use super::{
    QueryError,
    properties::{Kind, Property, names, property},
};
use chrono::{DateTime, Utc};
use dpo_model::DataPolicyOperationStatus;
use std::fmt;
use uuid::Uuid;

/// Longest `$filter` accepted, in characters.
pub const MAX_LENGTH: usize = 8192;
/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// A comparison operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    /// `eq`
    Eq,
    /// `ne`
    Ne,
    /// `gt`
    Gt,
    /// `ge`
    Ge,
    /// `lt`
    Lt,
    /// `le`
    Le,
}

impl CmpOp {
    pub(crate) fn parse(word: &str) -> Option<CmpOp> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => CmpOp::Eq,
            "ne" => CmpOp::Ne,
            "gt" => CmpOp::Gt,
            "ge" => CmpOp::Ge,
            "lt" => CmpOp::Lt,
            "le" => CmpOp::Le,
            _ => return None,
        })
    }

    /// The operator with its operands swapped (`5 lt x` is `x gt 5`).
    fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            same => same,
        }
    }

    /// The OData spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "eq",
            CmpOp::Ne => "ne",
            CmpOp::Gt => "gt",
            CmpOp::Ge => "ge",
            CmpOp::Lt => "lt",
            CmpOp::Le => "le",
        }
    }
}

/// A string function usable as a condition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFunc {
    /// `startswith(p,'x')`
    StartsWith,
    /// `endswith(p,'x')`
    EndsWith,
    /// `contains(p,'x')`
    Contains,
}

impl TextFunc {
    fn parse(word: &str) -> Option<TextFunc> {
        Some(match word.to_ascii_lowercase().as_str() {
            "startswith" => TextFunc::StartsWith,
            "endswith" => TextFunc::EndsWith,
            "contains" => TextFunc::Contains,
            _ => return None,
        })
    }

    /// The OData spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            TextFunc::StartsWith => "startswith",
            TextFunc::EndsWith => "endswith",
            TextFunc::Contains => "contains",
        }
    }
}

/// A literal, already converted to the type of the property it is compared with.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`
    Null,
    /// A string.
    String(String),
    /// A number.
    Number(f64),
    /// A point in time.
    DateTime(DateTime<Utc>),
    /// A status.
    Status(DataPolicyOperationStatus),
    /// An operation id.
    Id(Uuid),
}

/// A checked `$filter` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    /// Both hold.
    And(Box<Filter>, Box<Filter>),
    /// Either holds.
    Or(Box<Filter>, Box<Filter>),
    /// The inner one does not hold.
    Not(Box<Filter>),
    /// `property op value`.
    Compare {
        /// The property.
        property: Property,
        /// The operator.
        op: CmpOp,
        /// The value.
        value: Value,
    },
    /// `property in (values)`.
    In {
        /// The property.
        property: Property,
        /// The values.
        values: Vec<Value>,
    },
    /// `startswith/endswith/contains(property, needle)`.
    Text {
        /// The function.
        func: TextFunc,
        /// The property.
        property: Property,
        /// The string looked for.
        needle: String,
    },
}

/// Parses and checks a `$filter` expression.
pub fn parse(input: &str) -> Result<Filter, QueryError> {
    if input.chars().count() > MAX_LENGTH {
        return Err(err(format!("the expression is longer than {MAX_LENGTH} characters")));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(err("the expression is empty"));
    }
    let mut parser = Parser { tokens, pos: 0, depth: 0 };
    let filter = parser.or_expr()?;
    if let Some(extra) = parser.peek() {
        return Err(err(format!("unexpected {} after a complete expression", extra.describe())));
    }
    Ok(filter)
}

fn err(message: impl Into<String>) -> QueryError {
    QueryError::new("$filter", format!("Invalid $filter: {}", message.into()))
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Open,
    Close,
    Comma,
    Word(String),
    Str(String),
    Number(f64),
    DateTime(DateTime<Utc>),
    Guid(Uuid),
    Enum { type_name: String, value: String },
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
            Token::Word(w) => format!("'{w}'"),
            Token::Str(s) => format!("the string '{s}'"),
            Token::Number(n) => format!("the number {n}"),
            Token::DateTime(d) => format!("the date {}", d.to_rfc3339()),
            Token::Guid(g) => format!("the GUID {g}"),
            Token::Enum { type_name, value } => format!("{type_name}'{value}'"),
        }
    }
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' | '\n' | '\r' => i += 1,
            '(' => {
                tokens.push(Token::Open);
                i += 1;
            }
            ')' => {
                tokens.push(Token::Close);
                i += 1;
            }
            ',' => {
                tokens.push(Token::Comma);
                i += 1;
            }
            '\'' => {
                let (text, next) = string_at(&chars, i)?;
                tokens.push(Token::Str(text));
                i = next;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                // A run that may be a GUID, a date, a number or a (dotted) name.
                let start = i;
                let mut end = i;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || "_.-:+".contains(chars[end])) {
                    end += 1;
                }
                let run: String = chars[start..end].iter().collect();
                if let Ok(guid) =
                    Uuid::parse_str(&run).map_err(|_| ()).and_then(|g| if run.len() == 36 { Ok(g) } else { Err(()) })
                {
                    tokens.push(Token::Guid(guid));
                    i = end;
                } else if c.is_ascii_digit() || c == '-' {
                    let literal = run.trim_end_matches([',', ')']);
                    if let Ok(date) = DateTime::parse_from_rfc3339(literal) {
                        tokens.push(Token::DateTime(date.with_timezone(&Utc)));
                    } else if let Ok(n) =
                        literal.parse::<f64>().map_err(|_| ()).and_then(|n| if n.is_finite() { Ok(n) } else { Err(()) })
                    {
                        tokens.push(Token::Number(n));
                    } else {
                        return Err(err(format!(
                            "'{literal}' is not a number, a date such as 2024-01-01T00:00:00Z, or a GUID"
                        )));
                    }
                    i = end;
                } else {
                    // Names stop at characters only literals use.
                    let mut name_end = start;
                    while name_end < chars.len()
                        && (chars[name_end].is_ascii_alphanumeric() || "_.".contains(chars[name_end]))
                    {
                        name_end += 1;
                    }
                    let name: String = chars[start..name_end].iter().collect();
                    if name_end < chars.len() && chars[name_end] == '\'' {
                        let (value, next) = string_at(&chars, name_end)?;
                        tokens.push(Token::Enum { type_name: name, value });
                        i = next;
                    } else {
                        tokens.push(Token::Word(name));
                        i = name_end;
                    }
                }
            }
            other => {
                return Err(err(format!("unexpected character '{other}' at position {}", i + 1)));
            }
        }
    }
    Ok(tokens)
}

/// Reads the quoted string starting at `start` (`''` is an escaped quote); returns it and the next index.
pub(crate) fn string_at(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(err(format!("the string starting at position {} is not closed with '", start + 1)));
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((text, i + 1)),
            Some(c) => {
                text.push(*c);
                i += 1;
            }
        }
    }
}

struct Parser {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

/// One side of a comparison before checking.
enum Operand {
    Property(Property),
    Literal(Token),
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        t
    }

    fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn expect(&mut self, wanted: Token, what: &str) -> Result<(), QueryError> {
        match self.next() {
            Some(t) if t == wanted => Ok(()),
            Some(t) => Err(err(format!("expected {what}, found {}", t.describe()))),
            None => Err(err(format!("expected {what}, found the end of the expression"))),
        }
    }

    fn deeper(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn or_expr(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.and_expr()?;
        while self.peek_word("or") {
            self.pos += 1;
            let right = self.and_expr()?;
            left = Filter::Or(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn and_expr(&mut self) -> Result<Filter, QueryError> {
        let mut left = self.unary()?;
        while self.peek_word("and") {
            self.pos += 1;
            let right = self.unary()?;
            left = Filter::And(Box::new(left), Box::new(right));
        }
        Ok(left)
    }

    fn unary(&mut self) -> Result<Filter, QueryError> {
        if self.peek_word("not") {
            self.pos += 1;
            self.deeper()?;
            let inner = self.unary()?;
            self.depth -= 1;
            return Ok(Filter::Not(Box::new(inner)));
        }
        self.primary()
    }

    fn primary(&mut self) -> Result<Filter, QueryError> {
        match self.peek().cloned() {
            Some(Token::Open) => {
                self.pos += 1;
                self.deeper()?;
                let inner = self.or_expr()?;
                self.depth -= 1;
                self.expect(Token::Close, "')'")?;
                Ok(inner)
            }
            Some(Token::Word(w))
                if TextFunc::parse(&w).is_some() && self.tokens.get(self.pos + 1) == Some(&Token::Open) =>
            {
                self.text_function()
            }
            Some(_) => self.comparison(),
            None => Err(err("the expression ends where a condition was expected")),
        }
    }

    fn text_function(&mut self) -> Result<Filter, QueryError> {
        let Some(Token::Word(name)) = self.next() else {
            return Err(err("expected a function"));
        };
        let func = TextFunc::parse(&name).ok_or_else(|| err(format!("unknown function '{name}'")))?;
        self.expect(Token::Open, "'('")?;
        let property = match self.next() {
            Some(Token::Word(p)) => known_property(&p)?,
            other => {
                return Err(err(format!("{name}() takes a property first, not {}", describe(other.as_ref()))));
            }
        };
        if property.kind != Kind::String {
            return Err(err(format!(
                "{name}() works on string properties (userId, storageLocation), not {}",
                property.name
            )));
        }
        self.expect(Token::Comma, "','")?;
        let needle = match self.next() {
            Some(Token::Str(s)) => s,
            other => {
                return Err(err(format!("{name}() takes a quoted string second, not {}", describe(other.as_ref()))));
            }
        };
        self.expect(Token::Close, "')'")?;
        let filter = Filter::Text { func, property, needle };
        // `contains(p,'x') eq true` and `... eq false` are the same condition written out.
        if let Some(Token::Word(w)) = self.peek().cloned()
            && let Some(op @ (CmpOp::Eq | CmpOp::Ne)) = CmpOp::parse(&w)
        {
            self.pos += 1;
            let truth = match self.next() {
                Some(Token::Word(b)) if b.eq_ignore_ascii_case("true") => true,
                Some(Token::Word(b)) if b.eq_ignore_ascii_case("false") => false,
                other => {
                    return Err(err(format!(
                        "{name}() is a condition: compare it with true or false, not {}",
                        describe(other.as_ref())
                    )));
                }
            };
            return Ok(if truth == (op == CmpOp::Eq) { filter } else { Filter::Not(Box::new(filter)) });
        }
        Ok(filter)
    }

    fn operand(&mut self) -> Result<Operand, QueryError> {
        match self.next() {
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Operand::Literal(Token::Word("null".into()))),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
                Err(err(format!("'{w}' cannot be compared with a property of a dataPolicyOperation (none is boolean)")))
            }
            Some(Token::Word(w)) => Ok(Operand::Property(known_property(&w)?)),
            Some(t @ (Token::Str(_) | Token::Number(_) | Token::DateTime(_) | Token::Guid(_) | Token::Enum { .. })) => {
                Ok(Operand::Literal(t))
            }
            other => Err(err(format!("expected a property or a value, found {}", describe(other.as_ref())))),
        }
    }

    fn comparison(&mut self) -> Result<Filter, QueryError> {
        let left = self.operand()?;
        let op_word = match self.next() {
            Some(Token::Word(w)) => w,
            other => {
                return Err(err(format!(
                    "expected an operator (eq, ne, gt, ge, lt, le, in), found {}",
                    describe(other.as_ref())
                )));
            }
        };
        if op_word.eq_ignore_ascii_case("in") {
            let Operand::Property(property) = left else {
                return Err(err("'in' needs a property on its left"));
            };
            self.expect(Token::Open, "'(' after 'in'")?;
            let mut values = Vec::new();
            loop {
                let token = self.next().ok_or_else(|| err("the list after 'in' is not closed"))?;
                values.push(convert(property, CmpOp::Eq, token)?);
                match self.next() {
                    Some(Token::Comma) => continue,
                    Some(Token::Close) => break,
                    other => {
                        return Err(err(format!(
                            "expected ',' or ')' in the list after 'in', found {}",
                            describe(other.as_ref())
                        )));
                    }
                }
            }
            return Ok(Filter::In { property, values });
        }
        let op = CmpOp::parse(&op_word)
            .ok_or_else(|| err(format!("'{op_word}' is not an operator: use eq, ne, gt, ge, lt, le or in")))?;
        let right = self.operand()?;
        match (left, right) {
            (Operand::Property(property), Operand::Literal(token)) => {
                Ok(Filter::Compare { property, op, value: convert(property, op, token)? })
            }
            (Operand::Literal(token), Operand::Property(property)) => {
                let op = op.flipped();
                Ok(Filter::Compare { property, op, value: convert(property, op, token)? })
            }
            (Operand::Property(a), Operand::Property(b)) => {
                Err(err(format!("comparing two properties ({} and {}) is not supported", a.name, b.name)))
            }
            (Operand::Literal(_), Operand::Literal(_)) => Err(err("a comparison needs a property on one side")),
        }
    }
}

fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the expression".to_string(), Token::describe)
}

fn known_property(name: &str) -> Result<Property, QueryError> {
    property(name).ok_or_else(|| {
        err(format!(
            "could not find a property named '{name}' on type 'microsoft.graph.dataPolicyOperation'; properties are {}",
            names()
        ))
    })
}

/// Converts a literal to the type of `property`, or says why it does not fit.
fn convert(property: Property, op: CmpOp, token: Token) -> Result<Value, QueryError> {
    let mismatch = |expected: &str, token: &Token| {
        err(format!("{} is {expected}; it cannot be compared with {}", property.name, token.describe()))
    };
    if token == Token::Word("null".into()) {
        if !property.nullable {
            return Err(err(format!("{} is never null", property.name)));
        }
        if !matches!(op, CmpOp::Eq | CmpOp::Ne) {
            return Err(err(format!("null can only be compared with eq or ne, not {}", op.as_str())));
        }
        return Ok(Value::Null);
    }
    match property.kind {
        Kind::String => match token {
            Token::Str(s) => Ok(Value::String(s)),
            t => Err(mismatch("an Edm.String (write strings in single quotes, e.g. 'alice')", &t)),
        },
        Kind::Id => match token {
            Token::Guid(g) => Ok(Value::Id(g)),
            Token::Str(s) => {
                Uuid::parse_str(&s).map(Value::Id).map_err(|_| err(format!("'{s}' is not a GUID, so no id equals it")))
            }
            t => Err(mismatch("a GUID such as d007e3da-cd9b-4b02-8d66-422403c53e3f", &t)),
        },
        Kind::DateTime => match token {
            Token::DateTime(d) => Ok(Value::DateTime(d)),
            Token::Str(s) => DateTime::parse_from_rfc3339(&s)
                .map(|d| Value::DateTime(d.with_timezone(&Utc)))
                .map_err(|_| err(format!("'{s}' is not a DateTimeOffset such as 2024-01-01T00:00:00Z"))),
            t => Err(mismatch("an Edm.DateTimeOffset (e.g. 2024-01-01T00:00:00Z, without quotes)", &t)),
        },
        Kind::Double => match token {
            Token::Number(n) => Ok(Value::Number(n)),
            t => Err(mismatch("an Edm.Double", &t)),
        },
        Kind::Status => {
            let (type_name, value) = match token {
                Token::Str(s) => (None, s),
                Token::Enum { type_name, value } => (Some(type_name), value),
                t => {
                    return Err(mismatch(
                        "a dataPolicyOperationStatus ('notStarted', 'running', 'complete', 'failed')",
                        &t,
                    ));
                }
            };
            if let Some(t) = type_name
                && t != "microsoft.graph.dataPolicyOperationStatus"
                && t != "dataPolicyOperationStatus"
            {
                return Err(err(format!(
                    "'{t}' is not the type of status; use microsoft.graph.dataPolicyOperationStatus'{value}'"
                )));
            }
            status_named(&value).map(Value::Status).ok_or_else(|| {
                err(format!("'{value}' is not a dataPolicyOperationStatus: use notStarted, running, complete, failed or unknownFutureValue"))
            })
        }
    }
}

fn status_named(name: &str) -> Option<DataPolicyOperationStatus> {
    use DataPolicyOperationStatus::*;
    [NotStarted, Running, Complete, Failed, UnknownFutureValue].into_iter().find(|s| s.as_str() == name)
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Number(n) => write!(f, "{n:?}"),
            Value::DateTime(d) => f.write_str(&d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Value::Status(s) => write!(f, "'{}'", s.as_str()),
            Value::Id(g) => write!(f, "{g}"),
        }
    }
}

/// Prints the canonical OData form; parsing it again gives the same filter.
impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Filter::And(a, b) => write!(f, "({a} and {b})"),
            Filter::Or(a, b) => write!(f, "({a} or {b})"),
            Filter::Not(a) => write!(f, "not ({a})"),
            Filter::Compare { property, op, value } => write!(f, "{} {} {value}", property.name, op.as_str()),
            Filter::In { property, values } => {
                let list: Vec<String> = values.iter().map(ToString::to_string).collect();
                write!(f, "{} in ({})", property.name, list.join(","))
            }
            Filter::Text { func, property, needle } => {
                write!(f, "{}({},'{}')", func.as_str(), property.name, needle.replace('\'', "''"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(s: &str) -> Filter {
        parse(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> String {
        parse(s).expect_err(s).message
    }

    #[test]
    fn parses_the_supported_grammar() {
        for s in [
            "status eq 'running'",
            "status eq microsoft.graph.dataPolicyOperationStatus'complete'",
            "userId eq 'o''brien' and progress ge 50.5",
            "not (status eq 'failed') or completedDateTime eq null",
            "submittedDateTime gt 2024-01-01T00:00:00Z and submittedDateTime le 2030-01-01T00:00:00.123Z",
            "status in ('running', 'notStarted')",
            "startswith(userId,'al') and contains(storageLocation,'blob') eq true",
            "endswith(userId, 'ce') eq false",
            "id eq d007e3da-cd9b-4b02-8d66-422403c53e3f",
            "50 lt progress",
            "((userId eq 'a'))",
            "progress gt -1",
        ] {
            ok(s);
        }
    }

    #[test]
    fn literal_on_the_left_flips_the_operator() {
        assert_eq!(ok("50 lt progress"), ok("progress gt 50"));
    }

    #[test]
    fn precedence_is_not_then_and_then_or() {
        let f = ok("userId eq 'a' or userId eq 'b' and not progress eq 1");
        assert!(matches!(f, Filter::Or(_, ref right) if matches!(**right, Filter::And(_, _))), "{f:?}");
    }

    #[test]
    fn errors_point_at_the_problem() {
        assert!(bad("nope eq 1").contains("'nope'"));
        assert!(bad("progress eq 'x'").contains("Edm.Double"));
        assert!(bad("status eq 'sleeping'").contains("'sleeping'"));
        assert!(bad("userId eq 'a").contains("not closed"));
        assert!(bad("userId eq 'a' and").contains("end"));
        assert!(bad("userId eq 'a')").contains("unexpected"));
        assert!(bad("userId eq null").contains("never null"));
        assert!(bad("completedDateTime gt null").contains("eq or ne"));
        assert!(bad("userId like 'a'").contains("'like'"));
        assert!(bad("contains(progress,'1')").contains("string properties"));
        assert!(bad("").contains("empty"));
        assert!(bad("userId eq 'a' # x").contains("'#'"));
    }

    #[test]
    fn hostile_nesting_is_refused_not_overflowed() {
        let deep = format!("{}userId eq 'a'{}", "(".repeat(3000), ")".repeat(3000));
        assert!(bad(&deep).contains("deeper"));
        let nots = format!("{}userId eq 'a'", "not ".repeat(1000));
        assert!(bad(&nots).contains("deeper"));
    }

    #[test]
    fn printing_and_parsing_again_gives_the_same_filter() {
        for s in
            ["status in ('running','failed') and not (userId eq 'x''y')", "contains(userId,'a') or progress le 2.5"]
        {
            let f = ok(s);
            assert_eq!(ok(&f.to_string()), f, "{f}");
        }
    }
}

#[cfg(test)]
mod properties_tests {
    //! Property tests: any input parses or fails cleanly and fast; any filter prints to text that parses
    //! back to the same filter.
    use super::*;
    use crate::odata::properties::PROPERTIES;
    use proptest::prelude::*;

    fn value_for(property: Property) -> BoxedStrategy<Value> {
        let dates = (0i64..4_000_000_000_000)
            .prop_map(|ms| Value::DateTime(DateTime::from_timestamp_millis(ms).unwrap_or_default()));
        match property.kind {
            Kind::String => any::<String>().prop_map(Value::String).boxed(),
            Kind::Id => any::<u128>().prop_map(|n| Value::Id(Uuid::from_u128(n))).boxed(),
            Kind::DateTime => dates.boxed(),
            Kind::Double => (-1.0e12f64..1.0e12).prop_map(Value::Number).boxed(),
            Kind::Status => prop_oneof![
                Just(DataPolicyOperationStatus::NotStarted),
                Just(DataPolicyOperationStatus::Running),
                Just(DataPolicyOperationStatus::Complete),
                Just(DataPolicyOperationStatus::Failed),
            ]
            .prop_map(Value::Status)
            .boxed(),
        }
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        prop_oneof![
            Just(CmpOp::Eq),
            Just(CmpOp::Ne),
            Just(CmpOp::Gt),
            Just(CmpOp::Ge),
            Just(CmpOp::Lt),
            Just(CmpOp::Le)
        ]
    }

    fn leaf() -> impl Strategy<Value = Filter> {
        let property = proptest::sample::select(PROPERTIES.to_vec());
        property.prop_flat_map(|p| {
            let compare = (op(), value_for(p)).prop_map(move |(op, value)| Filter::Compare { property: p, op, value });
            let list = proptest::collection::vec(value_for(p), 1..4)
                .prop_map(move |values| Filter::In { property: p, values });
            let mut choices = vec![compare.boxed(), list.boxed()];
            if p.nullable {
                choices.push(
                    prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ne)]
                        .prop_map(move |op| Filter::Compare { property: p, op, value: Value::Null })
                        .boxed(),
                );
            }
            if p.kind == Kind::String {
                let func = prop_oneof![Just(TextFunc::StartsWith), Just(TextFunc::EndsWith), Just(TextFunc::Contains)];
                choices.push(
                    (func, any::<String>())
                        .prop_map(move |(func, needle)| Filter::Text { func, property: p, needle })
                        .boxed(),
                );
            }
            proptest::strategy::Union::new(choices)
        })
    }

    fn filter() -> impl Strategy<Value = Filter> {
        leaf().prop_recursive(6, 48, 2, |inner| {
            prop_oneof![
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::And(Box::new(a), Box::new(b))),
                (inner.clone(), inner.clone()).prop_map(|(a, b)| Filter::Or(Box::new(a), Box::new(b))),
                inner.prop_map(|a| Filter::Not(Box::new(a))),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn printing_then_parsing_gives_the_same_filter(f in filter()) {
            let text = f.to_string();
            prop_assume!(text.chars().count() <= MAX_LENGTH);
            let parsed = parse(&text);
            prop_assert_eq!(parsed.as_ref(), Ok(&f), "{}", text);
        }

        #[test]
        fn any_input_parses_or_fails_cleanly_and_quickly(input in "\\PC{0,300}") {
            let started = std::time::Instant::now();
            let _ = parse(&input);
            // A guard against hangs (catastrophic backtracking, loops), not a speed target: far above normal.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }

        #[test]
        fn near_miss_inputs_fail_cleanly(input in "[a-zA-Z()' ,0-9.:\\-]{0,200}") {
            let _ = parse(&input);
        }
    }
}
