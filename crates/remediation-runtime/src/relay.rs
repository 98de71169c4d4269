//! The relay: delivers the audit log, the outbox of every event, to each event sink and audit
//! sink, at least once, in `seq` order, from one high-water mark per sink.
//!
//! Every event the engine reports is an audit record written in the same transaction as the
//! change it reports ([`remediation_core::EngineEvent::from_audit`]), so a crash between a
//! commit and a delivery loses nothing: the relay reads the sequenced log after the sink's mark
//! ([`DeliveryStore`]), hands the sink a batch, and moves the mark past what the sink
//! acknowledged. A sink that fails transiently is retried with backoff, without limit in time,
//! while its backlog grows (`remediate events status`, `/metrics`); a record a sink refuses for
//! good is parked for that sink with the reason, reported by an `event_parked` audit note (an
//! admin event), and delivered again when an operator asks (`remediate events replay`).
//!
//! One relay delivers at a time per store: it holds the named lease [`RELAY_LEASE`], and every
//! mark it moves is fenced by that lease, so a relay that was paused past its lease and replaced
//! cannot move a mark its successor moved. The server runs [`Relay::spawn`] ([`Relay::run`] on a
//! thread of its own, at a lower priority than the engine: delivery is background work, and a
//! busy engine's commits come first); the command line calls [`Relay::flush`] at the end of each
//! command (and `remediate events flush`).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use remediation_audit::AuditSink;
use remediation_core::{
    Actor, AuditFilter, AuditRecord, Clock, CloudEvent, DeliverFrom, DeliveryError, EventSink, Fence, Lease,
    LeaseRequest, MarkAdvance, ParkedRecord, ReplayOutcome, SettingsRecord, Settlement, Store, StoreError, Undelivered,
};
use time::OffsetDateTime;

/// The named lease the delivering relay holds.
pub const RELAY_LEASE: &str = "event-relay";

/// The failpoint between a sink's acknowledgement of a batch and the move of its mark (crash
/// tests: a crash there hands the same records over again, and the receiver deduplicates).
pub const AFTER_DELIVERY: &str = "relay_after_delivery";

/// How often a running relay looks for replay requests (a flush looks at once).
const REPLAY_LOOK_EVERY: Duration = Duration::from_secs(1);

/// Most delivery delays kept between two [`Relay::take_counters`] per sink.
const MAX_KEPT_DELAYS: usize = 100_000;

/// The `setting_event` of the audit note written when a sink refuses a record for good.
pub const EVENT_PARKED: &str = "event_parked";

/// What a sink receives.
#[derive(Clone)]
pub enum SinkTarget {
    /// Events: each record as a CloudEvents envelope.
    Events(Arc<dyn EventSink>),
    /// The audit records themselves.
    Audit(Arc<dyn AuditSink>),
}

/// One destination of the relay.
#[derive(Clone)]
pub struct RelaySink {
    /// Its name, the key of its mark: `events/<name>` or `audit/<name>`. Renaming a sink
    /// starts a new mark.
    pub name: String,
    /// What it receives.
    pub target: SinkTarget,
    /// Where its mark starts when it is first seen.
    pub from: DeliverFrom,
    /// Whether archiving the audit log waits until this sink has received the records it
    /// would remove (true for every configured sink; see [`RelaySink::archive_does_not_wait`]).
    pub holds_archive: bool,
}

impl std::fmt::Debug for RelaySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.target {
            SinkTarget::Events(_) => "events",
            SinkTarget::Audit(_) => "audit",
        };
        f.debug_struct("RelaySink").field("name", &self.name).field("kind", &kind).field("from", &self.from).finish()
    }
}

impl RelaySink {
    /// An event sink named `events/<name>`.
    pub fn events(name: &str, sink: Arc<dyn EventSink>, from: DeliverFrom) -> Self {
        Self { name: format!("events/{name}"), target: SinkTarget::Events(sink), from, holds_archive: true }
    }

