//! SQL for the operations table (and, in [`requests`], subject rights requests), built with sea-query so that any
//! of its dialects can run it. Every value from a request travels as a bound parameter, never as SQL text.

pub mod requests;

use super::{
    ActivityRecord, AuditEvent, AuditPage, Claim, Cursor, ExportedObject, ListRequest, OperationRecord, UserRecord,
};
use chrono::{DateTime, Utc};
use dpo_domain::odata::audit_filter::{AuditField, AuditFilter};
use dpo_domain::odata::{
    filter::{CmpOp, Filter, TextFunc, Value},
    orderby::SortKey,
    properties::{Kind, Property},
};
use dpo_model::DataPolicyOperationStatus;
use sea_query::{
    Cond, DeleteStatement, Expr, ExprTrait, Func, InsertStatement, LikeExpr, LockBehavior, LockType, OnConflict, Order,
    Query, SelectStatement, UpdateStatement,
};
use uuid::Uuid;

/// The operations table.
pub const OPERATIONS: &str = "operations";
/// Its columns, in the order [`select_operations`] reads them.
pub const COLUMNS: [&str; 12] = [
    "id",
    "user_id",
    "status",
    "progress",
    "storage_location",
    "submitted_at",
    "completed_at",
    "version",
    "failure_reason",
    "tenant_id",
    "storage_secret",
    "request_id",
];

/// Timestamps are stored as text in this one format, so text order is time order.
pub fn timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// The stored number of a status: its position in the enum, so ordering follows the enum.
pub fn status_ordinal(s: DataPolicyOperationStatus) -> i64 {
    use DataPolicyOperationStatus::*;
    match s {
        NotStarted => 0,
        Running => 1,
        Complete => 2,
        Failed => 3,
        UnknownFutureValue => 4,
    }
}

/// The status with this stored number.
pub fn status_from_ordinal(n: i64) -> Option<DataPolicyOperationStatus> {
    use DataPolicyOperationStatus::*;
    [NotStarted, Running, Complete, Failed, UnknownFutureValue].into_iter().find(|s| status_ordinal(*s) == n)
}

fn column(p: Property) -> &'static str {
    match p.name {
        "id" => "id",
        "completedDateTime" => "completed_at",
        "progress" => "progress",
        "status" => "status",
        "storageLocation" => "storage_location",
        "submittedDateTime" => "submitted_at",
        _ => "user_id",
    }
}

/// Where a table keeps each property of its entity type.
pub type Columns = fn(Property) -> &'static str;

/// What a sort compares: the column, with null as the empty string so that nulls sort first (as OData
/// orders them ascending) and keyset comparisons stay total.
fn sort_expr(columns: Columns, p: Property) -> Expr {
    if p.nullable { Func::coalesce([Expr::col(columns(p)), Expr::val("")]).into() } else { Expr::col(columns(p)) }
}

pub(crate) fn sql_value(p: Property, v: &Value) -> sea_query::Value {
    match v {
        Value::Null => sea_query::Value::String(None),
        Value::String(s) => s.clone().into(),
        Value::Number(n) => (*n).into(),
        Value::DateTime(d) => timestamp(d).into(),
        // An enum is stored as its member's place in the type, so that ordering follows the enum.
        Value::Enum(member) => match p.kind {
            Kind::Enum(t) => t.members.iter().position(|m| m == member).map_or(-1, |i| i as i64).into(),
            _ => member.to_string().into(),
        },
        Value::Id(g) => g.to_string().into(),
    }
}

fn like_escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The SQL condition of a `$filter` on operations.
pub fn condition(filter: &Filter) -> Expr {
    condition_in(column, filter)
}

