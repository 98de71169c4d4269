//! Finding an account on GitHub: only by a linked login, never by a person's email, which
//! on GitHub is whatever the account holder typed.

use remediation_core::{AccountKey, Connector, ConnectorErrorKind};
use remediation_testkit::golden::Golden;

use crate::{Fixture, target};

async fn fixture() -> Fixture {
    Fixture::start(100, |s| {
        s.add_org_member("acme", "Mona", "member");
        s.add_user("BreakGlass-Bot");
    })
    .await
}

#[tokio::test]
async fn a_person_is_refused_as_unsupported_without_a_request() {
    let f = fixture().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for key in ["mona@example.com", "mona"] {
        let err = c.find_account(&AccountKey::Person(key.into())).await.unwrap_err();
        assert_eq!(err.kind, ConnectorErrorKind::Unsupported, "{err}");
        assert!(err.message.contains("link"), "{err}");
    }
    assert!(f.fake.log().since(mark).is_empty());
}

#[tokio::test]
async fn a_linked_login_is_found_in_any_case() {
    let f = fixture().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    let found = c.find_account(&AccountKey::Link("mona".into())).await.unwrap().unwrap();
    Golden::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/golden")).check("find_account", &f.fake.log().since(mark));
    assert_eq!(found.id, "Mona");
    assert_eq!(found.login, "Mona");
    assert_eq!(found.matched_by, "login");
    assert_eq!((found.status.clone(), found.groups.clone(), found.sessions), (None, None, None));
    assert!(!found.protected);
    // The id is what GitHub's targets name.
    let snap = c.snapshot(&target("org_member", &found.id, "acme")).await.unwrap();
    assert_eq!(snap.state["role"], "member", "{snap:?}");
}

#[tokio::test]
async fn an_unknown_login_is_none() {
    let f = fixture().await;
    assert_eq!(f.connector().find_account(&AccountKey::Link("nobody".into())).await.unwrap(), None);
}

#[tokio::test]
async fn a_protected_login_is_found_protected() {
    let f = fixture().await;
    let found = f.connector().find_account(&AccountKey::Link("breakglass-bot".into())).await.unwrap().unwrap();
    assert!(found.protected);
}

#[tokio::test]
async fn hostile_keys_are_refused_before_any_request() {
    let f = fixture().await;
    let c = f.connector();
    let mark = f.fake.log().count();
    for bad in ["alice/../bob", "x\" or true", "..", "mona?per_page=1", "a%2fb"] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = c.find_account(&key).await.unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
    assert!(f.fake.log().since(mark).is_empty(), "{:?}", f.fake.log().since(mark));
}
