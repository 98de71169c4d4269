//! The engine over several steps, against the testkit's stateful fakes: an in-memory store
//! that enforces compare-and-set and the exact limit window, and a fake provider whose state
//! really changes.

use remediation_core::{
    ActionId, ActionStore, Actor, EngineError, ExecuteOutcome, GateOutcome, Mode, PageRequest, Role, RollbackOutcome,
    State, TransitionError, TransitionRecord,
};
use remediation_testkit::{
    AllowAll, FixedGates, FixedLimits, Harness, Method, NoLimits, RequestBuilder, TargetBuilder, admin, approver,
    default_target, fixed_time, requester, slot, snap, viewer,
};
use serde_json::json;
use time::Duration;

fn manual() -> Harness {
    Harness::new(AllowAll::new(Mode::Manual), NoLimits)
}

fn rule(e: &EngineError) -> &str {
    match e {
        EngineError::Refused { rule, .. } => rule,
        _ => "(not a refusal)",
    }
}

/// The action's transitions as `(event, to)`, after checking they form one chain: the first
/// is a creation, and each starts where the previous one ended.
async fn history(h: &Harness, id: ActionId) -> Vec<(String, State)> {
    let records: Vec<TransitionRecord> = h.engine.transitions(id).await.expect("transitions");
    let mut prev = None;
    for r in &records {
        assert_eq!(r.from, prev, "{} does not start where the previous transition ended", r.event);
        prev = Some(r.to);
    }
    assert_eq!(prev, Some(h.store.detail(id).expect("stored").action.state));
    records.into_iter().map(|r| (r.event, r.to)).collect()
}

fn events(expected: &[(&str, State)]) -> Vec<(String, State)> {
    expected.iter().map(|(e, s)| ((*e).to_owned(), *s)).collect()
}

/// Suggests the default request for `identity` (seeding the fake provider) and approves it.
async fn approved(h: &Harness, identity: &str) -> ActionId {
    let target = TargetBuilder::new().identity(identity).build();
    h.connector.set_state(target.clone(), json!({"granted": true}));
    let s = h.engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    s.action.id
}

#[tokio::test]
async fn manual_action_executes_and_rolls_back() {
    let h = manual();
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    assert_eq!(s.action.state, State::PendingApproval);
    let id = s.action.id;
    let a = h.engine.approve(id, &approver("bob"), None).await.expect("approve");
    assert_eq!(a.state, State::Approved);

    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Completed { action, after } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Completed);
    assert_eq!(after, snap(json!({"granted": false})));
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": false}))));
    assert_eq!(h.connector.applied_keys(), std::slice::from_ref(&action.idempotency_key));
    let d = h.store.detail(id).expect("detail");
    assert_eq!(d.before, Some(snap(json!({"granted": true}))));
    assert_eq!(d.after, Some(after));
    assert_eq!(d.rollback_expires_at, Some(fixed_time() + Duration::hours(24)));

    h.clock.advance(Duration::hours(1));
    let out = h.engine.rollback(id, &approver("carol"), Some("false positive".to_owned())).await.expect("rollback");
    assert!(matches!(out, RollbackOutcome::RolledBack { ref action } if action.state == State::RolledBack), "{out:?}");
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": true}))));
    assert_eq!(
        history(&h, id).await,
        events(&[
            ("suggest", State::PendingApproval),
            ("approve", State::Approved),
            ("begin_execution", State::Executing),
            ("execution_succeeded", State::Completed),
            ("rollback", State::RollingBack),
            ("rollback_succeeded", State::RolledBack),
        ])
    );
    // Nothing leaves rolled_back.
    let e = h.engine.rollback(id, &admin(), None).await.expect_err("terminal");
    assert!(e.to_string().contains("rolled_back"), "{e}");
}

