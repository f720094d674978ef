//! The stages of a `delete` request: `contentEstimate` plans the erasure without changing anything (each
//! statement run in a transaction that is rolled back, objects counted, kept rows counted) and the plan is
//! what a second administrator approves; `contentDeletion` runs the plan's steps one at a time, each
//! recorded before the next starts, then verifies by reading each erasing source again; `generateReport`
//! says per source and step what was erased, kept and verified.
//!
//! A step is recorded as its transaction is about to commit (the rows it changed, written under the claim:
//! a replica that lost its lease writes nothing and its transaction is rolled back), then as done after
//! the commit. A crash between the two runs the step again; statements must be idempotent, so a second
//! run changing nothing means the first one committed and its count stands.

use super::{Stopped, finish, found_per_source, person_of, save_recorded, stage_error, start, stopped, to_i64};
use crate::{
    ExportError, drives,
    job::JobContext,
    sources::{
        Identities, SourceError, SourceKind, Sources,
        erase::Erasure,
        erase_sql,
        file::Source,
        sql,
        tools::{self, ErasePlan},
    },
};
use chrono::{SubsecRound, Utc};
use dpo_domain::{
    blocking::blocking,
    request_stages::{approved, stage_mut},
    requests::{
        ErasureLog, ErasureStep, KeptRows, RequestRecord, StepDone, StepKind, Unerased, Verification, Verified,
    },
    store::{AuditEvent, Claim},
};
use dpo_model::subject_rights::{
    KeyValuePair, SubjectRightsRequestDetail, SubjectRightsRequestStage as Stage,
    SubjectRightsRequestStageStatus as StageStatus,
};
use sha2::{Digest, Sha256};

/// Objects deleted between two records of an objects step's progress.
const OBJECTS_BETWEEN_RECORDS: usize = 500;

/// The fingerprint of what a step runs: the SQL of a statement, the prefix of an objects source, the
/// method and URL template of a request.
fn fingerprint(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

/// What the step `name` of `kind` runs in `source`, as its fingerprint; `None` when the source has no
/// such step (any more).
fn fingerprint_of(source: &Source, kind: StepKind, name: &str) -> Option<String> {
    match (&source.erasure, kind, &source.kind) {
        (Some(Erasure::Sql { statements, .. }), StepKind::Statement, _) => {
            statements.iter().find(|s| s.name == name).map(|s| fingerprint(&s.sql))
        }
        (Some(Erasure::Objects), StepKind::Objects, SourceKind::Objects(objects)) => {
            Some(fingerprint(&objects.template))
        }
        (Some(Erasure::Http { method, request }), StepKind::Request, _) => {
            Some(fingerprint(&format!("{method} {}", request.template)))
        }
        _ => None,
    }
}

/// The name a step of `kind` has in reports when it is not a statement.
fn step_name(kind: StepKind) -> &'static str {
    match kind {
        StepKind::Statement => "statement",
        StepKind::Objects => "objects",
        StepKind::Request => "request",
    }
}

/// The plan of erasing the person `who`'s data: every step with what it would change, the rows kept, the
/// sources that hold something and erase nothing; or why it cannot be made (a reading failed, a statement
/// would change more rows than its `max_rows`).
async fn plan(sources: &Sources, who: &Identities) -> Result<ErasureLog, String> {
    let found = match found_per_source(sources, who).await {
        (found, None) => found,
        (_, Some(failed)) => return Err(format!("reading {failed}")),
    };
    let found_in = |source: &str| found.iter().find(|f| f.source == source).map_or(0, |f| f.items);
    let mut log = ErasureLog::default();
    for previewed in tools::preview_erase(sources, who).await {
        let planned = previewed.outcome.map_err(|e| format!("estimating {}: {e}", previewed.what))?;
        let Some(source) = sources.sources.iter().find(|s| s.name == previewed.source) else { continue };
        let (kind, name, estimated) = match planned {
            ErasePlan::Kept { rows, reason } => {
                log.kept.push(KeptRows { source: source.name.clone(), name: previewed.name, reason, rows });
                continue;
            }
            ErasePlan::Rows { changed, max_rows } => {
                if changed > max_rows {
                    return Err(format!(
                        "{} would change {changed} rows, more than its max_rows of {max_rows}: nothing was erased (raise \
                         max_rows in the sources file if this is right, then create the request again)",
                        previewed.what
                    ));
                }
                (StepKind::Statement, previewed.name, changed)
            }
            ErasePlan::Objects(objects) => (StepKind::Objects, step_name(StepKind::Objects).to_string(), objects),
            ErasePlan::Request(_) => {
                (StepKind::Request, step_name(StepKind::Request).to_string(), found_in(&source.name))
            }
        };
        let Some(fingerprint) = fingerprint_of(source, kind, &name) else { continue };
        let estimated = if previewed.skipped.is_some() { 0 } else { estimated };
        log.steps.push(ErasureStep {
            source: source.name.clone(),
            name,
            kind,
            estimated,
            fingerprint,
            skipped: previewed.skipped,
            committing: None,
            deleted_so_far: 0,
            done: None,
        });
    }
    for f in &found {
        let erases = sources.sources.iter().any(|s| s.name == f.source && s.erasure.is_some());
        if !erases && f.items > 0 {
            log.unerased.push(Unerased { source: f.source.clone(), items: f.items });
        }
    }
    Ok(log)
}

