//! The API traits. Operation ids and tags are Microsoft's, exactly as in `openapi/dpo.json`.

use crate::{
    directory_audit::{DirectoryAudit, DirectoryAuditCollection},
    error::GraphError,
    extract::{CheckedBody, ODataQuery},
    model::{
        DataPolicyOperation, DataPolicyOperationCollection, ExportPersonalDataRequest,
        subject_rights::{
            AuthoredNote, AuthoredNoteCollection, RequestAction, SubjectRightsRequest, SubjectRightsRequestCollection,
        },
    },
    params::{
        CountQuery, DirectoryAuditPath, GetQuery, IfMatchHeader, ListQuery, OperationPath, RequestPath, UserPath,
    },
    responses::{
        AcceptedNoContent, Answer, Download, EntityOrCount, EntityOrCountOf, ExportAcceptedHeaders, NoContent,
        ShapedCreated, ShapedOk,
    },
};
use dropshot::{Header, HttpResponseOk, Path, Query, RequestContext};

/// The data policy operations API that the dpo server serves.
#[dropshot::api_description]
pub trait DataPolicyOperationsApi {
    /// Server state shared by the handlers.
    type Context: Send + Sync + 'static;

    /// Retrieve the properties of a dataPolicyOperation object.
    #[endpoint {
        method = GET,
        path = "/dataPolicyOperations",
        operation_id = "dataPolicyOperations.dataPolicyOperation.ListDataPolicyOperation",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn list_data_policy_operations(
        rqctx: RequestContext<Self::Context>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperationCollection>>, GraphError>;

    /// Add new entity to dataPolicyOperations.
    #[endpoint {
        method = POST,
        path = "/dataPolicyOperations",
        operation_id = "dataPolicyOperations.dataPolicyOperation.CreateDataPolicyOperation",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn create_data_policy_operation(
        rqctx: RequestContext<Self::Context>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedCreated<DataPolicyOperation>>, GraphError>;

    /// Retrieve the properties of a dataPolicyOperation object.
    ///
    /// The id segment `$count` answers `GET /dataPolicyOperations/$count` (see [`CountApi`]).
    #[endpoint {
        method = GET,
        path = "/dataPolicyOperations/{dataPolicyOperation-id}",
        operation_id = "dataPolicyOperations.dataPolicyOperation.GetDataPolicyOperation",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn get_data_policy_operation(
        rqctx: RequestContext<Self::Context>,
        path: Path<OperationPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCount>, GraphError>;

    /// Update entity in dataPolicyOperations.
    #[endpoint {
        method = PATCH,
        path = "/dataPolicyOperations/{dataPolicyOperation-id}",
        operation_id = "dataPolicyOperations.dataPolicyOperation.UpdateDataPolicyOperation",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn update_data_policy_operation(
        rqctx: RequestContext<Self::Context>,
        path: Path<OperationPath>,
        body: CheckedBody<DataPolicyOperation>,
    ) -> Result<Answer<ShapedOk<DataPolicyOperation>>, GraphError>;

    /// Delete entity from dataPolicyOperations.
    #[endpoint {
        method = DELETE,
        path = "/dataPolicyOperations/{dataPolicyOperation-id}",
        operation_id = "dataPolicyOperations.dataPolicyOperation.DeleteDataPolicyOperation",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn delete_data_policy_operation(
        rqctx: RequestContext<Self::Context>,
        path: Path<OperationPath>,
        if_match: Header<IfMatchHeader>,
    ) -> Result<Answer<NoContent>, GraphError>;

    /// Invoke action exportPersonalData: submit an export of a user's data to a storage location.
    #[endpoint {
        method = POST,
        path = "/users/{user-id}/exportPersonalData",
        operation_id = "users.user.exportPersonalData",
        tags = ["users.user.Actions"],
    }]
    async fn export_personal_data(
        rqctx: RequestContext<Self::Context>,
        path: Path<UserPath>,
        body: CheckedBody<ExportPersonalDataRequest>,
    ) -> Result<Answer<AcceptedNoContent<ExportAcceptedHeaders>>, GraphError>;

    /// List directoryAudits: the audit trail of the caller's tenant, newest first.
    #[endpoint {
        method = GET,
        path = "/auditLogs/directoryAudits",
        operation_id = "auditLogs.ListDirectoryAudits",
        tags = ["auditLogs.directoryAudit"],
    }]
    async fn list_directory_audits(
        rqctx: RequestContext<Self::Context>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<DirectoryAuditCollection>>, GraphError>;

    /// Get directoryAudit: one event of the audit trail.
    #[endpoint {
        method = GET,
        path = "/auditLogs/directoryAudits/{directoryAudit-id}",
        operation_id = "auditLogs.GetDirectoryAudits",
        tags = ["auditLogs.directoryAudit"],
    }]
    async fn get_directory_audit(
        rqctx: RequestContext<Self::Context>,
        path: Path<DirectoryAuditPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<ShapedOk<DirectoryAudit>>, GraphError>;

    /// List subjectRightsRequests: the caller's tenant's requests.
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests",
        operation_id = "security.ListSubjectRightsRequests",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn list_subject_rights_requests(
        rqctx: RequestContext<Self::Context>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequestCollection>>, GraphError>;

    /// Create subjectRightsRequest.
    #[endpoint {
        method = POST,
        path = "/security/subjectRightsRequests",
        operation_id = "security.CreateSubjectRightsRequests",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn create_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedCreated<SubjectRightsRequest>>, GraphError>;

    /// Get subjectRightsRequest.
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}",
        operation_id = "security.GetSubjectRightsRequests",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn get_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCountOf<SubjectRightsRequest>>, GraphError>;

    /// Update subjectRightsRequest.
    #[endpoint {
        method = PATCH,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}",
        operation_id = "security.UpdateSubjectRightsRequests",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn update_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError>;

    /// List notes of a subjectRightsRequest.
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/notes",
        operation_id = "security.subjectRightsRequests.ListNotes",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn list_subject_rights_request_notes(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<AuthoredNoteCollection>>, GraphError>;

    /// Create authoredNote on a subjectRightsRequest.
    #[endpoint {
        method = POST,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/notes",
        operation_id = "security.subjectRightsRequests.CreateNotes",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn create_subject_rights_request_note(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<AuthoredNote>,
    ) -> Result<Answer<ShapedCreated<AuthoredNote>>, GraphError>;

    /// Invoke function getFinalReport: the request's report, as text.
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/getFinalReport()",
        operation_id = "security.subjectRightsRequests.subjectRightsRequest.getFinalReport",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn get_final_report(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError>;

    /// Invoke function getFinalAttachment: a zip of everything collected.
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/getFinalAttachment()",
        operation_id = "security.subjectRightsRequests.subjectRightsRequest.getFinalAttachment",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn get_final_attachment(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError>;

    /// Go on past the point where the request waits (dpo edit: Graph does this from Microsoft Purview's UI).
    #[endpoint {
        method = POST,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/approve",
        operation_id = "security.subjectRightsRequests.subjectRightsRequest.approve",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn approve_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError>;

    /// Close the request where it waits, without going on (dpo edit: Graph does this from Microsoft Purview's UI).
    #[endpoint {
        method = POST,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/reject",
        operation_id = "security.subjectRightsRequests.subjectRightsRequest.reject",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn reject_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError>;

    /// Resolve a request whose report is done (dpo edit: Graph does this from Microsoft Purview's UI).
    #[endpoint {
        method = POST,
        path = "/security/subjectRightsRequests/{subjectRightsRequest-id}/close",
        operation_id = "security.subjectRightsRequests.subjectRightsRequest.close",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn close_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<RequestAction>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError>;

    /// List subjectRightsRequests (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests",
        operation_id = "privacy.ListSubjectRightsRequests",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_list_subject_rights_requests(
        rqctx: RequestContext<Self::Context>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequestCollection>>, GraphError>;

    /// Create subjectRightsRequest (deprecated path).
    #[endpoint {
        method = POST,
        path = "/privacy/subjectRightsRequests",
        operation_id = "privacy.CreateSubjectRightsRequests",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_create_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedCreated<SubjectRightsRequest>>, GraphError>;

    /// Get subjectRightsRequest (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}",
        operation_id = "privacy.GetSubjectRightsRequests",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_get_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        query: ODataQuery<GetQuery>,
    ) -> Result<Answer<EntityOrCountOf<SubjectRightsRequest>>, GraphError>;

    /// Update subjectRightsRequest (deprecated path).
    #[endpoint {
        method = PATCH,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}",
        operation_id = "privacy.UpdateSubjectRightsRequests",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_update_subject_rights_request(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<SubjectRightsRequest>,
    ) -> Result<Answer<ShapedOk<SubjectRightsRequest>>, GraphError>;

    /// List notes (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}/notes",
        operation_id = "privacy.subjectRightsRequests.ListNotes",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_list_subject_rights_request_notes(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        query: ODataQuery<ListQuery>,
    ) -> Result<Answer<ShapedOk<AuthoredNoteCollection>>, GraphError>;

    /// Create authoredNote (deprecated path).
    #[endpoint {
        method = POST,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}/notes",
        operation_id = "privacy.subjectRightsRequests.CreateNotes",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_create_subject_rights_request_note(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
        body: CheckedBody<AuthoredNote>,
    ) -> Result<Answer<ShapedCreated<AuthoredNote>>, GraphError>;

    /// Invoke function getFinalReport (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}/getFinalReport()",
        operation_id = "privacy.subjectRightsRequests.subjectRightsRequest.getFinalReport",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_get_final_report(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError>;

    /// Invoke function getFinalAttachment (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests/{subjectRightsRequest-id}/getFinalAttachment()",
        operation_id = "privacy.subjectRightsRequests.subjectRightsRequest.getFinalAttachment",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_get_final_attachment(
        rqctx: RequestContext<Self::Context>,
        path: Path<RequestPath>,
    ) -> Result<Answer<Download>, GraphError>;
}

/// `GET /dataPolicyOperations/$count`, for the OpenAPI document only.
///
/// dropshot's router refuses a literal segment (`$count`) beside a variable one (`{dataPolicyOperation-id}`),
/// so the server answers `$count` from [`DataPolicyOperationsApi::get_data_policy_operation`] and this
/// trait only describes the operation; [`crate::document`] merges both descriptions.
#[dropshot::api_description]
pub trait CountApi {
    /// Unused: this API is never served.
    type Context: Send + Sync + 'static;

    /// Get the number of the resource.
    #[endpoint {
        method = GET,
        path = "/dataPolicyOperations/$count",
        operation_id = "dataPolicyOperations.GetCount-b129",
        tags = ["dataPolicyOperations.dataPolicyOperation"],
    }]
    async fn count_data_policy_operations(
        rqctx: RequestContext<Self::Context>,
        query: Query<CountQuery>,
    ) -> Result<HttpResponseOk<ODataCountResponse>, GraphError>;

    /// Get the number of subject rights requests (answered by the request's `{id}` handler).
    #[endpoint {
        method = GET,
        path = "/security/subjectRightsRequests/$count",
        operation_id = "security.subjectRightsRequests.GetCount",
        tags = ["security.subjectRightsRequest"],
    }]
    async fn count_subject_rights_requests(
        rqctx: RequestContext<Self::Context>,
        query: Query<CountQuery>,
    ) -> Result<HttpResponseOk<ODataCountResponse>, GraphError>;

    /// Get the number of subject rights requests (deprecated path).
    #[endpoint {
        method = GET,
        path = "/privacy/subjectRightsRequests/$count",
        operation_id = "privacy.subjectRightsRequests.GetCount",
        tags = ["privacy.subjectRightsRequest"],
    }]
    async fn privacy_count_subject_rights_requests(
        rqctx: RequestContext<Self::Context>,
        query: Query<CountQuery>,
    ) -> Result<HttpResponseOk<ODataCountResponse>, GraphError>;
}

/// Microsoft's `ODataCountResponse`: the count, as an int32.
#[derive(serde::Serialize, schemars::JsonSchema)]
#[schemars(rename = "ODataCountResponse")]
pub struct ODataCountResponse(pub i32);
