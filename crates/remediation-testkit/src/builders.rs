//! Builders for the core's domain values, with the same defaults everywhere so that tests
//! only spell out what they are about.
//!
//! Defaults: connector `sandbox`, kind [`ActionKind::Revoke`], target `alice` in `admins`
//! (grant type `group_membership`), requested by `local:alice`, reason `test`, created at
//! [`fixed_time`], identifiers derived from a seed with [`action_id`].

use remediation_core::hash::CanonicalError;
use remediation_core::{
    Action, ActionDetail, ActionId, ActionKind, ActionRequest, Actor, CanonicalTarget, Mode, Plan, PlannedChange,
    Reversibility, Role, SlotRequest, Snapshot, State, Target, TransitionRecord,
};
use time::OffsetDateTime;
use time::macros::datetime;

/// The instant every test starts at: 2026-01-01T00:00:00Z.
pub fn fixed_time() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

/// A deterministic UUIDv7 for `seed`: the timestamp is [`fixed_time`], the seed fills the
/// low bytes, so identifiers with larger seeds sort later.
pub fn action_id(seed: u64) -> ActionId {
    let millis = u64::try_from(fixed_time().unix_timestamp_nanos() / 1_000_000).unwrap_or(0);
    let mut random = [0u8; 10];
    random[2..].copy_from_slice(&seed.to_be_bytes());
    ActionId(uuid::Builder::from_unix_timestamp_millis(millis, &random).into_uuid())
}

/// The default target: `alice` in `admins`, grant type `group_membership`.
pub fn default_target() -> Target {
    TargetBuilder::new().build()
}

/// A snapshot of an unprotected target in `state`.
pub fn snap(state: serde_json::Value) -> Snapshot {
    Snapshot::new(state)
}

/// A snapshot of a protected target in `state`.
pub fn protected_snap(state: serde_json::Value) -> Snapshot {
    Snapshot { protected: true, ..Snapshot::new(state) }
}

/// A transition of action `id` by `local:bob` on the `sandbox` connector, requested by
/// `local:alice`, with no hashes, ids or comment.
pub fn transition(id: ActionId, from: Option<State>, to: State, event: &str, at: OffsetDateTime) -> TransitionRecord {
    TransitionRecord {
        action_id: id,
        from,
        to,
        event: event.to_owned(),
        actor: "local:bob".to_owned(),
        credential: None,
        initiated_by: "local:alice".to_owned(),
        decided_by: None,
        at,
        comment: None,
        connector: "sandbox".to_owned(),
        control_id: None,
        finding_id: None,
        before_hash: None,
        after_hash: None,
        plan_hash: None,
        request_ids: Vec::new(),
        rollback_expires_at: None,
        before_state: None,
        after_state: None,
        limit: None,
    }
}

/// A blast-radius window request.
pub fn slot(key: &str, limit: u32, window_secs: u64) -> SlotRequest {
    SlotRequest { key: key.to_owned(), limit, window_secs }
}

/// A plan for `action` from `before` to `expected_after`, hashed as the engine hashes it.
pub fn plan_for(action: &Action, before: Snapshot, expected_after: Snapshot) -> Result<Plan, CanonicalError> {
    Plan::new(
        &action.connector,
        &action.kind,
        &action.target,
        before,
        PlannedChange { expected_after, description: format!("{} {}", action.kind, action.target) },
        Reversibility::Reversible,
    )
}

/// `local:alice` with the requester role: the default requester.
pub fn requester() -> Actor {
    Actor::new("local:alice", Role::Requester)
}

/// `local:<name>` with the approver role.
pub fn approver(name: &str) -> Actor {
    Actor::new(format!("local:{name}"), Role::Approver)
}

/// `local:root` with the admin role.
pub fn admin() -> Actor {
    Actor::new("local:root", Role::Admin)
}

/// `local:victor` with the viewer role.
pub fn viewer() -> Actor {
    Actor::new("local:victor", Role::Viewer)
}

/// Builds a [`Target`]; starts from [`default_target`].
#[derive(Debug, Clone)]
pub struct TargetBuilder {
    target: Target,
}

