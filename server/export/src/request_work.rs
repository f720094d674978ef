//! The stages of a subject rights request, run by the engine as the request's own operation, so that they
//! have an export's lease, attempt fencing and resumption after a crash: `contentEstimate` (what each
//! source holds of the person, counted, nothing copied), `contentRetrieval` (the person's data gathered
//! into the request store, `<requests location>/<request id>/`, as an export gathers it) and
//! `generateReport` (the report, kept with the request). The operation ends where the request waits for a
//! person; an approval queues the next one.
//!
//! Every change of a stage is written under the claim (checked just before) and on the version read, so
//! a worker that lost its claim writes nothing more, and a person's change meanwhile is kept.

use crate::{
    ExportError,
    job::{self, JobContext, Person, fenced},
    sink::Sink,
    sources::{Identities, NamedPerson, Sources, tools},
};
use chrono::{SubsecRound, Utc};
use dpo_contract::manifest::{Manifest, SourceOutcome};
use dpo_domain::{
    blocking::blocking,
    request_stages::{Work, dpo_itself, next_work, set_stage},
    requests::RequestRecord,
    store::{AuditEvent, Claim, OperationRecord, StoreError},
};
use dpo_model::subject_rights::{
    DataSubject, KeyValuePair, PublicError, SubjectRightsRequest, SubjectRightsRequestDetail,
    SubjectRightsRequestStage as Stage, SubjectRightsRequestStageStatus as StageStatus, SubjectRightsRequestStatus,
};
use sha2::{Digest, Sha256};
use uuid::Uuid;

mod erasure;

/// Runs the stages of the claimed operation's request from where the request stands, until it waits for
/// a person (or is closed), and completes the operation.
pub async fn run(ctx: &JobContext, claim: Claim, request: Uuid) -> Result<OperationRecord, ExportError> {
    let mut record = load(ctx, &claim, request).await?;
    while let Some(current) = record {
        let done = match next_work(&current.request) {
            Work::Wait => break,
            Work::Estimate if erases(&current) => erasure::estimate(ctx, &claim, current).await,
            Work::Estimate => estimate(ctx, &claim, current).await,
            Work::Retrieve => retrieve(ctx, &claim, current).await,
            Work::Erase => erasure::erase(ctx, &claim, current).await,
            Work::Report => report(ctx, &claim, current).await,
        };
        record = match done {
            Ok(written) => Some(written),
            Err(Stopped::Request) => None,
            Err(Stopped::Export(e)) => return Err(e),
        };
    }
    let at = Utc::now().trunc_subsecs(3);
    blocking(&ctx.stores.queue, move |q| q.complete(&claim, at)).await.map_err(fenced)
}

/// Whether the request erases (type `delete`) rather than collects.
fn erases(record: &RequestRecord) -> bool {
    record.request.kind == Some(dpo_model::subject_rights::SubjectRightsRequestType::Delete)
}

/// The request of the claim's tenant, if it is still there.
async fn load(ctx: &JobContext, claim: &Claim, request: Uuid) -> Result<Option<RequestRecord>, ExportError> {
    let tenant = claim.operation.tenant_id.clone();
    Ok(blocking(&ctx.stores.requests, move |s| s.get_request(&tenant, request)).await?)
}

/// Applies `change` to the request as stored now and writes it as its next version, under the claim; a
/// change of the request meanwhile (a person's update) is read again and `change` applied to it. `None`
/// when the request is gone or closed: nothing more is done for it.
async fn save(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    change: impl Fn(&mut RequestRecord),
) -> Result<Option<RequestRecord>, ExportError> {
    save_recorded(ctx, claim, record, change, |_| None).await
}

/// Like [`save`], appending the audit event `event_of` makes of the request as changed in the same commit:
/// a stage's end or an erase step is never in the request without its event in the trail, nor the event
/// without it.
async fn save_recorded(
    ctx: &JobContext,
    claim: &Claim,
    mut record: RequestRecord,
    change: impl Fn(&mut RequestRecord),
    event_of: impl Fn(&RequestRecord) -> Option<AuditEvent>,
) -> Result<Option<RequestRecord>, ExportError> {
    loop {
        if record.request.status != Some(SubjectRightsRequestStatus::Active) {
            return Ok(None);
        }
        change(&mut record);
        record.version += 1;
        // Written only while the claim holds, its lease renewed in the same commit.
        let (held, until, stored, event) = (claim.clone(), Utc::now() + ctx.lease, record.clone(), event_of(&record));
        match blocking(&ctx.stores.requests, move |s| s.replace_request_claimed(&stored, &held, until, event)).await {
            Ok(()) => return Ok(Some(record)),
            Err(StoreError::VersionMismatch { .. }) => match load(ctx, claim, record.id).await? {
                Some(now) => record = now,
                None => return Ok(None),
            },
            Err(lost @ StoreError::LeaseLost(_)) => return Err(fenced(lost)),
            Err(StoreError::Missing(id)) if id == claim.operation.id => return Err(fenced(StoreError::Missing(id))),
            Err(StoreError::Missing(_)) => return Ok(None),
            Err(e) => return Err(e.into()),
        }
    }
}

