//! Finding intake, `POST /v1/findings`: an adapter over `remediation_service::intake`
//! (deduplication by control and canonical target, fixes that did not hold, connector
//! auto-selection). Statuses: an action already open, or a completed one read again
//! (`fix_holds`, `did_not_hold`), is 200; a new suggestion 201 (`created`, `redone`), or 202
//! when a gate dropped it to manual; no single healthy connector for a finding naming none
//! is 400 listing the candidates.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::{Finding, Role};
use remediation_service::Intake;
use serde_json::json;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::handlers::{reply, suggestion_status, suggestion_view};
use crate::types::FindingReply;

pub(crate) async fn intake(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(finding): ApiJson<Finding>,
) -> Result<Response, ApiError> {
    let about = json!({"finding_id": finding.id, "control_id": finding.control_id, "target": finding.target});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    let _serial = state.inner.intake.lock().await;
    let outcome = remediation_service::intake(state.runtime(), actor, &finding).await?;
    let label = outcome.label();
    Ok(match outcome {
        Intake::Existing(action) | Intake::FixHolds(action) | Intake::DidNotHold(action) => {
            reply(StatusCode::OK, &FindingReply { action, intake: label.to_owned() })
        }
        Intake::Created(s) | Intake::Redone(s) => reply(suggestion_status(&s), &suggestion_view(s, Some(label))),
    })
}
