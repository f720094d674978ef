//! Database values as JSON, types kept: integers and numerics as numbers (as strings where a JSON reader
//! would lose precision: beyond 2^53, or more than 15 significant digits), timestamps as ISO 8601 UTC,
//! booleans, json/jsonb as nested JSON, bytea/blob as base64, NULL as null.
//!
//! A value is read as a [`Cell`] that borrows from the driver's row where it can (text, JSON, bytes) and
//! is written straight into the file's bytes: no JSON tree is built per value.

use super::SourceError;
use base64::Engine;
use bytes::BytesMut;
use chrono::{DateTime, NaiveDate, NaiveTime, SecondsFormat, Utc};
use std::{borrow::Cow, io::Write};
use tokio_postgres::{
    Column, Row,
    types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked},
};

/// Largest integer every JSON reader holds exactly (JavaScript's `Number.MAX_SAFE_INTEGER`).
const EXACT: i64 = (1 << 53) - 1;

/// One value of a row, as it is written out.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    /// NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer: a number, or a string beyond what JSON readers hold exactly.
    Int(i64),
    /// A float: a number, or a string for what JSON has no number for (NaN, infinities).
    Float(f64),
    /// A decimal written out (`-12.50`, `NaN`): a number when 15 significant digits or fewer hold it.
    Decimal(Cow<'a, str>),
    /// Text.
    Text(Cow<'a, str>),
    /// JSON text (of a json or jsonb column): nested as it is, without the whitespace between tokens.
    Json(&'a [u8]),
    /// A point in time, in microseconds since 1970-01-01 UTC: ISO 8601 UTC.
    Timestamp(i64),
    /// Bytes: base64.
    Bytes(&'a [u8]),
}

impl Cell<'_> {
    /// Appends the value as JSON.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        // Writing into a Vec cannot fail.
        match self {
            Cell::Null => out.extend_from_slice(b"null"),
            Cell::Bool(true) => out.extend_from_slice(b"true"),
            Cell::Bool(false) => out.extend_from_slice(b"false"),
            Cell::Int(n) if (-EXACT..=EXACT).contains(n) => {
                let _ = serde_json::to_writer(&mut *out, n);
            }
            Cell::Int(n) => {
                let _ = write!(out, "\"{n}\"");
            }
            Cell::Float(f) if f.is_finite() => {
                let _ = serde_json::to_writer(&mut *out, f);
            }
            Cell::Float(f) => {
                let _ = write!(out, "\"{f}\"");
            }
            Cell::Decimal(text) if json_number(text) => out.extend_from_slice(text.as_bytes()),
            Cell::Decimal(text) | Cell::Text(text) => {
                let _ = serde_json::to_writer(&mut *out, text.as_ref());
            }
            Cell::Json(json) => compact(json, out),
            Cell::Timestamp(micros) => {
                out.push(b'"');
                write_timestamp(*micros, out);
                out.push(b'"');
            }
            Cell::Bytes(bytes) => {
                out.push(b'"');
                let start = out.len();
                out.resize(start + base64::encoded_len(bytes.len(), true).unwrap_or_default(), 0);
                let written = base64::engine::general_purpose::STANDARD.encode_slice(bytes, &mut out[start..]);
                out.truncate(start + written.unwrap_or_default());
                out.push(b'"');
            }
        }
    }

    /// The value as a CSV field: NULL empty, JSON as its text, the rest as in JSON but unquoted.
    pub fn csv_field(&self) -> Cow<'_, str> {
        match self {
            Cell::Null => Cow::Borrowed(""),
            Cell::Text(text) | Cell::Decimal(text) => Cow::Borrowed(text.as_ref()),
            Cell::Json(json) => {
                let mut out = Vec::with_capacity(json.len());
                compact(json, &mut out);
                Cow::Owned(String::from_utf8_lossy(&out).into_owned())
            }
            other => {
                let mut out = Vec::new();
                other.write_json(&mut out);
                let text = String::from_utf8_lossy(&out).into_owned();
                Cow::Owned(match text.strip_prefix('"').and_then(|t| t.strip_suffix('"')) {
                    Some(inner) => inner.to_string(),
                    None => text,
                })
            }
        }
    }
}

