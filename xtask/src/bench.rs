//! `cargo xtask bench server`: builds `remediation-server` in release, starts it on loopback
//! with a temporary data directory (sandbox connector, remediation enabled, limits out of
//! the way), and measures time to ready, idle RSS, `GET /v1/actions/{id}` throughput with
//! `wrk`, suggest -> approve -> execute cycles with a small reqwest load loop, and the
//! latency of one `GET /v1/actions` page. Every request goes to 127.0.0.1 and every loop is
//! bounded in time and count.
//!
//! It runs three scenarios, each on a fresh data directory and server: the sandbox keeping
//! its directory in its file (rewritten on every write), the sandbox keeping it in memory
//! (`storage = "memory"`, so the connector costs next to nothing), and the latter with
//! 100,000 completed actions stored before the server starts. `POST /v1/actions/{id}/execute`
//! runs the execution inline: the reply carries its outcome.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

/// Actions stored before the server starts in the scenario with a full store.
const SEEDED: usize = 100_000;
/// How long each load phase runs.
const PHASE: Duration = Duration::from_secs(10);
/// Concurrent connections (wrk) and concurrent cycles (the load loop).
const CONNECTIONS: usize = 32;

/// One configuration the server is measured in.
#[derive(Debug, Clone, Copy)]
struct Scenario {
    /// Its name on the command line (`--only`).
    name: &'static str,
    /// What it is, in the printed table.
    title: &'static str,
    /// The sandbox's `storage`.
    storage: &'static str,
    /// Users in the sandbox directory: at most this many cycles can run (each revokes one).
    users: usize,
    /// Groups the users are spread over (the file sandbox is rewritten on every write, so it
    /// gets a small directory).
    groups: usize,
    /// Actions stored before the server starts.
    seeded: usize,
}

const SCENARIOS: [Scenario; 3] = [
    Scenario { name: "file", title: "file sandbox, empty store", storage: "file", users: 4_000, groups: 40, seeded: 0 },
    Scenario {
        name: "memory",
        title: "memory sandbox, empty store",
        storage: "memory",
        users: 50_000,
        groups: 500,
        seeded: 0,
    },
    Scenario {
        name: "seeded",
        title: "memory sandbox, 100,000 actions stored",
        storage: "memory",
        users: 50_000,
        groups: 500,
        seeded: SEEDED,
    },
];

/// What one scenario measured.
struct Measured {
    scenario: Scenario,
    get: WrkResult,
    cycle: CycleResult,
    page: PageLatency,
}

/// Runs the server benchmark and prints its numbers: `[--only file|memory|seeded]...`
/// restricts it to some scenarios.
pub(crate) fn server(args: &[&str]) -> anyhow::Result<()> {
    let mut only = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match (*arg, rest.next()) {
            ("--only", Some(name)) => match SCENARIOS.iter().find(|s| s.name == *name) {
                Some(s) => only.push(*s),
                None => bail!("--only {name}: expected file, memory or seeded"),
            },
            (other, _) => bail!("unknown option {other}; usage: bench server [--only file|memory|seeded]..."),
        }
    }
    if only.is_empty() {
        only = SCENARIOS.to_vec();
    }
    ensure_wrk()?;
    let (server_bin, cli_bin) = release_binaries()?;
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    let mut all = Vec::new();
    for scenario in only {
        all.push(run_scenario(scenario, &server_bin, &cli_bin, cores)?);
    }
    summary(&all);
    Ok(())
}

/// The closing table: each scenario's figures and their ratios to the targets.
fn summary(all: &[Measured]) {
    let empty = all.iter().find(|m| m.scenario.name == "memory");
    println!();
    println!(
        "| scenario | GET /v1/actions/{{id}} reads/s | cycles/s | cycles/s ÷ reads/s | GET /v1/actions page p50 | vs empty store: cycles/s | vs empty store: page p50 |"
    );
    println!("|---|---|---|---|---|---|---|");
    for m in all {
        let vs_empty = |f: &dyn Fn(&Measured) -> f64| match empty {
            Some(e) if m.scenario.seeded > 0 => format!("{:.2}", f(m) / f(e)),
            _ => "-".to_owned(),
        };
        println!(
            "| {} | {:.0} | {:.1} | 1/{:.0} | {:.2} ms | {} | {} |",
            m.scenario.title,
            m.get.rps,
            m.cycle.per_sec,
            m.get.rps / m.cycle.per_sec.max(f64::MIN_POSITIVE),
            m.page.p50.as_secs_f64() * 1e3,
            vs_empty(&|m| m.cycle.per_sec),
            vs_empty(&|m| m.page.p50.as_secs_f64()),
        );
    }
}

