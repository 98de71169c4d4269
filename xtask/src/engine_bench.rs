//! `cargo xtask bench engine`: the embedded engine on a durable SQLite store (a file in a
//! temporary directory, `synchronous=FULL` as shipped) already holding 100,000 actions, auto
//! mode, limits on but set high enough never to refuse, and a connector that does nothing
//! but keep state in memory ([`FakeConnector`]). Each action is suggested and executed
//! through the engine API, at concurrency 1 and 64 (tasks on a multi-thread runtime). In the
//! same run it measures the raw SQLite ceiling on the same disk: action-sized row groups
//! committed one per transaction and 100 per transaction.
//!
//! Printed per phase: actions/s, state changes per action (requests the store's writer
//! answered), the writer's µs per state change, process CPU time per action, and the ratio
//! to the target (a quarter of the batched ceiling divided by state changes per action).
//!
//! A last phase puts a slow provider behind the engine: the real Okta connector (behind the
//! health and permission cache the runtime puts around every connector) against the
//! testkit's fake Okta org answering every request after 50 ms, with 2,000 group
//! revocations suggested and executed by 32 tasks on an engine holding leases
//! ([`Engine::with_leases`]), on a fresh durable SQLite file. The bound is concurrency ÷
//! (provider round trips per action × 50 ms), the round trips counted from the fake's
//! request log; the target is 0.8 of it.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use remediation_connector_okta::GROUP_MEMBERSHIP;
use remediation_core::{
    ActionKind, Actor, CachedChecks, Connector, DEFAULT_CHECK_TTL, Engine, EngineParts, ExecuteOutcome, LeaseRequest,
    Mode, Role, State, SystemClock, Target,
};
use remediation_store_sqlite::Instrumented;
use remediation_testkit::{ActionBuilder, AllowAll, FakeConnector, FixedLimits, RequestBuilder, TargetBuilder, slot};
use serde_json::json;

/// Actions already in the store when the phases start.
pub(crate) const SEEDED: u64 = 100_000;
/// Concurrency levels measured.
const CONCURRENCY: [usize; 2] = [1, 64];
/// How long the fake provider takes to answer each request.
const PROVIDER_LATENCY: Duration = Duration::from_millis(50);
/// Tasks calling the engine in the slow-provider phase.
const PROVIDER_CONCURRENCY: usize = 32;

const USAGE: &str = "usage: bench engine [--actions N] [--seconds S] [--provider-actions N] [--only store|provider]";

/// Runs the engine benchmark: `[--actions N] [--seconds S]` bound each store phase by count
/// and by time (no new action starts after S seconds); `--provider-actions N` (default 2,000)
/// is the slow-provider phase's count; `--only store|provider` runs one part.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let (mut actions, mut seconds, mut provider_actions) = (50_000usize, 20u64, 2_000usize);
    let (mut store_part, mut provider_part) = (true, true);
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().with_context(|| format!("{arg} needs a value"))?;
        match *arg {
            "--actions" => actions = value.parse().context("--actions")?,
            "--seconds" => seconds = value.parse().context("--seconds")?,
            "--provider-actions" => provider_actions = value.parse().context("--provider-actions")?,
            "--only" => match *value {
                "store" => provider_part = false,
                "provider" => store_part = false,
                other => bail!("--only {other}: expected store or provider; {USAGE}"),
            },
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    if provider_part && provider_actions == 0 {
        bail!("--provider-actions must be positive");
    }
    let budget = Duration::from_secs(seconds);
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    if store_part {
        store_phases(dir.path(), &rt, actions, budget)?;
    }
    if provider_part {
        let path = dir.path().join("provider.db");
        eprintln!(
            "engine against a provider answering in {} ms: {provider_actions} actions, {PROVIDER_CONCURRENCY} tasks ...",
            PROVIDER_LATENCY.as_millis()
        );
        let r = rt.block_on(provider_phase(&path, provider_actions))?;
        let per_action = r.round_trips as f64 / r.actions as f64;
        let rate = r.actions as f64 / r.elapsed.as_secs_f64();
        let bound = PROVIDER_CONCURRENCY as f64 / (per_action * PROVIDER_LATENCY.as_secs_f64());
        if store_part {
            println!();
        }
        println!(
            "slow provider (real Okta connector, fake Okta answering each request after {} ms, leases on,",
            PROVIDER_LATENCY.as_millis()
        );
        println!("durable SQLite file, auto mode, group revocations)");
        println!();
        println!(
            "| concurrency | actions | wall s | actions/s | round trips/action | bound actions/s | ratio | target |"
        );
        println!("|---|---|---|---|---|---|---|---|");
        println!(
            "| {PROVIDER_CONCURRENCY} | {} | {:.1} | {rate:.1} | {per_action:.2} | {bound:.1} | {:.2} | 0.80 |",
            r.actions,
            r.elapsed.as_secs_f64(),
            rate / bound
        );
        println!();
        println!("round trips by request: {}", r.breakdown);
    }
    Ok(())
}

