//! A memory of recently read operations in front of a store, for clients that poll one operation
//! again and again (`GET /dataPolicyOperations/{id}` until it is `complete`).
//!
//! Only lookups by id are answered from memory; lists and counts always go to the store. The memory
//! is coherent with the store as long as every write of operations goes through this wrapper (it wraps
//! both traits that write them, [`Operations`] and [`JobQueue`]), which is why a server holds its state
//! directory exclusively (`dpo_server::server`), and why a store shared by several servers is not wrapped. A read that races a
//! write never leaves the older record behind: before it starts, a write forgets what it may change and is
//! counted as in flight, and when it ends it advances an epoch, all under a lock; a read only remembers
//! what it found if no write was in flight when it began or when it would remember, and none ended
//! meanwhile. (A write in flight may have committed already, and another reader seen its result in the
//! store: from then on nothing older may be answered from memory.)

use super::{AuditEvent, Claim, JobQueue, ListRequest, OperationRecord, Operations, Pending, StoreError, Stores};
use chrono::{DateTime, Utc};
use dpo_domain::odata::filter::Filter;
use quick_cache::sync::Cache;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};
use uuid::Uuid;

/// How many operations are remembered by default: enough for the operations clients are polling while
/// they wait for their exports. A remembered operation takes about 1 KiB (its record with both forms of
/// the location, and the cache's own keeping); 16,384 of them were a sixth of the server's memory
/// under reads at random.
pub const DEFAULT_CAPACITY: usize = 4_096;

/// `inner` with a bounded memory of operations read by id.
pub struct CachedStore {
    inner: Arc<dyn Operations>,
    queue: Arc<dyn JobQueue>,
    remembered: Cache<Uuid, OperationRecord>,
    /// Advanced by every finished write of operations.
    epoch: AtomicU64,
    /// Writes of operations begun and not finished.
    in_flight: AtomicU64,
    /// Orders "forget and advance" (writers) against "check and remember" (readers).
    ordering: Mutex<()>,
}

/// `stores`, with up to `capacity` operations read by id remembered (see the module documentation for
/// when that is coherent).
pub fn with_read_cache(stores: Stores, capacity: usize) -> Stores {
    let cached = Arc::new(CachedStore::new(stores.operations, stores.queue, capacity));
    Stores { operations: cached.clone(), queue: cached, ..stores }
}

impl CachedStore {
    /// Remembers up to `capacity` operations read from `inner`, forgetting what `queue` writes too.
    pub fn new(inner: Arc<dyn Operations>, queue: Arc<dyn JobQueue>, capacity: usize) -> Self {
        CachedStore {
            inner,
            queue,
            remembered: Cache::new(capacity.max(1)),
            epoch: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            ordering: Mutex::new(()),
        }
    }

