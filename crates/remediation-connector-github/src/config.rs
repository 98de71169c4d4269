//! The connector's configuration and where its token comes from.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::GitHubError;

/// The REST API base URL.
pub const DEFAULT_API_BASE: &str = "https://api.github.com";

/// The REST API version the connector speaks (`X-GitHub-Api-Version`).
pub const API_VERSION: &str = "2022-11-28";

/// The classic token scopes the connector needs to write: `repo` (collaborators) and
/// `admin:org` (organisation and team memberships).
pub const REQUIRED_SCOPES: [&str; 2] = ["repo", "admin:org"];

/// Configuration of one GitHub connector. Name exactly one of `token_env` and `token_file`.
///
/// ```toml
/// [[connectors]]
/// type = "github"
/// id = "github-acme"
/// token_env = "GITHUB_TOKEN"
/// protected = ["acme-admin-bot", "acme/infrastructure"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GitHubConfig {
    /// Environment variable holding the token (a classic token with `repo` and `admin:org`,
    /// a fine-grained token or a GitHub App installation token with the matching permissions).
    #[serde(default)]
    pub token_env: Option<String>,
    /// File holding the token (surrounding whitespace ignored); readable only by the service.
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// REST API base URL; `https://HOST/api/v3` for GitHub Enterprise Server.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// Logins, organisations, `owner/repo` repositories and `org/team` teams that no action may
    /// touch.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Items per page when listing collaborators and invitations (at most 100).
    #[serde(default = "default_page_size")]
    pub page_size: u32,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn default_page_size() -> u32 {
    100
}

impl GitHubConfig {
    /// Reads the token from the variable or file the configuration names. Errors name the
    /// variable or file, never the token.
    pub fn token(&self) -> Result<SecretString, GitHubError> {
        let raw = match (&self.token_env, &self.token_file) {
            (Some(var), None) => {
                std::env::var(var).map(SecretString::from).map_err(|_| GitHubError::TokenEnv { var: var.clone() })?
            }
            (None, Some(path)) => std::fs::read_to_string(path)
                .map(SecretString::from)
                .map_err(|source| GitHubError::TokenFile { path: path.clone(), source })?,
            _ => return Err(GitHubError::Config("name exactly one of `token_env` and `token_file`".to_owned())),
        };
        let token = raw.expose_secret().trim();
        if token.is_empty() {
            return Err(GitHubError::Config("the configured token is empty".to_owned()));
        }
        Ok(SecretString::from(token.to_owned()))
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn config(v: serde_json::Value) -> Result<GitHubConfig, serde_json::Error> {
        serde_json::from_value(v)
    }

    #[test]
    fn defaults_and_unknown_fields() {
        let c = config(serde_json::json!({"token_env": "GH"})).unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert_eq!(c.page_size, 100);
        assert!(config(serde_json::json!({"token": "ghp_x"})).is_err());
    }

    #[test]
    fn exactly_one_token_source_and_no_token_in_errors() {
        let both = config(serde_json::json!({"token_env": "A", "token_file": "/b"})).unwrap();
        assert!(matches!(both.token(), Err(GitHubError::Config(_))));
        let none = config(serde_json::json!({})).unwrap();
        assert!(matches!(none.token(), Err(GitHubError::Config(_))));
        let missing = config(serde_json::json!({"token_env": "REMEDIATION_TEST_SURELY_UNSET_VAR"})).unwrap();
        assert!(missing.token().unwrap_err().to_string().contains("REMEDIATION_TEST_SURELY_UNSET_VAR"));
        let dir = std::env::temp_dir().join(format!("gh-token-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("token");
        std::fs::write(&path, "  ghp_secretvalue123\n").unwrap();
        let c = config(serde_json::json!({"token_file": path})).unwrap();
        assert_eq!(c.token().unwrap().expose_secret(), "ghp_secretvalue123");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
