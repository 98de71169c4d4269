//! Pending invitations are access waiting to be accepted: revoking a user whose only grant
//! is a pending repository or organisation invitation cancels it with GitHub's documented
//! call, and the rollback invites them again with what was offered.

use remediation_core::{ActionKind, Connector, OutcomeStatus};

use crate::{Fixture, action, target, writes_since};

#[tokio::test]
async fn revoking_a_pending_repository_invitation_cancels_it_and_rollback_invites_again() {
    let f = Fixture::start(100, |s| {
        s.invite_collaborator("acme/payments", "invitee", "push");
        s.invite_collaborator("acme/payments", "other", "pull");
    })
    .await;
    let c = f.connector();
    let t = target("repo_collaborator", "invitee", "acme/payments");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["permission"], serde_json::Value::Null);
    assert_eq!(before.state["invitation"], "push");
    let a = action(ActionKind::Revoke, t.clone());
    let planned = c.plan(&a, &before).await.unwrap();
    assert!(planned.description.contains("Cancel invitee's pending push invitation"), "{}", planned.description);
    assert_eq!(planned.expected_after.state["invitation"], serde_json::Value::Null);

    let mark = f.fake.log().count();
    let outcome = c.execute(&a, &before).await.unwrap();
    assert_eq!(outcome.status, OutcomeStatus::Applied);
    let writes = writes_since(&f.fake, mark);
    assert_eq!(writes.len(), 1, "{writes:?}");
    assert!(writes[0].starts_with("DELETE /repos/acme/payments/invitations/"), "{writes:?}");
    {
        let state = f.fake.state();
        let invitations = &state.repos["acme/payments"].invitations;
        assert!(!invitations.contains_key("invitee"), "the invitation stayed");
        assert_eq!(invitations.get("other").map(String::as_str), Some("pull"), "another user's invitation went");
    }
    assert!(c.verify(&a, &planned).await.unwrap().matches);

    // Executing again finds nothing left to cancel.
    let after = c.snapshot(&t).await.unwrap();
    assert_eq!(c.execute(&a, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);

    let mark = f.fake.log().count();
    // GitHub answers the PUT with a new invitation: the rollback says the access waits for it.
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::PendingAcceptance);
    assert_eq!(writes_since(&f.fake, mark), vec!["PUT /repos/acme/payments/collaborators/invitee".to_owned()]);
    assert_eq!(f.fake.state().repos["acme/payments"].invitations.get("invitee").map(String::as_str), Some("push"));
    assert_eq!(c.snapshot(&t).await.unwrap(), before);
    // Rolling back again sends nothing: the same invitation is already pending.
    let mark = f.fake.log().count();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);
    assert_eq!(writes_since(&f.fake, mark), Vec::<String>::new());
}

#[tokio::test]
async fn revoking_a_pending_organisation_invitee_cancels_the_invitation_and_rollback_invites_again() {
    let f = Fixture::start(100, |s| s.invite_org_member("acme", "invitee", "admin")).await;
    let c = f.connector();
    let t = target("org_member", "invitee", "acme");
    let before = c.snapshot(&t).await.unwrap();
    assert_eq!(before.state["membership"], "pending");
    let a = action(ActionKind::Revoke, t.clone());
    let planned = c.plan(&a, &before).await.unwrap();
    assert!(planned.description.contains("Cancel invitee's pending invitation"), "{}", planned.description);

    let mark = f.fake.log().count();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(writes_since(&f.fake, mark), vec!["DELETE /orgs/acme/memberships/invitee".to_owned()]);
    assert!(!f.fake.state().orgs["acme"].invitations.contains_key("invitee"), "the invitation stayed");
    assert!(c.verify(&a, &planned).await.unwrap().matches);

    let after = c.snapshot(&t).await.unwrap();
    let mark = f.fake.log().count();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::PendingAcceptance);
    assert_eq!(writes_since(&f.fake, mark), vec!["PUT /orgs/acme/memberships/invitee".to_owned()]);
    assert_eq!(f.fake.state().orgs["acme"].invitations.get("invitee").map(String::as_str), Some("admin"));
    assert_eq!(c.snapshot(&t).await.unwrap(), before);
}

#[tokio::test]
async fn an_active_member_is_still_removed_with_the_member_call() {
    let f = Fixture::start(100, |s| s.add_team_member("acme", "platform", "dev", "member")).await;
    let c = f.connector();
    let t = target("org_member", "dev", "acme");
    let before = c.snapshot(&t).await.unwrap();
    let a = action(ActionKind::Revoke, t);
    c.plan(&a, &before).await.unwrap();
    let mark = f.fake.log().count();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(writes_since(&f.fake, mark), vec!["DELETE /orgs/acme/members/dev".to_owned()]);
    let state = f.fake.state();
    assert!(!state.orgs["acme"].members.contains_key("dev"));
    assert!(!state.orgs["acme"].teams["platform"].members.contains_key("dev"));
}
