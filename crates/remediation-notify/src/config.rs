//! Configuration of event sinks and notifiers, as read from the config file, and building the
//! real objects from it (reading secrets from the environment or files).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use remediation_audit::{AuditSink, JsonlFileSink};
use remediation_core::{DeliverFrom, EventSink};
use reqwest::Url;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::error::NotifyError;
use crate::http::RetryPolicy;
use crate::notifier::{Notifier, NotifierOptions, check_url};
use crate::secret::{self, EnvLookup};
use crate::sinks::{LogSink, WebhookAuditSink, WebhookSink};

fn default_timeout_secs() -> u64 {
    10
}

fn default_max_attempts() -> u32 {
    3
}

/// One place engine events go.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum EventSinkConfig {
    /// One structured log line per event (target `remediation::events`).
    Log(LogSinkConfig),
    /// A signed HTTP POST of each event's JSON.
    Webhook(WebhookSinkConfig),
    /// A JetStream stream: each event on `remediation.events.<tenant>.<type>`, exactly once
    /// within the stream's duplicate window.
    #[cfg(feature = "nats")]
    Nats(Box<remediation_nats::JetStreamSinkConfig>),
}

/// The log sink.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogSinkConfig {
    /// The sink's name, the key of its delivery mark (default `log`).
    #[serde(default)]
    pub name: Option<String>,
    /// Also write the whole CloudEvents envelope, `data` and its free text (comments, reasons)
    /// included, as the field `cloudevent` (default false: structured fields only).
    #[serde(default)]
    pub envelope: bool,
}

/// A signed webhook (of events, or of the audit trail). Exactly one of `secret_env` and
/// `secret_file` names the signing secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookSinkConfig {
    /// The sink's name, the key of its delivery mark (default `webhook`; two webhooks need
    /// names). Renaming a sink starts it afresh.
    #[serde(default)]
    pub name: Option<String>,
    /// Where its delivery starts when it is first configured: `now` (default for events) or
    /// `beginning` (default for the audit trail: every record still in the log).
    #[serde(default)]
    pub deliver_from: Option<DeliverFrom>,
    /// Where to POST (`http` or `https`).
    pub url: String,
    /// Environment variable holding the signing secret.
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (surrounding whitespace is ignored).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Limit on each attempt, in seconds (default 10).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts in all for a transient failure (connection error, timeout, 5xx, 429), default 3.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
}

/// One place the audit trail goes, record by record as it is sequenced.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum AuditSinkConfig {
    /// A JSON Lines file rotating by size, for log shippers.
    File(FileSinkConfig),
    /// A signed HTTP POST of each batch of records (a JSON array).
    Webhook(WebhookSinkConfig),
    /// A JetStream stream: each record on `remediation.audit.<tenant>`, exactly once within
    /// the stream's duplicate window.
    #[cfg(feature = "nats")]
    Nats(Box<remediation_nats::JetStreamSinkConfig>),
}

/// A JSON Lines file that rotates by size ([`JsonlFileSink`]).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileSinkConfig {
    /// The sink's name, the key of its delivery mark (default `file`).
    #[serde(default)]
    pub name: Option<String>,
    /// Where its delivery starts when it is first configured (default `beginning`).
    #[serde(default)]
    pub deliver_from: Option<DeliverFrom>,
    /// The file (relative paths are relative to the data directory).
    pub path: PathBuf,
    /// Size at which it is rotated to `<path>.1`, in bytes (default 100 MiB).
    #[serde(default = "default_max_bytes")]
    pub max_bytes: u64,
    /// Rotated files kept (default 10).
    #[serde(default = "default_keep")]
    pub keep: u32,
}

fn default_max_bytes() -> u64 {
    100 * 1024 * 1024
}

fn default_keep() -> u32 {
    10
}

impl EventSinkConfig {
    /// The sink's name: the configured one, else its type (`log`, `webhook`).
    pub fn name(&self) -> &str {
        match self {
            Self::Log(c) => c.name.as_deref().unwrap_or("log"),
            Self::Webhook(c) => c.name.as_deref().unwrap_or("webhook"),
            #[cfg(feature = "nats")]
            Self::Nats(c) => c.name.as_deref().unwrap_or("nats"),
        }
    }

    /// Where its delivery starts when it is first configured (default `now`).
    pub fn deliver_from(&self) -> DeliverFrom {
        match self {
            Self::Log(_) => DeliverFrom::Now,
            Self::Webhook(c) => c.deliver_from.unwrap_or(DeliverFrom::Now),
            #[cfg(feature = "nats")]
            Self::Nats(c) => c.deliver_from.unwrap_or(DeliverFrom::Now),
        }
    }