/// The SQL condition of a `$filter` on a table whose columns `columns` names.
pub fn condition_in(columns: Columns, filter: &Filter) -> Expr {
    let column = columns;
    let condition = |f: &Filter| condition_in(columns, f);
    match filter {
        Filter::And(a, b) => condition(a).and(condition(b)),
        Filter::Or(a, b) => condition(a).or(condition(b)),
        Filter::Not(a) => condition(a).not(),
        Filter::Compare { property, op, value: Value::Null } => {
            let col = Expr::col(column(*property));
            if *op == CmpOp::Eq { col.is_null() } else { col.is_not_null() }
        }
        Filter::Compare { property, op, value } => {
            let col = Expr::col(column(*property));
            let v = sql_value(*property, value);
            match op {
                CmpOp::Eq => col.eq(v),
                // In OData `null ne 'x'` is true; in SQL it is unknown, so nulls are added back.
                CmpOp::Ne if property.nullable => col.clone().ne(v).or(col.is_null()),
                CmpOp::Ne => col.ne(v),
                CmpOp::Gt => col.gt(v),
                CmpOp::Ge => col.gte(v),
                CmpOp::Lt => col.lt(v),
                CmpOp::Le => col.lte(v),
            }
        }
        Filter::In { property, values } => {
            let col = Expr::col(column(*property));
            let (nulls, others): (Vec<&Value>, Vec<&Value>) = values.iter().partition(|v| **v == Value::Null);
            let listed = col.clone().is_in(others.into_iter().map(|v| sql_value(*property, v)));
            if nulls.is_empty() { listed } else { listed.or(col.is_null()) }
        }
        Filter::Text { func, property, needle } => {
            let n = like_escaped(needle);
            let pattern = match func {
                TextFunc::StartsWith => format!("{n}%"),
                TextFunc::EndsWith => format!("%{n}"),
                TextFunc::Contains => format!("%{n}%"),
            };
            case_insensitive_like(Expr::col(column(*property)), pattern)
        }
    }
}

/// `LOWER(expr) LIKE LOWER(pattern)`: case-insensitive in every dialect (SQLite's LIKE already is for
/// ASCII letters and its LOWER folds exactly those; PostgreSQL's LIKE is not).
fn case_insensitive_like(expr: Expr, pattern: String) -> Expr {
    Expr::expr(Func::lower(expr)).like(LikeExpr::new(pattern.to_ascii_lowercase()).escape('\\'))
}

/// `$search`: the term anywhere in userId or storageLocation (case-insensitive for ASCII letters).
pub fn search_condition(term: &str) -> Expr {
    let pattern = format!("%{}%", like_escaped(term));
    case_insensitive_like(Expr::col("user_id"), pattern.clone())
        .or(case_insensitive_like(Expr::col("storage_location"), pattern))
}

