//! Rows as the bytes of an export file: JSON lines (one object a row, keys in the query's column order)
//! or CSV (a header, then a line a row; nested JSON as its text, NULL as an empty field).

use super::{Database, Format, Identities, Query, SourceError, sql, values::Value};

/// A query's rows for one person as the bytes of its file, a piece at a time: what an export writes and
/// what `sources preview` counts.
pub struct EncodedRows {
    rows: sql::Rows,
    encoder: Encoder,
    header_done: bool,
}

impl EncodedRows {
    /// Starts `query` on `database` for `who` (see [`sql::run`]).
    pub async fn start(database: &Database, query: &Query, who: &Identities) -> Result<EncodedRows, SourceError> {
        let rows = sql::run(database, &query.sql, who).await?;
        let encoder = Encoder::new(query.format, rows.columns.clone());
        Ok(EncodedRows { rows, encoder, header_done: false })
    }

    /// The next piece of the file and how many rows it holds (the CSV header first, with none); `None`
    /// once every row was read.
    pub async fn next(&mut self) -> Option<Result<(Vec<u8>, u64), SourceError>> {
        if !self.header_done {
            self.header_done = true;
            match self.encoder.header() {
                Ok(header) if header.is_empty() => {}
                header => return Some(header.map(|h| (h, 0))),
            }
        }
        let batch = match self.rows.next().await? {
            Ok(batch) => batch,
            Err(e) => return Some(Err(e)),
        };
        Some(self.encoder.rows(&batch).map(|bytes| (bytes, batch.len() as u64)))
    }
}

/// Writes a query's rows in one format, batch by batch.
pub struct Encoder {
    format: Format,
    columns: Vec<String>,
    header_written: bool,
}

impl Encoder {
    /// An encoder of rows with these columns.
    pub fn new(format: Format, columns: Vec<String>) -> Encoder {
        Encoder { format, columns, header_written: false }
    }

    /// The bytes of a CSV file's header (nothing for JSON lines); written even when no row follows, so an
    /// empty CSV still says what it would hold.
    pub fn header(&mut self) -> Result<Vec<u8>, SourceError> {
        if self.format != Format::Csv || self.header_written {
            return Ok(Vec::new());
        }
        self.header_written = true;
        let mut writer = csv::Writer::from_writer(Vec::new());
        writer.write_record(&self.columns)?;
        writer.into_inner().map_err(|e| SourceError::Encode(e.into_error().into()))
    }

    /// The bytes of `rows`.
    pub fn rows(&mut self, rows: &[Vec<Value>]) -> Result<Vec<u8>, SourceError> {
        match self.format {
            Format::Jsonl => Ok(self.json_lines(rows)),
            Format::Csv => {
                let mut out = self.header()?;
                let mut writer = csv::WriterBuilder::new().has_headers(false).from_writer(&mut out);
                for row in rows {
                    writer.write_record(row.iter().map(csv_field))?;
                }
                writer.flush().map_err(|e| SourceError::Encode(e.into()))?;
                drop(writer);
                Ok(out)
            }
        }
    }

    fn json_lines(&self, rows: &[Vec<Value>]) -> Vec<u8> {
        let mut out = Vec::with_capacity(rows.len() * 64 * self.columns.len().max(1));
        for row in rows {
            out.push(b'{');
            for (i, (column, value)) in self.columns.iter().zip(row).enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                // Writing a string or a JSON value into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut out, column);
                out.push(b':');
                let _ = serde_json::to_writer(&mut out, value);
            }
            out.extend_from_slice(b"}\n");
        }
        out
    }
}

fn csv_field(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_lines_keep_column_order_and_types() {
        let mut encoder = Encoder::new(Format::Jsonl, vec!["z".into(), "a".into(), "nested".into()]);
        assert!(encoder.header().unwrap().is_empty());
        let bytes = encoder
            .rows(&[vec![json!(1), Value::Null, json!({"k": [true]})], vec![json!("é"), json!(2.5), json!(null)]])
            .unwrap();
        assert_eq!(
            String::from_utf8(bytes).unwrap(),
            "{\"z\":1,\"a\":null,\"nested\":{\"k\":[true]}}\n{\"z\":\"é\",\"a\":2.5,\"nested\":null}\n"
        );
    }

    #[test]
    fn csv_has_one_header_and_quotes_what_needs_it() {
        let mut encoder = Encoder::new(Format::Csv, vec!["id".into(), "note".into()]);
        let first = encoder.rows(&[vec![json!(1), json!("a, \"quoted\" note")]]).unwrap();
        let second = encoder.rows(&[vec![json!(2), Value::Null]]).unwrap();
        assert_eq!(String::from_utf8(first).unwrap(), "id,note\n1,\"a, \"\"quoted\"\" note\"\n");
        assert_eq!(String::from_utf8(second).unwrap(), "2,\n");
        let mut empty = Encoder::new(Format::Csv, vec!["id".into()]);
        assert_eq!(empty.header().unwrap(), b"id\n");
        assert!(empty.header().unwrap().is_empty());
    }
}
