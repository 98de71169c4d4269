//! The use cases that write to a provider: execute, force-execute, roll back, approve a
//! requested rollback, and recover what an interrupted worker left behind.
//!
//! Every one runs under the engine's lease on the action (see
//! [`remediation_core::Engine::with_leases`]; the runtime always configures one), so any
//! number of workers, in any number of processes sharing the store, execute at once and never
//! execute one action twice. Before it acts, each write first settles the actions whose lease
//! expired (their worker died) by the crash rule; actions leased to a live worker are left
//! alone. Each returns an [`Attempt`]: what was recovered (to print or log, whether or not the
//! write itself then succeeded) and the result. Adapters record their own metrics.

use remediation_core::{Action, ActionFilter, ActionId, Actor, ExecuteOutcome, Recovery, RollbackOutcome, State};
use remediation_runtime::Runtime;
use time::OffsetDateTime;

use crate::ServiceError;

/// A write use case's result, with the actions an interrupted worker left behind that were
/// settled before it (reported even when the write is then refused or fails).
#[derive(Debug)]
pub struct Attempt<T> {
    /// Actions whose worker's lease had expired, settled by the crash rule first.
    pub recovered: Vec<Recovery>,
    /// What the write itself came to.
    pub result: Result<T, ServiceError>,
}

impl<T> Attempt<T> {
    /// Hands each recovery to `report` (the adapter prints or logs it), then the result.
    pub fn report(self, report: impl FnMut(&Recovery)) -> Result<T, ServiceError> {
        self.recovered.iter().for_each(report);
        self.result
    }

    /// `work`'s result after `recovery`; a failed recovery is the attempt's error.
    async fn after(
        recovery: Result<Vec<Recovery>, ServiceError>,
        work: impl std::future::Future<Output = Result<T, ServiceError>>,
    ) -> Self {
        match recovery {
            Ok(recovered) => Self { recovered, result: work.await },
            Err(e) => Self { recovered: Vec::new(), result: Err(e) },
        }
    }
}

/// Settles the actions whose worker's lease expired, before a write.
async fn recover_expired(runtime: &Runtime) -> Result<Vec<Recovery>, ServiceError> {
    Ok(runtime.active().await?.engine.recover().await?)
}

/// What an execution came to.
#[derive(Debug)]
pub struct Executed {
    /// The outcome.
    pub outcome: ExecuteOutcome,
    /// The rollback deadline of a completed change (none for any other outcome, or an
    /// irreversible change).
    pub rollback_expires_at: Option<OffsetDateTime>,
}

/// What an approval did: approved a plan, or approved a requested rollback and ran it.
#[derive(Debug)]
pub enum Approval {
    /// The action was approved (it executes later, by a worker or `execute`).
    Approved(Action),
    /// The action was waiting for a rollback approval: the rollback ran.
    RolledBack(RollbackOutcome),
}

/// An action in `executing` or `rolling_back` whose lease is held by a live worker: recovery
/// leaves it to that worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StillLeased {
    /// The action.
    pub id: ActionId,
    /// Its state.
    pub state: State,
    /// The worker holding it.
    pub holder: String,
    /// When the lease lapses unless renewed; recovery may take the action over after it.
    pub expires_at: OffsetDateTime,
}

/// What a recovery did.
#[derive(Debug, Default)]
pub struct Recovered {
    /// Actions whose lease had expired, each settled by the crash rule.
    pub recovered: Vec<Recovery>,
    /// Actions still leased by a live worker, left untouched.
    pub still_leased: Vec<StillLeased>,
}

/// Settles every action whose worker's lease expired by the crash rule (the provider's live
/// state decides), and lists those a live worker still holds, untouched. Safe to run beside
/// any number of live workers.
pub async fn recover(runtime: &Runtime) -> Result<Recovered, ServiceError> {
    let engine = runtime.active().await?.engine;
    let recovered = engine.recover().await?;
    let now = runtime.clock().now();
    let mut still_leased = Vec::new();
    for state in [State::Executing, State::RollingBack] {
        for action in engine.list(&ActionFilter { state: Some(state), ..ActionFilter::default() }).await? {
            // One recovery could not settle (it could not read the target) is reported there.
            if recovered.iter().any(|r| r.id == action.id) {
                continue;
            }
            let lease = runtime.store().lease(action.id).await?;
            if let Some(lease) = lease.filter(|l| l.is_live(now)) {
                still_leased.push(StillLeased {
                    id: action.id,
                    state,
                    holder: lease.holder,
                    expires_at: lease.expires_at,
                });
            }
        }
    }
    Ok(Recovered { recovered, still_leased })
}

/// Executes an approved action (a dry run checks everything and writes nothing, and recovers
/// nothing first).
pub async fn execute(runtime: &Runtime, actor: &Actor, id: ActionId, dry_run: bool) -> Attempt<Executed> {
    let run = async {
        let outcome = runtime.active().await?.engine.execute(id, actor, dry_run).await?;
        executed(runtime, outcome).await
    };
    if dry_run {
        return Attempt { recovered: Vec::new(), result: run.await };
    }
    Attempt::after(recover_expired(runtime).await, run).await
}

/// Executes a held action despite its blast-radius limit (admin, with a reason).
pub async fn force_execute(runtime: &Runtime, actor: &Actor, id: ActionId, reason: String) -> Attempt<Executed> {
    let run = async {
        let outcome = runtime.active().await?.engine.force_execute(id, actor, reason).await?;
        executed(runtime, outcome).await
    };
    Attempt::after(recover_expired(runtime).await, run).await
}

