//! One export, from claimed operation to `complete` (or an error for the engine to record).

use super::{ExportError, drive_files::DriveFile, drives::Drives, index, sink::Sink};
use crate::sources::{
    Identities, Pieces, SourceError, SourceKind, Sources,
    file::{ObjectsSource, SourceLimits},
    http::HttpRecords,
    sql::EncodedRows,
};
use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use dpo_contract::location::{LocationError, LocationPolicy, StorageLocation};
use dpo_contract::manifest::{
    self, ExportStatus, Manifest, ManifestObject, ManifestQuery, ManifestSource, SourceOutcome,
};
use dpo_domain::{
    blocking::blocking,
    store::{
        ActivityRecord, Claim, ExportLedger, ExportedObject, JobQueue, OperationRecord, StoreError, Stores, UserRecord,
    },
};
use std::{
    collections::HashMap,
    sync::Arc,
    time::{Duration, Instant},
};

/// What a job needs from the server.
pub struct JobContext {
    /// The stores.
    pub stores: Stores,
    /// Users' drives.
    pub drives: Arc<dyn Drives>,
    /// The organisation's systems the export also reads.
    pub sources: Arc<Sources>,
    /// Which storage locations are acceptable.
    pub policy: LocationPolicy,
    /// Where the export says what it does.
    pub log: slog::Logger,
    /// How long an export's claim lasts without renewal (renewed as it checks that it still holds it).
    pub lease: Duration,
    /// Where subject rights requests keep what they gather (`None`: this server runs no request).
    pub requests: Option<crate::request_store::RequestStore>,
}

/// Activity records read (and written) at a time.
pub(crate) const ACTIVITY_BATCH: u64 = 1000;
/// Progress units an activity record counts for (about its size as JSON).
const ACTIVITY_WEIGHT: u64 = 200;
/// Longest time between two progress updates in the store.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Longest time a source is read between two checks that the export still holds its claim (was neither
/// cancelled nor taken over): what a `DELETE` waits at most before the reading stops.
const HOLD_CHECK: Duration = Duration::from_secs(1);
/// Bytes read from a drive file at a time: one block, so that each read fills a block to upload.
const READ_CHUNK: usize = super::sink::BLOCK_SIZE;
/// Chunks of a drive file read ahead of the upload.
const READ_AHEAD: usize = 2;
/// Files up to this size are copied several at once, each in one request (one Put Blob): for many small
/// files the round trips, not the bytes, take the time.
const SMALL_FILE: u64 = 1 << 20;
/// Small files copied at once (at most this many times [`SMALL_FILE`] bytes held).
const SMALL_FILES_IN_FLIGHT: usize = 8;
/// Small files whose copies are prepared at once (see [`Copy::small_files`]).
const SMALL_FILES_WINDOW: usize = 256;
/// The built-in sources' names (and kinds) in the manifest.
const PROFILE: &str = "profile";
const DRIVE: &str = "drive";
const ACTIVITY: &str = "activity";

/// Progress units a configured query counts for (its rows are not counted before they are read).
const QUERY_WEIGHT: u64 = 1 << 20;
/// How many times a configured source's file is written again from its start after a transient failure
/// (a dropped database connection, a busy SQLite file).
const SOURCE_RETRIES: u32 = 3;

/// What a fenced write's refusal means for the export: the operation was deleted (cancelled), or
/// another worker holds it now.
pub fn fenced(error: StoreError) -> ExportError {
    match error {
        StoreError::Missing(_) => ExportError::Cancelled,
        StoreError::LeaseLost(_) => ExportError::LeaseLost,
        other => ExportError::Store(other),
    }
}

/// Keeps the operation's `progress` honest: done units over total units, written at most every
/// [`PROGRESS_INTERVAL`], never 100 before the manifest is written.
struct Progress {
    queue: Arc<dyn JobQueue>,
    claim: Claim,
    total: u64,
    done: u64,
    saved: f64,
    last_saved: Instant,
    lease: Duration,
    last_held: Instant,
}

impl Progress {
    /// Checks, at most every [`HOLD_CHECK`], that the claim is still the export's (renewing its lease
    /// on the way): `Cancelled` once the operation was deleted, `LeaseLost` once another worker has it.
    /// Called between a source's pages and row batches, which no progress write marks.
    async fn still_held(&mut self) -> Result<(), ExportError> {
        if self.last_held.elapsed() < HOLD_CHECK {
            return Ok(());
        }
        let (claim, until) = (self.claim.clone(), Utc::now() + self.lease);
        match blocking(&self.queue, move |q| q.heartbeat(&claim, until)).await.map_err(fenced) {
            // The store briefly away is the lease keeper's to judge, not a reason to stop.
            Ok(()) | Err(ExportError::Store(_)) => {}
            Err(stop) => return Err(stop),
        }
        self.last_held = Instant::now();
        Ok(())
    }

