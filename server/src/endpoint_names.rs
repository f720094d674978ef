//! The names of the API's endpoints: the service roots they are also served under, and the document's
//! operationId of each, for metrics and logs. Routes, handlers and fallbacks all use them, so they sit below
//! the three.

/// Path prefixes the API also answers under, as Graph's service roots (`https://graph.microsoft.com/v1.0`).
pub const VERSION_PREFIXES: [&str; 2] = ["/v1.0", "/beta"];

/// The document's operationId of each handler, by the short name its copies under the service roots are
/// registered with (`/v1.0` + `list`).
pub(crate) const OPERATION_IDS: [(&str, &str); 31] = [
    ("list", "dataPolicyOperations.dataPolicyOperation.ListDataPolicyOperation"),
    ("create", "dataPolicyOperations.dataPolicyOperation.CreateDataPolicyOperation"),
    ("get", "dataPolicyOperations.dataPolicyOperation.GetDataPolicyOperation"),
    ("update", "dataPolicyOperations.dataPolicyOperation.UpdateDataPolicyOperation"),
    ("delete", "dataPolicyOperations.dataPolicyOperation.DeleteDataPolicyOperation"),
    ("export", "users.user.exportPersonalData"),
    ("audits", "auditLogs.ListDirectoryAudits"),
    ("audit", "auditLogs.GetDirectoryAudits"),
    ("requests", "security.ListSubjectRightsRequests"),
    ("create_request", "security.CreateSubjectRightsRequests"),
    ("request", "security.GetSubjectRightsRequests"),
    ("update_request", "security.UpdateSubjectRightsRequests"),
    ("notes", "security.subjectRightsRequests.ListNotes"),
    ("create_note", "security.subjectRightsRequests.CreateNotes"),
    ("report", "security.subjectRightsRequests.subjectRightsRequest.getFinalReport"),
    ("report_bare", "security.subjectRightsRequests.subjectRightsRequest.getFinalReport"),
    ("attachment", "security.subjectRightsRequests.subjectRightsRequest.getFinalAttachment"),
    ("attachment_bare", "security.subjectRightsRequests.subjectRightsRequest.getFinalAttachment"),
    ("approve", "security.subjectRightsRequests.subjectRightsRequest.approve"),
    ("reject", "security.subjectRightsRequests.subjectRightsRequest.reject"),
    ("close", "security.subjectRightsRequests.subjectRightsRequest.close"),
    ("privacy_list_subject_rights_requests", "privacy.ListSubjectRightsRequests"),
    ("privacy_create_subject_rights_request", "privacy.CreateSubjectRightsRequests"),
    ("privacy_get_subject_rights_request", "privacy.GetSubjectRightsRequests"),
    ("privacy_update_subject_rights_request", "privacy.UpdateSubjectRightsRequests"),
    ("privacy_list_subject_rights_request_notes", "privacy.subjectRightsRequests.ListNotes"),
    ("privacy_create_subject_rights_request_note", "privacy.subjectRightsRequests.CreateNotes"),
    ("privacy_get_final_report", "privacy.subjectRightsRequests.subjectRightsRequest.getFinalReport"),
    ("privacy_get_final_attachment", "privacy.subjectRightsRequests.subjectRightsRequest.getFinalAttachment"),
    ("privacy_report_bare", "privacy.subjectRightsRequests.subjectRightsRequest.getFinalReport"),
    ("privacy_attachment_bare", "privacy.subjectRightsRequests.subjectRightsRequest.getFinalAttachment"),
];

/// The document's operationId of the endpoint dropshot knows as `endpoint` (the same for a path and its
/// copies under `/v1.0` and `/beta`), for metrics and logs.
pub fn operation_id(endpoint: &str) -> &str {
    let short = VERSION_PREFIXES.iter().find_map(|prefix| endpoint.strip_prefix(prefix)).unwrap_or(endpoint);
    OPERATION_IDS.iter().find(|(name, _)| *name == short).map_or(endpoint, |(_, id)| id)
}