/// The action an execution finished (completed or failed), if it finished one.
pub(crate) fn finished(outcome: &ExecuteOutcome) -> Option<&Action> {
    match outcome {
        ExecuteOutcome::Completed { action, .. } | ExecuteOutcome::Failed { action, .. } => Some(action),
        _ => None,
    }
}

/// Judges the controls of the auto actions that just finished for demotion
/// ([`crate::controls::review_finished`]). A failure to judge is logged, never the caller's
/// error: the write it follows has happened, and the next finished action judges again.
pub(crate) async fn review(runtime: &Runtime, finished: &[Action]) {
    if let Err(e) = crate::controls::review_finished(runtime, finished).await {
        tracing::warn!(error = %remediation_core::error_chain(&e), "cannot judge controls for automatic demotion");
    }
}

async fn executed(runtime: &Runtime, outcome: ExecuteOutcome) -> Result<Executed, ServiceError> {
    if let Some(action) = finished(&outcome) {
        review(runtime, std::slice::from_ref(action)).await;
    }
    let rollback_expires_at = match &outcome {
        ExecuteOutcome::Completed { action, .. } => {
            runtime.active().await?.engine.get(action.id).await?.rollback_expires_at
        }
        _ => None,
    };
    Ok(Executed { outcome, rollback_expires_at })
}

/// Rolls back a completed action, or requests the rollback when the policy wants a second
/// approver.
pub async fn rollback(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Attempt<RollbackOutcome> {
    let run = async {
        let outcome = runtime.active().await?.engine.rollback(id, actor, note).await?;
        review(runtime, std::slice::from_ref(outcome.action())).await;
        Ok(outcome)
    };
    Attempt::after(recover_expired(runtime).await, run).await
}

/// Approves a requested rollback and runs it (a different principal from the requester).
pub async fn approve_rollback(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Attempt<RollbackOutcome> {
    let run = async {
        let outcome = runtime.active().await?.engine.approve_rollback(id, actor, note).await?;
        review(runtime, std::slice::from_ref(outcome.action())).await;
        Ok(outcome)
    };
    Attempt::after(recover_expired(runtime).await, run).await
}

/// Approves what the action waits for: its plan ([`crate::approve`]), or, on a
/// `rollback_requested` action, the rollback, which then runs ([`approve_rollback`]).
pub async fn approve_or_roll_back(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Attempt<Approval> {
    let state = async { Ok::<_, ServiceError>(runtime.active().await?.engine.get(id).await?.action.state) };
    match state.await {
        Ok(State::RollbackRequested) => {
            let Attempt { recovered, result } = approve_rollback(runtime, actor, id, note).await;
            Attempt { recovered, result: result.map(Approval::RolledBack) }
        }
        Ok(_) => Attempt {
            recovered: Vec::new(),
            result: crate::approve(runtime, actor, id, note).await.map(Approval::Approved),
        },
        Err(e) => Attempt { recovered: Vec::new(), result: Err(e) },
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use remediation_config::{Config, ConnectorConfig};
    use remediation_core::{Target, failpoints};
    use remediation_runtime::RuntimeOptions;
    use remediation_testkit::{RequestBuilder, approver, requester};

    use super::*;

    /// Two runtimes (workers) on one data directory: the first dies right after it moved its
    /// action to `executing`; recovery by the second leaves the live lease alone and lists it.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recovery_lists_and_leaves_actions_a_live_worker_holds() {
        let dir = tempfile::tempdir().expect("tempdir");
        remediation_connector_sandbox::write_sample(dir.path().join("sandbox.json")).expect("sandbox");
        let mut config =
            Config { connectors: vec![ConnectorConfig::sandbox("sandbox", "sandbox.json")], ..Config::default() };
        config.policy.enabled = true;
        config.execution.lease_ttl_secs = 600;
        let dies = Arc::new(|name: &'static str| assert_ne!(name, failpoints::AFTER_BEGIN_EXECUTION, "crash"))
            as remediation_core::FailpointHook;
        let options = |failpoints| RuntimeOptions { failpoints, ..RuntimeOptions::default() };
        let dying = Arc::new(Runtime::build(&config, dir.path(), None, options(Some(dies))).expect("build"));
        let survivor = Runtime::build(&config, dir.path(), None, options(None)).expect("build");
        let engine = survivor.active().await.expect("active").engine;
        let request = |resource: &str| {
            let target = Target {
                identity: "alice".into(),
                resource: Some(resource.into()),
                grant: None,
                grant_type: "group_membership".into(),
            };
            RequestBuilder::new().target(target).build()
        };
        let mut ids = Vec::new();
        for resource in ["admins", "engineering"] {
            let s = engine.suggest(request(resource), &requester()).await.expect("suggest");
            engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
            ids.push(s.action.id);
        }
        let (first, second) = (ids[0], ids[1]);
        let worker = dying.clone();
        let died = tokio::spawn(async move { execute(&worker, &approver("bob"), first, false).await }).await;
        assert!(died.expect_err("the first worker dies").is_panic());

        let found = recover(&survivor).await.expect("recover");
        assert!(found.recovered.is_empty(), "{:?}", found.recovered);
        assert_eq!(found.still_leased.len(), 1, "{:?}", found.still_leased);
        let leased = &found.still_leased[0];
        assert_eq!((leased.id, leased.state, &leased.holder), (first, State::Executing, &dying.lease().holder));
        // The survivor executes another action meanwhile, and recovers nothing first.
        let done = execute(&survivor, &approver("bob"), second, false).await;
        assert!(done.recovered.is_empty());
        assert!(matches!(done.result.expect("execute").outcome, ExecuteOutcome::Completed { .. }));
        assert_eq!(engine.get(first).await.expect("get").action.state, State::Executing);
    }
}
