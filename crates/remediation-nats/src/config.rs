//! Configuration of the JetStream sinks and of the findings consumer, as read from the config
//! file, and building them (reading secrets, checking every setting; nothing connects yet).

use std::time::Duration;

use remediation_core::DEFAULT_TENANT;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::connection::NatsConnectionConfig;
use crate::consumer::{ConsumerSpec, FindingsConsumer};
use crate::error::NatsError;
use crate::secret;
use crate::sink::{JetStreamAuditSink, JetStreamEventSink, Publisher};
use crate::stream::{MIN_DUPLICATE_WINDOW_SECS, Retention, StreamSpec, is_valid_stream_name};
use crate::subject::{
    AUDIT_SUBJECT_PREFIX, DEAD_LETTER_SUBJECT_PREFIX, EVENTS_SUBJECT_PREFIX, FINDINGS_SUBJECT_PREFIX, audit_subject,
    covers, is_literal_subject, is_valid_filter, is_valid_tenant, overlaps,
};

/// The event sink's default stream.
pub const DEFAULT_EVENTS_STREAM: &str = "REMEDIATION_EVENTS";
/// The audit sink's default stream.
pub const DEFAULT_AUDIT_STREAM: &str = "REMEDIATION_AUDIT";
/// The findings consumer's default stream.
pub const DEFAULT_FINDINGS_STREAM: &str = "REMEDIATION_FINDINGS";
/// The default stream of dead letters.
pub const DEFAULT_DEAD_LETTER_STREAM: &str = "REMEDIATION_DEADLETTER";
/// The findings consumer's default durable name.
pub const DEFAULT_DURABLE: &str = "remediation-findings";
/// The default subject of findings that could not be taken.
pub const DEFAULT_DEAD_LETTER_SUBJECT: &str = "remediation.deadletter.findings";

fn default_tenant() -> String {
    DEFAULT_TENANT.to_owned()
}

fn default_duplicate_window_secs() -> u64 {
    MIN_DUPLICATE_WINDOW_SECS
}

fn default_replicas() -> usize {
    1
}

/// A JetStream sink: the event sink ([`build_events`](Self::build_events)) or the audit sink
/// ([`build_audit`](Self::build_audit)).
///
/// Each event or record is published with a `Nats-Msg-Id`, so a republish (the relay hands a
/// batch over again after a crash or a lost acknowledgement) within `duplicate_window_secs` is
/// stored once: exactly once into the stream within the window.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct JetStreamSinkConfig {
    /// The sink's name, the key of its delivery mark (default `nats`; two NATS sinks of one
    /// list need names). Renaming a sink starts it afresh.
    #[serde(default)]
    pub name: Option<String>,
    /// Where its delivery starts when it is first configured: `now` (default for events) or
    /// `beginning` (default for the audit trail).
    #[serde(default)]
    pub deliver_from: Option<remediation_core::DeliverFrom>,
    /// The server and how to log in.
    pub connection: NatsConnectionConfig,
    /// The stream, created if missing: `REMEDIATION_EVENTS` for the event sink,
    /// `REMEDIATION_AUDIT` for the audit sink, when unset.
    #[serde(default)]
    pub stream: Option<String>,
    /// The subjects of the stream when this sink creates it: `["remediation.events.>"]` or
    /// `["remediation.audit.>"]` when unset. They must cover the tenant's subjects.
    #[serde(default)]
    pub subjects: Option<Vec<String>>,
    /// The tenant, one token of the subject (`[A-Za-z0-9_-]+`; default `default`).
    #[serde(default = "default_tenant")]
    pub tenant: String,
    /// When the stream drops messages (default `limits`).
    #[serde(default)]
    pub retention: Retention,
    /// The stream's age limit in seconds; 0 (the default) keeps messages without an age limit
    /// (the retention policy and the server's limits still apply). At least the duplicate
    /// window when set.
    #[serde(default)]
    pub max_age_secs: u64,
    /// How long JetStream remembers a `Nats-Msg-Id`, in seconds (default and minimum 600):
    /// the longest outage after which a republished event is still stored only once.
    #[serde(default = "default_duplicate_window_secs")]
    pub duplicate_window_secs: u64,
    /// Replicas of the stream when this sink creates it (default 1; 3 in a cluster).
    #[serde(default = "default_replicas")]
    pub replicas: usize,
}

const SINK: &str = "JetStream sink";

fn invalid(context: &'static str, field: &'static str, why: String) -> NatsError {
    NatsError::InvalidSetting { context, field, why }
}