/// Whether a decimal's text is a JSON number a reader holds exactly: finite, at most 15 significant digits.
fn json_number(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let valid = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|b| *b == b'.').count() <= 1
        && !digits.starts_with('.')
        && !digits.ends_with('.')
        && !(digits.len() > 1 && digits.starts_with('0') && !digits.starts_with("0."));
    valid && digits.bytes().filter(u8::is_ascii_digit).skip_while(|b| *b == b'0').count() <= 15
}

/// `YYYY-MM-DDTHH:MM:SS[.fff…]Z`, the fraction as long as it needs to be (3, 6 or 9 digits), as
/// chrono's `to_rfc3339_opts(AutoSi, true)` writes it but without building a string.
fn write_timestamp(micros: i64, out: &mut Vec<u8>) {
    const DAY: i64 = 86_400_000_000;
    let (days, of_day) = (micros.div_euclid(DAY), micros.rem_euclid(DAY));
    let (year, month, day) = civil_from_days(days);
    if !(0..=9999).contains(&year) {
        match DateTime::<Utc>::from_timestamp_micros(micros) {
            Some(at) => out.extend_from_slice(at.to_rfc3339_opts(SecondsFormat::AutoSi, true).as_bytes()),
            None => out.extend_from_slice(micros.to_string().as_bytes()),
        }
        return;
    }
    let two = |out: &mut Vec<u8>, n: i64| out.extend_from_slice(&[b'0' + (n / 10) as u8, b'0' + (n % 10) as u8]);
    two(out, year / 100);
    two(out, year % 100);
    out.push(b'-');
    two(out, month);
    out.push(b'-');
    two(out, day);
    out.push(b'T');
    let seconds = of_day / 1_000_000;
    two(out, seconds / 3600);
    out.push(b':');
    two(out, seconds / 60 % 60);
    out.push(b':');
    two(out, seconds % 60);
    let fraction = of_day % 1_000_000;
    if fraction != 0 {
        let (mut value, width) = if fraction % 1000 == 0 { (fraction / 1000, 3) } else { (fraction, 6) };
        out.push(b'.');
        let start = out.len();
        out.resize(start + width, b'0');
        for at in (start..start + width).rev() {
            out[at] = b'0' + (value % 10) as u8;
            value /= 10;
        }
    }
    out.push(b'Z');
}

/// The proleptic Gregorian date of `days` since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(month <= 2), month, day)
}

/// Appends the JSON text `json` without the whitespace between its tokens, so that it stays on one line
/// (its strings, escapes included, are copied as they are).
pub fn compact(json: &[u8], out: &mut Vec<u8>) {
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            out.push(byte);
            if escaped {
                escaped = false;
            } else if byte == b'\\' {
                escaped = true;
            } else if byte == b'"' {
                in_string = false;
            }
        } else if !matches!(byte, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = byte == b'"';
            out.push(byte);
        }
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

/// The value of column `i` of `row`, as its kind says, borrowed from the row where it can be.
pub fn postgres_cell<'r>(row: &'r Row, i: usize, kind: PostgresKind) -> Result<Cell<'r>, SourceError> {
    let cell = match kind {
        PostgresKind::Bool => row.try_get::<_, Option<bool>>(i)?.map(Cell::Bool),
        PostgresKind::Int2 => row.try_get::<_, Option<i16>>(i)?.map(|n| Cell::Int(n.into())),
        PostgresKind::Int4 => row.try_get::<_, Option<i32>>(i)?.map(|n| Cell::Int(n.into())),
        PostgresKind::Int8 => row.try_get::<_, Option<i64>>(i)?.map(Cell::Int),
        PostgresKind::Oid => row.try_get::<_, Option<u32>>(i)?.map(|n| Cell::Int(n.into())),
        PostgresKind::Float4 => row.try_get::<_, Option<f32>>(i)?.map(|f| Cell::Float(f.into())),
        PostgresKind::Float8 => row.try_get::<_, Option<f64>>(i)?.map(Cell::Float),
        PostgresKind::Numeric => row
            .try_get::<_, Option<Numeric>>(i)?
            .map(|n| Cell::Decimal(Cow::Owned(n.0.unwrap_or_else(|| "NaN".into())))),
        PostgresKind::Text => row.try_get::<_, Option<&str>>(i)?.map(|t| Cell::Text(Cow::Borrowed(t))),
        PostgresKind::Uuid => {
            row.try_get::<_, Option<uuid::Uuid>>(i)?.map(|u| Cell::Text(Cow::Owned(u.hyphenated().to_string())))
        }
        PostgresKind::Json => row.try_get::<_, Option<RawJson>>(i)?.map(|j| Cell::Json(j.0)),
        PostgresKind::Timestamptz | PostgresKind::Timestamp => row.try_get::<_, Option<Micros>>(i)?.map(|m| match m {
            Micros::At(micros) => Cell::Timestamp(micros),
            Micros::Infinity(text) => Cell::Text(Cow::Borrowed(text)),
        }),
        PostgresKind::Date => row.try_get::<_, Option<NaiveDate>>(i)?.map(|d| Cell::Text(Cow::Owned(d.to_string()))),
        PostgresKind::Time => row.try_get::<_, Option<NaiveTime>>(i)?.map(|t| Cell::Text(Cow::Owned(t.to_string()))),
        PostgresKind::Bytea => row.try_get::<_, Option<&[u8]>>(i)?.map(Cell::Bytes),
    };
    Ok(cell.unwrap_or(Cell::Null))
}

