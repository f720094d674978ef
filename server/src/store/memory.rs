//! An in-memory [`OperationStore`]: fast, and gone when the process ends.

use super::{OperationRecord, OperationStore, Slice, StoreError};
use std::{collections::HashMap, sync::RwLock};
use uuid::Uuid;

/// Operations in a map behind a lock.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: RwLock<HashMap<Uuid, OperationRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(
        &self,
    ) -> Result<std::sync::RwLockReadGuard<'_, HashMap<Uuid, OperationRecord>>, StoreError> {
        self.records
            .read()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }

    fn write(
        &self,
    ) -> Result<std::sync::RwLockWriteGuard<'_, HashMap<Uuid, OperationRecord>>, StoreError> {
        self.records
            .write()
            .map_err(|_| StoreError::Backend("memory store lock poisoned".into()))
    }
}

impl OperationStore for MemoryStore {
    fn insert(&self, record: &OperationRecord) -> Result<(), StoreError> {
        let mut records = self.write()?;
        if records.contains_key(&record.id) {
            return Err(StoreError::Duplicate(record.id));
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    fn get(&self, id: Uuid) -> Result<Option<OperationRecord>, StoreError> {
        Ok(self.read()?.get(&id).cloned())
    }

    fn list(&self, slice: Slice) -> Result<(Vec<OperationRecord>, u64), StoreError> {
        let records = self.read()?;
        let mut all: Vec<&OperationRecord> = records.values().collect();
        all.sort_by(|a, b| a.submitted_at.cmp(&b.submitted_at).then(a.id.cmp(&b.id)));
        let total = all.len() as u64;
        let page = all
            .into_iter()
            .skip(usize::try_from(slice.skip).unwrap_or(usize::MAX))
            .take(usize::try_from(slice.limit).unwrap_or(usize::MAX))
            .cloned()
            .collect();
        Ok((page, total))
    }

    fn replace(&self, record: &OperationRecord) -> Result<(), StoreError> {
        let mut records = self.write()?;
        let current = records
            .get(&record.id)
            .ok_or(StoreError::Missing(record.id))?;
        if current.version + 1 != record.version {
            return Err(StoreError::VersionMismatch {
                id: record.id,
                expected: record.version.saturating_sub(1),
                actual: current.version,
            });
        }
        records.insert(record.id, record.clone());
        Ok(())
    }

    fn delete(&self, id: Uuid, version: Option<u64>) -> Result<(), StoreError> {
        let mut records = self.write()?;
        let current = records.get(&id).ok_or(StoreError::Missing(id))?;
        if let Some(expected) = version
            && current.version != expected
        {
            return Err(StoreError::VersionMismatch {
                id,
                expected,
                actual: current.version,
            });
        }
        records.remove(&id);
        Ok(())
    }
}
