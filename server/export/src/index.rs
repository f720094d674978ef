//! `index.html`: the export as a person can read it (GDPR Art. 15 asks for information that is
//! intelligible). One self-contained page, no external assets, that says per source what was found, with
//! counts, sizes and links to the files, so the export can be handed to the data subject as it is.

use dpo_contract::manifest::{ExportStatus, Manifest, SourceOutcome};
use std::io::Write;

/// Records of one file the page shows as a table.
pub const PREVIEW_ROWS: usize = 1000;
/// The most of one file read for its table: a file of wide records shows fewer rows, never more memory.
pub const PREVIEW_BYTES: usize = 256 * 1024;
/// The most characters of one value a table cell shows.
const CELL_CHARS: usize = 200;

/// The first records of a file of records (JSON lines or CSV), as the page shows them.
#[derive(Debug, Clone, PartialEq)]
pub struct RecordsPreview {
    /// The file, as the manifest names it.
    pub path: String,
    /// The columns, in the order first seen.
    pub columns: Vec<String>,
    /// The rows shown, a value per column.
    pub rows: Vec<Vec<String>>,
    /// How many records the file holds, if known.
    pub total: Option<u64>,
}

impl RecordsPreview {
    /// The preview of the file `path` from `head`, its first bytes (up to [`PREVIEW_BYTES`]; a last line
    /// cut off is left out), `None` for a file that is not records.
    pub fn read(path: &str, head: &[u8], total: Option<u64>) -> Option<RecordsPreview> {
        let whole = match head.iter().rposition(|b| *b == b'\n') {
            Some(end) => &head[..=end],
            None => head,
        };
        let mut preview = RecordsPreview { path: path.to_string(), columns: Vec::new(), rows: Vec::new(), total };
        if path.ends_with(".jsonl") {
            let records: Vec<serde_json::Map<String, serde_json::Value>> = whole
                .split(|b| *b == b'\n')
                .filter(|line| !line.is_empty())
                .take(PREVIEW_ROWS)
                .filter_map(|line| serde_json::from_slice(line).ok())
                .collect();
            for record in &records {
                for name in record.keys() {
                    if !preview.columns.contains(name) {
                        preview.columns.push(name.clone());
                    }
                }
            }
            preview.rows = records
                .iter()
                .map(|r| preview.columns.iter().map(|c| cell(r.get(c).unwrap_or(&serde_json::Value::Null))).collect())
                .collect();
        } else if path.ends_with(".csv") {
            let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(whole);
            preview.columns = reader.headers().ok()?.iter().map(str::to_string).collect();
            preview.rows = reader
                .records()
                .take(PREVIEW_ROWS)
                .filter_map(Result::ok)
                .map(|r| r.iter().map(|v| v.chars().take(CELL_CHARS).collect()).collect())
                .collect();
        } else {
            return None;
        }
        Some(preview)
    }
}

/// A JSON value as a table shows it: text as it is, `null` as nothing, anything else as JSON.
fn cell(value: &serde_json::Value) -> String {
    let text = match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    text.chars().take(CELL_CHARS).collect()
}

