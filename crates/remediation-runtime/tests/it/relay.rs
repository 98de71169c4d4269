//! The relay: the audit log delivered to event and audit sinks from one mark per sink, in
//! order, at least once; a sink that is down builds a backlog and catches up with no gap; a
//! record refused for good is parked, reported and replayable; one relay delivers at a time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use remediation_audit::AuditSink;
use remediation_core::{
    AuditLog, AuditRecord, Clock, CloudEvent, DeliverFrom, DeliveryError, DeliveryStore, EngineEvent, EventSink,
    LeaseRequest, LeaseStore, ManualClock, SettingsRecord, Store, Undelivered,
};
use remediation_runtime::relay::{
    EVENT_PARKED, RELAY_LEASE, Relay, RelayError, RelayOptions, RelaySink, events_status,
};
use remediation_testkit::InMemoryStore;

/// A sink whose receiver can be down (transient), refuse given `seq`s for good, and take at
/// most `accept` items per call; it keeps what it received.
#[derive(Default)]
struct Receiver {
    got: Mutex<Vec<u64>>,
    down: AtomicBool,
    refuse: Mutex<Vec<u64>>,
    calls: AtomicUsize,
}

impl Receiver {
    fn take(&self, seqs: &[u64]) -> Result<(), Undelivered> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        for (delivered, seq) in seqs.iter().enumerate() {
            if self.down.load(Ordering::SeqCst) {
                return Err(Undelivered { delivered, error: DeliveryError::transient("connection refused") });
            }
            if self.refuse.lock().unwrap().contains(seq) {
                return Err(Undelivered { delivered, error: DeliveryError::permanent(format!("HTTP 400: bad {seq}")) });
            }
            self.got.lock().unwrap().push(*seq);
        }
        Ok(())
    }

    fn got(&self) -> Vec<u64> {
        self.got.lock().unwrap().clone()
    }
}

#[async_trait::async_trait]
impl EventSink for Receiver {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        let seqs: Vec<u64> = events.iter().map(|e| e.auditseq.unwrap()).collect();
        self.take(&seqs)
    }
}

#[async_trait::async_trait]
impl AuditSink for Receiver {
    async fn deliver(&self, records: &[AuditRecord]) -> Result<(), Undelivered> {
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        self.take(&seqs)
    }
}

fn clock() -> Arc<ManualClock> {
    Arc::new(ManualClock::new(remediation_testkit::fixed_time()))
}

async fn note(store: &dyn Store, clock: &ManualClock, n: usize) {
    for i in 0..n {
        let record = SettingsRecord {
            setting_event: "settings_changed".to_owned(),
            actor: "admin".to_owned(),
            credential: None,
            at: clock.now(),
            comment: Some(format!("change {i}")),
            previous: serde_json::Value::Null,
            value: serde_json::json!({"i": i}),
            action_id: None,
        };
        store.append_note(&record).await.unwrap();
    }
}

fn relay(store: Arc<InMemoryStore>, clock: Arc<ManualClock>, sinks: Vec<RelaySink>, holder: &str) -> Relay {
    let options = RelayOptions { batch: 7, ..RelayOptions::default() };
    Relay::new(store, sinks, clock, holder.to_owned()).with_options(options)
}

const BUDGET: Duration = Duration::from_secs(30);

#[tokio::test]
async fn each_sink_gets_every_record_once_in_order_from_its_own_mark() {
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    note(store.as_ref(), &clock, 3).await;
    let (events, audit) = (Arc::new(Receiver::default()), Arc::new(Receiver::default()));
    let sinks = vec![
        RelaySink::events("siem", events.clone(), DeliverFrom::Now),
        RelaySink::audit("trail", audit.clone(), DeliverFrom::Beginning),
    ];
    let relay = relay(store.clone(), clock.clone(), sinks, "a");
    relay.register().await.unwrap();
    note(store.as_ref(), &clock, 20).await;

    let report = relay.flush(BUDGET).await.unwrap();
    assert!(report.iter().all(|s| s.backlog == 0 && s.failing.is_none()), "{report:?}");
    // The event sink starts after what was there when it was registered; the audit sink at 1.
    assert_eq!(events.got(), (4..=23).collect::<Vec<_>>());
    assert_eq!(audit.got(), (1..=23).collect::<Vec<_>>());
    // Nothing is delivered twice.
    relay.flush(BUDGET).await.unwrap();
    assert_eq!(events.got().len(), 20);
    let marks = store.sink_marks().await.unwrap();
    assert!(marks.iter().all(|m| m.delivered_through == 23), "{marks:?}");
    assert_eq!(marks.iter().map(|m| m.sink.as_str()).collect::<Vec<_>>(), ["audit/trail", "events/siem"]);
}

