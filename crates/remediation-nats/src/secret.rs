//! Reading secrets (a token, a password) from the environment variable or the file that a
//! config names.

use std::path::Path;

pub(crate) use remediation_core::secret_source::{EnvLookup, process_env};
use remediation_core::secret_source::{SecretSourceError, read_secret};
use secrecy::SecretString;

use crate::error::NatsError;

/// Reads the secret from exactly one of `env` and `file` (see
/// [`remediation_core::secret_source::read_secret`]); `None` when neither is set.
pub(crate) fn read(
    context: &'static str,
    env_field: (&'static str, Option<&str>),
    file_field: (&'static str, Option<&Path>),
    lookup: EnvLookup<'_>,
) -> Result<Option<SecretString>, NatsError> {
    read_secret(env_field, file_field, lookup).map_err(|e| match e {
        SecretSourceError::Both { file_field, .. } => NatsError::InvalidSetting {
            context,
            field: env_field.0,
            why: format!("and `{file_field}` are both set; set one"),
        },
        other => NatsError::Secret(other),
    })
}
