//! [`PostgresConnector`]: the [`Connector`] implementation over a PostgreSQL server.

use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use async_trait::async_trait;
use remediation_core::{
    Action, ActionKind, CanonicalTarget, Capability, Connector, ConnectorError, ConnectorErrorKind, Grant, Health,
    KindName, Outcome, OutcomeStatus, PermissionNeed, Permissions, PlannedChange, Reversibility, Snapshot, Target,
    Verification, find_capability,
};
use secrecy::{ExposeSecret, SecretString};
use tokio_postgres::config::SslMode;
use tokio_postgres::{Client, GenericClient, NoTls};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::config::PostgresConfig;
use crate::error::{PostgresError, is_retryable, map_pg};
use crate::grant_type;
use crate::sql::{self, Privilege, Session, TableName, check_ident, parse_privilege_list};
use crate::state::{Change, LoginState, MembershipGrant, MembershipState, State, Step, TableGrant, TableState, steps};

/// How long a write waits for a lock, by default, before failing with 55P03 (and being retried).
const LOCK_TIMEOUT: Duration = Duration::from_secs(5);
/// Attempts for a retryable failure (55P03, 40001, 40P01, 53300), including the first.
const ATTEMPTS: u32 = 4;
/// How long `revoke_sessions` waits for terminated backends to exit.
const TERMINATE_WAIT: Duration = Duration::from_secs(10);

/// The pause before retry number `attempt` (1-based): 100 ms, 200 ms, 400 ms.
pub fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1u64 << attempt.saturating_sub(1).min(10)))
}

/// A connector for PostgreSQL roles: role memberships, table privileges, login and sessions.
/// See the crate documentation for what each action does.
///
/// Opens one connection per operation (no pool): remediation writes are rare, and a fresh
/// connection never carries state (`SET ROLE`, an aborted transaction) from an earlier one.
pub struct PostgresConnector {
    id: String,
    url: String,
    base: tokio_postgres::Config,
    /// The verifying TLS client, unless the connection string says `sslmode=disable`.
    tls: Option<MakeRustlsConnect>,
    password: Option<SecretString>,
    protected: Vec<String>,
    /// OIDs the protected role names have resolved to: a protected role stays protected after
    /// a rename, for the life of the connector.
    protected_oids: Arc<Mutex<HashSet<u32>>>,
    timeout: Duration,
    lock_timeout: Duration,
    requests: Arc<AtomicU64>,
}

impl std::fmt::Debug for PostgresConnector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresConnector")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("tls", &self.tls.is_some())
            .field("password", &self.password.as_ref().map(|_| "[redacted]"))
            .field("protected", &self.protected)
            .field("timeout", &self.timeout)
            .field("lock_timeout", &self.lock_timeout)
            .finish_non_exhaustive()
    }
}

/// A target parsed and checked, names exactly as given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Subject {
    Membership { member: String, role: String },
    Table { role: String, table: TableName },
    Login { role: String },
}

/// The role a target names, as read from `pg_roles`.
struct RoleRow {
    oid: u32,
    name: String,
    superuser: bool,
    can_login: bool,
    valid_until: Option<String>,
    conn_limit: i32,
}

