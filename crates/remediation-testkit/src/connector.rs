//! [`FakeConnector`]: a stateful in-memory provider for engine and conformance tests.
//!
//! Each target has a JSON state. Every kind changes one field of it (see [`apply_kind`]), so
//! plans, verification, drift and rollback behave as they would against a real provider.
//! Calls are counted per [`Method`], and faults can be injected per method.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};

use async_trait::async_trait;
use remediation_core::{
    Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError, FollowUp, Health, KindName, Outcome,
    OutcomeStatus, PermissionNeed, Permissions, PlannedChange, Reversibility, Settled, Snapshot, Target, Verification,
    find_capability,
};
use serde_json::{Value, json};

/// A method of the [`Connector`] trait, for call counts and fault injection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Method {
    /// [`Connector::capabilities`].
    Capabilities,
    /// [`Connector::health`].
    Health,
    /// [`Connector::check_permissions`].
    CheckPermissions,
    /// [`Connector::snapshot`].
    Snapshot,
    /// [`Connector::plan`].
    Plan,
    /// [`Connector::execute`].
    Execute,
    /// [`Connector::verify`].
    Verify,
    /// [`Connector::rollback`].
    Rollback,
}

impl Method {
    /// The methods that talk to the provider (everything except [`Method::Capabilities`]).
    pub const PROVIDER: [Method; 7] =
        [Self::Health, Self::CheckPermissions, Self::Snapshot, Self::Plan, Self::Execute, Self::Verify, Self::Rollback];
}

/// The state `kind` leaves a target in, given its current `state`.
///
/// | kind | field set |
/// |---|---|
/// | revoke | `"granted": false` |
/// | reduce | `"level": <to>` |
/// | suspend | `"active": false` |
/// | revoke_sessions | `"sessions": 0` |
/// | force_password_reset | `"password_reset_required": true` |
/// | notify | nothing |
/// | enforce | `<setting>: <value>` |
/// | rotate | `"rotated": true` |
///
/// A state that is not a JSON object is replaced by an object holding only that field.
pub fn apply_kind(kind: &ActionKind, state: &Value) -> Value {
    let (field, value) = match kind {
        ActionKind::Revoke => ("granted", json!(false)),
        ActionKind::Reduce { to } => ("level", json!(to)),
        ActionKind::Suspend => ("active", json!(false)),
        ActionKind::RevokeSessions => ("sessions", json!(0)),
        ActionKind::ForcePasswordReset => ("password_reset_required", json!(true)),
        ActionKind::Notify => return state.clone(),
        ActionKind::Enforce { setting, value } => (setting.as_str(), json!(value)),
        ActionKind::Rotate => ("rotated", json!(true)),
    };
    let mut out = match state {
        Value::Object(map) => map.clone(),
        _ => serde_json::Map::new(),
    };
    out.insert(field.to_owned(), value);
    Value::Object(out)
}

/// The capabilities of a new [`FakeConnector`]: revoke and reduce on `group_membership`
/// (reversible), suspend on `account` (reversible), revoke_sessions and force_password_reset on
/// `account` (irreversible), all observable.
pub fn default_capabilities() -> Vec<Capability> {
    let cap = Capability::new;
    vec![
        cap(KindName::Revoke, "group_membership", Reversibility::Reversible),
        cap(KindName::Reduce, "group_membership", Reversibility::Reversible),
        cap(KindName::Suspend, "account", Reversibility::Reversible),
        cap(KindName::RevokeSessions, "account", Reversibility::Irreversible),
        cap(KindName::ForcePasswordReset, "account", Reversibility::Irreversible),
    ]
}

/// A stateful in-memory provider.
///
/// Writes are idempotent in the way the [`Connector`] contract asks: executing an action whose
/// change is already in place returns [`OutcomeStatus::AlreadyInState`] and writes nothing.
#[derive(Debug)]
pub struct FakeConnector {
    id: String,
    inner: Mutex<Inner>,
}

