//! Simple [`SafetyPolicy`] and [`LimitPolicy`] implementations for tests, so engine tests do
//! not depend on the real gate pipeline or limit settings.

use remediation_core::{
    Action, GateContext, GateOutcome, LimitPolicy, Mode, PolicyDecision, Risk, SafetyPolicy, SlotRequest,
};
use time::Duration;

/// A safety policy whose every gate passes, with a fixed mode, approval quorum and rollback
/// window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AllowAll {
    /// The mode every action gets.
    pub mode: Mode,
    /// Distinct approvals every action needs.
    pub min_approvals: u32,
    /// How long after completion an action may be rolled back.
    pub rollback_window: Duration,
    /// Whether a person's rollback waits for a second principal's approval.
    pub rollback_requires_approval: bool,
}

impl AllowAll {
    /// `mode`, one approval, a 24-hour rollback window, rollbacks without approval (so
    /// tests about other rules roll back in one step).
    pub fn new(mode: Mode) -> Self {
        Self { mode, min_approvals: 1, rollback_window: Duration::hours(24), rollback_requires_approval: false }
    }

    /// Makes a person's rollback wait for another principal's approval, as the real policy
    /// does by default.
    pub fn with_rollback_approval(mut self) -> Self {
        self.rollback_requires_approval = true;
        self
    }

    /// Sets the approval quorum.
    pub fn with_min_approvals(mut self, n: u32) -> Self {
        self.min_approvals = n;
        self
    }

    /// Sets the rollback window.
    pub fn with_rollback_window(mut self, window: Duration) -> Self {
        self.rollback_window = window;
        self
    }
}

impl SafetyPolicy for AllowAll {
    fn evaluate<'a>(&self, _ctx: &GateContext<'a>) -> PolicyDecision {
        PolicyDecision {
            mode: self.mode,
            gates: vec![GateOutcome::pass("allow_all", "test policy: every gate passes")],
            risk: Risk::from_score(1),
        }
    }

    fn min_approvals(&self, _action: &Action) -> u32 {
        self.min_approvals
    }

    fn rollback_window(&self, _action: &Action) -> Duration {
        self.rollback_window
    }

    fn rollback_requires_approval(&self, _action: &Action) -> bool {
        self.rollback_requires_approval
    }
}

/// A safety policy that returns the same gate verdicts for every action at every stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FixedGates {
    /// The mode the settings give every action.
    pub mode: Mode,
    /// The verdicts, in order.
    pub gates: Vec<GateOutcome>,
    /// Distinct approvals every action needs.
    pub min_approvals: u32,
    /// How long after completion an action may be rolled back.
    pub rollback_window: Duration,
}

impl FixedGates {
    /// `mode` with `gates`, one approval, a 24-hour rollback window.
    pub fn new(mode: Mode, gates: Vec<GateOutcome>) -> Self {
        Self { mode, gates, min_approvals: 1, rollback_window: Duration::hours(24) }
    }
}

impl SafetyPolicy for FixedGates {
    fn evaluate<'a>(&self, _ctx: &GateContext<'a>) -> PolicyDecision {
        PolicyDecision { mode: self.mode, gates: self.gates.clone(), risk: Risk::from_score(1) }
    }

    fn min_approvals(&self, _action: &Action) -> u32 {
        self.min_approvals
    }

    fn rollback_window(&self, _action: &Action) -> Duration {
        self.rollback_window
    }

    /// Rollbacks need no approval, so tests about gates roll back in one step.
    fn rollback_requires_approval(&self, _action: &Action) -> bool {
        false
    }
}

/// A limit policy under which no action takes a slot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct NoLimits;

impl LimitPolicy for NoLimits {
    fn slots_for(&self, _action: &Action) -> Vec<SlotRequest> {
        Vec::new()
    }
}

/// A limit policy under which every action (of every kind) takes a slot in each of the same
/// windows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FixedLimits(pub Vec<SlotRequest>);

impl LimitPolicy for FixedLimits {
    fn slots_for(&self, _action: &Action) -> Vec<SlotRequest> {
        self.0.clone()
    }
}
