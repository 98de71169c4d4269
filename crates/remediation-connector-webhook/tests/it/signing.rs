//! The receiver's side of the signature: tampered bodies and signatures, stale and future
//! timestamps, requests replayed to another operation and mismatched idempotency keys are
//! refused; the connector's own requests all verify.

use std::sync::Arc;
use std::time::Duration;

use remediation_core::{ActionKind, Connector, ConnectorErrorKind, ManualClock, SystemClock};
use remediation_notify::{SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};
use remediation_testkit::ActionBuilder;
use remediation_testkit::fakes::webhook::{REPLAY_WINDOW, Rejection};
use secrecy::SecretString;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::{SECRET, connector, fake, fresh_identity, target};

/// Sends `body` to `{url}/{operation}` signed at `timestamp` with `secret`, after `tamper`
/// changed the bytes; returns the status and the answer.
async fn send_raw(
    url: &str,
    operation: &str,
    secret: &str,
    timestamp: i64,
    body: &Value,
    headers: &[(&str, &str)],
    tamper: impl FnOnce(Vec<u8>) -> Vec<u8>,
) -> (u16, Value) {
    let bytes = serde_json::to_vec(body).unwrap();
    let signature = sign(&SecretString::from(secret.to_owned()), timestamp, &bytes);
    let mut request = reqwest::Client::new()
        .post(format!("{url}/{operation}"))
        .header("content-type", "application/json")
        .header(TIMESTAMP_HEADER, timestamp.to_string())
        .header(SIGNATURE_HEADER, signature);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let response = request.body(tamper(bytes)).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn now() -> i64 {
    OffsetDateTime::now_utc().unix_timestamp()
}

#[tokio::test]
async fn every_request_the_connector_sends_verifies() {
    let fake = fake().await;
    let (c, _) = connector(&fake, SECRET, Arc::new(SystemClock));
    let t = target("app_role", &fresh_identity(&fake), Some("crm"));
    let action = ActionBuilder::new().connector("hooks").kind(ActionKind::Revoke).target(t.clone()).build();
    c.health().await.unwrap();
    let before = c.snapshot(&t).await.unwrap();
    let planned = c.plan(&action, &before).await.unwrap();
    c.execute(&action, &before).await.unwrap();
    assert!(c.verify(&action, &planned).await.unwrap().matches);
    c.rollback(&action, &before, &planned.expected_after).await.unwrap();
    assert!(fake.rejections().is_empty(), "{:?}", fake.rejections());
    let log = fake.log().all();
    assert_eq!(log.len(), 6);
    for r in &log {
        assert_eq!(r.status, 200, "{} {}", r.method, r.path);
        assert!(r.headers["x-remediation-signature"].starts_with("sha256="));
        assert_eq!(r.headers["x-remediation-signature"].len(), "sha256=".len() + 64);
        assert!(r.headers["x-remediation-timestamp"].bytes().all(|b| b.is_ascii_digit()));
    }
}

#[tokio::test]
async fn a_tampered_body_or_signature_or_key_is_refused_with_401() {
    let fake = fake().await;
    let identity = fresh_identity(&fake);
    let body = json!({"version": 1, "operation": "snapshot", "connector": "hooks",
        "target": {"identity": identity, "grant_type": "app_role"}});
    let url = fake.url();
    let untouched = |b: Vec<u8>| b;
    let (status, _) = send_raw(&url, "snapshot", SECRET, now(), &body, &[], untouched).await;
    assert_eq!(status, 200, "the untampered request is accepted");

    let flip = |mut b: Vec<u8>| {
        let last = b.len() - 2;
        b[last] ^= 0x01;
        b
    };
    let (status, answer) = send_raw(&url, "snapshot", SECRET, now(), &body, &[], flip).await;
    assert_eq!(status, 401);
    assert_eq!(answer["error"]["kind"], "unauthenticated");

    let (status, _) = send_raw(&url, "snapshot", "not-the-secret", now(), &body, &[], untouched).await;
    assert_eq!(status, 401);

    // A valid signature for another timestamp than the header's.
    let bytes = serde_json::to_vec(&body).unwrap();
    let response = reqwest::Client::new()
        .post(format!("{url}/snapshot"))
        .header(TIMESTAMP_HEADER, now().to_string())
        .header(SIGNATURE_HEADER, sign(&SecretString::from(SECRET), now() - 1, &bytes))
        .body(bytes)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 401);
    assert_eq!(fake.rejections(), vec![Rejection::BadSignature; 3]);
}