/// `insight` of a `delete` request: `itemCount` what the steps change (estimated, or once done what they
/// changed), per source in `productItemCounts`, with the rows each source keeps as `<source> (kept)`.
fn insight(log: &ErasureLog) -> SubjectRightsRequestDetail {
    let mut per_source: Vec<(String, u64)> = Vec::new();
    for step in &log.steps {
        let items = match (&step.done, step.kind) {
            (Some(_), StepKind::Request) | (None, _) => step.estimated,
            (Some(done), _) => done.changed,
        };
        match per_source.iter_mut().find(|(name, _)| *name == step.source) {
            Some((_, n)) => *n += items,
            None => per_source.push((step.source.clone(), items)),
        }
    }
    let total: u64 = per_source.iter().map(|(_, n)| n).sum();
    let mut kept: Vec<(String, u64)> = Vec::new();
    for k in &log.kept {
        let name = format!("{} (kept)", k.source);
        match kept.iter_mut().find(|(n, _)| *n == name) {
            Some((_, n)) => *n += k.rows,
            None => kept.push((name, k.rows)),
        }
    }
    SubjectRightsRequestDetail {
        item_count: Some(to_i64(total)),
        product_item_counts: per_source
            .into_iter()
            .chain(kept)
            .map(|(name, n)| KeyValuePair { name: Some(name), value: Some(n.to_string()), odata_type: None })
            .collect(),
        ..Default::default()
    }
}

/// `contentEstimate` of a `delete` request: the plan, in `insight` and kept with the request; `approval`
/// then waits for a second administrator. A statement over its `max_rows` fails the stage instead.
pub(super) async fn estimate(ctx: &JobContext, claim: &Claim, record: RequestRecord) -> Result<RequestRecord, Stopped> {
    let Some(record) = start(ctx, claim, record, Stage::ContentEstimate).await? else { return stopped() };
    let person = person_of(ctx, claim, &record.request).await?;
    let (log, error) = match plan(&ctx.sources, &person.who).await {
        Ok(mut log) => {
            // A directory user's own data (profile, drive, activity) is the directory's: a delete request
            // does not erase it, and the report says what it holds.
            if let Some(user) = &person.user {
                let held = super::builtin_counts(ctx, claim, user).await?.into_iter().filter(|f| f.items > 0);
                log.unerased.extend(held.map(|f| Unerased { source: f.source, items: f.items }));
            }
            (Some(log), None)
        }
        Err(why) => (None, Some(stage_error("estimateFailed", why))),
    };
    let done = finish(ctx, claim, record, Stage::ContentEstimate, error, |r| {
        if let Some(log) = &log {
            r.request.insight = Some(insight(log));
            r.erasure = Some(log.clone());
            if let Some(approval) = stage_mut(&mut r.request, Stage::Approval) {
                approval.status = Some(StageStatus::Current);
            }
        }
    })
    .await?;
    done.map_or_else(stopped, Ok)
}

/// Why a step did not complete: the stage fails with the message (the steps before it stay recorded), or
/// the worker stops (the claim lost, the request closed, dpo's store away).
enum StepFailed {
    Stage(String),
    Stopped(Stopped),
}

