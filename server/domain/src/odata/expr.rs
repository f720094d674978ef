//! What every `$filter` shares: OData's expression tokens and the boolean structure around conditions
//! (`or` binds loosest, then `and`, then `not`; parentheses), bounded in length and nesting so a hostile
//! expression cannot exhaust the stack. Each resource's filter ([`super::filter`] for operations,
//! [`super::audit_filter`] for audit events) brings only its conditions.

use super::QueryError;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Longest `$filter` accepted, in characters.
pub const MAX_LENGTH: usize = 8192;
/// Deepest nesting of parentheses and `not` accepted.
pub const MAX_DEPTH: usize = 64;

/// A `$filter` refusal with its message.
pub fn err(message: impl Into<String>) -> QueryError {
    QueryError::new("$filter", format!("Invalid $filter: {}", message.into()))
}

/// A token of an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Token {
    /// `(`
    Open,
    /// `)`
    Close,
    /// `,`
    Comma,
    /// `:` (a lambda's variable: `any(t: …)`)
    Colon,
    /// A name, a path (`initiatedBy/user/id`) or a keyword.
    Word(String),
    /// A quoted string (`'it''s'` is `it's`).
    Str(String),
    /// A number.
    Number(f64),
    /// A DateTimeOffset (`2024-01-01T00:00:00Z`, unquoted).
    DateTime(DateTime<Utc>),
    /// A GUID (unquoted).
    Guid(Uuid),
    /// An enum literal with its type: `microsoft.graph.dataPolicyOperationStatus'running'`.
    Enum {
        /// The type's name as written.
        type_name: String,
        /// The member.
        value: String,
    },
}

impl Token {
    /// The token as a message names it.
    pub fn describe(&self) -> String {
        match self {
            Token::Open => "'('".into(),
            Token::Close => "')'".into(),
            Token::Comma => "','".into(),
            Token::Colon => "':'".into(),
            Token::Word(w) => format!("'{w}'"),
            Token::Str(s) => format!("the string '{s}'"),
            Token::Number(n) => format!("the number {n}"),
            Token::DateTime(d) => format!("the date {}", d.to_rfc3339()),
            Token::Guid(g) => format!("the GUID {g}"),
            Token::Enum { type_name, value } => format!("{type_name}'{value}'"),
        }
    }
}

/// `token`, or the end of the expression, as a message names it.
pub fn describe(token: Option<&Token>) -> String {
    token.map_or_else(|| "the end of the expression".to_string(), Token::describe)
}

fn lex(input: &str) -> Result<Vec<Token>, QueryError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let single = match c {
            '(' => Some(Token::Open),
            ')' => Some(Token::Close),
            ',' => Some(Token::Comma),
            ':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(token) = single {
            tokens.push(token);
            i += 1;
            continue;
        }
        match c {
            c if c.is_whitespace() => i += 1,
            '\'' => {
                let (text, next) = string_at(&chars, i)?;
                tokens.push(Token::Str(text));
                i = next;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                // A run that may be a GUID, a date, a number or a (dotted, slashed) name.
                let mut end = i;
                while end < chars.len() && (chars[end].is_ascii_alphanumeric() || "_.-:+".contains(chars[end])) {
                    end += 1;
                }
                let run: String = chars[i..end].iter().collect();
                if run.len() == 36
                    && let Ok(guid) = Uuid::parse_str(&run)
                {
                    tokens.push(Token::Guid(guid));
                    i = end;
                } else if c.is_ascii_digit() || c == '-' {
                    tokens.push(number_or_date(&run)?);
                    i = end;
                } else {
                    // Names stop at characters only literals use.
                    let mut name_end = i;
                    while name_end < chars.len()
                        && (chars[name_end].is_ascii_alphanumeric() || "_./".contains(chars[name_end]))
                    {
                        name_end += 1;
                    }
                    let name: String = chars[i..name_end].iter().collect();
                    if chars.get(name_end) == Some(&'\'') {
                        let (value, next) = string_at(&chars, name_end)?;
                        tokens.push(Token::Enum { type_name: name, value });
                        i = next;
                    } else {
                        tokens.push(Token::Word(name));
                        i = name_end;
                    }
                }
            }
            other => return Err(err(format!("unexpected character '{other}' at position {}", i + 1))),
        }
    }
    Ok(tokens)
}

