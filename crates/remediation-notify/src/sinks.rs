//! The event sinks: [`LogSink`] (structured `tracing` events), [`WebhookSink`] (signed HTTP
//! POSTs) and [`FanOut`] (several sinks at once).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::{Clock, CloudEvent, DEFAULT_EVENT_SOURCE, EngineEvent, EventSink, SystemClock};
use reqwest::Url;
use secrecy::SecretString;
use tokio::sync::Semaphore;
use uuid::Uuid;

use crate::error::NotifyError;
use crate::http::{self, RetryPolicy};
use crate::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// Writes one structured `tracing` event per engine event, with target `remediation::events`
/// and the fields `type`, `ce_type` (the CloudEvents `type` the webhook sink's envelope names),
/// `action_id`, `from`, `to`, `event` and `actor` (those that apply).
/// Free text (comments, reasons) is left out, so nothing a user typed, and no secret, reaches
/// the log through it.
#[derive(Debug, Clone, Copy, Default)]
pub struct LogSink;

#[async_trait]
impl EventSink for LogSink {
    async fn emit(&self, event: &EngineEvent) {
        match event {
            EngineEvent::Transition { record } => tracing::info!(
                target: "remediation::events",
                r#type = "transition",
                ce_type = %event.cloudevents_type(),
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
                ce_type = %event.cloudevents_type(),
                action_id = %action_id,
                to = "held",
                limit = limit.as_ref().map(|l| l.slot.key.as_str()).unwrap_or("breaker"),
                "action {action_id} is held: an admin must force-execute or release it"
            ),
            EngineEvent::BreakerTripped { action_id } => tracing::warn!(
                target: "remediation::events",
                r#type = "breaker_tripped",
                ce_type = %event.cloudevents_type(),
                action_id = %action_id,
                "the circuit breaker tripped: execution is paused until an admin resets it"
            ),
            EngineEvent::SafetyChanged { setting_event, actor } => tracing::info!(
                target: "remediation::events",
                r#type = "safety_changed",
                ce_type = %event.cloudevents_type(),
                event = %setting_event,
                actor = %actor,
                "safety setting changed: {setting_event}"
            ),
            _ => tracing::info!(
                target: "remediation::events",
                r#type = "other",
                ce_type = %event.cloudevents_type(),
                action_id = %event.action_id().map(|id| id.to_string()).unwrap_or_default(),
                "engine event"
            ),
        }
    }
}

/// The media type of a [`WebhookSink`]'s body: one CloudEvents 1.0 envelope
/// ([`CloudEvent`]) in JSON structured mode.
pub const CLOUDEVENTS_CONTENT_TYPE: &str = "application/cloudevents+json";

/// Deliveries a [`WebhookSink`] keeps in flight at once; events beyond are dropped (and
/// logged) rather than queued without bound while a receiver is down.
pub const MAX_IN_FLIGHT: u32 = 64;

/// The result of one webhook delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Delivery {
    /// The receiver answered 2xx.
    Delivered {
        /// The [`EVENT_ID_HEADER`] sent.
        event_id: String,
        /// Attempts made.
        attempts: u32,
    },
    /// The receiver answered otherwise after the last attempt.
    Refused {
        /// The [`EVENT_ID_HEADER`] sent.
        event_id: String,
        /// The last status.
        status: u16,
        /// Attempts made.
        attempts: u32,
    },
    /// No answer (connection error or timeout) after the last attempt.
    Unreachable {
        /// The [`EVENT_ID_HEADER`] sent.
        event_id: String,
        /// What went wrong; never shows the secret.
        error: String,
        /// Attempts made.
        attempts: u32,
    },
}

/// POSTs each event to a URL as a CloudEvents 1.0 envelope ([`CloudEvent`], content type
/// [`CLOUDEVENTS_CONTENT_TYPE`]; `id` is the `X-Remediation-Event-Id` header's, the same on
/// every retry), signed (see the crate docs for the scheme).
///
/// [`emit`](EventSink::emit) returns at once: delivery, with its retries, runs on a background
/// task, at most [`MAX_IN_FLIGHT`] at a time, and a failure is logged and dropped, never
/// returned to the engine. [`deliver`](Self::deliver) does the same in the foreground and says
/// how it went; [`flush`](Self::flush) waits for background deliveries.
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
    in_flight: Arc<Semaphore>,
    /// The envelopes' `source`.
    source: String,
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
                in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT as usize)),
                source: DEFAULT_EVENT_SOURCE.to_owned(),
            }),
        })
    }

    /// Uses `retry` instead of the default policy.
    pub fn with_retry(self, retry: RetryPolicy) -> Self {
        self.map(|inner| Inner { retry, ..inner })
    }

    /// Uses `clock` for signing timestamps and event ids.
    pub fn with_clock(self, clock: Arc<dyn Clock>) -> Self {
        self.map(|inner| Inner { clock, ..inner })
    }

    /// Names `source` as the envelopes' `source` instead of [`DEFAULT_EVENT_SOURCE`].
    pub fn with_source(self, source: impl Into<String>) -> Self {
        let source = source.into();
        self.map(|inner| Inner { source, ..inner })
    }

    fn map(self, f: impl FnOnce(Inner) -> Inner) -> Self {
        Self { inner: Arc::new(f(Arc::unwrap_or_clone(self.inner))) }
    }

    /// Delivers `event` now, retrying transient failures, and says how it went.
    pub async fn deliver(&self, event: &EngineEvent) -> Delivery {
        self.inner.deliver(event).await
    }

    /// Waits until every background delivery started so far has finished.
    pub async fn flush(&self) {
        // Holding every permit at once means nothing else holds one.
        if let Ok(all) = self.inner.in_flight.acquire_many(MAX_IN_FLIGHT).await {
            drop(all);
        }
    }
}

