//! Where a subject rights request stands among its stages, and how it moves on: read by the server (which
//! actions apply) and by the worker that runs the stages (what to do next), so both read a request alike.

use chrono::{DateTime, Utc};
use dpo_model::subject_rights::{
    Identity, IdentitySet, PublicError, SubjectRightsRequest, SubjectRightsRequestHistory,
    SubjectRightsRequestStage as Stage, SubjectRightsRequestStageDetail,
    SubjectRightsRequestStageStatus as StageStatus, SubjectRightsRequestStatus, SubjectRightsRequestType,
};

/// The stages of a request of `kind`, in order.
pub fn stages_of(kind: SubjectRightsRequestType) -> Vec<Stage> {
    match kind {
        SubjectRightsRequestType::Delete => {
            vec![
                Stage::ContentEstimate,
                Stage::Approval,
                Stage::ContentDeletion,
                Stage::GenerateReport,
                Stage::CaseResolved,
            ]
        }
        _ => vec![Stage::ContentEstimate, Stage::ContentRetrieval, Stage::GenerateReport, Stage::CaseResolved],
    }
}

/// The stages of a new request of `kind`, none started.
pub fn not_started(kind: SubjectRightsRequestType) -> Vec<SubjectRightsRequestStageDetail> {
    stages_of(kind)
        .into_iter()
        .map(|stage| SubjectRightsRequestStageDetail {
            stage: Some(stage),
            status: Some(StageStatus::NotStarted),
            ..Default::default()
        })
        .collect()
}

/// The stage a request is at: the first that has not completed, with its status (the last stage, completed,
/// when all have).
pub fn current_stage(r: &SubjectRightsRequest) -> (&'static str, &'static str) {
    let at = r.stages.iter().find(|s| s.status != Some(StageStatus::Completed)).or(r.stages.last());
    match at {
        Some(s) => (
            s.stage.map_or("unknownFutureValue", Stage::as_str),
            s.status.map_or("unknownFutureValue", StageStatus::as_str),
        ),
        None => ("unknownFutureValue", "unknownFutureValue"),
    }
}

/// The detail of `stage` in the request, if it has that stage.
pub fn stage_mut(r: &mut SubjectRightsRequest, stage: Stage) -> Option<&mut SubjectRightsRequestStageDetail> {
    r.stages.iter_mut().find(|s| s.stage == Some(stage))
}

fn has(r: &SubjectRightsRequest, stage: Stage, status: StageStatus) -> bool {
    r.stages.iter().any(|s| s.stage == Some(stage) && s.status == Some(status))
}

/// Where the request waits for a person, if it does: at a stage that failed (approving runs it again), at
/// `approval` while it is current, or right after a completed estimate when `pauseAfterEstimate` is true
/// and nothing after it has started.
pub fn waiting_at(r: &SubjectRightsRequest) -> Option<Stage> {
    if r.status != Some(SubjectRightsRequestStatus::Active) {
        return None;
    }
    if let Some(failed) = r.stages.iter().find(|s| s.status == Some(StageStatus::Failed)) {
        return failed.stage;
    }
    if has(r, Stage::Approval, StageStatus::Current) {
        return Some(Stage::Approval);
    }
    let estimate = r.stages.iter().position(|s| s.stage == Some(Stage::ContentEstimate))?;
    let next = r.stages.get(estimate + 1)?;
    (r.stages[estimate].status == Some(StageStatus::Completed)
        && r.pause_after_estimate == Some(true)
        && next.status == Some(StageStatus::NotStarted))
    .then_some(Stage::ContentEstimate)
}

/// Whether a person approved the request at its `approval` stage (a request without one never is).
pub fn approved(r: &SubjectRightsRequest) -> bool {
    has(r, Stage::Approval, StageStatus::Completed)
        && r.history.iter().any(|h| h.stage == Some(Stage::Approval) && h.kind.as_deref() == Some("approved"))
}

/// Whether the report is done (`generateReport` completed): the report and the zip can be had.
pub fn report_done(r: &SubjectRightsRequest) -> bool {
    has(r, Stage::GenerateReport, StageStatus::Completed)
}

/// What the worker of a request does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Work {
    /// Count what each source holds of the person (`contentEstimate`).
    Estimate,
    /// Copy the person's data into the request store (`contentRetrieval`).
    Retrieve,
    /// Erase the person's data through the sources, then verify (`contentDeletion`, once approved).
    Erase,
    /// Write the report and the page for the person (`generateReport`).
    Report,
    /// Nothing until a person acts (approves, rejects, closes), or the request is closed.
    Wait,
}

