//! Leased execution: engines on one store that take leases ([`Engine::with_leases`]) recover
//! only actions whose lease expired by the store's clock, and a worker that stalled past its
//! lease while another took over writes nothing when it resumes.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use remediation_core::{Engine, EngineParts, LeaseRequest, ManualClock, Mode, State, StoreError, failpoints};
use remediation_testkit::{
    AllowAll, FakeConnector, InMemoryStore, Method, NoLimits, RequestBuilder, approver, default_target, fixed_time,
    requester,
};
use serde_json::json;

const TTL: Duration = Duration::from_secs(30);

struct World {
    store: Arc<InMemoryStore>,
    connector: Arc<FakeConnector>,
    clock: Arc<ManualClock>,
}

impl World {
    fn new() -> Self {
        let clock = Arc::new(ManualClock::new(fixed_time()));
        Self {
            store: Arc::new(InMemoryStore::with_clock(Arc::clone(&clock) as _)),
            connector: Arc::new(FakeConnector::new("sandbox").with_target(default_target(), json!({"granted": true}))),
            clock,
        }
    }

    /// A leased engine named `holder` over the shared store, provider and clock.
    fn engine(&self, holder: &str) -> Engine {
        Engine::new(EngineParts {
            store: Arc::clone(&self.store) as _,
            connectors: vec![Arc::clone(&self.connector) as _],
            clock: Arc::clone(&self.clock) as _,
            policy: Arc::new(AllowAll::new(Mode::Manual)),
            limits: Arc::new(NoLimits),
        })
        .with_leases(LeaseRequest { holder: holder.to_owned(), ttl: TTL })
    }
}

/// A crash at any failpoint leaves the action leased: another engine leaves it alone while
/// the lease is live and settles it by the crash rule once it expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_takes_over_only_expired_leases() {
    for point in [failpoints::AFTER_BEGIN_EXECUTION, failpoints::AFTER_PROVIDER_WRITE, failpoints::BEFORE_COMPLETED] {
        let w = World::new();
        let survivor = w.engine("b");
        let s = survivor.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
        let id = s.action.id;
        survivor.approve(id, &approver("bob"), None).await.expect("approve");
        let crashing = Arc::new(w.engine("a").with_failpoints(Arc::new(move |name| {
            if name == point {
                panic!("simulated crash at {name}");
            }
        })));
        let died = tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
        assert!(died.expect_err("the worker died").is_panic());
        assert!(survivor.recover().await.expect("recover").is_empty(), "a live lease is not taken over ({point})");
        assert_eq!(w.store.detail(id).expect("stored").action.state, State::Executing);

        w.clock.advance(time::Duration::seconds(31));
        let recovered = survivor.recover().await.expect("recover");
        assert_eq!(recovered.len(), 1, "{recovered:?}");
        assert_eq!(recovered[0].to, State::Completed, "{point}: {recovered:?}");
        assert_eq!(w.connector.applied_keys().len(), 1, "applied exactly once ({point})");
        assert!(survivor.recover().await.expect("again").is_empty(), "recovery is idempotent");
    }
}

/// A worker frozen before its provider write, past its lease, while another takes the action
/// over and completes it: once resumed it writes nothing to the provider and changes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_resumed_after_a_takeover_writes_nothing() {
    let w = World::new();
    let other = w.engine("b");
    let s = other.suggest(RequestBuilder::new().build(), &requester()).await.expect("suggest");
    let id = s.action.id;
    other.approve(id, &approver("bob"), None).await.expect("approve");

    let (arrived_tx, arrived_rx) = sync_channel::<()>(1);
    let (resume_tx, resume_rx): (SyncSender<()>, Receiver<()>) = sync_channel(1);
    let resume_rx = Mutex::new(resume_rx);
    let frozen = Arc::new(w.engine("a").with_failpoints(Arc::new(move |name| {
        if name == failpoints::AFTER_BEGIN_EXECUTION {
            let _ = arrived_tx.send(());
            let _ = resume_rx.lock().expect("lock").recv();
        }
    })));
    let run = tokio::spawn(async move { frozen.execute(id, &approver("bob"), false).await });
    tokio::task::spawn_blocking(move || arrived_rx.recv()).await.expect("join").expect("the worker froze");

    w.clock.advance(time::Duration::seconds(31));
    let recovered = other.recover().await.expect("recover");
    assert_eq!(recovered.len(), 1);
    assert_eq!(recovered[0].to, State::Completed, "{recovered:?}");
    let transitions = w.store.audit().len();
    assert_eq!(w.connector.calls(Method::Execute), 1);

    resume_tx.send(()).expect("resume");
    let out = run.await.expect("join");
    assert!(
        matches!(out, Err(remediation_core::EngineError::Store(StoreError::LeaseLost { .. }))),
        "the resumed worker stops: {out:?}"
    );
    assert_eq!(w.connector.calls(Method::Execute), 1, "no second provider write");
    assert_eq!(w.store.audit().len(), transitions, "no state change");
    assert_eq!(w.store.detail(id).expect("stored").action.state, State::Completed);
}