    /// How many operations are remembered now.
    pub fn remembered(&self) -> usize {
        self.remembered.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ()> {
        // The guarded data is `()`: a panic elsewhere cannot leave it inconsistent.
        self.ordering.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Where a lookup begins: the epoch, if no write is in flight (otherwise it will not remember).
    fn begin_read(&self) -> Option<u64> {
        let _order = self.lock();
        (self.in_flight.load(Ordering::Acquire) == 0).then(|| self.epoch.load(Ordering::Acquire))
    }

    /// Remembers what a lookup begun at `started` found, unless a write ended meanwhile or is in flight.
    fn remember(&self, started: Option<u64>, found: &Option<OperationRecord>) {
        if let (Some(started), Some(record)) = (started, found) {
            let _order = self.lock();
            if self.epoch.load(Ordering::Acquire) == started && self.in_flight.load(Ordering::Acquire) == 0 {
                self.remembered.insert(record.id, record.clone());
            }
        }
    }

    /// Runs a write, counted as in flight: what it may change is forgotten before it starts (once it has
    /// committed, a reader may see its result in the store, so nothing older may be answered from memory
    /// any more), nothing is remembered while it is in flight, and when it ends the epoch advances (so a
    /// read begun before it cannot remember what it found).
    fn write<T>(&self, forget: Forget, write: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        {
            let _order = self.lock();
            match forget {
                Forget::One(id) => {
                    self.remembered.remove(&id);
                }
                Forget::Everything => self.remembered.clear(),
            }
            self.in_flight.fetch_add(1, Ordering::AcqRel);
        }
        let _finish = Finish(self);
        write()
    }
}

/// What a write may change.
#[derive(Clone, Copy)]
enum Forget {
    /// This operation.
    One(Uuid),
    /// Any operation.
    Everything,
}

/// Ends a write in flight when dropped (also when the write panics).
struct Finish<'a>(&'a CachedStore);

impl Drop for Finish<'_> {
    fn drop(&mut self) {
        let store = self.0;
        let _order = store.lock();
        store.epoch.fetch_add(1, Ordering::AcqRel);
        store.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

impl Operations for CachedStore {
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError> {
        self.write(Forget::One(record.id), || self.inner.insert(record))
    }

    fn insert_recorded(&self, record: &OperationRecord, event: AuditEvent) -> Result<AuditEvent, StoreError> {
        self.write(Forget::One(record.id), || self.inner.insert_recorded(record, event))
    }

    fn insert_recorded_queued(&self, record: &OperationRecord, event: &AuditEvent) -> Option<Pending<AuditEvent>> {
        // Without `write`'s bookkeeping: only operations found are remembered, so nothing remembered is
        // about a new id, and an id already taken fails the insert without changing anything.
        self.inner.insert_recorded_queued(record, event)
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        if let Some(record) = self.remembered.get(&id) {
            return Ok(Some(record));
        }
        let started = self.begin_read();
        let found = self.inner.get(id)?;
        self.remember(started, &found);
        Ok(found)
    }

    fn get_without_waiting(&self, id: Uuid) -> Option<Result<Option<OperationRecord>, StoreError>> {
        if let Some(record) = self.remembered.get(&id) {
            return Some(Ok(Some(record)));
        }
        let started = self.begin_read();
        let found = self.inner.get_without_waiting(id)?;
        if let Ok(found) = &found {
            self.remember(started, found);
        }
        Some(found)
    }

    fn list(&self, request: &ListRequest<'_>) -> Result<Vec<OperationRecord>, StoreError> {
        self.inner.list(request)
    }

    fn count(&self, tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Result<u64, StoreError> {
        self.inner.count(tenant, filter, search)
    }

    fn replace(&self, record: &OperationRecord) -> Result<(), StoreError> {
        self.write(Forget::One(record.id), || self.inner.replace(record))
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        self.write(Forget::One(id), || self.inner.delete(id, version))
    }
}

impl JobQueue for CachedStore {
    fn claim(
        &self,
        owner: &str,
        now: DateTime<Utc>,
        until: DateTime<Utc>,
        per_tenant: Option<u32>,
    ) -> Result<Option<Claim>, StoreError> {
        // Which operation it changes is known only afterwards.
        self.write(Forget::Everything, || self.queue.claim(owner, now, until, per_tenant))
    }

    fn heartbeat(&self, claim: &Claim, until: DateTime<Utc>) -> Result<(), StoreError> {
        // The lease is not part of the entity: nothing remembered changes.
        self.queue.heartbeat(claim, until)
    }

    fn progress(&self, claim: &Claim, percent: f64) -> Result<(), StoreError> {
        self.write(Forget::One(claim.operation.id), || self.queue.progress(claim, percent))
    }

    fn complete(&self, claim: &Claim, at: DateTime<Utc>) -> Result<OperationRecord, StoreError> {
        self.write(Forget::One(claim.operation.id), || self.queue.complete(claim, at))
    }

    fn fail(&self, claim: &Claim, reason: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write(Forget::One(claim.operation.id), || self.queue.fail(claim, reason, at))
    }

    fn release(&self, claim: &Claim) -> Result<(), StoreError> {
        self.write(Forget::One(claim.operation.id), || self.queue.release(claim))
    }

    fn expire_leases_of_others(&self, owner: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        // The lease is not part of the entity, but the write may race reads: forget everything.
        self.write(Forget::Everything, || self.queue.expire_leases_of_others(owner, now))
    }

    fn watch(&self, wake: Arc<tokio::sync::Notify>, log: slog::Logger) -> Result<(), StoreError> {
        self.queue.watch(wake, log)
    }

    fn queued(&self) -> Result<u64, StoreError> {
        self.queue.queued()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ExportLedger, ExportedObject, sqlite::SqliteStore};
    use chrono::{SubsecRound, Utc};
    use dpo_model::DataPolicyOperationStatus;

    fn record(version: u64) -> OperationRecord {
        OperationRecord {
            id: Uuid::now_v7(),
            tenant_id: "t".into(),
            user_id: "u".into(),
            status: DataPolicyOperationStatus::NotStarted,
            progress: 0.0,
            storage_location: None,
            storage_secret: None,
            submitted_at: Utc::now().trunc_subsecs(3),
            completed_at: None,
            version,
            failure_reason: None,
            request_id: None,
        }
    }

    fn stores() -> (tempfile::TempDir, Arc<SqliteStore>, CachedStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = Arc::new(SqliteStore::open(dir.path()).expect("store opens"));
        let cached = CachedStore::new(sqlite.clone(), sqlite.clone(), 64);
        (dir, sqlite, cached)
    }

    #[test]
    fn reads_are_remembered_and_writes_are_seen() {
        let (_dir, _sqlite, store) = stores();
        let mut op = record(1);
        store.insert(&op).unwrap();
        assert_eq!(store.get(op.id).unwrap().map(|r| r.version), Some(1));
        assert_eq!(store.remembered(), 1);

        op.version = 2;
        op.status = DataPolicyOperationStatus::Running;
        store.replace(&op).unwrap();
        assert_eq!(store.get_without_waiting(op.id).unwrap().unwrap(), Some(op.clone()));

        store.delete(op.id, None).unwrap();
        assert_eq!(store.get(op.id).unwrap(), None);
        assert_eq!(store.remembered(), 0, "absence is not remembered");
    }

    fn later(seconds: i64) -> DateTime<Utc> {
        Utc::now() + chrono::Duration::seconds(seconds)
    }

    #[test]
    fn claims_progress_and_completion_are_seen() {
        let (_dir, _sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::NotStarted));
        let claim = store.claim("a", Utc::now(), later(30), None).unwrap().expect("claimed");
        assert_eq!((claim.operation.id, claim.attempt), (op.id, 1));
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::Running));
        store.progress(&claim, 40.0).unwrap();
        assert_eq!(store.get(op.id).unwrap().map(|r| r.progress), Some(40.0));
        let done = store.complete(&claim, Utc::now()).unwrap();
        assert_eq!(store.get(op.id).unwrap(), Some(done));
    }

