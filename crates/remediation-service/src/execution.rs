//! The use cases that write to a provider: execute, force-execute, roll back, approve a
//! requested rollback, and recover what an interrupted worker left behind.
//!
//! Every one runs under the engine's lease on the action (see
//! [`remediation_core::Engine::with_leases`]; the runtime always configures one), so any
//! number of workers, in any number of processes sharing the store, execute at once and never
//! execute one action twice. Before it acts, each write first settles the actions whose lease
//! expired (their worker died) by the crash rule; actions leased to a live worker are left
//! alone. Adapters print or log what was recovered and record their metrics.

use remediation_core::{Action, ActionFilter, ActionId, Actor, ExecuteOutcome, Recovery, RollbackOutcome, State};
use remediation_runtime::Runtime;
use time::OffsetDateTime;

use crate::ServiceError;

/// What an execution came to.
#[derive(Debug)]
pub struct Executed {
    /// Actions an interrupted worker left behind, settled before this execution.
    pub recovered: Vec<Recovery>,
    /// The outcome.
    pub outcome: ExecuteOutcome,
    /// The rollback deadline of a completed change (none for any other outcome, or an
    /// irreversible change).
    pub rollback_expires_at: Option<OffsetDateTime>,
}

/// What a rollback (or the approval of a requested one) came to.
#[derive(Debug)]
pub struct RolledBack {
    /// Actions an interrupted worker left behind, settled before this rollback.
    pub recovered: Vec<Recovery>,
    /// The outcome.
    pub outcome: RollbackOutcome,
}

/// What an approval did: approved a plan, or approved a requested rollback and ran it.
#[derive(Debug)]
pub enum Approval {
    /// The action was approved (it executes later, by a worker or `execute`).
    Approved(Action),
    /// The action was waiting for a rollback approval: the rollback ran.
    RolledBack(RolledBack),
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
pub async fn execute(runtime: &Runtime, actor: &Actor, id: ActionId, dry_run: bool) -> Result<Executed, ServiceError> {
    let engine = runtime.active().await?.engine;
    if dry_run {
        let outcome = engine.execute(id, actor, true).await?;
        return Ok(Executed { recovered: Vec::new(), outcome, rollback_expires_at: None });
    }
    let recovered = engine.recover().await?;
    let outcome = engine.execute(id, actor, false).await?;
    executed(runtime, recovered, outcome).await
}

/// Executes a held action despite its blast-radius limit (admin, with a reason).
pub async fn force_execute(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    reason: String,
) -> Result<Executed, ServiceError> {
    let engine = runtime.active().await?.engine;
    let recovered = engine.recover().await?;
    let outcome = engine.force_execute(id, actor, reason).await?;
    executed(runtime, recovered, outcome).await
}

async fn executed(
    runtime: &Runtime,
    recovered: Vec<Recovery>,
    outcome: ExecuteOutcome,
) -> Result<Executed, ServiceError> {
    let rollback_expires_at = match &outcome {
        ExecuteOutcome::Completed { action, .. } => {
            runtime.active().await?.engine.get(action.id).await?.rollback_expires_at
        }
        _ => None,
    };
    Ok(Executed { recovered, outcome, rollback_expires_at })
}

/// Rolls back a completed action, or requests the rollback when the policy wants a second
/// approver.
pub async fn rollback(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<RolledBack, ServiceError> {
    let engine = runtime.active().await?.engine;
    let recovered = engine.recover().await?;
    let outcome = engine.rollback(id, actor, note).await?;
    Ok(RolledBack { recovered, outcome })
}

/// Approves a requested rollback and runs it (a different principal from the requester).
pub async fn approve_rollback(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<RolledBack, ServiceError> {
    let engine = runtime.active().await?.engine;
    let recovered = engine.recover().await?;
    let outcome = engine.approve_rollback(id, actor, note).await?;
    Ok(RolledBack { recovered, outcome })
}

/// Approves what the action waits for: its plan ([`crate::approve`]), or, on a
/// `rollback_requested` action, the rollback, which then runs ([`approve_rollback`]).
pub async fn approve_or_roll_back(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Approval, ServiceError> {
    let engine = runtime.active().await?.engine;
    if engine.get(id).await?.action.state == State::RollbackRequested {
        return Ok(Approval::RolledBack(approve_rollback(runtime, actor, id, note).await?));
    }
    Ok(Approval::Approved(crate::approve(runtime, actor, id, note).await?))
}
