//! The application layer: each use case of remediation written once, over a
//! [`remediation_runtime::Runtime`], and called by both adapters — the HTTP handlers of
//! `remediation-api` and the local backend of the `remediate` CLI — so a command run against
//! a data directory and the same command sent to a server cannot behave differently.
//!
//! A use case takes the acting [`remediation_core::Actor`] and typed inputs and returns a
//! typed output or a [`ServiceError`]. Domain rules live here or below (engine, gates,
//! runtime), never in an adapter: an adapter parses, calls and renders.
//!
//! # Errors: one mapping for both adapters
//!
//! | `ServiceError` variant | HTTP status | CLI exit code |
//! |---|---|---|
//! | [`ServiceError::NoConnector`] | 400 `no_connector` (`details.field = "connector"`, `details.candidates`) | 2 |
//! | [`ServiceError::Invalid`] | 400 `invalid_request` (`details.field`) | 2 |
//! | [`ServiceError::Engine`] | as `EngineError`: 404 not found, 400/403/409 refusal, 422 invalid target, 502 provider | 4, 2/3, 3, 5 |
//! | [`ServiceError::Access`] | as `AccessError`: 403 not admin / same admin, 404, 409, 400 | 3, 4, 3, 2 |
//! | [`ServiceError::Runtime`] | 500 `internal` | 1 |
//! | [`ServiceError::NotFound`] | 404 `not_found` | 4 |
//! | [`ServiceError::LogIntegrity`] | 409 `conflict` (`details.rule = "audit_log"`) | 6 |
//! | [`ServiceError::KeyFile`], [`ServiceError::Archive`] | 500 `internal` | 1 |
//!
//! `remediation-api` has the one `From<ServiceError> for ApiError`, the CLI the one
//! `From<ServiceError> for Failure`; both follow this table.

mod campaigns;
pub mod connections;
mod connectors;
pub mod controls;
mod error;
mod events;
mod execution;
pub mod incident;
mod intake;
mod log;
pub mod metrics;
pub mod playbooks;
pub mod report;
mod safety;
pub mod scanner;
mod steps;
mod suggest;
pub mod tenants;
mod views;
pub mod worker;

pub use campaigns::{
    BATCH as CAMPAIGN_BATCH, BEFORE_PROGRESS as CAMPAIGN_BEFORE_PROGRESS, CampaignStatus, CampaignWait, EntryDone,
    NewCampaign, campaign_status, campaigns, create_campaign, run_campaign,
};
pub use connectors::{Candidate, PassedOver, select_connector};
pub use error::ServiceError;
pub use events::{events, replay_parked};
pub use execution::{
    Approval, Attempt, Executed, Recovered, StillLeased, approve_or_roll_back, approve_rollback, execute,
    force_execute, recover, rollback,
};
pub use intake::{
    DocumentEntry, EntryIntake, Intake, intake, intake_document, intake_document_with_progress, intake_entry,
};
pub use log::{
    Archived, ProofTarget, Rotated, archive_audit, prove_consistency, prove_inclusion, published_keys,
    rotate_signing_key, sign_tree_head, tree_head, verify_tree_head,
};
pub use safety::{Settings, audit_page, audit_verify, kill_switch, settings};
pub use steps::{approve, cancel, promote, reject, release};
pub use suggest::{SuggestRequest, suggest};
pub use views::{EmergencyAccess, LimitsReport, NextStep, emergency_access, limits, next_step, reset_breaker};
