//! The log sink, the signed webhook sink and the fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::{EngineEvent, EventSink, State};
use remediation_notify::{
    DEFAULT_TOLERANCE, Delivery, EVENT_ID_HEADER, FanOut, LogSink, RetryPolicy, SIGNATURE_HEADER, SignatureError,
    TIMESTAMP_HEADER, WebhookSink, verify_signature,
};
use remediation_testkit::{action_id, fixed_time, transition};
use secrecy::SecretString;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::{Logs, clock, closed_port};

const SECRET: &str = "whsec-SINK-SECRET-4242";

fn event() -> EngineEvent {
    let mut record = transition(action_id(7), Some(State::Approved), State::Executing, "begin_execution", fixed_time());
    record.actor = "local:bob".to_owned();
    EngineEvent::Transition { record: Box::new(record) }
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

    let delivery = sink(&server.uri(), 3).deliver(&event()).await;
    assert!(matches!(delivery, Delivery::Delivered { attempts: 1, .. }), "{delivery:?}");

    let requests = server.received_requests().await.expect("recorded");
    let req = &requests[0];
    // A CloudEvents 1.0 envelope around the event, its id the header's.
    let envelope: remediation_core::CloudEvent = serde_json::from_slice(&req.body).expect("cloudevent json");
    assert_eq!(envelope.data, event());
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
    let id = header(req, EVENT_ID_HEADER);
    assert_eq!(uuid::Uuid::parse_str(&id).expect("uuid").get_version_num(), 7);

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

    let delivery = sink(&server.uri(), 3).deliver(&event()).await;
    assert!(matches!(delivery, Delivery::Delivered { attempts: 2, .. }), "{delivery:?}");
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
    let delivery = sink(&server.uri(), 2).deliver(&event()).await;
    assert!(matches!(delivery, Delivery::Delivered { attempts: 2, .. }), "{delivery:?}");
}

#[tokio::test]
async fn webhook_does_not_retry_a_4xx() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(400)).expect(1).mount(&server).await;
    let delivery = sink(&server.uri(), 3).deliver(&event()).await;
    assert!(matches!(delivery, Delivery::Refused { status: 400, attempts: 1, .. }), "{delivery:?}");
}

#[tokio::test]
async fn emit_never_fails_and_logs_the_drop_without_the_secret() {
    let (logs, _guard) = Logs::capture();
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ResponseTemplate::new(503)).expect(3).mount(&server).await;
    let sink = sink(&server.uri(), 3);
    sink.emit(&event()).await;
    sink.flush().await;

    let unreachable = {
        let url = format!("http://127.0.0.1:{}/events", closed_port()).parse().expect("url");
        WebhookSink::new(url, SecretString::from(SECRET), Duration::from_secs(2))
            .expect("sink")
            .with_retry(RetryPolicy::immediate(2))
    };
    let delivery = unreachable.deliver(&event()).await;
    let Delivery::Unreachable { error, attempts: 2, .. } = &delivery else { panic!("{delivery:?}") };
    assert!(error.contains("could not connect"), "{error}");
    unreachable.emit(&event()).await;
    unreachable.flush().await;

    let text = logs.text();
    assert!(text.contains("event webhook refused the event; dropped"), "{text}");
    assert!(text.contains("status=503"), "{text}");
    assert!(text.contains("event webhook unreachable; event dropped"), "{text}");
    assert!(!text.contains(SECRET), "{text}");
    assert!(!format!("{sink:?} {unreachable:?} {delivery:?}").contains(SECRET));
}

#[tokio::test]
async fn log_sink_writes_structured_fields_only() {
    let (logs, _guard) = Logs::capture();
    let mut e = event();
    if let EngineEvent::Transition { record } = &mut e {
        record.comment = Some("token=hunter2".to_owned());
    }
    LogSink.emit(&e).await;
    LogSink.emit(&EngineEvent::BreakerTripped { action_id: action_id(7) }).await;
    LogSink.emit(&EngineEvent::Held { action_id: action_id(8), limit: None, reason: "secret reason".to_owned() }).await;
    LogSink
        .emit(&EngineEvent::SafetyChanged { setting_event: "kill_switch_on".to_owned(), actor: "admin".to_owned() })
        .await;

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
    assert!(text.contains("remediation::events"), "{text}");
    assert!(!text.contains("hunter2") && !text.contains("secret reason"), "{text}");
}

struct Counting(AtomicUsize);

#[async_trait]
impl EventSink for Counting {
    async fn emit(&self, _event: &EngineEvent) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn fan_out_reaches_every_sink() {
    let a = Arc::new(Counting(AtomicUsize::new(0)));
    let b = Arc::new(Counting(AtomicUsize::new(0)));
    let mut fan = FanOut::new(vec![a.clone(), b.clone()]);
    fan.push(Arc::new(LogSink));
    assert_eq!(fan.len(), 3);
    fan.emit(&event()).await;
    fan.emit(&event()).await;
    assert_eq!(a.0.load(Ordering::SeqCst), 2);
    assert_eq!(b.0.load(Ordering::SeqCst), 2);
}
