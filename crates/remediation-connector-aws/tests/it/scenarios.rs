//! One scenario per operation against moto: snapshot -> plan -> execute -> verify ->
//! rollback -> read back equal to the before-state; and drift: a change made after the
//! action makes the rollback refuse, leaving the live state alone.

use remediation_connector_aws::{AwsConnector, DB_INSTANCE, S3_BUCKET, SECURITY_GROUP_INGRESS};
use remediation_core::{Action, ActionKind, Connector, ConnectorErrorKind, OutcomeStatus, Snapshot, Target};
use remediation_testkit::ActionBuilder;
use serde_json::json;

use crate::block_on;
use crate::moto::{self, KMS_KEY, Seed, fresh};

fn action(kind: ActionKind, grant_type: &str, identity: &str, grant: Option<&str>) -> Action {
    let target = Target {
        identity: identity.into(),
        resource: None,
        grant: grant.map(Into::into),
        grant_type: grant_type.into(),
    };
    ActionBuilder::new().connector("aws").kind(kind).target(target).build()
}

fn enforce(setting: &str, value: &str) -> ActionKind {
    ActionKind::Enforce { setting: setting.into(), value: value.into() }
}

/// Runs the whole round trip; returns the before- and after-states and the plan's text.
async fn round_trip(c: &AwsConnector, a: &Action, expected_reach: u32) -> (Snapshot, Snapshot, String) {
    let before = c.snapshot(&a.target).await.unwrap();
    assert!(before.canonical.is_some(), "no canonical id for {}", a.target);
    let planned = c.plan(a, &before).await.unwrap();
    assert_ne!(planned.expected_after, before, "the plan changes nothing");
    assert_eq!(c.reach(a, &before).await.unwrap(), Some(expected_reach), "reach of {}", a.target);
    let out = c.execute(a, &before).await.unwrap();
    assert_eq!(out.status, OutcomeStatus::Applied);
    assert!(!out.request_ids.is_empty(), "no request id kept for {}", a.target);
    let v = c.verify(a, &planned).await.unwrap();
    assert!(v.matches, "verify: {} vs {}", v.observed.state, planned.expected_after.state);
    let after = v.observed;
    let again = c.execute(a, &before).await.unwrap();
    assert_eq!(again.status, OutcomeStatus::AlreadyInState);
    let undone = c.rollback(a, &before, &after).await.unwrap();
    assert_eq!(undone.status, OutcomeStatus::Applied);
    assert!(!undone.request_ids.is_empty());
    assert_eq!(c.snapshot(&a.target).await.unwrap(), before, "rollback did not restore {}", a.target);
    (before, after, planned.description)
}

/// Executes again, lets `drift` change the target, and checks the rollback refuses.
async fn drift_refused(c: &AwsConnector, a: &Action, drift: impl std::future::Future<Output = ()>) {
    let before = c.snapshot(&a.target).await.unwrap();
    c.execute(a, &before).await.unwrap();
    let after = c.snapshot(&a.target).await.unwrap();
    drift.await;
    let drifted = c.snapshot(&a.target).await.unwrap();
    assert_ne!(drifted, after, "the drift changed nothing the snapshot shows");
    let err = c.rollback(a, &before, &after).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Conflict, "{err}");
    assert!(err.message.contains("changed since"), "{err}");
    assert_eq!(c.snapshot(&a.target).await.unwrap(), drifted, "a refused rollback wrote");
}

fn setup(test: &str) -> Option<(AwsConnector, Seed)> {
    let url = moto::url(test)?;
    Some((moto::connector(&url, moto::dummy_credentials(), &[]), Seed::new(&url)))
}