#[tokio::test]
async fn a_sink_that_is_down_builds_a_backlog_and_catches_up_with_no_gap() {
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    let (down, up) = (Arc::new(Receiver::default()), Arc::new(Receiver::default()));
    let trail = Arc::new(Receiver::default());
    let sinks = vec![
        RelaySink::events("down", down.clone(), DeliverFrom::Now),
        RelaySink::events("up", up.clone(), DeliverFrom::Now),
        RelaySink::audit("trail", trail.clone(), DeliverFrom::Now),
    ];
    let relay = relay(store.clone(), clock.clone(), sinks, "a");
    relay.register().await.unwrap();
    note(store.as_ref(), &clock, 5).await;
    relay.flush(BUDGET).await.unwrap();
    down.down.store(true, Ordering::SeqCst);
    trail.down.store(true, Ordering::SeqCst);
    let written_at = clock.now();
    note(store.as_ref(), &clock, 30).await;
    clock.advance(time::Duration::minutes(10));

    let report = relay.flush(BUDGET).await.unwrap();
    let down_report = report.iter().find(|s| s.sink == "events/down").unwrap();
    assert_eq!(down_report.backlog, 30);
    assert!(down_report.failing.as_deref().unwrap().contains("connection refused"), "{report:?}");
    assert_eq!(up.got().len(), 35, "one sink's outage does not hold up another");
    let names = vec!["events/down".to_owned(), "events/up".to_owned(), "audit/trail".to_owned()];
    let status = events_status(store.as_ref(), &names, clock.now()).await.unwrap();
    let sink = status.sinks.iter().find(|s| s.sink == "events/down").unwrap();
    assert_eq!((sink.backlog, sink.delivered_through), (30, 5));
    assert_eq!(sink.oldest_undelivered, Some(written_at));
    assert_eq!(sink.oldest_undelivered_age_secs, Some(600));
    // More comes while it is down: nothing is dropped.
    note(store.as_ref(), &clock, 10).await;
    relay.flush(BUDGET).await.unwrap();
    let trail_status = events_status(store.as_ref(), &["audit/trail".to_owned()], clock.now()).await.unwrap();
    assert_eq!(trail_status.sinks.iter().find(|s| s.sink == "audit/trail").unwrap().backlog, 40);
    down.down.store(false, Ordering::SeqCst);
    trail.down.store(false, Ordering::SeqCst);
    relay.flush(BUDGET).await.unwrap();
    assert_eq!(down.got(), (1..=45).collect::<Vec<_>>(), "in order, no gap, no loss");
    assert_eq!(trail.got(), (1..=45).collect::<Vec<_>>(), "the audit sink too: by seq, no gap, no loss");
    let status = events_status(store.as_ref(), &names, clock.now()).await.unwrap();
    assert!(status.sinks.iter().all(|s| s.backlog == 0 && s.oldest_undelivered.is_none()), "{status:?}");
}

#[tokio::test]
async fn a_partial_delivery_moves_the_mark_past_exactly_what_was_acknowledged() {
    struct Half(Receiver);
    #[async_trait::async_trait]
    impl EventSink for Half {
        async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
            let seqs: Vec<u64> = events.iter().map(|e| e.auditseq.unwrap()).collect();
            let half = seqs.len().div_ceil(2);
            self.0.take(&seqs[..half])?;
            if half < seqs.len() {
                return Err(Undelivered { delivered: half, error: DeliveryError::transient("ack timeout") });
            }
            Ok(())
        }
    }
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    let half = Arc::new(Half(Receiver::default()));
    let relay =
        relay(store.clone(), clock.clone(), vec![RelaySink::events("half", half.clone(), DeliverFrom::Now)], "a");
    relay.register().await.unwrap();
    note(store.as_ref(), &clock, 7).await;
    relay.flush(BUDGET).await.unwrap();
    assert_eq!(half.0.got(), [1, 2, 3, 4]);
    assert_eq!(store.sink_marks().await.unwrap()[0].delivered_through, 4);
    for _ in 0..3 {
        relay.flush(BUDGET).await.unwrap();
    }
    assert_eq!(half.0.got(), (1..=7).collect::<Vec<_>>(), "each record once, in order");
}

