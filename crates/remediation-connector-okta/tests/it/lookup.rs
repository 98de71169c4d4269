//! Finding a person's Okta account: by login only, read back and compared, never by a
//! profile field the user sets.

use remediation_connector_okta::{ACCOUNT, GROUP_MEMBERSHIP};
use remediation_core::{AccountKey, Connector, ConnectorErrorKind};
use remediation_testkit::golden::Golden;

use crate::support::{Auth, BREAKGLASS_ID, BREAKGLASS_LOGIN, connector, fake, seed, seed_breakglass};

#[tokio::test]
async fn a_person_is_found_by_login_in_any_case_with_their_groups() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    fake.org().add_group("00g2", "APP_GROUP");
    fake.org().add_member("00g2", "00u1");
    let built = connector(&fake, Auth::Ssws, None);
    let mark = fake.log().count();
    let found = built
        .connector
        .find_account(&AccountKey::Person("00U1@Example.com".into()))
        .await
        .expect("find")
        .expect("found");
    assert_eq!(found.id, "00u1");
    assert_eq!(found.login, "00u1@example.com");
    assert_eq!(found.matched_by, "login");
    assert_eq!(found.status.as_deref(), Some("ACTIVE"));
    assert_eq!(found.groups, Some(vec!["00g1".to_owned(), "00g2".to_owned()]));
    assert_eq!(found.sessions, None);
    assert!(!found.protected);
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).check("find-account", &fake.log().since(mark));

    // Its targets are ones the connector reads, as the same user.
    let account = built.connector.snapshot(&found.target()).await.expect("account snapshot");
    assert_eq!(found.target().grant_type, ACCOUNT);
    assert_eq!(account.canonical.expect("canonical").identity, "00u1");
    let membership = found.membership("00g1");
    assert_eq!(membership.grant_type, GROUP_MEMBERSHIP);
    let snap = built.connector.snapshot(&membership).await.expect("membership snapshot");
    assert_eq!(snap.state["member"], true, "{snap:?}");
}

#[tokio::test]
async fn a_link_is_found_by_id_or_login() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    fake.org().set_login("00u1", "alice@example.com");
    let built = connector(&fake, Auth::Ssws, None);
    let by_id = built.connector.find_account(&AccountKey::Link("00u1".into())).await.expect("find").expect("found");
    assert_eq!((by_id.id.as_str(), by_id.matched_by.as_str()), ("00u1", "id"));
    let by_login = built
        .connector
        .find_account(&AccountKey::Link("ALICE@example.com".into()))
        .await
        .expect("find")
        .expect("found");
    assert_eq!((by_login.id.as_str(), by_login.matched_by.as_str()), ("00u1", "login"));
}

#[tokio::test]
async fn an_unknown_person_is_none() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    let built = connector(&fake, Auth::Ssws, None);
    for key in [AccountKey::Person("nobody@example.com".into()), AccountKey::Link("00unobody".into())] {
        assert_eq!(built.connector.find_account(&key).await.expect("find"), None, "{key}");
    }
}

#[tokio::test]
async fn a_profile_email_the_user_set_does_not_find_them() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    fake.org().set_login("00u1", "mallory@example.com");
    fake.org().set_email("00u1", "alice@example.com");
    let built = connector(&fake, Auth::Ssws, None);
    let found = built.connector.find_account(&AccountKey::Person("alice@example.com".into())).await.expect("find");
    assert_eq!(found, None);
}

#[tokio::test]
async fn a_person_is_not_found_by_an_id_or_a_login_short_name() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    fake.org().set_login("00u1", "alice@example.com");
    let built = connector(&fake, Auth::Ssws, None);
    // Okta answers both reads with the user; neither is the person's login.
    for key in ["00u1", "alice"] {
        let found = built.connector.find_account(&AccountKey::Person(key.into())).await.expect("find");
        assert_eq!(found, None, "{key}");
    }
}

#[tokio::test]
async fn hostile_keys_are_refused_before_any_request() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    let built = connector(&fake, Auth::Ssws, None);
    let mark = fake.log().count();
    for bad in ["alice/../bob", "x\" or true", "..", "00u1?expand=x", "a%2f"] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = built.connector.find_account(&key).await.expect_err("refused");
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
    assert!(fake.log().since(mark).is_empty(), "{:?}", fake.log().since(mark));
}

#[tokio::test]
async fn the_break_glass_account_is_found_protected() {
    let fake = fake().await;
    seed_breakglass(&fake);
    let built = connector(&fake, Auth::Ssws, None);
    let found =
        built.connector.find_account(&AccountKey::Person(BREAKGLASS_LOGIN.into())).await.expect("find").expect("found");
    assert_eq!(found.id, BREAKGLASS_ID);
    assert!(found.protected);
    assert_eq!(found.groups, Some(vec!["00gadmins".to_owned()]));
}

#[tokio::test]
async fn a_failing_org_is_an_error_not_none() {
    let fake = fake().await;
    seed(&fake, "00u1", "00g1", "0oa1");
    let built = connector(&fake, Auth::Ssws, None);
    fake.faults().fail_next(20, 500);
    let err = built.connector.find_account(&AccountKey::Person("00u1@example.com".into())).await.expect_err("fails");
    assert_ne!(err.kind, ConnectorErrorKind::NotFound, "{err}");
}
