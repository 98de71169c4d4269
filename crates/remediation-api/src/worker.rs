//! The background worker's adapter: runs the service layer's worker use case
//! ([`remediation_service::worker`]) every interval until asked to stop, logging what it does
//! (the metrics count executions from the audit log). The use case expires stale approvals, reconciles
//! interrupted actions and executes approved ones, several at once (`[execution]
//! concurrency`, `connector_concurrency`), round-robin across connectors.

use remediation_core::{Action, ActionId, EngineError, ExecuteOutcome, PendingChange, Recovery, State};
use remediation_service::worker::WorkerHooks;
pub use remediation_service::worker::{RETRY_REFUSED_AFTER, TickReport};
use time::OffsetDateTime;

use crate::ApiState;
use crate::error::ApiError;

/// Logs and counts for the worker, and tells it when the server is shutting down.
struct Hooks<'a>(&'a ApiState);

impl WorkerHooks for Hooks<'_> {
    fn stopping(&self) -> bool {
        self.0.is_shutting_down()
    }

    fn expired(&self, a: &Action) {
        if a.state == State::Completed {
            tracing::info!(action_id = %a.id, "rollback request closed: its rollback window ended");
        } else {
            tracing::info!(action_id = %a.id, "expired: not approved in time");
        }
    }

    fn change_expired(&self, c: &PendingChange) {
        tracing::info!(pending_change = %c.id, summary = %c.summary, "pending change expired: not confirmed in time");
    }

    fn recovered(&self, r: &Recovery) {
        tracing::warn!(action_id = %r.id, from = %r.from, to = %r.to, note = %r.note, "recovered an interrupted action");
    }

    fn executed(&self, outcome: &ExecuteOutcome, _took: std::time::Duration, _now: OffsetDateTime) {
        let (id, to) = outcome_summary(outcome);
        if let ExecuteOutcome::Requeued { not_before, .. } = outcome {
            tracing::info!(action_id = %id, %not_before, "provider throttled the execution; requeued");
        } else {
            tracing::info!(action_id = %id, outcome = to, "worker executed an approved action");
        }
    }

    fn refused(&self, id: ActionId, error: EngineError) {
        let e = ApiError::from(error);
        tracing::warn!(action_id = %id, code = e.code, error = %e.message, "worker was refused");
    }

    fn not_executed(&self, id: ActionId, error: EngineError) {
        let e = ApiError::from(error);
        tracing::warn!(action_id = %id, code = e.code, error = %e.message, "worker could not execute");
    }
}

/// Runs one tick (see [`remediation_service::worker::Worker::tick`]): checks
/// [`ApiState::is_shutting_down`] before claiming each action, so a shutdown finishes the
/// executions in flight and claims nothing more.
pub async fn tick(state: &ApiState) -> Result<TickReport, ApiError> {
    // Every tenant's actions, the default tenant's first; one tenant's failure does not
    // keep the others' approved actions waiting.
    let mut total = TickReport::default();
    let mut first_error = None;
    for runtime in state.installation().tenant_runtimes().await? {
        let scoped = state.scoped(runtime);
        match state.worker().tick(scoped.runtime(), &Hooks(&scoped)).await {
            Ok(r) => {
                total.expired += r.expired;
                total.recovered += r.recovered;
                total.executed += r.executed;
                total.requeued += r.requeued;
                total.left_alone += r.left_alone;
                total.max_in_flight = total.max_in_flight.max(r.max_in_flight);
                total.finished_auto.extend(r.finished_auto);
            }
            Err(e) => {
                let e = ApiError::from(e);
                tracing::error!(tenant = %scoped.runtime().tenant(), code = e.code, error = %e.message, "worker tick failed for a tenant");
                first_error.get_or_insert(e);
            }
        }
    }
    match first_error {
        Some(e) if total == TickReport::default() => Err(e),
        _ => Ok(total),
    }
}