#[tokio::test]
async fn auto_mode_is_approved_by_the_system() {
    let h = Harness::new(AllowAll::new(Mode::Auto), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    assert_eq!(s.action.state, State::Approved);
    let audit = h.store.audit();
    assert_eq!(audit[0].decided_by.as_deref(), Some("system"));
    let out = h.engine.execute(s.action.id, &Actor::system(), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
}

#[tokio::test]
async fn a_failed_gate_turns_auto_into_manual() {
    let gates = vec![GateOutcome::pass("validation", "ok"), GateOutcome::needs_approval("observability", "blind")];
    let h = Harness::new(FixedGates::new(Mode::Auto, gates), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    assert_eq!((s.action.state, s.action.mode), (State::PendingApproval, Mode::Manual));
    let comment = h.store.audit()[0].comment.clone().unwrap_or_default();
    assert!(comment.contains("observability"), "{comment}");
    // Not executable until approved.
    let e = h.engine.execute(s.action.id, &Actor::system(), false).await.expect_err("not approved");
    assert!(matches!(e, EngineError::Transition(TransitionError::Illegal { state: State::PendingApproval, .. })));
    assert_eq!(h.connector.calls(Method::Execute), 0);
}

#[track_caller]
fn check_quorum(min_approvals: u32, approvers: &[&str], expected: &[Result<State, &str>]) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let h = Harness::new(AllowAll::new(Mode::Manual).with_min_approvals(min_approvals), NoLimits);
    let got: Vec<Result<State, String>> = rt.block_on(async {
        let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
        let mut got = Vec::new();
        for name in approvers {
            let actor = Actor::new(*name, Role::Approver);
            got.push(match h.engine.approve(s.action.id, &actor, None).await {
                Ok(a) => Ok(a.state),
                Err(EngineError::Refused { rule, .. }) => Err(rule),
                Err(e) => Err(e.to_string()),
            });
        }
        got
    });
    let expected: Vec<Result<State, String>> = expected.iter().map(|r| r.map_err(str::to_owned)).collect();
    assert_eq!(got, expected, "quorum {min_approvals}, approvers {approvers:?}");
}

#[test]
fn quorum_needs_distinct_approvers() {
    use State::*;
    let sod = Err("separation of duties");
    check_quorum(1, &["local:bob"], &[Ok(Approved)]);
    check_quorum(1, &["local:alice"], &[sod]);
    check_quorum(2, &["local:bob", "local:bob"], &[Ok(PendingApproval), sod]);
    check_quorum(2, &["local:bob", "local:alice", "local:carol"], &[Ok(PendingApproval), sod, Ok(Approved)]);
    check_quorum(
        3,
        &["local:bob", "local:carol", "local:dave"],
        &[Ok(PendingApproval), Ok(PendingApproval), Ok(Approved)],
    );
    check_quorum(
        1,
        &["local:bob", "local:carol"],
        &[
            Ok(Approved),
            Err("cannot approve an action that is approved and not yet executed (approved); execute it, or cancel it"),
        ],
    );
}

#[tokio::test]
async fn a_target_that_resolves_to_another_account_voids_the_approval() {
    let h = manual();
    let alice = remediation_core::CanonicalTarget::identity("00u-alice");
    h.connector.set_canonical(&default_target(), Some(alice.clone()));
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    assert_eq!(s.action.canonical.as_ref(), Some(&alice), "the action records the resolved id");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    // The name now leads to another account (deleted and re-created, say): the approval was
    // for the account it named then.
    h.connector.set_canonical(&default_target(), Some(remediation_core::CanonicalTarget::identity("00u-mallory")));
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::PlanChanged { action, changes } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::PendingApproval);
    assert!(changes.iter().any(|c| c.path == "/before/canonical"), "{changes:?}");
    assert_eq!(h.connector.calls(Method::Execute), 0);
}

#[tokio::test]
async fn a_changed_plan_voids_the_approvals() {
    let h = Harness::new(AllowAll::new(Mode::Manual).with_min_approvals(2), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    let id = s.action.id;
    h.engine.approve(id, &approver("bob"), None).await.expect("bob");
    h.engine.approve(id, &approver("carol"), None).await.expect("carol");
    h.connector.set_state(default_target(), json!({"granted": true, "via": "nested group"}));

    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::PlanChanged { action, changes } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::PendingApproval);
    assert!(changes.iter().any(|c| c.path == "/before/via"), "{changes:?}");
    let stored = h.store.detail(id).expect("detail").plan.expect("plan");
    assert_ne!(stored.plan_hash, s.plan.plan_hash);
    assert_eq!(h.connector.calls(Method::Execute), 0);

    // bob's and carol's earlier approvals no longer count.
    assert_eq!(h.engine.approve(id, &approver("bob"), None).await.expect("bob again").state, State::PendingApproval);
    assert_eq!(h.engine.approve(id, &approver("carol"), None).await.expect("carol again").state, State::Approved);
    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": false, "via": "nested group"}))));
}

#[tokio::test]
async fn a_full_window_holds_until_released_and_the_window_slides() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("connector:sandbox", 1, 3600)]));
    let first = approved(&h, "alice").await;
    let second = approved(&h, "mallory").await;

    let out = h.engine.execute(first, &approver("bob"), false).await.expect("first");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("second");
    let ExecuteOutcome::Held { action, limit } = out else { panic!("{out:?}") };
    assert_eq!((action.state, limit.used, limit.slot.key.as_str()), (State::Held, 1, "connector:sandbox"));
    assert_eq!(h.store.reservations("connector:sandbox"), [fixed_time()]);

    // Held actions do not begin again; only an admin releases them.
    let e = h.engine.execute(second, &approver("bob"), false).await.expect_err("held");
    assert!(matches!(e, EngineError::Transition(TransitionError::Illegal { state: State::Held, .. })), "{e}");
    let e = h.engine.release(second, &approver("bob"), None).await.expect_err("approver");
    assert!(matches!(e, EngineError::Transition(TransitionError::RoleNotAllowed { .. })), "{e}");
    h.engine.release(second, &admin(), None).await.expect("release");

    // One second short of the window end the slot is still taken...
    h.clock.advance(Duration::seconds(3599));
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("still full");
    assert!(matches!(out, ExecuteOutcome::Held { .. }), "{out:?}");
    // ...and at exactly one window later it has left.
    h.clock.advance(Duration::seconds(1));
    h.engine.release(second, &admin(), None).await.expect("release");
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("now fits");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    assert_eq!(h.store.reservations("connector:sandbox"), [fixed_time(), fixed_time() + Duration::hours(1)]);
    assert_eq!(
        history(&h, second).await,
        events(&[
            ("suggest", State::PendingApproval),
            ("approve", State::Approved),
            ("hold", State::Held),
            ("release", State::Approved),
            ("hold", State::Held),
            ("release", State::Approved),
            ("begin_execution", State::Executing),
            ("execution_succeeded", State::Completed),
        ])
    );
}

