//! Reading secrets (signing keys, Slack webhook URLs) from the environment variable or the file
//! that a config names.

use std::path::Path;

pub(crate) use remediation_core::secret_source::{EnvLookup, process_env};
use remediation_core::secret_source::{SecretSourceError, read_secret};
use secrecy::SecretString;

use crate::error::NotifyError;

/// Reads the secret from exactly one of `env` and `file`. `None` when neither is set; the
/// caller decides whether that is an error. Surrounding whitespace (a file's final newline) is
/// not part of the secret.
pub(crate) fn read(
    context: &str,
    env_field: (&'static str, Option<&str>),
    file_field: (&'static str, Option<&Path>),
    lookup: EnvLookup<'_>,
) -> Result<Option<SecretString>, NotifyError> {
    read_secret(env_field, file_field, lookup).map_err(|e| match e {
        SecretSourceError::MissingEnv { field, var } => NotifyError::MissingEnv { field, var },
        SecretSourceError::ReadFile { field, path, source } => NotifyError::ReadSecretFile { field, path, source },
        SecretSourceError::Empty { field, origin } => NotifyError::EmptySecret { field, origin },
        SecretSourceError::Both { env_field, file_field } => {
            NotifyError::ExactlyOne { context: context.to_owned(), options: both(env_field, file_field) }
        }
        other => {
            NotifyError::InvalidSetting { context: context.to_owned(), field: env_field.0, why: other.to_string() }
        }
    })
}

/// The two field names for an "exactly one of" message.
pub(crate) fn both(env: &'static str, file: &'static str) -> &'static str {
    match (env, file) {
        ("secret_env", "secret_file") => "`secret_env`, `secret_file`",
        ("url_env", "url_file") => "`url_env`, `url_file`",
        _ => "the alternatives",
    }
}

/// Where a secret came from, for error messages that must not show the secret itself.
pub(crate) fn origin(env: Option<&str>, file: Option<&Path>) -> String {
    match (env, file) {
        (Some(var), _) => format!("environment variable `{var}`"),
        (None, Some(path)) => format!("file {}", path.display()),
        (None, None) => "config".to_owned(),
    }
}
