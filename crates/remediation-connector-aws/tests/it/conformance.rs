//! The AWS cloud-posture connector passes the semantic connector conformance suite against
//! moto, with enforce and revoke cases built here.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use remediation_connector_aws::{AwsCredentials, DB_INSTANCE, IAM_ACCESS_KEY, S3_BUCKET, SECURITY_GROUP_INGRESS};
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};
use secrecy::ExposeSecret;

use crate::block_on;
use crate::moto::{self, Seed, fresh};

struct Moto {
    url: String,
    seed: Seed,
    credentials: AwsCredentials,
    /// A bucket, a DB instance and an IAM user the connector protects.
    protected_bucket: String,
    protected_db: String,
    protected_user: String,
}

fn target(grant_type: &str, identity: &str, grant: Option<&str>) -> Target {
    Target { identity: identity.into(), resource: None, grant: grant.map(Into::into), grant_type: grant_type.into() }
}

fn enforce(setting: &str, value: &str) -> ActionKind {
    ActionKind::Enforce { setting: setting.into(), value: value.into() }
}

#[async_trait]
impl Subject for Moto {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::new(moto::connector(
            &self.url,
            self.credentials.clone(),
            &[&self.protected_bucket, &self.protected_db, &self.protected_user],
        ))
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", moto::connector(&self.url, self.credentials.clone(), &[]))
    }

    fn secrets(&self) -> Vec<String> {
        let mut secrets = vec![self.credentials.secret_access_key.expose_secret().to_owned()];
        secrets.extend(self.credentials.session_token.as_ref().map(|t| t.expose_secret().to_owned()));
        secrets
    }

    async fn cases(&self) -> Vec<Case> {
        let encrypted = fresh("posture-enc");
        self.seed.bucket(&encrypted).await;
        let blocked = fresh("posture-pab");
        self.seed.bucket(&blocked).await;
        let group = self.seed.security_group().await;
        let db = self.seed.db(1).await;
        let rotated = fresh("conformance-rotate");
        let (_, key) = self.seed.iam_user_with_key(&rotated).await;
        let retired = fresh("conformance-delete");
        let (_, old) = self.seed.iam_user_with_key(&retired).await;
        let inactive =
            [("Action", "UpdateAccessKey"), ("UserName", &retired), ("AccessKeyId", &old), ("Status", "Inactive")];
        self.seed.query("iam", &inactive).await;
        vec![
            Case::new("access key rotation", ActionKind::Rotate, target(IAM_ACCESS_KEY, &rotated, Some(&key))),
            Case::new("inactive access key deletion", ActionKind::Revoke, target(IAM_ACCESS_KEY, &retired, Some(&old))),
            Case::new(
                "s3 default encryption",
                enforce("s3_default_encryption", "default"),
                target(S3_BUCKET, &encrypted, None),
            ),
            Case::new(
                "s3 public access block",
                enforce("s3_public_access_block", "all"),
                target(S3_BUCKET, &blocked, None),
            ),
            Case::new("world-open ssh", ActionKind::Revoke, target(SECURITY_GROUP_INGRESS, &group, Some("tcp:22-22"))),
            Case::new(
                "rds backup retention",
                enforce("rds_backup_retention_days", "14"),
                target(DB_INSTANCE, &db, None),
            ),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        match grant_type {
            S3_BUCKET => target(S3_BUCKET, &fresh("no-such-bucket"), None),
            SECURITY_GROUP_INGRESS => target(SECURITY_GROUP_INGRESS, "sg-0000000000000dead", Some("tcp:22-22")),
            IAM_ACCESS_KEY => target(IAM_ACCESS_KEY, &fresh("no-such-user"), Some("AKIA0000000000000000")),
            _ => target(grant_type, &fresh("no-such-db"), None),
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        // moto's IAM enforcement covers S3 but not every EC2 and RDS call; the forbidden
        // mapping (AccessDenied, UnauthorizedOperation) is covered by the classify tests.
        None
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        let db_arn = {
            let out = self
                .seed
                .query("rds", &[("Action", "DescribeDBInstances"), ("DBInstanceIdentifier", &self.protected_db)])
                .await;
            moto::between(&out, "DBInstanceArn").unwrap()
        };
        vec![
            AliasCase::new(
                "the bucket's ARN",
                enforce("s3_public_access_block", "all"),
                target(S3_BUCKET, &self.protected_bucket, None),
                target(S3_BUCKET, &format!("arn:aws:s3:::{}", self.protected_bucket), None),
            ),
            AliasCase::new(
                "the DB instance's ARN",
                enforce("rds_backup_retention_days", "7"),
                target(DB_INSTANCE, &self.protected_db, None),
                target(DB_INSTANCE, &db_arn, None),
            ),
            AliasCase::new(
                "the IAM user's ARN",
                ActionKind::Rotate,
                target(IAM_ACCESS_KEY, &self.protected_user, None),
                target(IAM_ACCESS_KEY, &format!("arn:aws:iam::123456789012:user/{}", self.protected_user), None),
            ),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        None
    }

    fn settle(&self) -> Duration {
        Duration::ZERO
    }
}

#[test]
fn aws_passes_the_semantic_suite_against_moto() {
    let Some(url) = moto::url("aws_passes_the_semantic_suite_against_moto") else {
        return;
    };
    let seed = Seed::new(&url);
    let protected_bucket = fresh("posture-protected");
    let protected_user = fresh("conformance-protected");
    let protected_db = block_on(async {
        seed.bucket(&protected_bucket).await;
        seed.iam_user_with_key(&protected_user).await;
        seed.db(1).await
    });
    let subject =
        Moto { url, seed, credentials: moto::dummy_credentials(), protected_bucket, protected_db, protected_user };
    block_on(conformance::semantic(&subject));
}
