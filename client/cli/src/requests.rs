//! `dpo requests`: subject rights requests (`/security/subjectRightsRequests`): create one for any person,
//! list, show, annotate and move them on, and download their report.

use crate::{Output, failure::Failure};
use clap::{Subcommand, ValueEnum};
use dpo_client::{Client, types};
use futures::TryStreamExt;
use serde_json::{Value, json};
use std::path::PathBuf;

/// The subject rights requests' commands.
#[derive(Subcommand)]
pub enum RequestCommand {
    /// Create a request for a person (POST /security/subjectRightsRequests).
    Create {
        /// The person's email address: dpo finds their data by it.
        #[arg(long)]
        email: String,
        /// Their first name.
        #[arg(long)]
        first_name: Option<String>,
        /// Their last name.
        #[arg(long)]
        last_name: Option<String>,
        /// Their country or region of residency.
        #[arg(long)]
        residency: Option<String>,
        /// What the person asks for.
        #[arg(long = "type", value_enum, default_value_t = Kind::Access)]
        kind: Kind,
        /// What kind of person they are (Graph's dataSubjectType, e.g. customer, currentEmployee).
        #[arg(long, default_value = "customer")]
        subject_type: String,
        /// The request's name.
        #[arg(long)]
        name: String,
        /// What it is about.
        #[arg(long)]
        description: String,
        /// A regulation it fulfils (repeat for several): GDPR, UK GDPR, CCPA, CPRA, ...
        #[arg(long = "regulation", required = true)]
        regulations: Vec<String>,
        /// When it is due (RFC 3339); by default what the regulations give (GDPR 30 days, CCPA 45).
        #[arg(long)]
        due: Option<String>,
        /// The id another system tracks it by (cannot change later).
        #[arg(long)]
        external_id: Option<String>,
        /// Go on after the estimate without waiting for approval.
        #[arg(long)]
        no_pause: bool,
    },
    /// List requests (e.g. --filter "status eq 'active' and dataSubject/email eq 'casey@shop.example'").
    List {
        #[command(flatten)]
        list: crate::ListArgs,
    },
    /// Show one request.
    Get {
        /// The request's id.
        id: String,
    },
    /// List a request's notes, or add one.
    Notes {
        /// The request's id.
        id: String,
        /// Add this note instead of listing.
        #[arg(long)]
        add: Option<String>,
        /// The note is HTML (stored as given; dpo never renders it).
        #[arg(long, requires = "add")]
        html: bool,
    },
    /// Wait until the request needs a person: its estimate done (when it pauses after it), its report done,
    /// a stage failed (exit code 5, with the stage's error), or closed. Prints the request.
    Wait {
        /// The request's id.
        id: String,
        /// Give up after this many seconds (exit code 5).
        #[arg(long, default_value_t = 3600)]
        timeout: u64,
    },
    /// Go on where the request waits (after the estimate, at approval, or at a stage that failed: run again).
    Approve {
        /// The request's id.
        id: String,
        /// Why (kept as a note).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Close the request where it waits, without going on.
    Reject {
        /// The request's id.
        id: String,
        /// Why (kept as a note).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Resolve a request whose report is done.
    Close {
        /// The request's id.
        id: String,
        /// Why (kept as a note).
        #[arg(long)]
        comment: Option<String>,
    },
    /// Download the request's final report (text): to FILE, or printed.
    Report {
        /// The request's id.
        id: String,
        /// Write it here instead of printing it.
        #[arg(long)]
        to: Option<PathBuf>,
    },
    /// Download the zip for the person.
    Attachment {
        /// The request's id.
        id: String,
        /// The file to write.
        #[arg(long)]
        to: PathBuf,
    },
}

/// What a person asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// A copy of their data to read.
    Access,
    /// A copy of their data to take elsewhere.
    Export,
    /// Their data erased: estimated, approved by another administrator, erased through the sources.
    Delete,
}

/// Runs a `dpo requests` command.
pub async fn run(client: &Client, command: RequestCommand, out: Output) -> Result<(), Failure> {
    match command {
        RequestCommand::Create {
            email,
            first_name,
            last_name,
            residency,
            kind,
            subject_type,
            name,
            description,
            regulations,
            due,
            external_id,
            no_pause,
        } => {
            let mut body = json!({
                "dataSubject": {"email": email},
                "dataSubjectType": subject_type,
                "type": match kind { Kind::Access => "access", Kind::Export => "export", Kind::Delete => "delete" },
                "displayName": name,
                "description": description,
                "regulations": regulations,
            });
            for (key, value) in [("firstName", first_name), ("lastName", last_name), ("residency", residency)] {
                if let Some(value) = value {
                    body["dataSubject"][key] = value.into();
                }
            }
            if let Some(due) = due {
                body["internalDueDateTime"] = due.into();
            }
            if let Some(id) = external_id {
                body["externalId"] = id.into();
            }
            if no_pause {
                body["pauseAfterEstimate"] = false.into();
            }
            let body: types::MicrosoftGraphSubjectRightsRequest =
                serde_json::from_value(body).map_err(|e| Failure::Other(anyhow::anyhow!("the request: {e}")))?;
            let created = client.security_create_subject_rights_requests(&body).await?.into_inner();
            show(&created, out);
            Ok(())
        }
        RequestCommand::List { list } => {
            let options = list.options();
            let requests = if list.all {
                client.list_all_requests(options).try_collect::<Vec<_>>().await?
            } else {
                client.list_requests_page(&options).await?.value
            };
            match out {
                Output::Json => println!("{}", serde_json::to_string_pretty(&requests).unwrap_or_default()),
                Output::Table => table(&requests),
            }
            Ok(())
        }
        RequestCommand::Get { id } => {
            show(&client.security_get_subject_rights_requests(&id, None, None).await?.into_inner(), out);
            Ok(())
        }
        RequestCommand::Notes { id, add: Some(text), html } => {
            let note = json!({"content": {"content": text, "contentType": if html { "html" } else { "text" }}});
            let note: types::MicrosoftGraphAuthoredNote =
                serde_json::from_value(note).map_err(|e| Failure::Other(anyhow::anyhow!("the note: {e}")))?;
            let added = client.security_subject_rights_requests_create_notes(&id, &note).await?.into_inner();
            match out {
                Output::Json => println!("{}", serde_json::to_string_pretty(&added).unwrap_or_default()),
                Output::Table => println!("added note {}", added.id.unwrap_or_default()),
            }
            Ok(())
        }
        RequestCommand::Notes { id, add: None, .. } => {
            let page = client
                .security_subject_rights_requests_list_notes(&id, None, None, None, None, None, None, None, None)
                .await?
                .into_inner();
            match out {
                Output::Json => println!("{}", serde_json::to_string_pretty(&page.value).unwrap_or_default()),
                Output::Table => {
                    for note in &page.value {
                        let note = serde_json::to_value(note).unwrap_or_default();
                        println!(
                            "{}  {}  {}",
                            text(&note["createdDateTime"]),
                            text(&note["author"]["id"]),
                            text(&note["content"]["content"])
                        );
                    }
                }
            }
            Ok(())
        }
        RequestCommand::Wait { id, timeout } => {
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(timeout);
            loop {
                let request = client.security_get_subject_rights_requests(&id, None, None).await?.into_inner();
                let value = serde_json::to_value(&request).unwrap_or_default();
                if let Some(settled) = settled(&value) {
                    show(&request, out);
                    return settled;
                }
                if std::time::Instant::now() >= deadline {
                    return Err(Failure::Export(format!(
                        "request {id} is still at {} after {timeout} s",
                        stage(&value)
                    )));
                }
                tokio::time::sleep(std::time::Duration::from_millis(500)).await;
            }
        }
        RequestCommand::Approve { id, comment } => {
            let body = types::SecuritySubjectRightsRequestsSubjectRightsRequestApproveBody { comment };
            let moved = client.security_subject_rights_requests_subject_rights_request_approve(&id, &body).await?;
            show(&moved.into_inner(), out);
            Ok(())
        }
        RequestCommand::Reject { id, comment } => {
            let body = types::SecuritySubjectRightsRequestsSubjectRightsRequestRejectBody { comment };
            let moved = client.security_subject_rights_requests_subject_rights_request_reject(&id, &body).await?;
            show(&moved.into_inner(), out);
            Ok(())
        }
        RequestCommand::Close { id, comment } => {
            let body = types::SecuritySubjectRightsRequestsSubjectRightsRequestCloseBody { comment };
            let moved = client.security_subject_rights_requests_subject_rights_request_close(&id, &body).await?;
            show(&moved.into_inner(), out);
            Ok(())
        }
        RequestCommand::Report { id, to } => {
            let report = client.security_subject_rights_requests_subject_rights_request_get_final_report(&id).await?;
            let bytes = collect(report.into_inner()).await?;
            match to {
                Some(path) => write(&path, &bytes),
                None => {
                    print!("{}", String::from_utf8_lossy(&bytes));
                    Ok(())
                }
            }
        }
        RequestCommand::Attachment { id, to } => {
            let zip = client.security_subject_rights_requests_subject_rights_request_get_final_attachment(&id).await?;
            write(&to, &collect(zip.into_inner()).await?)
        }
    }
}

async fn collect(stream: dpo_client::ByteStream) -> Result<Vec<u8>, Failure> {
    let mut bytes = Vec::new();
    let mut stream = stream.into_inner();
    while let Some(chunk) =
        stream.try_next().await.map_err(|e| Failure::Other(anyhow::anyhow!("reading the download: {e}")))?
    {
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

fn write(path: &std::path::Path, bytes: &[u8]) -> Result<(), Failure> {
    std::fs::write(path, bytes).map_err(|e| Failure::Other(anyhow::anyhow!("writing {}: {e}", path.display())))
}

fn text(value: &Value) -> String {
    value.as_str().map(str::to_string).unwrap_or_else(|| if value.is_null() { "-".into() } else { value.to_string() })
}

/// Whether the request needs a person now: `Ok` when its report is done, it is closed, or it waits after
/// its estimate; the stage's error when a stage failed; `None` while dpo is still at work on it.
fn settled(request: &Value) -> Option<Result<(), Failure>> {
    let stages = request["stages"].as_array().cloned().unwrap_or_default();
    let status_of = |name: &str| stages.iter().find(|s| s["stage"] == name).map(|s| text(&s["status"]));
    if let Some(failed) = stages.iter().find(|s| s["status"] == "failed") {
        return Some(Err(Failure::Export(format!(
            "stage {} failed: {}",
            text(&failed["stage"]),
            text(&failed["error"]["message"])
        ))));
    }
    let estimated_and_paused = request["pauseAfterEstimate"] == true
        && status_of("contentEstimate").as_deref() == Some("completed")
        && stages
            .iter()
            .skip_while(|s| s["stage"] != "contentEstimate")
            .nth(1)
            .is_some_and(|s| s["status"] == "notStarted");
    let waits = request["status"] == "closed"
        || status_of("generateReport").as_deref() == Some("completed")
        || status_of("approval").as_deref() == Some("current")
        || estimated_and_paused;
    waits.then_some(Ok(()))
}

/// The stage a request is at: the first that has not completed, with its status.
fn stage(request: &Value) -> String {
    let stages = request["stages"].as_array().cloned().unwrap_or_default();
    match stages.iter().find(|s| s["status"] != "completed").or(stages.last()) {
        Some(s) => format!("{} ({})", text(&s["stage"]), text(&s["status"])),
        None => "-".into(),
    }
}

fn row(request: &types::MicrosoftGraphSubjectRightsRequest) -> Vec<String> {
    let r = serde_json::to_value(request).unwrap_or_default();
    vec![
        text(&r["id"]),
        text(&r["type"]),
        text(&r["status"]),
        stage(&r),
        text(&r["internalDueDateTime"]),
        text(&r["dataSubject"]["email"]),
        text(&r["displayName"]),
    ]
}

fn table(requests: &[types::MicrosoftGraphSubjectRightsRequest]) {
    crate::output::table(
        &["ID", "TYPE", "STATUS", "STAGE", "DUE", "PERSON", "NAME"],
        requests.iter().map(row).collect(),
    );
}

fn show(request: &types::MicrosoftGraphSubjectRightsRequest, out: Output) {
    match out {
        Output::Json => println!("{}", serde_json::to_string_pretty(request).unwrap_or_default()),
        Output::Table => {
            table(std::slice::from_ref(request));
            let r = serde_json::to_value(request).unwrap_or_default();
            for line in insight_lines(&r) {
                println!("{line}");
            }
        }
    }
}

/// The request's `insight` as lines under its row: the estimate (for a `delete` request, what would be
/// erased and what is kept), and once `contentDeletion` completed, what was erased.
fn insight_lines(r: &Value) -> Vec<String> {
    let insight = &r["insight"];
    if insight.is_null() {
        return Vec::new();
    }
    let stages = r["stages"].as_array().cloned().unwrap_or_default();
    let erased = stages.iter().any(|s| s["stage"] == "contentDeletion" && s["status"] == "completed");
    let what = match (r["type"].as_str(), erased) {
        (Some("delete"), true) => "erased",
        (Some("delete"), false) => "estimate, to erase",
        _ => "estimate",
    };
    // Whole numbers, however the client's types hold them (Int64 may arrive as 2.0).
    let whole = |v: &Value| v.as_f64().map_or_else(|| text(v), |n| format!("{n:.0}"));
    let mut lines = vec![format!("\n{what}: {} items", whole(&insight["itemCount"]))];
    if !insight["totalItemSize"].is_null() {
        lines[0].push_str(&format!(", {} bytes", whole(&insight["totalItemSize"])));
    }
    for pair in insight["productItemCounts"].as_array().into_iter().flatten() {
        lines.push(format!("  {}: {}", text(&pair["name"]), text(&pair["value"])));
    }
    lines
}
