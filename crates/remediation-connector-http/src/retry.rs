//! When to retry a request and how long to wait: the bounded policy, each provider's
//! throttling signal, and the injectable sleeper that does the waiting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use time::OffsetDateTime;

/// How a provider says "slow down", and how long it asks us to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ThrottleSignal {
    /// 429, and 503/504 carrying `Retry-After` (seconds or an HTTP date): Microsoft Graph,
    /// SCIM servers. Without `Retry-After`, exponential backoff.
    RetryAfter,
    /// Okta: 429 with `X-Rate-Limit-Reset` (epoch seconds), compared with the response's
    /// `Date` header so our clock's skew does not matter.
    OktaRateLimitReset,
    /// GitHub: 403/429 with `x-ratelimit-remaining: 0` waits until `x-ratelimit-reset`;
    /// a secondary limit (403/429 with `retry-after`, or 429 alone) honours `retry-after`,
    /// else waits at least 60 s. A plain 403 is a permission error.
    GitHub,
    /// Google APIs: 403 whose `error.errors[].reason` is `userRateLimitExceeded`,
    /// `quotaExceeded` or `rateLimitExceeded`, 429, and 503 `backendError`: exponential
    /// backoff. A 403 with another reason is a permission error.
    Google,
}

/// The provider throttled a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Throttle {
    /// How long the provider asked us to wait; `None` means "back off" without a figure.
    pub wait: Option<Duration>,
    /// At least this long, whatever the backoff says (GitHub's secondary limits: 60 s).
    pub at_least: Duration,
}

impl ThrottleSignal {
    /// Whether a response is throttling under this signal, and the wait it asks for.
    ///
    /// `now` is used only when the response carries no `Date` header to compare an epoch
    /// reset time with.
    pub fn classify(
        self,
        status: StatusCode,
        headers: &HeaderMap,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Option<Throttle> {
        let plain = |wait| Some(Throttle { wait, at_least: Duration::ZERO });
        match self {
            Self::RetryAfter => match status.as_u16() {
                429 => plain(retry_after(headers, now)),
                503 | 504 => retry_after(headers, now).map(|w| Throttle { wait: Some(w), at_least: Duration::ZERO }),
                _ => None,
            },
            Self::OktaRateLimitReset => match status.as_u16() {
                429 => plain(
                    epoch_header(headers, "x-rate-limit-reset")
                        .map(|reset| until(reset, headers, now))
                        .or_else(|| retry_after(headers, now)),
                ),
                _ => None,
            },
            Self::GitHub => {
                if !matches!(status.as_u16(), 403 | 429) {
                    return None;
                }
                let remaining = header_str(headers, "x-ratelimit-remaining").and_then(|v| v.trim().parse::<u64>().ok());
                if remaining == Some(0) {
                    let wait = epoch_header(headers, "x-ratelimit-reset").map(|reset| until(reset, headers, now));
                    return plain(wait);
                }
                if let Some(wait) = retry_after(headers, now) {
                    return plain(Some(wait));
                }
                let secondary = status.as_u16() == 429 || body_mentions_secondary_limit(body);
                secondary.then_some(Throttle { wait: None, at_least: Duration::from_secs(60) })
            }
            Self::Google => match status.as_u16() {
                429 => plain(retry_after(headers, now)),
                403 => google_rate_reason(body).then_some(Throttle { wait: None, at_least: Duration::ZERO }),
                503 => plain(retry_after(headers, now)),
                _ => None,
            },
        }
    }
}

/// The `Retry-After` header as a wait: delta seconds, or an HTTP date compared with the
/// response's `Date` (or `now` without one). `None` when absent or unparsable.
pub fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let raw = header_str(headers, "retry-after")?.trim();
    if let Ok(secs) = raw.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(raw).ok()?;
    let at = OffsetDateTime::from(at);
    let reference = response_date(headers).unwrap_or(now);
    Some(positive(at - reference))
}

