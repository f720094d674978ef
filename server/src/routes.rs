//! The routes the server answers: the API traits' own paths, the same under Graph's service roots
//! (`/v1.0`, `/beta`), `OPTIONS` (204 with `Allow`), and an OData `405` with `Allow` for every other method
//! on those paths.
//!
//! Paths dpo does not serve get Graph's answer, 400 `BadRequest` "Resource not found for the segment …",
//! wherever dropshot's router can route them: the service roots and `/users` themselves, `/users/{id}`,
//! and anything below an operation or the export action. A node of dropshot's router has either literal
//! or variable children, so an unknown name beside a known one (`/v1.0/foo`, `/users/{id}/foo`) cannot be
//! routed to a handler: dropshot answers it with its own 404 body, and offers no hook to change that.

use crate::{
    endpoint_names::VERSION_PREFIXES,
    fallbacks::{
        method_not_allowed, method_not_allowed_on_audit, method_not_allowed_on_audits, method_not_allowed_on_notes,
        method_not_allowed_on_operation, method_not_allowed_on_request, method_not_allowed_on_user,
        unknown_below_export, unknown_below_operation, unknown_resource, unknown_user_resource,
    },
    handlers::{AppContext, DpoApi},
};
use dpo_api::{DataPolicyOperationsApi, data_policy_operations_api_mod};
use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions};
use http::Method;

const COLLECTION: &str = "/dataPolicyOperations";
const OPERATION: &str = "/dataPolicyOperations/{dataPolicyOperation-id}";
const EXPORT: &str = "/users/{user-id}/exportPersonalData";
const AUDITS: &str = "/auditLogs/directoryAudits";
const AUDIT: &str = "/auditLogs/directoryAudits/{directoryAudit-id}";
const REQUESTS: &str = "/security/subjectRightsRequests";
const REQUEST: &str = "/security/subjectRightsRequests/{subjectRightsRequest-id}";
const NOTES: &str = "/security/subjectRightsRequests/{subjectRightsRequest-id}/notes";
/// Below a request: its functions (with and without OData's parentheses) and its actions.
const BELOW_REQUEST: &str = "/security/subjectRightsRequests/{subjectRightsRequest-id}/";
const USERS: &str = "/users";
const USER: &str = "/users/{user-id}";
/// Below a route with handlers, a wildcard would also take the route itself: one segment comes first.
const BELOW: &str = "/{segment}/{rest:.*}";
const METHODS: [Method; 6] = [Method::GET, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];

