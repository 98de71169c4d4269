//! A [`Connector`](remediation_core::Connector) for PostgreSQL roles: it revokes role
//! memberships and table privileges, suspends logins and ends sessions, reading every state
//! from the system catalogs and restoring it exactly on rollback.
//!
//! # Configuration
//!
//! ```
//! use remediation_connector_postgres::{PostgresConfig, PostgresConnector};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let secret = dir.path().join("pg-password");
//! # std::fs::write(&secret, "example-only\n")?;
//! let config: PostgresConfig = toml::from_str(&format!(r#"
//!     id = "pg-prod"
//!     url = "host=db.internal port=5432 user=remediation dbname=app"
//!     password_file = "{}"
//!     protected_roles = ["break_glass", "app_owner"]
//!     connect_timeout_secs = 10
//! "#, secret.display()))?;
//! let connector = PostgresConnector::from_config(&config)?;
//! assert!(!format!("{connector:?}").contains("example-only"));
//! # Ok(())
//! # }
//! ```
//!
//! `url` must not hold a password; it comes from `password_env` or `password_file` (at most
//! one) and lives in a [`secrecy::SecretString`] until it is handed to the driver. The
//! connection is unencrypted (`NoTls`): use it over a trusted network or a local socket.
//!
//! # Capabilities
//!
//! | kind | `grant_type` | target | effect | reversibility |
//! |---|---|---|---|---|
//! | revoke | `role_membership` | identity = member role, resource = granted role | `REVOKE role FROM member` (each grantor on PostgreSQL 16+) | reversible |
//! | revoke | `table_privilege` | identity = role, resource = `schema.table`, grant = `SELECT`… or none for all | `REVOKE priv ON TABLE … FROM role`, as each grantor | reversible |
//! | reduce `{to}` | `table_privilege` | identity = role, resource = `schema.table` | revoke every privilege not in the comma list `to` | reversible |
//! | suspend | `login` | identity = role | `ALTER ROLE … NOLOGIN` (open sessions stay) | reversible |
//! | revoke_sessions | `login` | identity = role | `pg_terminate_backend` on the role's backends | irreversible |
//!
//! `revoke_sessions` waits (up to 10 s) until the terminated backends have exited. A role
//! that may still log in can reconnect at once, and `verify` then sees the new sessions:
//! suspend the role first. Because `login` snapshots count sessions, a suspend planned while
//! the role's session count moves is re-planned at execution.
//!
//! Every capability is observable: `verify` reads the catalogs back. Names are exact catalog
//! names (no case folding). A table is `schema.table`, split at the first `.`; a part that
//! holds a `.` or starts with `"` is written quoted, as in SQL (`"my.schema"."t"`).
//!
//! # Snapshots
//!
//! - `role_membership`: `{"member", "role", "grants": [{"grantor", "admin_option"
//!   [, "inherit_option", "set_option" on 16+]}]}`, from `pg_auth_members`.
//! - `table_privilege`: `{"role", "table": {"schema", "name"}, "privileges": [{"privilege",
//!   "grantor", "grantable"}]}`, from `aclexplode` over `pg_class` (the role's own grants;
//!   not those through PUBLIC or memberships).
//! - `login`: `{"role", "can_login", "valid_until", "conn_limit", "sessions"}`, from
//!   `pg_roles` and `pg_stat_activity`.
//!
//! Lists are sorted. A snapshot is `protected` when the identity is a superuser, the
//! connecting role, or listed in `protected_roles`; writes to a protected role are refused.
//!
//! A role may be named `oid:<n>` instead of by name. The snapshot's
//! [canonical id](remediation_core::Snapshot::canonical) is the role's OID (and the granted
//! role's or the table's OID as the resource), and protection compares OIDs: the names in
//! `protected_roles` are resolved on every read, and an OID they resolved to once stays
//! protected for the life of the connector, so renaming a protected role does not unprotect it.
//! A missing role or table is `NotFound` with the server's message.
//!
//! # Writes
//!
//! Each write runs in one transaction (lock timeout 5 s, see
//! [`PostgresConnector::with_lock_timeout`]) that re-reads the target, computes the wanted
//! state, and answers `AlreadyInState` without writing when there is nothing to do. Before
//! committing it reads the target again and commits only when the wanted state is reached,
//! so a GRANT the server turns into a warning never leaves half a change behind. A
//! privilege granted by another role is revoked and re-granted as that role
//! (`SET LOCAL ROLE grantor`), so rollback restores the grantor and grant option exactly;
//! a membership is restored `WITH ADMIN OPTION` and `GRANTED BY` its grantor where the
//! server accepts it (before PostgreSQL 16, only from a superuser: a non-superuser's
//! rollback of someone else's grant fails and commits nothing). Identifiers are always quoted with [`sql::quote_ident`]; values are bind
//! parameters; privileges come from the fixed [`Privilege`] list.
//!
//! SQLSTATE 42704, 42P01, 3F000 are `NotFound`; 42501 `Forbidden`; 28P01, 28000
//! `Unauthenticated`; 55P03, 40001, 40P01, 53300, 57P03 and class 08 `Transient` (the first
//! four retried in place up to three times, 100/200/400 ms apart), and so is XX000 "tuple
//! concurrently updated", which is how the server reports two transactions changing the same
//! role at once; anything else `Permanent`.

mod config;
mod connector;
mod error;
pub mod sql;
pub mod state;

pub use config::PostgresConfig;
pub use connector::{PERMISSION_MAP, PostgresConnector, backoff, capabilities};
pub use error::{PostgresError, kind_for_server_error, kind_for_sqlstate};
pub use sql::Privilege;

/// The grant types the connector understands, as written in [`Target::grant_type`](remediation_core::Target::grant_type).
pub mod grant_type {
    /// A role's membership of another role (`identity` = member, `resource` = granted role).
    pub const ROLE_MEMBERSHIP: &str = "role_membership";
    /// A role's privileges on a table (`resource` = `schema.table`, `grant` = privilege).
    pub const TABLE_PRIVILEGE: &str = "table_privilege";
    /// A role's ability to log in, and its open sessions.
    pub const LOGIN: &str = "login";
    /// Every grant type, in a stable order.
    pub const ALL: [&str; 3] = [ROLE_MEMBERSHIP, TABLE_PRIVILEGE, LOGIN];
}

/// The catalog's entry for PostgreSQL roles: `type = "postgres"`, settings [`PostgresConfig`].
pub static FACTORY: remediation_core::factory::Factory<PostgresConfig> =
    remediation_core::factory::Factory::new("postgres", "PostgreSQL", Some(capabilities), |_id, config, _context| {
        Ok(std::sync::Arc::new(PostgresConnector::from_config(&config)?))
    });
