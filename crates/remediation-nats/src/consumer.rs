//! Findings in: [`FindingsConsumer`], a durable pull consumer that hands each finding to a
//! [`FindingHandler`] and acknowledges it only once the handler has decided, sending what it
//! cannot take to a dead-letter subject first.
//!
//! Dead letters are published with JetStream (never core NATS): the dead-letter stream
//! (`REMEDIATION_DEADLETTER`, created when missing) must acknowledge a dead letter before the
//! finding is acknowledged, so a finding is never lost between the two. A dead letter carries
//! `Nats-Msg-Id` = `deadletter-<stream>-<sequence>-<published ns>`, so sending it again after a
//! lost acknowledgement stores it once.

use std::time::Duration;

use async_nats::jetstream::{self, AckKind, consumer::PullConsumer};
use async_nats::{HeaderMap, Subject};
use async_trait::async_trait;
use futures_util::StreamExt as _;
use remediation_core::Finding;
use tokio::sync::{Mutex, watch};

use crate::connection::NatsConnector;
use crate::error::NatsError;
use crate::stream::StreamSpec;

/// Header of a dead letter: why the finding was not taken, on one line.
pub const DEAD_LETTER_REASON_HEADER: &str = "Remediation-Dead-Letter-Reason";
/// Header of a dead letter: the subject the finding was published to.
pub const ORIGINAL_SUBJECT_HEADER: &str = "Remediation-Original-Subject";
/// Header of a dead letter: the finding's sequence in the findings stream.
pub const ORIGINAL_SEQUENCE_HEADER: &str = "Remediation-Original-Sequence";
/// Header of a dead letter: how many times the finding had been delivered.
pub const DELIVERY_COUNT_HEADER: &str = "Remediation-Delivery-Count";

/// The longest delay before a finding that failed transiently is delivered again.
const MAX_RETRY_DELAY: Duration = Duration::from_secs(300);
/// The longest wait between reconnection attempts of [`FindingsConsumer::run`].
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long one pull waits for findings in [`FindingsConsumer::run`].
const PULL_EXPIRES: Duration = Duration::from_secs(5);

/// Why a handler did not take a finding.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HandleError {
    /// It may succeed later (the engine's store is down, a lock is held): the finding is
    /// delivered again after a delay, and sent to the dead-letter subject after `max_deliver`
    /// deliveries.
    #[error("{0}")]
    Transient(String),
    /// It never will (an unknown control, a connector that does not exist): the finding goes
    /// to the dead-letter subject with this reason, then is acknowledged.
    #[error("{0}")]
    Refused(String),
}

/// What takes findings in: the engine's intake.
///
/// A finding can be handed over more than once (a redelivery after a crash, or a producer that
/// published it twice): `handle` must commit the finding's suggestion, or decide that it is a
/// duplicate, before it returns `Ok`, since the finding is acknowledged (and gone) then.
#[async_trait]
pub trait FindingHandler: Send + Sync {
    /// Takes `finding`, published to `subject`.
    async fn handle(&self, finding: Finding, subject: &str) -> Result<(), HandleError>;
}

/// What one [`FindingsConsumer::poll_once`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PollReport {
    /// Findings the handler took, acknowledged.
    pub acked: usize,
    /// Findings that failed transiently, to be delivered again after a delay.
    pub retried: usize,
    /// Findings sent to the dead-letter subject, then acknowledged: malformed, refused, or out
    /// of deliveries.
    pub dead_lettered: usize,
}

impl PollReport {
    /// Findings looked at in all.
    pub fn total(&self) -> usize {
        self.acked + self.retried + self.dead_lettered
    }
}

enum Disposition {
    Acked,
    Retried,
    DeadLettered,
}

/// The consumer as configured.
#[derive(Debug, Clone)]
pub(crate) struct ConsumerSpec {
    pub(crate) findings: StreamSpec,
    pub(crate) dead_letters: StreamSpec,
    pub(crate) durable: String,
    pub(crate) dead_letter_subject: String,
    pub(crate) max_deliver: u32,
    pub(crate) ack_wait: Duration,
    pub(crate) retry_delay: Duration,
    pub(crate) batch_size: usize,
}

impl ConsumerSpec {
    /// The delay before delivery `delivered + 1`: `retry_delay`, doubled at each delivery, at
    /// most [`MAX_RETRY_DELAY`].
    fn retry_delay(&self, delivered: u64) -> Duration {
        let doublings = u32::try_from(delivered.saturating_sub(1).min(16)).unwrap_or(16);
        self.retry_delay.saturating_mul(1 << doublings).min(MAX_RETRY_DELAY)
    }
}