#[tokio::test]
async fn a_refused_record_is_parked_reported_and_replayed_after_a_fix() {
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    let (picky, other) = (Arc::new(Receiver::default()), Arc::new(Receiver::default()));
    picky.refuse.lock().unwrap().push(3);
    let sinks = vec![
        RelaySink::events("picky", picky.clone(), DeliverFrom::Now),
        RelaySink::events("other", other.clone(), DeliverFrom::Now),
    ];
    let relay = relay(store.clone(), clock.clone(), sinks, "a");
    relay.register().await.unwrap();
    note(store.as_ref(), &clock, 5).await;
    relay.flush(BUDGET).await.unwrap();

    // Record 3 is parked; the sink goes on with 4 and 5, and with the admin event (record 6).
    assert_eq!(picky.got(), [1, 2, 4, 5, 6]);
    let parked = store.parked(None).await.unwrap();
    assert_eq!(parked.len(), 1);
    assert_eq!((parked[0].sink.as_str(), parked[0].seq), ("events/picky", 3));
    assert!(parked[0].reason.contains("HTTP 400: bad 3"), "{parked:?}");
    let all = store.audit_page(&Default::default(), None, 100).await.unwrap();
    let admin = all.iter().find(|r| r.body.event() == EVENT_PARKED).expect("an admin event");
    assert_eq!(admin.seq, 6);
    // The other sink received the admin event as an event.
    let event = CloudEvent::from_record(admin, "/remediation/default");
    assert!(matches!(&event.data, EngineEvent::SafetyChanged { setting_event, .. } if setting_event == EVENT_PARKED));
    assert_eq!(other.got(), (1..=6).collect::<Vec<_>>());

    // Fixed, and replayed: delivered once more, then no longer parked.
    picky.refuse.lock().unwrap().clear();
    assert_eq!(store.request_replay("events/picky", None).await.unwrap(), 1);
    relay.flush(BUDGET).await.unwrap();
    assert_eq!(picky.got(), [1, 2, 4, 5, 6, 3]);
    assert!(store.parked(None).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sink_that_refuses_everything_parks_without_an_endless_chain_of_admin_events() {
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    let wall = Arc::new(Receiver::default());
    *wall.refuse.lock().unwrap() = (1..=100).collect();
    let relay =
        relay(store.clone(), clock.clone(), vec![RelaySink::events("wall", wall.clone(), DeliverFrom::Now)], "a");
    relay.register().await.unwrap();
    note(store.as_ref(), &clock, 2).await;
    for _ in 0..5 {
        relay.flush(BUDGET).await.unwrap();
    }
    // Two records, two admin notes about them; the notes are parked without notes of their own.
    assert_eq!(store.audit_size().await.unwrap(), 4);
    assert_eq!(store.parked(None).await.unwrap().len(), 4);
}

#[tokio::test]
async fn flush_defers_to_the_relay_lease_holder_and_a_replaced_holder_cannot_move_a_mark() {
    let clock = clock();
    let store = Arc::new(InMemoryStore::with_clock(clock.clone()));
    let sink = Arc::new(Receiver::default());
    let relay_a =
        relay(store.clone(), clock.clone(), vec![RelaySink::events("s", sink.clone(), DeliverFrom::Now)], "a");
    relay_a.register().await.unwrap();
    note(store.as_ref(), &clock, 3).await;
    // A server holds the lease: a command's flush delivers nothing and says so.
    let server = LeaseRequest { holder: "server".to_owned(), ttl: Duration::from_secs(15) };
    let lease = store.acquire_lease(RELAY_LEASE, &server).await.unwrap().unwrap();
    assert!(matches!(relay_a.flush(BUDGET).await, Err(RelayError::Busy { .. })));
    assert!(sink.got().is_empty());
    // Its lease lapses; the command delivers.
    clock.advance(time::Duration::seconds(16));
    relay_a.flush(BUDGET).await.unwrap();
    assert_eq!(sink.got(), [1, 2, 3]);
    // The old holder's fenced move is refused.
    let stale = remediation_core::MarkAdvance {
        sink: "events/s".to_owned(),
        from: 3,
        to: 3,
        parked: Vec::new(),
        at: clock.now(),
        fence: Some(remediation_core::Fence { name: RELAY_LEASE.to_owned(), holder: lease.holder, epoch: lease.epoch }),
    };
    assert!(matches!(
        store.advance_sink(&remediation_core::MarkAdvance { to: 4, ..stale }).await,
        Err(remediation_core::StoreError::LeaseLost { .. })
    ));
}

#[tokio::test]
async fn two_running_relays_deliver_each_record_once() {
    let store = Arc::new(InMemoryStore::new());
    let clock: Arc<dyn Clock> = Arc::new(remediation_core::SystemClock);
    let sink = Arc::new(Receiver::default());
    let options =
        RelayOptions { poll: Duration::from_millis(5), lease_ttl: Duration::from_secs(5), ..RelayOptions::default() };
    let make = |holder: &str| {
        Arc::new(
            Relay::new(
                store.clone(),
                vec![RelaySink::events("s", sink.clone(), DeliverFrom::Beginning)],
                clock.clone(),
                holder.to_owned(),
            )
            .with_options(options.clone()),
        )
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let a = tokio::spawn(make("a").run(stop_rx.clone()));
    let b = tokio::spawn(make("b").run(stop_rx.clone()));
    let manual = ManualClock::new(remediation_testkit::fixed_time());
    for _ in 0..10 {
        note(store.as_ref(), &manual, 20).await;
        tokio::task::yield_now().await;
    }
    // Wait (bounded) for the relays to catch up; they work on their own.
    for _ in 0..2_000 {
        if sink.got().len() >= 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let _ = stop_tx.send(true);
    a.await.unwrap();
    b.await.unwrap();
    assert_eq!(sink.got(), (1..=200).collect::<Vec<_>>(), "each record once, in order, by whichever relay leads");
    // Both gave the lease up on the way out.
    let next = LeaseRequest { holder: "c".to_owned(), ttl: Duration::from_secs(1) };
    assert!(store.acquire_lease(RELAY_LEASE, &next).await.unwrap().is_some());
}

/// The calling thread's `nice` value and name.
#[cfg(target_os = "linux")]
fn this_thread() -> (i32, Option<String>) {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").unwrap();
    // Fields after the command name (in parentheses) start with the state, field 3; `nice` is 19.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let nice = rest.split(' ').nth(16).unwrap().parse().unwrap();
    (nice, std::thread::current().name().map(str::to_owned))
}

/// A sink that notes which thread, at which priority, each delivery ran on.
#[cfg(target_os = "linux")]
#[derive(Default)]
struct WhereDelivered {
    seen: Mutex<Vec<(i32, Option<String>)>>,
    got: AtomicUsize,
}

#[cfg(target_os = "linux")]
#[async_trait::async_trait]
impl EventSink for WhereDelivered {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        self.seen.lock().unwrap().push(this_thread());
        self.got.fetch_add(events.len(), Ordering::SeqCst);
        Ok(())
    }
}

#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_spawned_relay_delivers_from_a_thread_of_its_own_below_the_process_priority() {
    let (base, _) = this_thread();
    for nice in [10u8, 0] {
        let store = Arc::new(InMemoryStore::new());
        let sink = Arc::new(WhereDelivered::default());
        let relay = Arc::new(
            Relay::new(
                store.clone(),
                vec![RelaySink::events("s", sink.clone(), DeliverFrom::Beginning)],
                Arc::new(remediation_core::SystemClock),
                "spawned".to_owned(),
            )
            .with_options(RelayOptions { poll: Duration::from_millis(5), nice, ..RelayOptions::default() }),
        );
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let thread = relay.spawn(stop_rx).unwrap();
        note(store.as_ref(), &ManualClock::new(remediation_testkit::fixed_time()), 20).await;
        for _ in 0..2_000 {
            if sink.got.load(Ordering::SeqCst) >= 20 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let _ = stop_tx.send(true);
        thread.join().await;
        assert_eq!(sink.got.load(Ordering::SeqCst), 20, "every record delivered");
        let expected = (base + i32::from(nice)).min(19);
        let seen = sink.seen.lock().unwrap().clone();
        assert!(!seen.is_empty());
        for (at, name) in seen {
            assert_eq!(name.as_deref(), Some("event-relay"), "delivered from the relay's own thread");
            assert_eq!(at, expected, "nice {nice}: the relay's thread runs {nice} steps below the process ({base})");
        }
        // It gave the lease up on the way out.
        let next = LeaseRequest { holder: "next".to_owned(), ttl: Duration::from_secs(1) };
        assert!(store.acquire_lease(RELAY_LEASE, &next).await.unwrap().is_some());
    }
}