impl<E: Into<ExportError>> From<E> for StepFailed {
    fn from(e: E) -> Self {
        StepFailed::Stopped(Stopped::Export(e.into()))
    }
}

/// `contentDeletion`: the plan's steps not yet done, in order, each recorded before the next; then the
/// verification. Runs only for an approved request.
pub(super) async fn erase(ctx: &JobContext, claim: &Claim, record: RequestRecord) -> Result<RequestRecord, Stopped> {
    if !approved(&record.request) {
        return stopped();
    }
    let Some(mut record) = start(ctx, claim, record, Stage::ContentDeletion).await? else { return stopped() };
    let person = person_of(ctx, claim, &record.request).await?;
    let steps = record.erasure.as_ref().map_or(0, |log| log.steps.len());
    let mut failure = None;
    if record.erasure.is_none() {
        failure = Some("the request has no estimate: create it again".to_string());
    }
    // What was approved runs whole or not at all: a sources file changed since the estimate stops the stage
    // before its first step.
    let changed: Vec<String> = record
        .erasure
        .iter()
        .flat_map(|log| &log.steps)
        .filter(|step| step.done.is_none() && step.skipped.is_none())
        .filter(|step| {
            let source = ctx.sources.sources.iter().find(|s| s.name == step.source);
            source.and_then(|s| fingerprint_of(s, step.kind, &step.name)).as_deref() != Some(step.fingerprint.as_str())
        })
        .map(|step| format!("{}/{}", step.source, step.name))
        .collect();
    if !changed.is_empty() {
        failure = Some(format!(
            "the sources file changed since the estimate was approved ({}): nothing ran; create the request again to \
             estimate and approve what the file says now",
            changed.join(", ")
        ));
    }
    let steps = if failure.is_some() { 0 } else { steps };
    // One writing connection per source for all its statements, each still in a transaction of its own.
    let mut sessions: Vec<(String, erase_sql::Session)> = Vec::new();
    for at in 0..steps {
        let Some(step) = record.erasure.as_ref().and_then(|log| log.steps.get(at)).cloned() else { break };
        if step.done.is_some() || step.skipped.is_some() {
            continue;
        }
        match run_step(ctx, claim, record, at, &step, &person.who, &mut sessions).await {
            Ok(written) => record = written,
            Err((_, StepFailed::Stopped(stop))) => return Err(stop),
            Err((kept, StepFailed::Stage(why))) => {
                record = kept;
                failure = Some(why);
                break;
            }
        }
    }
    let verification = match &failure {
        None => match verify(&ctx.sources, &person.who, record.erasure.as_ref()).await.inspect(|_| {
            slog::info!(ctx.log, "erasure verified"; "request" => %record.id);
        }) {
            Ok(verification) => {
                let remaining: Vec<String> =
                    verification.sources.iter().filter(|v| !v.passed()).flat_map(|v| v.remaining.clone()).collect();
                if !remaining.is_empty() {
                    failure = Some(format!(
                        "the verification still finds the person's data that no retain entry keeps: {}",
                        remaining.join("; ")
                    ));
                }
                Some(verification)
            }
            Err(why) => {
                failure = Some(format!("verifying: {why}"));
                None
            }
        },
        Some(_) => None,
    };
    let error = failure.map(|why| stage_error("deletionFailed", why));
    let done = finish(ctx, claim, record, Stage::ContentDeletion, error.clone(), |r| {
        if let Some(log) = r.erasure.as_mut() {
            log.verified = verification.clone();
            r.request.insight = Some(insight(log));
        }
        if error.is_none()
            && let Some(next) = stage_mut(&mut r.request, Stage::GenerateReport)
        {
            next.status = Some(StageStatus::Current);
        }
    })
    .await?;
    done.map_or_else(stopped, Ok)
}

/// Sets `change` on step `at` of the request's erasure and writes it under the claim, with `event` in the
/// same commit.
async fn record_step(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    at: usize,
    change: impl Fn(&mut ErasureStep),
    event: Option<AuditEvent>,
) -> Result<RequestRecord, StepFailed> {
    let change = |r: &mut RequestRecord| {
        if let Some(step) = r.erasure.as_mut().and_then(|log| log.steps.get_mut(at)) {
            change(step);
        }
    };
    let saved = save_recorded(ctx, claim, record, change, |_| event.clone()).await?;
    saved.ok_or(StepFailed::Stopped(Stopped::Request))
}

