//! One export, from claimed operation to `complete` (or an error for the engine to record).

use super::{
    ExportError,
    drives::Drives,
    index,
    sink::Sink,
    sources::DriveFile,
    target::{self, Target, TargetPolicy},
};
use crate::{
    sources::{Identities, Query, SourceKind, Sources, SqlSource, encode::EncodedRows, file::ObjectsSource},
    store::{Claim, ExportLedger, ExportedObject, JobQueue, OperationRecord, StoreError, Stores, blocking::blocking},
};
use bytes::Bytes;
use chrono::{SubsecRound, Utc};
use dpo_client::manifest::{self, Manifest, ManifestObject, ManifestQuery, ManifestSource, SourceOutcome};
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
    pub policy: TargetPolicy,
}

/// Activity records read (and written) at a time.
const ACTIVITY_BATCH: u64 = 1000;
/// Progress units an activity record counts for (about its size as JSON).
const ACTIVITY_WEIGHT: u64 = 200;
/// Longest time between two progress updates in the store.
const PROGRESS_INTERVAL: Duration = Duration::from_millis(250);
/// Bytes read from a drive file at a time: one block, so that each read fills a block to upload.
const READ_CHUNK: usize = super::sink::BLOCK_SIZE;
/// Chunks of a drive file read ahead of the upload.
const READ_AHEAD: usize = 2;
/// The built-in sources' names (and kinds) in the manifest.
const PROFILE: &str = "profile";
const DRIVE: &str = "drive";
const ACTIVITY: &str = "activity";

/// Progress units a configured query counts for (its rows are not counted before they are read).
const QUERY_WEIGHT: u64 = 1 << 20;

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
}

