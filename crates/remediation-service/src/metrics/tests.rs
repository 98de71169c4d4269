//! The fold over scripted record sequences: what each event counts, order, incremental
//! advance, the kind lookup cache, the `other` bucket and rates without a denominator.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use remediation_core::hash::GENESIS_HASH;
use remediation_core::{ActionId, AuditBody, AuditRecord, KindName, SettingsRecord, State, StoreError};
use remediation_testkit::builders::{action_id, fixed_time, transition};
use time::{Duration, OffsetDateTime};

use super::*;

/// A log and the facts of its actions, counting lookups.
#[derive(Default)]
struct Script {
    records: Mutex<Vec<AuditRecord>>,
    facts: HashMap<ActionId, ActionFacts>,
    lookups: AtomicU64,
}

impl Script {
    fn push(&self, body: AuditBody) {
        let mut records = self.records.lock().expect("lock");
        let seq = records.len() as u64 + 1;
        records.push(AuditRecord { seq, body, prev_hash: GENESIS_HASH.to_owned(), hash: GENESIS_HASH.to_owned() });
    }
}

#[async_trait::async_trait]
impl FoldSource for Script {
    async fn page(&self, after_seq: u64, limit: usize) -> Result<Vec<AuditRecord>, StoreError> {
        let records = self.records.lock().expect("lock");
        Ok(records.iter().filter(|r| r.seq > after_seq).take(limit).cloned().collect())
    }

    async fn facts(&self, id: ActionId) -> Result<Option<ActionFacts>, StoreError> {
        self.lookups.fetch_add(1, Ordering::SeqCst);
        Ok(self.facts.get(&id).copied())
    }
}

fn t0() -> OffsetDateTime {
    fixed_time()
}

/// One step of a script: action seed, event, to-state, minutes after t0, control.
type Step = (u64, &'static str, State, i64, Option<&'static str>);

fn script(steps: &[Step]) -> Script {
    let mut s = Script::default();
    for (seed, ..) in steps {
        s.facts.insert(action_id(*seed), ActionFacts { kind: KindName::Revoke, created_at: t0() });
    }
    for &(seed, event, to, minutes, control) in steps {
        let mut t = transition(action_id(seed), None, to, event, t0() + Duration::minutes(minutes));
        t.control_id = control.map(str::to_owned);
        if event == "execution_failed" && seed % 2 == 0 {
            t.comment = Some("not verified: the provider does not show the expected state".to_owned());
        }
        s.push(AuditBody::Transition(t));
    }
    s
}

fn run(s: &Script, period: Period) -> MetricsFold {
    let mut fold = MetricsFold::over(period, true);
    futures_block(fold.advance(s)).expect("advance");
    fold
}

fn futures_block<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread().build().expect("runtime").block_on(f)
}

