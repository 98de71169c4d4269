//! The requests each action sends, compared with fixtures written from Microsoft Graph's
//! documentation (`tests/golden/<action>.json`; secrets masked, the fake's address written as
//! `{graph_url}`).

use remediation_core::{ActionKind, Connector, Snapshot};
use remediation_testkit::fakes::RecordedRequest;
use remediation_testkit::fakes::entra::{ALICE, ENGINEERING};
use remediation_testkit::golden::Golden;
use serde_json::Value;

use crate::{Fixture, account, action, app_role, directory_role, membership};

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

/// The requests since `mark`, with the fake's base URL replaced by `{graph_url}`.
fn since(f: &Fixture, mark: u64) -> Vec<RecordedRequest> {
    let graph = f.fake.graph_url();
    f.fake
        .log()
        .since(mark)
        .into_iter()
        .map(|mut r| {
            if let Some(body) = r.body.as_mut() {
                let text = body.to_string().replace(&graph, "{graph_url}");
                *body = serde_json::from_str(&text).unwrap_or(Value::Null);
            }
            r
        })
        .collect()
}

#[tokio::test]
async fn token_requests_match_the_identity_platform_documentation() {
    let f = Fixture::start().await;
    let mark = f.fake.log().count();
    f.connector().check_permissions().await.unwrap();
    golden().check("token_client_secret", &since(&f, mark));
    let mark = f.fake.log().count();
    f.connector_for(&f.certificate_config()).check_permissions().await.unwrap();
    golden().check("token_certificate", &since(&f, mark));
}

/// Runs execute then rollback of `kind` on `target` and checks both against fixtures.
async fn check_round_trip(kind: ActionKind, target: remediation_core::Target, execute: &str, rollback: Option<&str>) {
    let f = Fixture::start().await;
    let c = f.connector();
    c.check_permissions().await.unwrap();
    let mark = f.fake.log().count();
    let before = c.snapshot(&target).await.unwrap();
    golden().check(&format!("snapshot_{}", target.grant_type), &since(&f, mark));
    let a = action(kind, target.clone());
    let mark = f.fake.log().count();
    c.execute(&a, &before).await.unwrap();
    golden().check(execute, &since(&f, mark));
    if let Some(rollback) = rollback {
        let after: Snapshot = c.snapshot(&target).await.unwrap();
        let mark = f.fake.log().count();
        c.rollback(&a, &before, &after).await.unwrap();
        golden().check(rollback, &since(&f, mark));
    }
}

#[tokio::test]
async fn suspend_matches_the_documentation() {
    check_round_trip(ActionKind::Suspend, account(ALICE), "suspend_account", Some("rollback_suspend_account")).await;
}

#[tokio::test]
async fn revoke_sessions_matches_the_documentation() {
    check_round_trip(ActionKind::RevokeSessions, account(ALICE), "revoke_sessions_account", None).await;
}

#[tokio::test]
async fn group_membership_matches_the_documentation() {
    check_round_trip(
        ActionKind::Revoke,
        membership(ALICE, ENGINEERING),
        "revoke_group_membership",
        Some("rollback_group_membership"),
    )
    .await;
}

#[tokio::test]
async fn directory_role_matches_the_documentation() {
    check_round_trip(
        ActionKind::Revoke,
        directory_role(ALICE),
        "revoke_directory_role",
        Some("rollback_directory_role"),
    )
    .await;
}

#[tokio::test]
async fn app_role_matches_the_documentation() {
    check_round_trip(
        ActionKind::Revoke,
        app_role(ALICE),
        "revoke_app_role_assignment",
        Some("rollback_app_role_assignment"),
    )
    .await;
}

/// Every call the fixtures record has a permission entry, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "entra",
        "/v1.0",
        remediation_connector_entra::PERMISSION_MAP,
        &remediation_connector_entra::capabilities(),
        // The token request authenticates the client; it needs no Graph permission.
        &["POST /{tenant}/oauth2/v2.0/token"],
    );
}
