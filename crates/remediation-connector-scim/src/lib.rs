//! SCIM 2.0 connector (RFC 7643, RFC 7644): deactivates users and removes group members at
//! any service provider that speaks SCIM, with optimistic concurrency through ETags.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Target | Reversibility | Request (undo) |
//! |---|---|---|---|---|
//! | `suspend` | `account` | identity = user id or userName | reversible | `PATCH /Users/{id}` `replace active false` (`true`) |
//! | `revoke` | `group_membership` | identity = user id or userName, resource = group id | reversible | `PATCH /Groups/{id}` `remove members[value eq "<user>"]` (`add members [{"value", "type": "User"}]`) |
//!
//! Every write is a PatchOp (`urn:ietf:params:scim:api:messages:2.0:PatchOp`) sent as
//! `application/scim+json` with `If-Match: <ETag>` when the resource has one (`ETag` header or
//! `meta.version`); 412 Precondition Failed (the resource changed since it was read) is a
//! `Conflict`. Both capabilities are observable.
//!
//! # Snapshots
//!
//! - `account`: `{"user", "user_name", "active"}` (`active` absent reads as true);
//! - `group_membership`: `{"user", "user_name", "group", "group_name", "member"}` (`group_name` is
//!   the group's `displayName`; plans name the user and group by these names and their ids),
//!   where `member` comes from listing the
//!   groups the user is in (`GET /Groups?filter=members[value eq "<user>"]`, paged with
//!   `startIndex`/`count`/`totalResults`), so a large group's member list is not fetched; a
//!   service that answers that filter with 400 `invalidFilter` is read through the group's
//!   `members` instead.
//!
//! ETags and `meta` are volatile and never part of a snapshot. A target naming a user or group
//! listed in `protected` is marked protected.
//!
//! A target may name the user by resource `id` or by `userName`: when no user has that id, the
//! connector looks it up with `GET /Users?filter=userName eq "…"` and acts on the `id` found.
//! Protection compares the target's spelling, the user's `id` and its `userName`
//! (case-insensitively, as RFC 7643 defines it) with `protected`; the user's resource `id` is
//! the snapshot's [canonical id](remediation_core::Snapshot::canonical).
//!
//! # Finding a person's account
//!
//! [`find_account`](remediation_core::Connector::find_account) lists
//! `GET /Users?filter=userName eq "<key>"` (the key quoted, backslashes and quotes escaped)
//! and keeps a user only when exactly one listed `userName` equals the key, case-insensitively;
//! it reads that user back by id and compares again. A link is read as a resource id first,
//! then as a `userName`. `emails` never finds anyone. The account's id is the resource id, its
//! status `active` or `inactive`, its groups the ids `GET /Groups?filter=members[value eq
//! "<id>"]` lists (unknown when the service cannot filter by member).
//!
//! # Errors, throttling, health
//!
//! SCIM error bodies (`{"schemas": [...Error], "status": "404", "scimType", "detail"}`) keep
//! `scimType: detail` as the message; 429 (and 503/504) with `Retry-After` are retried after
//! the time asked for. `health` and `check_permissions` read `/ServiceProviderConfig`: a
//! service without PATCH support is reported as missing it (a bearer token carries no
//! inspectable rights).
//!
//! # Configuration
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config: remediation_connector_scim::ScimConfig = toml::from_str(r#"
//!     id = "scim-hr"
//!     base_url = "https://scim.example.com/scim/v2"
//!     token = { env = "SCIM_TOKEN" }           # or { file = "/run/secrets/scim-token" }
//!     protected = ["2819c223-7f76-453a-919d-413861904646"]
//! "#)?;
//! assert_eq!(config.page_size, 100);
//! # Ok(())
//! # }
//! ```

mod config;
mod connector;
mod error;
mod state;
mod wire;

pub use config::ScimConfig;
pub use connector::{PERMISSION_MAP, ScimConnector, capabilities};
pub use error::ScimError;
pub use state::grant_type;

/// The catalog's entry for SCIM 2.0 service providers: `type = "scim"`, settings
/// [`ScimConfig`].
pub static FACTORY: remediation_core::factory::Factory<ScimConfig> =
    remediation_core::factory::Factory::new("scim", "SCIM 2.0", Some(capabilities), |_id, config, _context| {
        Ok(std::sync::Arc::new(ScimConnector::new(&config)?))
    });