/// Marks `stage` current and its start in the history (once: a resumed stage has it already), and
/// returns the request as written.
async fn start(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    stage: Stage,
) -> Result<Option<RequestRecord>, ExportError> {
    let started = record
        .request
        .history
        .last()
        .is_some_and(|h| h.stage == Some(stage) && h.kind.as_deref() == Some("stageStarted"));
    if started {
        return Ok(Some(record));
    }
    save(ctx, claim, record, |r| {
        let now = Utc::now().trunc_subsecs(3);
        set_stage(&mut r.request, stage, StageStatus::Current, None, "stageStarted", &dpo_itself(), now);
    })
    .await
}

/// Ends `stage`, completed or (with `error`) failed; a completed estimate makes the next stage current
/// unless the request pauses after it.
async fn finish(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    stage: Stage,
    error: Option<PublicError>,
    also: impl Fn(&mut RequestRecord),
) -> Result<Option<RequestRecord>, ExportError> {
    let change = |r: &mut RequestRecord| {
        let now = Utc::now().trunc_subsecs(3);
        let (status, kind) = match error {
            Some(_) => (StageStatus::Failed, "stageFailed"),
            None => (StageStatus::Completed, "stageCompleted"),
        };
        set_stage(&mut r.request, stage, status, error.clone(), kind, &dpo_itself(), now);
        also(r);
    };
    save_recorded(ctx, claim, record, change, |r| Some(stage_event(r, stage, error.as_ref()))).await
}

/// The audit event of `stage` of `record` ending (by dpo): completed, with the estimate's counts, or
/// failed, with why.
fn stage_event(record: &RequestRecord, stage: Stage, error: Option<&PublicError>) -> AuditEvent {
    let reason = match (error, stage) {
        (Some(error), _) => format!("{} failed: {}", stage.as_str(), error.message.as_deref().unwrap_or_default()),
        (None, Stage::ContentEstimate | Stage::ContentDeletion) if record.erasure.is_some() => {
            let log = record.erasure.clone().unwrap_or_default();
            let items = record.request.insight.as_ref().and_then(|i| i.item_count).unwrap_or_default();
            let kept: u64 = log.kept.iter().map(|k| k.rows).sum();
            match &log.verified {
                Some(verified) if stage == Stage::ContentDeletion => format!(
                    "contentDeletion completed: {items} items erased, {kept} rows kept; verified {} sources",
                    verified.sources.len()
                ),
                _ => format!("{} completed: {items} items to erase, {kept} rows kept", stage.as_str()),
            }
        }
        (None, Stage::ContentEstimate) => {
            let insight = record.request.insight.clone().unwrap_or_default();
            format!(
                "contentEstimate completed: {} items, {} bytes",
                insight.item_count.unwrap_or_default(),
                insight.total_item_size.unwrap_or_default()
            )
        }
        (None, _) => format!("{} completed", stage.as_str()),
    };
    let outcome = if error.is_some() { Err(reason) } else { Ok(Some(reason)) };
    dpo_domain::audit::by_dpo(&record.tenant_id, dpo_domain::audit::Activity::EndRequestStage, record.id, outcome)
}

/// The request's person, with the directory user their email is, if any.
async fn person_of(ctx: &JobContext, claim: &Claim, request: &SubjectRightsRequest) -> Result<Person, ExportError> {
    let subject = request.data_subject.clone().unwrap_or_default();
    let named = NamedPerson {
        email: subject.email.clone().unwrap_or_default(),
        first_name: subject.first_name.clone(),
        last_name: subject.last_name.clone(),
        residency: subject.residency.clone(),
    };
    let (tenant, email) = (claim.operation.tenant_id.clone(), named.email.clone());
    let user = if email.is_empty() {
        None
    } else {
        blocking(&ctx.stores.directory, move |s| s.find_user_by_email(&tenant, &email)).await?
    };
    let name = full_name(&subject).or_else(|| user.as_ref().and_then(|u| u.display_name.clone()));
    Ok(Person { who: Identities::of_person(&named, user.as_ref()), named: named.email.clone(), name, user })
}

