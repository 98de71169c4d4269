//! Engine unit tests against the mockall mocks: which collaborator the engine calls, with
//! what, and which it must never call. Multi-step behaviour against a stateful store lives in
//! `tests/it/engine.rs`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

use crate::mocks::{MockConnector, MockLimitPolicy, MockSafetyPolicy, MockStore};
use crate::{
    Action, ActionDetail, ActionId, ActionKind, ActionRequest, Actor, BeginOutcome, Capability, ConnectorError, Engine,
    EngineError, EngineParts, ExecuteOutcome, GateOutcome, Health, KindName, LimitReached, ManualClock, Mode, Outcome,
    OutcomeStatus, Permissions, Plan, PlannedChange, PolicyDecision, Reversibility, Role, RollbackOutcome, SlotRequest,
    Snapshot, State, StateChange, Target, TransitionRecord, Verification,
};

fn t0() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

fn target(grant_type: &str) -> Target {
    Target {
        identity: "alice".to_owned(),
        resource: Some("admins".to_owned()),
        grant: None,
        grant_type: grant_type.to_owned(),
    }
}

fn cap(kind: KindName, grant_type: &str) -> Capability {
    Capability { kind, grant_type: grant_type.to_owned(), reversibility: Reversibility::Reversible, observable: true }
}

fn snap(v: Value) -> Snapshot {
    Snapshot::new(v)
}

fn before() -> Snapshot {
    snap(json!({"granted": true}))
}

fn after() -> Snapshot {
    snap(json!({"granted": false}))
}

fn request(kind: ActionKind, grant_type: &str, dry_run: bool) -> ActionRequest {
    ActionRequest {
        connector: "sandbox".to_owned(),
        kind,
        target: target(grant_type),
        reason: "test reason".to_owned(),
        control_id: None,
        finding_id: None,
        dry_run,
        campaign: None,
    }
}

fn action(state: State) -> Action {
    let id = ActionId(uuid::Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001));
    Action {
        id,
        kind: ActionKind::Revoke,
        target: target("group_membership"),
        connector: "sandbox".to_owned(),
        control_id: None,
        finding_id: None,
        canonical: None,
        requested_by: "local:alice".to_owned(),
        reason: "test reason".to_owned(),
        mode: Mode::Manual,
        idempotency_key: format!("remediation-{id}"),
        state,
        created_at: t0(),
        updated_at: t0(),
        handle: None,
        campaign: None,
    }
}

fn plan(action: &Action) -> Plan {
    Plan::new(
        &action.connector,
        &action.kind,
        &action.target,
        before(),
        PlannedChange { expected_after: after(), description: "revoke".to_owned() },
        Reversibility::Reversible,
    )
    .expect("plan")
}

fn detail(state: State) -> ActionDetail {
    let action = action(state);
    let plan = plan(&action);
    ActionDetail {
        action,
        plan: Some(plan),
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
    }
}

/// A `sandbox` connector supporting `caps`, healthy, with every permission, reading `live`
/// and planning [`after`]. Writes have no expectation: each test adds its own.
fn connector(caps: Vec<Capability>, live: Snapshot) -> MockConnector {
    let mut c = MockConnector::new();
    c.expect_id().return_const("sandbox".to_owned());
    c.expect_capabilities().returning(move || caps.clone());
    c.expect_health().returning(|| Ok(Health { healthy: true, detail: "ok".to_owned() }));
    c.expect_check_permissions().returning(|| Ok(Permissions::default()));
    c.expect_snapshot().returning(move |_| Ok(live.clone()));
    c.expect_plan().returning(|_, _| Ok(PlannedChange { expected_after: after(), description: "revoke".to_owned() }));
    c.expect_reach().returning(|_, _| Ok(None));
    c
}

fn revoke_caps() -> Vec<Capability> {
    vec![cap(KindName::Revoke, "group_membership")]
}

fn policy(mode: Mode, gates: Vec<GateOutcome>, min_approvals: u32) -> MockSafetyPolicy {
    let mut p = MockSafetyPolicy::new();
    p.expect_approval_ttl().return_const(time::Duration::days(7));
    p.expect_forced_dry_run().return_const(false);
    p.expect_evaluate().returning(move |_| PolicyDecision {
        mode,
        gates: gates.clone(),
        risk: crate::Risk::from_score(1),
    });
    p.expect_min_approvals().return_const(min_approvals);
    p.expect_rollback_window().return_const(Duration::hours(2));
    p.expect_write_refusal().return_const(None::<String>);
    p.expect_rollback_requires_approval().return_const(false);
    p
}

fn pass() -> Vec<GateOutcome> {
    vec![GateOutcome::pass("validation", "ok")]
}

fn limits(slots: Vec<SlotRequest>) -> MockLimitPolicy {
    let mut l = MockLimitPolicy::new();
    l.expect_slots_for().returning(move |_| slots.clone());
    l
}

fn engine(store: MockStore, connector: MockConnector, policy: MockSafetyPolicy, limits: MockLimitPolicy) -> Engine {
    Engine::new(EngineParts {
        store: Arc::new(store),
        connectors: vec![Arc::new(connector)],
        clock: Arc::new(ManualClock::new(t0())),
        policy: Arc::new(policy),
        limits: Arc::new(limits),
    })
}

/// Records every `apply` and answers with the action in the new state.
#[derive(Clone, Default)]
struct Applied(Arc<Mutex<Vec<StateChange>>>);

impl Applied {
    fn expect(&self, store: &mut MockStore, base: Action, times: usize) {
        let log = self.clone();
        store.expect_apply().times(times).returning(move |change| {
            log.0.lock().expect("lock").push(change.clone());
            Ok(Action { state: change.record.to, updated_at: change.record.at, ..base.clone() })
        });
    }

