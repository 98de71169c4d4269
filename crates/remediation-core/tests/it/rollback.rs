//! Rollbacks against the testkit's stateful fakes: a person's rollback waits in
//! `rollback_requested` for a different principal, the window and drift are judged when it
//! runs, it takes no limit slot, the system rolls back without asking, irreversible changes
//! are refused up front, and the execution's after-state survives the restore.

use remediation_core::{
    ActionId, ActionKind, EngineError, ExecuteOutcome, Mode, Role, RollbackOutcome, State, TransitionError,
};
use remediation_testkit::{
    AllowAll, FixedLimits, Harness, Method, NoLimits, RequestBuilder, TargetBuilder, admin, approver, default_target,
    fixed_time, requester, slot, snap,
};
use serde_json::json;
use time::Duration;

/// The real policy's default: a person's rollback needs a second principal.
fn guarded() -> Harness {
    Harness::new(
        AllowAll::new(Mode::Manual).with_rollback_approval().with_rollback_window(Duration::hours(2)),
        NoLimits,
    )
}

fn rule(e: &EngineError) -> &str {
    match e {
        EngineError::Refused { rule, .. } => rule,
        _ => "(not a refusal)",
    }
}

/// Suggests the default revoke (approved by bob) and executes it.
async fn completed(h: &Harness) -> ActionId {
    let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    s.action.id
}

async fn events(h: &Harness, id: ActionId) -> Vec<(String, State, String)> {
    h.engine.transitions(id).await.expect("transitions").into_iter().map(|t| (t.event, t.to, t.actor)).collect()
}

fn state(h: &Harness, id: ActionId) -> State {
    h.store.detail(id).expect("stored").action.state
}

#[tokio::test]
async fn a_persons_rollback_waits_for_a_different_principal() {
    let h = guarded();
    let id = completed(&h).await;

    let out = h.engine.rollback(id, &approver("carol"), Some("false positive".into())).await.expect("request");
    let RollbackOutcome::Requested { action } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::RollbackRequested);
    assert_eq!(h.connector.calls(Method::Rollback), 0, "nothing is restored on one approver's say");
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": false}))));

    // The requester of the rollback cannot approve it, by `approve` nor by asking again.
    let e = h.engine.approve(id, &approver("carol"), None).await.expect_err("same principal");
    assert_eq!(rule(&e), "separation of duties", "{e}");
    let e = h.engine.rollback(id, &approver("carol"), None).await.expect_err("same principal again");
    assert_eq!(rule(&e), "separation of duties", "{e}");
    // A viewer or requester cannot approve at all.
    let e = h.engine.approve_rollback(id, &requester(), None).await.expect_err("requester role");
    assert!(matches!(e, EngineError::Transition(TransitionError::RoleNotAllowed { .. })), "{e}");
    assert_eq!(state(&h, id), State::RollbackRequested);
    assert_eq!(h.connector.calls(Method::Rollback), 0);

    // Bob approved the execution; he is not the one who asked for the rollback.
    let a = h.engine.approve(id, &approver("bob"), Some("confirmed".into())).await.expect("approve rollback");
    assert_eq!(a.state, State::RolledBack);
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": true}))));
    let tail: Vec<_> = events(&h, id).await.into_iter().skip(4).collect();
    assert_eq!(
        tail,
        [
            ("request_rollback".to_owned(), State::RollbackRequested, "local:carol".to_owned()),
            ("approve".to_owned(), State::RollingBack, "local:bob".to_owned()),
            ("rollback_succeeded".to_owned(), State::RolledBack, "system".to_owned()),
        ]
    );
    let approval = h.engine.transitions(id).await.expect("t").into_iter().nth(5).expect("approval");
    assert_eq!(approval.decided_by.as_deref(), Some("local:bob"));
}

