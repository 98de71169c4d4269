//! The JetStream sinks: [`JetStreamEventSink`] (CloudEvents) and [`JetStreamAuditSink`] (audit
//! records), on one publisher that pipelines a batch, then waits for each acknowledgement in
//! order.

use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, context::PublishErrorKind};
use async_nats::{HeaderMap, Subject};
use async_trait::async_trait;
use remediation_audit::AuditSink;
use remediation_core::{AuditRecord, CloudEvent, DeliveryError, EventSink, Undelivered};
use tokio::sync::Mutex;

use crate::connection::NatsConnector;
use crate::error::NatsError;
use crate::stream::StreamSpec;
use crate::subject::{audit_subject, event_subject};

/// The media type of a CloudEvent in JSON structured mode.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// One message to publish.
pub(crate) struct Outgoing {
    pub(crate) subject: String,
    pub(crate) msg_id: String,
    pub(crate) content_type: &'static str,
    pub(crate) payload: Vec<u8>,
}

/// A connection with its JetStream context, and whether the stream was checked on it.
struct Live {
    client: async_nats::Client,
    js: jetstream::Context,
    stream_ready: bool,
}

/// Publishes batches to one stream over one connection at a time, one batch at a time (so
/// batches land in the order they are delivered).
pub(crate) struct Publisher {
    connector: NatsConnector,
    stream: StreamSpec,
    name: &'static str,
    live: Mutex<Option<Live>>,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("connector", &self.connector)
            .field("stream", &self.stream)
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

fn connected(client: &async_nats::Client) -> bool {
    client.connection_state() == async_nats::connection::State::Connected
}

impl Publisher {
    pub(crate) fn new(connector: NatsConnector, stream: StreamSpec, name: &'static str) -> Self {
        Self { connector, stream, name, live: Mutex::new(None) }
    }

    /// The live connection, opened (and the stream checked or created) when needed.
    async fn live<'a>(&self, slot: &'a mut Option<Live>) -> Result<&'a mut Live, NatsError> {
        if slot.as_ref().is_some_and(|l| !connected(&l.client)) {
            *slot = None;
        }
        let live = match slot {
            Some(live) => live,
            None => {
                let client = self.connector.connect(self.name).await?;
                let js =
                    jetstream::ContextBuilder::new().timeout(self.connector.request_timeout()).build(client.clone());
                slot.insert(Live { client, js, stream_ready: false })
            }
        };
        if !live.stream_ready {
            self.stream.ensure(&live.js).await?;
            live.stream_ready = true;
        }
        Ok(live)
    }

    /// Connects and creates or checks the stream now rather than at the first delivery.
    pub(crate) async fn ensure_stream(&self) -> Result<(), NatsError> {
        let mut slot = self.live.lock().await;
        self.live(&mut slot).await.map(|_| ())
    }

    /// Publishes `items` in order, pipelined, then waits for each acknowledgement in order.
    /// An `Err` item is not published: the batch stops before it with that error.
    pub(crate) async fn publish(&self, items: Vec<Result<Outgoing, DeliveryError>>) -> Result<(), Undelivered> {
        if items.is_empty() {
            return Ok(());
        }
        let mut slot = self.live.lock().await;
        let live = match self.live(&mut slot).await {
            Ok(live) => live,
            Err(e) => return Err(Undelivered { delivered: 0, error: DeliveryError::transient(e.to_string()) }),
        };
        let timeout = self.connector.request_timeout();
        let mut pending = Vec::with_capacity(items.len());
        let mut stopped: Option<DeliveryError> = None;
        for item in items {
            let out = match item {
                Ok(out) => out,
                Err(error) => {
                    stopped = Some(error);
                    break;
                }
            };
            let mut headers = HeaderMap::new();
            headers.insert(async_nats::header::NATS_MESSAGE_ID, out.msg_id.as_str());
            headers.insert("Content-Type", out.content_type);
            let publish = jetstream::message::PublishMessage::build().payload(out.payload.into()).headers(headers);
            match live.js.send_publish(Subject::from(out.subject.as_str()), publish).await {
                Ok(ack) => pending.push((out.subject, ack)),
                Err(e) => {
                    stopped = Some(self.classify(live, &e, &out.subject, timeout));
                    break;
                }
            }
        }
        let mut delivered = 0;
        for (subject, ack) in pending {
            match ack.await {
                Ok(_) => delivered += 1,
                Err(e) => {
                    let error = self.classify(live, &e, &subject, timeout);
                    if !connected(&live.client) {
                        *slot = None;
                    }
                    return Err(Undelivered { delivered, error });
                }
            }
        }
        if !connected(&live.client) {
            *slot = None;
        }
        match stopped {
            None => Ok(()),
            Some(error) => Err(Undelivered { delivered, error }),
        }
    }

    /// Transient unless it is this message that can never be taken (too large).
    fn classify(
        &self,
        live: &mut Live,
        e: &jetstream::context::PublishError,
        subject: &str,
        timeout: Duration,
    ) -> DeliveryError {
        let stream = &self.stream.name;
        match e.kind() {
            PublishErrorKind::MaxPayloadExceeded => {
                DeliveryError::permanent(format!("the message to `{subject}` is larger than the server accepts: {e}"))
            }
            PublishErrorKind::StreamNotFound => {
                live.stream_ready = false;
                DeliveryError::transient(format!(
                    "no stream takes `{subject}` (no responders); stream `{stream}` is created again at the next delivery"
                ))
            }
            PublishErrorKind::TimedOut => DeliveryError::transient(format!(
                "no acknowledgement from stream `{stream}` within {}s",
                timeout.as_secs()
            )),
            PublishErrorKind::BrokenPipe => DeliveryError::transient(format!(
                "the connection to NATS was lost before stream `{stream}` acknowledged"
            )),
            _ => {
                let api = std::error::Error::source(e).and_then(|s| s.downcast_ref::<jetstream::Error>());
                match api {
                    Some(j) if j.error_code() == ErrorCode::STREAM_MESSAGE_EXCEEDS_MAXIMUM => DeliveryError::permanent(
                        format!("stream `{stream}` refuses the message to `{subject}` for good: {j}"),
                    ),
                    Some(j) => {
                        DeliveryError::transient(format!("stream `{stream}` refused the message to `{subject}`: {j}"))
                    }
                    None if !connected(&live.client) => {
                        DeliveryError::transient(format!("not connected to NATS (publishing to `{subject}`): {e}"))
                    }
                    None => DeliveryError::transient(format!("publishing to `{subject}` failed: {e}")),
                }
            }
        }
    }
}

