//! The connector's configuration and the credentials it resolves from the environment.

use std::fmt;
use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::AwsIamError;

/// Configuration of one AWS IAM connector. Holds no secret itself: it names the environment
/// variables (or the file) the credentials are read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsIamConfig {
    /// Connector identifier used in actions (`aws-prod`).
    pub id: String,
    /// Signing region; IAM is a global service signed for `us-east-1`.
    #[serde(default = "default_region")]
    pub region: String,
    /// Endpoint to send requests to instead of the public IAM endpoint (an emulator, a VPC
    /// endpoint).
    #[serde(default)]
    pub endpoint_url: Option<String>,
    /// Name of the environment variable holding the access key id.
    pub access_key_id_env: String,
    /// Name of the environment variable holding the secret access key. Exactly one of this
    /// and `secret_access_key_file` must be set.
    #[serde(default)]
    pub secret_access_key_env: Option<String>,
    /// File whose content (trimmed) is the secret access key.
    #[serde(default)]
    pub secret_access_key_file: Option<PathBuf>,
    /// Name of the environment variable holding a session token, for temporary credentials.
    #[serde(default)]
    pub session_token_env: Option<String>,
    /// Users no action may touch (by name in any case, user id or ARN), in addition to users
    /// tagged `remediation:protected=true`.
    #[serde(default)]
    pub protected_users: Vec<String>,
    /// Attempts per request for throttling and transient failures (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Reads `verify` makes before it reports that the change is not visible (IAM is
    /// eventually consistent).
    #[serde(default = "default_verify_attempts")]
    pub verify_attempts: u32,
    /// Base delay between retries and between verification reads, in milliseconds; it doubles
    /// after each attempt.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Timeout for one request, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_max_attempts() -> u32 {
    3
}

fn default_verify_attempts() -> u32 {
    5
}

fn default_backoff_ms() -> u64 {
    200
}

fn default_timeout_secs() -> u64 {
    30
}

impl AwsIamConfig {
    /// A configuration with defaults for everything but the id and the credentials' variables.
    pub fn new(
        id: impl Into<String>,
        access_key_id_env: impl Into<String>,
        secret_access_key_env: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            region: default_region(),
            endpoint_url: None,
            access_key_id_env: access_key_id_env.into(),
            secret_access_key_env: Some(secret_access_key_env.into()),
            secret_access_key_file: None,
            session_token_env: None,
            protected_users: Vec::new(),
            max_attempts: default_max_attempts(),
            verify_attempts: default_verify_attempts(),
            backoff_ms: default_backoff_ms(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), AwsIamError> {
        let invalid =
            |key, reason: &str| AwsIamError::Invalid { connector: self.id.clone(), key, reason: reason.to_owned() };
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        if self.region.trim().is_empty() {
            return Err(invalid("region", "must not be empty"));
        }
        if let Some(url) = &self.endpoint_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(invalid("endpoint_url", "must start with https:// or http://"));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if self.verify_attempts == 0 {
            return Err(invalid("verify_attempts", "must be at least 1"));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
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

    /// Reads the credentials named by `config` from the process environment (and the secret
    /// file, when configured).
    pub fn from_env(config: &AwsIamConfig) -> Result<Self, AwsIamError> {
        Self::resolve(config, |name| std::env::var(name).ok())
    }

    /// Reads the credentials named by `config`, looking variables up with `lookup`.
    pub fn resolve(config: &AwsIamConfig, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsIamError> {
        let env = |key: &'static str, name: &str| {
            lookup(name).filter(|v| !v.is_empty()).ok_or_else(|| AwsIamError::MissingEnv {
                connector: config.id.clone(),
                key,
                name: name.to_owned(),
            })
        };
        let access_key_id = env("access_key_id_env", &config.access_key_id_env)?;
        let secret = match (&config.secret_access_key_env, &config.secret_access_key_file) {
            (Some(name), None) => SecretString::from(env("secret_access_key_env", name)?),
            (None, Some(path)) => {
                let text = std::fs::read_to_string(path).map_err(|source| AwsIamError::SecretFile {
                    connector: config.id.clone(),
                    path: path.clone(),
                    source,
                })?;
                SecretString::from(text.trim().to_owned())
            }
            _ => return Err(AwsIamError::SecretSource { connector: config.id.clone() }),
        };
        let token = match &config.session_token_env {
            Some(name) => Some(SecretString::from(env("session_token_env", name)?)),
            None => None,
        };
        Ok(Self { access_key_id, secret_access_key: secret, session_token: token })
    }

    pub(crate) fn to_sdk(&self) -> aws_sdk_iam::config::Credentials {
        aws_sdk_iam::config::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            self.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "remediation-config",
        )
    }
}