/// A recovering worker whose lease on the action it is reconciling runs out, and another
/// worker takes that action over, leaves it to the other and still answers for the rest of
/// its batch, instead of failing the whole pass (a server's worker tick). Each change is
/// applied once, and the two workers between them settle everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recovery_that_loses_an_action_to_another_worker_goes_on_with_the_rest() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let second = remediation_testkit::TargetBuilder::new().identity("bob").build();
    let mut w = World::new();
    w.connector = Arc::new(
        FakeConnector::new("sandbox")
            .with_target(default_target(), json!({"granted": true}))
            .with_target(second.clone(), json!({"granted": true})),
    );
    let setup = w.engine("setup");
    let mut ids = Vec::new();
    for target in [default_target(), second] {
        let s = setup.suggest(RequestBuilder::new().target(target).build(), &requester()).await.expect("suggest");
        setup.approve(s.action.id, &approver("bob"), None).await.expect("approve");
        ids.push(s.action.id);
    }
    // Worker a dies after taking each action, before its provider write.
    for id in &ids {
        let crashing = Arc::new(w.engine("a").with_failpoints(Arc::new(|name| {
            if name == failpoints::AFTER_BEGIN_EXECUTION {
                panic!("simulated crash at {name}");
            }
        })));
        let id = *id;
        let died = tokio::spawn(async move { crashing.execute(id, &approver("bob"), false).await.map(|_| ()) }).await;
        assert!(died.expect_err("the worker died").is_panic());
    }
    w.clock.advance(time::Duration::seconds(31));

    // Worker b takes both over; right after its first provider write it stalls past its
    // lease, and worker c takes that action over meanwhile.
    let (store, clock, fired) = (Arc::clone(&w.store), Arc::clone(&w.clock), Arc::new(AtomicBool::new(false)));
    let b = w.engine("b").with_failpoints(Arc::new(move |name| {
        if name == failpoints::AFTER_PROVIDER_WRITE && !fired.swap(true, Ordering::SeqCst) {
            clock.advance(time::Duration::seconds(31));
            let request = LeaseRequest { holder: "c".to_owned(), ttl: TTL };
            let taken = tokio::task::block_in_place(|| {
                tokio::runtime::Handle::current().block_on(remediation_core::ActionLeases::take_over_expired(
                    store.as_ref(),
                    &request,
                    1,
                ))
            })
            .expect("c takes one over");
            assert_eq!(taken.len(), 1);
        }
    }));
    let recovered = b.recover().await.expect("the pass goes on past the action it lost");
    // The other action's lease ran out too, unclaimed: b takes it over again and settles it.
    assert!(recovered.iter().any(|r| r.to == State::Completed), "{recovered:?}");
    assert!(
        recovered.iter().any(|r| r.to == State::Executing && r.note.contains("took it over")),
        "the lost one is reported as left to the other worker: {recovered:?}"
    );

    // Worker c settles what it holds once its own lease runs out (it stalled too).
    w.clock.advance(time::Duration::seconds(31));
    let c = w.engine("c");
    c.recover().await.expect("recover");
    for id in &ids {
        assert_eq!(w.store.detail(*id).expect("stored").action.state, State::Completed, "{recovered:?}");
    }
    assert_eq!(w.connector.applied_keys().len(), 2, "each change applied once");
}