impl Default for TargetBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TargetBuilder {
    /// `alice` in `admins`, grant type `group_membership`, no grant id.
    pub fn new() -> Self {
        Self {
            target: Target {
                identity: "alice".to_owned(),
                resource: Some("admins".to_owned()),
                grant: None,
                grant_type: "group_membership".to_owned(),
            },
        }
    }

    /// Sets the identity.
    pub fn identity(mut self, identity: &str) -> Self {
        self.target.identity = identity.to_owned();
        self
    }

    /// Sets the resource.
    pub fn resource(mut self, resource: &str) -> Self {
        self.target.resource = Some(resource.to_owned());
        self
    }

    /// Removes the resource (for account-level grant types).
    pub fn no_resource(mut self) -> Self {
        self.target.resource = None;
        self
    }

    /// Sets the grant id.
    pub fn grant(mut self, grant: &str) -> Self {
        self.target.grant = Some(grant.to_owned());
        self
    }

    /// Sets the grant type.
    pub fn grant_type(mut self, grant_type: &str) -> Self {
        self.target.grant_type = grant_type.to_owned();
        self
    }

    /// The target.
    pub fn build(self) -> Target {
        self.target
    }
}

/// Builds an [`Action`] as a store would hold it; starts from the module defaults, in
/// `pending_approval`, mode manual, with the identifier of seed 1.
#[derive(Debug, Clone)]
pub struct ActionBuilder {
    action: Action,
}

impl Default for ActionBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl ActionBuilder {
    /// The default action, seed 1.
    pub fn new() -> Self {
        let id = action_id(1);
        Self {
            action: Action {
                id,
                kind: ActionKind::Revoke,
                target: default_target(),
                connector: "sandbox".to_owned(),
                control_id: None,
                finding_id: None,
                canonical: None,
                requested_by: "local:alice".to_owned(),
                reason: "test".to_owned(),
                mode: Mode::Manual,
                idempotency_key: format!("remediation-{id}"),
                state: State::PendingApproval,
                created_at: fixed_time(),
                updated_at: fixed_time(),
                handle: None,
                campaign: None,
            },
        }
    }

    /// Sets the campaign that created the action.
    pub fn campaign(mut self, campaign: &str) -> Self {
        self.action.campaign = Some(campaign.to_owned());
        self
    }

    /// Derives the identifier (and idempotency key) from `seed` with [`action_id`].
    pub fn seed(self, seed: u64) -> Self {
        self.id(action_id(seed))
    }

    /// Sets the identifier and the idempotency key that goes with it.
    pub fn id(mut self, id: ActionId) -> Self {
        self.action.id = id;
        self.action.idempotency_key = format!("remediation-{id}");
        self
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: ActionKind) -> Self {
        self.action.kind = kind;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: Target) -> Self {
        self.action.target = target;
        self
    }

    /// Sets the connector id.
    pub fn connector(mut self, connector: &str) -> Self {
        self.action.connector = connector.to_owned();
        self
    }

    /// Sets the control id.
    pub fn control_id(mut self, control_id: &str) -> Self {
        self.action.control_id = Some(control_id.to_owned());
        self
    }

    /// Sets the finding id.
    pub fn finding_id(mut self, finding_id: &str) -> Self {
        self.action.finding_id = Some(finding_id.to_owned());
        self
    }

    /// Sets the provider's canonical id of the target.
    pub fn canonical(mut self, canonical: CanonicalTarget) -> Self {
        self.action.canonical = Some(canonical);
        self
    }

    /// Sets who requested the action.
    pub fn requested_by(mut self, who: &str) -> Self {
        self.action.requested_by = who.to_owned();
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: &str) -> Self {
        self.action.reason = reason.to_owned();
        self
    }

