//! The durable store of actions, transitions, audit records, principals, safety state and
//! limit slots, as a set of traits by concern.
//!
//! | trait | concern |
//! |---|---|
//! | [`ActionStore`] | actions, their transitions, compare-and-set state changes, execution start with slot reservation, keyset-paged listing, due-time queries |
//! | [`AuditLog`] | the append-only, hash-chained audit log: paged reads, verification, adoption, notes |
//! | [`PrincipalStore`] | principals, API tokens (hashes only), credential lookup, changes waiting for a second admin |
//! | [`SafetyStore`] | the installation's safety switches and settings |
//! | [`LimitStore`] | blast-radius windows: checks without reserving, usage reports |
//! | [`ActionLeases`] | leases on executing and rolling-back actions: renewal, takeover of expired ones |
//! | [`LeaseStore`] | named leases for single-leader jobs |
//! | [`SessionStore`] | the approval page's sessions (by the hash of their id), shared by every replica |
//! | [`CampaignStore`] | named imports of many findings: their entries and how far the import got |
//! | [`ConnectionStore`] | managed connections (connectors created at run time, secrets sealed), compare-and-set on their revision, each change audited |
//! | [`DeliveryStore`] | each event and audit sink's high-water mark in the audit log (the outbox), and the records a sink refused |
//! | [`DocumentStore`] | small JSON documents by collection (playbooks, playbook runs, identity links), compare-and-set on their revision, an audit note in the same transaction |
//! | [`TenantStore`] | the installation's tenants, and a handle scoped to each: every other concern reads and writes only its handle's tenant |
//!
//! Moving an installation between stores is a separate, optional contract:
//! [`transfer::InstallationExport`] and [`transfer::InstallationImport`], driven by
//! [`transfer::copy_installation`].
//!
//! [`Store`] is all of them (a blanket impl gives it to every type that implements each), and
//! `Arc<dyn Store>` is what the engine, the runtime, the API and the CLI hold.
//!
//! # Isolation
//!
//! Every method that writes is one transaction that is *serializable* with every other write
//! to the same store, whichever process makes it: two writers never interleave between the
//! compare and the write of a compare-and-set, and an audit entry is written in the same
//! transaction as the change it records, or neither is. Reads see one committed snapshot per
//! call (a page is consistent within itself; successive pages may see later commits, and keyset
//! paging then neither repeats nor skips a row that existed throughout).

mod action;
mod audit;
mod campaigns;
mod connections;
mod delivery;
mod documents;
mod lease;
mod limits;
mod principals;
mod safety;
mod sessions;
mod tenants;
pub mod transfer;

pub use action::{ActionFilter, ActionStore, Page, PageRequest};
pub use audit::{
    AuditArchive, AuditBody, AuditFilter, AuditLog, AuditRecord, Break, BreakKind, ChainHead, ChainReport,
    CheckpointVerdict, LeafHash, SequencingBacklog, StoredPublicKey, StoredTreeHead,
};
pub use campaigns::{
    Campaign, CampaignProgress, CampaignReason, CampaignStore, MAX_CAMPAIGN_NAME, RUN_PREFIX,
    advance as advance_campaign, check_campaign_name,
};
pub use connections::{
    ConnectionHealth, ConnectionScope, ConnectionStore, MAX_CONNECTION_ID, ManagedConnection, SealedConnection,
    changed as connection_changed, check_connection_id, created_record as connection_created_record,
    deleted_record as connection_deleted_record, next_revision as next_connection_revision,
    rewrapped_record as connection_rewrapped_record, updated_record as connection_updated_record,
};
pub use delivery::{DeliveryStore, Fence, MarkAdvance, ParkedRecord, ReplayOutcome, Settlement, SinkMark};
pub use documents::{Document, DocumentStore, DocumentWrite, MAX_DOCUMENT_ID, check_document_id, document_changed};
pub use lease::{ActionLeases, Lease, LeaseRequest, LeaseStore, expiry};
pub use limits::{LimitStore, tenant_limit_key, tenant_limit_key_of, tenant_slots};
pub use principals::{
    ApiToken, Credential, PendingChange, PendingStatus, Principal, PrincipalKind, PrincipalStore, check_principal_name,
};
pub use safety::SafetyStore;
pub use sessions::{Flash, SessionIdHash, SessionStore, UiSession};
pub use tenants::{TenantStore, default_tenant_record};

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
    /// The blast-radius window that was full, on the record of an action a limit held (so the
    /// `held` event carries it). Absent from every other record, and from earlier ones.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<LimitReached>,
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
    /// The action that caused it, when one did (the execution that tripped the breaker, the
    /// completed action whose fix did not hold). Absent otherwise, and from earlier records.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_id: Option<ActionId>,
}

