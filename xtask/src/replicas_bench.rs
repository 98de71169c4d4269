//! `cargo xtask bench replicas`: server replicas sharing one PostgreSQL database, executing
//! against a fake Okta org that answers every request after 50 ms.
//!
//! Each run uses a fresh database with an owner role and a runtime role (dropped at the end),
//! named by `REMEDIATION_BENCH_PG` or `REMEDIATION_TEST_PG` (a superuser's key=value connection
//! string; default `host=127.0.0.1 port=5432 user=postgres dbname=test`). Two layouts run one
//! after the other on the same machine, with the same actions: three replicas with `[execution]
//! concurrency = 32` each, then one replica with concurrency 96.
//!
//! In each, `--actions` revocations (default 3,200) are suggested and approved through the
//! replicas while their workers idle, then the replicas are restarted with the worker on and
//! execute them. The per-connector limit is `--limit` (default 3,000), a little below the
//! number of actions, so the last ones are held and an overrun would show. Figures:
//! - **Throughput** over the admitted actions: completed ÷ (last `completed` audit record −
//!   first `executing` one), by the servers' clocks.
//! - **The bound**: total concurrency ÷ (provider round trips per action × 50 ms), the round
//!   trips counted in the fake's request log over the execution phase (requests naming a held
//!   action's user are left out; those naming no user are counted).
//! - **Sequencing lag**: the age of the oldest unsequenced audit entry, sampled every 50 ms
//!   during the execution phase (p50 and p99 of the samples).
//! - **Commits per action**: PostgreSQL's `xact_commit` of the database over the execution
//!   phase (the bench's own sampling transactions subtracted) ÷ admitted actions.
//!
//! `BENCH_TRACE=1` prints the sampled lag and the actions left every half second.

use std::io::{BufRead as _, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use remediation_testkit::fakes::okta::FakeOkta;
use serde_json::{Value, json};

/// How long the fake takes to answer each request.
const LATENCY: Duration = Duration::from_millis(50);
/// The fake org's group every user belongs to.
const GROUP: &str = "00gbenchgroup";
/// The connector's id.
const CONNECTOR: &str = "okta";
/// The fake's API token.
const API_TOKEN: &str = "bench-api-token";

#[derive(Debug, Clone, Copy)]
struct Options {
    actions: usize,
    limit: usize,
}

fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options { actions: 3_200, limit: 3_000 };
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().with_context(|| format!("{flag} {value}: not a number"));
        match *flag {
            "--actions" => o.actions = number()?,
            "--limit" => o.limit = number()?,
            other => bail!("unknown option {other}; usage: bench replicas [--actions N] [--limit N]"),
        }
    }
    if o.limit == 0 || o.limit >= o.actions {
        bail!("--limit must be positive and below --actions, so that the last actions are held");
    }
    Ok(o)
}

/// One layout: how many replicas, each executing how many at once.
#[derive(Debug, Clone, Copy)]
struct Layout {
    replicas: usize,
    concurrency: usize,
}

/// What one layout measured.
#[derive(Debug)]
struct Measured {
    layout: Layout,
    completed: usize,
    held: usize,
    failed: usize,
    slots: i64,
    seconds: f64,
    round_trips: f64,
    lag_p50: Duration,
    lag_p99: Duration,
    commits_per_action: f64,
    errors: usize,
}

impl Measured {
    fn per_sec(&self) -> f64 {
        self.completed as f64 / self.seconds
    }

    fn bound(&self) -> f64 {
        (self.layout.replicas * self.layout.concurrency) as f64 / (self.round_trips * LATENCY.as_secs_f64())
    }
}