/// A SQLite value, as its storage class says (SQLite keeps timestamps as the application wrote them).
pub fn sqlite_cell(value: rusqlite::types::ValueRef<'_>) -> Cell<'_> {
    use rusqlite::types::ValueRef;
    match value {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Real(f) => Cell::Float(f),
        ValueRef::Text(bytes) => Cell::Text(String::from_utf8_lossy(bytes)),
        ValueRef::Blob(bytes) => Cell::Bytes(bytes),
    }
}

/// A timestamp or timestamptz in PostgreSQL's binary form: microseconds since 2000-01-01 (UTC for
/// timestamptz; as written for timestamp, which is then read as UTC), or one of the infinities.
enum Micros {
    At(i64),
    Infinity(&'static str),
}

/// Microseconds from 1970-01-01 to 2000-01-01.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

impl<'a> FromSql<'a> for Micros {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        let raw: [u8; 8] = raw.try_into().map_err(|_| "a timestamp is 8 bytes")?;
        Ok(match i64::from_be_bytes(raw) {
            i64::MAX => Micros::Infinity("infinity"),
            i64::MIN => Micros::Infinity("-infinity"),
            micros => Micros::At(micros.checked_add(POSTGRES_EPOCH_MICROS).ok_or("a timestamp out of range")?),
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::TIMESTAMPTZ || *ty == Type::TIMESTAMP
    }
}

/// A json or jsonb column's JSON text, as the server sent it (jsonb's binary form is a version byte, 1,
/// and the text).
struct RawJson<'a>(&'a [u8]);

impl<'a> FromSql<'a> for RawJson<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        if *ty == Type::JSONB {
            match raw.split_first() {
                Some((1, text)) => Ok(RawJson(text)),
                _ => Err("unsupported jsonb encoding version".into()),
            }
        } else {
            Ok(RawJson(raw))
        }
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::JSON || *ty == Type::JSONB
    }
}

