//! The contract every connector implements, and the values it exchanges with the engine.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{
    Account, AccountKey, Action, ActionKind, KindName, PermissionNeed, Permissions, PlannedChange, Snapshot, Target,
};

/// How well a change can be undone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Reversibility {
    /// Rollback restores the exact before-state.
    Reversible,
    /// Rollback does not restore the exact before-state: a detail is lost (an app profile), or
    /// the access is offered back as an invitation the person must accept, which the rollback
    /// reports as [`OutcomeStatus::PendingAcceptance`] rather than as restored access.
    Lossy,
    /// Cannot be undone (ended sessions, expired passwords).
    Irreversible,
}

impl fmt::Display for Reversibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Reversible => "reversible",
            Self::Lossy => "lossy",
            Self::Irreversible => "irreversible",
        })
    }
}

/// One (kind, grant type) a connector can carry out, and how safely.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Capability {
    /// The action kind.
    pub kind: KindName,
    /// The grant type in the connector's vocabulary.
    pub grant_type: String,
    /// How well the change can be undone.
    pub reversibility: Reversibility,
    /// Whether the connector can read the result back to verify it.
    pub observable: bool,
}

impl Capability {
    /// An observable capability (the connector reads the result back to verify it).
    pub fn new(kind: KindName, grant_type: impl Into<String>, reversibility: Reversibility) -> Self {
        Self { kind, grant_type: grant_type.into(), reversibility, observable: true }
    }

    /// Marks the capability as one whose result cannot be read back.
    pub fn unobservable(mut self) -> Self {
        self.observable = false;
        self
    }
}

/// Result of a connector health check.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Health {
    /// Whether the connector can reach its provider.
    pub healthy: bool,
    /// Human-readable detail.
    pub detail: String,
}

/// Whether a write changed anything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OutcomeStatus {
    /// The provider applied the change.
    Applied,
    /// The target was already in the requested state; nothing was written.
    AlreadyInState,
    /// The provider took the write as an invitation (or finds one already sent): the access
    /// returns only once the person accepts it. Only a rollback answers this; the state it
    /// leaves is [`Connector::pending_acceptance_state`].
    PendingAcceptance,
}

/// The result of a connector write.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Outcome {
    /// Whether the write changed anything.
    pub status: OutcomeStatus,
    /// Provider request identifiers, kept in the audit.
    pub request_ids: Vec<String>,
}

/// The result of reading a change back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Verification {
    /// The state read back.
    pub observed: Snapshot,
    /// Whether it equals the expected after-state.
    pub matches: bool,
}

/// The class of a connector failure, which decides what the engine does next.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum ConnectorErrorKind {
    /// The target does not exist.
    NotFound,
    /// Credentials are missing, wrong or expired.
    Unauthenticated,
    /// Credentials lack a permission.
    Forbidden,
    /// The provider asked us to slow down.
    Throttled {
        /// How long the provider asked us to wait, if it said.
        #[schemars(with = "Option<u64>")]
        #[serde(with = "opt_secs")]
        retry_after: Option<Duration>,
    },
    /// The target changed under us (ETag mismatch, concurrent modification).
    Conflict,
    /// A failure that may pass if retried.
    Transient,
    /// A failure that will not pass if retried.
    Permanent,
    /// The connector does not support this (kind, grant type).
    Unsupported,
    /// The target is not one the provider can act on as given: a field the grant type needs
    /// is missing or malformed. The caller's mistake; retrying the same target never helps.
    InvalidTarget,
}

impl fmt::Display for ConnectorErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotFound => f.write_str("not found"),
            Self::Unauthenticated => f.write_str("unauthenticated"),
            Self::Forbidden => f.write_str("forbidden"),
            Self::Throttled { retry_after: Some(d) } => {
                write!(f, "throttled (retry after {}s)", d.as_secs())
            }
            Self::Throttled { retry_after: None } => f.write_str("throttled"),
            Self::Conflict => f.write_str("conflict"),
            Self::Transient => f.write_str("transient failure"),
            Self::Permanent => f.write_str("permanent failure"),
            Self::Unsupported => f.write_str("unsupported"),
            Self::InvalidTarget => f.write_str("invalid target"),
        }
    }
}