#[tokio::test]
async fn stale_and_future_timestamps_are_refused_and_the_connector_reports_unauthenticated() {
    // Both sides run on stopped clocks, so the distance between them is exactly what the test
    // sets, whether or not a second of wall time ticks over mid-request.
    let receiver_now = remediation_testkit::fixed_time();
    let fake =
        remediation_testkit::fakes::webhook::WebhookFake::start(SECRET, Arc::new(ManualClock::new(receiver_now)))
            .await
            .unwrap();
    let t = target("app_role", &fresh_identity(&fake), Some("crm"));
    let window = i64::try_from(REPLAY_WINDOW.as_secs()).unwrap();
    for offset in [-(window + 1), window + 1] {
        let at = receiver_now + time::Duration::seconds(offset);
        let (c, sleeper) = connector(&fake, SECRET, Arc::new(ManualClock::new(at)));
        let mark = fake.log().count();
        let err = c.snapshot(&t).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Unauthenticated, "{offset}: {err}");
        assert!(err.message.contains("replay window"), "{err}");
        assert_eq!(fake.log().since(mark).len(), 1, "a 401 is not retried");
        assert!(sleeper.waits().is_empty());
    }
    assert_eq!(fake.rejections(), vec![Rejection::StaleTimestamp; 2]);
    // The window's edges themselves, and a point well inside it, are accepted.
    for offset in [-window, window, -200] {
        let at = receiver_now + time::Duration::seconds(offset);
        let (c, _) = connector(&fake, SECRET, Arc::new(ManualClock::new(at)));
        c.snapshot(&t).await.unwrap_or_else(|e| panic!("{offset}: {e}"));
    }
    assert_eq!(fake.rejections().len(), 2, "nothing inside the window was refused");
}

#[tokio::test]
async fn a_signed_request_replayed_to_another_operation_is_refused() {
    let fake = fake().await;
    let identity = fresh_identity(&fake);
    let body = json!({"version": 1, "operation": "snapshot", "connector": "hooks",
        "target": {"identity": identity, "grant_type": "app_role"}, "idempotency_key": "k1"});
    let (status, answer) =
        send_raw(&fake.url(), "execute", SECRET, now(), &body, &[("idempotency-key", "k1")], |b| b).await;
    assert_eq!(status, 400);
    assert_eq!(answer["error"]["kind"], "permanent");
    assert_eq!(fake.applied(), 0);
}

#[tokio::test]
async fn a_write_whose_idempotency_header_differs_from_its_body_is_refused() {
    let fake = fake().await;
    let identity = fresh_identity(&fake);
    let body = json!({"version": 1, "operation": "execute", "connector": "hooks",
        "action": {"id": "019b7700-0000-7000-8000-000000000001", "kind": {"type": "revoke"},
                   "requested_by": "x", "reason": "y"},
        "target": {"identity": identity, "resource": "crm", "grant_type": "app_role"},
        "before": {"state": {}, "protected": false}, "idempotency_key": "k1"});
    let (status, _) = send_raw(&fake.url(), "execute", SECRET, now(), &body, &[("idempotency-key", "k2")], |b| b).await;
    assert_eq!(status, 400);
    let (status, answer) =
        send_raw(&fake.url(), "execute", SECRET, now(), &body, &[("idempotency-key", "k1")], |b| b).await;
    assert_eq!(status, 200);
    assert_eq!(answer["status"], "applied");
    assert_eq!(fake.applied(), 1);
}

#[tokio::test]
async fn writes_are_retried_with_the_same_key_and_applied_once() {
    let fake = fake().await;
    let (c, sleeper) = connector(&fake, SECRET, Arc::new(SystemClock));
    let t = target("app_role", &fresh_identity(&fake), Some("crm"));
    let action = ActionBuilder::new().connector("hooks").kind(ActionKind::Revoke).target(t.clone()).build();
    let before = c.snapshot(&t).await.unwrap();
    fake.faults().fail_next(2, 503);
    let mark = fake.log().count();
    let outcome = c.execute(&action, &before).await.unwrap();
    assert_eq!(outcome.status, remediation_core::OutcomeStatus::Applied);
    let sent = fake.log().since(mark);
    assert_eq!(sent.iter().map(|r| r.status).collect::<Vec<_>>(), vec![503, 503, 200]);
    assert!(sent.iter().all(|r| r.headers["idempotency-key"] == action.idempotency_key));
    assert_eq!(sleeper.waits().len(), 2);
    // The request id of the final answer is kept.
    assert!(outcome.request_ids.iter().any(|id| id.starts_with("whreq-")), "{:?}", outcome.request_ids);
    // A crash-and-retry sends the same key again: nothing is applied twice.
    let again = c.execute(&action, &before).await.unwrap();
    assert_eq!(again.status, remediation_core::OutcomeStatus::AlreadyInState);
    assert_eq!(fake.applied(), 1);

    // 429 with Retry-After is waited out.
    let t2 = target("app_role", &fresh_identity(&fake), Some("crm"));
    let second = ActionBuilder::new().seed(2).connector("hooks").kind(ActionKind::Revoke).target(t2.clone()).build();
    let before = c.snapshot(&t2).await.unwrap();
    fake.faults().throttle_next(1);
    let waits = sleeper.waits().len();
    c.execute(&second, &before).await.unwrap();
    assert_eq!(sleeper.waits()[waits..], [Duration::from_secs(1)]);
}

