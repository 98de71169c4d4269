//! Each operation sends exactly the requests in its golden fixture, written from Google's
//! API reference.

use remediation_core::{ActionKind, Connector};
use remediation_testkit::golden::Golden;

use crate::{Fixture, account, action, membership};

const ALICE: &str = "alice@example.com";
const ENG: &str = "eng@example.com";

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).headers(&["authorization", "content-type"])
}

async fn fixture() -> Fixture {
    Fixture::start(|s| {
        s.add_user(ALICE, remediation_testkit::fakes::google::AdminRole::None);
        s.add_member(ENG, ALICE, "MANAGER", "DIGEST");
    })
    .await
}

#[tokio::test]
async fn the_first_request_fetches_a_token_with_a_signed_assertion() {
    let f = fixture().await;
    f.connector().snapshot(&account(ALICE)).await.unwrap();
    golden().check("token", &f.fake.log().all());
}

#[tokio::test]
async fn snapshots() {
    let f = fixture().await;
    let c = f.connector();
    c.snapshot(&account(ALICE)).await.unwrap();
    for (name, target) in [("snapshot_account", account(ALICE)), ("snapshot_group_membership", membership(ALICE, ENG))]
    {
        let mark = f.fake.log().count();
        c.snapshot(&target).await.unwrap();
        golden().check(name, &f.fake.log().since(mark));
    }
}

/// Executes `kind` on `target` and checks the requests, then rolls back and checks those.
async fn check(kind: ActionKind, target: remediation_core::Target, execute: &str, rollback: Option<&str>) {
    let f = fixture().await;
    let c = f.connector();
    let before = c.snapshot(&target).await.unwrap();
    let a = action(kind, target.clone());
    let mark = f.fake.log().count();
    c.execute(&a, &before).await.unwrap();
    golden().check(execute, &f.fake.log().since(mark));
    if let Some(name) = rollback {
        let after = c.snapshot(&target).await.unwrap();
        let mark = f.fake.log().count();
        c.rollback(&a, &before, &after).await.unwrap();
        golden().check(name, &f.fake.log().since(mark));
        assert_eq!(c.snapshot(&target).await.unwrap(), before);
    }
    // One token served every request: the token source caches it until shortly before expiry.
    assert_eq!(f.fake.state().tokens_issued, 1);
}

#[tokio::test]
async fn revoke_group_membership() {
    check(
        ActionKind::Revoke,
        membership(ALICE, ENG),
        "revoke_group_membership",
        Some("rollback_revoke_group_membership"),
    )
    .await;
}

#[tokio::test]
async fn suspend_account() {
    check(ActionKind::Suspend, account(ALICE), "suspend_account", Some("rollback_suspend_account")).await;
}

#[tokio::test]
async fn revoke_sessions_account() {
    check(ActionKind::RevokeSessions, account(ALICE), "revoke_sessions_account", None).await;
}

#[tokio::test]
async fn force_password_reset_account() {
    check(
        ActionKind::ForcePasswordReset,
        account(ALICE),
        "force_password_reset_account",
        Some("rollback_force_password_reset_account"),
    )
    .await;
}

/// Every call the fixtures record has a permission entry, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "google",
        "/admin/directory/v1",
        remediation_connector_google::PERMISSION_MAP,
        &remediation_connector_google::capabilities(),
        // The JWT-bearer token request authenticates the service account; it needs no scope.
        &["POST /token"],
    );
}
