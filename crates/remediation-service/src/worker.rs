//! The background worker as a use case: each tick expires stale approvals and pending
//! changes, reconciles interrupted actions, and executes approved ones — up to
//! [`WorkerConfig::concurrency`] at once, at most a connector's cap on any one connector,
//! taking work round-robin across connectors so one connector's backlog never starves
//! another — until asked to stop. The HTTP server runs it; its adapter only logs and counts
//! through [`WorkerHooks`].
//!
//! Approved actions are read with [`remediation_core::ActionStore::reserve_claimable`] (or
//! `claimable` for an engine without leases), per connector, so one a requeue put off (the
//! provider throttled it) is not claimed before its not-before time, nothing lists every
//! approved action, and on a shared store each replica's worker reserves the actions it reads
//! for a lease's length, so replicas take different actions instead of racing for the same.
//!
//! An approved action whose execution is refused (remediation disabled, the kill switch, a
//! disabled control, a refusing gate) is audited once by the engine and then left alone: later
//! ticks skip it until the safety state (switches and settings) or the action changes, or
//! [`RETRY_REFUSED_AFTER`] has passed (a refusal for a reason outside the store, such as an
//! unhealthy connector, may pass by itself; the engine does not audit an identical refusal again).
//!
//! Rollback windows need no closing step of their own: the engine refuses a rollback once the
//! window has passed, and the deadline is kept on each action. A rollback request still waiting
//! for approval when its window closes is returned to `completed` by the same expiry sweep.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, PoisonError};

use remediation_core::{
    Action, ActionDetail, ActionId, Actor, Clock, Engine, EngineError, ExecuteOutcome, Mode, PendingChange, Recovery,
};
use remediation_runtime::Runtime;
use time::OffsetDateTime;
use tokio::task::JoinSet;

use crate::ServiceError;

/// How long a refused action is left alone when nothing visible changes: 10 minutes.
pub const RETRY_REFUSED_AFTER: time::Duration = time::Duration::minutes(10);

/// Approved actions read from the store per connector at a time.
const PAGE: usize = 64;

/// How many executions the worker runs at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerConfig {
    /// Executions in flight at once, over every connector (at least 1 is used).
    pub concurrency: usize,
    /// Caps per connector id: never more than this many executions on it at once.
    pub connector_concurrency: BTreeMap<String, usize>,
}

impl Default for WorkerConfig {
    /// 32 at once, no caps per connector.
    fn default() -> Self {
        Self { concurrency: 32, connector_concurrency: BTreeMap::new() }
    }
}

impl WorkerConfig {
    /// The most executions in flight on `connector` at once.
    fn cap(&self, connector: &str) -> usize {
        self.connector_concurrency.get(connector).copied().unwrap_or(usize::MAX).max(1)
    }
}

/// What one tick did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TickReport {
    /// Actions expired (not approved in time), and rollback requests closed with their window.
    pub expired: usize,
    /// Interrupted actions reconciled.
    pub recovered: usize,
    /// Approved actions executed (whatever their outcome, a requeue included).
    pub executed: usize,
    /// Of those, the ones the provider throttled with nothing written: back in `approved`.
    pub requeued: usize,
    /// Approved actions skipped because they were refused before and nothing changed since.
    pub left_alone: usize,
    /// The most executions that were in flight at once during the tick.
    pub max_in_flight: usize,
    /// The auto-approved actions whose execution finished (completed or failed) during the
    /// tick: [`Worker::tick`] judges their controls for automatic demotion.
    pub finished_auto: Vec<Action>,
}

/// What the worker reports as it goes, and how it learns it must stop. Every method has a
/// default that does nothing, so an adapter implements only what it logs or counts.
pub trait WorkerHooks: Send + Sync {
    /// True once the process is shutting down: the worker claims nothing more, and finishes
    /// the executions in flight.
    fn stopping(&self) -> bool {
        false
    }
    /// An action expired, or a rollback request closed with its window (`completed`).
    fn expired(&self, _action: &Action) {}
    /// A pending change expired without confirmation.
    fn change_expired(&self, _change: &PendingChange) {}
    /// An interrupted action was reconciled.
    fn recovered(&self, _recovery: &Recovery) {}
    /// An approved action was executed, with this outcome, taking `took`.
    fn executed(&self, _outcome: &ExecuteOutcome, _took: std::time::Duration, _now: OffsetDateTime) {}
    /// An approved action's execution was refused; it is left alone until something changes.
    fn refused(&self, _id: ActionId, _error: EngineError) {}
    /// An approved action could not be executed (moved meanwhile, a store or provider error);
    /// the next tick looks again.
    fn not_executed(&self, _id: ActionId, _error: EngineError) {}
}

