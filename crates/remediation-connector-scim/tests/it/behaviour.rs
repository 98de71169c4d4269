//! SCIM-specific behaviour: ETag conflicts, error bodies, protected targets, permissions and
//! secrets.

use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus};
use remediation_testkit::fakes::scim::{self, BJENSEN, TOUR_GUIDES};

use crate::{Fixture, account, action, membership};

#[tokio::test]
async fn a_changed_etag_is_a_conflict_and_nothing_is_written() {
    let f = Fixture::start().await;
    let c = f.connector();
    let target = membership(BJENSEN, TOUR_GUIDES);
    let before = c.snapshot(&target).await.unwrap();
    let a = action(ActionKind::Revoke, target.clone());
    // Another client changes the group between the connector's read and its PATCH.
    f.fake.directory().concurrent_change = true;
    let mark = f.fake.log().count();
    let e = c.execute(&a, &before).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Conflict, "{e}");
    assert!(e.message.contains("Resource changed"), "{e}");
    let sent = f.fake.log().since(mark);
    let patch = sent.iter().find(|r| r.method == "PATCH").unwrap();
    assert_eq!(patch.headers.get("if-match").map(String::as_str), Some("W/\"1\""));
    assert_eq!(patch.status, 412);
    assert_eq!(sent.iter().filter(|r| r.method == "PATCH").count(), 1, "a 412 is not retried");
    assert!(f.fake.directory().groups[TOUR_GUIDES].members.contains(&BJENSEN.to_owned()));
    // Executed again, the connector reads the new ETag and succeeds.
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
}

#[tokio::test]
async fn errors_keep_the_scim_detail() {
    let f = Fixture::start().await;
    let e = f.connector().snapshot(&account("no-such-user")).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::NotFound);
    assert!(e.message.contains("User no-such-user not found"), "{e}");
    assert!(e.request_id.is_some(), "{e:?}");
}

#[tokio::test]
async fn break_glass_users_are_protected() {
    let f = Fixture::start().await;
    assert!(f.connector().snapshot(&account(scim::BREAK_GLASS)).await.unwrap().protected);
    assert!(!f.connector().snapshot(&account(BJENSEN)).await.unwrap().protected);
}

#[tokio::test]
async fn a_user_named_by_user_name_is_resolved_to_its_id_and_written_by_it() {
    let f = Fixture::start().await;
    let mut config = f.config("write");
    // Protected by userName: the resource id is the same user.
    config.protected = vec!["BREAKGLASS@example.com".into()];
    let c = f.connector_for(&config);
    for identity in [scim::BREAK_GLASS, "breakglass@example.com"] {
        let s = c.snapshot(&account(identity)).await.unwrap();
        assert!(s.protected, "{identity}");
        assert_eq!(s.canonical.unwrap().identity, scim::BREAK_GLASS, "{identity}");
    }
    // An unprotected user named by userName is written by its id.
    let target = account("bjensen@example.com");
    let before = c.snapshot(&target).await.unwrap();
    assert!(!before.protected);
    let mark = f.fake.log().count();
    c.execute(&action(ActionKind::Suspend, target), &before).await.unwrap();
    let patches: Vec<String> =
        f.fake.log().since(mark).into_iter().filter(|r| r.method == "PATCH").map(|r| r.path).collect();
    assert_eq!(patches.len(), 1);
    assert!(patches[0].ends_with(&format!("/Users/{BJENSEN}")), "{patches:?}");
}

#[tokio::test]
async fn check_permissions_reads_the_service_provider_config() {
    let f = Fixture::start().await;
    let p = f.connector().check_permissions().await.unwrap();
    assert!(p.missing.is_empty(), "{p:?}");
    // A bearer token's rights cannot be read: unknown, never ok.
    assert_eq!(p.unknown, ["read Users", "modify Users", "read Groups", "modify Groups"], "{p:?}");
    assert!(!p.all_granted() && p.unknown_reason.is_some());
    f.fake.directory().patch_supported = false;
    let missing = f.connector().check_permissions().await.unwrap().missing;
    assert_eq!(missing.len(), 1, "{missing:?}");
    assert!(missing[0].contains("PATCH"), "{missing:?}");
}

#[tokio::test]
async fn the_token_stays_out_of_debug_errors_and_config() {
    let f = Fixture::start().await;
    let c = f.connector();
    f.fake.faults().expire_tokens();
    let e = c.snapshot(&account(BJENSEN)).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated, "{e}");
    let shown = format!("{c:?} {:?} {e} {e:?}", f.config("write"));
    assert!(!shown.contains(scim::WRITE_TOKEN), "{shown}");
}

