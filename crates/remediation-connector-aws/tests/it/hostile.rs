//! Hostile or malformed identifiers, grants and values are refused before any request: the
//! connector points at a listener that counts connections, and none arrives.

use std::net::TcpListener;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use remediation_connector_aws::{AwsConfig, AwsConnector, AwsCredentials};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, Snapshot, Target};
use remediation_testkit::ActionBuilder;
use secrecy::SecretString;

use crate::block_on;

/// A listener that counts connections (and answers none), and a connector pointed at it.
fn counting() -> (AwsConnector, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            seen.fetch_add(1, Ordering::SeqCst);
            drop(stream);
        }
    });
    let mut config = AwsConfig::new("us-east-1", "AK", "SK");
    config.endpoint_url = Some(format!("http://127.0.0.1:{port}"));
    config.s3_kms_key_id = Some("alias/posture".into());
    config.max_attempts = 1;
    let connector =
        AwsConnector::new(&config, AwsCredentials::new("AKIAX", SecretString::from("hostile-secret"))).unwrap();
    (connector, count)
}

fn target(grant_type: &str, identity: &str, grant: Option<&str>) -> Target {
    Target { identity: identity.into(), resource: None, grant: grant.map(Into::into), grant_type: grant_type.into() }
}

fn enforce(setting: &str, value: &str) -> ActionKind {
    ActionKind::Enforce { setting: setting.into(), value: value.into() }
}

/// Whether the target itself is well formed (the value is what the case makes wrong).
fn target_is_valid(t: &Target) -> bool {
    matches!(
        (t.grant_type.as_str(), t.identity.as_str(), t.grant.as_deref()),
        ("s3_bucket", "my-bucket", None) | ("db_instance", "prod", None)
    )
}

#[track_caller]
fn check(connector: &AwsConnector, kind: ActionKind, target: Target, expected: ConnectorErrorKind) {
    let target_invalid = expected == ConnectorErrorKind::InvalidTarget && !target_is_valid(&target);
    let action = ActionBuilder::new().connector("aws").kind(kind.clone()).target(target.clone()).build();
    let placeholder = Snapshot::new(serde_json::json!({}));
    block_on(async {
        let plan = connector.plan(&action, &placeholder).await.map(|_| ()).unwrap_err();
        let exec = connector.execute(&action, &placeholder).await.map(|_| ()).unwrap_err();
        let reach = connector.reach(&action, &placeholder).await.map(|_| ()).unwrap_err();
        for e in [plan, exec, reach] {
            assert_eq!(e.kind, expected, "{kind} on {target}: {e}");
        }
        if target_invalid {
            let snap = connector.snapshot(&target).await.unwrap_err();
            assert_eq!(snap.kind, ConnectorErrorKind::InvalidTarget, "snapshot of {target}: {snap}");
        }
    });
}

#[test]
fn hostile_targets_are_refused_before_any_request() {
    let (c, count) = counting();
    let enc = || enforce("s3_default_encryption", "default");
    let invalid = ConnectorErrorKind::InvalidTarget;
    for bucket in [
        "../other-bucket",
        "bucket/../../x",
        "bucket?website",
        "bucket#x",
        "Bucket",
        "a",
        "bucket%2f..",
        "bucket\n",
        "127.0.0.1",
        "arn:aws:s3:::bucket/object",
        "bucket.s3.evil.com/",
    ] {
        check(&c, enc(), target("s3_bucket", bucket, None), invalid.clone());
    }
    for value in ["alias/a&b", "<KMSMasterKeyID>x</KMSMasterKeyID>", "alias/aws/s3", "arn:aws:kms:us-east-1:1:key/x"] {
        check(&c, enforce("s3_default_encryption", value), target("s3_bucket", "my-bucket", None), invalid.clone());
    }
    check(&c, enforce("s3_public_access_block", "some"), target("s3_bucket", "my-bucket", None), invalid.clone());
    for group in ["sg-1234abcd&Action=DeleteSecurityGroup", "sg-XYZ", "my-group", "sg-1234abcd/"] {
        check(&c, ActionKind::Revoke, target("security_group_ingress", group, Some("tcp:22-22")), invalid.clone());
    }
    for grant in
        [None, Some("tcp:22"), Some("tcp:22-22&IpPermissions.2.IpProtocol=-1"), Some("-1:0-65535"), Some("tcp:30-22")]
    {
        check(&c, ActionKind::Revoke, target("security_group_ingress", "sg-1234abcd", grant), invalid.clone());
    }
    for db in ["db&DBInstanceIdentifier=other", "1db", "db--x", "arn:aws:rds:us-east-1:123:db:x"] {
        check(&c, enforce("rds_backup_retention_days", "7"), target("db_instance", db, None), invalid.clone());
    }
    for value in ["0", "36", "7&ApplyImmediately=false", "seven"] {
        check(&c, enforce("rds_backup_retention_days", value), target("db_instance", "prod", None), invalid.clone());
    }
    let unsupported = ConnectorErrorKind::Unsupported;
    check(&c, enforce("s3_versioning", "on"), target("s3_bucket", "my-bucket", None), unsupported.clone());
    check(&c, enforce("rds_backup_retention_days", "7"), target("s3_bucket", "my-bucket", None), unsupported.clone());
    check(&c, enforce("s3_public_access_block", "all"), target("db_instance", "prod", None), unsupported.clone());
    check(&c, ActionKind::Revoke, target("s3_bucket", "my-bucket", None), unsupported.clone());
    check(&c, ActionKind::Suspend, target("db_instance", "prod", None), unsupported);
    // An access key's user and key id: no path, query, parameter or other account's ARN.
    for user in ["alice/../root", "alice?Action=DeleteUser", "alice&UserName=root", "arn:aws:iam::1234:user/alice", ""]
    {
        check(&c, ActionKind::Rotate, target("iam_access_key", user, None), invalid.clone());
    }
    for key in ["AKIA&Action=DeleteUser", "akiaiosfodnn7example", "AKIA", "AKIAIOSFODNN7EXAMPLE/.."] {
        check(&c, ActionKind::Rotate, target("iam_access_key", "alice", Some(key)), invalid.clone());
        check(&c, ActionKind::Revoke, target("iam_access_key", "alice", Some(key)), invalid.clone());
    }
    check(&c, ActionKind::Suspend, target("iam_access_key", "alice", None), ConnectorErrorKind::Unsupported);
    assert_eq!(count.load(Ordering::SeqCst), 0, "a refused target made a request");
}
