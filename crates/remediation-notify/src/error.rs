//! Errors of this crate: building sinks and notifiers from config, and checking signatures.

use std::path::PathBuf;

/// Why a sink or a notifier could not be built, or its state could not be kept.
///
/// No variant ever carries a secret: a missing secret is named by its variable or file, and a
/// URL read from a secret source is never echoed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NotifyError {
    /// A JetStream sink cannot be set up (its connection settings or secrets).
    #[cfg(feature = "nats")]
    #[error("JetStream sink")]
    Nats(#[source] Box<remediation_nats::NatsError>),
    /// The environment variable that should hold a secret is not set, or is not UTF-8.
    #[error("environment variable `{var}` (named by `{field}`) is not set")]
    MissingEnv {
        /// The config field that names the variable (`secret_env`, `url_env`).
        field: &'static str,
        /// The variable.
        var: String,
    },
    /// The file that should hold a secret could not be read.
    #[error("cannot read the file {path} (named by `{field}`)")]
    ReadSecretFile {
        /// The config field that names the file (`secret_file`, `url_file`).
        field: &'static str,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A secret source holds nothing but whitespace.
    #[error("{origin} (named by `{field}`) is empty")]
    EmptySecret {
        /// The config field that names the source.
        field: &'static str,
        /// The source, e.g. "environment variable `X`" or "file /run/secrets/x".
        origin: String,
    },
    /// Neither or several of mutually exclusive fields are set.
    #[error("{context}: set exactly one of {options}")]
    ExactlyOne {
        /// What is being configured (`webhook sink`, `notifier \`slack\``).
        context: String,
        /// The fields, e.g. "`secret_env`, `secret_file`".
        options: &'static str,
    },
    /// A field is set that this kind of sink or notifier does not use.
    #[error("{context}: `{field}` {why}")]
    FieldNotAllowed {
        /// What is being configured.
        context: String,
        /// The field.
        field: &'static str,
        /// Why it is refused.
        why: &'static str,
    },
    /// A URL does not parse or is not `http`/`https`. A URL read from a secret source is not
    /// echoed: only its origin is named.
    #[error("{context}: the URL from {origin} is not a valid http(s) URL: {reason}")]
    InvalidUrl {
        /// What is being configured.
        context: String,
        /// Where the URL came from (`url`, "environment variable `X`").
        origin: String,
        /// What is wrong, without the URL itself.
        reason: String,
    },
    /// A setting is out of range.
    #[error("{context}: `{field}` {why}")]
    InvalidSetting {
        /// What is being configured.
        context: String,
        /// The field.
        field: &'static str,
        /// What is wrong.
        why: String,
    },
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot build the HTTP client")]
    Client {
        /// The client error.
        #[source]
        source: reqwest::Error,
    },
    /// The notifier's delivery record could not be read.
    #[error("cannot read the notifier state file {path}")]
    ReadState {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The notifier's delivery record is not valid JSON of the expected shape.
    #[error("the notifier state file {path} is not valid")]
    ParseState {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The notifier's delivery record could not be written.
    #[error("cannot write the notifier state file {path}")]
    WriteState {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Why [`verify_signature`](crate::verify_signature) refused a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The timestamp header is not a decimal count of Unix seconds.
    #[error("the timestamp is not a number of Unix seconds")]
    MalformedTimestamp,
    /// The timestamp is further from now than the tolerance: a replay or a badly skewed clock.
    #[error("the timestamp is {age_secs}s from now, outside the {tolerance_secs}s window")]
    Stale {
        /// Now minus the timestamp, in seconds (negative: in the future).
        age_secs: i64,
        /// The accepted window, in seconds.
        tolerance_secs: u64,
    },
    /// The signature header is not `sha256=` followed by 64 hex digits.
    #[error("the signature header is not `sha256=<64 hex digits>`")]
    MalformedSignature,
    /// The signature does not match the timestamp and body: wrong secret or altered request.
    #[error("the signature does not match")]
    Mismatch,
}
