//! `cargo xtask bench events`: what delivering events from the audit log (the outbox) costs
//! the engine, and how long an event takes from its commit to the sink's acknowledgement.
//!
//! The setup is `bench engine`'s store phase ([`seeded_engine`]): a durable SQLite file holding
//! 100,000 actions, auto mode, limits that never refuse, the no-op `FakeConnector`. Events go
//! to a JetStream event sink on a private `nats-server` with its own store folder (the shared
//! server of `REMEDIATION_TEST_NATS`, else `nats://127.0.0.1:4222`, when there is no
//! `nats-server` program), each phase to a stream and tenant of its own; the relay runs as the
//! server runs it ([`Relay::run`] on a task, holding the relay lease), from
//! [`DeliverFrom::Now`], and every delivered event is checked to be in the stream once.
//!
//! - **Relay cost.** The closed loop of `bench engine` (64 tasks, each suggesting and executing
//!   its next action as soon as the last one completed, up to N actions or S seconds per phase)
//!   on a fresh store each time: without sinks, with the relay delivering to a sink that
//!   acknowledges at once (the relay's own share: reading the log, building the envelopes,
//!   moving the mark), and with the relay delivering to JetStream; two rounds, the order
//!   reversed in the second, figures over both. After the load it reads the sink's backlog,
//!   waits for it to drain and times that. Target: actions/s with the relay ≥ 0.8 × without.
//!   Then 10,000 actions are written with the sink registered but the relay stopped, and the
//!   relay alone, the engine idle, is timed draining them: CPU per event, in this process and
//!   in `nats-server`.
//! - **Commit-to-acknowledgement delay.** An open loop: a 5 ms tick starts the actions due by
//!   the schedule (R per second for 10 s), whatever earlier ones are doing, up to 1,024 in
//!   flight (when that cap is reached the schedule waits, and the shortfall is reported); each
//!   delivered record's delay is the relay's own figure ([`Relay::take_counters`]): from the
//!   record's `at`, written in the transaction that commits it, to the sink's acknowledgement.
//!   Target: p99 < 200 ms. When the engine did not keep up with R the phase runs again at 0.9 of
//!   the rate it sustained with the relay in the closed loop. When the p99 misses, it runs again
//!   with a batch of 1,024 (the default is 256), then also with a poll of 5 ms (default 20 ms),
//!   unless `--batch` or `--poll` were given.
//!
//! Where the delay goes: the sink is wrapped ([`TimedSink`]) to note when each event was handed
//! over and acknowledged, and a thread with its own read-only connection ([`CommitWatch`])
//! reads the log's last `seq` every millisecond, which tells when each record was committed;
//! so each delay splits into record to commit (the store's writer), commit to hand-over (the
//! relay's poll, its read of the log, the batches before it) and hand-over to acknowledgement
//! (JetStream, the batch published pipelined and its acknowledgements awaited in order).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use async_trait::async_trait;
use remediation_core::{Actor, CloudEvent, DeliverFrom, Engine, EventSink, Role, Store, SystemClock, Undelivered};
use remediation_nats::testing::{PrivateNats, PrivateNatsOptions};
use remediation_nats::{JetStreamEventSink, JetStreamSinkConfig};
use remediation_runtime::relay::{Relay, RelayOptions, RelaySink};
use tokio::sync::watch;

use crate::engine_bench::{SEEDED, closed_loop, cpu_time, seeded_engine, suggest_and_execute};

/// Tasks of the closed loop (as `bench engine`).
const CONCURRENCY: usize = 64;
/// How long the open loop offers its load.
const LOAD_WINDOW: Duration = Duration::from_secs(10);
/// How often the open loop starts the actions due.
const TICK: Duration = Duration::from_millis(5);
/// Most actions of the open loop in flight at once.
const IN_FLIGHT_CAP: usize = 1_024;
/// The relay-cost target: actions/s with the relay over actions/s without.
const COST_TARGET: f64 = 0.8;
/// How many steps below this process the second broker of the cost phase runs.
const BROKER_NICE: u8 = 10;
/// The delay target (p99, commit to acknowledgement).
const DELAY_TARGET: Duration = Duration::from_millis(200);
/// The batch size tried when the default misses the delay target.
const LARGE_BATCH: usize = 1_024;
/// The poll interval tried when the default misses the delay target.
const FAST_POLL: Duration = Duration::from_millis(5);
/// Actions written with the relay stopped, for the relay-alone measurement.
const DRAIN_ACTIONS: usize = 10_000;
/// Longest wait for a backlog to drain.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);
/// The sink's name (its mark is `events/bench`).
const SINK: &str = "bench";

const USAGE: &str = "usage: bench events [--actions N] [--seconds S] [--rounds N] [--rate R] [--poll MS] [--batch N] [--only cost|delay]";

#[derive(Debug, Clone)]
struct Options {
    actions: usize,
    seconds: u64,
    rounds: usize,
    rate: u32,
    relay: RelayOptions,
    /// Whether to try other relay settings when the delay target misses (not when the
    /// settings were given).
    tune: bool,
    cost: bool,
    delay: bool,
}

fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options {
        actions: 40_000,
        seconds: 5,
        rounds: 2,
        rate: 2_000,
        relay: RelayOptions::default(),
        tune: true,
        cost: true,
        delay: true,
    };
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let value = rest.next().with_context(|| format!("{arg} needs a value; {USAGE}"))?;
        match *arg {
            "--actions" => o.actions = value.parse().context("--actions")?,
            "--seconds" => o.seconds = value.parse().context("--seconds")?,
            "--rounds" => o.rounds = value.parse().context("--rounds")?,
            "--rate" => o.rate = value.parse().context("--rate")?,
            "--poll" => {
                o.relay.poll = Duration::from_millis(value.parse().context("--poll")?);
                o.tune = false;
            }
            "--batch" => {
                o.relay.batch = value.parse().context("--batch")?;
                o.tune = false;
            }
            "--only" => match *value {
                "cost" => o.delay = false,
                "delay" => o.cost = false,
                other => bail!("--only {other}: expected cost or delay; {USAGE}"),
            },
            other => bail!("unknown option {other}; {USAGE}"),
        }
    }
    if o.actions == 0 || o.seconds == 0 || o.rounds == 0 || o.rate == 0 || o.relay.batch == 0 {
        bail!("--actions, --seconds, --rounds, --rate and --batch must be positive");
    }
    Ok(o)
}

/// Runs the events benchmark (see the module's documentation).
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let o = parse(args)?;
    let nats = Nats::start()?;
    // The same broker BROKER_NICE steps below this process, as a broker on a host of its own
    // takes no CPU from the engine (only with a `nats-server` program to start).
    let background = if o.cost { Nats::start_private(BROKER_NICE) } else { None };
    let dir = tempfile::tempdir().context("cannot create a temporary directory")?;
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let outcome = rt.block_on(bench(&o, &nats, background.as_ref(), dir.path()));
    rt.block_on(nats.clean_up());
    outcome
}