#[test]
fn s3_default_encryption_round_trip_and_drift() {
    let Some((c, seed)) = setup("s3_default_encryption_round_trip_and_drift") else { return };
    block_on(async {
        let bucket = fresh("posture-enc");
        seed.bucket(&bucket).await;
        seed.website(&bucket).await;
        let distribution = seed.distribution(&bucket).await;
        let a = action(enforce("s3_default_encryption", "default"), S3_BUCKET, &bucket, None);
        let (before, after, plan) = round_trip(&c, &a, 2).await;
        assert!(plan.contains(&distribution), "the plan names the distribution: {plan}");
        assert_eq!(
            before.state["default_encryption"],
            json!([{"sse_algorithm": "AES256", "kms_master_key_id": null, "bucket_key_enabled": false}])
        );
        assert_eq!(
            after.state["default_encryption"],
            json!([{"sse_algorithm": "aws:kms", "kms_master_key_id": KMS_KEY, "bucket_key_enabled": true}])
        );
        assert!(plan.contains(KMS_KEY), "the plan names the concrete key: {plan}");
        assert!(plan.contains("static website hosting is configured"), "{plan}");
        let sse = r#"<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>alias/someone-else</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>"#;
        drift_refused(&c, &a, async {
            seed.s3(reqwest::Method::PUT, &bucket, "encryption", sse).await;
        })
        .await;
    });
}

#[test]
fn s3_public_access_block_round_trip_and_drift() {
    let Some((c, seed)) = setup("s3_public_access_block_round_trip_and_drift") else { return };
    block_on(async {
        // None configured: rollback deletes the configuration again.
        let bare = fresh("posture-pab");
        seed.bucket(&bare).await;
        let a = action(enforce("s3_public_access_block", "all"), S3_BUCKET, &bare, None);
        let (before, after, plan) = round_trip(&c, &a, 0).await;
        assert_eq!(before.state["public_access_block"], json!(null));
        assert_eq!(after.state["public_access_block"]["restrict_public_buckets"], json!(true));
        assert!(plan.contains("no static website hosting"), "{plan}");
        // Two of four flags: rollback restores exactly those.
        let partial = fresh("posture-pab");
        seed.bucket(&partial).await;
        seed.public_access_block(&partial, [true, false, true, false]).await;
        let a = action(enforce("s3_public_access_block", "all"), S3_BUCKET, &partial, None);
        let (before, _, _) = round_trip(&c, &a, 0).await;
        assert_eq!(
            before.state["public_access_block"],
            json!({"block_public_acls": true, "ignore_public_acls": false, "block_public_policy": true, "restrict_public_buckets": false})
        );
        drift_refused(&c, &a, seed.public_access_block(&partial, [true, true, true, false])).await;
    });
}

#[test]
fn security_group_ingress_round_trip_and_drift() {
    let Some((c, seed)) = setup("security_group_ingress_round_trip_and_drift") else { return };
    block_on(async {
        let group = seed.security_group().await;
        seed.interface(&group).await;
        let a = action(ActionKind::Revoke, SECURITY_GROUP_INGRESS, &group, Some("tcp:22-22"));
        let (before, after, plan) = round_trip(&c, &a, 1).await;
        assert_eq!(
            before.state["world_open"],
            json!([{"cidr": "0.0.0.0/0", "description": "ssh from anywhere"}, {"cidr": "::/0", "description": null}])
        );
        assert_eq!(after.state["world_open"], json!([]));
        assert!(plan.contains("reopens the exposure") && plan.contains("1 network interface"), "{plan}");
        // The private range of the same permission was never touched.
        let described = seed.query("ec2", &[("Action", "DescribeSecurityGroups"), ("GroupId.1", &group)]).await;
        assert!(described.contains("10.0.0.0/8"), "{described}");
        assert!(described.contains("ssh from anywhere"), "the description came back: {described}");
        let reopen = [
            ("Action", "AuthorizeSecurityGroupIngress"),
            ("GroupId", group.as_str()),
            ("IpPermissions.1.IpProtocol", "tcp"),
            ("IpPermissions.1.FromPort", "22"),
            ("IpPermissions.1.ToPort", "22"),
            ("IpPermissions.1.IpRanges.1.CidrIp", "0.0.0.0/0"),
            ("IpPermissions.1.IpRanges.1.Description", "someone else"),
        ];
        drift_refused(&c, &a, async {
            seed.query("ec2", &reopen).await;
        })
        .await;
    });
}

