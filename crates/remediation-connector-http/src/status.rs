//! Mapping an HTTP status and a provider's error body to a [`ConnectorError`].

use std::time::Duration;

use remediation_core::{ConnectorError, ConnectorErrorKind};
use reqwest::StatusCode;
use reqwest::header::HeaderMap;

use crate::client::request_id;

/// What a provider's error body says, as parsed by the connector's [`ErrorParser`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderError {
    /// The provider's own message (with its error code when it has one), never a secret.
    pub message: String,
    /// A class that overrides the one the status implies (a provider that answers 400 for
    /// "not found", say); `None` keeps the status's class.
    pub kind: Option<ConnectorErrorKind>,
}

impl ProviderError {
    /// A message keeping the status's class.
    pub fn message(message: impl Into<String>) -> Self {
        Self { message: message.into(), kind: None }
    }

    /// The same error with its class set explicitly.
    pub fn with_kind(mut self, kind: ConnectorErrorKind) -> Self {
        self.kind = Some(kind);
        self
    }
}

/// Reads a provider's error body. Each connector supplies a small one; closures
/// `Fn(StatusCode, &[u8]) -> Option<ProviderError>` implement it.
pub trait ErrorParser: Send + Sync {
    /// The provider's message (and optional class) in `body`, if it parses.
    fn parse(&self, status: StatusCode, body: &[u8]) -> Option<ProviderError>;
}

impl<F> ErrorParser for F
where
    F: Fn(StatusCode, &[u8]) -> Option<ProviderError> + Send + Sync,
{
    fn parse(&self, status: StatusCode, body: &[u8]) -> Option<ProviderError> {
        self(status, body)
    }
}

/// A parser that understands no body: messages are the status line.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoBody;

impl ErrorParser for NoBody {
    fn parse(&self, _: StatusCode, _: &[u8]) -> Option<ProviderError> {
        None
    }
}

/// The class a status implies: 404 not found, 401 unauthenticated, 403 forbidden, 409/412
/// conflict, 429 throttled, 5xx transient, other 4xx permanent.
pub fn kind_for_status(status: StatusCode, retry_after: Option<Duration>) -> ConnectorErrorKind {
    match status.as_u16() {
        401 => ConnectorErrorKind::Unauthenticated,
        403 => ConnectorErrorKind::Forbidden,
        404 | 410 => ConnectorErrorKind::NotFound,
        409 | 412 => ConnectorErrorKind::Conflict,
        429 => ConnectorErrorKind::Throttled { retry_after },
        408 | 500..=599 => ConnectorErrorKind::Transient,
        _ => ConnectorErrorKind::Permanent,
    }
}

/// The error for a non-success response: the status's class (or the parser's), the
/// provider's message (or the status line), and the request id from the headers.
pub fn map_status(status: StatusCode, headers: &HeaderMap, body: &[u8], parser: &dyn ErrorParser) -> ConnectorError {
    let retry_after = crate::retry::retry_after(headers, time::OffsetDateTime::now_utc());
    let parsed = parser.parse(status, body);
    let kind = parsed.as_ref().and_then(|p| p.kind.clone()).unwrap_or_else(|| kind_for_status(status, retry_after));
    let message = match parsed {
        Some(p) if !p.message.trim().is_empty() => format!("{} (HTTP {})", p.message, status.as_u16()),
        _ => format!("HTTP {}", status),
    };
    let err = ConnectorError::new(kind, message);
    match request_id(headers) {
        Some(id) => err.with_request_id(id),
        None => err,
    }
}
