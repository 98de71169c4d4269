//! Shared test helpers for the remediation workspace.
//!
//! - builders with one set of defaults ([`ActionBuilder`], [`RequestBuilder`],
//!   [`TargetBuilder`], [`DetailBuilder`], [`fixed_time`], deterministic [`action_id`]s and
//!   actors such as [`requester`] and [`approver`]);
//! - [`InMemoryStore`], a faithful [`remediation_core::Store`] (compare-and-set, detail
//!   merging, exact sliding-window slots);
//! - [`FakeConnector`], a stateful provider with call counts and fault injection;
//! - simple policies: [`AllowAll`], [`FixedGates`], [`NoLimits`], [`FixedLimits`];
//! - [`Harness`], an engine wired to all of the above;
//! - [`conformance`], the semantic suite every connector passes, and its HTTP protocol part;
//! - [`fakes`], shared infrastructure for fake HTTP providers (axum server, fault
//!   switchboard, request log), and [`golden`] request fixtures;
//! - [`api_description`], requests checked against the provider's own API description;
//! - [`permission_map`], checks that a connector's permission map covers its calls and
//!   that the README lists it;
//! - [`real_server`], the one rule for tests that need a real server (skip locally, fail
//!   under CI);
//! - [`tls`], a private certificate authority and server certificate for TLS tests;
//! - [`private_pg`], a private TLS-only PostgreSQL server with such a certificate;
//! - the core's mockall mocks, re-exported as [`mocks`], and [`mockall`] itself.
//!
//! # Example
//!
//! ```
//! use remediation_core::{ExecuteOutcome, Mode, State};
//! use remediation_testkit::{AllowAll, Harness, Method, NoLimits, RequestBuilder, approver, requester};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rt = tokio::runtime::Builder::new_current_thread().build()?;
//! rt.block_on(async {
//!     let h = Harness::new(AllowAll::new(Mode::Manual), NoLimits);
//!     let s = h.engine.suggest(RequestBuilder::new().build(), &requester()).await?;
//!     assert_eq!(s.action.state, State::PendingApproval);
//!     assert_eq!(h.connector.calls(Method::Execute), 0);
//!
//!     h.engine.approve(s.action.id, &approver("bob"), None).await?;
//!     let out = h.engine.execute(s.action.id, &approver("bob"), false).await?;
//!     assert!(matches!(out, ExecuteOutcome::Completed { .. }));
//!     assert_eq!(h.store.audit().len(), 4); // suggest, approve, begin_execution, execution_succeeded
//!     Ok(())
//! })
//! # }
//! ```

pub mod api_description;
pub mod builders;
pub mod conformance;
pub mod connector;
pub mod fakes;
pub mod golden;
mod harness;
pub mod history;
pub mod permission_map;
pub mod policy;
pub mod private_pg;
pub mod real_server;
pub mod store;
pub mod store_conformance;
pub mod store_transfer;
pub mod tls;

pub use builders::{
    ActionBuilder, DetailBuilder, RequestBuilder, TargetBuilder, action_id, admin, approver, default_target,
    fixed_time, plan_for, protected_snap, requester, slot, snap, transition, viewer,
};
pub use connector::{FakeConnector, Method, apply_kind, default_capabilities};
pub use harness::Harness;
pub use mockall;
pub use policy::{AllowAll, FixedGates, FixedLimits, NoLimits};
pub use store::InMemoryStore;

/// The core's mockall mocks: [`mocks::MockConnector`], [`mocks::MockStore`],
/// [`mocks::MockSafetyPolicy`], [`mocks::MockLimitPolicy`], [`mocks::MockClock`].
pub mod mocks {
    pub use remediation_core::mocks::*;
}
