//! Rows as the bytes of an export file: JSON lines (one object a row, keys in the query's column order)
//! or CSV (a header, then a line a row; nested JSON as its text, NULL as an empty field).

use super::{Format, SourceError, values::Cell};

/// Writes a query's rows in one format, row by row, into a buffer taken a batch at a time.
pub struct Encoder {
    format: Format,
    columns: Vec<String>,
    /// Each column's key as JSON, with its colon: `"id":`.
    keys: Vec<Vec<u8>>,
    out: Vec<u8>,
    csv: csv::Writer<Vec<u8>>,
}

impl Encoder {
    /// An encoder of rows with these columns.
    pub fn new(format: Format, columns: Vec<String>) -> Encoder {
        let keys = columns
            .iter()
            .map(|column| {
                // Writing a string into a Vec cannot fail.
                let mut key = serde_json::to_vec(column).unwrap_or_default();
                key.push(b':');
                key
            })
            .collect();
        let csv = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
        Encoder { format, columns, keys, out: Vec::new(), csv }
    }

    /// The bytes of a CSV file's header (nothing for JSON lines); written even when no row follows, so an
    /// empty CSV still says what it would hold.
    pub fn header(&mut self) -> Result<Vec<u8>, SourceError> {
        if self.format != Format::Csv {
            return Ok(Vec::new());
        }
        self.csv.write_record(&self.columns)?;
        self.take()
    }

    /// Adds a row of `cells`, one a column in order.
    pub fn push<'a>(
        &mut self,
        cells: impl IntoIterator<Item = Result<Cell<'a>, SourceError>>,
    ) -> Result<(), SourceError> {
        match self.format {
            Format::Jsonl => {
                self.out.push(b'{');
                for (i, cell) in cells.into_iter().enumerate() {
                    let Some(key) = self.keys.get(i) else { break };
                    if i > 0 {
                        self.out.push(b',');
                    }
                    self.out.extend_from_slice(key);
                    cell?.write_json(&mut self.out);
                }
                self.out.extend_from_slice(b"}\n");
            }
            Format::Csv => {
                let cells = cells.into_iter().collect::<Result<Vec<Cell<'a>>, SourceError>>()?;
                self.csv.write_record(cells.iter().map(|c| c.csv_field().into_owned()))?;
            }
        }
        Ok(())
    }

    /// The bytes of the rows pushed since the last call.
    pub fn take(&mut self) -> Result<Vec<u8>, SourceError> {
        match self.format {
            Format::Jsonl => {
                let capacity = self.out.capacity();
                Ok(std::mem::replace(&mut self.out, Vec::with_capacity(capacity)))
            }
            Format::Csv => {
                let fresh = csv::WriterBuilder::new().has_headers(false).from_writer(Vec::new());
                let full = std::mem::replace(&mut self.csv, fresh);
                full.into_inner().map_err(|e| SourceError::Encode(e.into_error().into()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn text(s: &str) -> Result<Cell<'_>, SourceError> {
        Ok(Cell::Text(Cow::Borrowed(s)))
    }

    #[test]
    fn json_lines_keep_column_order_and_types() {
        let mut encoder = Encoder::new(Format::Jsonl, vec!["z".into(), "a".into(), "nested".into()]);
        assert!(encoder.header().unwrap().is_empty());
        encoder.push([Ok(Cell::Int(1)), Ok(Cell::Null), Ok(Cell::Json(b"{\"k\": [true]}"))]).unwrap();
        encoder.push([text("é"), Ok(Cell::Float(2.5)), Ok(Cell::Null)]).unwrap();
        assert_eq!(
            String::from_utf8(encoder.take().unwrap()).unwrap(),
            "{\"z\":1,\"a\":null,\"nested\":{\"k\":[true]}}\n{\"z\":\"é\",\"a\":2.5,\"nested\":null}\n"
        );
        assert!(encoder.take().unwrap().is_empty(), "each row is taken once");
    }

    #[test]
    fn csv_has_one_header_and_quotes_what_needs_it() {
        let mut encoder = Encoder::new(Format::Csv, vec!["id".into(), "note".into()]);
        assert_eq!(encoder.header().unwrap(), b"id,note\n");
        encoder.push([Ok(Cell::Int(1)), text("a, \"quoted\" note")]).unwrap();
        assert_eq!(String::from_utf8(encoder.take().unwrap()).unwrap(), "1,\"a, \"\"quoted\"\" note\"\n");
        encoder.push([Ok(Cell::Int(2)), Ok(Cell::Null)]).unwrap();
        assert_eq!(String::from_utf8(encoder.take().unwrap()).unwrap(), "2,\n");
    }
}
