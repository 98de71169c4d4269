//! The background worker: each tick expires stale approvals, reconciles actions whose worker's
//! lease expired, and executes approved ones, one at a time, each under a lease (so CLIs and
//! other servers on the same store execute beside it), until asked to stop.
//!
//! An approved action whose execution is refused (remediation disabled, the kill switch, a
//! disabled control, a refusing gate) is audited once by the engine and then left alone: later
//! ticks skip it until the safety state (switches and settings) or the action changes, or
//! [`RETRY_REFUSED_AFTER`] has passed (a refusal for a reason outside the store, such as an
//! unhealthy connector, may pass by itself; the engine does not audit an identical refusal again).
//!
//! Rollback windows need no closing step of their own: the engine refuses a rollback once the
//! window has passed, and the deadline is kept on each action. A rollback request still waiting
//! for approval when its window closes is returned to `completed` by the same expiry sweep.

use std::sync::PoisonError;

use remediation_core::{ActionFilter, Actor, EngineError, State};
use time::OffsetDateTime;

use crate::ApiState;
use crate::error::ApiError;

/// How long the worker leaves an action a gate refused before it asks again while nothing in
/// the installation's safety state changed.
pub const RECHECK_REFUSED_AFTER: time::Duration = time::Duration::hours(1);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Actions expired (not approved in time), and rollback requests closed with their window.
    pub expired: usize,
    /// Interrupted actions reconciled.
    pub recovered: usize,
    /// Approved actions executed (whatever their outcome).
    pub executed: usize,
    /// Approved actions skipped because they were refused before and nothing changed since.
    pub left_alone: usize,
}

/// How long a refused action is left alone when nothing visible changes: 10 minutes.
pub const RETRY_REFUSED_AFTER: time::Duration = time::Duration::minutes(10);

/// What the worker saw when an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refusal {
    /// The safety state and the action's last change, as one string.
    seen: String,
    /// When.
    at: OffsetDateTime,
}

/// Runs one tick. Checks [`ApiState::is_shutting_down`] before claiming each action, so a
/// shutdown finishes the execution in flight and claims nothing more.
pub async fn tick(state: &ApiState) -> Result<TickReport, ApiError> {
    let mut report = TickReport::default();
    let engine = state.runtime().active().await?.engine;
    for a in engine.expire_stale().await? {
        if a.state == State::Completed {
            tracing::info!(action_id = %a.id, "rollback request closed: its rollback window ended");
        } else {
            tracing::info!(action_id = %a.id, "expired: not approved in time");
        }
        report.expired += 1;
    }
    for c in state.runtime().expire_changes().await? {
        tracing::info!(pending_change = %c.id, summary = %c.summary, "pending change expired: not confirmed in time");
    }
    if state.is_shutting_down() {
        return Ok(report);
    }
    for r in engine.recover().await? {
        tracing::warn!(action_id = %r.id, from = %r.from, to = %r.to, note = %r.note, "recovered an interrupted action");
        report.recovered += 1;
    }
    let approved = engine.list(&ActionFilter { state: Some(State::Approved), ..ActionFilter::default() }).await?;
    let system = Actor::system();
    let mut safety = serde_json::to_string(&engine.safety_state().await?).map_err(|e| ApiError::internal(&e))?;
    let mut refused = state.inner.refused.lock().unwrap_or_else(PoisonError::into_inner).clone();
    refused.retain(|id, _| approved.iter().any(|a| a.id == *id));
    for action in approved {
        if state.is_shutting_down() {
            break;
        }
        let now = state.runtime().clock().now();
        let seen = |safety: &str| format!("{safety}|{}", action.updated_at);
        if refused.get(&action.id).is_some_and(|r| r.seen == seen(&safety) && now - r.at < RETRY_REFUSED_AFTER) {
            report.left_alone += 1;
            continue;
        }
        let started = std::time::Instant::now();
        match engine.execute(action.id, &system, false).await {
            Ok(outcome) => {
                refused.remove(&action.id);
                state.metrics().record_execution(&outcome, started.elapsed(), now);
                let (id, to) = outcome_summary(&outcome);
                tracing::info!(action_id = %id, outcome = to, "worker executed an approved action");
                report.executed += 1;
            }
            // Refused: audited once by the engine, then left alone until something changes.
            Err(e @ EngineError::Refused { .. }) => {
                // What refused it may have changed during this tick: remember the state as
                // it is now.
                safety = serde_json::to_string(&engine.safety_state().await?).map_err(|e| ApiError::internal(&e))?;
                refused.insert(action.id, Refusal { seen: seen(&safety), at: now });
                let e = ApiError::from(e);
                tracing::warn!(action_id = %action.id, code = e.code, error = %e.message, "worker was refused");
            }
            // Another process (or request) moved it meanwhile, or the provider failed:
            // logged, and the next tick looks again.
            Err(e) => {
                let e = ApiError::from(e);
                tracing::warn!(action_id = %action.id, code = e.code, error = %e.message, "worker could not execute");
            }
        }
    }
    *state.inner.refused.lock().unwrap_or_else(PoisonError::into_inner) = refused;
    Ok(report)
}

fn outcome_summary(o: &remediation_core::ExecuteOutcome) -> (String, &'static str) {
    use remediation_core::ExecuteOutcome as O;
    match o {
        O::Completed { action, .. } => (action.id.to_string(), "completed"),
        O::Failed { action, .. } => (action.id.to_string(), "failed"),
        O::Held { action, .. } | O::HeldByBreaker { action } => (action.id.to_string(), "held"),
        O::PlanChanged { action, .. } => (action.id.to_string(), "plan_changed"),
        O::DryRun { .. } => (String::new(), "dry_run"),
    }
}

/// Runs ticks every `interval` until `stop` resolves; the tick in flight finishes first.
pub async fn run(state: ApiState, interval: std::time::Duration, stop: tokio::sync::watch::Receiver<bool>) {
    let mut stop = stop;
    loop {
        if *stop.borrow() {
            break;
        }
        match tick(&state).await {
            Ok(r) if r != TickReport::default() => tracing::debug!(?r, "worker tick"),
            Ok(_) => {}
            Err(e) => tracing::error!(code = e.code, error = %e.message, "worker tick failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(interval) => {}
            _ = stop.changed() => {}
        }
    }
    tracing::info!("worker stopped");
}
