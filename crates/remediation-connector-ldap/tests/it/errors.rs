//! Error classes, protection, paged searches, health, and the bind password kept secret.

use remediation_connector_ldap::{Dialect, LdapConnector};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, Target};

use crate::server::{self, READER_DN, READER_PASSWORD, Slapd, WRITER_DN, WRITER_PASSWORD};
use crate::{account, action, block_on, config, membership, writer};

#[test]
fn a_wrong_password_is_unauthenticated_and_never_shown() {
    let Some(server) = Slapd::start() else { return };
    let wrong = "wrong-Password-9931";
    let ldap = LdapConnector::from_config(config(&server, Dialect::Openldap, WRITER_DN, wrong)).unwrap();
    assert!(!format!("{ldap:?}").contains(wrong));
    block_on(async {
        let e = ldap.snapshot(&account("alice")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated, "{e}");
        assert!(e.message.contains("invalidCredentials") && e.message.contains(WRITER_DN), "{}", e.message);
        let health = ldap.health().await.unwrap();
        assert!(!health.healthy);
        let denied = ldap.check_permissions().await.unwrap_err();
        assert_eq!(denied.kind, ConnectorErrorKind::Unauthenticated);
        for text in [format!("{e:?}"), e.to_string(), health.detail, format!("{denied:?}")] {
            assert!(!text.contains(wrong), "the password leaked: {text}");
        }
    });
}

#[test]
fn the_debug_output_never_shows_the_password() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::ActiveDirectory);
    let debug = format!("{ldap:?}");
    assert!(!debug.contains(WRITER_PASSWORD), "{debug}");
    assert!(debug.contains("REDACTED"), "{debug}");
}

#[test]
fn read_only_credentials_are_forbidden_to_write() {
    let Some(server) = Slapd::start() else { return };
    let ldap = LdapConnector::from_config(config(&server, Dialect::Openldap, READER_DN, READER_PASSWORD)).unwrap();
    block_on(async {
        assert!(ldap.health().await.unwrap().healthy);
        let target = membership("grace", "engineering");
        let before = ldap.snapshot(&target).await.unwrap();
        let e = ldap.execute(&action(ActionKind::Revoke, target), &before).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{e}");
        assert!(e.message.contains("insufficientAccessRights (LDAP result 50)"), "{}", e.message);
    });
}

#[test]
fn missing_entries_are_not_found_with_the_servers_answer() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let e = ldap.snapshot(&membership("nobody", "engineering")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound);
        assert!(e.message.contains("noSuchObject (LDAP result 32)"), "{}", e.message);
        assert!(e.message.contains(&format!("the server found only ou=people,{}", server::BASE)), "{}", e.message);
        let e = ldap.snapshot(&membership("alice", "no-such-group")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound);
        assert!(e.message.contains(&server::group("no-such-group")), "{}", e.message);
    });
}

#[test]
fn targets_outside_the_base_dn_are_refused() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let target = Target { identity: "uid=alice,dc=elsewhere,dc=org".into(), ..account("alice") };
        let e = ldap.snapshot(&target).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::InvalidTarget);
        assert!(e.message.contains("outside the connector's base DN"), "{}", e.message);
        let target = Target { identity: "not a dn".into(), ..account("alice") };
        assert_eq!(ldap.snapshot(&target).await.unwrap_err().kind, ConnectorErrorKind::InvalidTarget);
    });
}

#[test]
fn an_unreachable_server_is_transient() {
    // No server needed: a port nothing listens on refuses the connection.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "unused-Password-1").unwrap();
    let config: remediation_connector_ldap::LdapConfig = serde_json::from_value(serde_json::json!({
        "id": "down", "url": format!("ldap://127.0.0.1:{port}"), "bind_dn": "cn=x,dc=example,dc=org",
        "bind_password_file": file, "base_dn": "dc=example,dc=org", "dialect": "openldap", "timeout_secs": 1
    }))
    .unwrap();
    let ldap = LdapConnector::from_config(config).unwrap();
    block_on(async {
        let started = std::time::Instant::now();
        let e = ldap.snapshot(&account("alice")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Transient, "{e}");
        assert!(e.message.contains("cannot connect"), "{}", e.message);
        // Three attempts in all, 200 ms and 400 ms apart.
        assert!(started.elapsed() >= std::time::Duration::from_millis(600), "no retries: {:?}", started.elapsed());
        assert!(!ldap.health().await.unwrap().healthy);
    });
}

