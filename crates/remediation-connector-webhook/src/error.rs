//! Errors raised while building a webhook connector from its configuration (request failures
//! are [`remediation_core::ConnectorError`]s).

use remediation_core::KindName;

/// A webhook connector could not be built from its configuration. No variant ever holds the
/// secret.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WebhookError {
    /// Neither or both of `secret_env` and `secret_file` are set.
    #[error("webhook connector `{id}`: set exactly one of `secret_env`, `secret_file`")]
    SecretSource {
        /// The connector's id.
        id: String,
    },
    /// The secret's variable or file could not be read, or is empty.
    #[error("webhook connector `{id}`: cannot read its secret")]
    Secret {
        /// The connector's id.
        id: String,
        /// The cause; names the variable or file, never the value.
        #[source]
        source: remediation_connector_http::HttpError,
    },
    /// The id is empty.
    #[error("a webhook connector needs a non-empty `id`")]
    EmptyId,
    /// `grant_types` is empty, or an entry has no kinds or no name.
    #[error("webhook connector `{id}`: {reason}")]
    GrantTypes {
        /// The connector's id.
        id: String,
        /// What is wrong.
        reason: String,
    },
    /// The same (kind, grant type) is declared twice.
    #[error("webhook connector `{id}`: ({kind}, {grant_type}) is declared more than once")]
    Duplicate {
        /// The connector's id.
        id: String,
        /// The kind.
        kind: KindName,
        /// The grant type.
        grant_type: String,
    },
    /// A kind that no receiver can undo is declared reversible or lossy.
    #[error(
        "webhook connector `{id}`: {kind} for `{grant_type}` cannot be undone by any service; declare it in an entry with reversibility = \"irreversible\""
    )]
    NotUndoable {
        /// The connector's id.
        id: String,
        /// The kind (`revoke_sessions`, `force_password_reset`, `notify`).
        kind: KindName,
        /// The grant type.
        grant_type: String,
    },
    /// `timeout_secs` is zero.
    #[error("webhook connector `{id}`: `timeout_secs` must be at least 1")]
    Timeout {
        /// The connector's id.
        id: String,
    },
    /// The URL is not an http(s) URL, or the HTTP client could not be built.
    #[error("webhook connector `{id}`: cannot build its HTTP client")]
    Client {
        /// The connector's id.
        id: String,
        /// The cause.
        #[source]
        source: remediation_connector_http::HttpError,
    },
}