    fn events(&self) -> Vec<(String, State)> {
        self.0.lock().expect("lock").iter().map(|c| (c.record.event.clone(), c.record.to)).collect()
    }

    fn last(&self) -> StateChange {
        self.0.lock().expect("lock").last().cloned().expect("an apply call")
    }
}

/// Records every audit note (a refused attempt) the engine appends, expecting `times` of them.
#[derive(Clone, Default)]
struct Notes(Arc<Mutex<Vec<crate::SettingsRecord>>>);

impl Notes {
    fn expect(store: &mut MockStore, times: usize) -> Self {
        let notes = Self::default();
        let log = notes.clone();
        store.expect_append_note().times(times).returning(move |r| {
            log.0.lock().expect("lock").push(r.clone());
            Ok(())
        });
        notes
    }

    /// `(setting_event, actor)` of every note, in order.
    fn events(&self) -> Vec<(String, String)> {
        self.0.lock().expect("lock").iter().map(|r| (r.setting_event.clone(), r.actor.clone())).collect()
    }
}

fn refused_rule(e: &EngineError) -> Option<&str> {
    match e {
        EngineError::Refused { rule, .. } => Some(rule),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------
// Unsupported (kind, grant type): refused before any provider request.

#[track_caller]
fn check_unsupported(caps: Vec<Capability>, kind: ActionKind, grant_type: &str, supported: &str) {
    let make_connector = |caps: Vec<Capability>| {
        let mut c = MockConnector::new();
        c.expect_id().return_const("sandbox".to_owned());
        c.expect_capabilities().returning(move || caps.clone());
        c.expect_health().times(0);
        c.expect_check_permissions().times(0);
        c.expect_snapshot().times(0);
        c.expect_plan().times(0);
        c.expect_execute().times(0);
        c.expect_verify().times(0);
        c.expect_rollback().times(0);
        c
    };
    let no_policy = || {
        let mut p = MockSafetyPolicy::new();
        p.expect_approval_ttl().return_const(time::Duration::days(7));
        p.expect_forced_dry_run().return_const(false);
        p.expect_forced_dry_run().return_const(false);
        p.expect_evaluate().times(0);
        p
    };
    let check = |e: EngineError| match e {
        EngineError::Unsupported { connector, kind: k, grant_type: g, supported: s } => {
            assert_eq!(
                (connector.as_str(), k, g.as_str(), s.as_str()),
                ("sandbox", kind.name(), grant_type, supported)
            );
        }
        other => panic!("expected Unsupported, got {other:?}"),
    };

    // At suggestion.
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    store.expect_create_action().times(0);
    let notes = Notes::expect(&mut store, 1);
    let e = engine(store, make_connector(caps.clone()), no_policy(), MockLimitPolicy::new());
    let err =
        block_on(e.suggest(request(kind.clone(), grant_type, false), &Actor::new("local:alice", Role::Requester)))
            .expect_err("unsupported at suggest");
    check(err);
    assert_eq!(notes.events(), [("suggestion_refused".to_owned(), "local:alice".to_owned())]);

    // At execution (the connector lost the capability since the action was approved).
    let mut d = detail(State::Approved);
    d.action.kind = kind.clone();
    d.action.target.grant_type = grant_type.to_owned();
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    store.expect_get().returning(move |_| Ok(d.clone()));
    store.expect_begin_execution().times(0);
    store.expect_apply().times(0);
    let notes = Notes::expect(&mut store, 1);
    let mut l = MockLimitPolicy::new();
    l.expect_slots_for().times(0);
    let e = engine(store, make_connector(caps), no_policy(), l);
    let err = block_on(e.execute(action(State::Approved).id, &Actor::system(), false)).expect_err("unsupported");
    check(err);
    assert_eq!(notes.events(), [("execution_refused".to_owned(), "system".to_owned())]);
}

#[test]
fn unsupported_kind_or_grant_type_fails_before_any_provider_request() {
    let revoke = || vec![cap(KindName::Revoke, "group_membership")];
    check_unsupported(revoke(), ActionKind::Revoke, "account", "revoke/group_membership");
    check_unsupported(revoke(), ActionKind::Suspend, "group_membership", "revoke/group_membership");
    check_unsupported(
        revoke(),
        ActionKind::Reduce { to: "pull".to_owned() },
        "group_membership",
        "revoke/group_membership",
    );
    check_unsupported(Vec::new(), ActionKind::Revoke, "group_membership", "");
    check_unsupported(
        vec![cap(KindName::Suspend, "account"), cap(KindName::Revoke, "role")],
        ActionKind::Revoke,
        "group_membership",
        "suspend/account, revoke/role",
    );
}

// ---------------------------------------------------------------------------------------
// Suggest: mode, gates and dry-run decide the first state; refusals store nothing.

struct Stored {
    state: State,
    mode: Mode,
    decided_by: Option<&'static str>,
    comment_has: &'static str,
}

#[track_caller]
fn check_suggest(mode: Mode, gates: Vec<GateOutcome>, dry_run: bool, expected: Result<Stored, &str>) {
    let created: Arc<Mutex<Vec<(ActionDetail, TransitionRecord)>>> = Arc::default();
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    let log = Arc::clone(&created);
    store.expect_create_action().times(usize::from(expected.is_ok())).returning(move |d, r| {
        log.lock().expect("lock").push((d.clone(), r.clone()));
        Ok(Some(7))
    });
    let notes = Notes::expect(&mut store, usize::from(expected.is_err()));
    let mut c = connector(revoke_caps(), before());
    c.expect_execute().times(0);
    let e = engine(store, c, policy(mode, gates, 1), MockLimitPolicy::new());
    let result = block_on(e.suggest(
        request(ActionKind::Revoke, "group_membership", dry_run),
        &Actor::new("local:alice", Role::Requester),
    ));
    match (result, expected) {
        (Ok(s), Ok(want)) => {
            let created = created.lock().expect("lock");
            let [(detail, record)] = created.as_slice() else {
                panic!("one create_action call, got {}", created.len())
            };
            assert_eq!((s.action.state, s.action.mode), (want.state, want.mode));
            assert_eq!(s.action.handle, Some(7), "the handle the store gave");
            let mut stored = detail.action.clone();
            stored.handle = Some(7);
            assert_eq!(stored, s.action);
            assert_eq!(detail.plan.as_ref(), Some(&s.plan));
            assert_eq!((record.from, record.to, record.event.as_str()), (None, want.state, "suggest"));
            assert_eq!((record.actor.as_str(), record.initiated_by.as_str()), ("local:alice", "local:alice"));
            assert_eq!(record.plan_hash.as_ref(), Some(&s.plan.plan_hash));
            assert_eq!(record.before_hash, Some(before().hash().expect("hash")));
            assert_eq!(record.decided_by.as_deref(), want.decided_by);
            let comment = record.comment.as_deref().unwrap_or_default();
            assert!(comment.contains("test reason"), "comment {comment:?} keeps the reason");
            assert!(comment.contains(want.comment_has), "comment {comment:?} lacks {:?}", want.comment_has);
            assert_eq!(s.plan.expected_after, after());
        }
        (Err(e), Err(rule)) => {
            assert_eq!(refused_rule(&e), Some(rule), "{e:?}");
            // A refused suggestion stores no action but is in the audit.
            assert_eq!(notes.events(), [("suggestion_refused".to_owned(), "local:alice".to_owned())]);
        }
        (got, want) => panic!("got {got:?}, expected {:?}", want.map(|w| w.state)),
    }
}

#[test]
fn suggest_resolves_the_first_state() {
    use Mode::*;
    let stored = |state, mode, decided_by, comment_has| Ok(Stored { state, mode, decided_by, comment_has });
    let soft = || vec![GateOutcome::pass("validation", "ok"), GateOutcome::needs_approval("reversibility", "lossy")];
    let hard = || vec![GateOutcome::pass("validation", "ok"), GateOutcome::refuse("enablement", "disabled")];

    check_suggest(Manual, pass(), false, stored(State::PendingApproval, Manual, None, ""));
    check_suggest(Auto, pass(), false, stored(State::Approved, Auto, Some("system"), ""));
    // A failed gate turns auto into manual and says which gate in the record.
    check_suggest(Auto, soft(), false, stored(State::PendingApproval, Manual, None, "reversibility"));
    check_suggest(Manual, soft(), false, stored(State::PendingApproval, Manual, None, "reversibility"));
    check_suggest(Advisory, pass(), false, stored(State::Suggested, Advisory, None, ""));
    check_suggest(Advisory, soft(), false, stored(State::Suggested, Advisory, None, "reversibility"));
    check_suggest(Manual, pass(), true, stored(State::DryRun, Manual, None, ""));
    check_suggest(Auto, pass(), true, stored(State::DryRun, Auto, None, ""));
    check_suggest(Advisory, pass(), true, stored(State::DryRun, Advisory, None, ""));
    // A refusing gate stores nothing, whatever the mode.
    check_suggest(Manual, hard(), false, Err("enablement"));
    check_suggest(Auto, hard(), false, Err("enablement"));
    check_suggest(Auto, hard(), true, Err("enablement"));
    check_suggest(Advisory, hard(), false, Err("enablement"));
}

#[test]
fn viewers_cannot_suggest_and_nothing_is_read() {
    let mut c = MockConnector::new();
    c.expect_capabilities().times(0);
    c.expect_id().return_const("sandbox".to_owned());
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    store.expect_create_action().times(0);
    let notes = Notes::expect(&mut store, 1);
    let mut p = MockSafetyPolicy::new();
    p.expect_approval_ttl().return_const(time::Duration::days(7));
    p.expect_forced_dry_run().return_const(false);
    let e = engine(store, c, p, MockLimitPolicy::new());
    let err = block_on(
        e.suggest(request(ActionKind::Revoke, "group_membership", false), &Actor::new("local:victor", Role::Viewer)),
    )
    .expect_err("viewer");
    assert_eq!(refused_rule(&err), Some("roles"));
    assert_eq!(notes.events(), [("suggestion_refused".to_owned(), "local:victor".to_owned())]);
}

/// A connector that must not be asked anything: the target is refused before it.
fn untouched_connector() -> MockConnector {
    let mut c = MockConnector::new();
    c.expect_id().return_const("sandbox".to_owned());
    c.expect_capabilities().times(0);
    c.expect_health().times(0);
    c.expect_check_permissions().times(0);
    c.expect_snapshot().times(0);
    c.expect_plan().times(0);
    c.expect_execute().times(0);
    c
}

#[test]
fn identifiers_that_could_reshape_a_provider_request_are_refused_before_the_connector() {
    type Spoil = fn(&mut Target);
    let cases: [(&str, Spoil); 6] = [
        ("identity", |t| t.identity = "..".to_owned()),
        ("identity", |t| t.identity = "%2E%2e".to_owned()),
        ("resource", |t| t.resource = Some(".".to_owned())),
        ("grant", |t| t.grant = Some("a/../b".to_owned())),
        ("identity", |t| t.identity = "alice\nx-admin: yes".to_owned()),
        ("identity", |t| t.identity = String::new()),
    ];
    for (field, spoil) in cases {
        // At suggestion.
        let mut store = MockStore::new();
        store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
        store.expect_create_action().times(0);
        let notes = Notes::expect(&mut store, 1);
        let mut p = MockSafetyPolicy::new();
        p.expect_approval_ttl().return_const(time::Duration::days(7));
        p.expect_forced_dry_run().return_const(false);
        p.expect_evaluate().times(0);
        let e = engine(store, untouched_connector(), p, MockLimitPolicy::new());
        let mut req = request(ActionKind::Revoke, "group_membership", false);
        spoil(&mut req.target);
        let err = block_on(e.suggest(req, &Actor::new("local:alice", Role::Requester))).expect_err("refused");
        assert_eq!(refused_rule(&err), Some("validation"), "{err}");
        assert!(err.to_string().contains(&format!("target's {field}")), "{err}");
        // The refused attempt is in the audit.
        assert_eq!(notes.events(), [("suggestion_refused".to_owned(), "local:alice".to_owned())]);

        // At execution, for an action stored before the rule existed.
        let mut d = detail(State::Approved);
        spoil(&mut d.action.target);
        let mut store = MockStore::new();
        store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
        store.expect_get().returning(move |_| Ok(d.clone()));
        store.expect_begin_execution().times(0);
        store.expect_apply().times(0);
        let notes = Notes::expect(&mut store, 1);
        let mut p = MockSafetyPolicy::new();
        p.expect_approval_ttl().return_const(time::Duration::days(7));
        p.expect_forced_dry_run().return_const(false);
        p.expect_evaluate().times(0);
        let e = engine(store, untouched_connector(), p, MockLimitPolicy::new());
        let err = block_on(e.execute(action(State::Approved).id, &Actor::system(), false)).expect_err("refused");
        assert_eq!(refused_rule(&err), Some("validation"), "{err}");
        assert_eq!(notes.events(), [("execution_refused".to_owned(), "system".to_owned())]);
    }
}

// ---------------------------------------------------------------------------------------
// Approve: separation of duties and quorum.

fn history_record(event: &str, decided_by: Option<&str>) -> TransitionRecord {
    let a = action(State::PendingApproval);
    TransitionRecord {
        action_id: a.id,
        from: None,
        to: State::PendingApproval,
        event: event.to_owned(),
        actor: decided_by.unwrap_or("system").to_owned(),
        credential: None,
        initiated_by: a.requested_by.clone(),
        decided_by: decided_by.map(str::to_owned),
        at: t0(),
        comment: None,
        connector: a.connector.clone(),
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

/// `history` is the action's transitions as (event, decided_by); the action is pending.
/// `approver` is a principal, optionally with the credential it used (`bob/laptop`).
#[track_caller]
fn check_approve(min_approvals: u32, history: &[(&str, Option<&str>)], approver: &str, expected: Result<State, &str>) {
    let d = detail(State::PendingApproval);
    let records: Vec<TransitionRecord> = history.iter().map(|(e, who)| history_record(e, *who)).collect();
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    let get = d.clone();
    store.expect_get().returning(move |_| Ok(get.clone()));
    store.expect_transitions().returning(move |_| Ok(records.clone()));
    let applied = Applied::default();
    applied.expect(&mut store, d.action.clone(), usize::from(expected.is_ok()));
    let notes = Notes::expect(&mut store, usize::from(expected.is_err()));
    let mut c = MockConnector::new();
    c.expect_id().return_const("sandbox".to_owned());
    c.expect_capabilities().times(0);
    c.expect_snapshot().times(0);
    let e = engine(store, c, policy(Mode::Manual, pass(), min_approvals), MockLimitPolicy::new());
    let (principal, credential) = approver.split_once('/').map_or((approver, None), |(p, c)| (p, Some(c)));
    let mut actor = Actor::new(principal, Role::Approver);
    if let Some(c) = credential {
        actor = actor.with_credential(c);
    }
    let result = block_on(e.approve(d.action.id, &actor, Some("ok".to_owned())));
    match (result, expected) {
        (Ok(a), Ok(state)) => {
            assert_eq!(a.state, state);
            let change = applied.last();
            let r = &change.record;
            assert_eq!((r.event.as_str(), r.from, r.to), ("approve", Some(State::PendingApproval), state));
            // The decision names the principal; the credential is recorded beside it.
            assert_eq!(r.decided_by.as_deref(), Some(principal));
            assert_eq!((r.actor.as_str(), r.credential.as_deref()), (principal, credential));
            assert_eq!(r.plan_hash.as_ref(), d.plan.as_ref().map(|p| &p.plan_hash));
            assert_eq!(r.comment.as_deref(), Some("ok"));
        }
        (Err(e), Err(rule)) => {
            assert_eq!(refused_rule(&e), Some(rule), "{e:?}");
            // The refusal is recorded under the principal, whichever of its tokens was used.
            assert_eq!(notes.events(), [("approval_refused".to_owned(), principal.to_owned())]);
        }
        (got, want) => panic!("got {got:?}, expected {want:?}"),
    }
}

#[test]
fn approvals_need_distinct_approvers_other_than_the_requester() {
    let suggest = ("suggest", None);
    let sod = Err("separation of duties");
    // The requester never approves their own action, whatever the quorum.
    check_approve(1, &[suggest], "local:alice", sod);
    check_approve(2, &[suggest, ("approve", Some("local:bob"))], "local:alice", sod);
    check_approve(1, &[suggest], "local:bob", Ok(State::Approved));
    check_approve(2, &[suggest], "local:bob", Ok(State::PendingApproval));
    check_approve(2, &[suggest, ("approve", Some("local:bob"))], "local:carol", Ok(State::Approved));
    // The same approver twice does not make a quorum of two.
    check_approve(2, &[suggest, ("approve", Some("local:bob"))], "local:bob", sod);
    check_approve(
        3,
        &[suggest, ("approve", Some("local:bob")), ("approve", Some("local:carol"))],
        "local:dave",
        Ok(State::Approved),
    );
    // A plan change voids earlier approvals: bob may approve again, and counts once.
    check_approve(
        2,
        &[suggest, ("approve", Some("local:bob")), ("approve", Some("local:carol")), ("plan_changed", None)],
        "local:bob",
        Ok(State::PendingApproval),
    );
    // Zero is treated as one.
    check_approve(0, &[suggest], "local:bob", Ok(State::Approved));
    // Principals, not credentials, are compared: a second token of the requester, or of an
    // approver who already approved, is still the same person.
    check_approve(1, &[suggest], "local:alice/alice-appr", sod);
    check_approve(2, &[suggest, ("approve", Some("bob"))], "bob/bob-second", sod);
    check_approve(2, &[suggest, ("approve", Some("bob"))], "carol/laptop", Ok(State::Approved));
}

// ---------------------------------------------------------------------------------------
// Execute.

struct ExecCase {
    /// What the connector reads at execution.
    live: Snapshot,
    /// What `begin_execution` answers: `None` starts, `Some` reports a full window.
    full: Option<LimitReached>,
    /// What `connector.execute` returns.
    execute: Result<Outcome, ConnectorError>,
    /// What `connector.verify` returns.
    verify: Result<Verification, ConnectorError>,
    dry_run: bool,
}

impl Default for ExecCase {
    fn default() -> Self {
        Self {
            live: before(),
            full: None,
            execute: Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec!["req-1".to_owned()] }),
            verify: Ok(Verification { observed: after(), matches: true }),
            dry_run: false,
        }
    }
}

#[derive(Debug)]
struct ExecExpect {
    outcome: &'static str,
    /// `(event, to)` of every `store.apply`, in order.
    applied: &'static [(&'static str, State)],
    begin: usize,
    execute: usize,
    verify: usize,
    check_limits: usize,
    /// Text the last applied record's comment must contain.
    comment_has: &'static str,
}