#[tokio::test]
async fn undeclared_kinds_and_irreversible_rollbacks_are_refused_without_a_request() {
    let fake = fake().await;
    let (c, _) = connector(&fake, SECRET, Arc::new(SystemClock));
    let any = remediation_core::Snapshot::new(json!({}));
    let unsupported = ActionBuilder::new().kind(ActionKind::Suspend).target(target("app_role", "a", None)).build();
    let sessions = ActionBuilder::new().kind(ActionKind::RevokeSessions).target(target("account", "a", None)).build();
    let errors = [
        c.plan(&unsupported, &any).await.unwrap_err(),
        c.execute(&unsupported, &any).await.unwrap_err(),
        c.verify(
            &unsupported,
            &remediation_core::PlannedChange { expected_after: any.clone(), description: String::new() },
        )
        .await
        .unwrap_err(),
        c.rollback(&unsupported, &any, &any).await.unwrap_err(),
        c.snapshot(&target("vpn", "a", None)).await.unwrap_err(),
        c.rollback(&sessions, &any, &any).await.unwrap_err(),
    ];
    for e in &errors {
        assert_eq!(e.kind, ConnectorErrorKind::Unsupported, "{e}");
    }
    assert!(
        errors[0].message.contains("does not support suspend for grant type `app_role`; supported: revoke/app_role"),
        "{}",
        errors[0]
    );
    assert!(errors[5].message.contains("irreversible"), "{}", errors[5]);
    assert!(errors[4].message.ends_with("grant types: app_role, license, account, notification"), "{}", errors[4]);
    assert_eq!(fake.log().count(), 0);
}

#[tokio::test]
async fn receiver_errors_keep_their_kind_message_and_request_id() {
    let fake = fake().await;
    let (c, _) = connector(&fake, SECRET, Arc::new(SystemClock));
    let err = c.snapshot(&target("app_role", "nobody", Some("crm"))).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::NotFound);
    assert_eq!(err.message, "no identity `nobody` (HTTP 404)");
    assert!(err.request_id.as_deref().is_some_and(|id| id.starts_with("whreq-")), "{err:?}");
    fake.faults().fail_next(4, 503);
    let health = c.health().await.unwrap();
    assert!(!health.healthy);
}

/// Advances a shared clock by 200 s per wait: a stand-in for long `Retry-After`s.
struct SlowWaits(Arc<ManualClock>);

impl std::fmt::Debug for SlowWaits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SlowWaits")
    }
}

#[async_trait::async_trait]
impl remediation_connector_http::Sleeper for SlowWaits {
    async fn sleep(&self, _: Duration) {
        self.0.advance(time::Duration::seconds(200));
    }
}

#[tokio::test]
async fn each_retry_is_signed_afresh_so_long_waits_stay_inside_the_replay_window() {
    let clock = Arc::new(ManualClock::new(OffsetDateTime::now_utc()));
    let fake = remediation_testkit::fakes::webhook::WebhookFake::start(SECRET, clock.clone()).await.unwrap();
    let options = remediation_connector_webhook::WebhookOptions {
        clock: clock.clone(),
        sleeper: Arc::new(SlowWaits(clock.clone())),
        retry: remediation_connector_http::RetryPolicy::new(remediation_connector_http::ThrottleSignal::RetryAfter),
    };
    let c = remediation_connector_webhook::WebhookConnector::new(
        &crate::config(&fake.url()),
        SecretString::from(SECRET),
        options,
    )
    .unwrap();
    let t = target("app_role", &fresh_identity(&fake), Some("crm"));
    // Three throttled answers: 600 s pass before the fourth attempt, twice the window.
    fake.faults().throttle_next(3);
    c.snapshot(&t).await.unwrap();
    let stamps: Vec<i64> =
        fake.log().all().iter().map(|r| r.headers["x-remediation-timestamp"].parse().unwrap()).collect();
    assert_eq!(stamps.windows(2).map(|w| w[1] - w[0]).collect::<Vec<_>>(), vec![200, 200, 200]);
    assert!(fake.rejections().is_empty());
}

#[tokio::test]
async fn a_wrong_url_is_a_permanent_error_not_a_missing_target() {
    let fake = fake().await;
    let wrong = format!("{}/not-the-receiver", fake.url());
    let c = remediation_connector_webhook::WebhookConnector::new(
        &crate::config(&wrong),
        SecretString::from(SECRET),
        remediation_connector_webhook::WebhookOptions {
            sleeper: Arc::new(remediation_connector_http::RecordingSleeper::new()),
            ..Default::default()
        },
    )
    .unwrap();
    let err = c.snapshot(&target("app_role", &fresh_identity(&fake), Some("crm"))).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
    assert!(err.message.contains("no `/snapshot` endpoint"), "{err}");
    assert!(!err.message.contains("127.0.0.1"), "{err}");
}