    async fn advance(&mut self, units: u64) -> Result<(), ExportError> {
        self.done += units;
        if self.last_saved.elapsed() >= PROGRESS_INTERVAL {
            self.save().await?;
        }
        Ok(())
    }

    async fn save(&mut self) -> Result<(), ExportError> {
        let percent = if self.total == 0 { 0.0 } else { (self.done as f64 * 100.0 / self.total as f64).min(99.0) };
        let percent = (percent * 10.0).floor() / 10.0;
        if percent == self.saved {
            return Ok(());
        }
        let claim = self.claim.clone();
        blocking(&self.queue, move |q| q.progress(&claim, percent)).await.map_err(fenced)?;
        self.saved = percent;
        self.last_saved = Instant::now();
        Ok(())
    }
}

/// Whether the storage location still takes writes (a SAS may expire while the export runs); `None`: dpo's
/// own request store, which does not expire.
fn still_valid(target: Option<&StorageLocation>) -> Result<(), ExportError> {
    match target {
        Some(StorageLocation::AzureBlob { expires, .. }) if *expires <= Utc::now() => {
            Err(ExportError::Target(LocationError::ExpiredDuringExport(*expires)))
        }
        _ => Ok(()),
    }
}

/// Exports the data of the claimed operation's user to its storage location and returns the completed
/// operation.
///
/// An export that fails or is cancelled removes what it wrote (where the target lets it), so no partial
/// copy of a person's data stays behind, unless it was a configured source that failed: then the export
/// keeps what was read before and its manifest says it is incomplete and why. One interrupted by a stop or a crash keeps it, to resume, and so
/// does one whose claim another worker took over (it is still writing there).
pub async fn run(ctx: &JobContext, claim: Claim) -> Result<OperationRecord, ExportError> {
    if let Some(request) = claim.operation.request_id {
        return crate::request_work::run(ctx, claim, request).await;
    }
    let op = &claim.operation;
    let location = op.storage_secret.clone().or_else(|| op.storage_location.clone()).unwrap_or_default();
    // Checked again now: the policy may have changed, and links may have appeared in a local root.
    let target = StorageLocation::parse(&location, &ctx.policy, Utc::now())?;
    let sink = Sink::open(&target, &op.id.to_string())?;
    if let (StorageLocation::Local { dir }, Some(root)) = (&target, &ctx.policy.local_root) {
        dpo_contract::location::inside_after_links(dir, root)?;
    }
    sink.remove_staging_leftovers().await?;
    match write(ctx, &target, &sink, claim).await {
        Ok(done) => Ok(done),
        Err(ExportError::LeaseLost) => Err(ExportError::LeaseLost),
        // The store was briefly away: the export resumes after what it wrote, which stays.
        Err(away) if away.store_unavailable() => Err(away),
        // A configured source failed: the manifest lists what was written before, which stays.
        Err(failure @ ExportError::DataSource { .. }) => Err(failure),
        Err(failure) => match sink.remove_all().await {
            Ok(_) => Err(failure),
            Err(removal) => Err(ExportError::NotRemoved { cause: Box::new(failure), removal: Box::new(removal) }),
        },
    }
}

/// Writes every object of the export, the manifest last, and marks the operation complete.
async fn write(
    ctx: &JobContext,
    target: &StorageLocation,
    sink: &Sink,
    claim: Claim,
) -> Result<OperationRecord, ExportError> {
    let op = &claim.operation;
    let (tenant, user_id) = (op.tenant_id.clone(), op.user_id.clone());
    let user = blocking(&ctx.stores.directory, move |s| s.find_user(&tenant, &user_id))
        .await?
        .ok_or_else(|| ExportError::unreadable(format!("user {} is no longer in the directory", op.user_id)))?;
    let person = Person { who: Identities::of(&user), named: user.id.clone(), name: None, user: Some(user) };
    let gathered = gather(ctx, Some(target), sink, &claim, &person).await?;
    if let Some(failure) = gathered.failure {
        return Err(failure);
    }
    let at = Utc::now().trunc_subsecs(3);
    blocking(&ctx.stores.queue, move |q| q.complete(&claim, at)).await.map_err(fenced)
}

/// The lines of `activity.jsonl` a batch of activity records makes: one JSON object a line.
pub(crate) fn activity_lines(batch: &[(i64, ActivityRecord)]) -> Result<Vec<u8>, ExportError> {
    let mut lines = Vec::with_capacity(batch.len() * ACTIVITY_WEIGHT as usize);
    for (_, record) in batch {
        serde_json::to_writer(&mut lines, record).map_err(|e| ExportError::reading("the activity records", e))?;
        lines.push(b'\n');
    }
    Ok(lines)
}

