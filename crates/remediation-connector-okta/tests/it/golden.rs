//! Golden request fixtures: every action's requests, as Okta's API reference documents them.
//! The fixtures in `tests/golden/` were written from the documentation; see the README.

use std::sync::Arc;

use remediation_connector_okta::{ACCOUNT, APP_ASSIGNMENT, GROUP_MEMBERSHIP};
use remediation_core::{ActionKind, Connector, ManualClock, Target};
use remediation_testkit::golden::Golden;
use remediation_testkit::{ActionBuilder, fixed_time};
use time::macros::datetime;

use crate::support::{Auth, connector, fake, seed};

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

fn target(grant_type: &str, resource: Option<&str>) -> Target {
    Target {
        identity: "00u1".to_owned(),
        resource: resource.map(str::to_owned),
        grant: None,
        grant_type: grant_type.to_owned(),
    }
}

/// Executes (and, with `rollback`, undoes) `kind` on `target` and checks each step's requests.
async fn check(name: &str, kind: ActionKind, target: Target, rollback: bool) {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    let clock = Arc::new(ManualClock::new(datetime!(2026-11-26 10:00:00 UTC)));
    let built = connector(&fake, Auth::Ssws, Some(clock));
    let c = &built.connector;
    let action = ActionBuilder::new().connector(c.id()).kind(kind).target(target.clone()).build();
    let before = c.snapshot(&target).await.expect("snapshot");
    let mark = fake.log().count();
    c.execute(&action, &before).await.expect("execute");
    golden().check(name, &fake.log().since(mark));
    if rollback {
        let after = c.snapshot(&target).await.expect("snapshot");
        let mark = fake.log().count();
        c.rollback(&action, &before, &after).await.expect("rollback");
        golden().check(&format!("{name}-rollback"), &fake.log().since(mark));
    }
    let _ = fixed_time();
}

#[tokio::test]
async fn revoke_group_membership() {
    check("revoke-group-membership", ActionKind::Revoke, target(GROUP_MEMBERSHIP, Some("00g1")), true).await;
}

#[tokio::test]
async fn revoke_app_assignment() {
    check("revoke-app-assignment", ActionKind::Revoke, target(APP_ASSIGNMENT, Some("0oa1")), true).await;
}

#[tokio::test]
async fn suspend() {
    check("suspend", ActionKind::Suspend, target(ACCOUNT, None), true).await;
}

#[tokio::test]
async fn revoke_sessions() {
    check("revoke-sessions", ActionKind::RevokeSessions, target(ACCOUNT, None), false).await;
}

#[tokio::test]
async fn force_password_reset() {
    check("force-password-reset", ActionKind::ForcePasswordReset, target(ACCOUNT, None), false).await;
}

#[tokio::test]
async fn service_app_token_request() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    let built = connector(&fake, Auth::PrivateKeyJwt, None);
    let mark = fake.log().count();
    built.connector.snapshot(&target(ACCOUNT, None)).await.expect("snapshot");
    let token_requests: Vec<_> = fake.log().since(mark).into_iter().filter(|r| r.path == "/oauth2/v1/token").collect();
    golden().check("service-app-token", &token_requests);
}

/// Every call the fixtures record has a permission entry, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "okta",
        "/api/v1",
        remediation_connector_okta::PERMISSION_MAP,
        &remediation_connector_okta::capabilities(),
        // The service app's token request authenticates it; it needs no scope.
        &["POST /oauth2/v1/token"],
    );
}
