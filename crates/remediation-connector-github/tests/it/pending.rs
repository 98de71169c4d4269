//! The engine's word for a rollback GitHub takes as an invitation: re-adding a removed
//! collaborator sends an invitation (201), so the rollback is `rolled_back` but the access
//! waits for the user to accept, and the plan said so before approval.

use std::sync::Arc;

use remediation_core::{
    ActionKind, ActionRequest, ActionStore, Connector, Engine, EngineParts, ExecuteOutcome, ManualClock, Mode,
    Recovery, RollbackOutcome, State, failpoints,
};
use remediation_testkit::{AllowAll, InMemoryStore, NoLimits, approver, fixed_time, requester};
use serde_json::json;

use crate::{Fixture, target};

fn engine(store: &Arc<InMemoryStore>, connector: Arc<dyn Connector>) -> Engine {
    Engine::new(EngineParts {
        store: store.clone() as _,
        connectors: vec![connector],
        clock: Arc::new(ManualClock::new(fixed_time())),
        policy: Arc::new(AllowAll::new(Mode::Manual)),
        limits: Arc::new(NoLimits),
    })
}

fn revoke_mona() -> ActionRequest {
    ActionRequest {
        connector: "github".to_owned(),
        kind: ActionKind::Revoke,
        target: target("repo_collaborator", "mona", "acme/payments"),
        reason: "unused for 90 days".to_owned(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    }
}

#[tokio::test]
async fn rolling_back_a_collaborator_removal_is_restored_pending_acceptance() {
    let f = Fixture::start(100, |s| s.add_collaborator("acme/payments", "mona", "push")).await;
    let store = Arc::new(InMemoryStore::new());
    let engine = engine(&store, Arc::new(f.connector()));
    let suggestion = engine.suggest(revoke_mona(), &requester()).await.unwrap();
    let description = &suggestion.plan.description;
    assert!(description.contains("rollback can only re-invite them"), "{description}");
    let id = suggestion.action.id;
    engine.approve(id, &approver("bob"), None).await.unwrap();
    let outcome = engine.execute(id, &approver("bob"), false).await.unwrap();
    assert!(matches!(outcome, ExecuteOutcome::Completed { .. }), "{outcome:?}");

    let rolled = engine.rollback(id, &approver("bob"), None).await.unwrap();
    let RollbackOutcome::RestoredPendingAcceptance { action } = &rolled else {
        panic!("expected a rollback pending acceptance, got {rolled:?}")
    };
    assert_eq!(action.state, State::RolledBack);
    let detail = store.get(id).await.unwrap();
    assert!(detail.pending_acceptance);
    let restored = detail.restored.unwrap();
    assert_eq!(
        (restored.state["permission"].clone(), restored.state["invitation"].clone()),
        (json!(null), json!("push"))
    );
    let last = store.transitions(id).await.unwrap().pop().unwrap();
    let comment = last.comment.unwrap_or_default();
    assert!(comment.contains("access waits for mona to accept it"), "{comment}");

    // Once mona accepts, the before-state is back.
    assert!(f.fake.state().accept_repo_invitation("acme/payments", "mona"));
    assert_eq!(f.fake.state().repos["acme/payments"].collaborators["mona"], "push");
}

#[tokio::test]
async fn a_rollback_interrupted_after_the_invitation_is_recovered_as_pending_acceptance() {
    let f = Fixture::start(100, |s| s.add_collaborator("acme/payments", "mona", "push")).await;
    let store = Arc::new(InMemoryStore::new());
    let c: Arc<dyn Connector> = Arc::new(f.connector());
    let first = engine(&store, c.clone());
    let id = first.suggest(revoke_mona(), &requester()).await.unwrap().action.id;
    first.approve(id, &approver("bob"), None).await.unwrap();
    let crashing = Arc::new(first.with_failpoints(Arc::new(|name| {
        if name == failpoints::AFTER_ROLLBACK_WRITE {
            panic!("simulated crash at {name}");
        }
    })));
    let died = tokio::spawn(async move {
        crashing.execute(id, &approver("bob"), false).await.map(|_| ())?;
        crashing.rollback(id, &approver("bob"), None).await.map(|_| ())
    })
    .await;
    assert!(died.expect_err("the process died").is_panic());
    assert_eq!(f.fake.state().repos["acme/payments"].invitations["mona"], "push", "the invitation was sent");

    let recovered = engine(&store, c).recover().await.unwrap();
    let [Recovery { from, to, note, .. }] = recovered.as_slice() else { panic!("{recovered:?}") };
    assert_eq!((*from, *to), (State::RollingBack, State::RolledBack));
    assert!(note.contains("access waits for mona to accept it"), "{note}");
    assert!(store.get(id).await.unwrap().pending_acceptance);
}