    /// An audit sink named `audit/<name>`.
    pub fn audit(name: &str, sink: Arc<dyn AuditSink>, from: DeliverFrom) -> Self {
        Self { name: format!("audit/{name}"), target: SinkTarget::Audit(sink), from, holds_archive: true }
    }

    /// Archiving does not wait for this sink: for a convenience copy that may lag for long
    /// (the command line's own `events.jsonl`, which no server delivers to).
    pub fn archive_does_not_wait(mut self) -> Self {
        self.holds_archive = false;
        self
    }
}

/// How the relay paces itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RelayOptions {
    /// Most records handed to a sink at once (default 1024).
    pub batch: usize,
    /// How long a caught-up sink waits before looking for new records (default 5 ms).
    pub poll: Duration,
    /// The first wait after a transient failure, doubled after each further one (default
    /// 500 ms).
    pub backoff_initial: Duration,
    /// The longest wait between two attempts, also the cap on a receiver's `Retry-After`
    /// (default 30 s).
    pub backoff_max: Duration,
    /// How long the relay's lease lasts unless renewed (default 15 s; renewed every third).
    pub lease_ttl: Duration,
    /// How many steps below the process's own priority [`Relay::spawn`] runs the relay's
    /// thread (a `nice` increment, 0 to 19; default 10; Linux only, elsewhere the thread keeps
    /// the process's priority). A busy engine then keeps its CPU for its commits, and the relay
    /// delivers with what is left: under a load the machine cannot carry, the backlog grows
    /// and drains when the load drops, instead of the engine slowing down. 0 runs the relay
    /// alongside the engine.
    pub nice: u8,
}

impl Default for RelayOptions {
    fn default() -> Self {
        Self {
            batch: 1024,
            poll: Duration::from_millis(5),
            backoff_initial: Duration::from_millis(500),
            backoff_max: Duration::from_secs(30),
            lease_ttl: Duration::from_secs(15),
            nice: 10,
        }
    }
}

impl RelayOptions {
    /// The wait after `failures` consecutive transient failures (1-based).
    pub fn backoff(&self, failures: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self.backoff_initial.saturating_mul(2u32.saturating_pow(failures.saturating_sub(1).min(20)));
        retry_after.unwrap_or(exp).min(self.backoff_max)
    }
}

/// Errors of the relay itself (a sink's failures are not errors: they are retried or parked).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RelayError {
    /// The store could not be read or written.
    #[error("the relay cannot use the store")]
    Store(#[from] StoreError),
    /// Another process holds the relay's lease (a server, or another command, delivers).
    #[error("{holder} is delivering events for this store (it holds the relay lease)")]
    Busy {
        /// Who holds it, when known.
        holder: String,
    },
    /// The relay's thread or its runtime could not be started.
    #[error("cannot start the relay's thread")]
    Thread(#[source] std::io::Error),
}

/// The thread [`Relay::spawn`] started; it ends once the stop signal is sent and the relay has
/// given its lease up.
#[derive(Debug)]
pub struct RelayThread {
    thread: std::thread::JoinHandle<()>,
}

impl RelayThread {
    /// Waits for the thread to end (send the stop signal first), without blocking the caller's
    /// runtime.
    pub async fn join(self) {
        let thread = self.thread;
        let ended = tokio::task::spawn_blocking(move || thread.join()).await;
        if !matches!(ended, Ok(Ok(()))) {
            tracing::error!(target: "remediation::events", "the relay's thread ended with a panic");
        }
    }
}

/// Lowers the calling thread's priority by `steps` (Linux `nice`, capped at 19); threads it
/// starts afterwards (the runtime's blocking pool) inherit it.
fn lower_this_thread(steps: u8) {
    if steps == 0 {
        return;
    }
    #[cfg(target_os = "linux")]
    {
        let tid = rustix::thread::gettid();
        let lowered = rustix::process::getpriority_process(Some(tid))
            .and_then(|now| rustix::process::setpriority_process(Some(tid), (now + i32::from(steps)).min(19)));
        if let Err(e) = lowered {
            tracing::warn!(target: "remediation::events", error = %e, "cannot lower the relay thread's priority; it runs alongside the engine");
        }
    }
}

/// What one sink's delivery did since the relay started, for `/metrics` and benchmarks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SinkCounters {
    /// Records delivered (acknowledged by the sink).
    pub delivered: u64,
    /// Records parked.
    pub parked: u64,
    /// Transient failures.
    pub failures: u64,
    /// The last transient failure, while it lasts (cleared by the next delivery).
    pub failing: Option<String>,
    /// Seconds from each delivered record's own time to its acknowledgement, since last taken.
    pub delays: Vec<f64>,
}

