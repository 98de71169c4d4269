//! Remediation metrics derived from the sequenced audit log, so they survive restarts and count
//! every process's work (servers and CLI runs alike): outcomes, executions, rollbacks, failed
//! verifications, execution duration and time to remediation, per control, kind and connector.
//!
//! [`MetricsFold`] reads the log from `seq` 0 and then advances from the last `seq` it saw;
//! the kind of each action (which the transition records do not carry) is looked up in the
//! store once and cached. A fold keeps raw control ids; [`MetricsFold::groups`] buckets the
//! ones not configured under `other` when the numbers are read, so a control configured later
//! takes its history with it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use remediation_core::{ActionId, AuditFilter, AuditRecord, KindName, State, Store, StoreError};
use remediation_runtime::Runtime;
use serde::Serialize;
use time::OffsetDateTime;

use crate::ServiceError;

/// The `control` label of an action whose control id is not configured.
pub const OTHER_CONTROL: &str = "other";
/// The `control` label of an action that names no control.
pub const NO_CONTROL: &str = "none";
/// The `kind` label of an action the store no longer knows.
pub const UNKNOWN_KIND: &str = "unknown";

/// Upper bounds of the time-to-remediation buckets, in seconds: 1 minute to about 123 days,
/// times 3.
pub const TTR_BUCKETS: [f64; 12] = [
    60.0,
    180.0,
    540.0,
    1_620.0,
    4_860.0,
    14_580.0,
    43_740.0,
    131_220.0,
    393_660.0,
    1_180_980.0,
    3_542_940.0,
    10_628_820.0,
];

/// Upper bounds of the execution-duration buckets, in seconds: 5 ms to about 41 s, times 2.
pub const EXECUTION_BUCKETS: [f64; 14] =
    [0.005, 0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96];

/// How many records one read of the log takes.
const PAGE: usize = 1_000;

/// The prefix of the comment the engine writes when a change is not verified after it was
/// applied (`remediation_core::Engine`, execution).
const NOT_VERIFIED: &str = "not verified";

/// The labels of one group of numbers.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct MetricsKey {
    /// The control id when configured, [`OTHER_CONTROL`] or [`NO_CONTROL`] (raw inside a fold).
    pub control: String,
    /// The action kind (`revoke`, `suspend`, ...), or [`UNKNOWN_KIND`].
    pub kind: String,
    /// The connector id.
    pub connector: String,
}

/// A histogram: a count per bucket (the last one above every bound), the sum and the count.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Buckets {
    /// The upper bounds, in seconds.
    pub bounds: &'static [f64],
    /// Observations per bucket (not cumulative); one more than `bounds`, the last for `+Inf`.
    pub counts: Vec<u64>,
    /// The sum of the observations, in seconds.
    pub sum: f64,
    /// How many observations.
    pub count: u64,
}

impl Buckets {
    fn new(bounds: &'static [f64]) -> Self {
        Self { bounds, counts: vec![0; bounds.len() + 1], sum: 0.0, count: 0 }
    }

    fn observe(&mut self, value: f64) {
        let value = value.max(0.0);
        let i = self.bounds.iter().position(|b| value <= *b).unwrap_or(self.bounds.len());
        if let Some(c) = self.counts.get_mut(i) {
            *c += 1;
        }
        self.sum += value;
        self.count += 1;
    }

    fn merge(&mut self, other: &Self) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.sum += other.sum;
        self.count += other.count;
    }
}

/// The numbers of one group (control, kind, connector).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct GroupStats {
    /// Actions reaching each outcome: `completed` (by an execution), `failed` (an execution or
    /// a rollback failed), `rolled_back`, `rejected`, `cancelled`, `expired`.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// Executions by outcome: `completed`, `failed`, `requeued`, `held`, `plan_changed`.
    pub executions: BTreeMap<&'static str, u64>,
    /// Rollbacks by outcome: `rolled_back`, `failed`, `requested` (waits for an approver).
    pub rollbacks: BTreeMap<&'static str, u64>,
    /// Executions that failed because the change was not verified after it was applied.
    pub failed_verifications: u64,
    /// Time from suggestion to completion of each completed execution.
    pub time_to_remediation: Buckets,
    /// Time from the start of each execution to its outcome (when the start was seen).
    pub execution_duration: Buckets,
    /// Every time to remediation, in seconds, when the fold keeps them (for exact quantiles).
    #[serde(skip)]
    ttr_samples: Vec<f64>,
}

