//! A failed command: its error chain and its exit code, and the one mapping of every library
//! error to an exit code. A leaf: it depends only on `exit` and `text`.

use remediation_core::EngineError;
use remediation_runtime::RuntimeError;

use crate::exit::ExitCode;
use crate::text::clean;

/// A failed command: the error chain and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: ExitCode,
    error: anyhow::Error,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub(crate) fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        Self { code, error: error.into() }
    }

    /// The same failure with `context` added to its error chain.
    pub(crate) fn context(self, context: String) -> Self {
        Self { code: self.code, error: self.error.context(context) }
    }

    /// The process exit code.
    pub(crate) fn code(&self) -> u8 {
        self.code.code()
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", clean(&format!("{:#}", self.error)))
    }
}

impl From<EngineError> for Failure {
    fn from(e: EngineError) -> Self {
        let code = if e.is_not_found() {
            ExitCode::NotFound
        } else {
            match &e {
                EngineError::Refused { .. } | EngineError::Transition(_) | EngineError::Unsupported { .. } => {
                    ExitCode::Refused
                }
                EngineError::Connector { .. } => ExitCode::Provider,
                // Another worker took the action over: this one wrote nothing further.
                EngineError::Store(
                    remediation_core::StoreError::LeaseLost { .. } | remediation_core::StoreError::StaleLease { .. },
                ) => ExitCode::Refused,
                _ => ExitCode::Internal,
            }
        };
        Self::new(code, e)
    }
}

impl From<remediation_runtime::access::AccessError> for Failure {
    fn from(e: remediation_runtime::access::AccessError) -> Self {
        use remediation_runtime::access::AccessError as A;
        match e {
            A::Engine(e) => e.into(),
            e @ (A::NotAdmin { .. } | A::SameAdmin { .. } | A::Conflict(_)) => Self::new(ExitCode::Refused, e),
            e @ A::NotFound(_) => Self::new(ExitCode::NotFound, e),
            e @ A::Invalid { .. } => Self::new(ExitCode::Usage, e),
            e => Self::new(ExitCode::Internal, e),
        }
    }
}

/// The CLI side of the one mapping of use-case errors (table in `remediation_service`).
impl From<remediation_service::ServiceError> for Failure {
    fn from(e: remediation_service::ServiceError) -> Self {
        use remediation_service::ServiceError as S;
        match e {
            e @ (S::NoConnector { .. } | S::Invalid { .. }) => Self::new(ExitCode::Usage, e),
            S::Engine(e) => e.into(),
            S::Access(e) => e.into(),
            S::Runtime(e) => runtime_failure(e),
            e @ S::NotFound { .. } => Self::new(ExitCode::NotFound, e),
            e @ S::LogIntegrity { .. } => Self::new(ExitCode::AuditBroken, e),
            e => Self::new(ExitCode::Internal, e),
        }
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Self::new(ExitCode::Internal, e)
    }
}

/// Maps a failure to assemble the engine to its exit code: configuration problems are 2.
pub(crate) fn runtime_failure(e: RuntimeError) -> Failure {
    let code = match &e {
        RuntimeError::Config(_)
        | RuntimeError::DataDirMissing { .. }
        | RuntimeError::Settings(_)
        | RuntimeError::Connector { .. }
        | RuntimeError::UnknownConnectorType { .. }
        | RuntimeError::Events { .. } => ExitCode::Usage,
        _ => ExitCode::Internal,
    };
    Failure::new(code, e)
}