/// Prepares a data directory for `scenario`, starts the server on it and measures.
fn run_scenario(scenario: Scenario, server_bin: &Path, cli_bin: &Path, cores: usize) -> anyhow::Result<Measured> {
    eprintln!("scenario: {} ...", scenario.title);
    let data = tempfile::tempdir().context("cannot create a temporary data directory")?;
    prepare(cli_bin, data.path(), scenario)?;
    if scenario.seeded > 0 {
        seed(data.path(), scenario.seeded)?;
    }
    let requester = token(cli_bin, data.path(), "bench-requester", "requester")?;
    let approver = token(cli_bin, data.path(), "bench-approver", "approver")?;

    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let addr = format!("127.0.0.1:{port}");
    let started = Instant::now();
    let mut server = ServerProcess(
        Command::new(server_bin)
            .args(["--data-dir"])
            .arg(data.path())
            .args(["--listen", &addr])
            .env("REMEDIATION_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("cannot start remediation-server")?,
    );
    if let Some(stderr) = server.0.stderr.take() {
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("server: {line}");
            }
        });
    }
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let base = format!("http://{addr}");
    let ready = rt.block_on(wait_ready(&base, &mut server.0, started))?;
    std::thread::sleep(Duration::from_secs(1));
    let rss_kib = vm_rss_kib(server.0.id())?;

    // One action to read.
    let client = reqwest::Client::new();
    let first = rt.block_on(suggest(&client, &base, &requester, 0, scenario.groups))?;
    eprintln!("wrk: GET /v1/actions/{{id}} for {}s, 2 threads, {CONNECTIONS} connections ...", PHASE.as_secs());
    let get = run_wrk(&format!("{base}/v1/actions/{first}"), &requester)?;
    eprintln!("load loop: suggest -> approve -> execute for {}s, {CONNECTIONS} concurrent cycles ...", PHASE.as_secs());
    let cycle = rt.block_on(cycles(&base, &requester, &approver, scenario))?;
    eprintln!("GET /v1/actions: {PAGE_REQUESTS} pages one after the other ...");
    let page = rt.block_on(page_latency(&client, &base, &requester))?;
    let rss_after = vm_rss_kib(server.0.id())?;
    drop(server);

    println!();
    println!(
        "remediation-server benchmark: {} (release build, loopback, sandbox storage = {:?}, {} users in {} groups)",
        scenario.title, scenario.storage, scenario.users, scenario.groups
    );
    println!("  cores                       {cores}");
    println!("  time to ready               {:.1} ms (spawn until /readyz answers 200)", ready.as_secs_f64() * 1e3);
    println!("  idle RSS                    {:.1} MiB (VmRSS 1 s after ready)", rss_kib as f64 / 1024.0);
    println!("  RSS after the load          {:.1} MiB", rss_after as f64 / 1024.0);
    println!(
        "  GET /v1/actions/{{id}}        {:.0} requests/s, latency p50 {} p99 {} (wrk, {}s, 2 threads, {CONNECTIONS} connections)",
        get.rps,
        get.p50,
        get.p99,
        PHASE.as_secs()
    );
    println!(
        "  suggest->approve->execute   {:.1} cycles/s ({:.1} requests/s), cycle latency p50 {:.1} ms p99 {:.1} ms, {} cycles, {} errors (reqwest load loop, {CONNECTIONS} concurrent)",
        cycle.per_sec,
        cycle.per_sec * 3.0,
        cycle.p50.as_secs_f64() * 1e3,
        cycle.p99.as_secs_f64() * 1e3,
        cycle.done,
        cycle.errors
    );
    println!(
        "  GET /v1/actions (one page)  p50 {:.2} ms p99 {:.2} ms ({PAGE_REQUESTS} requests one after the other, first page of 50, {} actions stored)",
        page.p50.as_secs_f64() * 1e3,
        page.p99.as_secs_f64() * 1e3,
        scenario.seeded + cycle.done + cycle.errors + 1
    );
    if cycle.per_sec > 0.0 {
        println!(
            "  ratio                       reads are {:.0}x the cycles/s ({:.0}x the cycle requests/s)",
            get.rps / cycle.per_sec,
            get.rps / (cycle.per_sec * 3.0)
        );
    }
    println!("  POST .../execute            runs the execution inline (the reply carries its outcome)");
    Ok(Measured { scenario, get, cycle, page })
}

