//! NATS JetStream for the remediation engine: engine events and the audit trail out, findings
//! in.
//!
//! - [`JetStreamEventSink`] (an [`EventSink`](remediation_core::EventSink)) publishes each
//!   CloudEvent's JSON to `remediation.events.<tenant>.<type>`, the type without its
//!   `dev.remediation.` prefix (`remediation.events.default.action.completed`), with
//!   `Nats-Msg-Id` = the event's `id` (its audit record's hash) and
//!   `Content-Type: application/cloudevents+json`. Stream `REMEDIATION_EVENTS`, subjects
//!   `remediation.events.>`.
//! - [`JetStreamAuditSink`] (an [`AuditSink`](remediation_audit::AuditSink)) publishes each
//!   audit record's JSON (`seq`, `prev_hash` and `hash` included, so a receiver can verify the
//!   chain) to `remediation.audit.<tenant>` with `Nats-Msg-Id` = `audit-<tenant>-<seq>`.
//!   Stream `REMEDIATION_AUDIT`, subjects `remediation.audit.>`.
//! - [`FindingsConsumer`] reads findings from the durable pull consumer `remediation-findings`
//!   on stream `REMEDIATION_FINDINGS` (subjects `remediation.findings.>`) and hands each to a
//!   [`FindingHandler`]; what it cannot take (not JSON, not a finding, refused, or failing
//!   `max_deliver` times) goes to `remediation.deadletter.findings` in stream
//!   `REMEDIATION_DEADLETTER` (subjects `remediation.deadletter.>`) with the headers
//!   `Remediation-Dead-Letter-Reason` and `Remediation-Original-Subject`, and only then is
//!   acknowledged.
//!
//! Streams are created when missing (at the first delivery, or by `ensure_stream`), never
//! changed: one that exists with other subjects, retention, duplicate window or age limit is
//! reported ([`NatsError::StreamMismatch`]). Building a sink or the consumer reads its secrets
//! and checks its settings but does not connect: a NATS server that is down only makes
//! deliveries fail with a transient error, which the relay retries.
//!
//! # Exactly once into JetStream, within the duplicate window
//!
//! The relay hands a sink each event at least once, always with the same `id`. A sink pipelines
//! a batch, then waits for each acknowledgement in order, and counts an event delivered only
//! once JetStream acknowledged it (it is stored). JetStream drops a message whose `Nats-Msg-Id`
//! it stored within the stream's duplicate window, so an event handed over again within that
//! window (after a lost acknowledgement, a crash, a NATS outage) is stored once:
//! `duplicate_window_secs` (600 at least) is the longest outage after which a republish is
//! still recognised. A connection never reconnects by itself (it would replay what was queued
//! while disconnected behind what was lost): the next delivery opens a new one, so the stream
//! keeps the relay's order.
//!
//! # Configuration
//!
//! ```
//! use remediation_nats::{FindingsConsumerConfig, JetStreamSinkConfig};
//!
//! #[derive(serde::Deserialize)]
//! struct Config {
//!     events: JetStreamSinkConfig,
//!     audit: JetStreamSinkConfig,
//!     findings: FindingsConsumerConfig,
//! }
//!
//! let config: Config = toml::from_str(r#"
//!     [events]
//!     tenant = "default"                      # remediation.events.default.>
//!     retention = "limits"                    # or "interest", "workqueue"
//!     max_age_secs = 2592000                  # 30 days; 0 (the default) keeps them
//!     duplicate_window_secs = 600             # the default, and the minimum
//!     [events.connection]
//!     url = "tls://nats.example.com:4222"
//!     creds_file = "/run/secrets/remediation.creds"
//!     tls_ca_file = "/etc/remediation/nats-ca.pem"
//!
//!     [audit]                                 # stream REMEDIATION_AUDIT
//!     [audit.connection]
//!     url = "nats://127.0.0.1:4222"
//!     user = "remediation"
//!     password_env = "REMEDIATION_NATS_PASSWORD"
//!
//!     [findings]
//!     max_deliver = 20
//!     [findings.connection]
//!     url = "nats://127.0.0.1:4222"
//!     token_file = "/run/secrets/nats-token"
//! "#)?;
//!
//! let env = |var: &str| (var == "REMEDIATION_NATS_PASSWORD").then(|| "s3cret".to_owned());
//! let audit = config.audit.build_audit_with_env(&env)?; // reads the secret; does not connect
//! assert_eq!(audit.stream(), "REMEDIATION_AUDIT");
//! assert!(!format!("{audit:?}").contains("s3cret"));
//! // Errors name what is missing, never a secret:
//! let err = config.audit.build_audit_with_env(&|_: &str| None).unwrap_err();
//! assert_eq!(err.to_string(), "environment variable `REMEDIATION_NATS_PASSWORD` (named by `password_env`) is not set");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Reading it with the `nats` CLI
//!
//! ```text
//! # Every event of the default tenant as it is published (core NATS, nothing kept):
//! nats sub 'remediation.events.default.>'
//!
//! # A durable consumer of its own for a downstream system, from the start of the stream:
//! nats consumer add REMEDIATION_EVENTS siem --pull --deliver all --ack explicit \
//!     --filter 'remediation.events.default.>' --max-deliver=-1 --replay instant --defaults
//! nats consumer next REMEDIATION_EVENTS siem --count 10
//!
//! # Findings that were not taken, with why:
//! nats stream view REMEDIATION_DEADLETTER
//! ```

mod config;
mod connection;
mod consumer;
mod error;
mod secret;
mod sink;
mod stream;
mod subject;
#[cfg(feature = "testing")]
pub mod testing;

pub use config::{
    DEFAULT_AUDIT_STREAM, DEFAULT_DEAD_LETTER_STREAM, DEFAULT_DEAD_LETTER_SUBJECT, DEFAULT_DURABLE,
    DEFAULT_EVENTS_STREAM, DEFAULT_FINDINGS_STREAM, FindingsConsumerConfig, JetStreamSinkConfig,
};
pub use connection::{NatsConnectionConfig, NatsConnector};
pub use consumer::{
    DEAD_LETTER_REASON_HEADER, DELIVERY_COUNT_HEADER, FindingHandler, FindingsConsumer, HandleError,
    ORIGINAL_SEQUENCE_HEADER, ORIGINAL_SUBJECT_HEADER, PollReport,
};
pub use error::NatsError;
pub use sink::{CLOUDEVENTS_CONTENT_TYPE, JetStreamAuditSink, JetStreamEventSink};
pub use stream::{MIN_DUPLICATE_WINDOW_SECS, Retention};
pub use subject::{
    AUDIT_SUBJECT_PREFIX, DEAD_LETTER_SUBJECT_PREFIX, EVENTS_SUBJECT_PREFIX, FINDINGS_SUBJECT_PREFIX, audit_subject,
    event_subject, is_valid_tenant,
};
