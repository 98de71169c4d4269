//! Follow-up actions ([`remediation_core::Connector::follow_up`]): a completed rotation
//! schedules the deletion of the old credential for the end of its rollback window, approved
//! with the rotation's plan; nothing runs it early; a rollback cancels it. And the settling of
//! a half-made change after a crash ([`remediation_core::Connector::settle_interrupted`]).

use std::sync::Arc;

use remediation_core::{
    ActionId, ActionKind, ActionStore, Capability, Clock, Engine, EngineError, EngineParts, ExecuteOutcome, FollowUp,
    KindName, Mode, Reversibility, State, Target, failpoints,
};
use remediation_testkit::{
    AllowAll, FakeConnector, Harness, NoLimits, RequestBuilder, TargetBuilder, admin, approver, fixed_time, requester,
};
use serde_json::json;
use time::Duration;

fn key() -> Target {
    TargetBuilder::new().identity("alice").no_resource().grant("AKIAOLD").grant_type("access_key").build()
}

/// A connector that rotates `access_key` targets and deletes them irreversibly, and asks for
/// the deletion after each rotation.
fn harness(mode: Mode) -> Harness {
    let connector = FakeConnector::new("sandbox")
        .with_capabilities(vec![
            Capability::new(KindName::Rotate, "access_key", Reversibility::Reversible),
            Capability::new(KindName::Revoke, "access_key", Reversibility::Irreversible),
        ])
        .with_target(key(), json!({"granted": true}));
    connector.set_follow_up(Some(FollowUp {
        kind: ActionKind::Revoke,
        target: key(),
        reason: "delete the rotated key".to_owned(),
    }));
    Harness::with_connector(connector, AllowAll::new(mode).with_rollback_window(Duration::days(7)), NoLimits)
}

async fn rotated(h: &Harness) -> ActionId {
    let request = RequestBuilder::new().kind(ActionKind::Rotate).target(key()).build();
    let s = h.engine.suggest(request, &requester()).await.expect("suggest");
    if s.action.state == State::PendingApproval {
        h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    }
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    s.action.id
}

fn refused_by(e: &EngineError) -> String {
    match e {
        EngineError::Refused { rule, .. } => rule.clone(),
        other => panic!("not a refusal: {other:?}"),
    }
}