impl Default for GroupStats {
    fn default() -> Self {
        Self {
            outcomes: BTreeMap::new(),
            executions: BTreeMap::new(),
            rollbacks: BTreeMap::new(),
            failed_verifications: 0,
            time_to_remediation: Buckets::new(&TTR_BUCKETS),
            execution_duration: Buckets::new(&EXECUTION_BUCKETS),
            ttr_samples: Vec::new(),
        }
    }
}

impl GroupStats {
    fn merge(&mut self, other: &Self) {
        for (mine, theirs) in [
            (&mut self.outcomes, &other.outcomes),
            (&mut self.executions, &other.executions),
            (&mut self.rollbacks, &other.rollbacks),
        ] {
            for (k, v) in theirs {
                *mine.entry(k).or_default() += v;
            }
        }
        self.failed_verifications += other.failed_verifications;
        self.time_to_remediation.merge(&other.time_to_remediation);
        self.execution_duration.merge(&other.execution_duration);
        self.ttr_samples.extend_from_slice(&other.ttr_samples);
    }

    fn count(map: &BTreeMap<&'static str, u64>, key: &str) -> u64 {
        map.get(key).copied().unwrap_or(0)
    }

    /// Completed executions over completed plus failed ones; `None` when there were none.
    pub fn success_rate(&self) -> Option<f64> {
        let completed = Self::count(&self.executions, "completed");
        let failed = Self::count(&self.executions, "failed");
        ratio(completed, completed + failed)
    }

    /// Rolled-back actions over completed executions; `None` when nothing completed.
    pub fn rollback_rate(&self) -> Option<f64> {
        ratio(Self::count(&self.outcomes, "rolled_back"), Self::count(&self.executions, "completed"))
    }

    /// The `q` quantile (0 to 1, nearest rank) of the times to remediation kept, in seconds;
    /// `None` when none was kept.
    pub fn ttr_quantile(&self, q: f64) -> Option<f64> {
        if self.ttr_samples.is_empty() {
            return None;
        }
        let mut sorted = self.ttr_samples.clone();
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        // Nearest rank: the smallest value with at least q·n values at or below it.
        let rank = ((q.clamp(0.0, 1.0) * n as f64).ceil() as usize).clamp(1, n);
        sorted.get(rank - 1).copied()
    }
}

fn ratio(numerator: u64, denominator: u64) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

/// What the fold needs to know of an action beyond its transition records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActionFacts {
    /// Its kind.
    pub kind: KindName,
    /// When it was suggested.
    pub created_at: OffsetDateTime,
}

/// Where a fold reads from: the sequenced log, and the facts of one action. Implemented for
/// the store; tests script it.
#[async_trait]
pub trait FoldSource: Send + Sync {
    /// Sequenced records with `seq` above `after_seq`, by `seq`, at most `limit`.
    async fn page(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError>;
    /// The facts of `id`; `None` when the store does not know it.
    async fn facts(&self, id: ActionId) -> Result<Option<ActionFacts>, StoreError>;
}

#[async_trait]
impl FoldSource for Arc<dyn Store> {
    async fn page(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        self.audit_page(&AuditFilter::default(), Some(after_seq), limit).await
    }

