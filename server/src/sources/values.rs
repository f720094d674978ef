//! Database values as JSON, types kept: integers and numerics as numbers (as strings where a JSON reader
//! would lose precision: beyond 2^53, or more than 15 significant digits), timestamps as ISO 8601 UTC,
//! booleans, json/jsonb as nested JSON, bytea/blob as base64, NULL as null.

use super::SourceError;
use base64::Engine;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use tokio_postgres::{
    Column, Row,
    types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked},
};

/// A value of a row.
pub type Value = serde_json::Value;

/// Largest integer every JSON reader holds exactly (JavaScript's `Number.MAX_SAFE_INTEGER`).
const EXACT: i64 = (1 << 53) - 1;

/// An integer: a number, or a string beyond what JSON readers hold exactly.
pub fn integer(n: i64) -> Value {
    if (-EXACT..=EXACT).contains(&n) { Value::from(n) } else { Value::String(n.to_string()) }
}

/// A float: a number, or a string for what JSON has no number for (NaN, infinities).
fn float(f: f64) -> Value {
    serde_json::Number::from_f64(f).map_or_else(|| Value::String(f.to_string()), Value::Number)
}

/// A decimal written out (`-12.50`): a number when 15 significant digits or fewer hold it, else the text.
fn decimal(text: String) -> Value {
    let digits = text.trim_start_matches('-').replace('.', "");
    let significant = digits.trim_start_matches('0').len();
    match text.parse::<f64>() {
        Ok(f) if significant <= 15 && f.is_finite() => float(f),
        _ => Value::String(text),
    }
}

/// An identity bound as text, whatever the type PostgreSQL infers for its parameter: the server reads
/// it as it would a quoted literal, so `WHERE customer_id = :id` works on an integer column too.
#[derive(Debug)]
pub struct TextParameter(pub Option<String>);

impl ToSql for TextParameter {
    fn to_sql(&self, _: &Type, out: &mut BytesMut) -> Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match &self.0 {
            Some(text) => {
                out.extend_from_slice(text.as_bytes());
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    fn encode_format(&self, _: &Type) -> Format {
        Format::Text
    }

    to_sql_checked!();
}

/// How a PostgreSQL column is read: one variant per type read, named after it.
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy)]
pub enum PostgresKind {
    Bool,
    Int2,
    Int4,
    Int8,
    Oid,
    Float4,
    Float8,
    Numeric,
    Text,
    Uuid,
    Json,
    Timestamptz,
    Timestamp,
    Date,
    Time,
    Bytea,
}

/// How each column is read; a type dpo cannot export faithfully fails the query before any row, saying
/// how to cast it.
pub fn check_postgres_columns(columns: &[Column]) -> Result<Vec<PostgresKind>, SourceError> {
    columns
        .iter()
        .map(|column| {
            let ty = column.type_();
            Ok(match *ty {
                Type::BOOL => PostgresKind::Bool,
                Type::INT2 => PostgresKind::Int2,
                Type::INT4 => PostgresKind::Int4,
                Type::INT8 => PostgresKind::Int8,
                Type::OID => PostgresKind::Oid,
                Type::FLOAT4 => PostgresKind::Float4,
                Type::FLOAT8 => PostgresKind::Float8,
                Type::NUMERIC => PostgresKind::Numeric,
                Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => PostgresKind::Text,
                Type::UUID => PostgresKind::Uuid,
                Type::JSON | Type::JSONB => PostgresKind::Json,
                Type::TIMESTAMPTZ => PostgresKind::Timestamptz,
                Type::TIMESTAMP => PostgresKind::Timestamp,
                Type::DATE => PostgresKind::Date,
                Type::TIME => PostgresKind::Time,
                Type::BYTEA => PostgresKind::Bytea,
                _ => {
                    return Err(SourceError::UnsupportedType {
                        column: column.name().to_string(),
                        type_name: ty.name().to_string(),
                    });
                }
            })
        })
        .collect()
}

/// A row's values, as its columns' kinds say.
pub fn postgres_row(row: &Row, kinds: &[PostgresKind]) -> Result<Vec<Value>, SourceError> {
    kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let value = match kind {
                PostgresKind::Bool => row.try_get::<_, Option<bool>>(i)?.map(Value::Bool),
                PostgresKind::Int2 => row.try_get::<_, Option<i16>>(i)?.map(|n| integer(n.into())),
                PostgresKind::Int4 => row.try_get::<_, Option<i32>>(i)?.map(|n| integer(n.into())),
                PostgresKind::Int8 => row.try_get::<_, Option<i64>>(i)?.map(integer),
                PostgresKind::Oid => row.try_get::<_, Option<u32>>(i)?.map(|n| integer(n.into())),
                PostgresKind::Float4 => row.try_get::<_, Option<f32>>(i)?.map(|f| float(f.into())),
                PostgresKind::Float8 => row.try_get::<_, Option<f64>>(i)?.map(float),
                PostgresKind::Numeric => row.try_get::<_, Option<Numeric>>(i)?.map(|n| match n.0 {
                    Some(text) => decimal(text),
                    None => Value::String("NaN".into()),
                }),
                PostgresKind::Text => row.try_get::<_, Option<String>>(i)?.map(Value::String),
                PostgresKind::Uuid => row.try_get::<_, Option<uuid::Uuid>>(i)?.map(|u| Value::String(u.to_string())),
                PostgresKind::Json => row.try_get::<_, Option<Value>>(i)?,
                PostgresKind::Timestamptz => row.try_get::<_, Option<DateTime<Utc>>>(i)?.map(timestamp),
                PostgresKind::Timestamp => row.try_get::<_, Option<NaiveDateTime>>(i)?.map(|t| timestamp(t.and_utc())),
                PostgresKind::Date => row.try_get::<_, Option<NaiveDate>>(i)?.map(|d| Value::String(d.to_string())),
                PostgresKind::Time => row.try_get::<_, Option<NaiveTime>>(i)?.map(|t| Value::String(t.to_string())),
                PostgresKind::Bytea => row.try_get::<_, Option<Vec<u8>>>(i)?.map(base64),
            };
            Ok(value.unwrap_or(Value::Null))
        })
        .collect()
}

