//! Strict validation of every identifier, grant and value before any request: a bucket name,
//! a security group id, a DB instance identifier, an ingress grant and each setting's value.
//! Nothing a target says can change a request's structure (its path, host or parameters).

use remediation_core::{ActionKind, ConnectorError};

/// The grant type of an S3 bucket's settings.
pub const S3_BUCKET: &str = "s3_bucket";
/// The grant type of a security group's ingress permission.
pub const SECURITY_GROUP_INGRESS: &str = "security_group_ingress";
/// The grant type of an RDS DB instance's settings.
pub const DB_INSTANCE: &str = "db_instance";
/// The grant type of an IAM user's access key (`rotate`; `revoke` deletes an inactive one).
pub const IAM_ACCESS_KEY: &str = "iam_access_key";

/// Setting: a bucket's default encryption, SSE-KMS with the given key.
pub const S3_DEFAULT_ENCRYPTION: &str = "s3_default_encryption";
/// Setting: a bucket's public access block, all four flags.
pub const S3_PUBLIC_ACCESS_BLOCK: &str = "s3_public_access_block";
/// Setting: a DB instance's automated backup retention, in days.
pub const RDS_BACKUP_RETENTION_DAYS: &str = "rds_backup_retention_days";

/// A bucket name as S3's naming rules allow for general purpose buckets: 3 to 63 lowercase
/// letters, digits, hyphens and dots, starting and ending with a letter or digit, no `..`,
/// not shaped like an IP address, without the reserved prefixes and suffixes.
pub(crate) fn valid_bucket(name: &str) -> bool {
    let bytes = name.as_bytes();
    (3..=63).contains(&bytes.len())
        && bytes.iter().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'-' || *b == b'.')
        && bytes.first().is_some_and(u8::is_ascii_alphanumeric)
        && bytes.last().is_some_and(u8::is_ascii_alphanumeric)
        && !name.contains("..")
        && !name.contains(".-")
        && !name.contains("-.")
        && name.parse::<std::net::Ipv4Addr>().is_err()
        && !["xn--", "sthree-", "amzn-s3-demo-"].iter().any(|p| name.starts_with(p))
        && !["-s3alias", "--ol-s3", ".mrap", "--x-s3"].iter().any(|s| name.ends_with(s))
}

/// The bucket a target's identity names: its name, or its ARN `arn:<partition>:s3:::<name>`.
pub(crate) fn bucket_of(identity: &str) -> Result<&str, ConnectorError> {
    let name = match identity.strip_prefix("arn:") {
        Some(rest) => rest
            .split_once(":s3:::")
            .filter(|(partition, _)| valid_partition(partition))
            .map(|(_, name)| name)
            .ok_or_else(|| {
                ConnectorError::invalid_target(format!("`{}` is not an S3 bucket ARN", identity.escape_debug()))
            })?,
        None => identity,
    };
    if !valid_bucket(name) {
        return Err(ConnectorError::invalid_target(format!(
            "`{}` is not a valid S3 bucket name",
            identity.escape_debug()
        )));
    }
    Ok(name)
}

fn valid_partition(p: &str) -> bool {
    matches!(p, "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f" | "aws-eusc")
}

/// A security group id: `sg-` and 8 or 17 lowercase hexadecimal digits.
pub(crate) fn security_group_of(identity: &str) -> Result<&str, ConnectorError> {
    let ok = identity.strip_prefix("sg-").is_some_and(|h| {
        matches!(h.len(), 8 | 17) && h.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    });
    if ok {
        Ok(identity)
    } else {
        Err(ConnectorError::invalid_target(format!(
            "`{}` is not a security group id (sg- and 8 or 17 hexadecimal digits)",
            identity.escape_debug()
        )))
    }
}

/// A DB instance identifier: 1 to 63 letters, digits and hyphens, starting with a letter,
/// without `--` or a trailing hyphen.
pub(crate) fn valid_db_identifier(id: &str) -> bool {
    let b = id.as_bytes();
    (1..=63).contains(&b.len())
        && b.first().is_some_and(u8::is_ascii_alphabetic)
        && b.iter().all(|c| c.is_ascii_alphanumeric() || *c == b'-')
        && !id.ends_with('-')
        && !id.contains("--")
}

