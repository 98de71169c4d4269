//! Hostile role, schema and table names are handled exactly and never reach SQL unquoted.

use remediation_core::{ActionKind, Connector, ConnectorErrorKind, OutcomeStatus, Target};

use crate::{Pg, action, block_on, connect, ident, login, membership, table};

/// Whether `public.x`, the table every injection below would drop, still exists.
async fn x_exists(pg: &Pg) -> bool {
    let admin = pg.admin().await;
    admin.query_one("SELECT to_regclass('public.x') IS NOT NULL", &[]).await.unwrap().get(0)
}

async fn role_exists(pg: &Pg, name: &str) -> bool {
    let admin = pg.admin().await;
    admin.query_one("SELECT count(*) = 1 FROM pg_roles WHERE rolname = $1", &[&name]).await.unwrap().get(0)
}

/// Executes `kind` on `target`, checks the planned after-state was reached, rolls back
/// (when reversible) and checks the before-state is back.
async fn round_trip(pg: &Pg, kind: ActionKind, target: Target, reversible: bool) {
    let connector = pg.connector();
    let a = action(kind, target.clone());
    let before = connector.snapshot(&target).await.unwrap();
    assert!(!before.protected, "{target}");
    let planned = connector.plan(&a, &before).await.unwrap();
    assert_ne!(planned.expected_after, before, "{target}: the plan changes nothing");
    let out = connector.execute(&a, &before).await.unwrap();
    assert_eq!(out.status, OutcomeStatus::Applied, "{target}");
    let after = connector.snapshot(&target).await.unwrap();
    assert_eq!(after, planned.expected_after, "{target}");
    assert_eq!(connector.execute(&a, &before).await.unwrap().status, OutcomeStatus::AlreadyInState);
    if reversible {
        assert_eq!(connector.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(connector.snapshot(&target).await.unwrap(), before, "{target}: rollback");
    }
    assert!(x_exists(pg).await, "{target}: table x was dropped");
}

#[test]
fn hostile_names_are_quoted_not_interpreted() {
    let Some(pg) = Pg::new("hostile_names_are_quoted_not_interpreted") else { return };
    let user = pg.role(r#""; DROP TABLE x; --"#);
    let group = pg.role("Ünï \"q\" 名前; DROP TABLE x;");
    let schema = format!("s\"; DROP TABLE x; --{}", pg.suffix);
    let tbl = r#""t'); DROP TABLE x; --"#;
    assert!(user.len() <= 63 && group.len() <= 63 && schema.len() <= 63);
    block_on(async {
        let admin = pg.admin().await;
        admin
            .batch_execute(&format!(
                "CREATE TABLE public.x (id int);
                 CREATE ROLE {u} LOGIN PASSWORD 'pw'; CREATE ROLE {g}; GRANT {g} TO {u};
                 CREATE SCHEMA {s}; CREATE TABLE {s}.{t} (id int);
                 GRANT SELECT, UPDATE, DELETE ON {s}.{t} TO {u} WITH GRANT OPTION;",
                u = ident(&user),
                g = ident(&group),
                s = ident(&schema),
                t = ident(tbl),
            ))
            .await
            .unwrap();
        let resource = format!("{}.{}", ident(&schema), ident(tbl));

        // The snapshot names the roles and the table exactly.
        let snap = pg.connector().snapshot(&table(&user, &resource, None)).await.unwrap();
        assert_eq!(snap.state["role"], user.as_str());
        assert_eq!(snap.state["table"]["schema"], schema.as_str());
        assert_eq!(snap.state["table"]["name"], tbl);
        assert_eq!(snap.state["privileges"].as_array().unwrap().len(), 3);

        round_trip(&pg, ActionKind::Revoke, membership(&user, &group), true).await;
        round_trip(&pg, ActionKind::Revoke, table(&user, &resource, Some("DELETE")), true).await;
        round_trip(&pg, ActionKind::Reduce { to: "select".into() }, table(&user, &resource, None), true).await;
        round_trip(&pg, ActionKind::Revoke, table(&user, &resource, None), true).await;
        round_trip(&pg, ActionKind::Suspend, login(&user), true).await;

        // A session of the hostile role, ended by name.
        let conninfo = format!("{} password=pw", pg.conninfo_as(&user));
        let session = connect(&conninfo).await;
        round_trip(&pg, ActionKind::RevokeSessions, login(&user), false).await;
        assert!(session.simple_query("SELECT 1").await.is_err(), "the session was not ended");

        // A name that is SQL, not a role, is simply not found.
        let e = pg.connector().snapshot(&login("x'); DROP TABLE x; --")).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");
        let e = pg.connector().snapshot(&table(&user, "public.x; DROP TABLE x", None)).await.unwrap_err();
        assert_eq!(e.kind, ConnectorErrorKind::NotFound, "{e}");

        assert!(x_exists(&pg).await);
        assert!(role_exists(&pg, &user).await);
        assert!(role_exists(&pg, &group).await);
    });
}
