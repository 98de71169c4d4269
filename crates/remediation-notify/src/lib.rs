//! Telling people and systems what the remediation engine does: event sinks for
//! [`CloudEvent`](remediation_core::CloudEvent)s and audit sinks for the audit trail, which the
//! runtime's relay feeds from the audit log (the outbox), and [`Notifier`], the connector that
//! makes the `notify` action kind deliver a message.
//!
//! - [`LogSink`]: one structured `tracing` event per engine event (target
//!   `remediation::events`): the envelope's attributes and the event's structured fields, no
//!   free text unless asked for.
//! - [`WebhookSink`]: POSTs each event, in a CloudEvents 1.0 envelope, to a URL, signed (below),
//!   retrying transient failures a few times inside the call; what still fails is reported to
//!   the relay as transient (it tries again later, without limit in time) or permanent (the
//!   relay parks the event). Nothing is dropped.
//! - [`WebhookAuditSink`]: POSTs batches of audit records, signed the same way.
//! - [`Notifier`]: a [`Connector`](remediation_core::Connector) for `notify` actions, posting to
//!   a Slack incoming webhook or to a signed generic webhook, once per idempotency key.
//!
//! # Configuration
//!
//! ```
//! use remediation_notify::{EventSinkConfig, NotifierConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     sinks: Vec<EventSinkConfig>,
//!     notifiers: Vec<NotifierConfig>,
//! }
//!
//! let config: Config = toml::from_str(r#"
//!     [[sinks]]
//!     type = "log"
//!
//!     [[sinks]]
//!     type = "webhook"
//!     url = "https://siem.example.com/remediation/events"
//!     secret_env = "REMEDIATION_EVENTS_SECRET"   # or secret_file = "/run/secrets/events"
//!     timeout_secs = 10                          # per attempt (default 10)
//!     max_attempts = 3                           # default 3
//!
//!     [[notifiers]]
//!     id = "slack-secops"
//!     kind = "slack"
//!     url_file = "/run/secrets/slack-webhook"    # or url_env; never a plain `url` for Slack
//!     state_dir = "/var/lib/remediation/notify"  # remember deliveries across restarts
//!
//!     [[notifiers]]
//!     id = "tickets"
//!     kind = "webhook"
//!     url = "https://tickets.example.com/hooks/remediation"
//!     secret_env = "REMEDIATION_TICKETS_SECRET"
//! "#)?;
//!
//! let env = |var: &str| (var == "REMEDIATION_EVENTS_SECRET").then(|| "s3cret".to_owned());
//! let sink = config.sinks[1].build_with_env(&env)?;
//! # drop(sink);
//! // Errors name what is missing, never a secret:
//! let err = config.notifiers[1].build_with_env(&env).unwrap_err();
//! assert_eq!(err.to_string(), "environment variable `REMEDIATION_TICKETS_SECRET` (named by `secret_env`) is not set");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! `build()` reads the process environment; `build_with_env` takes a stand-in. Secrets read
//! from a file lose surrounding whitespace. Secrets are [`SecretString`](secrecy::SecretString)s
//! from config to header and appear in no `Debug` output, log line or error.
//!
//! # Signatures
//!
//! Every request of a [`WebhookSink`], and of a `webhook` [`Notifier`], carries:
//!
//! | header | value |
//! |---|---|
//! | `X-Remediation-Timestamp` | Unix time of signing, in whole seconds, decimal (`1700000000`) |
//! | `X-Remediation-Signature` | `sha256=` + lowercase hex of HMAC-SHA256(key = the secret's UTF-8 bytes, message = `<timestamp>` `.` `<body>`) |
//! | `X-Remediation-Event-Id` | event sink: the event id (the audit record's hash); audit sink: `audit-<first seq>-<last seq>`; notifier: the action's idempotency key. The same for every retry of one delivery, so receivers can drop duplicates |
//! | `Content-Type` | `application/cloudevents+json` (the body is a [`remediation_core::CloudEvent`], JSON Schema `schemas/cloudevent.schema.json`) |
//!
//! `<timestamp>` is the header's value exactly as sent and `<body>` the raw request bytes
//! (do not re-serialise parsed JSON before checking). Each retry is signed afresh. A receiver
//! recomputes the HMAC, compares it in constant time, and refuses a timestamp more than five
//! minutes from its own clock, so a captured request cannot be replayed later.
//! [`verify_signature`] does all of that:
//!
//! ```
//! use remediation_notify::{DEFAULT_TOLERANCE, SignatureError, sign, verify_signature};
//! use secrecy::SecretString;
//! use time::OffsetDateTime;
//!
//! let secret = SecretString::from("s3cret");
//! let body = br#"{"type":"breaker_tripped","action_id":"0190f1a2-0000-7000-8000-000000000000"}"#;
//! // What the sender does:
//! let header = sign(&secret, 1_700_000_000, body);
//! // What the receiver does with the two headers and the raw body:
//! let now = OffsetDateTime::from_unix_timestamp(1_700_000_042)?;
//! verify_signature(&secret, "1700000000", body, &header, now, DEFAULT_TOLERANCE)?;
//! let later = OffsetDateTime::from_unix_timestamp(1_700_000_301)?;
//! assert!(matches!(
//!     verify_signature(&secret, "1700000000", body, &header, later, DEFAULT_TOLERANCE),
//!     Err(SignatureError::Stale { .. })
//! ));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The same check without this crate (Python):
//!
//! ```text
//! import hashlib, hmac, time
//! def verify(secret: bytes, ts: str, body: bytes, header: str, tolerance=300) -> bool:
//!     if not ts.isdigit() or abs(time.time() - int(ts)) > tolerance:
//!         return False
//!     mac = hmac.new(secret, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
//!     return hmac.compare_digest("sha256=" + mac, header)
//! ```
//!
//! # Delivery
//!
//! Connection errors, timeouts and 5xx answers are retried up to `max_attempts` in all, waiting
//! 0.5 s, then 1 s, ... (at most 10 s); the event sink also retries a 429, honouring a
//! `Retry-After` in seconds up to 10 s. Redirects are not followed. A timed-out request may
//! have arrived: delivery is at least once, and the event id lets receivers deduplicate.
//! The sinks run on the relay, never on the engine's path: a slow or absent receiver delays
//! its own events only. After the attempts, a 408, 429, 5xx or no answer is reported as
//! transient, any other 4xx as permanent (the relay parks the event with the receiver's answer).
//!
//! # The notifier connector
//!
//! | kind | `grant_type` | target | effect | reversibility | observable |
//! |---|---|---|---|---|---|
//! | notify | `notification` | identity (and resource, grant) the message is about | one message posted | irreversible | no |
//!
//! Any other kind or grant type is `Unsupported` before any request. The snapshot of a
//! `notification` target is `{"identity", "resource", "grant", "notifications"}`, the last
//! being how many notifications about that exact target this notifier has delivered; the plan
//! expects one more. So the engine's plan, execute and verify work as for any connector, and
//! the crash rule (live state equals the expected after-state: completed) holds when a state
//! directory is configured. Rollback is refused: a message cannot be unsent.
//!
//! Executing an action whose idempotency key was already delivered sends nothing and returns
//! `AlreadyInState`. Delivered keys are kept in memory and, with `state_dir`, in
//! `<state_dir>/notifier-<id>.json` (replaced atomically), so a restart does not resend.
//!
//! A Slack message has the fallback `text` and Block Kit `blocks`: what was found (the
//! action's reason), the identity, resource, grant, control, finding and requester, what is
//! asked (review the access, confirm or remove it) and the action id. User text is escaped
//! (`&`, `<`, `>`), so a reason cannot mention `@channel` or forge a link. Slack must answer
//! `200 ok`. A `webhook` notifier posts `{"action": {"id", "kind", "connector", "control_id",
//! "finding_id", "requested_by"}, "target", "reason", "idempotency_key", "text"}`, signed, with
//! the idempotency key as event id; any 2xx is a delivery.
//!
//! | answer | error kind |
//! |---|---|
//! | 400 (Slack `invalid_payload`, `no_text`), 410 (`channel_is_archived`), other 4xx, a Slack 200 that is not `ok` | `Permanent` |
//! | 401 | `Unauthenticated` |
//! | 403 (`invalid_token`, `action_prohibited`) | `Forbidden` |
//! | 404 (`no_service`, `channel_not_found`) | `NotFound` |
//! | 409 | `Conflict` |
//! | 429 | `Throttled`, with `Retry-After` (seconds) when sent; not retried by the notifier |
//! | 5xx, connection error, timeout (after the retries) | `Transient` |

mod config;
mod error;
mod http;
mod ledger;
mod message;
mod notifier;
mod secret;
mod signature;
mod sinks;

pub use config::{
    AuditSinkConfig, EventSinkConfig, FileSinkConfig, LogSinkConfig, NotifierConfig, NotifierKind, WebhookSinkConfig,
};
pub use error::{NotifyError, SignatureError};
pub use http::RetryPolicy;
pub use ledger::DeliveredNotification;
pub use notifier::{NOTIFICATION, Notifier, NotifierOptions, capabilities};
pub use signature::{DEFAULT_TOLERANCE, EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign, verify_signature};
pub use sinks::{AUDIT_CONTENT_TYPE, CLOUDEVENTS_CONTENT_TYPE, LogSink, WebhookAuditSink, WebhookSink};

/// The catalog's entry for notifiers: `type = "notifier"`, settings [`NotifierConfig`].
pub static FACTORY: remediation_core::factory::Factory<NotifierConfig> = remediation_core::factory::Factory::new(
    "notifier",
    "Notifier (Slack, signed webhook)",
    Some(capabilities),
    |_id, config, _context| Ok(std::sync::Arc::new(config.build()?)),
);