/// The operations of `tenant` a list or count reads: never those a subject rights request runs (dpo's own).
fn matching(tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Cond {
    let mut cond = Cond::all().add(Expr::col("tenant_id").eq(tenant)).add(Expr::col("request_id").is_null());
    if let Some(f) = filter {
        cond = cond.add(condition(f));
    }
    if let Some(term) = search {
        cond = cond.add(search_condition(term));
    }
    cond
}

/// The sort keys of a list, ending with the id.
pub(crate) fn full_order(columns: Columns, order: &[SortKey]) -> Vec<(Expr, bool)> {
    let mut keys: Vec<(Expr, bool)> = order.iter().map(|k| (sort_expr(columns, k.property), k.descending)).collect();
    if !order.iter().any(|k| k.property.kind == Kind::Id) {
        keys.push((Expr::col("id"), false));
    }
    keys
}

/// The values of `record`'s sort keys as stored (the cursor of a next page).
pub fn sort_values(record: &OperationRecord, order: &[SortKey]) -> Vec<serde_json::Value> {
    order
        .iter()
        .map(|k| match k.property.name {
            "id" => record.id.to_string().into(),
            "completedDateTime" => record.completed_at.as_ref().map(timestamp).unwrap_or_default().into(),
            "progress" => record.progress.into(),
            "status" => status_ordinal(record.status).into(),
            "storageLocation" => record.storage_location.clone().unwrap_or_default().into(),
            "submittedDateTime" => timestamp(&record.submitted_at).into(),
            _ => record.user_id.clone().into(),
        })
        .collect()
}

fn json_to_sql(v: &serde_json::Value) -> sea_query::Value {
    match v {
        serde_json::Value::Number(n) if n.is_i64() => n.as_i64().unwrap_or_default().into(),
        serde_json::Value::Number(n) => n.as_f64().unwrap_or_default().into(),
        serde_json::Value::String(s) => s.clone().into(),
        other => other.to_string().into(),
    }
}

/// Keyset condition: the rows that sort strictly after `cursor`.
pub(crate) fn after(columns: Columns, order: &[SortKey], cursor: &Cursor) -> Expr {
    let keys = full_order(columns, order);
    let mut values: Vec<sea_query::Value> = cursor.keys.iter().map(json_to_sql).collect();
    if keys.len() > values.len() {
        values.push(cursor.last_id.clone().into());
    }
    let mut any = Cond::any();
    for i in 0..keys.len().min(values.len()) {
        let mut all = Cond::all();
        for j in 0..i {
            all = all.add(keys[j].0.clone().eq(values[j].clone()));
        }
        let (expr, descending) = &keys[i];
        let step = if *descending { expr.clone().lt(values[i].clone()) } else { expr.clone().gt(values[i].clone()) };
        any = any.add(all.add(step));
    }
    any.into()
}

/// The SELECT of a list request.
pub fn select_operations(request: &ListRequest<'_>) -> SelectStatement {
    let mut query = Query::select();
    query.columns(COLUMNS).from(OPERATIONS).cond_where(matching(request.tenant, request.filter, request.search));
    if let Some(cursor) = request.after {
        query.and_where(after(column, request.order, cursor));
    }
    for (expr, descending) in full_order(column, request.order) {
        query.order_by_expr(expr, if descending { Order::Desc } else { Order::Asc });
    }
    query.limit(request.limit).offset(request.skip);
    query
}

/// The SELECT COUNT of matching operations.
pub fn count_operations(tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> SelectStatement {
    let mut query = Query::select();
    query.expr(Expr::col("id").count()).from(OPERATIONS).cond_where(matching(tenant, filter, search));
    query
}

/// The values of a record's columns, in [`COLUMNS`] order.
fn record_values(r: &OperationRecord) -> [sea_query::Value; 12] {
    [
        r.id.to_string().into(),
        r.user_id.clone().into(),
        status_ordinal(r.status).into(),
        r.progress.into(),
        r.storage_location.clone().into(),
        timestamp(&r.submitted_at).into(),
        r.completed_at.as_ref().map(timestamp).into(),
        to_i64(r.version).into(),
        r.failure_reason.clone().into(),
        r.tenant_id.clone().into(),
        r.storage_secret.clone().into(),
        r.request_id.map(|id| id.to_string()).into(),
    ]
}

/// A count or version as SQL stores it (both dialects' integers are signed 64-bit).
pub fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// The INSERT of new operations (one statement for one or many).
pub fn insert_operations(records: &[OperationRecord]) -> InsertStatement {
    let mut insert = Query::insert();
    insert.into_table(OPERATIONS).columns(COLUMNS);
    for r in records {
        insert.values_panic(record_values(r).map(Expr::val));
    }
    insert
}

/// The INSERT of one new operation that inserts nothing when its id exists already (the caller sees no
/// row written), so that a duplicate does not abort the transaction it is part of.
pub fn insert_new_operation(r: &OperationRecord) -> InsertStatement {
    let mut insert = insert_operations(std::slice::from_ref(r));
    insert.on_conflict(OnConflict::column("id").do_nothing().to_owned());
    insert
}

/// The UPDATE that replaces an operation still at the version before `r`'s.
pub fn replace_operation(r: &OperationRecord) -> UpdateStatement {
    let mut update = Query::update();
    update
        .table(OPERATIONS)
        .values(COLUMNS.into_iter().zip(record_values(r).map(Expr::val)).filter(|(c, _)| *c != "id"))
        .and_where(Expr::col("id").eq(r.id.to_string()))
        .and_where(Expr::col("version").eq(to_i64(r.version.saturating_sub(1))));
    update
}

/// The SELECT of one operation.
pub fn get_operation(id: Uuid) -> SelectStatement {
    let mut select = Query::select();
    select.columns(COLUMNS).from(OPERATIONS).and_where(Expr::col("id").eq(id.to_string()));
    select
}

/// The DELETE of an operation, at `version` if given.
pub fn delete_operation(id: Uuid, version: Option<u64>) -> DeleteStatement {
    let mut delete = Query::delete();
    delete.from_table(OPERATIONS).and_where(Expr::col("id").eq(id.to_string()));
    if let Some(v) = version {
        delete.and_where(Expr::col("version").eq(to_i64(v)));
    }
    delete
}

/// Columns a claim reads back: the record's, then the attempt.
pub fn claim_columns() -> Vec<&'static str> {
    COLUMNS.iter().copied().chain(["attempt"]).collect()
}

/// The claim: the oldest operation that is `notStarted`, or `running` with a lease that ended by `now`
/// (or with none: running before leases existed), becomes `running` for `owner` until `until`, one
/// attempt and one version further. Rows another transaction is claiming are skipped (`FOR UPDATE SKIP
/// LOCKED`; SQLite has one writer and no locks).
///
/// With `per_tenant`, tenants with that many exports running under a live lease are passed over (two
/// replicas claiming at the same moment may each see room for one more: the cap is kept to within the
/// number of replicas).
pub fn claim(owner: &str, now: &DateTime<Utc>, until: &DateTime<Utc>, per_tenant: Option<u32>) -> UpdateStatement {
    let lease_ended = Expr::col("lease_expires").is_null().or(Expr::col("lease_expires").lte(timestamp(now)));
    let mut waiting =
        Expr::col("status")
            .eq(status_ordinal(DataPolicyOperationStatus::NotStarted))
            .or(Expr::col("status").eq(status_ordinal(DataPolicyOperationStatus::Running)).and(lease_ended));
    if let Some(cap) = per_tenant {
        let mut busy = Query::select();
        busy.column("tenant_id")
            .from(OPERATIONS)
            .and_where(Expr::col("status").eq(status_ordinal(DataPolicyOperationStatus::Running)))
            .and_where(Expr::col("lease_expires").gt(timestamp(now)))
            .group_by_col("tenant_id")
            .and_having(Expr::col("id").count().gte(i64::from(cap)));
        waiting = waiting.and(Expr::col("tenant_id").not_in_subquery(busy));
    }
    let mut oldest = Query::select();
    oldest
        .column("id")
        .from(OPERATIONS)
        .and_where(waiting)
        .order_by("submitted_at", Order::Asc)
        .order_by("id", Order::Asc)
        .limit(1)
        .lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    let mut update = Query::update();
    update
        .table(OPERATIONS)
        .value("status", status_ordinal(DataPolicyOperationStatus::Running))
        .value("version", Expr::col("version").add(1i64))
        .value("attempt", Expr::col("attempt").add(1i64))
        .value("lease_owner", owner)
        .value("lease_expires", timestamp(until))
        .and_where(Expr::col("id").in_subquery(oldest))
        .returning(Query::returning().columns(claim_columns()));
    update
}

/// An UPDATE of the claimed operation that only applies while `claim` is its current claim.
fn fenced(claim: &Claim) -> UpdateStatement {
    let mut update = Query::update();
    update
        .table(OPERATIONS)
        .and_where(Expr::col("id").eq(claim.operation.id.to_string()))
        .and_where(Expr::col("attempt").eq(to_i64(claim.attempt)))
        .and_where(Expr::col("status").eq(status_ordinal(DataPolicyOperationStatus::Running)));
    update
}

/// A write that changes nothing but only matches while `claim` is current (it takes the row's lock, so
/// what the same transaction writes next cannot race a new claim).
pub fn fence(claim: &Claim) -> UpdateStatement {
    let mut update = fenced(claim);
    update.value("attempt", Expr::col("attempt"));
    update
}

/// Extends the claim's lease.
pub fn heartbeat(claim: &Claim, until: &DateTime<Utc>) -> UpdateStatement {
    let mut update = fenced(claim);
    update.value("lease_expires", timestamp(until));
    update
}

/// Records progress under the claim.
pub fn progress(claim: &Claim, percent: f64) -> UpdateStatement {
    let mut update = fenced(claim);
    update.value("progress", percent).value("version", Expr::col("version").add(1i64));
    update
}

/// Ends the claim with `status`, at `at` (or back in the queue, without a time), returning the record.
fn finish(claim: &Claim, status: DataPolicyOperationStatus, at: Option<&DateTime<Utc>>) -> UpdateStatement {
    let mut update = fenced(claim);
    update
        .value("status", status_ordinal(status))
        .value("completed_at", at.map(timestamp))
        .value("version", Expr::col("version").add(1i64))
        .value("lease_owner", Option::<String>::None)
        .value("lease_expires", Option::<String>::None)
        .returning(Query::returning().columns(COLUMNS));
    update
}

/// Marks the claimed operation complete.
pub fn complete(claim: &Claim, at: &DateTime<Utc>) -> UpdateStatement {
    let mut update = finish(claim, DataPolicyOperationStatus::Complete, Some(at));
    update.value("progress", 100.0);
    update
}

/// Marks the claimed operation failed, saying why.
pub fn fail(claim: &Claim, reason: &str, at: &DateTime<Utc>) -> UpdateStatement {
    let mut update = finish(claim, DataPolicyOperationStatus::Failed, Some(at));
    update.value("failure_reason", reason);
    update
}

/// Puts the claimed operation back in the queue.
pub fn release(claim: &Claim) -> UpdateStatement {
    finish(claim, DataPolicyOperationStatus::NotStarted, None)
}

/// Ends the leases of every owner but `owner` at `now`.
pub fn expire_leases_of_others(owner: &str, now: &DateTime<Utc>) -> UpdateStatement {
    let mut update = Query::update();
    update
        .table(OPERATIONS)
        .value("lease_expires", timestamp(now))
        .and_where(Expr::col("status").eq(status_ordinal(DataPolicyOperationStatus::Running)))
        .and_where(Expr::col("lease_owner").ne(owner).or(Expr::col("lease_owner").is_null()));
    update
}

/// The export ledger's table.
pub const EXPORT_OBJECTS: &str = "export_objects";

/// Records (or replaces) an object an export wrote.
pub fn record_exported(operation: Uuid, object: &ExportedObject) -> InsertStatement {
    let mut insert = Query::insert();
    insert
        .into_table(EXPORT_OBJECTS)
        .columns(["operation_id", "path", "size", "sha256", "etag", "row_count"])
        .values_panic([
            operation.to_string().into(),
            object.path.clone().into(),
            to_i64(object.size).into(),
            object.sha256.clone().into(),
            object.etag.clone().into(),
            object.rows.map(to_i64).into(),
        ])
        .on_conflict(
            OnConflict::columns(["operation_id", "path"])
                .update_columns(["size", "sha256", "etag", "row_count"])
                .to_owned(),
        );
    insert
}

/// The objects recorded for an operation, by path.
pub fn exported(operation: Uuid) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(["path", "size", "sha256", "etag", "row_count"])
        .from(EXPORT_OBJECTS)
        .and_where(Expr::col("operation_id").eq(operation.to_string()))
        .order_by("path", Order::Asc);
    select
}