/// The DB instance a target names: its identifier (lowercased, as RDS stores it) and, when
/// the identity was an ARN `arn:<partition>:rds:<region>:<account>:db:<identifier>`, that ARN.
pub(crate) fn db_instance_of(identity: &str) -> Result<(String, Option<&str>), ConnectorError> {
    let invalid = || {
        ConnectorError::invalid_target(format!(
            "`{}` is not a DB instance identifier or DB instance ARN",
            identity.escape_debug()
        ))
    };
    let (id, arn) = match identity.strip_prefix("arn:") {
        Some(rest) => {
            let parts: Vec<&str> = rest.split(':').collect();
            let [partition, "rds", region, account, "db", id] = parts.as_slice() else { return Err(invalid()) };
            let region_ok =
                !region.is_empty() && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
            if !valid_partition(partition)
                || !region_ok
                || account.len() != 12
                || !account.bytes().all(|b| b.is_ascii_digit())
            {
                return Err(invalid());
            }
            (*id, Some(identity))
        }
        None => (identity, None),
    };
    if !valid_db_identifier(id) {
        return Err(invalid());
    }
    Ok((id.to_ascii_lowercase(), arn))
}

/// The IAM user a target's identity names: its name (1 to 64 of letters, digits and
/// `+=,.@_-`), or its ARN `arn:<partition>:iam::<account>:user/<path/><name>`.
pub(crate) fn iam_user_of(identity: &str) -> Result<&str, ConnectorError> {
    let invalid =
        || ConnectorError::invalid_target(format!("`{}` is not an IAM user name or user ARN", identity.escape_debug()));
    let name = match identity.strip_prefix("arn:") {
        Some(rest) => {
            let (partition, rest) = rest.split_once(":iam::").ok_or_else(invalid)?;
            let (account, path) = rest.split_once(":user/").ok_or_else(invalid)?;
            if !valid_partition(partition) || account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
                return Err(invalid());
            }
            // The path is `/` or `/seg/.../`; the name is what follows its last `/`.
            let name = path.rsplit('/').next().unwrap_or_default();
            let prefix = &path[..path.len() - name.len()];
            if !prefix.split('/').filter(|s| !s.is_empty()).all(valid_path_segment) {
                return Err(invalid());
            }
            name
        }
        None => identity,
    };
    if valid_iam_user(name) { Ok(name) } else { Err(invalid()) }
}

pub(crate) fn valid_iam_user(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'=' | b',' | b'.' | b'@' | b'_' | b'-'))
}

fn valid_path_segment(seg: &str) -> bool {
    seg.len() <= 512 && seg.bytes().all(|b| (0x21..=0x7e).contains(&b))
}

/// An access key id as IAM issues them: 16 to 128 uppercase letters and digits.
pub(crate) fn access_key_of(grant: &str) -> Result<&str, ConnectorError> {
    let ok = (16..=128).contains(&grant.len()) && grant.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit());
    if ok {
        Ok(grant)
    } else {
        Err(ConnectorError::invalid_target(format!(
            "the grant `{}` is not an access key id (16 to 128 uppercase letters and digits)",
            grant.escape_debug()
        )))
    }
}

/// The Secrets Manager name `template` gives `user`'s key: `{user}` replaced by the name.
/// Secrets Manager names hold letters, digits and `/_+=.@-` only, so a user whose name has a
/// comma cannot have one.
pub(crate) fn secret_name(template: &str, user: &str) -> Result<String, ConnectorError> {
    let name = template.replace("{user}", user);
    if valid_secret_name(&name) {
        Ok(name)
    } else {
        Err(ConnectorError::invalid_target(format!(
            "`{}` is not a Secrets Manager name (letters, digits and /_+=.@-), so {user}'s new key has nowhere to go; \
             rotate it by hand or rename the user",
            name.escape_debug()
        )))
    }
}

/// Whether `name` is a Secrets Manager secret name: 1 to 512 letters, digits and `/_+=.@-`.
pub(crate) fn valid_secret_name(name: &str) -> bool {
    (1..=512).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'+' | b'=' | b'.' | b'@' | b'-'))
}

/// An IP protocol an ingress grant names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Udp => "udp",
        }
    }
}

/// An ingress permission: protocol and port range, from `tcp:22-22`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Permission {
    pub(crate) protocol: Protocol,
    pub(crate) from: u16,
    pub(crate) to: u16,
}

