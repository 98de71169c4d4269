//! The HTTP plumbing shared by the webhook sink and the notifier: client setup, bounded retries
//! with backoff, and error text that never shows a URL.

use std::time::Duration;

use reqwest::{RequestBuilder, StatusCode};

use crate::error::NotifyError;

/// How often and how patiently a delivery is retried after a transient failure (a connection
/// error, a timeout, a 5xx answer, and for event sinks a 429).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least 1.
    pub max_attempts: u32,
    /// Wait before the second attempt; doubled before each further one.
    pub initial_backoff: Duration,
    /// Longest wait between two attempts, also the cap on a `Retry-After` that is honoured.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// Three attempts, waiting 500 ms and then 1 s; `Retry-After` honoured up to 10 s.
    fn default() -> Self {
        Self { max_attempts: 3, initial_backoff: Duration::from_millis(500), max_backoff: Duration::from_secs(10) }
    }
}

impl RetryPolicy {
    /// `attempts` attempts with no wait between them (tests).
    pub fn immediate(attempts: u32) -> Self {
        Self { max_attempts: attempts, initial_backoff: Duration::ZERO, max_backoff: Duration::ZERO }
    }

    /// The wait after failed attempt number `attempt` (1-based).
    fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.initial_backoff.saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)));
        retry_after.unwrap_or(exp).min(self.max_backoff)
    }
}

/// A client with a total timeout per attempt, rustls and the system's trust store, and no
/// redirects: a signed body must not be replayed to wherever a redirect points.
pub(crate) fn client(timeout: Duration) -> Result<reqwest::Client, NotifyError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("remediation/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|source| NotifyError::Client { source })
}

/// The last answer of a delivery.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    /// The body, trimmed, at most its first 64 KiB (cut it before showing it).
    pub(crate) body: String,
    /// The receiver's request id (`x-slack-req-id`, `x-request-id`), when it sent one.
    pub(crate) request_id: Option<String>,
    /// `Retry-After` in seconds, when sent.
    pub(crate) retry_after: Option<Duration>,
    /// Attempts made.
    pub(crate) attempts: u32,
}

/// A delivery that got no answer at all, after every attempt.
#[derive(Debug)]
pub(crate) struct NoAnswer {
    /// What went wrong, without the URL.
    pub(crate) message: String,
    /// Attempts made.
    pub(crate) attempts: u32,
}

/// Sends the request built by `make` until it gets an answer that is not transient or the
/// attempts run out. Retries connection errors, timeouts and 5xx answers, and 429 answers when
/// `retry_throttled`. Returns the last answer, whatever its status.
pub(crate) async fn send(
    policy: RetryPolicy,
    retry_throttled: bool,
    mut make: impl FnMut() -> RequestBuilder,
) -> Result<Answer, NoAnswer> {
    let max = policy.max_attempts.max(1);
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = make().send().await;
        let (retry, wait_hint) = match result {
            Ok(response) => {
                let answer = read_answer(response, attempt).await;
                let transient = answer.status.is_server_error()
                    || (retry_throttled && answer.status == StatusCode::TOO_MANY_REQUESTS);
                if !transient || attempt >= max {
                    return Ok(answer);
                }
                tracing::debug!(status = answer.status.as_u16(), attempt, "transient answer, retrying");
                (true, answer.retry_after)
            }
            Err(e) => {
                let message = describe(&e);
                let transient = e.is_connect() || e.is_timeout() || e.is_request();
                if !transient || attempt >= max {
                    return Err(NoAnswer { message, attempts: attempt });
                }
                tracing::debug!(error = %message, attempt, "delivery failed, retrying");
                (true, None)
            }
        };
        if retry {
            let wait = policy.backoff(attempt, wait_hint);
            if !wait.is_zero() {
                tokio::time::sleep(wait).await;
            }
        }
    }
}

async fn read_answer(response: reqwest::Response, attempts: u32) -> Answer {
    let status = response.status();
    let headers = response.headers();
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let request_id = header("x-slack-req-id").or_else(|| header("x-request-id"));
    let retry_after = header("retry-after").and_then(|v| v.trim().parse::<u64>().ok()).map(Duration::from_secs);
    let body = read_body(response).await;
    Answer { status, body: body.trim().to_owned(), request_id, retry_after, attempts }
}

/// At most the first 64 KiB of the body, so a hostile receiver cannot make us buffer more.
async fn read_body(mut response: reqwest::Response) -> String {
    const LIMIT: usize = 64 * 1024;
    let mut bytes = Vec::new();
    while bytes.len() < LIMIT {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk[..chunk.len().min(LIMIT - bytes.len())]),
            // The answer's status is what matters; an unreadable body is reported as empty.
            Ok(None) | Err(_) => break,
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A reqwest error and its causes. The error's own text is not used because it names the URL,
/// which may be a secret (a Slack webhook URL); its causes (connection refused, timed out, ...)
/// do not.
pub(crate) fn describe(error: &reqwest::Error) -> String {
    let mut text = kind_of(error);
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !cause_text.is_empty() && !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

fn kind_of(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        "timed out".to_owned()
    } else if error.is_connect() {
        "could not connect".to_owned()
    } else if error.is_redirect() {
        "redirect refused".to_owned()
    } else if error.is_body() || error.is_decode() {
        "could not read the answer".to_owned()
    } else {
        "request failed".to_owned()
    }
}

/// `text` cut to at most `max` characters, marked when cut.
pub(crate) fn cut(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &text[..i]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check(attempt: u32, retry_after: Option<u64>, expected_ms: u64) {
        let policy = RetryPolicy::default();
        assert_eq!(policy.backoff(attempt, retry_after.map(Duration::from_secs)), Duration::from_millis(expected_ms));
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        check(1, None, 500);
        check(2, None, 1_000);
        check(3, None, 2_000);
        check(6, None, 10_000);
        check(40, None, 10_000);
        check(1, Some(3), 3_000);
        check(1, Some(300), 10_000);
        assert_eq!(RetryPolicy::immediate(3).backoff(2, Some(Duration::from_secs(5))), Duration::ZERO);
    }

    #[test]
    fn cut_marks_what_it_cut() {
        assert_eq!(cut("abcdef", 3), "abc...");
        assert_eq!(cut("abc", 3), "abc");
        assert_eq!(cut("ééé", 2), "éé...");
    }
}
