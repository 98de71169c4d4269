//! Identifier quoting, privilege names, table names and the SQL statements the connector sends.
//!
//! Identifiers cannot be bind parameters, so every statement that names a role or a table is
//! built here, and every name goes through [`quote_ident`]. Privileges are a closed enum, so
//! the only text that reaches SQL unquoted is a fixed keyword.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The longest identifier PostgreSQL keeps (`NAMEDATALEN - 1` bytes). The server silently
/// truncates longer ones, which would make a long name match a different, shorter one.
pub const MAX_IDENT_BYTES: usize = 63;

/// Why a name cannot be used as an identifier.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdentError {
    /// The name is empty.
    #[error("an identifier cannot be empty")]
    Empty,
    /// The name contains a NUL character, which PostgreSQL cannot store.
    #[error("an identifier cannot contain a NUL character")]
    Nul,
    /// The name is longer than PostgreSQL keeps.
    #[error("identifier is {len} bytes long; PostgreSQL keeps at most {MAX_IDENT_BYTES}")]
    TooLong {
        /// The name's length in bytes.
        len: usize,
    },
}

/// Checks that `name` can be an identifier exactly as written.
pub fn check_ident(name: &str) -> Result<(), IdentError> {
    if name.is_empty() {
        Err(IdentError::Empty)
    } else if name.contains('\0') {
        Err(IdentError::Nul)
    } else if name.len() > MAX_IDENT_BYTES {
        Err(IdentError::TooLong { len: name.len() })
    } else {
        Ok(())
    }
}

/// Quotes `name` as a PostgreSQL identifier: always in double quotes, inner double quotes
/// doubled. The result names exactly `name`, case and all; callers check the name with
/// [`check_ident`] first (the statement builders take names that came from the catalog or
/// were checked).
pub fn quote_ident(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 2);
    out.push('"');
    for c in name.chars() {
        if c == '"' {
            out.push('"');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// A table privilege, from the fixed list PostgreSQL knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Privilege {
    /// `SELECT`.
    Select,
    /// `INSERT`.
    Insert,
    /// `UPDATE`.
    Update,
    /// `DELETE`.
    Delete,
    /// `TRUNCATE`.
    Truncate,
    /// `REFERENCES`.
    References,
    /// `TRIGGER`.
    Trigger,
    /// `MAINTAIN` (PostgreSQL 17 and later).
    Maintain,
}

impl Privilege {
    /// Every privilege, in the order PostgreSQL lists them.
    pub const ALL: [Privilege; 8] = [
        Self::Select,
        Self::Insert,
        Self::Update,
        Self::Delete,
        Self::Truncate,
        Self::References,
        Self::Trigger,
        Self::Maintain,
    ];

    /// The SQL keyword, as `aclexplode` also spells it.
    pub fn as_sql(self) -> &'static str {
        match self {
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
            Self::Truncate => "TRUNCATE",
            Self::References => "REFERENCES",
            Self::Trigger => "TRIGGER",
            Self::Maintain => "MAINTAIN",
        }
    }
}

impl fmt::Display for Privilege {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_sql())
    }
}

/// A privilege name that is not on the fixed list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{name:?} is not a table privilege (expected one of SELECT, INSERT, UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER, MAINTAIN)"
)]
pub struct UnknownPrivilege {
    /// The name as given.
    pub name: String,
}

impl FromStr for Privilege {
    type Err = UnknownPrivilege;

    /// Case-insensitive, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.trim().to_ascii_uppercase();
        Self::ALL.into_iter().find(|p| p.as_sql() == upper).ok_or_else(|| UnknownPrivilege { name: s.to_owned() })
    }
}

/// Parses a comma-separated privilege list (`"SELECT, insert"`) into a sorted set without
/// duplicates. An empty list is refused: keeping nothing is a revoke, not a reduction.
pub fn parse_privilege_list(list: &str) -> Result<Vec<Privilege>, UnknownPrivilege> {
    let mut out = Vec::new();
    for part in list.split(',') {
        out.push(part.parse::<Privilege>()?);
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// A table named by schema and name, each exactly as in the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TableName {
    /// The schema (`pg_namespace.nspname`).
    pub schema: String,
    /// The table (`pg_class.relname`).
    pub name: String,
}

impl TableName {
    /// `"schema"."name"`, both quoted.
    pub fn quoted(&self) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(&self.name))
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.name)
    }
}

