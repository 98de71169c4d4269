//! Prometheus metrics (OpenMetrics text, `prometheus-client`): actions by state and held
//! actions (counted from the store at each scrape); outcomes, executions, rollbacks, failed
//! verifications, execution duration, time to remediation and the success and rollback rates
//! per control, kind and connector, from a [`MetricsFold`] over the durable audit log that
//! each scrape advances (so a restart recomputes them and every process's work counts); the
//! audit log's sequencing backlog (read from the store at each scrape) and the wait of each
//! entry this process's sequencer sealed.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use remediation_core::{SequencingBacklog, State};
use remediation_runtime::Runtime;
use remediation_service::metrics::{GroupStats, MetricsFold, MetricsKey};

use crate::error::ApiError;

type Labels = Vec<(String, String)>;

/// The metrics of one server process.
pub struct Metrics {
    registry: Mutex<Registry>,
    actions: Family<Labels, Gauge>,
    held: Gauge,
    fold: tokio::sync::Mutex<MetricsFold>,
    folded: Arc<Folded>,
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
        registry.register("actions", "Actions by state, counted in the store", actions.clone());
        registry.register("held_actions", "Actions held by a limit or the circuit breaker", held.clone());
        let folded = Arc::new(Folded::default());
        registry.register_collector(Box::new(folded.clone()));
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
            fold: tokio::sync::Mutex::new(MetricsFold::new()),
            folded,
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

    /// Advances the fold over the audit log to its end and keeps its numbers, by the control
    /// ids configured now, for the next [`Metrics::render`]. Scrapes take turns, so each
    /// record is folded once.
    pub async fn record_log(&self, runtime: &Runtime) -> Result<(), ApiError> {
        let mut fold = self.fold.lock().await;
        fold.advance(runtime.store()).await?;
        let controls = remediation_service::metrics::configured_controls(runtime).await?;
        let groups = fold.groups(&controls);
        *self.folded.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = groups;
        Ok(())
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

/// The fold's numbers as of the last scrape, encoded as families labelled control, kind and
/// connector.
#[derive(Debug, Default)]
struct Folded {
    groups: Mutex<BTreeMap<MetricsKey, GroupStats>>,
}

fn labels(key: &MetricsKey, outcome: Option<&str>) -> Labels {
    let mut l = Vec::with_capacity(4);
    if let Some(o) = outcome {
        l.push(("outcome".to_owned(), o.to_owned()));
    }
    l.push(("control".to_owned(), key.control.clone()));
    l.push(("kind".to_owned(), key.kind.clone()));
    l.push(("connector".to_owned(), key.connector.clone()));
    l
}

/// The outcomes each family always shows, even at 0, so a rate can be computed from the start.
const OUTCOMES: [&str; 6] = ["completed", "failed", "rolled_back", "rejected", "cancelled", "expired"];
const EXECUTIONS: [&str; 5] = ["completed", "failed", "requeued", "held", "plan_changed"];
const ROLLBACKS: [&str; 3] = ["rolled_back", "failed", "requested"];

impl Folded {
    fn counters(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        (name, help): (&str, &str),
        outcomes: &[&str],
        pick: fn(&GroupStats) -> &BTreeMap<&'static str, u64>,
        groups: &BTreeMap<MetricsKey, GroupStats>,
    ) -> Result<(), std::fmt::Error> {
        let mut family = encoder.encode_descriptor(name, help, None, MetricType::Counter)?;
        for (key, stats) in groups {
            for outcome in outcomes {
                let value = pick(stats).get(outcome).copied().unwrap_or(0);
                let l = labels(key, Some(outcome));
                family.encode_family(&l)?.encode_counter::<NoLabelSet, _, f64>(&value, None)?;
            }
        }
        Ok(())
    }
}

impl Collector for Folded {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let groups = self.groups.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let groups = &*groups;
        self.counters(
            &mut encoder,
            ("action_outcomes", "Actions reaching each outcome, from the audit log"),
            &OUTCOMES,
            |g| &g.outcomes,
            groups,
        )?;
        self.counters(
            &mut encoder,
            ("executions", "Executions by outcome, from the audit log (every process's)"),
            &EXECUTIONS,
            |g| &g.executions,
            groups,
        )?;
        self.counters(
            &mut encoder,
            ("rollbacks", "Rollbacks by outcome, from the audit log (every process's)"),
            &ROLLBACKS,
            |g| &g.rollbacks,
            groups,
        )?;
        let mut family = encoder.encode_descriptor(
            "failed_verifications",
            "Executions that failed because the change was not verified after it was applied",
            None,
            MetricType::Counter,
        )?;
        for (key, stats) in groups {
            let l = labels(key, None);
            family.encode_family(&l)?.encode_counter::<NoLabelSet, _, f64>(&stats.failed_verifications, None)?;
        }
        for (name, help, pick) in [
            (
                "execution_duration_seconds",
                "Time from the start of each execution to its outcome, from the audit log",
                (|g| &g.execution_duration) as fn(&GroupStats) -> &remediation_service::metrics::Buckets,
            ),
            ("time_to_remediation_seconds", "Time from suggestion to completed remediation, from the audit log", |g| {
                &g.time_to_remediation
            }),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Histogram)?;
            for (key, stats) in groups {
                let h = pick(stats);
                let buckets: Vec<(f64, u64)> =
                    h.bounds.iter().copied().chain([f64::MAX]).zip(h.counts.iter().copied()).collect();
                let l = labels(key, None);
                family.encode_family(&l)?.encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
            }
        }
        for (name, help, rate) in [
            (
                "success_rate",
                "Completed over completed plus failed executions (absent while there are none)",
                GroupStats::success_rate as fn(&GroupStats) -> Option<f64>,
            ),
            (
                "rollback_rate",
                "Rolled-back actions over completed executions (absent while none completed)",
                GroupStats::rollback_rate,
            ),
        ] {
            let mut family = encoder.encode_descriptor(name, help, None, MetricType::Gauge)?;
            for (key, stats) in groups {
                if let Some(r) = rate(stats) {
                    let l = labels(key, None);
                    family.encode_family(&l)?.encode_gauge(&r)?;
                }
            }
        }
        Ok(())
    }
}
