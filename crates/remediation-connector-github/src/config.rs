//! The connector's configuration and where its token comes from.

use remediation_connector_http::SecretSource;
use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::GitHubError;

/// The REST API base URL.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";

/// The REST API version the connector speaks (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// The classic token scopes the connector needs to write: `repo` (collaborators) and
/// `admin:org` (organisation and team memberships).
pub const REQUIRED_SCOPES: [&str; 2] = ["repo", "admin:org"];

/// Configuration of one GitHub connector.
///
/// ```toml
/// [[connectors]]
/// type = "github"
/// id = "github-acme"
/// token = { env = "GITHUB_TOKEN" }
/// protected = ["acme-admin-bot", "acme/infrastructure"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// Where the token is read from: `{ env = "GITHUB_TOKEN" }` or `{ file = "/path" }`;
    /// never the token itself. A classic token with `repo` and `admin:org`, a fine-grained
    /// token or a GitHub App installation token with the matching permissions.
    pub token: SecretSource,
    /// REST API base URL; `https://HOST/api/v3` for GitHub Enterprise Server.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Logins or numeric user ids, organisations, `owner/repo` repositories and `org/team`
    /// teams that no action may touch.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Items per page when listing collaborators and invitations (at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_page_size() -> u32 {
    100
}

impl GitHubConfig {
    /// Reads the token. Errors name the variable or file, never the token.
    pub fn token(&self) -> Result<SecretString, GitHubError> {
        self.token.load().map_err(|source| GitHubError::Token { source })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    fn config(v: serde_json::Value) -> Result<GitHubConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_unknown_fields_and_inline_tokens() {
        let c = config(serde_json::json!({"token": {"env": "GH"}})).unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.page_size, 100);
        assert!(config(serde_json::json!({"token": {"env": "GH"}, "tokn": 1})).is_err());
        let inline = config(serde_json::json!({"token": "ghp_inlineSecret123"})).unwrap_err().to_string();
        assert!(!inline.contains("ghp_inlineSecret123"), "{inline}");
    }

    #[test]
    fn tokens_are_read_trimmed_and_never_quoted() {
        let missing = config(serde_json::json!({"token": {"env": "REMEDIATION_TEST_SURELY_UNSET_VAR"}})).unwrap();
        let e = missing.token().unwrap_err();
        let chain = format!("{e} {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
        assert!(chain.contains("REMEDIATION_TEST_SURELY_UNSET_VAR"), "{chain}");
        let dir = std::env::temp_dir().join(format!("gh-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  ghp_secretvalue123\n").unwrap();
        let c = config(serde_json::json!({"token": {"file": path}})).unwrap();
        assert_eq!(c.token().unwrap().expose_secret(), "ghp_secretvalue123");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
