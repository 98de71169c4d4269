//! Errors building the connector, and the reader of GitHub's error body.

use remediation_connector_http::{ProviderError, StatusCode};
use serde_json::Value;

/// Why the GitHub connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum GitHubError {
    /// The token could not be read from the variable or file the configuration names.
    #[error("cannot read the GitHub token")]
    Token {
        /// Which variable or file, and why; never the token.
        #[source]
        source: remediation_connector_http::HttpError,
    },
    /// The HTTP client could not be built (a base URL that is not a URL).
    #[error("cannot build the GitHub connector's HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: remediation_connector_http::HttpError,
    },
}

/// Reads GitHub's `{"message", "documentation_url", "errors"?}` body.
pub(crate) fn parse_error(_status: StatusCode, body: &[u8]) -> Option<ProviderError> {
    let v: Value = serde_json::from_slice(body).ok()?;
    let message = v.get("message")?.as_str()?.to_owned();
    let details: Vec<&str> = v
        .get("errors")
        .and_then(Value::as_array)
        .map(|errs| errs.iter().filter_map(|e| e.get("message").and_then(Value::as_str)).collect())
        .unwrap_or_default();
    Some(ProviderError::message(if details.is_empty() {
        message
    } else {
        format!("{message}: {}", details.join("; "))
    }))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn github_messages_are_kept() {
        let body = br#"{"message": "Must have admin rights to Repository.", "documentation_url": "https://docs.github.com/rest"}"#;
        assert_eq!(parse_error(StatusCode::FORBIDDEN, body).unwrap().message, "Must have admin rights to Repository.");
        let body = br#"{"message": "Validation Failed", "errors": [{"message": "role is not valid"}]}"#;
        assert_eq!(
            parse_error(StatusCode::UNPROCESSABLE_ENTITY, body).unwrap().message,
            "Validation Failed: role is not valid"
        );
        assert!(parse_error(StatusCode::BAD_GATEWAY, b"<html>").is_none());
    }
}