/// The relay. Cheap to share behind an `Arc`.
pub struct Relay {
    store: Arc<dyn Store>,
    sinks: Vec<RelaySink>,
    clock: Arc<dyn Clock>,
    source: String,
    holder: String,
    options: RelayOptions,
    counters: Mutex<BTreeMap<String, SinkCounters>>,
    /// Each sink's mark as this relay last read or moved it (read again after a conflict).
    marks: Mutex<BTreeMap<String, u64>>,
    failpoints: Option<remediation_core::FailpointHook>,
    /// When each sink's parked records were last looked at for replay requests.
    replays_looked: Mutex<BTreeMap<String, std::time::Instant>>,
}

impl std::fmt::Debug for Relay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Relay").field("sinks", &self.sinks).field("holder", &self.holder).finish_non_exhaustive()
    }
}

/// What one pass over one sink did.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Pass {
    /// Nothing new.
    Idle,
    /// Delivered or parked this many records; there may be more.
    Moved(usize),
    /// A transient failure after moving this many.
    Failed { moved: usize, reason: String, retry_after: Option<Duration> },
}

/// How a flush went for one sink.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct FlushedSink {
    /// The sink.
    pub sink: String,
    /// Records delivered or parked by this flush.
    pub moved: u64,
    /// Records still waiting for it.
    pub backlog: u64,
    /// Why it stopped short, when it did (the sink is unreachable, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failing: Option<String>,
}

impl Relay {
    /// A relay from `store` to `sinks`, for the default tenant, held by `holder` (unique per
    /// process: a worker id).
    pub fn new(store: Arc<dyn Store>, sinks: Vec<RelaySink>, clock: Arc<dyn Clock>, holder: String) -> Self {
        let source = CloudEvent::source_of(store.tenant_id().as_str());
        Self {
            store,
            sinks,
            clock,
            source,
            holder,
            options: RelayOptions::default(),
            counters: Mutex::new(BTreeMap::new()),
            marks: Mutex::new(BTreeMap::new()),
            failpoints: None,
            replays_looked: Mutex::new(BTreeMap::new()),
        }
    }

    /// Paces it by `options`.
    pub fn with_options(mut self, options: RelayOptions) -> Self {
        self.options = options;
        self
    }

    /// Calls `hook` at [`AFTER_DELIVERY`].
    pub fn with_failpoints(mut self, hook: remediation_core::FailpointHook) -> Self {
        self.failpoints = Some(hook);
        self
    }

    /// The sinks it delivers to.
    pub fn sinks(&self) -> &[RelaySink] {
        &self.sinks
    }

    /// Each sink's counters since the relay started; takes (and forgets) the delays.
    pub fn take_counters(&self) -> BTreeMap<String, SinkCounters> {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        let snapshot = counters.clone();
        counters.values_mut().for_each(|c| c.delays.clear());
        snapshot
    }

    /// Whether this relay delivers to any sink.
    pub fn has_sinks(&self) -> bool {
        !self.sinks.is_empty()
    }

    /// Registers every sink's mark that does not exist yet: [`DeliverFrom::Now`] at the log's
    /// current size, [`DeliverFrom::Beginning`] at 0. Call it when the process starts, before
    /// it writes, so the events of its first command are not skipped.
    pub async fn register(&self) -> Result<(), RelayError> {
        if self.sinks.is_empty() {
            return Ok(());
        }
        for sink in &self.sinks {
            self.mark_of(sink).await?;
        }
        Ok(())
    }

