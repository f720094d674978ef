//! The names of the metrics dpo exports (`/metrics` on the admin listener), shared by every crate that
//! records one, so that a name is written once.

/// Requests answered, by `operation` (the OpenAPI operationId) and `status`.
pub const REQUESTS: &str = "dpo_http_requests_total";
/// Time to answer a request, by `operation`.
pub const REQUEST_SECONDS: &str = "dpo_http_request_duration_seconds";
/// Requests refused for their token, by `reason`: what was wrong with it (`missing`, `malformed`,
/// `unknown_key`, `signature`, `expired`, `not_yet_valid`, `audience`, `issuer`, `missing_claim`,
/// `unsupported`), or `forbidden`: a valid token without the permission.
pub const TOKEN_FAILURES: &str = "dpo_token_failures_total";
/// Exports that ended on this server, by `status` (`complete`, `failed`, `cancelled`, `taken_over`:
/// another worker holds it now).
pub const EXPORTS_FINISHED: &str = "dpo_exports_finished_total";
/// Time from claiming an export to its end, by `status`.
pub const EXPORT_SECONDS: &str = "dpo_export_duration_seconds";
/// Exports running on this server now.
pub const EXPORTS_RUNNING: &str = "dpo_exports_running";
/// Exports waiting to be claimed (`notStarted`), in the whole store, when last scraped.
pub const QUEUE_DEPTH: &str = "dpo_export_queue_depth";
/// Requests answered 429, by `scope` (`tenant`, `app` or `caller`: which limit they were over).
pub const THROTTLED: &str = "dpo_throttled_requests_total";
/// Time a statement of the store took, by `store` (`sqlite`: as SQLite measured it; `postgres`: the
/// round trip) and `statement` (`select`, `insert`, `update`, `delete`, `transaction`, `other`).
pub const STORE_QUERY_SECONDS: &str = "dpo_store_query_duration_seconds";
/// Fetches of the identity provider's JWKS, by `outcome` (`changed`, `unchanged`, `failed`).
pub const JWKS_FETCHES: &str = "dpo_jwks_fetches_total";
/// Bytes written by complete exports.
pub const EXPORTED_BYTES: &str = "dpo_exported_bytes_total";
/// Objects written by complete exports.
pub const EXPORTED_OBJECTS: &str = "dpo_exported_objects_total";
