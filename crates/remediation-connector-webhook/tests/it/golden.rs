//! The request of each operation, compared with fixtures written from the protocol
//! documentation (`tests/golden/*.json`).

use std::sync::Arc;

use remediation_core::{ActionKind, Connector, ManualClock};
use remediation_testkit::fakes::webhook::WebhookFake;
use remediation_testkit::golden::Golden;
use remediation_testkit::{ActionBuilder, fixed_time};

use crate::{SECRET, connector, target};

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).headers(&[
        "accept",
        "content-type",
        "idempotency-key",
        "x-remediation-timestamp",
    ])
}

#[tokio::test]
async fn each_operation_sends_the_documented_request() {
    // The connector and the receiver share a stopped clock, so timestamps are fixed.
    let clock = Arc::new(ManualClock::new(fixed_time()));
    let fake = WebhookFake::start(SECRET, clock.clone()).await.unwrap();
    fake.add_identity("alice");
    let (c, _) = connector(&fake, SECRET, clock);
    let t = target("app_role", "alice", Some("crm"));
    let action = ActionBuilder::new()
        .connector("hooks")
        .kind(ActionKind::Reduce { to: "read".into() })
        .target(t.clone())
        .requested_by("svc:scanner")
        .reason("admin role unused for 90 days")
        .control_id("IAM-12")
        .build();
    let g = golden();
    let log = fake.log();

    let mark = log.count();
    c.health().await.unwrap();
    g.check("health", &log.since(mark));

    let mark = log.count();
    let before = c.snapshot(&t).await.unwrap();
    g.check("snapshot", &log.since(mark));

    let mark = log.count();
    let planned = c.plan(&action, &before).await.unwrap();
    g.check("plan", &log.since(mark));

    let mark = log.count();
    c.execute(&action, &before).await.unwrap();
    g.check("execute", &log.since(mark));

    let mark = log.count();
    let verification = c.verify(&action, &planned).await.unwrap();
    assert!(verification.matches);
    g.check("verify", &log.since(mark));

    let mark = log.count();
    c.rollback(&action, &before, &verification.observed).await.unwrap();
    g.check("rollback", &log.since(mark));
    assert!(fake.rejections().is_empty());
}

/// Every operation the fixtures record has a permission entry, the configured capabilities
/// have theirs, and the README lists the map.
#[tokio::test]
async fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    let clock = Arc::new(ManualClock::new(fixed_time()));
    let fake = WebhookFake::start(SECRET, clock.clone()).await.unwrap();
    let (c, _) = connector(&fake, SECRET, clock);
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "webhook",
        "/hooks/remediation",
        remediation_connector_webhook::PERMISSION_MAP,
        &c.capabilities(),
        &[],
    );
    // The fake's full key may perform every operation: each is granted.
    assert!(c.check_permissions().await.unwrap().all_granted());
}