fn exec_slot() -> SlotRequest {
    SlotRequest { key: "global".to_owned(), limit: 1, window_secs: 3600 }
}

#[track_caller]
fn check_execute(case: ExecCase, want: ExecExpect) {
    let d = detail(State::Approved);
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    let get = d.clone();
    store.expect_get().returning(move |_| Ok(get.clone()));
    let applied = Applied::default();
    applied.expect(&mut store, d.action.clone(), want.applied.len());
    let full = case.full.clone();
    let base = d.action.clone();
    let slots = vec![exec_slot()];
    let expected_slots = slots.clone();
    store
        .expect_begin_execution()
        .times(want.begin)
        .withf(move |change, slots, enforce| {
            *enforce
                && slots == expected_slots.as_slice()
                && change.record.event == "begin_execution"
                && change.record.from == Some(State::Approved)
                && change.record.to == State::Executing
                && change.record.at == t0()
                && change.update.before == Some(before())
                && change.record.before_state == Some(before())
        })
        .returning(move |change, _, _| {
            Ok(match &full {
                Some(l) => BeginOutcome::LimitReached(l.clone()),
                None => BeginOutcome::Started(Action { state: change.record.to, ..base.clone() }),
            })
        });
    let expected_slots = slots.clone();
    let full = case.full.clone();
    store
        .expect_check_limits()
        .times(want.check_limits)
        .withf(move |slots, at| slots == expected_slots.as_slice() && *at == t0())
        .returning(move |_, _| Ok(full.clone()));
    let mut c = connector(revoke_caps(), case.live.clone());
    let execute = case.execute.clone();
    c.expect_execute().times(want.execute).returning(move |_, _| execute.clone());
    let verify = case.verify.clone();
    c.expect_verify().times(want.verify).returning(move |_, _| verify.clone());
    c.expect_follow_up().returning(|_, _| None);
    c.expect_rollback().times(0);
    store.expect_append_note().times(0);
    let e = engine(store, c, policy(Mode::Manual, pass(), 1), limits(slots));

    let out = block_on(e.execute(d.action.id, &Actor::new("local:bob", Role::Approver), case.dry_run))
        .expect("execute returns an outcome");
    let kind = match &out {
        ExecuteOutcome::Completed { .. } => "completed",
        ExecuteOutcome::Failed { .. } => "failed",
        ExecuteOutcome::Held { .. } => "held",
        ExecuteOutcome::HeldByBreaker { .. } => "held_by_breaker",
        ExecuteOutcome::PlanChanged { .. } => "plan_changed",
        ExecuteOutcome::Requeued { .. } => "requeued",
        ExecuteOutcome::DryRun { .. } => "dry_run",
    };
    assert_eq!(kind, want.outcome, "{out:?}");
    let expected: Vec<(String, State)> = want.applied.iter().map(|(e, s)| ((*e).to_owned(), *s)).collect();
    assert_eq!(applied.events(), expected);
    if !want.comment_has.is_empty() {
        let comment = applied.last().record.comment.unwrap_or_default();
        assert!(comment.contains(want.comment_has), "comment {comment:?} lacks {:?}", want.comment_has);
    }
    match out {
        ExecuteOutcome::Completed { action, after: observed } => {
            let change = applied.last();
            let until = t0() + Duration::hours(2);
            assert_eq!(action.state, State::Completed);
            assert_eq!(observed, after());
            assert_eq!(change.record.rollback_expires_at, Some(until));
            assert_eq!(change.update.rollback_expires_at, Some(until));
            assert_eq!(change.update.after, Some(after()));
            assert_eq!(change.record.after_hash, Some(after().hash().expect("hash")));
            assert_eq!(change.record.request_ids, ["req-1"]);
            // The audit shows what changed, not only hashes of it.
            assert_eq!(change.record.before_state, Some(before()));
            assert_eq!(change.record.after_state, Some(after()));
        }
        ExecuteOutcome::Failed { action, error } => {
            assert_eq!(action.state, State::Failed);
            assert_eq!(applied.last().update.last_error, Some(Some(error)));
        }
        ExecuteOutcome::Held { action, limit } => {
            assert_eq!(action.state, State::Held);
            assert_eq!(Some(limit), case.full);
        }
        ExecuteOutcome::HeldByBreaker { action } => panic!("no breaker in these cases: {action:?}"),
        ExecuteOutcome::Requeued { action, .. } => panic!("no throttling in these cases: {action:?}"),
        ExecuteOutcome::PlanChanged { action, changes } => {
            assert!(!changes.is_empty());
            assert_eq!(action.state, if case.dry_run { State::Approved } else { State::PendingApproval });
            if !case.dry_run {
                let change = applied.last();
                let new_plan = change.update.plan.expect("the new plan is stored");
                assert_eq!(new_plan.before, case.live);
                assert_eq!(change.record.plan_hash, Some(new_plan.plan_hash));
            }
        }
        ExecuteOutcome::DryRun { plan, limit, .. } => {
            assert_eq!(plan.plan_hash, d.plan.as_ref().expect("plan").plan_hash);
            assert_eq!(limit, case.full);
        }
    }
}

