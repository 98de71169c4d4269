//! The mapping table: which scanner checks become which action on the AWS posture connector.
//!
//! A check that is not in [`RULES`] is reported as unsupported with its id; a check that is
//! in it with [`Remedy::Unsupported`] is reported with the rule's reason. Nothing is mapped by
//! a name that merely looks alike. README "Cloud posture → Findings from scanners" holds the
//! same table, written by [`markdown_table`] (a test keeps the two equal).

use remediation_core::{ActionKind, Target};

/// The connector id the actions are for (the operator may name another).
pub const AWS_CONNECTOR: &str = "aws";

/// Whose check ids a rule is keyed by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scanner {
    /// Prowler check ids (`metadata.event_code` in its OCSF output, `CheckID` in its metadata).
    Prowler,
    /// AWS Security Hub security control ids (`Compliance.SecurityControlId`).
    SecurityHub,
}

impl Scanner {
    /// The `source` of the findings it produces.
    pub fn source(self) -> &'static str {
        match self {
            Self::Prowler => "prowler",
            Self::SecurityHub => "aws-securityhub",
        }
    }
}

/// The kind of AWS resource a rule acts on, and how it is named.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ResourceKind {
    /// An S3 general purpose bucket: `arn:PARTITION:s3:::NAME`, target identity NAME.
    S3Bucket,
    /// An EC2 security group: `arn:PARTITION:ec2:REGION:ACCOUNT:security-group/sg-...`.
    SecurityGroup,
    /// An RDS DB instance: `arn:PARTITION:rds:REGION:ACCOUNT:db:NAME`, target identity the
    /// whole ARN (the connector refuses another region's or account's namesake).
    DbInstance,
    /// An IAM user's access key: `arn:PARTITION:iam::ACCOUNT:user/NAME`, target identity the
    /// whole ARN, no grant (the user's oldest key).
    IamUser,
}

impl ResourceKind {
    /// The target's `grant_type` in the AWS connector's vocabulary.
    pub fn grant_type(self) -> &'static str {
        match self {
            Self::S3Bucket => "s3_bucket",
            Self::SecurityGroup => "security_group_ingress",
            Self::DbInstance => "db_instance",
            Self::IamUser => "iam_access_key",
        }
    }

    /// The resource type as ASFF `Resources[].Type` and Prowler's `ResourceType` spell it.
    pub fn aws_type(self) -> &'static str {
        match self {
            Self::S3Bucket => "AwsS3Bucket",
            Self::SecurityGroup => "AwsEc2SecurityGroup",
            Self::DbInstance => "AwsRdsDbInstance",
            Self::IamUser => "AwsIamUser",
        }
    }

    /// The identity the target names, read from the resource's ARN.
    pub fn identity(self, arn: &str) -> Result<String, super::arn::ArnError> {
        match self {
            Self::S3Bucket => super::arn::s3_bucket(arn),
            Self::SecurityGroup => super::arn::security_group(arn),
            Self::DbInstance => super::arn::db_instance(arn),
            Self::IamUser => super::arn::iam_user(arn),
        }
    }
}

/// What a check asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Remedy {
    /// Set `setting` of the resource to `value` (`default`: the connector's configured value).
    Enforce {
        /// The setting, in the AWS connector's vocabulary.
        setting: &'static str,
        /// The compliant value.
        value: &'static str,
        /// The resource it is set on.
        on: ResourceKind,
    },
    /// Remove the grant `grant` (an ingress rule, `tcp:FROM-TO`) from the resource.
    Revoke {
        /// The grant, in the AWS connector's vocabulary.
        grant: &'static str,
        /// The resource it is removed from.
        on: ResourceKind,
    },
    /// Replace the credential of the resource (an IAM user's oldest access key).
    Rotate {
        /// The resource whose credential is rotated.
        on: ResourceKind,
    },
    /// Listed so that the reason is given, but not turned into an action.
    Unsupported {
        /// Why.
        reason: &'static str,
    },
}

impl Remedy {
    /// The action kind and target for the resource named by `arn`.
    pub fn action(&self, arn: &str) -> Option<Result<(ActionKind, Target), super::arn::ArnError>> {
        let (kind, on, grant) = match *self {
            Self::Enforce { setting, value, on } => {
                (ActionKind::Enforce { setting: setting.to_owned(), value: value.to_owned() }, on, None)
            }
            Self::Revoke { grant, on } => (ActionKind::Revoke, on, Some(grant.to_owned())),
            Self::Rotate { on } => (ActionKind::Rotate, on, None),
            Self::Unsupported { .. } => return None,
        };
        Some(
            on.identity(arn).map(|identity| {
                (kind, Target { identity, resource: None, grant, grant_type: on.grant_type().to_owned() })
            }),
        )
    }
}

/// One line of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    /// Whose check id this is.
    pub scanner: Scanner,
    /// The check id or control id, exactly as the scanner spells it.
    pub check: &'static str,
    /// What the check verifies, in the scanner's words (shortened).
    pub title: &'static str,
    /// What it becomes.
    pub remedy: Remedy,
    /// What an operator should know (status of the check, what `default` must mean).
    pub note: &'static str,
}