mod opt_secs {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub(super) fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_some(&d.as_secs()),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_secs))
    }
}

/// A connector failure: its class, the provider's own message and its request id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema, thiserror::Error)]
#[error("{kind}: {message}{}", request_id.as_deref().map(|r| format!(" (request id {r})")).unwrap_or_default())]
pub struct ConnectorError {
    /// The class of failure.
    pub kind: ConnectorErrorKind,
    /// The provider's message, or ours when the provider gave none. Never contains secrets.
    pub message: String,
    /// The provider's request id, when it sent one.
    pub request_id: Option<String>,
}

impl ConnectorError {
    /// A new error without a request id.
    pub fn new(kind: ConnectorErrorKind, message: impl Into<String>) -> Self {
        Self { kind, message: message.into(), request_id: None }
    }

    /// Attaches the provider's request id.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        self.request_id = Some(id.into());
        self
    }

    /// A target that does not exist.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::NotFound, message)
    }

    /// A permanent failure.
    pub fn permanent(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Permanent, message)
    }

    /// A target the provider cannot act on as given (a field its grant type needs is missing
    /// or malformed).
    pub fn invalid_target(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::InvalidTarget, message)
    }

    /// A (kind, grant type) the connector does not support.
    pub fn unsupported(message: impl Into<String>) -> Self {
        Self::new(ConnectorErrorKind::Unsupported, message)
    }
}

/// A provider the engine can change. Object safe; stored as `Arc<dyn Connector>`.
///
/// Every write must be idempotent with respect to [`Action::idempotency_key`]: executing an
/// action again after a crash must not apply the change twice.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
#[async_trait]
pub trait Connector: Send + Sync {
    /// Stable identifier, as named in configuration (`sandbox`, `okta-prod`).
    fn id(&self) -> &str;

    /// Every (kind, grant type) this connector supports. Makes no provider request.
    fn capabilities(&self) -> Vec<Capability>;

    /// Whether the provider is reachable and answering.
    async fn health(&self) -> Result<Health, ConnectorError>;

    /// Every provider call the connector makes and the permission each needs, in provider
    /// terms. Makes no provider request; [`Connector::check_permissions`] judges this list.
    fn permission_map(&self) -> &'static [PermissionNeed];

    /// Judges each permission [`Connector::permission_map`] names: granted, missing, or
    /// unknown when the credentials cannot be inspected (never granted by default).
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError>;

    /// Reads and normalises the current state of `target`.
    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError>;

    /// States what `action` would change, given the current state. Writes nothing.
    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError>;

