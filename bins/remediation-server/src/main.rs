//! `remediation-server`: the remediation API over HTTP and a worker that executes approved
//! actions. Thin: parses arguments, loads the configuration, assembles the engine with
//! `remediation-runtime`, serves `remediation-api`'s router (with the `[server]` limits on
//! slow clients and connections) and stops cleanly on SIGTERM or
//! SIGINT (stop claiming, finish what is in flight, exit within the grace period).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use clap::Parser;
use remediation_api::serve::ServeOptions;
use remediation_api::{ApiOptions, ApiState};
use remediation_config::LogFormat;
use remediation_runtime::{LoadedConfig, Runtime, RuntimeOptions};

/// Serve the remediation API.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Configuration file (default: remediation.toml inside the data directory).
    #[arg(long, env = "REMEDIATION_CONFIG")]
    config: Option<PathBuf>,
    /// Data directory (default: the configuration's `data_dir`, else ./remediation-data).
    #[arg(long, env = "REMEDIATION_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// Listen address, overriding `[server] listen` (e.g. 127.0.0.1:0 for any free port).
    #[arg(long)]
    listen: Option<String>,
    /// Mark the approval page's session cookie `Secure`: set it when the page is served over
    /// TLS (a proxy sending `X-Forwarded-Proto: https` gets it anyway).
    #[arg(long, env = "REMEDIATION_SECURE_COOKIES")]
    secure_cookies: bool,
    /// Apply pending store migrations before serving (PostgreSQL, as `[store] migrate_user`).
    /// Without it a shared store is never migrated by a server: run `remediate migrate`. The
    /// SQLite store is migrated whenever it is opened (one file, on one host).
    #[arg(long)]
    migrate: bool,
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    // Connectors may block a thread (the sandbox waits on a file lock); enough threads keep
    // the API answering meanwhile.
    let threads = std::thread::available_parallelism().map_or(4, |n| n.get().max(4));
    let runtime = match tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return std::process::ExitCode::from(1);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = format!("{e:#}"), "server stopped");
            eprintln!("error: {e:#}");
            std::process::ExitCode::from(2)
        }
    }
}

fn init_logs(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("REMEDIATION_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    use std::io::IsTerminal as _;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().init(),
        LogFormat::Compact => builder.compact().init(),
    }
}

