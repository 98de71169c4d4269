//! A failed command: its error chain and its exit code, and the one mapping of every library
//! error to an exit code. A leaf: it depends only on `exit` and `text`.

use remediation_core::{ActionId, EngineError, State};
use remediation_runtime::RuntimeError;

use crate::exit::ExitCode;
use crate::text::clean;

/// A failed command: the error chain and its exit code.
#[derive(Debug)]
pub(crate) struct Failure {
    code: ExitCode,
    error: anyhow::Error,
    /// The state the action was found in, when the lifecycle refused the step because of it
    /// (not because of the actor's role): [`Failure::about_action`] then says what to do.
    state: Option<State>,
}

impl Failure {
    /// A failure with an explicit exit code.
    pub(crate) fn new(code: ExitCode, error: impl Into<anyhow::Error>) -> Self {
        Self { code, error: error.into(), state: None }
    }

    /// The same failure, noting that the lifecycle refused it because the action is in `state`.
    pub(crate) fn in_state(self, state: Option<State>) -> Self {
        Self { state, ..self }
    }

    /// The same failure with `context` added to its error chain.
    pub(crate) fn context(self, context: String) -> Self {
        Self { code: self.code, error: self.error.context(context), state: self.state }
    }

    /// The failure of `command` on action `id`: a refusal because of the action's state says,
    /// in plain words, where the action stands and which command comes next.
    pub(crate) fn about_action(self, id: ActionId, command: &str) -> Self {
        match self.state {
            Some(state) => Self { error: anyhow::anyhow!("{}", refused_in_state(id, state, command)), ..self },
            None => self,
        }
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
                    remediation_core::StoreError::LeaseLost { .. }
                    | remediation_core::StoreError::StaleLease { .. }
                    | remediation_core::StoreError::CampaignConflict { .. }
                    | remediation_core::StoreError::TenantConflict(_)
                    | remediation_core::StoreError::ConnectionConflict { .. }
                    | remediation_core::StoreError::ConnectionChanged { .. },
                ) => ExitCode::Refused,
                EngineError::Store(remediation_core::StoreError::ConnectionNotFound(_)) => ExitCode::NotFound,
                EngineError::Store(remediation_core::StoreError::CampaignNotFound(_)) => ExitCode::NotFound,
                _ => ExitCode::Internal,
            }
        };
        let state = match &e {
            EngineError::Transition(remediation_core::TransitionError::Illegal { state, .. })
            | EngineError::Store(remediation_core::StoreError::StateConflict { actual: state, .. }) => Some(*state),
            _ => None,
        };
        Self::new(code, e).in_state(state)
    }
}

impl From<remediation_runtime::access::AccessError> for Failure {
    fn from(e: remediation_runtime::access::AccessError) -> Self {
        use remediation_runtime::access::AccessError as A;
        match e {
            A::Engine(e) => e.into(),
            e @ (A::NotAdmin { .. } | A::SameAdmin { .. } | A::Conflict(_) | A::NotEarned { .. }) => {
                Self::new(ExitCode::Refused, e)
            }
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
        | RuntimeError::Events { .. }
        | RuntimeError::RotateEnvKey { .. }
        | RuntimeError::ConnectionId { .. } => ExitCode::Usage,
        RuntimeError::UnearnedAuto { .. } => ExitCode::Refused,
        RuntimeError::UnknownTenant { .. } => ExitCode::NotFound,
        _ => ExitCode::Internal,
    };
    Failure::new(code, e)
}

/// Why `command` cannot be done to action `id` in `state`, and what to run instead.
pub(crate) fn refused_in_state(id: ActionId, state: State, command: &str) -> String {
    use State as S;
    let next = match state {
        S::Suggested => format!("it is advice only; an admin turns it into a request first: remediate promote {id}"),
        S::PendingApproval => format!("approve it first: remediate approve {id}"),
        S::Approved if command == "approve" => {
            format!("it needs no further approval; execute it: remediate execute {id}")
        }
        S::Approved => format!("execute it (remediate execute {id}) or cancel it (remediate cancel {id})"),
        S::Held => format!(
            "an admin releases it (remediate release {id}) or overrides the limit (remediate force-execute {id} --reason \"...\")"
        ),
        S::Executing | S::RollingBack => {
            "wait for it to finish; if the process running it died, run: remediate recover".to_owned()
        }
        S::Completed => format!("to undo the change: remediate rollback {id}"),
        S::RollbackRequested => format!(
            "a different approver decides the rollback first: remediate approve {id} (roll back) or remediate reject {id} (keep the change)"
        ),
        S::Failed => format!(
            "see why with remediate show {id}, then roll it back (remediate rollback {id}) or suggest a new action"
        ),
        S::RolledBack | S::Rejected | S::Cancelled | S::Expired => {
            "nothing more can happen to it; to act again, suggest a new action: remediate suggest ...".to_owned()
        }
        S::DryRun => "a dry run never executes; suggest again without --dry-run to act".to_owned(),
    };
    format!("cannot {command} action {id}: it is {} ({state}); {next}", state.describe())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_state_refusal_names_the_state_and_a_next_step() {
        let id: ActionId = "0190b7e2-6f1c-7d35-9a57-3f0c6f1a2b3c".parse().expect("id");
        for state in State::ALL {
            let text = refused_in_state(id, state, "execute");
            assert!(text.starts_with(&format!("cannot execute action {id}: it is ")), "{text}");
            assert!(text.contains(&format!("({state}); ")), "{text}");
            assert!(text.contains("remediate ") || state == State::DryRun, "{text}");
        }
        assert_eq!(
            refused_in_state(id, State::PendingApproval, "execute"),
            format!(
                "cannot execute action {id}: it is waiting for approval (pending_approval); approve it first: remediate approve {id}"
            )
        );
        assert_eq!(
            refused_in_state(id, State::Approved, "approve"),
            format!(
                "cannot approve action {id}: it is approved and not yet executed (approved); it needs no further approval; execute it: remediate execute {id}"
            )
        );
    }

    #[test]
    fn only_state_refusals_are_reworded() {
        let id: ActionId = "0190b7e2-6f1c-7d35-9a57-3f0c6f1a2b3c".parse().expect("id");
        let refused = Failure::from(EngineError::Transition(remediation_core::TransitionError::Illegal {
            state: State::Completed,
            event: remediation_core::Event::BeginExecution,
        }))
        .about_action(id, "execute");
        assert_eq!(refused.code(), 3);
        assert!(refused.to_string().contains("to undo the change: remediate rollback"), "{refused}");
        let other = Failure::new(ExitCode::Usage, anyhow::anyhow!("bad flag")).about_action(id, "execute");
        assert_eq!(other.to_string(), "bad flag");
    }
}