/// Whose data is gathered.
pub struct Person {
    /// The user of the directory, when they are one: the built-in sources (profile, drive, activity) are
    /// theirs. A person a request names who is no user has none, and those sources do not apply.
    pub user: Option<UserRecord>,
    /// What the configured sources find them by.
    pub who: Identities,
    /// Who the manifest says the data is of: the user's id, or the email address a request gives.
    pub named: String,
    /// Their name, as the page greets them (a request's first and last name).
    pub name: Option<String>,
}

/// What [`gather`] wrote: the manifest (written last), and the configured source that failed, if one did
/// (what was read before it is kept, and the manifest says so).
pub struct Gathered {
    /// The manifest, as written.
    pub manifest: Manifest,
    /// The source that failed.
    pub failure: Option<ExportError>,
}

/// Why a built-in source is not read for a person who is not a user of the directory.
const NOT_A_USER: &str = "not a user of the directory";

/// Writes every object of the person's data through `sink`, the page and the manifest last, under the
/// claim (resuming after what an interrupted run of it wrote whole).
pub async fn gather(
    ctx: &JobContext,
    target: Option<&StorageLocation>,
    sink: &Sink,
    claim: &Claim,
    person: &Person,
) -> Result<Gathered, ExportError> {
    let op = &claim.operation;
    let directory = &ctx.stores.directory;
    let user = person.user.as_ref();
    let tenant = op.tenant_id.clone();
    let builtin = ctx.sources.builtin;
    let files = match user {
        Some(user) if builtin.drive => ctx.drives.files(&tenant, &user.id).await?,
        _ => Vec::new(),
    };
    let who = &person.who;
    // The objects of every objects source, listed now so that progress counts their bytes.
    let mut objects: HashMap<String, (Arc<dyn Drives>, Vec<DriveFile>)> = HashMap::new();
    for source in &ctx.sources.sources {
        if let SourceKind::Objects(source_objects) = &source.kind
            && who.not_given(source_objects.names()).is_empty()
        {
            objects.insert(source.name.clone(), list_objects(&source.name, source_objects, who).await?);
        }
    }
    let activity_count = match user {
        Some(user) if builtin.activity => {
            let (t, uid) = (tenant.clone(), user.id.clone());
            blocking(directory, move |s| s.count_activities(&t, &uid)).await?
        }
        _ => 0,
    };
    let profile = user
        .map(|user| serde_json::to_vec_pretty(user).map(Bytes::from))
        .transpose()
        .map_err(|e| ExportError::reading("the profile", e))?;

    let total = profile.as_ref().map_or(0, |p| p.len() as u64)
        + files.iter().map(|f| f.size).sum::<u64>()
        + activity_count * ACTIVITY_WEIGHT
        + ctx.sources.query_count() as u64 * QUERY_WEIGHT
        + objects.values().flat_map(|(_, files)| files).map(|f| f.size).sum::<u64>();
    let op_id = op.id;
    let saved = op.progress;
    let queue = ctx.stores.queue.clone();
    let mut progress = Progress {
        queue: queue.clone(),
        claim: claim.clone(),
        total,
        done: 0,
        saved,
        last_saved: Instant::now(),
        lease: ctx.lease,
        last_held: Instant::now(),
    };
    let mut written: Vec<ManifestObject> = Vec::new();

    if let Some(profile) = profile {
        let profile_len = profile.len() as u64;
        written.push(listed(sink.put("profile.json", profile).await?, PROFILE));
        progress.advance(profile_len).await?;
    }

    // What an earlier, interrupted run of this export wrote whole: skipped if the target still has it.
    let ledger = &ctx.stores.ledger;
    let mut earlier: HashMap<String, ExportedObject> =
        blocking(ledger, move |s| s.exported(op_id)).await?.into_iter().map(|o| (o.path.clone(), o)).collect();

    let mut copy = Copy { sink, target, ledger, claim, earlier: &mut earlier, progress: &mut progress, log: &ctx.log };
    copy.files(ctx.drives.as_ref(), &files, DRIVE, DRIVE, &mut written).await?;

    if let Some(user) = user
        && builtin.activity
    {
        still_valid(target)?;
        let mut upload = sink.upload("activity.jsonl").await?;
        let (mut after, mut records) = (0, 0);
        loop {
            let (t, uid) = (tenant.clone(), user.id.clone());
            let batch = blocking(directory, move |s| s.activities(&t, &uid, after, ACTIVITY_BATCH)).await?;
            let Some((last, _)) = batch.last() else { break };
            after = *last;
            upload.write(Bytes::from(activity_lines(&batch)?)).await?;
            records += batch.len() as u64;
            copy.progress.advance(batch.len() as u64 * ACTIVITY_WEIGHT).await?;
        }
        written.push(listed(ExportedObject { rows: Some(records), ..upload.finish().await? }, ACTIVITY));
    }
    // The built-in sources the operator left on (the profile always: it says whose data this is).
    let mut summaries = vec![summary(PROFILE, PROFILE, None, Vec::new(), &written)];
    if builtin.drive {
        summaries.push(summary(DRIVE, DRIVE, None, Vec::new(), &written));
    }
    if builtin.activity {
        summaries.push(summary(ACTIVITY, ACTIVITY, None, Vec::new(), &written));
    }
    if user.is_none() {
        for builtin in &mut summaries {
            builtin.outcome = SourceOutcome::NotApplicable;
            builtin.reason = Some(NOT_A_USER.into());
        }
    }
    for done in &summaries {
        slog::info!(ctx.log, "data source read"; "operation" => %op_id, "source" => &done.name, "kind" => &done.kind,
            "objects" => done.objects, "bytes" => done.bytes, "rows" => done.rows, "failed" => false);
    }

    // The organisation's own systems: a file per query, `<source>/<query>.<format>`, or per HTTP source,
    // `<source>/<source>.jsonl`, or the person's objects, `<source>/<path under the prefix>`. The first
    // that fails stops the export; those after it are not read. A query, prefix or URL naming an identity a
    // request does not give is not about this person: it is not run, and the manifest says why.
    let mut failure: Option<ExportError> = None;
    for source in &ctx.sources.sources {
        let name = source.name.as_str();
        let (kind, location) = match &source.kind {
            SourceKind::Sql(sql) => ("sql", sql.database.redacted()),
            SourceKind::Objects(objects) => ("objects", objects.template.clone()),
            SourceKind::Http(http) => ("http", dpo_contract::redact::redact_secrets(&http.template)),
        };
        if failure.is_some() {
            let mut skipped = summary(name, kind, Some(location), Vec::new(), &written);
            skipped.outcome = SourceOutcome::Skipped;
            summaries.push(skipped);
            continue;
        }
        let mut asked = Vec::new();
        let mut not_run = Vec::new();
        let mut budget = Budget::of(source.limits);
        match &source.kind {
            SourceKind::Objects(objects_source) => {
                let missing = who.not_given(objects_source.names());
                if !missing.is_empty() {
                    not_run.push(not_given_reason(&missing, '{'));
                } else {
                    let (drives, files) = objects.remove(name).unwrap_or_else(|| (ctx.drives.clone(), Vec::new()));
                    budget.bytes = files.iter().map(|f| f.size).sum();
                    match budget.exceeded() {
                        Some(over) => failure = Some(failed_source(name, None, over)),
                        None => copy.files(drives.as_ref(), &files, name, name, &mut written).await?,
                    }
                }
            }
            SourceKind::Sql(sql) => {
                for query in &sql.queries {
                    if let Some(text) = who.not_given_in_sql(&query.sql) {
                        not_run.push(format!("query {} not run: {text}", query.name));
                        continue;
                    }
                    let path = format!("{name}/{}.{}", query.name, query.format.extension());
                    asked.push(ManifestQuery { name: query.name.clone(), sql: query.sql.clone(), path: path.clone() });
                    let start = || async { EncodedRows::start(&sql.database, query, who).await.map(Pieces::Rows) };
                    if let Some(cause) = copy.pieces(&path, name, start, &mut budget, &mut written).await? {
                        failure = Some(failed_source(name, Some(&query.name), cause));
                        break;
                    }
                }
            }
            SourceKind::Http(http) => {
                let missing = who.not_given(http.names());
                if !missing.is_empty() {
                    not_run.push(not_given_reason(&missing, '{'));
                } else {
                    let path = format!("{name}/{name}.jsonl");
                    let start = || async { HttpRecords::start(http, who).map(Pieces::Records) };
                    if let Some(cause) = copy.pieces(&path, name, start, &mut budget, &mut written).await? {
                        failure = Some(failed_source(name, None, cause));
                    }
                }
            }
        }
        let mut done = summary(name, kind, Some(location), asked, &written);
        slog::info!(ctx.log, "data source read"; "operation" => %op_id, "source" => name, "kind" => kind,
            "objects" => done.objects, "bytes" => done.bytes, "rows" => done.rows, "failed" => failure.is_some());
        if let Some(failed) = &failure {
            done.outcome = SourceOutcome::Failed;
            done.reason = Some(match failed {
                ExportError::DataSource { cause, .. } => cause.to_string(),
                other => other.to_string(),
            });
        } else if !not_run.is_empty() {
            if done.queries.is_empty() {
                done.outcome = SourceOutcome::NotApplicable;
            }
            done.reason = Some(not_run.join("; "));
        }
        summaries.push(done);
    }

    // The page a person reads, then the manifest, last: its presence is what tells a reader the export
    // is whole.
    still_valid(target)?;
    let manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        operation_id: op_id.to_string(),
        user_id: person.named.clone(),
        exported_date_time: Utc::now().trunc_subsecs(3).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        status: if failure.is_some() { ExportStatus::Failed } else { ExportStatus::Complete },
        objects: written,
        sources: summaries,
    };
    let mut previews = Vec::new();
    for object in manifest.objects.iter().filter(|o| o.rows.is_some_and(|rows| rows > 0)) {
        previews.extend(preview(sink, object).await?);
    }
    let name = person.name.clone();
    let (page, mut manifest) = sink
        .put_written("index.html", move |out| {
            index::write(&manifest, name.as_deref(), &previews, out)?;
            Ok(manifest)
        })
        .await?;
    manifest.objects.push(ManifestObject { source: None, ..listed(page, "") });
    let (_, manifest) = sink
        .put_written("manifest.json", move |out| {
            manifest.write_json(out)?;
            Ok(manifest)
        })
        .await?;
    metrics::counter!(dpo_domain::metric_names::EXPORTED_BYTES)
        .increment(manifest.objects.iter().map(|o| o.size).sum());
    metrics::counter!(dpo_domain::metric_names::EXPORTED_OBJECTS).increment(manifest.objects.len() as u64 + 1);
    Ok(Gathered { manifest, failure })
}

