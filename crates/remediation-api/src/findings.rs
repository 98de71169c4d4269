//! Finding intake: `POST /v1/findings` turns a scanner's finding into a suggestion by the
//! mode policy, at most once per (control, target). Targets compare by the provider's
//! canonical id when the actions carry one, so a finding that names an account by another
//! name (an alias, a login instead of an id) finds the action already taken on it.
//!
//! - An open action (suggested, pending approval, approved, held, executing, rolling back)
//!   for the same control and target is returned with 200: a periodic scanner never creates
//!   the same action twice.
//! - When the latest action for the pair completed, the fix did not hold: the
//!   `RemediationDidNotHold` event is emitted. With the policy setting
//!   `redo_fixes_that_did_not_hold` on and a low-risk reversible kind (revoke, reduce or
//!   notify, with a `reversible` capability), the old action is rolled back as `system`
//!   (best effort: a target that drifted cannot be restored, and that is reported) and a
//!   fresh action is suggested (201). Otherwise the completed action is returned with 200
//!   and `intake: "did_not_hold"`, for a person to decide.
//! - Anything else (no action yet, or the last one rolled back, failed, was rejected,
//!   cancelled or expired) creates a new action (201, or 202 when a gate dropped it to manual).
//!
//! Without a `connector`, the first configured connector whose capabilities support the
//! suggested kind for the target's grant type is used; 400 when none does.

use axum::extract::State as AxState;
use axum::http::StatusCode;
use axum::response::Response;
use remediation_core::{
    Action, ActionFilter, ActionKind, Actor, EngineEvent, Finding, Reversibility, Role, State, find_capability,
};
use serde_json::json;

use crate::ApiState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::ApiJson;
use crate::handlers::{reply, suggestion_status, suggestion_view};

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

fn existing_view(action: Action, intake: &str) -> serde_json::Value {
    json!({"action": action, "plan": null, "decision": null, "guidance": null, "intake": intake})
}

pub(crate) async fn intake(
    AxState(state): AxState<ApiState>,
    caller: Caller,
    ApiJson(finding): ApiJson<Finding>,
) -> Result<Response, ApiError> {
    let actor = caller.require(Role::Requester)?;
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
    let candidates: Vec<Action> = engine
        .list(&ActionFilter::default())
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
        state
            .runtime()
            .events()
            .emit(&EngineEvent::RemediationDidNotHold {
                action_id: last.id,
                control_id: finding.control_id.clone(),
                target: finding.target.clone(),
            })
            .await;
        tracing::warn!(action_id = %last.id, control_id = %finding.control_id, "remediation did not hold");
        let reversible = engine.connectors().find(|c| c.id() == last.connector).and_then(|c| {
            find_capability(&c.capabilities(), last.kind.name(), &last.target).map(|cap| cap.reversibility)
        }) == Some(Reversibility::Reversible);
        let low_risk = matches!(last.kind, ActionKind::Revoke | ActionKind::Reduce { .. } | ActionKind::Notify);
        if !(active.settings.redo_fixes_that_did_not_hold && reversible && low_risk) {
            return Ok(reply(StatusCode::OK, &existing_view(last, "did_not_hold")));
        }
        let rolled_back = {
            let _lock = state.executor_lock().await?;
            engine.rollback(last.id, &Actor::system(), Some("finding arrived again: the fix did not hold".into())).await
        };
        match rolled_back {
            Ok(outcome) => state.metrics().record_rollback(&outcome),
            Err(e) => tracing::warn!(action_id = %last.id, error = %e, "could not roll back the fix that did not hold"),
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
