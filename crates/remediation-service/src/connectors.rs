//! Connector auto-selection: a request that names no connector goes to the healthy connector
//! (of the configuration file or a managed connection) whose capabilities cover its (kind,
//! grant type), preferring one whose scope names the target's email domain or AWS account
//! over one without a scope, or is refused with every candidate and why it was passed over.

use remediation_core::store::ConnectionScope;
use remediation_core::{KindName, Target, find_capability};
use remediation_runtime::connections::ConnectorEntry;
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
    /// Its scope names other email domains or AWS accounts than the target's.
    OutOfScope,
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
            PassedOver::OutOfScope => {
                write!(f, "{}: out of scope (its scope does not name the target)", self.connector)
            }
        }
    }
}

/// The target's email domain (after the `@` of its identity), lowercase.
fn target_domain(target: &Target) -> Option<String> {
    target.identity.rsplit_once('@').map(|(_, d)| d.to_ascii_lowercase()).filter(|d| !d.is_empty())
}

/// The AWS account ids in the target's ARNs (`arn:PARTITION:SERVICE:REGION:ACCOUNT:...`).
fn target_accounts(target: &Target) -> Vec<String> {
    [Some(&target.identity), target.resource.as_ref(), target.grant.as_ref()]
        .into_iter()
        .flatten()
        .filter(|s| s.starts_with("arn:"))
        .filter_map(|arn| arn.split(':').nth(4).filter(|a| !a.is_empty()).map(str::to_owned))
        .collect()
}

/// Whether `scope` names the target (an empty scope names nothing).
fn in_scope(scope: &ConnectionScope, target: &Target) -> bool {
    let domain = target_domain(target);
    let accounts = target_accounts(target);
    scope.domains.iter().any(|d| domain.as_deref() == Some(d.trim_start_matches('@').to_ascii_lowercase().as_str()))
        || scope.accounts.iter().any(|a| accounts.contains(a))
}

/// Picks the connector for a request that names none, among the connectors in force (disabled
/// managed connections are never built, so never candidates): those whose capabilities cover
/// `kind` for the target's grant type and whose provider is healthy; of these, the one whose
/// scope names the target (its identity's email domain, or an AWS account in its ARNs), else
/// the one without a scope; one with a scope that does not name the target is passed over.
/// None or several is [`ServiceError::NoConnector`], listing every connector and why it was
/// passed over. Health is asked only of capable connectors.
pub async fn select_connector(
    connectors: &[ConnectorEntry],
    kind: KindName,
    target: &Target,
) -> Result<String, ServiceError> {
    let mut candidates = Vec::with_capacity(connectors.len());
    let (mut matching, mut unscoped) = (Vec::new(), Vec::new());
    for entry in connectors {
        let c = &entry.connector;
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
            None if entry.scope.is_empty() => unscoped.push(c.id().to_owned()),
            None if in_scope(&entry.scope, target) => matching.push(c.id().to_owned()),
            None => candidates.push(Candidate { connector: c.id().to_owned(), passed_over: PassedOver::OutOfScope }),
        }
    }
    let preferred = if matching.is_empty() { &unscoped } else { &matching };
    if let [only] = preferred.as_slice() {
        return Ok(only.clone());
    }
    let mut healthy = matching;
    healthy.extend(unscoped);
    candidates.extend(healthy.into_iter().map(|connector| Candidate { connector, passed_over: PassedOver::Ambiguous }));
    Err(ServiceError::NoConnector { kind: kind.as_str().to_owned(), grant_type: target.grant_type.clone(), candidates })
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use remediation_testkit::connector::FakeConnector;

    fn target(grant_type: &str) -> Target {
        Target { identity: "alice".into(), resource: Some("admins".into()), grant: None, grant_type: grant_type.into() }
    }

    fn fakes(ids: &[&str]) -> Vec<Arc<FakeConnector>> {
        ids.iter().map(|id| Arc::new(FakeConnector::new(id))).collect()
    }

    fn dyns(fakes: &[Arc<FakeConnector>]) -> Vec<ConnectorEntry> {
        fakes.iter().map(|f| entry(f, &[], &[])).collect()
    }

    fn entry(f: &Arc<FakeConnector>, domains: &[&str], accounts: &[&str]) -> ConnectorEntry {
        ConnectorEntry {
            connector: f.clone() as Arc<dyn remediation_core::Connector>,
            source: remediation_runtime::connections::ConnectorSource::Managed,
            type_name: "fake".to_owned(),
            scope: ConnectionScope {
                domains: domains.iter().map(|d| (*d).to_owned()).collect(),
                accounts: accounts.iter().map(|a| (*a).to_owned()).collect(),
            },
        }
    }

    fn identity(identity: &str) -> Target {
        Target { identity: identity.into(), ..target("group_membership") }
    }

    #[tokio::test]
    async fn the_healthy_connector_in_scope_is_chosen_over_an_unhealthy_one_and_one_out_of_scope() {
        let f = fakes(&["eu-down", "us", "eu", "any"]);
        f[0].set_healthy(false, "down");
        let entries = vec![
            entry(&f[0], &["example.eu"], &[]),
            entry(&f[1], &["example.com"], &[]),
            entry(&f[2], &["Example.EU"], &[]),
            entry(&f[3], &[], &[]),
        ];
        let chosen = select_connector(&entries, KindName::Revoke, &identity("alice@example.eu")).await;
        assert_eq!(chosen.ok().as_deref(), Some("eu"), "the matching scope wins over no scope");
        // Without a matching scope, the one without a scope is chosen.
        let chosen = select_connector(&entries, KindName::Revoke, &identity("bob@example.org")).await;
        assert_eq!(chosen.ok().as_deref(), Some("any"));
        // An AWS account in an ARN.
        let f = fakes(&["acct-1", "acct-2"]);
        let entries = vec![entry(&f[0], &[], &["111111111111"]), entry(&f[1], &[], &["222222222222"])];
        let target = identity("arn:aws:iam::222222222222:user/carol");
        assert_eq!(select_connector(&entries, KindName::Revoke, &target).await.ok().as_deref(), Some("acct-2"));
    }

    #[tokio::test]
    async fn none_in_scope_and_healthy_is_refused_listing_each_reason() {
        let f = fakes(&["down", "elsewhere"]);
        f[0].set_healthy(false, "timed out");
        let entries = vec![entry(&f[0], &[], &[]), entry(&f[1], &["example.com"], &[])];
        let target = identity("dave@example.org");
        let candidates = refusal(select_connector(&entries, KindName::Revoke, &target).await);
        assert_eq!(
            candidates,
            vec![
                Candidate {
                    connector: "down".into(),
                    passed_over: PassedOver::Unhealthy { detail: "timed out".into() }
                },
                Candidate { connector: "elsewhere".into(), passed_over: PassedOver::OutOfScope },
            ]
        );
        let text = ServiceError::NoConnector { kind: "revoke".into(), grant_type: "g".into(), candidates }.to_string();
        assert!(text.contains("down: unhealthy (timed out)") && text.contains("elsewhere: out of scope"), "{text}");
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