/// Hooks that report nothing and never stop.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHooks;

impl WorkerHooks for NoHooks {}

/// What the worker saw when an action was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Refusal {
    /// The safety state and the action's last change, as one string.
    seen: String,
    /// When.
    at: OffsetDateTime,
}

/// The worker: its configuration and what it remembers between ticks (refusals).
#[derive(Debug, Default)]
pub struct Worker {
    config: WorkerConfig,
    refused: Mutex<HashMap<ActionId, Refusal>>,
}

/// One connector's share of a tick.
struct Lane {
    name: String,
    cap: usize,
    queue: VecDeque<ActionDetail>,
    /// How many of its claimable actions were read so far this tick.
    read: usize,
    exhausted: bool,
    in_flight: usize,
}

type Finished = (usize, ActionId, std::time::Instant, Result<ExecuteOutcome, EngineError>);

impl Worker {
    /// A worker with `config`.
    pub fn new(config: WorkerConfig) -> Self {
        Self { config, refused: Mutex::default() }
    }

    /// Its configuration.
    pub fn config(&self) -> &WorkerConfig {
        &self.config
    }

    /// Runs one tick over the runtime's active engine: expires stale approvals and pending
    /// changes, then (unless stopping) reconciles and executes as [`Worker::tick_engine`].
    pub async fn tick(&self, runtime: &Runtime, hooks: &dyn WorkerHooks) -> Result<TickReport, ServiceError> {
        let engine = runtime.active().await?.engine;
        for c in runtime.expire_changes().await? {
            hooks.change_expired(&c);
        }
        let report = self.tick_engine(&engine, runtime.clock().as_ref(), hooks).await?;
        crate::execution::review(runtime, &report.finished_auto).await;
        if !hooks.stopping() {
            // Playbook runs paused on a held step go on once it was released or forced.
            if let Err(e) = crate::playbooks::resume_runs(runtime).await {
                tracing::warn!(error = %e, "paused playbook runs could not be resumed this tick");
            }
        }
        Ok(report)
    }

    /// Runs one tick over `engine`: expires stale approvals, and unless `hooks` says it is
    /// stopping, reconciles interrupted actions and executes the claimable approved ones.
    /// A stop seen while executing claims nothing more; the executions in flight finish.
    pub async fn tick_engine(
        &self,
        engine: &Arc<Engine>,
        clock: &dyn Clock,
        hooks: &dyn WorkerHooks,
    ) -> Result<TickReport, ServiceError> {
        let mut report = TickReport::default();
        for a in engine.expire_stale().await? {
            hooks.expired(&a);
            report.expired += 1;
        }
        if hooks.stopping() {
            return Ok(report);
        }
        for r in engine.recover().await? {
            hooks.recovered(&r);
            report.recovered += 1;
        }
        self.execute_claimable(engine, clock, hooks, &mut report).await?;
        Ok(report)
    }

