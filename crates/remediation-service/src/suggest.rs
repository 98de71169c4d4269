//! Suggesting an action: the request may name its connector or leave the choice to
//! [`crate::select_connector`], the same rule findings intake follows.

use remediation_core::{ActionKind, ActionRequest, Actor, Suggestion, Target};
use remediation_runtime::Runtime;

use crate::{ServiceError, select_connector};

/// A request for a remediation whose connector may be left to the installation to choose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestRequest {
    /// The connector to act through; `None` picks the one healthy connector whose
    /// capabilities cover the kind and the target's grant type.
    pub connector: Option<String>,
    /// What to do.
    pub kind: ActionKind,
    /// What to do it to.
    pub target: Target,
    /// Why (shown to approvers and kept in the audit).
    pub reason: String,
    /// Control being remediated.
    pub control_id: Option<String>,
    /// Finding being remediated.
    pub finding_id: Option<String>,
    /// Plan only: the action is stored as a dry run and never executes.
    pub dry_run: bool,
}

impl SuggestRequest {
    /// The engine's request, acting through `connector`.
    pub fn with_connector(self, connector: String) -> ActionRequest {
        ActionRequest {
            connector,
            kind: self.kind,
            target: self.target,
            reason: self.reason,
            control_id: self.control_id,
            finding_id: self.finding_id,
            dry_run: self.dry_run,
            campaign: None,
        }
    }
}

impl From<ActionRequest> for SuggestRequest {
    fn from(r: ActionRequest) -> Self {
        Self {
            connector: Some(r.connector),
            kind: r.kind,
            target: r.target,
            reason: r.reason,
            control_id: r.control_id,
            finding_id: r.finding_id,
            dry_run: r.dry_run,
        }
    }
}

/// Suggests an action for `actor` through the engine in force (gates, plan, storage). Without
/// a connector, [`select_connector`] chooses one or refuses with every candidate
/// ([`ServiceError::NoConnector`]) before anything is stored.
pub async fn suggest(runtime: &Runtime, actor: &Actor, request: SuggestRequest) -> Result<Suggestion, ServiceError> {
    let engine = runtime.active().await?.engine;
    let connector = match &request.connector {
        Some(c) => c.clone(),
        None => select_connector(&runtime.connector_entries().await?, request.kind.name(), &request.target).await?,
    };
    Ok(engine.suggest(request.with_connector(connector), actor).await?)
}
