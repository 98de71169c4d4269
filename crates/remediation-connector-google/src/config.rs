//! The connector's configuration and the service-account key it names.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

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
    /// Users and groups (by email) that no action may touch: break-glass accounts, the
    /// administrators' group. The `admin` above is always protected.
    #[serde(default)]
    pub protected: Vec<String>,
    /// Treat super administrators (`isAdmin`) as protected.
    #[serde(default = "yes")]
    pub protect_admins: bool,
}

fn default_api_base() -> String {
    DEFAULT_API_BASE.to_owned()
}

fn yes() -> bool {
    true
}

/// The fields of a service-account JSON key the connector uses.
#[derive(Debug, Clone, Deserialize)]
pub struct ServiceAccountKey {
    /// The service account's email: the JWT `iss`.
    pub client_email: String,
    /// The key's id: the JWT header `kid`.
    pub private_key_id: String,
    /// The PEM-encoded RSA private key.
    pub private_key: SecretString,
    /// The token endpoint: the JWT `aud`.
    pub token_uri: String,
}

impl ServiceAccountKey {
    /// Reads and parses a key file. Errors name the file and the missing field, never the key.
    pub fn load(path: &Path) -> Result<Self, GoogleError> {
        let text = std::fs::read_to_string(path)
            .map(SecretString::from)
            .map_err(|source| GoogleError::ReadKey { path: path.to_owned(), source })?;
        Self::parse(&text, path)
    }

    fn parse(text: &SecretString, path: &Path) -> Result<Self, GoogleError> {
        use secrecy::ExposeSecret;
        // serde_json's messages quote at most a type or field name, never an input value;
        // classify() keeps only the category and position to be sure.
        serde_json::from_str::<Self>(text.expose_secret()).map_err(|e| GoogleError::InvalidKey {
            path: path.to_owned(),
            reason: match e.classify() {
                serde_json::error::Category::Data => {
                    let msg = e.to_string();
                    if msg.starts_with("missing field") {
                        msg.split(" at line").next().unwrap_or("missing field").to_owned()
                    } else {
                        "a field has the wrong type".to_owned()
                    }
                }
                _ => format!("not valid JSON (line {})", e.line()),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_and_unknown_fields() {
        let c: GoogleConfig =
            serde_json::from_value(serde_json::json!({"credentials_file": "/k.json", "admin": "a@example.com"})).unwrap();
        assert_eq!(c.api_base, DEFAULT_API_BASE);
        assert!(c.protect_admins);
        assert!(c.token_url.is_none());
        let bad = serde_json::from_value::<GoogleConfig>(
            serde_json::json!({"credentials_file": "/k.json", "admin": "a", "private_key": "x"}),
        );
        assert!(bad.is_err());
    }

    #[test]
    fn key_errors_never_quote_the_key() {
        let path = Path::new("/k.json");
        let text = SecretString::from(r#"{"client_email": "sa@p.iam.gserviceaccount.com", "private_key": "SECRET-PEM"}"#);
        let e = ServiceAccountKey::parse(&text, path).unwrap_err().to_string();
        assert!(e.contains("private_key_id"), "{e}");
        assert!(!e.contains("SECRET-PEM"), "{e}");
        let text = SecretString::from(r#"{"client_email": 1, "private_key": "SECRET-PEM"}"#);
        let e = ServiceAccountKey::parse(&text, path).unwrap_err().to_string();
        assert!(!e.contains("SECRET-PEM"), "{e}");
        let ok = SecretString::from(
            r#"{"type": "service_account", "client_email": "sa@p.iam.gserviceaccount.com", "private_key_id": "k1",
                "private_key": "SECRET-PEM", "token_uri": "https://oauth2.googleapis.com/token"}"#,
        );
        let key = ServiceAccountKey::parse(&ok, path).unwrap();
        assert!(!format!("{key:?}").contains("SECRET-PEM"));
    }
}