/// Runs the bench and prints its figures.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let options = parse(args)?;
    let (server, cli) = crate::bench::release_binaries()?;
    let bins = Bins { server, cli };
    let admin = std::env::var("REMEDIATION_BENCH_PG")
        .or_else(|_| std::env::var("REMEDIATION_TEST_PG"))
        .unwrap_or_else(|_| "host=127.0.0.1 port=5432 user=postgres dbname=test".to_owned());
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    let three = rt.block_on(layout(&bins, &admin, options, Layout { replicas: 3, concurrency: 32 }))?;
    let one = rt.block_on(layout(&bins, &admin, options, Layout { replicas: 1, concurrency: 96 }))?;
    let cores = std::thread::available_parallelism().map_or(0, std::num::NonZero::get);
    println!();
    println!(
        "replicas benchmark: {} actions, per-connector limit {}, fake Okta answering in {} ms, {cores} cores, release build",
        options.actions,
        options.limit,
        LATENCY.as_millis()
    );
    println!(
        "| layout | admitted | held | overruns | round trips/action | bound/s | actions/s | of bound | lag p50 | lag p99 | commits/action |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for m in [&three, &one] {
        println!(
            "| {} × concurrency {} | {} | {} | {} | {:.2} | {:.1} | {:.1} | {:.2} | {:.0} ms | {:.0} ms | {:.1} |",
            m.layout.replicas,
            m.layout.concurrency,
            m.completed + m.failed,
            m.held,
            (m.completed + m.failed).saturating_sub(options.limit),
            m.round_trips,
            m.bound(),
            m.per_sec(),
            m.per_sec() / m.bound(),
            m.lag_p50.as_secs_f64() * 1e3,
            m.lag_p99.as_secs_f64() * 1e3,
            m.commits_per_action,
        );
    }
    println!();
    println!(
        "three replicas: {:.2} of the bound (target 0.8), {:.2} of one replica at concurrency 96 (target 0.9); limit slots {} and {} (limit {})",
        three.per_sec() / three.bound(),
        three.per_sec() / one.per_sec(),
        three.slots,
        one.slots,
        options.limit
    );
    for m in [&three, &one] {
        if m.errors > 0 || m.failed > 0 {
            println!(
                "note: {} × {}: {} request errors, {} failed actions",
                m.layout.replicas, m.layout.concurrency, m.errors, m.failed
            );
        }
    }
    if three.completed + three.failed > options.limit || one.completed + one.failed > options.limit {
        bail!("the limit was overrun");
    }
    Ok(())
}

struct Bins {
    server: PathBuf,
    cli: PathBuf,
}

/// A fresh database with an owner role and a runtime role, dropped with this value.
struct Database {
    admin: String,
    name: String,
}

impl Database {
    async fn create(admin: &str) -> anyhow::Result<Self> {
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let name = format!("rbench_{}_{nanos}", std::process::id());
        let db = Self { admin: admin.to_owned(), name };
        let client = db.connect(false).await?;
        for sql in [
            format!("CREATE ROLE {}_owner LOGIN", db.name),
            format!("CREATE ROLE {}_app LOGIN", db.name),
            format!("CREATE DATABASE {} OWNER {}_owner", db.name, db.name),
        ] {
            client.batch_execute(&sql).await.with_context(|| sql.clone())?;
        }
        Ok(db)
    }

    /// A superuser connection, to this database when `here`.
    async fn connect(&self, here: bool) -> anyhow::Result<tokio_postgres::Client> {
        let conn = if here { format!("{} dbname={}", self.admin, self.name) } else { self.admin.clone() };
        let (client, connection) = tokio_postgres::connect(&conn, tokio_postgres::NoTls)
            .await
            .with_context(|| format!("cannot connect to {conn}"))?;
        tokio::spawn(connection);
        Ok(client)
    }

    /// The `[store]` table: the runtime role, migrations as the owner.
    fn store_table(&self) -> anyhow::Result<String> {
        let field = |key: &str, default: &str| {
            self.admin
                .split_whitespace()
                .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
                .unwrap_or(default)
                .to_owned()
        };
        Ok(format!(
            "[store]\nurl = \"postgres://{n}_app@{}:{}/{n}\"\nmigrate_user = \"{n}_owner\"\nsslmode = \"disable\"\npool_size = 16\n",
            field("host", "127.0.0.1"),
            field("port", "5432"),
            n = self.name
        ))
    }

    async fn drop_all(&self) -> anyhow::Result<()> {
        let client = self.connect(false).await?;
        for sql in [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
            format!("DROP ROLE IF EXISTS {}_owner", self.name),
            format!("DROP ROLE IF EXISTS {}_app", self.name),
        ] {
            client.batch_execute(&sql).await.with_context(|| sql.clone())?;
        }
        Ok(())
    }
}

