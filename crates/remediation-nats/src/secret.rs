//! Reading secrets (a token, a password) from the environment variable or the file that a
//! config names.

use std::path::Path;

use secrecy::SecretString;

use crate::error::NatsError;

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
    context: &'static str,
    env_field: (&'static str, Option<&str>),
    file_field: (&'static str, Option<&Path>),
    lookup: EnvLookup<'_>,
) -> Result<Option<SecretString>, NatsError> {
    let (value, field, origin) = match (env_field.1, file_field.1) {
        (Some(var), None) => {
            let value = lookup(var).ok_or_else(|| NatsError::MissingEnv { field: env_field.0, var: var.to_owned() })?;
            (value, env_field.0, format!("environment variable `{var}`"))
        }
        (None, Some(path)) => {
            let value = std::fs::read_to_string(path).map_err(|source| NatsError::ReadFile {
                field: file_field.0,
                path: path.to_owned(),
                source,
            })?;
            (value, file_field.0, format!("file {}", path.display()))
        }
        (None, None) => return Ok(None),
        (Some(_), Some(_)) => {
            return Err(NatsError::InvalidSetting {
                context,
                field: env_field.0,
                why: format!("and `{}` are both set; set one", file_field.0),
            });
        }
    };
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(NatsError::EmptySecret { field, origin });
    }
    Ok(Some(SecretString::from(trimmed.to_owned())))
}
