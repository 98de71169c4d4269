//! The connector's configuration: region, endpoint, credentials (named as the IAM connector
//! names them) and the compliant values `default` stands for.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::credentials::CredentialSource;
use crate::error::AwsError;
use crate::target::{valid_kms_key, valid_retention, valid_secret_name};

/// Configuration of one AWS cloud-posture connector (`type = "aws"`). Holds no secret itself:
/// it names the environment variables (or the file) the credentials are read from.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// Connector identifier used in actions; `aws` unless set.
    #[serde(default = "default_id")]
    pub id: String,
    /// The region of the buckets, security groups and DB instances, and of the signatures.
    pub region: String,
    /// One endpoint to send every request to instead of AWS's regional endpoints (an
    /// emulator such as moto). S3 is then addressed path-style (`<endpoint>/<bucket>`).
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
    /// The KMS key (id, ARN or `alias/...`) that `enforce s3_default_encryption=default`
    /// sets as a bucket's default encryption key. Without it, `default` is refused.
    #[serde(default)]
    pub s3_kms_key_id: Option<String>,
    /// The backup retention, in days (1 to 35), that `enforce rds_backup_retention_days=default`
    /// sets.
    #[serde(default = "default_retention")]
    pub rds_backup_retention_days: u32,
    /// Where `rotate` hands a user's new access key over: the Secrets Manager secret of this
    /// name, `{user}` replaced by the IAM user name (created when missing; a new version
    /// otherwise, the previous one kept as `AWSPREVIOUS`). Its value is JSON
    /// `{"AccessKeyId": ..., "SecretAccessKey": ...}`.
    #[serde(default = "default_rotation_secret_name")]
    pub rotation_secret_name: String,
    /// The KMS key a secret created by `rotate` is encrypted with; Secrets Manager's own key
    /// (`aws/secretsmanager`) when unset.
    #[serde(default)]
    pub rotation_secret_kms_key_id: Option<String>,
    /// How many times `rotate` asks STS who the new key is before giving up (a new key
    /// takes a few seconds to work everywhere); the delay between asks doubles from
    /// `backoff_ms`.
    #[serde(default = "default_rotation_check_attempts")]
    pub rotation_check_attempts: u32,
    /// Resources no action may touch: bucket names, security group ids (`sg-...`), DB
    /// instance identifiers, `DbiResourceId`s, IAM user names, user ids or ARNs. Compared with
    /// the canonical id each snapshot resolves, so another name for a listed resource is
    /// protected too.
    #[serde(default)]
    pub protected_resources: Vec<String>,
    /// Attempts per request for throttling and transient failures (1 = no retry).
    #[serde(default = "default_max_attempts")]
    pub max_attempts: u32,
    /// Base delay between retries, in milliseconds; it doubles after each attempt.
    #[serde(default = "default_backoff_ms")]
    pub backoff_ms: u64,
    /// Timeout for one request, in seconds.
    #[serde(default = "default_timeout_secs")]
    pub timeout_secs: u64,
}

fn default_id() -> String {
    "aws".to_owned()
}

fn default_retention() -> u32 {
    7
}

fn default_rotation_secret_name() -> String {
    "remediation/iam/{user}".to_owned()
}

fn default_rotation_check_attempts() -> u32 {
    8
}

fn default_max_attempts() -> u32 {
    3
}

fn default_backoff_ms() -> u64 {
    200
}

fn default_timeout_secs() -> u64 {
    30
}

impl AwsConfig {
    /// A configuration with defaults for everything but the region and the credentials'
    /// variables.
    pub fn new(
        region: impl Into<String>,
        access_key_id_env: impl Into<String>,
        secret_access_key_env: impl Into<String>,
    ) -> Self {
        Self {
            id: default_id(),
            region: region.into(),
            endpoint_url: None,
            access_key_id_env: access_key_id_env.into(),
            secret_access_key_env: Some(secret_access_key_env.into()),
            secret_access_key_file: None,
            secret_access_key_sealed: None,
            session_token_env: None,
            s3_kms_key_id: None,
            rds_backup_retention_days: default_retention(),
            rotation_secret_name: default_rotation_secret_name(),
            rotation_secret_kms_key_id: None,
            rotation_check_attempts: default_rotation_check_attempts(),
            protected_resources: Vec::new(),
            max_attempts: default_max_attempts(),
            backoff_ms: default_backoff_ms(),
            timeout_secs: default_timeout_secs(),
        }
    }

    pub(crate) fn validate(&self) -> Result<(), AwsError> {
        let invalid =
            |key, reason: &str| AwsError::Invalid { connector: self.id.clone(), key, reason: reason.to_owned() };
        if self.id.trim().is_empty() {
            return Err(invalid("id", "must not be empty"));
        }
        let region_ok = !self.region.is_empty()
            && self.region.len() <= 32
            && self.region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        if !region_ok {
            return Err(invalid("region", "must be an AWS region name such as `eu-west-1`"));
        }
        if let Some(url) = &self.endpoint_url {
            let parsed = url::Url::parse(url).map_err(|_| invalid("endpoint_url", "is not a URL"))?;
            if !matches!(parsed.scheme(), "https" | "http") || parsed.host_str().is_none() {
                return Err(invalid("endpoint_url", "must be an http:// or https:// URL with a host"));
            }
            if parsed.query().is_some() || parsed.fragment().is_some() {
                return Err(invalid("endpoint_url", "must not have a query or a fragment"));
            }
        }
        if let Some(key) = &self.s3_kms_key_id
            && !valid_kms_key(key)
        {
            return Err(invalid("s3_kms_key_id", "must be a KMS key id, key ARN, alias name or alias ARN"));
        }
        if !valid_retention(self.rds_backup_retention_days) {
            return Err(invalid("rds_backup_retention_days", "must be 1 to 35"));
        }
        let sample = self.rotation_secret_name.replace("{user}", "user");
        if !self.rotation_secret_name.contains("{user}") || !valid_secret_name(&sample) {
            return Err(invalid(
                "rotation_secret_name",
                "must name `{user}` and otherwise hold only letters, digits and /_+=.@- (at most 512 characters)",
            ));
        }
        if let Some(key) = &self.rotation_secret_kms_key_id
            && !valid_kms_key(key)
        {
            return Err(invalid(
                "rotation_secret_kms_key_id",
                "must be a KMS key id, key ARN, alias name or alias ARN",
            ));
        }
        if self.rotation_check_attempts == 0 {
            return Err(invalid("rotation_check_attempts", "must be at least 1"));
        }
        if self.max_attempts == 0 {
            return Err(invalid("max_attempts", "must be at least 1"));
        }
        if self.timeout_secs == 0 {
            return Err(invalid("timeout_secs", "must be at least 1"));
        }
        Ok(())
    }
}

impl CredentialSource for AwsConfig {
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
