//! The normalised state of each grant type, the changes actions make to it, and the
//! statements that turn one state into another. Pure: no connection here.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::sql::{self, MembershipOptions, Privilege, Session, TableName};

/// One grant of a role membership, as `pg_auth_members` records it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipGrant {
    /// The role recorded as having granted it; `null` when that role no longer exists
    /// (possible before PostgreSQL 16).
    pub grantor: Option<String>,
    /// Whether the member may grant the role on.
    pub admin_option: bool,
    /// Whether the member inherits the role's privileges (PostgreSQL 16 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inherit_option: Option<bool>,
    /// Whether the member may `SET ROLE` to the role (PostgreSQL 16 and later).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub set_option: Option<bool>,
}

impl MembershipGrant {
    fn options(&self) -> MembershipOptions {
        MembershipOptions { admin: self.admin_option, inherit: self.inherit_option, set: self.set_option }
    }
}

/// State of a `role_membership` target: every grant of `role` to `member`, sorted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MembershipState {
    /// The member role (the target's identity).
    pub member: String,
    /// The granted role (the target's resource).
    pub role: String,
    /// One entry per grantor (PostgreSQL 16) or at most one (before); empty when not a member.
    pub grants: Vec<MembershipGrant>,
}

/// One privilege a role holds directly on a table, from one grantor.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableGrant {
    /// The privilege.
    pub privilege: Privilege,
    /// The role that granted it.
    pub grantor: String,
    /// Whether it was granted `WITH GRANT OPTION`.
    pub grantable: bool,
}

/// State of a `table_privilege` target: the privileges `role` holds directly on `table`,
/// sorted (privileges through PUBLIC or through memberships are not the role's own grants).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TableState {
    /// The grantee role (the target's identity).
    pub role: String,
    /// The table (the target's resource).
    pub table: TableName,
    /// The role's privileges on the table.
    pub privileges: Vec<TableGrant>,
}

/// State of a `login` target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoginState {
    /// The role (the target's identity).
    pub role: String,
    /// `rolcanlogin`.
    pub can_login: bool,
    /// `rolvaliduntil` in UTC (`YYYY-MM-DDTHH:MM:SSZ`, or `infinity`), `null` when unset.
    pub valid_until: Option<String>,
    /// `rolconnlimit` (-1 for no limit).
    pub conn_limit: i32,
    /// Server processes connected as the role now (`pg_stat_activity`).
    pub sessions: i64,
}

/// The state of one target, by grant type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// A `role_membership` target.
    Membership(MembershipState),
    /// A `table_privilege` target.
    Table(TableState),
    /// A `login` target.
    Login(LoginState),
}

impl State {
    /// The normalised JSON that goes into a snapshot.
    pub fn to_json(&self) -> serde_json::Value {
        let value = match self {
            Self::Membership(s) => serde_json::to_value(s),
            Self::Table(s) => serde_json::to_value(s),
            Self::Login(s) => serde_json::to_value(s),
        };
        // These types serialise infallibly: plain structs of strings, numbers and bools.
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Reads a snapshot's JSON back as the state of `grant_type`.
    pub fn from_json(grant_type: &str, value: &serde_json::Value) -> Result<Self, serde_json::Error> {
        use serde::de::Error as _;
        match grant_type {
            crate::grant_type::ROLE_MEMBERSHIP => Ok(Self::Membership(serde_json::from_value(value.clone())?)),
            crate::grant_type::TABLE_PRIVILEGE => Ok(Self::Table(serde_json::from_value(value.clone())?)),
            crate::grant_type::LOGIN => Ok(Self::Login(serde_json::from_value(value.clone())?)),
            other => Err(serde_json::Error::custom(format!("unknown grant type {other:?}"))),
        }
    }

    /// Sorts every list so that equal states serialise equally.
    pub fn normalise(&mut self) {
        match self {
            Self::Membership(s) => s.grants.sort(),
            Self::Table(s) => s.privileges.sort(),
            Self::Login(_) => {}
        }
    }
}

/// What an action does to a state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// Remove every grant of the role to the member.
    RevokeMembership,
    /// Remove one privilege (from every grantor), or all of them.
    RevokeTable(Option<Privilege>),
    /// Keep only these privileges.
    ReduceTable(Vec<Privilege>),
    /// `NOLOGIN`.
    Suspend,
    /// End every session.
    RevokeSessions,
}

/// A state that does not fit the change (a login state for a membership revoke).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the snapshot is not of the kind this action changes")]
pub struct WrongState;