#[tokio::test]
async fn an_admin_can_force_a_held_action_and_it_still_counts() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("global", 1, 3600)]));
    let first = approved(&h, "alice").await;
    let second = approved(&h, "mallory").await;
    h.engine.execute(first, &approver("bob"), false).await.expect("first");
    h.engine.execute(second, &approver("bob"), false).await.expect("held");

    let e = h.engine.force_execute(second, &approver("bob"), "incident".to_owned()).await.expect_err("approver");
    assert!(matches!(e, EngineError::Transition(TransitionError::RoleNotAllowed { .. })), "{e}");
    let out = h.engine.force_execute(second, &admin(), "incident 42".to_owned()).await.expect("force");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    assert_eq!(h.store.reservations("global").len(), 2);
    let forced = h.store.audit().into_iter().find(|r| r.event == "force_execute").expect("force record");
    assert_eq!(forced.decided_by.as_deref(), Some("local:root"));
    assert_eq!(forced.comment.as_deref(), Some("incident 42"));
}

#[tokio::test]
async fn a_provider_refusal_fails_the_action_and_uses_a_slot() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("global", 5, 3600)]));
    let id = approved(&h, "alice").await;
    h.connector.fail(
        Method::Execute,
        remediation_core::ConnectorError::permanent("user is a break-glass account").with_request_id("req-9"),
    );
    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Failed { action, error } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Failed);
    assert!(error.contains("user is a break-glass account (request id req-9)"), "{error}");
    assert_eq!(h.store.detail(id).expect("detail").last_error, Some(error));
    assert_eq!(h.store.reservations("global").len(), 1, "failed executions count against limits");
    // Nothing changed, so there is nothing to roll back.
    let e = h.engine.rollback(id, &approver("bob"), None).await.expect_err("nothing changed");
    assert_eq!(rule(&e), "rollback");
    assert_eq!(h.connector.calls(Method::Rollback), 0);
}

#[tokio::test]
async fn an_unobserved_change_fails_verification() {
    let h = manual();
    let id = approved(&h, "alice").await;
    h.connector.drop_writes(true);
    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Failed { error, .. } = out else { panic!("{out:?}") };
    assert!(error.starts_with("not verified"), "{error}");
    // Expected on the left, observed on the right.
    assert!(error.contains("/granted: false -> true"), "{error}");
}