    /// Builds the sink, reading its secret from the process environment or its file.
    pub fn build(&self) -> Result<Arc<dyn EventSink>, NotifyError> {
        self.build_with_env(&secret::process_env)
    }

    /// Like [`build`](Self::build), with `env` standing in for the process environment.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Arc<dyn EventSink>, NotifyError> {
        Ok(match self {
            Self::Log(c) if c.envelope => Arc::new(LogSink::new().with_envelope()),
            Self::Log(_) => Arc::new(LogSink::new()),
            Self::Webhook(c) => Arc::new(c.build_with_env(env)?),
            #[cfg(feature = "nats")]
            Self::Nats(c) => Arc::new(c.build_events_with_env(env).map_err(|e| NotifyError::Nats(Box::new(e)))?),
        })
    }
}

impl AuditSinkConfig {
    /// The sink's name: the configured one, else its type (`file`, `webhook`).
    pub fn name(&self) -> &str {
        match self {
            Self::File(c) => c.name.as_deref().unwrap_or("file"),
            Self::Webhook(c) => c.name.as_deref().unwrap_or("webhook"),
            #[cfg(feature = "nats")]
            Self::Nats(c) => c.name.as_deref().unwrap_or("nats"),
        }
    }

    /// Where its delivery starts when it is first configured (default `beginning`).
    pub fn deliver_from(&self) -> DeliverFrom {
        match self {
            Self::File(c) => c.deliver_from,
            Self::Webhook(c) => c.deliver_from,
            #[cfg(feature = "nats")]
            Self::Nats(c) => c.deliver_from,
        }
        .unwrap_or(DeliverFrom::Beginning)
    }

    /// Builds the sink, reading its secret from the process environment or its file; a
    /// relative file path is taken from `data_dir`.
    pub fn build(&self, data_dir: &std::path::Path) -> Result<Arc<dyn AuditSink>, NotifyError> {
        self.build_with_env(data_dir, &secret::process_env)
    }

    /// Like [`build`](Self::build), with `env` standing in for the process environment.
    pub fn build_with_env(
        &self,
        data_dir: &std::path::Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Arc<dyn AuditSink>, NotifyError> {
        Ok(match self {
            Self::File(c) => {
                if c.max_bytes < 4096 {
                    return Err(NotifyError::InvalidSetting {
                        context: format!("audit file sink `{}`", self.name()),
                        field: "max_bytes",
                        why: format!("is {}; it must be at least 4096", c.max_bytes),
                    });
                }
                Arc::new(JsonlFileSink::new(data_dir.join(&c.path), c.max_bytes, c.keep))
            }
            Self::Webhook(c) => Arc::new(WebhookAuditSink::new(c.build_with_env(env)?)),
            #[cfg(feature = "nats")]
            Self::Nats(c) => Arc::new(c.build_audit_with_env(env).map_err(|e| NotifyError::Nats(Box::new(e)))?),
        })
    }
}

impl WebhookSinkConfig {
    /// Builds the sink, reading its secret with `env` or from its file.
    pub fn build_with_env(&self, env: EnvLookup<'_>) -> Result<WebhookSink, NotifyError> {
        let context = "webhook sink";
        check_url(context, "`url`", &self.url)?;
        let url = Url::parse(&self.url).map_err(|e| NotifyError::InvalidUrl {
            context: context.to_owned(),
            origin: "`url`".to_owned(),
            reason: e.to_string(),
        })?;
        let secret = secret::read(
            context,
            ("secret_env", self.secret_env.as_deref()),
            ("secret_file", self.secret_file.as_deref()),
            env,
        )?
        .ok_or(NotifyError::ExactlyOne { context: context.to_owned(), options: "`secret_env`, `secret_file`" })?;
        let timeout = timeout(context, self.timeout_secs)?;
        let retry = retry(context, self.max_attempts)?;
        Ok(WebhookSink::new(url, secret, timeout)?.with_retry(retry))
    }
}

/// Where a notifier delivers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifierKind {
    /// A Slack incoming webhook (`{"text", "blocks"}`, answer `ok`).
    Slack,
    /// A generic webhook receiving signed JSON `{action, target, reason, idempotency_key, text}`.
    Webhook,
}

