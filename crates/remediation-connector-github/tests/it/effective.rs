//! A collaborator's access on GitHub is the highest of their direct grant, their teams, the
//! organisation's base permission and ownership. Only the direct grant is written, so a
//! reduce is judged by the access that would remain: refused, naming the grant, when another
//! source keeps the user above the target, and never sent to raise the direct grant.

use remediation_core::{Connector, OutcomeStatus};
use serde_json::json;

use crate::{Fixture, action, reduce, target, writes_since};

#[tokio::test]
async fn a_reduce_a_team_grant_keeps_above_the_target_is_refused_naming_the_team_and_never_written() {
    let f = Fixture::start(100, |s| {
        s.add_collaborator("acme/payments", "dev", "pull");
        s.add_team_member("acme", "platform", "dev", "member");
        s.add_team_repo("acme", "platform", "acme/payments", "admin");
    })
    .await;
    let c = f.connector();
    let t = target("repo_collaborator", "dev", "acme/payments");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["permission"], json!("pull"), "the direct grant, not the team's admin");
    assert_eq!(before.state["effective"], json!("admin"));

    let a = action(reduce("push"), t);
    let mark = f.fake.log().count();
    let refused = c.plan(&a, &before).await.unwrap_err();
    assert!(refused.message.contains("the team acme/platform grants admin"), "{refused}");
    // Executed anyway (a plan made before the team was given the repository): refused again.
    let refused = c.execute(&a, &before).await.unwrap_err();
    assert!(refused.message.contains("the team acme/platform grants admin"), "{refused}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert_eq!(f.fake.state().repos["acme/payments"].collaborators["dev"], "pull", "never raised");
}

#[tokio::test]
async fn a_reduce_that_would_raise_the_direct_grant_is_refused() {
    let f = Fixture::start(100, |s| s.add_collaborator("acme/payments", "dev", "pull")).await;
    let c = f.connector();
    let t = target("repo_collaborator", "dev", "acme/payments");
    let before = c.snapshot(&t).await.unwrap();
    let a = action(reduce("push"), t);
    let mark = f.fake.log().count();
    assert!(c.plan(&a, &before).await.unwrap_err().message.contains("would raise it"));
    assert!(c.execute(&a, &before).await.unwrap_err().message.contains("would raise it"));
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
}

#[tokio::test]
async fn ownership_and_the_base_permission_are_named_too() {
    let f = Fixture::start(100, |s| {
        s.add_collaborator("acme/payments", "boss", "admin");
        s.add_org_member("acme", "boss", "admin");
        s.add_collaborator("acme/payments", "staff", "admin");
        s.add_org_member("acme", "staff", "member");
        s.set_base_permission("acme", Some("push"));
    })
    .await;
    let c = f.connector();
    for (login, via) in
        [("boss", "owning the organisation acme grants admin"), ("staff", "the base permission of acme grants push")]
    {
        let t = target("repo_collaborator", login, "acme/payments");
        let before = c.snapshot(&t).await.unwrap();
        let refused = c.plan(&action(reduce("pull"), t), &before).await.unwrap_err();
        assert!(refused.message.contains(via), "{refused}");
    }
}

#[tokio::test]
async fn a_reduce_above_every_other_grant_lowers_the_direct_one_and_is_verified() {
    let f = Fixture::start(100, |s| {
        s.add_collaborator("acme/payments", "dev", "admin");
        s.add_team_member("acme", "platform", "dev", "member");
        s.add_team_repo("acme", "platform", "acme/payments", "push");
    })
    .await;
    let c = f.connector();
    let t = target("repo_collaborator", "dev", "acme/payments");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(
        (before.state["permission"].clone(), before.state["effective"].clone()),
        (json!("admin"), json!("admin"))
    );
    let a = action(reduce("push"), t.clone());
    let planned = c.plan(&a, &before).await.unwrap();
    assert_eq!(planned.expected_after.state["permission"], json!("push"));
    assert_eq!(planned.expected_after.state["effective"], json!("push"));

    let mark = f.fake.log().count();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(writes_since(&f.fake, mark), vec!["PUT /repos/acme/payments/collaborators/dev".to_owned()]);
    assert_eq!(f.fake.state().repos["acme/payments"].collaborators["dev"], "push");
    assert!(c.verify(&a, &planned).await.unwrap().matches);

    // The rollback writes the direct admin back: an update (204), not an invitation.
    let after = c.snapshot(&t).await.unwrap();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(c.snapshot(&t).await.unwrap(), before);
}
