//! The event sinks: [`LogSink`] (structured `tracing` events) and [`WebhookSink`] (signed
//! HTTP POSTs).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_audit::AuditSink;
use remediation_core::{
    AuditRecord, Clock, CloudEvent, DeliveryError, EngineEvent, EventSink, SystemClock, Undelivered,
};
use reqwest::Url;
use secrecy::SecretString;

use crate::error::NotifyError;
use crate::http::{self, RetryPolicy};
use crate::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Writes one structured `tracing` event per engine event, with target `remediation::events`:
/// the envelope's attributes (`id`, `ce_source`, `ce_type`, `ce_subject`, `ce_time`,
/// `ce_auditseq`), and of its `data` the fields `type`, `action_id`, `from`, `to`, `event` and
/// `actor` (those that apply). Free text (comments, reasons) is left out by default, so nothing
/// a user typed reaches the log through it; [`LogSink::with_envelope`] adds the whole envelope
/// as JSON (`cloudevent`), `data` included, for log pipelines that parse it. It never fails.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink {
    envelope: bool,
}

impl LogSink {
    /// A log sink writing structured fields only.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also writes the whole CloudEvents envelope, `data` and its free text included, as the
    /// field `cloudevent`.
    pub fn with_envelope(self) -> Self {
        Self { envelope: true }
    }

    fn log(&self, envelope: &CloudEvent) {
        let whole = if self.envelope { serde_json::to_string(envelope).unwrap_or_default() } else { String::new() };
        let span = tracing::info_span!(
            target: "remediation::events",
            "event",
            ce_source = %envelope.source,
            ce_subject = envelope.subject.as_deref().unwrap_or_default(),
            ce_time = %envelope.time,
            ce_auditseq = envelope.auditseq.unwrap_or_default(),
            cloudevent = whole.as_str(),
        );
        let _entered = span.enter();
        Self::fields(envelope);
    }

    fn fields(envelope: &CloudEvent) {
        let id = envelope.id.as_str();
        let ce_type = envelope.event_type.as_str();
        match &envelope.data {
            EngineEvent::Transition { record } => tracing::info!(
                target: "remediation::events",
                r#type = "transition",
                ce_type, id,
                action_id = %record.action_id,
                from = %record.from.map_or_else(|| "new".to_owned(), |s| s.to_string()),
                to = %record.to,
                event = %record.event,
                actor = %record.actor,
                "action {} moved to {}", record.action_id, record.to
            ),
            EngineEvent::Held { action_id, limit, .. } => tracing::warn!(
                target: "remediation::events",
                r#type = "held",
                ce_type, id,
                action_id = %action_id,
                to = "held",
                limit = limit.as_ref().map(|l| l.slot.key.as_str()).unwrap_or("breaker"),
                "action {action_id} is held: an admin must force-execute or release it"
            ),
            EngineEvent::BreakerTripped { action_id } => tracing::warn!(
                target: "remediation::events",
                r#type = "breaker_tripped",
                ce_type, id,
                action_id = %action_id.map(|a| a.to_string()).unwrap_or_default(),
                "the circuit breaker tripped: execution is paused until an admin resets it"
            ),
            EngineEvent::SafetyChanged { setting_event, actor } => tracing::info!(
                target: "remediation::events",
                r#type = "safety_changed",
                ce_type, id,
                event = %setting_event,
                actor = %actor,
                "safety setting changed: {setting_event}"
            ),
            EngineEvent::Refused { setting_event, actor, action_id, .. } => tracing::info!(
                target: "remediation::events",
                r#type = "refused",
                ce_type, id,
                event = %setting_event,
                actor = %actor,
                action_id = %action_id.map(|a| a.to_string()).unwrap_or_default(),
                "refused: {setting_event}"
            ),
            _ => tracing::info!(
                target: "remediation::events",
                r#type = "other",
                ce_type, id,
                action_id = %envelope.subject.as_deref().unwrap_or_default(),
                "engine event"
            ),
        }
    }
}

#[async_trait]
impl EventSink for LogSink {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        events.iter().for_each(|e| self.log(e));
        Ok(())
    }
}

/// The media type of a [`WebhookSink`]'s body: one CloudEvents 1.0 envelope
/// ([`CloudEvent`]) in JSON structured mode.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// POSTs each event to a URL as a CloudEvents 1.0 envelope ([`CloudEvent`], content type
/// [`CLOUDEVENTS_CONTENT_TYPE`]), signed (see the crate docs for the scheme), with the event's
/// `id` as `X-Remediation-Event-Id`: the same on every delivery of the event, so a receiver
/// drops duplicates.
///
/// Events of a batch are posted one after the other, in order. Each is retried inside the call
/// for connection errors, timeouts, 5xx and 429 (the [`RetryPolicy`]); what still fails is
/// [`DeliveryError::Transient`] (connection error, timeout, 5xx, 408, 429) and the relay tries
/// again later, or [`DeliveryError::Permanent`] (any other answer that is not 2xx: the receiver
/// refused the event, and the relay parks it).
#[derive(Clone)]
pub struct WebhookSink {
    inner: Arc<Inner>,
}