/// The first records of the file of records `object`, read back from the target for the page.
async fn preview(sink: &Sink, object: &ManifestObject) -> Result<Option<index::RecordsPreview>, ExportError> {
    if !(object.path.ends_with(".jsonl") || object.path.ends_with(".csv")) {
        return Ok(None);
    }
    let mut chunks = sink.read(&object.path).await?;
    let mut head = Vec::new();
    while head.len() < index::PREVIEW_BYTES {
        match futures::StreamExt::next(&mut chunks).await {
            Some(chunk) => head.extend_from_slice(&chunk?),
            None => break,
        }
    }
    head.truncate(index::PREVIEW_BYTES);
    Ok(index::RecordsPreview::read(&object.path, &head, object.rows))
}

/// Why a prefix or URL naming the identities `missing` was not run.
fn not_given_reason(missing: &[&str], prefix: char) -> String {
    format!("it not run: {}", crate::sources::not_given_text(missing, prefix))
}

/// Copies files (of the drive or of an objects source) into the export, each skipped when an interrupted
/// run of this export wrote it whole and the target still holds that very object.
struct Copy<'a> {
    sink: &'a Sink,
    target: Option<&'a StorageLocation>,
    ledger: &'a Arc<dyn ExportLedger>,
    claim: &'a Claim,
    earlier: &'a mut HashMap<String, ExportedObject>,
    progress: &'a mut Progress,
    log: &'a slog::Logger,
}

