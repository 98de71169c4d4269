//! Reading a secret (a signing secret, a token, a password, a URL that is a credential) from
//! the environment variable or the file a configuration names, the one way every crate does it.

use std::path::{Path, PathBuf};

use secrecy::SecretString;

/// Looks up an environment variable; injectable so that tests need not change the process
/// environment.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment, as an [`EnvLookup`].
pub fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Why a secret could not be read. No variant holds the secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretSourceError {
    /// The environment variable is not set, or is not UTF-8.
    #[error("environment variable `{var}` (named by `{field}`) is not set")]
    MissingEnv {
        /// The config field that names the variable (`secret_env`, `token_env`).
        field: &'static str,
        /// The variable.
        var: String,
    },
    /// The file could not be read.
    #[error("cannot read the file {path} (named by `{field}`)")]
    ReadFile {
        /// The config field that names the file.
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The variable or file holds nothing but whitespace.
    #[error("the {origin} (named by `{field}`) is empty")]
    Empty {
        /// The config field that names the source.
        field: &'static str,
        /// The source, e.g. "environment variable `X`" or "file /run/secrets/x".
        origin: String,
    },
    /// Both the variable and the file are named.
    #[error("`{env_field}` and `{file_field}` are both set; set one")]
    Both {
        /// The variable's field.
        env_field: &'static str,
        /// The file's field.
        file_field: &'static str,
    },
}

/// Reads the secret from exactly one of `env` (field name, variable) and `file` (field name,
/// path). `None` when neither is set; the caller decides whether that is an error. Surrounding
/// whitespace (a file's final newline) is not part of the secret.
pub fn read_secret(
    env: (&'static str, Option<&str>),
    file: (&'static str, Option<&Path>),
    lookup: EnvLookup<'_>,
) -> Result<Option<SecretString>, SecretSourceError> {
    let (value, field, origin) = match (env.1, file.1) {
        (Some(var), None) => {
            let value =
                lookup(var).ok_or_else(|| SecretSourceError::MissingEnv { field: env.0, var: var.to_owned() })?;
            (value, env.0, format!("environment variable `{var}`"))
        }
        (None, Some(path)) => {
            let value = std::fs::read_to_string(path).map_err(|source| SecretSourceError::ReadFile {
                field: file.0,
                path: path.to_owned(),
                source,
            })?;
            (value, file.0, format!("file {}", path.display()))
        }
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => return Err(SecretSourceError::Both { env_field: env.0, file_field: file.0 }),
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(SecretSourceError::Empty { field, origin });
    }
    Ok(Some(SecretString::from(trimmed.to_owned())))
}
