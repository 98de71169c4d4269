//! A [`Connector`](remediation_core::Connector) for LDAP directories: OpenLDAP with the
//! ppolicy overlay, and Active Directory. It revokes group memberships and suspends accounts,
//! both reversibly.
//!
//! # Configuration
//!
//! ```
//! use remediation_connector_ldap::{Dialect, LdapConfig};
//!
//! let config: LdapConfig = serde_json::from_str(r#"{
//!     "id": "ldap-corp",
//!     "url": "ldap://ldap.example.org:389",
//!     "bind_dn": "cn=remediator,ou=services,dc=example,dc=org",
//!     "bind_password_env": "LDAP_REMEDIATOR_PASSWORD",
//!     "base_dn": "dc=example,dc=org",
//!     "dialect": "openldap",
//!     "protected_dns": ["uid=breakglass,ou=people,dc=example,dc=org"],
//!     "protected_groups": ["cn=admins,ou=groups,dc=example,dc=org"],
//!     "timeout_secs": 10,
//!     "page_size": 500
//! }"#)?;
//! assert_eq!(config.dialect, Dialect::Openldap);
//! config.validate()?;
//! // LdapConnector::from_config(config)? reads the password from the variable.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! The password comes from `bind_password_env` or `bind_password_file` (exactly one) and is
//! held as a [`SecretString`](secrecy::SecretString): it is sent in the bind request and
//! appears in no `Debug` output, log line or error.
//!
//! # Capabilities
//!
//! | kind | `grant_type` | target | effect | reversibility | observable |
//! |---|---|---|---|---|---|
//! | revoke | `group_membership` | identity = user DN, resource = group DN | delete the user's value from the group's member attribute | reversible | yes |
//! | suspend | `account` | identity = user DN | `openldap`: `pwdAccountLockedTime: 000001010000Z`; `active_directory`: `userAccountControl \| 0x2` | reversible | yes |
//!
//! OpenLDAP's ppolicy enforces the lock only where a password policy with `pwdLockout:
//! TRUE` applies (`ppolicy_default`, or the user's `pwdPolicySubentry`); elsewhere the
//! attribute is written but binds still succeed.
//!
//! LDAP has no sessions to end, so `revoke_sessions` is unsupported, as is every other
//! (kind, grant type): they fail as `Unsupported` before any request. Targets must lie under
//! `base_dn`.
//!
//! The member attribute is detected from the group's object classes: `groupOfNames` and AD's
//! `group` use `member`, `groupOfUniqueNames` uses `uniqueMember` (values are user DNs),
//! `posixGroup` uses `memberUid` (the value is the user's `uid`). A group that is both
//! `posixGroup` and `groupOfNames` (RFC 2307bis) is handled through `member`.
//!
//! # Snapshots
//!
//! - `group_membership`: `{"user", "group", "attribute": "member" | "uniqueMember" |
//!   "memberUid", "value", "member": bool}`; membership is asked of the server with an
//!   equality filter, so DN case and spacing follow the server's matching rules.
//! - `account`, `openldap`: `{"user", "pwdAccountLockedTime": string | null}`.
//! - `account`, `active_directory`: `{"user", "userAccountControl": integer}`.
//!
//! No operational attribute that changes on every write (`modifyTimestamp`, `entryCSN`) is
//! read. A target is [protected](remediation_core::Snapshot::protected) when the user or the
//! group is in `protected_dns`, the group is in `protected_groups`, or the user is a member
//! of a protected group (found with a paged subtree search under `base_dn`).
//!
//! The comparison is by the DN the server returns for the entry, not by the target's
//! spelling: the [canonical id](remediation_core::Snapshot::canonical) of a target is that DN
//! normalised (attribute names and OIDs of the usual naming attributes turned into their short
//! name, so `userid=` and `0.9.2342.19200300.100.1.1=` are `uid=`; values lowercased with
//! insignificant spaces removed, as their case-ignore matching rules compare them). Configured
//! `protected_dns` and `protected_groups` are normalised the same way.
//!
//! # Result codes
//!
//! | code | meaning | connector result |
//! |---|---|---|
//! | 16 noSuchAttribute (on delete) | value already gone | `AlreadyInState` |
//! | 20 attributeOrValueExists (on add) | value already there | `AlreadyInState` |
//! | 65 objectClassViolation | last `member` of a `groupOfNames` | `Permanent`, saying so |
//! | 51 busy, 52 unavailable, connection lost | | `Transient`, tried 3 times in all |
//! | 32 noSuchObject | | `NotFound`, with the server's message |
//! | 50 insufficientAccessRights | | `Forbidden` |
//! | 49 invalidCredentials | | `Unauthenticated` |
//!
//! Rollback restores the snapshotted value: it adds the member value back, deletes
//! `pwdAccountLockedTime` (or puts back an earlier value), or sets `userAccountControl` back.
//! Active Directory writes delete the old `userAccountControl` value and add the new one in
//! one modify, so a concurrent change fails as `Conflict` instead of being overwritten.
//!
//! # Transport
//!
//! `ldaps://` (TLS from the first byte), `ldap://` upgraded with StartTLS (`starttls = true`)
//! before the bind, plain `ldap://`, or `ldapi://` (a local socket). TLS is rustls over ring
//! (`remediation-tls`); the server's certificate is verified against `ca_file` or the system
//! trust store and must name the URL's host; there is no way to skip that check. A certificate
//! that does not verify is a `Permanent` error saying so, never retried. Plain `ldap://` sends
//! the bind password in clear: keep it to loopback.
//!
//! Filters are built with RFC 4515 escaping ([`ldap3::ldap_escape`]); DNs are never built
//! from parts, only passed through as the target names them.

mod config;
mod connector;
mod dn;
mod error;
mod session;

pub use config::{Dialect, LdapConfig};
pub use connector::{ACCOUNTDISABLE, LOCKED_FOREVER, LdapConnector, PERMISSION_MAP, capabilities, grant_type};
pub use error::{LdapConnectorError, classify};

/// The catalog's entry for LDAP directories: `type = "ldap"`, settings [`LdapConfig`].
pub static FACTORY: remediation_core::factory::Factory<LdapConfig> =
    remediation_core::factory::Factory::new("ldap", "LDAP", Some(capabilities), |_id, config, _context| {
        Ok(std::sync::Arc::new(LdapConnector::from_config(config)?))
    });
