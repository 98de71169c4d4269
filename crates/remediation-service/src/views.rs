//! Read models shared by the adapters: the limits view, emergency-access freshness and the
//! next step an action waits for. Times come from the runtime's clock.

use remediation_core::{Action, ActionId, Actor, State};
use remediation_limiter::{Limits, Usage};
use remediation_runtime::Runtime;
use time::OffsetDateTime;

use crate::ServiceError;

/// The blast-radius limits, their current usage and the breaker.
#[derive(Debug, Clone)]
pub struct LimitsReport {
    /// Whether the circuit breaker is tripped.
    pub breaker_tripped: bool,
    /// Usage of every window with executions in it, now.
    pub usage: Vec<Usage>,
    /// The limits in force.
    pub limits: Limits,
}

/// The limits view: every window's usage at the runtime clock's now, and the breaker.
pub async fn limits(runtime: &Runtime) -> Result<LimitsReport, ServiceError> {
    let engine = runtime.active().await?.engine;
    let limits = runtime.limits().clone();
    let now = runtime.clock().now();
    let slots = engine.store().slots_since(now - limits.longest_window()).await?;
    let usage = limits.usage(&slots, now);
    let breaker_tripped = engine.safety_state().await?.breaker_tripped;
    Ok(LimitsReport { breaker_tripped, usage, limits })
}

/// Resets the circuit breaker (the engine requires an admin and a reason) and returns the
/// limits view after it.
pub async fn reset_breaker(runtime: &Runtime, actor: &Actor, reason: String) -> Result<LimitsReport, ServiceError> {
    runtime.active().await?.engine.reset_breaker(actor, reason).await?;
    limits(runtime).await
}

/// The last break-glass verification and whether it is recent enough for auto actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmergencyAccess {
    /// When it was last verified.
    pub verified_at: Option<OffsetDateTime>,
    /// The note of that verification.
    pub note: Option<String>,
    /// How old a verification may be (policy `emergency_access_max_age_days`).
    pub max_age_days: u32,
    /// Whether the last verification is at most that old now (runtime clock).
    pub fresh: bool,
}

/// Emergency access: records a verification when `verify` carries its note (the engine decides
/// who may), then reports the state and its freshness under the policy in force.
pub async fn emergency_access(
    runtime: &Runtime,
    actor: &Actor,
    verify: Option<String>,
) -> Result<EmergencyAccess, ServiceError> {
    let active = runtime.active().await?;
    if let Some(note) = verify {
        active.engine.verify_emergency_access(actor, note).await?;
    }
    let state = active.engine.safety_state().await?;
    let max_age_days = active.settings.emergency_access_max_age_days;
    let max = time::Duration::days(i64::from(max_age_days));
    let now = runtime.clock().now();
    let fresh = state.emergency_access_verified_at.is_some_and(|at| now - at <= max);
    Ok(EmergencyAccess {
        verified_at: state.emergency_access_verified_at,
        note: state.emergency_access_note,
        max_age_days,
        fresh,
    })
}

/// What an action waits for next, for the adapters to phrase.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    /// Another approver approves it.
    Approve(ActionId),
    /// It may be executed (a dry run first is possible).
    Execute(ActionId),
    /// Advisory only; an admin may promote it to a request for approval.
    Promote(ActionId),
    /// A dry run: nothing was written; suggest again to act.
    SuggestAgain,
    /// A requested rollback: another approver approves it, or rejects it to keep the change.
    DecideRollback(ActionId),
}

/// The next step `action` waits for, if any.
pub fn next_step(action: &Action) -> Option<NextStep> {
    match action.state {
        State::PendingApproval => Some(NextStep::Approve(action.id)),
        State::Approved => Some(NextStep::Execute(action.id)),
        State::Suggested => Some(NextStep::Promote(action.id)),
        State::DryRun => Some(NextStep::SuggestAgain),
        State::RollbackRequested => Some(NextStep::DecideRollback(action.id)),
        _ => None,
    }
}
