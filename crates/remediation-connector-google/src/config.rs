//! The connector's configuration and the service-account key it names.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use remediation_connector_http::ServiceAccountKey;

use crate::error::GoogleError;

/// The Directory API base URL.
pub const DEFAULT_API_BASE: &str = "https://admin.googleapis.com/admin/directory/v1";

/// The OAuth scopes the connector asks for: users (suspend, password flag), user security
/// (sign-out), group members (remove, restore) and groups read-only (tell a missing group
/// from a missing membership).
pub const SCOPES: [&str; 4] = [
    "https://www.googleapis.com/auth/admin.directory.user",
    "https://www.googleapis.com/auth/admin.directory.user.security",
    "https://www.googleapis.com/auth/admin.directory.group.member",
    "https://www.googleapis.com/auth/admin.directory.group.readonly",
];

/// Configuration of one Google Workspace connector.
///
/// ```toml
/// [[connectors]]
/// type = "google"
/// id = "google-prod"
/// credentials_file = "/etc/remediation/google-sa.json"
/// admin = "remediation-admin@example.com"
/// protected = ["break-glass@example.com"]
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoogleConfig {
    /// The service-account JSON key file, as downloaded from the Cloud console. The service
    /// account needs domain-wide delegation for the scopes in [`SCOPES`]. Keep the file
    /// readable only by the service; the private key is held as a secret and never logged.
    pub credentials_file: PathBuf,
    /// The Workspace administrator the service account acts as (the JWT `sub`).
    pub admin: String,
    /// Directory API base URL; change it only for a proxy or a test server.
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// OAuth token endpoint; defaults to the key file's `token_uri`.
    #[serde(default)]
    pub token_url: Option<String>,
    /// Users and groups (by primary email, alias or id) that no action may touch: break-glass
    /// accounts, the administrators' group. A target naming the user by any other of its
    /// names is protected too. The `admin` above is always protected.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Treat super administrators (`isAdmin`) as protected.
    #[serde(default = "yes")]
    pub protect_admins: bool,
    /// Accept an `http://` URL on a host other than loopback. Credentials and every answer
    /// then cross the network unencrypted, so a warning is logged; leave it off (the default)
    /// unless the network path is trusted.
    #[serde(default)]
    pub allow_insecure_http: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn yes() -> bool {
    true
}

/// Reads the service-account key file named in the configuration. Errors name the file,
/// never its content.
pub(crate) fn load_key(path: &Path) -> Result<ServiceAccountKey, GoogleError> {
    let text = std::fs::read_to_string(path)
        .map(SecretString::from)
        .map_err(|source| GoogleError::ReadKey { path: path.to_owned(), source })?;
    ServiceAccountKey::from_json(&text).map_err(|source| GoogleError::InvalidKey { path: path.to_owned(), source })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: GoogleConfig =
            serde_json::from_value(serde_json::json!({"credentials_file": "/k.json", "admin": "a@example.com"}))
                .unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert!(c.protect_admins);
        assert!(c.token_url.is_none());
        let bad = serde_json::from_value::<GoogleConfig>(
            serde_json::json!({"credentials_file": "/k.json", "admin": "a", "private_key": "x"}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn key_errors_name_the_file_and_never_quote_the_key() {
        let dir = std::env::temp_dir().join(format!("google-key-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("key.json");
        std::fs::write(&path, r#"{"client_email": "sa@p.iam.gserviceaccount.com", "private_key": "SECRET-PEM"}"#)
            .unwrap();
        let e = load_key(&path).unwrap_err();
        let text = format!("{e} {e:?} {}", std::error::Error::source(&e).map(ToString::to_string).unwrap_or_default());
        assert!(text.contains("key.json"), "{text}");
        assert!(!text.contains("SECRET-PEM"), "{text}");
        let missing = load_key(&dir.join("absent.json")).unwrap_err();
        assert!(matches!(missing, GoogleError::ReadKey { .. }));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