async fn bench(o: &Options, nats: &Nats, background: Option<&Nats>, dir: &std::path::Path) -> anyhow::Result<()> {
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let budget = Duration::from_secs(o.seconds);
    let mut cost = None;
    if o.cost {
        let mut runs: [Vec<CostResult>; 4] = Default::default();
        for round in 0..o.rounds {
            // The order alternates, so a machine growing busier or quieter weighs on each alike.
            let order = if round % 2 == 0 { [0, 1, 2, 3] } else { [3, 2, 1, 0] };
            for variant in order {
                let phase = format!("cost{round}");
                let (to, what) = match (variant, background) {
                    (0, _) => (None, "without sinks"),
                    (1, _) => (Some(To::Null), "with the relay delivering to a sink that acknowledges at once"),
                    (2, _) => (Some(To::JetStream(nats, &phase)), "with the relay delivering to JetStream"),
                    (_, Some(background)) => (
                        Some(To::JetStream(background, &phase)),
                        "with the relay delivering to JetStream, the broker below this process's priority",
                    ),
                    (_, None) => continue,
                };
                eprintln!("relay cost, round {} of {}: closed loop {what} ...", round + 1, o.rounds);
                let path = dir.join(format!("cost-{variant}-{round}.db"));
                runs[variant].push(cost_phase(&path, to, o, budget).await?);
                remove_store(&path);
            }
        }
        let per_round: Vec<f64> =
            runs[2].iter().zip(&runs[0]).map(|(with, without)| with.rate() / without.rate()).collect();
        let [without, null, with, apart] = runs.map(|r| (!r.is_empty()).then(|| CostResult::merge(r)));
        let (Some(without), Some(null), Some(with)) = (without, null, with) else { bail!("no cost phase ran") };
        let actions = o.actions.min(DRAIN_ACTIONS);
        eprintln!("relay cost: {actions} actions with the relay stopped, then the relay alone ...");
        let alone = drain_phase(&dir.join("drain.db"), nats, actions, &o.relay).await?;
        remove_store(&dir.join("drain.db"));
        cost = Some((without, null, with, apart, alone, per_round));
    }
    let mut delays = Vec::new();
    if o.delay {
        eprintln!("delay: open loop at {}/s for {} s ...", o.rate, LOAD_WINDOW.as_secs());
        let first = delay_phase(&dir.join("delay.db"), nats, "delay", o.rate, &o.relay).await?;
        let kept_up = first.load.kept_up();
        delays.push(first);
        if !kept_up {
            // The highest rate sustained: the closed loop's with the relay, when measured.
            let sustained = cost.as_ref().map_or(f64::from(o.rate) / 2.0, |(_, _, with, _, _, _)| with.rate());
            let rate = ((sustained * 0.9 / 100.0).floor() * 100.0).max(100.0) as u32;
            if rate < o.rate {
                eprintln!("delay: the engine did not keep up; open loop at {rate}/s ...");
                delays.push(delay_phase(&dir.join("delay-sustained.db"), nats, "sustained", rate, &o.relay).await?);
            }
        }
        // When the p99 misses: a larger batch (the relay's mark moves once per batch, a write
        // through the store's writer, so a relay that fell behind catches up faster), then
        // also a shorter poll (what a caught-up relay waits before looking again).
        let mut tries = Vec::new();
        if o.tune && o.relay.batch < LARGE_BATCH {
            tries.push(RelayOptions { batch: LARGE_BATCH, ..o.relay.clone() });
        }
        if o.tune && o.relay.poll > FAST_POLL {
            tries.push(RelayOptions { batch: o.relay.batch.max(LARGE_BATCH), poll: FAST_POLL, ..o.relay.clone() });
        }
        for (n, relay) in tries.into_iter().enumerate() {
            let Some(rate) = delays.last().filter(|d| d.p99() >= DELAY_TARGET.as_secs_f64()).map(|d| d.rate) else {
                break;
            };
            eprintln!(
                "delay: p99 missed; open loop at {rate}/s with batch {} and poll {} ms ...",
                relay.batch,
                relay.poll.as_millis()
            );
            delays.push(
                delay_phase(&dir.join(format!("delay-tuned-{n}.db")), nats, &format!("tuned{n}"), rate, &relay).await?,
            );
        }
    }

    println!("events benchmark (embedded engine, durable SQLite file, {SEEDED} actions seeded, auto mode,");
    println!("no-op connector; relay to a JetStream event sink on {}; {cores} cores;", nats.describe());
    println!("global allocator: mimalloc, as xtask sets it)");
    if let Some((without, null, with, apart, alone, per_round)) = &cost {
        println!();
        println!(
            "relay cost: closed loop, concurrency {CONCURRENCY}, up to {} actions or {} s per phase, {} rounds (each variant on a fresh store every round; figures over the rounds)",
            o.actions, o.seconds, o.rounds
        );
        println!();
        println!(
            "| relay | actions | actions/s | state changes/action | state changes/transaction | writer µs/state change | CPU ms/action | nats-server CPU ms/action | events delivered | events/s | events/action | backlog at end | drain ms | delay p50 | delay p99 |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        let broker_apart = format!("JetStream, the broker {BROKER_NICE} steps below this process");
        let rows = [
            ("none", Some(without)),
            ("null sink (acknowledges at once)", Some(null)),
            ("JetStream", Some(with)),
            (broker_apart.as_str(), apart.as_ref()),
        ];
        for (name, r) in rows.into_iter().filter_map(|(name, r)| Some((name, r?))) {
            let per_action = r.changes as f64 / r.actions as f64;
            let d = r.delivery.as_ref();
            println!(
                "| {name} | {} | {:.0} | {per_action:.2} | {:.1} | {:.0} | {:.2} | {} | {} | {} | {} | {} | {} | {} | {} |",
                r.actions,
                r.rate(),
                r.changes as f64 / r.commits.max(1) as f64,
                r.writer_busy.as_secs_f64() * 1e6 / r.changes.max(1) as f64,
                r.cpu.as_secs_f64() * 1e3 / r.actions as f64,
                r.nats_cpu.map_or("-".to_owned(), |c| format!("{:.2}", c.as_secs_f64() * 1e3 / r.actions as f64)),
                d.map_or("-".to_owned(), |d| d.delivered.to_string()),
                d.map_or("-".to_owned(), |d| format!(
                    "{:.0}",
                    d.delivered as f64 / (r.elapsed + d.drain).as_secs_f64()
                )),
                d.map_or("-".to_owned(), |d| format!("{:.2}", d.delivered as f64 / r.actions as f64)),
                d.map_or("-".to_owned(), |d| d.backlog_at_end.to_string()),
                d.map_or("-".to_owned(), |d| format!("{:.0}", d.drain_max.as_secs_f64() * 1e3)),
                d.map_or("-".to_owned(), |d| ms(percentile(&d.delays, 0.50))),
                d.map_or("-".to_owned(), |d| ms(percentile(&d.delays, 0.99))),
            );
        }
        let ratio = with.rate() / without.rate();
        println!();
        println!(
            "actions/s with the relay ÷ without: {ratio:.2} (target ≥ {COST_TARGET:.2}): {}",
            verdict(ratio >= COST_TARGET)
        );
        println!("per round: {}", per_round.iter().map(|r| format!("{r:.2}")).collect::<Vec<_>>().join(", "));
        let null_ratio = null.rate() / without.rate();
        println!(
            "the relay's own share (null sink ÷ without): {null_ratio:.2}: {}",
            verdict(null_ratio >= COST_TARGET)
        );
        if let Some(apart) = apart {
            let apart_ratio = apart.rate() / without.rate();
            println!(
                "with the broker {BROKER_NICE} steps below this process (JetStream ÷ without): {apart_ratio:.2}: {}",
                verdict(apart_ratio >= COST_TARGET)
            );
        }
        let events = alone.backlog_at_end as f64;
        let per_event = |cpu: Duration| cpu.as_secs_f64() * 1e6 / events;
        let per_action = events / DRAIN_ACTIONS.min(o.actions) as f64;
        let relay_cpu = per_event(alone.drain_cpu) + alone.drain_nats_cpu.map_or(0.0, per_event);
        let engine_cpu = without.cpu.as_secs_f64() * 1e6 / without.actions as f64;
        println!();
        println!(
            "the relay alone ({} actions written with it stopped, then delivered): {} events in {:.0} ms, {:.0} events/s;",
            DRAIN_ACTIONS.min(o.actions),
            alone.backlog_at_end,
            alone.drain.as_secs_f64() * 1e3,
            events / alone.drain.as_secs_f64(),
        );
        println!(
            "CPU per event {:.0} µs in this process{}; per action ({per_action:.2} events) {:.2} ms, {:.0} % of the engine's {:.2} ms without sinks",
            per_event(alone.drain_cpu),
            alone.drain_nats_cpu.map_or(String::new(), |c| format!(" + {:.0} µs in nats-server", per_event(c))),
            relay_cpu * per_action / 1e3,
            100.0 * relay_cpu * per_action / engine_cpu,
            engine_cpu / 1e3,
        );
        let acks: Vec<f64> = alone.batches.events.iter().map(|e| (e.acked - e.handed).as_seconds_f64()).collect();
        println!(
            "per batch of up to {}: JetStream's acknowledgements p50 {}, then moving the mark and reading the next batch p50 {} (p99 {})",
            o.relay.batch,
            ms(percentile(&acks, 0.50)),
            ms(percentile(&alone.batches.between, 0.50)),
            ms(percentile(&alone.batches.between, 0.99)),
        );
    }
    if !delays.is_empty() {
        println!();
        println!(
            "commit-to-acknowledgement delay: open loop for {} s, a tick every {} ms, at most {IN_FLIGHT_CAP} actions in flight",
            LOAD_WINDOW.as_secs(),
            TICK.as_millis()
        );
        println!();
        println!(
            "| offered/s | poll ms | batch | started | completed/s | kept up | action p99 | events delivered | backlog at end | drain ms | delay p50 | delay p90 | delay p99 | delay max | p99 < {} ms |",
            DELAY_TARGET.as_millis()
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for d in &delays {
            let l = &d.load;
            println!(
                "| {} | {} | {} | {} of {} | {:.0} | {} | {} | {} | {} | {:.0} | {} | {} | {} | {} | {} |",
                d.rate,
                d.relay.poll.as_millis(),
                d.relay.batch,
                l.started,
                l.offered,
                l.completed as f64 / l.elapsed.as_secs_f64(),
                if l.kept_up() { "yes" } else { "no" },
                ms(l.latency_p99),
                d.delivery.delivered,
                d.delivery.backlog_at_end,
                d.delivery.drain.as_secs_f64() * 1e3,
                ms(percentile(&d.delivery.delays, 0.50)),
                ms(percentile(&d.delivery.delays, 0.90)),
                ms(d.p99()),
                ms(percentile(&d.delivery.delays, 1.0)),
                verdict(d.p99() < DELAY_TARGET.as_secs_f64()),
            );
        }
        println!();
        println!(
            "where the delay goes (same runs; a reader polling the log every ms tells when each record was committed):"
        );
        println!();
        println!(
            "| offered/s | poll ms | batch | record to commit p50 | p99 | commit to hand-over p50 | p99 | hand-over to ack p50 | p99 | batches | events/batch | full batches | mark move + next read after a full batch p50 | p99 |"
        );
        println!("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|");
        for d in &delays {
            let b = &d.delivery.batches;
            let [commit, queued, acked] = split_delays(&b.events, &d.commits);
            println!(
                "| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {:.1} | {} | {} | {} |",
                d.rate,
                d.relay.poll.as_millis(),
                d.relay.batch,
                ms(percentile(&commit, 0.50)),
                ms(percentile(&commit, 0.99)),
                ms(percentile(&queued, 0.50)),
                ms(percentile(&queued, 0.99)),
                ms(percentile(&acked, 0.50)),
                ms(percentile(&acked, 0.99)),
                b.sizes.len(),
                b.sizes.iter().sum::<usize>() as f64 / b.sizes.len().max(1) as f64,
                b.sizes.iter().filter(|&&n| n >= d.relay.batch).count(),
                ms(percentile(&b.between, 0.50)),
                ms(percentile(&b.between, 0.99)),
            );
        }
    }
    Ok(())
}

fn verdict(holds: bool) -> &'static str {
    if holds { "**holds**" } else { "**missed**" }
}

/// Seconds as milliseconds for a table.
fn ms(seconds: f64) -> String {
    if seconds.is_nan() { "-".to_owned() } else { format!("{:.1} ms", seconds * 1e3) }
}

/// The `q` quantile of `values` (nearest rank); NaN when empty.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// The NATS server the sinks publish to.
struct Nats {
    url: String,
    /// The private server, when there is a `nats-server` program.
    private: Option<PrivateNats>,
    /// Names this run's streams and tenants apart from anything else on a shared server.
    id: String,
    /// The streams created, deleted at the end on a shared server.
    streams: Mutex<Vec<String>>,
}

impl Nats {
    /// A private server `nice` steps below this process, when there is a `nats-server` program.
    fn start_private(nice: u8) -> Option<Self> {
        let id = format!("{:x}b", std::process::id());
        let server = PrivateNats::start(PrivateNatsOptions { nice, ..PrivateNatsOptions::default() })?;
        Some(Self { url: server.url(), private: Some(server), id, streams: Mutex::new(Vec::new()) })
    }

    fn start() -> anyhow::Result<Self> {
        let id = format!("{:x}", std::process::id());
        if let Some(server) = PrivateNats::start(PrivateNatsOptions::default()) {
            return Ok(Self { url: server.url(), private: Some(server), id, streams: Mutex::new(Vec::new()) });
        }
        let url = std::env::var(remediation_nats::testing::SHARED_NATS_VAR)
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| "nats://127.0.0.1:4222".to_owned());
        eprintln!("no nats-server to start a private one: using the shared server at {url}");
        Ok(Self { url, private: None, id, streams: Mutex::new(Vec::new()) })
    }

    fn describe(&self) -> String {
        match &self.private {
            Some(_) => "a private nats-server (its own store folder, file storage)".to_owned(),
            None => format!("the shared server {}", self.url),
        }
    }

    /// The event sink of `phase`: its own tenant, stream and subjects.
    async fn sink(&self, phase: &str) -> anyhow::Result<JetStreamEventSink> {
        let tenant = format!("bench{}{phase}", self.id);
        let stream = format!("BENCH_EVENTS_{}_{}", self.id, phase.to_uppercase());
        let mut config = JetStreamSinkConfig::new(self.url.clone());
        config.tenant = tenant.clone();
        config.stream = Some(stream.clone());
        config.subjects = Some(vec![format!("remediation.events.{tenant}.>")]);
        let sink = config.build_events().context("cannot build the JetStream event sink")?;
        sink.ensure_stream().await.with_context(|| format!("cannot create stream {stream} on {}", self.url))?;
        self.streams.lock().unwrap_or_else(PoisonError::into_inner).push(stream);
        // A sink of its own for the relay, which connects from the relay's thread at its first
        // delivery, as a server's sinks do.
        config.build_events().context("cannot build the JetStream event sink")
    }

    /// Messages stored in `stream`.
    async fn messages(&self, stream: &str) -> anyhow::Result<u64> {
        let js = async_nats::jetstream::new(async_nats::connect(&self.url).await?);
        let mut stream = js.get_stream(stream).await?;
        Ok(stream.info().await?.state.messages)
    }

    /// CPU time of the private server's process so far.
    fn cpu(&self) -> Option<Duration> {
        let port = self.private.as_ref()?.port().to_string();
        for entry in std::fs::read_dir("/proc").ok()?.flatten() {
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else { continue };
            let args: Vec<&[u8]> = cmdline.split(|&b| b == 0).collect();
            let is_ours = args.first().is_some_and(|a| a.ends_with(b"nats-server"))
                && args.windows(2).any(|w| w[0] == b"-p" && w[1] == port.as_bytes());
            if is_ours {
                return process_cpu(&entry.path().join("stat"));
            }
        }
        None
    }

    /// Deletes the streams made on a shared server (a private one goes with its folder).
    async fn clean_up(&self) {
        if self.private.is_some() {
            return;
        }
        let Ok(client) = async_nats::connect(&self.url).await else { return };
        let js = async_nats::jetstream::new(client);
        let streams = std::mem::take(&mut *self.streams.lock().unwrap_or_else(PoisonError::into_inner));
        for stream in streams {
            let _ = js.delete_stream(&stream).await;
        }
    }
}