/// The store phases: the raw SQLite ceiling, then the engine at each of [`CONCURRENCY`].
fn store_phases(
    dir: &std::path::Path,
    rt: &tokio::runtime::Runtime,
    actions: usize,
    budget: Duration,
) -> anyhow::Result<()> {
    eprintln!("raw SQLite ceiling ...");
    let single = ceiling(&dir.join("ceiling-1.db"), 1, 2_000)?;
    let batched = ceiling(&dir.join("ceiling-100.db"), 100, 200)?;

    let mut rows = Vec::new();
    for concurrency in CONCURRENCY {
        let path = dir.join(format!("engine-{concurrency}.db"));
        eprintln!("engine at concurrency {concurrency}: seeding {SEEDED} actions ...");
        let result = rt.block_on(phase(&path, concurrency, actions, budget))?;
        rows.push((concurrency, result));
    }

    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!("engine benchmark (embedded engine, durable SQLite file, {SEEDED} actions seeded, auto mode,");
    println!("limits on, no-op connector; {cores} cores; global allocator: mimalloc, as xtask sets it)");
    println!();
    println!(
        "raw ceiling: {single:.0} row groups/s one per transaction, {batched:.0} row groups/s 100 per transaction"
    );
    println!();
    println!(
        "| concurrency | actions | actions/s | state changes/action | state changes/transaction | writer µs/state change | CPU ms/action | target actions/s | ratio |"
    );
    println!("|---|---|---|---|---|---|---|---|---|");
    for (concurrency, r) in rows {
        let per_action = r.changes as f64 / r.actions as f64;
        let target = 0.25 * batched / per_action;
        let rate = r.actions as f64 / r.elapsed.as_secs_f64();
        println!(
            "| {concurrency} | {} | {rate:.0} | {per_action:.2} | {:.1} | {:.0} | {:.2} | {target:.0} | {:.2} |",
            r.actions,
            r.changes as f64 / r.commits.max(1) as f64,
            r.writer_busy.as_secs_f64() * 1e6 / r.changes as f64,
            r.cpu.as_secs_f64() * 1e3 / r.actions as f64,
            rate / target,
        );
    }
    Ok(())
}

/// What the slow-provider phase measured.
struct ProviderResult {
    actions: usize,
    elapsed: Duration,
    /// Requests the fake answered during the phase.
    round_trips: u64,
    /// Requests per action by method and path shape, most frequent first.
    breakdown: String,
}

