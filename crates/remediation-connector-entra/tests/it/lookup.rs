//! Finding a person's Entra ID account: by userPrincipalName only, read back and compared,
//! never by an address the user may add (`otherMails`).

use remediation_core::{AccountKey, Connector, ConnectorErrorKind};
use remediation_testkit::fakes::entra::{ALICE, BOB, BREAK_GLASS, DYNAMIC_GROUP, ENGINEERING, USER_ADMINISTRATOR};
use remediation_testkit::golden::Golden;

use crate::Fixture;

#[tokio::test]
async fn a_person_is_found_by_user_principal_name_in_any_case_with_their_groups() {
    let f = Fixture::start().await;
    let c = f.connector();
    c.check_permissions().await.unwrap();
    let mark = f.fake.log().count();
    let found = c.find_account(&AccountKey::Person("Alice@CONTOSO.example".into())).await.unwrap().unwrap();
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).check("find_account", &f.fake.log().since(mark));
    assert_eq!(found.id, ALICE);
    assert_eq!(found.login, "alice@contoso.example");
    assert_eq!(found.matched_by, "user_principal_name");
    assert_eq!(found.status.as_deref(), Some("enabled"));
    assert_eq!(found.display_name.as_deref(), Some("alice"));
    // Groups only: the User Administrator role alice holds is not a group.
    let mut groups = found.groups.clone().unwrap();
    groups.sort();
    let mut want = vec![ENGINEERING.to_owned(), DYNAMIC_GROUP.to_owned()];
    want.sort();
    assert_eq!(groups, want);
    assert!(!groups.iter().any(|g| g == USER_ADMINISTRATOR));
    assert_eq!(found.sessions, None);
    assert!(!found.protected);

    // Its targets are ones the connector reads, as the same user and group.
    let account = c.snapshot(&found.target()).await.unwrap();
    assert_eq!(account.canonical.unwrap().identity, ALICE);
    let membership = c.snapshot(&found.membership(ENGINEERING)).await.unwrap();
    assert_eq!(membership.state["member"], true, "{membership:?}");
    assert_eq!(membership.canonical.unwrap().resource.as_deref(), Some(ENGINEERING));
}

#[tokio::test]
async fn a_link_is_found_by_object_id_or_user_principal_name() {
    let f = Fixture::start().await;
    let c = f.connector();
    let by_id = c.find_account(&AccountKey::Link(BOB.into())).await.unwrap().unwrap();
    assert_eq!((by_id.id.as_str(), by_id.matched_by.as_str()), (BOB, "id"));
    let by_upn = c.find_account(&AccountKey::Link("bob@contoso.example".into())).await.unwrap().unwrap();
    assert_eq!((by_upn.id.as_str(), by_upn.matched_by.as_str()), (BOB, "user_principal_name"));
}

#[tokio::test]
async fn a_disabled_account_shows_as_disabled() {
    let f = Fixture::start().await;
    if let Some(u) = f.fake.tenant().users.get_mut(BOB) {
        u.account_enabled = false;
    }
    let found = f.connector().find_account(&AccountKey::Person("bob@contoso.example".into())).await.unwrap().unwrap();
    assert_eq!(found.status.as_deref(), Some("disabled"));
}

#[tokio::test]
async fn an_unknown_person_is_none() {
    let f = Fixture::start().await;
    let c = f.connector();
    for key in [
        AccountKey::Person("nobody@contoso.example".into()),
        AccountKey::Link("00000000-0000-4000-8000-000000000000".into()),
    ] {
        assert_eq!(c.find_account(&key).await.unwrap(), None, "{key}");
    }
}

#[tokio::test]
async fn an_address_the_user_added_does_not_find_them() {
    let f = Fixture::start().await;
    if let Some(u) = f.fake.tenant().users.get_mut(BOB) {
        u.other_mails.push("alice.ceo@contoso.example".into());
    }
    let c = f.connector();
    assert_eq!(c.find_account(&AccountKey::Person("alice.ceo@contoso.example".into())).await.unwrap(), None);
}

#[tokio::test]
async fn a_person_is_not_found_by_an_object_id() {
    let f = Fixture::start().await;
    // Graph answers the read with bob; an object id is not a person's sign-in name.
    let found = f.connector().find_account(&AccountKey::Person(BOB.into())).await.unwrap();
    assert_eq!(found, None);
}

#[tokio::test]
async fn hostile_keys_are_refused_before_any_request() {
    let f = Fixture::start().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for bad in ["alice/../bob", "x\" or true", "..", "alice@contoso.example?$select=otherMails", "x'"] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = c.find_account(&key).await.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
    assert!(f.fake.log().since(mark).is_empty(), "{:?}", f.fake.log().since(mark));
}

#[tokio::test]
async fn the_break_glass_account_is_found_protected() {
    let f = Fixture::start().await;
    let found =
        f.connector().find_account(&AccountKey::Person("breakglass@contoso.example".into())).await.unwrap().unwrap();
    assert_eq!(found.id, BREAK_GLASS);
    assert!(found.protected);
}