/// Deletes a phase's SQLite files (each seeded store takes a few hundred MB).
fn remove_store(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let mut name = path.as_os_str().to_owned();
        name.push(suffix);
        let _ = std::fs::remove_file(name);
    }
}

/// User and system CPU time of the process whose `/proc/<pid>/stat` is `path`.
fn process_cpu(path: &std::path::Path) -> Option<Duration> {
    let stat = std::fs::read_to_string(path).ok()?;
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11..13)?.iter().map(|f| f.parse::<u64>().unwrap_or(0)).sum();
    Some(Duration::from_millis(ticks * 10))
}

/// What the sink saw of each batch the relay handed it.
#[derive(Debug, Default, Clone)]
struct Batches {
    /// Events per batch.
    sizes: Vec<usize>,
    /// Per event: its time (the record's `at`), when its batch was handed over, when the
    /// sink acknowledged the batch.
    events: Vec<EventTimes>,
    /// Seconds from the end of a full batch to the next hand-over: the relay moving the
    /// sink's mark (a write through the store's writer) and reading the next page, no poll.
    between: Vec<f64>,
    /// When the last batch ended, and whether it was full.
    last: Option<(Instant, bool)>,
}

/// When one event was written, handed to the sink, acknowledged.
#[derive(Debug, Clone, Copy)]
struct EventTimes {
    seq: u64,
    at: time::OffsetDateTime,
    handed: time::OffsetDateTime,
    acked: time::OffsetDateTime,
}

