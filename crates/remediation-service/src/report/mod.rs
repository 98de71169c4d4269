//! Reports built from the sequenced audit log, shared by `remediate report ...` and
//! `GET /v1/reports/...`. Today: the compliance report of a period ([`compliance`]); the
//! renderers for its CSV and HTML forms are [`to_csv`] and [`to_html`].
//!
//! A report reads the store's audit log (the records `audit export` and `audit verify` read),
//! never what a process remembers, so a report made on one replica equals one made on another.

mod build;
mod csv;
mod html;
#[cfg(test)]
mod tests;

use remediation_core::ActionId;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::ServiceError;

pub use build::compliance;
pub use csv::{CSV_COLUMNS, to_csv};
pub use html::{SECTION_HEADINGS, to_html};

/// A half-open period `[from, to)`: records at or after `from` and strictly before `to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    from: OffsetDateTime,
    to: OffsetDateTime,
}

impl Period {
    /// The period from `from` (included) to `to` (excluded); refused unless `from` < `to`.
    pub fn new(from: OffsetDateTime, to: OffsetDateTime) -> Result<Self, ServiceError> {
        if from >= to {
            return Err(ServiceError::Invalid {
                field: "to",
                message: format!(
                    "the period is empty: `to` ({}) must come after `from` ({})",
                    rfc3339(to),
                    rfc3339(from)
                ),
            });
        }
        Ok(Self { from: from.to_offset(time::UtcOffset::UTC), to: to.to_offset(time::UtcOffset::UTC) })
    }

    /// The first instant of the period.
    pub fn from(&self) -> OffsetDateTime {
        self.from
    }

    /// The first instant after the period.
    pub fn to(&self) -> OffsetDateTime {
        self.to
    }

    /// Whether `at` falls inside the period.
    pub fn contains(&self, at: OffsetDateTime) -> bool {
        self.from <= at && at < self.to
    }
}

/// An instant as the API takes a period's bound: an RFC 3339 timestamp, or a date
/// (`2026-12-01`, midnight UTC). Ages (`7d`) are the CLI's to resolve, against its own clock.
pub fn parse_bound(s: &str) -> Option<OffsetDateTime> {
    let s = s.trim();
    if let Ok(t) = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Some(t.to_offset(time::UtcOffset::UTC));
    }
    time::Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .ok()
        .map(|d| d.midnight().assume_utc())
}

/// The form a report is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ReportFormat {
    /// The [`ComplianceReport`] as JSON (`schemas/compliance-report.schema.json`).
    #[default]
    Json,
    /// One CSV file (RFC 4180), one row per event, with a `section` column.
    Csv,
    /// One self-contained HTML page (inline CSS, no scripts), ready to print.
    Html,
}

impl ReportFormat {
    /// Every format.
    pub const ALL: [ReportFormat; 3] = [ReportFormat::Json, ReportFormat::Csv, ReportFormat::Html];

    /// Its name, as the CLI and the query string spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Csv => "csv",
            Self::Html => "html",
        }
    }

    /// Its media type.
    pub fn media_type(self) -> &'static str {
        match self {
            Self::Json => "application/json",
            Self::Csv => "text/csv; charset=utf-8; header=present",
            Self::Html => "text/html; charset=utf-8",
        }
    }
}

/// What the audit log says happened in a period: actions and their outcomes, approvals with
/// their separation-of-duties evidence, rollbacks, refusals, overrides, installation-wide
/// changes, and whether the log itself verifies.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ComplianceReport {
    /// The first instant of the period (included).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub from: OffsetDateTime,
    /// The first instant after the period (excluded).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub to: OffsetDateTime,
    /// When the report was made (the engine's clock).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub generated_at: OffsetDateTime,
    /// How many audit records fall inside the period.
    pub records: u64,
    /// Section 1: how many actions reached each outcome, by control and kind.
    pub actions: Vec<OutcomeCount>,
    /// Section 1, record by record: each action reaching an outcome.
    pub outcomes: Vec<ActionOutcome>,
    /// Section 2: each approval of a plan, with its separation-of-duties evidence.
    pub approvals: Vec<ApprovalEvidence>,
    /// Section 3: each action rolled back (or asked to be) in the period.
    pub rollbacks: Vec<RollbackEntry>,
    /// Section 4: each refused attempt (`*_refused` records).
    pub refusals: Vec<Refusal>,
    /// Section 5: force-executions and overrides, with their reasons.
    pub overrides: Vec<Override>,
    /// Section 6: kill-switch, breaker, settings and access changes, with before and after.
    pub settings_changes: Vec<SettingsChange>,
    /// Section 7: whether the audit log verifies, and its head at the end of the period.
    pub audit: AuditStatus,
}

/// How many actions reached one outcome, for one control and kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeCount {
    /// The control remediated; `None` when the action named none.
    pub control: Option<String>,
    /// The action kind (`revoke`, `suspend`, ...; `unknown` when the action is no longer stored).
    pub kind: String,
    /// The state reached: `completed`, `failed`, `rolled_back`, `rejected`, `cancelled`,
    /// `expired`, `held`, `dry_run`.
    pub outcome: String,
    /// How many times, in the period.
    pub count: u64,
}

