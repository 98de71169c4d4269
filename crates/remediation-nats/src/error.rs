//! Errors of this crate: building sinks and the consumer from config, and talking to NATS.

use std::path::PathBuf;

/// Why a NATS sink or consumer could not be built, connected or set up.
///
/// No variant ever carries a secret: a missing secret is named by its variable or file.
/// Errors from `async-nats` are kept as text (`reason`) rather than as a `source`: their
/// `Display` already prints their own cause, so a chain would print it twice.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NatsError {
    /// A secret (a token, a password) could not be read from the variable or file the config
    /// names: the shared secret source's own error.
    #[error(transparent)]
    Secret(#[from] remediation_core::secret_source::SecretSourceError),
    /// A file named by the config (a `.creds` file, a CA) could not be read.
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
    /// A `.creds` file is not a NATS user credentials file (a user JWT and a user seed).
    #[error("the credentials file {path} (named by `creds_file`) is not a NATS .creds file: {why}")]
    InvalidCreds {
        /// The file.
        path: PathBuf,
        /// What is wrong with it; never its content.
        why: &'static str,
    },
    /// The file named by `tls_ca_file` holds no usable PEM certificate.
    #[error("the CA file {path} (named by `tls_ca_file`) {why}")]
    InvalidCa {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        why: String,
    },
    /// A setting is missing, out of range or inconsistent with another.
    #[error("{context}: `{field}` {why}")]
    InvalidSetting {
        /// What is being configured (`NATS connection`, `JetStream event sink`, ...).
        context: &'static str,
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The TLS client could not be set up.
    #[error("cannot set up TLS for NATS: {reason}")]
    Tls {
        /// What rustls said.
        reason: String,
    },
    /// The server could not be reached, refused the credentials, or the TLS handshake failed.
    #[error("cannot connect to NATS at {url}: {reason}")]
    Connect {
        /// The server URL (it holds no credentials: they are separate settings).
        url: String,
        /// What async-nats said.
        reason: String,
    },
    /// A JetStream API request (stream or consumer lookup or creation) failed.
    #[error("JetStream request failed ({what}): {reason}")]
    JetStream {
        /// What was asked, e.g. "create stream `REMEDIATION_EVENTS`".
        what: String,
        /// What the server or the client said.
        reason: String,
    },
    /// A stream exists with a configuration other than the one configured here. It is not
    /// changed behind the operator's back: change it (`nats stream edit`) or the config.
    #[error("stream `{stream}` exists with {field} {actual}, but {expected} is configured; change one of them")]
    StreamMismatch {
        /// The stream.
        stream: String,
        /// What differs (`subjects`, `retention`, `duplicate window`, `max age`).
        field: &'static str,
        /// What the stream has.
        actual: String,
        /// What the config asks for.
        expected: String,
    },
    /// The durable consumer exists with a configuration this crate cannot work with.
    #[error(
        "consumer `{consumer}` on stream `{stream}` exists with {field} {actual}, but {expected} is needed; delete it or fix it"
    )]
    ConsumerMismatch {
        /// The stream.
        stream: String,
        /// The durable consumer.
        consumer: String,
        /// What differs.
        field: &'static str,
        /// What the consumer has.
        actual: String,
        /// What is needed.
        expected: String,
    },
}
