//! Finding a person's account: by key, admin-set email or alias, case-insensitively, and
//! never by a key that could name something else.

use remediation_core::{Account, AccountKey, Connector as _, ConnectorErrorKind};

use super::{Fixture, account, block_on, membership};

fn find(fx: &Fixture, key: AccountKey) -> Result<Option<Account>, remediation_core::ConnectorError> {
    block_on(fx.sandbox.find_account(&key))
}

#[test]
fn a_person_is_found_by_key_email_or_alias_and_the_account_is_actionable() {
    let fx = Fixture::sample();
    let mut dir = fx.directory();
    dir.users.get_mut("bob").unwrap().aliases.push("robert".into());
    remediation_connector_sandbox::save(&fx.path, &dir).unwrap();

    let alice = find(&fx, AccountKey::Person("ALICE@example.COM".into())).unwrap().unwrap();
    assert_eq!(alice.id, "alice");
    assert_eq!(alice.matched_by, "primary_email");
    assert_eq!(alice.status.as_deref(), Some("active"));
    assert_eq!(alice.display_name.as_deref(), Some("Alice"));
    assert_eq!(alice.groups, Some(vec!["admins".to_owned(), "engineering".to_owned()]));
    assert_eq!(alice.sessions, Some(2));
    assert!(!alice.protected);

    let by_key = find(&fx, AccountKey::Person("Alice".into())).unwrap().unwrap();
    assert_eq!((by_key.id.as_str(), by_key.matched_by.as_str()), ("alice", "login"));
    let by_alias = find(&fx, AccountKey::Person("Robert".into())).unwrap().unwrap();
    assert_eq!((by_alias.id.as_str(), by_alias.matched_by.as_str()), ("bob", "alias"));

    // The account's targets are ones the sandbox itself reads, as the same account.
    let snap = block_on(fx.sandbox.snapshot(&alice.target())).unwrap();
    assert_eq!(snap.canonical.unwrap().identity, "alice");
    for group in alice.groups.as_deref().unwrap() {
        let snap = block_on(fx.sandbox.snapshot(&alice.membership(group))).unwrap();
        assert_eq!(snap.state["member"], true, "{group}");
    }
    assert_eq!(alice.target(), account("alice"));
    assert_eq!(alice.membership("admins"), membership("alice", "admins"));
}

#[test]
fn the_break_glass_account_is_found_protected() {
    let fx = Fixture::sample();
    let found = find(&fx, AccountKey::Person("breakglass@example.com".into())).unwrap().unwrap();
    assert!(found.protected);
    assert_eq!(found.groups, Some(vec!["admins".to_owned()]));
    assert_eq!(found.sessions, Some(0));
}

#[test]
fn a_link_names_the_user_by_key_or_alias_but_not_by_email() {
    let fx = Fixture::sample();
    let mut dir = fx.directory();
    dir.users.get_mut("carol").unwrap().aliases.push("c.smith".into());
    remediation_connector_sandbox::save(&fx.path, &dir).unwrap();

    let found = find(&fx, AccountKey::Link("carol".into())).unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.matched_by.as_str()), ("carol", "id"));
    let found = find(&fx, AccountKey::Link("C.Smith".into())).unwrap().unwrap();
    assert_eq!((found.id.as_str(), found.matched_by.as_str()), ("carol", "alias"));
    assert_eq!(find(&fx, AccountKey::Link("carol@example.com".into())).unwrap(), None);
}

#[test]
fn an_unknown_person_is_none() {
    let fx = Fixture::sample();
    assert_eq!(find(&fx, AccountKey::Person("mallory@example.com".into())).unwrap(), None);
    assert_eq!(find(&fx, AccountKey::Link("mallory".into())).unwrap(), None);
}

#[test]
fn a_suspended_users_status_shows() {
    let fx = Fixture::sample();
    let mut dir = fx.directory();
    dir.users.get_mut("bob").unwrap().status = remediation_connector_sandbox::UserStatus::Suspended;
    remediation_connector_sandbox::save(&fx.path, &dir).unwrap();
    let found = find(&fx, AccountKey::Person("bob".into())).unwrap().unwrap();
    assert_eq!(found.status.as_deref(), Some("suspended"));
}

#[test]
fn hostile_keys_are_refused() {
    let fx = Fixture::sample();
    for bad in ["alice/../bob", "x\" or true", "..", ""] {
        for key in [AccountKey::Person(bad.into()), AccountKey::Link(bad.into())] {
            let err = find(&fx, key.clone()).unwrap_err();
            assert_eq!(err.kind, ConnectorErrorKind::InvalidTarget, "{key}: {err}");
        }
    }
}

#[test]
fn a_key_two_users_answer_to_is_an_error_not_a_choice() {
    let fx = Fixture::sample();
    let mut dir = fx.directory();
    // Bob's alias is Alice's email: which of them is meant cannot be told.
    dir.users.get_mut("bob").unwrap().aliases.push("alice@example.com".into());
    remediation_connector_sandbox::save(&fx.path, &dir).unwrap();
    let err = find(&fx, AccountKey::Person("alice@example.com".into())).unwrap_err();
    assert_eq!(err.kind, ConnectorErrorKind::Permanent, "{err}");
    assert!(err.message.contains("alice") && err.message.contains("bob"), "{err}");
}

#[test]
fn finding_fires_no_fault_and_writes_nothing() {
    let fx = Fixture::sample();
    fx.sandbox.inject(remediation_connector_sandbox::Fault::FailRollback).unwrap();
    let before = std::fs::read(&fx.path).unwrap();
    find(&fx, AccountKey::Person("alice".into())).unwrap().unwrap();
    assert_eq!(std::fs::read(&fx.path).unwrap(), before);
    assert!(fx.directory().faults.fail_rollback);
}

#[test]
fn a_missing_file_is_an_error_not_none() {
    let fx = Fixture::with_text("{not json");
    assert!(find(&fx, AccountKey::Person("alice".into())).is_err());
}

#[test]
fn the_in_memory_sandbox_finds_accounts_too() {
    let fx = Fixture::sample();
    let memory = remediation_connector_sandbox::SandboxConnector::in_memory("mem", fx.path.clone());
    let found = block_on(memory.find_account(&AccountKey::Person("carol@example.com".into()))).unwrap().unwrap();
    assert_eq!(found.id, "carol");
}