    /// The sink's mark: as this relay last knew it, else read (and registered when new).
    async fn mark_of(&self, sink: &RelaySink) -> Result<u64, StoreError> {
        if let Some(mark) = self.marks.lock().unwrap_or_else(PoisonError::into_inner).get(&sink.name) {
            return Ok(*mark);
        }
        let start = match sink.from {
            DeliverFrom::Now => self.store.audit_size().await?,
            DeliverFrom::Beginning => 0,
        };
        let mark = self.store.register_sink(&sink.name, start, self.clock.now()).await?;
        self.remember(&sink.name, Some(mark));
        Ok(mark)
    }

    fn remember(&self, sink: &str, mark: Option<u64>) {
        let mut marks = self.marks.lock().unwrap_or_else(PoisonError::into_inner);
        match mark {
            Some(mark) => marks.insert(sink.to_owned(), mark),
            None => marks.remove(sink),
        };
    }

    fn lease_request(&self) -> LeaseRequest {
        LeaseRequest { holder: self.holder.clone(), ttl: self.options.lease_ttl }
    }

    fn fence(&self, lease: &Lease) -> Fence {
        Fence { name: RELAY_LEASE.to_owned(), holder: lease.holder.clone(), epoch: lease.epoch }
    }

    /// Delivers what waits, sink by sink, until each is caught up, fails transiently, or
    /// `budget` runs out; for the command line, which has no background relay. Takes the
    /// relay lease for the time it works (renewing it, so a command killed meanwhile holds
    /// delivery up for at most the lease's duration) and gives it up; when another process
    /// holds it (a server, or another command), it delivers nothing and says so
    /// ([`RelayError::Busy`]).
    pub async fn flush(&self, budget: Duration) -> Result<Vec<FlushedSink>, RelayError> {
        if self.sinks.is_empty() {
            return Ok(Vec::new());
        }
        // The lease lasts `lease_ttl` and is renewed as the flush goes on, so a command killed
        // mid-flush holds delivery up for at most `lease_ttl`.
        let ttl = self.options.lease_ttl;
        let Some(mut lease) = self.store.acquire_lease(RELAY_LEASE, &self.lease_request()).await? else {
            return Err(RelayError::Busy { holder: "another process".to_owned() });
        };
        let fence = self.fence(&lease);
        let started = std::time::Instant::now();
        let mut renewed = started;
        let mut moved = vec![0u64; self.sinks.len()];
        let mut failing: Vec<Option<String>> = vec![None; self.sinks.len()];
        let mut outcome = Ok(());
        // Rounds over every sink until a round moves nothing: parking a record writes an
        // admin event, which the sinks passed earlier in the round have not seen yet.
        'rounds: loop {
            let mut round = 0u64;
            for (i, sink) in self.sinks.iter().enumerate() {
                if failing[i].is_some() {
                    continue;
                }
                while started.elapsed() < budget {
                    if renewed.elapsed() >= ttl / 3 {
                        match self.store.renew_named_lease(RELAY_LEASE, &lease, ttl).await {
                            Ok(next) => {
                                lease = next;
                                renewed = std::time::Instant::now();
                            }
                            Err(e) => {
                                outcome = Err(e.into());
                                break 'rounds;
                            }
                        }
                    }
                    match self.pass(sink, Some(&fence), true).await {
                        Ok(Pass::Idle) => break,
                        Ok(Pass::Moved(n)) => {
                            moved[i] += n as u64;
                            round += n as u64;
                        }
                        Ok(Pass::Failed { moved: n, reason, .. }) => {
                            moved[i] += n as u64;
                            failing[i] = Some(reason);
                            break;
                        }
                        Err(e) => {
                            outcome = Err(e);
                            break 'rounds;
                        }
                    }
                }
            }
            if round == 0 || started.elapsed() >= budget {
                break;
            }
        }
        let mut report = Vec::new();
        for (i, sink) in self.sinks.iter().enumerate() {
            let backlog = self.backlog_of(&sink.name).await.unwrap_or(0);
            report.push(FlushedSink { sink: sink.name.clone(), moved: moved[i], backlog, failing: failing[i].take() });
        }
        let _ = self.store.release_lease(RELAY_LEASE, &lease).await;
        outcome.map(|()| report)
    }

    async fn backlog_of(&self, sink: &str) -> Result<u64, StoreError> {
        let size = self.store.audit_size().await?;
        let mark =
            self.store.sink_marks().await?.into_iter().find(|m| m.sink == sink).map_or(0, |m| m.delivered_through);
        Ok(size.saturating_sub(mark))
    }

    /// Runs [`Self::run`] on a thread of its own (`event-relay`), with a single-threaded
    /// runtime of its own, [`RelayOptions::nice`] steps below the process's priority. Sinks
    /// connect from that thread at their first delivery, so their clients' work runs there too.
    /// Send `true` on `stop` and [`RelayThread::join`] it to stop.
    pub fn spawn(self: Arc<Self>, stop: tokio::sync::watch::Receiver<bool>) -> Result<RelayThread, RelayError> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .thread_name("event-relay-blocking")
            .build()
            .map_err(RelayError::Thread)?;
        let steps = self.options.nice;
        let thread = std::thread::Builder::new()
            .name("event-relay".to_owned())
            .spawn(move || {
                lower_this_thread(steps);
                runtime.block_on(self.run(stop));
            })
            .map_err(RelayError::Thread)?;
        Ok(RelayThread { thread })
    }

    /// Runs until `stop` turns true: takes the relay lease when nobody holds it, delivers to
    /// every sink concurrently (one sink's outage never holds up another) while it holds the
    /// lease, renews it, and gives it up on the way out.
    pub async fn run(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        if self.sinks.is_empty() {
            return;
        }
        if let Err(e) = self.register().await {
            tracing::warn!(target: "remediation::events", error = %remediation_core::error_chain(&e), "cannot register the event sinks yet");
        }
        let retry = (self.options.lease_ttl / 3).max(Duration::from_millis(50));
        while !*stop.borrow() {
            let lease = match self.store.acquire_lease(RELAY_LEASE, &self.lease_request()).await {
                Ok(Some(lease)) => lease,
                Ok(None) => {
                    if wait_or_stop(&mut stop, retry).await {
                        break;
                    }
                    continue;
                }
                Err(e) => {
                    tracing::warn!(target: "remediation::events", error = %remediation_core::error_chain(&e), "cannot take the relay lease");
                    if wait_or_stop(&mut stop, retry).await {
                        break;
                    }
                    continue;
                }
            };
            tracing::info!(target: "remediation::events", holder = %self.holder, epoch = lease.epoch, "this process now delivers events");
            if let Err(e) = self.register().await {
                tracing::warn!(target: "remediation::events", error = %remediation_core::error_chain(&e), "cannot register the event sinks");
            }
            let lease = self.lead(lease, &mut stop).await;
            if let Some(lease) = lease {
                let _ = self.store.release_lease(RELAY_LEASE, &lease).await;
                break;
            }
        }
    }

    /// Delivers while holding `lease`; returns the lease when stopped, `None` when it was lost.
    async fn lead(self: &Arc<Self>, mut lease: Lease, stop: &mut tokio::sync::watch::Receiver<bool>) -> Option<Lease> {
        let (lost_tx, lost_rx) = tokio::sync::watch::channel(false);
        let fence = self.fence(&lease);
        let mut tasks = tokio::task::JoinSet::new();
        for index in 0..self.sinks.len() {
            let relay = Arc::clone(self);
            let fence = fence.clone();
            let mut halt = lost_rx.clone();
            tasks.spawn(async move { relay.deliver_loop(index, fence, &mut halt).await });
        }
        let renew_every = (self.options.lease_ttl / 3).max(Duration::from_millis(10));
        let kept = loop {
            if wait_or_stop(stop, renew_every).await {
                break true;
            }
            match self.store.renew_named_lease(RELAY_LEASE, &lease, self.options.lease_ttl).await {
                Ok(renewed) => lease = renewed,
                Err(e) => {
                    tracing::warn!(target: "remediation::events", error = %remediation_core::error_chain(&e), "the relay lease was lost; delivery stops here");
                    break false;
                }
            }
        };
        let _ = lost_tx.send(true);
        while tasks.join_next().await.is_some() {}
        kept.then_some(lease)
    }

    async fn deliver_loop(&self, index: usize, fence: Fence, halt: &mut tokio::sync::watch::Receiver<bool>) {
        let Some(sink) = self.sinks.get(index) else { return };
        let mut failures = 0u32;
        while !*halt.borrow() {
            let wait = match self.pass(sink, Some(&fence), false).await {
                Ok(Pass::Moved(_)) => {
                    failures = 0;
                    continue;
                }
                Ok(Pass::Idle) => {
                    failures = 0;
                    self.options.poll
                }
                Ok(Pass::Failed { moved, reason, retry_after }) => {
                    if moved > 0 {
                        failures = 0;
                    }
                    failures = failures.saturating_add(1);
                    let wait = self.options.backoff(failures, retry_after);
                    tracing::warn!(target: "remediation::events", sink = %sink.name, failures, retry_in_ms = wait.as_millis() as u64, reason = %reason, "sink unavailable; its events wait");
                    wait
                }
                Err(RelayError::Store(StoreError::LeaseLost { .. })) => return,
                Err(e) => {
                    failures = failures.saturating_add(1);
                    tracing::warn!(target: "remediation::events", sink = %sink.name, error = %remediation_core::error_chain(&e), "delivery pass failed");
                    self.options.backoff(failures, None)
                }
            };
            if wait_or_stop(halt, wait).await {
                return;
            }
        }
    }

    fn count(&self, sink: &str, f: impl FnOnce(&mut SinkCounters)) {
        let mut counters = self.counters.lock().unwrap_or_else(PoisonError::into_inner);
        f(counters.entry(sink.to_owned()).or_default());
    }

    /// One pass over one sink: replays first (looked for at most once a second unless
    /// `replays_now`), then the next batch after its mark.
    async fn pass(&self, sink: &RelaySink, fence: Option<&Fence>, replays_now: bool) -> Result<Pass, RelayError> {
        let mut moved = 0;
        let look = {
            let mut looked = self.replays_looked.lock().unwrap_or_else(PoisonError::into_inner);
            let due = replays_now || looked.get(&sink.name).is_none_or(|at| at.elapsed() >= REPLAY_LOOK_EVERY);
            if due {
                looked.insert(sink.name.clone(), std::time::Instant::now());
            }
            due
        };
        let replays = if look { self.store.parked(Some(sink.name.clone())).await? } else { Vec::new() };
        for parked in replays.into_iter().filter(|p| p.replay) {
            match self.replay(sink, &parked, fence).await? {
                Ok(()) => moved += 1,
                Err(reason) => return Ok(Pass::Failed { moved, reason, retry_after: None }),
            }
        }
        let mark = self.mark_of(sink).await?;
        let records = self.store.audit_page(&AuditFilter::default(), Some(mark), self.options.batch).await?;
        let (Some(first), Some(_)) = (records.first(), records.last()) else {
            return Ok(if moved > 0 { Pass::Moved(moved) } else { Pass::Idle });
        };
        if first.seq != mark + 1 {
            tracing::error!(target: "remediation::events", sink = %sink.name, mark, next = first.seq, "records after this sink's mark were archived before it received them");
        }
        let result = self.hand_over(sink, &records).await;
        let now = self.clock.now();
        let (delivered, failure) = match result {
            Ok(()) => (records.len(), None),
            Err(Undelivered { delivered, error }) => (delivered.min(records.len()), Some(error)),
        };
        if let Some(hook) = self.failpoints.as_ref().filter(|_| delivered > 0) {
            hook(AFTER_DELIVERY);
        }
        let mut advance = MarkAdvance {
            sink: sink.name.clone(),
            from: mark,
            to: mark,
            parked: Vec::new(),
            at: now,
            fence: fence.cloned(),
        };
        if let Some(last) = delivered.checked_sub(1).and_then(|i| records.get(i)) {
            advance.to = last.seq;
        }
        let mut parked_note = None;
        let mut transient = None;
        match failure {
            None => {}
            Some(DeliveryError::Permanent { reason }) => {
                if let Some(refused) = records.get(delivered) {
                    advance.to = refused.seq;
                    advance.parked.push((refused.seq, reason.clone()));
                    parked_note = (refused.body.event() != EVENT_PARKED).then_some((refused.seq, reason));
                }
            }
            Some(DeliveryError::Transient { reason, retry_after }) => transient = Some((reason, retry_after)),
            Some(other) => transient = Some((other.to_string(), None)),
        }
        let settled = usize::try_from(advance.to - mark).unwrap_or(usize::MAX);
        if advance.to > mark {
            match self.store.advance_sink(&advance).await {
                Ok(()) => self.remember(&sink.name, Some(advance.to)),
                Err(e) => {
                    // Another relay moved it (or this one lost its lease): read it again next time.
                    self.remember(&sink.name, None);
                    return Err(e.into());
                }
            }
            self.count(&sink.name, |c| {
                c.delivered += delivered as u64;
                c.parked += advance.parked.len() as u64;
                if transient.is_none() {
                    c.failing = None;
                }
                // Bounded, for a process whose metrics are never scraped.
                let room = MAX_KEPT_DELAYS.saturating_sub(c.delays.len());
                c.delays.extend(records.iter().take(delivered.min(room)).map(|r| (now - r.body.at()).as_seconds_f64()));
            });
        }
        if let Some((seq, reason)) = parked_note {
            tracing::warn!(target: "remediation::events", sink = %sink.name, seq, reason = %reason, "a sink refused a record for good; it is parked");
            self.note_parked(&sink.name, seq, &reason).await?;
        }
        Ok(match transient {
            Some((reason, retry_after)) => {
                self.count(&sink.name, |c| {
                    c.failures += 1;
                    c.failing = Some(reason.clone());
                });
                Pass::Failed { moved: moved + settled, reason, retry_after }
            }
            None => Pass::Moved(moved + settled),
        })
    }

    async fn hand_over(&self, sink: &RelaySink, records: &[AuditRecord]) -> Result<(), Undelivered> {
        match &sink.target {
            SinkTarget::Audit(audit) => audit.deliver(records).await,
            SinkTarget::Events(events) => {
                let envelopes: Vec<CloudEvent> =
                    records.iter().map(|r| CloudEvent::from_record(r, &self.source)).collect();
                events.deliver(&envelopes).await
            }
        }
    }

    /// Delivers one parked record again; `Err(reason)` for a transient failure.
    async fn replay(
        &self,
        sink: &RelaySink,
        parked: &ParkedRecord,
        fence: Option<&Fence>,
    ) -> Result<Result<(), String>, RelayError> {
        let records = self.store.audit_page(&AuditFilter::default(), Some(parked.seq.saturating_sub(1)), 1).await?;
        let outcome = match records.first().filter(|r| r.seq == parked.seq) {
            None => ReplayOutcome::RefusedAgain(format!("record {} is no longer in the log (archived)", parked.seq)),
            Some(record) => match self.hand_over(sink, std::slice::from_ref(record)).await {
                Ok(()) => ReplayOutcome::Delivered,
                Err(Undelivered { error: DeliveryError::Permanent { reason }, .. }) => {
                    ReplayOutcome::RefusedAgain(reason)
                }
                Err(Undelivered { error, .. }) => return Ok(Err(error.to_string())),
            },
        };
        let settlement = Settlement {
            sink: sink.name.clone(),
            seq: parked.seq,
            outcome,
            at: self.clock.now(),
            fence: fence.cloned(),
        };
        self.store.settle_parked(&settlement).await?;
        Ok(Ok(()))
    }

    async fn note_parked(&self, sink: &str, seq: u64, reason: &str) -> Result<(), StoreError> {
        let record = SettingsRecord {
            setting_event: EVENT_PARKED.to_owned(),
            actor: Actor::system().name,
            credential: None,
            at: self.clock.now(),
            comment: Some(format!(
                "sink `{sink}` refused audit record {seq} for good: {reason}; fix the receiver, then `remediate events replay --sink {sink}`"
            )),
            previous: serde_json::Value::Null,
            value: serde_json::json!({ "sink": sink, "seq": seq }),
            action_id: None,
        };
        self.store.append_note(&record).await
    }
}

