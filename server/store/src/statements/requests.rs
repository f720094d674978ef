//! SQL for subject rights requests and their notes. A request is kept whole as JSON (`body`); the
//! columns beside it are what `$filter` and `$orderby` read, always written from the same body.

use super::{Columns, after, condition_in, full_order, timestamp, to_i64};
use crate::requests::{NoteRecord, RequestList, RequestRecord};
use dpo_domain::odata::{
    filter::Filter,
    properties::{DATA_SUBJECT_TYPE, EnumType, Property, REQUEST_STATUS, REQUEST_TYPE},
};
use sea_query::{Expr, ExprTrait, InsertStatement, Order, Query, SelectStatement, UpdateStatement};
use uuid::Uuid;

const REQUESTS: &str = "subject_rights_requests";
const NOTES: &str = "subject_rights_request_notes";

/// The columns a request row is read with: its id, tenant, version, body, final report, when its
/// collected data was removed, and its erasure.
pub const REQUEST_COLUMNS: [&str; 7] =
    ["id", "tenant_id", "version", "body", "report", "collected_removed_at", "erasure"];

/// The columns a note row is read with.
pub const NOTE_COLUMNS: [&str; 6] = ["seq", "id", "tenant_id", "request_id", "created_at", "body"];

/// Where a request's property lives.
fn column(p: Property) -> &'static str {
    match p.name {
        "id" => "id",
        "closedDateTime" => "closed_at",
        "createdDateTime" => "created_at",
        "dataSubject/email" => "subject_email",
        "dataSubjectType" => "data_subject_type",
        "displayName" => "display_name",
        "externalId" => "external_id",
        "internalDueDateTime" => "internal_due_at",
        "status" => "status",
        _ => "kind",
    }
}

/// The columns of a request.
const COLUMNS: Columns = column;

/// A member's place in its enum type, as stored (-1 for none).
fn ordinal(t: &EnumType, member: Option<&str>) -> i64 {
    member.and_then(|m| t.members.iter().position(|x| *x == m)).map_or(-1, |i| i as i64)
}

/// The person's email as stored and compared: lower-case, so that a person is found however it was written.
fn subject_email(q: &dpo_model::subject_rights::SubjectRightsRequest) -> Option<String> {
    q.data_subject.as_ref().and_then(|s| s.email.as_ref()).map(|e| e.to_lowercase())
}

/// The stored values of a request, in the order of [`write_columns`].
fn values(r: &RequestRecord) -> Result<Vec<sea_query::Value>, serde_json::Error> {
    let q = &r.request;
    Ok(vec![
        r.id.to_string().into(),
        r.tenant_id.clone().into(),
        to_i64(r.version).into(),
        ordinal(&REQUEST_STATUS, q.status.map(|s| s.as_str())).into(),
        ordinal(&REQUEST_TYPE, q.kind.map(|k| k.as_str())).into(),
        ordinal(&DATA_SUBJECT_TYPE, q.data_subject_type.map(|t| t.as_str())).into(),
        q.display_name.clone().unwrap_or_default().into(),
        q.external_id.clone().into(),
        subject_email(q).into(),
        q.created_date_time.as_ref().map(timestamp).unwrap_or_default().into(),
        q.internal_due_date_time.as_ref().map(timestamp).into(),
        q.closed_date_time.as_ref().map(timestamp).into(),
        serde_json::to_string(q)?.into(),
        r.report.clone().into(),
        r.collected_removed_at.as_ref().map(timestamp).into(),
        r.erasure.as_ref().map(serde_json::to_string).transpose()?.into(),
    ])
}

/// The columns a request row is written with.
fn write_columns() -> [&'static str; 16] {
    [
        "id",
        "tenant_id",
        "version",
        "status",
        "kind",
        "data_subject_type",
        "display_name",
        "external_id",
        "subject_email",
        "created_at",
        "internal_due_at",
        "closed_at",
        "body",
        "report",
        "collected_removed_at",
        "erasure",
    ]
}

/// The INSERT of a new request.
pub fn insert_request(r: &RequestRecord) -> Result<InsertStatement, serde_json::Error> {
    let mut insert = Query::insert();
    insert.into_table(REQUESTS).columns(write_columns()).values_panic(values(r)?.into_iter().map(Expr::val));
    Ok(insert)
}

/// The UPDATE that replaces a request still at the version before `r`'s.
pub fn replace_request(r: &RequestRecord) -> Result<UpdateStatement, serde_json::Error> {
    let mut update = Query::update();
    update
        .table(REQUESTS)
        .values(write_columns().into_iter().zip(values(r)?.into_iter().map(Expr::val)).filter(|(c, _)| *c != "id"))
        .and_where(Expr::col("id").eq(r.id.to_string()))
        .and_where(Expr::col("tenant_id").eq(r.tenant_id.clone()))
        .and_where(Expr::col("version").eq(to_i64(r.version.saturating_sub(1))));
    Ok(update)
}

/// The SELECT of one request of `tenant`.
pub fn get_request(tenant: &str, id: Uuid) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(REQUEST_COLUMNS)
        .from(REQUESTS)
        .and_where(Expr::col("id").eq(id.to_string()))
        .and_where(Expr::col("tenant_id").eq(tenant));
    select
}

