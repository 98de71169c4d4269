//! The worker use case against the testkit's in-memory store and fake connectors wrapped to
//! observe concurrency: how many executions run at once in all and per connector, the order
//! connectors are served in, requeued actions, and shutdown. No test waits on a timer; the
//! one deadline only turns a hang into a failure.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use remediation_core::{
    Action, ActionId, Capability, Connector, ConnectorError, ConnectorErrorKind, Engine, EngineParts, ExecuteOutcome,
    Health, ManualClock, Mode, Outcome, PermissionNeed, Permissions, PlannedChange, Snapshot, State, Target,
    Verification,
};
use remediation_service::worker::{TickReport, Worker, WorkerConfig, WorkerHooks};
use remediation_testkit::{
    AllowAll, FakeConnector, InMemoryStore, Method, NoLimits, RequestBuilder, TargetBuilder, fixed_time, requester,
};
use serde_json::json;

/// A fake connector that records each execution and how many run at once, and optionally
/// holds every execution until `barrier` parties are inside.
struct Observed {
    inner: FakeConnector,
    barrier: Option<tokio::sync::Barrier>,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    order: Arc<Mutex<Vec<String>>>,
}

impl Observed {
    fn new(id: &str, barrier: Option<usize>, order: Arc<Mutex<Vec<String>>>) -> Self {
        Self {
            inner: FakeConnector::new(id),
            barrier: barrier.map(tokio::sync::Barrier::new),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            order,
        }
    }
}

#[async_trait]
impl Connector for Observed {
    fn id(&self) -> &str {
        self.inner.id()
    }
    fn capabilities(&self) -> Vec<Capability> {
        self.inner.capabilities()
    }
    async fn health(&self) -> Result<Health, ConnectorError> {
        self.inner.health().await
    }
    fn permission_map(&self) -> &'static [PermissionNeed] {
        self.inner.permission_map()
    }
    async fn check_permissions(&self) -> Result<Permissions, ConnectorError> {
        self.inner.check_permissions().await
    }
    async fn snapshot(&self, target: &Target) -> Result<Snapshot, ConnectorError> {
        self.inner.snapshot(target).await
    }
    async fn plan(&self, action: &Action, before: &Snapshot) -> Result<PlannedChange, ConnectorError> {
        self.inner.plan(action, before).await
    }
    async fn execute(&self, action: &Action, before: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.order.lock().expect("order").push(format!("{}:{}", self.id(), action.target.identity));
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        match &self.barrier {
            // Returns only once every party is inside: proves they run at once.
            Some(b) => {
                b.wait().await;
            }
            // Gives every other ready execution the chance to enter meanwhile.
            None => {
                for _ in 0..8 {
                    tokio::task::yield_now().await;
                }
            }
        }
        let out = self.inner.execute(action, before).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        out
    }
    async fn verify(&self, action: &Action, planned: &PlannedChange) -> Result<Verification, ConnectorError> {
        self.inner.verify(action, planned).await
    }
    async fn rollback(&self, action: &Action, before: &Snapshot, after: &Snapshot) -> Result<Outcome, ConnectorError> {
        self.inner.rollback(action, before, after).await
    }
}

struct Env {
    engine: Arc<Engine>,
    clock: Arc<ManualClock>,
    store: Arc<InMemoryStore>,
    connectors: BTreeMap<String, Arc<Observed>>,
    order: Arc<Mutex<Vec<String>>>,
}

impl Env {
    /// Connectors named in `names`, each with an optional barrier size.
    fn new(names: &[(&str, Option<usize>)]) -> Self {
        let order = Arc::new(Mutex::new(Vec::new()));
        let connectors: BTreeMap<String, Arc<Observed>> =
            names.iter().map(|(n, b)| ((*n).to_owned(), Arc::new(Observed::new(n, *b, Arc::clone(&order))))).collect();
        let store = Arc::new(InMemoryStore::new());
        let clock = Arc::new(ManualClock::new(fixed_time()));
        let engine = Engine::new(EngineParts {
            store: Arc::clone(&store) as _,
            // In the order given: the worker serves connectors in this order.
            connectors: names.iter().map(|(n, _)| Arc::clone(&connectors[*n]) as Arc<dyn Connector>).collect(),
            clock: Arc::clone(&clock) as _,
            policy: Arc::new(AllowAll::new(Mode::Auto)),
            limits: Arc::new(NoLimits),
        });
        Self { engine: Arc::new(engine), clock, store, connectors, order }
    }

    /// `n` approved actions on `connector`, identities `{connector}{i}`.
    async fn approved(&self, connector: &str, n: usize) -> Vec<ActionId> {
        let mut ids = Vec::new();
        for i in 0..n {
            let target = TargetBuilder::new().identity(&format!("{connector}{i}")).build();
            self.connectors[connector].inner.set_state(target.clone(), json!({"granted": true}));
            let request = RequestBuilder::new().connector(connector).target(target).build();
            let s = self.engine.suggest(request, &requester()).await.expect("suggest");
            assert_eq!(s.action.state, State::Approved);
            ids.push(s.action.id);
        }
        ids
    }