    #[test]
    fn a_tenant_at_its_cap_waits_while_others_run() {
        let (_dir, _sqlite, store) = stores();
        let of = |tenant: &str, age: i64| OperationRecord {
            tenant_id: tenant.into(),
            submitted_at: (Utc::now() - chrono::Duration::seconds(age)).trunc_subsecs(3),
            ..record(1)
        };
        let (a1, a2, b1) = (of("a", 30), of("a", 20), of("b", 10));
        for op in [&a1, &a2, &b1] {
            store.insert(op).unwrap();
        }
        let first = store.claim("w", Utc::now(), later(30), Some(1)).unwrap().expect("a1");
        assert_eq!(first.operation.id, a1.id);
        let second = store.claim("w", Utc::now(), later(30), Some(1)).unwrap().expect("b1, not a2");
        assert_eq!(second.operation.id, b1.id, "tenant a is at its cap of one running export");
        assert!(store.claim("w", Utc::now(), later(30), Some(1)).unwrap().is_none(), "a2 waits");
        assert_eq!(store.claim("w", Utc::now(), later(30), None).unwrap().map(|c| c.operation.id), Some(a2.id));
        store.complete(&first, Utc::now()).unwrap();
    }

    #[test]
    fn a_tenants_export_is_claimed_once_one_of_its_running_ones_ends() {
        let (_dir, _sqlite, store) = stores();
        let (a1, a2) = (record(1), OperationRecord { submitted_at: Utc::now().trunc_subsecs(3), ..record(1) });
        store.insert(&a1).unwrap();
        store.insert(&a2).unwrap();
        let first = store.claim("w", Utc::now(), later(30), Some(1)).unwrap().expect("one");
        assert!(store.claim("w", Utc::now(), later(30), Some(1)).unwrap().is_none(), "at the cap");
        store.complete(&first, Utc::now()).unwrap();
        assert!(store.claim("w", Utc::now(), later(30), Some(1)).unwrap().is_some(), "room again");
        assert!(store.claim("w", later(31), later(60), Some(1)).unwrap().is_some(), "a lease that ended frees it too");
    }

