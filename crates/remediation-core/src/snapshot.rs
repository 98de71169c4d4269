//! Snapshots of provider state and the plans built from them.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::hash::{CanonicalError, HexDigest, canonical_hash};
use crate::{ActionKind, Reversibility, Target};

/// Connector-normalised state of a target, with volatile fields (timestamps, ETags) removed
/// so that two reads of an unchanged target hash the same.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Snapshot {
    /// The target is protected (break-glass, or marked protected): no action may touch it.
    #[serde(default)]
    pub protected: bool,
    /// The provider's own immutable id of the target, as the provider returned it when the
    /// target was read. Protection and blast-radius limits key on it, so another name for the
    /// same account (an alias, a differently spelled DN, a login instead of an id) is the same
    /// target. Absent for connectors that cannot resolve one, and then left out of the JSON so
    /// hashes of such snapshots are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub canonical: Option<CanonicalTarget>,
    /// The normalised provider state.
    pub state: serde_json::Value,
}

impl Snapshot {
    /// A snapshot of an unprotected target.
    pub fn new(state: serde_json::Value) -> Self {
        Self { protected: false, canonical: None, state }
    }

    /// The same snapshot, naming the provider's canonical id of the target.
    #[must_use]
    pub fn with_canonical(mut self, canonical: CanonicalTarget) -> Self {
        self.canonical = Some(canonical);
        self
    }

    /// SHA-256 of the snapshot's canonical JSON.
    pub fn hash(&self) -> Result<HexDigest, CanonicalError> {
        canonical_hash(self)
    }
}

/// A target as the provider identifies it: ids that do not change when the account is renamed
/// and that every other name for the same object resolves to.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CanonicalTarget {
    /// The identity's canonical id (an Okta `00u…` id, an IAM user id, a normalised DN, a role OID).
    pub identity: String,
    /// The resource's canonical id, when the target names a resource.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resource: Option<String>,
}

impl CanonicalTarget {
    /// A canonical identity without a resource.
    pub fn identity(identity: impl Into<String>) -> Self {
        Self { identity: identity.into(), resource: None }
    }

    /// A canonical identity and resource.
    pub fn with_resource(identity: impl Into<String>, resource: impl Into<String>) -> Self {
        Self { identity: identity.into(), resource: Some(resource.into()) }
    }
}

/// What a connector expects a change to do, stated before anything is written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PlannedChange {
    /// The state the target should be in afterwards.
    pub expected_after: Snapshot,
    /// One plain-language sentence saying what will change.
    pub description: String,
}

/// A plan: the before-state, the expected after-state, and the hash that approvals bind to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Plan {
    /// Connector identifier.
    pub connector: String,
    /// What the action does.
    pub kind: ActionKind,
    /// What it acts on.
    pub target: Target,
    /// State read from the provider when the plan was made.
    pub before: Snapshot,
    /// State the connector expects afterwards.
    pub expected_after: Snapshot,
    /// Plain-language description.
    pub description: String,
    /// How well the change can be undone.
    pub reversibility: Reversibility,
    /// SHA-256 of canonical `{connector, kind, target, before, expected_after}`, plus `reach`
    /// when the connector reported one.
    pub plan_hash: HexDigest,
    /// How many grants, groups, applications or dependants the change reaches, as the
    /// connector counted them in the before-state (`None`: the connector does not count).
    /// Part of the plan hash when known, so a wider reach at execution voids approvals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reach: Option<u32>,
}

#[derive(Serialize)]
struct PlanHashInput<'a> {
    connector: &'a str,
    kind: &'a ActionKind,
    target: &'a Target,
    before: &'a Snapshot,
    expected_after: &'a Snapshot,
    #[serde(skip_serializing_if = "Option::is_none")]
    reach: Option<u32>,
}

impl Plan {
    /// Builds a plan and computes its hash.
    pub fn new(
        connector: &str,
        kind: &ActionKind,
        target: &Target,
        before: Snapshot,
        planned: PlannedChange,
        reversibility: Reversibility,
    ) -> Result<Self, CanonicalError> {
        let plan_hash = canonical_hash(&PlanHashInput {
            connector,
            kind,
            target,
            before: &before,
            expected_after: &planned.expected_after,
            reach: None,
        })?;
        Ok(Self {
            connector: connector.to_owned(),
            kind: kind.clone(),
            target: target.clone(),
            before,
            expected_after: planned.expected_after,
            description: planned.description,
            reversibility,
            plan_hash,
            reach: None,
        })
    }

    /// The plan with the connector's count of what the change reaches; the hash covers it.
    pub fn with_reach(mut self, reach: Option<u32>) -> Result<Self, CanonicalError> {
        self.plan_hash = canonical_hash(&PlanHashInput {
            connector: &self.connector,
            kind: &self.kind,
            target: &self.target,
            before: &self.before,
            expected_after: &self.expected_after,
            reach,
        })?;
        self.reach = reach;
        Ok(self)
    }

    /// SHA-256 of the change itself, without the parts of the target's state it leaves
    /// alone: canonical `{connector, kind, target, protected, reversibility, changes}`, where
    /// `changes` is the structural diff from the before-state to the expected after-state.
    ///
    /// A playbook run binds each step to this: a step planned from the state the earlier
    /// steps leave (sessions ended, an account suspended) finds a before-state at run time that
    /// differs from the one read when the run was planned, yet makes the same change. A step
    /// whose change differs (another session to end, another value to set) has another hash.
    pub fn change_hash(&self) -> Result<HexDigest, CanonicalError> {
        #[derive(Serialize)]
        struct ChangeHashInput<'a> {
            connector: &'a str,
            kind: &'a ActionKind,
            target: &'a Target,
            protected: bool,
            reversibility: Reversibility,
            changes: Vec<crate::diff::Change>,
        }
        canonical_hash(&ChangeHashInput {
            connector: &self.connector,
            kind: &self.kind,
            target: &self.target,
            protected: self.before.protected,
            reversibility: self.reversibility,
            changes: crate::diff::json_diff(&self.before.state, &self.expected_after.state),
        })
    }

    /// True when executing the plan would change nothing.
    pub fn is_no_op(&self) -> bool {
        self.before == self.expected_after
    }
}