/// One action reaching an outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ActionOutcome {
    /// The audit record's `seq`.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// The action.
    pub action_id: ActionId,
    /// The control remediated, if any.
    pub control: Option<String>,
    /// The action kind.
    pub kind: String,
    /// The state reached.
    pub outcome: String,
    /// Who caused it.
    pub actor: String,
    /// The record's comment (reason, failure), if any.
    pub comment: Option<String>,
}

/// One approval of a plan and its separation-of-duties evidence.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalEvidence {
    /// The audit record's `seq`.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// The action approved.
    pub action_id: ActionId,
    /// The control remediated, if any.
    pub control: Option<String>,
    /// The action kind.
    pub kind: String,
    /// Who asked for the action.
    pub requester: String,
    /// Who approved.
    pub approver: String,
    /// True when requester and approver differ (separation of duties held).
    pub separate: bool,
    /// How many distinct principals had approved this plan once this approval was recorded.
    pub distinct_approvers: u64,
    /// The policy's minimum number of approvals, when a settings change in the period
    /// recorded it before this approval; `None` when the log does not say.
    pub min_approvals: Option<u64>,
    /// True when this approval brought the plan to its quorum (the action became `approved`).
    pub quorum_reached: bool,
}

/// One action's rollback: who asked, who approved, how it ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RollbackEntry {
    /// The `seq` of the first rollback record of the action in the period.
    pub seq: u64,
    /// When the rollback was asked for (or started, when no approval was needed).
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// The action.
    pub action_id: ActionId,
    /// The control remediated, if any.
    pub control: Option<String>,
    /// The action kind.
    pub kind: String,
    /// Who asked for the rollback.
    pub requested_by: String,
    /// Who approved it; `None` when it needed no approval (or has none yet).
    pub approved_by: Option<String>,
    /// `rolled_back`, `failed`, `rejected` (the rollback was refused and the change kept),
    /// `rolling_back` or `requested` (still open at the end of the period).
    pub outcome: String,
    /// The reason given when asking.
    pub reason: Option<String>,
}

/// One attempt the audit recorded about an action or the installation: a refusal
/// ([`ComplianceReport::refusals`]), or a force-execution or override
/// ([`ComplianceReport::overrides`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Attempt {
    /// The audit record's `seq`.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// What it was: `approval_refused`, `execution_refused`, `suggestion_refused`, ... for a
    /// refusal; `force_execute`, or the settings event of an override.
    pub event: String,
    /// Who tried, or did it.
    pub actor: String,
    /// The reason recorded (why it was refused, or why the limit was overridden).
    pub reason: Option<String>,
    /// The action, when it was about one.
    pub action_id: Option<ActionId>,
}

/// One refused attempt.
pub type Refusal = Attempt;

/// One force-execution or override.
pub type Override = Attempt;

/// One installation-wide change (settings record): kill switch, breaker, settings, principals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SettingsChange {
    /// The audit record's `seq`.
    pub seq: u64,
    /// When.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub at: OffsetDateTime,
    /// What changed (`kill_switch_on`, `settings_changed`, `breaker_tripped`, ...).
    pub event: String,
    /// Who changed it.
    pub actor: String,
    /// Why.
    pub reason: Option<String>,
    /// The state before the change.
    pub before: serde_json::Value,
    /// The state after the change.
    pub after: serde_json::Value,
}

/// Whether the audit log verifies, and where it stood at the end of the period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AuditStatus {
    /// What was verified: `whole_chain` (every stored record and the checkpoint, as
    /// `audit verify` does; a period cannot be checked alone, since each link depends on all
    /// before it).
    pub scope: String,
    /// True when the chain, its checkpoint and the latest signed tree head reveal no tampering
    /// (`audit verify` exits 0).
    pub chain_verified: bool,
    /// How many records were checked.
    pub records_checked: u64,
    /// The first problem found, in plain words; `None` when the chain verified.
    pub problem: Option<String>,
    /// What the checkpoint says.
    pub checkpoint: String,
    /// What the latest signed tree head says.
    pub tree_head_verdict: String,
    /// The last record sequenced before the end of the period; `None` when the log was empty.
    pub head: Option<PeriodHead>,
    /// The latest signed tree head, if one exists.
    pub signed_tree_head: Option<SignedHeadSummary>,
}

/// The head of the chain: a record's `seq` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodHead {
    /// The record's `seq`.
    pub seq: u64,
    /// The record's `hash`; `None` when it was archived out of the store.
    pub hash: Option<String>,
}

/// A signed tree head, as the report shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SignedHeadSummary {
    /// How many records the signed tree holds.
    pub tree_size: u64,
    /// Its Merkle root (hex).
    pub root_hash: String,
    /// When it was signed.
    #[serde(with = "time::serde::rfc3339")]
    #[schemars(with = "String")]
    pub timestamp: OffsetDateTime,
    /// The signing key's id.
    pub key_id: String,
    /// True when the signed tree holds every record up to the period's head.
    pub covers_period: bool,
}

/// RFC 3339, or the debug form when an instant cannot be written so (never in practice).
pub(crate) fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| t.to_string())
}
