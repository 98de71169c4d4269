//! The webhook connector driven by the real engine: a whole lifecycle with the receiver's
//! request ids in the audit, and the crash rule at every failpoint (the receiver applies each
//! write exactly once).

use std::sync::Arc;

use remediation_core::{
    ActionKind, ActionRequest, Connector, Engine, EngineParts, ExecuteOutcome, ManualClock, Mode, Recovery,
    RollbackOutcome, State, SystemClock, failpoints,
};
use remediation_testkit::fakes::webhook::{WebhookFake, initial_state};
use remediation_testkit::{AllowAll, InMemoryStore, NoLimits, approver, fixed_time, requester};
use serde_json::json;

use crate::{SECRET, connector, fake, fresh_identity, target};

fn engine(store: Arc<InMemoryStore>, connector: Arc<dyn Connector>) -> Engine {
    Engine::new(EngineParts {
        store: store as _,
        connectors: vec![connector],
        clock: Arc::new(ManualClock::new(fixed_time())),
        policy: Arc::new(AllowAll::new(Mode::Manual)),
        limits: Arc::new(NoLimits),
    })
}

fn request(fake: &WebhookFake) -> ActionRequest {
    ActionRequest {
        connector: "hooks".to_owned(),
        kind: ActionKind::Revoke,
        target: target("app_role", &fresh_identity(fake), Some("crm")),
        reason: "admin role unused for 90 days".to_owned(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    }
}

fn state_of(fake: &WebhookFake, request: &ActionRequest) -> serde_json::Value {
    fake.state_of(&serde_json::to_value(&request.target).unwrap()).unwrap()
}

#[tokio::test]
async fn a_whole_lifecycle_keeps_the_receivers_request_ids_in_the_audit() {
    let fake = fake().await;
    let (c, _) = connector(&fake, SECRET, Arc::new(SystemClock));
    let store = Arc::new(InMemoryStore::new());
    let engine = engine(store.clone(), c);
    let req = request(&fake);
    let suggestion = engine.suggest(req.clone(), &requester()).await.unwrap();
    assert_eq!(suggestion.plan.description, format!("revoke for {}", req.target.identity));
    let id = suggestion.action.id;
    engine.approve(id, &approver("bob"), None).await.unwrap();
    let outcome = engine.execute(id, &approver("bob"), false).await.unwrap();
    assert!(matches!(outcome, ExecuteOutcome::Completed { .. }), "{outcome:?}");
    assert_eq!(state_of(&fake, &req)["granted"], json!(false));
    let rolled = engine.rollback(id, &approver("bob"), None).await.unwrap();
    assert!(matches!(rolled, RollbackOutcome::RolledBack { .. }), "{rolled:?}");
    assert_eq!(state_of(&fake, &req), initial_state());
    assert_eq!(fake.applied(), 2);
    let audit: Vec<String> = store.audit().iter().map(|r| serde_json::to_string(r).unwrap()).collect();
    let with_ids = audit.iter().filter(|r| r.contains("\"whreq-")).count();
    assert!(with_ids >= 2, "the execution and the rollback keep request ids: {audit:#?}");
}

/// The process dies at `point`; a new engine over the same store recovers. The receiver
/// applies the execution (and, for rollback points, the restore) exactly once.
async fn crash_and_recover(point: &'static str) {
    let fake = fake().await;
    let (c, _) = connector(&fake, SECRET, Arc::new(SystemClock));
    let store = Arc::new(InMemoryStore::new());
    let first = engine(store.clone(), c.clone());
    let req = request(&fake);
    let id = first.suggest(req.clone(), &requester()).await.unwrap().action.id;
    first.approve(id, &approver("bob"), None).await.unwrap();
    let rollback_point = point == failpoints::AFTER_BEGIN_ROLLBACK || point == failpoints::AFTER_ROLLBACK_WRITE;
    let crashing = Arc::new(first.with_failpoints(Arc::new(move |name| {
        if name == point {
            panic!("simulated crash at {name}");
        }
    })));
    let died = tokio::spawn(async move {
        crashing.execute(id, &approver("bob"), false).await.map(|_| ())?;
        crashing.rollback(id, &approver("bob"), None).await.map(|_| ())
    })
    .await;
    assert!(died.expect_err("the process died").is_panic(), "{point}");
    let left = if rollback_point { State::RollingBack } else { State::Executing };
    assert_eq!(store.detail(id).unwrap().action.state, left, "{point}");

    let restarted = engine(store.clone(), c);
    let recovered = restarted.recover().await.unwrap();
    let expected = if rollback_point { State::RolledBack } else { State::Completed };
    let [Recovery { from, to, .. }] = recovered.as_slice() else { panic!("{point}: {recovered:?}") };
    assert_eq!((*from, *to), (left, expected), "{point}: {recovered:?}");
    assert_eq!(fake.applied(), if rollback_point { 2 } else { 1 }, "{point}");
    let expected_state = if rollback_point { initial_state() } else { json!(false) };
    let state = state_of(&fake, &req);
    if rollback_point {
        assert_eq!(state, expected_state, "{point}");
    } else {
        assert_eq!(state["granted"], expected_state, "{point}");
    }
}

#[tokio::test]
async fn the_crash_rule_holds_at_every_failpoint() {
    for point in failpoints::ALL {
        crash_and_recover(point).await;
    }
}