/// Executes the default action, sets the target to `drift` (if any), moves the clock by
/// `after` and asks for a rollback.
#[track_caller]
fn check_rollback(after: Duration, drift: Option<serde_json::Value>, expected: Result<State, &str>) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let h = Harness::new(AllowAll::new(Mode::Manual).with_rollback_window(Duration::hours(2)), NoLimits);
    let got = rt.block_on(async {
        let id = approved(&h, "alice").await;
        h.engine.execute(id, &approver("bob"), false).await.expect("execute");
        if let Some(state) = drift {
            h.connector.set_state(default_target(), state);
        }
        h.clock.advance(after);
        match h.engine.rollback(id, &approver("bob"), None).await {
            Ok(out) => Ok(out.action().state),
            Err(e) => Err(rule(&e).to_owned()),
        }
    });
    assert_eq!(got, expected.map_err(str::to_owned));
    if expected.is_err() {
        assert_eq!(h.connector.calls(Method::Rollback), 0, "a refused rollback writes nothing");
    }
}

#[test]
fn rollback_needs_the_window_and_an_undisturbed_target() {
    check_rollback(Duration::ZERO, None, Ok(State::RolledBack));
    check_rollback(Duration::hours(2), None, Ok(State::RolledBack));
    check_rollback(Duration::hours(2) + Duration::nanoseconds(1), None, Err("rollback window"));
    check_rollback(Duration::days(30), None, Err("rollback window"));
    check_rollback(Duration::ZERO, Some(json!({"granted": true})), Err("drift"));
    check_rollback(Duration::ZERO, Some(json!({"granted": false, "note": "x"})), Err("drift"));
}

#[tokio::test]
async fn a_failed_restore_needs_attention_and_can_be_retried() {
    let h = manual();
    let id = approved(&h, "alice").await;
    h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    h.connector.fail(Method::Rollback, remediation_core::ConnectorError::permanent("provider down"));
    let out = h.engine.rollback(id, &approver("bob"), None).await.expect("rollback");
    let RollbackOutcome::Failed { action, error } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Failed);
    assert!(error.starts_with("rollback failed, needs attention") && error.contains("provider down"), "{error}");

    // From failed, the live state still differs from the before-state: a retry may restore it.
    h.connector.clear_fault(Method::Rollback);
    let out = h.engine.rollback(id, &approver("bob"), None).await.expect("retry");
    assert!(matches!(out, RollbackOutcome::RolledBack { .. }), "{out:?}");
    assert_eq!(h.store.detail(id).expect("detail").last_error, None);
}

#[tokio::test]
async fn a_dry_run_execution_checks_limits_and_writes_nothing() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("global", 1, 3600)]));
    let id = approved(&h, "alice").await;
    h.store.reserve("global", fixed_time());
    let audit_before = h.store.audit().len();
    let out = h.engine.execute(id, &approver("bob"), true).await.expect("dry run");
    let ExecuteOutcome::DryRun { limit, plan, .. } = out else { panic!("{out:?}") };
    assert_eq!(limit.map(|l| l.used), Some(1));
    assert_eq!(plan.expected_after, snap(json!({"granted": false})));
    assert_eq!(h.store.reservations("global").len(), 1, "not consumed");
    assert_eq!(h.store.audit().len(), audit_before, "nothing recorded");
    assert_eq!(h.connector.calls(Method::Execute), 0);
    assert_eq!(h.store.detail(id).expect("detail").action.state, State::Approved);
}

#[tokio::test]
async fn a_dry_run_suggestion_is_terminal() {
    let h = manual();
    let s = h.engine.suggest(RequestBuilder::new().dry_run(true).build(), &requester()).await.expect("suggest");
    assert_eq!(s.action.state, State::DryRun);
    assert_eq!(h.store.detail(s.action.id).expect("stored").plan, Some(s.plan));
    let e = h.engine.approve(s.action.id, &approver("bob"), None).await.expect_err("terminal");
    assert!(e.to_string().contains("dry_run"), "{e}");
    let e = h.engine.execute(s.action.id, &admin(), false).await.expect_err("terminal");
    assert!(e.to_string().contains("dry_run"), "{e}");
    assert_eq!(h.connector.calls(Method::Execute), 0);
}

