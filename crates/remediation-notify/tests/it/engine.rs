//! The notifier driven by the real engine: suggest, approve, execute, and execute again; and
//! the crash rule across a restart when the notifier keeps its record in a state directory.

use std::sync::Arc;
use std::time::Duration;

use remediation_core::{
    ActionKind, ActionRequest, Connector, Engine, EngineParts, ExecuteOutcome, Mode, Recovery, State, failpoints,
};
use remediation_notify::{Notifier, NotifierOptions, RetryPolicy};
use remediation_testkit::{AllowAll, InMemoryStore, NoLimits, TargetBuilder, approver, requester};
use secrecy::SecretString;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::clock;

fn engine(store: Arc<InMemoryStore>, notifier: Arc<dyn Connector>) -> Engine {
    Engine::new(EngineParts {
        store: store as _,
        connectors: vec![notifier],
        clock: clock() as _,
        policy: Arc::new(AllowAll::new(Mode::Manual)),
        limits: Arc::new(NoLimits),
    })
}

fn request() -> ActionRequest {
    ActionRequest {
        connector: "slack".to_owned(),
        kind: ActionKind::Notify,
        target: TargetBuilder::new().identity("alice").resource("admins").grant_type("notification").build(),
        reason: "stale admin membership".to_owned(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    }
}

#[tokio::test]
async fn engine_completes_a_notify_action_and_sends_one_message() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let options =
        NotifierOptions { timeout: Duration::from_secs(5), retry: RetryPolicy::immediate(2), state_dir: None };
    let notifier = Notifier::slack("slack", SecretString::from(format!("{}/services/T/B/x", server.uri())), options)
        .expect("notifier");
    let store = Arc::new(InMemoryStore::new());
    let engine = Engine::new(EngineParts {
        store: store.clone() as _,
        connectors: vec![Arc::new(notifier)],
        clock: clock() as _,
        policy: Arc::new(AllowAll::new(Mode::Manual)),
        limits: Arc::new(NoLimits),
    });

    let request = ActionRequest {
        connector: "slack".to_owned(),
        kind: ActionKind::Notify,
        target: TargetBuilder::new().identity("alice").resource("admins").grant_type("notification").build(),
        reason: "stale admin membership".to_owned(),
        control_id: None,
        finding_id: None,
        dry_run: false,
        campaign: None,
    };
    let suggestion = engine.suggest(request, &requester()).await.expect("suggest");
    assert_eq!(suggestion.plan.expected_after.state["notifications"], 1);
    let id = suggestion.action.id;
    engine.approve(id, &approver("bob"), None).await.expect("approve");
    let outcome = engine.execute(id, &approver("bob"), false).await.expect("execute");
    let ExecuteOutcome::Completed { action, after } = outcome else { panic!("{outcome:?}") };
    assert_eq!(action.state, State::Completed);
    assert_eq!(after.state["notifications"], 1);
    // A completed notify action cannot be executed again, and nothing more is sent.
    assert!(engine.execute(id, &approver("bob"), false).await.is_err());
    server.verify().await;
}

/// The process dies at `point` during execution; a new process (new notifier over the same
/// state directory, new engine over the same store) recovers. Exactly one message is sent.
async fn crash_and_recover(point: &'static str) {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let dir = tempfile::tempdir().expect("tempdir");
    let notifier = || {
        let options = NotifierOptions {
            timeout: Duration::from_secs(5),
            retry: RetryPolicy::immediate(1),
            state_dir: Some(dir.path().to_owned()),
        };
        let url = SecretString::from(format!("{}/services/T/B/x", server.uri()));
        Arc::new(Notifier::slack("slack", url, options).expect("notifier"))
    };
    let store = Arc::new(InMemoryStore::new());
    let first = engine(Arc::clone(&store), notifier());
    let id = first.suggest(request(), &requester()).await.expect("suggest").action.id;
    first.approve(id, &approver("bob"), None).await.expect("approve");
    let crashing = Arc::new(first.with_failpoints(Arc::new(move |name| {
        if name == point {
            panic!("simulated crash at {name}");
        }
    })));
    let died = tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
    assert!(died.expect_err("the process died").is_panic(), "{point}");
    assert_eq!(store.detail(id).expect("stored").action.state, State::Executing);

    let restarted = engine(Arc::clone(&store), notifier());
    let recovered = restarted.recover().await.expect("recover");
    let [Recovery { from: State::Executing, to: State::Completed, .. }] = recovered.as_slice() else {
        panic!("{point}: {recovered:?}")
    };
    server.verify().await;
}

#[tokio::test]
async fn crash_before_the_send_recovers_by_sending_once() {
    crash_and_recover(failpoints::AFTER_BEGIN_EXECUTION).await;
}

#[tokio::test]
async fn crash_after_the_send_recovers_without_sending_again() {
    crash_and_recover(failpoints::AFTER_PROVIDER_WRITE).await;
    crash_and_recover(failpoints::BEFORE_COMPLETED).await;
}
