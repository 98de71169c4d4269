//! Amazon Resource Names, parsed strictly: a finding names the resource to change by its ARN,
//! and a resource that cannot be named exactly is never acted on.
//!
//! `arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`, with a known partition, a lowercase
//! service, an account of twelve digits (or empty where the service has none), and a resource
//! in printable ASCII without `..`, empty path segments or whitespace. The typed readers below
//! then check the service and the resource form of the one resource type they accept.

/// Why a string is not an ARN of the expected kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
#[error("`{arn}` is not {expected}: {reason}")]
pub struct ArnError {
    /// The string as given (cut to 200 characters).
    pub arn: String,
    /// What was expected (`an ARN`, `an S3 bucket ARN`, ...).
    pub expected: &'static str,
    /// What is wrong with it.
    pub reason: String,
}

/// The partitions AWS documents (`aws`, China, GovCloud, the isolated and sovereign ones).
pub const PARTITIONS: &[&str] =
    &["aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"];

/// The longest ARN read (IAM documents 2048 characters as the longest ARN).
const MAX_LEN: usize = 2048;

/// An ARN split into its six fields.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arn<'a> {
    /// `aws`, `aws-cn`, ...
    pub partition: &'a str,
    /// `s3`, `ec2`, `rds`, ...
    pub service: &'a str,
    /// The region, empty for global resources.
    pub region: &'a str,
    /// The twelve-digit account, empty where the service leaves it out (S3 buckets).
    pub account: &'a str,
    /// Everything after the fifth colon.
    pub resource: &'a str,
}

fn err(arn: &str, expected: &'static str, reason: impl Into<String>) -> ArnError {
    ArnError { arn: arn.chars().take(200).collect(), expected, reason: reason.into() }
}

/// Parses `text` as an ARN (the module docs say how strictly).
pub fn parse(text: &str) -> Result<Arn<'_>, ArnError> {
    const WHAT: &str = "an ARN";
    if text.len() > MAX_LEN {
        return Err(err(text, WHAT, format!("longer than {MAX_LEN} characters")));
    }
    if let Some(c) = text.chars().find(|c| !c.is_ascii_graphic()) {
        return Err(err(text, WHAT, format!("it contains {c:?}, which no ARN read here contains")));
    }
    let mut parts = text.splitn(6, ':');
    let mut next = || parts.next();
    let (Some(prefix), Some(partition), Some(service), Some(region), Some(account), Some(resource)) =
        (next(), next(), next(), next(), next(), next())
    else {
        return Err(err(text, WHAT, "an ARN has six fields separated by `:`"));
    };
    if prefix != "arn" {
        return Err(err(text, WHAT, "it does not start with `arn:`"));
    }
    if !PARTITIONS.contains(&partition) {
        return Err(err(text, WHAT, format!("unknown partition `{partition}` (known: {})", PARTITIONS.join(", "))));
    }
    if service.is_empty() || !service.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(err(text, WHAT, format!("`{service}` is not a service name")));
    }
    if !region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') {
        return Err(err(text, WHAT, format!("`{region}` is not a region")));
    }
    if !(account.is_empty() || (account.len() == 12 && account.bytes().all(|b| b.is_ascii_digit()))) {
        return Err(err(text, WHAT, format!("`{account}` is not a twelve-digit account")));
    }
    if resource.is_empty() {
        return Err(err(text, WHAT, "the resource is empty"));
    }
    if resource.contains("..") || resource.contains("//") || resource.split('/').any(|s| s == ".") {
        return Err(err(text, WHAT, "the resource contains `..`, `.` or an empty path segment"));
    }
    Ok(Arn { partition, service, region, account, resource })
}

/// The bucket name of an S3 bucket ARN (`arn:aws:s3:::NAME`).
pub fn s3_bucket(text: &str) -> Result<String, ArnError> {
    const WHAT: &str = "an S3 bucket ARN";
    let arn = parse(text).map_err(|e| ArnError { expected: WHAT, ..e })?;
    if arn.service != "s3" {
        return Err(err(text, WHAT, format!("its service is `{}`, not `s3`", arn.service)));
    }
    if !arn.region.is_empty() || !arn.account.is_empty() {
        return Err(err(
            text,
            WHAT,
            "a bucket ARN has no region and no account (an access point or directory bucket is not a general purpose bucket)",
        ));
    }
    let name = arn.resource;
    if name.contains('/') {
        return Err(err(text, WHAT, "it names an object or a path inside a bucket, not the bucket"));
    }
    if let Some(reason) = bucket_name_problem(name) {
        return Err(err(text, WHAT, reason));
    }
    Ok(name.to_owned())
}

