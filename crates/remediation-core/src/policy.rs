//! The seams through which the engine asks for its safety decisions: the gate pipeline and
//! the blast-radius limit policy. Implementations live in `remediation-gates` and
//! `remediation-limiter`; the engine never runs an action without consulting both.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::{Action, Capability, Health, Mode, Permissions, Plan, SlotRequest};

/// When the gates run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    /// While an action is suggested.
    Suggest,
    /// Just before an action executes (re-validation).
    Execute,
}

/// Everything a gate may look at. Built by the engine from fresh provider reads.
#[derive(Debug, Clone)]
pub struct GateContext<'a> {
    /// When the gates run.
    pub stage: Stage,
    /// The action (its `mode` is not yet final at [`Stage::Suggest`]).
    pub action: &'a Action,
    /// The connector's capability for this (kind, grant type).
    pub capability: &'a Capability,
    /// The plan made from the fresh snapshot.
    pub plan: &'a Plan,
    /// The connector's health.
    pub health: &'a Health,
    /// The connector's missing permissions.
    pub permissions: &'a Permissions,
    /// The current time.
    pub now: OffsetDateTime,
    /// Whether this is a dry run.
    pub dry_run: bool,
    /// The installation's safety switches and facts, read from the store.
    pub state: &'a SafetyState,
}

/// Installation-wide safety switches and facts, kept in the store so every process and
/// replica sees the same ones. Changes to them are audited.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct SafetyState {
    /// Kill switch: while on, no execution starts.
    pub kill_switch: bool,
    /// Circuit breaker: tripped when the global limit is reached; all execution pauses until
    /// an admin resets it.
    pub breaker_tripped: bool,
    /// When break-glass (emergency) access was last verified to work.
    #[serde(with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub emergency_access_verified_at: Option<OffsetDateTime>,
    /// Who verified it, and their note.
    pub emergency_access_note: Option<String>,
    /// Policy settings as last changed through the store (`None`: as seeded from the
    /// configuration file). Kept as JSON because core does not know the policy's shape.
    pub settings: Option<serde_json::Value>,
    /// The installation's kill switch, kept in the default tenant's state: while on, no
    /// execution starts in any tenant, whatever each tenant's own switch says (the global one
    /// wins). The engine reports it in every tenant's state it reads for its gates.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub installation_kill_switch: bool,
}

impl SafetyState {
    /// Why no execution may start now because of a kill switch (the installation's first,
    /// then the tenant's); `None` when neither is on.
    pub fn kill_switch_refusal(&self) -> Option<&'static str> {
        if self.installation_kill_switch {
            Some(
                "the installation's kill switch is on; an admin of the default tenant turns it off with `remediate kill-switch off --installation`",
            )
        } else if self.kill_switch {
            Some("the kill switch is on; an admin turns it off with `remediate kill-switch off`")
        } else {
            None
        }
    }
}

/// How much could go wrong: a blast-radius score and the risk level derived from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Risk {
    /// Blast-radius score; 4 or more needs approval.
    pub score: u8,
    /// The plain-language level.
    pub level: RiskLevel,
}

impl Risk {
    /// The risk of a given score: 0-1 low, 2-3 medium, 4 and above high.
    pub fn from_score(score: u8) -> Self {
        let level = match score {
            0..=1 => RiskLevel::Low,
            2..=3 => RiskLevel::Medium,
            _ => RiskLevel::High,
        };
        Self { score, level }
    }
}

/// Plain-language risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum RiskLevel {
    /// Reversible and narrow.
    Low,
    /// Wider, or only partly reversible.
    Medium,
    /// Irreversible or wide: always needs a human.
    High,
}

impl std::fmt::Display for RiskLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        })
    }
}

/// The verdict of one gate.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct GateOutcome {
    /// The gate's name (`validation`, `reversibility`, ...).
    pub gate: String,
    /// Whether the gate passed.
    pub passed: bool,
    /// Why, in plain words.
    pub reason: String,
    /// A failure that refuses the action outright instead of requiring approval.
    pub blocking: bool,
}

impl GateOutcome {
    /// A passing verdict.
    pub fn pass(gate: &str, reason: impl Into<String>) -> Self {
        Self { gate: gate.to_owned(), passed: true, reason: reason.into(), blocking: false }
    }