/// Why a target's resource does not name a table.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TableNameError {
    /// There is no `.` between schema and table.
    #[error("a table is named `schema.table`; no schema given")]
    NoSchema,
    /// A quoted part is not closed, or text follows it.
    #[error("malformed quoted name at byte {at}")]
    Malformed {
        /// Byte offset of the problem.
        at: usize,
    },
    /// A part is not a usable identifier.
    #[error("invalid table name part")]
    Ident(#[from] IdentError),
}

impl FromStr for TableName {
    type Err = TableNameError;

    /// `schema.table`, split at the first `.`, each part taken literally (no case folding).
    /// A part that itself holds a `.` or starts with `"` is written in SQL quoted form
    /// (`"my.schema"."odd ""name"""`), which may be mixed with a literal part.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (schema, rest) = part(s, 0)?;
        let Some(rest) = rest.strip_prefix('.') else {
            return Err(TableNameError::NoSchema);
        };
        let offset = s.len() - rest.len();
        let (name, tail) = part(rest, offset)?;
        if !tail.is_empty() {
            return Err(TableNameError::Malformed { at: s.len() - tail.len() });
        }
        check_ident(&schema)?;
        check_ident(&name)?;
        Ok(Self { schema, name })
    }
}

/// One part of a qualified name: quoted (up to the closing quote) or literal (up to the first
/// `.` for the schema, to the end for the table). Returns the part and the unread rest.
fn part(s: &str, offset: usize) -> Result<(String, &str), TableNameError> {
    if let Some(body) = s.strip_prefix('"') {
        let mut out = String::new();
        let mut chars = body.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            if c == '"' {
                if matches!(chars.peek(), Some((_, '"'))) {
                    chars.next();
                    out.push('"');
                } else {
                    return Ok((out, &body[i + 1..]));
                }
            } else {
                out.push(c);
            }
        }
        Err(TableNameError::Malformed { at: offset })
    } else if offset == 0 {
        match s.find('.') {
            Some(i) => Ok((s[..i].to_owned(), &s[i..])),
            None => Ok((s.to_owned(), "")),
        }
    } else {
        Ok((s.to_owned(), ""))
    }
}

/// Facts about the server and the connecting role that decide which SQL is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// `server_version_num`, e.g. 150004.
    pub server_version: i32,
    /// The connecting role (`current_user`).
    pub current_user: String,
    /// Whether the connecting role is a superuser.
    pub superuser: bool,
}

impl Session {
    /// PostgreSQL 16 keeps one membership per grantor and has INHERIT and SET options.
    pub fn per_grantor_memberships(&self) -> bool {
        self.server_version >= 160_000
    }

    /// Whether `GRANT role ... GRANTED BY grantor` is accepted: always from 16 on; before,
    /// only for superusers or when the grantor is the connecting role itself.
    pub fn may_name_grantor(&self, grantor: &str) -> bool {
        self.per_grantor_memberships() || self.superuser || grantor == self.current_user
    }
}

/// The options of one role membership grant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct MembershipOptions {
    /// `WITH ADMIN OPTION`.
    pub admin: bool,
    /// `INHERIT` (PostgreSQL 16 and later; `None` before).
    pub inherit: Option<bool>,
    /// `SET` (PostgreSQL 16 and later; `None` before).
    pub set: Option<bool>,
}

fn granted_by(grantor: Option<&str>, allowed: bool) -> String {
    match grantor {
        Some(g) if allowed => format!(" GRANTED BY {}", quote_ident(g)),
        _ => String::new(),
    }
}