/// What makes `name` an invalid general purpose bucket name, by the S3 naming rules.
fn bucket_name_problem(name: &str) -> Option<String> {
    let bytes = name.as_bytes();
    if !(3..=63).contains(&bytes.len()) {
        return Some(format!("a bucket name has 3 to 63 characters, `{name}` has {}", bytes.len()));
    }
    if !bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'.' || *b == b'-') {
        return Some(format!("`{name}` has characters other than lowercase letters, digits, `.` and `-`"));
    }
    let alnum = |b: Option<&u8>| b.is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if !alnum(bytes.first()) || !alnum(bytes.last()) {
        return Some(format!("`{name}` does not begin and end with a letter or digit"));
    }
    if name.contains(".-") || name.contains("-.") {
        return Some(format!("`{name}` has a `.` next to a `-`"));
    }
    if name.split('.').count() == 4 && name.split('.').all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())) {
        return Some(format!("`{name}` is formatted as an IP address"));
    }
    None
}

/// The group id of an EC2 security group ARN
/// (`arn:aws:ec2:REGION:ACCOUNT:security-group/sg-...`).
pub fn security_group(text: &str) -> Result<String, ArnError> {
    const WHAT: &str = "an EC2 security group ARN";
    let arn = parse(text).map_err(|e| ArnError { expected: WHAT, ..e })?;
    if arn.service != "ec2" {
        return Err(err(text, WHAT, format!("its service is `{}`, not `ec2`", arn.service)));
    }
    if arn.region.is_empty() || arn.account.is_empty() {
        return Err(err(text, WHAT, "a security group ARN names a region and an account"));
    }
    let Some(id) = arn.resource.strip_prefix("security-group/") else {
        return Err(err(text, WHAT, format!("the resource `{}` is not `security-group/sg-...`", arn.resource)));
    };
    let hex = id.strip_prefix("sg-").unwrap_or_default();
    if !(hex.len() == 8 || hex.len() == 17) || !hex.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
        return Err(err(
            text,
            WHAT,
            format!("`{id}` is not a security group id (`sg-` and 8 or 17 hexadecimal digits)"),
        ));
    }
    Ok(id.to_owned())
}

/// An RDS DB instance ARN (`arn:aws:rds:REGION:ACCOUNT:db:NAME`), checked and kept whole:
/// an identifier is unique only within a region and an account, so the connector must see
/// both to refuse a finding about another region's or account's namesake.
pub fn db_instance(text: &str) -> Result<String, ArnError> {
    const WHAT: &str = "an RDS DB instance ARN";
    let arn = parse(text).map_err(|e| ArnError { expected: WHAT, ..e })?;
    if arn.service != "rds" {
        return Err(err(text, WHAT, format!("its service is `{}`, not `rds`", arn.service)));
    }
    if arn.region.is_empty() || arn.account.is_empty() {
        return Err(err(text, WHAT, "a DB instance ARN names a region and an account"));
    }
    let Some(name) = arn.resource.strip_prefix("db:") else {
        return Err(err(
            text,
            WHAT,
            format!("the resource `{}` is not `db:NAME` (a cluster or snapshot is not a DB instance)", arn.resource),
        ));
    };
    let bytes = name.as_bytes();
    let valid = (1..=63).contains(&bytes.len())
        && bytes.first().is_some_and(u8::is_ascii_alphabetic)
        && bytes.iter().all(|b| b.is_ascii_alphanumeric() || *b == b'-')
        && !name.ends_with('-')
        && !name.contains("--");
    if !valid {
        return Err(err(
            text,
            WHAT,
            format!(
                "`{name}` is not a DB instance identifier (1 to 63 letters, digits or single hyphens, starting with a letter)"
            ),
        ));
    }
    Ok(text.to_owned())
}

