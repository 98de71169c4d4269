//! The durable store of actions, transitions, audit records and limit slots.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::hash::HexDigest;
use crate::{Action, ActionId, Plan, Snapshot, State};

/// One state change (or an approval short of quorum) as it enters the audit trail.
///
/// The audit crate chains these with `prev_hash` and `hash`; this is the body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TransitionRecord {
    /// The action.
    pub action_id: ActionId,
    /// State before; `None` when the action is created.
    pub from: Option<State>,
    /// State after.
    pub to: State,
    /// What happened (`suggest`, `approve`, `begin_execution`, ...).
    pub event: String,
    /// Who caused it: the principal (`local:alice`, a server principal) or `system`.
    pub actor: String,
    /// The credential the principal used (an API token's name); absent for local actors and
    /// `system`, and in records written before principals existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// Who asked for the action in the first place.
    pub initiated_by: String,
    /// Who decided, for approvals, rejections and overrides.
    pub decided_by: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// Free text: the reason, the note, the failure.
    pub comment: Option<String>,
    /// Connector identifier.
    pub connector: String,
    /// Control being remediated.
    pub control_id: Option<String>,
    /// Finding being remediated.
    pub finding_id: Option<String>,
    /// Hash of the before-state snapshot, once known.
    pub before_hash: Option<HexDigest>,
    /// Hash of the after-state snapshot, once known.
    pub after_hash: Option<HexDigest>,
    /// Hash of the plan this step acted on.
    pub plan_hash: Option<HexDigest>,
    /// Provider request ids of writes made in this step.
    pub request_ids: Vec<String>,
    /// Until when the change can be rolled back, once known.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub rollback_expires_at: Option<OffsetDateTime>,
    /// The state the step changes from, itself and not only its hash, on the records of
    /// executions and rollbacks, so an auditor reads what changed from the audit alone (for a
    /// rollback: the executed state it undoes). Absent from records written before it
    /// existed, and omitted when empty, so their hashes are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before_state: Option<Snapshot>,
    /// The state the step changes to: the state read back after an execution or a rollback
    /// (when a rollback starts: the before-state it will restore). Absent from earlier records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_state: Option<Snapshot>,
}

/// An installation-wide change (kill switch, circuit breaker, emergency-access verification,
/// settings) as it enters the audit trail, in the same chain as the action transitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsRecord {
    /// What changed (`kill_switch_on`, `breaker_tripped`, `settings_changed`, ...).
    pub setting_event: String,
    /// Who changed it: the principal, or `system` for the breaker tripping.
    pub actor: String,
    /// The credential the principal used (an API token's name); absent for local actors and
    /// `system`, and in records written before principals existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// Why (mandatory for people).
    pub comment: Option<String>,
    /// The safety state before the change.
    pub previous: serde_json::Value,
    /// The safety state after the change.
    pub value: serde_json::Value,
}

/// An action with everything recorded about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ActionDetail {
    /// The action and its current state.
    pub action: Action,
    /// The current plan (from suggestion, replaced by a re-plan that differed).
    pub plan: Option<Plan>,
    /// The before-state recorded when execution began.
    pub before: Option<Snapshot>,
    /// The after-state read back after execution (kept when the action is rolled back).
    pub after: Option<Snapshot>,
    /// The state read back after a rollback restored the before-state.
    #[serde(default)]
    pub restored: Option<Snapshot>,
    /// True when the rollback could only offer the access back as an invitation: the action
    /// is `rolled_back`, and the person has access again once they accept it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub pending_acceptance: bool,
    /// Until when rollback is allowed; absent for an irreversible change.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub rollback_expires_at: Option<OffsetDateTime>,
    /// Why the last execution or rollback failed.
    pub last_error: Option<String>,
}

/// Fields of an [`ActionDetail`] to overwrite together with a state change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DetailUpdate {
    /// New plan.
    pub plan: Option<Plan>,
    /// Before-state recorded at execution.
    pub before: Option<Snapshot>,
    /// After-state read back after execution.
    pub after: Option<Snapshot>,
    /// State read back after a rollback.
    pub restored: Option<Snapshot>,
    /// Whether that rollback left the access waiting for the person to accept an invitation.
    pub pending_acceptance: Option<bool>,
    /// Rollback deadline.
    pub rollback_expires_at: Option<OffsetDateTime>,
    /// Failure text; `Some(None)` clears it.
    pub last_error: Option<Option<String>>,
}