#[derive(Clone)]
struct Inner {
    url: Url,
    secret: SecretString,
    client: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for WebhookSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSink")
            .field("host", &self.inner.url.host_str())
            .field("retry", &self.inner.retry)
            .finish_non_exhaustive()
    }
}

impl WebhookSink {
    /// A sink posting to `url`, signing with `secret`, each attempt limited to `timeout`, with
    /// the default [`RetryPolicy`] and the system clock.
    pub fn new(url: Url, secret: SecretString, timeout: Duration) -> Result<Self, NotifyError> {
        Ok(Self {
            inner: Arc::new(Inner {
                url,
                secret,
                client: http::client(timeout)?,
                retry: RetryPolicy::default(),
                clock: Arc::new(SystemClock),
            }),
        })
    }

    /// Uses `retry` instead of the default policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        self.map(|inner| Inner { retry, ..inner })
    }

    /// Uses `clock` for signing timestamps.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.map(|inner| Inner { clock, ..inner })
    }

    fn map(self, f: impl FnOnce(Inner) -> Inner) -> Self {
        Self { inner: Arc::new(f(Arc::unwrap_or_clone(self.inner))) }
    }

    /// POSTs `body` (of `content_type`, identified by `id`), signed, retrying per the policy,
    /// and judges the last answer.
    pub(crate) async fn post(&self, id: &str, content_type: &str, body: Vec<u8>) -> Result<(), DeliveryError> {
        let inner = &self.inner;
        let result = http::send(inner.retry, true, || {
            // Signed afresh for each attempt, so a retry after a long backoff is not stale.
            let timestamp = inner.clock.now().unix_timestamp();
            inner
                .client
                .post(inner.url.clone())
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(&inner.secret, timestamp, &body))
                .header(EVENT_ID_HEADER, id)
                .body(body.clone())
        })
        .await;
        let host = inner.url.host_str().unwrap_or("");
        match result {
            Ok(answer) if answer.status.is_success() => Ok(()),
            Ok(answer) => {
                let status = answer.status.as_u16();
                let said = http::cut(&answer.body, 200);
                let reason = if said.is_empty() {
                    format!("{host} answered HTTP {status}")
                } else {
                    format!("{host} answered HTTP {status}: {said}")
                };
                if answer.status.is_server_error() || status == 408 || status == 429 {
                    Err(DeliveryError::Transient { reason, retry_after: answer.retry_after })
                } else {
                    Err(DeliveryError::permanent(reason))
                }
            }
            Err(no) => Err(DeliveryError::transient(format!("{host}: {}", no.message))),
        }
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        for (delivered, event) in events.iter().enumerate() {
            let body = serde_json::to_vec(event).map_err(|e| Undelivered {
                delivered,
                error: DeliveryError::permanent(format!("cannot serialise the event: {e}")),
            })?;
            self.post(&event.id, CLOUDEVENTS_CONTENT_TYPE, body)
                .await
                .map_err(|error| Undelivered { delivered, error })?;
        }
        Ok(())
    }
}

/// The media type of a [`WebhookAuditSink`]'s body: a JSON array of audit records.
pub const AUDIT_CONTENT_TYPE: &str = "application/json";

/// POSTs the audit trail to a URL as it grows: each request's body is a JSON array of
/// consecutive audit records (as the chain holds them: `seq`, the record's fields, `prev_hash`,
/// `hash`), signed like the event webhook, with `X-Remediation-Event-Id` =
/// `audit-<first seq>-<last seq>`. A receiver detects a gap or a duplicate by `seq`.
///
/// Failures are judged as for [`WebhookSink`]. When the receiver refuses a batch of several
/// records for good, they are sent one by one, so only the record it refuses is parked.
#[derive(Clone, Debug)]
pub struct WebhookAuditSink {
    webhook: WebhookSink,
}

impl WebhookAuditSink {
    /// An audit sink posting through `webhook` (its URL, secret, timeout and retries).
    pub fn new(webhook: WebhookSink) -> Self {
        Self { webhook }
    }

    async fn post(&self, records: &[AuditRecord]) -> Result<(), DeliveryError> {
        let (Some(first), Some(last)) = (records.first(), records.last()) else { return Ok(()) };
        let body = serde_json::to_vec(records)
            .map_err(|e| DeliveryError::permanent(format!("cannot serialise the audit records: {e}")))?;
        let id = format!("audit-{}-{}", first.seq, last.seq);
        self.webhook.post(&id, AUDIT_CONTENT_TYPE, body).await
    }
}

#[async_trait]
impl AuditSink for WebhookAuditSink {
    async fn deliver(&self, records: &[AuditRecord]) -> Result<(), Undelivered> {
        match self.post(records).await {
            Ok(()) => Ok(()),
            Err(error @ DeliveryError::Permanent { .. }) if records.len() > 1 => {
                // Find the record it refuses: the ones before it are delivered.
                for (delivered, record) in records.iter().enumerate() {
                    self.post(std::slice::from_ref(record)).await.map_err(|error| Undelivered { delivered, error })?;
                }
                tracing::warn!(target: "remediation::events", error = %error, "the audit webhook refused a batch but took each record alone");
                Ok(())
            }
            Err(error) => Err(Undelivered { delivered: 0, error }),
        }
    }
}
