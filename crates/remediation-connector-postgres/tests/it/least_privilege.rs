//! The least privileges the README names are enough: a role with CREATEROLE, membership in
//! the table owner, and pg_signal_backend, and no superuser.

use remediation_core::{ActionKind, Connector, OutcomeStatus, Target};

use crate::{Pg, action, block_on, connect, ident, login, membership, table};

async fn round_trip(connector: &impl Connector, kind: ActionKind, target: Target, reversible: bool) {
    let a = action(kind, target.clone());
    let before = connector.snapshot(&target).await.unwrap();
    let planned = connector.plan(&a, &before).await.unwrap();
    assert_ne!(planned.expected_after, before, "{target}");
    assert_eq!(connector.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied, "{target}");
    let after = connector.snapshot(&target).await.unwrap();
    assert_eq!(after, planned.expected_after, "{target}");
    if reversible {
        assert_eq!(connector.rollback(&a, &before, &after).await.unwrap().status, OutcomeStatus::Applied);
        assert_eq!(connector.snapshot(&target).await.unwrap(), before, "{target}: rollback");
    }
}

#[test]
fn a_createrole_connector_without_superuser_does_every_action() {
    let Some(pg) = Pg::new("a_createrole_connector_without_superuser_does_every_action") else { return };
    let rem = pg.role("rem");
    let own = pg.role("own");
    let grp = pg.role("grp");
    let member = pg.role("member");
    let user = pg.role("user");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {rem} LOGIN CREATEROLE; CREATE ROLE {own}; GRANT {own} TO {rem};
                 GRANT pg_signal_backend TO {rem};
                 CREATE ROLE {grp}; CREATE ROLE {member}; CREATE ROLE {user} LOGIN PASSWORD 'pw';
                 SET ROLE {rem}; GRANT {grp} TO {member} WITH ADMIN OPTION; RESET ROLE;
                 CREATE TABLE public.t (id int); ALTER TABLE public.t OWNER TO {own};
                 GRANT SELECT, UPDATE ON public.t TO {user} WITH GRANT OPTION; GRANT DELETE ON public.t TO {user};",
                rem = ident(&rem),
                own = ident(&own),
                grp = ident(&grp),
                member = ident(&member),
                user = ident(&user),
            ))
            .await
            .unwrap();
        let connector = pg.connector_as(&rem);
        assert!(connector.check_permissions().await.unwrap().can_write());
        round_trip(&connector, ActionKind::Revoke, membership(&member, &grp), true).await;
        round_trip(&connector, ActionKind::Revoke, table(&user, "public.t", None), true).await;
        round_trip(&connector, ActionKind::Reduce { to: "SELECT".into() }, table(&user, "public.t", None), true).await;
        round_trip(&connector, ActionKind::Suspend, login(&user), true).await;
        let _session = connect(&format!("{} password=pw", pg.conninfo_as(&user))).await;
        round_trip(&connector, ActionKind::RevokeSessions, login(&user), false).await;
    });
}

/// Before PostgreSQL 16 only a superuser may name another grantor, so a non-superuser
/// connector cannot restore a membership someone else granted exactly: the rollback fails
/// and commits nothing, rather than recording the wrong grantor.
#[test]
fn a_membership_granted_by_another_role_is_restored_exactly_or_not_at_all() {
    let Some(pg) = Pg::new("a_membership_granted_by_another_role_is_restored_exactly_or_not_at_all") else {
        return;
    };
    let rem = pg.role("rem");
    let grp = pg.role("grp");
    let member = pg.role("member");
    block_on(async {
        pg.admin()
            .await
            .batch_execute(&format!(
                "CREATE ROLE {rem} LOGIN CREATEROLE; CREATE ROLE {grp}; CREATE ROLE {member};
                 GRANT {grp} TO {rem} WITH ADMIN OPTION; GRANT {grp} TO {member};",
                rem = ident(&rem),
                grp = ident(&grp),
                member = ident(&member),
            ))
            .await
            .unwrap();
        let admin = pg.admin().await;
        let row = admin
            .query_one("SELECT current_setting('server_version_num')::int4, current_user::text", &[])
            .await
            .unwrap();
        let (version, superuser): (i32, String) = (row.get(0), row.get(1));
        let connector = pg.connector_as(&rem);
        let target = membership(&member, &grp);
        let a = action(ActionKind::Revoke, target.clone());
        let before = connector.snapshot(&target).await.unwrap();
        assert_eq!(before.state["grants"][0]["grantor"], superuser.as_str(), "{}", before.state);
        assert_eq!(connector.execute(&a, &before).await.unwrap().status, OutcomeStatus::Applied);
        let after = connector.snapshot(&target).await.unwrap();
        let rolled = connector.rollback(&a, &before, &after).await;
        if version >= 160_000 {
            assert_eq!(rolled.unwrap().status, OutcomeStatus::Applied);
            assert_eq!(connector.snapshot(&target).await.unwrap(), before);
        } else {
            let e = rolled.unwrap_err();
            assert_eq!(e.kind, remediation_core::ConnectorErrorKind::Permanent, "{e}");
            assert!(e.message.contains("nothing was committed"), "{e}");
            assert_eq!(connector.snapshot(&target).await.unwrap(), after);
        }
    });
}