/// The only group's numbers in a compact form.
fn summary(fold: &MetricsFold) -> String {
    let groups = fold.groups(&BTreeSet::from(["C1".to_owned()]));
    groups
        .iter()
        .map(|(k, g)| {
            let fmt = |m: &BTreeMap<&str, u64>| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",");
            format!(
                "{}/{}/{} outcomes[{}] executions[{}] rollbacks[{}] unverified={} ttr={} took={}",
                k.control,
                k.kind,
                k.connector,
                fmt(&g.outcomes),
                fmt(&g.executions),
                fmt(&g.rollbacks),
                g.failed_verifications,
                g.time_to_remediation.count,
                g.execution_duration.count,
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[track_caller]
fn check(steps: &[Step], expected: &str) {
    assert_eq!(summary(&run(&script(steps), Period::default())), expected);
}

const C1: Option<&str> = Some("C1");

#[test]
fn each_event_counts_where_it_belongs() {
    // Suggesting, approving and starting count nothing: no group.
    check(
        &[
            (1, "suggest", State::PendingApproval, 0, C1),
            (1, "approve", State::Approved, 1, C1),
            (1, "begin_execution", State::Executing, 2, C1),
        ],
        "",
    );
    check(
        &[(1, "begin_execution", State::Executing, 1, C1), (1, "execution_succeeded", State::Completed, 2, C1)],
        "C1/revoke/sandbox outcomes[completed=1] executions[completed=1] rollbacks[] unverified=0 ttr=1 took=1",
    );
    // Seed 2 fails verification (even seeds carry the engine's comment), seed 3 fails otherwise.
    check(
        &[
            (2, "begin_execution", State::Executing, 1, C1),
            (2, "execution_failed", State::Failed, 2, C1),
            (3, "begin_execution", State::Executing, 1, C1),
            (3, "execution_failed", State::Failed, 2, C1),
        ],
        "C1/revoke/sandbox outcomes[failed=2] executions[failed=2] rollbacks[] unverified=1 ttr=0 took=2",
    );
    check(
        &[
            (1, "execution_succeeded", State::Completed, 2, C1),
            (1, "request_rollback", State::RollbackRequested, 3, C1),
            // A rejected rollback request returns to completed: not a second completion.
            (1, "reject", State::Completed, 4, C1),
            (1, "rollback", State::RollingBack, 5, C1),
            (1, "rollback_succeeded", State::RolledBack, 6, C1),
        ],
        "C1/revoke/sandbox outcomes[completed=1,rolled_back=1] executions[completed=1] rollbacks[requested=1,rolled_back=1] unverified=0 ttr=1 took=0",
    );
    check(
        &[
            (1, "reject", State::Rejected, 1, C1),
            (3, "cancel", State::Cancelled, 1, C1),
            (5, "kill_switch", State::Cancelled, 1, C1),
            (7, "expire", State::Expired, 1, C1),
            (9, "rollback_failed", State::Failed, 1, C1),
            (11, "hold", State::Held, 1, C1),
            (13, "plan_changed", State::PendingApproval, 1, C1),
            (15, "begin_execution", State::Executing, 1, C1),
            (15, "requeue", State::Approved, 1, C1),
        ],
        "C1/revoke/sandbox outcomes[cancelled=2,expired=1,failed=1,rejected=1] executions[held=1,plan_changed=1,requeued=1] rollbacks[failed=1] unverified=0 ttr=0 took=1",
    );
}

#[test]
fn order_decides_durations_and_times_to_remediation() {
    let s = script(&[
        (1, "begin_execution", State::Executing, 10, C1),
        (3, "begin_execution", State::Executing, 20, C1),
        (1, "execution_succeeded", State::Completed, 12, C1),
        (3, "execution_succeeded", State::Completed, 50, C1),
        // An outcome whose start the log does not hold has no duration.
        (5, "execution_succeeded", State::Completed, 60, C1),
    ]);
    let fold = run(&s, Period::default());
    let g = &fold.groups(&BTreeSet::from(["C1".to_owned()]))
        [&MetricsKey { control: "C1".into(), kind: "revoke".into(), connector: "sandbox".into() }];
    assert_eq!(g.execution_duration.count, 2);
    assert_eq!(g.execution_duration.sum, (2 * 60 + 30 * 60) as f64);
    // Created at t0: 12, 50 and 60 minutes.
    assert_eq!(g.time_to_remediation.sum, ((12 + 50 + 60) * 60) as f64);
    assert_eq!(g.ttr_quantile(0.5), Some(50.0 * 60.0));
    assert_eq!(g.ttr_quantile(0.9), Some(60.0 * 60.0));
    // 720 s lands in the bucket up to 1,620 s; 3,000 and 3,600 in the one up to 4,860 s.
    assert_eq!(&g.time_to_remediation.counts[..5], &[0, 0, 0, 1, 2]);
}

#[test]
fn an_incremental_advance_equals_one_full_fold() {
    let steps: Vec<Step> = (0..2_500u64)
        .map(|i| {
            let (event, to) = match i % 4 {
                0 => ("begin_execution", State::Executing),
                1 => ("execution_succeeded", State::Completed),
                2 => ("execution_failed", State::Failed),
                _ => ("cancel", State::Cancelled),
            };
            (i / 2, event, to, i as i64, if i % 3 == 0 { C1 } else { Some("C2") })
        })
        .collect();
    let full = script(&steps);
    let whole = run(&full, Period::default());
    let partial = script(&steps[..1_234]);
    let mut fold = MetricsFold::over(Period::default(), true);
    futures_block(fold.advance(&partial)).expect("advance");
    assert_eq!(fold.last_seq(), 1_234);
    // The log grows; the fold goes on from where it stopped.
    for (i, r) in full.records.lock().expect("lock").iter().enumerate().skip(1_234) {
        assert_eq!(r.seq, i as u64 + 1);
        partial.push(r.body.clone());
    }
    let partial = Script { facts: full.facts.clone(), ..partial };
    assert_eq!(futures_block(fold.advance(&partial)).expect("advance"), 2_500 - 1_234);
    assert_eq!(fold.last_seq(), 2_500);
    let controls = BTreeSet::from(["C1".to_owned(), "C2".to_owned()]);
    assert_eq!(fold.groups(&controls), whole.groups(&controls));
    // Nothing new: nothing folded twice.
    assert_eq!(futures_block(fold.advance(&partial)).expect("advance"), 0);
    assert_eq!(fold.groups(&controls), whole.groups(&controls));
}

#[test]
fn each_action_kind_is_looked_up_once() {
    let s = script(&[
        (1, "begin_execution", State::Executing, 1, C1),
        (1, "execution_succeeded", State::Completed, 2, C1),
        (2, "cancel", State::Cancelled, 2, C1),
        (1, "rollback", State::RollingBack, 3, C1),
    ]);
    let mut fold = MetricsFold::new();
    futures_block(fold.advance(&s)).expect("advance");
    s.push(AuditBody::Transition(transition(action_id(1), None, State::RolledBack, "rollback_succeeded", t0())));
    futures_block(fold.advance(&s)).expect("advance");
    assert_eq!((fold.lookups(), s.lookups.load(Ordering::SeqCst)), (2, 2));
    // An action the store does not know counts under `unknown`.
    s.push(AuditBody::Transition(transition(action_id(99), None, State::Cancelled, "cancel", t0())));
    futures_block(fold.advance(&s)).expect("advance");
    let kinds: BTreeSet<String> = fold.groups(&BTreeSet::new()).into_keys().map(|k| k.kind).collect();
    assert_eq!(kinds, BTreeSet::from(["revoke".to_owned(), UNKNOWN_KIND.to_owned()]));
    assert_eq!(fold.lookups(), 3);
}

#[test]
fn unconfigured_controls_count_as_other() {
    let s = script(&[
        (1, "cancel", State::Cancelled, 1, C1),
        (2, "cancel", State::Cancelled, 1, Some("C2")),
        (3, "cancel", State::Cancelled, 1, Some("attacker-chosen-1")),
        (4, "cancel", State::Cancelled, 1, None),
    ]);
    s.push(AuditBody::Settings(SettingsRecord {
        setting_event: "kill_switch_on".into(),
        actor: "local:root".into(),
        credential: None,
        at: t0(),
        comment: None,
        previous: serde_json::Value::Null,
        value: serde_json::Value::Null,
        action_id: None,
    }));
    let fold = run(&s, Period::default());
    let cancelled = |controls: &[&str]| -> Vec<(String, u64)> {
        let controls = controls.iter().map(|c| (*c).to_owned()).collect();
        fold.groups(&controls).into_iter().map(|(k, g)| (k.control, g.outcomes["cancelled"])).collect()
    };
    assert_eq!(cancelled(&["C1"]), [("C1".into(), 1), (NO_CONTROL.into(), 1), (OTHER_CONTROL.into(), 2)]);
    // A control configured later takes its history with it.
    assert_eq!(
        cancelled(&["C1", "C2"]),
        [("C1".into(), 1), ("C2".into(), 1), (NO_CONTROL.into(), 1), (OTHER_CONTROL.into(), 1)]
    );
    assert_eq!(fold.last_seq(), 5);
}

#[test]
fn rates_without_a_denominator_are_none() {
    let none = GroupStats::default();
    assert_eq!((none.success_rate(), none.rollback_rate(), none.ttr_quantile(0.5)), (None, None, None));
    // Rolled back (automatically, after a failed verification) but nothing completed.
    let s =
        script(&[(2, "execution_failed", State::Failed, 1, C1), (2, "rollback_succeeded", State::RolledBack, 2, C1)]);
    let g = run(&s, Period::default()).groups(&BTreeSet::new()).into_values().next().expect("a group");
    assert_eq!((g.success_rate(), g.rollback_rate()), (Some(0.0), None));
    let s = script(&[
        (1, "execution_succeeded", State::Completed, 1, C1),
        (3, "execution_succeeded", State::Completed, 1, C1),
        (5, "execution_succeeded", State::Completed, 1, C1),
        (7, "execution_failed", State::Failed, 1, C1),
        (1, "rollback_succeeded", State::RolledBack, 2, C1),
    ]);
    let g = run(&s, Period::default()).groups(&BTreeSet::new()).into_values().next().expect("a group");
    assert_eq!((g.success_rate(), g.rollback_rate()), (Some(0.75), Some(1.0 / 3.0)));
}

#[test]
fn a_period_counts_from_since_inclusive_to_until_exclusive() {
    let steps: Vec<Step> = (0..10).map(|m| (m as u64, "cancel", State::Cancelled, m, C1)).collect();
    let s = script(&steps);
    let period = Period { since: Some(t0() + Duration::minutes(3)), until: Some(t0() + Duration::minutes(7)) };
    let fold = run(&s, period);
    let g = fold.groups(&BTreeSet::new()).into_values().next().expect("a group");
    assert_eq!(g.outcomes["cancelled"], 4);
    // Actions outside the period are never looked up.
    assert_eq!(fold.lookups(), 4);
    // An execution that started before the period and ended inside it keeps its duration.
    let s =
        script(&[(1, "begin_execution", State::Executing, 1, C1), (1, "execution_succeeded", State::Completed, 4, C1)]);
    let g = run(&s, period).groups(&BTreeSet::new()).into_values().next().expect("a group");
    assert_eq!((g.executions["completed"], g.execution_duration.sum), (1, 180.0));
}