/// How reports, the trail and errors name a step: `<source>/erase:<statement>`, `<source>/objects`,
/// `<source>/request`.
fn label(step: &ErasureStep) -> String {
    match step.kind {
        StepKind::Statement => format!("{}/erase:{}", step.source, step.name),
        _ => format!("{}/{}", step.source, step.name),
    }
}

/// Runs step `at` of the plan (its fingerprint already checked against the sources file), records it and
/// audits it; on a failure returns the request as last written.
async fn run_step(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    at: usize,
    step: &ErasureStep,
    who: &Identities,
    sessions: &mut Vec<(String, erase_sql::Session)>,
) -> Result<RequestRecord, (RequestRecord, StepFailed)> {
    let what = label(step);
    let source = ctx.sources.sources.iter().find(|s| s.name == step.source);
    let outcome = match source.map(|s| (s, &s.erasure, &s.kind)) {
        Some((source, Some(Erasure::Sql { database, statements }), _)) => {
            match statements.iter().find(|s| s.name == step.name) {
                Some(statement) => {
                    let open = match sessions.iter().position(|(name, _)| *name == source.name) {
                        Some(open) => open,
                        None => {
                            sessions.push((source.name.clone(), erase_sql::Session::open(database)));
                            sessions.len() - 1
                        }
                    };
                    let session = &sessions[open].1;
                    let (sql, max_rows) = (&statement.sql, statement.max_rows);
                    erase_statement(ctx, claim, record.clone(), at, step, session, sql, max_rows, who).await
                }
                None => Err(StepFailed::Stage("no such statement".into())),
            }
        }
        Some((_, Some(Erasure::Objects), SourceKind::Objects(objects))) => {
            erase_objects(ctx, claim, record.clone(), at, step, objects, who).await
        }
        Some((_, Some(Erasure::Http { method, request }), _)) => match request.send_erase(method, who).await {
            Ok(status) => Ok((record.clone(), StepDone { changed: 0, status, at: Utc::now().trunc_subsecs(3) })),
            Err(e) => Err(StepFailed::Stage(e.to_string())),
        },
        _ => Err(StepFailed::Stage("the source no longer erases this way; create the request again".into())),
    };
    // The step's outcome and its event in one commit, before the next step starts.
    let outcome = match outcome {
        Ok((ran, done)) => {
            let event = step_event(&ran.tenant_id, ran.id, Ok(done_text(&what, step.kind, &done)));
            let done_now = |s: &mut ErasureStep| {
                s.committing = None;
                s.done = Some(done.clone());
            };
            record_step(ctx, claim, ran, at, done_now, Some(event)).await
        }
        Err(failed) => Err(failed),
    };
    match outcome {
        Ok(written) => {
            slog::info!(ctx.log, "erase step done"; "request" => %written.id, "step" => &what);
            Ok(written)
        }
        Err(StepFailed::Stage(why)) => {
            let why = format!("{what}: {why}");
            // An objects step may have recorded its progress before it failed: the request as stored now.
            let reread = super::load(ctx, claim, record.id).await.ok().flatten().unwrap_or(record);
            if let Err(e) = audit_step(ctx, &reread.tenant_id, reread.id, Err(why.clone())).await {
                return Err((reread, e.into()));
            }
            Err((reread, StepFailed::Stage(why)))
        }
        Err(stop) => Err((record, stop)),
    }
}

/// What a step `what` of `kind` did, as the trail says it.
fn done_text(what: &str, kind: StepKind, done: &StepDone) -> String {
    match (kind, done.status) {
        (StepKind::Statement, _) => format!("{what}: {} rows changed", done.changed),
        (StepKind::Objects, _) => format!("{what}: {} objects deleted", done.changed),
        (StepKind::Request, Some(status)) => format!("{what}: answered {status}"),
        (StepKind::Request, None) => format!("{what}: not sent, an identity its URL names is empty for the person"),
    }
}

