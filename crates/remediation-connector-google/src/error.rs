//! Errors building the connector, and how Directory API error answers map to
//! [`ConnectorError`]s.

use std::path::PathBuf;

use remediation_core::{ConnectorError, ConnectorErrorKind};
use serde_json::Value;

use crate::api::ApiResponse;

/// Why the Google Workspace connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GoogleError {
    /// The service-account key file could not be read.
    #[error("cannot read the Google service-account key file {}", path.display())]
    ReadKey {
        /// The key file named in the configuration.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The key file is not a service-account JSON key (`client_email`, `private_key`,
    /// `private_key_id`), or its private key is not an RSA PEM key. Never quotes the key.
    #[error("the Google service-account key file {} is not usable", path.display())]
    InvalidKey {
        /// The key file named in the configuration.
        path: PathBuf,
        /// What is wrong with it.
        #[source]
        source: remediation_connector_http::HttpError,
    },
    /// The HTTP client or token source could not be built (a base URL that is not a URL).
    #[error("cannot build the Google Workspace connector's HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: remediation_connector_http::HttpError,
    },
    /// The configuration is inconsistent (an empty admin, a base URL that is not a URL).
    #[error("invalid Google Workspace connector configuration: {0}")]
    Config(String),
}

/// Google's 403 reasons that mean "slow down", not "not allowed".
const THROTTLE_REASONS: [&str; 3] = ["userRateLimitExceeded", "quotaExceeded", "rateLimitExceeded"];

/// The first `error.errors[].reason` of a Google error body.
pub(crate) fn reason(body: &Value) -> Option<&str> {
    body.pointer("/error/errors/0/reason").and_then(Value::as_str)
}

/// `error.message` of a Google error body.
pub(crate) fn message(body: &Value) -> Option<&str> {
    body.pointer("/error/message").and_then(Value::as_str)
}

/// The [`ConnectorError`] for an answer that is not a success, keeping Google's message and
/// request id. `what` says what the connector was doing, for a body without a message.
pub(crate) fn from_response(resp: &ApiResponse, what: &str) -> ConnectorError {
    let reason = reason(&resp.body);
    let kind = match resp.status {
        401 => ConnectorErrorKind::Unauthenticated,
        403 if reason.is_some_and(|r| THROTTLE_REASONS.contains(&r)) => {
            ConnectorErrorKind::Throttled { retry_after: None }
        }
        403 => ConnectorErrorKind::Forbidden,
        404 => ConnectorErrorKind::NotFound,
        409 | 412 => ConnectorErrorKind::Conflict,
        429 => ConnectorErrorKind::Throttled { retry_after: None },
        500..=599 => ConnectorErrorKind::Transient,
        _ => ConnectorErrorKind::Permanent,
    };
    let text = match (message(&resp.body), reason) {
        (Some(m), Some(r)) => format!("{what}: {m} ({r})"),
        (Some(m), None) => format!("{what}: {m}"),
        (None, _) => format!("{what}: HTTP {}", resp.status),
    };
    let err = ConnectorError::new(kind, text);
    match &resp.request_id {
        Some(id) => err.with_request_id(id.clone()),
        None => err,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn resp(status: u16, reason: &str) -> ApiResponse {
        ApiResponse {
            status,
            body: json!({"error": {"code": status, "message": "Something", "errors": [
                {"reason": reason, "message": "Something", "domain": "global"}]}}),
            request_id: Some("r-1".to_owned()),
        }
    }

    #[track_caller]
    fn check(status: u16, reason: &str, expected: ConnectorErrorKind) {
        let e = from_response(&resp(status, reason), "suspend alice");
        assert_eq!(e.kind, expected, "{status} {reason}");
        assert_eq!(e.request_id.as_deref(), Some("r-1"));
        assert!(e.message.contains("Something"), "{}", e.message);
    }

    #[test]
    fn statuses_and_reasons_map_to_kinds() {
        let throttled = ConnectorErrorKind::Throttled { retry_after: None };
        check(403, "userRateLimitExceeded", throttled.clone());
        check(403, "quotaExceeded", throttled.clone());
        check(429, "rateLimitExceeded", throttled);
        check(403, "forbidden", ConnectorErrorKind::Forbidden);
        check(403, "insufficientPermissions", ConnectorErrorKind::Forbidden);
        check(401, "authError", ConnectorErrorKind::Unauthenticated);
        check(404, "notFound", ConnectorErrorKind::NotFound);
        check(409, "duplicate", ConnectorErrorKind::Conflict);
        check(503, "backendError", ConnectorErrorKind::Transient);
        check(400, "invalid", ConnectorErrorKind::Permanent);
    }

    #[test]
    fn a_body_without_a_message_names_the_status() {
        let e = from_response(&ApiResponse { status: 502, body: Value::Null, request_id: None }, "read alice");
        assert_eq!(e.message, "read alice: HTTP 502");
        assert_eq!(e.kind, ConnectorErrorKind::Transient);
    }
}
