//! The JetStream streams this crate writes to: what each should be, creating one that is
//! missing, and refusing (with the difference named) one that exists with another
//! configuration. An existing stream is never changed.

use std::time::Duration;

use async_nats::jetstream::{self, ErrorCode, stream::RetentionPolicy};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::NatsError;

/// The shortest duplicate window accepted, in seconds: a republish after an outage up to this
/// long is still recognised as a duplicate.
pub const MIN_DUPLICATE_WINDOW_SECS: u64 = 600;

/// When JetStream removes a message from a stream (besides `max_age`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Retention {
    /// Kept until `max_age` (or the server's limits) removes it; any number of consumers
    /// read it.
    #[default]
    Limits,
    /// Kept while a consumer has not acknowledged it; with no consumer, dropped at once (the
    /// duplicate window still applies).
    Interest,
    /// Removed once one consumer acknowledges it (a work queue: one consumer per subject).
    Workqueue,
}

impl Retention {
    fn policy(self) -> RetentionPolicy {
        match self {
            Retention::Limits => RetentionPolicy::Limits,
            Retention::Interest => RetentionPolicy::Interest,
            Retention::Workqueue => RetentionPolicy::WorkQueue,
        }
    }
}

fn retention_name(policy: RetentionPolicy) -> &'static str {
    match policy {
        RetentionPolicy::Limits => "limits",
        RetentionPolicy::Interest => "interest",
        RetentionPolicy::WorkQueue => "workqueue",
    }
}

/// What a stream must be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StreamSpec {
    pub(crate) name: String,
    pub(crate) subjects: Vec<String>,
    pub(crate) retention: Retention,
    /// Zero: no age limit.
    pub(crate) max_age: Duration,
    pub(crate) duplicate_window: Duration,
    pub(crate) replicas: usize,
    /// Whether an existing stream must match in retention, duplicate window and max age too,
    /// not only in subjects.
    pub(crate) strict: bool,
}

fn secs(d: Duration) -> String {
    if d.is_zero() { "none (0)".to_owned() } else { format!("{}s", d.as_secs()) }
}

/// Whether `name` can name a stream: not empty, no `.`, `*`, `>`, whitespace or path
/// separator.
pub(crate) fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.chars().any(|c| matches!(c, '.' | '*' | '>' | '/' | '\\') || c.is_whitespace() || c.is_control())
}

impl StreamSpec {
    fn config(&self) -> jetstream::stream::Config {
        jetstream::stream::Config {
            name: self.name.clone(),
            subjects: self.subjects.clone(),
            retention: self.retention.policy(),
            max_age: self.max_age,
            duplicate_window: self.duplicate_window,
            num_replicas: self.replicas,
            storage: jetstream::stream::StorageType::File,
            ..Default::default()
        }
    }

    /// The first difference between the stream as it is and as configured.
    fn mismatch(&self, actual: &jetstream::stream::Config) -> Option<NatsError> {
        let differ = |field, actual: String, expected: String| {
            Some(NatsError::StreamMismatch { stream: self.name.clone(), field, actual, expected })
        };
        let mut have = actual.subjects.clone();
        let mut want = self.subjects.clone();
        have.sort();
        want.sort();
        if have != want {
            return differ("subjects", format!("{have:?}"), format!("{want:?}"));
        }
        if !self.strict {
            return None;
        }
        if actual.retention != self.retention.policy() {
            return differ(
                "retention",
                retention_name(actual.retention).to_owned(),
                retention_name(self.retention.policy()).to_owned(),
            );
        }
        if actual.duplicate_window != self.duplicate_window {
            return differ("duplicate window", secs(actual.duplicate_window), secs(self.duplicate_window));
        }
        if actual.max_age != self.max_age {
            return differ("max age", secs(actual.max_age), secs(self.max_age));
        }
        None
    }

    /// Creates the stream if it is missing; checks it if it exists.
    pub(crate) async fn ensure(&self, js: &jetstream::Context) -> Result<(), NatsError> {
        let api = |what: &str, reason: String| NatsError::JetStream { what: format!("{what} `{}`", self.name), reason };
        match js.get_stream(&self.name).await {
            Ok(mut stream) => {
                let info = stream.info().await.map_err(|e| api("read stream", e.to_string()))?;
                self.mismatch(&info.config).map_or(Ok(()), Err)
            }
            Err(e) => match e.kind() {
                jetstream::context::GetStreamErrorKind::JetStream(j)
                    if j.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    match js.create_stream(self.config()).await {
                        Ok(_) => {
                            tracing::info!(stream = %self.name, subjects = ?self.subjects, "created JetStream stream");
                            Ok(())
                        }
                        Err(e) => {
                            if let jetstream::context::CreateStreamErrorKind::JetStream(j) = e.kind() {
                                if j.error_code() == ErrorCode::STREAM_NAME_EXIST {
                                    // Someone else created it meanwhile: check theirs.
                                    return Box::pin(self.ensure(js)).await;
                                }
                                if j.error_code() == ErrorCode::STREAM_SUBJECT_OVERLAP {
                                    return Err(api(
                                        "create stream",
                                        format!(
                                            "another stream already takes some of the subjects {:?}: {e}",
                                            self.subjects
                                        ),
                                    ));
                                }
                            }
                            Err(api("create stream", e.to_string()))
                        }
                    }
                }
                _ => Err(api("look up stream", explain_api_error(&e.to_string()))),
            },
        }
    }
}

/// A JetStream API error, with a hint when the reason is that nothing answered.
pub(crate) fn explain_api_error(text: &str) -> String {
    if text.contains("no responders") || text.contains("does not exist") {
        format!("{text} (is JetStream enabled on the server, `nats-server -js`?)")
    } else {
        text.to_owned()
    }
}