impl SettingsRecord {
    /// The record of a change `actor` made (its name and the credential it used), with a
    /// reason: what the stores write for principal and token changes. Never holds a token or
    /// its hash; the caller puts only what may be audited into `previous` and `value`.
    pub fn by_actor(
        event: &str,
        actor: &crate::Actor,
        at: OffsetDateTime,
        comment: String,
        previous: serde_json::Value,
        value: serde_json::Value,
    ) -> Self {
        Self {
            setting_event: event.to_owned(),
            actor: actor.name.clone(),
            credential: actor.credential.clone(),
            at,
            comment: Some(comment),
            previous,
            value,
            action_id: None,
        }
    }

    /// `actor` created principal `name` of `kind` holding `role`.
    pub fn principal_created(
        actor: &crate::Actor,
        at: OffsetDateTime,
        name: &str,
        kind: PrincipalKind,
        role: crate::Role,
    ) -> Self {
        let value = serde_json::json!({"principal": name, "kind": kind, "role": role});
        Self::by_actor("principal_created", actor, at, format!("principal `{name}`"), serde_json::Value::Null, value)
    }

    /// `actor` changed principal `name`'s role from `from` to `to`, saying why.
    pub fn principal_role_changed(
        actor: &crate::Actor,
        at: OffsetDateTime,
        name: &str,
        from: crate::Role,
        to: crate::Role,
        comment: &str,
    ) -> Self {
        Self::by_actor(
            "principal_role_changed",
            actor,
            at,
            comment.to_owned(),
            serde_json::json!({"principal": name, "role": from}),
            serde_json::json!({"principal": name, "role": to}),
        )
    }

    /// `actor` revoked principal `name` and with it `revoked_tokens` live tokens, saying why.
    pub fn principal_revoked(
        actor: &crate::Actor,
        at: OffsetDateTime,
        name: &str,
        revoked_tokens: u64,
        comment: &str,
    ) -> Self {
        Self::by_actor(
            "principal_revoked",
            actor,
            at,
            comment.to_owned(),
            serde_json::json!({"principal": name}),
            serde_json::json!({"principal": name, "revoked_tokens": revoked_tokens}),
        )
    }

    /// `actor` created the API token `name` of `principal`, valid until `expires_at` (never
    /// the token or its hash).
    pub fn token_created(
        actor: &crate::Actor,
        at: OffsetDateTime,
        principal: &str,
        name: &str,
        expires_at: OffsetDateTime,
    ) -> Self {
        let expires = expires_at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default();
        let value = serde_json::json!({"principal": principal, "token": name, "expires_at": expires});
        let comment = format!("API token `{name}` of `{principal}`");
        Self::by_actor("token_created", actor, at, comment, serde_json::Value::Null, value)
    }

    /// `actor` revoked the API token `name` of `owner`.
    pub fn token_revoked(actor: &crate::Actor, at: OffsetDateTime, owner: &str, name: &str) -> Self {
        let value = serde_json::json!({"principal": owner, "token": name});
        let comment = format!("API token `{name}` of `{owner}`");
        Self::by_actor("token_revoked", actor, at, comment, serde_json::Value::Null, value)
    }
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
    /// Until when the action may wait for approval, set when it enters `pending_approval`;
    /// absent on actions stored before it existed (they are due at once, and the engine
    /// judges them by their age, as before).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub approval_expires_at: Option<OffsetDateTime>,
    /// An `approved` action put back by a requeue (the provider throttled it, or failed
    /// transiently, with nothing written) is not claimed for execution before this time.
    /// Stores keep it in a column, so [`ActionStore::claimable`] skips it without decoding.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub not_before: Option<OffsetDateTime>,
    /// How many times an execution of this action was requeued; the engine fails the action
    /// instead once this reaches its bound.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub attempts: u32,
    /// The action this one follows ([`crate::Connector::follow_up`]: the deletion of a rotated
    /// credential follows its rotation). It is not executed before its `not_before` (the end
    /// of that action's rollback window), and only while that action is still `completed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub follows: Option<crate::ActionId>,
    /// The lease *this process* holds on the action, when it got the detail together with one
    /// (the begin of an execution or rollback, a takeover): the engine fences every change it
    /// makes with its epoch. Never stored nor serialized; stores return `None` here, so a
    /// process that merely reads an action can never fence with someone else's epoch.
    #[serde(skip)]
    #[schemars(skip)]
    pub held_lease: Option<Lease>,
}

