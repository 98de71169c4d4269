//! The background worker: each tick expires stale approvals and, holding the data directory's
//! executor lock (so a CLI and the server never execute at once), reconciles interrupted
//! actions and executes approved ones, one at a time, until asked to stop.
//!
//! A refusal by a gate (remediation disabled, a stale break-glass check, ...) is recorded in
//! the audit when the worker first meets it; later ticks leave the action alone until the
//! safety state (settings, switches, break-glass check) changes, or for an hour, so a waiting
//! action does not grow the audit at every tick.
//!
//! Rollback windows need no closing step: the engine refuses a rollback once the window has
//! passed, and the deadline is kept on each action.

use remediation_core::{ActionFilter, Actor, EngineError, State};

use crate::ApiState;
use crate::error::ApiError;

/// How long the worker leaves an action a gate refused before it asks again while nothing in
/// the installation's safety state changed.
pub const RECHECK_REFUSED_AFTER: time::Duration = time::Duration::hours(1);

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TickReport {
    /// Actions expired (not approved in time).
    pub expired: usize,
    /// Interrupted actions reconciled.
    pub recovered: usize,
    /// Approved actions executed (whatever their outcome).
    pub executed: usize,
    /// True when another process held the executor lock, so nothing was executed.
    pub lock_busy: bool,
}

/// Runs one tick. Checks [`ApiState::is_shutting_down`] before claiming each action, so a
/// shutdown finishes the execution in flight and claims nothing more.
pub async fn tick(state: &ApiState) -> Result<TickReport, ApiError> {
    let mut report = TickReport::default();
    let engine = state.runtime().active().await?.engine;
    for a in engine.expire_stale().await? {
        tracing::info!(action_id = %a.id, "expired: not approved in time");
        report.expired += 1;
    }
    for c in state.runtime().expire_changes()? {
        tracing::info!(pending_change = %c.id, summary = %c.summary, "pending change expired: not confirmed in time");
    }
    if state.is_shutting_down() {
        return Ok(report);
    }
    let Some(_lock) = state.runtime().try_executor_lock()? else {
        tracing::debug!("executor lock busy (a CLI is executing); trying again next tick");
        report.lock_busy = true;
        return Ok(report);
    };
    for r in engine.recover().await? {
        tracing::warn!(action_id = %r.id, from = %r.from, to = %r.to, note = %r.note, "recovered an interrupted action");
        report.recovered += 1;
    }
    let approved = engine.list(&ActionFilter { state: Some(State::Approved), ..ActionFilter::default() }).await?;
    state.refused().retain(|id, _| approved.iter().any(|a| a.id == *id));
    let system = Actor::system();
    for action in approved {
        if state.is_shutting_down() {
            break;
        }
        // A gate that refused this action at an earlier tick was recorded then. While the
        // installation's safety state is unchanged the answer would be the same, so the worker
        // waits (up to an hour, for refusals that depend on the provider) instead of asking,
        // and recording, again at every tick.
        let safety = engine.safety_state().await?;
        let now = state.runtime().clock().now();
        if let Some(seen) = state.refused().get(&action.id)
            && seen.safety == safety
            && now - seen.at < RECHECK_REFUSED_AFTER
        {
            tracing::debug!(action_id = %action.id, rule = %seen.rule, "still refused; recorded once already");
            continue;
        }
        let started = std::time::Instant::now();
        match engine.execute(action.id, &system, false).await {
            Ok(outcome) => {
                state.refused().remove(&action.id);
                state.metrics().record_execution(&outcome, started.elapsed(), state.runtime().clock().now());
                let (id, to) = outcome_summary(&outcome);
                tracing::info!(action_id = %id, outcome = to, "worker executed an approved action");
                report.executed += 1;
            }
            // Another process (or request) moved it meanwhile, or a gate refused: logged, and
            // the next tick looks again.
            Err(e) => {
                if let EngineError::Refused { rule, .. } = &e {
                    state.refused().insert(action.id, crate::Refusal { rule: rule.clone(), safety, at: now });
                }
                let e = ApiError::from(e);
                tracing::warn!(action_id = %action.id, code = e.code, error = %e.message, "worker could not execute");
            }
        }
    }
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