impl Progress {
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

fn still_valid(target: &Target) -> Result<(), ExportError> {
    match target {
        Target::AzureBlob { expires, .. } if *expires <= Utc::now() => Err(ExportError::Target(target::TargetError(
            format!("the SAS token expired at {} before the export finished", expires.to_rfc3339()),
        ))),
        _ => Ok(()),
    }
}

/// Exports the data of the claimed operation's user to its storage location and returns the completed
/// operation.
///
/// An export that fails or is cancelled removes what it wrote (where the target lets it), so no partial
/// copy of a person's data stays behind; one interrupted by a stop or a crash keeps it, to resume, and so
/// does one whose claim another worker took over (it is still writing there).
pub async fn run(ctx: &JobContext, claim: Claim) -> Result<OperationRecord, ExportError> {
    let op = &claim.operation;
    let location = op.storage_secret.clone().or_else(|| op.storage_location.clone()).unwrap_or_default();
    // Checked again now: the policy may have changed, and links may have appeared in a local root.
    let target = target::parse(&location, &ctx.policy, Utc::now())?;
    let sink = Sink::open(&target, &op.id.to_string())?;
    if let (Target::Local { dir }, Some(root)) = (&target, &ctx.policy.local_root) {
        target::inside_after_links(dir, root)?;
    }
    sink.remove_staging_leftovers().await?;
    match write(ctx, &target, &sink, claim).await {
        Ok(done) => Ok(done),
        Err(ExportError::LeaseLost) => Err(ExportError::LeaseLost),
        Err(failure) => match sink.remove_all().await {
            Ok(_) => Err(failure),
            Err(removal) => Err(ExportError::NotRemoved { cause: Box::new(failure), removal: Box::new(removal) }),
        },
    }
}

/// Writes every object of the export, the manifest last, and marks the operation complete.
async fn write(ctx: &JobContext, target: &Target, sink: &Sink, claim: Claim) -> Result<OperationRecord, ExportError> {
    let op = &claim.operation;
    let directory = &ctx.stores.directory;
    let (tenant, user_id) = (op.tenant_id.clone(), op.user_id.clone());
    let user = blocking(directory, move |s| s.find_user(&tenant, &user_id))
        .await?
        .ok_or_else(|| ExportError::Source(format!("user {} is no longer in the directory", op.user_id)))?;
    let tenant = op.tenant_id.clone();
    let files = ctx.drives.files(&tenant, &user.id).await?;
    let who = Identities::of(&user);
    // The objects of every objects source, listed now so that progress counts their bytes.
    let mut objects: HashMap<String, (Arc<dyn Drives>, Vec<DriveFile>)> = HashMap::new();
    for source in &ctx.sources.sources {
        if let SourceKind::Objects(source_objects) = &source.kind {
            objects.insert(source.name.clone(), list_objects(&source.name, source_objects, &who).await?);
        }
    }
    let (t, uid) = (tenant.clone(), user.id.clone());
    let activity_count = blocking(directory, move |s| s.count_activities(&t, &uid)).await?;
    let profile = Bytes::from(serde_json::to_vec_pretty(&user).map_err(|e| ExportError::Source(e.to_string()))?);

    let total = profile.len() as u64
        + files.iter().map(|f| f.size).sum::<u64>()
        + activity_count * ACTIVITY_WEIGHT
        + ctx.sources.query_count() as u64 * QUERY_WEIGHT
        + objects.values().flat_map(|(_, files)| files).map(|f| f.size).sum::<u64>();
    let op_id = op.id;
    let saved = op.progress;
    let queue = ctx.stores.queue.clone();
    let mut progress =
        Progress { queue: queue.clone(), claim: claim.clone(), total, done: 0, saved, last_saved: Instant::now() };
    let mut written: Vec<ManifestObject> = Vec::new();

    let profile_len = profile.len() as u64;
    written.push(listed(sink.put("profile.json", profile).await?, PROFILE));
    progress.advance(profile_len).await?;

    // What an earlier, interrupted run of this export wrote whole: skipped if the target still has it.
    let ledger = &ctx.stores.ledger;
    let mut earlier: HashMap<String, ExportedObject> =
        blocking(ledger, move |s| s.exported(op_id)).await?.into_iter().map(|o| (o.path.clone(), o)).collect();

    let mut copy = Copy { sink, target, ledger, claim: &claim, earlier: &mut earlier, progress: &mut progress };
    for file in &files {
        written.push(copy.file(ctx.drives.as_ref(), file, DRIVE, &format!("drive/{}", file.relative)).await?);
    }

    still_valid(target)?;
    let mut upload = sink.upload("activity.jsonl").await?;
    let (mut after, mut records) = (0, 0);
    loop {
        let (t, uid) = (tenant.clone(), user.id.clone());
        let batch = blocking(directory, move |s| s.activities(&t, &uid, after, ACTIVITY_BATCH)).await?;
        let Some((last, _)) = batch.last() else { break };
        after = *last;
        let mut lines = Vec::with_capacity(batch.len() * ACTIVITY_WEIGHT as usize);
        for (_, record) in &batch {
            serde_json::to_writer(&mut lines, record).map_err(|e| ExportError::Source(e.to_string()))?;
            lines.push(b'\n');
        }
        upload.write(Bytes::from(lines)).await?;
        records += batch.len() as u64;
        copy.progress.advance(batch.len() as u64 * ACTIVITY_WEIGHT).await?;
    }
    written.push(listed(ExportedObject { rows: Some(records), ..upload.finish().await? }, ACTIVITY));
    let mut summaries = vec![
        summary(PROFILE, PROFILE, None, Vec::new(), &written),
        summary(DRIVE, DRIVE, None, Vec::new(), &written),
        summary(ACTIVITY, ACTIVITY, None, Vec::new(), &written),
    ];

    // The organisation's own systems: a file per query, `<source>/<query>.<format>`, or the person's
    // objects, `<source>/<path under the prefix>`.
    for source in &ctx.sources.sources {
        let sql = match &source.kind {
            SourceKind::Sql(sql) => sql,
            SourceKind::Objects(source_objects) => {
                let (drives, files) = objects.remove(&source.name).unwrap_or_else(|| (ctx.drives.clone(), Vec::new()));
                for file in &files {
                    let name = format!("{}/{}", source.name, file.relative);
                    written.push(copy.file(drives.as_ref(), file, &source.name, &name).await?);
                }
                summaries.push(summary(
                    &source.name,
                    "objects",
                    Some(source_objects.template.clone()),
                    Vec::new(),
                    &written,
                ));
                continue;
            }
        };
        let mut asked = Vec::new();
        for query in &sql.queries {
            still_valid(target)?;
            let name = format!("{}/{}.{}", source.name, query.name, query.format.extension());
            asked.push(ManifestQuery { name: query.name.clone(), sql: query.sql.clone(), path: name.clone() });
            // A file an interrupted run finished is kept if the target still holds that very object: its
            // rows are never written twice, and a file cut off by the crash is written again whole.
            let object = match copy.kept(&name, None).await? {
                Some(done) => done,
                None => {
                    let object = export_query(sink, &name, &source.name, sql, query, &who).await?;
                    copy.record(&object).await?;
                    object
                }
            };
            written.push(listed(object, &source.name));
            copy.progress.advance(QUERY_WEIGHT).await?;
        }
        summaries.push(summary(&source.name, "sql", Some(sql.database.redacted()), asked, &written));
    }

    // The page a person reads, then the manifest, last: its presence is what tells a reader the export
    // is whole.
    still_valid(target)?;
    let mut manifest = Manifest {
        format_version: manifest::FORMAT_VERSION,
        operation_id: op_id.to_string(),
        user_id: user.id.clone(),
        exported_date_time: Utc::now().trunc_subsecs(3).to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        objects: written,
        sources: summaries,
    };
    let page = sink.put("index.html", Bytes::from(index::render(&manifest))).await?;
    manifest.objects.push(ManifestObject { source: None, ..listed(page, "") });
    sink.put("manifest.json", Bytes::from(manifest.to_json())).await?;

    let at = Utc::now().trunc_subsecs(3);
    blocking(&queue, move |q| q.complete(&claim, at)).await.map_err(fenced)
}

/// Copies files (of the drive or of an objects source) into the export, each skipped when an interrupted
/// run of this export wrote it whole and the target still holds that very object.
struct Copy<'a> {
    sink: &'a Sink,
    target: &'a Target,
    ledger: &'a Arc<dyn ExportLedger>,
    claim: &'a Claim,
    earlier: &'a mut HashMap<String, ExportedObject>,
    progress: &'a mut Progress,
}