/// The response's `Date` header, when present and valid.
pub fn response_date(headers: &HeaderMap) -> Option<OffsetDateTime> {
    let raw = header_str(headers, "date")?;
    httpdate::parse_http_date(raw.trim()).ok().map(OffsetDateTime::from)
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

fn epoch_header(headers: &HeaderMap, name: &str) -> Option<OffsetDateTime> {
    let secs = header_str(headers, name)?.trim().parse::<i64>().ok()?;
    OffsetDateTime::from_unix_timestamp(secs).ok()
}

/// Time from the response's `Date` (or `now`) until `reset`, never negative.
fn until(reset: OffsetDateTime, headers: &HeaderMap, now: OffsetDateTime) -> Duration {
    let reference = response_date(headers).unwrap_or(now);
    positive(reset - reference)
}

fn positive(d: time::Duration) -> Duration {
    Duration::try_from(d).unwrap_or(Duration::ZERO)
}

fn body_mentions_secondary_limit(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body).to_ascii_lowercase();
    text.contains("secondary rate limit")
}

fn google_rate_reason(body: &[u8]) -> bool {
    const REASONS: [&str; 3] = ["userRateLimitExceeded", "quotaExceeded", "rateLimitExceeded"];
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(body) else {
        return false;
    };
    let errors = v.pointer("/error/errors").and_then(|e| e.as_array());
    let listed = errors.is_some_and(|errs| {
        errs.iter().any(|e| e.get("reason").and_then(|r| r.as_str()).is_some_and(|r| REASONS.contains(&r)))
    });
    // Newer Google APIs put the reason in error.details[].reason or error.status.
    let status = v.pointer("/error/status").and_then(|s| s.as_str()) == Some("RESOURCE_EXHAUSTED");
    listed || status
}

/// Bounded retries: how many attempts, how long to back off, and the longest wait accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The provider's throttling signal.
    pub signal: ThrottleSignal,
    /// Attempts in total, the first included (1 = never retry).
    pub max_attempts: u32,
    /// The first backoff; doubles with each retry.
    pub base_delay: Duration,
    /// The longest backoff step.
    pub max_delay: Duration,
    /// The longest single wait accepted. A provider asking for more is answered with
    /// [`remediation_core::ConnectorErrorKind::Throttled`] carrying its figure, so the engine
    /// can reschedule instead of holding a worker.
    pub max_wait: Duration,
}

impl RetryPolicy {
    /// Defaults for `signal`: 4 attempts, 500 ms doubling to 30 s, waits up to 120 s.
    pub fn new(signal: ThrottleSignal) -> Self {
        Self {
            signal,
            max_attempts: 4,
            base_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(30),
            max_wait: Duration::from_secs(120),
        }
    }

    /// The same policy with `n` attempts in total.
    pub fn with_max_attempts(mut self, n: u32) -> Self {
        self.max_attempts = n.max(1);
        self
    }

    /// The same policy accepting waits up to `d`.
    pub fn with_max_wait(mut self, d: Duration) -> Self {
        self.max_wait = d;
        self
    }

    /// The backoff before retry number `retry` (1-based): `base_delay * 2^(retry-1)`, capped.
    pub fn backoff(&self, retry: u32) -> Duration {
        let factor = 2u32.saturating_pow(retry.saturating_sub(1));
        self.base_delay.saturating_mul(factor).min(self.max_delay)
    }

    /// The wait before retry number `retry` after `throttle`.
    pub fn throttle_wait(&self, throttle: &Throttle, retry: u32) -> Duration {
        throttle.wait.unwrap_or_else(|| self.backoff(retry)).max(throttle.at_least)
    }
}

/// Whatever waits between attempts. Injected so tests never sleep.
#[async_trait]
pub trait Sleeper: Send + Sync + std::fmt::Debug {
    /// Waits `d`.
    async fn sleep(&self, d: Duration);
}

/// Sleeps on the tokio timer.
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioSleeper;

#[async_trait]
impl Sleeper for TokioSleeper {
    async fn sleep(&self, d: Duration) {
        tokio::time::sleep(d).await;
    }
}

/// Records the waits asked for and returns at once. For tests.
#[derive(Debug, Clone, Default)]
pub struct RecordingSleeper {
    waits: Arc<Mutex<Vec<Duration>>>,
}

impl RecordingSleeper {
    /// A sleeper with no waits recorded.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every wait asked for so far, in order.
    pub fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).clone()
    }
}

#[async_trait]
impl Sleeper for RecordingSleeper {
    async fn sleep(&self, d: Duration) {
        self.waits.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(d);
    }
}