/// Adds or updates users of `tenant`.
pub fn upsert_users(tenant: &str, users: &[UserRecord]) -> InsertStatement {
    let mut insert = Query::insert();
    insert.into_table("users").columns([
        "tenant_id",
        "id",
        "user_principal_name",
        "display_name",
        "mail",
        "attributes",
    ]);
    for u in users {
        // A map of strings to scalars always serialises.
        let attributes = (!u.attributes.is_empty()).then(|| serde_json::to_string(&u.attributes).unwrap_or_default());
        insert.values_panic([
            tenant.into(),
            u.id.clone().into(),
            u.user_principal_name.clone().into(),
            u.display_name.clone().into(),
            u.mail.clone().into(),
            attributes.into(),
        ]);
    }
    insert.on_conflict(
        OnConflict::columns(["tenant_id", "id"])
            .update_columns(["user_principal_name", "display_name", "mail", "attributes"])
            .to_owned(),
    );
    insert
}

/// The user of `tenant` with this id, or else the one with this userPrincipalName in any case (ASCII): an id
/// wins over another user's userPrincipalName that spells the same.
pub fn find_user(tenant: &str, id_or_upn: &str) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(["id", "user_principal_name", "display_name", "mail", "attributes"])
        .from("users")
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(
            Expr::col("id")
                .eq(id_or_upn)
                .or(Expr::expr(Func::lower(Expr::col("user_principal_name"))).eq(id_or_upn.to_ascii_lowercase())),
        )
        .order_by_expr(Expr::col("id").eq(id_or_upn), Order::Desc)
        .limit(1);
    select
}

