//! Outside collaborators: a user with access to an organisation's repositories who is not a
//! member reads as "not a member" to `org_member`; the `outside_collaborator` grant removes
//! them from every repository with one documented call, and its rollback invites them back
//! to each with the permission they had.

use remediation_core::{ActionKind, Connector, OutcomeStatus};
use serde_json::json;

use crate::{Fixture, action, target, writes_since};

#[tokio::test]
async fn revoking_an_outside_collaborator_removes_every_repository_and_rollback_invites_to_each() {
    let f = Fixture::start(100, |s| {
        s.add_collaborator("acme/payments", "contractor", "push");
        s.add_collaborator("acme/billing", "contractor", "pull");
        s.add_collaborator("other/tool", "contractor", "admin");
        s.add_org_member("acme", "staff", "member");
        s.add_collaborator("acme/payments", "staff", "admin");
    })
    .await;
    let c = f.connector();
    // As an organisation member the contractor reads as absent: that grant cannot remove them.
    let member = c.snapshot(&target("org_member", "contractor", "acme")).await.unwrap();
    assert_eq!(member.state["membership"], serde_json::Value::Null);

    let t = target("outside_collaborator", "contractor", "acme");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["repositories"], json!({"acme/billing": "pull", "acme/payments": "push"}));
    assert_eq!(before.state["invitations"], json!({}));
    let a = action(ActionKind::Revoke, t.clone());
    let planned = c.plan(&a, &before).await.unwrap();
    assert!(planned.description.contains("acme/billing, acme/payments"), "{}", planned.description);

    let mark = f.fake.log().count();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(writes_since(&f.fake, mark), vec!["DELETE /orgs/acme/outside_collaborators/contractor".to_owned()]);
    {
        let s = f.fake.state();
        assert!(!s.repos["acme/payments"].collaborators.contains_key("contractor"));
        assert!(!s.repos["acme/billing"].collaborators.contains_key("contractor"));
        assert_eq!(s.repos["other/tool"].collaborators["contractor"], "admin");
        assert_eq!(s.repos["acme/payments"].collaborators["staff"], "admin", "a member is untouched");
    }
    assert!(c.verify(&a, &planned).await.unwrap().matches);
    let after = c.snapshot(&t).await.unwrap();
    assert_eq!(c.execute(&a, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);

    let mark = f.fake.log().count();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::PendingAcceptance);
    assert_eq!(
        writes_since(&f.fake, mark),
        vec![
            "PUT /repos/acme/billing/collaborators/contractor".to_owned(),
            "PUT /repos/acme/payments/collaborators/contractor".to_owned()
        ]
    );
    {
        let s = f.fake.state();
        assert_eq!(s.repos["acme/billing"].invitations["contractor"], "pull");
        assert_eq!(s.repos["acme/payments"].invitations["contractor"], "push");
    }
    let restored = c.snapshot(&t).await.unwrap();
    assert_eq!(restored.state["repositories"], json!({}), "access returns when the invitations are accepted");
    assert_eq!(restored.state["invitations"], json!({"acme/billing": "pull", "acme/payments": "push"}));
    assert_eq!(c.pending_acceptance_state(&a, &before, &after), Some(restored), "the state the engine accepts");
    // The invitations are pending: rolling back again sends nothing, and still says so.
    let mark = f.fake.log().count();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::PendingAcceptance);
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
}

#[tokio::test]
async fn a_member_is_not_an_outside_collaborator() {
    let f = Fixture::start(100, |s| {
        s.add_org_member("acme", "staff", "member");
        s.add_collaborator("acme/payments", "staff", "admin");
    })
    .await;
    let c = f.connector();
    let t = target("outside_collaborator", "staff", "acme");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["repositories"], json!({}));
    let mark = f.fake.log().count();
    let a = action(ActionKind::Revoke, t);
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert_eq!(f.fake.state().repos["acme/payments"].collaborators["staff"], "admin");
}

#[tokio::test]
async fn an_outside_collaborator_on_a_protected_repository_is_not_removed() {
    let f = Fixture::start(100, |s| {
        s.add_collaborator("acme/payments", "contractor", "push");
        s.add_collaborator("acme/infrastructure", "contractor", "pull");
    })
    .await;
    let c = f.connector();
    let t = target("outside_collaborator", "contractor", "acme");
    let before = c.snapshot(&t).await.unwrap();
    let mark = f.fake.log().count();
    let err = c.execute(&action(ActionKind::Revoke, t), &before).await.unwrap_err();
    assert!(err.to_string().contains("protected repository acme/infrastructure"), "{err}");
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
    assert_eq!(f.fake.state().repos["acme/payments"].collaborators["contractor"], "push");
}
