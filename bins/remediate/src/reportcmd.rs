//! `remediate report`: reports made from the audit log. Today `report compliance`; the group
//! is an enum so further reports (`report metrics`) join it as variants.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Subcommand;
use remediation_service::report::{self, ComplianceReport, Period, ReportFormat};

use crate::app::Ctx;
use crate::failure::Failure;
use crate::output::{self, errln, out};
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
        }
    }
}

/// Writes `built` in `format` to `path`, or to standard output.
fn write(built: &ComplianceReport, format: ReportFormat, path: Option<&Path>) -> Result<(), Failure> {
    let text = match format {
        ReportFormat::Json => format!("{}\n", output::json(&serde_json::json!(built))),
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
