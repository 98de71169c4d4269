//! `remediate events`: how each event and audit sink stands, delivering what waits, and
//! replaying what a sink refused.

use std::time::Duration;

use clap::Subcommand;
use remediation_runtime::relay::{EventsStatus, RelayError};
use serde_json::json;

use crate::app::Ctx;
use crate::backend::Backend;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, clean, outln};

/// `events` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum EventsCommand {
    /// Each sink's backlog (records not yet delivered), the oldest one's age, and what it
    /// parked (records it refused for good, with the reason).
    Status,
    /// Delivers what waits to every sink now (each command does so at its end, for a few
    /// seconds); a server delivers by itself, so this is for installations without one.
    /// Exits 5 when a sink still has a backlog.
    Flush {
        /// How long to keep delivering, in seconds.
        #[arg(long, default_value_t = 60)]
        timeout: u64,
    },
    /// Delivers records a sink parked again, once the receiver is fixed (admin; audited).
    Replay {
        /// The sink, as `events status` names it (`events/siem`, `audit/file`).
        #[arg(long)]
        sink: String,
        /// Only this parked record (repeatable); all of the sink's when absent.
        #[arg(long = "seq")]
        seqs: Vec<u64>,
        /// Why (kept in the audit).
        #[arg(long)]
        reason: String,
    },
}

impl Ctx {
    pub(crate) async fn events(&self, command: &EventsCommand) -> Result<u8, Failure> {
        match command {
            EventsCommand::Status => {
                let status = self.backend.events_status().await?;
                self.print_status(&status)?;
                Ok(ExitCode::Success.code())
            }
            EventsCommand::Flush { timeout } => self.events_flush(Duration::from_secs((*timeout).max(1))).await,
            EventsCommand::Replay { sink, seqs, reason } => {
                let seqs = (!seqs.is_empty()).then(|| seqs.clone());
                let marked = self.backend.replay_parked(sink, seqs, reason, &self.actor).await?;
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!({"sink": sink, "replay": marked})))?,
                    Format::Table => outln!(
                        "{marked} parked record(s) of {} will be delivered again, before new ones{}",
                        clean(sink),
                        if matches!(self.backend, Backend::Local(_)) {
                            "; `remediate events flush` delivers now"
                        } else {
                            ""
                        }
                    )?,
                }
                Ok(ExitCode::Success.code())
            }
        }
    }

    fn print_status(&self, status: &EventsStatus) -> Result<(), Failure> {
        match self.format {
            Format::Json => outln!("{}", output::json(&json!(status)))?,
            Format::Table => {
                if status.sinks.is_empty() {
                    outln!(
                        "no event or audit sink is configured: add [[events.sinks]] or [[events.audit_sinks]] to remediation.toml"
                    )?;
                    return Ok(());
                }
                let rows: Vec<Vec<String>> = status
                    .sinks
                    .iter()
                    .map(|s| {
                        vec![
                            s.sink.clone(),
                            if s.configured { "yes".to_owned() } else { "no (removed)".to_owned() },
                            s.delivered_through.to_string(),
                            s.backlog.to_string(),
                            s.oldest_undelivered_age_secs.map_or_else(|| "-".to_owned(), |a| format!("{a}s")),
                            s.parked.to_string(),
                        ]
                    })
                    .collect();
                output::out!(
                    "{}",
                    output::table(
                        &["SINK", "CONFIGURED", "DELIVERED THROUGH", "BACKLOG", "OLDEST WAITING", "PARKED"],
                        &rows
                    )
                )?;
                outln!("audit log: {} records, {} not sequenced yet", status.log_size, status.unsequenced)?;
                if !status.parked.is_empty() {
                    outln!(
                        "parked (refused for good; `remediate events replay --sink S` once the receiver is fixed):"
                    )?;
                    let rows: Vec<Vec<String>> = status
                        .parked
                        .iter()
                        .map(|p| {
                            vec![
                                p.sink.clone(),
                                p.seq.to_string(),
                                p.parked_at.to_string(),
                                if p.replay { "requested" } else { "-" }.to_owned(),
                                clean(&p.reason),
                            ]
                        })
                        .collect();
                    output::out!("{}", output::table(&["SINK", "SEQ", "PARKED AT", "REPLAY", "REASON"], &rows))?;
                }
            }
        }
        Ok(())
    }

    async fn events_flush(&self, budget: Duration) -> Result<u8, Failure> {
        let local = self.backend.local("events flush")?;
        match local.runtime.relay().flush(budget).await {
            Ok(report) => {
                let waiting = report.iter().any(|s| s.backlog > 0);
                match self.format {
                    Format::Json => outln!("{}", output::json(&json!(report)))?,
                    Format::Table if report.is_empty() => outln!("no event or audit sink is configured")?,
                    Format::Table => {
                        let rows: Vec<Vec<String>> = report
                            .iter()
                            .map(|s| {
                                vec![
                                    s.sink.clone(),
                                    s.moved.to_string(),
                                    s.backlog.to_string(),
                                    s.failing.as_deref().map_or_else(|| "-".to_owned(), clean),
                                ]
                            })
                            .collect();
                        output::out!("{}", output::table(&["SINK", "DELIVERED", "BACKLOG", "FAILING"], &rows))?;
                    }
                }
                Ok(if waiting { ExitCode::Provider.code() } else { ExitCode::Success.code() })
            }
            Err(RelayError::Busy { .. }) => {
                outln!(
                    "another process (a server, or a command killed or still running) holds the delivery lease for this store; it lapses after `[events.relay] lease_ttl_secs` if that process is gone; `remediate events status` shows each sink's backlog"
                )?;
                Ok(ExitCode::Success.code())
            }
            Err(e) => Err(Failure::new(
                ExitCode::Internal,
                anyhow::anyhow!("cannot deliver events: {}", remediation_core::error_chain(&e)),
            )),
        }
    }

    /// Delivers what this command (and earlier ones) left, for a few seconds, when no server
    /// does; says what still waits.
    pub(crate) async fn flush_events(&self) {
        let Backend::Local(local) = &self.backend else { return };
        let relay = local.runtime.relay();
        if relay.sinks().is_empty() {
            return;
        }
        match relay.flush(Duration::from_secs(5)).await {
            Ok(report) => {
                for sink in report.iter().filter(|s| s.backlog > 0) {
                    output::errln!(
                        "note: {} record(s) wait for sink {}{}; a later command or `remediate events flush` delivers them",
                        sink.backlog,
                        sink.sink,
                        sink.failing.as_deref().map(|f| format!(" ({})", clean(f))).unwrap_or_default()
                    );
                }
            }
            Err(RelayError::Busy { .. }) | Err(RelayError::Store(remediation_core::StoreError::Unsupported { .. })) => {
            }
            Err(e) => output::errln!("warning: events not delivered yet: {}", remediation_core::error_chain(&e)),
        }
    }
}
