//! The connector's configuration: the service's base URL and its bearer token.

use remediation_connector_http::SecretSource;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Configuration of one SCIM 2.0 service provider.
///
/// ```toml
/// id = "scim-hr"
/// base_url = "https://scim.example.com/scim/v2"
/// token = { env = "SCIM_TOKEN" }
/// protected = ["2819c223-7f76-453a-919d-413861904646"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ScimConfig {
    /// Connector id used in actions (`scim-hr`).
    pub id: String,
    /// The service's SCIM base URL, up to and including the version (`.../scim/v2`).
    pub base_url: String,
    /// The bearer token.
    pub token: SecretSource,
    /// Users (by resource id or `userName`) and groups (by id) no action may touch
    /// (break-glass accounts, admin groups); snapshots of targets resolving to them are marked
    /// protected.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Resources per page when listing (`count`); services may return fewer.
    #[serde(default = "default_page_size")]
    pub page_size: u64,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_page_size() -> u64 {
    100
}