#[allow(clippy::trivially_copy_pass_by_ref, reason = "serde's skip_serializing_if passes a reference")]
fn is_zero(n: &u32) -> bool {
    *n == 0
}

impl ActionDetail {
    /// When the system must look at this action again without anyone asking: the approval
    /// deadline of a `pending_approval` action, the rollback window's end of a
    /// `rollback_requested` one; `None` for every other state. Stores keep it in an indexed
    /// column, so [`ActionStore::due`] never scans.
    pub fn due_at(&self) -> Option<OffsetDateTime> {
        match self.action.state {
            State::PendingApproval => Some(self.approval_expires_at.unwrap_or(self.action.created_at)),
            State::RollbackRequested => self.rollback_expires_at,
            _ => None,
        }
    }
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
    /// Approval deadline (when the action goes back to `pending_approval`).
    pub approval_expires_at: Option<OffsetDateTime>,
    /// Failure text; `Some(None)` clears it.
    pub last_error: Option<Option<String>>,
    /// Not-before time of a requeued action; `Some(None)` clears it.
    pub not_before: Option<Option<OffsetDateTime>>,
    /// New count of requeued executions.
    pub attempts: Option<u32>,
}

impl DetailUpdate {
    /// Merges this update into `detail`: each `Some` field replaces the stored one, `None`
    /// leaves it alone, and `last_error: Some(None)` clears the failure text. Every store calls
    /// this, so the merge rule lives once.
    pub fn merge_into(&self, detail: &mut ActionDetail) {
        if let Some(plan) = &self.plan {
            detail.plan = Some(plan.clone());
        }
        if let Some(before) = &self.before {
            detail.before = Some(before.clone());
        }
        if let Some(after) = &self.after {
            detail.after = Some(after.clone());
        }
        if let Some(restored) = &self.restored {
            detail.restored = Some(restored.clone());
        }
        if let Some(pending) = self.pending_acceptance {
            detail.pending_acceptance = pending;
        }
        if let Some(until) = self.rollback_expires_at {
            detail.rollback_expires_at = Some(until);
        }
        if let Some(approval) = self.approval_expires_at {
            detail.approval_expires_at = Some(approval);
        }
        if let Some(last_error) = &self.last_error {
            detail.last_error.clone_from(last_error);
        }
        if let Some(not_before) = self.not_before {
            detail.not_before = not_before;
        }
        if let Some(attempts) = self.attempts {
            detail.attempts = attempts;
        }
    }
}

impl StateChange {
    /// The action as it stands after this change: `detail` moved to `record.to` at
    /// `record.at`, with [`DetailUpdate::merge_into`] applied. The compare half of the
    /// compare-and-set is the store's.
    pub fn applied_to(&self, mut detail: ActionDetail) -> ActionDetail {
        self.update.merge_into(&mut detail);
        detail.action.state = self.record.to;
        detail.action.updated_at = self.record.at;
        detail
    }
}

/// A state change to apply atomically: compare the action's state with `record.from`, move it
/// to `record.to`, apply `update`, append the transition and its audit record.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The transition as it enters the audit.
    pub record: TransitionRecord,
    /// Detail fields to change with it.
    pub update: DetailUpdate,
    /// The lease epoch the writer holds: when set, the change is refused with
    /// [`StoreError::StaleLease`] (nothing written) unless the action's stored epoch is this
    /// one. Every change a lease holder makes carries it.
    pub fence: Option<u64>,
    /// Grant a lease with this change (the move to `executing` or `rolling_back`): the next
    /// epoch, expiring `ttl` after the store's clock; read it back with
    /// [`ActionLeases::lease`]. A change to any other state ends the current lease.
    pub lease: Option<LeaseRequest>,
}