    #[test]
    fn a_lease_that_ended_is_claimed_anew_and_the_old_claim_can_write_nothing() {
        let (_dir, sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        let first = store.claim("a", Utc::now(), later(30), None).unwrap().expect("claimed");
        assert!(store.claim("b", Utc::now(), later(30), None).unwrap().is_none(), "the lease still runs");
        // Worker a is gone: once its lease ends, b takes the operation over.
        let second = store.claim("b", later(31), later(60), None).unwrap().expect("taken over");
        assert_eq!((second.operation.id, second.attempt), (op.id, 2));
        for lost in [
            store.progress(&first, 50.0),
            store.heartbeat(&first, later(90)),
            store.fail(&first, "late", Utc::now()),
            store.complete(&first, Utc::now()).map(|_| ()),
            sqlite.record_exported(&first, &object(1, "aa")),
        ] {
            assert!(matches!(lost, Err(StoreError::LeaseLost(id)) if id == op.id), "{lost:?}");
        }
        assert!(sqlite.exported(op.id).unwrap().is_empty(), "the old claim recorded nothing");
        store.progress(&second, 10.0).unwrap();
        store.release(&second).unwrap();
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::NotStarted));
        let third = store.claim("c", Utc::now(), later(30), None).unwrap().expect("released, so claimable at once");
        assert_eq!(third.attempt, 3);
        store.delete(op.id, None).unwrap();
        assert!(matches!(store.progress(&third, 1.0), Err(StoreError::Missing(_))), "deleted: cancelled");
    }

    #[test]
    fn leases_of_other_owners_end_at_once_when_asked() {
        let (_dir, _sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        store.claim("gone", Utc::now(), later(300), None).unwrap().expect("claimed");
        assert_eq!(store.expire_leases_of_others("me", Utc::now()).unwrap(), 1);
        let taken = store.claim("me", Utc::now(), later(30), None).unwrap().expect("taken over at once");
        assert_eq!(taken.attempt, 2);
    }

    fn object(size: u64, sha: &str) -> ExportedObject {
        ExportedObject {
            path: "drive/a.txt".into(),
            size,
            sha256: sha.into(),
            etag: Some(format!("e{size}")),
            rows: None,
        }
    }

    #[test]
    fn exported_objects_are_recorded_replaced_and_go_with_their_operation() {
        let (_dir, sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        let claim = store.claim("a", Utc::now(), later(30), None).unwrap().expect("claimed");
        sqlite.record_exported(&claim, &object(1, "aa")).unwrap();
        sqlite.record_exported(&claim, &object(2, "bb")).unwrap();
        assert_eq!(sqlite.exported(op.id).unwrap(), [object(2, "bb")]);
        store.delete(op.id, None).unwrap();
        assert!(sqlite.exported(op.id).unwrap().is_empty());
    }

    #[test]
    fn a_read_racing_writes_never_leaves_an_older_record_behind() {
        let (_dir, _sqlite, store) = stores();
        let store = Arc::new(store);
        let mut op = record(1);
        store.insert(&op).unwrap();
        let last = 1000;
        let readers: Vec<_> = (0..6)
            .map(|_| {
                let store = store.clone();
                let id = op.id;
                std::thread::spawn(move || {
                    let mut seen = 0;
                    while seen < last {
                        let found = store.get(id).unwrap().expect("present").version;
                        assert!(found >= seen, "versions never go back: {found} after {seen}");
                        seen = found;
                    }
                })
            })
            .collect();
        for version in 2..=last {
            op.version = version;
            store.replace(&op).unwrap();
        }
        for reader in readers {
            reader.join().expect("reader");
        }
        assert_eq!(store.get(op.id).unwrap().map(|r| r.version), Some(last));
    }
}