#[derive(Debug)]
struct Inner {
    capabilities: Vec<Capability>,
    targets: HashMap<Target, Snapshot>,
    health: Health,
    missing_permissions: Vec<String>,
    faults: BTreeMap<Method, ConnectorError>,
    drop_writes: bool,
    skew_writes: Option<Value>,
    write_despite_fault: bool,
    calls: BTreeMap<Method, usize>,
    /// Idempotency keys of executions that wrote something, in order.
    applied: Vec<String>,
    next_request: u64,
    /// What [`Connector::follow_up`] answers for a `rotate`.
    follow_up: Option<FollowUp>,
    /// `(half, settled)`: [`Connector::settle_interrupted`] moves a target showing `half` to
    /// `settled`.
    settle: Option<(Value, Value)>,
}

impl FakeConnector {
    /// A healthy connector named `id` with [`default_capabilities`], every permission and no
    /// targets.
    pub fn new(id: &str) -> Self {
        Self {
            id: id.to_owned(),
            inner: Mutex::new(Inner {
                capabilities: default_capabilities(),
                targets: HashMap::new(),
                health: Health { healthy: true, detail: "fake provider".to_owned() },
                missing_permissions: Vec::new(),
                faults: BTreeMap::new(),
                drop_writes: false,
                skew_writes: None,
                write_despite_fault: false,
                calls: BTreeMap::new(),
                applied: Vec::new(),
                next_request: 1,
                follow_up: None,
                settle: None,
            }),
        }
    }

    /// Replaces the capabilities.
    pub fn with_capabilities(self, capabilities: Vec<Capability>) -> Self {
        self.lock().capabilities = capabilities;
        self
    }

    /// Adds a target in `state` (unprotected).
    pub fn with_target(self, target: Target, state: Value) -> Self {
        self.set_state(target, state);
        self
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Makes every completed `rotate` ask for `follow_up` ([`Connector::follow_up`]).
    pub fn set_follow_up(&self, follow_up: Option<FollowUp>) {
        self.lock().follow_up = follow_up;
    }

    /// Makes [`Connector::settle_interrupted`] move a target whose state is `half` (what an
    /// interrupted multi-write change left) to `settled`.
    pub fn set_settle(&self, half: Value, settled: Value) {
        self.lock().settle = Some((half, settled));
    }

    /// Sets the live state of `target`, keeping its protected flag (changes made "by someone
    /// else", for drift and plan-change tests).
    pub fn set_state(&self, target: Target, state: Value) {
        let mut inner = self.lock();
        let protected = inner.targets.get(&target).is_some_and(|s| s.protected);
        let canonical = inner.targets.get(&target).and_then(|s| s.canonical.clone());
        inner.targets.insert(target, Snapshot { protected, canonical, state });
    }

    /// Sets the provider's canonical id of `target` (which must exist), as a provider that
    /// resolves aliases would report it.
    pub fn set_canonical(&self, target: &Target, canonical: Option<CanonicalTarget>) {
        if let Some(s) = self.lock().targets.get_mut(target) {
            s.canonical = canonical;
        }
    }

    /// Marks `target` protected or not. The target must exist.
    pub fn set_protected(&self, target: &Target, protected: bool) {
        if let Some(s) = self.lock().targets.get_mut(target) {
            s.protected = protected;
        }
    }

    /// Removes `target`; reads of it then fail with `NotFound`.
    pub fn remove(&self, target: &Target) {
        self.lock().targets.remove(target);
    }

    /// The live state of `target`, if it exists. Not counted as a call.
    pub fn state(&self, target: &Target) -> Option<Snapshot> {
        self.lock().targets.get(target).cloned()
    }

    /// Sets what [`Connector::health`] reports.
    pub fn set_healthy(&self, healthy: bool, detail: &str) {
        self.lock().health = Health { healthy, detail: detail.to_owned() };
    }

    /// Sets the permissions [`Connector::check_permissions`] reports missing.
    pub fn set_missing_permissions(&self, missing: Vec<String>) {
        self.lock().missing_permissions = missing;
    }

    /// Makes every later call of `method` fail with `error`, until [`Self::clear_fault`].
    pub fn fail(&self, method: Method, error: ConnectorError) {
        self.lock().faults.insert(method, error);
    }

    /// Stops injecting a fault into `method`.
    pub fn clear_fault(&self, method: Method) {
        self.lock().faults.remove(&method);
    }

    /// When true, `execute` and `rollback` report success but change nothing, so that
    /// verification sees the change was not applied.
    pub fn drop_writes(&self, drop: bool) {
        self.lock().drop_writes = drop;
    }

    /// Makes writes store `state` instead of the requested change (a partial or wrong write
    /// that verification must catch); `None` restores faithful writes.
    pub fn skew_writes(&self, state: Option<Value>) {
        self.lock().skew_writes = state;
    }

    /// When true, an `execute` with an injected fault still applies the change before it
    /// returns the fault: a provider that wrote although it answered with an error.
    pub fn write_despite_fault(&self, write: bool) {
        self.lock().write_despite_fault = write;
    }

    /// How many times `method` was called.
    pub fn calls(&self, method: Method) -> usize {
        self.lock().calls.get(&method).copied().unwrap_or(0)
    }

    /// Calls of every provider-facing method ([`Method::PROVIDER`]) together.
    pub fn provider_calls(&self) -> usize {
        let inner = self.lock();
        Method::PROVIDER.iter().map(|m| inner.calls.get(m).copied().unwrap_or(0)).sum()
    }

    /// Forgets the call counts.
    pub fn reset_calls(&self) {
        self.lock().calls.clear();
    }

    /// Idempotency keys of the executions that wrote something, in order.
    pub fn applied_keys(&self) -> Vec<String> {
        self.lock().applied.clone()
    }

    /// Counts the call, then returns the injected fault, if any.
    fn enter(&self, method: Method) -> Result<MutexGuard<'_, Inner>, ConnectorError> {
        let mut inner = self.lock();
        *inner.calls.entry(method).or_default() += 1;
        match inner.faults.get(&method) {
            Some(e) => Err(e.clone()),
            None => Ok(inner),
        }
    }
}