/// The JetStream sink, timing every batch.
struct TimedSink {
    inner: Arc<dyn EventSink>,
    /// The relay's batch size.
    full: usize,
    batches: Mutex<Batches>,
}

#[async_trait]
impl EventSink for TimedSink {
    async fn deliver(&self, events: &[CloudEvent]) -> Result<(), Undelivered> {
        let now = time::OffsetDateTime::now_utc();
        let started = Instant::now();
        let result = self.inner.deliver(events).await;
        let acked = time::OffsetDateTime::now_utc();
        let ended = Instant::now();
        let mut b = self.batches.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some((previous, true)) = b.last {
            b.between.push((started - previous).as_secs_f64());
        }
        b.last = Some((ended, events.len() >= self.full));
        b.sizes.push(events.len());
        b.events.extend(events.iter().map(|e| EventTimes {
            seq: e.auditseq.unwrap_or(0),
            at: e.time,
            handed: now,
            acked,
        }));
        result
    }
}

/// Where the relay delivers in a phase.
enum To<'a> {
    /// A sink that acknowledges every batch at once: the relay's own cost (reading the log,
    /// building the envelopes, moving the mark).
    Null,
    /// A JetStream event sink on this server, with a stream named after the phase.
    JetStream(&'a Nats, &'a str),
}

/// A sink that acknowledges every batch at once.
struct NullSink;

#[async_trait]
impl EventSink for NullSink {
    async fn deliver(&self, _events: &[CloudEvent]) -> Result<(), Undelivered> {
        Ok(())
    }
}

/// The relay running on a task, delivering to a timed sink.
struct Delivering<'a> {
    store: Arc<dyn Store>,
    relay: Arc<Relay>,
    sink: Arc<TimedSink>,
    /// The JetStream server and the phase's stream.
    stream: Option<(&'a Nats, String)>,
    /// The relay's task, once started.
    running: Option<Running>,
}

/// The relay's task and the collector of its delays.
struct Running {
    stop: watch::Sender<bool>,
    task: remediation_runtime::relay::RelayThread,
    /// The delays taken from the relay so far (it keeps a bounded number between two takes).
    collector: tokio::task::JoinHandle<Vec<f64>>,
}

