//! Errors building the connector from its configuration (request failures are
//! [`remediation_core::ConnectorError`]s).

/// The connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntraError {
    /// The HTTP client, the token source or a credential could not be set up.
    #[error(transparent)]
    Http(#[from] remediation_connector_http::HttpError),
    /// The certificate thumbprint is not 40 hex digits.
    #[error("certificate thumbprint {thumbprint:?} is not a SHA-1 thumbprint (40 hex digits)")]
    Thumbprint {
        /// The thumbprint as configured.
        thumbprint: String,
    },
}