fn number_or_date(literal: &str) -> Result<Token, QueryError> {
    if let Ok(date) = DateTime::parse_from_rfc3339(literal) {
        return Ok(Token::DateTime(date.with_timezone(&Utc)));
    }
    match literal.parse::<f64>() {
        Ok(n) if n.is_finite() => Ok(Token::Number(n)),
        _ => Err(err(format!("'{literal}' is not a date such as 2024-01-01T00:00:00Z, a number, or a GUID"))),
    }
}

/// Reads the quoted string starting at `start` (`''` is an escaped quote); returns it and the next index.
fn string_at(chars: &[char], start: usize) -> Result<(String, usize), QueryError> {
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

/// A filter's boolean structure.
pub trait Logic: Sized {
    /// Both hold.
    fn and(left: Self, right: Self) -> Self;
    /// Either holds.
    fn or(left: Self, right: Self) -> Self;
    /// It does not hold.
    fn not(inner: Self) -> Self;
}

/// The tokens of an expression, read by a resource's conditions.
pub struct Cursor {
    tokens: Vec<Token>,
    pos: usize,
    depth: usize,
}

impl Cursor {
    /// The next token, left where it is.
    pub fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.pos)
    }

    /// The token after the next one, left where it is.
    pub fn peek_second(&self) -> Option<&Token> {
        self.tokens.get(self.pos + 1)
    }

    /// Takes the next token.
    pub fn take(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.pos).cloned();
        self.pos += 1;
        token
    }

    /// Whether the next token is this keyword (any case).
    pub fn peek_word(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    /// Takes the next token, which must be `wanted` (`what` names it in the message).
    pub fn expect(&mut self, wanted: Token, what: &str) -> Result<(), QueryError> {
        match self.take() {
            Some(t) if t == wanted => Ok(()),
            other => Err(err(format!("expected {what}, found {}", describe(other.as_ref())))),
        }
    }

    /// Takes the next token, which must be a quoted string (`what` takes it, says the message).
    pub fn string(&mut self, what: &str) -> Result<String, QueryError> {
        match self.take() {
            Some(Token::Str(s)) => Ok(s),
            other => Err(err(format!("{what} takes a quoted string, not {}", describe(other.as_ref())))),
        }
    }

    fn deeper(&mut self) -> Result<(), QueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(err(format!("the expression nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }
}

/// Parses `input`: the boolean structure here, each condition by `condition`, which reads one from the
/// cursor (a parenthesis or `not` never reaches it).
pub fn parse<F: Logic>(
    input: &str,
    mut condition: impl FnMut(&mut Cursor) -> Result<F, QueryError>,
) -> Result<F, QueryError> {
    if input.chars().count() > MAX_LENGTH {
        return Err(err(format!("the expression is longer than {MAX_LENGTH} characters")));
    }
    let tokens = lex(input)?;
    if tokens.is_empty() {
        return Err(err("the expression is empty"));
    }
    let mut cursor = Cursor { tokens, pos: 0, depth: 0 };
    let filter = or_expr(&mut cursor, &mut condition)?;
    if let Some(extra) = cursor.peek() {
        return Err(err(format!("unexpected {} after a complete expression", extra.describe())));
    }
    Ok(filter)
}

type Condition<'a, F> = dyn FnMut(&mut Cursor) -> Result<F, QueryError> + 'a;

fn or_expr<F: Logic>(cursor: &mut Cursor, condition: &mut Condition<'_, F>) -> Result<F, QueryError> {
    let mut left = and_expr(cursor, condition)?;
    while cursor.peek_word("or") {
        cursor.pos += 1;
        left = F::or(left, and_expr(cursor, condition)?);
    }
    Ok(left)
}

fn and_expr<F: Logic>(cursor: &mut Cursor, condition: &mut Condition<'_, F>) -> Result<F, QueryError> {
    let mut left = unary(cursor, condition)?;
    while cursor.peek_word("and") {
        cursor.pos += 1;
        left = F::and(left, unary(cursor, condition)?);
    }
    Ok(left)
}

fn unary<F: Logic>(cursor: &mut Cursor, condition: &mut Condition<'_, F>) -> Result<F, QueryError> {
    if cursor.peek_word("not") {
        cursor.pos += 1;
        cursor.deeper()?;
        let inner = unary(cursor, condition)?;
        cursor.depth -= 1;
        return Ok(F::not(inner));
    }
    match cursor.peek() {
        Some(Token::Open) => {
            cursor.pos += 1;
            cursor.deeper()?;
            let inner = or_expr(cursor, condition)?;
            cursor.depth -= 1;
            cursor.expect(Token::Close, "')'")?;
            Ok(inner)
        }
        Some(_) => condition(cursor),
        None => Err(err("the expression ends where a condition was expected")),
    }
}
