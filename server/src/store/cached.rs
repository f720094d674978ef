//! A memory of recently read operations in front of a store, for clients that poll one operation
//! again and again (`GET /dataPolicyOperations/{id}` until it is `complete`).
//!
//! Only lookups by id are answered from memory; lists and counts always go to the store. The memory
//! is coherent with the store as long as every write of operations goes through this wrapper, which
//! is why a server holds its state directory exclusively ([`crate::server`]). A read that races a
//! write never leaves the older record behind: every write forgets what it touched and advances an
//! epoch under a lock, and a read only remembers what it found if no write finished meanwhile.

use super::{ActivityRecord, ExportedObject, ListRequest, OperationRecord, OperationStore, StoreError, UserRecord};
use crate::odata::filter::Filter;
use quick_cache::sync::Cache;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};
use uuid::Uuid;

/// How many operations are remembered by default.
pub const DEFAULT_CAPACITY: usize = 16_384;

/// `inner` with a bounded memory of operations read by id.
pub struct CachedStore {
    inner: Arc<dyn OperationStore>,
    remembered: Cache<Uuid, OperationRecord>,
    /// Advanced by every finished write of operations.
    epoch: AtomicU64,
    /// Orders "forget and advance" (writers) against "check and remember" (readers).
    ordering: Mutex<()>,
}

impl CachedStore {
    /// Remembers up to `capacity` operations read from `inner`.
    pub fn new(inner: Arc<dyn OperationStore>, capacity: usize) -> Self {
        CachedStore {
            inner,
            remembered: Cache::new(capacity.max(1)),
            epoch: AtomicU64::new(0),
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

    /// Remembers what a lookup begun at epoch `started` found, unless a write finished meanwhile.
    fn remember(&self, started: u64, found: &Option<OperationRecord>) {
        if let Some(record) = found {
            let _order = self.lock();
            if self.epoch.load(Ordering::Acquire) == started {
                self.remembered.insert(record.id, record.clone());
            }
        }
    }

    /// Runs a write, then forgets `touched` (everything when `None`) and advances the epoch.
    fn write<T>(&self, touched: Option<Uuid>, write: impl FnOnce() -> Result<T, StoreError>) -> Result<T, StoreError> {
        let outcome = write();
        let _order = self.lock();
        match touched {
            Some(id) => {
                self.remembered.remove(&id);
            }
            None => self.remembered.clear(),
        }
        self.epoch.fetch_add(1, Ordering::AcqRel);
        outcome
    }
}

impl OperationStore for CachedStore {
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError> {
        self.write(Some(record.id), || self.inner.insert(record))
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        if let Some(record) = self.remembered.get(&id) {
            return Ok(Some(record));
        }
        let started = self.epoch.load(Ordering::Acquire);
        let found = self.inner.get(id)?;
        self.remember(started, &found);
        Ok(found)
    }

    fn get_without_waiting(&self, id: Uuid) -> Option<Result<Option<OperationRecord>, StoreError>> {
        if let Some(record) = self.remembered.get(&id) {
            return Some(Ok(Some(record)));
        }
        let started = self.epoch.load(Ordering::Acquire);
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
        self.write(Some(record.id), || self.inner.replace(record))
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        self.write(Some(id), || self.inner.delete(id, version))
    }

    fn upsert_users(&self, tenant: &str, users: &[UserRecord]) -> Result<usize, StoreError> {
        self.inner.upsert_users(tenant, users)
    }

    fn find_user(&self, tenant: &str, id_or_upn: &str) -> Result<Option<UserRecord>, StoreError> {
        self.inner.find_user(tenant, id_or_upn)
    }

    fn add_activities(&self, tenant: &str, activities: &[ActivityRecord]) -> Result<usize, StoreError> {
        self.inner.add_activities(tenant, activities)
    }

    fn count_activities(&self, tenant: &str, user_id: &str) -> Result<u64, StoreError> {
        self.inner.count_activities(tenant, user_id)
    }

    fn activities(
        &self,
        tenant: &str,
        user_id: &str,
        after: i64,
        limit: u64,
    ) -> Result<Vec<(i64, ActivityRecord)>, StoreError> {
        self.inner.activities(tenant, user_id, after, limit)
    }

    fn claim_next(&self) -> Result<Option<OperationRecord>, StoreError> {
        let claimed = self.inner.claim_next();
        // Which operation changed is known only now; a failed claim may have changed any.
        let touched = match &claimed {
            Ok(Some(record)) => Some(record.id),
            Ok(None) => return claimed,
            Err(_) => None,
        };
        self.write(touched, || claimed)
    }

    fn requeue_running(&self) -> Result<u64, StoreError> {
        self.write(None, || self.inner.requeue_running())
    }

    fn record_exported(&self, operation: Uuid, object: &ExportedObject) -> Result<(), StoreError> {
        self.inner.record_exported(operation, object)
    }

    fn exported(&self, operation: Uuid) -> Result<Vec<ExportedObject>, StoreError> {
        self.inner.exported(operation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::SqliteStore;
    use chrono::{SubsecRound, Utc};
    use dpo_api::model::DataPolicyOperationStatus;

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
        }
    }

    fn stores() -> (tempfile::TempDir, Arc<SqliteStore>, CachedStore) {
        let dir = tempfile::tempdir().expect("temp dir");
        let sqlite = Arc::new(SqliteStore::open(dir.path()).expect("store opens"));
        let cached = CachedStore::new(sqlite.clone(), 64);
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

    #[test]
    fn claims_and_requeues_are_seen() {
        let (_dir, _sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::NotStarted));
        let claimed = store.claim_next().unwrap().expect("claimed");
        assert_eq!(claimed.id, op.id);
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::Running));
        assert_eq!(store.requeue_running().unwrap(), 1);
        assert_eq!(store.get(op.id).unwrap().map(|r| r.status), Some(DataPolicyOperationStatus::NotStarted));
    }

    #[test]
    fn exported_objects_are_recorded_replaced_and_go_with_their_operation() {
        let (_dir, _sqlite, store) = stores();
        let op = record(1);
        store.insert(&op).unwrap();
        let object = |size, sha: &str| ExportedObject {
            path: "drive/a.txt".into(),
            size,
            sha256: sha.into(),
            etag: Some(format!("e{size}")),
        };
        store.record_exported(op.id, &object(1, "aa")).unwrap();
        store.record_exported(op.id, &object(2, "bb")).unwrap();
        assert_eq!(store.exported(op.id).unwrap(), [object(2, "bb")]);
        store.delete(op.id, None).unwrap();
        assert!(store.exported(op.id).unwrap().is_empty());
    }

    #[test]
    fn a_read_racing_writes_never_leaves_an_older_record_behind() {
        let (_dir, _sqlite, store) = stores();
        let store = Arc::new(store);
        let mut op = record(1);
        store.insert(&op).unwrap();
        let last = 300;
        let readers: Vec<_> = (0..3)
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
