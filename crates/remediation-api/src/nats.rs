//! Findings in over NATS: the server's [`FindingHandler`] for the JetStream durable consumer
//! of `[findings.nats]`. Each finding goes through the same intake as `POST /v1/findings`
//! (deduplication by control and canonical target, fixes that did not hold, connector
//! selection), as the configured service principal; the consumer acknowledges the message only
//! once this returns, so the suggestion (or the decision that it is a duplicate) is committed.

use async_trait::async_trait;
use remediation_core::{Actor, EngineError, Finding, Role, StoreError};
use remediation_nats::{FindingHandler, HandleError};
use remediation_service::ServiceError;

use crate::ApiState;

/// Takes findings in as `principal`.
#[derive(Clone)]
pub struct NatsIntake {
    state: ApiState,
    principal: String,
}

impl std::fmt::Debug for NatsIntake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsIntake").field("principal", &self.principal).finish_non_exhaustive()
    }
}

impl NatsIntake {
    /// Findings taken in through `state`'s runtime as the service principal `principal`.
    pub fn new(state: ApiState, principal: String) -> Self {
        Self { state, principal }
    }

    /// The principal as stored now, so a revocation or a role change takes effect at the next
    /// message. A principal that cannot act is a transient failure: the messages wait (and
    /// reach the dead-letter subject after the consumer's `max_deliver`), rather than being
    /// refused one by one while an admin fixes it.
    async fn actor(&self) -> Result<Actor, HandleError> {
        let store = self.state.runtime().store();
        let principal = store
            .principal(&self.principal)
            .await
            .map_err(|e| HandleError::Transient(format!("cannot read principal `{}`: {e}", self.principal)))?
            .ok_or_else(|| HandleError::Transient(format!("principal `{}` does not exist", self.principal)))?;
        if principal.revoked_at.is_some() {
            return Err(HandleError::Transient(format!("principal `{}` is revoked", self.principal)));
        }
        match principal.role {
            Some(role) if role >= Role::Requester && role != Role::System => {
                Ok(Actor { name: principal.name, role, credential: Some("nats".to_owned()) })
            }
            _ => Err(HandleError::Transient(format!(
                "principal `{}` holds no role that may suggest (requester or higher)",
                self.principal
            ))),
        }
    }
}

#[async_trait]
impl FindingHandler for NatsIntake {
    async fn handle(&self, finding: Finding, subject: &str) -> Result<(), HandleError> {
        let actor = self.actor().await?;
        let _serial = self.state.inner.intake.lock().await;
        match remediation_service::intake(self.state.runtime(), &actor, &finding).await {
            Ok(outcome) => {
                tracing::info!(
                    target: "remediation::findings",
                    subject, control_id = %finding.control_id, intake = outcome.label(),
                    "finding taken in over NATS"
                );
                Ok(())
            }
            Err(e) => Err(judge(e)),
        }
    }
}

/// A store or provider that failed may succeed later; a refusal of the finding itself will not.
fn judge(e: ServiceError) -> HandleError {
    let text = remediation_core::error_chain(&e);
    match &e {
        ServiceError::Engine(EngineError::Store(StoreError::Backend { .. } | StoreError::LeaseLost { .. }))
        | ServiceError::Engine(EngineError::Connector { .. })
        | ServiceError::Runtime(_) => HandleError::Transient(text),
        _ => HandleError::Refused(text),
    }
}
