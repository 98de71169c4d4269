//! [`Notifier`]: the connector that carries out `notify` actions by posting to a Slack incoming
//! webhook or to a signed generic webhook.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::{
    Action, Capability, Clock, Connector, ConnectorError, ConnectorErrorKind, Health, KindName, Outcome, OutcomeStatus,
    PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, SystemClock, Target, Verification,
    find_capability,
};
use reqwest::{StatusCode, Url};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::error::NotifyError;
use crate::http::{self, RetryPolicy};
use crate::ledger::{DeliveredNotification, Ledger};
use crate::message;
use crate::signature::{EVENT_ID_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER, sign};

/// The grant type of a `notify` target: the notification is about `identity` (and `resource`,
/// `grant` when given).
pub const NOTIFICATION: &str = "notification";

/// Where a notifier delivers.
enum Channel {
    /// A Slack incoming webhook; its URL is the credential.
    Slack { url: SecretString },
    /// A generic webhook, signed like the event webhook.
    Webhook { url: Url, secret: SecretString },
}

/// Settings shared by both channels.
#[derive(Debug, Clone)]
pub struct NotifierOptions {
    /// Limit on each HTTP attempt.
    pub timeout: Duration,
    /// Retries of connection errors, timeouts and 5xx answers. A 429 is not retried here: it
    /// becomes [`ConnectorErrorKind::Throttled`] for the engine to handle.
    pub retry: RetryPolicy,
    /// Folder for the delivery record (`notifier-<id>.json`); `None` keeps it in memory only,
    /// so a restart may send a notification again.
    pub state_dir: Option<PathBuf>,
}

impl Default for NotifierOptions {
    /// 10 s per attempt, the default retry policy, no state directory.
    fn default() -> Self {
        Self { timeout: Duration::from_secs(10), retry: RetryPolicy::default(), state_dir: None }
    }
}

/// A connector that delivers `notify` actions. See the crate docs for its capability, its
/// snapshot and the messages it sends.
pub struct Notifier {
    id: String,
    channel: Channel,
    client: reqwest::Client,
    retry: RetryPolicy,
    clock: Arc<dyn Clock>,
    // Held across check, delivery and record, so two executions of one action cannot both
    // send; snapshots do not wait for it.
    sending: tokio::sync::Mutex<()>,
    ledger: Mutex<Ledger>,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let channel = match &self.channel {
            Channel::Slack { .. } => "slack",
            Channel::Webhook { .. } => "webhook",
        };
        f.debug_struct("Notifier").field("id", &self.id).field("channel", &channel).finish_non_exhaustive()
    }
}

impl Notifier {
    /// A notifier posting to the Slack incoming webhook `url`.
    pub fn slack(id: impl Into<String>, url: SecretString, options: NotifierOptions) -> Result<Self, NotifyError> {
        let id = id.into();
        check_url(&format!("notifier `{id}`"), "the Slack webhook URL", url.expose_secret())?;
        Self::build(id, Channel::Slack { url }, options)
    }

    /// A notifier posting signed JSON to `url`.
    pub fn webhook(
        id: impl Into<String>,
        url: Url,
        secret: SecretString,
        options: NotifierOptions,
    ) -> Result<Self, NotifyError> {
        let id = id.into();
        check_url(&format!("notifier `{id}`"), "`url`", url.as_str())?;
        Self::build(id, Channel::Webhook { url, secret }, options)
    }

    fn build(id: String, channel: Channel, options: NotifierOptions) -> Result<Self, NotifyError> {
        let ledger = match &options.state_dir {
            Some(dir) => Ledger::open(dir.join(format!("notifier-{}.json", file_safe(&id))))?,
            None => Ledger::in_memory(),
        };
        Ok(Self {
            id,
            channel,
            client: http::client(options.timeout)?,
            retry: options.retry,
            clock: Arc::new(SystemClock),
            sending: tokio::sync::Mutex::new(()),
            ledger: Mutex::new(ledger),
        })
    }

    /// Uses `clock` for signing timestamps and delivery times (the system clock by default).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Every notification delivered, oldest first, including those recorded before a restart.
    pub fn delivered(&self) -> Vec<DeliveredNotification> {
        self.ledger().entries().to_vec()
    }

    fn ledger(&self) -> MutexGuard<'_, Ledger> {
        // The ledger is only pushed to; a panic elsewhere leaves it consistent.
        self.ledger.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn capability(&self, action: &Action) -> Result<Capability, ConnectorError> {
        find_capability(&self.capabilities(), action.kind.name(), &action.target).ok_or_else(|| {
            ConnectorError::unsupported(format!(
                "notifier `{}` can only notify about a `{NOTIFICATION}` target, not {} a `{}` grant",
                self.id,
                action.kind.name(),
                action.target.grant_type
            ))
        })
    }