#[tokio::test]
async fn a_completed_rotation_schedules_the_deletion_for_the_end_of_its_window() {
    let h = harness(Mode::Manual);
    let id = rotated(&h).await;
    let end = fixed_time() + Duration::days(7);
    let follow = h.store.detail(id.follow_up()).expect("the follow-up exists");
    assert_eq!(follow.follows, Some(id));
    assert_eq!(follow.action.state, State::Approved, "approved with the rotation's plan");
    assert_eq!(follow.action.kind, ActionKind::Revoke);
    assert_eq!(follow.action.target, key());
    assert_eq!(follow.not_before, Some(end));
    assert_eq!(h.store.detail(id).expect("rotation").rollback_expires_at, Some(end));
    let audit = h.store.audit();
    let completed = audit.iter().find(|r| r.action_id == id && r.to == State::Completed).expect("completed");
    assert!(completed.comment.as_deref().unwrap_or_default().contains("follow-up"), "{completed:?}");
    let scheduled = audit.iter().find(|r| r.action_id == id.follow_up()).expect("the follow-up is audited");
    assert_eq!((scheduled.to, scheduled.decided_by.as_deref()), (State::Approved, Some("system")));

    // Not claimable, nor executable by hand, before the window has closed.
    assert!(h.store.claimable(fixed_time(), None, 10).await.expect("claimable").is_empty());
    let early = h.engine.execute(id.follow_up(), &admin(), false).await.expect_err("too early");
    assert_eq!(refused_by(&early), "schedule");
    assert_eq!(h.connector.state(&key()).map(|s| s.state["granted"].clone()), Some(json!(true)));

    h.clock.advance(Duration::days(7));
    let due = h.store.claimable(h.clock.now(), None, 10).await.expect("claimable");
    assert_eq!(due.iter().map(|d| d.action.id).collect::<Vec<_>>(), [id.follow_up()]);
    let out = h.engine.execute(id.follow_up(), &remediation_core::Actor::system(), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    assert_eq!(h.connector.state(&key()).map(|s| s.state["granted"].clone()), Some(json!(false)));
    assert!(h.store.detail(id.follow_up().follow_up()).is_none(), "a revoke asks for nothing after it");
}

#[tokio::test]
async fn a_rolled_back_rotation_cancels_its_follow_up() {
    let h = harness(Mode::Manual);
    let id = rotated(&h).await;
    h.engine.rollback(id, &approver("bob"), None).await.expect("rollback");
    assert_eq!(h.store.detail(id).expect("rotation").action.state, State::RolledBack);
    let follow = h.store.detail(id.follow_up()).expect("follow-up");
    assert_eq!(follow.action.state, State::Cancelled);
    h.clock.advance(Duration::days(8));
    assert!(h.store.claimable(h.clock.now(), None, 10).await.expect("claimable").is_empty());
}

#[tokio::test]
async fn a_follow_up_whose_action_no_longer_stands_is_cancelled_when_it_comes_due() {
    let h = harness(Mode::Manual);
    let id = rotated(&h).await;
    // The rotation's rollback failed half-way, say: it is no longer `completed`, and the
    // cancellation at rollback never ran.
    let mut parent = h.store.detail(id).expect("rotation");
    parent.action.state = State::Failed;
    h.store.seed(parent);
    h.clock.advance(Duration::days(7));
    let e = h.engine.execute(id.follow_up(), &remediation_core::Actor::system(), false).await.expect_err("refused");
    assert_eq!(refused_by(&e), "follow-up");
    assert_eq!(h.store.detail(id.follow_up()).expect("follow-up").action.state, State::Cancelled);
    assert_eq!(h.connector.state(&key()).map(|s| s.state["granted"].clone()), Some(json!(true)), "nothing deleted");
}

#[tokio::test]
async fn a_follow_up_waits_while_a_rollback_of_its_action_is_pending() {
    let h = harness(Mode::Manual);
    let id = rotated(&h).await;
    let mut parent = h.store.detail(id).expect("rotation");
    parent.action.state = State::RollbackRequested;
    h.store.seed(parent.clone());
    h.clock.advance(Duration::days(7));
    let e = h.engine.execute(id.follow_up(), &remediation_core::Actor::system(), false).await.expect_err("waits");
    assert_eq!(refused_by(&e), "follow-up");
    assert_eq!(h.store.detail(id.follow_up()).expect("follow-up").action.state, State::Approved, "not cancelled");
    // The request expired: the rotation stands, and the deletion goes ahead.
    parent.action.state = State::Completed;
    h.store.seed(parent);
    let out = h.engine.execute(id.follow_up(), &remediation_core::Actor::system(), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
}

#[tokio::test]
async fn without_a_persons_approval_the_follow_up_waits_for_one() {
    // Auto mode approved the rotation by itself; manual mode for the deletion is not covered
    // by anybody's decision, and advisory mode only suggests it.
    let h = harness(Mode::Auto);
    let id = rotated(&h).await;
    assert_eq!(h.store.detail(id.follow_up()).expect("follow-up").action.state, State::Approved, "auto stays auto");

    let h = harness(Mode::Manual);
    let request = RequestBuilder::new().kind(ActionKind::Rotate).target(key()).build();
    let s = h.engine.suggest(request, &requester()).await.expect("suggest");
    // Approved by a rule rather than a person: stand-in for an auto-approved rotation
    // executed under a manual policy for its follow-up.
    let mut d = h.store.detail(s.action.id).expect("stored");
    d.action.state = State::Approved;
    h.store.seed(d);
    let out = h.engine.execute(s.action.id, &approver("bob"), false).await.expect("execute");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    let follow = h.store.detail(s.action.id.follow_up()).expect("follow-up");
    assert_eq!(follow.action.state, State::PendingApproval);
    assert!(follow.approval_expires_at.is_some_and(|at| at > fixed_time() + Duration::days(7)));

    let h = harness(Mode::Advisory);
    let request = RequestBuilder::new().kind(ActionKind::Rotate).target(key()).build();
    let s = h.engine.suggest(request, &requester()).await.expect("suggest");
    assert_eq!(s.action.state, State::Suggested);
    assert!(h.store.detail(s.action.id.follow_up()).is_none(), "nothing executed, nothing follows");
}

/// A second engine over the harness's parts whose hook panics at `point`.
fn crashing(h: &Harness, point: &'static str) -> Arc<Engine> {
    Arc::new(
        Engine::new(EngineParts {
            store: Arc::clone(&h.store) as _,
            connectors: vec![Arc::clone(&h.connector) as _],
            clock: Arc::clone(&h.clock) as _,
            policy: Arc::new(AllowAll::new(Mode::Manual).with_rollback_window(Duration::days(7))),
            limits: Arc::new(NoLimits),
        })
        .with_failpoints(Arc::new(move |name| {
            if name == point {
                panic!("simulated crash at {name}");
            }
        })),
    )
}

/// A rotation suggested and approved, whose execution died at `point`; its id.
async fn rotation_killed_at(h: &Harness, point: &'static str) -> ActionId {
    let request = RequestBuilder::new().kind(ActionKind::Rotate).target(key()).build();
    let s = h.engine.suggest(request, &requester()).await.expect("suggest");
    let id = s.action.id;
    h.engine.approve(id, &approver("bob"), None).await.expect("approve");
    let crashing = crashing(h, point);
    let died = tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
    assert!(died.expect_err("the process died").is_panic());
    id
}

#[tokio::test]
async fn a_crash_before_completion_schedules_the_follow_up_once() {
    let h = harness(Mode::Manual);
    let id = rotation_killed_at(&h, failpoints::BEFORE_COMPLETED).await;
    let recovered = h.engine.recover().await.expect("recover");
    assert_eq!(recovered.iter().map(|r| r.to).collect::<Vec<_>>(), [State::Completed], "{recovered:?}");
    let follow_ups: Vec<_> = h.store.audit().into_iter().filter(|r| r.action_id == id.follow_up()).collect();
    assert_eq!(follow_ups.len(), 1, "scheduled once: {follow_ups:?}");
}

#[tokio::test]
async fn a_half_made_change_is_settled_and_the_action_executed_again() {
    let h = harness(Mode::Manual);
    let id = rotation_killed_at(&h, failpoints::AFTER_BEGIN_EXECUTION).await;
    // What the crash left: a new credential created, never handed over.
    let half = json!({"granted": true, "orphan": "AKIANEW"});
    h.connector.set_state(key(), half.clone());

    h.connector.set_settle(half, json!({"granted": true}));
    let recovered = h.engine.recover().await.expect("recover");
    assert_eq!(recovered.len(), 1, "{recovered:?}");
    assert_eq!(recovered[0].to, State::Completed, "{recovered:?}");
    assert!(recovered[0].note.contains("settled a half-made change"), "{recovered:?}");
    assert_eq!(h.connector.state(&key()).map(|s| s.state), Some(json!({"granted": true, "rotated": true})));
    let note = h.store.settings_records().into_iter().find(|r| r.setting_event == "interrupted_change_settled");
    let note = note.expect("the settling writes are in the trail");
    assert_eq!(note.action_id, Some(id));
    assert!(note.value["request_ids"].as_array().is_some_and(|ids| !ids.is_empty()), "{note:?}");
}

#[tokio::test]
async fn a_half_made_change_nobody_can_settle_fails_needing_attention() {
    let h = harness(Mode::Manual);
    let id = rotation_killed_at(&h, failpoints::AFTER_BEGIN_EXECUTION).await;
    h.connector.set_state(key(), json!({"granted": true, "orphan": "AKIANEW"}));
    // The connector settles only what it recognises.
    h.connector.set_settle(json!({"something": "else"}), json!({"granted": true}));
    let recovered = h.engine.recover().await.expect("recover");
    assert_eq!(recovered[0].to, State::Failed, "{recovered:?}");
    assert!(recovered[0].note.contains("needs attention"), "{recovered:?}");
    assert!(h.store.detail(id.follow_up()).is_none(), "a failed rotation schedules nothing");
}