impl Change {
    /// The state after the change, given the state before.
    pub fn apply(&self, state: &State) -> Result<State, WrongState> {
        let mut out = state.clone();
        match (self, &mut out) {
            (Self::RevokeMembership, State::Membership(s)) => s.grants.clear(),
            (Self::RevokeTable(which), State::Table(s)) => {
                s.privileges.retain(|g| which.is_some_and(|p| p != g.privilege));
            }
            (Self::ReduceTable(keep), State::Table(s)) => s.privileges.retain(|g| keep.contains(&g.privilege)),
            (Self::Suspend, State::Login(s)) => s.can_login = false,
            (Self::RevokeSessions, State::Login(s)) => s.sessions = 0,
            _ => return Err(WrongState),
        }
        Ok(out)
    }
}

/// One thing to do to move a target from one state to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run `sql`, as `as_role` (`SET LOCAL ROLE`) when given.
    Sql {
        /// The role to act as: the grantor whose grant this statement adds or removes.
        as_role: Option<String>,
        /// The statement.
        sql: String,
    },
    /// Terminate every backend of the role and wait until they are gone.
    TerminateSessions,
}

impl Step {
    fn sql(sql: String) -> Self {
        Self::Sql { as_role: None, sql }
    }
}

/// The steps that turn `live` into `desired` (both of the same target), or an error when
/// they are states of different grant types or targets. Sessions can be ended but not
/// started: a desired session count above the live one is ignored.
pub fn steps(session: &Session, live: &State, desired: &State) -> Result<Vec<Step>, WrongState> {
    match (live, desired) {
        (State::Membership(l), State::Membership(d)) if l.member == d.member && l.role == d.role => {
            Ok(membership_steps(session, l, d))
        }
        (State::Table(l), State::Table(d)) if l.role == d.role && l.table == d.table => Ok(table_steps(session, l, d)),
        (State::Login(l), State::Login(d)) if l.role == d.role => Ok(login_steps(l, d)),
        _ => Err(WrongState),
    }
}

fn membership_steps(session: &Session, live: &MembershipState, desired: &MembershipState) -> Vec<Step> {
    let by_grantor = |s: &MembershipState| -> BTreeMap<Option<String>, MembershipGrant> {
        s.grants.iter().map(|g| (g.grantor.clone(), g.clone())).collect()
    };
    let (l, d) = (by_grantor(live), by_grantor(desired));
    let (role, member) = (&live.role, &live.member);
    let mut out = Vec::new();
    for (grantor, grant) in &l {
        match d.get(grantor) {
            None => out.push(Step::sql(sql::revoke_role(session, role, member, false, grantor.as_deref()))),
            Some(want) if want != grant => {
                if grant.admin_option && !want.admin_option {
                    out.push(Step::sql(sql::revoke_role(session, role, member, true, grantor.as_deref())));
                }
                let only_admin_dropped = MembershipGrant { admin_option: false, ..grant.clone() } == *want;
                if !only_admin_dropped {
                    out.push(Step::sql(sql::grant_role(session, role, member, want.options(), grantor.as_deref())));
                }
            }
            Some(_) => {}
        }
    }
    for (grantor, want) in &d {
        if !l.contains_key(grantor) {
            out.push(Step::sql(sql::grant_role(session, role, member, want.options(), grantor.as_deref())));
        }
    }
    out
}

fn table_steps(session: &Session, live: &TableState, desired: &TableState) -> Vec<Step> {
    let key = |g: &TableGrant| (g.privilege, g.grantor.clone());
    let l: BTreeMap<_, _> = live.privileges.iter().map(|g| (key(g), g.grantable)).collect();
    let d: BTreeMap<_, _> = desired.privileges.iter().map(|g| (key(g), g.grantable)).collect();
    let as_grantor = |grantor: &str| if grantor == session.current_user { None } else { Some(grantor.to_owned()) };
    let (table, role) = (&live.table, &live.role);
    let mut revokes = Vec::new();
    let mut grants = Vec::new();
    for ((privilege, grantor), grantable) in &l {
        let as_role = as_grantor(grantor);
        match d.get(&(*privilege, grantor.clone())) {
            None => revokes.push(Step::Sql { as_role, sql: sql::revoke_table(*privilege, table, role, false) }),
            Some(true) if !grantable => {
                grants.push(Step::Sql { as_role, sql: sql::grant_table(*privilege, table, role, true) });
            }
            Some(false) if *grantable => {
                revokes.push(Step::Sql { as_role, sql: sql::revoke_table(*privilege, table, role, true) });
            }
            Some(_) => {}
        }
    }
    for ((privilege, grantor), grantable) in &d {
        if !l.contains_key(&(*privilege, grantor.clone())) {
            let as_role = as_grantor(grantor);
            grants.push(Step::Sql { as_role, sql: sql::grant_table(*privilege, table, role, *grantable) });
        }
    }
    revokes.extend(grants);
    revokes
}