    async fn facts(&self, id: ActionId) -> Result<Option<ActionFacts>, StoreError> {
        match self.get(id).await {
            Ok(d) => Ok(Some(ActionFacts { kind: d.action.kind.name(), created_at: d.action.created_at })),
            Err(StoreError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// The period a fold counts: records whose `at` is at or after `since` and before `until`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Period {
    /// Inclusive start; unbounded when `None`.
    pub since: Option<OffsetDateTime>,
    /// Exclusive end; unbounded when `None`.
    pub until: Option<OffsetDateTime>,
}

impl Period {
    fn contains(&self, at: OffsetDateTime) -> bool {
        self.since.is_none_or(|s| at >= s) && self.until.is_none_or(|u| at < u)
    }
}

/// The metrics as a fold over the audit log: start from `seq` 0, [`MetricsFold::advance`] to
/// the end of the log, and again later from where it stopped.
#[derive(Debug, Clone)]
pub struct MetricsFold {
    period: Period,
    keep_samples: bool,
    last_seq: u64,
    facts: HashMap<ActionId, Option<ActionFacts>>,
    began: HashMap<ActionId, OffsetDateTime>,
    groups: BTreeMap<MetricsKey, GroupStats>,
    lookups: u64,
}

impl MetricsFold {
    /// A fold over the whole log that keeps histograms only (a server's, whose memory must not
    /// grow with every completion).
    pub fn new() -> Self {
        Self::over(Period::default(), false)
    }

    /// A fold counting only `period`, keeping every time to remediation for exact quantiles
    /// when `keep_samples`.
    pub fn over(period: Period, keep_samples: bool) -> Self {
        Self {
            period,
            keep_samples,
            last_seq: 0,
            facts: HashMap::new(),
            began: HashMap::new(),
            groups: BTreeMap::new(),
            lookups: 0,
        }
    }

    /// The last `seq` folded (0 before any).
    pub fn last_seq(&self) -> u64 {
        self.last_seq
    }

    /// How many times the fold asked its source for an action's facts.
    pub fn lookups(&self) -> u64 {
        self.lookups
    }

    /// Folds every record after the last one seen, a page at a time; returns how many.
    pub async fn advance(&mut self, source: &dyn FoldSource) -> Result<u64, StoreError> {
        let mut folded = 0;
        loop {
            let page = source.page(self.last_seq, PAGE).await?;
            let Some(last) = page.last().map(|r| r.seq) else { return Ok(folded) };
            for record in &page {
                if let Some(t) = record.body.transition()
                    && self.period.contains(t.at)
                    && !self.facts.contains_key(&t.action_id)
                {
                    self.lookups += 1;
                    let facts = source.facts(t.action_id).await?;
                    self.facts.insert(t.action_id, facts);
                }
                self.apply(record);
                folded += 1;
            }
            self.last_seq = last;
            if page.len() < PAGE {
                return Ok(folded);
            }
        }
    }

    fn apply(&mut self, record: &AuditRecord) {
        if record.seq <= self.last_seq {
            return;
        }
        let Some(t) = record.body.transition() else { return };
        let started = match t.event.as_str() {
            "begin_execution" | "force_execute" => {
                self.began.insert(t.action_id, t.at);
                return;
            }
            "execution_succeeded" | "execution_failed" | "requeue" => self.began.remove(&t.action_id),
            _ => None,
        };
        let counted = matches!(
            t.event.as_str(),
            "execution_succeeded"
                | "execution_failed"
                | "requeue"
                | "hold"
                | "plan_changed"
                | "rollback_succeeded"
                | "rollback_failed"
                | "request_rollback"
        ) || matches!(t.to, State::Rejected | State::Cancelled | State::Expired);
        // A group appears only once something in it is counted.
        if !counted || !self.period.contains(t.at) {
            return;
        }
        let facts = self.facts.get(&t.action_id).copied().flatten();
        let key = MetricsKey {
            control: t.control_id.clone().unwrap_or_else(|| NO_CONTROL.to_owned()),
            kind: facts.map_or_else(|| UNKNOWN_KIND.to_owned(), |f| f.kind.as_str().to_owned()),
            connector: t.connector.clone(),
        };
        let keep_samples = self.keep_samples;
        let g = self.groups.entry(key).or_default();
        let bump = |map: &mut BTreeMap<&'static str, u64>, k: &'static str| *map.entry(k).or_default() += 1;
        let took = started.map(|s| (t.at - s).as_seconds_f64());
        match (t.event.as_str(), t.to) {
            ("execution_succeeded", _) => {
                bump(&mut g.outcomes, "completed");
                bump(&mut g.executions, "completed");
                if let Some(f) = facts {
                    let ttr = (t.at - f.created_at).as_seconds_f64().max(0.0);
                    g.time_to_remediation.observe(ttr);
                    if keep_samples {
                        g.ttr_samples.push(ttr);
                    }
                }
            }
            ("execution_failed", _) => {
                bump(&mut g.outcomes, "failed");
                bump(&mut g.executions, "failed");
                if t.comment.as_deref().is_some_and(|c| c.starts_with(NOT_VERIFIED)) {
                    g.failed_verifications += 1;
                }
            }
            ("requeue", _) => bump(&mut g.executions, "requeued"),
            ("hold", _) => bump(&mut g.executions, "held"),
            ("plan_changed", _) => bump(&mut g.executions, "plan_changed"),
            ("rollback_succeeded", _) => {
                bump(&mut g.outcomes, "rolled_back");
                bump(&mut g.rollbacks, "rolled_back");
            }
            ("rollback_failed", _) => {
                bump(&mut g.outcomes, "failed");
                bump(&mut g.rollbacks, "failed");
            }
            ("request_rollback", _) => bump(&mut g.rollbacks, "requested"),
            (_, State::Rejected) => bump(&mut g.outcomes, "rejected"),
            (_, State::Cancelled) => bump(&mut g.outcomes, "cancelled"),
            (_, State::Expired) => bump(&mut g.outcomes, "expired"),
            _ => {}
        }
        if let Some(took) = took {
            g.execution_duration.observe(took);
        }
    }

    /// The numbers by (control, kind, connector), a control id not in `controls` counted as
    /// [`OTHER_CONTROL`] (actions without one as [`NO_CONTROL`]).
    pub fn groups(&self, controls: &BTreeSet<String>) -> BTreeMap<MetricsKey, GroupStats> {
        let mut out: BTreeMap<MetricsKey, GroupStats> = BTreeMap::new();
        for (key, stats) in &self.groups {
            let control = if key.control == NO_CONTROL || controls.contains(&key.control) {
                key.control.clone()
            } else {
                OTHER_CONTROL.to_owned()
            };
            out.entry(MetricsKey { control, ..key.clone() }).or_default().merge(stats);
        }
        out
    }
}

impl Default for MetricsFold {
    fn default() -> Self {
        Self::new()
    }
}

/// One row of [`MetricsReport`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsRow {
    /// The labels.
    #[serde(flatten)]
    pub key: MetricsKey,
    /// The numbers.
    #[serde(flatten)]
    pub stats: GroupStats,
    /// Completed over completed plus failed executions; `None` when there were none.
    pub success_rate: Option<f64>,
    /// Rolled back over completed; `None` when nothing completed.
    pub rollback_rate: Option<f64>,
    /// Median time to remediation, in seconds.
    pub ttr_p50_secs: Option<f64>,
    /// 90th percentile of the time to remediation, in seconds.
    pub ttr_p90_secs: Option<f64>,
}

/// The metrics of one period, per control, kind and connector.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricsReport {
    /// Inclusive start of the period.
    #[serde(with = "time::serde::rfc3339::option")]
    pub since: Option<OffsetDateTime>,
    /// Exclusive end of the period.
    #[serde(with = "time::serde::rfc3339::option")]
    pub until: Option<OffsetDateTime>,
    /// One row per group with anything in the period.
    pub rows: Vec<MetricsRow>,
}

/// The configured control ids (the policy settings in force: the store's once changed there,
/// else the configuration's `[policy.controls]`): the `control` label's values besides
/// [`OTHER_CONTROL`] and [`NO_CONTROL`].
pub async fn configured_controls(runtime: &Runtime) -> Result<BTreeSet<String>, ServiceError> {
    Ok(runtime.active().await?.settings.controls.keys().cloned().collect())
}

/// The metrics of `period`, folded from the whole audit log.
pub async fn metrics_report(runtime: &Runtime, period: Period) -> Result<MetricsReport, ServiceError> {
    let mut fold = MetricsFold::over(period, true);
    fold.advance(runtime.store()).await?;
    let controls = configured_controls(runtime).await?;
    let rows = fold
        .groups(&controls)
        .into_iter()
        .map(|(key, stats)| MetricsRow {
            success_rate: stats.success_rate(),
            rollback_rate: stats.rollback_rate(),
            ttr_p50_secs: stats.ttr_quantile(0.5),
            ttr_p90_secs: stats.ttr_quantile(0.9),
            key,
            stats,
        })
        .collect();
    Ok(MetricsReport { since: period.since, until: period.until, rows })
}

#[cfg(test)]
mod tests;
