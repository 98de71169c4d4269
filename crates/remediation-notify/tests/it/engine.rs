//! The notifier driven by the real engine: suggest, approve, execute, and execute again.

use std::sync::Arc;
use std::time::Duration;

use remediation_core::{ActionKind, ActionRequest, Engine, EngineParts, ExecuteOutcome, Mode, State};
use remediation_notify::{Notifier, NotifierOptions, RetryPolicy};
use remediation_testkit::{AllowAll, InMemoryStore, NoLimits, TargetBuilder, approver, requester};
use secrecy::SecretString;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::clock;

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