impl Inner {
    async fn deliver(&self, event: &EngineEvent) -> Delivery {
        let now = self.clock.now();
        let event_id = event_id(now);
        let envelope = CloudEvent::new(event, event_id.clone(), self.source.as_str(), now);
        let body = match serde_json::to_vec(&envelope) {
            Ok(body) => body,
            Err(e) => {
                return Delivery::Unreachable {
                    event_id,
                    error: format!("cannot serialise the event: {e}"),
                    attempts: 0,
                };
            }
        };
        let result = http::send(self.retry, true, || {
            // Signed afresh for each attempt, so a retry after a long backoff is not stale.
            let timestamp = self.clock.now().unix_timestamp();
            self.client
                .post(self.url.clone())
                .header(reqwest::header::CONTENT_TYPE, CLOUDEVENTS_CONTENT_TYPE)
                .header(TIMESTAMP_HEADER, timestamp.to_string())
                .header(SIGNATURE_HEADER, sign(&self.secret, timestamp, &body))
                .header(EVENT_ID_HEADER, event_id.as_str())
                .body(body.clone())
        })
        .await;
        match result {
            Ok(answer) if answer.status.is_success() => Delivery::Delivered { event_id, attempts: answer.attempts },
            Ok(answer) => Delivery::Refused { event_id, status: answer.status.as_u16(), attempts: answer.attempts },
            Err(no) => Delivery::Unreachable { event_id, error: no.message, attempts: no.attempts },
        }
    }

    fn log(&self, event: &EngineEvent, delivery: &Delivery) {
        let kind = event_type(event);
        let host = self.url.host_str().unwrap_or("");
        match delivery {
            Delivery::Delivered { .. } => {}
            Delivery::Refused { event_id, status, attempts } => tracing::warn!(
                target: "remediation::events",
                r#type = kind, event_id = %event_id, host, status, attempts,
                "event webhook refused the event; dropped"
            ),
            Delivery::Unreachable { event_id, error, attempts } => tracing::warn!(
                target: "remediation::events",
                r#type = kind, event_id = %event_id, host, error = %error, attempts,
                "event webhook unreachable; event dropped"
            ),
        }
    }
}

/// A UUIDv7 for `now`: unique per event, the same for each retry, ordered by time.
fn event_id(now: time::OffsetDateTime) -> String {
    let nanos = now.unix_timestamp_nanos();
    let secs = u64::try_from(nanos.div_euclid(1_000_000_000)).unwrap_or(0);
    let subsec = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
    Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, subsec)).to_string()
}

/// The `type` tag of an event, as in its JSON.
fn event_type(event: &EngineEvent) -> &'static str {
    match event {
        EngineEvent::Transition { .. } => "transition",
        EngineEvent::Held { .. } => "held",
        EngineEvent::BreakerTripped { .. } => "breaker_tripped",
        EngineEvent::SafetyChanged { .. } => "safety_changed",
        _ => "other",
    }
}

#[async_trait]
impl EventSink for WebhookSink {
    async fn emit(&self, event: &EngineEvent) {
        let Ok(permit) = Arc::clone(&self.inner.in_flight).try_acquire_owned() else {
            tracing::warn!(
                target: "remediation::events",
                r#type = event_type(event),
                in_flight = MAX_IN_FLIGHT,
                "event webhook backlog full; event dropped"
            );
            return;
        };
        let inner = Arc::clone(&self.inner);
        let event = event.clone();
        tokio::spawn(async move {
            let delivery = inner.deliver(&event).await;
            inner.log(&event, &delivery);
            drop(permit);
        });
    }
}

/// Sends each event to every sink it holds, concurrently, and returns when all are done.
#[derive(Clone, Default)]
pub struct FanOut {
    sinks: Vec<Arc<dyn EventSink>>,
}

impl std::fmt::Debug for FanOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FanOut").field("sinks", &self.sinks.len()).finish()
    }
}

impl FanOut {
    /// A fan-out to `sinks`.
    pub fn new(sinks: Vec<Arc<dyn EventSink>>) -> Self {
        Self { sinks }
    }

    /// Adds a sink.
    pub fn push(&mut self, sink: Arc<dyn EventSink>) {
        self.sinks.push(sink);
    }

    /// How many sinks it holds.
    pub fn len(&self) -> usize {
        self.sinks.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }
}

#[async_trait]
impl EventSink for FanOut {
    async fn emit(&self, event: &EngineEvent) {
        let mut tasks = tokio::task::JoinSet::new();
        for sink in &self.sinks {
            let sink = Arc::clone(sink);
            let event = event.clone();
            tasks.spawn(async move { sink.emit(&event).await });
        }
        while let Some(done) = tasks.join_next().await {
            if let Err(e) = done {
                // A panicking sink must not take the others, or the engine, with it.
                tracing::error!(target: "remediation::events", error = %e, "an event sink panicked");
            }
        }
    }
}