    async fn state(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        check_target(target)?;
        let count = self.ledger().count(target);
        Ok(Snapshot::new(state_value(target, count)))
    }

    /// Sends the notification once and maps the answer.
    async fn send(&self, action: &Action) -> Result<Option<String>, ConnectorError> {
        let result = match &self.channel {
            Channel::Slack { url } => {
                // Parsed per request so that no `Url` (whose Debug shows the token) is kept.
                let url = Url::parse(url.expose_secret())
                    .map_err(|_| ConnectorError::permanent("the Slack webhook URL is not a valid URL"))?;
                let body = message::slack(action).to_string();
                http::send(self.retry, false, || {
                    self.client
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(body.clone())
                })
                .await
            }
            Channel::Webhook { url, secret } => {
                let body = message::webhook(action).to_string().into_bytes();
                http::send(self.retry, false, || {
                    let timestamp = self.clock.now().unix_timestamp();
                    self.client
                        .post(url.clone())
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .header(TIMESTAMP_HEADER, timestamp.to_string())
                        .header(SIGNATURE_HEADER, sign(secret, timestamp, &body))
                        .header(EVENT_ID_HEADER, action.idempotency_key.as_str())
                        .body(body.clone())
                })
                .await
            }
        };
        let mut answer = result.map_err(|no| {
            ConnectorError::new(
                ConnectorErrorKind::Transient,
                format!("notifier `{}`: no answer after {} attempt(s): {}", self.id, no.attempts, no.message),
            )
        })?;
        if let Channel::Slack { url } = &self.channel {
            // A proxy or an error page may echo the request line; the path is the credential.
            answer.body = redact(&answer.body, url.expose_secret());
        }
        let slack = matches!(self.channel, Channel::Slack { .. });
        let kind = match answer.status {
            s if s.is_success() => {
                // Slack answers a plain `ok`; anything else is not a delivery.
                if slack && answer.body != "ok" { Some(ConnectorErrorKind::Permanent) } else { None }
            }
            StatusCode::TOO_MANY_REQUESTS => Some(ConnectorErrorKind::Throttled { retry_after: answer.retry_after }),
            StatusCode::UNAUTHORIZED => Some(ConnectorErrorKind::Unauthenticated),
            // Slack: `invalid_token`, `action_prohibited`.
            StatusCode::FORBIDDEN => Some(ConnectorErrorKind::Forbidden),
            // Slack: `no_service` (webhook disabled or removed), `channel_not_found`.
            StatusCode::NOT_FOUND => Some(ConnectorErrorKind::NotFound),
            // Slack: `channel_is_archived`; retrying will not bring it back.
            StatusCode::GONE => Some(ConnectorErrorKind::Permanent),
            StatusCode::CONFLICT => Some(ConnectorErrorKind::Conflict),
            s if s.is_server_error() => Some(ConnectorErrorKind::Transient),
            // Slack 400: `invalid_payload`, `no_text`, `too_many_attachments`, ...
            _ => Some(ConnectorErrorKind::Permanent),
        };
        match kind {
            None => Ok(answer.request_id),
            Some(kind) => {
                let said = if answer.body.is_empty() {
                    "no body".to_owned()
                } else {
                    // Cut only after redaction, so no part of a credential survives a cut.
                    format!("`{}`", http::cut(&answer.body, 300))
                };
                let mut error = ConnectorError::new(
                    kind,
                    format!(
                        "notifier `{}`: the receiver answered {} ({said}) after {} attempt(s)",
                        self.id,
                        answer.status.as_u16(),
                        answer.attempts
                    ),
                );
                if let Some(id) = answer.request_id {
                    error = error.with_request_id(id);
                }
                Err(error)
            }
        }
    }
}

/// `body` with the secret URL, and its path, replaced by `[redacted]`.
fn redact(body: &str, url: &str) -> String {
    let mut body = body.replace(url, "[redacted]");
    if let Ok(parsed) = Url::parse(url) {
        let path = parsed.path();
        if path.len() > 1 {
            body = body.replace(path, "[redacted]");
            // The token alone, too (the last segment of `/services/T../B../token`).
            if let Some(last) = path.rsplit('/').next().filter(|s| s.len() >= 8) {
                body = body.replace(last, "[redacted]");
            }
        }
    }
    body
}

/// The snapshot state of a notification target: the target and the count of notifications
/// delivered about it, so that a `notify` plan is not a no-op and `verify` can read it back.
fn state_value(target: &Target, count: usize) -> serde_json::Value {
    json!({
        "identity": target.identity,
        "resource": target.resource,
        "grant": target.grant,
        "notifications": count,
    })
}

