//! The findings consumer against the shared server: acknowledged only after the handler
//! decided, retried when it fails transiently, and dead-lettered (kept, with the reason) when
//! malformed, refused or out of deliveries.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_nats::jetstream;
use async_trait::async_trait;
use remediation_core::Finding;
use remediation_nats::{FindingHandler, FindingsConsumer, FindingsConsumerConfig, HandleError, PollReport};

use crate::{delete_streams, header, js, stream_messages, unique};

/// A handler that answers each finding id from a script (then `Ok`), and records every call.
#[derive(Default)]
struct Scripted {
    script: Mutex<HashMap<String, Vec<Result<(), HandleError>>>>,
    calls: Mutex<Vec<(String, String)>>,
}

impl Scripted {
    fn answer(self, id: &str, answers: Vec<Result<(), HandleError>>) -> Self {
        self.script.lock().unwrap().insert(id.to_owned(), answers);
        self
    }

    fn calls(&self, id: &str) -> usize {
        self.calls.lock().unwrap().iter().filter(|(f, _)| f == id).count()
    }
}

#[async_trait]
impl FindingHandler for Scripted {
    async fn handle(&self, finding: Finding, subject: &str) -> Result<(), HandleError> {
        self.calls.lock().unwrap().push((finding.id.clone(), subject.to_owned()));
        let mut script = self.script.lock().unwrap();
        match script.get_mut(&finding.id) {
            Some(answers) if !answers.is_empty() => answers.remove(0),
            _ => Ok(()),
        }
    }
}

/// A consumer of its own on the shared server.
struct Setup {
    url: String,
    config: FindingsConsumerConfig,
    consumer: FindingsConsumer,
    js: jetstream::Context,
    subject: String,
}

impl Setup {
    async fn new(url: String) -> Self {
        let id = unique();
        let mut config = FindingsConsumerConfig::new(&url);
        config.stream = format!("REMEDIATION_FINDINGS_{id}");
        config.subjects = vec![format!("remediation.findings.{id}.>")];
        config.durable = format!("findings-{id}");
        config.dead_letter_stream = format!("REMEDIATION_DEADLETTER_{id}");
        config.dead_letter_subjects = vec![format!("remediation.deadletter.{id}.>")];
        config.dead_letter_subject = format!("remediation.deadletter.{id}.findings");
        config.max_deliver = 3;
        config.retry_delay_secs = 0;
        let consumer = config.build().unwrap();
        consumer.ensure().await.unwrap();
        let js = js(&url).await;
        Self { url, config, consumer, js, subject: format!("remediation.findings.{id}.scanner") }
    }

    async fn publish(&self, payload: Vec<u8>) {
        self.js.publish(self.subject.clone(), payload.into()).await.unwrap().await.unwrap();
    }

    /// Polls until `done` says so (10 s at most); returns the reports added up.
    async fn poll_until(&self, handler: &Scripted, done: impl Fn(&PollReport) -> bool) -> PollReport {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut total = PollReport::default();
        while !done(&total) {
            assert!(Instant::now() < deadline, "not done within 10 s: {total:?}");
            let report = self.consumer.poll_once(handler, 10).await.unwrap();
            total.acked += report.acked;
            total.retried += report.retried;
            total.dead_lettered += report.dead_lettered;
            if report.total() == 0 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        total
    }

    /// Nothing left for the consumer: every finding acknowledged.
    async fn assert_all_acknowledged(&self) {
        let mut consumer: jetstream::consumer::PullConsumer =
            self.js.get_stream(&self.config.stream).await.unwrap().get_consumer(&self.config.durable).await.unwrap();
        let info = consumer.info().await.unwrap();
        assert_eq!((info.num_pending, info.num_ack_pending), (0, 0), "{info:?}");
    }

    async fn dead_letters(&self) -> Vec<jetstream::message::StreamMessage> {
        stream_messages(&self.js, &self.config.dead_letter_stream).await
    }

    async fn cleanup(self) {
        delete_streams(&self.url, &[self.config.stream.clone(), self.config.dead_letter_stream.clone()]).await;
    }
}

fn finding(id: &str, control: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "id": id, "source": "scanner", "control_id": control, "severity": "high",
        "title": "alice is a standing admin",
        "target": {"identity": "alice", "resource": "admins", "grant_type": "group_membership"},
        "suggested_kind": {"type": "revoke"}, "connector": "sandbox"
    }))
    .unwrap()
}

#[tokio::test]
async fn a_finding_is_acknowledged_only_after_the_handler_took_it() {
    let Some(url) = crate::shared().await else { return };
    let setup = Setup::new(url).await;
    let handler = Scripted::default().answer("F-2", vec![Err(HandleError::Transient("store is down".into()))]);
    // The same finding twice (the handler's intake deduplicates; the consumer hands both over),
    // and one that fails once.
    setup.publish(finding("F-1", "CIS-1")).await;
    setup.publish(finding("F-1", "CIS-1")).await;
    setup.publish(finding("F-2", "CIS-1")).await;

    let report = setup.poll_until(&handler, |r| r.acked == 3).await;
    assert_eq!(report, PollReport { acked: 3, retried: 1, dead_lettered: 0 });
    assert_eq!(handler.calls("F-1"), 2, "each copy handed over");
    assert_eq!(handler.calls("F-2"), 2, "not acknowledged after the transient failure, so seen again");
    assert!(handler.calls.lock().unwrap().iter().all(|(_, s)| *s == setup.subject), "the subject is passed on");
    setup.assert_all_acknowledged().await;
    assert!(setup.dead_letters().await.is_empty());
    setup.cleanup().await;
}

