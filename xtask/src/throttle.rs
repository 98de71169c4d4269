//! `cargo xtask bench throttle`: how close the Okta connector, with its real retry policy and
//! real waiting, comes to a provider's rate limit. A fake Okta org allows `--rate` writes per
//! second and answers the rest with Okta's 429 (`X-Rate-Limit-Reset`); `--count` group
//! revocations run through snapshot, plan, execute and verify with `--concurrency` in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use remediation_connector_http::SecretSource;
use remediation_connector_okta::{GROUP_MEMBERSHIP, OktaAuth, OktaConfig, OktaConnector, OktaParts};
use remediation_core::{Action, ActionKind, Connector, ConnectorError, ConnectorErrorKind, Target};
use remediation_testkit::ActionBuilder;
use remediation_testkit::fakes::RateLimit;
use remediation_testkit::fakes::okta::FakeOkta;

/// The bench's settings.
#[derive(Debug, Clone, Copy)]
struct Options {
    /// Writes per second the fake allows.
    rate: u32,
    /// Revocations to run.
    count: usize,
    /// Revocations in flight at once.
    concurrency: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self { rate: 500, count: 10_000, concurrency: 32 }
    }
}

fn parse(args: &[&str]) -> anyhow::Result<Options> {
    let mut o = Options::default();
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        let number = || value.parse::<usize>().with_context(|| format!("{flag} {value}: not a number"));
        match *flag {
            "--rate" => o.rate = u32::try_from(number()?).context("--rate is too large")?,
            "--count" => o.count = number()?,
            "--concurrency" => o.concurrency = number()?,
            other => bail!("unknown option {other}; usage: bench throttle [--rate N] [--count N] [--concurrency N]"),
        }
    }
    if o.rate == 0 || o.count == 0 || o.concurrency == 0 {
        bail!("--rate, --count and --concurrency must be positive");
    }
    Ok(o)
}