/// The person's first and last name as a request gives them, if it gives one.
fn full_name(subject: &DataSubject) -> Option<String> {
    let name = [subject.first_name.as_deref(), subject.last_name.as_deref()]
        .into_iter()
        .flatten()
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(" ");
    Some(name).filter(|n| !n.is_empty())
}

/// A stage's error as Graph shows it.
fn stage_error(code: &str, message: String) -> PublicError {
    PublicError {
        code: Some(code.into()),
        message: Some(dpo_contract::redact::redact_secrets(&message)),
        ..Default::default()
    }
}

/// `contentEstimate`: counts what each source holds of the person (items and bytes), copying nothing.
async fn estimate(ctx: &JobContext, claim: &Claim, record: RequestRecord) -> Result<RequestRecord, Stopped> {
    let Some(record) = start(ctx, claim, record, Stage::ContentEstimate).await? else { return stopped() };
    let person = person_of(ctx, claim, &record.request).await?;
    let mut per_source: Vec<Found> = Vec::new();
    if let Some(user) = &person.user {
        per_source.extend(builtin_counts(ctx, claim, user).await?);
    }
    let (configured, failed) = found_per_source(&ctx.sources, &person.who).await;
    per_source.extend(configured);
    let insight = SubjectRightsRequestDetail {
        item_count: Some(to_i64(per_source.iter().map(|f| f.items).sum())),
        total_item_size: Some(to_i64(per_source.iter().map(|f| f.bytes).sum())),
        product_item_counts: per_source
            .iter()
            .map(|f| KeyValuePair { name: Some(f.source.clone()), value: Some(f.items.to_string()), odata_type: None })
            .collect(),
        ..Default::default()
    };
    let error = failed.map(|message| stage_error("sourceFailed", format!("reading {message}")));
    let done = finish(ctx, claim, record, Stage::ContentEstimate, error.clone(), |r| {
        r.request.insight = Some(insight.clone());
        if error.is_none()
            && r.request.pause_after_estimate != Some(true)
            && let Some(next) = dpo_domain::request_stages::after(&r.request, Stage::ContentEstimate)
            && let Some(detail) = dpo_domain::request_stages::stage_mut(&mut r.request, next)
        {
            detail.status = Some(StageStatus::Current);
        }
    })
    .await?;
    done.map_or_else(stopped, Ok)
}

/// What reading one source finds of the person.
struct Found {
    /// The source.
    source: String,
    /// Items in all: its queries' rows, its objects, its records.
    items: u64,
    /// Their bytes, as the export would write them.
    bytes: u64,
}

/// What each configured source holds of the person `who`, as reading it finds it (counted, copied
/// nowhere), and the first reading that failed (`<file>: why`); a failed reading counts nothing.
async fn found_per_source(sources: &Sources, who: &Identities) -> (Vec<Found>, Option<String>) {
    let (mut per_source, mut failed): (Vec<Found>, Option<String>) = (Vec::new(), None);
    for previewed in tools::preview(sources, who).await {
        let source = previewed.path.split('/').next().unwrap_or_default().to_string();
        let (items, bytes) = previewed.outcome.unwrap_or_else(|e| {
            failed.get_or_insert_with(|| format!("{}: {e}", previewed.path));
            (0, 0)
        });
        match per_source.iter_mut().find(|f| f.source == source) {
            Some(found) => {
                found.items += items;
                found.bytes += bytes;
            }
            None => per_source.push(Found { source, items, bytes }),
        }
    }
    (per_source, failed)
}

/// What dpo's own sources hold of a directory user: the profile, and the drive and the activity unless the
/// sources file leaves them out; counted, copied nowhere.
async fn builtin_counts(
    ctx: &JobContext,
    claim: &Claim,
    user: &dpo_domain::store::UserRecord,
) -> Result<Vec<Found>, ExportError> {
    let builtin = ctx.sources.builtin;
    let profile = serde_json::to_vec_pretty(user).map_err(|e| ExportError::reading("the profile", e))?;
    let mut counts = vec![Found { source: "profile".into(), items: 1, bytes: profile.len() as u64 }];
    if builtin.drive {
        let files = ctx.drives.files(&claim.operation.tenant_id, &user.id).await?;
        let (items, bytes) = (files.len() as u64, files.iter().map(|f| f.size).sum());
        counts.push(Found { source: "drive".into(), items, bytes });
    }
    if builtin.activity {
        // Records and the bytes of their lines in `activity.jsonl`, read a batch at a time, kept nowhere.
        let (mut after, mut count, mut bytes) = (0, 0u64, 0u64);
        loop {
            let (t, uid) = (claim.operation.tenant_id.clone(), user.id.clone());
            let batch =
                blocking(&ctx.stores.directory, move |s| s.activities(&t, &uid, after, job::ACTIVITY_BATCH)).await?;
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            bytes += job::activity_lines(&batch)?.len() as u64;
            count += batch.len() as u64;
        }
        counts.push(Found { source: "activity".into(), items: count, bytes });
    }
    Ok(counts)
}

fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// Why a stage stopped short.
enum Stopped {
    /// The request was closed or removed meanwhile: nothing more is done for it.
    Request,
    /// The work failed, or the claim was lost.
    Export(ExportError),
}

impl<E: Into<ExportError>> From<E> for Stopped {
    fn from(e: E) -> Self {
        Stopped::Export(e.into())
    }
}

/// The request is gone or closed: the worker stops.
fn stopped() -> Result<RequestRecord, Stopped> {
    Err(Stopped::Request)
}

/// The request store's folder of `request`.
fn folder(ctx: &JobContext, request: Uuid) -> Result<Sink, ExportError> {
    let store = ctx.requests.as_ref().ok_or_else(|| ExportError::write_failed("no request store is configured"))?;
    store.folder(request)
}

/// `contentRetrieval`: gathers the person's data into the request store, resuming after what an
/// interrupted run wrote whole. A configured source that fails keeps what was read before it: the
/// manifest and the report say so, and the stage completes. Anything else fails the stage, for a person to
/// look at and approve again.
async fn retrieve(ctx: &JobContext, claim: &Claim, record: RequestRecord) -> Result<RequestRecord, Stopped> {
    let Some(record) = start(ctx, claim, record, Stage::ContentRetrieval).await? else { return stopped() };
    let person = person_of(ctx, claim, &record.request).await?;
    let sink = folder(ctx, record.id)?;
    sink.remove_staging_leftovers().await?;
    let error = match job::gather(ctx, None, &sink, claim, &person).await {
        Ok(_) => None,
        Err(stop @ (ExportError::LeaseLost | ExportError::Cancelled)) => return Err(stop.into()),
        Err(away) if away.store_unavailable() => return Err(away.into()),
        Err(e) => Some(stage_error("retrievalFailed", e.to_string())),
    };
    let done = finish(ctx, claim, record, Stage::ContentRetrieval, error.clone(), |r| {
        if error.is_none()
            && let Some(next) = dpo_domain::request_stages::stage_mut(&mut r.request, Stage::GenerateReport)
        {
            next.status = Some(StageStatus::Current);
        }
    })
    .await?;
    done.map_or_else(stopped, Ok)
}

/// `generateReport`: the report for the privacy team, from the request and the manifest of what was
/// gathered (with the manifest's SHA-256), kept with the request.
async fn report(ctx: &JobContext, claim: &Claim, record: RequestRecord) -> Result<RequestRecord, Stopped> {
    let Some(record) = start(ctx, claim, record, Stage::GenerateReport).await? else { return stopped() };
    if erases(&record) {
        let done = finish(ctx, claim, record, Stage::GenerateReport, None, |r| {
            r.report = Some(erasure::report_text(r));
            if let Some(resolved) = dpo_domain::request_stages::stage_mut(&mut r.request, Stage::CaseResolved) {
                resolved.status = Some(StageStatus::Current);
            }
        })
        .await?;
        return done.map_or_else(stopped, Ok);
    }
    let sink = folder(ctx, record.id)?;
    let bytes = sink.read_whole("manifest.json").await?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    let manifest = Manifest::parse(&bytes).map_err(|e| ExportError::reading("the request's manifest.json", e))?;
    let done = finish(ctx, claim, record, Stage::GenerateReport, None, |r| {
        r.report = Some(report_text(r, &manifest, &sha256));
        if let Some(resolved) = dpo_domain::request_stages::stage_mut(&mut r.request, Stage::CaseResolved) {
            resolved.status = Some(StageStatus::Current);
        }
    })
    .await?;
    done.map_or_else(stopped, Ok)
}