impl Inner {
    fn read(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.targets.get(target).cloned().ok_or_else(|| ConnectorError::not_found(format!("no such target {target}")))
    }

    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        find_capability(&self.capabilities, action.kind.name(), &action.target).ok_or_else(|| {
            ConnectorError::unsupported(format!("cannot {} a {}", action.kind, action.target.grant_type))
        })
    }

    fn request_id(&mut self) -> String {
        let id = format!("fake-{}", self.next_request);
        self.next_request += 1;
        id
    }
}

#[async_trait]
impl Connector for FakeConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        let mut inner = self.lock();
        *inner.calls.entry(Method::Capabilities).or_default() += 1;
        inner.capabilities.clone()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        Ok(self.enter(Method::Health)?.health.clone())
    }

    /// A test double: it names no provider call.
    fn permission_map(&self) -> &'static [PermissionNeed] {
        &[]
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let missing = self.enter(Method::CheckPermissions)?.missing_permissions.clone();
        Ok(Permissions { missing, ..Permissions::default() })
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.enter(Method::Snapshot)?.read(target)
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        let inner = self.enter(Method::Plan)?;
        inner.capability(action)?;
        Ok(PlannedChange {
            expected_after: Snapshot { state: apply_kind(&action.kind, &before.state), ..before.clone() },
            description: format!("{} {}", action.kind, action.target),
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        let mut inner = match self.enter(Method::Execute) {
            Ok(inner) => inner,
            Err(fault) => {
                let mut inner = self.lock();
                if inner.write_despite_fault
                    && let Ok(live) = inner.read(&action.target)
                {
                    let after = Snapshot { state: apply_kind(&action.kind, &live.state), ..live };
                    inner.targets.insert(action.target.clone(), after);
                }
                return Err(fault);
            }
        };
        inner.capability(action)?;
        let live = inner.read(&action.target)?;
        let after = Snapshot { state: apply_kind(&action.kind, &live.state), ..live.clone() };
        if after == live {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        if !inner.drop_writes {
            let after = match &inner.skew_writes {
                Some(state) => Snapshot { state: state.clone(), ..live.clone() },
                None => after,
            };
            inner.targets.insert(action.target.clone(), after);
            inner.applied.push(action.idempotency_key.clone());
        }
        let request_id = inner.request_id();
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec![request_id] })
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        let inner = self.enter(Method::Verify)?;
        inner.capability(action)?;
        let observed = inner.read(&action.target)?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    fn follow_up(&self, action: &Action, _after: &Snapshot) -> Option<FollowUp> {
        (action.kind == ActionKind::Rotate).then(|| self.lock().follow_up.clone()).flatten()
    }

    async fn settle_interrupted(
        &self,
        action: &Action,
        _before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Option<Settled>, ConnectorError> {
        let mut inner = self.lock();
        let Some((half, settled)) = inner.settle.clone() else { return Ok(None) };
        if live.state != half {
            return Ok(None);
        }
        let now = Snapshot { state: settled, ..live.clone() };
        inner.targets.insert(action.target.clone(), now);
        let request_id = inner.request_id();
        Ok(Some(Settled { note: "the fake took back a half-made write".to_owned(), request_ids: vec![request_id] }))
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        let mut inner = self.enter(Method::Rollback)?;
        let capability = inner.capability(action)?;
        if capability.reversibility == Reversibility::Irreversible {
            return Err(ConnectorError::permanent(format!("{} cannot be undone", action.kind)));
        }
        let live = inner.read(&action.target)?;
        if live == *before {
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        if !inner.drop_writes {
            inner.targets.insert(action.target.clone(), before.clone());
        }
        let request_id = inner.request_id();
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec![request_id] })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ActionBuilder, TargetBuilder, default_target, snap};

    #[track_caller]
    fn check_apply(kind: ActionKind, before: Value, expected: Value) {
        assert_eq!(apply_kind(&kind, &before), expected);
    }

    #[test]
    fn kinds_set_one_field() {
        check_apply(ActionKind::Revoke, json!({"granted": true, "x": 1}), json!({"granted": false, "x": 1}));
        check_apply(ActionKind::Reduce { to: "pull".into() }, json!({"level": "admin"}), json!({"level": "pull"}));
        check_apply(ActionKind::Suspend, json!({}), json!({"active": false}));
        check_apply(ActionKind::RevokeSessions, json!(null), json!({"sessions": 0}));
        check_apply(ActionKind::ForcePasswordReset, json!({}), json!({"password_reset_required": true}));
        check_apply(ActionKind::Notify, json!([1]), json!([1]));
    }

    #[tokio::test]
    async fn execute_verify_rollback_round_trip() {
        let c = FakeConnector::new("sandbox").with_target(default_target(), json!({"granted": true}));
        let action = ActionBuilder::new().build();
        let before = c.snapshot(&action.target).await.expect("snapshot");
        let planned = c.plan(&action, &before).await.expect("plan");
        assert_eq!(planned.expected_after, snap(json!({"granted": false})));
        assert_eq!(c.execute(&action, &before).await.expect("execute").status, OutcomeStatus::Applied);
        assert_eq!(c.execute(&action, &before).await.expect("again").status, OutcomeStatus::AlreadyInState);
        assert_eq!(c.applied_keys(), std::slice::from_ref(&action.idempotency_key));
        assert!(c.verify(&action, &planned).await.expect("verify").matches);
        let after = c.state(&action.target).expect("state");
        c.rollback(&action, &before, &after).await.expect("rollback");
        assert_eq!(c.state(&action.target), Some(before));
        assert_eq!(c.calls(Method::Execute), 2);
        assert_eq!(c.provider_calls(), 6);
    }

    #[tokio::test]
    async fn faults_unsupported_and_dropped_writes() {
        let c = FakeConnector::new("sandbox").with_target(default_target(), json!({"granted": true}));
        let action = ActionBuilder::new().build();
        let before = snap(json!({"granted": true}));
        c.fail(Method::Execute, ConnectorError::permanent("nope").with_request_id("r1"));
        let e = c.execute(&action, &before).await.expect_err("fault");
        assert_eq!(e.to_string(), "permanent failure: nope (request id r1)");
        c.clear_fault(Method::Execute);

        c.drop_writes(true);
        let planned = c.plan(&action, &before).await.expect("plan");
        c.execute(&action, &before).await.expect("dropped");
        assert!(!c.verify(&action, &planned).await.expect("verify").matches);

        let unsupported = ActionBuilder::new().target(TargetBuilder::new().grant_type("role").build()).build();
        let e = c.plan(&unsupported, &before).await.expect_err("unsupported");
        assert_eq!(e.kind, remediation_core::ConnectorErrorKind::Unsupported);
        let missing = ActionBuilder::new().target(TargetBuilder::new().identity("nobody").build()).build();
        assert!(c.snapshot(&missing.target).await.is_err());
    }
}
