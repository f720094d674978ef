//! The routes the server answers: the API traits' own paths, the same under Graph's service roots
//! (`/v1.0`, `/beta`), `OPTIONS` (204 with `Allow`), and an OData `405` with `Allow` for every other method
//! on those paths.
//!
//! dropshot's router answers unknown paths itself, in its own error shape (not OData); it offers no hook
//! for that.

use crate::handlers::{
    AppContext, DpoApi, VERSION_PREFIXES, method_not_allowed, method_not_allowed_on_operation,
    method_not_allowed_on_user,
};
use dpo_api::{DataPolicyOperationsApi, data_policy_operations_api_mod};
use dropshot::{ApiDescription, ApiEndpoint, ApiEndpointVersions};
use http::Method;

const COLLECTION: &str = "/dataPolicyOperations";
const OPERATION: &str = "/dataPolicyOperations/{dataPolicyOperation-id}";
const EXPORT: &str = "/users/{user-id}/exportPersonalData";
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
        }
    }
    Ok(api)
}
