//! The action lifecycle as a pure function: `transition(state, event, role)`.
//!
//! This is the table from the design contract and nothing else: it performs no I/O and knows
//! nothing of who the requester was or how many approvals exist. The engine supplies those
//! facts through the event (for example [`Event::Approve::quorum_reached`]).

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Where an action stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Advisory: guidance only, never executes.
    Suggested,
    /// Waiting for approvals.
    PendingApproval,
    /// Approved, waiting to execute.
    Approved,
    /// Stopped by a blast-radius limit or the circuit breaker; needs an admin.
    Held,
    /// Being applied to the provider.
    Executing,
    /// Applied and verified.
    Completed,
    /// A person asked to roll the completed change back; waits for a different principal
    /// to approve the rollback.
    RollbackRequested,
    /// The provider refused, the change was not observed, or a rollback failed.
    Failed,
    /// The before-state is being restored.
    RollingBack,
    /// The before-state was restored and verified.
    RolledBack,
    /// An approver said no.
    Rejected,
    /// Withdrawn by the requester or an admin, or by the kill switch.
    Cancelled,
    /// Not approved in time.
    Expired,
    /// A dry run: carries the plan, never executes.
    DryRun,
}

impl State {
    /// Every state, in lifecycle order.
    pub const ALL: [State; 14] = [
        Self::Suggested,
        Self::PendingApproval,
        Self::Approved,
        Self::Held,
        Self::Executing,
        Self::Completed,
        Self::RollbackRequested,
        Self::Failed,
        Self::RollingBack,
        Self::RolledBack,
        Self::Rejected,
        Self::Cancelled,
        Self::Expired,
        Self::DryRun,
    ];

    /// The snake_case name used in storage, JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Suggested => "suggested",
            Self::PendingApproval => "pending_approval",
            Self::Approved => "approved",
            Self::Held => "held",
            Self::Executing => "executing",
            Self::Completed => "completed",
            Self::RollbackRequested => "rollback_requested",
            Self::Failed => "failed",
            Self::RollingBack => "rolling_back",
            Self::RolledBack => "rolled_back",
            Self::Rejected => "rejected",
            Self::Cancelled => "cancelled",
            Self::Expired => "expired",
            Self::DryRun => "dry_run",
        }
    }

    /// Where the action stands, in plain words ("waiting for approval").
    pub fn describe(self) -> &'static str {
        match self {
            Self::Suggested => "advice only (not a request to act)",
            Self::PendingApproval => "waiting for approval",
            Self::Approved => "approved and not yet executed",
            Self::Held => "held by a blast-radius limit or the circuit breaker",
            Self::Executing => "being executed",
            Self::Completed => "completed: the change is in place",
            Self::RollbackRequested => "waiting for its rollback to be approved",
            Self::Failed => "failed",
            Self::RollingBack => "being rolled back",
            Self::RolledBack => "rolled back and finished",
            Self::Rejected => "rejected and finished",
            Self::Cancelled => "cancelled and finished",
            Self::Expired => "expired (not approved in time) and finished",
            Self::DryRun => "a dry run, which never executes",
        }
    }

    /// What can be done with an action in this state, in plain words and without naming any
    /// client's commands (the CLI and the API say it in their own terms).
    pub fn what_next(self) -> &'static str {
        match self {
            Self::Suggested => "an admin must promote it to a request for approval first",
            Self::PendingApproval => "it must be approved first",
            Self::Approved => "execute it, or cancel it",
            Self::Held => "an admin must release it, or force-execute it with a reason",
            Self::Executing | Self::RollingBack => {
                "wait for it to finish; if the process running it died, recover reconciles it"
            }
            Self::Completed => "roll it back to undo the change",
            Self::RollbackRequested => "a different approver must approve or reject the rollback first",
            Self::Failed => "roll it back, or suggest a new action",
            Self::RolledBack | Self::Rejected | Self::Cancelled | Self::Expired => "suggest a new action to act again",
            Self::DryRun => "suggest it again without dry run to act",
        }
    }

    /// True when no event can move the action any further.
    pub fn is_terminal(self) -> bool {
        matches!(self, Self::RolledBack | Self::Rejected | Self::Cancelled | Self::Expired | Self::DryRun)
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for State {
    type Err = UnknownState;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| UnknownState(s.to_owned()))
    }
}

/// A state name that is not one of [`State::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown state `{0}`; expected one of suggested, pending_approval, approved, held, executing, completed, rollback_requested, failed, rolling_back, rolled_back, rejected, cancelled, expired, dry_run"
)]
pub struct UnknownState(pub String);