    /// Sets the resolved mode.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.action.mode = mode;
        self
    }

    /// Sets the lifecycle state.
    pub fn state(mut self, state: State) -> Self {
        self.action.state = state;
        self
    }

    /// Sets both `created_at` and `updated_at`.
    pub fn at(mut self, at: OffsetDateTime) -> Self {
        self.action.created_at = at;
        self.action.updated_at = at;
        self
    }

    /// The action.
    pub fn build(self) -> Action {
        self.action
    }

    /// The action wrapped in an [`ActionDetail`] with nothing recorded yet; continue with
    /// [`DetailBuilder`]'s setters.
    pub fn detail(self) -> DetailBuilder {
        DetailBuilder::new(self.action)
    }
}

/// Builds an [`ActionDetail`] around an action.
#[derive(Debug, Clone)]
pub struct DetailBuilder {
    detail: ActionDetail,
}

impl DetailBuilder {
    /// `action` with no plan, no recorded states and no error.
    pub fn new(action: Action) -> Self {
        Self {
            detail: ActionDetail {
                action,
                plan: None,
                before: None,
                after: None,
                restored: None,
                pending_acceptance: false,
                rollback_expires_at: None,
                last_error: None,
                approval_expires_at: None,
                not_before: None,
                attempts: 0,
                held_lease: None,
                follows: None,
            },
        }
    }

    /// Sets the plan.
    pub fn plan(mut self, plan: Plan) -> Self {
        self.detail.plan = Some(plan);
        self
    }

    /// Sets the before-state recorded at execution.
    pub fn before(mut self, before: Snapshot) -> Self {
        self.detail.before = Some(before);
        self
    }

    /// Sets the after-state read back.
    pub fn after(mut self, after: Snapshot) -> Self {
        self.detail.after = Some(after);
        self
    }

    /// Sets the rollback deadline.
    pub fn rollback_expires_at(mut self, until: OffsetDateTime) -> Self {
        self.detail.rollback_expires_at = Some(until);
        self
    }

    /// Sets the last error.
    pub fn last_error(mut self, error: &str) -> Self {
        self.detail.last_error = Some(error.to_owned());
        self
    }

    /// The detail.
    pub fn build(self) -> ActionDetail {
        self.detail
    }
}

/// Builds an [`ActionRequest`]; starts from the module defaults, not a dry run.
#[derive(Debug, Clone)]
pub struct RequestBuilder {
    request: ActionRequest,
}

impl Default for RequestBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl RequestBuilder {
    /// Revoke `alice` from `admins` on `sandbox`, reason `test`.
    pub fn new() -> Self {
        Self {
            request: ActionRequest {
                connector: "sandbox".to_owned(),
                kind: ActionKind::Revoke,
                target: default_target(),
                reason: "test".to_owned(),
                control_id: None,
                finding_id: None,
                dry_run: false,
                campaign: None,
            },
        }
    }

    /// Sets the connector id.
    pub fn connector(mut self, connector: &str) -> Self {
        self.request.connector = connector.to_owned();
        self
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: ActionKind) -> Self {
        self.request.kind = kind;
        self
    }

    /// Sets the target.
    pub fn target(mut self, target: Target) -> Self {
        self.request.target = target;
        self
    }

    /// Sets the reason.
    pub fn reason(mut self, reason: &str) -> Self {
        self.request.reason = reason.to_owned();
        self
    }

    /// Sets the control id.
    pub fn control_id(mut self, control_id: &str) -> Self {
        self.request.control_id = Some(control_id.to_owned());
        self
    }

    /// Sets the finding id.
    pub fn finding_id(mut self, finding_id: &str) -> Self {
        self.request.finding_id = Some(finding_id.to_owned());
        self
    }

    /// Makes the request a dry run.
    pub fn dry_run(mut self, dry_run: bool) -> Self {
        self.request.dry_run = dry_run;
        self
    }

    /// The request.
    pub fn build(self) -> ActionRequest {
        self.request
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_v7_and_ordered_by_seed() {
        assert_eq!(action_id(7), action_id(7));
        assert_eq!(action_id(7).0.get_version_num(), 7);
        let ids: Vec<ActionId> = (0..50).map(action_id).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert_eq!(ActionBuilder::new().seed(3).build().idempotency_key, format!("remediation-{}", action_id(3)));
    }
}
