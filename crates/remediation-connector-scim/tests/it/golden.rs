//! The requests each action sends, compared with fixtures written from RFC 7644
//! (`tests/golden/<action>.json`, the token masked).

use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::fakes::scim::{BJENSEN, TOUR_GUIDES};
use remediation_testkit::golden::Golden;

use crate::{Fixture, account, action, membership};

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

async fn check_round_trip(kind: ActionKind, target: Target, execute: &str, rollback: &str) {
    let f = Fixture::start().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    let before = c.snapshot(&target).await.unwrap();
    golden().check(&format!("snapshot_{}", target.grant_type), &f.fake.log().since(mark));
    let a = action(kind, target.clone());
    let mark = f.fake.log().count();
    c.execute(&a, &before).await.unwrap();
    golden().check(execute, &f.fake.log().since(mark));
    let after = c.snapshot(&target).await.unwrap();
    let mark = f.fake.log().count();
    c.rollback(&a, &before, &after).await.unwrap();
    golden().check(rollback, &f.fake.log().since(mark));
}

#[tokio::test]
async fn deactivation_matches_rfc_7644() {
    check_round_trip(ActionKind::Suspend, account(BJENSEN), "suspend_account", "rollback_suspend_account").await;
}

#[tokio::test]
async fn member_removal_matches_rfc_7644() {
    check_round_trip(
        ActionKind::Revoke,
        membership(BJENSEN, TOUR_GUIDES),
        "revoke_group_membership",
        "rollback_group_membership",
    )
    .await;
}

#[tokio::test]
async fn health_reads_the_service_provider_config() {
    let f = Fixture::start().await;
    let mark = f.fake.log().count();
    let h = f.connector().health().await.unwrap();
    assert!(h.healthy, "{}", h.detail);
    golden().check("service_provider_config", &f.fake.log().since(mark));
}

/// Every call the fixtures record has a permission entry, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "scim",
        "/scim/v2",
        remediation_connector_scim::PERMISSION_MAP,
        &remediation_connector_scim::capabilities(),
        &[],
    );
}