#[tokio::test]
async fn a_rollback_request_is_approved_through_rollback_too_and_takes_no_limit_slot() {
    let h = Harness::new(
        AllowAll::new(Mode::Manual).with_rollback_approval(),
        FixedLimits(vec![slot("global", 1, 3600), slot("connector:sandbox", 1, 3600)]),
    );
    let id = completed(&h).await;
    assert_eq!(h.store.reservations("global"), [fixed_time()]);
    h.engine.rollback(id, &approver("carol"), None).await.expect("request");
    // Every window is full, yet the rollback runs: restoring takes no slot.
    let out = h.engine.rollback(id, &admin(), None).await.expect("approve by rolling back");
    assert!(matches!(out, RollbackOutcome::RolledBack { ref action } if action.state == State::RolledBack), "{out:?}");
    assert_eq!(h.store.reservations("global"), [fixed_time()]);
    assert_eq!(h.store.reservations("connector:sandbox"), [fixed_time()]);
    assert!(!h.engine.safety_state().await.expect("state").breaker_tripped);
}

#[tokio::test]
async fn a_rejected_rollback_request_leaves_the_change_in_place() {
    let h = guarded();
    let id = completed(&h).await;
    h.engine.rollback(id, &approver("carol"), None).await.expect("request");
    let a = h.engine.reject(id, &approver("bob"), Some("the grant was wrong".into())).await.expect("reject");
    assert_eq!(a.state, State::Completed);
    assert_eq!(h.connector.calls(Method::Rollback), 0);
    assert_eq!(h.connector.state(&default_target()), Some(snap(json!({"granted": false}))));
    // It may be asked for again, while the window is open.
    let out = h.engine.rollback(id, &approver("carol"), None).await.expect("ask again");
    assert!(matches!(out, RollbackOutcome::Requested { .. }), "{out:?}");
}

#[tokio::test]
async fn the_window_is_judged_when_the_rollback_runs() {
    let h = guarded();
    let id = completed(&h).await;
    h.clock.advance(Duration::hours(1));
    h.engine.rollback(id, &approver("carol"), None).await.expect("request inside the window");
    // Approved one nanosecond after the window closed: refused, and the request is closed.
    h.clock.advance(Duration::hours(1) + Duration::nanoseconds(1));
    let e = h.engine.approve(id, &approver("bob"), None).await.expect_err("window closed");
    assert_eq!(rule(&e), "rollback window", "{e}");
    assert_eq!(state(&h, id), State::Completed);
    assert_eq!(h.connector.calls(Method::Rollback), 0);
    let last = events(&h, id).await.pop().expect("last");
    assert_eq!(last, ("expire".to_owned(), State::Completed, "system".to_owned()));
}

#[tokio::test]
async fn an_unapproved_rollback_request_expires_with_its_window() {
    let h = guarded();
    let id = completed(&h).await;
    h.engine.rollback(id, &approver("carol"), None).await.expect("request");
    h.clock.advance(Duration::hours(2));
    assert!(h.engine.expire_stale().await.expect("sweep").is_empty(), "the window's last instant is still open");
    h.clock.advance(Duration::nanoseconds(1));
    let expired = h.engine.expire_stale().await.expect("sweep");
    assert_eq!(expired.iter().map(|a| (a.id, a.state)).collect::<Vec<_>>(), [(id, State::Completed)]);
    assert_eq!(h.connector.calls(Method::Rollback), 0);
}

#[tokio::test]
async fn drift_is_judged_again_when_the_rollback_is_approved() {
    let h = guarded();
    let id = completed(&h).await;
    h.engine.rollback(id, &approver("carol"), None).await.expect("request");
    // Someone re-granted access meanwhile: restoring could undo their change.
    h.connector.set_state(default_target(), json!({"granted": false, "note": "changed elsewhere"}));
    let e = h.engine.approve(id, &approver("bob"), None).await.expect_err("drift");
    assert_eq!(rule(&e), "drift", "{e}");
    assert_eq!(state(&h, id), State::RollbackRequested);
    assert_eq!(h.connector.calls(Method::Rollback), 0);
}

