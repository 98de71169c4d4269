//! Errors building the connector from its configuration.

use std::io;
use std::path::PathBuf;

/// Why the AWS IAM connector could not be built from its configuration.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AwsIamError {
    /// An environment variable named in the configuration is not set or not valid UTF-8.
    #[error("environment variable {name} (named by `{key}` for connector {connector}) is not set")]
    MissingEnv {
        /// The connector's id.
        connector: String,
        /// The configuration key that names the variable.
        key: &'static str,
        /// The variable's name.
        name: String,
    },
    /// The file holding the secret access key could not be read.
    #[error("cannot read the secret access key file {} for connector {connector}", path.display())]
    SecretFile {
        /// The connector's id.
        connector: String,
        /// The file named by `secret_access_key_file`.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: io::Error,
    },
    /// Neither or both of `secret_access_key_env` and `secret_access_key_file` are set.
    #[error("connector {connector} needs exactly one of `secret_access_key_env` and `secret_access_key_file`")]
    SecretSource {
        /// The connector's id.
        connector: String,
    },
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

impl From<remediation_connector_aws::CredentialsError> for AwsIamError {
    fn from(e: remediation_connector_aws::CredentialsError) -> Self {
        use remediation_connector_aws::CredentialsError as C;
        match e {
            C::MissingEnv { connector, key, name } => Self::MissingEnv { connector, key, name },
            C::SecretFile { connector, path, source } => Self::SecretFile { connector, path, source },
            C::SecretSource { connector } => Self::SecretSource { connector },
            // A variant added later keeps its message.
            other => Self::Invalid { connector: String::new(), key: "credentials", reason: other.to_string() },
        }
    }
}
