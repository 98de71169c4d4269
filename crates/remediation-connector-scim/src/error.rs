//! Errors building the connector from its configuration (request failures are
//! [`remediation_core::ConnectorError`]s).

/// The connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScimError {
    /// The HTTP client or the token could not be set up.
    #[error(transparent)]
    Http(#[from] remediation_connector_http::HttpError),
}