#[test]
fn rds_backup_retention_round_trip_and_drift() {
    let Some((c, seed)) = setup("rds_backup_retention_round_trip_and_drift") else { return };
    block_on(async {
        let db = seed.db(1).await;
        let replica = fresh("posture-replica");
        seed.query(
            "rds",
            &[
                ("Action", "CreateDBInstanceReadReplica"),
                ("DBInstanceIdentifier", &replica),
                ("SourceDBInstanceIdentifier", &db),
            ],
        )
        .await;
        let a = action(enforce("rds_backup_retention_days", "default"), DB_INSTANCE, &db, None);
        let (before, after, plan) = round_trip(&c, &a, 1).await;
        assert_eq!(before.state["backup_retention_days"], json!(1));
        assert_eq!(after.state["backup_retention_days"], json!(7));
        assert!(plan.contains("7 day(s)") && plan.contains("deletes the automated backups"), "{plan}");
        assert!(plan.contains(&replica), "{plan}");
        drift_refused(&c, &a, seed.retention(&db, 3)).await;
    });
}

#[test]
fn missing_targets_are_not_found() {
    let Some((c, _)) = setup("missing_targets_are_not_found") else { return };
    block_on(async {
        for (grant_type, identity, grant) in [
            (S3_BUCKET, fresh("no-such-bucket"), None),
            (SECURITY_GROUP_INGRESS, "sg-0000000000000beef".to_owned(), Some("tcp:22-22")),
            (DB_INSTANCE, fresh("no-such-db"), None),
        ] {
            let t = Target { identity, resource: None, grant: grant.map(Into::into), grant_type: grant_type.into() };
            let e = c.snapshot(&t).await.unwrap_err();
            assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{t}: {e}");
            assert!(e.request_id.is_some(), "{t}: no request id in {e:?}");
        }
    });
}

/// Through the engine: a security group reopened by someone else after the revocation makes
/// the engine refuse the rollback as drift, and the live state stays as that person left it.
#[test]
fn the_engine_refuses_a_drifted_rollback() {
    use std::sync::Arc;

    use remediation_core::{Actor, Engine, EngineError, EngineParts, ExecuteOutcome, ManualClock, Mode, Role};
    use remediation_testkit::{AllowAll, InMemoryStore, NoLimits, RequestBuilder, fixed_time};

    let Some((c, seed)) = setup("the_engine_refuses_a_drifted_rollback") else { return };
    block_on(async {
        let group = seed.security_group().await;
        let connector: Arc<dyn Connector> = Arc::new(c.clone());
        let engine = Engine::new(EngineParts {
            store: Arc::new(InMemoryStore::new()),
            connectors: vec![connector],
            clock: Arc::new(ManualClock::new(fixed_time())),
            policy: Arc::new(AllowAll::new(Mode::Manual)),
            limits: Arc::new(NoLimits),
        });
        let requester = Actor::new("requester", Role::Requester);
        let approver = Actor::new("approver", Role::Approver);
        let target = Target {
            identity: group.clone(),
            resource: None,
            grant: Some("tcp:22-22".into()),
            grant_type: SECURITY_GROUP_INGRESS.into(),
        };
        let request = RequestBuilder::new()
            .connector("aws")
            .kind(ActionKind::Revoke)
            .target(target.clone())
            .reason("finding: world-open ssh")
            .build();
        let s = engine.suggest(request, &requester).await.unwrap();
        engine.approve(s.action.id, &approver, None).await.unwrap();
        let out = engine.execute(s.action.id, &approver, false).await.unwrap();
        assert!(matches!(out, ExecuteOutcome::Completed { .. }), "{out:?}");
        seed.query(
            "ec2",
            &[
                ("Action", "AuthorizeSecurityGroupIngress"),
                ("GroupId", group.as_str()),
                ("IpPermissions.1.IpProtocol", "tcp"),
                ("IpPermissions.1.FromPort", "22"),
                ("IpPermissions.1.ToPort", "22"),
                ("IpPermissions.1.Ipv6Ranges.1.CidrIpv6", "::/0"),
                ("IpPermissions.1.Ipv6Ranges.1.Description", "reopened by someone else"),
            ],
        )
        .await;
        let drifted = c.snapshot(&target).await.unwrap();
        match engine.rollback(s.action.id, &approver, None).await {
            Err(EngineError::Refused { rule, .. }) => assert_eq!(rule, "drift"),
            other => panic!("expected a drift refusal, got {other:?}"),
        }
        assert_eq!(c.snapshot(&target).await.unwrap(), drifted);
    });
}