/// The SELECT of up to `limit` closed requests of any tenant but `delete` ones, closed before
/// `closed_before`, whose collected data is still kept.
pub fn requests_to_remove(closed_before: &chrono::DateTime<chrono::Utc>, limit: u64) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(REQUEST_COLUMNS)
        .from(REQUESTS)
        .and_where(Expr::col("status").eq(ordinal(&REQUEST_STATUS, Some("closed"))))
        .and_where(Expr::col("closed_at").lt(timestamp(closed_before)))
        .and_where(Expr::col("collected_removed_at").is_null())
        // A delete request collects nothing: there is nothing of it to remove.
        .and_where(Expr::col("kind").ne(ordinal(&REQUEST_TYPE, Some("delete"))))
        .order_by("closed_at", Order::Asc)
        .limit(limit);
    select
}

/// The SELECT of the version of a request (to tell a conflict from a missing one).
pub fn request_version(tenant: &str, id: Uuid) -> SelectStatement {
    let mut select = Query::select();
    select
        .column("version")
        .from(REQUESTS)
        .and_where(Expr::col("id").eq(id.to_string()))
        .and_where(Expr::col("tenant_id").eq(tenant));
    select
}

fn matching(tenant: &str, filter: Option<&Filter>) -> sea_query::Cond {
    let mut cond = sea_query::Cond::all().add(Expr::col("tenant_id").eq(tenant));
    if let Some(f) = filter {
        cond = cond.add(condition_in(COLUMNS, f));
    }
    cond
}

/// The SELECT of a list of requests.
pub fn list_requests(list: &RequestList<'_>) -> SelectStatement {
    let mut query = Query::select();
    query.columns(REQUEST_COLUMNS).from(REQUESTS).cond_where(matching(list.tenant, list.filter));
    if let Some(cursor) = list.after {
        query.and_where(after(COLUMNS, list.order, cursor));
    }
    for (expr, descending) in full_order(COLUMNS, list.order) {
        query.order_by_expr(expr, if descending { Order::Desc } else { Order::Asc });
    }
    query.limit(list.limit).offset(list.skip);
    query
}

/// The SELECT COUNT of the requests of `tenant` matching `filter`.
pub fn count_requests(tenant: &str, filter: Option<&Filter>) -> SelectStatement {
    let mut query = Query::select();
    query.expr(Expr::col("id").count()).from(REQUESTS).cond_where(matching(tenant, filter));
    query
}

/// The values of `r`'s sort keys as stored (the cursor of a next page).
pub fn sort_values(r: &RequestRecord, order: &[dpo_domain::odata::orderby::SortKey]) -> Vec<serde_json::Value> {
    let q = &r.request;
    let time =
        |t: Option<&chrono::DateTime<chrono::Utc>>| serde_json::Value::from(t.map(timestamp).unwrap_or_default());
    order
        .iter()
        .map(|k| match k.property.name {
            "id" => r.id.to_string().into(),
            "closedDateTime" => time(q.closed_date_time.as_ref()),
            "createdDateTime" => time(q.created_date_time.as_ref()),
            "dataSubject/email" => subject_email(q).unwrap_or_default().into(),
            "dataSubjectType" => ordinal(&DATA_SUBJECT_TYPE, q.data_subject_type.map(|t| t.as_str())).into(),
            "displayName" => q.display_name.clone().unwrap_or_default().into(),
            "externalId" => q.external_id.clone().unwrap_or_default().into(),
            "internalDueDateTime" => time(q.internal_due_date_time.as_ref()),
            "status" => ordinal(&REQUEST_STATUS, q.status.map(|s| s.as_str())).into(),
            _ => ordinal(&REQUEST_TYPE, q.kind.map(|k| k.as_str())).into(),
        })
        .collect()
}

/// The INSERT of a note.
pub fn insert_note(n: &NoteRecord) -> Result<InsertStatement, serde_json::Error> {
    let mut insert = Query::insert();
    insert.into_table(NOTES).columns(["id", "tenant_id", "request_id", "created_at", "body"]).values_panic([
        Expr::val(n.id.to_string()),
        Expr::val(n.tenant_id.clone()),
        Expr::val(n.request_id.to_string()),
        Expr::val(timestamp(&n.created_at)),
        Expr::val(serde_json::to_string(&n.note)?),
    ]);
    Ok(insert)
}

/// The SELECT of up to `limit` notes of a request after place `after`.
pub fn notes(tenant: &str, request: Uuid, after: i64, limit: u64) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(NOTE_COLUMNS)
        .from(NOTES)
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(Expr::col("request_id").eq(request.to_string()))
        .and_where(Expr::col("seq").gt(after))
        .order_by("seq", Order::Asc)
        .limit(limit);
    select
}

/// The SELECT COUNT of a request's notes.
pub fn count_notes(tenant: &str, request: Uuid) -> SelectStatement {
    let mut select = Query::select();
    select
        .expr(Expr::col("seq").count())
        .from(NOTES)
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(Expr::col("request_id").eq(request.to_string()));
    select
}
