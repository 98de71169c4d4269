//! Connector auto-selection: a request that names no connector goes to the one healthy
//! configured connector whose capabilities cover its (kind, grant type), or is refused with
//! every candidate and why it was passed over.

use std::sync::Arc;

use remediation_core::{Connector, KindName, Target, find_capability};
use serde::Serialize;

use crate::ServiceError;

/// Why a configured connector was not chosen.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "reason", rename_all = "snake_case")]
pub enum PassedOver {
    /// It has no capability for the (kind, grant type).
    NoCapability,
    /// It has the capability but its provider is not healthy now.
    Unhealthy {
        /// What the health check said.
        detail: String,
    },
    /// It is one of several healthy connectors that could do it: the caller must choose.
    Ambiguous,
}

/// A configured connector considered for a request, and why it was passed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Candidate {
    /// The connector id.
    pub connector: String,
    /// Why it was not chosen.
    #[serde(flatten)]
    pub passed_over: PassedOver,
}

impl std::fmt::Display for Candidate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.passed_over {
            PassedOver::NoCapability => write!(f, "{}: no capability", self.connector),
            PassedOver::Unhealthy { detail } => write!(f, "{}: unhealthy ({detail})", self.connector),
            PassedOver::Ambiguous => write!(f, "{}: ambiguous (another healthy connector can too)", self.connector),
        }
    }
}

/// Picks the connector for a request that names none: the single healthy connector whose
/// capabilities cover `kind` for the target's grant type. None or several is
/// [`ServiceError::NoConnector`], listing every configured connector and why it was passed
/// over. Health is asked only of capable connectors.
pub async fn select_connector(
    connectors: &[Arc<dyn Connector>],
    kind: KindName,
    target: &Target,
) -> Result<String, ServiceError> {
    let mut candidates = Vec::with_capacity(connectors.len());
    let mut healthy = Vec::new();
    for c in connectors {
        let passed_over = if find_capability(&c.capabilities(), kind, target).is_none() {
            Some(PassedOver::NoCapability)
        } else {
            match c.health().await {
                Ok(h) if h.healthy => None,
                Ok(h) => Some(PassedOver::Unhealthy { detail: h.detail }),
                Err(e) => Some(PassedOver::Unhealthy { detail: e.to_string() }),
            }
        };
        match passed_over {
            Some(p) => candidates.push(Candidate { connector: c.id().to_owned(), passed_over: p }),
            None => healthy.push(c.id().to_owned()),
        }
    }
    if let [only] = healthy.as_slice() {
        return Ok(only.clone());
    }
    candidates.extend(healthy.into_iter().map(|connector| Candidate { connector, passed_over: PassedOver::Ambiguous }));
    Err(ServiceError::NoConnector { kind: kind.as_str().to_owned(), grant_type: target.grant_type.clone(), candidates })
}

#[cfg(test)]
mod tests {
    use super::*;
    use remediation_testkit::connector::FakeConnector;

    fn target(grant_type: &str) -> Target {
        Target { identity: "alice".into(), resource: Some("admins".into()), grant: None, grant_type: grant_type.into() }
    }

    fn fakes(ids: &[&str]) -> Vec<Arc<FakeConnector>> {
        ids.iter().map(|id| Arc::new(FakeConnector::new(id))).collect()
    }

    fn dyns(fakes: &[Arc<FakeConnector>]) -> Vec<Arc<dyn Connector>> {
        fakes.iter().map(|f| f.clone() as Arc<dyn Connector>).collect()
    }

    fn refusal(r: Result<String, ServiceError>) -> Vec<Candidate> {
        match r {
            Err(ServiceError::NoConnector { candidates, .. }) => candidates,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[tokio::test]
    async fn the_one_healthy_capable_connector_is_chosen() {
        let f = fakes(&["a", "b"]);
        f[0].set_healthy(false, "down");
        let chosen = select_connector(&dyns(&f), KindName::Revoke, &target("group_membership")).await;
        assert_eq!(chosen.ok().as_deref(), Some("b"));
    }

    #[tokio::test]
    async fn several_healthy_candidates_are_ambiguous_and_all_are_listed() {
        let f = fakes(&["a", "b"]);
        let candidates = refusal(select_connector(&dyns(&f), KindName::Revoke, &target("group_membership")).await);
        assert_eq!(
            candidates,
            vec![
                Candidate { connector: "a".into(), passed_over: PassedOver::Ambiguous },
                Candidate { connector: "b".into(), passed_over: PassedOver::Ambiguous },
            ]
        );
    }

    #[tokio::test]
    async fn none_capable_or_healthy_is_refused_with_each_reason() {
        let f = fakes(&["a", "b"]);
        f[1].set_healthy(false, "timed out");
        let none = refusal(select_connector(&dyns(&f), KindName::Revoke, &target("mainframe_racf")).await);
        assert!(none.iter().all(|c| c.passed_over == PassedOver::NoCapability), "{none:?}");
        let f = fakes(&["a"]);
        f[0].set_healthy(false, "timed out");
        let sick = refusal(select_connector(&dyns(&f), KindName::Revoke, &target("group_membership")).await);
        assert_eq!(
            sick,
            vec![Candidate {
                connector: "a".into(),
                passed_over: PassedOver::Unhealthy { detail: "timed out".into() }
            }]
        );
        let text =
            ServiceError::NoConnector { kind: "revoke".into(), grant_type: "g".into(), candidates: sick }.to_string();
        assert!(text.contains("a: unhealthy (timed out)"), "{text}");
    }
}