/// Runs the bench and prints its figures.
pub(crate) fn run(args: &[&str]) -> anyhow::Result<()> {
    let options = parse(args)?;
    if cfg!(debug_assertions) {
        eprintln!(
            "note: this is a debug build; `cargo run --release -p xtask -- bench throttle` gives figures to quote"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start tokio")?;
    runtime.block_on(bench(options))
}

/// How one revocation ended.
enum Ending {
    Completed,
    Failed(ConnectorError),
}

async fn revoke(connector: &OktaConnector, action: &Action) -> Ending {
    let result = async {
        let before = connector.snapshot(&action.target).await?;
        let planned = connector.plan(action, &before).await?;
        connector.execute(action, &before).await?;
        let verification = connector.verify(action, &planned).await?;
        if verification.matches { Ok(()) } else { Err(ConnectorError::permanent("the change was not observed")) }
    };
    match result.await {
        Ok(()) => Ending::Completed,
        Err(e) => Ending::Failed(e),
    }
}

/// The group every bench user is a member of.
pub(crate) const BENCH_GROUP: &str = "00gbenchprivileged";
/// The id of the benches' Okta connector.
pub(crate) const BENCH_OKTA_ID: &str = "okta-bench";

/// A fake Okta org holding `count` active users (`00ubench000000` ...) in [`BENCH_GROUP`], and
/// the real Okta connector configured for it (API token in a temporary file kept alive here).
pub(crate) struct BenchOrg {
    /// The fake org.
    pub(crate) fake: FakeOkta,
    /// Its users, in order.
    pub(crate) users: Vec<String>,
    /// The connector (id [`BENCH_OKTA_ID`]).
    pub(crate) connector: OktaConnector,
    /// The API token's file: bind it for as long as the connector runs.
    pub(crate) _token_file: tempfile::NamedTempFile,
}

/// Starts the fake org of [`BenchOrg`] with `count` users and builds its connector.
pub(crate) async fn bench_org(count: usize) -> anyhow::Result<BenchOrg> {
    const TOKEN: &str = "bench-api-token";
    let fake = FakeOkta::start().await.context("cannot start the fake Okta org")?;
    let org = fake.org();
    org.add_api_token(TOKEN);
    org.add_group(BENCH_GROUP, "OKTA_GROUP");
    let users: Vec<String> = (0..count).map(|i| format!("00ubench{i:06}")).collect();
    for user in &users {
        org.add_user(user, "ACTIVE");
        org.add_member(BENCH_GROUP, user);
    }
    let token_file = tempfile::NamedTempFile::new().context("cannot create the token file")?;
    std::fs::write(token_file.path(), TOKEN).context("cannot write the token file")?;
    let config = OktaConfig {
        allow_insecure_http: false,
        id: BENCH_OKTA_ID.to_owned(),
        org_url: fake.org_url().to_owned(),
        auth: OktaAuth::Ssws { token: SecretSource::File(token_file.path().to_owned()) },
        page_size: 200,
        max_pages: 50,
        request_timeout_secs: 30,
        max_retry_wait_secs: 120,
        session_log_days: 90,
        protected: Vec::new(),
    };
    let connector = OktaConnector::new(&config, OktaParts::default()).context("cannot build the Okta connector")?;
    Ok(BenchOrg { fake, users, connector, _token_file: token_file })
}

async fn bench(o: Options) -> anyhow::Result<()> {
    const GROUP: &str = BENCH_GROUP;
    let BenchOrg { fake, users, connector, _token_file } = bench_org(o.count).await?;
    let org = fake.org();
    let connector = Arc::new(connector);
    let actions: Arc<Vec<Action>> = Arc::new(
        users
            .iter()
            .enumerate()
            .map(|(i, user)| {
                let target = Target {
                    identity: user.clone(),
                    resource: Some(GROUP.to_owned()),
                    grant: None,
                    grant_type: GROUP_MEMBERSHIP.to_owned(),
                };
                ActionBuilder::new()
                    .seed(i as u64 + 1)
                    .kind(ActionKind::Revoke)
                    .target(target)
                    .connector(BENCH_OKTA_ID)
                    .build()
            })
            .collect(),
    );

    fake.faults().limit_rate(Some(RateLimit { per_second: o.rate, writes_only: true }));
    let requests_before = fake.log().count();
    println!(
        "bench throttle: {} group revocations, fake Okta allowing {} writes/s, {} in flight",
        o.count, o.rate, o.concurrency
    );
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..o.concurrency {
        let (connector, actions, next) = (Arc::clone(&connector), Arc::clone(&actions), Arc::clone(&next));
        workers.spawn(async move {
            let mut failures = Vec::new();
            let mut completed = 0usize;
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(action) = actions.get(i) else { break };
                match revoke(&connector, action).await {
                    Ending::Completed => completed += 1,
                    Ending::Failed(e) => failures.push(e),
                }
            }
            (completed, failures)
        });
    }
    let mut completed = 0usize;
    let mut failures = Vec::new();
    while let Some(joined) = workers.join_next().await {
        let (c, f) = joined.context("a worker panicked")?;
        completed += c;
        failures.extend(f);
    }
    let wall = started.elapsed();

    let still_members = users.iter().filter(|u| org.is_member(GROUP, u)).count();
    let throttled_failures = failures.iter().filter(|e| matches!(e.kind, ConnectorErrorKind::Throttled { .. })).count();
    let answered_429 = fake.faults().rate_limited();
    let requests = fake.log().count() - requests_before;
    let achieved = completed as f64 / wall.as_secs_f64();
    let ratio = achieved / f64::from(o.rate);
    let ideal = Duration::from_secs_f64(o.count as f64 / f64::from(o.rate));

    println!("  completed:            {completed} of {}", o.count);
    println!("  failed (throttled):   {throttled_failures}");
    println!("  failed (other):       {}", failures.len() - throttled_failures);
    println!("  429s answered:        {answered_429}");
    println!("  requests served:      {requests} ({} writes refused, {} per action)", answered_429, {
        let per_action = requests as f64 / o.count as f64;
        format!("{per_action:.2}")
    });
    println!("  wall time:            {:.2} s (ideal at the limit: {:.2} s)", wall.as_secs_f64(), ideal.as_secs_f64());
    println!("  achieved rate:        {achieved:.1} revocations/s");
    println!("  achieved rate / N:    {ratio:.3}");
    if let Some(e) = failures.first() {
        println!("  first failure:        {e}");
    }
    if still_members + completed != o.count {
        println!("  note: {still_members} users are still members of the group");
    }
    if throttled_failures > 0 || ratio < 0.95 {
        println!("  below target (ratio >= 0.95 and no throttled failure)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn options_default_and_parse() {
        let d = parse(&[]).expect("defaults");
        assert_eq!((d.rate, d.count, d.concurrency), (500, 10_000, 32));
        let o = parse(&["--rate", "50", "--count", "100", "--concurrency", "4"]).expect("options");
        assert_eq!((o.rate, o.count, o.concurrency), (50, 100, 4));
        assert!(parse(&["--rate"]).is_err());
        assert!(parse(&["--rate", "0"]).is_err());
        assert!(parse(&["--speed", "1"]).is_err());
    }
}