impl StateChange {
    /// A change with no lease step: no fence, no grant.
    pub fn new(record: TransitionRecord, update: DetailUpdate) -> Self {
        Self { record, update, fence: None, lease: None }
    }
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
    /// When the window admits an execution again, if nothing else starts meanwhile: the
    /// moment enough of the executions inside it have aged out of it. `None` when the store
    /// cannot tell (a limit of 0 never admits one).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub frees_at: Option<OffsetDateTime>,
}

impl LimitReached {
    /// The window `slot` with `used` executions inside, the oldest of which that must age out
    /// for it to admit one more (the `used - limit + 1`th oldest) was recorded at `kth_oldest`.
    pub fn new(slot: SlotRequest, used: u32, kth_oldest: Option<OffsetDateTime>) -> Self {
        let length = time::Duration::seconds(i64::try_from(slot.window_secs).unwrap_or(i64::MAX));
        let frees_at = kth_oldest.filter(|_| slot.limit > 0).and_then(|t| t.checked_add(length));
        Self { slot, used, frees_at }
    }

    /// Which of the executions inside the window must age out for it to admit one more,
    /// counted from the oldest at 0: `used - limit`; `None` when the window never admits one.
    pub fn aging_index(slot: &SlotRequest, used: u32) -> Option<u32> {
        (slot.limit > 0).then(|| used.saturating_sub(slot.limit))
    }
}