/// Waits `wait`, or until `stop` turns true (then `true`).
async fn wait_or_stop(stop: &mut tokio::sync::watch::Receiver<bool>, wait: Duration) -> bool {
    if *stop.borrow() {
        return true;
    }
    tokio::select! {
        () = tokio::time::sleep(wait) => *stop.borrow(),
        changed = stop.changed() => changed.is_err() || *stop.borrow(),
    }
}

/// How each sink stands: for `remediate events status`, `GET /v1/events/status` and `/metrics`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct EventsStatus {
    /// Records in the audit log (sequenced), each an event.
    pub log_size: u64,
    /// Records written but not sequenced yet (they reach the sinks once sequenced).
    pub unsequenced: u64,
    /// Every sink with a mark, configured or not any more.
    pub sinks: Vec<SinkStatus>,
    /// Every parked record.
    pub parked: Vec<ParkedRecord>,
}

/// One sink's standing.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema)]
pub struct SinkStatus {
    /// The sink (`events/<name>`, `audit/<name>`).
    pub sink: String,
    /// Whether this installation's configuration names it (a sink removed from the
    /// configuration keeps its mark, and is listed, but nothing delivers to it).
    pub configured: bool,
    /// The last `seq` it acknowledged (or parked).
    pub delivered_through: u64,
    /// Records waiting for it (sequenced ones after its mark, plus the unsequenced).
    pub backlog: u64,
    /// When the oldest record waiting for it was written.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub oldest_undelivered: Option<OffsetDateTime>,
    /// How long that record has waited, in seconds, by `now`.
    pub oldest_undelivered_age_secs: Option<u64>,
    /// Records parked for it.
    pub parked: u64,
}

