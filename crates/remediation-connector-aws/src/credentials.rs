//! AWS credentials and where a connector's configuration says to read them from. Shared by
//! every AWS connector (this crate and `remediation-connector-aws-iam`), so both name their
//! variables and secret file the same way and redact the same way.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Where a configuration says the credentials are: the names of the environment variables and
/// the secret file. Each AWS connector's configuration implements it over its own fields.
pub trait CredentialSource {
    /// The connector's id, for error messages.
    fn connector_id(&self) -> &str;
    /// Name of the environment variable holding the access key id.
    fn access_key_id_env(&self) -> &str;
    /// Name of the environment variable holding the secret access key.
    fn secret_access_key_env(&self) -> Option<&str>;
    /// File whose content (trimmed) is the secret access key.
    fn secret_access_key_file(&self) -> Option<&Path>;
    /// Name of the environment variable holding a session token.
    fn session_token_env(&self) -> Option<&str>;
    /// The managed connection's sealed secret holding the secret access key (see
    /// [`remediation_core::secret_source::sealed`]); none by default.
    fn secret_access_key_sealed(&self) -> Option<&str> {
        None
    }
}

/// Why the credentials could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CredentialsError {
    /// An environment variable named in the configuration is not set or empty.
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
    /// The sealed secret named by `secret_access_key_sealed` cannot be read.
    #[error("cannot read the secret access key of connector {connector}")]
    Sealed {
        /// The connector's id.
        connector: String,
        /// Why (outside a managed connection's build, or no such secret).
        #[source]
        source: remediation_core::secret_source::SecretSourceError,
    },
    /// None or several of `secret_access_key_env`, `secret_access_key_file` and
    /// `secret_access_key_sealed` are set.
    #[error(
        "connector {connector} needs exactly one of `secret_access_key_env`, `secret_access_key_file` and \
         `secret_access_key_sealed`"
    )]
    SecretSource {
        /// The connector's id.
        connector: String,
    },
}

/// AWS credentials: an access key id, its secret and an optional session token. The secret
/// and the token never appear in `Debug` output.
#[derive(Clone)]
pub struct AwsCredentials {
    /// The access key id (not a secret: it appears in every signed request).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretString>,
}

impl fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"[redacted]")
            .field("session_token", &self.session_token.as_ref().map(|_| "[redacted]"))
            .finish()
    }
}

impl AwsCredentials {
    /// Credentials from an access key id and secret.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: SecretString) -> Self {
        Self { access_key_id: access_key_id.into(), secret_access_key, session_token: None }
    }

    /// Adds a session token.
    pub fn with_session_token(mut self, token: SecretString) -> Self {
        self.session_token = Some(token);
        self
    }

    /// Reads the credentials `source` names from the process environment (and the secret
    /// file, when configured).
    pub fn from_env<S: CredentialSource + ?Sized>(source: &S) -> Result<Self, CredentialsError> {
        Self::resolve_source(source, |name| std::env::var(name).ok())
    }

    /// Reads the credentials `source` names, looking variables up with `lookup`.
    pub fn resolve_source<S: CredentialSource + ?Sized>(
        source: &S,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, CredentialsError> {
        let connector = source.connector_id();
        let env = |key: &'static str, name: &str| {
            lookup(name).filter(|v| !v.is_empty()).ok_or_else(|| CredentialsError::MissingEnv {
                connector: connector.to_owned(),
                key,
                name: name.to_owned(),
            })
        };
        let access_key_id = env("access_key_id_env", source.access_key_id_env())?;
        let secret = match (source.secret_access_key_env(), source.secret_access_key_file()) {
            (None, None) if source.secret_access_key_sealed().is_some() => {
                let name = source.secret_access_key_sealed().unwrap_or_default();
                remediation_core::secret_source::sealed(name)
                    .map_err(|source| CredentialsError::Sealed { connector: connector.to_owned(), source })?
            }
            _ if source.secret_access_key_sealed().is_some() => {
                return Err(CredentialsError::SecretSource { connector: connector.to_owned() });
            }
            (Some(name), None) => SecretString::from(env("secret_access_key_env", name)?),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|e| CredentialsError::SecretFile {
                    connector: connector.to_owned(),
                    path: path.to_owned(),
                    source: e,
                })?;
                SecretString::from(text.trim().to_owned())
            }
            _ => return Err(CredentialsError::SecretSource { connector: connector.to_owned() }),
        };
        let token = match source.session_token_env() {
            Some(name) => Some(SecretString::from(env("session_token_env", name)?)),
            None => None,
        };
        Ok(Self { access_key_id, secret_access_key: secret, session_token: token })
    }
}
