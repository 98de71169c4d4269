//! Roles GitHub reads but will not take back: a billing manager (the membership call sets
//! only `admin` or `member`) and an organisation owner's team role (always read as
//! `maintainer`). Each plan is refused up front, and no write is sent for it.

use remediation_core::{ActionKind, Connector, ConnectorErrorKind, Snapshot};
use remediation_testkit::fakes::github::GitHubFake;

use crate::{Fixture, action, reduce, target, writes_since};

fn role(fake: &GitHubFake, login: &str) -> Option<String> {
    fake.state().orgs["acme"].members.get(login).cloned()
}

#[tokio::test]
async fn reducing_a_billing_managers_role_is_refused_and_never_sends_role_member() {
    let f = Fixture::start(100, |s| s.add_org_member("acme", "biller", "billing_manager")).await;
    let c = f.connector();
    let t = target("org_role", "biller", "acme");
    let before = c.snapshot(&t).await.unwrap();
    let a = action(reduce("member"), t);
    let mark = f.fake.log().count();
    let err = c.plan(&a, &before).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent);
    assert!(err.to_string().contains("biller is billing_manager in acme"), "{err}");
    assert!(err.to_string().contains("would grant a membership"), "{err}");
    let err = c.execute(&a, &before).await.unwrap_err();
    assert!(err.to_string().contains("sets only admin or member"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert_eq!(role(&f.fake, "biller").as_deref(), Some("billing_manager"));
}

#[tokio::test]
async fn removing_a_billing_manager_is_refused_because_it_could_not_be_rolled_back() {
    let f = Fixture::start(100, |s| s.add_org_member("acme", "biller", "billing_manager")).await;
    let c = f.connector();
    let t = target("org_member", "biller", "acme");
    let before = c.snapshot(&t).await.unwrap();
    let a = action(ActionKind::Revoke, t);
    let mark = f.fake.log().count();
    let err = c.plan(&a, &before).await.unwrap_err();
    assert!(err.to_string().contains("could not be rolled back"), "{err}");
    let err = c.execute(&a, &before).await.unwrap_err();
    assert!(err.to_string().contains("could not be rolled back"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert_eq!(role(&f.fake, "biller").as_deref(), Some("billing_manager"));
}

#[tokio::test]
async fn a_rollback_never_writes_billing_manager_back() {
    // A before-state recorded as a billing manager (made before the plan was refused), whose
    // role has since become member: the rollback says why it cannot restore it, unsent.
    let f = Fixture::start(100, |s| s.add_org_member("acme", "biller", "billing_manager")).await;
    let c = f.connector();
    let t = target("org_role", "biller", "acme");
    let before = c.snapshot(&t).await.unwrap();
    f.fake.state().add_org_member("acme", "biller", "member");
    let after = c.snapshot(&t).await.unwrap();
    let mark = f.fake.log().count();
    let err = c.rollback(&action(reduce("member"), t), &before, &after).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent);
    assert!(err.to_string().contains("cannot be written back"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
}

#[tokio::test]
async fn an_owners_team_membership_is_refused_since_its_role_reads_maintainer() {
    let f = Fixture::start(100, |s| {
        s.add_team_member("acme", "platform", "boss", "member");
        s.add_org_member("acme", "boss", "admin");
        s.add_team_member("acme", "platform", "lead", "maintainer");
    })
    .await;
    let c = f.connector();
    let t = target("team_member", "boss", "acme/platform");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["role"], "maintainer", "GitHub reads an owner's team role as maintainer");
    let a = action(ActionKind::Revoke, t);
    let mark = f.fake.log().count();
    let err = c.plan(&a, &before).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent);
    assert!(err.to_string().contains("boss owns the organisation acme"), "{err}");
    let err = c.execute(&a, &before).await.unwrap_err();
    assert!(err.to_string().contains("will not remove it or write it back"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert!(f.fake.state().orgs["acme"].teams["platform"].members.contains_key("boss"));
    // A maintainer who owns nothing is still removed.
    let t = target("team_member", "lead", "acme/platform");
    let before = c.snapshot(&t).await.unwrap();
    let a = action(ActionKind::Revoke, t);
    c.plan(&a, &before).await.unwrap();
    c.execute(&a, &before).await.unwrap();
    assert!(!f.fake.state().orgs["acme"].teams["platform"].members.contains_key("lead"));
}

#[tokio::test]
async fn a_rollback_does_not_write_maintainer_for_a_user_who_now_owns_the_organisation() {
    let f = Fixture::start(100, |s| s.add_team_member("acme", "platform", "lead", "maintainer")).await;
    let c = f.connector();
    let t = target("team_member", "lead", "acme/platform");
    let before: Snapshot = c.snapshot(&t).await.unwrap();
    let a = action(ActionKind::Revoke, t.clone());
    c.plan(&a, &before).await.unwrap();
    c.execute(&a, &before).await.unwrap();
    let after = c.snapshot(&t).await.unwrap();
    f.fake.state().add_org_member("acme", "lead", "admin");
    let mark = f.fake.log().count();
    let err = c.rollback(&a, &before, &after).await.unwrap_err();
    assert!(err.to_string().contains("lead owns the organisation acme"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
}