/// The head of a request's report: the request, the person, its regulations and due date.
fn report_head(record: &RequestRecord) -> String {
    use std::fmt::Write;
    let r = &record.request;
    let mut out = String::new();
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| t.map(|t| t.to_rfc3339()).unwrap_or_else(|| "-".into());
    let _ = writeln!(out, "Subject rights request {}", record.id);
    let _ = writeln!(out, "Name: {}", r.display_name.as_deref().unwrap_or("-"));
    let _ = writeln!(out, "Type: {}", r.kind.map_or("-", |k| k.as_str()));
    if let Some(subject) = &r.data_subject {
        let name = full_name(subject).unwrap_or_default();
        let _ = writeln!(out, "Person: {name} <{}>", subject.email.as_deref().unwrap_or("-"));
    }
    let _ = writeln!(out, "Data subject type: {}", r.data_subject_type.map_or("-", |t| t.as_str()));
    let _ = writeln!(out, "Regulations: {}", r.regulations.join(", "));
    let _ = writeln!(out, "Created: {}", time(r.created_date_time));
    let _ = writeln!(out, "Due: {}", time(r.internal_due_date_time));
    out
}

/// The final report of a request as text for the privacy team: the request, the person, its regulations
/// and due date, each source with its outcome, items and bytes, and the SHA-256 of the attachment's
/// manifest.
pub fn report_text(record: &RequestRecord, manifest: &Manifest, manifest_sha256: &str) -> String {
    use std::fmt::Write;
    let mut out = report_head(record);
    let _ = writeln!(out, "Collected: {}", manifest.exported_date_time);
    let _ = writeln!(out, "\nSources:");
    for source in &manifest.sources {
        let outcome = match source.outcome {
            SourceOutcome::Complete => "complete",
            SourceOutcome::Empty => "nothing found",
            SourceOutcome::Failed => "FAILED",
            SourceOutcome::Skipped => "not read (an earlier source failed)",
            SourceOutcome::NotApplicable => "not applicable",
        };
        let rows = source.rows.map(|n| format!(", {n} rows")).unwrap_or_default();
        let _ = writeln!(
            out,
            "  {} ({}): {outcome}; {} objects, {} bytes{rows}",
            source.name, source.kind, source.objects, source.bytes
        );
        if let Some(reason) = &source.reason {
            let _ = writeln!(out, "    {reason}");
        }
    }
    let total: u64 = manifest.objects.iter().map(|o| o.size).sum();
    let _ = writeln!(out, "\nAttachment: {} files of {total} bytes, and manifest.json", manifest.objects.len());
    let _ = writeln!(out, "manifest.json SHA-256: {manifest_sha256}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use dpo_contract::manifest::{ExportStatus, ManifestSource};
    use dpo_model::subject_rights::{DataSubject, SubjectRightsRequestType};

    #[test]
    fn the_report_names_the_request_the_person_each_source_and_the_manifest() {
        let record = RequestRecord {
            id: Uuid::nil(),
            tenant_id: "t".into(),
            version: 3,
            report: None,
            collected_removed_at: None,
            erasure: None,
            request: SubjectRightsRequest {
                display_name: Some("Casey's copy".into()),
                kind: Some(SubjectRightsRequestType::Access),
                data_subject: Some(DataSubject {
                    email: Some("casey@example.com".into()),
                    first_name: Some("Casey".into()),
                    last_name: Some("Jones".into()),
                    ..Default::default()
                }),
                regulations: vec!["GDPR".into()],
                ..Default::default()
            },
        };
        let source = |name: &str, kind: &str, outcome, rows, reason: Option<&str>| ManifestSource {
            name: name.into(),
            kind: kind.into(),
            location: None,
            queries: Vec::new(),
            outcome,
            reason: reason.map(str::to_string),
            objects: 1,
            bytes: 10,
            rows,
        };
        let manifest = Manifest {
            format_version: 4,
            operation_id: "op".into(),
            user_id: "casey@example.com".into(),
            exported_date_time: "2026-12-06T00:00:00.000Z".into(),
            status: ExportStatus::Complete,
            objects: Vec::new(),
            sources: vec![
                source("profile", "profile", SourceOutcome::NotApplicable, None, Some("not a user of the directory")),
                source("shop", "sql", SourceOutcome::Complete, Some(3), None),
            ],
        };
        let report = report_text(&record, &manifest, "abc123");
        for expected in [
            "Casey's copy",
            "Casey Jones <casey@example.com>",
            "Regulations: GDPR",
            "profile (profile): not applicable",
            "not a user of the directory",
            "shop (sql): complete; 1 objects, 10 bytes, 3 rows",
            "manifest.json SHA-256: abc123",
        ] {
            assert!(report.contains(expected), "{expected}: {report}");
        }
    }
}