/// What [`ActionStore::begin_execution`] did.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant, reason = "returned once per execution; boxing buys nothing")]
pub enum BeginOutcome {
    /// Slots were reserved and the action is now `executing`.
    Started(Action),
    /// A window is full; nothing was written.
    LimitReached(LimitReached),
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
    /// The lease could not be renewed: it expired by the store's clock, or another holder took
    /// the action over. The holder makes no further provider write.
    #[error("the lease on {what} was lost (expired or taken over); no further write is made")]
    LeaseLost {
        /// The action id or lease name.
        what: String,
    },
    /// A state change named a lease epoch older than the stored one: the action was taken
    /// over, and nothing was written.
    #[error("action {id} is held under lease epoch {current}, not {fence}: it was taken over; nothing was written")]
    StaleLease {
        /// The action.
        id: ActionId,
        /// The epoch the change carried.
        fence: u64,
        /// The stored epoch.
        current: u64,
    },
    /// A tree head or public key of the verifiable log was not stored: another signer stored
    /// a head meanwhile, the head would shrink the log or exceed it, or a key id is taken by
    /// another key. Nothing was written.
    #[error("the audit log refused it: {message}")]
    AuditLogConflict {
        /// What was refused and why, in plain words.
        message: String,
    },
    /// A sink's delivery mark moved since the relay read it (another relay delivered
    /// meanwhile); nothing was written.
    #[error("the delivery mark of sink `{sink}` is {found}, not {expected}: another relay moved it; read it again")]
    DeliveryConflict {
        /// The sink.
        sink: String,
        /// The mark the move expected.
        expected: u64,
        /// The mark found.
        found: u64,
    },
    /// A campaign write was refused (its name is taken, or another process got further in
    /// its import); nothing was written.
    #[error("{message}")]
    CampaignConflict {
        /// What was refused and why, in plain words.
        message: String,
    },
    /// No campaign with this name.
    #[error("no campaign named `{0}`")]
    CampaignNotFound(String),
    /// A tenant of this name exists already.
    #[error("tenant `{0}` exists already")]
    TenantConflict(String),
    /// A connection with this id exists already (in the store, or in the configuration
    /// file); nothing was written.
    #[error("{message}")]
    ConnectionConflict {
        /// What was refused and why, in plain words.
        message: String,
    },
    /// No managed connection with this id.
    #[error("no managed connection `{0}`")]
    ConnectionNotFound(String),
    /// The connection changed since it was read (another admin or a key rotation changed
    /// it); nothing was written.
    #[error("connection `{id}` is at revision {found}, not {expected}: it was changed meanwhile; read it again")]
    ConnectionChanged {
        /// The connection.
        id: String,
        /// The revision the change expected.
        expected: u64,
        /// The revision found.
        found: u64,
    },
    /// The document changed since it was read (or exists when it was to be created); nothing
    /// was written.
    #[error("{collection} `{id}` is at revision {found}, not {expected}: it was changed meanwhile; read it again")]
    DocumentChanged {
        /// The collection.
        collection: String,
        /// The document.
        id: String,
        /// The revision the write expected (0: not to exist).
        expected: u64,
        /// The revision found (0: it does not exist).
        found: u64,
    },
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

/// Durable storage for the engine and its adapters: every concern of the store at once.
///
/// Implement each of them; the blanket impl makes the type a `Store`. Everything holds an
/// `Arc<dyn Store>`.
pub trait Store:
    ActionStore
    + ActionLeases
    + LeaseStore
    + AuditLog
    + PrincipalStore
    + SafetyStore
    + LimitStore
    + SessionStore
    + DeliveryStore
    + CampaignStore
    + TenantStore
    + ConnectionStore
    + DocumentStore
{
}

impl<
    T: ActionStore
        + ActionLeases
        + LeaseStore
        + AuditLog
        + PrincipalStore
        + SafetyStore
        + LimitStore
        + SessionStore
        + DeliveryStore
        + CampaignStore
        + TenantStore
        + ConnectionStore
        + DocumentStore
        + ?Sized,
> Store for T
{
}

#[cfg(any(test, feature = "mocks"))]
mockall::mock! {
    /// A mock of every store trait at once, for engine tests.
    pub Store {}

    #[async_trait::async_trait]
    impl ActionStore for Store {
        async fn create_action(&self, detail: &ActionDetail, record: &TransitionRecord) -> Result<Option<u64>, StoreError>;
        async fn get(&self, id: ActionId) -> Result<ActionDetail, StoreError>;
        async fn action_by_handle(&self, handle: u64) -> Result<Option<ActionId>, StoreError>;
        async fn list(&self, filter: &ActionFilter, page: &PageRequest) -> Result<Page<Action>, StoreError>;
        async fn transitions(&self, id: ActionId) -> Result<Vec<TransitionRecord>, StoreError>;
        async fn apply(&self, change: &StateChange) -> Result<Action, StoreError>;
        async fn begin_execution(
            &self,
            change: &StateChange,
            slots: &[SlotRequest],
            enforce: bool,
        ) -> Result<BeginOutcome, StoreError>;
        async fn due(&self, now: OffsetDateTime, limit: usize) -> Result<Vec<ActionDetail>, StoreError>;
        async fn claimable(
            &self,
            now: OffsetDateTime,
            connector: Option<String>,
            limit: usize,
        ) -> Result<Vec<ActionDetail>, StoreError>;
        async fn count_by_state(&self) -> Result<std::collections::BTreeMap<State, u64>, StoreError>;
    }

    #[async_trait::async_trait]
    impl ActionLeases for Store {
        async fn lease(&self, id: ActionId) -> Result<Option<Lease>, StoreError>;
        async fn renew_lease(&self, id: ActionId, lease: &Lease, ttl: std::time::Duration) -> Result<Lease, StoreError>;
        async fn take_over_expired(
            &self,
            request: &LeaseRequest,
            limit: usize,
        ) -> Result<Vec<(ActionDetail, Lease)>, StoreError>;
    }

    #[async_trait::async_trait]
    impl LeaseStore for Store {
        async fn acquire_lease(&self, name: &str, request: &LeaseRequest) -> Result<Option<Lease>, StoreError>;
        async fn renew_named_lease(&self, name: &str, lease: &Lease, ttl: std::time::Duration) -> Result<Lease, StoreError>;
        async fn release_lease(&self, name: &str, lease: &Lease) -> Result<(), StoreError>;
    }

    #[async_trait::async_trait]
    impl AuditLog for Store {
        async fn audit_page(
            &self,
            filter: &AuditFilter,
            after_seq: Option<u64>,
            limit: usize,
        ) -> Result<Vec<AuditRecord>, StoreError>;
        async fn verify_audit(&self) -> Result<ChainReport, StoreError>;
        async fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError>;
        async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError>;
        async fn audit_size(&self) -> Result<u64, StoreError>;
        async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError>;
        async fn store_tree_head(&self, head: &StoredTreeHead, previous_size: Option<u64>) -> Result<(), StoreError>;
        async fn latest_tree_head(&self) -> Result<Option<StoredTreeHead>, StoreError>;
        async fn tree_head_at(&self, tree_size: u64) -> Result<Option<StoredTreeHead>, StoreError>;
        async fn publish_key(&self, key: &StoredPublicKey) -> Result<(), StoreError>;
        async fn published_keys(&self) -> Result<Vec<StoredPublicKey>, StoreError>;
        async fn archive_audit(&self, archive: &AuditArchive) -> Result<u64, StoreError>;
        async fn sequence_pending(&self) -> Result<u64, StoreError>;
        async fn unsequenced(&self) -> Result<u64, StoreError>;
        async fn sequencing_backlog(&self) -> Result<SequencingBacklog, StoreError>;
        fn take_sequencing_lags(&self) -> Vec<std::time::Duration>;
    }

    #[async_trait::async_trait]
    impl PrincipalStore for Store {
        async fn create_principal(
            &self,
            name: &str,
            kind: PrincipalKind,
            role: crate::Role,
            actor: &crate::Actor,
            at: OffsetDateTime,
        ) -> Result<Principal, StoreError>;
        async fn principal(&self, name: &str) -> Result<Option<Principal>, StoreError>;
        async fn list_principals(&self) -> Result<Vec<Principal>, StoreError>;
        async fn set_principal_role(
            &self,
            name: &str,
            expected: crate::Role,
            role: crate::Role,
            actor: &crate::Actor,
            comment: &str,
            at: OffsetDateTime,
        ) -> Result<Principal, StoreError>;
        async fn revoke_principal(
            &self,
            name: &str,
            actor: &crate::Actor,
            comment: &str,
            at: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn create_token(
            &self,
            principal: &str,
            name: &str,
            token_hash: &str,
            expires_at: OffsetDateTime,
            actor: &crate::Actor,
            at: OffsetDateTime,
        ) -> Result<ApiToken, StoreError>;
        async fn list_tokens(&self) -> Result<Vec<ApiToken>, StoreError>;
        async fn revoke_token(&self, name: &str, actor: &crate::Actor, at: OffsetDateTime) -> Result<bool, StoreError>;
        async fn set_token_tenants(
            &self,
            name: &str,
            tenants: &[crate::TenantId],
            actor: &crate::Actor,
            at: OffsetDateTime,
        ) -> Result<bool, StoreError>;
        async fn credential_by_hash(&self, token_hash: &str, now: OffsetDateTime) -> Result<Option<Credential>, StoreError>;
        async fn propose_change(&self, change: &PendingChange, proposer: &crate::Actor) -> Result<(), StoreError>;
        async fn pending_change(&self, id: &str) -> Result<Option<PendingChange>, StoreError>;
        async fn pending_changes(&self, status: Option<PendingStatus>) -> Result<Vec<PendingChange>, StoreError>;
        async fn overdue_changes(&self, now: OffsetDateTime) -> Result<Vec<PendingChange>, StoreError>;
        async fn close_change(
            &self,
            id: &str,
            to: PendingStatus,
            actor: &crate::Actor,
            note: Option<String>,
            at: OffsetDateTime,
        ) -> Result<PendingChange, StoreError>;
    }

    #[async_trait::async_trait]
    impl SafetyStore for Store {
        async fn safety_state(&self) -> Result<crate::SafetyState, StoreError>;
        async fn update_safety_state(
            &self,
            expected: &crate::SafetyState,
            new: &crate::SafetyState,
            record: &SettingsRecord,
        ) -> Result<(), StoreError>;
    }

    #[async_trait::async_trait]
    impl LimitStore for Store {
        async fn check_limits(&self, slots: &[SlotRequest], at: OffsetDateTime)
        -> Result<Option<LimitReached>, StoreError>;
        async fn slots_since(&self, since: OffsetDateTime) -> Result<Vec<(String, OffsetDateTime)>, StoreError>;
    }

    #[async_trait::async_trait]
    impl SessionStore for Store {
        async fn create_session(&self, id: &SessionIdHash, session: &UiSession) -> Result<(), StoreError>;
        async fn session(&self, id: &SessionIdHash, now: OffsetDateTime) -> Result<Option<UiSession>, StoreError>;
        async fn set_flash(&self, id: &SessionIdHash, flash: &Flash) -> Result<bool, StoreError>;
        async fn take_flash(&self, id: &SessionIdHash) -> Result<Option<Flash>, StoreError>;
        async fn delete_session(&self, id: &SessionIdHash) -> Result<bool, StoreError>;
        async fn prune_sessions(&self, now: OffsetDateTime, keep: usize) -> Result<u64, StoreError>;
    }

    #[async_trait::async_trait]
    impl DeliveryStore for Store {
        async fn register_sink(&self, sink: &str, start: u64, at: OffsetDateTime) -> Result<u64, StoreError>;
        async fn sink_marks(&self) -> Result<Vec<SinkMark>, StoreError>;
        async fn advance_sink(&self, advance: &MarkAdvance) -> Result<(), StoreError>;
        async fn parked(&self, sink: Option<String>) -> Result<Vec<ParkedRecord>, StoreError>;
        async fn request_replay(&self, sink: &str, seqs: Option<Vec<u64>>) -> Result<u64, StoreError>;
        async fn settle_parked(&self, settlement: &Settlement) -> Result<(), StoreError>;
    }

    #[async_trait::async_trait]
    impl CampaignStore for Store {
        async fn create_campaign(&self, campaign: &Campaign, entries: &[serde_json::Value]) -> Result<(), StoreError>;
        async fn campaign(&self, name: &str) -> Result<Option<Campaign>, StoreError>;
        async fn campaigns(&self) -> Result<Vec<Campaign>, StoreError>;
        async fn campaign_entries(
            &self,
            name: &str,
            from: u64,
            limit: usize,
        ) -> Result<Vec<(u64, serde_json::Value)>, StoreError>;
        async fn record_campaign_progress(&self, name: &str, progress: &CampaignProgress) -> Result<Campaign, StoreError>;
    }

    #[async_trait::async_trait]
    impl TenantStore for Store {
        fn for_tenant(&self, tenant: &crate::TenantId) -> std::sync::Arc<dyn Store>;
        async fn create_tenant(&self, tenant: &crate::Tenant, record: &SettingsRecord) -> Result<(), StoreError>;
        async fn tenant(&self, name: &crate::TenantId) -> Result<Option<crate::Tenant>, StoreError>;
        async fn tenants(&self) -> Result<Vec<crate::Tenant>, StoreError>;
    }

    #[async_trait::async_trait]
    impl ConnectionStore for Store {
        fn connection_tenant(&self) -> String;
        async fn create_connection(
            &self,
            connection: &ManagedConnection,
            actor: &crate::Actor,
        ) -> Result<ManagedConnection, StoreError>;
        async fn connection(&self, id: &str) -> Result<Option<ManagedConnection>, StoreError>;
        async fn connections(&self) -> Result<Vec<ManagedConnection>, StoreError>;
        async fn update_connection(
            &self,
            id: &str,
            expected_revision: u64,
            new: &ManagedConnection,
            actor: &crate::Actor,
        ) -> Result<ManagedConnection, StoreError>;
        async fn delete_connection(
            &self,
            id: &str,
            expected_revision: u64,
            actor: &crate::Actor,
            at: OffsetDateTime,
        ) -> Result<(), StoreError>;
        async fn record_connection_health(&self, id: &str, health: &ConnectionHealth) -> Result<(), StoreError>;
        async fn connections_revision(&self) -> Result<u64, StoreError>;
        async fn all_sealed_connections(&self) -> Result<Vec<SealedConnection>, StoreError>;
        async fn replace_sealed(
            &self,
            tenant: &str,
            id: &str,
            expected_revision: u64,
            secrets: &serde_json::Value,
            actor: &crate::Actor,
            at: OffsetDateTime,
        ) -> Result<u64, StoreError>;
    }

    #[async_trait::async_trait]
    impl DocumentStore for Store {
        async fn put_document(&self, write: &DocumentWrite) -> Result<Document, StoreError>;
        async fn document(&self, collection: &str, id: &str) -> Result<Option<Document>, StoreError>;
        async fn documents(&self, collection: &str) -> Result<Vec<Document>, StoreError>;
    }
}

/// Every store trait, for `use remediation_core::store::prelude::*;` where methods of several
/// concerns are called on a concrete store.
pub mod prelude {
    pub use super::{
        ActionLeases, ActionStore, AuditLog, CampaignStore, ConnectionStore, DeliveryStore, DocumentStore, LeaseStore,
        LimitStore, PrincipalStore, SafetyStore, SessionStore, Store, TenantStore,
    };
}
