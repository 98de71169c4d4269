//! Microsoft Entra ID connector over Microsoft Graph v1.0: removes directory roles, group
//! memberships and app roles, disables accounts and revokes sign-in sessions, with
//! application (app-only) permissions.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Target | Reversibility | Graph request (undo) |
//! |---|---|---|---|---|
//! | `revoke` | `directory_role` | identity = principal id, resource = role definition id, grant = directory scope id (default `/`) | reversible (the undo creates a new assignment id) | `DELETE /roleManagement/directory/roleAssignments/{id}` (`POST .../roleAssignments`) |
//! | `revoke` | `group_membership` | identity = user id, resource = group id | reversible; dynamic groups are refused | `DELETE /groups/{g}/members/{u}/$ref` (`POST /groups/{g}/members/$ref`) |
//! | `revoke` | `app_role_assignment` | identity = user id, resource = resource service principal id, grant = app role id (default access when omitted) | reversible (new assignment id) | `DELETE /servicePrincipals/{r}/appRoleAssignedTo/{id}` (`POST .../appRoleAssignedTo`) |
//! | `suspend` | `account` | identity = user id or user principal name | reversible; the plan warns for users synchronised from on-premises AD | `PATCH /users/{id}` `accountEnabled: false` (`true`) |
//! | `revoke_sessions` | `account` | identity = user id | irreversible | `POST /users/{id}/revokeSignInSessions` |
//!
//! Force password reset is not offered: application permissions cannot set it. Every
//! capability is observable: `verify` reads the target back, up to five times two seconds
//! apart, because Graph replicates writes with a delay (the wait is injectable with
//! [`EntraConnector::with_sleeper`]).
//!
//! # Snapshots
//!
//! Normalised states, without ids that change on undo and without ETags:
//!
//! - `account`: `{"user", "user_principal_name", "account_enabled", "on_premises_sync_enabled",
//!   "sign_in_sessions_valid_from"}`. A `revoke_sessions` plan cannot know the time Graph will
//!   stamp, so its expected after-state says `"sign_in_sessions_valid_from": {"later_than":
//!   <before>}` and `verify` accepts any later timestamp; executing again once the timestamp
//!   has moved past the before-state answers `already_in_state`.
//! - `group_membership`: `{"user", "group", "dynamic", "member"}`.
//! - `directory_role`: `{"principal", "role_definition", "directory_scope", "assigned"}`, and
//!   `"ends"` (RFC 3339) when the assignment is time-bound (PIM or expiring), read from its
//!   `roleAssignmentScheduleInstances` entry. The undo cannot restore a schedule, so the plan
//!   of such a revocation says so and its rollback is refused rather than recreating the
//!   assignment as permanent.
//! - `app_role_assignment`: `{"principal", "resource", "app_role", "assigned"}`.
//!
//! A target naming a principal (or group) listed in `protected` is marked protected. The
//! comparison uses what Graph returns for the target, not its spelling: the object id and, for
//! users, the user principal name, so a UPN or an object id of a protected account (in any
//! case) is protected whichever of the two the configuration lists. The snapshot's
//! [canonical id](remediation_core::Snapshot::canonical) is the principal's object id (and the
//! group's, for memberships), lower-cased.
//!
//! # Finding a person's account
//!
//! [`find_account`](remediation_core::Connector::find_account) reads
//! `GET /users/{key}?$select=id,userPrincipalName,accountEnabled,displayName` and keeps the
//! user only when its userPrincipalName equals the key, case-insensitively (for a link, also
//! when its object id does): never `mail` or `otherMails`, which the user may add. The
//! account's id is the object id, its status `enabled` or `disabled`, its groups the ids of
//! the groups `GET /users/{id}/memberOf` lists (directory roles and administrative units left
//! out).
//!
//! # Permissions
//!
//! [`PERMISSION_MAP`] lists every Graph call and the application permission it needs:
//! User.Read.All, GroupMember.Read.All and Directory.Read.All (the directory-role and app-role
//! reads) to read; User.EnableDisableAccount.All, User.RevokeSessions.All,
//! GroupMember.ReadWrite.All, RoleManagement.ReadWrite.Directory and
//! AppRoleAssignment.ReadWrite.All to write. [`check_permissions`](remediation_core::Connector::check_permissions)
//! decodes the access token's `roles` claim and judges each (a broader permission such as
//! User.ReadWrite.All counts); a token that is not a readable JWT leaves them unknown.
//!
//! # Throttling and paging
//!
//! 429, and 503/504 with `Retry-After`, are retried after the time Graph asks for (backoff
//! without it), through `remediation-connector-http`. Listings follow `@odata.nextLink` with
//! `$top=999`, except app role assignments, which are listed without `$top`: Graph may cut a
//! `$filter` + `$top` listing of them to one page with no next link. Errors keep Graph's `code: message` and its `request-id`.
//!
//! # Configuration
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: remediation_connector_entra::EntraConfig = toml::from_str(r#"
//!     id = "entra-prod"
//!     tenant_id = "11111111-2222-4333-8444-555555555555"
//!     client_id = "c11e0000-0000-4000-8000-00000000c1d0"
//!     ## or: credential = { type = "certificate", private_key = { file = "/run/secrets/entra.pem" },
//!     ##                     thumbprint = "84E05C1D98BCE3A5421D225B140B36E86A3D5534" }
//!     credential = { type = "client_secret", secret = { env = "ENTRA_CLIENT_SECRET" } }
//!     ## sovereign clouds: login_url = "https://login.microsoftonline.us",
//!     ##                   graph_url = "https://graph.microsoft.us/v1.0"
//!     protected = ["b4ea0000-0000-4000-8000-00000000b4ea"]
//! "#)?;
//! assert_eq!(config.scope(), "https://graph.microsoft.com/.default");
//! # Ok(())
//! # }
//! ```
//!
//! [`EntraConnector::new`] reads the credential from its environment variable or file and
//! makes no request until used.

mod config;
mod connector;
mod error;
mod graph;
mod permissions;
mod state;

pub use config::{Credential, DEFAULT_GRAPH_URL, DEFAULT_LOGIN_URL, EntraConfig};
pub use connector::{EntraConnector, capabilities};
pub use error::EntraError;
pub use permissions::PERMISSION_MAP;
pub use state::{DEFAULT_APP_ROLE, TENANT_SCOPE, grant_type};

/// The catalog's entry for Microsoft Entra ID: `type = "entra"`, settings [`EntraConfig`].
pub static FACTORY: remediation_core::factory::Factory<EntraConfig> = remediation_core::factory::Factory::new(
    "entra",
    "Microsoft Entra ID",
    Some(capabilities),
    |_id, config, _context| Ok(std::sync::Arc::new(EntraConnector::new(&config)?)),
);
