//! The notifier connector against a fake Slack and a fake webhook receiver.

use std::time::Duration;

use remediation_core::{
    ActionKind, Connector, ConnectorError, ConnectorErrorKind, KindName, OutcomeStatus, Reversibility,
};
use remediation_notify::{
    DEFAULT_TOLERANCE, EVENT_ID_HEADER, Notifier, NotifierOptions, RetryPolicy, SIGNATURE_HEADER, TIMESTAMP_HEADER,
    verify_signature,
};
use remediation_testkit::{ActionBuilder, TargetBuilder, fixed_time};
use secrecy::SecretString;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Logs, clock, closed_port, notify_action};

/// The secret part of a Slack webhook URL.
const TOKEN_PATH: &str = "T0001/B0002/sEcReTtOkEn9876";
const WEBHOOK_SECRET: &str = "whsec-NOTIFIER-SECRET-1234";

fn options(state_dir: Option<&std::path::Path>) -> NotifierOptions {
    NotifierOptions {
        timeout: Duration::from_secs(5),
        retry: RetryPolicy::immediate(3),
        state_dir: state_dir.map(ToOwned::to_owned),
    }
}

fn slack_at(base: &str, state_dir: Option<&std::path::Path>) -> Notifier {
    let url = SecretString::from(format!("{base}/services/{TOKEN_PATH}"));
    Notifier::slack("slack", url, options(state_dir)).expect("notifier").with_clock(clock())
}

async fn slack_server(status: u16, body: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(format!("/services/{TOKEN_PATH}")))
        .respond_with(ResponseTemplate::new(status).set_body_string(body))
        .mount(&server)
        .await;
    server
}

async fn bodies(server: &MockServer) -> Vec<Value> {
    let requests = server.received_requests().await.expect("recorded");
    requests.iter().map(|r| serde_json::from_slice(&r.body).expect("json body")).collect()
}

async fn run(notifier: &Notifier, action: &remediation_core::Action) -> Result<OutcomeStatus, ConnectorError> {
    let before = notifier.snapshot(&action.target).await?;
    let planned = notifier.plan(action, &before).await?;
    let outcome = notifier.execute(action, &before).await?;
    let verification = notifier.verify(action, &planned).await?;
    assert!(verification.matches || outcome.status == OutcomeStatus::AlreadyInState, "{verification:?}");
    Ok(outcome.status)
}

#[tokio::test]
async fn capability_and_plan_follow_the_notification_state_model() {
    let notifier = slack_at("http://127.0.0.1:9", None);
    let caps = notifier.capabilities();
    assert_eq!(caps.len(), 1);
    assert_eq!((caps[0].kind, caps[0].grant_type.as_str()), (KindName::Notify, "notification"));
    assert_eq!(caps[0].reversibility, Reversibility::Irreversible);
    assert!(!caps[0].observable);

    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    assert_eq!(before.state, json!({"identity": "alice", "resource": "admins", "grant": null, "notifications": 0}));
    let planned = notifier.plan(&action, &before).await.expect("plan");
    assert_eq!(planned.expected_after.state["notifications"], 1);
    assert!(planned.description.contains("notification:alice@admins"), "{}", planned.description);
    assert!(!planned.description.contains(TOKEN_PATH));
    assert!(notifier.health().await.expect("health").healthy);
    assert!(notifier.check_permissions().await.expect("permissions").can_write());
}

#[tokio::test]
async fn slack_message_says_what_was_found_and_what_is_asked() {
    let server = slack_server(200, "ok").await;
    let notifier = slack_at(&server.uri(), None);
    let mut action = notify_action(1);
    action.reason = "alice holds admin in admins <!channel> & more".to_owned();
    assert_eq!(run(&notifier, &action).await, Ok(OutcomeStatus::Applied));

    let sent = bodies(&server).await;
    assert_eq!(sent.len(), 1);
    let text = sent[0]["text"].as_str().expect("text");
    assert!(text.contains("alice in admins"), "{text}");
    assert!(text.contains(&action.id.to_string()), "{text}");
    assert!(text.contains("Please review"), "{text}");
    // User text cannot ping the channel or forge a link.
    assert!(text.contains("&lt;!channel&gt; &amp; more"), "{text}");
    assert!(!sent[0].to_string().contains("<!channel>"));
    let blocks = sent[0]["blocks"].as_array().expect("blocks");
    let all = serde_json::to_string(blocks).expect("json");
    for needle in [
        "*Identity*\\nalice",
        "*Resource*\\nadmins",
        "*Control*\\nCTRL-7",
        "*Requested by*\\nlocal:alice",
        "*Found:*",
        "*Asked:*",
    ] {
        assert!(all.contains(needle), "{needle} missing in {all}");
    }
    assert_eq!(blocks[0]["type"], "header");
}

