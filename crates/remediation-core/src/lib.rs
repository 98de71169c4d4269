//! Domain types, the pure action lifecycle and the [`Engine`] of the remediation project.
//!
//! This crate performs no I/O and knows nothing of HTTP, SQL or any provider. It defines the
//! traits the rest of the workspace implements: [`Connector`] (a provider), [`Store`]
//! (durable state and audit), [`Clock`] (time), [`SafetyPolicy`] (gates and modes) and
//! [`LimitPolicy`] (blast-radius windows).
//!
//! # Example
//!
//! The lifecycle is a pure function of state, event and role:
//!
//! ```
//! use remediation_core::{Event, Role, State, transition};
//!
//! let next = transition(State::PendingApproval, Event::Approve { quorum_reached: true }, Role::Approver)?;
//! assert_eq!(next, State::Approved);
//! // A viewer cannot approve, and nothing leaves a terminal state.
//! assert!(transition(State::PendingApproval, Event::Approve { quorum_reached: true }, Role::Viewer).is_err());
//! assert!(transition(State::RolledBack, Event::Rollback, Role::Admin).is_err());
//! # Ok::<(), remediation_core::TransitionError>(())
//! ```

mod account;
mod action;
mod cached;
pub mod clock;
mod connector;
pub mod diff;
mod engine;
#[cfg(test)]
mod engine_tests;
mod error;
mod events;
pub mod factory;
mod finding;
pub mod hash;
pub mod identifier;
pub mod lifecycle;
mod permission;
pub mod policy;
pub mod secret_source;
mod snapshot;
pub mod store;
mod tenant;

pub use account::{ACCOUNT_GRANT_TYPE, Account, AccountKey, MAX_PERSON_KEY, check_person_key};
pub use action::{Action, ActionId, ActionKind, ActionRequest, CampaignEntry, KindName, Mode, Target, parse_handle};
pub use cached::{CachedChecks, DEFAULT_CHECK_TTL};
pub use clock::{Clock, ManualClock, SystemClock};
pub use connector::{
    Capability, Connector, ConnectorError, ConnectorErrorKind, FollowUp, Health, Outcome, OutcomeStatus, Reversibility,
    Settled, Verification, find_capability, refuse_protected, require_capability,
};
pub use engine::{
    Actor, Engine, EngineParts, ExecuteOutcome, FailpointHook, FixCheck, GLOBAL_LIMIT_KEY, PLAN_BINDING_RULE,
    Preapproval, REQUEUE_ATTEMPTS, REQUEUE_BACKOFF, REQUEUE_BACKOFF_CAP, Recovery, RollbackOutcome, Suggestion,
    failpoints,
};
pub use error::{EngineError, error_chain};
pub use events::{
    CLOUDEVENTS_SPEC_VERSION, CloudEvent, DEFAULT_EVENT_SOURCE, DEFAULT_TENANT, DID_NOT_HOLD_EVENT, DeliverFrom,
    DeliveryError, EVENT_TYPE_PREFIX, EngineEvent, EventSink, Undelivered,
};
pub use finding::{Finding, Guidance, Severity, guidance};
pub use identifier::IdentifierError;
pub use lifecycle::{Event, Role, State, TransitionError, initial_state, transition};
pub use permission::{ANY_GRANT_TYPE, Grant, PermissionNeed, Permissions, Step, permission_table};
pub use policy::{
    GateContext, GateOutcome, LimitPolicy, PolicyDecision, Risk, RiskLevel, SafetyPolicy, SafetyState, Stage,
};
pub use snapshot::{CanonicalTarget, Plan, PlannedChange, Snapshot};
pub use store::{
    ActionDetail, ActionFilter, ActionLeases, ActionStore, ApiToken, AuditArchive, AuditBody, AuditFilter, AuditLog,
    AuditRecord, BeginOutcome, Break, BreakKind, ChainHead, ChainReport, CheckpointVerdict, ConnectionStore,
    Credential, DeliveryStore, DetailUpdate, Document, DocumentStore, DocumentWrite, Fence, LeafHash, Lease,
    LeaseRequest, LeaseStore, LimitReached, LimitStore, MarkAdvance, Page, PageRequest, ParkedRecord, PendingChange,
    PendingStatus, Principal, PrincipalKind, PrincipalStore, ReplayOutcome, SafetyStore, SequencingBacklog,
    SessionStore, SettingsRecord, Settlement, SinkMark, SlotRequest, StateChange, Store, StoreError, StoredPublicKey,
    StoredTreeHead, TenantStore, TransitionRecord,
};
pub use tenant::{MAX_TENANT_NAME, Tenant, TenantId, TenantNameError};

/// Mock implementations of the core traits, for tests in this and other crates.
#[cfg(any(test, feature = "mocks"))]
pub mod mocks {
    pub use crate::clock::MockClock;
    pub use crate::connector::MockConnector;
    pub use crate::events::MockEventSink;
    pub use crate::policy::{MockLimitPolicy, MockSafetyPolicy};
    pub use crate::store::MockStore;
}
