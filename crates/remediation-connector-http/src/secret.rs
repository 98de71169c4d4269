//! Where a configured secret comes from: an environment variable or a file, never the
//! configuration file itself.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::HttpError;

/// A secret named in configuration: `{ env = "OKTA_API_TOKEN" }` or
/// `{ file = "/run/secrets/okta-key.pem" }`. Surrounding whitespace is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(PathBuf),
}

impl SecretSource {
    /// Reads the secret. Errors name the variable or file, never the value.
    pub fn load(&self) -> Result<SecretString, HttpError> {
        let (what, value) = match self {
            Self::Env(name) => (
                format!("environment variable {name}"),
                std::env::var(name).map_err(|e| HttpError::Credential {
                    what: format!("environment variable {name}"),
                    reason: e.to_string(),
                })?,
            ),
            Self::File(path) => (
                format!("file {}", path.display()),
                std::fs::read_to_string(path).map_err(|e| HttpError::Credential {
                    what: format!("file {}", path.display()),
                    reason: e.kind().to_string(),
                })?,
            ),
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(HttpError::Credential { what, reason: "it is empty".to_owned() });
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}