impl JetStreamSinkConfig {
    /// A sink of `tenant` to `url`, with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            name: None,
            deliver_from: None,
            connection: NatsConnectionConfig::new(url),
            stream: None,
            subjects: None,
            tenant: default_tenant(),
            retention: Retention::default(),
            max_age_secs: 0,
            duplicate_window_secs: default_duplicate_window_secs(),
            replicas: default_replicas(),
        }
    }

    /// Builds the event sink, reading secrets from the process environment or their files.
    /// Does not connect: a server that is down makes deliveries fail transiently, not this.
    pub fn build_events(&self) -> Result<JetStreamEventSink, NatsError> {
        self.build_events_with_env(&secret::process_env)
    }

    /// Like [`build_events`](Self::build_events), with `env` standing in for the process
    /// environment.
    pub fn build_events_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<JetStreamEventSink, NatsError> {
        let spec = self.stream_spec(DEFAULT_EVENTS_STREAM, EVENTS_SUBJECT_PREFIX)?;
        // Every event type lands under `remediation.events.<tenant>.`.
        let pattern = format!("{EVENTS_SUBJECT_PREFIX}.{}.>", self.tenant);
        self.check_covered(&spec, &pattern)?;
        let connector = self.connection.build_with_env(env)?;
        Ok(JetStreamEventSink::new(Publisher::new(connector, spec, "remediation-events"), self.tenant.clone()))
    }

    /// Builds the audit sink, reading secrets from the process environment or their files.
    /// Does not connect.
    pub fn build_audit(&self) -> Result<JetStreamAuditSink, NatsError> {
        self.build_audit_with_env(&secret::process_env)
    }

    /// Like [`build_audit`](Self::build_audit), with `env` standing in for the process
    /// environment.
    pub fn build_audit_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<JetStreamAuditSink, NatsError> {
        let spec = self.stream_spec(DEFAULT_AUDIT_STREAM, AUDIT_SUBJECT_PREFIX)?;
        self.check_covered(&spec, &audit_subject(&self.tenant))?;
        let connector = self.connection.build_with_env(env)?;
        Ok(JetStreamAuditSink::new(Publisher::new(connector, spec, "remediation-audit"), self.tenant.clone()))
    }

    fn stream_spec(&self, default_stream: &str, prefix: &str) -> Result<StreamSpec, NatsError> {
        if !is_valid_tenant(&self.tenant) {
            return Err(invalid(
                SINK,
                "tenant",
                format!("is `{}`; it must be one subject token of letters, digits, `_` and `-`", self.tenant),
            ));
        }
        if self.duplicate_window_secs < MIN_DUPLICATE_WINDOW_SECS {
            return Err(invalid(
                SINK,
                "duplicate_window_secs",
                format!(
                    "is {}; it must be at least {MIN_DUPLICATE_WINDOW_SECS}: it is the longest outage after which a \
                     republished message is still recognised as a duplicate",
                    self.duplicate_window_secs
                ),
            ));
        }
        if self.max_age_secs != 0 && self.max_age_secs < self.duplicate_window_secs {
            return Err(invalid(
                SINK,
                "max_age_secs",
                format!(
                    "is {}; it must be 0 (no age limit) or at least `duplicate_window_secs` ({})",
                    self.max_age_secs, self.duplicate_window_secs
                ),
            ));
        }
        if self.replicas == 0 || self.replicas > 5 {
            return Err(invalid(SINK, "replicas", format!("is {}; it must be between 1 and 5", self.replicas)));
        }
        let name = self.stream.clone().unwrap_or_else(|| default_stream.to_owned());
        let subjects = self.subjects.clone().unwrap_or_else(|| vec![format!("{prefix}.>")]);
        check_stream(SINK, "stream", &name, "subjects", &subjects)?;
        Ok(StreamSpec {
            name,
            subjects,
            retention: self.retention,
            max_age: Duration::from_secs(self.max_age_secs),
            duplicate_window: Duration::from_secs(self.duplicate_window_secs),
            replicas: self.replicas,
            strict: true,
        })
    }

    fn check_covered(&self, spec: &StreamSpec, pattern: &str) -> Result<(), NatsError> {
        if spec.subjects.iter().any(|s| covers(s, pattern)) {
            return Ok(());
        }
        Err(invalid(
            SINK,
            "subjects",
            format!("are {:?}; none covers `{pattern}`, where tenant `{}` publishes", spec.subjects, self.tenant),
        ))
    }
}