/// The user of `tenant` whose mail or userPrincipalName is `email`, without case; a mail match first.
pub fn find_user_by_email(tenant: &str, email: &str) -> SelectStatement {
    let email = email.to_lowercase();
    let mail = Expr::expr(Func::lower(Expr::col("mail"))).eq(email.clone());
    let mut select = Query::select();
    select
        .columns(["id", "user_principal_name", "display_name", "mail", "attributes"])
        .from("users")
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(mail.clone().or(Expr::expr(Func::lower(Expr::col("user_principal_name"))).eq(email)))
        // A user without a mail compares as null, which PostgreSQL would sort first: as false instead.
        .order_by_expr(Func::coalesce([mail, Expr::val(false)]).into(), Order::Desc)
        .order_by("id", Order::Asc)
        .limit(1);
    select
}

/// Records activities of users of `tenant`.
pub fn add_activities(tenant: &str, activities: &[ActivityRecord]) -> InsertStatement {
    let mut insert = Query::insert();
    insert.into_table("activities").columns(["tenant_id", "user_id", "occurred_at", "kind", "detail"]);
    for a in activities {
        insert.values_panic([
            tenant.into(),
            a.user_id.clone().into(),
            timestamp(&a.occurred_at).into(),
            a.kind.clone().into(),
            a.detail.to_string().into(),
        ]);
    }
    insert
}