/// `GRANT role TO member [WITH ...] [GRANTED BY grantor]`.
pub fn grant_role(
    session: &Session,
    role: &str,
    member: &str,
    opts: MembershipOptions,
    grantor: Option<&str>,
) -> String {
    let mut sql = format!("GRANT {} TO {}", quote_ident(role), quote_ident(member));
    if session.per_grantor_memberships() {
        let tf = |b: bool| if b { "TRUE" } else { "FALSE" };
        sql.push_str(&format!(" WITH ADMIN {}", tf(opts.admin)));
        if let Some(i) = opts.inherit {
            sql.push_str(&format!(", INHERIT {}", tf(i)));
        }
        if let Some(s) = opts.set {
            sql.push_str(&format!(", SET {}", tf(s)));
        }
    } else if opts.admin {
        sql.push_str(" WITH ADMIN OPTION");
    }
    sql.push_str(&granted_by(grantor, grantor.is_some_and(|g| session.may_name_grantor(g))));
    sql
}

/// `REVOKE [ADMIN OPTION FOR] role FROM member [GRANTED BY grantor]`. Before PostgreSQL 16
/// there is one membership per (role, member), so the grantor is not named.
pub fn revoke_role(session: &Session, role: &str, member: &str, admin_only: bool, grantor: Option<&str>) -> String {
    let what = if admin_only { "ADMIN OPTION FOR " } else { "" };
    let mut sql = format!("REVOKE {what}{} FROM {}", quote_ident(role), quote_ident(member));
    sql.push_str(&granted_by(grantor, session.per_grantor_memberships()));
    sql
}

/// `GRANT privilege ON TABLE s.t TO role [WITH GRANT OPTION]`.
pub fn grant_table(privilege: Privilege, table: &TableName, role: &str, grantable: bool) -> String {
    let option = if grantable { " WITH GRANT OPTION" } else { "" };
    format!("GRANT {privilege} ON TABLE {} TO {}{option}", table.quoted(), quote_ident(role))
}

/// `REVOKE [GRANT OPTION FOR] privilege ON TABLE s.t FROM role`. Without `CASCADE`: a
/// privilege the role passed on fails to revoke rather than silently taking it from others.
pub fn revoke_table(privilege: Privilege, table: &TableName, role: &str, option_only: bool) -> String {
    let what = if option_only { "GRANT OPTION FOR " } else { "" };
    format!("REVOKE {what}{privilege} ON TABLE {} FROM {}", table.quoted(), quote_ident(role))
}

/// `ALTER ROLE role LOGIN` or `NOLOGIN`.
pub fn alter_login(role: &str, login: bool) -> String {
    format!("ALTER ROLE {} {}", quote_ident(role), if login { "LOGIN" } else { "NOLOGIN" })
}

