//! Errors raised while building an Okta connector from its configuration (provider failures
//! are [`remediation_core::ConnectorError`]s).

/// An Okta connector could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OktaError {
    /// A configuration value is unusable.
    #[error("invalid Okta connector configuration `{field}`: {reason}")]
    Config {
        /// The configuration key.
        field: &'static str,
        /// Why it was refused.
        reason: String,
    },
    /// The HTTP client or the token source could not be built.
    #[error("cannot set up the Okta connector `{id}`")]
    Setup {
        /// The connector id.
        id: String,
        /// The cause.
        #[source]
        source: remediation_connector_http::HttpError,
    },
}