/// Stores `count` completed actions in the data directory's store before the server opens
/// it, in batched transactions (no transitions or audit records: see
/// `remediation_store_sqlite::Instrumented::seed_actions`), as history the server's queries must skip over.
fn seed(dir: &Path, count: usize) -> anyhow::Result<()> {
    use remediation_core::State;
    use remediation_testkit::ActionBuilder;
    eprintln!("storing {count} completed actions ...");
    let started = Instant::now();
    let store = remediation_store_sqlite::Instrumented::open(dir.join(remediation_runtime::STORE_FILE))
        .context("cannot open the store to seed it")?;
    const BATCH: usize = 10_000;
    for start in (0..count).step_by(BATCH) {
        let details: Vec<_> = (start..(start + BATCH).min(count))
            .map(|n| ActionBuilder::new().seed(u64::MAX - n as u64).state(State::Completed).detail().build())
            .collect();
        store.seed_actions(&details).context("cannot seed actions")?;
    }
    eprintln!("stored {count} actions in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Sequential `GET /v1/actions` requests timed.
const PAGE_REQUESTS: usize = 200;

struct PageLatency {
    p50: Duration,
    p99: Duration,
}

/// Times [`PAGE_REQUESTS`] requests for the first page of `GET /v1/actions`, one at a time.
async fn page_latency(client: &reqwest::Client, base: &str, token: &str) -> anyhow::Result<PageLatency> {
    let mut times = Vec::with_capacity(PAGE_REQUESTS);
    for _ in 0..PAGE_REQUESTS {
        let t = Instant::now();
        let r = client.get(format!("{base}/v1/actions")).bearer_auth(token).send().await?;
        let status = r.status();
        let v: Value = r.json().await?;
        if !status.is_success() || v["items"].as_array().is_none_or(Vec::is_empty) {
            bail!("GET /v1/actions: {status}: {v}");
        }
        times.push(t.elapsed());
    }
    times.sort();
    let pct = |p: f64| times[((times.len() as f64 * p) as usize).min(times.len() - 1)];
    Ok(PageLatency { p50: pct(0.50), p99: pct(0.99) })
}

/// Kills the server when dropped, so an error never leaves it running.
struct ServerProcess(Child);

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Builds `remediation-server` and `remediate` in release, saying so; their paths.
pub(crate) fn release_binaries() -> anyhow::Result<(PathBuf, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    eprintln!("building remediation-server and remediate in release ...");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(&root)
        .args(["build", "--release", "-p", "remediation-server", "-p", "remediate"])
        .status()
        .context("cannot run cargo build")?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let bin_dir = target_dir(&root).join("release");
    Ok((bin_dir.join("remediation-server"), bin_dir.join("remediate")))
}

/// Installs Debian's `wrk` when it is missing, saying so.
fn ensure_wrk() -> anyhow::Result<()> {
    if Command::new("wrk").arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status().is_ok() {
        return Ok(());
    }
    eprintln!("wrk is not installed: running `apt-get install -y --no-install-recommends wrk` (Debian package)");
    let status = Command::new("apt-get")
        .args(["install", "-y", "--no-install-recommends", "wrk"])
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()
        .context("cannot run apt-get")?;
    if !status.success() {
        eprintln!("apt-get install failed; running `apt-get update` once and trying again");
        let _ = Command::new("apt-get").arg("update").env("DEBIAN_FRONTEND", "noninteractive").status();
        let status = Command::new("apt-get")
            .args(["install", "-y", "--no-install-recommends", "wrk"])
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("cannot run apt-get")?;
        if !status.success() {
            bail!("cannot install wrk; install it (Debian package `wrk`) and run again");
        }
    }
    Ok(())
}

/// `remediate init`, then a benchmark configuration and a sandbox with many memberships.
fn prepare(cli: &Path, dir: &Path, scenario: Scenario) -> anyhow::Result<()> {
    let out = Command::new(cli).arg("--data-dir").arg(dir).arg("init").output().context("cannot run remediate init")?;
    if !out.status.success() {
        bail!("remediate init failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let config = r#"[policy]
enabled = true
default_mode = "manual"
min_approvals = 1
rollback_window_secs = 86400

[limits]
per_connector = { max = 1000000, window_secs = 3600 }
per_identity = { max = 1000000, window_secs = 3600 }
per_resource = { max = 1000000, window_secs = 3600 }
global = { max = 1000000, window_secs = 3600 }

[actors]
default_role = "viewer"
roles = { "local:bench" = "admin" }

[audit]
hmac_key_file = "audit.key"

[server]
# The worker stays idle: the load loop executes, like a client would.
worker_interval_secs = 3600
# The benchmark measures throughput, not the per-principal rate limit.
rate_limit = { requests = 4000000000, window_secs = 1 }

[[connectors]]
type = "sandbox"
id = "sandbox"
path = "sandbox.json"
"#;
    let config = format!("{config}storage = \"{}\"\n", scenario.storage);
    std::fs::write(dir.join("remediation.toml"), config).context("cannot write the configuration")?;
    let (users, groups) = (scenario.users, scenario.groups);
    let users_json: serde_json::Map<String, Value> = (0..users).map(|i| (format!("u{i}"), json!({}))).collect();
    let groups: serde_json::Map<String, Value> = (0..groups)
        .map(|g| {
            let members: Vec<String> = (0..users).filter(|i| i % groups == g).map(|i| format!("u{i}")).collect();
            (format!("g{g}"), json!({"members": members}))
        })
        .collect();
    let sandbox = json!({"users": users_json, "groups": groups});
    std::fs::write(dir.join("sandbox.json"), sandbox.to_string()).context("cannot write the sandbox directory")?;
    Ok(())
}

/// A new principal `name` holding `role`, and a token of it (never printed).
fn token(cli: &Path, dir: &Path, name: &str, role: &str) -> anyhow::Result<String> {
    let run = |args: &[&str]| {
        Command::new(cli).arg("--data-dir").arg(dir).args(["--actor", "local:bench"]).args(args).output()
    };
    let out = run(&["principal", "create", name, "--role", role]).context("cannot run remediate principal create")?;
    if !out.status.success() {
        bail!("remediate principal create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let out = run(&["token", "create", "--principal", name, "--name", name, "--output", "json"])
        .context("cannot run remediate token create")?;
    if !out.status.success() {
        bail!("remediate token create failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    let v: Value = serde_json::from_slice(&out.stdout).context("token create printed no JSON")?;
    v["token"].as_str().map(str::to_owned).context("token create printed no token")
}

/// Polls `/readyz` until it answers 200 (at most 60 s); the time since `started`.
async fn wait_ready(base: &str, child: &mut Child, started: Instant) -> anyhow::Result<Duration> {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    loop {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Ok(started.elapsed());
        }
        if let Some(status) = child.try_wait()? {
            bail!("remediation-server exited before it was ready: {status}");
        }
        if started.elapsed() > Duration::from_secs(60) {
            bail!("remediation-server was not ready within 60 s");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// The resident set of a process, in KiB.
fn vm_rss_kib(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("cannot read /proc/PID/status")?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS line")
}

/// Suggests revoking user `i` from their group (of `groups`); the action id.
async fn suggest(client: &reqwest::Client, base: &str, token: &str, i: usize, groups: usize) -> anyhow::Result<String> {
    let body = json!({
        "connector": "sandbox",
        "kind": {"type": "revoke"},
        "target": {"identity": format!("u{i}"), "resource": format!("g{}", i % groups), "grant_type": "group_membership"},
        "reason": "benchmark",
    });
    let v: Value = post(client, base, "/v1/actions", token, &body).await?;
    v["action"]["id"].as_str().map(str::to_owned).context("the suggestion has no id")
}

async fn post(client: &reqwest::Client, base: &str, path: &str, token: &str, body: &Value) -> anyhow::Result<Value> {
    let r = client.post(format!("{base}{path}")).bearer_auth(token).json(body).send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("{path}: {status}: {}", v["error"]["message"]);
    }
    Ok(v)
}

struct WrkResult {
    rps: f64,
    p50: String,
    p99: String,
}

fn run_wrk(url: &str, token: &str) -> anyhow::Result<WrkResult> {
    let out = Command::new("wrk")
        .args(["-t2", &format!("-c{CONNECTIONS}"), &format!("-d{}s", PHASE.as_secs()), "--latency", "-H"])
        .arg(format!("Authorization: Bearer {token}"))
        .arg(url)
        .output()
        .context("cannot run wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!("wrk failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    if let Some(line) = text.lines().find(|l| l.contains("Non-2xx")) {
        bail!("wrk saw errors ({}); output:\n{text}", line.trim());
    }
    let field = |prefix: &str| {
        text.lines().find_map(|l| l.trim().strip_prefix(prefix).map(|v| v.trim().to_owned())).unwrap_or_default()
    };
    Ok(WrkResult {
        rps: field("Requests/sec:").parse().context("wrk printed no Requests/sec")?,
        p50: field("50%"),
        p99: field("99%"),
    })
}

struct CycleResult {
    per_sec: f64,
    p50: Duration,
    p99: Duration,
    done: usize,
    errors: usize,
}

/// Runs suggest -> approve -> execute cycles from `CONNECTIONS` tasks for `PHASE` (or until
/// the sandbox's users run out).
async fn cycles(base: &str, requester: &str, approver: &str, scenario: Scenario) -> anyhow::Result<CycleResult> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONNECTIONS).build()?;
    let next = Arc::new(AtomicUsize::new(1));
    let started = Instant::now();
    let deadline = started + PHASE;
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let (client, next, base) = (client.clone(), next.clone(), base.to_owned());
        let (requester, approver) = (requester.to_owned(), approver.to_owned());
        tasks.spawn(async move {
            let (mut latencies, mut errors) = (Vec::new(), 0usize);
            while Instant::now() < deadline {
                let i = next.fetch_add(1, Ordering::SeqCst);
                if i >= scenario.users {
                    break;
                }
                let t = Instant::now();
                let result = async {
                    let id = suggest(&client, &base, &requester, i, scenario.groups).await?;
                    post(&client, &base, &format!("/v1/actions/{id}/approve"), &approver, &json!({})).await?;
                    let done =
                        post(&client, &base, &format!("/v1/actions/{id}/execute"), &approver, &json!({})).await?;
                    if done["outcome"] != "completed" {
                        bail!("execution of {id}: {}", done["outcome"]);
                    }
                    anyhow::Ok(())
                }
                .await;
                match result {
                    Ok(()) => latencies.push(t.elapsed()),
                    Err(e) => {
                        if errors == 0 {
                            eprintln!("cycle error: {e:#}");
                        }
                        errors += 1;
                    }
                }
            }
            (latencies, errors)
        });
    }
    let (mut all, mut errors) = (Vec::new(), 0);
    while let Some(joined) = tasks.join_next().await {
        let (l, e) = joined.context("a load task panicked")?;
        all.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    all.sort();
    let pct = |p: f64| all.get(((all.len() as f64 * p) as usize).min(all.len().saturating_sub(1))).copied();
    Ok(CycleResult {
        per_sec: all.len() as f64 / elapsed.as_secs_f64(),
        p50: pct(0.50).unwrap_or_default(),
        p99: pct(0.99).unwrap_or_default(),
        done: all.len(),
        errors,
    })
}