#[tokio::test]
async fn executing_twice_sends_once_and_a_restart_remembers() {
    let server = slack_server(200, "ok").await;
    let dir = tempfile::tempdir().expect("tempdir");
    let notifier = slack_at(&server.uri(), Some(dir.path()));
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    assert_eq!(notifier.execute(&action, &before).await.expect("first").status, OutcomeStatus::Applied);
    assert_eq!(notifier.execute(&action, &before).await.expect("second").status, OutcomeStatus::AlreadyInState);
    assert_eq!(bodies(&server).await.len(), 1);

    // A new process over the same state directory knows the key and counts the delivery.
    let restarted = slack_at(&server.uri(), Some(dir.path()));
    assert_eq!(restarted.execute(&action, &before).await.expect("after restart").status, OutcomeStatus::AlreadyInState);
    assert_eq!(bodies(&server).await.len(), 1);
    let now = restarted.snapshot(&action.target).await.expect("snapshot");
    assert_eq!(now.state["notifications"], 1);
    let delivered = restarted.delivered();
    assert_eq!(delivered.len(), 1);
    assert_eq!(delivered[0].idempotency_key, action.idempotency_key);
    assert!(dir.path().join("notifier-slack.json").exists());

    // Another action about the same target is a new notification.
    assert_eq!(run(&restarted, &notify_action(2)).await, Ok(OutcomeStatus::Applied));
    assert_eq!(bodies(&server).await.len(), 2);
    // Without a state directory, a new process does not know.
    assert_eq!(slack_at(&server.uri(), None).snapshot(&action.target).await.expect("snap").state["notifications"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_executions_of_one_action_send_once() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(1)
        .mount(&server)
        .await;
    let notifier = slack_at(&server.uri(), None);
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    let (a, b) = tokio::join!(notifier.execute(&action, &before), notifier.execute(&action, &before));
    let mut statuses = vec![a.expect("a").status, b.expect("b").status];
    statuses.sort_by_key(|s| *s == OutcomeStatus::AlreadyInState);
    assert_eq!(statuses, vec![OutcomeStatus::Applied, OutcomeStatus::AlreadyInState]);
    server.verify().await;
}

#[tokio::test]
async fn a_500_is_retried_then_delivered() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200).set_body_string("ok")).mount(&server).await;
    let notifier = slack_at(&server.uri(), None);
    assert_eq!(run(&notifier, &notify_action(1)).await, Ok(OutcomeStatus::Applied));
    assert_eq!(bodies(&server).await.len(), 3);
}

#[track_caller]
fn check_kind(error: &ConnectorError, expected: &ConnectorErrorKind) {
    assert_eq!(&error.kind, expected, "{error}");
    assert!(!error.to_string().contains(TOKEN_PATH), "{error}");
    assert!(!error.to_string().contains("sEcReT"), "{error}");
}

#[tokio::test]
async fn slack_answers_map_to_connector_error_kinds() {
    use ConnectorErrorKind::*;
    let cases: Vec<(ResponseTemplate, ConnectorErrorKind, u64)> = vec![
        (ResponseTemplate::new(400).set_body_string("invalid_payload"), Permanent, 1),
        (ResponseTemplate::new(403).set_body_string("invalid_token"), Forbidden, 1),
        (ResponseTemplate::new(404).set_body_string("no_service"), NotFound, 1),
        (ResponseTemplate::new(410).set_body_string("channel_is_archived"), Permanent, 1),
        (ResponseTemplate::new(401), Unauthenticated, 1),
        (ResponseTemplate::new(409), Conflict, 1),
        (
            ResponseTemplate::new(429).insert_header("Retry-After", "30").set_body_string("rate_limited"),
            Throttled { retry_after: Some(Duration::from_secs(30)) },
            1,
        ),
        (ResponseTemplate::new(429), Throttled { retry_after: None }, 1),
        (ResponseTemplate::new(200).set_body_string("invalid_blocks"), Permanent, 1),
        (ResponseTemplate::new(503).set_body_string("service_unavailable"), Transient, 3),
    ];
    for (response, expected, requests) in cases {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(response).expect(requests).mount(&server).await;
        let notifier = slack_at(&server.uri(), None);
        let action = notify_action(1);
        let before = notifier.snapshot(&action.target).await.expect("snapshot");
        let error = notifier.execute(&action, &before).await.expect_err("refused");
        check_kind(&error, &expected);
        // A refused notification is not recorded: the next try sends again.
        assert_eq!(notifier.snapshot(&action.target).await.expect("snapshot").state["notifications"], 0);
        server.verify().await;
    }
}

#[tokio::test]
async fn an_echoed_url_is_redacted_from_errors() {
    let server = MockServer::start().await;
    let echo =
        format!("Not Found: POST /services/{TOKEN_PATH} ({}/services/{TOKEN_PATH}) sEcReTtOkEn9876", server.uri());
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(404).set_body_string(echo)).mount(&server).await;
    let notifier = slack_at(&server.uri(), None);
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    let error = notifier.execute(&action, &before).await.expect_err("404");
    check_kind(&error, &ConnectorErrorKind::NotFound);
    assert!(error.message.contains("[redacted]"), "{error}");
}

