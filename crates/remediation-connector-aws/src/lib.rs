//! A cloud-posture connector for AWS: sets an S3 bucket's default encryption (SSE-KMS) and
//! public access block, revokes world-open security group ingress, sets an RDS DB instance's
//! backup retention, and rotates an IAM user's access key; and undoes each.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Setting / grant | Change | Undo | Reversibility |
//! |---|---|---|---|---|---|
//! | `enforce` | `s3_bucket` | `s3_default_encryption` = KMS key or `default` | `PutBucketEncryption` (SSE-KMS, Bucket Keys on) | `PutBucketEncryption` with the previous rules | reversible |
//! | `enforce` | `s3_bucket` | `s3_public_access_block` = `all` | `PutPublicAccessBlock` (all four flags) | `PutPublicAccessBlock` with the previous flags, or `DeletePublicAccessBlock` | reversible |
//! | `revoke` | `security_group_ingress` | `tcp:22-22` (`<tcp\|udp>:<from>-<to>`) | `RevokeSecurityGroupIngress` of `0.0.0.0/0` and `::/0` | `AuthorizeSecurityGroupIngress`, descriptions included | reversible |
//! | `enforce` | `db_instance` | `rds_backup_retention_days` = 1..35 or `default` | `ModifyDBInstance` `BackupRetentionPeriod`, `ApplyImmediately` | the same with the previous period | lossy |
//! | `rotate` | `iam_access_key` | the key id, or none for the user's oldest key | `CreateAccessKey`, the key stored in Secrets Manager, proved with `sts:GetCallerIdentity`, `UpdateAccessKey` `Inactive` on the old key | the old key `Active`, the secret back at its previous version, the new key deleted | reversible while the old key exists |
//! | `revoke` | `iam_access_key` | the key id | `DeleteAccessKey` of an inactive key (the rotation's follow-up, see [`remediation_core::Connector::follow_up`]) | none | irreversible |
//!
//! Targets: `{identity: <bucket name or ARN>, grant_type: "s3_bucket"}`, `{identity: <sg-id>,
//! grant: "tcp:22-22", grant_type: "security_group_ingress"}`, `{identity: <DB instance
//! identifier or ARN>, grant_type: "db_instance"}`. Bucket names, group ids, DB identifiers,
//! grants and values are validated strictly before any request, and an unknown setting is
//! `unsupported` before any request. `default` takes `s3_kms_key_id` or
//! `rds_backup_retention_days` from the configuration; the plan shows the concrete value.
//!
//! Snapshots: a bucket's `default_encryption` (the exact rules, or `null`) and
//! `public_access_block` (four flags, or `null` when none is configured); a permission's
//! world-open ranges, each whole but for its rule id (a re-authorised rule gets a new id, so
//! drift is judged without it); a DB instance's `backup_retention_days`. Canonical ids: the
//! bucket name, the group id (with the permission), the DB instance's `DbiResourceId`.
//! `protected_resources` are matched against every name the snapshot resolves.
//! Not yet kept: an encryption rule's `BlockedEncryptionTypes` (added to S3 in 2025), which a
//! rollback therefore does not restore.
//!
//! Every write is read back before `execute` or `rollback` answers, and `verify` reads again.
//! A rollback refuses (conflict) when the target no longer shows the after-state. `reach`
//! counts dependants, shown in the plan: a bucket's static website hosting (`GetBucketWebsite`)
//! and CloudFront distributions with the bucket as an origin (`ListDistributions`); the
//! network interfaces using a security group (`DescribeNetworkInterfaces`, filter
//! `group-id`); a DB instance's read replicas.
//!
//! `BucketKeyEnabled` is set to true with SSE-KMS: S3 then asks KMS for a bucket-level key
//! instead of one data key per object, which cuts KMS requests (and cost) by up to 99% and
//! changes nothing for readers.
//!
//! Errors keep AWS's code, message and request id (`x-amz-request-id` or `<RequestId>`):
//! throttling codes are throttled (with `Retry-After` when sent), `AccessDenied` forbidden,
//! `NoSuchBucket` / `InvalidGroup.NotFound` / `DBInstanceNotFound` not found,
//! `InvalidDBInstanceState` / `OperationAborted` conflict, 5xx transient; see [`classify`].
//!
//! # Transport and build cost
//!
//! Requests are signed with `aws-sigv4` and sent with reqwest (rustls on ring, as the other
//! HTTP connectors), not with the AWS SDK: S3 is REST/XML, EC2 and RDS the Query API (form
//! POST, XML answers), read with the `xmlparser` tokenizer the IAM connector's SDK already
//! brings in. See the README's "Cloud posture" section for the measured build cost of both
//! choices.
//!
//! # Configuration
//!
//! ```
//! use remediation_connector_aws::{AwsConfig, AwsConnector, AwsCredentials};
//! use remediation_core::Connector;
//! use secrecy::SecretString;
//!
//! let config: AwsConfig = toml::from_str(r#"
//!     region = "eu-west-1"
//!     # endpoint_url = "http://127.0.0.1:5000"   # moto
//!     access_key_id_env = "REMEDIATION_AWS_ACCESS_KEY_ID"
//!     secret_access_key_env = "REMEDIATION_AWS_SECRET_ACCESS_KEY"
//!     s3_kms_key_id = "alias/posture"
//!     rds_backup_retention_days = 14
//!     protected_resources = ["terraform-state"]
//! "#).unwrap();
//! let credentials = AwsCredentials::new("AKIAEXAMPLE", SecretString::from("example-secret"));
//! let connector = AwsConnector::new(&config, credentials).unwrap();
//! assert_eq!(connector.id(), "aws");
//! assert!(!format!("{connector:?}").contains("example-secret"));
//! ```

mod access_key;
mod config;
mod connector;
mod credentials;
mod error;
mod iam;
mod services;
mod target;
mod transport;
mod xml;

pub use access_key::AFTER_CREATE_ACCESS_KEY;
pub use config::AwsConfig;
pub use connector::{AwsConnector, PERMISSION_MAP, capabilities};
pub use credentials::{AwsCredentials, CredentialSource, CredentialsError};
pub use error::AwsError;
pub use target::{
    DB_INSTANCE, IAM_ACCESS_KEY, RDS_BACKUP_RETENTION_DAYS, S3_BUCKET, S3_DEFAULT_ENCRYPTION, S3_PUBLIC_ACCESS_BLOCK,
    SECURITY_GROUP_INGRESS,
};
pub use transport::classify;

/// The catalog's entry for AWS cloud posture: `type = "aws"`, settings [`AwsConfig`].
pub static FACTORY: remediation_core::factory::Factory<AwsConfig> =
    remediation_core::factory::Factory::new("aws", "AWS cloud posture", Some(capabilities), |_id, config, context| {
        Ok(std::sync::Arc::new(AwsConnector::from_config(&config)?.with_failpoints(context.failpoints.clone())))
    });
