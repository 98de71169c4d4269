//! Reading secrets (signing keys, Slack webhook URLs) from the environment variable or the file
//! that a config names.

use std::path::Path;

use secrecy::SecretString;

use crate::error::NotifyError;

/// Looks up an environment variable; injectable so that tests need not change the process
/// environment.
pub(crate) type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment.
pub(crate) fn process_env(var: &str) -> Option<String> {
    std::env::var(var).ok()
}

/// Reads the secret from exactly one of `env` and `file`. `None` when neither is set; the
/// caller decides whether that is an error. Surrounding whitespace (a file's final newline) is
/// not part of the secret.
pub(crate) fn read(
    context: &str,
    env_field: (&'static str, Option<&str>),
    file_field: (&'static str, Option<&Path>),
    lookup: EnvLookup<'_>,
) -> Result<Option<SecretString>, NotifyError> {
    let (value, field, origin) = match (env_field.1, file_field.1) {
        (Some(var), None) => {
            let value =
                lookup(var).ok_or_else(|| NotifyError::MissingEnv { field: env_field.0, var: var.to_owned() })?;
            (value, env_field.0, format!("environment variable `{var}`"))
        }
        (None, Some(path)) => {
            let value = std::fs::read_to_string(path).map_err(|source| NotifyError::ReadSecretFile {
                field: file_field.0,
                path: path.to_owned(),
                source,
            })?;
            (value, file_field.0, format!("file {}", path.display()))
        }
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(NotifyError::ExactlyOne {
                context: context.to_owned(),
                options: both(env_field.0, file_field.0),
            });
        }
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(NotifyError::EmptySecret { field, origin });
    }
    Ok(Some(SecretString::from(trimmed.to_owned())))
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