    async fn tick(&self, worker: &Worker, hooks: &dyn WorkerHooks) -> TickReport {
        let tick = worker.tick_engine(&self.engine, self.clock.as_ref(), hooks);
        // A deadline, not a wait: a worker that runs fewer at once than the barrier needs hangs.
        tokio::time::timeout(StdDuration::from_secs(20), tick).await.expect("the tick hung").expect("tick")
    }

    fn state(&self, id: ActionId) -> State {
        self.store.detail(id).expect("stored").action.state
    }
}

fn config(concurrency: usize, caps: &[(&str, usize)]) -> WorkerConfig {
    WorkerConfig { concurrency, connector_concurrency: caps.iter().map(|(n, c)| ((*n).to_owned(), *c)).collect() }
}

struct Hooks;
impl WorkerHooks for Hooks {}

#[tokio::test]
async fn runs_up_to_concurrency_executions_at_once() {
    // Each execution waits until four are inside: only a worker running four at once ends.
    let env = Env::new(&[("alpha", Some(4))]);
    let ids = env.approved("alpha", 4).await;
    let report = env.tick(&Worker::new(config(4, &[])), &Hooks).await;
    assert_eq!((report.executed, report.max_in_flight), (4, 4), "{report:?}");
    assert!(ids.iter().all(|id| env.state(*id) == State::Completed));
}

#[tokio::test]
async fn never_more_than_a_connectors_cap_in_flight() {
    let env = Env::new(&[("alpha", None), ("beta", None)]);
    let alpha = env.approved("alpha", 6).await;
    env.approved("beta", 3).await;
    let report = env.tick(&Worker::new(config(8, &[("alpha", 2)])), &Hooks).await;
    assert_eq!(report.executed, 9, "{report:?}");
    assert_eq!(env.connectors["alpha"].max_in_flight.load(Ordering::SeqCst), 2, "alpha's cap");
    assert_eq!(env.connectors["beta"].max_in_flight.load(Ordering::SeqCst), 3, "beta is not capped");
    assert_eq!(report.max_in_flight, 5, "{report:?}");
    assert!(alpha.iter().all(|id| env.state(*id) == State::Completed));
}

#[tokio::test]
async fn connectors_are_served_in_turn() {
    let env = Env::new(&[("alpha", None), ("beta", None)]);
    env.approved("alpha", 100).await;
    env.approved("beta", 1).await;
    let report = env.tick(&Worker::new(config(1, &[])), &Hooks).await;
    assert_eq!((report.executed, report.max_in_flight), (101, 1), "{report:?}");
    let order = env.order.lock().expect("order").clone();
    assert!(order[..2].contains(&"beta:beta0".to_owned()), "beta waited behind alpha's backlog: {:?}", &order[..3]);
}

#[tokio::test]
async fn a_requeued_action_waits_for_its_time() {
    let env = Env::new(&[("alpha", None)]);
    let ids = env.approved("alpha", 1).await;
    let alpha = &env.connectors["alpha"].inner;
    let throttled = ConnectorErrorKind::Throttled { retry_after: Some(StdDuration::from_secs(30)) };
    alpha.fail(Method::Execute, ConnectorError::new(throttled, "slow down"));
    let worker = Worker::new(WorkerConfig::default());

    let report = env.tick(&worker, &Hooks).await;
    assert_eq!((report.executed, report.requeued), (1, 1), "{report:?}");
    assert_eq!(env.state(ids[0]), State::Approved);
    alpha.clear_fault(Method::Execute);
    env.clock.advance(time::Duration::seconds(29));
    assert_eq!(env.tick(&worker, &Hooks).await.executed, 0, "not before its time");
    env.clock.advance(time::Duration::seconds(1));
    assert_eq!(env.tick(&worker, &Hooks).await.executed, 1);
    assert_eq!(env.state(ids[0]), State::Completed);
}

/// Stops once the first execution finishes.
#[derive(Default)]
struct StopAfterOne {
    stop: AtomicBool,
    finished: AtomicUsize,
}

impl WorkerHooks for StopAfterOne {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::SeqCst)
    }
    fn executed(&self, _outcome: &ExecuteOutcome, _took: StdDuration, _now: time::OffsetDateTime) {
        self.finished.fetch_add(1, Ordering::SeqCst);
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_stop_claims_nothing_more_and_finishes_what_is_in_flight() {
    let env = Env::new(&[("alpha", None)]);
    let ids = env.approved("alpha", 3).await;
    let hooks = StopAfterOne::default();
    let report = env.tick(&Worker::new(config(2, &[])), &hooks).await;
    // Two were in flight when the first finished: both finish, the third is not claimed.
    assert_eq!(report.executed, 2, "{report:?}");
    assert_eq!(hooks.finished.load(Ordering::SeqCst), 2);
    assert_eq!(ids.iter().filter(|id| env.state(**id) == State::Approved).count(), 1);
}