/// Suggests and executes `actions` group revocations from [`PROVIDER_CONCURRENCY`] tasks
/// through the Okta connector against a fake Okta org answering after [`PROVIDER_LATENCY`].
async fn provider_phase(path: &std::path::Path, actions: usize) -> anyhow::Result<ProviderResult> {
    use crate::throttle::{BENCH_GROUP as GROUP, BENCH_OKTA_ID as ID, BenchOrg, bench_org};
    let BenchOrg { fake, users, connector: okta, _token_file } = bench_org(actions).await?;
    let org = fake.org();
    let okta: Arc<dyn Connector> = Arc::new(okta);
    // As the runtime builds every connector: health and permission checks reused for a while.
    let connector = Arc::new(CachedChecks::new(okta, Arc::new(SystemClock), DEFAULT_CHECK_TTL));

    let store = Instrumented::open(path)?;
    let engine = Arc::new(
        Engine::new(EngineParts {
            store: store.store(),
            connectors: vec![connector],
            clock: Arc::new(SystemClock),
            policy: Arc::new(AllowAll::new(Mode::Auto)),
            limits: Arc::new(FixedLimits(vec![slot(&format!("connector:{ID}"), u32::MAX, 3600)])),
        })
        .with_leases(LeaseRequest { holder: "bench:engine".to_owned(), ttl: Duration::from_secs(60) }),
    );
    fake.faults().set_latency(PROVIDER_LATENCY);
    let mark = fake.log().count();
    let users = Arc::new(users);
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..PROVIDER_CONCURRENCY {
        let (engine, next, users) = (Arc::clone(&engine), Arc::clone(&next), Arc::clone(&users));
        tasks.spawn(async move {
            let actor = Actor::new("local:bench", Role::Admin);
            let mut done = 0usize;
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(user) = users.get(i) else { return Ok::<_, anyhow::Error>(done) };
                let target = TargetBuilder::new().identity(user).resource(GROUP).grant_type(GROUP_MEMBERSHIP).build();
                let request = RequestBuilder::new().connector(ID).kind(ActionKind::Revoke).target(target).build();
                let suggestion = engine.suggest(request, &actor).await.with_context(|| format!("suggest {user}"))?;
                match engine.execute(suggestion.action.id, &actor, false).await? {
                    ExecuteOutcome::Completed { .. } => done += 1,
                    other => bail!("revoking {user} did not complete: {other:?}"),
                }
            }
        });
    }
    let mut done = 0;
    while let Some(joined) = tasks.join_next().await {
        done += joined.context("a bench task panicked")??;
    }
    let elapsed = started.elapsed();
    let requests = fake.log().since(mark);
    let still_members = (0..actions).filter(|i| org.is_member(GROUP, &format!("00ubench{i:06}"))).count();
    if done != actions || still_members != 0 {
        bail!("{done} of {actions} revocations completed, {still_members} users still in the group");
    }
    Ok(ProviderResult {
        actions: done,
        elapsed,
        round_trips: requests.len() as u64,
        breakdown: breakdown(&requests, done),
    })
}

/// Requests per action grouped by method and path, ids replaced by `{id}`.
fn breakdown(requests: &[remediation_testkit::fakes::RecordedRequest], actions: usize) -> String {
    let mut counts = std::collections::BTreeMap::<String, usize>::new();
    for r in requests {
        let shape: Vec<&str> = r
            .path
            .split('/')
            .map(|part| if part.starts_with("00u") || part.starts_with("00g") { "{id}" } else { part })
            .collect();
        *counts.entry(format!("{} {}", r.method, shape.join("/"))).or_default() += 1;
    }
    let mut counts: Vec<_> = counts.into_iter().collect();
    counts.sort_by_key(|c| std::cmp::Reverse(c.1));
    counts.iter().map(|(k, n)| format!("{k} {:.2}", *n as f64 / actions as f64)).collect::<Vec<_>>().join(", ")
}

/// What one phase measured.
struct PhaseResult {
    actions: usize,
    elapsed: Duration,
    changes: u64,
    commits: u64,
    writer_busy: Duration,
    cpu: Duration,
}

/// Suggests and executes up to `actions` actions with `concurrency` tasks on a fresh store
/// holding [`SEEDED`] actions.
async fn phase(
    path: &std::path::Path,
    concurrency: usize,
    actions: usize,
    budget: Duration,
) -> anyhow::Result<PhaseResult> {
    let (store, engine) = seeded_engine(path, actions)?;
    let before = store.writer_stats();
    let cpu_before = cpu_time()?;
    let (done, elapsed) = closed_loop(&engine, concurrency, actions, budget).await?;
    let cpu = cpu_time()?.saturating_sub(cpu_before);
    let after = store.writer_stats();
    Ok(PhaseResult {
        actions: done,
        elapsed,
        changes: after.requests - before.requests,
        commits: after.commits - before.commits,
        writer_busy: Duration::from_nanos(after.busy_nanos - before.busy_nanos),
        cpu,
    })
}

/// The store phases' setup: a fresh durable SQLite store at `path` holding [`SEEDED`]
/// completed actions, and an engine on it in auto mode, with a limit window that never
/// refuses and a [`FakeConnector`] holding the targets of actions `0..actions` ([`target`]).
pub(crate) fn seeded_engine(path: &std::path::Path, actions: usize) -> anyhow::Result<(Instrumented, Arc<Engine>)> {
    let store = Instrumented::open(path)?;
    let seeded: Vec<_> =
        (0..SEEDED).map(|n| ActionBuilder::new().seed(u64::MAX - n).state(State::Completed).detail().build()).collect();
    store.seed_actions(&seeded)?;
    let mut connector = FakeConnector::new("sandbox");
    for i in 0..actions {
        connector = connector.with_target(target(i), json!({"granted": true}));
    }
    let engine = Arc::new(Engine::new(EngineParts {
        store: store.store(),
        connectors: vec![Arc::new(connector)],
        clock: Arc::new(SystemClock),
        policy: Arc::new(AllowAll::new(Mode::Auto)),
        limits: Arc::new(FixedLimits(vec![slot("connector:sandbox", u32::MAX, 3600)])),
    }));
    Ok((store, engine))
}