struct Live {
    client: async_nats::Client,
    js: jetstream::Context,
    consumer: PullConsumer,
}

/// A durable pull consumer of findings. Built by
/// [`FindingsConsumerConfig::build`](crate::FindingsConsumerConfig::build); connects on first
/// use and again after losing the connection.
pub struct FindingsConsumer {
    connector: NatsConnector,
    spec: ConsumerSpec,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for FindingsConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FindingsConsumer")
            .field("connector", &self.connector)
            .field("spec", &self.spec)
            .finish_non_exhaustive()
    }
}

/// `text` on one line of at most 1000 bytes, for a header.
fn one_line(text: &str) -> String {
    let mut line: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    if line.len() > 1000 {
        let mut end = 1000;
        while !line.is_char_boundary(end) {
            end -= 1;
        }
        line.truncate(end);
    }
    line
}

fn api_error(what: impl Into<String>, e: impl std::fmt::Display) -> NatsError {
    NatsError::JetStream { what: what.into(), reason: e.to_string() }
}

impl FindingsConsumer {
    pub(crate) fn new(connector: NatsConnector, spec: ConsumerSpec) -> Self {
        Self { connector, spec, live: Mutex::new(None) }
    }

    /// The durable consumer's name.
    pub fn durable(&self) -> &str {
        &self.spec.durable
    }

    /// The findings stream.
    pub fn stream(&self) -> &str {
        &self.spec.findings.name
    }

    /// The dead-letter subject.
    pub fn dead_letter_subject(&self) -> &str {
        &self.spec.dead_letter_subject
    }

