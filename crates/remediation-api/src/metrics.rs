//! Prometheus metrics (OpenMetrics text, `prometheus-client`): actions by state and held
//! actions (counted from the store at each scrape), and, for executions this process ran,
//! latency, outcomes, rollbacks and time to remediation (creation to completion); the audit
//! log's sequencing backlog (read from the store at each scrape) and the wait of each entry
//! this process's sequencer sealed.

use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;
use remediation_core::{ExecuteOutcome, RollbackOutcome, SequencingBacklog, State};
use time::OffsetDateTime;

use crate::error::ApiError;

type Labels = Vec<(String, String)>;

/// The metrics of one server process.
pub struct Metrics {
    registry: Mutex<Registry>,
    actions: Family<Labels, Gauge>,
    held: Gauge,
    executions: Family<Labels, Counter>,
    execution_seconds: Histogram,
    rollbacks: Family<Labels, Counter>,
    time_to_remediation_seconds: Histogram,
    audit_unsequenced: Gauge,
    audit_oldest_unsequenced_seconds: Gauge<f64, AtomicU64>,
    audit_sequencing_lag_seconds: Histogram,
    events_backlog: Family<Labels, Gauge>,
    events_oldest_undelivered_seconds: Family<Labels, Gauge<f64, AtomicU64>>,
    events_parked: Family<Labels, Gauge>,
    events_delivered: Family<Labels, Gauge>,
    events_delivery_delay_seconds: Histogram,
}

