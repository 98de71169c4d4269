//! Where a configured secret comes from: an environment variable or a file, never the
//! configuration file itself.

use std::path::PathBuf;

use schemars::JsonSchema;
use secrecy::SecretString;
use serde::Deserialize;

use crate::HttpError;

/// A secret named in configuration: `{ env = "VAR" }` or `{ file = "/run/secrets/x" }`.
/// A file's trailing newline is dropped. Neither the value nor a read error quotes the
/// secret.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged, deny_unknown_fields)]
pub enum SecretRef {
    /// Read from this environment variable.
    Env {
        /// The variable's name.
        env: String,
    },
    /// Read from this file.
    File {
        /// The file's path.
        file: PathBuf,
    },
}

impl SecretRef {
    /// Reads the secret now.
    pub fn load(&self) -> Result<SecretString, HttpError> {
        match self {
            Self::Env { env } => match std::env::var(env) {
                Ok(v) if !v.is_empty() => Ok(SecretString::from(v)),
                Ok(_) => Err(HttpError::Credential { what: format!("environment variable {env}"), reason: "is empty".into() }),
                Err(_) => Err(HttpError::Credential { what: format!("environment variable {env}"), reason: "is not set".into() }),
            },
            Self::File { file } => match std::fs::read_to_string(file) {
                Ok(v) => {
                    let v = v.trim_end_matches(['\n', '\r']);
                    if v.is_empty() {
                        Err(HttpError::Credential { what: file.display().to_string(), reason: "is empty".into() })
                    } else {
                        Ok(SecretString::from(v.to_owned()))
                    }
                }
                Err(e) => Err(HttpError::Credential { what: file.display().to_string(), reason: e.kind().to_string() }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use secrecy::ExposeSecret;

    use super::*;

    #[test]
    fn files_lose_their_trailing_newline_and_errors_name_no_secret() {
        let dir = std::env::temp_dir().join(format!("secretref-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("s");
        std::fs::write(&path, "hunter2-secret\n").unwrap();
        let r = SecretRef::File { file: path.clone() };
        assert_eq!(r.load().unwrap().expose_secret(), "hunter2-secret");
        let missing = SecretRef::File { file: dir.join("none") };
        assert!(missing.load().unwrap_err().to_string().contains("cannot read credential"));
        let env = SecretRef::Env { env: "REMEDIATION_SECRETREF_TEST_UNSET".into() };
        assert!(env.load().is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn parses_both_forms() {
        let e: SecretRef = serde_json::from_str(r#"{"env":"X"}"#).unwrap();
        assert_eq!(e, SecretRef::Env { env: "X".into() });
        let f: SecretRef = serde_json::from_str(r#"{"file":"/x"}"#).unwrap();
        assert_eq!(f, SecretRef::File { file: "/x".into() });
        assert!(serde_json::from_str::<SecretRef>(r#"{"value":"plain"}"#).is_err());
    }
}