/// Starts the event relay of every tenant other than the default one whose relay has sinks,
/// now and as tenants are created (looked for every `every`), until `stop`; returns when
/// asked to stop, after each relay it started finished.
pub async fn tenant_relays(state: ApiState, every: std::time::Duration, stop: tokio::sync::watch::Receiver<bool>) {
    let mut stop = stop;
    let mut started: std::collections::BTreeMap<remediation_core::TenantId, remediation_runtime::relay::RelayThread> =
        std::collections::BTreeMap::new();
    while !*stop.borrow() {
        match state.installation().tenant_runtimes().await {
            Ok(runtimes) => {
                for runtime in runtimes {
                    if runtime.tenant().is_default()
                        || started.contains_key(runtime.tenant())
                        || !runtime.relay().has_sinks()
                    {
                        continue;
                    }
                    if let Err(e) = runtime.relay().register().await {
                        tracing::warn!(tenant = %runtime.tenant(), error = %e, "cannot register a tenant's event sinks yet; the relay tries again");
                    }
                    match runtime.relay().clone().spawn(stop.clone()) {
                        Ok(thread) => {
                            started.insert(runtime.tenant().clone(), thread);
                        }
                        Err(e) => {
                            tracing::error!(tenant = %runtime.tenant(), error = %e, "cannot start a tenant's event relay")
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "cannot list the tenants for their event relays"),
        }
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => {}
        }
    }
    for (_, thread) in started {
        thread.join().await;
    }
}

fn outcome_summary(o: &ExecuteOutcome) -> (String, &'static str) {
    use ExecuteOutcome as O;
    match o {
        O::Completed { action, .. } => (action.id.to_string(), "completed"),
        O::Failed { action, .. } => (action.id.to_string(), "failed"),
        O::Held { action, .. } | O::HeldByBreaker { action } => (action.id.to_string(), "held"),
        O::PlanChanged { action, .. } => (action.id.to_string(), "plan_changed"),
        O::Requeued { action, .. } => (action.id.to_string(), "requeued"),
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

/// How often the server signs a tree head of the audit log at most.
pub const SIGN_INTERVAL: std::time::Duration = std::time::Duration::from_secs(1);

/// Signs a tree head over the audit log when it grew, at most once per [`SIGN_INTERVAL`] by
/// the runtime's clock (see [`remediation_service::sign_tree_head`]); a log that does not
/// extend the latest signed head is logged as an error and not signed over.
pub async fn sign(state: &ApiState) {
    match state.installation().tenant_runtimes().await {
        Ok(runtimes) => {
            for runtime in runtimes {
                sign_one(&state.scoped(runtime)).await;
            }
        }
        Err(e) => tracing::error!(error = %e, "cannot list the tenants to sign their audit logs"),
    }
}

/// [`sign`] for the tenant `state` serves.
async fn sign_one(state: &ApiState) {
    let min = time::Duration::try_from(SIGN_INTERVAL).unwrap_or(time::Duration::SECOND);
    match remediation_service::sign_tree_head(state.runtime(), Some(min)).await {
        Ok(Some(head)) => {
            tracing::debug!(tree_size = head.head.tree_size, key_id = %head.head.key_id, "signed a tree head");
        }
        Ok(None) => {}
        Err(e) => {
            let e = ApiError::from(e);
            tracing::error!(code = e.code, error = %e.message, "cannot sign a tree head of the audit log");
        }
    }
}

/// Signs tree heads (see [`sign`]) every [`SIGN_INTERVAL`] until `stop` resolves. Call
/// [`sign_final`] once the worker has stopped, so the last records are covered too.
pub async fn sign_loop(state: ApiState, stop: tokio::sync::watch::Receiver<bool>) {
    let mut stop = stop;
    if state.runtime().signing_key().is_none() {
        return;
    }
    while !*stop.borrow() {
        sign(&state).await;
        tokio::select! {
            _ = tokio::time::sleep(SIGN_INTERVAL) => {}
            _ = stop.changed() => {}
        }
    }
}

/// Signs a tree head over the log as it stands, whatever the debounce says: at shutdown.
pub async fn sign_final(state: &ApiState) {
    let runtimes = match state.installation().tenant_runtimes().await {
        Ok(runtimes) => runtimes,
        Err(e) => {
            tracing::error!(error = %e, "cannot list the tenants to sign their audit logs");
            vec![state.installation().clone()]
        }
    };
    for runtime in runtimes {
        if let Err(e) = runtime.store().sequence_pending().await {
            tracing::warn!(tenant = %runtime.tenant(), error = %e, "the last audit sequencer pass failed");
        }
        if let Err(e) = remediation_service::sign_tree_head(&runtime, None).await {
            let e = ApiError::from(e);
            tracing::error!(tenant = %runtime.tenant(), code = e.code, error = %e.message, "cannot sign the final tree head of the audit log");
        }
    }
}
