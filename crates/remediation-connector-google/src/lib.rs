//! A [`Connector`](remediation_core::Connector) for Google Workspace, over the Admin SDK
//! Directory API, acting as a Workspace administrator through a service account with
//! domain-wide delegation.
//!
//! # Capabilities
//!
//! | Kind | Grant type | Reversibility | Observable | Provider calls |
//! |---|---|---|---|---|
//! | `revoke` | `group_membership` | reversible | yes | `GET`/`DELETE /groups/{g}/members/{m}`; undo `POST /groups/{g}/members` with the role and delivery settings |
//! | `suspend` | `account` | reversible | yes | `PATCH /users/{u}` `{"suspended": true}`; undo with the snapshotted value |
//! | `revoke_sessions` | `account` | irreversible | no | `POST /users/{u}/signOut` |
//! | `force_password_reset` | `account` | reversible | yes | `PATCH /users/{u}` `{"changePasswordAtNextLogin": true}`; undo with the snapshotted value |
//!
//! A `group_membership` target names the member (email or id) as `identity` and the group's
//! email as `resource`; an `account` target names the user (primary email, alias or id).
//! Sign-outs leave no state the API can read back, so their snapshot does not change and the
//! connector remembers, per process, which idempotency keys it has already signed out.
//!
//! # Finding a person's account
//!
//! [`find_account`](remediation_core::Connector::find_account) reads `users.get` with the
//! key and keeps the user only when its `primaryEmail` or one of its `aliases` (set by the
//! domain's admins) equals the key, case-insensitively (for a link, also when its numeric id
//! does): never `recoveryEmail` or another address the user sets. The account's id is the
//! numeric user id, its status `active` or `suspended`; groups and sessions are not reported
//! (the connector lists no user's groups).
//!
//! # Configuration
//!
//! ```toml
//! [[connectors]]
//! type = "google"
//! id = "google-prod"
//! credentials_file = "/etc/remediation/google-sa.json"  # service-account JSON key
//! admin = "remediation-admin@example.com"              # the administrator to act as
//! protected = ["break-glass@example.com"]              # never touched
//! # api_base = "https://admin.googleapis.com/admin/directory/v1"
//! # token_url = "https://oauth2.googleapis.com/token"  # default: the key's token_uri
//! # protect_admins = true                              # super admins are protected
//! ```
//!
//! Protection follows the user, not the key a target names it by: the Directory API accepts a
//! primary email, an alias or the numeric id, so an `account` target is protected when any
//! name `users.get` returns for it (id, primary email, aliases) is in `protected`, and a
//! `group_membership` target when the member's key, any name `members.get` returns for it,
//! or (for a user member, read with `users.get` as well) any name of the user is. Snapshots
//! name the user's id as their [canonical id](remediation_core::Snapshot::canonical); a
//! member that is a group or an outside address has none.
//!
//! The schema is [`GoogleConfig`]. Grant the service account domain-wide delegation for
//! the scopes in [`SCOPES`]. The private key is read from the key file into secret memory
//! and appears in no `Debug` output, error, log line or audit record.
//!
//! # Example
//!
//! ```
//! use remediation_connector_google::{GoogleConfig, GoogleConnector};
//! use remediation_core::Connector;
//! # use remediation_testkit::fakes::google::TEST_PRIVATE_KEY as PEM;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let dir = tempfile::tempdir()?;
//! let key = dir.path().join("sa.json");
//! std::fs::write(&key, serde_json::json!({
//!     "type": "service_account",
//!     "client_email": "remediation@my-project.iam.gserviceaccount.com",
//!     "private_key_id": "0123abcd",
//!     "private_key": PEM,
//!     "token_uri": "https://oauth2.googleapis.com/token",
//! }).to_string())?;
//! let config: GoogleConfig = serde_json::from_value(serde_json::json!({
//!     "credentials_file": key,
//!     "admin": "remediation-admin@example.com",
//! }))?;
//! let google = GoogleConnector::new("google-prod", &config)?;
//! assert_eq!(google.capabilities().len(), 4);
//! assert!(!format!("{google:?}").contains("PRIVATE KEY"));
//! # Ok(())
//! # }
//! ```
//!
//! # Errors
//!
//! Google's error body `{"error": {"code", "message", "errors": [{"reason"}]}}` is kept in
//! the error message. A 403 with reason `userRateLimitExceeded` or `quotaExceeded`, a 429
//! and a 503 are throttling (retried with backoff); any other 403 is `Forbidden`.

mod api;
mod config;
mod connector;
mod error;
mod state;

pub use config::{DEFAULT_API_BASE, GoogleConfig, SCOPES};
pub use connector::{GoogleConnector, PERMISSION_MAP, capabilities};
pub use error::GoogleError;

/// The catalog's entry for Google Workspace: `type = "google"`, settings [`GoogleConfig`] beside the
/// connector's `id`.
pub static FACTORY: remediation_core::factory::Factory<GoogleConfig> = remediation_core::factory::Factory::named(
    "google",
    "Google Workspace",
    Some(capabilities),
    |id, config, _context| Ok(std::sync::Arc::new(GoogleConnector::new(id, &config)?)),
);