/// A connector for the `notify` action kind.
///
/// The URL comes from exactly one of `url_env`, `url_file` and (for `webhook` only) `url`: a
/// Slack webhook URL is a credential and is never written in the config itself. A `webhook`
/// notifier also needs exactly one of `secret_env` and `secret_file` (its signing secret).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifierConfig {
    /// Connector identifier, as actions name it (`slack-secops`).
    pub id: String,
    /// Where it delivers.
    pub kind: NotifierKind,
    /// The URL itself (`webhook` only).
    #[serde(default)]
    pub url: Option<String>,
    /// Environment variable holding the URL.
    #[serde(default)]
    pub url_env: Option<String>,
    /// File holding the URL (surrounding whitespace is ignored).
    #[serde(default)]
    pub url_file: Option<PathBuf>,
    /// Environment variable holding the signing secret (`webhook` only).
    #[serde(default)]
    pub secret_env: Option<String>,
    /// File holding the signing secret (`webhook` only).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    /// Limit on each attempt, in seconds (default 10).
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
    /// Attempts in all for a connection error, timeout or 5xx (default 3). A 429 is not retried
    /// by the notifier: it is reported as throttled.
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Folder for the record of delivered notifications (`notifier-<id>.json`), so that a
    /// restart does not send one again. Without it the record is kept in memory only.
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
}

impl NotifierConfig {
    /// Builds the notifier, reading its secrets from the process environment or their files.
    pub fn build(&self) -> Result<Notifier, NotifyError> {
        self.build_with_env(&secret::process_env)
    }

    /// Like [`build`](Self::build), with `env` standing in for the process environment.
    pub fn build_with_env(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Notifier, NotifyError> {
        let context = format!("notifier `{}`", self.id);
        if self.id.trim().is_empty() {
            return Err(NotifyError::InvalidSetting { context, field: "id", why: "must not be empty".to_owned() });
        }
        let options = NotifierOptions {
            timeout: timeout(&context, self.timeout_secs)?,
            retry: retry(&context, self.max_attempts)?,
            state_dir: self.state_dir.clone(),
        };
        let from_secret_source =
            secret::read(&context, ("url_env", self.url_env.as_deref()), ("url_file", self.url_file.as_deref()), env)?;
        let origin = secret::origin(self.url_env.as_deref(), self.url_file.as_deref());
        match self.kind {
            NotifierKind::Slack => {
                if self.url.is_some() {
                    return Err(NotifyError::FieldNotAllowed {
                        context,
                        field: "url",
                        why: "is refused for Slack: the webhook URL is a secret; use `url_env` or `url_file`",
                    });
                }
                for (field, set) in
                    [("secret_env", self.secret_env.is_some()), ("secret_file", self.secret_file.is_some())]
                {
                    if set {
                        return Err(NotifyError::FieldNotAllowed {
                            context,
                            field,
                            why: "is not used by Slack notifiers (the URL is the credential)",
                        });
                    }
                }
                let url = from_secret_source
                    .ok_or(NotifyError::ExactlyOne { context: context.clone(), options: "`url_env`, `url_file`" })?;
                check_url(&context, &origin, secrecy::ExposeSecret::expose_secret(&url))?;
                Notifier::slack(self.id.clone(), url, options)
            }
            NotifierKind::Webhook => {
                let url = match (&self.url, from_secret_source) {
                    (Some(plain), None) => plain.clone(),
                    (None, Some(secret)) => secrecy::ExposeSecret::expose_secret(&secret).to_owned(),
                    _ => {
                        return Err(NotifyError::ExactlyOne { context, options: "`url`, `url_env`, `url_file`" });
                    }
                };
                let origin = if self.url.is_some() { "`url`".to_owned() } else { origin };
                check_url(&context, &origin, &url)?;
                let url = Url::parse(&url).map_err(|e| NotifyError::InvalidUrl {
                    context: context.clone(),
                    origin,
                    reason: e.to_string(),
                })?;
                let secret = secret::read(
                    &context,
                    ("secret_env", self.secret_env.as_deref()),
                    ("secret_file", self.secret_file.as_deref()),
                    env,
                )?
                .ok_or(NotifyError::ExactlyOne { context: context.clone(), options: "`secret_env`, `secret_file`" })?;
                Notifier::webhook(self.id.clone(), url, secret, options)
            }
        }
    }
}

fn timeout(context: &str, secs: u64) -> Result<Duration, NotifyError> {
    if secs == 0 || secs > 300 {
        return Err(NotifyError::InvalidSetting {
            context: context.to_owned(),
            field: "timeout_secs",
            why: format!("is {secs}; it must be between 1 and 300"),
        });
    }
    Ok(Duration::from_secs(secs))
}

fn retry(context: &str, attempts: u32) -> Result<RetryPolicy, NotifyError> {
    if attempts == 0 || attempts > 10 {
        return Err(NotifyError::InvalidSetting {
            context: context.to_owned(),
            field: "max_attempts",
            why: format!("is {attempts}; it must be between 1 and 10"),
        });
    }
    Ok(RetryPolicy { max_attempts: attempts, ..RetryPolicy::default() })
}
