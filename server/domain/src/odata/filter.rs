//! `$filter`: a small OData expression parser, checked against the entity's properties while parsing.
//!
//! Supported: `eq ne gt ge lt le`, `and or not`, parentheses, `in (...)`, `startswith/endswith/contains`
//! (optionally `eq true|false`), and the literals string (`'it''s'`), number, `null`, DateTimeOffset
//! (`2024-01-01T00:00:00Z`), GUID and enum (`'running'` or
//! `microsoft.graph.dataPolicyOperationStatus'running'`). Input is bounded in length and nesting, so a
//! hostile expression cannot exhaust the stack.

use super::{
    QueryError,
    expr::{self, Cursor, Logic, Token, describe, err},
    properties::{EntityType, Kind, Property},
};
use chrono::{DateTime, Utc};
use std::fmt;
use uuid::Uuid;

pub use super::expr::{MAX_DEPTH, MAX_LENGTH};

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
    /// A member of the property's enum type.
    Enum(&'static str),
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

/// Parses and checks a `$filter` expression on a collection of `entity`.
pub fn parse(entity: &'static EntityType, input: &str) -> Result<Filter, QueryError> {
    expr::parse(input, |cursor| condition(entity, cursor))
}

impl Logic for Filter {
    fn and(left: Filter, right: Filter) -> Filter {
        Filter::And(Box::new(left), Box::new(right))
    }

    fn or(left: Filter, right: Filter) -> Filter {
        Filter::Or(Box::new(left), Box::new(right))
    }

    fn not(inner: Filter) -> Filter {
        Filter::Not(Box::new(inner))
    }
}

/// One side of a comparison before checking.
enum Operand {
    Property(Property),
    Literal(Token),
}

/// A comparison, `in`, or a text function.
fn condition(entity: &'static EntityType, cursor: &mut Cursor) -> Result<Filter, QueryError> {
    match cursor.peek() {
        Some(Token::Word(w)) if TextFunc::parse(w).is_some() && cursor.peek_second() == Some(&Token::Open) => {
            text_function(entity, cursor)
        }
        _ => comparison(entity, cursor),
    }
}

fn text_function(entity: &'static EntityType, cursor: &mut Cursor) -> Result<Filter, QueryError> {
    let Some(Token::Word(name)) = cursor.take() else {
        return Err(err("expected a function"));
    };
    let func = TextFunc::parse(&name).ok_or_else(|| err(format!("unknown function '{name}'")))?;
    cursor.expect(Token::Open, "'('")?;
    let property = match cursor.take() {
        Some(Token::Word(p)) => known_property(entity, &p)?,
        other => {
            return Err(err(format!("{name}() takes a property first, not {}", describe(other.as_ref()))));
        }
    };
    if property.kind != Kind::String {
        let strings: Vec<&str> = entity.properties.iter().filter(|p| p.kind == Kind::String).map(|p| p.name).collect();
        return Err(err(format!(
            "{name}() works on string properties ({}), not {}",
            strings.join(", "),
            property.name
        )));
    }
    cursor.expect(Token::Comma, "','")?;
    let needle = match cursor.take() {
        Some(Token::Str(s)) => s,
        other => {
            return Err(err(format!("{name}() takes a quoted string second, not {}", describe(other.as_ref()))));
        }
    };
    cursor.expect(Token::Close, "')'")?;
    let filter = Filter::Text { func, property, needle };
    // `contains(p,'x') eq true` and `... eq false` are the same condition written out.
    if let Some(Token::Word(w)) = cursor.peek().cloned()
        && let Some(op @ (CmpOp::Eq | CmpOp::Ne)) = CmpOp::parse(&w)
    {
        cursor.take();
        let truth = match cursor.take() {
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

fn operand(entity: &'static EntityType, cursor: &mut Cursor) -> Result<Operand, QueryError> {
    match cursor.take() {
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("null") => Ok(Operand::Literal(Token::Word("null".into()))),
        Some(Token::Word(w)) if w.eq_ignore_ascii_case("true") || w.eq_ignore_ascii_case("false") => {
            Err(err(format!("'{w}' cannot be compared with a property of {} (none is boolean)", entity.name)))
        }
        Some(Token::Word(w)) => Ok(Operand::Property(known_property(entity, &w)?)),
        Some(t @ (Token::Str(_) | Token::Number(_) | Token::DateTime(_) | Token::Guid(_) | Token::Enum { .. })) => {
            Ok(Operand::Literal(t))
        }
        other => Err(err(format!("expected a property or a value, found {}", describe(other.as_ref())))),
    }
}

fn comparison(entity: &'static EntityType, cursor: &mut Cursor) -> Result<Filter, QueryError> {
    let left = operand(entity, cursor)?;
    let op_word = match cursor.take() {
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
        cursor.expect(Token::Open, "'(' after 'in'")?;
        let mut values = Vec::new();
        loop {
            let token = cursor.take().ok_or_else(|| err("the list after 'in' is not closed"))?;
            values.push(convert(property, CmpOp::Eq, token)?);
            match cursor.take() {
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
    let right = operand(entity, cursor)?;
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

fn known_property(entity: &EntityType, name: &str) -> Result<Property, QueryError> {
    entity.property(name).ok_or_else(|| {
        err(format!(
            "could not find a property named '{name}' on type '{}'; properties are {}",
            entity.name,
            entity.names()
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
        Kind::Enum(enum_type) => {
            let (type_name, value) = match token {
                Token::Str(s) => (None, s),
                Token::Enum { type_name, value } => (Some(type_name), value),
                t => {
                    return Err(mismatch(
                        &format!("a {} ({})", enum_type.short_name(), enum_type.members.join(", ")),
                        &t,
                    ));
                }
            };
            if let Some(t) = type_name
                && t != enum_type.name
                && t != enum_type.short_name()
            {
                return Err(err(format!(
                    "'{t}' is not the type of {}; use {}'{value}'",
                    property.name, enum_type.name
                )));
            }
            enum_type.member(&value).map(Value::Enum).ok_or_else(|| {
                err(format!("'{value}' is not a {}: use {}", enum_type.short_name(), enum_type.members.join(", ")))
            })
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::String(s) => write!(f, "'{}'", s.replace('\'', "''")),
            Value::Number(n) => write!(f, "{n:?}"),
            Value::DateTime(d) => f.write_str(&d.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Value::Enum(member) => write!(f, "'{member}'"),
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
    use crate::odata::properties::DATA_POLICY_OPERATION;

    fn ok(s: &str) -> Filter {
        parse(&DATA_POLICY_OPERATION, s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    fn bad(s: &str) -> String {
        parse(&DATA_POLICY_OPERATION, s).expect_err(s).message
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
    use crate::odata::properties::DATA_POLICY_OPERATION;
    use proptest::prelude::*;

    fn value_for(property: Property) -> BoxedStrategy<Value> {
        let dates = (0i64..4_000_000_000_000)
            .prop_map(|ms| Value::DateTime(DateTime::from_timestamp_millis(ms).unwrap_or_default()));
        match property.kind {
            Kind::String => any::<String>().prop_map(Value::String).boxed(),
            Kind::Id => any::<u128>().prop_map(|n| Value::Id(Uuid::from_u128(n))).boxed(),
            Kind::DateTime => dates.boxed(),
            Kind::Double => (-1.0e12f64..1.0e12).prop_map(Value::Number).boxed(),
            Kind::Enum(enum_type) => proptest::sample::select(enum_type.members).prop_map(Value::Enum).boxed(),
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
        let property = proptest::sample::select(DATA_POLICY_OPERATION.properties.to_vec());
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
            let parsed = parse(&DATA_POLICY_OPERATION, &text);
            prop_assert_eq!(parsed.as_ref(), Ok(&f), "{}", text);
        }

        #[test]
        fn any_input_parses_or_fails_cleanly_and_quickly(input in "\\PC{0,300}") {
            let started = std::time::Instant::now();
            let _ = parse(&DATA_POLICY_OPERATION, &input);
            // A guard against hangs (catastrophic backtracking, loops), not a speed target: far above normal.
            prop_assert!(started.elapsed() < std::time::Duration::from_secs(2));
        }

        #[test]
        fn near_miss_inputs_fail_cleanly(input in "[a-zA-Z()' ,0-9.:\\-]{0,200}") {
            let _ = parse(&DATA_POLICY_OPERATION, &input);
        }
    }
}