/// An [`EventSink`] that publishes each event's JSON to
/// `remediation.events.<tenant>.<type without "dev.remediation.">` with `Nats-Msg-Id` = the
/// event's `id` and `Content-Type: application/cloudevents+json`, and reports an event
/// delivered once JetStream acknowledged it.
///
/// Built by [`JetStreamSinkConfig::build_events`](crate::JetStreamSinkConfig::build_events).
///
/// A batch is published pipelined, then each acknowledgement is awaited in order; the first
/// failure ends it with `Undelivered { delivered }` counting the events acknowledged before it.
/// Only what is wrong with that one event is
/// [`Permanent`](remediation_core::DeliveryError::Permanent) (larger than the server's
/// `max_payload` or the stream's message size limit, or a type that makes no valid subject).
/// Everything else is [`Transient`](remediation_core::DeliveryError::Transient), so the relay
/// waits rather than parking every event: no connection, refused credentials, a TLS failure, no
/// acknowledgement in time, no stream for the subject (it is created again at the next
/// delivery), a stream configured otherwise, or any other refusal by the stream.
#[derive(Debug)]
pub struct JetStreamEventSink {
    publisher: Publisher,
    tenant: String,
}

impl JetStreamEventSink {
    pub(crate) fn new(publisher: Publisher, tenant: String) -> Self {
        Self { publisher, tenant }
    }

    /// Connects and creates the stream if it is missing, or checks it if it exists, now rather
    /// than at the first delivery.
    pub async fn ensure_stream(&self) -> Result<(), NatsError> {
        self.publisher.ensure_stream().await
    }

    /// The stream events land in.
    pub fn stream(&self) -> &str {
        &self.publisher.stream.name
    }

    /// The tenant whose subjects this sink publishes to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn outgoing(&self, event: &CloudEvent) -> Result<Outgoing, DeliveryError> {
        let subject = event_subject(&self.tenant, &event.event_type).ok_or_else(|| {
            DeliveryError::permanent(format!(
                "the event type `{}` does not make a valid NATS subject",
                event.event_type
            ))
        })?;
        let payload = serde_json::to_vec(event)
            .map_err(|e| DeliveryError::permanent(format!("event {} cannot be written as JSON: {e}", event.id)))?;
        Ok(Outgoing { subject, msg_id: event.id.clone(), content_type: CLOUDEVENTS_CONTENT_TYPE, payload })
    }
}

#[async_trait]
impl EventSink for JetStreamEventSink {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        self.publisher.publish(events.iter().map(|e| self.outgoing(e)).collect()).await
    }
}

/// An [`AuditSink`] that publishes each record's JSON (with `seq`, `prev_hash` and `hash`) to
/// `remediation.audit.<tenant>` with `Nats-Msg-Id` = `audit-<tenant>-<seq>`, and reports a
/// record delivered once JetStream acknowledged it.
///
/// Built by [`JetStreamSinkConfig::build_audit`](crate::JetStreamSinkConfig::build_audit).
/// Batches, acknowledgements and errors as for [`JetStreamEventSink`].
#[derive(Debug)]
pub struct JetStreamAuditSink {
    publisher: Publisher,
    tenant: String,
}

impl JetStreamAuditSink {
    pub(crate) fn new(publisher: Publisher, tenant: String) -> Self {
        Self { publisher, tenant }
    }

    /// Connects and creates the stream if it is missing, or checks it if it exists, now rather
    /// than at the first delivery.
    pub async fn ensure_stream(&self) -> Result<(), NatsError> {
        self.publisher.ensure_stream().await
    }

    /// The stream records land in.
    pub fn stream(&self) -> &str {
        &self.publisher.stream.name
    }

    /// The tenant whose subject this sink publishes to.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    fn outgoing(&self, record: &AuditRecord) -> Result<Outgoing, DeliveryError> {
        let payload = serde_json::to_vec(record).map_err(|e| {
            DeliveryError::permanent(format!("audit record {} cannot be written as JSON: {e}", record.seq))
        })?;
        Ok(Outgoing {
            subject: audit_subject(&self.tenant),
            msg_id: format!("audit-{}-{}", self.tenant, record.seq),
            content_type: "application/json",
            payload,
        })
    }
}

#[async_trait]
impl AuditSink for JetStreamAuditSink {
    async fn deliver(&self, records: &[AuditRecord]) -> Result<(), Undelivered> {
        self.publisher.publish(records.iter().map(|r| self.outgoing(r)).collect()).await
    }
}
