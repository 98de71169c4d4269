//! Error mapping, protection, permissions, health and secrets.

use remediation_connector_postgres::{PostgresConfig, PostgresConnector, PostgresError};
use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus};
use tempfile::NamedTempFile;

use crate::{Pg, action, block_on, ident, login, membership, table};

/// A connector pointed at a port nobody listens on.
fn unreachable(password_file: Option<&NamedTempFile>) -> PostgresConnector {
    let config = PostgresConfig {
        password_file: password_file.map(|f| f.path().to_owned()),
        connect_timeout_secs: 2,
        ..PostgresConfig::new("pg", "host=127.0.0.1 port=1 user=nobody dbname=none")
    };
    PostgresConnector::from_config(&config).unwrap()
}

fn password_file(secret: &str) -> NamedTempFile {
    let mut file = NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, secret.as_bytes()).unwrap();
    file
}

#[test]
fn unsupported_and_malformed_fail_before_any_request() {
    let connector = unreachable(None);
    block_on(async {
        for (kind, target, expected) in [
            (ActionKind::Suspend, table("a", "public.t", None), ConnectorErrorKind::Unsupported),
            (ActionKind::ForcePasswordReset, login("a"), ConnectorErrorKind::Unsupported),
            (ActionKind::Notify, login("a"), ConnectorErrorKind::Unsupported),
            (ActionKind::Revoke, login("a"), ConnectorErrorKind::Unsupported),
            (ActionKind::Revoke, crate::target("account", "a", None, None), ConnectorErrorKind::Unsupported),
            (ActionKind::Revoke, table("a", "public.t", Some("DROP")), ConnectorErrorKind::Permanent),
            (
                ActionKind::Reduce { to: "SELECT; DROP TABLE x".into() },
                table("a", "public.t", None),
                ConnectorErrorKind::Permanent,
            ),
            (ActionKind::Revoke, table("a", "no_schema", None), ConnectorErrorKind::InvalidTarget),
            (ActionKind::Revoke, membership(&"a".repeat(64), "g"), ConnectorErrorKind::InvalidTarget),
        ] {
            let a = action(kind, target.clone());
            let empty = remediation_core::Snapshot::new(serde_json::json!({}));
            let e = connector.execute(&a, &empty).await.unwrap_err();
            assert_eq!(e.kind, expected, "execute {target}: {e}");
            let e = connector.plan(&a, &empty).await.unwrap_err();
            assert_eq!(e.kind, expected, "plan {target}: {e}");
            let e = connector.rollback(&a, &empty, &empty).await.unwrap_err();
            assert_eq!(e.kind, expected, "rollback {target}: {e}");
        }
        assert_eq!(connector.requests_sent(), 0);
    });
}

#[test]
fn an_unreachable_server_is_transient_and_unhealthy_and_leaks_no_password() {
    let secret = "unreachable-secret-4711";
    let file = password_file(secret);
    let connector = unreachable(Some(&file));
    block_on(async {
        let health = connector.health().await.unwrap();
        assert!(!health.healthy);
        assert!(!health.detail.contains(secret));
        let e = connector.snapshot(&login("alice")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Transient, "{e}");
        assert!(!format!("{e} {e:?}").contains(secret));
        let e = connector.check_permissions().await.unwrap_err();
        assert!(!format!("{e} {e:?}").contains(secret));
    });
    let debug = format!("{connector:?}");
    assert!(debug.contains("[redacted]") && !debug.contains(secret), "{debug}");
}