#[test]
fn execute_outcomes() {
    let full = LimitReached { slot: exec_slot(), used: 1, frees_at: None };
    let drifted = || snap(json!({"granted": true, "owner": "someone else"}));
    let base = |outcome| ExecExpect {
        outcome,
        applied: &[],
        begin: 1,
        execute: 1,
        verify: 1,
        check_limits: 0,
        comment_has: "",
    };

    check_execute(
        ExecCase::default(),
        ExecExpect { applied: &[("execution_succeeded", State::Completed)], ..base("completed") },
    );
    // The live state differs from the approved plan: back to approval, nothing written.
    check_execute(
        ExecCase { live: drifted(), ..ExecCase::default() },
        ExecExpect {
            applied: &[("plan_changed", State::PendingApproval)],
            begin: 0,
            execute: 0,
            verify: 0,
            comment_has: "approvals are void",
            ..base("plan_changed")
        },
    );
    // A full window holds the action; the provider is not touched.
    check_execute(
        ExecCase { full: Some(full.clone()), ..ExecCase::default() },
        ExecExpect {
            applied: &[("hold", State::Held)],
            execute: 0,
            verify: 0,
            comment_has: "blast-radius limit `global` reached",
            ..base("held")
        },
    );
    // The provider refuses: failed, with the provider's message and request id.
    check_execute(
        ExecCase {
            execute: Err(ConnectorError::permanent("user is protected by policy P-7").with_request_id("req-9")),
            ..ExecCase::default()
        },
        ExecExpect {
            applied: &[("execution_failed", State::Failed)],
            verify: 0,
            comment_has: "user is protected by policy P-7 (request id req-9)",
            ..base("failed")
        },
    );
    // Applied but not observed.
    check_execute(
        ExecCase { verify: Ok(Verification { observed: before(), matches: false }), ..ExecCase::default() },
        ExecExpect { applied: &[("execution_failed", State::Failed)], comment_has: "not verified", ..base("failed") },
    );
    check_execute(
        ExecCase { verify: Err(ConnectorError::not_found("gone")), ..ExecCase::default() },
        ExecExpect { applied: &[("execution_failed", State::Failed)], comment_has: "not verified", ..base("failed") },
    );
    // Dry runs check limits without reserving and write nothing anywhere.
    let dry = ExecExpect { begin: 0, execute: 0, verify: 0, check_limits: 1, ..base("dry_run") };
    check_execute(ExecCase { dry_run: true, ..ExecCase::default() }, dry);
    check_execute(
        ExecCase { dry_run: true, full: Some(full), ..ExecCase::default() },
        ExecExpect { begin: 0, execute: 0, verify: 0, check_limits: 1, ..base("dry_run") },
    );
    check_execute(
        ExecCase { dry_run: true, live: drifted(), ..ExecCase::default() },
        ExecExpect { begin: 0, execute: 0, verify: 0, ..base("plan_changed") },
    );
}

