//! The connector passes the semantic conformance suite from the testkit against a real server.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use remediation_connector_postgres::{PostgresConfig, PostgresConnector};
use remediation_core::{ActionKind, Connector, Target};
use remediation_testkit::conformance::{self, AliasCase, Case, Subject};
use tempfile::NamedTempFile;
use tokio_postgres::Client;

use crate::{Pg, block_on, connect, ident, login, membership, table};

struct Postgres<'a> {
    pg: &'a Pg,
    connector: Arc<PostgresConnector>,
    password: String,
    _password_file: NamedTempFile,
    names: Names,
    /// Sessions held open for the `revoke_sessions` case.
    sessions: Mutex<Vec<Client>>,
}

/// Every role the suite uses, each with the test's suffix.
struct Names {
    grp: String,
    adm: String,
    mem: String,
    mem2: String,
    own: String,
    gr: String,
    utab: String,
    uone: String,
    ured: String,
    ulogin: String,
    usess: String,
    ro: String,
    /// A protected break-glass role.
    bg: String,
    /// The connector's own role: a superuser that logs in with a password.
    conn: String,
}

impl Names {
    fn new(pg: &Pg) -> Self {
        Self {
            grp: pg.role("grp"),
            adm: pg.role("adm"),
            mem: pg.role("mem"),
            mem2: pg.role("mem2"),
            own: pg.role("own"),
            gr: pg.role("gr"),
            utab: pg.role("utab"),
            uone: pg.role("uone"),
            ured: pg.role("ured"),
            ulogin: pg.role("ulogin"),
            usess: pg.role("usess"),
            ro: pg.role("ro"),
            bg: pg.role("bg"),
            conn: pg.role("conn"),
        }
    }
}

const ORDERS: &str = "public.orders";

async fn seed(pg: &Pg, n: &Names, password: &str) {
    let q = ident;
    let admin = pg.admin().await;
    admin
        .batch_execute(&format!(
            "CREATE ROLE {grp} NOLOGIN; CREATE ROLE {adm} NOLOGIN; GRANT {grp} TO {adm} WITH ADMIN OPTION;
             CREATE ROLE {mem} NOLOGIN; GRANT {grp} TO {mem} WITH ADMIN OPTION GRANTED BY {adm};
             CREATE ROLE {mem2} NOLOGIN; GRANT {grp} TO {mem2};
             CREATE ROLE {own} NOLOGIN; CREATE ROLE {gr} NOLOGIN;
             CREATE TABLE public.orders (id int); ALTER TABLE public.orders OWNER TO {own};
             CREATE ROLE {utab} NOLOGIN; CREATE ROLE {uone} NOLOGIN; CREATE ROLE {ured} NOLOGIN;
             GRANT SELECT ON public.orders TO {utab} WITH GRANT OPTION;
             GRANT DELETE ON public.orders TO {utab};
             GRANT UPDATE ON public.orders TO {gr} WITH GRANT OPTION;
             SET ROLE {gr}; GRANT UPDATE ON public.orders TO {utab}; RESET ROLE;
             GRANT SELECT, UPDATE ON public.orders TO {uone};
             GRANT SELECT, INSERT, UPDATE ON public.orders TO {ured};
             CREATE ROLE {ulogin} LOGIN;
             CREATE ROLE {usess} LOGIN PASSWORD 'session-pw';
             CREATE ROLE {ro} LOGIN;
             CREATE ROLE {bg} LOGIN; GRANT {grp} TO {bg};
             CREATE ROLE {conn} LOGIN SUPERUSER PASSWORD '{password}';",
            grp = q(&n.grp),
            adm = q(&n.adm),
            mem = q(&n.mem),
            mem2 = q(&n.mem2),
            own = q(&n.own),
            gr = q(&n.gr),
            utab = q(&n.utab),
            uone = q(&n.uone),
            ured = q(&n.ured),
            ulogin = q(&n.ulogin),
            usess = q(&n.usess),
            ro = q(&n.ro),
            bg = q(&n.bg),
            conn = q(&n.conn),
        ))
        .await
        .unwrap();
}

#[async_trait]
impl Subject for Postgres<'_> {
    fn connector(&self) -> Arc<dyn Connector> {
        Arc::clone(&self.connector) as _
    }

    fn debug_repr(&self) -> String {
        format!("{:?}", self.connector)
    }

    fn secrets(&self) -> Vec<String> {
        vec![self.password.clone()]
    }

    async fn cases(&self) -> Vec<Case> {
        let n = &self.names;
        // One open session of `usess`, for the revoke_sessions case.
        let conninfo = format!("{} password=session-pw", self.pg.conninfo_as(&n.usess));
        let session = connect(&conninfo).await;
        self.sessions.lock().unwrap().push(session);
        vec![
            Case::new("revoke role membership", ActionKind::Revoke, membership(&n.mem, &n.grp)),
            Case::new("revoke all table privileges", ActionKind::Revoke, table(&n.utab, ORDERS, None)),
            Case::new("revoke one table privilege", ActionKind::Revoke, table(&n.uone, ORDERS, Some("update"))),
            Case::new(
                "reduce table privileges",
                ActionKind::Reduce { to: "SELECT".into() },
                table(&n.ured, ORDERS, None),
            ),
            Case::new("suspend login", ActionKind::Suspend, login(&n.ulogin)),
            Case::new("revoke sessions", ActionKind::RevokeSessions, login(&n.usess)),
        ]
    }

    fn missing(&self, grant_type: &str) -> Target {
        let nobody = format!("nobody_{}", self.pg.suffix);
        match grant_type {
            "role_membership" => membership(&nobody, &self.names.grp),
            "table_privilege" => table(&nobody, ORDERS, None),
            _ => login(&nobody),
        }
    }

    async fn forbidden(&self) -> Option<(Arc<dyn Connector>, Case)> {
        let n = &self.names;
        let connector = Arc::new(self.pg.connector_as(&n.ro));
        Some((connector, Case::new("revoke without admin option", ActionKind::Revoke, membership(&n.mem2, &n.grp))))
    }

    async fn protected_aliases(&self) -> Vec<AliasCase> {
        let n = &self.names;
        let admin = self.pg.admin().await;
        let row = admin.query_one("SELECT oid FROM pg_roles WHERE rolname = $1", &[&n.bg]).await.unwrap();
        let oid = format!("oid:{}", row.get::<_, u32>(0));
        vec![
            AliasCase::new("the role's OID", ActionKind::Suspend, login(&n.bg), login(&oid)),
            AliasCase::new("the member's OID", ActionKind::Revoke, membership(&n.bg, &n.grp), membership(&oid, &n.grp)),
        ]
    }

    fn requests_served(&self) -> Option<u64> {
        Some(self.connector.requests_sent())
    }
}

#[test]
fn postgres_passes_the_semantic_suite() {
    let Some(pg) = Pg::new("postgres_passes_the_semantic_suite") else { return };
    let names = Names::new(&pg);
    let password = format!("pg-secret-{}", pg.suffix);
    block_on(seed(&pg, &names, &password));
    let mut file = NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut file, format!("{password}\n").as_bytes()).unwrap();
    let config = PostgresConfig {
        password_file: Some(file.path().to_owned()),
        protected_roles: vec![names.bg.clone()],
        ..PostgresConfig::new("pg", pg.conninfo_as(&names.conn))
    };
    let connector = Arc::new(PostgresConnector::from_config(&config).unwrap());
    let subject =
        Postgres { pg: &pg, connector, password, _password_file: file, names, sessions: Mutex::new(Vec::new()) };
    block_on(conformance::semantic(&subject));
}