/// What a write does: apply a change to the live state, or restore a recorded state.
enum Write<'a> {
    Execute(&'a Change),
    Restore(&'a State),
}

/// Drives a connection until it closes; its end is logged, never an error of the caller.
async fn drive<F: std::future::Future<Output = Result<(), tokio_postgres::Error>>>(connection: F) {
    if let Err(e) = connection.await {
        tracing::debug!(error = %e, "PostgreSQL connection ended");
    }
}

impl PostgresConnector {
    /// Builds a connector from its configuration: parses the connection string (which must
    /// not hold a password) and loads the password. Does not connect.
    pub fn from_config(config: &PostgresConfig) -> Result<Self, PostgresError> {
        let base: tokio_postgres::Config =
            config.url.parse().map_err(|source| PostgresError::Url { id: config.id.clone(), source })?;
        if base.get_password().is_some() {
            return Err(PostgresError::PasswordInUrl { id: config.id.clone() });
        }
        for role in &config.protected_roles {
            check_ident(role).map_err(|source| PostgresError::ProtectedRole {
                id: config.id.clone(),
                role: role.clone(),
                source,
            })?;
        }
        // `sslmode=disable` never speaks TLS; otherwise the verifying client is built now, so
        // a bad CA file fails at start rather than at the first action.
        let tls = match base.get_ssl_mode() {
            SslMode::Disable => None,
            _ => Some(MakeRustlsConnect::new(
                remediation_tls::client_config(config.ca_file.as_deref())
                    .map_err(|source| PostgresError::Tls { id: config.id.clone(), source })?
                    .as_ref()
                    .clone(),
            )),
        };
        Ok(Self {
            id: config.id.clone(),
            url: config.url.clone(),
            tls,
            base,
            password: config.load_password()?,
            protected: config.protected_roles.clone(),
            protected_oids: Arc::default(),
            timeout: Duration::from_secs(config.connect_timeout_secs.max(1)),
            lock_timeout: LOCK_TIMEOUT,
            requests: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Sets how long a write waits for a row or table lock (5 s by default, at least 1 ms)
    /// before it fails with SQLSTATE 55P03 and is retried.
    pub fn with_lock_timeout(mut self, timeout: Duration) -> Self {
        self.lock_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How many connections and statements this connector has sent to the server.
    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    fn count(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    async fn connect(&self) -> Result<Client, ConnectorError> {
        let mut config = self.base.clone();
        if let Some(password) = &self.password {
            config.password(password.expose_secret());
        }
        config.connect_timeout(self.timeout);
        if config.get_application_name().is_none() {
            config.application_name("remediation");
        }
        self.count();
        let late = |_| {
            ConnectorError::new(
                ConnectorErrorKind::Transient,
                format!("cannot connect to PostgreSQL: no answer within {}s", self.timeout.as_secs()),
            )
        };
        let failed = |e: tokio_postgres::Error| map_pg("connect to PostgreSQL", &e);
        // The two connection types differ, so each branch spawns its own driver.
        match &self.tls {
            Some(tls) => {
                let connected = tokio::time::timeout(self.timeout, config.connect(tls.clone())).await.map_err(late)?;
                let (client, connection) = connected.map_err(failed)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
            None => {
                let connected = tokio::time::timeout(self.timeout, config.connect(NoTls)).await.map_err(late)?;
                let (client, connection) = connected.map_err(failed)?;
                tokio::spawn(drive(connection));
                Ok(client)
            }
        }
    }

    async fn session(&self, client: &impl GenericClient) -> Result<(Session, bool), ConnectorError> {
        self.count();
        let row = client
            .query_one(
                "SELECT current_user::text, current_setting('server_version_num')::int4, r.rolsuper, r.rolcreaterole \
                 FROM pg_roles r WHERE r.rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| map_pg("read the connecting role", &e))?;
        let session = Session { current_user: row.get(0), server_version: row.get(1), superuser: row.get(2) };
        Ok((session, row.get(3)))
    }

    async fn role(&self, client: &impl GenericClient, name: &str) -> Result<RoleRow, ConnectorError> {
        self.count();
        const COLUMNS: &str = "SELECT r.oid, r.rolname::text, r.rolsuper, r.rolcanlogin, \
                   CASE WHEN r.rolvaliduntil IS NULL THEN NULL \
                        WHEN isfinite(r.rolvaliduntil) \
                          THEN to_char(r.rolvaliduntil AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"') \
                        ELSE r.rolvaliduntil::text END, \
                   r.rolconnlimit \
                 FROM pg_roles r";
        // `oid:<n>` names a role by its OID, the id that survives a rename.
        let by_oid = name.strip_prefix("oid:").and_then(|n| n.parse::<u32>().ok());
        let row = match by_oid {
            Some(oid) => client
                .query_opt(&format!("{COLUMNS} WHERE r.oid = $1"), &[&oid])
                .await
                .map_err(|e| map_pg(&format!("read role {name}"), &e))?
                .ok_or_else(|| ConnectorError::not_found(format!("no role has OID {oid}")))?,
            // `quote_ident(..)::regrole` fails with the server's own 42704 "role ... does not
            // exist" for a missing role, which becomes NotFound with that message.
            None => client
                .query_one(&format!("{COLUMNS} WHERE r.oid = quote_ident($1)::regrole"), &[&name])
                .await
                .map_err(|e| map_pg(&format!("read role {name}"), &e))?,
        };
        Ok(RoleRow {
            oid: row.get(0),
            name: row.get(1),
            superuser: row.get(2),
            can_login: row.get(3),
            valid_until: row.get(4),
            conn_limit: row.get(5),
        })
    }

    /// Whether `role` is protected: a superuser, the connecting role, or a role listed in
    /// `protected_roles`, compared by OID (whatever name or `oid:` the target used) and by name.
    fn is_protected(&self, session: &Session, role: &RoleRow, protected_oids: &HashSet<u32>) -> bool {
        role.superuser
            || role.name == session.current_user
            || protected_oids.contains(&role.oid)
            || self.protected.iter().any(|p| p == &role.name)
    }

    /// The OIDs of the protected roles: those their names resolve to now, and every one they
    /// resolved to before.
    async fn protected_oids(&self, client: &impl GenericClient) -> Result<HashSet<u32>, ConnectorError> {
        if !self.protected.is_empty() {
            self.count();
            let rows = client
                .query("SELECT oid FROM pg_roles WHERE rolname = ANY($1)", &[&self.protected])
                .await
                .map_err(|e| map_pg("resolve the protected roles", &e))?;
            let mut known = self.protected_oids.lock().unwrap_or_else(PoisonError::into_inner);
            known.extend(rows.iter().map(|r| r.get::<_, u32>(0)));
        }
        Ok(self.protected_oids.lock().unwrap_or_else(PoisonError::into_inner).clone())
    }

    async fn sessions(&self, client: &impl GenericClient, oid: u32) -> Result<i64, ConnectorError> {
        self.count();
        let row = client
            .query_one("SELECT count(*) FROM pg_stat_activity WHERE usesysid = $1 AND pid <> pg_backend_pid()", &[&oid])
            .await
            .map_err(|e| map_pg("count sessions", &e))?;
        Ok(row.get(0))
    }

    /// Reads the live state of `subject`, whether it is protected, and its canonical id (the
    /// role's OID, and the granted role's or the table's OID as the resource).
    async fn read(
        &self,
        client: &impl GenericClient,
        session: &Session,
        subject: &Subject,
    ) -> Result<(State, bool, CanonicalTarget), ConnectorError> {
        let protected_oids = self.protected_oids(client).await?;
        match subject {
            Subject::Membership { member, role } => {
                let m = self.role(client, member).await?;
                let r = self.role(client, role).await?;
                let options = if session.per_grantor_memberships() {
                    "m.inherit_option, m.set_option"
                } else {
                    "NULL::bool, NULL::bool"
                };
                self.count();
                let rows = client
                    .query(
                        &format!(
                            "SELECT g.rolname::text, m.admin_option, {options} FROM pg_auth_members m \
                             LEFT JOIN pg_roles g ON g.oid = m.grantor WHERE m.roleid = $1 AND m.member = $2"
                        ),
                        &[&r.oid, &m.oid],
                    )
                    .await
                    .map_err(|e| map_pg(&format!("read memberships of role {}", m.name), &e))?;
                let grants = rows
                    .iter()
                    .map(|row| MembershipGrant {
                        grantor: row.get(0),
                        admin_option: row.get(1),
                        inherit_option: row.get(2),
                        set_option: row.get(3),
                    })
                    .collect();
                let protected = self.is_protected(session, &m, &protected_oids);
                let canonical = CanonicalTarget::with_resource(m.oid.to_string(), r.oid.to_string());
                let mut state = State::Membership(MembershipState { member: m.name, role: r.name, grants });
                state.normalise();
                Ok((state, protected, canonical))
            }
            Subject::Table { role, table } => {
                let r = self.role(client, role).await?;
                self.count();
                let t = client
                    .query_one(
                        "SELECT c.oid, n.nspname::text, c.relname::text, c.relkind::text FROM pg_class c \
                         JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE c.oid = (quote_ident($1) || '.' || quote_ident($2))::regclass",
                        &[&table.schema, &table.name],
                    )
                    .await
                    .map_err(|e| map_pg(&format!("read table {table}"), &e))?;
                let (oid, kind): (u32, String) = (t.get(0), t.get(3));
                if !matches!(kind.as_str(), "r" | "p" | "v" | "m" | "f") {
                    return Err(ConnectorError::permanent(format!(
                        "{table} is not a table, view or foreign table (relkind {kind})"
                    )));
                }
                let name = TableName { schema: t.get(1), name: t.get(2) };
                self.count();
                let rows = client
                    .query(
                        "SELECT a.privilege_type, coalesce(g.rolname::text, a.grantor::text), a.is_grantable \
                         FROM pg_class c, aclexplode(coalesce(c.relacl, acldefault('r', c.relowner))) a \
                         LEFT JOIN pg_roles g ON g.oid = a.grantor \
                         WHERE c.oid = $1 AND a.grantee = $2",
                        &[&oid, &r.oid],
                    )
                    .await
                    .map_err(|e| map_pg(&format!("read privileges of role {} on {name}", r.name), &e))?;
                let mut privileges = Vec::with_capacity(rows.len());
                for row in &rows {
                    let p: String = row.get(0);
                    let privilege = p.parse::<Privilege>().map_err(|e| ConnectorError::permanent(e.to_string()))?;
                    privileges.push(TableGrant { privilege, grantor: row.get(1), grantable: row.get(2) });
                }
                let protected = self.is_protected(session, &r, &protected_oids);
                let canonical = CanonicalTarget::with_resource(r.oid.to_string(), oid.to_string());
                let mut state = State::Table(TableState { role: r.name, table: name, privileges });
                state.normalise();
                Ok((state, protected, canonical))
            }
            Subject::Login { role } => {
                let r = self.role(client, role).await?;
                let sessions = self.sessions(client, r.oid).await?;
                let protected = self.is_protected(session, &r, &protected_oids);
                let canonical = CanonicalTarget::identity(r.oid.to_string());
                let state = State::Login(LoginState {
                    role: r.name,
                    can_login: r.can_login,
                    valid_until: r.valid_until,
                    conn_limit: r.conn_limit,
                    sessions,
                });
                Ok((state, protected, canonical))
            }
        }
    }

    /// Runs `attempt` until it succeeds, fails for good, or [`ATTEMPTS`] are used up.
    async fn retrying<T, F, Fut>(&self, what: &str, attempt: F) -> Result<T, ConnectorError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<T, ConnectorError>>,
    {
        let mut n = 1;
        loop {
            match attempt().await {
                Err(e) if n < ATTEMPTS && is_retryable(&e) => {
                    tracing::debug!(connector = %self.id, attempt = n, error = %e, "{what}: retrying");
                    tokio::time::sleep(backoff(n)).await;
                    n += 1;
                }
                other => return other,
            }
        }
    }

    async fn write(&self, action: &Action, subject: &Subject, write: Write<'_>) -> Result<Outcome, ConnectorError> {
        self.retrying("write", || self.write_once(action, subject, &write)).await
    }

    async fn write_once(
        &self,
        action: &Action,
        subject: &Subject,
        write: &Write<'_>,
    ) -> Result<Outcome, ConnectorError> {
        let mut client = self.connect().await?;
        let (session, _) = self.session(&client).await?;
        self.count();
        let tx = client.transaction().await.map_err(|e| map_pg("begin a transaction", &e))?;
        self.count();
        tx.batch_execute(&format!("SET LOCAL lock_timeout = '{}ms'", self.lock_timeout.as_millis()))
            .await
            .map_err(|e| map_pg("set the lock timeout", &e))?;
        let (live, protected, _) = self.read(&tx, &session, subject).await?;
        if protected {
            return Err(ConnectorError::new(
                ConnectorErrorKind::Forbidden,
                format!(
                    "{} is protected (a superuser, the connecting role, or listed in protected_roles)",
                    action.target
                ),
            ));
        }
        let desired = match write {
            Write::Execute(change) => change.apply(&live).map_err(|e| ConnectorError::permanent(e.to_string()))?,
            Write::Restore(before) => (*before).clone(),
        };
        let todo = steps(&session, &live, &desired).map_err(|_| {
            ConnectorError::permanent(format!("the recorded state is not a state of {}", action.target))
        })?;
        if todo.is_empty() {
            // Dropping the transaction rolls it back; nothing was written.
            return Ok(Outcome { status: OutcomeStatus::AlreadyInState, request_ids: Vec::new() });
        }
        self.count();
        let ids = tx
            .query_one("SELECT pg_backend_pid(), txid_current()::text", &[])
            .await
            .map_err(|e| map_pg("read the transaction id", &e))?;
        let (pid, xid): (i32, String) = (ids.get(0), ids.get(1));
        let mut terminate = false;
        for step in &todo {
            match step {
                Step::Sql { as_role, sql } => {
                    if let Some(role) = as_role {
                        self.count();
                        tx.batch_execute(&sql::set_local_role(role))
                            .await
                            .map_err(|e| map_pg(&format!("act as grantor {role}"), &e))?;
                    }
                    tracing::debug!(connector = %self.id, action = %action.id, statement = %sql, "applying");
                    self.count();
                    tx.batch_execute(sql).await.map_err(|e| map_pg(&format!("change {}", action.target), &e))?;
                    if as_role.is_some() {
                        self.count();
                        tx.batch_execute("RESET ROLE").await.map_err(|e| map_pg("reset the role", &e))?;
                    }
                }
                Step::TerminateSessions => terminate = true,
            }
        }
        // Read the result inside the transaction: a GRANT the server turns into a warning ("no
        // privileges were granted") or a REVOKE that leaves another grantor's grant in place
        // must not commit half a change.
        let (reached, _, _) = self.read(&tx, &session, subject).await?;
        // Compare only what the steps manage: a concurrent change to another field (a
        // connection limit, say) is not this write's to undo.
        let left = steps(&session, &without_sessions(&reached), &without_sessions(&desired))
            .map_err(|_| ConnectorError::permanent(format!("{} changed identity during the write", action.target)))?;
        if !left.is_empty() {
            return Err(ConnectorError::permanent(format!(
                "the server did not reach the wanted state of {}; nothing was committed (wanted {}, got {})",
                action.target,
                desired.to_json(),
                reached.to_json()
            )));
        }
        self.count();
        tx.commit().await.map_err(|e| map_pg(&format!("commit the change to {}", action.target), &e))?;
        if terminate {
            let Subject::Login { role } = subject else {
                return Err(ConnectorError::permanent("only a login target has sessions"));
            };
            self.terminate(&client, role).await?;
        }
        Ok(Outcome { status: OutcomeStatus::Applied, request_ids: vec![format!("pid {pid} xid {xid}")] })
    }

    /// Terminates every backend of `role` and waits until they have exited.
    async fn terminate(&self, client: &Client, role: &str) -> Result<(), ConnectorError> {
        let r = self.role(client, role).await?;
        self.count();
        client
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usesysid = $1 AND pid <> pg_backend_pid()",
                &[&r.oid],
            )
            .await
            .map_err(|e| map_pg(&format!("terminate the sessions of role {}", r.name), &e))?;
        let deadline = tokio::time::Instant::now() + TERMINATE_WAIT;
        loop {
            let left = self.sessions(client, r.oid).await?;
            if left == 0 {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ConnectorError::new(
                    ConnectorErrorKind::Transient,
                    format!(
                        "{left} session(s) of role {} still open {}s after termination",
                        r.name,
                        TERMINATE_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// `state` with the session count cleared: sessions end only after the commit, and cannot be
/// brought back by a rollback.
fn without_sessions(state: &State) -> State {
    let mut out = state.clone();
    if let State::Login(l) = &mut out {
        l.sessions = 0;
    }
    out
}

/// Parses a target, checking every name, without any request.
fn subject(target: &Target) -> Result<Subject, ConnectorError> {
    let ident = |what: &str, name: &str| -> Result<String, ConnectorError> {
        check_ident(name).map_err(|e| ConnectorError::invalid_target(format!("{what} {name:?}: {e}")))?;
        Ok(name.to_owned())
    };
    let no_grant = || -> Result<(), ConnectorError> {
        match &target.grant {
            Some(g) => Err(ConnectorError::invalid_target(format!(
                "grant type {} takes no grant, got {g:?}",
                target.grant_type
            ))),
            None => Ok(()),
        }
    };
    let resource = || -> Result<&str, ConnectorError> {
        target
            .resource
            .as_deref()
            .ok_or_else(|| ConnectorError::invalid_target(format!("grant type {} needs a resource", target.grant_type)))
    };
    match target.grant_type.as_str() {
        grant_type::ROLE_MEMBERSHIP => {
            no_grant()?;
            Ok(Subject::Membership {
                member: ident("member role", &target.identity)?,
                role: ident("role", resource()?)?,
            })
        }
        grant_type::TABLE_PRIVILEGE => {
            let table = resource()?
                .parse::<TableName>()
                .map_err(|e| ConnectorError::invalid_target(format!("table {:?}: {e}", target.resource)))?;
            Ok(Subject::Table { role: ident("role", &target.identity)?, table })
        }
        grant_type::LOGIN => {
            no_grant()?;
            if target.resource.is_some() {
                return Err(ConnectorError::invalid_target("grant type login takes no resource"));
            }
            Ok(Subject::Login { role: ident("role", &target.identity)? })
        }
        other => Err(ConnectorError::unsupported(format!("the postgres connector has no grant type {other:?}"))),
    }
}

/// The change `action` makes; `Unsupported` for an undeclared (kind, grant type).
fn change(action: &Action, caps: &[Capability]) -> Result<Change, ConnectorError> {
    let target = &action.target;
    if find_capability(caps, action.kind.name(), target).is_none() {
        return Err(ConnectorError::unsupported(format!(
            "the postgres connector cannot {} a {} target",
            action.kind.name(),
            target.grant_type
        )));
    }
    let privilege = |g: &str| g.parse::<Privilege>().map_err(|e| ConnectorError::permanent(e.to_string()));
    match (&action.kind, target.grant_type.as_str()) {
        (ActionKind::Revoke, grant_type::ROLE_MEMBERSHIP) => Ok(Change::RevokeMembership),
        (ActionKind::Revoke, grant_type::TABLE_PRIVILEGE) => {
            Ok(Change::RevokeTable(target.grant.as_deref().map(privilege).transpose()?))
        }
        (ActionKind::Reduce { to }, grant_type::TABLE_PRIVILEGE) => {
            if target.grant.is_some() {
                return Err(ConnectorError::permanent(
                    "reduce acts on every privilege the role holds on the table; leave the target's grant empty",
                ));
            }
            Ok(Change::ReduceTable(parse_privilege_list(to).map_err(|e| ConnectorError::permanent(e.to_string()))?))
        }
        (ActionKind::Suspend, grant_type::LOGIN) => Ok(Change::Suspend),
        (ActionKind::RevokeSessions, grant_type::LOGIN) => Ok(Change::RevokeSessions),
        _ => Err(ConnectorError::unsupported(format!(
            "the postgres connector cannot {} a {} target",
            action.kind.name(),
            target.grant_type
        ))),
    }
}

fn describe(change: &Change, before: &State, after: &State) -> String {
    let removed = |b: &[TableGrant], a: &[TableGrant]| -> String {
        let gone: Vec<String> = b
            .iter()
            .filter(|g| !a.contains(g))
            .map(|g| format!("{} (granted by {})", g.privilege, g.grantor))
            .collect();
        if gone.is_empty() { "nothing to remove".to_owned() } else { format!("removes {}", gone.join(", ")) }
    };
    match (change, before, after) {
        (Change::RevokeMembership, State::Membership(b), _) => {
            if b.grants.is_empty() {
                format!("Role {} is not a member of role {}; nothing to revoke.", b.member, b.role)
            } else {
                format!("Revoke role {} from role {} ({} grant(s)).", b.role, b.member, b.grants.len())
            }
        }
        (Change::RevokeTable(which), State::Table(b), State::Table(a)) => format!(
            "Revoke {} on table {} from role {}: {}.",
            which.map_or_else(|| "all privileges".to_owned(), |p| p.to_string()),
            b.table,
            b.role,
            removed(&b.privileges, &a.privileges)
        ),
        (Change::ReduceTable(keep), State::Table(b), State::Table(a)) => format!(
            "Reduce role {}'s privileges on table {} to {}: {}.",
            b.role,
            b.table,
            keep.iter().map(|p| p.as_sql()).collect::<Vec<_>>().join(", "),
            removed(&b.privileges, &a.privileges)
        ),
        (Change::Suspend, State::Login(b), _) => {
            format!("Set NOLOGIN on role {} (its {} open session(s) stay open).", b.role, b.sessions)
        }
        (Change::RevokeSessions, State::Login(b), _) => {
            format!("Terminate the {} open session(s) of role {}.", b.sessions, b.role)
        }
        _ => "Change nothing.".to_owned(),
    }
}

/// Every (kind, grant type) the connector supports.
///
/// [`Connector::capabilities`] returns exactly this list, so the two cannot differ.
pub fn capabilities() -> Vec<Capability> {
    let cap = Capability::new;
    vec![
        cap(KindName::Revoke, grant_type::ROLE_MEMBERSHIP, Reversibility::Reversible),
        cap(KindName::Revoke, grant_type::TABLE_PRIVILEGE, Reversibility::Reversible),
        cap(KindName::Reduce, grant_type::TABLE_PRIVILEGE, Reversibility::Reversible),
        cap(KindName::Suspend, grant_type::LOGIN, Reversibility::Reversible),
        cap(KindName::RevokeSessions, grant_type::LOGIN, Reversibility::Irreversible),
    ]
}

const CATALOGS: &str = "none (system catalogs every role may read)";
/// On PostgreSQL 16 and later, also ADMIN OPTION on the role changed, which a CREATEROLE role
/// holds on the roles it created.
const CREATEROLE: &str = "CREATEROLE";
const TABLE_RIGHTS: &str = "membership of the table's owner (or of the grantor holding GRANT OPTION)";
const SIGNAL_BACKEND: &str = "membership of pg_signal_backend";

/// Every statement the connector runs and the privilege it needs.
pub const PERMISSION_MAP: &[PermissionNeed] = &[
    PermissionNeed::check("SELECT … FROM pg_roles WHERE rolname = current_user", CATALOGS),
    PermissionNeed::read(grant_type::ROLE_MEMBERSHIP, "SELECT … FROM pg_roles, pg_auth_members", CATALOGS),
    PermissionNeed::execute(KindName::Revoke, grant_type::ROLE_MEMBERSHIP, "REVOKE {role} FROM {user}", CREATEROLE),
    PermissionNeed::rollback(KindName::Revoke, grant_type::ROLE_MEMBERSHIP, "GRANT {role} TO {user}", CREATEROLE),
    PermissionNeed::read(grant_type::TABLE_PRIVILEGE, "SELECT … FROM pg_class, aclexplode(relacl)", CATALOGS),
    PermissionNeed::execute(
        KindName::Revoke,
        grant_type::TABLE_PRIVILEGE,
        "REVOKE {privilege} ON TABLE {table} FROM {user}",
        TABLE_RIGHTS,
    ),
    PermissionNeed::rollback(
        KindName::Revoke,
        grant_type::TABLE_PRIVILEGE,
        "GRANT {privilege} ON TABLE {table} TO {user}",
        TABLE_RIGHTS,
    ),
    PermissionNeed::execute(
        KindName::Reduce,
        grant_type::TABLE_PRIVILEGE,
        "REVOKE {privilege} ON TABLE {table} FROM {user}",
        TABLE_RIGHTS,
    ),
    PermissionNeed::rollback(
        KindName::Reduce,
        grant_type::TABLE_PRIVILEGE,
        "GRANT {privilege} ON TABLE {table} TO {user}",
        TABLE_RIGHTS,
    ),
    PermissionNeed::read(grant_type::LOGIN, "SELECT … FROM pg_roles, pg_stat_activity", CATALOGS),
    PermissionNeed::execute(KindName::Suspend, grant_type::LOGIN, "ALTER ROLE {user} NOLOGIN", CREATEROLE),
    PermissionNeed::rollback(KindName::Suspend, grant_type::LOGIN, "ALTER ROLE {user} LOGIN", CREATEROLE),
    PermissionNeed::execute(
        KindName::RevokeSessions,
        grant_type::LOGIN,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity",
        SIGNAL_BACKEND,
    ),
];

#[async_trait]
impl Connector for PostgresConnector {
    fn id(&self) -> &str {
        &self.id
    }

    fn capabilities(&self) -> Vec<Capability> {
        capabilities()
    }

    async fn health(&self) -> Result<Health, ConnectorError> {
        let probe = async {
            let client = self.connect().await?;
            self.count();
            let row = client
                .query_one("SELECT 1, current_setting('server_version')", &[])
                .await
                .map_err(|e| map_pg("run SELECT 1", &e))?;
            Ok::<String, ConnectorError>(row.get(1))
        };
        Ok(match tokio::time::timeout(self.timeout, probe).await {
            Ok(Ok(version)) => Health { healthy: true, detail: format!("PostgreSQL {version}") },
            Ok(Err(e)) => Health { healthy: false, detail: e.message },
            Err(_) => Health {
                healthy: false,
                detail: format!("PostgreSQL did not answer SELECT 1 within {}s", self.timeout.as_secs()),
            },
        })
    }

    fn permission_map(&self) -> &'static [PermissionNeed] {
        PERMISSION_MAP
    }

    /// A superuser may do everything; otherwise CREATEROLE is read from `pg_roles`, while the
    /// table rights (ownership or grant option, per table) and `pg_signal_backend` depend on
    /// each target and stay unknown.
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        let client = self.connect().await?;
        let (session, createrole) = self.session(&client).await?;
        let p = Permissions::judge(PERMISSION_MAP, |need| match need.permission {
            _ if session.superuser => Grant::Granted,
            CATALOGS => Grant::Granted,
            CREATEROLE if createrole => Grant::Granted,
            CREATEROLE => Grant::Missing,
            _ => Grant::Unknown,
        });
        Ok(p.because(format!(
            "role {} is no superuser, and these rights are held per table or through role membership",
            session.current_user
        )))
    }

    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        let subject = subject(target)?;
        self.retrying("snapshot", || async {
            let client = self.connect().await?;
            let (session, _) = self.session(&client).await?;
            let (state, protected, canonical) = self.read(&client, &session, &subject).await?;
            Ok(Snapshot { canonical: Some(canonical), protected, state: state.to_json() })
        })
        .await
    }

    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        let change = change(action, &self.capabilities())?;
        subject(&action.target)?;
        let state = State::from_json(&action.target.grant_type, &before.state).map_err(|e| {
            ConnectorError::permanent(format!("the before-state is not a {} state: {e}", action.target.grant_type))
        })?;
        let after = change.apply(&state).map_err(|e| ConnectorError::permanent(e.to_string()))?;
        let description = describe(&change, &state, &after);
        Ok(PlannedChange {
            expected_after: Snapshot {
                canonical: before.canonical.clone(),
                protected: before.protected,
                state: after.to_json(),
            },
            description,
        })
    }

    async fn execute(&self, action: &Action, _before: &Snapshot) -> Result<Outcome, ConnectorError> {
        let change = change(action, &self.capabilities())?;
        let subject = subject(&action.target)?;
        self.write(action, &subject, Write::Execute(&change)).await
    }

    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        change(action, &self.capabilities())?;
        let observed = self.snapshot(&action.target).await?;
        let matches = observed == planned.expected_after;
        Ok(Verification { observed, matches })
    }

    async fn rollback(&self, action: &Action, before: &Snapshot, _after: &Snapshot) -> Result<Outcome, ConnectorError> {
        change(action, &self.capabilities())?;
        if find_capability(&self.capabilities(), action.kind.name(), &action.target)
            .is_some_and(|c| c.reversibility == Reversibility::Irreversible)
        {
            return Err(ConnectorError::unsupported(format!("{} cannot be undone", action.kind.name())));
        }
        let subject = subject(&action.target)?;
        let state = State::from_json(&action.target.grant_type, &before.state).map_err(|e| {
            ConnectorError::permanent(format!("the before-state is not a {} state: {e}", action.target.grant_type))
        })?;
        self.write(action, &subject, Write::Restore(&state)).await
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn target(grant_type: &str, identity: &str, resource: Option<&str>, grant: Option<&str>) -> Target {
        Target {
            identity: identity.into(),
            resource: resource.map(Into::into),
            grant: grant.map(Into::into),
            grant_type: grant_type.into(),
        }
    }

    #[track_caller]
    fn check_subject(t: Target, expected: Result<Subject, ConnectorErrorKind>) {
        assert_eq!(subject(&t).map_err(|e| e.kind), expected, "{t}");
    }

    #[test]
    fn targets() {
        use ConnectorErrorKind::*;
        check_subject(
            target("role_membership", "alice", Some("readers"), None),
            Ok(Subject::Membership { member: "alice".into(), role: "readers".into() }),
        );
        check_subject(target("role_membership", "alice", None, None), Err(InvalidTarget));
        check_subject(target("role_membership", "alice", Some("r"), Some("x")), Err(InvalidTarget));
        check_subject(
            target("table_privilege", "alice", Some("public.orders"), Some("SELECT")),
            Ok(Subject::Table {
                role: "alice".into(),
                table: TableName { schema: "public".into(), name: "orders".into() },
            }),
        );
        check_subject(target("table_privilege", "alice", Some("orders"), None), Err(InvalidTarget));
        check_subject(target("login", "alice", None, None), Ok(Subject::Login { role: "alice".into() }));
        check_subject(target("login", "alice", Some("x"), None), Err(InvalidTarget));
        check_subject(target("login", "", None, None), Err(InvalidTarget));
        check_subject(target("login", &"a".repeat(64), None, None), Err(InvalidTarget));
        check_subject(target("account", "alice", None, None), Err(Unsupported));
    }

    #[track_caller]
    fn check_change(kind: ActionKind, t: Target, expected: Result<Change, ConnectorErrorKind>) {
        let action = remediation_core::Action {
            id: remediation_core::ActionId::new_at(time_zero()),
            kind,
            target: t,
            connector: "pg".into(),
            control_id: None,
            finding_id: None,
            canonical: None,
            requested_by: "t".into(),
            reason: "t".into(),
            mode: remediation_core::Mode::Manual,
            idempotency_key: "k".into(),
            state: remediation_core::State::Approved,
            created_at: time_zero(),
            updated_at: time_zero(),
            handle: None,
            campaign: None,
        };
        let caps = connector().capabilities();
        assert_eq!(change(&action, &caps).map_err(|e| e.kind), expected);
    }

    fn time_zero() -> time::OffsetDateTime {
        time::OffsetDateTime::UNIX_EPOCH
    }

    fn connector() -> PostgresConnector {
        PostgresConnector::from_config(&PostgresConfig::new("pg", "host=localhost user=x")).unwrap()
    }

    #[test]
    fn changes() {
        use ConnectorErrorKind::*;
        let tp = |grant| target("table_privilege", "alice", Some("public.t"), grant);
        check_change(ActionKind::Revoke, target("role_membership", "a", Some("r"), None), Ok(Change::RevokeMembership));
        check_change(ActionKind::Revoke, tp(None), Ok(Change::RevokeTable(None)));
        check_change(ActionKind::Revoke, tp(Some("update")), Ok(Change::RevokeTable(Some(Privilege::Update))));
        check_change(ActionKind::Revoke, tp(Some("ALL")), Err(Permanent));
        check_change(
            ActionKind::Reduce { to: "insert,SELECT".into() },
            tp(None),
            Ok(Change::ReduceTable(vec![Privilege::Select, Privilege::Insert])),
        );
        check_change(ActionKind::Reduce { to: "read".into() }, tp(None), Err(Permanent));
        check_change(ActionKind::Reduce { to: "SELECT".into() }, tp(Some("SELECT")), Err(Permanent));
        check_change(ActionKind::Suspend, target("login", "a", None, None), Ok(Change::Suspend));
        check_change(ActionKind::RevokeSessions, target("login", "a", None, None), Ok(Change::RevokeSessions));
        check_change(ActionKind::Suspend, tp(None), Err(Unsupported));
        check_change(
            ActionKind::Reduce { to: "SELECT".into() },
            target("role_membership", "a", Some("r"), None),
            Err(Unsupported),
        );
        check_change(ActionKind::ForcePasswordReset, target("login", "a", None, None), Err(Unsupported));
        check_change(ActionKind::Notify, target("login", "a", None, None), Err(Unsupported));
        check_change(ActionKind::Revoke, target("login", "a", None, None), Err(Unsupported));
    }

    #[test]
    fn backoff_doubles() {
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(2), Duration::from_millis(200));
        assert_eq!(backoff(3), Duration::from_millis(400));
    }

    #[test]
    fn config_refuses_a_password_in_the_url() {
        for url in ["host=localhost user=x password=hunter22", "postgres://x:hunter22@localhost/db"] {
            let e = PostgresConnector::from_config(&PostgresConfig::new("pg", url)).unwrap_err();
            assert!(matches!(e, PostgresError::PasswordInUrl { .. }), "{e}");
            assert!(!format!("{e} {e:?}").contains("hunter22"));
        }
    }
}
