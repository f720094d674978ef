//! One decoder per record, shared by both drivers: a row of either is read through [`Columns`], so the
//! SQLite and PostgreSQL adapters cannot come to disagree on what a column holds.

use crate::{
    ActivityRecord, AuditEvent, Claim, ExportedObject, OperationRecord, StoreError, UserRecord, failure::BadValue,
    statements,
};
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// A value both drivers read.
pub trait Value: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a> {}

impl<T: rusqlite::types::FromSql + for<'a> tokio_postgres::types::FromSql<'a>> Value for T {}

/// A row of either driver.
pub trait Columns {
    /// Column `index` as a `T`; a value of another type is [`StoreError::Corrupt`].
    fn get<T: Value>(&self, index: usize) -> Result<T, StoreError>;
}

impl Columns for rusqlite::Row<'_> {
    fn get<T: Value>(&self, index: usize) -> Result<T, StoreError> {
        rusqlite::Row::get(self, index).map_err(StoreError::corrupt)
    }
}

impl Columns for tokio_postgres::Row {
    fn get<T: Value>(&self, index: usize) -> Result<T, StoreError> {
        self.try_get(index).map_err(StoreError::corrupt)
    }
}

/// A row of [`statements::COLUMNS`].
pub fn operation(row: &impl Columns) -> Result<OperationRecord, StoreError> {
    let id: String = row.get(0)?;
    let status: i64 = row.get(2)?;
    let submitted: String = row.get(5)?;
    let completed: Option<String> = row.get(6)?;
    let version: i64 = row.get(7)?;
    Ok(OperationRecord {
        id: Uuid::parse_str(&id).map_err(|source| BadValue::Id { text: id.clone(), source })?,
        user_id: row.get(1)?,
        status: statements::status_from_ordinal(status).ok_or(BadValue::Status(status))?,
        progress: row.get(3)?,
        storage_location: row.get(4)?,
        submitted_at: time(submitted)?,
        completed_at: completed.map(time).transpose()?,
        version: u64::try_from(version).map_err(|_| BadValue::Version(version))?,
        failure_reason: row.get(8)?,
        tenant_id: row.get(9)?,
        storage_secret: row.get(10)?,
        request_id: {
            let id: Option<String> = row.get(11)?;
            id.map(|id| Uuid::parse_str(&id).map_err(|source| BadValue::Id { text: id.clone(), source })).transpose()?
        },
    })
}

/// A row of [`statements::claim_columns`].
pub fn claim(row: &impl Columns) -> Result<Claim, StoreError> {
    let attempt: i64 = row.get(statements::COLUMNS.len())?;
    Ok(Claim { operation: operation(row)?, attempt: u64::try_from(attempt).unwrap_or_default() })
}

/// A row holding one count.
pub fn count(row: &impl Columns) -> Result<u64, StoreError> {
    Ok(u64::try_from(row.get::<i64>(0)?).unwrap_or_default())
}

/// A row of [`statements::find_user`].
pub fn user(row: &impl Columns) -> Result<UserRecord, StoreError> {
    Ok(UserRecord {
        id: row.get(0)?,
        user_principal_name: row.get(1)?,
        display_name: row.get(2)?,
        mail: row.get(3)?,
        attributes: match row.get::<Option<String>>(4)? {
            None => Default::default(),
            Some(text) => serde_json::from_str(&text).map_err(|source| BadValue::Json {
                column: "a user's attributes",
                expected: "a JSON object",
                source,
            })?,
        },
    })
}

/// A row of [`statements::activities`]: its place and the record.
pub fn activity(row: &impl Columns) -> Result<(i64, ActivityRecord), StoreError> {
    let detail: String = row.get(4)?;
    Ok((
        row.get(0)?,
        ActivityRecord {
            user_id: row.get(1)?,
            occurred_at: time(row.get(2)?)?,
            kind: row.get(3)?,
            detail: serde_json::from_str(&detail).map_err(|source| BadValue::Json {
                column: "an activity's detail",
                expected: "JSON",
                source,
            })?,
        },
    ))
}