/// Records in the tenant's audit trail a step of `request`: what it did, or why it failed.
async fn audit_step(
    ctx: &JobContext,
    tenant: &str,
    request: uuid::Uuid,
    outcome: Result<String, String>,
) -> Result<(), ExportError> {
    let event = step_event(tenant, request, outcome);
    blocking(&ctx.stores.audit, move |log| log.append(event)).await?;
    Ok(())
}

/// The audit event of an erase step's `outcome`.
fn step_event(tenant: &str, request: uuid::Uuid, outcome: Result<String, String>) -> AuditEvent {
    dpo_domain::audit::by_dpo(tenant, dpo_domain::audit::Activity::EraseRequestData, request, outcome.map(Some))
}

/// One statement in a transaction of its own: run, refused above `max_rows`, recorded as committing under
/// the claim, committed; returns what it changed, to be recorded done.
#[allow(clippy::too_many_arguments)]
async fn erase_statement(
    ctx: &JobContext,
    claim: &Claim,
    record: RequestRecord,
    at: usize,
    step: &ErasureStep,
    session: &erase_sql::Session,
    sql: &str,
    max_rows: u64,
    who: &Identities,
) -> Result<(RequestRecord, StepDone), StepFailed> {
    let source_error = |e: SourceError| StepFailed::Stage(e.to_string());
    let uncommitted = session.run(sql, Some(who), erase_sql::ERASE_TIMEOUT).await.map_err(source_error)?;
    let changed = uncommitted.changed;
    if changed > max_rows {
        uncommitted.roll_back().await.map_err(source_error)?;
        return Err(StepFailed::Stage(format!(
            "it would change {changed} rows, more than its max_rows of {max_rows}: rolled back"
        )));
    }
    // A run after a crash that changes nothing: the earlier run committed, and its count stands.
    let counted = match step.committing {
        Some(before) if changed == 0 => before,
        _ => changed,
    };
    // Dropped on any failure here: the transaction is rolled back.
    let record = record_step(ctx, claim, record, at, |s| s.committing = Some(counted), None).await?;
    uncommitted.commit().await.map_err(source_error)?;
    Ok((record, StepDone { changed: counted, status: None, at: Utc::now().trunc_subsecs(3) }))
}

/// Every object under the person's prefix, deleted one by one, the count recorded every
/// [`OBJECTS_BETWEEN_RECORDS`] (each record checks the claim first); returns how many, to be recorded done.
async fn erase_objects(
    ctx: &JobContext,
    claim: &Claim,
    mut record: RequestRecord,
    at: usize,
    step: &ErasureStep,
    objects: &crate::sources::file::ObjectsSource,
    who: &Identities,
) -> Result<(RequestRecord, StepDone), StepFailed> {
    let mut deleted = step.deleted_so_far;
    if !objects.missing_for(who) {
        let store = drives::open(&objects.store).map_err(|e| StepFailed::Stage(e.to_string()))?;
        let files = store.files_under(&objects.parts(who)).await.map_err(|e| StepFailed::Stage(e.to_string()))?;
        for batch in files.chunks(OBJECTS_BETWEEN_RECORDS) {
            for file in batch {
                store.delete(file).await.map_err(|e| StepFailed::Stage(e.to_string()))?;
            }
            deleted += batch.len() as u64;
            record = record_step(ctx, claim, record, at, |s| s.deleted_so_far = deleted, None).await?;
        }
    }
    Ok((record, StepDone { changed: deleted, status: None, at: Utc::now().trunc_subsecs(3) }))
}