/// `SET LOCAL ROLE role`, to act as a privilege's grantor inside a transaction.
pub fn set_local_role(role: &str) -> String {
    format!("SET LOCAL ROLE {}", quote_ident(role))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[track_caller]
    fn check_quote(input: &str, expected: &str) {
        assert_eq!(quote_ident(input), expected, "quote_ident({input:?})");
    }

    #[test]
    fn quoting() {
        check_quote("alice", r#""alice""#);
        check_quote("Alice", r#""Alice""#);
        check_quote("", r#""""#);
        check_quote(r#"a"b"#, r#""a""b""#);
        check_quote(r#"""#, r#""""""#);
        check_quote(r#""; DROP TABLE x; --"#, r#""""; DROP TABLE x; --""#);
        check_quote("robert'); drop", r#""robert'); drop""#);
        check_quote("ünï cødé 名前", r#""ünï cødé 名前""#);
        check_quote("a.b", r#""a.b""#);
        check_quote(r"back\slash", r#""back\slash""#);
        check_quote("new\nline", "\"new\nline\"");
    }

    /// Quoting round-trips: undoing the doubling of the inner text gives the input back, and
    /// the quoted text has no lone double quote inside that could end the identifier early.
    #[test]
    fn quoting_never_closes_early() {
        for name in [r#"""#, r#"a""b"#, r#""; DROP TABLE x; --"#, r#"x" OR "1"="1"#, "\"\"\"\""] {
            let q = quote_ident(name);
            let inner = &q[1..q.len() - 1];
            assert_eq!(inner.replace("\"\"", "\""), name);
            assert_eq!(inner.matches('"').count() % 2, 0, "{q}");
            assert!(!inner.replace("\"\"", "").contains('"'), "{q}");
        }
    }

    #[track_caller]
    fn check_ident_result(input: &str, expected: Result<(), IdentError>) {
        assert_eq!(check_ident(input), expected, "check_ident({input:?})");
    }

    #[test]
    fn identifiers() {
        check_ident_result("alice", Ok(()));
        check_ident_result(r#""; DROP TABLE x; --"#, Ok(()));
        check_ident_result("", Err(IdentError::Empty));
        check_ident_result("a\0b", Err(IdentError::Nul));
        check_ident_result(&"x".repeat(63), Ok(()));
        check_ident_result(&"x".repeat(64), Err(IdentError::TooLong { len: 64 }));
        // 21 three-byte characters are 63 bytes; one more is too long.
        check_ident_result(&"名".repeat(21), Ok(()));
        check_ident_result(&"名".repeat(22), Err(IdentError::TooLong { len: 66 }));
    }

    #[track_caller]
    fn check_privileges(input: &str, expected: Result<&[Privilege], &str>) {
        let got = parse_privilege_list(input);
        match expected {
            Ok(p) => assert_eq!(got.unwrap(), p, "{input:?}"),
            Err(bad) => assert_eq!(got.unwrap_err().name, bad, "{input:?}"),
        }
    }

    #[test]
    fn privilege_lists() {
        use Privilege::*;
        check_privileges("SELECT", Ok(&[Select]));
        check_privileges("select", Ok(&[Select]));
        check_privileges(" Update , select,SELECT", Ok(&[Select, Update]));
        check_privileges(
            "maintain,trigger,references,truncate,delete,insert",
            Ok(&[Insert, Delete, Truncate, References, Trigger, Maintain]),
        );
        check_privileges("", Err(""));
        check_privileges("SELECT,", Err(""));
        check_privileges("ALL", Err("ALL"));
        check_privileges("SELECT; DROP TABLE x", Err("SELECT; DROP TABLE x"));
        check_privileges("SELECT,DROP", Err("DROP"));
        check_privileges("USAGE", Err("USAGE"));
        for p in Privilege::ALL {
            assert_eq!(p.as_sql().parse::<Privilege>().unwrap(), p);
        }
    }

    #[track_caller]
    fn check_table(input: &str, expected: Result<(&str, &str), TableNameError>) {
        let got = input.parse::<TableName>();
        let expected = expected.map(|(s, n)| TableName { schema: s.to_owned(), name: n.to_owned() });
        assert_eq!(got, expected, "{input:?}");
    }

    #[test]
    fn table_names() {
        check_table("public.orders", Ok(("public", "orders")));
        check_table("Sales.Orders", Ok(("Sales", "Orders")));
        check_table("public.a.b", Ok(("public", "a.b")));
        check_table(r#""my.schema".t"#, Ok(("my.schema", "t")));
        check_table(r#""my.schema"."odd ""name""""#, Ok(("my.schema", r#"odd "name""#)));
        check_table(r#"s."a.b""#, Ok(("s", "a.b")));
        // A part starting with a double quote is the quoted form, so a literal one must be quoted.
        check_table(r#"public."; DROP TABLE x; --"#, Err(TableNameError::Malformed { at: 7 }));
        check_table(r#"public.x"; DROP TABLE y; --"#, Ok(("public", r#"x"; DROP TABLE y; --"#)));
        check_table(r#"public."""; DROP TABLE x; --""#, Ok(("public", r#""; DROP TABLE x; --"#)));
        check_table("orders", Err(TableNameError::NoSchema));
        check_table(".orders", Err(TableNameError::Ident(IdentError::Empty)));
        check_table("public.", Err(TableNameError::Ident(IdentError::Empty)));
        check_table(r#""unclosed.t"#, Err(TableNameError::Malformed { at: 0 }));
        check_table(r#""s"x.t"#, Err(TableNameError::NoSchema));
        check_table(r#"s."t"x"#, Err(TableNameError::Malformed { at: 5 }));
        check_table(&format!("public.{}", "t".repeat(64)), Err(TableNameError::Ident(IdentError::TooLong { len: 64 })));
    }

    fn pg15(superuser: bool) -> Session {
        Session { server_version: 150_004, current_user: "remediator".into(), superuser }
    }

    fn pg16() -> Session {
        Session { server_version: 160_001, current_user: "remediator".into(), superuser: false }
    }

    const ADMIN: MembershipOptions = MembershipOptions { admin: true, inherit: None, set: None };
    const PLAIN: MembershipOptions = MembershipOptions { admin: false, inherit: None, set: None };

    #[track_caller]
    fn check_sql(got: String, expected: &str) {
        assert_eq!(got, expected);
    }

    #[test]
    fn role_statements() {
        check_sql(grant_role(&pg15(true), "readers", "alice", PLAIN, None), r#"GRANT "readers" TO "alice""#);
        check_sql(
            grant_role(&pg15(true), "readers", "alice", ADMIN, Some("bob")),
            r#"GRANT "readers" TO "alice" WITH ADMIN OPTION GRANTED BY "bob""#,
        );
        // Before 16 only a superuser may name another grantor.
        check_sql(grant_role(&pg15(false), "readers", "alice", PLAIN, Some("bob")), r#"GRANT "readers" TO "alice""#);
        check_sql(
            grant_role(&pg15(false), "readers", "alice", PLAIN, Some("remediator")),
            r#"GRANT "readers" TO "alice" GRANTED BY "remediator""#,
        );
        let opts16 = MembershipOptions { admin: false, inherit: Some(true), set: Some(false) };
        check_sql(
            grant_role(&pg16(), "readers", "alice", opts16, Some("bob")),
            r#"GRANT "readers" TO "alice" WITH ADMIN FALSE, INHERIT TRUE, SET FALSE GRANTED BY "bob""#,
        );
        check_sql(revoke_role(&pg15(true), "readers", "alice", false, Some("bob")), r#"REVOKE "readers" FROM "alice""#);
        check_sql(
            revoke_role(&pg16(), "readers", "alice", false, Some("bob")),
            r#"REVOKE "readers" FROM "alice" GRANTED BY "bob""#,
        );
        check_sql(
            revoke_role(&pg16(), "readers", "alice", true, None),
            r#"REVOKE ADMIN OPTION FOR "readers" FROM "alice""#,
        );
        check_sql(
            grant_role(&pg15(true), r#""; DROP TABLE x; --"#, "a\"b", PLAIN, Some("g\"")),
            r#"GRANT """; DROP TABLE x; --" TO "a""b" GRANTED BY "g""""#,
        );
    }

    #[test]
    fn table_and_login_statements() {
        let t = TableName { schema: "public".into(), name: r#"x"; DROP TABLE y; --"#.into() };
        check_sql(
            grant_table(Privilege::Select, &t, "alice", false),
            r#"GRANT SELECT ON TABLE "public"."x""; DROP TABLE y; --" TO "alice""#,
        );
        check_sql(
            grant_table(Privilege::Update, &t, "alice", true),
            r#"GRANT UPDATE ON TABLE "public"."x""; DROP TABLE y; --" TO "alice" WITH GRANT OPTION"#,
        );
        check_sql(
            revoke_table(Privilege::Delete, &t, "alice", false),
            r#"REVOKE DELETE ON TABLE "public"."x""; DROP TABLE y; --" FROM "alice""#,
        );
        check_sql(
            revoke_table(Privilege::Delete, &t, "alice", true),
            r#"REVOKE GRANT OPTION FOR DELETE ON TABLE "public"."x""; DROP TABLE y; --" FROM "alice""#,
        );
        check_sql(alter_login("al\"ice", false), r#"ALTER ROLE "al""ice" NOLOGIN"#);
        check_sql(alter_login("alice", true), r#"ALTER ROLE "alice" LOGIN"#);
        check_sql(set_local_role("own\"er"), r#"SET LOCAL ROLE "own""er""#);
    }
}
