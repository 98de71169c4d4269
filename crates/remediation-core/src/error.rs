//! Errors returned by the engine.

use crate::connector::ConnectorError;
use crate::hash::CanonicalError;
use crate::lifecycle::TransitionError;
use crate::store::StoreError;
use crate::{ActionId, KindName};

/// Why the engine did not do what was asked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    /// No action with this id.
    #[error("no action with id {0}; run `list` to see the actions that exist")]
    NotFound(ActionId),
    /// No connector with this id is configured.
    #[error("no connector named `{name}` is configured (configured: {configured})")]
    UnknownConnector {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        configured: String,
    },
    /// The connector does not support this kind for this grant type.
    #[error("connector `{connector}` cannot {kind} a grant of type `{grant_type}` (supported: {supported})")]
    Unsupported {
        /// Connector identifier.
        connector: String,
        /// The kind asked for.
        kind: KindName,
        /// The grant type asked for.
        grant_type: String,
        /// What the connector supports, as `kind/grant_type` pairs.
        supported: String,
    },
    /// A safety rule refused the request.
    #[error("refused by {rule}: {reason}")]
    Refused {
        /// The rule or gate that refused (`validation`, `enablement`, `separation of duties`).
        rule: String,
        /// Why, and what would make it pass.
        reason: String,
    },
    /// The lifecycle does not allow this step now.
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The connector failed.
    #[error("connector `{connector}` failed to {operation}")]
    Connector {
        /// Connector identifier.
        connector: String,
        /// What the engine asked it to do.
        operation: &'static str,
        /// The connector's error, with the provider's message.
        #[source]
        source: ConnectorError,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A snapshot or plan could not be hashed.
    #[error("cannot hash a plan or snapshot")]
    Hash(#[from] CanonicalError),
}

impl EngineError {
    /// True when the error means the thing asked for does not exist (an action, a connector
    /// or the provider's target).
    pub fn is_not_found(&self) -> bool {
        match self {
            Self::NotFound(_) | Self::UnknownConnector { .. } => true,
            Self::Store(StoreError::NotFound(_)) => true,
            Self::Connector { source, .. } => source.kind == crate::connector::ConnectorErrorKind::NotFound,
            _ => false,
        }
    }
}

/// `e`'s message followed by each of its sources, joined by `: `: for reports that are data
/// rather than errors (a verification report, a configuration check), where the chain must be
/// kept as one line of text.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
