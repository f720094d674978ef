//! The audit trail read through Graph's own shape: `/auditLogs/directoryAudits` answers the caller's
//! tenant's events as `microsoft.graph.directoryAudit`, newest first, filtered and paged as Graph does.

use crate::{
    audit_trail::{Activity, LOGGED_BY_SERVICE},
    odata::{
        QueryError,
        audit_filter::{self, AuditField, AuditFilter},
        skiptoken::{SkipToken, fingerprint},
    },
    operations::PageSizes,
    store::{AuditEvent, AuditLog, AuditPage, StoreError, blocking::blocking},
};
use dpo_api::directory_audit::{
    AppIdentity, AuditActivityInitiator, DirectoryAudit, KeyValue, OperationResult, TargetResource, UserIdentity,
};
use std::sync::Arc;

/// The top-level properties of `directoryAudit`, for `$select`.
pub const PROPERTIES: [&str; 12] = [
    "id",
    "activityDateTime",
    "activityDisplayName",
    "additionalDetails",
    "category",
    "correlationId",
    "initiatedBy",
    "loggedByService",
    "operationType",
    "result",
    "resultReason",
    "targetResources",
];

/// A checked query of the audit trail.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// `$filter`, checked.
    pub filter: Option<AuditFilter>,
    /// `$orderby activityDateTime asc` asks for the oldest first; Graph's default is newest first.
    pub oldest_first: bool,
    /// `$top`.
    pub top: Option<u64>,
    /// `$select`ed properties; `None` for all.
    pub select: Option<Vec<String>>,
    /// Where the page starts (from `$skiptoken`).
    pub after: Option<i64>,
    /// The options as received, which a next link repeats: `(name, value)`.
    pub repeated: Vec<(&'static str, String)>,
    fingerprint: String,
}

fn refused(option: &str, message: impl Into<String>) -> QueryError {
    QueryError::new(option, message)
}

/// The system query options of each kind of request.
pub mod allowed {
    /// `GET /auditLogs/directoryAudits`.
    pub const LIST: &[&str] = &["$top", "$filter", "$orderby", "$select", "$skiptoken"];
    /// `GET /auditLogs/directoryAudits/{id}`.
    pub const ENTITY: &[&str] = &["$select"];
}

/// Options Graph documents for directoryAudits that it (and dpo) does not support there.
const UNSUPPORTED: [&str; 4] = ["$skip", "$search", "$count", "$expand"];

/// Reads the query string of a request for `tenant`'s audit events, accepting only the system options in
/// `allowed`.
pub fn parse_query(raw: &str, tenant: &str, allowed: &[&str]) -> Result<AuditQuery, QueryError> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
        .map_err(|e| refused("query", format!("the query string cannot be read: {e}")))?;
    let mut q = AuditQuery::default();
    let mut seen: Vec<String> = Vec::new();
    let mut skiptoken = None;
    let (mut filter_text, mut orderby_text) = (None, None);
    for (name, value) in pairs {
        if !name.starts_with('$') {
            continue;
        }
        if seen.contains(&name) {
            return Err(refused(&name, format!("Query option '{name}' is given more than once")));
        }
        seen.push(name.clone());
        if UNSUPPORTED.contains(&name.as_str()) {
            return Err(refused(
                &name,
                format!("Query option '{name}' is not supported on directoryAudits; page with @odata.nextLink"),
            ));
        }
        if !allowed.contains(&name.as_str()) {
            return Err(refused(
                &name,
                format!("Query option '{name}' is not allowed here. Allowed: {}", allowed.join(", ")),
            ));
        }
        match name.as_str() {
            "$filter" if !value.trim().is_empty() => {
                q.filter = Some(audit_filter::parse(&value)?);
                q.repeated.push(("$filter", value.clone()));
                filter_text = Some(value);
            }
            "$orderby" if !value.trim().is_empty() => {
                let words: Vec<&str> = value.split_whitespace().collect();
                q.oldest_first = match words.as_slice() {
                    ["activityDateTime"] | ["activityDateTime", "asc"] => true,
                    ["activityDateTime", "desc"] => false,
                    _ => {
                        return Err(refused(
                            "$orderby",
                            format!(
                                "directoryAudits are ordered by activityDateTime (asc or desc) only, not '{value}'"
                            ),
                        ));
                    }
                };
                q.repeated.push(("$orderby", value.clone()));
                orderby_text = Some(value);
            }
            "$select" if !value.trim().is_empty() => {
                let mut selected = Vec::new();
                for item in value.split(',').map(str::trim) {
                    if !PROPERTIES.contains(&item) {
                        return Err(refused(
                            "$select",
                            format!(
                                "'{item}' is not a property of microsoft.graph.directoryAudit; use one of {}",
                                PROPERTIES.join(", ")
                            ),
                        ));
                    }
                    if !selected.iter().any(|s| s == item) {
                        selected.push(item.to_string());
                    }
                }
                q.select = Some(selected);
                q.repeated.push(("$select", value));
            }
            "$top" => {
                let top: u64 = value.trim().parse().map_err(|_| {
                    refused("$top", format!("Invalid $top: '{value}' is not a whole number of at least 0"))
                })?;
                q.top = Some(top);
            }
            "$skiptoken" => skiptoken = Some(value),
            _ => {} // an empty $filter, $orderby or $select asks for nothing
        }
    }
    let orderby: Vec<String> = orderby_text.into_iter().collect();
    q.fingerprint = fingerprint(tenant, filter_text.as_deref(), None, &orderby);
    if let Some(text) = skiptoken {
        let token = SkipToken::decode(&text, &q.fingerprint)?;
        let seq = token.keys.first().and_then(serde_json::Value::as_i64);
        q.after =
            Some(seq.ok_or_else(|| refused("$skiptoken", "Invalid $skiptoken: use the @odata.nextLink as it is"))?);
    }
    Ok(q)
}

