//! Where a configured secret comes from: an environment variable, a file, or (for a managed
//! connection) the connection's secrets sealed in the store, never the configuration itself.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::HttpError;

/// A secret named in configuration: `{ env = "OKTA_API_TOKEN" }`,
/// `{ file = "/run/secrets/okta-key.pem" }`, or, in a managed connection's settings,
/// `{ sealed = "token" }` (the connection's secret `token`, read through
/// [`remediation_core::secret_source::sealed`] while the connection is built). Surrounding
/// whitespace is trimmed.
///
/// A secret written inline (`token = "00abc..."`) is refused, and the error does not quote
/// it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum SecretSource {
    /// Read from this environment variable.
    Env(String),
    /// Read from this file.
    File(PathBuf),
    /// The managed connection's secret of this name, sealed in the store.
    Sealed(String),
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
            Self::Sealed(name) => {
                // The reason goes into `what`, which the error prints: it says where a sealed
                // secret can be read, and names the secret, never a value.
                return remediation_core::secret_source::sealed(name).map_err(|e| HttpError::Credential {
                    what: format!("sealed secret `{name}`: {e}"),
                    reason: e.to_string(),
                });
            }
        };
        let trimmed = value.trim();
        if trimmed.is_empty() {
            return Err(HttpError::Credential { what, reason: "it is empty".to_owned() });
        }
        Ok(SecretString::from(trimmed.to_owned()))
    }
}

const INLINE: &str = "a secret is never written in the configuration: use { env = \"VARIABLE\" }, { file = \"/path\" } or, in a managed connection, { sealed = \"name\" }";

impl<'de> Deserialize<'de> for SecretSource {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;

        impl<'de> Visitor<'de> for V {
            type Value = SecretSource;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("{ env = \"VARIABLE\" }, { file = \"/path\" } or { sealed = \"name\" }")
            }

            // Anything but a table is refused without echoing it: it may be the secret.
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }

            fn visit_string<E: de::Error>(self, _: String) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }

            fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }

            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }

            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
                Err(E::custom(INLINE))
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let Some(key) = map.next_key::<String>()? else {
                    return Err(de::Error::custom("expected one of `env`, `file` or `sealed`"));
                };
                let source = match key.as_str() {
                    "env" => SecretSource::Env(map.next_value()?),
                    "file" => SecretSource::File(map.next_value()?),
                    "sealed" => SecretSource::Sealed(map.next_value()?),
                    other => return Err(de::Error::unknown_field(other, &["env", "file", "sealed"])),
                };
                if map.next_key::<String>()?.is_some() {
                    return Err(de::Error::custom("name exactly one of `env`, `file` or `sealed`"));
                }
                Ok(source)
            }
        }

        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_parse_and_inline_secrets_are_refused_unquoted() {
        let env: SecretSource = serde_json::from_str(r#"{"env": "OKTA_API_TOKEN"}"#).expect("env");
        assert_eq!(env, SecretSource::Env("OKTA_API_TOKEN".to_owned()));
        let file: SecretSource = serde_json::from_str(r#"{"file": "/run/k.pem"}"#).expect("file");
        assert_eq!(file, SecretSource::File(PathBuf::from("/run/k.pem")));
        for bad in [r#""00inline-secret-value""#, r#"{"env": "A", "file": "b"}"#, r#"{"vault": "x"}"#] {
            let e = serde_json::from_str::<SecretSource>(bad).expect_err(bad).to_string();
            assert!(!e.contains("00inline-secret-value"), "{e}");
        }
    }

    #[test]
    fn files_are_trimmed_and_errors_do_not_quote_content() {
        let dir = std::env::temp_dir().join(format!("remediation-secret-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let p = dir.join("token");
        std::fs::write(&p, "  s3cr3t-value\n").expect("write");
        let s = SecretSource::File(p.clone()).load().expect("load");
        assert_eq!(secrecy::ExposeSecret::expose_secret(&s), "s3cr3t-value");
        std::fs::write(&p, "   \n").expect("write");
        let e = SecretSource::File(p).load().expect_err("empty");
        assert!(e.to_string().contains("token"), "{e}");
        let _ = std::fs::remove_dir_all(dir);
    }
}
