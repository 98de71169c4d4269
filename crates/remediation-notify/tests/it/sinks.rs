//! The log sink, the signed webhook sink and the audit webhook sink.

use std::time::Duration;

use remediation_audit::AuditSink;
use remediation_core::{AuditRecord, CloudEvent, DeliveryError, EngineEvent, EventSink, State, Undelivered};
use remediation_notify::{
    DEFAULT_TOLERANCE, EVENT_ID_HEADER, LogSink, RetryPolicy, SIGNATURE_HEADER, SignatureError, TIMESTAMP_HEADER,
    WebhookAuditSink, WebhookSink, verify_signature,
};
use remediation_testkit::{action_id, fixed_time, transition};
use secrecy::SecretString;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Logs, clock, closed_port};

const SECRET: &str = "whsec-SINK-SECRET-4242";

/// Audit records 1..=n, sealed into a chain.
fn records(n: u64) -> Vec<AuditRecord> {
    let mut out: Vec<AuditRecord> = Vec::new();
    for _ in 0..n {
        let mut t = transition(action_id(7), Some(State::Approved), State::Executing, "begin_execution", fixed_time());
        t.actor = "local:bob".to_owned();
        let head = out.last().map(|r| remediation_core::ChainHead { seq: r.seq, hash: r.hash.clone() });
        out.push(remediation_audit::seal(head.as_ref(), t).expect("seal"));
    }
    out
}

fn envelope(record: &AuditRecord) -> CloudEvent {
    CloudEvent::from_record(record, "/remediation/default")
}

fn event() -> CloudEvent {
    envelope(&records(1)[0])
}

fn sink(server_uri: &str, attempts: u32) -> WebhookSink {
    let url = format!("{server_uri}/events").parse().expect("url");
    WebhookSink::new(url, SecretString::from(SECRET), Duration::from_secs(5))
        .expect("sink")
        .with_retry(RetryPolicy::immediate(attempts))
        .with_clock(clock())
}

fn header(req: &wiremock::Request, name: &str) -> String {
    req.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
}

#[tokio::test]
async fn webhook_posts_the_event_json_signed() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/events"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&server)
        .await;

    sink(&server.uri(), 3).deliver(&[event()]).await.expect("delivered");

    let requests = server.received_requests().await.expect("recorded");
    let req = &requests[0];
    // A CloudEvents 1.0 envelope around the event, its id the header's and the record's hash.
    let envelope: remediation_core::CloudEvent = serde_json::from_slice(&req.body).expect("cloudevent json");
    assert_eq!(envelope, event());
    assert_eq!(envelope.id, records(1)[0].hash.to_string());
    assert_eq!(envelope.auditseq, Some(1));
    let json: serde_json::Value = serde_json::from_slice(&req.body).expect("json");
    assert_eq!(json["specversion"], "1.0");
    assert_eq!(json["type"], "dev.remediation.action.executing");
    assert_eq!(json["source"], "/remediation/default");
    assert_eq!(json["subject"], action_id(7).to_string());
    assert_eq!(json["datacontenttype"], "application/json");
    assert_eq!(json["data"]["type"], "transition");
    assert_eq!(json["id"], header(req, EVENT_ID_HEADER));
    assert_eq!(header(req, "content-type"), "application/cloudevents+json");

    let ts = header(req, TIMESTAMP_HEADER);
    assert_eq!(ts, fixed_time().unix_timestamp().to_string());
    let sig = header(req, SIGNATURE_HEADER);
    assert!(sig.starts_with("sha256=") && sig.len() == 71, "{sig}");

    let secret = SecretString::from(SECRET);
    let now = fixed_time() + time::Duration::seconds(30);
    assert_eq!(verify_signature(&secret, &ts, &req.body, &sig, now, DEFAULT_TOLERANCE), Ok(()));
    // A tampered body, a wrong secret and a replay after the window are refused.
    let mut tampered = req.body.clone();
    let at = tampered.iter().position(|b| *b == b'b').expect("a 'b' in the body");
    tampered[at] = b'c';
    assert_eq!(verify_signature(&secret, &ts, &tampered, &sig, now, DEFAULT_TOLERANCE), Err(SignatureError::Mismatch));
    assert_eq!(
        verify_signature(&SecretString::from("other"), &ts, &req.body, &sig, now, DEFAULT_TOLERANCE),
        Err(SignatureError::Mismatch)
    );
    let later = fixed_time() + time::Duration::seconds(301);
    assert_eq!(
        verify_signature(&secret, &ts, &req.body, &sig, later, DEFAULT_TOLERANCE),
        Err(SignatureError::Stale { age_secs: 301, tolerance_secs: 300 })
    );
}

#[tokio::test]
async fn webhook_retries_a_500_then_succeeds_with_the_same_event_id() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).expect(1).mount(&server).await;

    sink(&server.uri(), 3).deliver(&[event()]).await.expect("delivered");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 2);
    assert_eq!(header(&requests[0], EVENT_ID_HEADER), header(&requests[1], EVENT_ID_HEADER));
}

#[tokio::test]
async fn webhook_retries_429_honouring_retry_after_within_the_cap() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(429).insert_header("retry-after", "1"))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(200)).mount(&server).await;
    // Retry-After (1 s) is capped by the policy's max backoff (zero here), so no wait.
    sink(&server.uri(), 2).deliver(&[event()]).await.expect("delivered");
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