// ---------------------------------------------------------------------------------------
// Rollback.

struct RollbackCase {
    state: State,
    /// Rollback deadline relative to now.
    expires_in: Duration,
    /// The live state when the rollback is asked for.
    live: Snapshot,
    /// What the connector's rollback returns.
    rollback: Result<(), ConnectorError>,
    /// What the target reads after the restore.
    restored: Snapshot,
    /// When set, the connector's rollback answers that the access waits for an invitation to
    /// be accepted, and this is the state it says such an invitation leaves.
    pending: Option<Snapshot>,
}

impl Default for RollbackCase {
    fn default() -> Self {
        Self {
            state: State::Completed,
            expires_in: Duration::hours(1),
            live: after(),
            rollback: Ok(()),
            restored: before(),
            pending: None,
        }
    }
}

/// `Ok` lists the `(event, to)` of every `store.apply` and a text the last comment contains;
/// `Err` names the refusing rule.
type RollbackExpect<'a> = Result<(&'a [(&'a str, State)], &'a str), &'a str>;

#[track_caller]
fn check_rollback(case: RollbackCase, expected: RollbackExpect<'_>) {
    let mut d = detail(case.state);
    d.before = Some(before());
    d.after = Some(after());
    d.rollback_expires_at = Some(t0() + case.expires_in);
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    store.expect_update_safety_state().returning(|_, _, _| Ok(()));
    let get = d.clone();
    store.expect_get().returning(move |_| Ok(get.clone()));
    let applied = Applied::default();
    applied.expect(&mut store, d.action.clone(), expected.map_or(0, |(a, _)| a.len()));

    let mut c = MockConnector::new();
    c.expect_id().return_const("sandbox".to_owned());
    let reads = AtomicUsize::new(0);
    let (live, restored) = (case.live.clone(), case.restored.clone());
    c.expect_snapshot().returning(move |_| {
        Ok(if reads.fetch_add(1, Ordering::SeqCst) == 0 { live.clone() } else { restored.clone() })
    });
    let result = case.rollback.clone();
    let status = if case.pending.is_some() { OutcomeStatus::PendingAcceptance } else { OutcomeStatus::Applied };
    let pending = case.pending.clone();
    c.expect_pending_acceptance_state().returning(move |_, _, _| pending.clone());
    let live = case.live.clone();
    c.expect_rollback()
        .times(usize::from(expected.is_ok()))
        .withf(move |_, b, a| *b == before() && *a == live)
        .returning(move |_, _, _| result.clone().map(|()| Outcome { status, request_ids: vec!["rb-1".to_owned()] }));
    c.expect_execute().times(0);
    let notes = Notes::expect(&mut store, usize::from(expected.is_err()));
    let e = engine(store, c, policy(Mode::Manual, pass(), 1), MockLimitPolicy::new());

    let out = block_on(e.rollback(d.action.id, &Actor::new("local:bob", Role::Approver), None));
    if let Ok(RollbackOutcome::RolledBack { .. }) = &out {
        let begun = applied.0.lock().expect("lock").first().cloned().expect("rollback record");
        assert_eq!((begun.record.before_state, begun.record.after_state), (Some(after()), Some(before())));
    }
    match (out, expected) {
        (Ok(out), Ok((events, comment_has))) => {
            let want: Vec<(String, State)> = events.iter().map(|(e, s)| ((*e).to_owned(), *s)).collect();
            assert_eq!(applied.events(), want);
            let last = applied.last();
            let comment = last.record.comment.clone().unwrap_or_default();
            assert!(comment.contains(comment_has), "comment {comment:?} lacks {comment_has:?}");
            match out {
                RollbackOutcome::RolledBack { action } => {
                    assert_eq!(action.state, State::RolledBack);
                    // The restore is recorded beside the execution's after-state, not over it.
                    assert_eq!(last.update.restored, Some(before()));
                    assert_eq!(last.update.after, None);
                    assert_eq!(last.record.request_ids, ["rb-1"]);
                    // The rollback's own before and after: the executed state, then the restored one.
                    assert_eq!(last.record.before_state, Some(after()));
                    assert_eq!(last.record.after_state, Some(before()));
                }
                RollbackOutcome::Failed { action, error } => {
                    assert_eq!(action.state, State::Failed);
                    assert!(error.starts_with("rollback failed, needs attention"), "{error}");
                }
                RollbackOutcome::RestoredPendingAcceptance { action } => {
                    assert_eq!(action.state, State::RolledBack);
                    assert_eq!(last.update.pending_acceptance, Some(true));
                    assert_eq!(last.update.restored, case.pending);
                    assert_eq!(last.record.after_state, case.pending);
                    assert_eq!(last.record.request_ids, ["rb-1"]);
                }
                RollbackOutcome::Requested { action } => panic!("no approval is required here: {action:?}"),
            }
        }
        (Err(e), Err(rule)) => {
            assert_eq!(refused_rule(&e), Some(rule), "{e:?}");
            assert_eq!(notes.events(), [("rollback_refused".to_owned(), "local:bob".to_owned())]);
        }
        (got, want) => panic!("got {got:?}, expected {want:?}"),
    }
}

#[test]
fn rollback_rules() {
    let ok: RollbackExpect<'_> =
        Ok((&[("rollback", State::RollingBack), ("rollback_succeeded", State::RolledBack)], ""));
    let restore_failed = |text| Ok((&[("rollback", State::RollingBack), ("rollback_failed", State::Failed)][..], text));

    check_rollback(RollbackCase::default(), ok);
    // The window is inclusive of its end and closed one nanosecond later.
    check_rollback(RollbackCase { expires_in: Duration::ZERO, ..RollbackCase::default() }, ok);
    check_rollback(
        RollbackCase { expires_in: -Duration::nanoseconds(1), ..RollbackCase::default() },
        Err("rollback window"),
    );
    check_rollback(RollbackCase { expires_in: -Duration::days(3), ..RollbackCase::default() }, Err("rollback window"));
    // Someone changed the target since: restoring could undo their change.
    check_rollback(
        RollbackCase { live: snap(json!({"granted": false, "note": "re-added elsewhere"})), ..RollbackCase::default() },
        Err("drift"),
    );
    check_rollback(RollbackCase { live: before(), ..RollbackCase::default() }, Err("drift"));
    // The restore fails, or is not observed.
    check_rollback(
        RollbackCase { rollback: Err(ConnectorError::permanent("provider down")), ..RollbackCase::default() },
        restore_failed("provider down"),
    );
    check_rollback(RollbackCase { restored: after(), ..RollbackCase::default() }, restore_failed("not observed"));
    // The restore sent an invitation: rolled back, but the access waits for it to be accepted,
    // and only the invitation the connector names is accepted as its result.
    let invited = snap(json!({"granted": false, "invited": true}));
    check_rollback(
        RollbackCase { pending: Some(invited.clone()), restored: invited.clone(), ..RollbackCase::default() },
        Ok((&[("rollback", State::RollingBack), ("rollback_succeeded", State::RolledBack)], "waits for")),
    );
    check_rollback(
        RollbackCase {
            pending: Some(invited),
            restored: snap(json!({"granted": false, "invited": "pull"})),
            ..RollbackCase::default()
        },
        restore_failed("not the one read back"),
    );
    // A failed action rolls back only a partial change, and has no window.
    check_rollback(RollbackCase { state: State::Failed, live: before(), ..RollbackCase::default() }, Err("rollback"));
    check_rollback(
        RollbackCase { state: State::Failed, expires_in: -Duration::days(3), ..RollbackCase::default() },
        ok,
    );
}

// ---------------------------------------------------------------------------------------
// Switches read just before the write; refusals audited once per reason for the worker.

/// Each attempt's outcome (`Err` names the refusing rule), the audit notes as
/// `(event, actor)`, and the `(event, to)` applied.
type RefusalRun = (Vec<Result<&'static str, String>>, Vec<(String, String)>, Vec<(String, State)>);

/// An approved action executed by `actor` `attempts` times while the policy refuses writes
/// on the safety state read from the store (`refusal` answers the n-th question, 0-based).
fn execute_under_refusals(
    actor: &Actor,
    attempts: usize,
    refusal: impl Fn(usize) -> Option<String> + Send + Sync + 'static,
) -> RefusalRun {
    let d = detail(State::Approved);
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState::default()));
    let get = d.clone();
    store.expect_get().returning(move |_| Ok(get.clone()));
    let base = d.action.clone();
    store
        .expect_begin_execution()
        .returning(move |change, _, _| Ok(BeginOutcome::Started(Action { state: change.record.to, ..base.clone() })));
    let applied = Applied::default();
    let log = applied.clone();
    let base = d.action.clone();
    store.expect_apply().returning(move |change| {
        log.0.lock().expect("lock").push(change.clone());
        Ok(Action { state: change.record.to, ..base.clone() })
    });
    let notes = Notes::default();
    let log = notes.clone();
    store.expect_append_note().returning(move |r| {
        log.0.lock().expect("lock").push(r.clone());
        Ok(())
    });
    let mut c = connector(revoke_caps(), before());
    // No write ever reaches the provider while the policy refuses.
    c.expect_execute().times(0);
    c.expect_verify().times(0);
    let mut p = MockSafetyPolicy::new();
    p.expect_approval_ttl().return_const(time::Duration::days(7));
    p.expect_forced_dry_run().return_const(false);
    p.expect_evaluate().returning(|_| PolicyDecision {
        mode: Mode::Manual,
        gates: pass(),
        risk: crate::Risk::from_score(1),
    });
    p.expect_rollback_window().return_const(Duration::hours(2));
    let asked = AtomicUsize::new(0);
    p.expect_write_refusal().returning(move |_, _| refusal(asked.fetch_add(1, Ordering::SeqCst)));
    let e = engine(store, c, p, limits(vec![exec_slot()]));
    let outcomes = (0..attempts)
        .map(|_| match block_on(e.execute(d.action.id, actor, false)) {
            Ok(ExecuteOutcome::Failed { error, .. }) => {
                Ok(if error.contains("nothing was written") { "failed_before_write" } else { "failed" })
            }
            Ok(other) => panic!("unexpected {other:?}"),
            Err(e) => Err(refused_rule(&e).unwrap_or_default().to_owned()),
        })
        .collect();
    (outcomes, notes.events(), applied.events())
}