fn login_steps(live: &LoginState, desired: &LoginState) -> Vec<Step> {
    let mut out = Vec::new();
    if live.can_login != desired.can_login {
        out.push(Step::sql(sql::alter_login(&live.role, desired.can_login)));
    }
    if desired.sessions == 0 && live.sessions > 0 {
        out.push(Step::TerminateSessions);
    }
    out
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::sql::Privilege::*;

    fn session(version: i32) -> Session {
        Session { server_version: version, current_user: "postgres".into(), superuser: true }
    }

    fn grant(grantor: &str, admin: bool) -> MembershipGrant {
        MembershipGrant { grantor: Some(grantor.into()), admin_option: admin, inherit_option: None, set_option: None }
    }

    fn membership(grants: Vec<MembershipGrant>) -> State {
        State::Membership(MembershipState { member: "alice".into(), role: "readers".into(), grants })
    }

    fn tg(privilege: Privilege, grantor: &str, grantable: bool) -> TableGrant {
        TableGrant { privilege, grantor: grantor.into(), grantable }
    }

    fn table(privileges: Vec<TableGrant>) -> State {
        State::Table(TableState {
            role: "alice".into(),
            table: TableName { schema: "public".into(), name: "orders".into() },
            privileges,
        })
    }

    fn login(can_login: bool, sessions: i64) -> State {
        State::Login(LoginState { role: "alice".into(), can_login, valid_until: None, conn_limit: -1, sessions })
    }

    /// Renders steps as lines: `[as role] sql` or `terminate sessions`.
    fn render(steps: &[Step]) -> Vec<String> {
        steps
            .iter()
            .map(|s| match s {
                Step::Sql { as_role: Some(r), sql } => format!("[as {r}] {sql}"),
                Step::Sql { as_role: None, sql } => sql.clone(),
                Step::TerminateSessions => "terminate sessions".to_owned(),
            })
            .collect()
    }

    #[track_caller]
    fn check(version: i32, live: State, desired: State, expected: &[&str]) {
        let got = render(&steps(&session(version), &live, &desired).unwrap());
        assert_eq!(got, expected);
    }

    #[test]
    fn membership_plans() {
        check(
            150_000,
            membership(vec![grant("postgres", false)]),
            membership(vec![]),
            &[r#"REVOKE "readers" FROM "alice""#],
        );
        check(
            150_000,
            membership(vec![]),
            membership(vec![grant("bob", true)]),
            &[r#"GRANT "readers" TO "alice" WITH ADMIN OPTION GRANTED BY "bob""#],
        );
        check(150_000, membership(vec![grant("bob", true)]), membership(vec![grant("bob", true)]), &[]);
        check(
            150_000,
            membership(vec![grant("bob", true)]),
            membership(vec![grant("bob", false)]),
            &[r#"REVOKE ADMIN OPTION FOR "readers" FROM "alice""#],
        );
        check(
            150_000,
            membership(vec![grant("bob", false)]),
            membership(vec![grant("bob", true)]),
            &[r#"GRANT "readers" TO "alice" WITH ADMIN OPTION GRANTED BY "bob""#],
        );
        // A grantor that no longer exists is not named.
        let orphan = MembershipGrant { grantor: None, admin_option: false, inherit_option: None, set_option: None };
        check(150_000, membership(vec![]), membership(vec![orphan]), &[r#"GRANT "readers" TO "alice""#]);
        // PostgreSQL 16: one grant per grantor, each revoked by name.
        check(
            160_000,
            membership(vec![grant("bob", false), grant("carol", true)]),
            membership(vec![]),
            &[
                r#"REVOKE "readers" FROM "alice" GRANTED BY "bob""#,
                r#"REVOKE "readers" FROM "alice" GRANTED BY "carol""#,
            ],
        );
        let g16 = MembershipGrant {
            grantor: Some("bob".into()),
            admin_option: false,
            inherit_option: Some(true),
            set_option: Some(true),
        };
        check(
            160_000,
            membership(vec![]),
            membership(vec![g16]),
            &[r#"GRANT "readers" TO "alice" WITH ADMIN FALSE, INHERIT TRUE, SET TRUE GRANTED BY "bob""#],
        );
    }

    #[test]
    fn table_plans() {
        // Grants by the connecting role run as it; others as their grantor.
        check(
            150_000,
            table(vec![tg(Select, "owner", true), tg(Update, "owner", false), tg(Update, "postgres", false)]),
            table(vec![tg(Select, "owner", true)]),
            &[
                r#"[as owner] REVOKE UPDATE ON TABLE "public"."orders" FROM "alice""#,
                r#"REVOKE UPDATE ON TABLE "public"."orders" FROM "alice""#,
            ],
        );
        check(
            150_000,
            table(vec![]),
            table(vec![tg(Select, "owner", true), tg(Insert, "owner", false)]),
            &[
                r#"[as owner] GRANT SELECT ON TABLE "public"."orders" TO "alice" WITH GRANT OPTION"#,
                r#"[as owner] GRANT INSERT ON TABLE "public"."orders" TO "alice""#,
            ],
        );
        check(
            150_000,
            table(vec![tg(Select, "owner", true)]),
            table(vec![tg(Select, "owner", false)]),
            &[r#"[as owner] REVOKE GRANT OPTION FOR SELECT ON TABLE "public"."orders" FROM "alice""#],
        );
        check(
            150_000,
            table(vec![tg(Select, "owner", false)]),
            table(vec![tg(Select, "owner", true)]),
            &[r#"[as owner] GRANT SELECT ON TABLE "public"."orders" TO "alice" WITH GRANT OPTION"#],
        );
        check(150_000, table(vec![tg(Select, "owner", false)]), table(vec![tg(Select, "owner", false)]), &[]);
    }

    #[test]
    fn login_plans() {
        check(150_000, login(true, 2), login(false, 2), &[r#"ALTER ROLE "alice" NOLOGIN"#]);
        check(150_000, login(false, 0), login(true, 0), &[r#"ALTER ROLE "alice" LOGIN"#]);
        check(150_000, login(true, 2), login(true, 0), &["terminate sessions"]);
        // Sessions cannot be brought back.
        check(150_000, login(true, 0), login(true, 3), &[]);
    }

    #[test]
    fn mismatched_states_are_refused() {
        assert_eq!(steps(&session(150_000), &login(true, 0), &table(vec![])), Err(WrongState));
        let other = State::Login(LoginState {
            role: "bob".into(),
            can_login: true,
            valid_until: None,
            conn_limit: -1,
            sessions: 0,
        });
        assert_eq!(steps(&session(150_000), &login(true, 0), &other), Err(WrongState));
    }

    #[track_caller]
    fn check_change(change: Change, before: State, expected: Result<State, WrongState>) {
        assert_eq!(change.apply(&before), expected);
    }

    #[test]
    fn changes() {
        let t = || {
            table(vec![tg(Select, "o", false), tg(Update, "o", true), tg(Update, "p", false), tg(Delete, "o", false)])
        };
        check_change(Change::RevokeTable(None), t(), Ok(table(vec![])));
        check_change(
            Change::RevokeTable(Some(Update)),
            t(),
            Ok(table(vec![tg(Select, "o", false), tg(Delete, "o", false)])),
        );
        check_change(Change::ReduceTable(vec![Select]), t(), Ok(table(vec![tg(Select, "o", false)])));
        check_change(Change::ReduceTable(vec![Select, Insert]), t(), Ok(table(vec![tg(Select, "o", false)])));
        check_change(Change::RevokeMembership, membership(vec![grant("b", true)]), Ok(membership(vec![])));
        check_change(Change::Suspend, login(true, 1), Ok(login(false, 1)));
        check_change(Change::RevokeSessions, login(true, 4), Ok(login(true, 0)));
        check_change(Change::Suspend, membership(vec![]), Err(WrongState));
    }

    #[test]
    fn json_round_trip_and_shape() {
        let s = table(vec![tg(Select, "owner", true)]);
        let json = s.to_json();
        assert_eq!(
            json,
            serde_json::json!({
                "role": "alice",
                "table": {"schema": "public", "name": "orders"},
                "privileges": [{"privilege": "SELECT", "grantor": "owner", "grantable": true}]
            })
        );
        assert_eq!(State::from_json("table_privilege", &json).unwrap(), s);
        let m = membership(vec![grant("bob", false)]);
        assert_eq!(
            m.to_json(),
            serde_json::json!({"member": "alice", "role": "readers", "grants": [{"grantor": "bob", "admin_option": false}]})
        );
        assert!(State::from_json("login", &json).is_err());
        assert!(State::from_json("nope", &json).is_err());
    }
}
