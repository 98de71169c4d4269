//! The decisions on an action that run no provider write: approve (a plan, not a requested
//! rollback, which executes), reject, cancel, promote and release. The engine judges roles,
//! separation of duties and the lifecycle; every adapter calls these.

use remediation_core::{Action, ActionId, Actor};
use remediation_runtime::Runtime;

use crate::ServiceError;

/// Approves an action waiting for approval (not the actor's own; quorum by the policy).
pub async fn approve(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Action, ServiceError> {
    Ok(runtime.active().await?.engine.approve(id, actor, note).await?)
}

/// Rejects an action waiting for approval, or a requested rollback (the change stays).
pub async fn reject(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Action, ServiceError> {
    Ok(runtime.active().await?.engine.reject(id, actor, note).await?)
}

/// Cancels an action that has not started.
pub async fn cancel(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Action, ServiceError> {
    Ok(runtime.active().await?.engine.cancel(id, actor, note).await?)
}

/// Turns advisory guidance into a request for approval (the lifecycle allows admins).
pub async fn promote(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Action, ServiceError> {
    Ok(runtime.active().await?.engine.promote(id, actor, note).await?)
}

/// Returns a held action to approved (the lifecycle allows admins).
pub async fn release(
    runtime: &Runtime,
    actor: &Actor,
    id: ActionId,
    note: Option<String>,
) -> Result<Action, ServiceError> {
    Ok(runtime.active().await?.engine.release(id, actor, note).await?)
}