/// A page of events, and the token of the next one if more may follow.
pub struct AuditEventPage {
    /// The events, in the query's order.
    pub events: Vec<AuditEvent>,
    /// The next page's `$skiptoken`.
    pub next: Option<String>,
}

/// The page of `tenant`'s events that `query` asks for.
pub async fn page(
    log: &Arc<dyn AuditLog>,
    tenant: &str,
    query: &AuditQuery,
    sizes: PageSizes,
) -> Result<AuditEventPage, StoreError> {
    let size = query.top.unwrap_or(sizes.default).min(sizes.max);
    let selection = AuditPage {
        filter: query.filter.clone(),
        newest_first: !query.oldest_first,
        after: query.after,
        limit: size + 1,
    };
    let owner = tenant.to_string();
    let mut events = blocking(log, move |log| log.audit_page(&owner, &selection)).await?;
    let next = if events.len() as u64 > size {
        events.truncate(size as usize);
        events.last().map(|last| {
            SkipToken { keys: vec![last.seq.into()], last_id: last.id.clone(), query: query.fingerprint.clone() }
                .encode()
        })
    } else {
        None
    };
    Ok(AuditEventPage { events, next })
}

/// The event of `tenant` with this id, if there is one.
pub async fn one(log: &Arc<dyn AuditLog>, tenant: &str, id: &str) -> Result<Option<AuditEvent>, StoreError> {
    let selection = AuditPage {
        filter: Some(AuditFilter::Text { field: AuditField::Id, equal: true, value: id.to_string() }),
        newest_first: true,
        after: None,
        limit: 1,
    };
    let owner = tenant.to_string();
    Ok(blocking(log, move |log| log.audit_page(&owner, &selection)).await?.pop())
}

/// An event as Graph shows it. Its chain (place and hashes) goes in `additionalDetails`, so a reader can
/// check a copy against `dpo-server audit verify`.
pub fn directory_audit(event: &AuditEvent) -> DirectoryAudit {
    let (user, app) = match event.actor_kind.as_str() {
        "app" => (None, Some(AppIdentity { app_id: Some(event.actor_id.clone()), ..Default::default() })),
        _ => (Some(UserIdentity { id: Some(event.actor_id.clone()), ..Default::default() }), None),
    };
    let mut targets = Vec::new();
    if let Some(user) = &event.target_user {
        targets.push(TargetResource { id: Some(user.clone()), kind: Some("User".into()), ..Default::default() });
    }
    if let Some(operation) = &event.operation_id {
        targets.push(TargetResource {
            id: Some(operation.clone()),
            kind: Some(
                if Activity::named(&event.activity).is_some_and(Activity::is_about_request) {
                    "SubjectRightsRequest"
                } else {
                    "DataPolicyOperation"
                }
                .into(),
            ),
            ..Default::default()
        });
    }
    let detail =
        |key: &str, value: &str| KeyValue { key: Some(key.into()), value: Some(value.into()), odata_type: None };
    let mut details = Vec::new();
    if let Some(location) = &event.storage_location {
        details.push(detail("storageLocation", location));
    }
    details.push(detail("sequence", &event.seq.to_string()));
    details.push(detail("previousHash", &event.prev_hash));
    details.push(detail("hash", &event.hash));
    DirectoryAudit {
        id: Some(event.id.clone()),
        odata_type: None,
        activity_date_time: chrono::DateTime::parse_from_rfc3339(&event.at).ok().map(|at| at.to_utc()),
        activity_display_name: Some(event.activity.clone()),
        additional_details: Some(details),
        category: Some(event.category.clone()),
        correlation_id: Some(event.request_id.clone()),
        initiated_by: Some(AuditActivityInitiator { app, user, odata_type: None }),
        logged_by_service: Some(LOGGED_BY_SERVICE.into()),
        operation_type: Activity::named(&event.activity).map(|a| a.operation_type().to_string()),
        result: Some(if event.result == "success" { OperationResult::Success } else { OperationResult::Failure }),
        result_reason: event.reason.clone(),
        target_resources: Some(targets),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_options_are_checked() {
        let q = parse_query(
            "$filter=category eq 'DataPolicyOperations'&$top=5&$orderby=activityDateTime asc",
            "t",
            allowed::LIST,
        )
        .expect("a good query");
        assert!(q.filter.is_some() && q.oldest_first);
        assert_eq!(q.top, Some(5));
        for (raw, option) in [
            ("$skip=1", "$skip"),
            ("$count=true", "$count"),
            ("$orderby=category", "$orderby"),
            ("$select=bogus", "$select"),
            ("$top=-1", "$top"),
            ("$top=1&$top=2", "$top"),
            ("$format=json", "$format"),
            ("$skiptoken=garbage", "$skiptoken"),
        ] {
            assert_eq!(parse_query(raw, "t", allowed::LIST).unwrap_err().option, option, "{raw}");
        }
    }

    #[test]
    fn a_skiptoken_belongs_to_its_tenant_and_filter() {
        let q = parse_query("$filter=result eq 'failure'", "t1", allowed::LIST).unwrap();
        let token = SkipToken { keys: vec![7.into()], last_id: "x".into(), query: q.fingerprint.clone() }.encode();
        let again =
            parse_query(&format!("$filter=result eq 'failure'&$skiptoken={token}"), "t1", allowed::LIST).unwrap();
        assert_eq!(again.after, Some(7));
        assert!(parse_query(&format!("$filter=result eq 'failure'&$skiptoken={token}"), "t2", allowed::LIST).is_err());
        assert!(parse_query(&format!("$skiptoken={token}"), "t1", allowed::LIST).is_err());
    }
}