/// The role an actor holds. Roles are ordered: each includes the rights of those below it,
/// except [`Role::System`], which only the engine itself holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads actions and the audit.
    Viewer,
    /// Suggests and cancels own actions.
    Requester,
    /// A requester who may also respond to an incident: run the policy's emergency kinds
    /// (`[policy] emergency_kinds`) on an exposed person's accounts at once, without a second
    /// approver. Approves nothing.
    Responder,
    /// Approves, rejects, executes and rolls back.
    Approver,
    /// Everything, including force-execute, release, promote and the kill switch.
    Admin,
    /// The engine acting on its own (auto approval, re-plan, limits, results).
    System,
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Viewer => "viewer",
            Self::Requester => "requester",
            Self::Responder => "responder",
            Self::Approver => "approver",
            Self::Admin => "admin",
            Self::System => "system",
        })
    }
}

/// Something that happens to an existing action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    /// An admin turns advisory guidance into a request for approval.
    Promote,
    /// The requester or an admin withdraws the action.
    Cancel,
    /// The kill switch cancels every action that has not started.
    KillSwitch,
    /// An approver approves; the action moves on once enough approvals exist.
    Approve {
        /// Whether this approval brings the count to the required minimum.
        quorum_reached: bool,
    },
    /// An approver rejects.
    Reject,
    /// The approval request ran out of time.
    Expire,
    /// At execution the recomputed plan differs from the approved one; approvals are void.
    PlanChanged,
    /// A blast-radius limit or the circuit breaker stops the execution.
    Hold,
    /// Execution starts.
    BeginExecution,
    /// An admin executes a held action despite the limit.
    ForceExecute,
    /// An admin releases a held action once limits allow it.
    Release,
    /// The change was applied and read back.
    ExecutionSucceeded,
    /// The provider refused, or the change was not observed.
    ExecutionFailed,
    /// The provider throttled the execution before anything was written: back to
    /// `approved` with a not-before time, limit slots released. Allowed only when nothing
    /// was written to the provider.
    Requeue,
    /// A person asks for a rollback that another principal must approve.
    RequestRollback,
    /// Restoring the before-state starts.
    Rollback,
    /// The before-state was restored and read back.
    RollbackSucceeded,
    /// Restoring failed; the action needs attention.
    RollbackFailed,
}

impl Event {
    /// Every event, with both values of `quorum_reached`.
    pub const ALL: [Event; 19] = [
        Self::Promote,
        Self::Cancel,
        Self::KillSwitch,
        Self::Approve { quorum_reached: false },
        Self::Approve { quorum_reached: true },
        Self::Reject,
        Self::Expire,
        Self::PlanChanged,
        Self::Hold,
        Self::BeginExecution,
        Self::ForceExecute,
        Self::Release,
        Self::ExecutionSucceeded,
        Self::ExecutionFailed,
        Self::Requeue,
        Self::RequestRollback,
        Self::Rollback,
        Self::RollbackSucceeded,
        Self::RollbackFailed,
    ];