#[test]
fn config_errors_name_no_secret() {
    let e = PostgresConnector::from_config(&PostgresConfig {
        password_env: Some("REMEDIATION_IT_SURELY_UNSET_VARIABLE".into()),
        ..PostgresConfig::new("pg", "host=localhost user=x")
    })
    .unwrap_err();
    assert!(matches!(e, PostgresError::PasswordEnv { .. }), "{e}");
    let e = PostgresConnector::from_config(&PostgresConfig {
        password_env: Some("A".into()),
        password_file: Some("/nonexistent".into()),
        ..PostgresConfig::new("pg", "host=localhost user=x")
    })
    .unwrap_err();
    assert!(matches!(e, PostgresError::TwoPasswordSources { .. }), "{e}");
    let e =
        PostgresConnector::from_config(&PostgresConfig::new("pg", "postgres://x:s3cr3t-pw@localhost/db")).unwrap_err();
    assert!(!format!("{e} {e:?}").contains("s3cr3t-pw"), "{e:?}");
    let toml = r#"id = "pg"
url = "host=localhost"
passwd = "x""#;
    assert!(toml::from_str::<PostgresConfig>(toml).is_err(), "unknown fields are refused");
    let ok: PostgresConfig = toml::from_str("id = \"pg\"\nurl = \"host=localhost\"").unwrap();
    assert_eq!(ok.connect_timeout_secs, 10);
}

#[test]
fn server_errors_map_to_kinds_with_the_servers_message() {
    let Some(pg) = Pg::new("server_errors_map_to_kinds_with_the_servers_message") else { return };
    let nobody = format!("nobody_{}", pg.suffix);
    let user = pg.role("user");
    let ro = pg.role("ro");
    let creator = pg.role("creator");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {u} LOGIN; CREATE ROLE {ro} LOGIN; CREATE ROLE {c} LOGIN CREATEROLE;
                 CREATE TABLE public.t (id int);",
                u = ident(&user),
                ro = ident(&ro),
                c = ident(&creator),
            ))
            .await
            .unwrap();
        let connector = pg.connector();

        let e = connector.snapshot(&login(&nobody)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound);
        assert!(e.message.contains(&format!("role \"{nobody}\" does not exist")), "{e}");
        let e = connector.snapshot(&table(&user, "public.nope", None)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound);
        assert!(e.message.contains("does not exist") && e.message.contains("42P01"), "{e}");
        let e = connector.snapshot(&table(&user, "noschema.t", None)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");
        let e = connector.snapshot(&membership(&user, &nobody)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");

        // The server refuses a login role that does not exist (28000).
        let e = pg.connector_as(&nobody).snapshot(&login(&user)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Unauthenticated, "{e}");

        // A role without CREATEROLE cannot change another role (42501).
        let e = pg.connector_as(&ro).execute(&action(ActionKind::Suspend, login(&user)), &empty()).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{e}");
        assert!(e.message.contains("42501"), "{e}");

        // Permissions.
        assert!(connector.check_permissions().await.unwrap().can_write());
        assert!(pg.connector_as(&creator).check_permissions().await.unwrap().can_write());
        assert!(connector.check_permissions().await.unwrap().all_granted(), "a superuser holds everything");
        let p = pg.connector_as(&ro).check_permissions().await.unwrap();
        assert_eq!(p.missing, ["CREATEROLE"], "{p:?}");
        assert!(p.unknown_reason.as_deref().is_some_and(|r| r.contains(&ro)), "{p:?}");

        let health = connector.health().await.unwrap();
        assert!(health.healthy && health.detail.starts_with("PostgreSQL "), "{health:?}");
    });
}

fn empty() -> remediation_core::Snapshot {
    remediation_core::Snapshot::new(serde_json::json!({}))
}

#[test]
fn protected_roles_are_marked_and_never_changed() {
    let Some(pg) = Pg::new("protected_roles_are_marked_and_never_changed") else { return };
    let guarded = pg.role("guarded");
    let free = pg.role("free");
    let creator = pg.role("creator");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {g} LOGIN; CREATE ROLE {f} LOGIN; CREATE ROLE {c} LOGIN CREATEROLE;",
                g = ident(&guarded),
                f = ident(&free),
                c = ident(&creator),
            ))
            .await
            .unwrap();
        let config =
            PostgresConfig { protected_roles: vec![guarded.clone()], ..PostgresConfig::new("pg", pg.conninfo()) };
        let connector = PostgresConnector::from_config(&config).unwrap();
        // Superusers, the connecting role and listed roles are protected; others are not.
        assert!(connector.snapshot(&login("postgres")).await.unwrap().protected);
        assert!(connector.snapshot(&login(&guarded)).await.unwrap().protected);
        assert!(!connector.snapshot(&login(&free)).await.unwrap().protected);
        let as_creator = pg.connector_as(&creator);
        assert!(as_creator.snapshot(&login(&creator)).await.unwrap().protected);
        assert!(!as_creator.snapshot(&login(&free)).await.unwrap().protected);

        // A write to a protected role is refused and changes nothing.
        let target = login(&guarded);
        let before = connector.snapshot(&target).await.unwrap();
        let e = connector.execute(&action(ActionKind::Suspend, target.clone()), &before).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{e}");
        assert_eq!(connector.snapshot(&target).await.unwrap(), before);
    });
}