fn check_stream(
    context: &'static str,
    name_field: &'static str,
    name: &str,
    subjects_field: &'static str,
    subjects: &[String],
) -> Result<(), NatsError> {
    if !is_valid_stream_name(name) {
        return Err(invalid(
            context,
            name_field,
            format!("is `{name}`; a stream name has no `.`, `*`, `>`, `/` or whitespace"),
        ));
    }
    if subjects.is_empty() {
        return Err(invalid(context, subjects_field, "is empty".to_owned()));
    }
    if let Some(bad) = subjects.iter().find(|s| !is_valid_filter(s)) {
        return Err(invalid(context, subjects_field, format!("holds `{bad}`, which is not a valid subject filter")));
    }
    Ok(())
}

fn default_findings_stream() -> String {
    DEFAULT_FINDINGS_STREAM.to_owned()
}

fn default_findings_subjects() -> Vec<String> {
    vec![format!("{FINDINGS_SUBJECT_PREFIX}.>")]
}

fn default_durable() -> String {
    DEFAULT_DURABLE.to_owned()
}

fn default_dead_letter_subject() -> String {
    DEFAULT_DEAD_LETTER_SUBJECT.to_owned()
}

fn default_dead_letter_stream() -> String {
    DEFAULT_DEAD_LETTER_STREAM.to_owned()
}

fn default_dead_letter_subjects() -> Vec<String> {
    vec![format!("{DEAD_LETTER_SUBJECT_PREFIX}.>")]
}

fn default_max_deliver() -> u32 {
    20
}

fn default_ack_wait_secs() -> u64 {
    60
}

fn default_retry_delay_secs() -> u64 {
    5
}

fn default_batch_size() -> usize {
    16
}

/// The findings consumer: a durable pull consumer on the findings stream, with a dead-letter
/// subject for what it cannot take.
///
/// Both streams are created when missing: the findings stream with work-queue retention (a
/// finding leaves it once acknowledged), the dead-letter stream with limits retention and no
/// age limit (an operator reads and purges it).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FindingsConsumerConfig {
    /// The server and how to log in.
    pub connection: NatsConnectionConfig,
    /// The findings stream (default `REMEDIATION_FINDINGS`).
    #[serde(default = "default_findings_stream")]
    pub stream: String,
    /// Its subjects, when this consumer creates it (default `["remediation.findings.>"]`).
    #[serde(default = "default_findings_subjects")]
    pub subjects: Vec<String>,
    /// The durable consumer's name (default `remediation-findings`).
    #[serde(default = "default_durable")]
    pub durable: String,
    /// Where a finding goes that is malformed, refused, or failed `max_deliver` times
    /// (default `remediation.deadletter.findings`). It must not match the findings subjects,
    /// and the dead-letter stream's subjects must cover it.
    #[serde(default = "default_dead_letter_subject")]
    pub dead_letter_subject: String,
    /// The stream that keeps dead letters (default `REMEDIATION_DEADLETTER`).
    #[serde(default = "default_dead_letter_stream")]
    pub dead_letter_stream: String,
    /// Its subjects, when this consumer creates it (default `["remediation.deadletter.>"]`).
    #[serde(default = "default_dead_letter_subjects")]
    pub dead_letter_subjects: Vec<String>,
    /// Deliveries of one finding before a transient failure sends it to the dead-letter
    /// subject (default 20).
    #[serde(default = "default_max_deliver")]
    pub max_deliver: u32,
    /// How long the server waits for an acknowledgement before it delivers a finding again, in
    /// seconds (default 60): longer than the handler ever takes.
    #[serde(default = "default_ack_wait_secs")]
    pub ack_wait_secs: u64,
    /// The delay before a finding whose handling failed transiently is delivered again, in
    /// seconds (default 5), doubled at each delivery up to 300.
    #[serde(default = "default_retry_delay_secs")]
    pub retry_delay_secs: u64,
    /// Findings fetched per pull (default 16).
    #[serde(default = "default_batch_size")]
    pub batch_size: usize,
}

const CONSUMER: &str = "findings consumer";