/// A state change to apply atomically: compare the action's state with `record.from`, move it
/// to `record.to`, apply `update`, append the transition and its audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The transition as it enters the audit.
    pub record: TransitionRecord,
    /// Detail fields to change with it.
    pub update: DetailUpdate,
}

/// One blast-radius window an execution must fit into.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SlotRequest {
    /// The limit key (`connector:okta`, `identity:alice`, `global`).
    pub key: String,
    /// Most executions allowed inside any window of length `window_secs`.
    pub limit: u32,
    /// Window length in seconds.
    pub window_secs: u64,
}

/// A window that has no room left.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct LimitReached {
    /// The window that is full.
    pub slot: SlotRequest,
    /// Executions already inside it.
    pub used: u32,
}

/// What [`Store::begin_execution`] did.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "returned once per execution; boxing buys nothing")]
pub enum BeginOutcome {
    /// Slots were reserved and the action is now `executing`.
    Started(Action),
    /// A window is full; nothing was written.
    LimitReached(LimitReached),
}

/// Which actions to list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ActionFilter {
    /// Only actions in this state.
    pub state: Option<State>,
    /// Only actions on this connector.
    pub connector: Option<String>,
}

/// Errors from a store.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// No action with this id.
    #[error("no action with id {0}")]
    NotFound(ActionId),
    /// The action's state changed since it was read (another process acted on it).
    #[error("action {id} is {actual}, not {expected}: another process changed it; read it again")]
    StateConflict {
        /// The action.
        id: ActionId,
        /// The state the change expected.
        expected: String,
        /// The state found.
        actual: State,
    },
    /// The safety state changed since it was read (another process changed a switch).
    #[error("the safety settings were changed by another process meanwhile; read them again and retry")]
    SafetyConflict,
    /// The store does not implement an optional ability.
    #[error("this store does not support {what}")]
    Unsupported {
        /// The ability.
        what: &'static str,
    },
    /// The store could not be read or written.
    #[error("store failure: {message}")]
    Backend {
        /// What failed, in plain words.
        message: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// Durable storage for the engine. Every method that changes state does so in one transaction
/// together with the transition row and its audit record.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Store: Send + Sync {
    /// Stores a new action with its first transition.
    async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<(), StoreError>;

    /// Reads an action with everything recorded about it.
    async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError>;

    /// Lists actions, oldest first.
    async fn list(&self, filter: &ActionFilter) -> Result<Vec<Action>, StoreError>;

    /// Every transition of one action, oldest first.
    async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError>;

    /// Applies a state change; fails with [`StoreError::StateConflict`] when the action is no
    /// longer in `change.record.from`.
    async fn apply(&self, change: &StateChange) -> Result<Action, StoreError>;

    /// In one transaction: when every window in `slots` has room (or `enforce` is false),
    /// reserves a slot in each at `change.record.at` and applies `change`.
    async fn begin_execution(
        &self,
        change: &StateChange,
        slots: &[SlotRequest],
        enforce: bool,
    ) -> Result<BeginOutcome, StoreError>;

    /// The installation's safety switches and facts. The default, for stores that do not keep
    /// them, is everything off and emergency access never verified.
    async fn safety_state(&self) -> Result<crate::SafetyState, StoreError> {
        Ok(crate::SafetyState::default())
    }

    /// In one transaction: when the stored safety state still equals `expected`, replaces it
    /// with `new` and appends `record` to the audit trail; otherwise fails with
    /// [`StoreError::SafetyConflict`] and writes nothing.
    async fn update_safety_state(
        &self,
        expected: &crate::SafetyState,
        new: &crate::SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError> {
        let _ = (expected, new, record);
        Err(StoreError::Unsupported { what: "keeping safety state (kill switch, breaker, settings)" })
    }

    /// Appends a record that changes no state (a refused execution) to the audit trail.
    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError> {
        let _ = record;
        Err(StoreError::Unsupported { what: "audit notes" })
    }

    /// Every limit slot reserved at or after `since`, as (key, instant), oldest first.
    async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError> {
        let _ = since;
        Err(StoreError::Unsupported { what: "reporting limit usage" })
    }

    /// The first full window among `slots` at `at`, without reserving anything (dry runs).
    async fn check_limits(&self, slots: &[SlotRequest], at: OffsetDateTime)
    -> Result<Option<LimitReached>, StoreError>;
}