#[test]
fn a_protected_role_stays_protected_by_oid_and_after_a_rename() {
    let Some(pg) = Pg::new("a_protected_role_stays_protected_by_oid_and_after_a_rename") else { return };
    let guarded = pg.role("guarded");
    let renamed = pg.role("renamed");
    block_on(async {
        let admin = pg.admin().await;
        admin.batch_execute(&format!("CREATE ROLE {} LOGIN;", ident(&guarded))).await.unwrap();
        let oid: u32 =
            admin.query_one("SELECT oid FROM pg_roles WHERE rolname = $1", &[&guarded]).await.unwrap().get(0);
        let config =
            PostgresConfig { protected_roles: vec![guarded.clone()], ..PostgresConfig::new("pg", pg.conninfo()) };
        let connector = PostgresConnector::from_config(&config).unwrap();
        // By name and by OID: the same role, the same canonical id, protected either way.
        for identity in [guarded.clone(), format!("oid:{oid}")] {
            let s = connector.snapshot(&login(&identity)).await.unwrap();
            assert!(s.protected, "{identity}");
            assert_eq!(s.canonical.as_ref().unwrap().identity, oid.to_string(), "{identity}");
            let e = connector.execute(&action(ActionKind::Suspend, login(&identity)), &s).await.unwrap_err();
            assert_eq!(e.kind, ConnectorErrorKind::Forbidden, "{identity}");
        }
        // Renamed after the connector resolved it: still the protected role.
        admin.batch_execute(&format!("ALTER ROLE {} RENAME TO {}", ident(&guarded), ident(&renamed))).await.unwrap();
        let s = connector.snapshot(&login(&renamed)).await.unwrap();
        assert!(s.protected, "a rename lifted the protection");
        assert_eq!(s.canonical.unwrap().identity, oid.to_string());
        let e = connector.snapshot(&login("oid:4294967295")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");
    });
}

#[test]
fn nothing_to_do_writes_nothing() {
    let Some(pg) = Pg::new("nothing_to_do_writes_nothing") else { return };
    let member = pg.role("member");
    let group = pg.role("group");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!("CREATE ROLE {m}; CREATE ROLE {g};", m = ident(&member), g = ident(&group)))
            .await
            .unwrap();
        let connector = pg.connector();
        let target = membership(&member, &group);
        let before = connector.snapshot(&target).await.unwrap();
        assert_eq!(before.state["grants"], serde_json::json!([]));
        let a = action(ActionKind::Revoke, target.clone());
        let planned = connector.plan(&a, &before).await.unwrap();
        assert_eq!(planned.expected_after, before);
        let out = connector.execute(&a, &before).await.unwrap();
        assert_eq!(out.status, OutcomeStatus::AlreadyInState);
        assert!(out.request_ids.is_empty());
        // Rolling back to the state it is in is also a no-op.
        assert_eq!(connector.rollback(&a, &before, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
        // Sessions cannot be rolled back.
        let sessions = action(ActionKind::RevokeSessions, login(&member));
        let e = connector.rollback(&sessions, &before, &before).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Unsupported, "{e}");
    });
}