#[tokio::test]
async fn services_without_a_member_filter_are_read_through_the_group() {
    let f = Fixture::start().await;
    f.fake.directory().member_filter = false;
    let c = f.connector();
    let target = membership(BJENSEN, TOUR_GUIDES);
    let before = c.snapshot(&target).await.unwrap();
    assert_eq!(before.state["member"], true);
    let a = action(ActionKind::Revoke, target.clone());
    let plan = c.plan(&a, &before).await.unwrap();
    assert_eq!(c.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
    assert!(c.verify(&a, &plan).await.unwrap().matches);
    let after = c.snapshot(&target).await.unwrap();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(c.snapshot(&target).await.unwrap(), before);
}

/// `..` as a user id once read `GET /scim/v2/` (the id was not encoded, and the URL was
/// normalised); now no identifier leaves its segment and dot segments send nothing.
#[tokio::test]
async fn identifiers_stay_in_their_path_segment() {
    let f = Fixture::start().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for id in ["..", ".", "%2e%2E", ".%2E"] {
        let e = c.snapshot(&account(id)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{id:?}: {e}");
        let e = c.snapshot(&membership(BJENSEN, id)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{id:?}: {e}");
    }
    // Only the membership reads' first step, the (valid) user, reached the service.
    let user_path = format!("/scim/v2/Users/{BJENSEN}");
    let sent = f.fake.log().since(mark);
    assert!(sent.iter().all(|r| r.path == user_path), "{sent:?}");
    let mark = f.fake.log().count();

    // Any other id is one encoded segment of the Users path.
    let e = c.snapshot(&account("no such user%")).await.unwrap_err();
    assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");
    let sent = f.fake.log().since(mark);
    assert!(sent[0].path.ends_with("/Users/no%20such%20user%25"), "{}", sent[0].path);
    // Not an id: the connector then looks for it as a userName, in a filter on the Users
    // listing (the value stays inside the filter's quoted literal, never in the path).
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].path.ends_with("/scim/v2/Users"), "{}", sent[1].path);
}

#[tokio::test]
async fn a_re_added_member_is_a_user_as_it_was() {
    let f = Fixture::start().await;
    let c = f.connector();
    let target = membership(BJENSEN, TOUR_GUIDES);
    let types_before = f.fake.directory().groups[TOUR_GUIDES].member_types.clone();
    assert_eq!(types_before.get(BJENSEN).map(String::as_str), Some("User"));
    let before = c.snapshot(&target).await.unwrap();
    let a = action(ActionKind::Revoke, target.clone());
    c.execute(&a, &before).await.unwrap();
    let after = c.snapshot(&target).await.unwrap();
    assert!(!f.fake.directory().groups[TOUR_GUIDES].members.contains(&BJENSEN.to_owned()));
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
    let group = f.fake.directory().groups[TOUR_GUIDES].clone();
    assert!(group.members.contains(&BJENSEN.to_owned()), "{group:?}");
    assert_eq!(group.member_types, types_before, "the member came back with another type");
    assert_eq!(c.snapshot(&target).await.unwrap(), before);
}

#[tokio::test]
async fn the_plan_names_the_user_and_the_group_as_the_service_does() {
    let f = Fixture::start().await;
    let c = f.connector();
    let expected = format!("remove SCIM user bjensen@example.com ({BJENSEN}) from group Tour Guides ({TOUR_GUIDES})");
    // Named by id or by userName, the plan reads the same: the names come from the snapshot.
    for identity in [BJENSEN, "bjensen@example.com"] {
        let target = membership(identity, TOUR_GUIDES);
        let before = c.snapshot(&target).await.unwrap();
        assert_eq!(before.state["group_name"], "Tour Guides", "{before:?}");
        let plan = c.plan(&action(ActionKind::Revoke, target), &before).await.unwrap();
        assert_eq!(plan.description, expected);
    }
    // A group renamed after the snapshot is still restored by its id.
    let target = membership(BJENSEN, TOUR_GUIDES);
    let before = c.snapshot(&target).await.unwrap();
    let a = action(ActionKind::Revoke, target.clone());
    c.execute(&a, &before).await.unwrap();
    let after = c.snapshot(&target).await.unwrap();
    f.fake.directory().groups.get_mut(TOUR_GUIDES).unwrap().display_name = "Tour Guides (EU)".into();
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
    assert_eq!(c.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);
}
