//! The connector's configuration and the credentials it resolves from the environment.

use std::path::{Path, PathBuf};

pub use remediation_connector_aws::AwsCredentials;
use remediation_connector_aws::CredentialSource;
use schemars::JsonSchema;
use secrecy::ExposeSecret;
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
    /// The managed connection's sealed secret holding the secret access key (only in a
    /// connection created with `remediate connections add`).
    #[serde(default)]
    pub secret_access_key_sealed: Option<String>,
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
            secret_access_key_sealed: None,
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

impl CredentialSource for AwsIamConfig {
    fn connector_id(&self) -> &str {
        &self.id
    }

    fn access_key_id_env(&self) -> &str {
        &self.access_key_id_env
    }

    fn secret_access_key_env(&self) -> Option<&str> {
        self.secret_access_key_env.as_deref()
    }

    fn secret_access_key_file(&self) -> Option<&Path> {
        self.secret_access_key_file.as_deref()
    }

    fn secret_access_key_sealed(&self) -> Option<&str> {
        self.secret_access_key_sealed.as_deref()
    }

    fn session_token_env(&self) -> Option<&str> {
        self.session_token_env.as_deref()
    }
}

/// Credentials for the IAM connector: [`AwsCredentials`] (shared with the cloud-posture
/// connector) read as an [`AwsIamConfig`] names them.
pub trait IamCredentials: Sized {
    /// Reads the credentials named by `config` from the process environment (and the secret
    /// file, when configured).
    fn from_env(config: &AwsIamConfig) -> Result<Self, AwsIamError>;

    /// Reads the credentials named by `config`, looking variables up with `lookup`.
    fn resolve(config: &AwsIamConfig, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsIamError>;

    /// The SDK's form of the credentials.
    fn to_sdk(&self) -> aws_sdk_iam::config::Credentials;
}

impl IamCredentials for AwsCredentials {
    fn from_env(config: &AwsIamConfig) -> Result<Self, AwsIamError> {
        Ok(AwsCredentials::from_env(config)?)
    }

    fn resolve(config: &AwsIamConfig, lookup: impl Fn(&str) -> Option<String>) -> Result<Self, AwsIamError> {
        Ok(AwsCredentials::resolve_source(config, lookup)?)
    }

    fn to_sdk(&self) -> aws_sdk_iam::config::Credentials {
        aws_sdk_iam::config::Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.expose_secret().to_owned(),
            self.session_token.as_ref().map(|t| t.expose_secret().to_owned()),
            None,
            "remediation-config",
        )
    }
}