    async fn live<'a>(&self, slot: &'a mut Option<Live>) -> Result<&'a mut Live, NatsError> {
        if slot.as_ref().is_some_and(|l| l.client.connection_state() != async_nats::connection::State::Connected) {
            *slot = None;
        }
        if slot.is_none() {
            let client = self.connector.connect("remediation-findings").await?;
            let js = jetstream::ContextBuilder::new().timeout(self.connector.request_timeout()).build(client.clone());
            self.spec.findings.ensure(&js).await?;
            self.spec.dead_letters.ensure(&js).await?;
            let consumer = self.consumer(&js).await?;
            *slot = Some(Live { client, js, consumer });
        }
        slot.as_mut().ok_or_else(|| api_error("connect", "no connection"))
    }

    async fn consumer(&self, js: &jetstream::Context) -> Result<PullConsumer, NatsError> {
        let stream_name = &self.spec.findings.name;
        let durable = &self.spec.durable;
        let what = || format!("create consumer `{durable}` on stream `{stream_name}`");
        let stream = js.get_stream(stream_name).await.map_err(|e| api_error(what(), e))?;
        let config = jetstream::consumer::pull::Config {
            durable_name: Some(durable.clone()),
            ack_policy: jetstream::consumer::AckPolicy::Explicit,
            ack_wait: self.spec.ack_wait,
            // The dead-letter subject, not the server, ends redeliveries: a server limit would
            // leave the finding in the stream, undelivered, with no trace.
            max_deliver: -1,
            deliver_policy: jetstream::consumer::DeliverPolicy::All,
            ..Default::default()
        };
        let mut consumer: PullConsumer =
            stream.get_or_create_consumer(durable, config).await.map_err(|e| api_error(what(), e))?;
        let info = consumer.info().await.map_err(|e| api_error(what(), e))?;
        let mismatch = |field, actual: String, expected: &str| NatsError::ConsumerMismatch {
            stream: stream_name.clone(),
            consumer: durable.clone(),
            field,
            actual,
            expected: expected.to_owned(),
        };
        if info.config.ack_policy != jetstream::consumer::AckPolicy::Explicit {
            return Err(mismatch("ack policy", format!("{:?}", info.config.ack_policy), "explicit"));
        }
        let limit = i64::from(self.spec.max_deliver);
        if info.config.max_deliver > 0 && info.config.max_deliver <= limit {
            return Err(mismatch(
                "max_deliver",
                info.config.max_deliver.to_string(),
                &format!("none (-1) or more than {limit}, so findings reach the dead-letter subject"),
            ));
        }
        Ok(consumer)
    }

    /// Connects, creates or checks both streams and the durable consumer, now rather than at
    /// the first poll.
    pub async fn ensure(&self) -> Result<(), NatsError> {
        let mut slot = self.live.lock().await;
        self.live(&mut slot).await.map(|_| ())
    }

    /// Handles the findings waiting now, at most `max`, and returns what became of them.
    /// Does not wait for findings to arrive. An error (the connection was lost, a dead letter
    /// was not acknowledged) stops the pass; findings not acknowledged are delivered again.
    pub async fn poll_once(&self, handler: &dyn FindingHandler, max: usize) -> Result<PollReport, NatsError> {
        let mut slot = self.live.lock().await;
        let result = self.poll_once_inner(&mut slot, handler, max).await;
        if result.is_err() {
            *slot = None;
        }
        result
    }

    async fn poll_once_inner(
        &self,
        slot: &mut Option<Live>,
        handler: &dyn FindingHandler,
        max: usize,
    ) -> Result<PollReport, NatsError> {
        let live = self.live(slot).await?;
        let mut report = PollReport::default();
        let mut batch = live
            .consumer
            .fetch()
            .max_messages(max.max(1))
            .messages()
            .await
            .map_err(|e| api_error("pull findings", e))?;
        while let Some(message) = batch.next().await {
            let message = message.map_err(|e| api_error("pull findings", e))?;
            self.count(&mut report, self.process(live, handler, message).await?);
        }
        Ok(report)
    }

    fn count(&self, report: &mut PollReport, disposition: Disposition) {
        match disposition {
            Disposition::Acked => report.acked += 1,
            Disposition::Retried => report.retried += 1,
            Disposition::DeadLettered => report.dead_lettered += 1,
        }
    }

    /// Takes findings until `shutdown` turns `true` (or its sender is dropped), reconnecting
    /// with backoff (1 s doubling to 30 s) while NATS is unreachable. Errors are logged, never
    /// returned: a stream or consumer that does not match is retried too, so fixing it is
    /// enough. On shutdown, a finding being handled is finished; findings pulled but not yet
    /// handled are delivered again after `ack_wait_secs`.
    pub async fn run(&self, handler: &dyn FindingHandler, mut shutdown: watch::Receiver<bool>) {
        let mut backoff = Duration::from_secs(1);
        loop {
            // `has_changed` fails once the sender is gone: nobody can ask for more, so stop.
            if *shutdown.borrow() || shutdown.has_changed().is_err() {
                return;
            }
            let result = {
                let mut slot = self.live.lock().await;
                let result = self.pull_until(&mut slot, handler, &mut shutdown).await;
                if result.is_err() {
                    *slot = None;
                }
                result
            };
            match result {
                Ok(()) => backoff = Duration::from_secs(1),
                Err(e) => {
                    tracing::warn!(error = %e, retry_in_secs = backoff.as_secs(), "findings consumer");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        _ = shutdown.changed() => {}
                    }
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                }
            }
        }
    }

    /// One pull: waits up to [`PULL_EXPIRES`] for findings and handles those that come, unless
    /// `shutdown` comes first.
    async fn pull_until(
        &self,
        slot: &mut Option<Live>,
        handler: &dyn FindingHandler,
        shutdown: &mut watch::Receiver<bool>,
    ) -> Result<(), NatsError> {
        let live = self.live(slot).await?;
        let mut batch = live
            .consumer
            .batch()
            .max_messages(self.spec.batch_size)
            .expires(PULL_EXPIRES)
            .messages()
            .await
            .map_err(|e| api_error("pull findings", e))?;
        loop {
            let next = tokio::select! {
                next = batch.next() => next,
                changed = shutdown.changed() => {
                    if changed.is_err() || *shutdown.borrow() {
                        return Ok(());
                    }
                    continue;
                }
            };
            let Some(message) = next else { return Ok(()) };
            let message = message.map_err(|e| api_error("pull findings", e))?;
            self.process(live, handler, message).await?;
        }
    }

    async fn process(
        &self,
        live: &Live,
        handler: &dyn FindingHandler,
        message: jetstream::Message,
    ) -> Result<Disposition, NatsError> {
        let info = message.info().map_err(|e| api_error("read a finding's delivery info", e))?;
        let delivered = u64::try_from(info.delivered).unwrap_or(0);
        let letter = Letter {
            subject: message.subject.to_string(),
            sequence: info.stream_sequence,
            delivered,
            msg_id: format!(
                "deadletter-{}-{}-{}",
                info.stream,
                info.stream_sequence,
                info.published.unix_timestamp_nanos()
            ),
        };
        let max = u64::from(self.spec.max_deliver);
        let finding = match serde_json::from_slice::<Finding>(&message.payload) {
            Ok(finding) => finding,
            Err(e) => return self.dead_letter(live, &message, &letter, &format!("not a finding: {e}")).await,
        };
        if delivered > max {
            let reason = format!(
                "delivered {delivered} times without a verdict (the handler outlived ack_wait, or the process stopped); \
                 max_deliver is {max}"
            );
            return self.dead_letter(live, &message, &letter, &reason).await;
        }
        match handler.handle(finding, &letter.subject).await {
            Ok(()) => {
                message.double_ack().await.map_err(|e| api_error("acknowledge a finding", e))?;
                Ok(Disposition::Acked)
            }
            Err(HandleError::Refused(reason)) => {
                self.dead_letter(live, &message, &letter, &format!("refused: {reason}")).await
            }
            Err(HandleError::Transient(reason)) if delivered >= max => {
                let reason = format!("failed transiently {delivered} times (max_deliver {max}); the last: {reason}");
                self.dead_letter(live, &message, &letter, &reason).await
            }
            Err(HandleError::Transient(reason)) => {
                let delay = self.spec.retry_delay(delivered);
                tracing::info!(subject = %letter.subject, delivered, retry_in_secs = delay.as_secs(), %reason, "finding failed transiently");
                message
                    .ack_with(AckKind::Nak(Some(delay)))
                    .await
                    .map_err(|e| api_error("ask for a finding again", e))?;
                Ok(Disposition::Retried)
            }
        }
    }

    /// Publishes the finding to the dead-letter subject, waits for the stream's
    /// acknowledgement, then acknowledges the finding. If the dead letter is not acknowledged,
    /// the finding is not either: it is delivered again.
    async fn dead_letter(
        &self,
        live: &Live,
        message: &jetstream::Message,
        letter: &Letter,
        reason: &str,
    ) -> Result<Disposition, NatsError> {
        let reason = one_line(reason);
        tracing::warn!(subject = %letter.subject, sequence = letter.sequence, %reason, dead_letter_subject = %self.spec.dead_letter_subject, "finding dead-lettered");
        let mut headers = HeaderMap::new();
        headers.insert(async_nats::header::NATS_MESSAGE_ID, letter.msg_id.as_str());
        headers.insert(DEAD_LETTER_REASON_HEADER, reason.as_str());
        headers.insert(ORIGINAL_SUBJECT_HEADER, letter.subject.as_str());
        headers.insert(ORIGINAL_SEQUENCE_HEADER, letter.sequence.to_string().as_str());
        headers.insert(DELIVERY_COUNT_HEADER, letter.delivered.to_string().as_str());
        let what = || format!("dead-letter a finding to `{}`", self.spec.dead_letter_subject);
        let publish = jetstream::message::PublishMessage::build().payload(message.payload.clone()).headers(headers);
        let sent = match live.js.send_publish(Subject::from(self.spec.dead_letter_subject.as_str()), publish).await {
            Ok(ack) => ack.await.map(|_| ()),
            Err(e) => Err(e),
        };
        if let Err(e) = sent {
            // Not kept: the finding must not be acknowledged; have it delivered again.
            let _ = message.ack_with(AckKind::Nak(Some(self.spec.retry_delay(letter.delivered)))).await;
            return Err(api_error(what(), e));
        }
        message.double_ack().await.map_err(|e| api_error("acknowledge a dead-lettered finding", e))?;
        Ok(Disposition::DeadLettered)
    }
}