impl FindingsConsumerConfig {
    /// A consumer of `url` with every other setting at its default.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            connection: NatsConnectionConfig::new(url),
            stream: default_findings_stream(),
            subjects: default_findings_subjects(),
            durable: default_durable(),
            dead_letter_subject: default_dead_letter_subject(),
            dead_letter_stream: default_dead_letter_stream(),
            dead_letter_subjects: default_dead_letter_subjects(),
            max_deliver: default_max_deliver(),
            ack_wait_secs: default_ack_wait_secs(),
            retry_delay_secs: default_retry_delay_secs(),
            batch_size: default_batch_size(),
        }
    }

    /// Builds the consumer, reading secrets from the process environment or their files. Does
    /// not connect.
    pub fn build(&self) -> Result<FindingsConsumer, NatsError> {
        self.build_with_env(&secret::process_env)
    }

    /// Like [`build`](Self::build), with `env` standing in for the process environment.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<FindingsConsumer, NatsError> {
        check_stream(CONSUMER, "stream", &self.stream, "subjects", &self.subjects)?;
        check_stream(
            CONSUMER,
            "dead_letter_stream",
            &self.dead_letter_stream,
            "dead_letter_subjects",
            &self.dead_letter_subjects,
        )?;
        if self.stream == self.dead_letter_stream {
            return Err(invalid(CONSUMER, "dead_letter_stream", "must not be the findings stream".to_owned()));
        }
        if !is_valid_stream_name(&self.durable) {
            return Err(invalid(
                CONSUMER,
                "durable",
                format!("is `{}`; it is not a valid consumer name", self.durable),
            ));
        }
        let dl = &self.dead_letter_subject;
        if !is_literal_subject(dl) {
            return Err(invalid(
                CONSUMER,
                "dead_letter_subject",
                format!("is `{dl}`; it must be a subject without wildcards"),
            ));
        }
        if let Some(s) = self.subjects.iter().find(|s| overlaps(s, dl)) {
            return Err(invalid(
                CONSUMER,
                "dead_letter_subject",
                format!("is `{dl}`, which the findings subject `{s}` matches: dead letters would be consumed again"),
            ));
        }
        if let Some(s) = self.dead_letter_subjects.iter().find(|d| self.subjects.iter().any(|s| overlaps(s, d))) {
            return Err(invalid(
                CONSUMER,
                "dead_letter_subjects",
                format!("hold `{s}`, which overlaps the findings subjects {:?}", self.subjects),
            ));
        }
        if !self.dead_letter_subjects.iter().any(|d| covers(d, dl)) {
            return Err(invalid(
                CONSUMER,
                "dead_letter_subject",
                format!(
                    "is `{dl}`, which the dead-letter stream's subjects {:?} do not cover: dead letters would not be kept",
                    self.dead_letter_subjects
                ),
            ));
        }
        if self.max_deliver == 0 {
            return Err(invalid(CONSUMER, "max_deliver", "must be at least 1".to_owned()));
        }
        if self.ack_wait_secs == 0 || self.ack_wait_secs > 3600 {
            return Err(invalid(
                CONSUMER,
                "ack_wait_secs",
                format!("is {}; it must be between 1 and 3600", self.ack_wait_secs),
            ));
        }
        if self.retry_delay_secs > 300 {
            return Err(invalid(
                CONSUMER,
                "retry_delay_secs",
                format!("is {}; it must be at most 300", self.retry_delay_secs),
            ));
        }
        if self.batch_size == 0 || self.batch_size > 1000 {
            return Err(invalid(
                CONSUMER,
                "batch_size",
                format!("is {}; it must be between 1 and 1000", self.batch_size),
            ));
        }
        let window = Duration::from_secs(MIN_DUPLICATE_WINDOW_SECS);
        let findings = StreamSpec {
            name: self.stream.clone(),
            subjects: self.subjects.clone(),
            retention: Retention::Workqueue,
            max_age: Duration::ZERO,
            duplicate_window: window,
            replicas: 1,
            strict: false,
        };
        let dead_letters = StreamSpec {
            name: self.dead_letter_stream.clone(),
            subjects: self.dead_letter_subjects.clone(),
            retention: Retention::Limits,
            max_age: Duration::ZERO,
            duplicate_window: window,
            replicas: 1,
            strict: false,
        };
        let connector = self.connection.build_with_env(env)?;
        Ok(FindingsConsumer::new(
            connector,
            ConsumerSpec {
                findings,
                dead_letters,
                durable: self.durable.clone(),
                dead_letter_subject: self.dead_letter_subject.clone(),
                max_deliver: self.max_deliver,
                ack_wait: Duration::from_secs(self.ack_wait_secs),
                retry_delay: Duration::from_secs(self.retry_delay_secs),
                batch_size: self.batch_size,
            },
        ))
    }
}