/// How many activity records a user has.
pub fn count_activities(tenant: &str, user_id: &str) -> SelectStatement {
    let mut select = Query::select();
    select
        .expr(Expr::col("seq").count())
        .from("activities")
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(Expr::col("user_id").eq(user_id));
    select
}

/// A page of a user's activity records after sequence number `after`.
pub fn activities(tenant: &str, user_id: &str, after: i64, limit: u64) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(["seq", "user_id", "occurred_at", "kind", "detail"])
        .from("activities")
        .and_where(Expr::col("tenant_id").eq(tenant))
        .and_where(Expr::col("user_id").eq(user_id))
        .and_where(Expr::col("seq").gt(after))
        .order_by("seq", Order::Asc)
        .limit(limit);
    select
}

/// A statement of any kind, for a backend to build in its dialect.
pub enum Statement {
    /// SELECT.
    Select(SelectStatement),
    /// INSERT.
    Insert(InsertStatement),
    /// UPDATE.
    Update(UpdateStatement),
    /// DELETE.
    Delete(DeleteStatement),
}

macro_rules! statement_from {
    ($($kind:ident: $ty:ty),*) => {$(
        impl From<$ty> for Statement {
            fn from(s: $ty) -> Self {
                Statement::$kind(s)
            }
        }
    )*};
}
statement_from!(Select: SelectStatement, Insert: InsertStatement, Update: UpdateStatement, Delete: DeleteStatement);

/// The audit table's columns, in [`AuditEvent`]'s order.
pub const AUDIT_COLUMNS: [&str; 16] = [
    "tenant_id",
    "seq",
    "id",
    "at",
    "category",
    "activity",
    "actor_kind",
    "actor_id",
    "target_user",
    "operation_id",
    "storage_location",
    "result",
    "reason",
    "request_id",
    "prev_hash",
    "hash",
];

/// How many exports wait to be claimed, in every tenant.
pub fn count_queued() -> SelectStatement {
    let mut query = Query::select();
    query
        .expr(Expr::col("id").count())
        .from(OPERATIONS)
        .and_where(Expr::col("status").eq(status_ordinal(DataPolicyOperationStatus::NotStarted)));
    query
}

/// The last event of `tenant`'s audit chain: its place and hash.
pub fn audit_last(tenant: &str) -> SelectStatement {
    let mut select = Query::select();
    select
        .columns(["seq", "hash"])
        .from("audit_events")
        .and_where(Expr::col("tenant_id").eq(tenant))
        .order_by("seq", Order::Desc)
        .limit(1);
    select
}