async fn run(args: Args) -> anyhow::Result<()> {
    let loaded = LoadedConfig::discover(args.config.as_deref(), args.data_dir.as_deref())?;
    let server = loaded.config.server.clone();
    let execution = loaded.config.execution.clone();
    init_logs(server.log_format);
    let key = loaded.audit_key()?;
    if !loaded.dir.is_dir() {
        return Err(remediation_runtime::RuntimeError::DataDirMissing { dir: loaded.dir.clone() })
            .with_context(|| format!("using configuration {}", loaded.path.display()));
    }
    let target = remediation_runtime::store::target(&loaded.config)?;
    let store = remediation_runtime::store::open(
        &target,
        &loaded.dir,
        key,
        remediation_runtime::store::OpenOptions { migrate: args.migrate, background_sequencer: true },
    )
    .await
    .with_context(|| format!("using configuration {}", loaded.path.display()))?;
    let options = RuntimeOptions {
        store: Some(store),
        signing_key: loaded.signing_key()?.map(Arc::new),
        config_file: Some(loaded.path.clone()),
        ..RuntimeOptions::default()
    };
    let runtime = Runtime::build(&loaded.config, &loaded.dir, None, options)
        .with_context(|| format!("using configuration {}", loaded.path.display()))?;
    // A config file may not seed a control in auto it has not earned (README, "Earning auto
    // mode"): refuse to start, naming the control and its record.
    runtime
        .check_seeded_promotions()
        .await
        .with_context(|| format!("using configuration {}", loaded.path.display()))?;
    let state = ApiState::new(
        Arc::new(runtime),
        ApiOptions {
            body_limit_bytes: server.body_limit_bytes,
            import_body_limit_bytes: server.import_body_limit_bytes,
            secure_cookies: args.secure_cookies,
            rate_limit: remediation_api::RateLimit::per_secs(server.rate_limit.requests, server.rate_limit.window_secs),
            execution: remediation_api::WorkerConfig {
                concurrency: usize::try_from(execution.concurrency).unwrap_or(usize::MAX),
                connector_concurrency: execution
                    .connector_concurrency
                    .iter()
                    .map(|(name, cap)| (name.clone(), usize::try_from(*cap).unwrap_or(usize::MAX)))
                    .collect(),
            },
        },
    );
    let listen = args.listen.unwrap_or(server.listen);
    let listener =
        tokio::net::TcpListener::bind(&listen).await.with_context(|| format!("cannot listen on {listen}"))?;
    let addr = listener.local_addr().context("cannot read the listening address")?;
    tracing::info!(%addr, data_dir = %loaded.dir.display(), "listening on {addr}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let interval = Duration::from_secs(server.worker_interval_secs.max(1));
    // The worker runs on a thread of its own, so an execution that blocks in a connector never
    // stalls the API.
    let worker_state = state.clone();
    let worker_stop = stop_rx.clone();
    let worker = std::thread::Builder::new()
        .name("remediation-worker".to_owned())
        .spawn(move || match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt.block_on(remediation_api::worker::run(worker_state, interval, worker_stop)),
            Err(e) => tracing::error!(error = %e, "cannot start the worker"),
        })
        .context("cannot start the worker thread")?;
    let worker = tokio::task::spawn_blocking(move || worker.join());
    // Tree heads of the audit log, signed at most once a second as the log grows.
    let signer = tokio::spawn(remediation_api::worker::sign_loop(state.clone(), stop_rx.clone()));
    // The audit log to every event and audit sink; one replica at a time holds the relay lease.
    // On a thread of its own, below the engine's priority: delivery is background work. The
    // sinks' marks are registered first, so a sink delivering from `now` gets everything from
    // the moment the server serves, not from when that thread got going.
    if let Err(e) = state.runtime().relay().register().await {
        tracing::warn!(error = %format!("{:#}", anyhow::Error::from(e)), "cannot register the event sinks yet; the relay tries again");
    }
    let relay = state.runtime().relay().clone().spawn(stop_rx.clone()).context("cannot start the event relay")?;
    // The other tenants' relays, started as tenants appear.
    let tenant_relays =
        tokio::spawn(remediation_api::worker::tenant_relays(state.clone(), Duration::from_secs(5), stop_rx.clone()));
    let findings = start_findings(&loaded.config, &state, stop_rx.clone())?;

    let app = remediation_api::router(state.clone());
    let limits = ServeOptions {
        header_read_timeout: Duration::from_millis(server.header_read_timeout_ms),
        request_timeout: Duration::from_secs(server.request_timeout_secs),
        max_connections: server.max_connections,
    };
    let mut http_stop = stop_rx.clone();
    let http = tokio::spawn(async move {
        remediation_api::serve::serve(listener, app, limits, async move {
            let _ = http_stop.wait_for(|stop| *stop).await;
        })
        .await
    });

    shutdown_signal().await;
    tracing::info!("shutdown requested: claiming nothing new, finishing work in flight");
    state.begin_shutdown();
    let _ = stop_tx.send(true);
    let grace = Duration::from_secs(server.shutdown_grace_secs);
    let finished = tokio::time::timeout(grace, async {
        let _ = worker.await;
        let _ = http.await;
        let _ = signer.await;
        relay.join().await;
        let _ = tenant_relays.await;
        if let Some(findings) = findings {
            let _ = findings.await;
        }
        // Seal what this replica wrote, sign over it, then hand the sequencer lease on, so
        // another replica sequences at once rather than when the lease would have expired.
        let store = state.runtime().store();
        if let Err(e) = store.sequence_pending().await {
            tracing::warn!(error = %e, "the last audit sequencer pass failed; another replica or command seals the entries");
        }
        remediation_api::worker::sign_final(&state).await;
        if let Err(e) = store.stop_sequencing().await {
            tracing::warn!(error = %e, "cannot give the audit sequencer lease up; another replica takes it when it expires");
        }
    })
    .await;
    match finished {
        Ok(()) => tracing::info!("stopped cleanly"),
        Err(_) => tracing::warn!(grace_secs = grace.as_secs(), "grace period over; exiting with work in flight"),
    }
    Ok(())
}

/// Starts the JetStream findings consumer of `[findings.nats]`, if configured.
#[cfg(feature = "nats")]
fn start_findings(
    config: &remediation_config::Config,
    state: &remediation_api::ApiState,
    stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    let Some(nats) = &config.findings.nats else { return Ok(None) };
    let consumer = nats.consumer.build().context("cannot set up [findings.nats]")?;
    let handler = remediation_api::nats::NatsIntake::new(state.clone(), nats.principal.clone());
    tracing::info!(durable = consumer.durable(), stream = consumer.stream(), principal = %nats.principal, "taking findings in over NATS");
    Ok(Some(tokio::spawn(async move { consumer.run(&handler, stop).await })))
}

#[cfg(not(feature = "nats"))]
fn start_findings(
    _config: &remediation_config::Config,
    _state: &remediation_api::ApiState,
    _stop: tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<Option<tokio::task::JoinHandle<()>>> {
    Ok(None)
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