    /// A failure that requires human approval (auto drops to manual).
    pub fn needs_approval(gate: &str, reason: impl Into<String>) -> Self {
        Self { gate: gate.to_owned(), passed: false, reason: reason.into(), blocking: false }
    }

    /// A failure that refuses the action.
    pub fn refuse(gate: &str, reason: impl Into<String>) -> Self {
        Self { gate: gate.to_owned(), passed: false, reason: reason.into(), blocking: true }
    }
}

/// The outcome of the whole pipeline for one action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct PolicyDecision {
    /// The mode the settings give this action, before gate failures lower it.
    pub mode: Mode,
    /// Every gate's verdict, in order.
    pub gates: Vec<GateOutcome>,
    /// The action's blast radius and risk level.
    pub risk: Risk,
}

impl PolicyDecision {
    /// The first gate that refuses the action.
    pub fn refusal(&self) -> Option<&GateOutcome> {
        self.gates.iter().find(|g| !g.passed && g.blocking)
    }

    /// The gates that failed without refusing; each turns auto into manual.
    pub fn approvals_required(&self) -> impl Iterator<Item = &GateOutcome> {
        self.gates.iter().filter(|g| !g.passed && !g.blocking)
    }

    /// The mode after gate failures: auto drops to manual when any gate failed.
    pub fn effective_mode(&self) -> Mode {
        if self.mode == Mode::Auto && self.approvals_required().next().is_some() { Mode::Manual } else { self.mode }
    }
}

/// The gate pipeline and mode resolution.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait SafetyPolicy: Send + Sync {
    /// Resolves the mode and runs every gate.
    fn evaluate<'a>(&self, ctx: &GateContext<'a>) -> PolicyDecision;

    /// How many distinct approvals an action of this kind needs.
    fn min_approvals(&self, action: &Action) -> u32 {
        let _ = action;
        1
    }

    /// Whether executions of `action` are forced to be dry runs (globally or per connector).
    fn forced_dry_run(&self, action: &Action) -> bool {
        let _ = action;
        false
    }

    /// How long after completion an action may be rolled back.
    fn rollback_window(&self, action: &Action) -> time::Duration {
        let _ = action;
        time::Duration::hours(24)
    }

    /// Whether a person's rollback of a completed action of this kind waits for a different
    /// principal's approval. Rollbacks by the system never wait. Default: true for every kind
    /// that changes the provider (everything but `notify`).
    fn rollback_requires_approval(&self, action: &Action) -> bool {
        action.kind.name() != crate::KindName::Notify
    }

    /// Whether a change that was applied but not verified is rolled back at once by the
    /// system. Only ever honoured for [`crate::Reversibility::Reversible`] changes.
    fn auto_rollback_on_failed_verification(&self, action: &Action) -> bool {
        let _ = action;
        false
    }

    /// How long an action may wait for approval before it expires (default 7 days).
    fn approval_ttl(&self, action: &Action) -> time::Duration {
        let _ = action;
        time::Duration::days(7)
    }

    /// Why nothing may be written for `action` now, judged from the safety `state` read
    /// just before the provider write (the kill switch, remediation disabled, the action's
    /// control disabled); `None` when the write may go ahead. Policies that keep their
    /// settings in `state.settings` read them from there, so a change made anywhere takes
    /// effect before the next write. The default checks the kill switch only.
    fn write_refusal(&self, action: &Action, state: &SafetyState) -> Option<String> {
        let _ = action;
        state.kill_switch_refusal().map(str::to_owned)
    }

    /// Whether a responder may run `kind` at once in an emergency, without a second approver
    /// ([`crate::Preapproval::Emergency`]), judged from the safety `state` just read (policies
    /// that keep their settings there read them from it). The default: no kind.
    fn emergency_kind(&self, kind: crate::KindName, state: &SafetyState) -> bool {
        let _ = (kind, state);
        false
    }
}

/// Which blast-radius windows an execution must fit into.
#[cfg_attr(any(test, feature = "mocks"), mockall::automock)]
pub trait LimitPolicy: Send + Sync {
    /// The windows `action` takes a slot in; empty for kinds that do not count (`notify`).
    fn slots_for(&self, action: &Action) -> Vec<SlotRequest>;
}
