//! Limit checks per second: the in-memory [`SlidingLog`] on one hot key and on 100k keys, and
//! the SQLite store's `check_limits` with the default four windows against 10k recorded slots.
//!
//! Run with `cargo bench -p remediation-limiter`. Every figure is reported in checks per
//! second (`Throughput::Elements`), so the three can be compared directly.

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{Criterion, SamplingMode, Throughput, criterion_group, criterion_main};
use remediation_core::{
    Action, ActionDetail, ActionId, BeginOutcome, DetailUpdate, LimitPolicy, SlotRequest, State, StateChange,
    TransitionRecord,
};
use remediation_limiter::{Limits, SlidingLog, Window};
use remediation_testkit::{ActionBuilder, DetailBuilder, TargetBuilder, action_id, transition};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// Distinct keys in the many-keys benchmark.
const KEYS: u32 = 100_000;
/// Executions recorded before the SQLite benchmark; each takes the four default slots.
const EXECUTIONS: u32 = 2_500;
/// Time between two recorded executions. With 90 s, a one-hour window holds 40 of them: under
/// the default global (200) and connector (50) limits, so every check counts all four windows
/// instead of stopping at the first full one.
const SPACING: Duration = Duration::seconds(90);
/// Distinct identities and resources among the recorded executions: each identity recurs every
/// 25 hours and each resource every 75 minutes, under their daily and hourly limits too.
const IDENTITIES: u32 = 1_000;
const RESOURCES: u32 = 50;

fn start() -> OffsetDateTime {
    datetime!(2026-03-01 00:00 UTC)
}

/// The default windows of action `n` (global, connector, identity, resource), in that order.
fn default_slots(n: u32) -> Vec<SlotRequest> {
    Limits::default().slots_for(&action(n, State::Approved, start()))
}

/// One key checked at twice the rate its window admits, from a full window on: calls
/// alternate between evicting the oldest entry and admitting, and refusing.
fn hot_key(c: &mut Criterion) {
    let window = Window::of(&default_slots(0)[0]);
    let step = window.length / (2 * i32::try_from(window.limit).expect("limit fits"));
    let mut log = SlidingLog::default();
    let mut now = start();
    // Two windows' worth of calls reach the steady state.
    for _ in 0..4 * window.limit {
        now += step;
        log.try_record(window, now);
    }
    assert_eq!(log.len(), window.limit as usize, "the window starts full");

    let mut group = c.benchmark_group("limit_check");
    group.throughput(Throughput::Elements(1));
    group.bench_function("sliding_log_hot_key", |b| {
        b.iter(|| {
            now += step;
            black_box(log.try_record(window, black_box(now)))
        });
    });
    group.finish();
}

/// 100k identity keys in a map, each looked up and checked once per batch at twice the rate
/// the default identity window (5 a day) admits.
fn many_keys(c: &mut Criterion) {
    let window = Window::of(&default_slots(0)[2]);
    let step = window.length / (2 * i32::try_from(window.limit).expect("limit fits"));
    let keys: Vec<String> = (0..KEYS).map(|i| format!("identity:sandbox:user{i}")).collect();
    let mut logs: HashMap<String, SlidingLog> = keys.iter().map(|k| (k.clone(), SlidingLog::default())).collect();
    let mut now = start();
    let batch = |logs: &mut HashMap<String, SlidingLog>, now: OffsetDateTime| {
        let mut admitted = 0u32;
        for key in &keys {
            let log = logs.get_mut(key.as_str()).expect("every key was inserted");
            admitted += u32::from(log.try_record(window, now));
        }
        admitted
    };
    for _ in 0..4 * window.limit {
        now += step;
        batch(&mut logs, now);
    }

    let mut group = c.benchmark_group("limit_check");
    group.throughput(Throughput::Elements(u64::from(KEYS)));
    // One iteration is 100k checks (milliseconds): flat sampling keeps the sample count honest.
    group.sampling_mode(SamplingMode::Flat).sample_size(20);
    group.bench_function("sliding_log_100k_keys", |b| {
        b.iter(|| {
            now += step;
            black_box(batch(&mut logs, black_box(now)))
        });
    });
    group.finish();
}

/// The SQLite store's `check_limits` (opened with `open_store`) on a file store holding 10k slots: four indexed counts in one
/// read transaction, all windows with room.
fn sqlite(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("tokio runtime");
    let dir = tempfile::tempdir().expect("temp dir");
    let store = remediation_store_sqlite::open_store(dir.path().join("remediation.db"), None).expect("open store");
    let mut at = start();
    rt.block_on(async {
        for n in 0..EXECUTIONS {
            at += SPACING;
            let d = detail(n, at);
            store.create_action(&d, &record(n, None, State::Approved, "suggest", at)).await.expect("create");
            let begin = StateChange {
                record: record(n, Some(State::Approved), State::Executing, "begin_execution", at),
                update: DetailUpdate::default(),
                fence: None,
                lease: None,
            };
            let outcome = store.begin_execution(&begin, &default_slots(n), true).await.expect("begin");
            assert!(matches!(outcome, BeginOutcome::Started(_)), "execution {n} fits its windows: {outcome:?}");
        }
    });
    at += SPACING;
    // The identity and resource of the last execution, so every count finds rows in its
    // window (global 40, connector 40, identity 1, resource 1).
    let slots = default_slots(EXECUTIONS - 1 + IDENTITIES);
    assert_eq!(slots.len(), 4);
    assert_eq!(rt.block_on(store.check_limits(&slots, at)).expect("check"), None, "every window has room");

    let mut group = c.benchmark_group("limit_check");
    group.throughput(Throughput::Elements(1));
    group.sample_size(50);
    group.bench_function("sqlite_check_limits_4_slots_10k_rows", |b| {
        b.iter(|| black_box(rt.block_on(store.check_limits(black_box(&slots), at)).expect("check")));
    });
    group.finish();
}

// Actions and transitions come from `remediation-testkit`; only the spread of identities and
// resources is the bench's own.

fn action(n: u32, state: State, at: OffsetDateTime) -> Action {
    let target = TargetBuilder::new()
        .identity(&format!("user{}", n % IDENTITIES))
        .resource(&format!("group{}", n % RESOURCES))
        .build();
    ActionBuilder::new().id(id(n)).target(target).state(state).at(at).build()
}

fn id(n: u32) -> ActionId {
    action_id(u64::from(n))
}

fn detail(n: u32, at: OffsetDateTime) -> ActionDetail {
    DetailBuilder::new(action(n, State::Approved, at)).build()
}

fn record(n: u32, from: Option<State>, to: State, event: &str, at: OffsetDateTime) -> TransitionRecord {
    transition(id(n), from, to, event, at)
}

criterion_group!(benches, hot_key, many_keys, sqlite);
criterion_main!(benches);