impl Copy<'_> {
    /// Copies `file`, read through `drives`, to `name` in the export, for the source `source`.
    async fn file(
        &mut self,
        drives: &dyn Drives,
        file: &DriveFile,
        source: &str,
        name: &str,
    ) -> Result<ManifestObject, ExportError> {
        still_valid(self.target)?;
        if let Some(done) = self.kept(name, Some(file.size)).await? {
            self.progress.advance(file.size).await?;
            return Ok(listed(done, source));
        }
        let mut upload = self.sink.upload(name).await?;
        let result = async {
            let mut chunks = drives.read(file, READ_CHUNK, READ_AHEAD);
            while let Some(chunk) = chunks.next().await {
                let chunk = chunk.map_err(|e| ExportError::Source(format!("{}: {e}", file.relative)))?;
                let n = chunk.len() as u64;
                upload.write(chunk).await?;
                self.progress.advance(n).await?;
            }
            Ok::<_, ExportError>(())
        }
        .await;
        match result {
            Ok(()) => {
                let object = upload.finish().await?;
                self.record(&object).await?;
                Ok(listed(object, source))
            }
            Err(e) => {
                upload.abort().await;
                Err(e)
            }
        }
    }
}

impl Copy<'_> {
    /// What an interrupted run of this export wrote whole at `name` (of `size`, when the source knows it),
    /// if the target still holds that very object: its ETag, not merely one of the same size, since an
    /// object changed in the target meanwhile must be written again.
    async fn kept(&mut self, name: &str, size: Option<u64>) -> Result<Option<ExportedObject>, ExportError> {
        let Some(done) = self.earlier.remove(name).filter(|d| d.etag.is_some() && size.is_none_or(|s| d.size == s))
        else {
            return Ok(None);
        };
        Ok((self.sink.version_of(name).await? == Some((done.size, done.etag.clone()))).then_some(done))
    }

    /// Records, under the claim, that `object` was written whole.
    async fn record(&self, object: &ExportedObject) -> Result<(), ExportError> {
        let (record, claim) = (object.clone(), self.claim.clone());
        blocking(self.ledger, move |s| s.record_exported(&claim, &record)).await.map_err(fenced)
    }
}

/// The store and the person's objects of an objects source (none when an identity its prefix names is
/// unknown for the person).
async fn list_objects(
    name: &str,
    source: &ObjectsSource,
    who: &Identities,
) -> Result<(Arc<dyn Drives>, Vec<DriveFile>), ExportError> {
    let failed = |e: String| ExportError::Source(format!("the source {name}: {e}"));
    let drives = super::drives::open(&source.store).map_err(|e| failed(e.to_string()))?;
    if source.missing_for(who) {
        return Ok((drives, Vec::new()));
    }
    let files = drives.files_under(&source.parts(who)).await.map_err(|e| failed(e.to_string()))?;
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
        objects: mine.len() as u64,
        bytes: mine.iter().map(|o| o.size).sum(),
        rows,
    }
}

/// Writes the rows of `query` of the source `source` for the person `who` to `path`, streamed: a batch of
/// rows at a time goes from the database to the upload.
async fn export_query(
    sink: &Sink,
    path: &str,
    source: &str,
    sql: &SqlSource,
    query: &Query,
    who: &Identities,
) -> Result<ExportedObject, ExportError> {
    let failed =
        |cause| ExportError::DataSource { name: source.to_string(), query: query.name.clone(), cause: Box::new(cause) };
    let mut encoded = EncodedRows::start(&sql.database, query, who).await.map_err(failed)?;
    let mut upload = sink.upload(path).await?;
    let mut count = 0;
    let result = async {
        while let Some(piece) = encoded.next().await {
            let (bytes, rows) = piece.map_err(failed)?;
            count += rows;
            upload.write(Bytes::from(bytes)).await?;
        }
        Ok::<_, ExportError>(())
    }
    .await;
    match result {
        Ok(()) => Ok(ExportedObject { rows: Some(count), ..upload.finish().await? }),
        Err(e) => {
            upload.abort().await;
            Err(e)
        }
    }
}