/// Servers killed when dropped, so an error never leaves one running.
struct Replicas(Vec<(Child, String)>);

impl Drop for Replicas {
    fn drop(&mut self) {
        for (child, _) in &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Replicas {
    async fn start(bins: &Bins, dir: &Path, count: usize) -> anyhow::Result<Self> {
        let mut all = Replicas(Vec::new());
        for _ in 0..count {
            let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
            let addr = format!("127.0.0.1:{port}");
            let mut child = Command::new(&bins.server)
                .arg("--data-dir")
                .arg(dir)
                .args(["--listen", &addr])
                .env("REMEDIATION_LOG", "warn")
                .env("BENCH_OKTA_TOKEN", API_TOKEN)
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .context("cannot start remediation-server")?;
            if let Some(stderr) = child.stderr.take() {
                std::thread::spawn(move || {
                    for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                        eprintln!("server: {line}");
                    }
                });
            }
            all.0.push((child, format!("http://{addr}")));
        }
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
        let started = Instant::now();
        for (child, base) in &mut all.0 {
            loop {
                if let Ok(r) = client.get(format!("{base}/readyz")).send().await
                    && r.status().is_success()
                {
                    break;
                }
                if let Some(status) = child.try_wait()? {
                    bail!("remediation-server exited before it was ready: {status}");
                }
                if started.elapsed() > Duration::from_secs(60) {
                    bail!("remediation-server was not ready within 60 s");
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
        Ok(all)
    }

    /// SIGTERM to each, then waits for them to exit (their connections closed, so
    /// PostgreSQL's statistics hold every commit they made).
    fn stop(mut self) -> anyhow::Result<()> {
        for (child, _) in &self.0 {
            Command::new("kill").args(["-TERM", &child.id().to_string()]).status().context("kill -TERM")?;
        }
        for (child, _) in &mut self.0 {
            child.wait()?;
        }
        self.0.clear();
        Ok(())
    }
}

fn cli(bins: &Bins, dir: &Path, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&bins.cli)
        .arg("--data-dir")
        .arg(dir)
        .args(["--actor", "local:bench"])
        .args(args)
        .env("BENCH_OKTA_TOKEN", API_TOKEN)
        .output()
        .with_context(|| format!("cannot run remediate {args:?}"))?;
    if !out.status.success() {
        bail!("remediate {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

fn token(bins: &Bins, dir: &Path, name: &str, role: &str) -> anyhow::Result<String> {
    cli(bins, dir, &["principal", "create", name, "--role", role])?;
    let out = cli(bins, dir, &["token", "create", "--principal", name, "--name", name, "--output", "json"])?;
    let v: Value = serde_json::from_str(&out).context("token create printed no JSON")?;
    v["token"].as_str().map(str::to_owned).context("token create printed no token")
}

fn user(i: usize) -> String {
    format!("00ubench{i:06}")
}

/// The configuration: the PostgreSQL store, the fake org as the only connector, the limit
/// under test and the others out of the way, the worker idle unless `worker`.
fn config(db: &Database, org_url: &str, options: Options, layout: Layout, worker: bool) -> anyhow::Result<String> {
    let interval = if worker { 1 } else { 3600 };
    Ok(format!(
        r#"[policy]
enabled = true
default_mode = "manual"
min_approvals = 1
rollback_window_secs = 86400

[limits]
per_connector = {{ max = {limit}, window_secs = 3600 }}
per_identity = {{ max = 1000000, window_secs = 3600 }}
per_resource = {{ max = 1000000, window_secs = 3600 }}
global = {{ max = 1000000, window_secs = 3600 }}

[actors]
default_role = "viewer"
roles = {{ "local:bench" = "admin" }}

[audit]
hmac_key_file = "audit.key"
signing_key = "audit-signing.key"

[server]
worker_interval_secs = {interval}
rate_limit = {{ requests = 4000000000, window_secs = 1 }}

[execution]
concurrency = {concurrency}

[[connectors]]
type = "okta"
id = "{CONNECTOR}"
org_url = "{org_url}"
auth = {{ method = "ssws", token = {{ env = "BENCH_OKTA_TOKEN" }} }}

{store}"#,
        limit = options.limit,
        concurrency = layout.concurrency,
        store = db.store_table()?,
    ))
}

async fn layout(bins: &Bins, admin: &str, options: Options, layout: Layout) -> anyhow::Result<Measured> {
    eprintln!("{} replica(s), concurrency {} each ...", layout.replicas, layout.concurrency);
    let db = Database::create(admin).await?;
    let result = measure(bins, &db, options, layout).await;
    if let Err(e) = db.drop_all().await {
        eprintln!("warning: cannot drop the bench database {}: {e:#}", db.name);
    }
    result
}

async fn measure(bins: &Bins, db: &Database, options: Options, layout: Layout) -> anyhow::Result<Measured> {
    let fake = FakeOkta::start().await.context("cannot start the fake Okta org")?;
    let org = fake.org();
    org.add_api_token(API_TOKEN);
    org.add_group(GROUP, "OKTA_GROUP");
    for i in 0..options.actions {
        org.add_user(&user(i), "ACTIVE");
        org.add_member(GROUP, &user(i));
    }
    let data = tempfile::tempdir().context("cannot create a temporary data directory")?;
    let dir = data.path();
    cli(bins, dir, &["init"])?;
    std::fs::write(dir.join("remediation.toml"), config(db, fake.org_url(), options, layout, false)?)?;
    cli(bins, dir, &["migrate"])?;
    let requester = token(bins, dir, "bench-requester", "requester")?;
    let approver = token(bins, dir, "bench-approver", "approver")?;

    // Intake: every action suggested and approved while the workers idle.
    eprintln!("  suggesting and approving {} actions ...", options.actions);
    let replicas = Replicas::start(bins, dir, layout.replicas).await?;
    let bases: Vec<String> = replicas.0.iter().map(|(_, b)| b.clone()).collect();
    let errors = intake(&bases, &requester, &approver, options.actions).await?;
    // The intake's audit entries sealed before the phase that is measured.
    let probe = db.connect(true).await?;
    while probe.query_one("SELECT COUNT(*) FROM audit_pending", &[]).await?.get::<_, i64>(0) > 0 {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replicas.stop()?;

    // Execution: the workers on, measured from the store and the fake.
    std::fs::write(dir.join("remediation.toml"), config(db, fake.org_url(), options, layout, true)?)?;
    fake.faults().set_latency(LATENCY);
    let mark = fake.log().count();
    let commits_before = xact_commit(&probe, &db.name).await?;
    let mut own = 1u64;
    eprintln!("  executing ...");
    let replicas = Replicas::start(bins, dir, layout.replicas).await?;
    let started = Instant::now();
    let mut lags = Vec::new();
    loop {
        let row = probe
            .query_one(
                "SELECT (SELECT COUNT(*) FROM actions WHERE state IN ('approved', 'executing')),
                        (SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint - MIN(written_at) FROM audit_pending)",
                &[],
            )
            .await?;
        own += 1;
        let (moving, lag): (i64, Option<i64>) = (row.get(0), row.get(1));
        lags.push(Duration::from_nanos(u64::try_from(lag.unwrap_or(0)).unwrap_or(0)));
        if std::env::var_os("BENCH_TRACE").is_some() && lags.len() % 10 == 0 {
            eprintln!("  t={:.1}s moving={moving} lag={:?}", started.elapsed().as_secs_f64(), lags.last());
        }
        if moving == 0 {
            break;
        }
        if started.elapsed() > Duration::from_secs(600) {
            bail!("{moving} actions still not executed after 10 minutes");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Let the sequencer seal the tail before the servers stop.
    loop {
        let pending: i64 = probe.query_one("SELECT COUNT(*) FROM audit_pending", &[]).await?.get(0);
        own += 1;
        if pending == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    replicas.stop()?;
    tokio::time::sleep(Duration::from_millis(600)).await;
    let commits = xact_commit(&probe, &db.name).await?.saturating_sub(commits_before).saturating_sub(own);
    let requests = fake.log().since(mark);

    let states: Vec<(String, i64)> = probe
        .query("SELECT state, COUNT(*) FROM actions GROUP BY state", &[])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let count = |s: &str| states.iter().find(|(k, _)| k == s).map_or(0, |(_, n)| usize::try_from(*n).unwrap_or(0));
    let (completed, held, failed) = (count("completed"), count("held"), count("failed"));
    let span = probe
        .query_one(
            "SELECT MIN(at) FILTER (WHERE record_json::jsonb->>'to' = 'executing'),
                    MAX(at) FILTER (WHERE record_json::jsonb->>'to' = 'completed')
             FROM audit",
            &[],
        )
        .await?;
    let (first, last): (Option<i64>, Option<i64>) = (span.get(0), span.get(1));
    let (Some(first), Some(last)) = (first, last) else { bail!("no execution completed: {states:?}") };
    let slots: i64 = probe
        .query_one(&format!("SELECT COUNT(*) FROM limit_slots WHERE key = 'connector:{CONNECTOR}'"), &[])
        .await?
        .get(0);
    let held_users: std::collections::HashSet<String> =
        probe.query("SELECT identity FROM actions WHERE state = 'held'", &[]).await?.iter().map(|r| r.get(0)).collect();
    let admitted_requests =
        requests.iter().filter(|r| !r.path.split('/').any(|part| held_users.contains(part))).count();
    lags.sort_unstable();
    let pct = |p: f64| lags.get(((lags.len() as f64 * p) as usize).min(lags.len().saturating_sub(1))).copied();
    let admitted = (completed + failed).max(1);
    Ok(Measured {
        layout,
        completed,
        held,
        failed,
        slots,
        seconds: (last - first) as f64 / 1e9,
        round_trips: admitted_requests as f64 / admitted as f64,
        lag_p50: pct(0.5).unwrap_or_default(),
        lag_p99: pct(0.99).unwrap_or_default(),
        commits_per_action: commits as f64 / admitted as f64,
        errors,
    })
}

async fn xact_commit(probe: &tokio_postgres::Client, name: &str) -> anyhow::Result<u64> {
    // Statistics are read as of the transaction's start; clear the snapshot so each read is fresh.
    probe.batch_execute("SELECT pg_stat_clear_snapshot()").await?;
    let row = probe.query_one("SELECT xact_commit FROM pg_stat_database WHERE datname = $1", &[&name]).await?;
    Ok(u64::try_from(row.get::<_, i64>(0)).unwrap_or(0))
}

/// Suggests and approves `count` revocations through the replicas, 96 at a time, each
/// approved through another replica than the one that took the suggestion; returns how many
/// failed.
async fn intake(bases: &[String], requester: &str, approver: &str, count: usize) -> anyhow::Result<usize> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let client = reqwest::Client::builder().pool_max_idle_per_host(96).build()?;
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..96 {
        let (client, next, bases) = (client.clone(), next.clone(), bases.to_vec());
        let (requester, approver) = (requester.to_owned(), approver.to_owned());
        tasks.spawn(async move {
            let mut errors = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    return errors;
                }
                let body = json!({"connector": CONNECTOR, "kind": {"type": "revoke"}, "reason": "benchmark",
                    "target": {"identity": user(i), "resource": GROUP, "grant_type": "group_membership"}});
                let result = async {
                    let created = post(&client, &bases[i % bases.len()], "/v1/actions", &requester, &body).await?;
                    let id = created["action"]["id"].as_str().context("no id")?.to_owned();
                    post(
                        &client,
                        &bases[(i + 1) % bases.len()],
                        &format!("/v1/actions/{id}/approve"),
                        &approver,
                        &json!({}),
                    )
                    .await?;
                    anyhow::Ok(())
                }
                .await;
                if let Err(e) = result {
                    if errors == 0 {
                        eprintln!("intake error: {e:#}");
                    }
                    errors += 1;
                }
            }
        });
    }
    let mut errors = 0;
    while let Some(joined) = tasks.join_next().await {
        errors += joined.context("an intake task panicked")?;
    }
    Ok(errors)
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