struct Letter {
    subject: String,
    sequence: u64,
    delivered: u64,
    msg_id: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_become_one_short_line() {
        assert_eq!(one_line("a\nb\r\tc"), "a b  c");
        assert_eq!(one_line(&"é".repeat(600)).len(), 1000);
    }

    #[test]
    fn retry_delays_double_up_to_five_minutes() {
        let spec = |secs| ConsumerSpec {
            findings: crate::stream::StreamSpec {
                name: "F".into(),
                subjects: vec!["f.>".into()],
                retention: crate::Retention::Workqueue,
                max_age: Duration::ZERO,
                duplicate_window: Duration::from_secs(600),
                replicas: 1,
                strict: false,
            },
            dead_letters: crate::stream::StreamSpec {
                name: "D".into(),
                subjects: vec!["d.>".into()],
                retention: crate::Retention::Limits,
                max_age: Duration::ZERO,
                duplicate_window: Duration::from_secs(600),
                replicas: 1,
                strict: false,
            },
            durable: "d".into(),
            dead_letter_subject: "d.x".into(),
            max_deliver: 20,
            ack_wait: Duration::from_secs(60),
            retry_delay: Duration::from_secs(secs),
            batch_size: 1,
        };
        let s = spec(5);
        let delays: Vec<u64> = (1..=9).map(|n| s.retry_delay(n).as_secs()).collect();
        assert_eq!(delays, [5, 10, 20, 40, 80, 160, 300, 300, 300]);
        assert_eq!(s.retry_delay(u64::MAX).as_secs(), 300);
        assert_eq!(spec(0).retry_delay(3), Duration::ZERO);
    }
}