impl Copy<'_> {
    /// Copies `files`, read through `drives`, to `<folder>/<relative path>` in the export, for the source
    /// `source`, and lists them in `written` in order: large files one after another in blocks, each run of
    /// small ones several at once.
    async fn files(
        &mut self,
        drives: &dyn Drives,
        files: &[DriveFile],
        source: &str,
        folder: &str,
        written: &mut Vec<ManifestObject>,
    ) -> Result<(), ExportError> {
        let mut rest = files;
        while let Some(file) = rest.first() {
            if file.size > SMALL_FILE {
                written.push(self.file(drives, file, source, &format!("{folder}/{}", file.relative)).await?);
                rest = &rest[1..];
                continue;
            }
            let (small, after) = rest.split_at(rest.iter().take_while(|f| f.size <= SMALL_FILE).count());
            self.small_files(drives, small, source, folder, written).await?;
            rest = after;
        }
        Ok(())
    }

    /// Copies small `files`, [`SMALL_FILES_IN_FLIGHT`] at once, each read whole and written in one
    /// request, and lists them in order. The copies are made [`SMALL_FILES_WINDOW`] files at a time: each
    /// copy's future holds a few KiB, which for a drive of 100,000 files made up front was most of the
    /// export's memory.
    async fn small_files(
        &mut self,
        drives: &dyn Drives,
        files: &[DriveFile],
        source: &str,
        folder: &str,
        written: &mut Vec<ManifestObject>,
    ) -> Result<(), ExportError> {
        for window in files.chunks(SMALL_FILES_WINDOW) {
            self.small_files_window(drives, window, source, folder, written).await?;
        }
        Ok(())
    }

    /// [`Copy::small_files`] for one window of files.
    async fn small_files_window(
        &mut self,
        drives: &dyn Drives,
        files: &[DriveFile],
        source: &str,
        folder: &str,
        written: &mut Vec<ManifestObject>,
    ) -> Result<(), ExportError> {
        use futures::{FutureExt, StreamExt};
        still_valid(self.target)?;
        self.progress.still_held().await?;
        let (sink, ledger, claim, log) = (self.sink, self.ledger, self.claim, self.log);
        let jobs: Vec<(&DriveFile, String, Option<ExportedObject>)> = files
            .iter()
            .map(|file| {
                let name = format!("{folder}/{}", file.relative);
                let earlier = self.earlier_of(&name, Some(file.size));
                (file, name, earlier)
            })
            .collect();
        // Boxed first: a stream of closures' futures that borrow would not be `Send` for every lifetime.
        let copies: Vec<futures::future::BoxFuture<'_, Result<ExportedObject, ExportError>>> = jobs
            .into_iter()
            .map(|(file, name, earlier)| {
                async move {
                    if let Some(done) = still_there(sink, &name, earlier).await? {
                        return Ok(done);
                    }
                    let object = put_whole(sink, drives, file, &name).await?;
                    record_written(ledger, claim, log, &object).await?;
                    Ok(object)
                }
                .boxed()
            })
            .collect();
        let mut copies = futures::stream::iter(copies).buffered(SMALL_FILES_IN_FLIGHT);
        while let Some(object) = copies.next().await {
            let object = object?;
            self.progress.advance(object.size).await?;
            written.push(listed(object, source));
        }
        Ok(())
    }

    /// Copies `file`, read through `drives`, to `name` in the export, for the source `source`.
    async fn file(
        &mut self,
        drives: &dyn Drives,
        file: &DriveFile,
        source: &str,
        name: &str,
    ) -> Result<ManifestObject, ExportError> {
        still_valid(self.target)?;
        self.progress.still_held().await?;
        if let Some(done) = self.kept(name, Some(file.size)).await? {
            self.progress.advance(file.size).await?;
            return Ok(listed(done, source));
        }
        let mut upload = self.sink.upload(name).await?;
        let copied = async {
            let mut chunks = drives.read(file, READ_CHUNK, READ_AHEAD);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| ExportError::reading(file.relative.as_str(), e))?;
                let n = chunk.len() as u64;
                upload.write(chunk).await?;
                self.progress.advance(n).await?;
            }
            Ok::<_, ExportError>(())
        }
        .await;
        let object = upload.finish_unless(copied).await?;
        record_written(self.ledger, self.claim, self.log, &object).await?;
        Ok(listed(object, source))
    }
}