/// Reads how every sink stands, judging ages by `now`.
pub async fn events_status(
    store: &dyn Store,
    configured: &[String],
    now: OffsetDateTime,
) -> Result<EventsStatus, StoreError> {
    let log_size = store.audit_size().await?;
    let unsequenced = store.unsequenced().await?;
    let parked = store.parked(None).await?;
    let mut marks = store.sink_marks().await?;
    for name in configured {
        if !marks.iter().any(|m| &m.sink == name) {
            // Not registered yet: it will start at the log's size when it is.
            marks.push(remediation_core::SinkMark { sink: name.clone(), delivered_through: log_size, updated_at: now });
        }
    }
    let mut sinks = Vec::new();
    for mark in marks {
        let next = store.audit_page(&AuditFilter::default(), Some(mark.delivered_through), 1).await?;
        let oldest = next.first().map(|r| r.body.at());
        sinks.push(SinkStatus {
            configured: configured.contains(&mark.sink),
            backlog: log_size.saturating_sub(mark.delivered_through) + unsequenced,
            oldest_undelivered: oldest,
            oldest_undelivered_age_secs: oldest.map(|at| u64::try_from((now - at).whole_seconds()).unwrap_or(0)),
            parked: parked.iter().filter(|p| p.sink == mark.sink).count() as u64,
            delivered_through: mark.delivered_through,
            sink: mark.sink,
        });
    }
    Ok(EventsStatus { log_size, unsequenced, sinks, parked })
}