#[tokio::test]
async fn advisory_guidance_never_executes_until_promoted() {
    let h = Harness::new(AllowAll::new(Mode::Advisory), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    let id = s.action.id;
    assert_eq!(s.action.state, State::Suggested);
    assert!(h.engine.approve(id, &approver("bob"), None).await.is_err());
    assert!(h.engine.execute(id, &admin(), false).await.is_err());
    assert!(h.engine.promote(id, &approver("bob"), None).await.is_err());
    assert_eq!(h.engine.promote(id, &admin(), None).await.expect("promote").state, State::PendingApproval);
    assert_eq!(h.engine.approve(id, &approver("bob"), None).await.expect("approve").state, State::Approved);
    assert_eq!(h.connector.calls(Method::Execute), 0);
}

#[track_caller]
fn check_cancel(actor: Actor, expected: Result<State, &str>) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    let h = manual();
    let got = rt.block_on(async {
        let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
        match h.engine.cancel(s.action.id, &actor, None).await {
            Ok(a) => Ok(a.state),
            Err(EngineError::Refused { rule, .. }) => Err(rule),
            Err(e) => Err(e.to_string()),
        }
    });
    assert_eq!(got, expected.map_err(str::to_owned), "{actor:?}");
}

#[test]
fn only_the_requester_or_an_admin_cancels() {
    check_cancel(requester(), Ok(State::Cancelled));
    check_cancel(admin(), Ok(State::Cancelled));
    check_cancel(approver("bob"), Err("roles"));
    check_cancel(viewer(), Err("roles"));
    // The requester's name with a viewer's role is still only a viewer.
    check_cancel(
        Actor::new("local:alice", Role::Viewer),
        Err(
            "role viewer may not cancel actions (this one is pending_approval); ask someone whose role may, or an admin to change your role",
        ),
    );
}

#[tokio::test]
async fn refusals_before_any_provider_request() {
    let h = manual();
    let unsupported = RequestBuilder::new().target(TargetBuilder::new().grant_type("role").build()).build();
    let e = h.engine.suggest(unsupported, &requester()).await.expect_err("unsupported");
    assert!(matches!(e, EngineError::Unsupported { .. }), "{e}");
    let e = h.engine.suggest(RequestBuilder::new().build(), &viewer()).await.expect_err("viewer");
    assert_eq!(rule(&e), "roles");
    let e = h.engine.suggest(RequestBuilder::new().connector("okta").build(), &requester()).await.expect_err("okta");
    assert!(matches!(e, EngineError::UnknownConnector { .. }) && e.is_not_found(), "{e}");
    assert_eq!(h.connector.provider_calls(), 0);
    assert!(h.store.list(&Default::default(), &PageRequest::first(10)).await.expect("list").items.is_empty());
    assert!(h.store.audit().is_empty());
}

#[tokio::test]
async fn approval_requests_expire_after_seven_days_and_are_audited() {
    let h = manual();
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.clock.advance(Duration::days(7));
    assert!(h.engine.expire_stale().await.expect("sweep").is_empty(), "exactly 7 days is still inside the window");
    h.clock.advance(Duration::seconds(1));
    let expired = h.engine.expire_stale().await.expect("sweep");
    assert_eq!(expired.iter().map(|a| (a.id, a.state)).collect::<Vec<_>>(), [(s.action.id, State::Expired)]);
    let history = history(&h, s.action.id).await;
    assert_eq!(history.last(), Some(&("expire".to_owned(), State::Expired)));
    assert!(h.engine.expire_stale().await.expect("sweep").is_empty(), "expired once");
    let err = h.engine.approve(s.action.id, &approver("bob"), None).await.expect_err("expired");
    assert!(matches!(err, EngineError::Transition(TransitionError::Illegal { state: State::Expired, .. })), "{err}");
}