impl Copy<'_> {
    /// What an interrupted run of this export wrote whole at `name` (of `size`, when the source knows it),
    /// if the target still holds that very object: its ETag, not merely one of the same size, since an
    /// object changed in the target meanwhile must be written again.
    async fn kept(&mut self, name: &str, size: Option<u64>) -> Result<Option<ExportedObject>, ExportError> {
        let earlier = self.earlier_of(name, size);
        still_there(self.sink, name, earlier).await
    }

    /// What an interrupted run of this export recorded at `name` (of `size`, when the source knows it), with
    /// an ETag to compare: taken out of the earlier run's records, to be checked by [`still_there`].
    fn earlier_of(&mut self, name: &str, size: Option<u64>) -> Option<ExportedObject> {
        self.earlier.remove(name).filter(|d| d.etag.is_some() && size.is_none_or(|s| d.size == s))
    }

    /// Records, under the claim, that `object` was written whole.
    async fn record(&self, object: &ExportedObject) -> Result<(), ExportError> {
        record(self.ledger, self.claim, object).await
    }
}

/// `earlier` (see [`Copy::earlier_of`]) if the target at `name` still holds that very object.
async fn still_there(
    sink: &Sink,
    name: &str,
    earlier: Option<ExportedObject>,
) -> Result<Option<ExportedObject>, ExportError> {
    let Some(done) = earlier else { return Ok(None) };
    Ok((sink.version_of(name).await? == Some((done.size, done.etag.clone()))).then_some(done))
}

/// Records in `ledger`, under `claim`, that `object` was written whole.
async fn record(ledger: &Arc<dyn ExportLedger>, claim: &Claim, object: &ExportedObject) -> Result<(), ExportError> {
    let (record, claim) = (object.clone(), claim.clone());
    blocking(ledger, move |s| s.record_exported(&claim, &record)).await.map_err(fenced)
}

/// [`record`]s a copied file, and says so in the log.
async fn record_written(
    ledger: &Arc<dyn ExportLedger>,
    claim: &Claim,
    log: &slog::Logger,
    object: &ExportedObject,
) -> Result<(), ExportError> {
    record(ledger, claim, object).await?;
    slog::debug!(log, "object written"; "operation" => %claim.operation.id, "path" => &object.path,
        "bytes" => object.size);
    Ok(())
}