/// Suggests and executes action `i` (a revocation of [`target`] `i`) through the engine API
/// as `actor`; fails unless it completes.
pub(crate) async fn suggest_and_execute(engine: &Engine, actor: &Actor, i: usize) -> anyhow::Result<()> {
    let request = RequestBuilder::new().kind(ActionKind::Revoke).target(target(i)).build();
    let suggestion = engine.suggest(request, actor).await?;
    match engine.execute(suggestion.action.id, actor, false).await? {
        ExecuteOutcome::Completed { .. } => Ok(()),
        other => bail!("action {i} did not complete: {other:?}"),
    }
}

/// The closed loop of the store phases: `concurrency` tasks each suggest and execute the next
/// action as soon as their last one completed, up to `actions` actions or until `budget` has
/// passed (no new action starts after it). Returns the actions completed and the wall time.
pub(crate) async fn closed_loop(
    engine: &Arc<Engine>,
    concurrency: usize,
    actions: usize,
    budget: Duration,
) -> anyhow::Result<(usize, Duration)> {
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let tasks: Vec<_> = (0..concurrency)
        .map(|_| {
            let (engine, next) = (Arc::clone(engine), Arc::clone(&next));
            tokio::spawn(async move {
                let actor = Actor::new("local:bench", Role::Admin);
                let mut done = 0usize;
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= actions || started.elapsed() >= budget {
                        return Ok::<_, anyhow::Error>(done);
                    }
                    suggest_and_execute(&engine, &actor, i).await?;
                    done += 1;
                }
            })
        })
        .collect();
    let mut done = 0;
    for task in tasks {
        done += task.await??;
    }
    let elapsed = started.elapsed();
    if done == 0 {
        bail!("no action completed");
    }
    Ok((done, elapsed))
}

/// A distinct target per action, so no two actions share one.
fn target(i: usize) -> Target {
    TargetBuilder::new().identity(&format!("user{i}")).build()
}

/// Row groups per second committed `per_txn` to a transaction, `txns` transactions: each
/// group is what one state change writes (the action's row, a transition, an audit record).
fn ceiling(path: &std::path::Path, per_txn: usize, txns: usize) -> anyhow::Result<f64> {
    let mut conn = rusqlite::Connection::open(path)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.execute_batch(
        "CREATE TABLE actions (id INTEGER PRIMARY KEY, detail_json TEXT);
         CREATE TABLE transitions (seq INTEGER PRIMARY KEY, action_id INTEGER, record_json TEXT);
         CREATE TABLE audit (seq INTEGER PRIMARY KEY, action_id INTEGER, record_json TEXT, hash TEXT);",
    )?;
    let (detail, record, audit) = ("d".repeat(2_000), "t".repeat(700), "a".repeat(1_000));
    let started = Instant::now();
    let mut n: i64 = 0;
    for _ in 0..txns {
        let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for _ in 0..per_txn {
            n += 1;
            tx.prepare_cached("INSERT OR REPLACE INTO actions (id, detail_json) VALUES (?1, ?2)")?
                .execute(rusqlite::params![n % 1_000, detail])?;
            tx.prepare_cached("INSERT INTO transitions (action_id, record_json) VALUES (?1, ?2)")?
                .execute(rusqlite::params![n, record])?;
            tx.prepare_cached("INSERT INTO audit (action_id, record_json, hash) VALUES (?1, ?2, ?3)")?
                .execute(rusqlite::params![n, audit, "h".repeat(64)])?;
        }
        tx.commit()?;
    }
    Ok(n as f64 / started.elapsed().as_secs_f64())
}

/// The CPU time (user and system, every thread) this process used so far, from
/// `/proc/self/stat` (clock ticks of 1/100 s, Linux's `USER_HZ`).
pub(crate) fn cpu_time() -> anyhow::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").context("cannot read /proc/self/stat")?;
    // The fields after the command name, which is in parentheses and may hold spaces.
    let rest = stat.rsplit_once(')').map(|(_, r)| r).context("unexpected /proc/self/stat")?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the name.
    let ticks: u64 =
        fields.get(11..13).context("unexpected /proc/self/stat")?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum();
    Ok(Duration::from_millis(ticks * 10))
}
