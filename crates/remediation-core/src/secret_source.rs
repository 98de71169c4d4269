//! Reading a secret (a signing secret, a token, a password, a URL that is a credential) from
//! the environment variable or the file a configuration names, the one way every crate does it.
//!
//! A managed connection (one created at run time and kept in the store) holds its secrets
//! sealed in the store instead. While the runtime builds such a connection it opens them and
//! runs the connector's factory inside [`with_sealed`]; a connector's `{ sealed = "name" }`
//! reference reads the secret `name` through [`sealed`]. Factories build synchronously, so the
//! scope covers the whole build, and nothing outside it can read a sealed secret.

use std::cell::RefCell;
use std::collections::BTreeMap;
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
    /// A `{ sealed = "name" }` reference was read outside the build of a managed connection
    /// (a connector in the configuration file cannot use one), or the connection has no secret
    /// of that name.
    #[error("{why}")]
    Sealed {
        /// The secret's name.
        name: String,
        /// What is wrong, naming the secret and never its value.
        why: String,
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

thread_local! {
    /// The secrets of the managed connection being built on this thread, if any.
    static SEALED: RefCell<Option<BTreeMap<String, SecretString>>> = const { RefCell::new(None) };
}

/// Restores the previous scope when dropped, also when the build panics.
struct Restore(Option<BTreeMap<String, SecretString>>);

impl Drop for Restore {
    fn drop(&mut self) {
        let previous = self.0.take();
        SEALED.with(|cell| *cell.borrow_mut() = previous);
    }
}

/// Runs `f` (a managed connection's build) with `secrets` readable through [`sealed`] on this
/// thread. The previous scope (normally none) is restored when `f` returns or panics.
pub fn with_sealed<R>(secrets: &BTreeMap<String, SecretString>, f: impl FnOnce() -> R) -> R {
    let previous = SEALED.with(|cell| cell.borrow_mut().replace(secrets.clone()));
    let _restore = Restore(previous);
    f()
}

/// The secret `name` of the managed connection being built ([`with_sealed`]). Refused outside
/// such a build, and for a name the connection has no secret of; the error names the secret,
/// never a value.
pub fn sealed(name: &str) -> Result<SecretString, SecretSourceError> {
    SEALED.with(|cell| match cell.borrow().as_ref() {
        None => Err(SecretSourceError::Sealed {
            name: name.to_owned(),
            why: format!(
                "`{{ sealed = \"{name}\" }}` names a secret kept sealed in the store: only a managed connection \
                 (`remediate connections add`) can use it, and it is read only while the connection is built"
            ),
        }),
        Some(secrets) => secrets.get(name).cloned().ok_or_else(|| SecretSourceError::Sealed {
            name: name.to_owned(),
            why: format!(
                "the connection has no secret named `{name}` (it has: {}); add it with `--secret {name}=@FILE`",
                if secrets.is_empty() {
                    "none".to_owned()
                } else {
                    secrets.keys().cloned().collect::<Vec<_>>().join(", ")
                }
            ),
        }),
    })
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret as _;

    use super::*;

    #[test]
    fn sealed_secrets_are_readable_only_inside_the_scope() {
        let secrets = BTreeMap::from([("token".to_owned(), SecretString::from("t0k3n"))]);
        let outside = sealed("token").expect_err("outside any build").to_string();
        assert!(outside.contains("managed connection"), "{outside}");
        let inside = with_sealed(&secrets, || sealed("token").map(|s| s.expose_secret().to_owned()));
        assert_eq!(inside.expect("inside").as_str(), "t0k3n");
        let missing = with_sealed(&secrets, || sealed("password")).expect_err("no such secret").to_string();
        assert!(missing.contains("`password`") && missing.contains("token") && !missing.contains("t0k3n"), "{missing}");
        assert!(sealed("token").is_err(), "the scope ends with the build");
        let panicked = std::panic::catch_unwind(|| with_sealed(&secrets, || panic!("the factory panicked")));
        assert!(panicked.is_err());
        assert!(sealed("token").is_err(), "the scope ends even when the build panics");
    }
}