/// The full router description of the server.
pub fn api() -> Result<ApiDescription<AppContext>, String> {
    let mut api = data_policy_operations_api_mod::api_description::<DpoApi>().map_err(|e| e.to_string())?;
    let mut add = |endpoint: ApiEndpoint<AppContext>| api.register(endpoint.visible(false)).map_err(|e| e.to_string());
    for prefix in VERSION_PREFIXES {
        let at = |path: &str| format!("{prefix}{path}");
        let id = |name: &str| format!("{prefix}{name}");
        add(ApiEndpoint::new(
            id("list"),
            <DpoApi as DataPolicyOperationsApi>::list_data_policy_operations,
            Method::GET,
            "application/json",
            &at(COLLECTION),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("create"),
            <DpoApi as DataPolicyOperationsApi>::create_data_policy_operation,
            Method::POST,
            "application/json",
            &at(COLLECTION),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("get"),
            <DpoApi as DataPolicyOperationsApi>::get_data_policy_operation,
            Method::GET,
            "application/json",
            &at(OPERATION),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("update"),
            <DpoApi as DataPolicyOperationsApi>::update_data_policy_operation,
            Method::PATCH,
            "application/json",
            &at(OPERATION),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("delete"),
            <DpoApi as DataPolicyOperationsApi>::delete_data_policy_operation,
            Method::DELETE,
            "application/json",
            &at(OPERATION),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("export"),
            <DpoApi as DataPolicyOperationsApi>::export_personal_data,
            Method::POST,
            "application/json",
            &at(EXPORT),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("audits"),
            <DpoApi as DataPolicyOperationsApi>::list_directory_audits,
            Method::GET,
            "application/json",
            &at(AUDITS),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("audit"),
            <DpoApi as DataPolicyOperationsApi>::get_directory_audit,
            Method::GET,
            "application/json",
            &at(AUDIT),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("requests"),
            <DpoApi as DataPolicyOperationsApi>::list_subject_rights_requests,
            Method::GET,
            "application/json",
            &at(REQUESTS),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("create_request"),
            <DpoApi as DataPolicyOperationsApi>::create_subject_rights_request,
            Method::POST,
            "application/json",
            &at(REQUESTS),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("request"),
            <DpoApi as DataPolicyOperationsApi>::get_subject_rights_request,
            Method::GET,
            "application/json",
            &at(REQUEST),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("update_request"),
            <DpoApi as DataPolicyOperationsApi>::update_subject_rights_request,
            Method::PATCH,
            "application/json",
            &at(REQUEST),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("notes"),
            <DpoApi as DataPolicyOperationsApi>::list_subject_rights_request_notes,
            Method::GET,
            "application/json",
            &at(NOTES),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("create_note"),
            <DpoApi as DataPolicyOperationsApi>::create_subject_rights_request_note,
            Method::POST,
            "application/json",
            &at(NOTES),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_list_subject_rights_requests"),
            <DpoApi as DataPolicyOperationsApi>::privacy_list_subject_rights_requests,
            Method::GET,
            "application/json",
            &at("/privacy/subjectRightsRequests"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_create_subject_rights_request"),
            <DpoApi as DataPolicyOperationsApi>::privacy_create_subject_rights_request,
            Method::POST,
            "application/json",
            &at("/privacy/subjectRightsRequests"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_get_subject_rights_request"),
            <DpoApi as DataPolicyOperationsApi>::privacy_get_subject_rights_request,
            Method::GET,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_update_subject_rights_request"),
            <DpoApi as DataPolicyOperationsApi>::privacy_update_subject_rights_request,
            Method::PATCH,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_list_subject_rights_request_notes"),
            <DpoApi as DataPolicyOperationsApi>::privacy_list_subject_rights_request_notes,
            Method::GET,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}/notes"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_create_subject_rights_request_note"),
            <DpoApi as DataPolicyOperationsApi>::privacy_create_subject_rights_request_note,
            Method::POST,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}/notes"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_get_final_report"),
            <DpoApi as DataPolicyOperationsApi>::privacy_get_final_report,
            Method::GET,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}/getFinalReport()"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_get_final_attachment"),
            <DpoApi as DataPolicyOperationsApi>::privacy_get_final_attachment,
            Method::GET,
            "application/json",
            &at("/privacy/subjectRightsRequests/{subjectRightsRequest-id}/getFinalAttachment()"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("report"),
            <DpoApi as DataPolicyOperationsApi>::get_final_report,
            Method::GET,
            "application/json",
            &at(&format!("{BELOW_REQUEST}getFinalReport()")),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("attachment"),
            <DpoApi as DataPolicyOperationsApi>::get_final_attachment,
            Method::GET,
            "application/json",
            &at(&format!("{BELOW_REQUEST}getFinalAttachment()")),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("approve"),
            <DpoApi as DataPolicyOperationsApi>::approve_subject_rights_request,
            Method::POST,
            "application/json",
            &at(&format!("{BELOW_REQUEST}approve")),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("reject"),
            <DpoApi as DataPolicyOperationsApi>::reject_subject_rights_request,
            Method::POST,
            "application/json",
            &at(&format!("{BELOW_REQUEST}reject")),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("close"),
            <DpoApi as DataPolicyOperationsApi>::close_subject_rights_request,
            Method::POST,
            "application/json",
            &at(&format!("{BELOW_REQUEST}close")),
            ApiEndpointVersions::All,
        ))?;
    }
    // OData functions answer without their parentheses too (`getFinalReport` as `getFinalReport()`).
    for prefix in std::iter::once("").chain(VERSION_PREFIXES) {
        let id = |name: &str| format!("{prefix}{name}");
        add(ApiEndpoint::new(
            id("report_bare"),
            <DpoApi as DataPolicyOperationsApi>::get_final_report,
            Method::GET,
            "application/json",
            &format!("{prefix}{BELOW_REQUEST}getFinalReport"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_report_bare"),
            <DpoApi as DataPolicyOperationsApi>::privacy_get_final_report,
            Method::GET,
            "application/json",
            &format!("{prefix}/privacy/subjectRightsRequests/{{subjectRightsRequest-id}}/getFinalReport"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("privacy_attachment_bare"),
            <DpoApi as DataPolicyOperationsApi>::privacy_get_final_attachment,
            Method::GET,
            "application/json",
            &format!("{prefix}/privacy/subjectRightsRequests/{{subjectRightsRequest-id}}/getFinalAttachment"),
            ApiEndpointVersions::All,
        ))?;
        add(ApiEndpoint::new(
            id("attachment_bare"),
            <DpoApi as DataPolicyOperationsApi>::get_final_attachment,
            Method::GET,
            "application/json",
            &format!("{prefix}{BELOW_REQUEST}getFinalAttachment"),
            ApiEndpointVersions::All,
        ))?;
    }
    for prefix in std::iter::once("").chain(VERSION_PREFIXES) {
        for method in METHODS {
            let name = |what: &str| format!("{prefix}{what}_{}_not_allowed", method.as_str().to_lowercase());
            if ![Method::GET, Method::POST].contains(&method) {
                add(ApiEndpoint::new(
                    name("collection"),
                    method_not_allowed,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{COLLECTION}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            if ![Method::GET, Method::PATCH, Method::DELETE].contains(&method) {
                add(ApiEndpoint::new(
                    name("operation"),
                    method_not_allowed_on_operation,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{OPERATION}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            if method != Method::GET {
                add(ApiEndpoint::new(
                    name("audits"),
                    method_not_allowed_on_audits,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{AUDITS}"),
                    ApiEndpointVersions::All,
                ))?;
                add(ApiEndpoint::new(
                    name("audit"),
                    method_not_allowed_on_audit,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{AUDIT}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            if ![Method::GET, Method::POST].contains(&method) {
                add(ApiEndpoint::new(
                    name("requests"),
                    method_not_allowed,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{REQUESTS}"),
                    ApiEndpointVersions::All,
                ))?;
                add(ApiEndpoint::new(
                    name("privacy_requests"),
                    method_not_allowed,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}/privacy/subjectRightsRequests"),
                    ApiEndpointVersions::All,
                ))?;
                add(ApiEndpoint::new(
                    name("privacy_notes"),
                    method_not_allowed_on_notes,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}/privacy/subjectRightsRequests/{{subjectRightsRequest-id}}/notes"),
                    ApiEndpointVersions::All,
                ))?;
                add(ApiEndpoint::new(
                    name("notes"),
                    method_not_allowed_on_notes,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{NOTES}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            if ![Method::GET, Method::PATCH].contains(&method) {
                add(ApiEndpoint::new(
                    name("privacy_request"),
                    method_not_allowed_on_request,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}/privacy/subjectRightsRequests/{{subjectRightsRequest-id}}"),
                    ApiEndpointVersions::All,
                ))?;
                add(ApiEndpoint::new(
                    name("request"),
                    method_not_allowed_on_request,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{REQUEST}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            if method != Method::POST {
                add(ApiEndpoint::new(
                    name("export"),
                    method_not_allowed_on_user,
                    method.clone(),
                    "application/json",
                    &format!("{prefix}{EXPORT}"),
                    ApiEndpointVersions::All,
                ))?;
            }
            let unknown = |what: &str| format!("{prefix}{what}_{}_unknown", method.as_str().to_lowercase());
            let root = if prefix.is_empty() { "/".to_string() } else { prefix.to_string() };
            let roots = [
                ("root", root),
                ("users", format!("{prefix}{USERS}")),
                ("audit_root", format!("{prefix}/auditLogs")),
                ("security_root", format!("{prefix}/security")),
                ("privacy_root", format!("{prefix}/privacy")),
            ];
            for (what, path) in roots {
                add(ApiEndpoint::new(
                    unknown(what),
                    unknown_resource,
                    method.clone(),
                    "application/json",
                    &path,
                    ApiEndpointVersions::All,
                ))?;
            }
            add(ApiEndpoint::new(
                unknown("user"),
                unknown_user_resource,
                method.clone(),
                "application/json",
                &format!("{prefix}{USER}"),
                ApiEndpointVersions::All,
            ))?;
            add(ApiEndpoint::new(
                unknown("below_operation"),
                unknown_below_operation,
                method.clone(),
                "application/json",
                &format!("{prefix}{OPERATION}{BELOW}"),
                ApiEndpointVersions::All,
            ))?;
            add(ApiEndpoint::new(
                unknown("below_export"),
                unknown_below_export,
                method.clone(),
                "application/json",
                &format!("{prefix}{EXPORT}{BELOW}"),
                ApiEndpointVersions::All,
            ))?;
        }
    }
    Ok(api)
}

#[cfg(test)]
mod tests {
    use crate::endpoint_names::{OPERATION_IDS, operation_id};

    #[test]
    fn copies_under_the_service_roots_count_as_the_documents_operations() {
        assert_eq!(operation_id("/v1.0list"), "dataPolicyOperations.dataPolicyOperation.ListDataPolicyOperation");
        assert_eq!(operation_id("/betaexport"), "users.user.exportPersonalData");
        assert_eq!(operation_id("users.user.exportPersonalData"), "users.user.exportPersonalData");
        // Every short name registered above has its operationId.
        for (name, _) in OPERATION_IDS {
            assert!(include_str!("routes.rs").contains(&format!("id(\"{name}\")")), "{name}");
        }
    }
}