/// Reads each erasing source again for the person: what it still finds beyond the rows its retain entries
/// keep is listed. A `sql` source's queries and retain entries are counted on one connection (`count(*)`,
/// no row encoded); objects are listed, an API read again.
async fn verify(sources: &Sources, who: &Identities, log: Option<&ErasureLog>) -> Result<Verification, String> {
    let erasing: Vec<&str> = log.map(|l| l.steps.iter().map(|s| s.source.as_str()).collect()).unwrap_or_default();
    let mut verified = Vec::new();
    for source in sources.sources.iter().filter(|s| erasing.contains(&s.name.as_str())) {
        let (each, kept) = match &source.kind {
            SourceKind::Sql(sql_source) => {
                // A query naming an identity the request does not give is not run, as everywhere else.
                let runs = |sql: &str| who.not_given_in_sql(sql).is_none();
                let queries: Vec<_> = sql_source.queries.iter().filter(|q| runs(&q.sql)).collect();
                let retains: Vec<_> = source.retained.iter().filter(|r| runs(&r.sql)).collect();
                let texts: Vec<String> =
                    queries.iter().map(|q| q.sql.clone()).chain(retains.iter().map(|r| r.sql.clone())).collect();
                let counted = sql::counts(&sql_source.database, &texts, who)
                    .await
                    .map_err(|e| format!("reading {}: {e}", source.name))?;
                let each: Vec<(String, u64)> = queries
                    .iter()
                    .zip(&counted)
                    .map(|(q, n)| (format!("{}/{}.{}", source.name, q.name, q.format.extension()), *n))
                    .collect();
                (each, counted[queries.len()..].iter().sum())
            }
            _ => {
                let mut each = Vec::new();
                for previewed in tools::preview_source(source, who).await {
                    let (items, _) = previewed.outcome.map_err(|e| format!("reading {}: {e}", previewed.path))?;
                    each.push((previewed.path, items));
                }
                (each, 0)
            }
        };
        let found: u64 = each.iter().map(|(_, n)| n).sum();
        let remaining = if found > kept {
            each.iter().filter(|(_, n)| *n > 0).map(|(path, n)| format!("{path}: {n}")).collect()
        } else {
            Vec::new()
        };
        verified.push(Verified { source: source.name.clone(), found, kept, remaining });
    }
    Ok(Verification { at: Utc::now().trunc_subsecs(3), sources: verified })
}

/// The final report of a `delete` request: per source and step what was estimated and erased (or why a
/// step was skipped), what is kept and why, what the verification found, and what holds something of the
/// person and erases nothing.
pub fn report_text(record: &RequestRecord) -> String {
    use std::fmt::Write;
    let mut out = super::report_head(record);
    let Some(log) = &record.erasure else {
        let _ = writeln!(out, "\nNo erasure was planned.");
        return out;
    };
    let _ = writeln!(out, "\nErased:");
    for step in &log.steps {
        let what = label(step);
        let unit = match step.kind {
            StepKind::Statement => "rows",
            StepKind::Objects => "objects",
            StepKind::Request => "records",
        };
        let outcome = match (&step.skipped, &step.done, step.kind) {
            (Some(reason), ..) => format!("not run, {reason}"),
            (None, Some(done), StepKind::Request) => match done.status {
                Some(status) => format!("sent, answered {status} (the source held {} {unit})", step.estimated),
                None => "not sent: an identity its URL names is empty for the person".to_string(),
            },
            (None, Some(done), _) => format!("{} {unit} (estimated {})", done.changed, step.estimated),
            (None, None, _) => format!("NOT DONE (estimated {} {unit})", step.estimated),
        };
        let _ = writeln!(out, "  {what}: {outcome}");
    }
    let _ = writeln!(out, "\nKept:");
    if log.kept.is_empty() {
        let _ = writeln!(out, "  nothing");
    }
    for kept in &log.kept {
        let _ = writeln!(out, "  {}/retain:{}: {} rows, because: {}", kept.source, kept.name, kept.rows, kept.reason);
    }
    if !log.unerased.is_empty() {
        let _ = writeln!(
            out,
            "\nHeld and not erased (sources without erase entries; a directory user's profile, drive and activity \
             are the directory's):"
        );
        for u in &log.unerased {
            let _ = writeln!(out, "  {}: {} items", u.source, u.items);
        }
    }
    let _ = writeln!(out, "\nVerified:");
    match &log.verified {
        None => {
            let _ = writeln!(out, "  not yet");
        }
        Some(v) => {
            let _ = writeln!(out, "  at {}", v.at.to_rfc3339());
            for s in &v.sources {
                let verdict = if s.passed() { "ok" } else { "FAILED" };
                let _ = writeln!(out, "  {}: {verdict}, {} items still found, {} kept", s.source, s.found, s.kept);
                for r in &s.remaining {
                    let _ = writeln!(out, "    {r}");
                }
            }
        }
    }
    out
}
