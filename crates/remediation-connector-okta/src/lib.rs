//! Okta connector: revokes group memberships and app assignments, suspends users, ends their
//! sessions and expires their passwords through the Okta management API (`https://{org}/api/v1`).
//!
//! It authenticates with an API token (`SSWS`) or as an API service app (OAuth 2.0 client
//! credentials with a `private_key_jwt` client assertion at `/oauth2/v1/token`, scopes
//! `okta.users.manage okta.groups.manage okta.apps.manage okta.logs.read`). Rate limits are
//! waited out from `X-Rate-Limit-Reset` measured against the response's `Date`; listings
//! follow `Link: rel="next"`; every outcome carries Okta's `X-Okta-Request-Id`s.
//!
//! # Capabilities
//!
//! | kind | grant type | target | change | reversibility |
//! |---|---|---|---|---|
//! | revoke | `group_membership` | identity = user, resource = group id | `DELETE /groups/{g}/users/{u}`; undo `PUT` | reversible |
//! | revoke | `app_assignment` | identity = user, resource = app id | `DELETE /apps/{a}/users/{u}?sendEmail=false`; undo re-assigns with the snapshotted profile | lossy: app credentials are not restored |
//! | suspend | `account` | identity = user | `POST /users/{u}/lifecycle/suspend` (only from ACTIVE); undo `unsuspend` | reversible |
//! | revoke_sessions | `account` | identity = user | `DELETE /users/{u}/sessions?oauthTokens=true` | irreversible |
//! | force_password_reset | `account` | identity = user | `POST /users/{u}/lifecycle/expire_password` | irreversible |
//!
//! A target's identity may be the user's `00u…` id, login or login shortname: every read
//! resolves it first with `GET /users/{idOrLogin}`, and every later request (the group, app,
//! sessions and lifecycle paths above) names the `00u…` id Okta returned. Users listed in
//! `protected` (by id or login) are compared by that id and login, case-insensitively, so no
//! other name of a protected user gets through; `execute` refuses them as well. The
//! snapshot's [canonical id](remediation_core::Snapshot::canonical) is the `00u…` id.
//!
//! [`find_account`](remediation_core::Connector::find_account) reads `GET /users/{key}` and
//! keeps the answer only when its `profile.login` equals the key, case-insensitively (for a
//! link, also when its `00u…` id does): never `profile.email` or `secondEmail`, which the user
//! may set, nor the login shortname Okta also resolves. The account's groups are the ids
//! `GET /users/{id}/groups` lists; its sessions are not counted (the API does not show them).
//!
//! Deactivation is never offered: it deprovisions every app and cannot be undone; suspend
//! instead. Group memberships of `APP_GROUP`s and group-scoped app assignments are refused
//! with the reason, since Okta does not own them.
//!
//! Snapshots: `group_membership` is `{user, group, member, group_type?}` (found by paging
//! the user's groups); `app_assignment` is `{user, app, assigned, scope?, profile?}` (the
//! app user without credentials); `account` is `{user, status, signed_in_since_last_clear}`,
//! the last read from the System Log (latest of `user.session.start`, `user.session.end`
//! and `user.session.clear` within `session_log_days`), which makes session revocation
//! observable. The System Log lags by seconds; verification against a real org may need a
//! retry.
//!
//! # Configuration
//!
//! An API token read from the environment, or a service app whose private key is in a file
//! (secrets are never written in the configuration itself):
//!
//! ```
//! use remediation_connector_okta::{OktaAuth, OktaConfig};
//!
//! let token: OktaConfig = toml::from_str(r#"
//!     id = "okta-prod"
//!     org_url = "https://example.okta.com"
//!     auth = { method = "ssws", token = { env = "OKTA_API_TOKEN" } }
//!     protected = ["breakglass@example.com"]
//! "#)?;
//! assert_eq!(token.page_size, 200);
//!
//! let service_app: OktaConfig = toml::from_str(r#"
//!     id = "okta-prod"
//!     org_url = "https://example.okta.com"
//!     max_retry_wait_secs = 60
//!
//!     [auth]
//!     method = "private_key_jwt"
//!     client_id = "0oa1b2c3d4e5f6g7h8i9"
//!     key_id = "remediation-2026"
//!     private_key = { file = "/etc/remediation/okta-key.pem" }
//! "#)?;
//! assert!(matches!(service_app.auth, OktaAuth::PrivateKeyJwt { .. }));
//! # Ok::<(), toml::de::Error>(())
//! ```

mod config;
mod connector;
mod error;

pub use config::{DEFAULT_SCOPES, OktaAuth, OktaConfig};
pub use connector::{
    ACCOUNT, APP_ASSIGNMENT, GROUP_MEMBERSHIP, OktaConnector, OktaParts, PERMISSION_MAP, capabilities, parse_okta_error,
};
pub use error::OktaError;

/// The catalog's entry for Okta: `type = "okta"`, settings [`OktaConfig`]; the connector uses
/// the engine's clock.
pub static FACTORY: remediation_core::factory::Factory<OktaConfig> =
    remediation_core::factory::Factory::new("okta", "Okta", Some(capabilities), |_id, config, context| {
        let parts = OktaParts { clock: context.clock.clone(), ..OktaParts::default() };
        Ok(std::sync::Arc::new(OktaConnector::new(&config, parts)?))
    });