/// What the worker of `r` does next.
pub fn next_work(r: &SubjectRightsRequest) -> Work {
    if r.status != Some(SubjectRightsRequestStatus::Active) || waiting_at(r).is_some() {
        return Work::Wait;
    }
    let Some(at) = r.stages.iter().find(|s| s.status != Some(StageStatus::Completed)) else { return Work::Wait };
    match at.stage {
        Some(Stage::ContentEstimate) => Work::Estimate,
        Some(Stage::ContentRetrieval) => Work::Retrieve,
        Some(Stage::ContentDeletion) if approved(r) => Work::Erase,
        Some(Stage::GenerateReport) => Work::Report,
        _ => Work::Wait,
    }
}

/// Who the stages' own changes are by: dpo, as an application.
pub fn dpo_itself() -> IdentitySet {
    IdentitySet {
        application: Some(Identity { display_name: Some("dpo".into()), id: None, odata_type: None }),
        ..Default::default()
    }
}

/// Sets `stage` to `status` (with `error` when it failed), and appends the change to the history as `kind`
/// by `who` at `now`.
pub fn set_stage(
    r: &mut SubjectRightsRequest,
    stage: Stage,
    status: StageStatus,
    error: Option<PublicError>,
    kind: &str,
    who: &IdentitySet,
    now: DateTime<Utc>,
) {
    if let Some(detail) = stage_mut(r, stage) {
        detail.status = Some(status);
        detail.error = error;
    }
    r.history.push(SubjectRightsRequestHistory {
        changed_by: Some(who.clone()),
        event_date_time: Some(now),
        stage: Some(stage),
        stage_status: Some(status),
        kind: Some(kind.into()),
        odata_type: None,
    });
}

/// The stage after `stage` in the request, if any.
pub fn after(r: &SubjectRightsRequest, stage: Stage) -> Option<Stage> {
    let at = r.stages.iter().position(|s| s.stage == Some(stage))?;
    r.stages.get(at + 1).and_then(|s| s.stage)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pause: bool) -> SubjectRightsRequest {
        SubjectRightsRequest {
            status: Some(SubjectRightsRequestStatus::Active),
            pause_after_estimate: Some(pause),
            stages: not_started(SubjectRightsRequestType::Access),
            ..Default::default()
        }
    }

    #[test]
    fn the_work_follows_the_stages_and_stops_where_a_person_decides() {
        let now = Utc::now();
        let who = dpo_itself();
        let mut r = request(true);
        assert_eq!(next_work(&r), Work::Estimate);
        set_stage(&mut r, Stage::ContentEstimate, StageStatus::Completed, None, "stageCompleted", &who, now);
        assert_eq!(next_work(&r), Work::Wait, "pauseAfterEstimate waits for a person");
        assert_eq!(waiting_at(&r), Some(Stage::ContentEstimate));
        let mut r2 = r.clone();
        r2.pause_after_estimate = Some(false);
        assert_eq!(next_work(&r2), Work::Retrieve);
        set_stage(&mut r2, Stage::ContentRetrieval, StageStatus::Failed, None, "stageFailed", &who, now);
        assert_eq!((next_work(&r2), waiting_at(&r2)), (Work::Wait, Some(Stage::ContentRetrieval)));
        set_stage(&mut r2, Stage::ContentRetrieval, StageStatus::Completed, None, "stageCompleted", &who, now);
        assert_eq!(next_work(&r2), Work::Report);
        set_stage(&mut r2, Stage::GenerateReport, StageStatus::Completed, None, "stageCompleted", &who, now);
        assert!(report_done(&r2));
        assert_eq!(next_work(&r2), Work::Wait, "caseResolved waits for close");
        assert_eq!(r2.history.len(), 4);
        r.status = Some(SubjectRightsRequestStatus::Closed);
        assert_eq!(next_work(&r), Work::Wait);
    }

    #[test]
    fn a_delete_request_erases_only_once_a_person_approved_it() {
        let now = Utc::now();
        let who = dpo_itself();
        let mut r = request(false);
        r.stages = not_started(SubjectRightsRequestType::Delete);
        set_stage(&mut r, Stage::ContentEstimate, StageStatus::Completed, None, "stageCompleted", &who, now);
        set_stage(&mut r, Stage::Approval, StageStatus::Current, None, "stageStarted", &who, now);
        assert_eq!((next_work(&r), waiting_at(&r)), (Work::Wait, Some(Stage::Approval)));
        // Marked so without an approval (a hand-edited row, a bug elsewhere): still nothing is erased.
        let mut forged = r.clone();
        set_stage(&mut forged, Stage::Approval, StageStatus::Completed, None, "stageCompleted", &who, now);
        set_stage(&mut forged, Stage::ContentDeletion, StageStatus::Current, None, "stageStarted", &who, now);
        assert_eq!(next_work(&forged), Work::Wait);
        set_stage(&mut r, Stage::Approval, StageStatus::Completed, None, "approved", &who, now);
        set_stage(&mut r, Stage::ContentDeletion, StageStatus::Current, None, "stageStarted", &who, now);
        assert!(approved(&r));
        assert_eq!(next_work(&r), Work::Erase);
    }
}