impl Permission {
    /// Parses `<tcp|udp>:<from>-<to>` (ports 0 to 65535, from <= to, decimal digits only).
    pub(crate) fn parse(grant: Option<&str>) -> Result<Self, ConnectorError> {
        let raw = grant.unwrap_or_default();
        let invalid = || {
            ConnectorError::invalid_target(format!(
                "the grant `{}` is not `<tcp|udp>:<from>-<to>` (for example `tcp:22-22`)",
                raw.escape_debug()
            ))
        };
        let (protocol, ports) = raw.split_once(':').ok_or_else(invalid)?;
        let protocol = match protocol {
            "tcp" => Protocol::Tcp,
            "udp" => Protocol::Udp,
            _ => return Err(invalid()),
        };
        let (from, to) = ports.split_once('-').ok_or_else(invalid)?;
        let port = |p: &str| {
            if p.is_empty() || p.len() > 5 || !p.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            p.parse::<u16>().ok()
        };
        let (from, to) = (port(from).ok_or_else(invalid)?, port(to).ok_or_else(invalid)?);
        if from > to {
            return Err(invalid());
        }
        Ok(Self { protocol, from, to })
    }

    /// The grant's text form, `tcp:22-22`.
    pub(crate) fn label(&self) -> String {
        format!("{}:{}-{}", self.protocol.as_str(), self.from, self.to)
    }
}

/// A KMS key as `PutBucketEncryption` takes it: a key id (a UUID or `mrk-` and 32 hex digits),
/// an alias name (`alias/...`), or a key or alias ARN.
pub(crate) fn valid_kms_key(key: &str) -> bool {
    let uuid = |s: &str| {
        s.len() == 36
            && s.bytes()
                .enumerate()
                .all(|(i, b)| if [8, 13, 18, 23].contains(&i) { b == b'-' } else { b.is_ascii_hexdigit() })
    };
    let mrk =
        |s: &str| s.strip_prefix("mrk-").is_some_and(|h| h.len() == 32 && h.bytes().all(|b| b.is_ascii_hexdigit()));
    let alias = |s: &str| {
        s.strip_prefix("alias/").is_some_and(|n| {
            (1..=250).contains(&n.len())
                && !n.starts_with("aws/")
                && n.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'/' | b'_' | b'-'))
        })
    };
    if uuid(key) || mrk(key) || alias(key) {
        return true;
    }
    let Some(rest) = key.strip_prefix("arn:") else { return false };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, "kms", region, account, resource] = parts.as_slice() else { return false };
    valid_partition(partition)
        && !region.is_empty()
        && region.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && (resource.strip_prefix("key/").is_some_and(|k| uuid(k) || mrk(k)) || alias(resource))
}

/// A backup retention RDS accepts for an instance that keeps backups: 1 to 35 days.
pub(crate) fn valid_retention(days: u32) -> bool {
    (1..=35).contains(&days)
}

/// What an `enforce` action asks, its value resolved.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Enforcement {
    /// SSE-KMS default encryption with this key.
    S3Encryption { kms_key: String },
    /// All four public access block flags.
    S3PublicAccessBlock,
    /// This backup retention.
    RdsRetention { days: u32 },
}

/// The defaults `value = "default"` stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Defaults {
    pub(crate) s3_kms_key_id: Option<String>,
    pub(crate) rds_backup_retention_days: u32,
}

