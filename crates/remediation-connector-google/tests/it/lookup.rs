//! Finding a person's Google Workspace account: by primary email or admin-set alias, read
//! back and compared, never by an address the user sets (`recoveryEmail`).

use remediation_core::{AccountKey, Connector, ConnectorErrorKind};
use remediation_testkit::fakes::google::AdminRole;
use remediation_testkit::golden::Golden;

use crate::{Fixture, account};

const ALICE: &str = "alice@example.com";

async fn fixture() -> Fixture {
    Fixture::start(|s| {
        let alice = s.add_user(ALICE, AdminRole::None);
        alice.aliases.push("alice.smith@example.com".to_owned());
        s.add_user("bob@example.com", AdminRole::None).recovery_email = Some("alice@example.org".to_owned());
        s.add_user("break-glass@example.com", AdminRole::None);
        s.add_member("eng@example.com", ALICE, "MEMBER", "ALL_MAIL");
    })
    .await
}

#[tokio::test]
async fn a_person_is_found_by_primary_email_in_any_case() {
    let f = fixture().await;
    let c = f.connector();
    c.snapshot(&account(ALICE)).await.unwrap();
    let id = f.fake.state().user(ALICE).unwrap().id.clone();
    let mark = f.fake.log().count();
    let found = c.find_account(&AccountKey::Person("Alice@EXAMPLE.com".into())).await.unwrap().unwrap();
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden"))
        .headers(&["authorization", "content-type"])
        .check("find_account", &f.fake.log().since(mark));
    assert_eq!(found.id, id);
    assert_eq!(found.login, ALICE);
    assert_eq!(found.matched_by, "primary_email");
    assert_eq!(found.status.as_deref(), Some("active"));
    assert_eq!(found.display_name.as_deref(), Some("alice Fake"));
    assert_eq!(found.groups, None);
    assert_eq!(found.sessions, None);
    assert!(!found.protected);

    // The account target names the user by its id, which the connector reads as the same user.
    let snap = c.snapshot(&found.target()).await.unwrap();
    assert_eq!(snap.canonical.unwrap().identity, id);
    let membership = c.snapshot(&found.membership("eng@example.com")).await.unwrap();
    assert_eq!(membership.canonical.unwrap().identity, id);
}

#[tokio::test]
async fn a_person_is_found_by_an_admin_set_alias() {
    let f = fixture().await;
    let found = f.connector().find_account(&AccountKey::Person("ALICE.smith@example.com".into())).await.unwrap();
    let found = found.unwrap();
    assert_eq!((found.login.as_str(), found.matched_by.as_str()), (ALICE, "alias"));
}

#[tokio::test]
async fn a_link_is_found_by_id() {
    let f = fixture().await;
    let id = f.fake.state().user(ALICE).unwrap().id.clone();
    let found = f.connector().find_account(&AccountKey::Link(id.clone())).await.unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.matched_by.as_str()), (id.as_str(), "id"));
}

#[tokio::test]
async fn a_person_is_not_found_by_an_id() {
    let f = fixture().await;
    let id = f.fake.state().user(ALICE).unwrap().id.clone();
    // Google answers the read; an id is not a person's email.
    assert_eq!(f.connector().find_account(&AccountKey::Person(id)).await.unwrap(), None);
}

#[tokio::test]
async fn an_unknown_person_is_none() {
    let f = fixture().await;
    let c = f.connector();
    assert_eq!(c.find_account(&AccountKey::Person("nobody@example.com".into())).await.unwrap(), None);
    assert_eq!(c.find_account(&AccountKey::Link("199999".into())).await.unwrap(), None);
}

#[tokio::test]
async fn a_recovery_email_the_user_set_does_not_find_them() {
    let f = fixture().await;
    assert_eq!(f.connector().find_account(&AccountKey::Person("alice@example.org".into())).await.unwrap(), None);
}

#[tokio::test]
async fn a_suspended_user_shows_as_suspended() {
    let f = fixture().await;
    f.fake.state().users.get_mut(ALICE).unwrap().suspended = true;
    let found = f.connector().find_account(&AccountKey::Person(ALICE.into())).await.unwrap().unwrap();
    assert_eq!(found.status.as_deref(), Some("suspended"));
}

#[tokio::test]
async fn protected_accounts_and_super_admins_are_found_protected() {
    let f = fixture().await;
    let c = f.connector();
    let glass = c.find_account(&AccountKey::Person("break-glass@example.com".into())).await.unwrap().unwrap();
    assert!(glass.protected);
    let admin = c.find_account(&AccountKey::Person(crate::ADMIN.into())).await.unwrap().unwrap();
    assert!(admin.protected);
}

#[tokio::test]
async fn hostile_keys_are_refused_before_any_request() {
    let f = fixture().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for bad in ["alice/../bob", "x\" or true", "..", "alice@example.com?projection=custom", "a%2fb"] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = c.find_account(&key).await.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
    assert!(f.fake.log().since(mark).is_empty(), "{:?}", f.fake.log().since(mark));
}