/// Appends one base-10000 digit group: four decimal digits when `padded`, else without leading zeros.
fn push_group(text: &mut String, group: u16, padded: bool) {
    let digits = [group / 1000, group / 100 % 10, group / 10 % 10, group % 10];
    let skip = if padded { 0 } else { digits.iter().take(3).take_while(|d| **d == 0).count() };
    for d in &digits[skip..] {
        text.push(char::from(b'0' + *d as u8));
    }
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
        if raw.len() < 8 + count * 2 {
            return Err("short numeric".into());
        }
        // Base-10000 digits; the first is worth 10000^weight.
        let digit = |position: i32| -> u16 {
            if position < 0 || position as usize >= count { 0 } else { word(4 + position as usize).unwrap_or(0) }
        };
        let mut text = String::with_capacity(8 + (count + 2) * 4 + scale);
        if sign == 0x4000 {
            text.push('-');
        }
        let mut leading = true;
        for position in 0..=i32::from(weight) {
            let d = digit(position);
            if leading && d == 0 {
                continue;
            }
            push_group(&mut text, d, !leading);
            leading = false;
        }
        if leading {
            text.push('0');
        }
        if scale > 0 {
            text.push('.');
            let start = text.len();
            let mut position = i32::from(weight) + 1;
            while text.len() - start < scale {
                push_group(&mut text, digit(position), true);
                position += 1;
            }
            text.truncate(start + scale);
        }
        Ok(Numeric(Some(text)))
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn json(cell: Cell<'_>) -> String {
        let mut out = Vec::new();
        cell.write_json(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn integers_and_decimals_beyond_what_json_readers_hold_are_strings() {
        assert_eq!(json(Cell::Int(42)), "42");
        assert_eq!(json(Cell::Int(EXACT)), EXACT.to_string());
        assert_eq!(json(Cell::Int(i64::MAX)), format!("\"{}\"", i64::MAX));
        assert_eq!(json(Cell::Decimal("12.50".into())), "12.50");
        assert_eq!(json(Cell::Decimal("-0.001".into())), "-0.001");
        assert_eq!(json(Cell::Decimal("123456789012345678.9".into())), "\"123456789012345678.9\"");
        assert_eq!(json(Cell::Decimal("NaN".into())), "\"NaN\"");
        assert_eq!(json(Cell::Float(f64::NAN)), "\"NaN\"");
        assert_eq!(json(Cell::Float(2.5)), "2.5");
    }

    #[test]
    fn other_values_are_written_as_their_json() {
        assert_eq!(json(Cell::Text("a \"q\"\n é".into())), r#""a \"q\"\n é""#);
        assert_eq!(json(Cell::Json(b"{\"a\": [1, 2],\n \"b\": \"x y\"}")), r#"{"a":[1,2],"b":"x y"}"#);
        assert_eq!(json(Cell::Bytes(&[0, 0xff, 0x10])), "\"AP8Q\"");
        assert_eq!(json(Cell::Bool(true)), "true");
        assert_eq!(json(Cell::Null), "null");
        for (at, written) in [
            ("2026-03-01T08:00:00Z", "2026-03-01T08:00:00Z"),
            ("2026-03-01T08:00:00.120Z", "2026-03-01T08:00:00.120Z"),
            ("2026-03-01T08:00:00.123456Z", "2026-03-01T08:00:00.123456Z"),
            ("0999-01-02T03:04:05Z", "0999-01-02T03:04:05Z"),
        ] {
            let at: DateTime<Utc> = at.parse().unwrap();
            assert_eq!(json(Cell::Timestamp(at.timestamp_micros())), format!("\"{written}\""));
            let chrono = at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
            assert_eq!(json(Cell::Timestamp(at.timestamp_micros())), format!("\"{chrono}\""));
        }
        assert_eq!(Cell::Json(b"{\"a\": 1}").csv_field(), r#"{"a":1}"#);
        assert_eq!(Cell::Int(i64::MAX).csv_field(), i64::MAX.to_string());
        assert_eq!(Cell::Null.csv_field(), "");
    }

    #[test]
    fn timestamps_are_written_as_chrono_writes_them_across_the_calendar() {
        let mut micros: i64 = -62_135_596_800_000_000; // 0001-01-01
        let step = 7_919_837_123_457; // about 92 days and an odd fraction
        while micros < 253_402_300_799_000_000 {
            for at in [micros, micros - micros % 1_000_000, micros - micros % 1000] {
                let chrono = DateTime::<Utc>::from_timestamp_micros(at).unwrap();
                let expected = format!("\"{}\"", chrono.to_rfc3339_opts(SecondsFormat::AutoSi, true));
                assert_eq!(json(Cell::Timestamp(at)), expected, "{at}");
            }
            micros += step;
        }
        assert_eq!(
            Micros::from_sql(&Type::TIMESTAMPTZ, &i64::MAX.to_be_bytes())
                .map(|m| matches!(m, Micros::Infinity("infinity")))
                .ok(),
            Some(true)
        );
        let epoch = Micros::from_sql(&Type::TIMESTAMPTZ, &0i64.to_be_bytes()).unwrap();
        assert!(matches!(epoch, Micros::At(POSTGRES_EPOCH_MICROS)));
        assert_eq!(json(Cell::Timestamp(POSTGRES_EPOCH_MICROS)), "\"2000-01-01T00:00:00Z\"");
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
