//! [`Harness`]: an [`Engine`] wired to an [`InMemoryStore`], a [`FakeConnector`] and a
//! [`ManualClock`], with handles to each so tests can steer and inspect them.

use std::sync::Arc;

use remediation_core::{Engine, EngineParts, LimitPolicy, ManualClock, SafetyPolicy};
use serde_json::json;

use crate::{FakeConnector, InMemoryStore, default_target, fixed_time};

/// An engine and the fakes behind it.
#[derive(Debug)]
pub struct Harness {
    /// The engine under test.
    pub engine: Engine,
    /// Its store.
    pub store: Arc<InMemoryStore>,
    /// Its only connector, `sandbox`.
    pub connector: Arc<FakeConnector>,
    /// Its clock, stopped at [`fixed_time`].
    pub clock: Arc<ManualClock>,
}

impl Harness {
    /// An engine over an empty store and a `sandbox` [`FakeConnector`] that holds the
    /// [`default_target`] in state `{"granted": true}`.
    pub fn new(policy: impl SafetyPolicy + 'static, limits: impl LimitPolicy + 'static) -> Self {
        let connector = FakeConnector::new("sandbox").with_target(default_target(), json!({"granted": true}));
        Self::with_connector(connector, policy, limits)
    }

    /// An engine over an empty store and `connector`.
    pub fn with_connector(
        connector: FakeConnector,
        policy: impl SafetyPolicy + 'static,
        limits: impl LimitPolicy + 'static,
    ) -> Self {
        let store = Arc::new(InMemoryStore::new());
        let connector = Arc::new(connector);
        let clock = Arc::new(ManualClock::new(fixed_time()));
        let engine = Engine::new(EngineParts {
            store: Arc::clone(&store) as _,
            connectors: vec![Arc::clone(&connector) as _],
            clock: Arc::clone(&clock) as _,
            policy: Arc::new(policy),
            limits: Arc::new(limits),
        });
        Self { engine, store, connector, clock }
    }
}