#[tokio::test]
async fn what_cannot_be_taken_reaches_the_dead_letter_stream_with_the_reason_then_is_acknowledged() {
    let Some(url) = crate::shared().await else { return };
    let setup = Setup::new(url).await;
    let handler = Scripted::default()
        .answer("F-refused", vec![Err(HandleError::Refused("unknown control `NOPE-1`".into()))])
        .answer("F-flaky", vec![Err(HandleError::Transient("store is down\nstill down".into())); 5]);
    setup.publish(b"{not json".to_vec()).await;
    setup.publish(br#"{"id": "F-x"}"#.to_vec()).await;
    setup.publish(finding("F-refused", "NOPE-1")).await;
    setup.publish(finding("F-flaky", "CIS-1")).await;

    let report = setup.poll_until(&handler, |r| r.dead_lettered == 4).await;
    assert_eq!(report, PollReport { acked: 0, retried: 2, dead_lettered: 4 });
    assert_eq!(handler.calls("F-flaky"), 3, "max_deliver deliveries, then no more");
    assert_eq!(handler.calls("F-refused"), 1);
    setup.assert_all_acknowledged().await;

    let letters = setup.dead_letters().await;
    assert_eq!(letters.len(), 4);
    let reason = |i: usize| header(&letters[i], "Remediation-Dead-Letter-Reason").unwrap();
    for letter in &letters {
        assert_eq!(letter.subject.as_str(), setup.config.dead_letter_subject);
        assert_eq!(header(letter, "Remediation-Original-Subject").as_deref(), Some(setup.subject.as_str()));
    }
    assert_eq!(letters[0].payload.as_ref(), b"{not json", "the original payload, as it was");
    assert!(reason(0).starts_with("not a finding: "), "{}", reason(0));
    assert!(reason(1).starts_with("not a finding: missing field"), "{}", reason(1));
    assert_eq!(reason(2), "refused: unknown control `NOPE-1`");
    assert_eq!(reason(3), "failed transiently 3 times (max_deliver 3); the last: store is down still down");
    assert_eq!(header(&letters[3], "Remediation-Delivery-Count").as_deref(), Some("3"));
    setup.cleanup().await;
}

#[tokio::test]
async fn run_takes_findings_until_shutdown() {
    let Some(url) = crate::shared().await else { return };
    let setup = Setup::new(url).await;
    let handler = std::sync::Arc::new(Scripted::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let consumer = std::sync::Arc::new(setup.config.build().unwrap());
    let task = {
        let (consumer, handler) = (consumer.clone(), handler.clone());
        tokio::spawn(async move { consumer.run(handler.as_ref(), shutdown).await })
    };
    setup.publish(finding("F-run", "CIS-1")).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while handler.calls("F-run") == 0 {
        assert!(Instant::now() < deadline, "not handled within 10 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(5), task).await.expect("run stops on shutdown").unwrap();
    // A dropped sender stops it too.
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    drop(stop);
    tokio::time::timeout(Duration::from_secs(5), consumer.run(handler.as_ref(), shutdown))
        .await
        .expect("run stops when the sender is gone");
    setup.assert_all_acknowledged().await;
    setup.cleanup().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_reconnects_after_the_server_comes_back() {
    use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};
    let Some(mut server) = PrivateNats::start(PrivateNatsOptions::default()) else { return };
    let mut config = FindingsConsumerConfig::new(server.url());
    config.retry_delay_secs = 0;
    let consumer = std::sync::Arc::new(config.build().unwrap());
    let handler = std::sync::Arc::new(Scripted::default());
    let (stop, shutdown) = tokio::sync::watch::channel(false);
    let task = {
        let (consumer, handler) = (consumer.clone(), handler.clone());
        tokio::spawn(async move { consumer.run(handler.as_ref(), shutdown).await })
    };
    let js = js(&server.url()).await;
    let wait_for = |id: &'static str| {
        let handler = handler.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(15);
            while handler.calls(id) == 0 {
                assert!(Instant::now() < deadline, "{id} not handled within 15 s");
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
    };
    let subject = "remediation.findings.scanner";
    // The consumer creates the stream when it first connects.
    let deadline = Instant::now() + Duration::from_secs(10);
    while js.get_stream(config.stream.as_str()).await.is_err() {
        assert!(Instant::now() < deadline, "the findings stream was not created");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    js.publish(subject, finding("F-before", "CIS-1").into()).await.unwrap().await.unwrap();
    wait_for("F-before").await;

    tokio::task::block_in_place(|| server.stop());
    tokio::time::sleep(Duration::from_millis(500)).await;
    tokio::task::block_in_place(|| server.restart());
    let js = crate::js(&server.url()).await;
    js.publish(subject, finding("F-after", "CIS-1").into()).await.unwrap().await.unwrap();
    wait_for("F-after").await;
    stop.send(true).unwrap();
    tokio::time::timeout(Duration::from_secs(10), task).await.expect("run stops on shutdown").unwrap();
}