/// What the relay delivered in a phase.
struct Delivery {
    delivered: u64,
    /// Messages in the phase's JetStream stream (each event once: they carry their
    /// `Nats-Msg-Id`).
    stored: Option<u64>,
    /// Records after the sink's mark when the load stopped (the largest of the rounds).
    backlog_at_end: u64,
    /// How long they took to drain (added up over rounds).
    drain: Duration,
    /// The longest drain of a round.
    drain_max: Duration,
    /// CPU time of this process while draining (the relay alone, the load having stopped).
    drain_cpu: Duration,
    /// The private nats-server's CPU time while draining.
    drain_nats_cpu: Option<Duration>,
    /// Seconds from each delivered record's `at` to its acknowledgement.
    delays: Vec<f64>,
    batches: Batches,
}

impl Delivery {
    /// Two phases' deliveries as one: counts and times added up, delays pooled, the larger
    /// backlog at the end.
    fn merge(mut self, other: Delivery) -> Delivery {
        self.delivered += other.delivered;
        self.stored = self.stored.zip(other.stored).map(|(a, b)| a + b);
        self.backlog_at_end = self.backlog_at_end.max(other.backlog_at_end);
        self.drain_max = self.drain_max.max(other.drain_max);
        self.drain += other.drain;
        self.drain_cpu += other.drain_cpu;
        self.drain_nats_cpu = self.drain_nats_cpu.zip(other.drain_nats_cpu).map(|(a, b)| a + b);
        self.delays.extend(other.delays);
        self.batches.sizes.extend(other.batches.sizes);
        self.batches.events.extend(other.batches.events);
        self.batches.between.extend(other.batches.between);
        self
    }
}

impl<'a> Delivering<'a> {
    /// Registers the sink's mark (from now) and, with `run`, starts the relay.
    async fn start(store: Arc<dyn Store>, to: &To<'a>, options: &RelayOptions, run: bool) -> anyhow::Result<Self> {
        let (inner, stream): (Arc<dyn EventSink>, _) = match to {
            To::Null => (Arc::new(NullSink), None),
            To::JetStream(nats, phase) => {
                let sink = nats.sink(phase).await?;
                let stream = sink.stream().to_owned();
                (Arc::new(sink), Some((*nats, stream)))
            }
        };
        let sink = Arc::new(TimedSink { inner, full: options.batch, batches: Mutex::new(Batches::default()) });
        let target: Arc<dyn EventSink> = Arc::clone(&sink) as Arc<dyn EventSink>;
        let relay = Arc::new(
            Relay::new(
                Arc::clone(&store),
                vec![RelaySink::events(SINK, target, DeliverFrom::Now)],
                Arc::new(SystemClock),
                "bench:relay".to_owned(),
            )
            .with_options(options.clone()),
        );
        relay.register().await.context("cannot register the sink's mark")?;
        let mut delivering = Self { store, relay, sink, stream, running: None };
        if run {
            delivering.run()?;
        }
        Ok(delivering)
    }

    /// Starts the relay on a thread of its own, as the server does.
    fn run(&mut self) -> anyhow::Result<()> {
        let (stop, stopped) = watch::channel(false);
        let task = Arc::clone(&self.relay).spawn(stopped.clone()).context("cannot start the relay's thread")?;
        let collector = tokio::spawn({
            let (relay, mut stopped) = (Arc::clone(&self.relay), stopped);
            async move {
                let mut delays = Vec::new();
                while !*stopped.borrow() {
                    tokio::select! {
                        () = tokio::time::sleep(Duration::from_millis(500)) => {}
                        changed = stopped.changed() => if changed.is_err() { break },
                    }
                    delays.extend(relay.take_counters().into_values().flat_map(|c| c.delays));
                }
                delays
            }
        });
        self.running = Some(Running { stop, task, collector });
        Ok(())
    }

    /// Records after the sink's mark: two reads (what `events_status` reports, without its
    /// other reads, as this is polled while the relay drains).
    async fn backlog(&self) -> anyhow::Result<u64> {
        let name = format!("events/{SINK}");
        let size = self.store.audit_size().await?;
        let marks = self.store.sink_marks().await?;
        let mark = marks.iter().find(|m| m.sink == name).context("the sink's mark is not registered")?;
        Ok(size.saturating_sub(mark.delivered_through))
    }

