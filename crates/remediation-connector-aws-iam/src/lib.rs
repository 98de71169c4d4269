//! A connector for AWS IAM users, through the AWS SDK for Rust: detaches managed policies,
//! removes group memberships, deactivates access keys and deletes console login profiles,
//! and undoes each.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Target resource | Change | Undo | Reversibility |
//! |---|---|---|---|---|---|
//! | `revoke` | `user_policy` | policy ARN | `DetachUserPolicy` | `AttachUserPolicy` | reversible |
//! | `revoke` | `group_membership` | group name | `RemoveUserFromGroup` | `AddUserToGroup` | reversible |
//! | `suspend` | `access_key` | access key id | `UpdateAccessKey` Inactive | `UpdateAccessKey` Active | reversible |
//! | `revoke` | `login_profile` | none | `DeleteLoginProfile` | `CreateLoginProfile` | lossy |
//!
//! The target's identity is always the IAM user name. Every capability is observable: the
//! connector reads the grant back (`ListAttachedUserPolicies`, `ListGroupsForUser`,
//! `ListAccessKeys`, `GetLoginProfile`, following `Marker` pagination) and `verify` re-reads
//! a few times with a short backoff, because IAM is eventually consistent. A deleted login
//! profile cannot get its password back: rollback creates one with a new random password,
//! never logged or stored, and `PasswordResetRequired=true`, so the user's owner must reset it.
//!
//! Snapshots hold only the grant the target names, without dates: for example
//! `{"user": "alice", "group": "admins", "member": true}`. Users listed in `protected_users`
//! or tagged `remediation:protected=true` are protected, and `execute` refuses them.
//!
//! A target's identity is the user's name or its ARN; the connector resolves it with
//! `GetUser` and acts on the name IAM stores. The snapshot's
//! [canonical id](remediation_core::Snapshot::canonical) is the user id (`AIDA…`), which
//! survives renames. `protected_users` entries match the user's name in any case (IAM user
//! names are unique regardless of case), its user id or its ARN.
//!
//! Errors keep AWS's code, message and request id: `NoSuchEntity` is not found,
//! `AccessDenied` forbidden, `InvalidClientTokenId` / `SignatureDoesNotMatch` /
//! `ExpiredToken` unauthenticated, `Throttling` throttled, `ServiceFailure` /
//! `ServiceUnavailable` / `ConcurrentModification` transient. Throttled and transient
//! failures are retried up to `max_attempts` times with exponential backoff; `LimitExceeded`,
//! `NoSuchEntity` and `EntityTemporarilyUnmodifiable` never are.
//!
//! # Configuration
//!
//! ```
//! use remediation_connector_aws_iam::{AwsCredentials, AwsIamConfig, AwsIamConnector};
//! use remediation_core::Connector;
//! use secrecy::SecretString;
//!
//! let config: AwsIamConfig = toml::from_str(r#"
//!     id = "aws-prod"
//!     region = "us-east-1"
//!     # endpoint_url = "http://127.0.0.1:5000"   # an emulator or a VPC endpoint
//!     access_key_id_env = "REMEDIATION_AWS_ACCESS_KEY_ID"
//!     secret_access_key_env = "REMEDIATION_AWS_SECRET_ACCESS_KEY"
//!     # secret_access_key_file = "/run/secrets/aws-secret-access-key"
//!     # session_token_env = "REMEDIATION_AWS_SESSION_TOKEN"
//!     protected_users = ["break-glass"]
//! "#).unwrap();
//! // `AwsIamConnector::from_config(&config)` reads the variables; here the credentials are given.
//! let credentials = AwsCredentials::new("AKIAEXAMPLE", SecretString::from("example-secret"));
//! let connector = AwsIamConnector::new(&config, credentials).unwrap();
//! assert_eq!(connector.id(), "aws-prod");
//! assert!(!format!("{connector:?}").contains("example-secret"));
//! ```
//!
//! The least-privilege IAM policy the credentials need is `iam-policy.json` next to this
//! crate's manifest; [`REQUIRED_ACTIONS`] lists the same actions.

mod config;
mod connector;
mod error;
mod grant;
mod provider_error;
mod quiet;
mod retry;

pub use config::{AwsCredentials, AwsIamConfig, IamCredentials};
pub use connector::{AwsIamConnector, PERMISSION_MAP, PROTECTED_TAG, REQUIRED_ACTIONS, capabilities};
pub use error::AwsIamError;
pub use grant::{ACCESS_KEY, GROUP_MEMBERSHIP, LOGIN_PROFILE, USER_POLICY};
pub use provider_error::classify;
pub use remediation_connector_aws::CredentialsError;
pub use retry::{Sleeper, TokioSleeper};

/// The catalog's entry for AWS IAM: `type = "aws_iam"`, settings [`AwsIamConfig`].
pub static FACTORY: remediation_core::factory::Factory<AwsIamConfig> =
    remediation_core::factory::Factory::new("aws_iam", "AWS IAM", Some(capabilities), |_id, config, _context| {
        Ok(std::sync::Arc::new(AwsIamConnector::from_config(&config)?))
    });