/// A SQLite value, as its storage class says (SQLite keeps timestamps as the application wrote them).
pub fn sqlite_value(value: rusqlite::types::ValueRef<'_>) -> Value {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(n) => integer(n),
        ValueRef::Real(f) => float(f),
        ValueRef::Text(bytes) => Value::String(String::from_utf8_lossy(bytes).into_owned()),
        ValueRef::Blob(bytes) => base64(bytes.to_vec()),
    }
}

fn timestamp(at: DateTime<Utc>) -> Value {
    Value::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

fn base64(bytes: Vec<u8>) -> Value {
    Value::String(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// A `numeric` in PostgreSQL's binary form, written out in decimal (`None`: NaN).
struct Numeric(Option<String>);

impl<'a> FromSql<'a> for Numeric {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let word = |i: usize| -> Result<u16, Box<dyn std::error::Error + Sync + Send>> {
            raw.get(i * 2..i * 2 + 2).map(|b| u16::from_be_bytes([b[0], b[1]])).ok_or_else(|| "short numeric".into())
        };
        let (count, weight, sign, scale) = (word(0)? as usize, word(1)? as i16, word(2)?, word(3)? as usize);
        match sign {
            0xC000 => return Ok(Numeric(None)),
            0xD000 => return Ok(Numeric(Some("Infinity".into()))),
            0xF000 => return Ok(Numeric(Some("-Infinity".into()))),
            _ => {}
        }
        let digits = (0..count).map(|i| word(4 + i)).collect::<Result<Vec<u16>, _>>()?;
        // Base-10000 digits; the first is worth 10000^weight.
        let mut integer_part = String::new();
        for position in 0..=i32::from(weight).max(-1) {
            let digit = digits.get(position as usize).copied().unwrap_or(0);
            if integer_part.is_empty() {
                if digit != 0 {
                    integer_part = digit.to_string();
                }
            } else {
                integer_part.push_str(&format!("{digit:04}"));
            }
        }
        if integer_part.is_empty() {
            integer_part.push('0');
        }
        let mut fraction = String::new();
        let mut position = i32::from(weight) + 1;
        while fraction.len() < scale {
            let digit = if position < 0 { 0 } else { digits.get(position as usize).copied().unwrap_or(0) };
            fraction.push_str(&format!("{digit:04}"));
            position += 1;
        }
        fraction.truncate(scale);
        let sign = if sign == 0x4000 { "-" } else { "" };
        Ok(Numeric(Some(if scale == 0 {
            format!("{sign}{integer_part}")
        } else {
            format!("{sign}{integer_part}.{fraction}")
        })))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_beyond_what_json_readers_hold_are_strings() {
        assert_eq!(integer(42), Value::from(42));
        assert_eq!(integer(EXACT), Value::from(EXACT));
        assert_eq!(integer(i64::MAX), Value::String(i64::MAX.to_string()));
        assert_eq!(decimal("12.50".into()), Value::from(12.5));
        assert_eq!(decimal("-0.001".into()), Value::from(-0.001));
        assert_eq!(decimal("123456789012345678.9".into()), Value::String("123456789012345678.9".into()));
        assert_eq!(float(f64::NAN), Value::String("NaN".into()));
    }

    fn numeric(words: &[u16]) -> Option<String> {
        let raw: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        Numeric::from_sql(&Type::NUMERIC, &raw).unwrap().0
    }

    #[test]
    fn numerics_are_written_out_exactly() {
        // 12345.6789: digits 1, 2345, 6789; weight 1; scale 4.
        assert_eq!(numeric(&[3, 1, 0, 4, 1, 2345, 6789]).as_deref(), Some("12345.6789"));
        // -0.05: digit 500, weight -1, scale 2.
        assert_eq!(numeric(&[1, 0xFFFF, 0x4000, 2, 500]).as_deref(), Some("-0.05"));
        // 1000000 (10^6): digits 100, 0; weight 1; scale 0 (trailing zero digits may be left out).
        assert_eq!(numeric(&[1, 1, 0, 0, 100]).as_deref(), Some("1000000"));
        assert_eq!(numeric(&[0, 0, 0, 0]).as_deref(), Some("0"));
        assert_eq!(numeric(&[0, 0, 0xC000, 0]), None);
    }
}