    /// Reads the backlog, starts the relay if it was not running, waits for the backlog to
    /// drain, stops the relay.
    async fn finish(mut self) -> anyhow::Result<Delivery> {
        let backlog_at_end = self.backlog().await?;
        let nats = self.stream.as_ref().map(|(nats, _)| *nats);
        let (cpu_before, nats_before) = (cpu_time()?, nats.and_then(Nats::cpu));
        let started = Instant::now();
        if self.running.is_none() {
            self.run()?;
        }
        while self.backlog().await? > 0 {
            if started.elapsed() > DRAIN_LIMIT {
                bail!("the relay did not drain its backlog within {} s", DRAIN_LIMIT.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let drain = started.elapsed();
        let drain_cpu = cpu_time()?.saturating_sub(cpu_before);
        let drain_nats_cpu =
            nats.and_then(Nats::cpu).zip(nats_before).map(|(after, before)| after.saturating_sub(before));
        let Some(running) = self.running.take() else { bail!("the relay is not running") };
        let _ = running.stop.send(true);
        running.task.join().await;
        let mut delays = running.collector.await.context("the delay collector panicked")?;
        let counters = self.relay.take_counters();
        let Some(c) = counters.get(&format!("events/{SINK}")) else { bail!("the relay delivered nothing") };
        delays.extend(c.delays.iter().copied());
        if c.parked > 0 || c.failures > 0 {
            bail!("the sink parked {} events and failed {} times: {:?}", c.parked, c.failures, c.failing);
        }
        if delays.len() as u64 != c.delivered {
            bail!("{} events delivered, {} delays kept", c.delivered, delays.len());
        }
        let stored = match &self.stream {
            Some((nats, stream)) => {
                let stored = nats.messages(stream).await?;
                if stored != c.delivered {
                    bail!("{} events delivered, {stored} stored in {stream}", c.delivered);
                }
                Some(stored)
            }
            None => None,
        };
        let batches = std::mem::take(&mut *self.sink.batches.lock().unwrap_or_else(PoisonError::into_inner));
        Ok(Delivery {
            delivered: c.delivered,
            stored,
            backlog_at_end,
            drain,
            drain_max: drain,
            drain_cpu,
            drain_nats_cpu,
            delays,
            batches,
        })
    }
}

/// One closed-loop phase.
struct CostResult {
    actions: usize,
    elapsed: Duration,
    changes: u64,
    commits: u64,
    writer_busy: Duration,
    cpu: Duration,
    nats_cpu: Option<Duration>,
    delivery: Option<Delivery>,
}

impl CostResult {
    fn rate(&self) -> f64 {
        self.actions as f64 / self.elapsed.as_secs_f64()
    }

    /// The rounds of one variant as one: counts and times added up, delays pooled.
    fn merge(rounds: Vec<CostResult>) -> CostResult {
        let mut rounds = rounds.into_iter();
        let Some(mut all) = rounds.next() else {
            return CostResult {
                actions: 0,
                elapsed: Duration::ZERO,
                changes: 0,
                commits: 0,
                writer_busy: Duration::ZERO,
                cpu: Duration::ZERO,
                nats_cpu: None,
                delivery: None,
            };
        };
        for r in rounds {
            all.actions += r.actions;
            all.elapsed += r.elapsed;
            all.changes += r.changes;
            all.commits += r.commits;
            all.writer_busy += r.writer_busy;
            all.cpu += r.cpu;
            all.nats_cpu = all.nats_cpu.zip(r.nats_cpu).map(|(a, b)| a + b);
            all.delivery = match (all.delivery, r.delivery) {
                (Some(a), Some(b)) => Some(a.merge(b)),
                (a, b) => a.or(b),
            };
        }
        all
    }
}

/// `bench engine`'s store phase at [`CONCURRENCY`] on a fresh store, with the relay
/// delivering to JetStream when `relay` names the server and the phase.
async fn cost_phase(
    path: &std::path::Path,
    to: Option<To<'_>>,
    o: &Options,
    budget: Duration,
) -> anyhow::Result<CostResult> {
    let (store, engine) = seeded_engine(path, o.actions)?;
    let delivering = match &to {
        Some(to) => Some(Delivering::start(store.store(), to, &o.relay, true).await?),
        None => None,
    };
    let nats = match to {
        Some(To::JetStream(nats, _)) => Some(nats),
        _ => None,
    };
    let before = store.writer_stats();
    let (cpu_before, nats_before) = (cpu_time()?, nats.and_then(Nats::cpu));
    let (actions, elapsed) = closed_loop(&engine, CONCURRENCY, o.actions, budget).await?;
    let cpu = cpu_time()?.saturating_sub(cpu_before);
    let nats_cpu = nats.and_then(|n| Some(n.cpu()?.saturating_sub(nats_before?)));
    let after = store.writer_stats();
    let delivery = match delivering {
        Some(d) => Some(d.finish().await?),
        None => None,
    };
    if let Some(d) = &delivery {
        match d.stored {
            Some(stored) => eprintln!("  {} events delivered, {stored} stored in JetStream", d.delivered),
            None => eprintln!("  {} events delivered", d.delivered),
        }
    }
    Ok(CostResult {
        actions,
        elapsed,
        changes: after.requests - before.requests,
        commits: after.commits - before.commits,
        writer_busy: Duration::from_nanos(after.busy_nanos - before.busy_nanos),
        cpu,
        nats_cpu,
        delivery,
    })
}

/// The relay alone: `actions` actions written with the sink registered but the relay not
/// running, then the relay started and timed while it drains that backlog, the engine idle.
async fn drain_phase(
    path: &std::path::Path,
    nats: &Nats,
    actions: usize,
    options: &RelayOptions,
) -> anyhow::Result<Delivery> {
    let (store, engine) = seeded_engine(path, actions)?;
    let delivering = Delivering::start(store.store(), &To::JetStream(nats, "drain"), options, false).await?;
    closed_loop(&engine, CONCURRENCY, actions, DRAIN_LIMIT).await?;
    let delivery = delivering.finish().await?;
    drop(store);
    Ok(delivery)
}

/// What the open loop did.
struct Load {
    offered: usize,
    started: usize,
    completed: usize,
    /// From the first start to the last completion.
    elapsed: Duration,
    /// The most actions due by the schedule but not started at a tick (the cap was reached).
    max_behind: usize,
    latency_p99: f64,
}

impl Load {
    /// Every offered action started, never more than a second's worth behind, and all done
    /// within a second of the window.
    fn kept_up(&self) -> bool {
        let rate = self.offered as f64 / LOAD_WINDOW.as_secs_f64();
        self.started == self.offered
            && (self.max_behind as f64) < rate
            && self.elapsed < LOAD_WINDOW + Duration::from_secs(1)
    }
}

/// One open-loop phase.
struct DelayResult {
    rate: u32,
    relay: RelayOptions,
    load: Load,
    delivery: Delivery,
    /// When the log's last `seq` changed ([`CommitWatch`]).
    commits: Vec<(u64, time::OffsetDateTime)>,
}

impl DelayResult {
    fn p99(&self) -> f64 {
        percentile(&self.delivery.delays, 0.99)
    }
}

/// Offers `rate` actions per second for [`LOAD_WINDOW`] on a fresh store, the relay
/// delivering to JetStream with `options`.
async fn delay_phase(
    path: &std::path::Path,
    nats: &Nats,
    phase: &str,
    rate: u32,
    options: &RelayOptions,
) -> anyhow::Result<DelayResult> {
    let offered = (f64::from(rate) * LOAD_WINDOW.as_secs_f64()).round() as usize;
    let (store, engine) = seeded_engine(path, offered)?;
    let delivering = Delivering::start(store.store(), &To::JetStream(nats, phase), options, true).await?;
    let watch = CommitWatch::start(path)?;
    let load = open_loop(&engine, rate, offered).await?;
    let delivery = delivering.finish().await?;
    let commits = watch.stop()?;
    drop(store);
    eprintln!(
        "  {} of {} started, {} events delivered, delay p99 {}",
        load.started,
        load.offered,
        delivery.delivered,
        ms(percentile(&delivery.delays, 0.99))
    );
    Ok(DelayResult { rate, relay: options.clone(), load, delivery, commits })
}

/// Notes when records become visible, committed, to a reader: a thread with its own
/// read-only connection to the store's file reads the log's last `seq` every millisecond.
struct CommitWatch {
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<anyhow::Result<Vec<(u64, time::OffsetDateTime)>>>,
}

impl CommitWatch {
    fn start(path: &std::path::Path) -> anyhow::Result<Self> {
        let conn = rusqlite::Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open {} to watch commits", path.display()))?;
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let thread = std::thread::spawn({
            let stop = Arc::clone(&stop);
            move || {
                let mut seen = Vec::new();
                let mut last = 0u64;
                let mut stmt = conn.prepare("SELECT COALESCE(MAX(seq), 0) FROM audit")?;
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let seq: i64 = stmt.query_row([], |row| row.get(0))?;
                    let seq = u64::try_from(seq).unwrap_or(0);
                    if seq > last {
                        seen.push((seq, time::OffsetDateTime::now_utc()));
                        last = seq;
                    }
                    std::thread::sleep(Duration::from_millis(1));
                }
                Ok(seen)
            }
        });
        Ok(Self { stop, thread })
    }

    /// The last `seq` seen at each change, and when.
    fn stop(self) -> anyhow::Result<Vec<(u64, time::OffsetDateTime)>> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().map_err(|_| anyhow::anyhow!("the commit watch panicked"))?
    }
}

/// Where each event's delay went: record time to commit (seen by a reader), commit to the
/// hand-over to the sink (the relay's poll, its read, earlier batches), hand-over to the
/// acknowledgement; in seconds.
fn split_delays(events: &[EventTimes], commits: &[(u64, time::OffsetDateTime)]) -> [Vec<f64>; 3] {
    let mut parts: [Vec<f64>; 3] = Default::default();
    for e in events {
        let i = commits.partition_point(|(seq, _)| *seq < e.seq);
        let Some((_, visible)) = commits.get(i) else { continue };
        // The watch reads every millisecond: it may notice a commit after the relay did.
        let visible = (*visible).min(e.handed);
        parts[0].push((visible - e.at).as_seconds_f64());
        parts[1].push((e.handed - visible).as_seconds_f64());
        parts[2].push((e.acked - e.handed).as_seconds_f64());
    }
    parts
}

/// Starts action k at k ÷ `rate` seconds (on the next tick), up to `offered` within
/// [`LOAD_WINDOW`], without waiting for earlier ones unless [`IN_FLIGHT_CAP`] are in flight;
/// then waits for all to complete.
async fn open_loop(engine: &Arc<Engine>, rate: u32, offered: usize) -> anyhow::Result<Load> {
    let permits = Arc::new(tokio::sync::Semaphore::new(IN_FLIGHT_CAP));
    let mut tasks = tokio::task::JoinSet::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut latencies = Vec::with_capacity(offered);
    let (mut started, mut max_behind) = (0usize, 0usize);
    let begin = Instant::now();
    loop {
        tick.tick().await;
        let elapsed = begin.elapsed();
        // At the end of the window every action is due (the last ones less than a tick late).
        let last = elapsed >= LOAD_WINDOW;
        let due = if last { offered } else { ((elapsed.as_secs_f64() * f64::from(rate)) as usize + 1).min(offered) };
        while started < due {
            let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else { break };
            let (engine, i) = (Arc::clone(engine), started);
            tasks.spawn(async move {
                let actor = Actor::new("local:bench", Role::Admin);
                let at = Instant::now();
                suggest_and_execute(&engine, &actor, i).await?;
                drop(permit);
                Ok::<_, anyhow::Error>(at.elapsed().as_secs_f64())
            });
            started += 1;
        }
        max_behind = max_behind.max(due - started);
        while let Some(done) = tasks.try_join_next() {
            latencies.push(done.context("an action's task panicked")??);
        }
        if last || started >= offered {
            break;
        }
    }
    while let Some(done) = tasks.join_next().await {
        latencies.push(done.context("an action's task panicked")??);
    }
    let elapsed = begin.elapsed();
    Ok(Load {
        offered,
        started,
        completed: latencies.len(),
        elapsed,
        max_behind,
        latency_p99: percentile(&latencies, 0.99),
    })
}