/// Copies a small `file` to `name` in one request; a file that grew past [`SMALL_FILE`] since it was
/// listed goes in blocks instead.
async fn put_whole(
    sink: &Sink,
    drives: &dyn Drives,
    file: &DriveFile,
    name: &str,
) -> Result<ExportedObject, ExportError> {
    let unreadable = |e: std::io::Error| ExportError::reading(file.relative.as_str(), e);
    let mut chunks = drives.read(file, SMALL_FILE as usize, 1);
    let first = chunks.next().await.transpose().map_err(unreadable)?.unwrap_or_default();
    let Some(second) = chunks.next().await.transpose().map_err(unreadable)? else {
        return sink.put(name, first).await;
    };
    let mut upload = sink.upload(name).await?;
    let copied = async {
        upload.write(first).await?;
        upload.write(second).await?;
        while let Some(chunk) = chunks.next().await {
            upload.write(chunk.map_err(unreadable)?).await?;
        }
        Ok::<_, ExportError>(())
    }
    .await;
    upload.finish_unless(copied).await
}

/// The store and the person's objects of an objects source (none when an identity its prefix names is
/// unknown for the person).
async fn list_objects(
    name: &str,
    source: &ObjectsSource,
    who: &Identities,
) -> Result<(Arc<dyn Drives>, Vec<DriveFile>), ExportError> {
    let drives =
        super::drives::open(&source.store).map_err(|e| ExportError::reading(format!("the source {name}"), e))?;
    if source.missing_for(who) {
        return Ok((drives, Vec::new()));
    }
    let files = drives
        .files_under(&source.parts(who))
        .await
        .map_err(|e| ExportError::reading(format!("the source {name}"), e))?;
    Ok((drives, files))
}

/// An object as the manifest lists it, with the source it came from.
fn listed(object: ExportedObject, source: &str) -> ManifestObject {
    ManifestObject {
        path: object.path,
        size: object.size,
        sha256: object.sha256,
        source: Some(source.to_string()),
        rows: object.rows,
        partial: false,
    }
}

/// What the source `name` wrote, as the manifest sums it up from the objects listed so far.
fn summary(
    name: &str,
    kind: &str,
    location: Option<String>,
    queries: Vec<ManifestQuery>,
    written: &[ManifestObject],
) -> ManifestSource {
    let mine: Vec<&ManifestObject> = written.iter().filter(|o| o.source.as_deref() == Some(name)).collect();
    let rows = mine.iter().map(|o| o.rows).try_fold(0u64, |sum, rows| rows.map(|r| sum + r));
    let rows = rows.filter(|_| !mine.is_empty());
    // Files of rows hold nothing of the person when they hold no row; other objects always do.
    let empty = match rows {
        Some(rows) => rows == 0,
        None => mine.is_empty(),
    };
    ManifestSource {
        name: name.to_string(),
        kind: kind.to_string(),
        location,
        queries,
        outcome: if empty { SourceOutcome::Empty } else { SourceOutcome::Complete },
        reason: None,
        objects: mine.len() as u64,
        bytes: mine.iter().map(|o| o.size).sum(),
        rows,
    }
}

/// The export's error for the configured source `name` (its query `query`) failing with `cause`.
fn failed_source(name: &str, query: Option<&str>, cause: SourceError) -> ExportError {
    ExportError::DataSource { name: name.to_string(), query: query.map(str::to_string), cause: Box::new(cause) }
}

/// What one source has used of its limits in this export, all its queries together.
struct Budget {
    limits: SourceLimits,
    started: Instant,
    bytes: u64,
}

impl Budget {
    fn of(limits: SourceLimits) -> Budget {
        Budget { limits, started: Instant::now(), bytes: 0 }
    }

    /// The page limit, when `pieces` would fetch a page past it.
    fn before_next(&self, pieces: &Pieces) -> Option<SourceError> {
        match (self.limits.max_pages, pieces.pages_read()) {
            (Some(max), Some(read)) if read >= max && pieces.would_fetch() => {
                Some(SourceError::Limit { setting: "max_pages", limit: max })
            }
            _ => None,
        }
    }

    /// The limit of bytes or time this source has gone past, if it has.
    fn exceeded(&self) -> Option<SourceError> {
        let over = |setting, limit| Some(SourceError::Limit { setting, limit });
        match self.limits {
            SourceLimits { max_bytes, .. } if self.bytes > max_bytes => over("max_bytes", max_bytes),
            SourceLimits { max_seconds, .. } if self.started.elapsed().as_secs() >= max_seconds => {
                over("max_seconds", max_seconds)
            }
            _ => None,
        }
    }
}