impl Enforcement {
    /// The enforcement an action asks for on `grant_type`: `Unsupported` for a setting the
    /// grant type does not have, `InvalidTarget` for a value that is not one the setting takes.
    pub(crate) fn of(kind: &ActionKind, grant_type: &str, defaults: &Defaults) -> Result<Self, ConnectorError> {
        let ActionKind::Enforce { setting, value } = kind else {
            return Err(ConnectorError::unsupported(format!("{kind} is not an enforce action")));
        };
        let bad_value = |what: &str| {
            ConnectorError::invalid_target(format!("`{}` is not a value of {setting}: {what}", value.escape_debug()))
        };
        match (grant_type, setting.as_str()) {
            (S3_BUCKET, S3_DEFAULT_ENCRYPTION) => {
                let key = if value == "default" {
                    defaults.s3_kms_key_id.clone().ok_or_else(|| {
                        ConnectorError::invalid_target(
                            "`default` needs `s3_kms_key_id` in the connector's configuration, which is not set",
                        )
                    })?
                } else {
                    value.clone()
                };
                if !valid_kms_key(&key) {
                    return Err(bad_value("expected a KMS key id, key ARN, alias name or alias ARN, or `default`"));
                }
                Ok(Self::S3Encryption { kms_key: key })
            }
            (S3_BUCKET, S3_PUBLIC_ACCESS_BLOCK) => match value.as_str() {
                "all" | "default" => Ok(Self::S3PublicAccessBlock),
                _ => Err(bad_value("expected `all` (all four flags on) or `default`")),
            },
            (DB_INSTANCE, RDS_BACKUP_RETENTION_DAYS) => {
                let days = if value == "default" {
                    defaults.rds_backup_retention_days
                } else if !value.is_empty() && value.len() <= 2 && value.bytes().all(|b| b.is_ascii_digit()) {
                    value.parse().map_err(|_| bad_value("expected 1 to 35"))?
                } else {
                    return Err(bad_value("expected a number of days from 1 to 35, or `default`"));
                };
                if !valid_retention(days) {
                    return Err(bad_value("expected a number of days from 1 to 35, or `default`"));
                }
                Ok(Self::RdsRetention { days })
            }
            _ => Err(ConnectorError::unsupported(format!(
                "AWS cannot enforce `{}` on a `{grant_type}`; settings: {S3_DEFAULT_ENCRYPTION} and {S3_PUBLIC_ACCESS_BLOCK} on {S3_BUCKET}, {RDS_BACKUP_RETENTION_DAYS} on {DB_INSTANCE}",
                setting.escape_debug()
            ))),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // tests stop at the unexpected
mod tests {
    use super::*;

    #[track_caller]
    fn check_bucket(name: &str, ok: bool) {
        assert_eq!(valid_bucket(name), ok, "{name:?}");
    }

    #[test]
    fn iam_users_keys_and_secret_names() {
        assert_eq!(iam_user_of("alice").ok(), Some("alice"));
        assert_eq!(iam_user_of("svc+ci=1,x.y@z_-").ok(), Some("svc+ci=1,x.y@z_-"));
        assert_eq!(iam_user_of("arn:aws:iam::123456789012:user/alice").ok(), Some("alice"));
        assert_eq!(iam_user_of("arn:aws:iam::123456789012:user/team/ci/deployer").ok(), Some("deployer"));
        for bad in [
            "",
            "al ice",
            "alice/../root",
            "a?b",
            &"a".repeat(65),
            "arn:aws:iam::123456789012:role/alice",
            "arn:aws:iam::12345:user/alice",
            "arn:evil:iam::123456789012:user/alice",
            "arn:aws:iam::123456789012:user/",
            "alice\n",
        ] {
            assert!(iam_user_of(bad).is_err(), "{bad:?}");
        }
        assert!(access_key_of("AKIAIOSFODNN7EXAMPLE").is_ok());
        for bad in ["AKIA", "akiaiosfodnn7example", "AKIAIOSFODNN7EXAMPL&", "AKIAIOSFODNN7EXAMPLE/../"] {
            assert!(access_key_of(bad).is_err(), "{bad:?}");
        }
        assert_eq!(secret_name("remediation/iam/{user}", "alice").ok().as_deref(), Some("remediation/iam/alice"));
        assert!(secret_name("remediation/iam/{user}", "a,b").is_err(), "a comma has no place in a secret name");
    }

    #[test]
    fn bucket_names() {
        for good in ["my-bucket", "a.b.c", "abc", "0bucket9", &"a".repeat(63)] {
            check_bucket(good, true);
        }
        for bad in [
            "",
            "ab",
            "My-Bucket",
            "a..b",
            "-abc",
            "abc-",
            "a_b",
            "a/b",
            "a?b",
            "192.168.1.1",
            "xn--abc",
            "abc-s3alias",
            "a b",
            "a%2fb",
            "abc.",
            &"a".repeat(64),
            "a.-b",
        ] {
            check_bucket(bad, false);
        }
        assert_eq!(bucket_of("arn:aws:s3:::my-bucket").unwrap(), "my-bucket");
        assert!(bucket_of("arn:aws:s3:::my-bucket/key").is_err());
        assert!(bucket_of("arn:evil:s3:::my-bucket").is_err());
    }

    #[test]
    fn security_groups() {
        assert!(security_group_of("sg-0123abcd").is_ok());
        assert!(security_group_of("sg-0123456789abcdef0").is_ok());
        for bad in ["sg-", "sg-0123ABCD", "sg-0123abc", "sg-0123abcd&Action=x", "0123abcd", "sg-0123abcdg"] {
            assert!(security_group_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn db_identifiers() {
        assert_eq!(db_instance_of("My-DB1").unwrap().0, "my-db1");
        let arn = "arn:aws:rds:us-east-1:123456789012:db:prod";
        assert_eq!(db_instance_of(arn).unwrap(), ("prod".to_owned(), Some(arn)));
        for bad in [
            "",
            "1db",
            "db-",
            "db--x",
            "db_x",
            "db x",
            "db&x=1",
            "arn:aws:rds:us-east-1:1234:db:x",
            "arn:aws:rds:us-east-1:123456789012:cluster:x",
        ] {
            assert!(db_instance_of(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn grants() {
        let p = Permission::parse(Some("tcp:22-22")).unwrap();
        assert_eq!((p.protocol, p.from, p.to), (Protocol::Tcp, 22, 22));
        assert_eq!(p.label(), "tcp:22-22");
        assert_eq!(Permission::parse(Some("udp:0-65535")).unwrap().label(), "udp:0-65535");
        for bad in [
            None,
            Some(""),
            Some("tcp:22"),
            Some("tcp:23-22"),
            Some("icmp:0-0"),
            Some("tcp:+1-2"),
            Some("tcp:1-65536"),
            Some("TCP:1-2"),
            Some("tcp:1-2&x"),
            Some("tcp:-1-2"),
        ] {
            assert!(Permission::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn kms_keys() {
        for good in [
            "1234abcd-12ab-34cd-56ef-1234567890ab",
            "mrk-1234abcd12ab34cd56ef1234567890ab",
            "alias/posture",
            "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
            "arn:aws:kms:us-east-1:123456789012:alias/posture",
        ] {
            assert!(valid_kms_key(good), "{good}");
        }
        for bad in
            ["", "alias/", "alias/aws/s3", "key", "alias/a<b>", "arn:aws:kms:us-east-1:123456789012:key/x", "alias/a b"]
        {
            assert!(!valid_kms_key(bad), "{bad}");
        }
    }

    #[track_caller]
    fn check_enforce(grant_type: &str, setting: &str, value: &str, expected: Result<Enforcement, &str>) {
        let defaults = Defaults { s3_kms_key_id: Some("alias/posture".into()), rds_backup_retention_days: 7 };
        let kind = ActionKind::Enforce { setting: setting.into(), value: value.into() };
        let got = Enforcement::of(&kind, grant_type, &defaults).map_err(|e| e.kind.to_string());
        assert_eq!(got, expected.map_err(str::to_owned), "{grant_type} {setting}={value}");
    }

    #[test]
    fn enforcements() {
        use Enforcement::*;
        check_enforce(
            S3_BUCKET,
            S3_DEFAULT_ENCRYPTION,
            "default",
            Ok(S3Encryption { kms_key: "alias/posture".into() }),
        );
        check_enforce(
            S3_BUCKET,
            S3_DEFAULT_ENCRYPTION,
            "alias/other",
            Ok(S3Encryption { kms_key: "alias/other".into() }),
        );
        check_enforce(S3_BUCKET, S3_DEFAULT_ENCRYPTION, "<x/>", Err("invalid target"));
        check_enforce(S3_BUCKET, S3_PUBLIC_ACCESS_BLOCK, "all", Ok(S3PublicAccessBlock));
        check_enforce(S3_BUCKET, S3_PUBLIC_ACCESS_BLOCK, "some", Err("invalid target"));
        check_enforce(DB_INSTANCE, RDS_BACKUP_RETENTION_DAYS, "default", Ok(RdsRetention { days: 7 }));
        check_enforce(DB_INSTANCE, RDS_BACKUP_RETENTION_DAYS, "35", Ok(RdsRetention { days: 35 }));
        for bad in ["0", "36", "-1", "+7", "07x", "1e1", "100"] {
            check_enforce(DB_INSTANCE, RDS_BACKUP_RETENTION_DAYS, bad, Err("invalid target"));
        }
        check_enforce(S3_BUCKET, RDS_BACKUP_RETENTION_DAYS, "7", Err("unsupported"));
        check_enforce(DB_INSTANCE, "s3_versioning", "on", Err("unsupported"));
        let none = Defaults { s3_kms_key_id: None, rds_backup_retention_days: 7 };
        let kind = ActionKind::Enforce { setting: S3_DEFAULT_ENCRYPTION.into(), value: "default".into() };
        assert!(Enforcement::of(&kind, S3_BUCKET, &none).unwrap_err().message.contains("s3_kms_key_id"));
    }
}
