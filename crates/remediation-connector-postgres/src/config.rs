//! The connector's configuration and how its password is loaded.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::{Deserialize, Serialize};

use crate::error::PostgresError;

/// Configuration of one PostgreSQL connector.
///
/// ```toml
/// id = "pg-prod"
/// url = "host=db.internal port=5432 user=remediation dbname=app"
/// password_env = "REMEDIATION_PG_PASSWORD"
/// protected_roles = ["break_glass", "app_owner"]
/// connect_timeout_secs = 10
/// ca_file = "/etc/remediation/pg-ca.pem"
/// ```
///
/// TLS follows the connection string's `sslmode`: `prefer` (the default) uses TLS when the
/// server offers it, `require` refuses a server without it, `disable` never uses it. Whenever
/// TLS is used the server's certificate is verified (against `ca_file`, else the system trust
/// store) and must name the host; unlike libpq's `prefer`, an unverifiable certificate is an
/// error, never a silent fall-back to an unchecked connection.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PostgresConfig {
    /// Connector identifier, as actions name it (`pg-prod`).
    pub id: String,
    /// Connection string without a password: either `key=value` pairs
    /// (`host=db port=5432 user=remediation dbname=app`) or a `postgres://user@host/db` URL.
    /// Table privileges are read and changed in this database.
    pub url: String,
    /// Name of an environment variable that holds the password.
    #[serde(default)]
    pub password_env: Option<String>,
    /// Path of a file that holds the password (one trailing newline is ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// The managed connection's sealed secret that holds the password (only in a connection
    /// created with `remediate connections add`).
    #[serde(default)]
    pub password_sealed: Option<String>,
    /// Roles no action may touch, in addition to superusers and the connecting role, which
    /// are always protected. Compared by OID, whatever name or `oid:` a target uses.
    #[serde(default)]
    pub protected_roles: Vec<String>,
    /// Seconds to wait for a connection, and for the health check's `SELECT 1`.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// PEM file of the CA certificate(s) that sign the server's certificate; without it the
    /// system's trust store is used. Applies whenever TLS is used (see `sslmode`).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
}

fn default_connect_timeout() -> u64 {
    10
}

impl PostgresConfig {
    /// A configuration for `id` at `url` with no password and the defaults.
    pub fn new(id: impl Into<String>, url: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            url: url.into(),
            password_env: None,
            password_file: None,
            password_sealed: None,
            protected_roles: Vec::new(),
            connect_timeout_secs: default_connect_timeout(),
            ca_file: None,
        }
    }

    /// Loads the password from `password_env` or `password_file`; `None` when neither is set.
    pub fn load_password(&self) -> Result<Option<SecretString>, PostgresError> {
        if let Some(name) = &self.password_sealed {
            if self.password_env.is_some() || self.password_file.is_some() {
                return Err(PostgresError::TwoPasswordSources { id: self.id.clone() });
            }
            return remediation_core::secret_source::sealed(name)
                .map(Some)
                .map_err(|source| PostgresError::PasswordSealed { id: self.id.clone(), source });
        }
        match (&self.password_env, &self.password_file) {
            (Some(_), Some(_)) => Err(PostgresError::TwoPasswordSources { id: self.id.clone() }),
            (Some(var), None) => match std::env::var(var) {
                Ok(v) => Ok(Some(SecretString::from(v))),
                Err(_) => Err(PostgresError::PasswordEnv { id: self.id.clone(), var: var.clone() }),
            },
            (None, Some(path)) => match std::fs::read_to_string(path) {
                Ok(text) => {
                    let text = text.strip_suffix('\n').unwrap_or(&text);
                    let text = text.strip_suffix('\r').unwrap_or(text);
                    Ok(Some(SecretString::from(text.to_owned())))
                }
                Err(source) => Err(PostgresError::PasswordFile { id: self.id.clone(), path: path.clone(), source }),
            },
            (None, None) => Ok(None),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn the_schema_refuses_unknown_fields_and_documents_each_field() {
        let schema = serde_json::to_value(schemars::schema_for!(PostgresConfig)).unwrap();
        assert_eq!(schema["additionalProperties"], false);
        for field in
            ["id", "url", "password_env", "password_file", "protected_roles", "connect_timeout_secs", "ca_file"]
        {
            let description = schema["properties"][field]["description"].as_str().unwrap_or_default();
            assert!(!description.is_empty(), "{field} has no description");
        }
    }

    #[test]
    fn a_password_file_loses_one_trailing_newline_only() {
        let dir = std::env::temp_dir().join(format!("remediation-pg-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for (text, expected) in [("pw\n", "pw"), ("pw\r\n", "pw"), ("pw", "pw"), ("pw \n\n", "pw \n")] {
            let path = dir.join("password");
            std::fs::write(&path, text).unwrap();
            let config = PostgresConfig { password_file: Some(path), ..PostgresConfig::new("pg", "host=x") };
            assert_eq!(config.load_password().unwrap().unwrap().expose_secret(), expected, "{text:?}");
        }
        let _ = std::fs::remove_dir_all(&dir);
        assert!(PostgresConfig::new("pg", "host=x").load_password().unwrap().is_none());
        let debug = format!(
            "{:?}",
            PostgresConfig { password_env: Some("PG_PW".into()), ..PostgresConfig::new("pg", "host=x") }
        );
        assert!(debug.contains("PG_PW"));
    }
}