impl Copy<'_> {
    /// Writes one file of a configured source (a query's rows, an HTTP source's records) to `path`,
    /// streamed, a piece at a time, and lists it in `written`. A file an interrupted run finished is kept
    /// if the target still holds that very object: its rows are never written twice, and one cut off by
    /// a crash is written again whole. A transient failure (see [`SourceError::is_transient`]) writes the
    /// file again from its start, up to [`SOURCE_RETRIES`] times. When the source fails for good, what it
    /// wrote so far is kept and listed as partial, and the cause is returned.
    async fn pieces<F>(
        &mut self,
        path: &str,
        source: &str,
        start: impl Fn() -> F,
        budget: &mut Budget,
        written: &mut Vec<ManifestObject>,
    ) -> Result<Option<SourceError>, ExportError>
    where
        F: std::future::Future<Output = Result<Pieces, SourceError>>,
    {
        still_valid(self.target)?;
        if let Some(done) = self.kept(path, None).await? {
            written.push(listed(done, source));
            self.progress.advance(QUERY_WEIGHT).await?;
            return Ok(None);
        }
        let mut attempt = 0;
        let mut waits = crate::retry::source_delays();
        loop {
            let last = attempt == SOURCE_RETRIES;
            let used = budget.bytes;
            match self.attempt(path, source, start().await, last, budget, written).await? {
                Some(cause) if cause.is_transient() && attempt < SOURCE_RETRIES => {
                    let wait = waits.next().unwrap_or(crate::retry::SOURCE_MOST);
                    slog::warn!(self.log, "a data source failed; writing its file again";
                        "operation" => %self.claim.operation.id, "file" => path, "attempt" => attempt + 1,
                        "wait_ms" => wait.as_millis() as u64, "error" => %cause);
                    attempt += 1;
                    // What the failed attempt read is read again: only what is kept counts.
                    budget.bytes = used;
                    tokio::time::sleep(wait).await;
                }
                outcome => return Ok(outcome),
            }
        }
    }

    /// The source's next piece, checking every [`HOLD_CHECK`] while it is awaited that the export still
    /// holds its claim and that the source is within its time. The piece's future is never dropped
    /// half-way for a check (an HTTP page being fetched would be lost): only to stop.
    async fn next_piece(
        &mut self,
        pieces: &mut Pieces,
        budget: &Budget,
    ) -> Result<Option<Result<(Vec<u8>, u64), SourceError>>, ExportError> {
        self.progress.still_held().await?;
        let next = pieces.next();
        tokio::pin!(next);
        loop {
            tokio::select! {
                piece = &mut next => return Ok(piece),
                () = tokio::time::sleep(HOLD_CHECK) => {
                    self.progress.still_held().await?;
                    if let Some(over @ SourceError::Limit { .. }) = budget.exceeded() {
                        return Ok(Some(Err(over)));
                    }
                }
            }
        }
    }

    /// One attempt at writing the file of [`Copy::pieces`]; a failure that another attempt will follow
    /// (a transient one, not on the `last` attempt) leaves nothing behind.
    async fn attempt(
        &mut self,
        path: &str,
        source: &str,
        started: Result<Pieces, SourceError>,
        last: bool,
        budget: &mut Budget,
        written: &mut Vec<ManifestObject>,
    ) -> Result<Option<SourceError>, ExportError> {
        let mut pieces = match started {
            Ok(pieces) => pieces,
            Err(cause) => return Ok(Some(cause)),
        };
        let mut upload = self.sink.upload(path).await?;
        let (mut rows, mut bytes) = (0, 0);
        let broken = loop {
            if let Some(over) = budget.before_next(&pieces) {
                break Some(over);
            }
            let piece = match self.next_piece(&mut pieces, budget).await {
                Ok(piece) => piece,
                Err(stop) => {
                    upload.abort().await;
                    return Err(stop);
                }
            };
            match piece {
                None => break None,
                Some(Ok((piece, count))) => {
                    rows += count;
                    bytes += piece.len();
                    budget.bytes += piece.len() as u64;
                    if let Err(e) = upload.write(Bytes::from(piece)).await {
                        upload.abort().await;
                        return Err(e);
                    }
                    if let Some(over) = budget.exceeded() {
                        break Some(over);
                    }
                }
                Some(Err(cause)) => break Some(cause),
            }
        };
        if broken.as_ref().is_some_and(|cause| bytes == 0 || (cause.is_transient() && !last)) {
            upload.abort().await;
            return Ok(broken);
        }
        let object = ExportedObject { rows: Some(rows), ..upload.finish().await? };
        if broken.is_none() {
            self.record(&object).await?;
        }
        written.push(ManifestObject { partial: broken.is_some(), ..listed(object, source) });
        self.progress.advance(QUERY_WEIGHT).await?;
        Ok(broken)
    }
}