#[tokio::test]
async fn the_global_limit_trips_the_breaker_until_an_admin_resets_it() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("global", 1, 3600)]));
    let first = approved(&h, "alice").await;
    let second = approved(&h, "mallory").await;
    let third = approved(&h, "trent").await;
    let out = h.engine.execute(first, &approver("bob"), false).await.expect("first");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("second");
    assert!(matches!(out, ExecuteOutcome::Held { .. }), "{out:?}");
    assert!(h.engine.safety_state().await.expect("state").breaker_tripped);

    // Even after the window has passed, nothing executes while the breaker is tripped.
    h.clock.advance(Duration::hours(2));
    let out = h.engine.execute(third, &approver("bob"), false).await.expect("third");
    assert!(matches!(out, ExecuteOutcome::HeldByBreaker { .. }), "{out:?}");
    assert_eq!(h.connector.applied_keys().len(), 1);

    // Only an admin resets it, with a reason, and the reset is recorded.
    let e = h.engine.reset_breaker(&approver("bob"), "ok".into()).await.expect_err("approver");
    assert!(matches!(e, EngineError::Refused { .. }), "{e}");
    let e = h.engine.reset_breaker(&admin(), " ".into()).await.expect_err("no reason");
    assert!(matches!(e, EngineError::Refused { .. }), "{e}");
    h.engine.reset_breaker(&admin(), "incident reviewed".into()).await.expect("reset");
    let events: Vec<(String, String)> =
        h.store.settings_records().into_iter().map(|r| (r.setting_event, r.actor)).collect();
    assert_eq!(
        events,
        [("breaker_tripped".to_owned(), "system".to_owned()), ("breaker_reset".to_owned(), admin().name)]
    );
    // Nothing resumes by itself: the held actions wait for a release.
    h.engine.release(third, &admin(), None).await.expect("release");
    let out = h.engine.execute(third, &approver("bob"), false).await.expect("third again");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
}

#[tokio::test]
async fn the_kill_switch_cancels_waiting_actions_and_stops_execution() {
    let h = manual();
    let approved_id = approved(&h, "alice").await;
    let pending = h
        .engine
        .suggest(RequestBuilder::new().target(TargetBuilder::new().identity("mallory").build()).build(), &requester())
        .await;
    // mallory is not in the fake provider: seed and suggest again.
    assert!(pending.is_err());
    let target = TargetBuilder::new().identity("mallory").build();
    h.connector.set_state(target.clone(), json!({"granted": true}));
    let pending = h.engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");

    let e = h.engine.set_kill_switch(true, &approver("bob"), "stop".into()).await.expect_err("approver");
    assert!(matches!(e, EngineError::Refused { .. }), "{e}");
    let cancelled = h.engine.set_kill_switch(true, &admin(), "incident 42".into()).await.expect("kill");
    let mut ids: Vec<ActionId> = cancelled.iter().map(|a| a.id).collect();
    ids.sort();
    let mut want = vec![approved_id, pending.action.id];
    want.sort();
    assert_eq!(ids, want);
    for id in want {
        let t = h.engine.transitions(id).await.expect("transitions");
        let last = t.last().expect("last");
        assert_eq!(
            (last.event.as_str(), last.to, last.actor.as_str()),
            ("kill_switch", State::Cancelled, admin().name.as_str())
        );
        assert_eq!(last.comment.as_deref(), Some("kill switch: incident 42"));
    }
    assert!(h.engine.safety_state().await.expect("state").kill_switch);
    // Off: nothing resumes by itself; cancelled stays cancelled.
    h.engine.set_kill_switch(false, &admin(), "resolved".into()).await.expect("off");
    assert_eq!(h.store.detail(approved_id).expect("stored").action.state, State::Cancelled);
    assert_eq!(h.connector.calls(Method::Execute), 0);
}

#[tokio::test]
async fn emergency_access_verification_is_recorded() {
    let h = manual();
    h.engine.verify_emergency_access(&admin(), "logged in with the break-glass account".into()).await.expect("verify");
    let state = h.engine.safety_state().await.expect("state");
    assert_eq!(state.emergency_access_verified_at, Some(fixed_time()));
    assert!(state.emergency_access_note.expect("note").contains("break-glass"));
}

/// AllowAll, plus automatic rollback when a change is not verified.
struct AutoRollback(AllowAll);

impl remediation_core::SafetyPolicy for AutoRollback {
    fn evaluate<'a>(&self, ctx: &remediation_core::GateContext<'a>) -> remediation_core::PolicyDecision {
        self.0.evaluate(ctx)
    }

    fn auto_rollback_on_failed_verification(&self, _action: &remediation_core::Action) -> bool {
        true
    }
}

