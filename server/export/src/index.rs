//! `index.html`: the export as a person can read it (GDPR Art. 15 asks for information that is
//! intelligible). One self-contained page, no external assets, that says per source what was found, with
//! counts, sizes and links to the files, so the export can be handed to the data subject as it is.

use dpo_contract::manifest::{ExportStatus, Manifest, SourceOutcome};
use std::io::Write;

/// The page for the export `manifest` describes (its objects so far; the page and the manifest itself
/// are not among them), written to `page` as it is made: an export of many files has a long page, which
/// is never held whole.
pub fn write(manifest: &Manifest, page: &mut dyn Write) -> std::io::Result<()> {
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
    }
    page.write_all(b"</body>\n</html>\n")
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
        write(manifest, &mut page).unwrap();
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
}