#[tokio::test]
async fn slack_request_id_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).insert_header("x-slack-req-id", "req-123").set_body_string("ok"))
        .mount(&server)
        .await;
    let notifier = slack_at(&server.uri(), None);
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    assert_eq!(notifier.execute(&action, &before).await.expect("sent").request_ids, vec!["req-123".to_owned()]);
    let again = notifier.execute(&action, &before).await.expect("again");
    assert_eq!((again.status, again.request_ids), (OutcomeStatus::AlreadyInState, vec!["req-123".to_owned()]));
}

#[tokio::test]
async fn webhook_notifier_posts_signed_json() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(202))
        .expect(1)
        .mount(&server)
        .await;
    let url = format!("{}/hook", server.uri()).parse().expect("url");
    let notifier = Notifier::webhook("tickets", url, SecretString::from(WEBHOOK_SECRET), options(None))
        .expect("notifier")
        .with_clock(clock());
    let action = ActionBuilder::new()
        .seed(5)
        .kind(ActionKind::Notify)
        .target(TargetBuilder::new().identity("carol").no_resource().grant_type("notification").build())
        .connector("tickets")
        .reason("dormant account")
        .build();
    assert_eq!(run(&notifier, &action).await, Ok(OutcomeStatus::Applied));
    assert_eq!(run(&notifier, &action).await, Ok(OutcomeStatus::AlreadyInState));

    let requests = server.received_requests().await.expect("recorded");
    let req = &requests[0];
    let body: Value = serde_json::from_slice(&req.body).expect("json");
    assert_eq!(body["action"]["id"], action.id.to_string());
    assert_eq!(body["action"]["kind"], json!({"type": "notify"}));
    assert_eq!(body["target"], json!({"identity": "carol", "grant_type": "notification"}));
    assert_eq!(body["reason"], "dormant account");
    assert_eq!(body["idempotency_key"], action.idempotency_key);
    assert!(body["text"].as_str().expect("text").contains("carol"));

    let h = |n: &str| req.headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(h(EVENT_ID_HEADER), action.idempotency_key);
    let secret = SecretString::from(WEBHOOK_SECRET);
    let ts = h(TIMESTAMP_HEADER);
    let sig = h(SIGNATURE_HEADER);
    assert_eq!(verify_signature(&secret, &ts, &req.body, &sig, fixed_time(), DEFAULT_TOLERANCE), Ok(()));
    let mut tampered = req.body.clone();
    tampered.extend_from_slice(b" ");
    assert!(verify_signature(&secret, &ts, &tampered, &sig, fixed_time(), DEFAULT_TOLERANCE).is_err());
    let stale = fixed_time() + time::Duration::minutes(6);
    assert!(verify_signature(&secret, &ts, &req.body, &sig, stale, DEFAULT_TOLERANCE).is_err());
}

#[tokio::test]
async fn other_kinds_and_rollback_are_unsupported_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("ok"))
        .expect(0)
        .mount(&server)
        .await;
    let notifier = slack_at(&server.uri(), None);
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");

    let mut revoke = action.clone();
    revoke.kind = ActionKind::Revoke;
    check_kind(&notifier.execute(&revoke, &before).await.expect_err("revoke"), &ConnectorErrorKind::Unsupported);
    let mut account = action.clone();
    account.target.grant_type = "account".to_owned();
    check_kind(&notifier.execute(&account, &before).await.expect_err("grant type"), &ConnectorErrorKind::Unsupported);
    check_kind(&notifier.snapshot(&account.target).await.expect_err("snapshot"), &ConnectorErrorKind::Unsupported);
    check_kind(
        &notifier.rollback(&action, &before, &before).await.expect_err("rollback"),
        &ConnectorErrorKind::Unsupported,
    );
}

#[tokio::test]
async fn no_secret_in_debug_errors_or_logs() {
    let (logs, _guard) = Logs::capture();
    let base = format!("http://127.0.0.1:{}", closed_port());
    let notifier = slack_at(&base, None);
    let action = notify_action(1);
    let before = notifier.snapshot(&action.target).await.expect("snapshot");
    let error = notifier.execute(&action, &before).await.expect_err("unreachable");
    check_kind(&error, &ConnectorErrorKind::Transient);
    assert!(error.message.contains("could not connect") && error.message.contains("3 attempt"), "{error}");

    let webhook = Notifier::webhook(
        "tickets",
        format!("{base}/hook").parse().expect("url"),
        SecretString::from(WEBHOOK_SECRET),
        options(None),
    )
    .expect("notifier");
    let werror = webhook.execute(&action, &before).await.expect_err("unreachable");

    let everything = format!(
        "{notifier:?} {webhook:?} {error} {error:?} {werror} {werror:?} {} {:?}",
        logs.text(),
        notifier.health().await
    );
    for secret in [TOKEN_PATH, "sEcReT", WEBHOOK_SECRET] {
        assert!(!everything.contains(secret), "{secret} leaked: {everything}");
    }
}