fn check_target(target: &Target) -> Result<(), ConnectorError> {
    if target.grant_type != NOTIFICATION {
        return Err(ConnectorError::unsupported(format!(
            "a notifier only knows `{NOTIFICATION}` targets, not `{}`",
            target.grant_type
        )));
    }
    if target.identity.trim().is_empty() {
        return Err(ConnectorError::permanent("a notification target needs an identity"));
    }
    Ok(())
}

pub(crate) fn check_url(context: &str, origin: &str, url: &str) -> Result<(), NotifyError> {
    let invalid =
        |reason: String| NotifyError::InvalidUrl { context: context.to_owned(), origin: origin.to_owned(), reason };
    // The parse error names what is wrong without quoting the input.
    let parsed = Url::parse(url).map_err(|e| invalid(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(invalid("the scheme is not http or https".to_owned()));
    }
    if parsed.host_str().is_none() {
        return Err(invalid("there is no host".to_owned()));
    }
    Ok(())
}

/// `id` with every character but ASCII letters, digits, `-` and `_` replaced by `_`.
fn file_safe(id: &str) -> String {
    id.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// Every (kind, grant type) a notifier supports: `notify` on a `notification`.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    // A message cannot be unsent, and nothing in a provider records it: not observable.
    vec![Capability {
        kind: KindName::Notify,
        grant_type: NOTIFICATION.to_owned(),
        reversibility: Reversibility::Irreversible,
        observable: false,
    }]
}

/// The one call a notifier makes: the receiver's URL (Slack) or its shared secret (signed
/// webhook) is the whole credential, and only a delivery shows whether it is accepted.
const PERMISSION_MAP: &[PermissionNeed] = &[PermissionNeed::execute(
    KindName::Notify,
    NOTIFICATION,
    "POST {webhook url}",
    "a webhook URL (or signing secret) the receiver accepts",
)];

#[async_trait]
impl Connector for Notifier {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let (what, detail) = match &self.channel {
            Channel::Slack { .. } => ("Slack incoming webhook", String::new()),
            Channel::Webhook { url, .. } => ("signed webhook", format!(" at {}", url.host_str().unwrap_or("?"))),
        };
        Ok(Health {
            healthy: true,
            detail: format!(
                "notifier `{}`: {what}{detail} configured; not probed, since a probe would post a message",
                self.id
            ),
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        Ok(Permissions::unknown(PERMISSION_MAP, "checking the receiver would post a message"))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.state(target).await
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.capability(action)?;
        check_target(&action.target)?;
        let count = before.state.get("notifications").and_then(serde_json::Value::as_u64).ok_or_else(|| {
            ConnectorError::permanent("the before-state is not a notification snapshot (no `notifications` count)")
        })?;
        let mut after = before.state.clone();
        after["notifications"] = json!(count + 1);
        let channel = match self.channel {
            Channel::Slack { .. } => "Slack",
            Channel::Webhook { .. } => "the webhook",
        };
        Ok(PlannedChange {
            expected_after: Snapshot { state: after, ..before.clone() },
            description: format!(
                "Post a notice about {} to {channel} (notifier `{}`); a message cannot be unsent.",
                action.target, self.id
            ),
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.capability(action)?;
        check_target(&action.target)?;
        let _sending = self.sending.lock().await;
        if let Some(done) = self.ledger().get(&action.idempotency_key) {
            return Ok(Outcome {
                status: OutcomeStatus::AlreadyInState,
                request_ids: done.request_id.iter().cloned().collect(),
            });
        }
        let request_id = self.send(action).await?;
        let entry = DeliveredNotification {
            idempotency_key: action.idempotency_key.clone(),
            action_id: action.id,
            target: action.target.clone(),
            at: self.clock.now(),
            request_id: request_id.clone(),
        };
        let recorded = self.ledger().record(entry);
        if let Err(e) = recorded {
            // The message is out: failing the action now would invite a resend. This process
            // remembers the delivery; only a restart before the next successful save could
            // send it again.
            tracing::error!(notifier = %self.id, action_id = %action.id, error = %e, "cannot save the delivery record");
        }
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: request_id.into_iter().collect() })
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        let observed = self.state(&action.target).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(
        &self,
        action: &Action,
        _before: &Snapshot,
        _after: &Snapshot,
    ) -> Result<Outcome, ConnectorError> {
        Err(ConnectorError::unsupported(format!(
            "notifier `{}`: a notification cannot be unsent (action {})",
            self.id, action.id
        )))
    }
}