    /// The snake_case name used in the audit.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Cancel => "cancel",
            Self::KillSwitch => "kill_switch",
            Self::Approve { .. } => "approve",
            Self::Reject => "reject",
            Self::Expire => "expire",
            Self::PlanChanged => "plan_changed",
            Self::Hold => "hold",
            Self::BeginExecution => "begin_execution",
            Self::ForceExecute => "force_execute",
            Self::Release => "release",
            Self::ExecutionSucceeded => "execution_succeeded",
            Self::ExecutionFailed => "execution_failed",
            Self::Requeue => "requeue",
            Self::RequestRollback => "request_rollback",
            Self::Rollback => "rollback",
            Self::RollbackSucceeded => "rollback_succeeded",
            Self::RollbackFailed => "rollback_failed",
        }
    }

    /// What the event does, as a plain verb ("execute", "roll back").
    pub fn verb(self) -> &'static str {
        match self {
            Self::Promote => "promote",
            Self::Cancel => "cancel",
            Self::KillSwitch => "cancel (kill switch)",
            Self::Approve { .. } => "approve",
            Self::Reject => "reject",
            Self::Expire => "expire",
            Self::PlanChanged => "re-plan",
            Self::Hold => "hold",
            Self::BeginExecution => "execute",
            Self::ForceExecute => "force-execute",
            Self::Release => "release",
            Self::ExecutionSucceeded | Self::ExecutionFailed => "finish executing",
            Self::Requeue => "requeue",
            Self::RequestRollback => "request a rollback of",
            Self::Rollback => "roll back",
            Self::RollbackSucceeded | Self::RollbackFailed => "finish rolling back",
        }
    }

    /// The least role allowed to cause this event.
    fn required(self) -> Required {
        match self {
            // The system cancels a follow-up whose action was rolled back.
            Self::Cancel => Required::AtLeastOrSystem(Role::Requester),
            // Only a person requests a rollback; the system rolls back without asking.
            Self::Approve { .. } | Self::Reject | Self::RequestRollback => Required::AtLeast(Role::Approver),
            // The system rolls back on its own when a low-risk change is not verified.
            Self::BeginExecution | Self::Rollback => Required::OperatorOrSystem,
            Self::Promote | Self::KillSwitch | Self::ForceExecute | Self::Release => Required::AtLeast(Role::Admin),
            Self::Expire
            | Self::PlanChanged
            | Self::Hold
            | Self::ExecutionSucceeded
            | Self::ExecutionFailed
            | Self::Requeue
            | Self::RollbackSucceeded
            | Self::RollbackFailed => Required::System,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

enum Required {
    AtLeast(Role),
    AtLeastOrSystem(Role),
    OperatorOrSystem,
    System,
}

impl Required {
    fn allows(&self, role: Role) -> bool {
        match self {
            Self::AtLeast(min) => role != Role::System && role >= *min,
            Self::AtLeastOrSystem(min) => role >= *min,
            Self::OperatorOrSystem => role >= Role::Approver,
            Self::System => role == Role::System,
        }
    }
}

/// Why a transition was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransitionError {
    /// The event is not allowed from the current state. The message says where the action
    /// stands and what can be done with it instead.
    #[error("cannot {} an action that is {} ({state}); {}", event.verb(), state.describe(), state.what_next())]
    Illegal {
        /// The current state.
        state: State,
        /// The refused event.
        event: Event,
    },
    /// The event is legal in this state but not for this role.
    #[error(
        "role {role} may not {} actions (this one is {state}); ask someone whose role may, or an admin to change your role",
        event.verb()
    )]
    RoleNotAllowed {
        /// The current state.
        state: State,
        /// The refused event.
        event: Event,
        /// The actor's role.
        role: Role,
    },
}

/// Applies `event` to an action in `state` on behalf of an actor with `role`.
///
/// Returns the new state (which may equal the old one for an approval short of quorum), or
/// an error naming the current state.
pub fn transition(state: State, event: Event, role: Role) -> Result<State, TransitionError> {
    use Event as E;
    use State as S;
    let next = match (state, event) {
        (S::Suggested, E::Promote) => S::PendingApproval,
        (S::Suggested | S::PendingApproval | S::Approved | S::Held, E::Cancel | E::KillSwitch) => S::Cancelled,
        (S::PendingApproval, E::Approve { quorum_reached }) => {
            if quorum_reached {
                S::Approved
            } else {
                S::PendingApproval
            }
        }
        (S::PendingApproval, E::Reject) => S::Rejected,
        (S::PendingApproval, E::Expire) => S::Expired,
        (S::Approved, E::PlanChanged) => S::PendingApproval,
        (S::Approved, E::Hold) => S::Held,
        (S::Approved, E::BeginExecution) => S::Executing,
        (S::Held, E::ForceExecute) => S::Executing,
        (S::Held, E::Release) => S::Approved,
        (S::Executing, E::ExecutionSucceeded) => S::Completed,
        (S::Executing, E::ExecutionFailed) => S::Failed,
        (S::Executing, E::Requeue) => S::Approved,
        (S::Completed | S::Failed, E::Rollback) => S::RollingBack,
        (S::Completed, E::RequestRollback) => S::RollbackRequested,
        // Approving a requested rollback starts it at once; one approval by another
        // principal is the quorum.
        (S::RollbackRequested, E::Approve { quorum_reached: true }) => S::RollingBack,
        // A refused or timed-out request leaves the change in place.
        (S::RollbackRequested, E::Reject | E::Expire) => S::Completed,
        (S::RollingBack, E::RollbackSucceeded) => S::RolledBack,
        (S::RollingBack, E::RollbackFailed) => S::Failed,
        _ => return Err(TransitionError::Illegal { state, event }),
    };
    if !event.required().allows(role) {
        return Err(TransitionError::RoleNotAllowed { state, event, role });
    }
    Ok(next)
}

/// The state a new action starts in, given its mode and whether it is a dry run.
///
/// `auto_approved` is true when the mode is auto and every gate passed; the engine then
/// records the approval as made by `system`.
pub fn initial_state(mode: crate::Mode, dry_run: bool, auto_approved: bool) -> State {
    match (dry_run, mode) {
        (true, _) => State::DryRun,
        (false, crate::Mode::Advisory) => State::Suggested,
        (false, crate::Mode::Auto) if auto_approved => State::Approved,
        (false, _) => State::PendingApproval,
    }
}