/// The page for the export `manifest` describes (its objects so far; the page and the manifest itself
/// are not among them), written to `page` as it is made: an export of many files has a long page, which
/// is never held whole. `name`, when known, is who the page greets; `previews` are the tables of the files
/// of records.
pub fn write(
    manifest: &Manifest,
    name: Option<&str>,
    previews: &[RecordsPreview],
    page: &mut dyn Write,
) -> std::io::Result<()> {
    writeln!(
        page,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>Personal data of {user}</title>\n\
         <style>body{{font-family:system-ui,sans-serif;margin:2rem;max-width:60rem;color:#222}}\
         table{{border-collapse:collapse;width:100%;margin:.5rem 0 1.5rem}}td,th{{border-bottom:1px solid #ddd;\
         padding:.3rem .6rem;text-align:left}}td.n{{text-align:right}}.empty{{color:#777}}.failed{{color:#a00}}code{{font-size:.85em}}</style>\n\
         </head>\n<body>\n<h1>Personal data of {user}</h1>\n<p>Exported on {at} (operation <code>{op}</code>). Each \
         section below is one place your data was found; the files are in this folder. <code>manifest.json</code> \
         lists every file with its SHA-256, for checking that nothing was changed.</p>",
        user = escape(&manifest.user_id),
        at = escape(&manifest.exported_date_time),
        op = escape(&manifest.operation_id),
    )?;
    if let Some(name) = name {
        writeln!(
            page,
            "<p>Hello {},</p>\n<p>this is the personal data about you that we found, as you asked. Each table below shows \
             the first records of a file; the files themselves hold them all.</p>",
            escape(name)
        )?;
    }
    if manifest.status == ExportStatus::Failed {
        page.write_all(
            b"<p class=\"failed\"><strong>This export is incomplete.</strong> Reading one of the places below failed, \
             so it holds only what was read before; the sections say which.</p>\n",
        )?;
    }
    for source in &manifest.sources {
        writeln!(page, "<h2>{}</h2>", escape(&source.name))?;
        let rows =
            source.rows.map(|rows| format!(", {rows} {}", plural(rows, "record", "records"))).unwrap_or_default();
        match source.outcome {
            SourceOutcome::Empty => writeln!(
                page,
                "<p class=\"empty\">Nothing about you was found here ({}).</p>",
                escape(&describe(&source.kind))
            )?,
            SourceOutcome::Complete => writeln!(
                page,
                "<p>{}: {} {}, {}{rows}.</p>",
                escape(&describe(&source.kind)),
                source.objects,
                plural(source.objects, "file", "files"),
                size(source.bytes)
            )?,
            SourceOutcome::Failed => writeln!(
                page,
                "<p class=\"failed\">{}: reading it failed ({}). What was read before is below{}.</p>",
                escape(&describe(&source.kind)),
                escape(source.reason.as_deref().unwrap_or("no reason was recorded")),
                if source.objects == 0 { ": nothing" } else { ", the last file cut off" }
            )?,
            SourceOutcome::Skipped => writeln!(
                page,
                "<p class=\"empty\">Not read, because the export stopped at an earlier failure ({}).</p>",
                escape(&describe(&source.kind))
            )?,
            SourceOutcome::NotApplicable => writeln!(
                page,
                "<p class=\"empty\">Not looked at: it does not concern you ({}: {}).</p>",
                escape(&describe(&source.kind)),
                escape(source.reason.as_deref().unwrap_or_default())
            )?,
        }
        let files: Vec<_> = manifest.objects.iter().filter(|o| o.source.as_deref() == Some(&source.name)).collect();
        if files.is_empty() || source.outcome == SourceOutcome::Empty {
            continue;
        }
        page.write_all(b"<table>\n<tr><th>file</th><th>records</th><th>size</th></tr>\n")?;
        for file in files {
            writeln!(
                page,
                "<tr><td><a href=\"{}\">{}</a>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td></tr>",
                href(&file.path),
                escape(&file.path),
                if file.partial { " (partial)" } else { "" },
                file.rows.map(|r| r.to_string()).unwrap_or_default(),
                size(file.size)
            )?;
        }
        page.write_all(b"</table>\n")?;
        for preview in previews
            .iter()
            .filter(|p| manifest.objects.iter().any(|o| o.path == p.path && o.source.as_deref() == Some(&source.name)))
        {
            write_table(preview, page)?;
        }
    }
    page.write_all(b"</body>\n</html>\n")
}

/// A file's records as a table, saying how many more the file holds.
fn write_table(preview: &RecordsPreview, page: &mut dyn Write) -> std::io::Result<()> {
    if preview.rows.is_empty() {
        return Ok(());
    }
    write!(page, "<h3>{}</h3>\n<table>\n<tr>", escape(&preview.path))?;
    for column in &preview.columns {
        write!(page, "<th>{}</th>", escape(column))?;
    }
    page.write_all(b"</tr>\n")?;
    for row in &preview.rows {
        page.write_all(b"<tr>")?;
        for value in row {
            write!(page, "<td>{}</td>", escape(value))?;
        }
        page.write_all(b"</tr>\n")?;
    }
    page.write_all(b"</table>\n")?;
    let shown = preview.rows.len() as u64;
    if let Some(more) = preview.total.map(|t| t.saturating_sub(shown)).filter(|m| *m > 0) {
        writeln!(
            page,
            "<p class=\"empty\">The first {shown} {} are shown; {more} more {} in the file.</p>",
            plural(shown, "record", "records"),
            plural(more, "is", "are")
        )?;
    }
    Ok(())
}

/// What a kind of source is, in words.
fn describe(kind: &str) -> String {
    match kind {
        "profile" => "your directory entry".into(),
        "drive" => "the files of your drive".into(),
        "activity" => "records of your activity".into(),
        "sql" => "records in a database".into(),
        "objects" => "files kept in storage".into(),
        "http" => "records kept by a service".into(),
        other => other.into(),
    }
}

fn plural(n: u64, one: &'static str, many: &'static str) -> &'static str {
    if n == 1 { one } else { many }
}

fn size(bytes: u64) -> String {
    match bytes {
        b if b < 1024 => format!("{b} bytes"),
        b if b < 1024 * 1024 => format!("{:.1} KiB", b as f64 / 1024.0),
        b if b < 1024 * 1024 * 1024 => format!("{:.1} MiB", b as f64 / (1024.0 * 1024.0)),
        b => format!("{:.2} GiB", b as f64 / (1024.0 * 1024.0 * 1024.0)),
    }
}

/// `text` safe inside an element or a quoted attribute.
fn escape(text: &str) -> std::borrow::Cow<'_, str> {
    html_escape::encode_quoted_attribute(text)
}

/// A relative link to an object of the export: each segment percent-encoded (a `#`, `?` or space in a
/// file name stays part of it), so it opens from the folder, offline.
fn href(path: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    path.split('/').map(|s| percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()).collect::<Vec<_>>().join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(manifest: &Manifest) -> String {
        let mut page = Vec::new();
        write(manifest, None, &[], &mut page).unwrap();
        String::from_utf8(page).unwrap()
    }
    use dpo_contract::manifest::{FORMAT_VERSION, ManifestObject, ManifestSource};

    fn object(path: &str, source: &str, rows: Option<u64>) -> ManifestObject {
        ManifestObject {
            path: path.into(),
            size: 2048,
            sha256: "00".into(),
            source: Some(source.into()),
            rows,
            partial: false,
        }
    }

    fn source(name: &str, kind: &str, outcome: SourceOutcome, objects: u64, rows: Option<u64>) -> ManifestSource {
        ManifestSource {
            name: name.into(),
            kind: kind.into(),
            location: None,
            queries: Vec::new(),
            outcome,
            reason: None,
            objects,
            bytes: objects * 2048,
            rows,
        }
    }

    #[test]
    fn the_page_says_what_each_source_held_links_the_files_and_escapes_everything() {
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operation_id: "op-1".into(),
            user_id: "<script>alert(1)</script>".into(),
            exported_date_time: "2026-12-01T10:00:00.000Z".into(),
            status: ExportStatus::Complete,
            objects: vec![
                object("drive/My Notes #1.txt", "drive", None),
                object("shop/orders.jsonl", "shop", Some(12)),
            ],
            sources: vec![
                source("drive", "drive", SourceOutcome::Complete, 1, None),
                source("activity", "activity", SourceOutcome::Empty, 1, Some(0)),
                source("shop", "sql", SourceOutcome::Complete, 1, Some(12)),
            ],
        };
        let page = render(&manifest);
        assert!(page.contains("Personal data of &lt;script&gt;alert(1)&lt;/script&gt;"), "{page}");
        assert!(!page.contains("<script>"));
        assert!(page.contains("<a href=\"drive/My%20Notes%20%231.txt\">drive/My Notes #1.txt</a>"), "{page}");
        assert!(page.contains("<h2>activity</h2>\n<p class=\"empty\">Nothing about you was found here"), "{page}");
        assert!(page.contains("records in a database: 1 file, 2.0 KiB, 12 records."), "{page}");
        assert!(!page.contains("http://") && !page.contains("https://") && !page.contains("src="), "self-contained");
        assert!(!page.contains("incomplete"));
    }

    #[test]
    fn a_failed_export_says_so_and_which_source_failed_and_why() {
        let mut crm = source("crm", "http", SourceOutcome::Failed, 1, Some(40));
        crm.reason = Some("https://crm.internal/people/a answered 500: <oops>".into());
        let mut cut = object("crm/crm.jsonl", "crm", Some(40));
        cut.partial = true;
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operation_id: "op-2".into(),
            user_id: "alice".into(),
            exported_date_time: "2026-12-01T10:00:00.000Z".into(),
            status: ExportStatus::Failed,
            objects: vec![cut],
            sources: vec![crm, source("shop", "sql", SourceOutcome::Skipped, 0, None)],
        };
        let page = render(&manifest);
        assert!(page.contains("This export is incomplete"), "{page}");
        assert!(
            page.contains("reading it failed (https://crm.internal/people/a answered 500: &lt;oops&gt;)"),
            "{page}"
        );
        assert!(page.contains("crm/crm.jsonl</a> (partial)"), "{page}");
        assert!(page.contains("<h2>shop</h2>\n<p class=\"empty\">Not read"), "{page}");
    }

    #[test]
    fn the_person_is_greeted_and_each_file_of_records_is_a_table_saying_how_many_more_it_holds() {
        let manifest = Manifest {
            format_version: FORMAT_VERSION,
            operation_id: "op-3".into(),
            user_id: "casey@shop.example".into(),
            exported_date_time: "2026-12-01T10:00:00.000Z".into(),
            status: ExportStatus::Complete,
            objects: vec![object("shop/orders.jsonl", "shop", Some(1500)), object("desk/t.csv", "desk", Some(2))],
            sources: vec![
                source("shop", "sql", SourceOutcome::Complete, 1, Some(1500)),
                source("desk", "sql", SourceOutcome::Complete, 1, Some(2)),
            ],
        };
        let mut lines = String::new();
        for i in 0..1500 {
            lines.push_str(&format!("{{\"id\":{i},\"item\":\"<b>tea</b>\",\"note\":null}}\n"));
        }
        let orders =
            RecordsPreview::read("shop/orders.jsonl", &lines.as_bytes()[..PREVIEW_BYTES.min(lines.len())], Some(1500));
        let orders = orders.unwrap();
        assert_eq!(orders.columns, ["id", "item", "note"]);
        assert_eq!(orders.rows.len(), 1000);
        assert_eq!(orders.rows[0], ["0", "<b>tea</b>", ""]);
        let cut = RecordsPreview::read("shop/orders.jsonl", &lines.as_bytes()[..100], Some(1500)).unwrap();
        assert_eq!(cut.rows.len(), 2, "a last line cut off is left out");
        let sheet = RecordsPreview::read("desk/t.csv", b"id,subject\n1,refund\n2,\"late, again\"\n", Some(2)).unwrap();
        assert_eq!(sheet.rows, [["1", "refund"], ["2", "late, again"]]);
        assert_eq!(RecordsPreview::read("drive/a.txt", b"x", None), None);
        let mut page = Vec::new();
        write(&manifest, Some("Casey <One>"), &[orders, sheet], &mut page).unwrap();
        let page = String::from_utf8(page).unwrap();
        assert!(page.contains("<p>Hello Casey &lt;One&gt;,</p>"), "{page}");
        assert!(
            page.contains("<h3>shop/orders.jsonl</h3>\n<table>\n<tr><th>id</th><th>item</th><th>note</th></tr>"),
            "{page}"
        );
        assert!(page.contains("<td>&lt;b&gt;tea&lt;/b&gt;</td>") && !page.contains("<b>tea"), "{page}");
        assert!(page.contains("The first 1000 records are shown; 500 more are in the file."), "{page}");
        assert!(page.contains("<td>late, again</td>"), "{page}");
        assert_eq!(page.matches("in the file.</p>").count(), 1, "the sheet shows all its records: {page}");
    }
}
