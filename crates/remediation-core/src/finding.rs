//! Findings (what a scanner reports) and guidance (what advisory mode tells people).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{Action, ActionKind, ActionRequest, Plan, Target};

/// How bad a finding is, as its source rates it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    /// Informational or low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// A security finding that asks for a remediation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Finding {
    /// The finding's id in its source, kept on the action as `finding_id`.
    pub id: String,
    /// Which scanner or product reported it.
    pub source: String,
    /// The control it violates.
    pub control_id: String,
    /// Severity as the source rates it.
    pub severity: Severity,
    /// One-line summary.
    pub title: String,
    /// Longer explanation, if any.
    #[serde(default)]
    pub description: Option<String>,
    /// What is affected.
    pub target: Target,
    /// The remediation the source proposes.
    pub suggested_kind: ActionKind,
    /// The connector to act through; required until connectors are chosen automatically.
    #[serde(default)]
    pub connector: Option<String>,
}

impl Finding {
    /// The action request this finding asks for, on `connector`.
    pub fn to_request(&self, connector: &str, dry_run: bool) -> ActionRequest {
        ActionRequest {
            connector: connector.to_owned(),
            kind: self.suggested_kind.clone(),
            target: self.target.clone(),
            reason: format!(
                "{} ({} finding {} from {})",
                self.title,
                severity_word(self.severity),
                self.id,
                self.source
            ),
            control_id: Some(self.control_id.clone()),
            finding_id: Some(self.id.clone()),
            dry_run,
            campaign: None,
        }
    }
}

fn severity_word(s: Severity) -> &'static str {
    match s {
        Severity::Low => "low",
        Severity::Medium => "medium",
        Severity::High => "high",
        Severity::Critical => "critical",
    }
}

/// What advisory mode tells a person instead of acting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Guidance {
    /// The issue.
    pub issue: String,
    /// Why it matters.
    pub why_it_matters: String,
    /// What we recommend.
    pub recommended_actions: Vec<String>,
    /// How to do it by hand.
    pub manual_steps: Vec<String>,
}

/// Guidance for `action`, using its plan's description when there is one.
pub fn guidance(action: &Action, plan: Option<&Plan>) -> Guidance {
    let t = &action.target;
    let why = match &action.kind {
        ActionKind::Revoke => "Access beyond need widens what a compromised or careless identity can do.".to_owned(),
        ActionKind::Reduce { to } => {
            format!("A permission above `{to}` lets the identity change more than its work needs.")
        }
        ActionKind::Suspend => "An account that should not be active can still be used to sign in.".to_owned(),
        ActionKind::RevokeSessions => {
            "Sessions that are already open keep working even after credentials or access change.".to_owned()
        }
        ActionKind::ForcePasswordReset => {
            "A password that may be known to someone else lets them sign in as this identity.".to_owned()
        }
        ActionKind::Notify => "The people responsible should know about this finding.".to_owned(),
        ActionKind::Enforce { setting, .. } => {
            format!("A resource whose `{setting}` is not at its compliant value stays exposed until it is.")
        }
        ActionKind::Rotate => {
            "A long-lived credential has had time to leak through logs, laptops and old scripts; a new one does not."
                .to_owned()
        }
    };
    let change = plan.map_or_else(|| format!("{} {}", action.kind, t), |p| p.description.clone());
    Guidance {
        issue: action.reason.clone(),
        why_it_matters: why,
        recommended_actions: vec![
            change.clone(),
            "Run it in manual mode so it executes after an approval and can be rolled back inside its window."
                .to_owned(),
        ],
        manual_steps: vec![
            format!("Confirm with the owner of `{}` that the change is expected.", t.identity),
            format!("In the `{}` console or API: {change}", action.connector),
            "Check that the change took effect, then resolve the finding at its source.".to_owned(),
        ],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn findings_parse_strictly_and_become_requests() {
        let f: Finding = serde_json::from_value(serde_json::json!({
            "id": "F-1", "source": "scanner", "control_id": "CIS-1.2", "severity": "high",
            "title": "alice is a standing admin",
            "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
            "suggested_kind": {"type": "revoke"}, "connector": "sandbox"
        }))
        .expect("finding");
        let r = f.to_request("sandbox", false);
        assert_eq!(r.finding_id.as_deref(), Some("F-1"));
        assert_eq!(r.control_id.as_deref(), Some("CIS-1.2"));
        assert!(r.reason.contains("high finding F-1 from scanner"), "{}", r.reason);
        let bad = serde_json::from_value::<Finding>(serde_json::json!({"id": "F", "extra": 1}));
        assert!(bad.is_err());
    }
}
