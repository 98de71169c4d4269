//! Finding intake: `POST /v1/findings` turns a scanner's finding into a suggestion by the
//! mode policy, at most once per (control, target). Targets compare by the provider's
//! canonical id when the actions carry one, so a finding that names an account by another
//! name (an alias, a login instead of an id) finds the action already taken on it.
//!
//! - An open action (suggested, pending approval, approved, held, executing, rolling back)
//!   for the same control and target is returned with 200: a periodic scanner never creates
//!   the same action twice.
//! - When the latest action for the pair completed, the finding is a claim to check, never a
//!   reason to undo anything: the target is read again. When the fix still holds (the same
//!   change would change nothing), the completed action is returned with 200 and
//!   `intake: "fix_holds"`. Only when the grant is really back is the
//!   `RemediationDidNotHold` event emitted; then, with the policy setting
//!   `redo_fixes_that_did_not_hold` on, a fresh action is suggested through the mode policy
//!   and gates (201 `redone`, or 202), else the completed action is returned with 200 and
//!   `intake: "did_not_hold"`, for a person to decide.
//! - Anything else (no action yet, or the last one rolled back, failed, was rejected,
//!   cancelled or expired) creates a new action (201, or 202 when a gate dropped it to manual).
//!
//! Without a `connector`, the first configured connector whose capabilities support the
//! suggested kind for the target's grant type is used; 400 when none does.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::{Action, ActionFilter, EngineEvent, Finding, FixCheck, Role, State, find_capability};
use serde_json::json;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::handlers::{reply, suggestion_status, suggestion_view};
use crate::types::FindingReply;

fn is_open(s: State) -> bool {
    matches!(
        s,
        State::Suggested
            | State::PendingApproval
            | State::Approved
            | State::Held
            | State::Executing
            | State::RollingBack
    )
}

fn existing_view(action: Action, intake: &str) -> FindingReply {
    FindingReply { action, intake: intake.to_owned() }
}

pub(crate) async fn intake(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(finding): ApiJson<Finding>,
) -> Result<Response, ApiError> {
    let about = json!({"finding_id": finding.id, "control_id": finding.control_id, "target": finding.target});
    let actor = caller.require_audited(&state, Role::Requester, "suggestion_refused", about).await?;
    let active = state.runtime().active().await?;
    let engine = active.engine;
    let connector = match &finding.connector {
        Some(c) => c.clone(),
        None => {
            let kind = finding.suggested_kind.name();
            state
                .runtime()
                .connectors()
                .iter()
                .find(|c| find_capability(&c.capabilities(), kind, &finding.target).is_some())
                .map(|c| c.id().to_owned())
                .ok_or_else(|| {
                    ApiError::invalid(
                        "connector",
                        format!(
                            "no configured connector can {kind} a grant of type `{}`; name one in `connector`",
                            finding.target.grant_type
                        ),
                    )
                })?
        }
    };
    let _serial = state.inner.intake.lock().await;
    // The store filters by control, so intake reads only this control's actions.
    let candidates: Vec<Action> = engine
        .list(&ActionFilter { control: Some(finding.control_id.clone()), ..ActionFilter::default() })
        .await?
        .into_iter()
        .filter(|a| a.control_id.as_deref() == Some(finding.control_id.as_str()) && a.state != State::DryRun)
        .collect();
    // Another name for the same target is the same target: when an earlier action of this
    // connector carries the provider's canonical id, the finding's target is resolved too (a
    // read; a target that cannot be read is left to `suggest` to report).
    let canonical =
        if candidates.iter().any(|a| a.connector == connector && a.canonical.is_some() && a.target != finding.target) {
            match engine.connectors().find(|c| c.id() == connector) {
                Some(c) => c.snapshot(&finding.target).await.ok().and_then(|s| s.canonical),
                None => None,
            }
        } else {
            None
        };
    let mut same: Vec<Action> = candidates
        .into_iter()
        .filter(|a| a.same_target(&finding.target, canonical.as_ref().filter(|_| a.connector == connector)))
        .collect();
    if let Some(open) = same.iter().find(|a| is_open(a.state)) {
        return Ok(reply(StatusCode::OK, &existing_view(open.clone(), "existing")));
    }
    let mut request = finding.to_request(&connector, false);
    if let Some(last) = same.pop().filter(|a| a.state == State::Completed) {
        // A finding is a claim, not a fact: the provider is read again, and only a grant that
        // is really back counts. Nothing is ever rolled back on a finding's word.
        let live = match engine.fix_holds(last.id).await? {
            FixCheck::Holds => return Ok(reply(StatusCode::OK, &existing_view(last, "fix_holds"))),
            FixCheck::Undone { live } => live,
        };
        state
            .runtime()
            .events()
            .emit(&EngineEvent::RemediationDidNotHold {
                action_id: last.id,
                control_id: finding.control_id.clone(),
                target: finding.target.clone(),
            })
            .await;
        tracing::warn!(action_id = %last.id, control_id = %finding.control_id, live = %live.state, "remediation did not hold");
        if !active.settings.redo_fixes_that_did_not_hold {
            return Ok(reply(StatusCode::OK, &existing_view(last, "did_not_hold")));
        }
        request.reason = format!("{} (again: action {} did not hold)", request.reason, last.id);
        let s = engine.suggest(request, actor).await?;
        let status = suggestion_status(&s);
        return Ok(reply(status, &suggestion_view(s, Some("redone"))));
    }
    let s = engine.suggest(request, actor).await?;
    let status = suggestion_status(&s);
    Ok(reply(status, &suggestion_view(s, Some("created"))))
}