/// The buckets of the sequencing lag, in seconds: 1 ms to 10 s in 1-2-5 steps.
const SEQUENCING_LAG_BUCKETS: [f64; 13] = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0];

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("remediation");
        let actions = Family::<Labels, Gauge>::default();
        let held = Gauge::default();
        let executions = Family::<Labels, Counter>::default();
        let execution_seconds = Histogram::new(exponential_buckets(0.005, 2.0, 14));
        let rollbacks = Family::<Labels, Counter>::default();
        // 1 minute to about 45 days.
        let time_to_remediation_seconds = Histogram::new(exponential_buckets(60.0, 3.0, 12));
        registry.register("actions", "Actions by state, counted in the store", actions.clone());
        registry.register("held_actions", "Actions held by a limit or the circuit breaker", held.clone());
        registry.register("executions", "Executions run by this process, by outcome", executions.clone());
        registry.register(
            "execution_duration_seconds",
            "Wall time of executions run by this process",
            execution_seconds.clone(),
        );
        registry.register("rollbacks", "Rollbacks run by this process, by outcome", rollbacks.clone());
        registry.register(
            "time_to_remediation_seconds",
            "Time from suggestion to completed remediation",
            time_to_remediation_seconds.clone(),
        );
        let audit_unsequenced = Gauge::default();
        let audit_oldest_unsequenced_seconds = Gauge::<f64, AtomicU64>::default();
        let audit_sequencing_lag_seconds = Histogram::new(SEQUENCING_LAG_BUCKETS);
        registry.register(
            "audit_unsequenced_entries",
            "Audit entries written but not yet sequenced, counted in the store",
            audit_unsequenced.clone(),
        );
        registry.register(
            "audit_oldest_unsequenced_seconds",
            "How long the oldest audit entry not yet sequenced has waited (0 when none waits)",
            audit_oldest_unsequenced_seconds.clone(),
        );
        registry.register(
            "audit_sequencing_lag_seconds",
            "Wait between the write and the sealing of each audit entry this process's sequencer sealed",
            audit_sequencing_lag_seconds.clone(),
        );
        let events_backlog = Family::<Labels, Gauge>::default();
        registry.register(
            "events_backlog",
            "Audit records (each an event) not yet delivered to a sink, by sink; a sink that is down accumulates them",
            events_backlog.clone(),
        );
        let events_oldest_undelivered_seconds = Family::<Labels, Gauge<f64, AtomicU64>>::default();
        registry.register(
            "events_oldest_undelivered_seconds",
            "Age of the oldest record a sink has not received yet, by sink (0 when caught up)",
            events_oldest_undelivered_seconds.clone(),
        );
        let events_parked = Family::<Labels, Gauge>::default();
        registry.register(
            "events_parked",
            "Records a sink refused for good and parked, by sink (`remediate events status`)",
            events_parked.clone(),
        );
        let events_delivered = Family::<Labels, Gauge>::default();
        registry.register(
            "events_delivered",
            "Records this process's relay delivered to each sink since it started",
            events_delivered.clone(),
        );
        let events_delivery_delay_seconds = Histogram::new(SEQUENCING_LAG_BUCKETS);
        registry.register(
            "events_delivery_delay_seconds",
            "Time from a record's commit to its acknowledgement by a sink, for records this process's relay delivered",
            events_delivery_delay_seconds.clone(),
        );
        Self {
            events_backlog,
            events_oldest_undelivered_seconds,
            events_parked,
            events_delivered,
            events_delivery_delay_seconds,
            registry: Mutex::new(registry),
            actions,
            held,
            executions,
            execution_seconds,
            rollbacks,
            time_to_remediation_seconds,
            audit_unsequenced,
            audit_oldest_unsequenced_seconds,
            audit_sequencing_lag_seconds,
        }
    }

    /// Sets the sequencing gauges from `backlog` ([`remediation_core::AuditLog::sequencing_backlog`])
    /// and observes each of `lags` ([`remediation_core::AuditLog::take_sequencing_lags`]).
    pub fn record_sequencing(&self, backlog: &SequencingBacklog, lags: &[Duration]) {
        self.audit_unsequenced.set(i64::try_from(backlog.entries).unwrap_or(i64::MAX));
        self.audit_oldest_unsequenced_seconds.set(backlog.oldest_age.map_or(0.0, |age| age.as_secs_f64()));
        for lag in lags {
            self.audit_sequencing_lag_seconds.observe(lag.as_secs_f64());
        }
    }

    /// Sets the event gauges from `status` (every sink's standing, read from the store) and
    /// `counters` (this process's relay, [`remediation_runtime::relay::Relay::take_counters`]).
    pub fn record_events(
        &self,
        status: &remediation_runtime::relay::EventsStatus,
        counters: &std::collections::BTreeMap<String, remediation_runtime::relay::SinkCounters>,
    ) {
        for sink in &status.sinks {
            let labels = vec![("sink".to_owned(), sink.sink.clone())];
            self.events_backlog.get_or_create(&labels).set(i64::try_from(sink.backlog).unwrap_or(i64::MAX));
            let age = sink.oldest_undelivered_age_secs.unwrap_or(0);
            self.events_oldest_undelivered_seconds.get_or_create(&labels).set(age as f64);
            self.events_parked.get_or_create(&labels).set(i64::try_from(sink.parked).unwrap_or(i64::MAX));
        }
        for (sink, c) in counters {
            let labels = vec![("sink".to_owned(), sink.clone())];
            self.events_delivered.get_or_create(&labels).set(i64::try_from(c.delivered).unwrap_or(i64::MAX));
            for delay in &c.delays {
                self.events_delivery_delay_seconds.observe(delay.max(0.0));
            }
        }
    }

    /// Records one execution's outcome and duration; a completion also records the time from
    /// the action's creation to `now`.
    pub fn record_execution(&self, outcome: &ExecuteOutcome, took: Duration, now: OffsetDateTime) {
        let label = match outcome {
            ExecuteOutcome::Completed { action, .. } => {
                let ttr = (now - action.created_at).as_seconds_f64().max(0.0);
                self.time_to_remediation_seconds.observe(ttr);
                "completed"
            }
            ExecuteOutcome::Failed { .. } => "failed",
            ExecuteOutcome::Held { .. } | ExecuteOutcome::HeldByBreaker { .. } => "held",
            ExecuteOutcome::PlanChanged { .. } => "plan_changed",
            ExecuteOutcome::Requeued { .. } => "requeued",
            ExecuteOutcome::DryRun { .. } => return,
        };
        self.executions.get_or_create(&vec![("outcome".to_owned(), label.to_owned())]).inc();
        if label != "held" {
            self.execution_seconds.observe(took.as_secs_f64());
        }
    }

    /// Records one rollback's outcome.
    pub fn record_rollback(&self, outcome: &RollbackOutcome) {
        let label = match outcome {
            RollbackOutcome::RolledBack { .. } => "rolled_back",
            RollbackOutcome::RestoredPendingAcceptance { .. } => "restored_pending_acceptance",
            RollbackOutcome::Failed { .. } => "failed",
            RollbackOutcome::Requested { .. } => "requested",
        };
        self.rollbacks.get_or_create(&vec![("outcome".to_owned(), label.to_owned())]).inc();
    }

    /// The text exposition, with the state gauges set from `counts` (the stored actions per
    /// state, [`remediation_core::ActionStore::count_by_state`]).
    pub fn render(&self, counts: &std::collections::BTreeMap<State, u64>) -> Result<String, ApiError> {
        let count = |state: State| i64::try_from(counts.get(&state).copied().unwrap_or(0)).unwrap_or(i64::MAX);
        for state in State::ALL {
            self.actions.get_or_create(&vec![("state".to_owned(), state.to_string())]).set(count(state));
        }
        self.held.set(count(State::Held));
        let mut text = String::new();
        let registry = self.registry.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        encode(&mut text, &registry).map_err(|e| ApiError::internal(&e))?;
        Ok(text)
    }
}
