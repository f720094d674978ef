//! SQL for the operations table, built with sea-query so that any of its dialects can run it. Every value
//! from a request travels as a bound parameter, never as SQL text.

use super::{Cursor, ListRequest, OperationRecord};
use crate::odata::{
    filter::{CmpOp, Filter, TextFunc, Value},
    orderby::SortKey,
    properties::{Kind, Property},
};
use chrono::{DateTime, Utc};
use dpo_api::model::DataPolicyOperationStatus;
use sea_query::{Cond, Expr, ExprTrait, Func, LikeExpr, Order, Query, SelectStatement};

/// The operations table.
pub const OPERATIONS: &str = "operations";
/// Its columns, in the order [`select_operations`] reads them.
pub const COLUMNS: [&str; 11] = [
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

/// What a sort compares: the column, with null as the empty string so that nulls sort first (as OData
/// orders them ascending) and keyset comparisons stay total.
fn sort_expr(p: Property) -> Expr {
    if p.nullable { Func::coalesce([Expr::col(column(p)), Expr::val("")]).into() } else { Expr::col(column(p)) }
}

fn sql_value(v: &Value) -> sea_query::Value {
    match v {
        Value::Null => sea_query::Value::String(None),
        Value::String(s) => s.clone().into(),
        Value::Number(n) => (*n).into(),
        Value::DateTime(d) => timestamp(d).into(),
        Value::Status(s) => status_ordinal(*s).into(),
        Value::Id(g) => g.to_string().into(),
    }
}

fn like_escaped(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

/// The SQL condition of a `$filter`.
pub fn condition(filter: &Filter) -> Expr {
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
            let v = sql_value(value);
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
            let listed = col.clone().is_in(others.into_iter().map(sql_value));
            if nulls.is_empty() { listed } else { listed.or(col.is_null()) }
        }
        Filter::Text { func, property, needle } => {
            let n = like_escaped(needle);
            let pattern = match func {
                TextFunc::StartsWith => format!("{n}%"),
                TextFunc::EndsWith => format!("%{n}"),
                TextFunc::Contains => format!("%{n}%"),
            };
            Expr::col(column(*property)).like(LikeExpr::new(pattern).escape('\\'))
        }
    }
}

/// `$search`: the term anywhere in userId or storageLocation (case-insensitive for ASCII letters).
pub fn search_condition(term: &str) -> Expr {
    let pattern = format!("%{}%", like_escaped(term));
    Expr::col("user_id")
        .like(LikeExpr::new(pattern.clone()).escape('\\'))
        .or(Expr::col("storage_location").like(LikeExpr::new(pattern).escape('\\')))
}

fn matching(tenant: &str, filter: Option<&Filter>, search: Option<&str>) -> Cond {
    let mut cond = Cond::all().add(Expr::col("tenant_id").eq(tenant));
    if let Some(f) = filter {
        cond = cond.add(condition(f));
    }
    if let Some(term) = search {
        cond = cond.add(search_condition(term));
    }
    cond
}

/// The sort keys of a list, ending with the id.
fn full_order(order: &[SortKey]) -> Vec<(Expr, bool)> {
    let mut keys: Vec<(Expr, bool)> = order.iter().map(|k| (sort_expr(k.property), k.descending)).collect();
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
fn after(order: &[SortKey], cursor: &Cursor) -> Expr {
    let keys = full_order(order);
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
        query.and_where(after(request.order, cursor));
    }
    for (expr, descending) in full_order(request.order) {
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