/// Appends `event` (its place is the primary key: a second writer at the same place fails).
pub fn audit_insert(event: &AuditEvent) -> InsertStatement {
    let mut insert = Query::insert();
    insert.into_table("audit_events").columns(AUDIT_COLUMNS).values_panic([
        event.tenant_id.clone().into(),
        event.seq.into(),
        event.id.clone().into(),
        event.at.clone().into(),
        event.category.clone().into(),
        event.activity.clone().into(),
        event.actor_kind.clone().into(),
        event.actor_id.clone().into(),
        event.target_user.clone().into(),
        event.operation_id.clone().into(),
        event.storage_location.clone().into(),
        event.result.clone().into(),
        event.reason.clone().into(),
        event.request_id.clone().into(),
        event.prev_hash.clone().into(),
        event.hash.clone().into(),
    ]);
    insert
}

/// The events of `tenant` that `page` selects.
pub fn audit_page(tenant: &str, page: &AuditPage) -> SelectStatement {
    let mut select = Query::select();
    select.columns(AUDIT_COLUMNS).from("audit_events").and_where(Expr::col("tenant_id").eq(tenant));
    if let Some(after) = page.after {
        select.and_where(if page.newest_first { Expr::col("seq").lt(after) } else { Expr::col("seq").gt(after) });
    }
    if let Some(filter) = &page.filter {
        select.and_where(audit_condition(filter));
    }
    select.order_by("seq", if page.newest_first { Order::Desc } else { Order::Asc }).limit(page.limit);
    select
}

/// The SQL condition of an audit `$filter`. Times are stored as RFC 3339 text in one format (UTC,
/// milliseconds, `Z`), so they compare as text.
fn audit_condition(filter: &AuditFilter) -> Expr {
    match filter {
        AuditFilter::And(a, b) => audit_condition(a).and(audit_condition(b)),
        AuditFilter::Or(a, b) => audit_condition(a).or(audit_condition(b)),
        AuditFilter::Not(a) => audit_condition(a).not(),
        AuditFilter::Time(op, at) => {
            let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            let col = Expr::col("at");
            match op {
                CmpOp::Eq => col.eq(at),
                CmpOp::Ne => col.ne(at),
                CmpOp::Gt => col.gt(at),
                CmpOp::Ge => col.gte(at),
                CmpOp::Lt => col.lt(at),
                CmpOp::Le => col.lte(at),
            }
        }
        AuditFilter::Text { field, equal, value } => {
            let holds = audit_field_equals(*field, value);
            if *equal { holds } else { holds.not() }
        }
        AuditFilter::StartsWith(field, prefix) => {
            let column = if *field == AuditField::Category { "category" } else { "activity" };
            Expr::col(column).like(LikeExpr::new(format!("{}%", like_escaped(prefix))).escape('\\'))
        }
        AuditFilter::Target(id) => {
            Expr::col("target_user").eq(id.as_str()).or(Expr::col("operation_id").eq(id.as_str()))
        }
    }
}

/// `field eq value`, on the columns that hold the field.
fn audit_field_equals(field: AuditField, value: &str) -> Expr {
    let is = |column: &'static str| Expr::col(column).eq(value);
    match field {
        AuditField::Id => is("id"),
        AuditField::Category => is("category"),
        AuditField::Activity => is("activity"),
        AuditField::Result => is("result"),
        AuditField::CorrelationId => is("request_id"),
        AuditField::LoggedByService => Expr::val(dpo_domain::audit::LOGGED_BY_SERVICE).eq(value),
        AuditField::OperationType => {
            Expr::col("activity").is_in(dpo_domain::audit::activities_of_operation_type(value).iter().copied())
        }
        AuditField::UserId => Expr::col("actor_kind").eq("user").and(is("actor_id")),
        AuditField::AppId => Expr::col("actor_kind").eq("app").and(is("actor_id")),
    }
}

/// Every tenant with audit events.
pub fn audit_tenants() -> SelectStatement {
    let mut select = Query::select();
    select.column("tenant_id").distinct().from("audit_events").order_by("tenant_id", Order::Asc);
    select
}
