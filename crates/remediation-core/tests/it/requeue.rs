//! A throttled or transiently failing execution with nothing written goes back to `approved`
//! with a not-before time, its limit slots released, audited, and fails after a bound.

use std::time::Duration as StdDuration;

use remediation_core::{
    ActionId, ActionStore, Clock, ConnectorError, ConnectorErrorKind, ExecuteOutcome, Mode, REQUEUE_ATTEMPTS, State,
};
use remediation_testkit::{
    AllowAll, FixedLimits, Harness, Method, NoLimits, RequestBuilder, TargetBuilder, approver, fixed_time, requester,
    slot, snap,
};
use serde_json::json;
use time::Duration;

async fn approved(h: &Harness, identity: &str) -> ActionId {
    let target = TargetBuilder::new().identity(identity).build();
    h.connector.set_state(target.clone(), json!({"granted": true}));
    let s = h.engine.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");
    h.engine.approve(s.action.id, &approver("bob"), None).await.expect("approve");
    s.action.id
}

fn throttled(secs: Option<u64>) -> ConnectorError {
    ConnectorError::new(ConnectorErrorKind::Throttled { retry_after: secs.map(StdDuration::from_secs) }, "slow down")
}

#[tokio::test]
async fn a_throttled_execution_is_requeued_with_its_slots_released() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("connector:sandbox", 1, 3600)]));
    let first = approved(&h, "alice").await;
    let second = approved(&h, "mallory").await;
    h.connector.fail(Method::Execute, throttled(Some(30)));

    let out = h.engine.execute(first, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Requeued { action, not_before } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Approved);
    assert_eq!(not_before, fixed_time() + Duration::seconds(30));
    let d = h.store.detail(first).expect("detail");
    assert_eq!((d.not_before, d.attempts), (Some(not_before), 1));
    assert!(h.store.reservations("connector:sandbox").is_empty(), "the requeue releases the slot");
    let requeue = h.store.audit().into_iter().find(|r| r.event == "requeue").expect("requeue audited");
    assert_eq!((requeue.from, requeue.to, requeue.actor.as_str()), (Some(State::Executing), State::Approved, "system"));
    let comment = requeue.comment.expect("comment");
    assert!(comment.starts_with("requeued: provider throttled, retry after 30s (attempt 1 of 5)"), "{comment}");

    // Not claimable before its time; the limit of 1 admits another action meanwhile.
    let ids = |v: Vec<remediation_core::ActionDetail>| v.into_iter().map(|d| d.action.id).collect::<Vec<_>>();
    assert_eq!(ids(h.store.claimable(fixed_time(), None, 10).await.expect("claimable")), [second]);
    h.connector.clear_fault(Method::Execute);
    let out = h.engine.execute(second, &approver("bob"), false).await.expect("second");
    assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
    assert_eq!(
        ids(h.store.claimable(fixed_time() + Duration::seconds(30), None, 10).await.expect("claimable")),
        [first]
    );
}

#[tokio::test]
async fn a_throttled_execution_that_changed_the_target_fails_instead() {
    let h = Harness::new(AllowAll::new(Mode::Manual), FixedLimits(vec![slot("connector:sandbox", 1, 3600)]));
    let id = approved(&h, "alice").await;
    h.connector.fail(Method::Execute, throttled(Some(30)));
    h.connector.write_despite_fault(true);

    let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Failed { action, error } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Failed);
    assert!(error.contains("not requeued: the target no longer shows the before-state"), "{error}");
    assert_eq!(h.store.reservations("connector:sandbox").len(), 1, "a failed execution keeps its slot");
    assert!(h.store.audit().iter().all(|r| r.event != "requeue"));
    assert_eq!(h.store.detail(id).expect("detail").after, Some(snap(json!({"granted": false}))));
}

#[tokio::test]
async fn transient_failures_back_off_and_fail_after_the_bound() {
    let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
    let id = approved(&h, "alice").await;
    h.connector.fail(Method::Execute, ConnectorError::new(ConnectorErrorKind::Transient, "503"));

    let mut waits = Vec::new();
    for _ in 1..REQUEUE_ATTEMPTS {
        let out = h.engine.execute(id, &approver("bob"), false).await.expect("execute");
        let ExecuteOutcome::Requeued { not_before, .. } = out else { panic!("{out:?}") };
        waits.push((not_before - h.clock.now()).whole_seconds());
        h.clock.set(not_before);
    }
    assert_eq!(waits, [1, 2, 4, 8]);
    let out = h.engine.execute(id, &approver("bob"), false).await.expect("last");
    let ExecuteOutcome::Failed { action, error } = out else { panic!("{out:?}") };
    assert_eq!(action.state, State::Failed);
    assert!(error.contains("gave up after 5 of 5 attempts"), "{error}");
    let comments: Vec<String> =
        h.store.audit().into_iter().filter(|r| r.event == "requeue").filter_map(|r| r.comment).collect();
    assert_eq!(comments.len(), 4);
    assert!(comments[3].starts_with("requeued: provider failed transiently, retry after 8s (attempt 4 of 5)"));
}