#[test]
fn a_server_back_within_the_retry_budget_is_not_an_error() {
    let Some(mut server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    // The first attempt finds the port closed; a retry (200 ms, then 400 ms later) finds slapd back.
    let restart = server.restart_in(std::time::Duration::from_millis(150));
    let started = std::time::Instant::now();
    let snapshot = block_on(ldap.snapshot(&account("alice")));
    let elapsed = started.elapsed();
    restart.wait(&mut server);
    assert!(elapsed >= std::time::Duration::from_millis(200), "answered before any retry: {elapsed:?}");
    assert_eq!(snapshot.unwrap().state["pwdAccountLockedTime"], serde_json::Value::Null);
}

#[test]
fn protected_names_and_groups_protect_their_targets() {
    let Some(server) = Slapd::start() else { return };
    let mut cfg = config(&server, Dialect::Openldap, WRITER_DN, WRITER_PASSWORD);
    cfg.protected_dns = vec![server::user("breakglass").to_uppercase(), server::group("finance")];
    cfg.protected_groups = vec![server::group("admins"), server::group("devs")];
    // One entry per page: grace's four groups take four pages, and devs is among the later ones.
    cfg.page_size = 1;
    let ldap = LdapConnector::from_config(cfg).unwrap();
    block_on(async {
        for (target, protected) in [
            (account("breakglass"), true),         // named, in another case
            (account("heidi"), true),              // member of admins (member)
            (account("grace"), true),              // member of devs (memberUid), found on a later page
            (account("alice"), false),             // in engineering and escaped only
            (membership("judy", "finance"), true), // the group is named
            (membership("alice", "engineering"), false),
            (membership("erin", "devs"), true), // a protected group's membership
        ] {
            let s = ldap.snapshot(&target).await.unwrap();
            assert_eq!(s.protected, protected, "{target}");
        }
    });
}

#[test]
fn every_spelling_of_a_protected_dn_is_protected_under_the_servers_dn() {
    let Some(server) = Slapd::start() else { return };
    let mut cfg = config(&server, Dialect::Openldap, WRITER_DN, WRITER_PASSWORD);
    // Configured under the attribute's long name: still the entry the server stores as `uid=`.
    cfg.protected_dns = vec![format!("userid=breakglass,ou=people,{}", server::BASE)];
    cfg.protected_groups = vec![format!("commonName=Devs,ou=groups,{}", server::BASE)];
    let ldap = LdapConnector::from_config(cfg).unwrap();
    let canonical = format!("uid=breakglass,ou=people,{}", server::BASE);
    block_on(async {
        for dn in [
            server::user("breakglass"),
            format!("userid=breakglass,ou=people,{}", server::BASE),
            format!("0.9.2342.19200300.100.1.1=breakglass,ou=people,{}", server::BASE),
            "UID = BreakGlass , ou=People,DC=Example,dc=org".to_owned(),
        ] {
            let target = Target { identity: dn.clone(), ..account("breakglass") };
            let s = ldap.snapshot(&target).await.unwrap();
            assert!(s.protected, "{dn} is not protected");
            assert_eq!(s.canonical.unwrap().identity, canonical, "{dn}");
        }
        // A membership names the group by its server DN too, and the group's alias is protected.
        let alias =
            Target { resource: Some(format!("2.5.4.3=devs,ou=groups,{}", server::BASE)), ..membership("erin", "devs") };
        let s = ldap.snapshot(&alias).await.unwrap();
        assert!(s.protected);
        let c = s.canonical.unwrap();
        assert_eq!(c.resource.as_deref(), Some(format!("cn=devs,ou=groups,{}", server::BASE).as_str()));
        // Someone else stays unprotected, under their own id.
        let s = ldap.snapshot(&account("alice")).await.unwrap();
        assert!(!s.protected);
        assert_eq!(s.canonical.unwrap().identity, format!("uid=alice,ou=people,{}", server::BASE));
    });
}

#[test]
fn a_healthy_connector_reports_its_bind() {
    let Some(server) = Slapd::start() else { return };
    let ldap = writer(&server, Dialect::Openldap);
    block_on(async {
        let h = ldap.health().await.unwrap();
        assert!(h.healthy, "{}", h.detail);
        assert!(h.detail.contains(WRITER_DN));
        assert!(ldap.check_permissions().await.unwrap().can_write());
    });
}

#[test]
fn unsupported_kinds_fail_before_any_request() {
    // A connector pointed nowhere: an unsupported kind must fail without trying to connect.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pw");
    std::fs::write(&file, "unused-Password-1").unwrap();
    let config: remediation_connector_ldap::LdapConfig = serde_json::from_value(serde_json::json!({
        "id": "nowhere", "url": "ldap://192.0.2.1:389", "bind_dn": "cn=x,dc=example,dc=org",
        "bind_password_file": file, "base_dn": "dc=example,dc=org", "dialect": "active_directory"
    }))
    .unwrap();
    let ldap = LdapConnector::from_config(config).unwrap();
    block_on(async {
        let placeholder = remediation_core::Snapshot::new(serde_json::json!({}));
        for (kind, target) in [
            (ActionKind::RevokeSessions, account("alice")),
            (ActionKind::ForcePasswordReset, account("alice")),
            (ActionKind::Suspend, membership("alice", "engineering")),
            (ActionKind::Revoke, account("alice")),
        ] {
            let e = ldap.execute(&action(kind.clone(), target), &placeholder).await.unwrap_err();
            assert_eq!(e.kind, ConnectorErrorKind::Unsupported, "{kind}");
        }
    });
}