    /// Applies `action`. Returns [`OutcomeStatus::AlreadyInState`] when nothing needed doing.
    ///
    /// An error of kind [`ConnectorErrorKind::Throttled`] or [`ConnectorErrorKind::Transient`]
    /// from this call means the provider applied nothing (the connector retried short
    /// throttling itself and gave up before writing): the engine then puts the action back in
    /// `approved` to try again later, after reading the target back to confirm it still shows
    /// the before-state. A connector that cannot promise this reports another kind.
    async fn execute(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError>;

    /// Reads the target back and compares it with the planned after-state.
    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError>;

    /// Restores `before`, given that the target is now in `after`.
    async fn rollback(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Result<Outcome, ConnectorError>;

    /// The state a rollback of `action` leaves when its restoring write answered
    /// [`OutcomeStatus::PendingAcceptance`]: `after` (the state being undone) with the access
    /// `before` held offered back as a pending invitation, for the same permission or role.
    /// The engine accepts exactly this state as such a rollback's result. `None` (the default):
    /// the connector never restores access as an invitation.
    fn pending_acceptance_state(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Option<Snapshot> {
        let _ = (action, before, after);
        None
    }

    /// The action that must follow `action` once its rollback window has closed, given the
    /// state it left (`after`): for a credential rotation, the deletion of the old credential.
    /// The engine schedules it when `action` completes, not claimable before the window's end,
    /// and cancels it when `action` is rolled back first. `None` (the default): nothing follows.
    fn follow_up(&self, action: &Action, after: &Snapshot) -> Option<FollowUp> {
        let _ = (action, after);
        None
    }

    /// Settles a target that an interrupted `execute` of `action` left half-changed: `live`
    /// matches neither `before` nor the planned after-state. A connector whose change takes
    /// several writes (create a credential, store it, deactivate the old one) knows which of
    /// them it made, and brings the target back to `before` or forward to the after-state: a
    /// credential created but never stored is deleted, so no key nobody holds is left behind.
    /// The engine reads the target again and decides as usual. `None` (the default): the
    /// connector cannot tell, and the action fails as needing attention.
    async fn settle_interrupted(
        &self,
        action: &Action,
        before: &Snapshot,
        live: &Snapshot,
    ) -> Result<Option<Settled>, ConnectorError> {
        let _ = (action, before, live);
        Ok(None)
    }

    /// How many grants, groups, applications or dependants `action` reaches, given the
    /// target's state `before` (for a suspension, every group and application the account
    /// holds). The blast-radius score counts it. `None` (the default): not counted.
    async fn reach(&self, action: &Action, before: &Snapshot) -> Result<Option<u32>, ConnectorError> {
        let _ = (action, before);
        Ok(None)
    }

    /// Finds the account `key` names, resolved to the provider's canonical id, with what the
    /// connector can see of it (status, groups, sessions). A [`AccountKey::Person`] is matched
    /// only against fields the organisation controls and the provider verifies (a login, a
    /// primary email, an admin-set alias), never a profile field the account holder sets; a
    /// [`AccountKey::Link`] names the account itself. Reads only.
    ///
    /// `Ok(None)`: the provider has no such account. The default answers
    /// [`ConnectorErrorKind::Unsupported`]: the connector cannot look people up, and incident
    /// response passes over it.
    async fn find_account(&self, key: &AccountKey) -> Result<Option<Account>, ConnectorError> {
        let _ = key;
        Err(ConnectorError::unsupported("this connector cannot look up a person's account"))
    }
}

/// An action a connector asks for after another completed ([`Connector::follow_up`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    /// What the follow-up does.
    pub kind: ActionKind,
    /// What it does it to, in terms that cannot drift (a key id, not a selector).
    pub target: Target,
    /// Why, for approvers and the audit.
    pub reason: String,
}

/// What [`Connector::settle_interrupted`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settled {
    /// What was undone or finished, in plain words (kept in the audit).
    pub note: String,
    /// Provider request identifiers of the writes it took.
    pub request_ids: Vec<String>,
}

/// Finds the capability for `(kind, target.grant_type)`, if the connector declares it.
pub fn find_capability(caps: &[Capability], kind: KindName, target: &Target) -> Option<Capability> {
    caps.iter().find(|c| c.kind == kind && c.grant_type == target.grant_type).cloned()
}

/// Refuses a write to a target whose live snapshot is protected: the engine's gates refuse it
/// first, and this keeps a direct caller of a connector (an embedder, a test) from doing it.
pub fn refuse_protected(target: &Target, live: &Snapshot) -> Result<(), ConnectorError> {
    if live.protected {
        return Err(ConnectorError::new(
            ConnectorErrorKind::Forbidden,
            format!("{target} is protected; the connector will not change it"),
        ));
    }
    Ok(())
}

/// The capability `action` needs, or the [`ConnectorErrorKind::Unsupported`] error a connector
/// returns before any provider request, naming `provider` and what it does support.
pub fn require_capability(caps: &[Capability], provider: &str, action: &Action) -> Result<Capability, ConnectorError> {
    find_capability(caps, action.kind.name(), &action.target).ok_or_else(|| {
        let supported: Vec<String> = caps.iter().map(|c| format!("{}/{}", c.kind, c.grant_type)).collect();
        ConnectorError::unsupported(format!(
            "{provider} cannot {} a `{}` grant (supported: {})",
            action.kind.name(),
            action.target.grant_type,
            supported.join(", ")
        ))
    })
}
