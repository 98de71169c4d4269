//! Errors building the connector from its configuration.

use crate::credentials::CredentialsError;

/// Why the AWS cloud-posture connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsError {
    /// The credentials the configuration names could not be read.
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    /// A setting is out of range or malformed.
    #[error("connector {connector}: invalid `{key}`: {reason}")]
    Invalid {
        /// The connector's id.
        connector: String,
        /// The configuration key.
        key: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built.
    #[error("connector {connector}: cannot build the HTTP client")]
    Client {
        /// The connector's id.
        connector: String,
        /// The reqwest error.
        #[source]
        source: reqwest::Error,
    },
}
