//! Group membership: attribute detection, memberUid groups, the last member, result-code
//! idempotency, escaping of hostile values, and account writes read back raw.

use ldap3::Mod;
use remediation_connector_ldap::{Dialect, LOCKED_FOREVER};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus};
use serde_json::json;

use crate::server::{self, Slapd};
use crate::{Admin, account, action, block_on, membership, set, writer};

#[test]
fn the_member_attribute_is_detected_from_the_group() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        for (user, group, attribute, value) in [
            ("alice", "engineering", "member", server::user("alice")),
            ("dave", "ops", "uniqueMember", server::user("dave")),
            ("erin", "devs", "memberUid", "erin".to_owned()),
        ] {
            let s = ldap.snapshot(&membership(user, group)).await.unwrap();
            assert_eq!(
                s.state,
                json!({"user": server::user(user), "group": server::group(group), "attribute": attribute,
                       "value": value, "member": true}),
                "{user} in {group}"
            );
        }
        let s = ldap.snapshot(&membership("alice", "ops")).await.unwrap();
        assert_eq!(s.state["member"], json!(false));
    });
}

#[test]
fn member_uid_groups_lose_and_regain_the_uid() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let mut admin = Admin::connect(&server).await;
        let target = membership("erin", "devs");
        let act = action(ActionKind::Revoke, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        let planned = ldap.plan(&act, &before).await.unwrap();
        assert!(planned.description.contains("memberUid: erin"), "{}", planned.description);
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&server::group("devs"), "memberUid").await, ["frank", "grace"]);
        assert!(ldap.verify(&act, &planned).await.unwrap().matches);
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&server::group("devs"), "memberUid").await, ["erin", "frank", "grace"]);
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);
    });
}

#[test]
fn the_last_member_of_a_group_of_names_is_a_permanent_error() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let target = membership("frank", "solo");
        let act = action(ActionKind::Revoke, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        let e = ldap.execute(&act, &before).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Permanent);
        assert!(e.message.contains("last member") && e.message.contains("65"), "{}", e.message);
        assert_eq!(ldap.snapshot(&target).await.unwrap(), before, "nothing changed");
    });
}

#[test]
fn result_codes_16_and_20_mean_already_in_state() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let mut admin = Admin::connect(&server).await;
        let target = membership("bob", "engineering");
        let act = action(ActionKind::Revoke, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        // Someone else removes bob between our snapshot and our write: the delete answers 16.
        let bob = server::user("bob");
        assert_eq!(admin.modify(&server::group("engineering"), vec![Mod::Delete("member", set(&bob))]).await, 0);
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
        // Someone else puts bob back before our rollback: the add answers 20.
        assert_eq!(admin.modify(&server::group("engineering"), vec![Mod::Add("member", set(&bob))]).await, 0);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::AlreadyInState);
        assert_eq!(ldap.snapshot(&target).await.unwrap(), before);
    });
}

#[test]
fn hostile_values_are_escaped_in_filters() {
    let Some(server) = Slapd::start() else { return };
    block_on(async {
        let mut config = crate::config(&server, Dialect::Openldap, server::WRITER_DN, server::WRITER_PASSWORD);
        config.protected_groups = vec![server::group("admins"), server::group("wheel")];
        let ldap = remediation_connector_ldap::LdapConnector::from_config(config).unwrap();
        let mut admin = Admin::connect(&server).await;
        for hostile in ["*", "x)(uid=*"] {
            // Unescaped, `(memberUid=*)` would match every posixGroup with members, and
            // `(member=uid=*,...)` every group: the user would look like a member, and protected.
            let target = membership(hostile, "devs");
            let s = ldap.snapshot(&target).await.unwrap();
            assert_eq!(s.state["member"], json!(false), "{hostile}");
            assert_eq!(s.state["value"], json!(hostile));
            assert!(!s.protected, "{hostile} looks protected");
            assert!(!ldap.snapshot(&account(hostile)).await.unwrap().protected, "{hostile} account looks protected");
            let act = action(ActionKind::Revoke, target);
            assert_eq!(ldap.execute(&act, &s).await.unwrap().status, OutcomeStatus::AlreadyInState);
            assert_eq!(admin.values(&server::group("devs"), "memberUid").await, ["erin", "frank", "grace"]);
        }
    });
}

#[test]
fn dns_with_escaped_commas_are_passed_through_whole() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let mut admin = Admin::connect(&server).await;
        let doe = format!("cn=Doe\\, John,ou=people,{}", server::BASE);
        let target = remediation_core::Target { identity: doe.clone(), ..membership("alice", "escaped") };
        let act = action(ActionKind::Revoke, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        assert_eq!(before.state["member"], json!(true));
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&server::group("escaped"), "member").await, [server::user("alice")]);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(ldap.snapshot(&target).await.unwrap(), before);
        assert_eq!(admin.values(&server::group("escaped"), "member").await.len(), 2);
    });
}

#[test]
fn openldap_lock_writes_the_ppolicy_value_and_restores_an_earlier_one() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let mut admin = Admin::connect(&server).await;
        let dn = server::user("mallory");
        // A temporary lockout by ppolicy, which rollback must put back as it was.
        assert_eq!(admin.modify(&dn, vec![Mod::Replace("pwdAccountLockedTime", set("20260101000000Z"))]).await, 0);
        let target = account("mallory");
        let act = action(ActionKind::Suspend, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        assert_eq!(before.state, json!({"user": dn, "pwdAccountLockedTime": "20260101000000Z"}));
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&dn, "pwdAccountLockedTime").await, [LOCKED_FOREVER]);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&dn, "pwdAccountLockedTime").await, ["20260101000000Z"]);
    });
}

#[test]
fn active_directory_disable_sets_and_clears_only_the_disable_bit() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::ActiveDirectory);
    block_on(async {
        let mut admin = Admin::connect(&server).await;
        let dn = server::user("ivan");
        // DONT_EXPIRE_PASSWORD (0x10000) stays as it is.
        assert_eq!(admin.modify(&dn, vec![Mod::Replace("userAccountControl", set("66048"))]).await, 0);
        let target = account("ivan");
        let act = action(ActionKind::Suspend, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        let planned = ldap.plan(&act, &before).await.unwrap();
        assert_eq!(planned.expected_after.state, json!({"user": dn, "userAccountControl": 66050}));
        assert!(planned.description.contains("66048 -> 66050"), "{}", planned.description);
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&dn, "userAccountControl").await, ["66050"]);
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(admin.values(&dn, "userAccountControl").await, ["66048"]);
    });
}

/// The rc of a simple bind as `dn` with the seeded user password.
async fn bind_rc(server: &Slapd, dn: &str) -> u32 {
    let (conn, mut ldap) = ldap3::LdapConnAsync::new(&server.url).await.unwrap();
    ldap3::drive!(conn);
    let rc = ldap.simple_bind(dn, server::USER_PASSWORD).await.unwrap().rc;
    let _ = ldap.unbind().await;
    rc
}

#[test]
fn a_locked_openldap_account_cannot_bind_until_rolled_back() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let dn = server::user("heidi");
        assert_eq!(bind_rc(&server, &dn).await, 0);
        let target = account("heidi");
        let act = action(ActionKind::Suspend, target.clone());
        let before = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.execute(&act, &before).await.unwrap().status, OutcomeStatus::Applied);
        // ppolicy answers a locked account's bind with invalidCredentials.
        assert_eq!(bind_rc(&server, &dn).await, 49);
        let after = ldap.snapshot(&target).await.unwrap();
        assert_eq!(ldap.rollback(&act, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(bind_rc(&server, &dn).await, 0);
    });
}