#[tokio::test]
async fn the_system_rolls_back_without_approval() {
    let h = guarded();
    let id = completed(&h).await;
    let out = h.engine.rollback(id, &remediation_core::Actor::system(), Some("did not hold".into())).await;
    let out = out.expect("system rollback");
    assert!(matches!(out, RollbackOutcome::RolledBack { .. }), "{out:?}");
    let kinds: Vec<String> = events(&h, id).await.into_iter().map(|(e, _, _)| e).collect();
    assert_eq!(
        kinds,
        ["suggest", "approve", "begin_execution", "execution_succeeded", "rollback", "rollback_succeeded"]
    );
}

#[tokio::test]
async fn without_the_setting_a_person_rolls_back_alone() {
    let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let id = completed(&h).await;
    let out = h.engine.rollback(id, &approver("carol"), None).await.expect("rollback");
    assert!(matches!(out, RollbackOutcome::RolledBack { .. }), "{out:?}");
}

#[tokio::test]
async fn the_restore_is_shown_beside_the_executions_after_state() {
    let h = guarded();
    let id = completed(&h).await;
    h.engine.rollback(id, &approver("carol"), None).await.expect("request");
    h.engine.approve(id, &approver("bob"), None).await.expect("approve");
    let d = h.engine.get(id).await.expect("detail");
    assert_eq!(d.before, Some(snap(json!({"granted": true}))));
    assert_eq!(d.after, Some(snap(json!({"granted": false}))), "the execution's after-state is kept");
    assert_eq!(d.restored, Some(snap(json!({"granted": true}))));
}

/// Suggests, approves and executes an irreversible `kind` on an account.
async fn completed_irreversible(h: &Harness, kind: ActionKind) -> ActionId {
    let target = TargetBuilder::new().grant_type("account").no_resource().build();
    h.connector.set_state(target.clone(), json!({"sessions": 3, "password_reset_required": false}));
    let request = RequestBuilder::new().kind(kind).target(target).build();
    let s = h.engine.suggest(request, &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    s.action.id
}

#[tokio::test]
async fn an_irreversible_action_refuses_a_rollback_and_stays_completed() {
    for kind in [ActionKind::RevokeSessions, ActionKind::ForcePasswordReset] {
        for guarded in [false, true] {
            let policy = AllowAll::new(Mode::Manual);
            let h = Harness::new(if guarded { policy.with_rollback_approval() } else { policy }, NoLimits);
            let id = completed_irreversible(&h, kind.clone()).await;
            let d = h.engine.get(id).await.expect("detail");
            assert_eq!(d.rollback_expires_at, None, "{kind}: no rollback deadline is advertised");
            let last = h.engine.transitions(id).await.expect("t").pop().expect("last");
            assert_eq!(last.rollback_expires_at, None, "{kind}: nor recorded in the audit");
            for actor in [approver("carol"), admin(), remediation_core::Actor::system()] {
                let e = h.engine.rollback(id, &actor, None).await.expect_err("irreversible");
                assert_eq!(rule(&e), "reversibility", "{kind}: {e}");
                assert!(e.to_string().contains("cannot be undone"), "{e}");
            }
            assert_eq!(state(&h, id), State::Completed, "{kind}: a verified change stays completed");
            assert_eq!(h.connector.calls(Method::Rollback), 0);
            assert_eq!(h.engine.transitions(id).await.expect("t").len(), 4, "{kind}: nothing recorded");
        }
    }
    // Reversible kinds still get a window.
    let h = guarded();
    let id = completed(&h).await;
    assert_eq!(h.engine.get(id).await.expect("d").rollback_expires_at, Some(fixed_time() + Duration::hours(2)));
}

#[test]
fn roles_below_approver_cannot_request_a_rollback() {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("runtime");
    rt.block_on(async {
        let h = guarded();
        let id = completed(&h).await;
        let e = h.engine.rollback(id, &requester(), None).await.expect_err("requester");
        assert!(matches!(e, EngineError::Transition(TransitionError::RoleNotAllowed { .. })), "{e}");
        assert_eq!(
            remediation_core::transition(State::Completed, remediation_core::Event::RequestRollback, Role::System)
                .map_err(|e| e.to_string()),
            Err("role system may not request a rollback of actions (this one is completed); ask someone whose role may, or an admin to change your role".to_owned())
        );
    });
}
