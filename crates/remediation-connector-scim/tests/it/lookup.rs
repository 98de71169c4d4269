//! Finding a person's SCIM account: by `userName` only, in a quoted filter, read back by id
//! and compared; never by `emails`.

use remediation_core::{AccountKey, Connector, ConnectorErrorKind};
use remediation_testkit::fakes::scim::{self, BJENSEN, BREAK_GLASS, JSMITH, TOUR_GUIDES};
use remediation_testkit::golden::Golden;

use crate::Fixture;

#[tokio::test]
async fn a_person_is_found_by_user_name_in_any_case_with_their_groups() {
    let f = Fixture::start().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    let found = c.find_account(&AccountKey::Person("BJensen@Example.com".into())).await.unwrap().unwrap();
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).check("find_account", &f.fake.log().since(mark));
    assert_eq!(found.id, BJENSEN);
    assert_eq!(found.login, "bjensen@example.com");
    assert_eq!(found.matched_by, "login");
    assert_eq!(found.status.as_deref(), Some("active"));
    assert_eq!(found.groups, Some(vec![TOUR_GUIDES.to_owned()]));
    assert_eq!(found.sessions, None);
    assert!(!found.protected);

    let account = c.snapshot(&found.target()).await.unwrap();
    assert_eq!(account.canonical.unwrap().identity, BJENSEN);
    let membership = c.snapshot(&found.membership(TOUR_GUIDES)).await.unwrap();
    assert_eq!(membership.state["member"], true, "{membership:?}");
}

#[tokio::test]
async fn a_link_is_found_by_id_or_user_name() {
    let f = Fixture::start().await;
    let c = f.connector();
    let by_id = c.find_account(&AccountKey::Link(JSMITH.into())).await.unwrap().unwrap();
    assert_eq!((by_id.id.as_str(), by_id.matched_by.as_str()), (JSMITH, "id"));
    let by_name = c.find_account(&AccountKey::Link("jsmith@example.com".into())).await.unwrap().unwrap();
    assert_eq!((by_name.id.as_str(), by_name.matched_by.as_str()), (JSMITH, "login"));
}

#[tokio::test]
async fn a_person_is_not_found_by_an_id_or_an_email() {
    let f = Fixture::start().await;
    if let Some(u) = f.fake.directory().users.get_mut(JSMITH) {
        u.emails.push("bjensen.private@example.org".into());
    }
    let c = f.connector();
    for key in [BJENSEN, "bjensen.private@example.org"] {
        assert_eq!(c.find_account(&AccountKey::Person(key.into())).await.unwrap(), None, "{key}");
    }
}

#[tokio::test]
async fn an_unknown_person_is_none() {
    let f = Fixture::start().await;
    let c = f.connector();
    assert_eq!(c.find_account(&AccountKey::Person("nobody@example.com".into())).await.unwrap(), None);
    assert_eq!(c.find_account(&AccountKey::Link("nobody".into())).await.unwrap(), None);
}

#[tokio::test]
async fn an_inactive_user_shows_as_inactive_and_break_glass_as_protected() {
    let f = Fixture::start().await;
    if let Some(u) = f.fake.directory().users.get_mut(JSMITH) {
        u.active = false;
    }
    let c = f.connector();
    let found = c.find_account(&AccountKey::Person("jsmith@example.com".into())).await.unwrap().unwrap();
    assert_eq!(found.status.as_deref(), Some("inactive"));
    let glass = c.find_account(&AccountKey::Person("breakglass@example.com".into())).await.unwrap().unwrap();
    assert_eq!(glass.id, BREAK_GLASS);
    assert!(glass.protected);
}

#[tokio::test]
async fn two_users_with_one_user_name_are_an_error_not_a_choice() {
    let mut d = scim::sample_directory();
    d.add_user("dddddddd-5c13-4000-8000-000000000001", "BJENSEN@example.com");
    let f = Fixture::with(d).await;
    let err = f.connector().find_account(&AccountKey::Person("bjensen@example.com".into())).await.unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
}

#[tokio::test]
async fn groups_are_unknown_when_the_service_cannot_filter_by_member() {
    let mut d = scim::sample_directory();
    d.member_filter = false;
    let f = Fixture::with(d).await;
    let found = f.connector().find_account(&AccountKey::Person("bjensen@example.com".into())).await.unwrap().unwrap();
    assert_eq!(found.groups, None);
}

#[tokio::test]
async fn hostile_keys_are_refused_before_any_request() {
    let f = Fixture::start().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for bad in ["alice/../bob", "x\" or true", "..", "x\\", "a)(b", "userName pr"] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = c.find_account(&key).await.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
    assert!(f.fake.log().since(mark).is_empty(), "{:?}", f.fake.log().since(mark));
}
