//! Errors raised while building HTTP clients and token sources (request failures are
//! [`remediation_core::ConnectorError`]s).

/// A client or token source could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpError {
    /// The base URL does not parse or is not http(s).
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL as configured.
        url: String,
        /// Why it was refused.
        reason: String,
    },
    /// An `http://` URL on a host other than loopback, without `allow_insecure_http`.
    #[error(
        "refusing the unencrypted URL {url}: use https, or set allow_insecure_http = true in this connector's configuration if the network path is trusted"
    )]
    InsecureUrl {
        /// The URL, without query or credentials.
        url: String,
    },
    /// A configured header name or value is not valid HTTP.
    #[error("invalid header {name:?}")]
    InvalidHeader {
        /// The header name.
        name: String,
    },
    /// The underlying HTTP client could not be built (TLS roots, settings).
    #[error("cannot build the HTTP client")]
    Client {
        /// The cause.
        #[source]
        source: reqwest::Error,
    },
    /// A private key does not parse as an RSA PEM key. The key itself is never printed.
    #[error("invalid {what} private key")]
    InvalidKey {
        /// Which key (`client assertion`, `service account`).
        what: &'static str,
        /// The cause.
        #[source]
        source: jsonwebtoken::errors::Error,
    },
    /// A credential file could not be read or parsed.
    #[error("cannot read credential {what}")]
    Credential {
        /// What was being read (a path or an environment variable name).
        what: String,
        /// Why it failed; never contains the secret.
        reason: String,
    },
}