#[tokio::test]
async fn webhook_reports_a_4xx_as_permanent_after_the_events_before_it() {
    let server = MockServer::start().await;
    // The second event of the batch is refused: the first counts as delivered.
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(400).set_body_string("bad schema"))
        .mount(&server)
        .await;
    let batch: Vec<CloudEvent> = records(3).iter().map(envelope).collect();
    let err = sink(&server.uri(), 3).deliver(&batch).await.expect_err("refused");
    assert_eq!(err.delivered, 1);
    let DeliveryError::Permanent { reason } = &err.error else { panic!("{err:?}") };
    assert!(reason.contains("HTTP 400") && reason.contains("bad schema"), "{reason}");
    // Not retried, and the third was not tried.
    assert_eq!(server.received_requests().await.expect("recorded").len(), 2);
}

#[tokio::test]
async fn webhook_reports_408_429_5xx_and_no_answer_as_transient_without_the_secret() {
    for status in [408u16, 429, 500, 503] {
        let server = MockServer::start().await;
        Mock::given(method("POST")).respond_with(ResponseTemplate::new(status)).mount(&server).await;
        let err = sink(&server.uri(), 2).deliver(&[event()]).await.expect_err("failed");
        assert_eq!(err.delivered, 0);
        assert!(matches!(err.error, DeliveryError::Transient { .. }), "{status}: {err:?}");
    }
    let url = format!("http://127.0.0.1:{}/events", closed_port()).parse().expect("url");
    let unreachable = WebhookSink::new(url, SecretString::from(SECRET), Duration::from_secs(2))
        .expect("sink")
        .with_retry(RetryPolicy::immediate(2));
    let err = unreachable.deliver(&[event()]).await.expect_err("unreachable");
    let DeliveryError::Transient { reason, .. } = &err.error else { panic!("{err:?}") };
    assert!(reason.contains("could not connect"), "{reason}");
    assert!(!format!("{unreachable:?} {err:?} {err}").contains(SECRET));
}

#[tokio::test]
async fn audit_webhook_posts_batches_and_isolates_the_record_it_refuses() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let audit = WebhookAuditSink::new(sink(&server.uri(), 1));
    let chain = records(4);
    audit.deliver(&chain).await.expect("delivered");
    let requests = server.received_requests().await.expect("recorded");
    assert_eq!(requests.len(), 1, "one request per batch");
    let got: Vec<AuditRecord> = serde_json::from_slice(&requests[0].body).expect("json array of records");
    assert_eq!(got, chain);
    assert_eq!(header(&requests[0], EVENT_ID_HEADER), "audit-1-4");
    assert!(remediation_audit::verify_chain(got.clone()).first_break.is_none(), "the receiver can verify what it got");

    // A receiver that refuses record 3 for good: records 1 and 2 go through one by one.
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::header(EVENT_ID_HEADER, "audit-3-3"))
        .respond_with(ResponseTemplate::new(422))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .and(wiremock::matchers::header(EVENT_ID_HEADER, "audit-1-4"))
        .respond_with(ResponseTemplate::new(422))
        .with_priority(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(204)).mount(&server).await;
    let audit = WebhookAuditSink::new(sink(&server.uri(), 1));
    let err: Undelivered = audit.deliver(&chain).await.expect_err("record 3 refused");
    assert_eq!(err.delivered, 2);
    assert!(matches!(err.error, DeliveryError::Permanent { .. }), "{err:?}");
}

#[tokio::test]
async fn log_sink_writes_structured_fields_only() {
    let (logs, _guard) = Logs::capture();
    let mut t = transition(action_id(7), Some(State::Approved), State::Executing, "begin_execution", fixed_time());
    t.actor = "local:bob".to_owned();
    t.comment = Some("token=hunter2".to_owned());
    let wrap = |data: EngineEvent| CloudEvent { data, ..event() };
    LogSink::new()
        .deliver(&[
            wrap(EngineEvent::Transition { record: Box::new(t) }),
            wrap(EngineEvent::BreakerTripped { action_id: Some(action_id(7)) }),
            wrap(EngineEvent::Held { action_id: action_id(8), limit: None, reason: "secret reason".to_owned() }),
            wrap(EngineEvent::SafetyChanged { setting_event: "kill_switch_on".to_owned(), actor: "admin".to_owned() }),
        ])
        .await
        .expect("never fails");

    let text = logs.text();
    let id = action_id(7).to_string();
    assert!(text.contains(&format!("action_id={id}")), "{text}");
    assert!(text.contains("type=\"transition\""), "{text}");
    assert!(text.contains("from=approved"), "{text}");
    assert!(text.contains("to=executing"), "{text}");
    assert!(text.contains("actor=local:bob"), "{text}");
    assert!(text.contains("type=\"breaker_tripped\""), "{text}");
    assert!(text.contains("type=\"held\""), "{text}");
    assert!(text.contains("event=kill_switch_on"), "{text}");
    assert!(text.contains(&format!("id=\"{}\"", event().id)), "{text}");
    assert!(text.contains("remediation::events"), "{text}");
    assert!(text.contains("ce_source=/remediation/default") && text.contains("ce_auditseq=1"), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("secret reason"), "{text}");
}

#[tokio::test]
async fn log_sink_with_the_envelope_writes_the_same_cloudevent_as_the_webhook() {
    let (logs, _guard) = Logs::capture();
    LogSink::new().with_envelope().deliver(&[event()]).await.expect("never fails");
    let text = logs.text();
    let json = serde_json::to_string(&event()).expect("json");
    // The field's value is the envelope's JSON, escaped by the formatter.
    assert!(text.contains("cloudevent="), "{text}");
    assert!(text.contains(&json.replace('"', "\\\"")) || text.contains(&json), "{text}");
}