#[test]
fn a_lock_timeout_is_retried_until_the_lock_is_free() {
    let Some(pg) = Pg::new("a_lock_timeout_is_retried_until_the_lock_is_free") else { return };
    let user = pg.role("user");
    block_on(async {
        pg.admin().await.batch_execute(&format!("CREATE ROLE {} LOGIN", ident(&user))).await.unwrap();
        let connector = pg.connector().with_lock_timeout(std::time::Duration::from_millis(100));
        let target = login(&user);
        let before = connector.snapshot(&target).await.unwrap();
        // Another transaction holds the role's catalog row for 600 ms: the first attempts
        // time out on the lock (55P03), a later one after the backoff gets through.
        let mut holder = pg.admin().await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute(&format!("ALTER ROLE {} CONNECTION LIMIT 5", ident(&user))).await.unwrap();
        let release = async {
            tokio::time::sleep(std::time::Duration::from_millis(600)).await;
            tx.commit().await.unwrap();
        };
        let started = std::time::Instant::now();
        let suspend = action(ActionKind::Suspend, target.clone());
        let (out, ()) = tokio::join!(connector.execute(&suspend, &before), release);
        let out = out.unwrap();
        assert_eq!(out.status, OutcomeStatus::Applied);
        assert!(started.elapsed() >= std::time::Duration::from_millis(600), "{:?}", started.elapsed());
        let after = connector.snapshot(&target).await.unwrap();
        assert_eq!(after.state["can_login"], false);
        assert_eq!(after.state["conn_limit"], 5);
    });
}

#[test]
fn a_lock_held_past_every_retry_is_transient() {
    let Some(pg) = Pg::new("a_lock_held_past_every_retry_is_transient") else { return };
    let user = pg.role("user");
    block_on(async {
        pg.admin().await.batch_execute(&format!("CREATE ROLE {} LOGIN", ident(&user))).await.unwrap();
        let connector = pg.connector().with_lock_timeout(std::time::Duration::from_millis(20));
        let target = login(&user);
        let before = connector.snapshot(&target).await.unwrap();
        let mut holder = pg.admin().await;
        let tx = holder.transaction().await.unwrap();
        tx.batch_execute(&format!("ALTER ROLE {} CONNECTION LIMIT 5", ident(&user))).await.unwrap();
        let e = connector.execute(&action(ActionKind::Suspend, target.clone()), &before).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Transient, "{e}");
        assert!(e.message.contains("55P03"), "{e}");
        tx.rollback().await.unwrap();
        assert_eq!(connector.snapshot(&target).await.unwrap(), before);
    });
}

#[test]
fn a_change_the_server_does_not_fully_apply_is_not_committed() {
    let Some(pg) = Pg::new("a_change_the_server_does_not_fully_apply_is_not_committed") else { return };
    let own = pg.role("own");
    let gr = pg.role("gr");
    let user = pg.role("user");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {own}; CREATE ROLE {gr}; CREATE ROLE {user};
                 CREATE TABLE public.t (id int); ALTER TABLE public.t OWNER TO {own};
                 GRANT SELECT ON public.t TO {gr} WITH GRANT OPTION;
                 GRANT SELECT ON public.t TO {user};
                 SET ROLE {gr}; GRANT SELECT ON public.t TO {user}; RESET ROLE;",
                own = ident(&own),
                gr = ident(&gr),
                user = ident(&user),
            ))
            .await
            .unwrap();
        let connector = pg.connector();
        let target = table(&user, "public.t", None);
        let revoke = action(ActionKind::Revoke, target.clone());
        let before = connector.snapshot(&target).await.unwrap();
        assert_eq!(before.state["privileges"].as_array().unwrap().len(), 2, "{}", before.state);
        let after = connector.plan(&revoke, &before).await.unwrap().expected_after;
        assert_eq!(connector.execute(&revoke, &before).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(connector.snapshot(&target).await.unwrap(), after);
        // `gr` loses its grant option, so restoring its grant to `user` cannot succeed: the
        // server only warns, and the connector commits nothing of the rollback.
        pg.admin()
            .await
            .batch_execute(&format!("REVOKE GRANT OPTION FOR SELECT ON public.t FROM {}", ident(&gr)))
            .await
            .unwrap();
        let e = connector.rollback(&revoke, &before, &after).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::Permanent, "{e}");
        assert!(e.message.contains("nothing was committed"), "{e}");
        assert_eq!(connector.snapshot(&target).await.unwrap(), after, "half a rollback was committed");
    });
}
