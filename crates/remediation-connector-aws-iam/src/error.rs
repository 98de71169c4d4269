//! Errors building the connector from its configuration.

/// Why the AWS IAM connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsIamError {
    /// The credentials could not be read (a variable not set, the secret's file unreadable, or
    /// not exactly one source for the secret): the shared AWS credentials' own error.
    #[error(transparent)]
    Credentials(#[from] remediation_connector_aws::CredentialsError),
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
}