    async fn execute_claimable(
        &self,
        engine: &Arc<Engine>,
        clock: &dyn Clock,
        hooks: &dyn WorkerHooks,
        report: &mut TickReport,
    ) -> Result<(), ServiceError> {
        let mut lanes: Vec<Lane> = engine
            .connectors()
            .map(|c| Lane {
                name: c.id().to_owned(),
                cap: self.config.cap(c.id()),
                queue: VecDeque::new(),
                read: 0,
                exhausted: false,
                in_flight: 0,
            })
            .collect();
        let concurrency = self.config.concurrency.max(1);
        let mut safety = safety_text(engine).await?;
        let mut refused = self.refused.lock().unwrap_or_else(PoisonError::into_inner).clone();
        let mut seen = HashSet::new();
        let mut running: JoinSet<Finished> = JoinSet::new();
        let mut next = 0;
        let mut stopped = false;
        loop {
            while !stopped && running.len() < concurrency {
                if hooks.stopping() {
                    stopped = true;
                    break;
                }
                let Some((lane, detail)) =
                    self.next_claim(engine, clock, &mut lanes, &mut next, &mut seen, &refused, &safety, report).await?
                else {
                    break;
                };
                lanes[lane].in_flight += 1;
                let engine = Arc::clone(engine);
                let id = detail.action.id;
                running.spawn(async move {
                    let started = std::time::Instant::now();
                    let result = engine.execute(id, &Actor::system(), false).await;
                    (lane, id, started, result)
                });
                report.max_in_flight = report.max_in_flight.max(running.len());
            }
            let Some(joined) = running.join_next().await else { break };
            let (lane, id, started, result) = match joined {
                Ok(finished) => finished,
                // A panicking execution: nothing to attribute it to but the error.
                Err(e) => {
                    tracing::error!(error = %e, "an execution task ended abnormally");
                    continue;
                }
            };
            lanes[lane].in_flight -= 1;
            let now = clock.now();
            match result {
                Ok(outcome) => {
                    refused.remove(&id);
                    if matches!(outcome, ExecuteOutcome::Requeued { .. }) {
                        report.requeued += 1;
                    }
                    if let Some(action) = crate::execution::finished(&outcome).filter(|a| a.mode == Mode::Auto) {
                        report.finished_auto.push(action.clone());
                    }
                    hooks.executed(&outcome, started.elapsed(), now);
                    report.executed += 1;
                }
                // Refused: audited once by the engine, then left alone until something changes.
                Err(e @ EngineError::Refused { .. }) => {
                    // What refused it may have changed during this tick: remember the state as
                    // it is now.
                    safety = safety_text(engine).await?;
                    let updated_at = engine.get(id).await.map(|d| d.action.updated_at)?;
                    refused.insert(id, Refusal { seen: format!("{safety}|{updated_at}"), at: now });
                    hooks.refused(id, e);
                }
                Err(e) => hooks.not_executed(id, e),
            }
        }
        // Forget refusals of actions that are no longer claimable, and stale ones.
        let now = clock.now();
        if !stopped && lanes.iter().all(|l| l.exhausted) {
            refused.retain(|id, r| seen.contains(id) && now - r.at < RETRY_REFUSED_AFTER);
        }
        *self.refused.lock().unwrap_or_else(PoisonError::into_inner) = refused;
        Ok(())
    }

    /// The next action to claim, taking connectors in turn from `next` (skipping those at
    /// their cap or out of work), and the lane it belongs to; `None` when no connector below
    /// its cap has claimable work left this tick.
    #[allow(clippy::too_many_arguments)]
    async fn next_claim(
        &self,
        engine: &Engine,
        clock: &dyn Clock,
        lanes: &mut [Lane],
        next: &mut usize,
        seen: &mut HashSet<ActionId>,
        refused: &HashMap<ActionId, Refusal>,
        safety: &str,
        report: &mut TickReport,
    ) -> Result<Option<(usize, ActionDetail)>, ServiceError> {
        let n = lanes.len();
        for step in 0..n {
            let i = (*next + step) % n;
            let lane = &mut lanes[i];
            if lane.in_flight >= lane.cap {
                continue;
            }
            loop {
                if lane.queue.is_empty() {
                    if lane.exhausted {
                        break;
                    }
                    refill(engine, clock, lane, seen).await?;
                    continue;
                }
                let Some(detail) = lane.queue.pop_front() else { break };
                let now = clock.now();
                let left_alone = refused.get(&detail.action.id).is_some_and(|r| {
                    r.seen == format!("{safety}|{}", detail.action.updated_at) && now - r.at < RETRY_REFUSED_AFTER
                });
                if left_alone {
                    report.left_alone += 1;
                    continue;
                }
                *next = (i + 1) % n;
                return Ok(Some((i, detail)));
            }
        }
        Ok(None)
    }
}

/// Reads more of `lane`'s claimable actions, skipping those already seen this tick; marks the
/// lane exhausted when nothing new came.
async fn refill(
    engine: &Engine,
    clock: &dyn Clock,
    lane: &mut Lane,
    seen: &mut HashSet<ActionId>,
) -> Result<(), ServiceError> {
    let limit = lane.read + PAGE;
    let now = clock.now();
    let found = match engine.lease_request() {
        // Reserved for this worker for one lease's length: other replicas' workers pass these
        // by and take the next ones, instead of re-checking the same actions at the provider.
        Some(lease) => {
            let until = now + lease.ttl;
            engine.store().reserve_claimable(now, Some(lane.name.clone()), limit, &lease.holder, until).await?
        }
        None => engine.store().claimable(now, Some(lane.name.clone()), limit).await?,
    };
    let full = found.len() == limit;
    let fresh: Vec<ActionDetail> = found.into_iter().filter(|d| seen.insert(d.action.id)).collect();
    lane.read += fresh.len();
    lane.exhausted = fresh.is_empty() || !full;
    lane.queue.extend(fresh);
    Ok(())
}

/// The installation's safety state (switches and settings) as one comparable string.
async fn safety_text(engine: &Engine) -> Result<String, ServiceError> {
    Ok(format!("{:?}", engine.safety_state().await?))
}