/// An IAM user ARN (`arn:aws:iam::ACCOUNT:user/PATH/NAME`), checked and kept whole: a user
/// name is unique only within an account, so the connector compares the whole ARN with the
/// user it finds and refuses another account's namesake.
pub fn iam_user(text: &str) -> Result<String, ArnError> {
    const WHAT: &str = "an IAM user ARN";
    let arn = parse(text).map_err(|e| ArnError { expected: WHAT, ..e })?;
    if arn.service != "iam" {
        return Err(err(text, WHAT, format!("its service is `{}`, not `iam`", arn.service)));
    }
    if !arn.region.is_empty() || arn.account.is_empty() {
        return Err(err(text, WHAT, "an IAM user ARN has no region and names an account"));
    }
    let Some(path) = arn.resource.strip_prefix("user/") else {
        return Err(err(
            text,
            WHAT,
            format!("the resource `{}` is not `user/NAME` (a role is not a user)", arn.resource),
        ));
    };
    let name = path.rsplit('/').next().unwrap_or_default();
    let valid = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b',' | b'.' | b'@' | b'_' | b'-'));
    if !valid {
        return Err(err(text, WHAT, format!("`{name}` is not an IAM user name (1 to 64 letters, digits and +=,.@_-)")));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[track_caller]
    fn check<T: std::fmt::Debug + PartialEq>(got: Result<T, ArnError>, expected: Result<T, &str>) {
        match (got, expected) {
            (Ok(g), Ok(e)) => assert_eq!(g, e),
            (Err(g), Err(e)) => assert!(g.to_string().contains(e), "`{g}` does not say `{e}`"),
            (g, e) => panic!("got {g:?}, expected {e:?}"),
        }
    }

    #[test]
    fn buckets() {
        check(s3_bucket("arn:aws:s3:::amzn-s3-demo-bucket"), Ok("amzn-s3-demo-bucket".to_owned()));
        check(s3_bucket("arn:aws-cn:s3:::logs.example"), Ok("logs.example".to_owned()));
        check(s3_bucket("arn:aws:s3:::bucket/key"), Err("an object or a path"));
        check(s3_bucket("arn:aws:s3:::bucket/../other"), Err("`..`"));
        check(s3_bucket("arn:aws:iam::123456789012:user/bucket"), Err("not `s3`"));
        check(s3_bucket("arn:aws:s3:us-east-1:123456789012:accesspoint/ap"), Err("no region and no account"));
        check(s3_bucket("arn:aws:s3:::Upper"), Err("other than lowercase"));
        check(s3_bucket("arn:aws:s3:::ab"), Err("3 to 63"));
        check(s3_bucket("arn:aws:s3:::192.168.1.1"), Err("IP address"));
        check(s3_bucket("arn:foo:s3:::bucket"), Err("unknown partition"));
        check(s3_bucket("arn:aws:s3::bucket"), Err("six fields"));
        check(s3_bucket("urn:aws:s3:::bucket"), Err("does not start with `arn:`"));
        check(s3_bucket("arn:aws:s3:::buck et"), Err("contains ' '"));
        check(s3_bucket("arn:aws:s3:::bucket\n"), Err("contains '\\n'"));
        check(s3_bucket(""), Err("six fields"));
    }

    #[test]
    fn security_groups() {
        check(
            security_group("arn:aws:ec2:eu-west-1:123456789012:security-group/sg-0123456789abcdef0"),
            Ok("sg-0123456789abcdef0".to_owned()),
        );
        check(
            security_group("arn:aws:ec2:eu-west-1:123456789012:security-group/sg-1a2b3c4d"),
            Ok("sg-1a2b3c4d".to_owned()),
        );
        check(
            security_group("arn:aws:ec2:eu-west-1:123456789012:instance/i-0123456789abcdef0"),
            Err("security-group/sg-"),
        );
        check(
            security_group("arn:aws:ec2:eu-west-1:123456789012:security-group/sg-XYZ"),
            Err("not a security group id"),
        );
        check(security_group("arn:aws:ec2:eu-west-1:123456789012:security-group/../sg-1a2b3c4d"), Err("`..`"));
        check(security_group("arn:aws:ec2:eu-west-1:1234:security-group/sg-1a2b3c4d"), Err("twelve-digit"));
        check(security_group("arn:aws:rds:eu-west-1:123456789012:security-group/sg-1a2b3c4d"), Err("not `ec2`"));
    }

    #[test]
    fn db_instances() {
        // Kept whole: the region and account tell namesakes apart.
        check(
            db_instance("arn:aws:rds:us-east-1:123456789012:db:orders-prod"),
            Ok("arn:aws:rds:us-east-1:123456789012:db:orders-prod".to_owned()),
        );
        check(db_instance("arn:aws:rds:us-east-1:123456789012:cluster:orders"), Err("not `db:NAME`"));
        check(db_instance("arn:aws:rds:us-east-1:123456789012:db:1orders"), Err("not a DB instance identifier"));
        check(db_instance("arn:aws:rds:us-east-1:123456789012:db:a--b"), Err("not a DB instance identifier"));
        check(db_instance("arn:aws:rds:us-east-1::db:orders"), Err("region and an account"));
        check(db_instance("arn:aws:s3:::orders"), Err("not `rds`"));
    }

    #[test]
    fn iam_users() {
        let alice = "arn:aws:iam::123456789012:user/alice";
        check(iam_user(alice), Ok(alice.to_owned()));
        check(
            iam_user("arn:aws:iam::123456789012:user/team/ci/deployer"),
            Ok("arn:aws:iam::123456789012:user/team/ci/deployer".to_owned()),
        );
        check(iam_user("arn:aws:iam::123456789012:role/alice"), Err("a role is not a user"));
        check(iam_user("arn:aws:iam:us-east-1:123456789012:user/alice"), Err("no region"));
        check(iam_user("arn:aws:iam:::user/alice"), Err("names an account"));
        check(iam_user("arn:aws:iam::123456789012:user/team/../alice"), Err("`..`"));
        check(iam_user("arn:aws:iam::123456789012:user/al?ce"), Err("not an IAM user name"));
        check(iam_user("arn:aws:sts::123456789012:assumed-role/x/alice"), Err("not `iam`"));
    }
}
