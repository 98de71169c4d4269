//! `remediate report`: reports made from the audit log over a period: `report compliance` (for
//! an auditor) and `report metrics` (outcomes, rates and time to remediation per control, kind
//! and connector, folded from the log, so every process's work counts).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use remediation_api::types::MetricsReportView;
use remediation_service::report::{self, ComplianceReport, Period, ReportFormat};
use time::OffsetDateTime;

use crate::app::Ctx;
use crate::exit::ExitCode;
use crate::failure::Failure;
use crate::output::{self, Format, errln, out, outln};
use crate::when;

/// `report` subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum ReportCommand {
    /// The compliance report of a period, from the audit log: actions by control, kind and
    /// outcome; approvals with their separation-of-duties evidence; rollbacks; refused
    /// attempts; force-executions and overrides; kill-switch and settings changes; and the
    /// audit chain's verification, its head at the end of the period and the signed tree head.
    Compliance {
        /// The first instant of the period (included): a date (2026-12-01, midnight UTC), an
        /// RFC 3339 timestamp (2026-12-01T08:00:00Z) or an age (30m, 12h, 7d, 2w ago).
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        from: time::OffsetDateTime,
        /// The first instant after the period (excluded), written like --from.
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        to: time::OffsetDateTime,
        /// The report's form: `json` (schemas/compliance-report.schema.json), `csv` (one row
        /// per event, a `section` column) or `html` (one self-contained page, ready to print).
        #[arg(long, value_parser = crate::one_of(ReportFormat::ALL.map(ReportFormat::as_str), parse_format), default_value = "json")]
        format: ReportFormat,
        /// Write to this file instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
    /// Outcomes, executions, rollbacks, failed verifications, success rate (completed over
    /// completed plus failed executions), rollback rate (rolled back over completed) and time
    /// to remediation (suggestion to completion, p50 and p90) per control, kind and connector,
    /// counted from the audit log for the records in [--since, --until). A control id that is
    /// not configured counts as `other`, an action without one as `none`.
    Metrics {
        /// Start of the period (inclusive); the log's beginning when absent. Takes a date
        /// (2026-12-01, midnight UTC), an RFC 3339 timestamp or an age (30m, 12h, 7d, 2w ago).
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        since: Option<OffsetDateTime>,
        /// End of the period (exclusive); now when absent. Same forms as --since.
        #[arg(long, value_parser = when::parse_instant_now, value_name = "WHEN")]
        until: Option<OffsetDateTime>,
    },
}

fn parse_format(s: &str) -> Result<ReportFormat, String> {
    ReportFormat::ALL
        .into_iter()
        .find(|f| f.as_str() == s)
        .ok_or_else(|| format!("unknown format `{s}`; expected json, csv or html"))
}

impl Ctx {
    /// `report ...`.
    pub(crate) async fn report(&self, command: &ReportCommand) -> Result<u8, Failure> {
        match command {
            ReportCommand::Compliance { from, to, format, out } => {
                let period = Period::new(*from, *to)?;
                let built = self.backend.compliance_report(period).await?;
                write(&built, *format, out.as_deref())?;
                if !built.audit.chain_verified {
                    errln!(
                        "warning: the audit chain does NOT verify ({}); run `remediate audit verify`",
                        output::clean(built.audit.problem.as_deref().unwrap_or("see the report"))
                    );
                }
                Ok(0)
            }
            ReportCommand::Metrics { since, until } => {
                let period = remediation_service::metrics::Period { since: *since, until: *until };
                let report = self.backend.metrics_report(period).await?;
                self.print_metrics(&report)?;
                Ok(ExitCode::Success.code())
            }
        }
    }
    fn print_metrics(&self, report: &MetricsReportView) -> Result<(), Failure> {
        if matches!(self.format, Format::Json) {
            let value = serde_json::to_value(report).map_err(|e| {
                Failure::new(ExitCode::Internal, anyhow::Error::new(e).context("cannot render the report"))
            })?;
            return outln!("{}", output::json(&value));
        }
        let bound = |t: Option<OffsetDateTime>, none: &str| {
            t.and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
                .unwrap_or_else(|| none.to_owned())
        };
        outln!("period: {} to {}", bound(report.since, "the log's beginning"), bound(report.until, "now"))?;
        if report.rows.is_empty() {
            return outln!("nothing was remediated, rejected, cancelled or expired in this period");
        }
        let n = |m: &std::collections::BTreeMap<String, u64>, k: &str| m.get(k).copied().unwrap_or(0).to_string();
        let pct = |r: Option<f64>| r.map_or_else(|| "-".to_owned(), |r| format!("{:.1}%", r * 100.0));
        let secs = |s: Option<f64>| s.map_or_else(|| "-".to_owned(), duration);
        let rows: Vec<Vec<String>> = report
            .rows
            .iter()
            .map(|r| {
                let s = r;
                vec![
                    r.control.clone(),
                    r.kind.clone(),
                    r.connector.clone(),
                    n(&s.outcomes, "completed"),
                    n(&s.outcomes, "failed"),
                    n(&s.outcomes, "rolled_back"),
                    n(&s.outcomes, "rejected"),
                    n(&s.outcomes, "cancelled"),
                    n(&s.outcomes, "expired"),
                    s.failed_verifications.to_string(),
                    pct(r.success_rate),
                    pct(r.rollback_rate),
                    secs(r.ttr_p50_secs),
                    secs(r.ttr_p90_secs),
                ]
            })
            .collect();
        output::out!(
            "{}",
            output::table(
                &[
                    "CONTROL",
                    "KIND",
                    "CONNECTOR",
                    "COMPLETED",
                    "FAILED",
                    "ROLLED BACK",
                    "REJECTED",
                    "CANCELLED",
                    "EXPIRED",
                    "UNVERIFIED",
                    "SUCCESS",
                    "ROLLBACK RATE",
                    "TTR P50",
                    "TTR P90",
                ],
                &rows
            )
        )
    }
}

/// Writes `built` in `format` to `path`, or to standard output.
fn write(built: &ComplianceReport, format: ReportFormat, path: Option<&Path>) -> Result<(), Failure> {
    let text = match format {
        ReportFormat::Json => format!("{}\n", output::artifact_json(&serde_json::json!(built))),
        ReportFormat::Csv => report::to_csv(built),
        ReportFormat::Html => report::to_html(built),
    };
    match path {
        Some(path) => {
            std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
            errln!("wrote the compliance report ({}) to {}", format.as_str(), path.display());
        }
        None => out!("{text}")?,
    }
    Ok(())
}

/// Seconds as people read them: `42s`, `5.5m`, `3.2h`, `2.1d`.
fn duration(secs: f64) -> String {
    match secs {
        s if s < 60.0 => format!("{s:.0}s"),
        s if s < 3_600.0 => format!("{:.1}m", s / 60.0),
        s if s < 86_400.0 => format!("{:.1}h", s / 3_600.0),
        s => format!("{:.1}d", s / 86_400.0),
    }
}
