//! Each operation sends exactly the requests in its golden fixture, written from GitHub's
//! REST reference.

use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::golden::Golden;

use crate::{Fixture, action, reduce, target};

fn golden() -> Golden {
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
}

async fn fixture() -> Fixture {
    Fixture::start(100, |s| {
        // Not a member: an owner has admin on every repository, which no reduce of the direct
        // grant can lower.
        s.add_collaborator("acme/payments", "mona", "push");
        s.add_org_member("acme", "octocat", "admin");
        // Not an owner: GitHub reads every owner's team role as maintainer, and the connector
        // refuses those memberships.
        s.add_team_member("acme", "platform", "hubot", "maintainer");
    })
    .await
}

async fn check(kind: ActionKind, t: Target, execute: &str, rollback: &str) {
    let f = fixture().await;
    let c = f.connector();
    let before = c.snapshot(&t).await.unwrap();
    let a = action(kind, t.clone());
    let mark = f.fake.log().count();
    c.execute(&a, &before).await.unwrap();
    golden().check(execute, &f.fake.log().since(mark));
    let after = c.snapshot(&t).await.unwrap();
    let mark = f.fake.log().count();
    c.rollback(&a, &before, &after).await.unwrap();
    golden().check(rollback, &f.fake.log().since(mark));
}

#[tokio::test]
async fn check_permissions_and_snapshot() {
    let f = fixture().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    assert!(c.check_permissions().await.unwrap().can_write());
    golden().check("check_permissions", &f.fake.log().since(mark));
    let mark = f.fake.log().count();
    c.snapshot(&target("repo_collaborator", "mona", "acme/payments")).await.unwrap();
    golden().check("snapshot_repo_collaborator", &f.fake.log().since(mark));
}

#[tokio::test]
async fn revoke_repo_collaborator() {
    let t = target("repo_collaborator", "mona", "acme/payments");
    check(ActionKind::Revoke, t, "revoke_repo_collaborator", "rollback_revoke_repo_collaborator").await;
}

#[tokio::test]
async fn reduce_repo_collaborator() {
    let t = target("repo_collaborator", "mona", "acme/payments");
    check(reduce("pull"), t, "reduce_repo_collaborator", "rollback_reduce_repo_collaborator").await;
}

#[tokio::test]
async fn revoke_org_member() {
    check(
        ActionKind::Revoke,
        target("org_member", "octocat", "acme"),
        "revoke_org_member",
        "rollback_revoke_org_member",
    )
    .await;
}

#[tokio::test]
async fn reduce_org_role() {
    check(reduce("member"), target("org_role", "octocat", "acme"), "reduce_org_role", "rollback_reduce_org_role").await;
}

#[tokio::test]
async fn revoke_team_member() {
    let t = target("team_member", "hubot", "acme/platform");
    check(ActionKind::Revoke, t, "revoke_team_member", "rollback_revoke_team_member").await;
}

/// Every call the fixtures record has a permission entry, and the README lists the map.
#[test]
fn the_permission_map_covers_every_call_and_the_readme_lists_it() {
    remediation_testkit::permission_map::assert_map_is_complete(
        env!("CARGO_MANIFEST_DIR"),
        "github",
        "",
        remediation_connector_github::PERMISSION_MAP,
        &remediation_connector_github::capabilities(),
        &[],
    );
}
