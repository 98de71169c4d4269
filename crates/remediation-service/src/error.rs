//! The one error type of the use cases (mapping to statuses and exit codes: crate docs).

use remediation_core::EngineError;
use remediation_runtime::RuntimeError;
use remediation_runtime::access::AccessError;

use crate::connectors::Candidate;

/// Why a use case did not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServiceError {
    /// The request names no connector and no single healthy configured connector can carry
    /// out the change; every configured connector is listed with why it was passed over.
    #[error(
        "no single healthy connector can {kind} a grant of type `{grant_type}`; name one in `connector` ({})",
        candidates.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
    )]
    NoConnector {
        /// The kind asked for.
        kind: String,
        /// The target's grant type.
        grant_type: String,
        /// Every configured connector and why it was not chosen.
        candidates: Vec<Candidate>,
    },
    /// A field of the request is invalid.
    #[error("{message}")]
    Invalid {
        /// The offending field.
        field: &'static str,
        /// What is wrong with it.
        message: String,
    },
    /// What was asked for does not exist (no signed tree head yet, no record of that action in
    /// the log, no head of that size).
    #[error("{what}")]
    NotFound {
        /// What is missing, in plain words.
        what: String,
    },
    /// The verifiable audit log does not extend what was signed before (truncated, rewritten
    /// or forked), or a stored head cannot be read: nothing is signed over it.
    #[error("{message}")]
    LogIntegrity {
        /// What is wrong and what to do.
        message: String,
        /// The refusal of the signer, when it refused.
        #[source]
        source: Option<remediation_audit::TreeHeadError>,
    },
    /// An audit archive could not be written or did not verify after writing: nothing was
    /// removed from the store.
    #[error("{message}")]
    Archive {
        /// What failed.
        message: String,
        /// The I/O error, when there was one.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The tree head signing key file could not be written or replaced.
    #[error("cannot rotate the signing key")]
    KeyFile(#[source] remediation_audit::TreeHeadError),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
    /// A principal, token or two-admin use case refused or failed.
    #[error(transparent)]
    Access(#[from] AccessError),
    /// The runtime could not assemble the engine or read its settings.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
}

impl From<remediation_core::StoreError> for ServiceError {
    fn from(e: remediation_core::StoreError) -> Self {
        Self::Engine(e.into())
    }
}