/// A row of [`statements::exported_objects`].
pub fn exported_object(row: &impl Columns) -> Result<ExportedObject, StoreError> {
    Ok(ExportedObject {
        path: row.get(0)?,
        size: u64::try_from(row.get::<i64>(1)?).unwrap_or_default(),
        sha256: row.get(2)?,
        etag: row.get(3)?,
        rows: row.get::<Option<i64>>(4)?.map(|n| u64::try_from(n).unwrap_or_default()),
    })
}

/// A row of [`statements::audit_page`].
pub fn audit_event(row: &impl Columns) -> Result<AuditEvent, StoreError> {
    Ok(AuditEvent {
        tenant_id: row.get(0)?,
        seq: row.get(1)?,
        id: row.get(2)?,
        at: row.get(3)?,
        category: row.get(4)?,
        activity: row.get(5)?,
        actor_kind: row.get(6)?,
        actor_id: row.get(7)?,
        target_user: row.get(8)?,
        operation_id: row.get(9)?,
        storage_location: row.get(10)?,
        result: row.get(11)?,
        reason: row.get(12)?,
        request_id: row.get(13)?,
        prev_hash: row.get(14)?,
        hash: row.get(15)?,
    })
}

/// A row of [`statements::audit_last`]: the chain's last place and hash.
pub fn audit_head(row: &impl Columns) -> Result<(i64, String), StoreError> {
    Ok((row.get(0)?, row.get(1)?))
}

/// A row holding one text.
pub fn text(row: &impl Columns) -> Result<String, StoreError> {
    row.get(0)
}

fn time(text: String) -> Result<DateTime<Utc>, StoreError> {
    match DateTime::parse_from_rfc3339(&text) {
        Ok(time) => Ok(time.with_timezone(&Utc)),
        Err(source) => Err(BadValue::Timestamp { text, source }.into()),
    }
}

/// A row of [`statements::requests::REQUEST_COLUMNS`].
pub fn request(row: &impl Columns) -> Result<crate::requests::RequestRecord, StoreError> {
    let id: String = row.get(0)?;
    let version: i64 = row.get(2)?;
    let body: String = row.get(3)?;
    Ok(crate::requests::RequestRecord {
        id: Uuid::parse_str(&id).map_err(|source| BadValue::Id { text: id.clone(), source })?,
        tenant_id: row.get(1)?,
        version: u64::try_from(version).map_err(|_| BadValue::Version(version))?,
        report: row.get(4)?,
        collected_removed_at: {
            let at: Option<String> = row.get(5)?;
            at.map(time).transpose()?
        },
        erasure: {
            let erasure: Option<String> = row.get(6)?;
            erasure.map(|text| serde_json::from_str(&text)).transpose().map_err(|source| BadValue::Json {
                column: "a subject rights request's erasure",
                expected: "an erasure log",
                source,
            })?
        },
        request: serde_json::from_str(&body).map_err(|source| BadValue::Json {
            column: "a subject rights request's body",
            expected: "a subjectRightsRequest",
            source,
        })?,
    })
}

/// A row of [`statements::requests::NOTE_COLUMNS`]: its place and the note.
pub fn note(row: &impl Columns) -> Result<(i64, crate::requests::NoteRecord), StoreError> {
    let id: String = row.get(1)?;
    let request: String = row.get(3)?;
    let body: String = row.get(5)?;
    Ok((
        row.get(0)?,
        crate::requests::NoteRecord {
            id: Uuid::parse_str(&id).map_err(|source| BadValue::Id { text: id.clone(), source })?,
            tenant_id: row.get(2)?,
            request_id: Uuid::parse_str(&request).map_err(|source| BadValue::Id { text: request.clone(), source })?,
            created_at: time(row.get(4)?)?,
            note: serde_json::from_str(&body).map_err(|source| BadValue::Json {
                column: "a note's body",
                expected: "an authoredNote",
                source,
            })?,
        },
    ))
}