#[test]
fn a_switch_changed_since_the_gates_ran_stops_the_action_before_it_is_claimed() {
    let disabled = |_| Some("remediation is disabled".to_owned());
    let (outcomes, notes, applied) = execute_under_refusals(&Actor::system(), 1, disabled);
    assert_eq!(outcomes, [Err("enablement".to_owned())]);
    assert_eq!(notes, [("execution_refused".to_owned(), "system".to_owned())]);
    assert!(applied.is_empty(), "the action stays approved: {applied:?}");
}

#[test]
fn a_switch_changed_after_the_action_was_claimed_stops_it_before_the_provider_write() {
    // Allowed when claimed, refused at the last look before the write.
    let (outcomes, notes, applied) =
        execute_under_refusals(&Actor::system(), 1, |n| (n > 0).then(|| "the kill switch is on".to_owned()));
    assert_eq!(outcomes, [Ok("failed_before_write")]);
    assert!(notes.is_empty(), "{notes:?}");
    assert_eq!(applied, [("execution_failed".to_owned(), State::Failed)]);
}

#[test]
fn the_worker_records_a_repeated_refusal_once_and_a_person_every_time() {
    let disabled = |_| Some("remediation is disabled".to_owned());
    let (outcomes, notes, _) = execute_under_refusals(&Actor::system(), 5, disabled);
    assert_eq!(outcomes.len(), 5);
    assert_eq!(notes, [("execution_refused".to_owned(), "system".to_owned())], "one record for five ticks");
    // A different reason is a change, and is recorded.
    let (_, notes, _) = execute_under_refusals(&Actor::system(), 4, |n| {
        Some(if n < 2 { "remediation is disabled" } else { "the kill switch is on" }.to_owned())
    });
    assert_eq!(notes.len(), 2, "{notes:?}");
    // Each attempt of a person is recorded.
    let bob = Actor::new("local:bob", Role::Approver);
    let (_, notes, _) = execute_under_refusals(&bob, 3, disabled);
    assert_eq!(notes.len(), 3, "{notes:?}");
}

#[test]
fn guidance_is_not_promoted_while_the_kill_switch_is_on() {
    let d = detail(State::Suggested);
    let mut store = MockStore::new();
    store.expect_safety_state().returning(|| Ok(crate::SafetyState { kill_switch: true, ..Default::default() }));
    let get = d.clone();
    store.expect_get().returning(move |_| Ok(get.clone()));
    store.expect_apply().times(0);
    let notes = Notes::expect(&mut store, 1);
    let mut c = MockConnector::new();
    c.expect_id().return_const("sandbox".to_owned());
    let e = engine(store, c, policy(Mode::Advisory, pass(), 1), MockLimitPolicy::new());
    let err = block_on(e.promote(d.action.id, &Actor::new("local:root", Role::Admin), None)).expect_err("refused");
    assert_eq!(refused_rule(&err), Some("enablement"));
    assert_eq!(notes.events(), [("promotion_refused".to_owned(), "local:root".to_owned())]);
}