/// The table. Sources: Prowler 5.x check metadata
/// (`prowler/providers/aws/services/*/*/*.metadata.json`, `CheckID`, `ResourceType`) and the
/// AWS Security Hub CSPM control reference (security control ids).
pub const RULES: &[Rule] = &[
    Rule {
        scanner: Scanner::Prowler,
        check: "s3_bucket_default_encryption",
        title: "S3 bucket has default server-side encryption (SSE) enabled",
        remedy: Remedy::Enforce { setting: "s3_default_encryption", value: "default", on: ResourceKind::S3Bucket },
        note: "marked [DEPRECATED] in Prowler 5.x metadata; still read from older reports",
    },
    Rule {
        scanner: Scanner::Prowler,
        check: "s3_bucket_kms_encryption",
        title: "S3 bucket has server-side encryption with AWS KMS",
        remedy: Remedy::Enforce { setting: "s3_default_encryption", value: "default", on: ResourceKind::S3Bucket },
        note: "passes only when the connector's configured default encryption is SSE-KMS",
    },
    Rule {
        scanner: Scanner::Prowler,
        check: "s3_bucket_level_public_access_block",
        title: "S3 bucket has Block Public Access enabled at bucket or account level",
        remedy: Remedy::Enforce { setting: "s3_public_access_block", value: "all", on: ResourceKind::S3Bucket },
        note: "",
    },
    Rule {
        scanner: Scanner::Prowler,
        check: "ec2_securitygroup_allow_ingress_from_internet_to_tcp_port_22",
        title: "Security group does not allow ingress from 0.0.0.0/0 or ::/0 to TCP port 22",
        remedy: Remedy::Revoke { grant: "tcp:22-22", on: ResourceKind::SecurityGroup },
        note: "",
    },
    Rule {
        scanner: Scanner::Prowler,
        check: "rds_instance_backup_enabled",
        title: "RDS instance has backup retention period greater than 0 days",
        remedy: Remedy::Enforce {
            setting: "rds_backup_retention_days",
            value: "default",
            on: ResourceKind::DbInstance,
        },
        note: "",
    },
    Rule {
        scanner: Scanner::Prowler,
        check: "iam_rotate_access_key_90_days",
        title: "IAM user does not have active access keys older than 90 days",
        remedy: Remedy::Rotate { on: ResourceKind::IamUser },
        note: "the finding names the user, not the key: the action rotates the user's oldest key, and the plan names it",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "S3.4",
        title: "S3 buckets should have server-side encryption enabled",
        remedy: Remedy::Enforce { setting: "s3_default_encryption", value: "default", on: ResourceKind::S3Bucket },
        note: "believed retired (S3 encrypts new objects with SSE-S3 by default since January 2023); not confirmed against the current control reference, which lists active controls only; read from older findings",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "S3.17",
        title: "S3 general purpose buckets should be encrypted at rest with AWS KMS keys",
        remedy: Remedy::Enforce { setting: "s3_default_encryption", value: "default", on: ResourceKind::S3Bucket },
        note: "passes only when the connector's configured default encryption is SSE-KMS",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "S3.8",
        title: "S3 general purpose buckets should block public access",
        remedy: Remedy::Enforce { setting: "s3_public_access_block", value: "all", on: ResourceKind::S3Bucket },
        note: "",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "EC2.13",
        title: "Security groups should not allow ingress from 0.0.0.0/0 or ::/0 to port 22",
        remedy: Remedy::Revoke { grant: "tcp:22-22", on: ResourceKind::SecurityGroup },
        note: "",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "EC2.19",
        title: "Security groups should not allow unrestricted access to ports with high risk",
        remedy: Remedy::Unsupported {
            reason: "EC2.19 covers a list of high-risk ports and its finding names none of them in a field this reader knows; the rule to revoke is not guessed",
        },
        note: "",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "RDS.11",
        title: "RDS instances should have automatic backups enabled",
        remedy: Remedy::Enforce {
            setting: "rds_backup_retention_days",
            value: "default",
            on: ResourceKind::DbInstance,
        },
        note: "",
    },
    Rule {
        scanner: Scanner::SecurityHub,
        check: "IAM.3",
        title: "IAM users' access keys should be rotated every 90 days or less",
        remedy: Remedy::Rotate { on: ResourceKind::IamUser },
        note: "the finding names the user, not the key: the action rotates the user's oldest key, and the plan names it",
    },
];

/// The rule for `check` of `scanner`, if the table has one.
pub fn lookup(scanner: Scanner, check: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.scanner == scanner && r.check == check)
}

/// The table as Markdown, as README shows it.
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| Scanner | Check / control | What it checks | Action on connector `aws` | Target | Note |\n|---|---|---|---|---|---|\n",
    );
    for r in RULES {
        let (action, target) = match r.remedy {
            Remedy::Enforce { setting, value, on } => (
                format!("enforce `{setting}` = `{value}`"),
                format!("identity from `{}` ARN, grant_type `{}`", on.aws_type(), on.grant_type()),
            ),
            Remedy::Revoke { grant, on } => (
                "revoke".to_owned(),
                format!("identity from `{}` ARN, grant `{grant}`, grant_type `{}`", on.aws_type(), on.grant_type()),
            ),
            Remedy::Rotate { on } => (
                "rotate".to_owned(),
                format!("identity from `{}` ARN, grant_type `{}`", on.aws_type(), on.grant_type()),
            ),
            Remedy::Unsupported { reason } => (format!("unsupported: {reason}"), String::new()),
        };
        out.push_str(&format!(
            "| {} | `{}` | {} | {action} | {target} | {} |\n",
            r.scanner.source(),
            r.check,
            r.title,
            r.note
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_appears_once() {
        for (i, r) in RULES.iter().enumerate() {
            assert!(RULES[i + 1..].iter().all(|o| (o.scanner, o.check) != (r.scanner, r.check)), "{} twice", r.check);
        }
    }

    #[test]
    fn readme_shows_the_table() {
        let readme = include_str!("../../../../README.md");
        assert!(
            readme.contains(&markdown_table()),
            "README's table under \"Findings from scanners\" is stale; replace it with:\n{}",
            markdown_table()
        );
    }
}
