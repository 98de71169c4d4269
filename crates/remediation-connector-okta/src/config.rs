//! The Okta connector's configuration.

use remediation_connector_http::SecretSource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Scopes a service app needs: manage users, groups and app assignments, and read the
/// System Log (where session sign-ins and clears are observed).
pub const DEFAULT_SCOPES: &[&str] = &["okta.users.manage", "okta.groups.manage", "okta.apps.manage", "okta.logs.read"];

/// One Okta org.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OktaConfig {
    /// Connector id used in actions (`okta-prod`).
    pub id: String,
    /// The org's URL, `https://{org}` (`https://example.okta.com`); the management API is
    /// under `/api/v1` and the token endpoint at `/oauth2/v1/token`.
    pub org_url: String,
    /// How the connector authenticates.
    pub auth: OktaAuth,
    /// Items per page for a listing that takes `limit` (Okta allows up to 200 for most). No call
    /// the connector makes takes one today: the user's groups are read without it, as Okta's
    /// listUserGroups defines no query parameters.
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Pages read at most when searching a listing; beyond it the search fails rather than
    /// guessing.
    #[serde(default = "default_max_pages")]
    pub max_pages: u32,
    /// Timeout of one request, in seconds.
    #[serde(default = "default_timeout")]
    pub request_timeout_secs: u64,
    /// The longest rate-limit wait the connector sits out, in seconds; a longer one is
    /// reported as throttled so the engine can reschedule.
    #[serde(default = "default_max_wait")]
    pub max_retry_wait_secs: u64,
    /// How far back the System Log is read for sign-ins and session clears, in days (Okta
    /// keeps 90).
    #[serde(default = "default_log_days")]
    pub session_log_days: u32,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
    /// Users no action may touch (break-glass accounts), by `00u…` id or login. Each target
    /// is resolved to the user Okta stores and compared by its id and login, so a login
    /// shortname or another spelling of a protected user is protected too.
    #[serde(default)]
    pub protected: Vec<String>,
}

/// How the connector authenticates to Okta.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "method", rename_all = "snake_case", deny_unknown_fields)]
pub enum OktaAuth {
    /// An API token, sent as `Authorization: SSWS <token>`. It acts with its creator's admin
    /// roles.
    Ssws {
        /// Where the token is read from.
        token: SecretSource,
    },
    /// An API service app: OAuth 2.0 client credentials at `/oauth2/v1/token` with a
    /// `private_key_jwt` client assertion signed by the app's RSA key.
    PrivateKeyJwt {
        /// The service app's client id.
        client_id: String,
        /// The key id (`kid`) registered with the app's public key.
        #[serde(default)]
        key_id: Option<String>,
        /// Where the PEM private key is read from.
        private_key: SecretSource,
        /// Scopes to request; defaults to [`DEFAULT_SCOPES`].
        #[serde(default = "default_scopes")]
        scopes: Vec<String>,
    },
}

fn default_page_size() -> u32 {
    200
}

fn default_max_pages() -> u32 {
    50
}

fn default_timeout() -> u64 {
    30
}

fn default_max_wait() -> u64 {
    120
}

fn default_log_days() -> u32 {
    90
}

fn default_scopes() -> Vec<String> {
    DEFAULT_SCOPES.iter().map(|s| (*s).to_owned()).collect()
}