#[tokio::test]
async fn a_change_that_is_not_verified_is_rolled_back_automatically_when_configured() {
    let h = Harness::new(AutoRollback(AllowAll::new(Mode::Manual)), NoLimits);
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    // The provider applies something other than asked.
    h.connector.skew_writes(Some(json!({"granted": "partially"})));
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Failed { action, error } = out else { panic!("{out:?}") };
    assert!(error.contains("not verified") && error.contains("rolled back automatically"), "{error}");
    assert_eq!(action.state, State::RolledBack);
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": true}))));
    let events: Vec<String> = history(&h, s.action.id).await.into_iter().map(|(e, _)| e).collect();
    assert_eq!(events, ["suggest", "approve", "begin_execution", "execution_failed", "rollback", "rollback_succeeded"]);

    // Without the setting, the failed action stays failed for a human to look at.
    let h = manual();
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    h.connector.skew_writes(Some(json!({"granted": "partially"})));
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Failed { ref action, .. } if action.state == State::Failed), "{out:?}");
}

/// AllowAll, except that actions on `eve` are advisory (so one action can be `suggested`).
struct AdvisoryForEve(AllowAll);

impl remediation_core::SafetyPolicy for AdvisoryForEve {
    fn evaluate<'a>(&self, ctx: &remediation_core::GateContext<'a>) -> remediation_core::PolicyDecision {
        let mut decision = self.0.evaluate(ctx);
        if ctx.action.target.identity == "eve" {
            decision.mode = Mode::Advisory;
        }
        decision
    }
}

#[tokio::test]
async fn the_kill_switch_cancels_suggested_and_held_actions_too() {
    let h = Harness::new(
        AdvisoryForEve(AllowAll::new(Mode::Manual)),
        FixedLimits(vec![slot("connector:sandbox", 1, 3600)]),
    );
    let done = approved(&h, "alice").await;
    h.engine.execute(done, &approver("bob"), false).await.expect("first");
    let held = approved(&h, "mallory").await;
    let out = h.engine.execute(held, &approver("bob"), false).await.expect("second");
    assert!(matches!(out, ExecuteOutcome::Held { .. }), "{out:?}");
    let waiting = approved(&h, "trent").await;
    let target = TargetBuilder::new().identity("eve").build();
    h.connector.set_state(target.clone(), json!({"granted": true}));
    let advisory = h.engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("eve");
    assert_eq!(advisory.action.state, State::Suggested);

    let cancelled = h.engine.set_kill_switch(true, &admin(), "incident 43".into()).await.expect("kill");
    let mut ids: Vec<ActionId> = cancelled.iter().map(|a| a.id).collect();
    ids.sort();
    let mut want = vec![held, waiting, advisory.action.id];
    want.sort();
    assert_eq!(ids, want, "held, approved and suggested actions are all cancelled");
    for id in want {
        let last = h.engine.transitions(id).await.expect("t").pop().expect("last");
        assert_eq!((last.event.as_str(), last.to), ("kill_switch", State::Cancelled), "{id}");
    }
    assert_eq!(h.store.detail(done).expect("done").action.state, State::Completed, "a finished change stays");
}

#[tokio::test]
async fn force_execute_refuses_a_held_action_whose_plan_changed_since_approval() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("connector:sandbox", 1, 3600)]));
    let first = approved(&h, "alice").await;
    h.engine.execute(first, &approver("bob"), false).await.expect("first");
    let second = approved(&h, "mallory").await;
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("held");
    assert!(matches!(out, ExecuteOutcome::Held { .. }), "{out:?}");
    let before = h.store.transitions(second).await.expect("t").len();

    // The live state changes after approval: the approved plan no longer describes it.
    let target = TargetBuilder::new().identity("mallory").build();
    h.connector.set_state(target.clone(), json!({"granted": true, "via": "nested group"}));
    let e = h.engine.force_execute(second, &admin(), "incident 44".into()).await.expect_err("plan changed");
    assert_eq!(rule(&e), "plan binding", "{e}");
    assert_eq!(h.store.detail(second).expect("stored").action.state, State::Held);
    assert_eq!(h.connector.calls(Method::Execute), 1, "only the first action was ever written");
    assert_eq!(h.store.reservations("connector:sandbox"), [fixed_time()], "no slot taken");
    assert_eq!(h.store.transitions(second).await.expect("t").len(), before, "nothing recorded");
    assert_eq!(h.connector.state(&target), Some(snap(json!({"granted": true, "via": "nested group"}))));
}
