//! The built-in gates. Each looks at one concern and passes, requires approval, or refuses.

use remediation_core::{GateContext, GateOutcome, Mode, Reversibility, Stage};

use crate::{ControlStatus, PolicySettings, risk_of};

/// One safety check over a proposed action.
pub trait Gate: Send + Sync {
    /// The gate's name as shown to users and in the audit.
    fn name(&self) -> &'static str;

    /// Judges the action described by `ctx` under `settings`.
    fn check(&self, ctx: &GateContext<'_>, settings: &PolicySettings) -> GateOutcome;
}

/// Validation: the grant still exists, the target is not protected, the connector is healthy
/// and may write. A failure refuses the action.
#[derive(Debug, Clone, Copy, Default)]
pub struct ValidationGate;

impl Gate for ValidationGate {
    fn name(&self) -> &'static str {
        "validation"
    }

    fn check(&self, ctx: &GateContext<'_>, _: &PolicySettings) -> GateOutcome {
        let name = self.name();
        if ctx.plan.before.protected {
            return GateOutcome::refuse(
                name,
                format!(
                    "{} is protected (break-glass or marked protected); no action may change it",
                    ctx.action.target
                ),
            );
        }
        if !ctx.health.healthy {
            return GateOutcome::refuse(
                name,
                format!("connector `{}` is unhealthy: {}", ctx.action.connector, ctx.health.detail),
            );
        }
        if !ctx.permissions.can_write() {
            return GateOutcome::refuse(
                name,
                format!(
                    "connector `{}` lacks write permission: {}",
                    ctx.action.connector,
                    ctx.permissions.missing.join(", ")
                ),
            );
        }
        // A change the provider does not expose (a Google sign-out) cannot show in the plan, so
        // an unobservable capability's plan that changes nothing is no sign of nothing to do.
        if ctx.plan.is_no_op() && ctx.capability.observable {
            return GateOutcome::refuse(
                name,
                format!(
                    "{} is already in the requested state (the grant no longer exists); nothing to do",
                    ctx.action.target
                ),
            );
        }
        GateOutcome::pass(name, "target exists, is not protected, connector healthy and permitted")
    }
}

/// Reversibility: irreversible and lossy changes never run without a human approval.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReversibilityGate;

impl Gate for ReversibilityGate {
    fn name(&self) -> &'static str {
        "reversibility"
    }

    fn check(&self, ctx: &GateContext<'_>, _: &PolicySettings) -> GateOutcome {
        let risk = risk_of(ctx.action, ctx.capability, ctx.plan);
        match ctx.capability.reversibility {
            Reversibility::Reversible if risk.score >= 4 => GateOutcome::needs_approval(
                self.name(),
                format!(
                    "blast-radius score {} (4 or more needs a human approval){}",
                    risk.score,
                    ctx.plan
                        .reach
                        .map(|n| format!(": the change reaches {n} grants or dependants"))
                        .unwrap_or_default()
                ),
            ),
            Reversibility::Reversible => GateOutcome::pass(self.name(), "the change can be rolled back exactly"),
            Reversibility::Lossy => GateOutcome::needs_approval(
                self.name(),
                "the change can only be partly undone (lossy); a human must approve it",
            ),
            Reversibility::Irreversible => {
                GateOutcome::needs_approval(self.name(), "the change cannot be undone; a human must approve it")
            }
        }
    }
}

/// Observability: the connector can read the target back to verify the change.
#[derive(Debug, Clone, Copy, Default)]
pub struct ObservabilityGate;

impl Gate for ObservabilityGate {
    fn name(&self) -> &'static str {
        "observability"
    }

    fn check(&self, ctx: &GateContext<'_>, _: &PolicySettings) -> GateOutcome {
        if ctx.capability.observable {
            GateOutcome::pass(self.name(), "the connector can read the change back")
        } else {
            GateOutcome::needs_approval(self.name(), "the connector cannot read this change back to verify it")
        }
    }
}

/// Enablement: remediation is enabled, the control is not disabled, and `never_auto`
/// controls always need approval.
#[derive(Debug, Clone, Copy, Default)]
pub struct EnablementGate;

impl Gate for EnablementGate {
    fn name(&self) -> &'static str {
        "enablement"
    }

    fn check(&self, ctx: &GateContext<'_>, settings: &PolicySettings) -> GateOutcome {
        let name = self.name();
        let control = settings.control_of(ctx.action);
        if let Some(reason) = control.and_then(|c| c.disabled.as_deref()) {
            let id = ctx.action.control_id.as_deref().unwrap_or_default();
            return GateOutcome::refuse(name, format!("control {id} is disabled: {reason}"));
        }
        if let Some(why) = ctx.state.kill_switch_refusal() {
            // While the switch is on nothing new may become executable: only advisory
            // guidance and dry runs, which never write, are still made.
            let advisory = settings.mode_for(ctx.action) == Mode::Advisory;
            return match (ctx.stage, ctx.dry_run) {
                (Stage::Execute, false) => GateOutcome::refuse(name, why),
                (Stage::Suggest, false) if !advisory => GateOutcome::refuse(
                    name,
                    format!("{why}; no new action is created while it is on (advisory guidance still works)"),
                ),
                _ => GateOutcome::needs_approval(name, why),
            };
        }
        if !settings.enabled {
            let how = "set `enabled = true` under [policy] in remediation.toml once modes and limits are reviewed";
            return match (ctx.stage, ctx.dry_run) {
                (Stage::Execute, false) => GateOutcome::refuse(name, format!("remediation is disabled; {how}")),
                _ => GateOutcome::needs_approval(
                    name,
                    format!("remediation is disabled, so nothing runs by itself; {how}"),
                ),
            };
        }
        if control.is_some_and(|c| c.never_auto) {
            let id = ctx.action.control_id.as_deref().unwrap_or_default();
            return GateOutcome::needs_approval(name, format!("control {id} is never_auto"));
        }
        GateOutcome::pass(name, "remediation is enabled for this kind and control")
    }
}

/// Dependency: the control's prerequisite controls are passing.
#[derive(Debug, Clone, Copy, Default)]
pub struct DependencyGate;

impl Gate for DependencyGate {
    fn name(&self) -> &'static str {
        "dependency"
    }

    fn check(&self, ctx: &GateContext<'_>, settings: &PolicySettings) -> GateOutcome {
        let Some(control) = settings.control_of(ctx.action) else {
            return GateOutcome::pass(self.name(), "no prerequisites");
        };
        let unmet: Vec<&str> = control
            .prerequisites
            .iter()
            .filter(|p| settings.controls.get(*p).is_none_or(|c| c.status != ControlStatus::Passing))
            .map(String::as_str)
            .collect();
        if unmet.is_empty() {
            GateOutcome::pass(self.name(), "every prerequisite control passes")
        } else {
            GateOutcome::needs_approval(self.name(), format!("prerequisite controls not passing: {}", unmet.join(", ")))
        }
    }
}

/// Emergency access: break-glass access was verified recently, so a remediation that locks
/// people out can still be undone by an administrator.
#[derive(Debug, Clone, Copy, Default)]
pub struct EmergencyAccessGate;

impl Gate for EmergencyAccessGate {
    fn name(&self) -> &'static str {
        "emergency_access"
    }

    fn check(&self, ctx: &GateContext<'_>, settings: &PolicySettings) -> GateOutcome {
        let max = time::Duration::days(i64::from(settings.emergency_access_max_age_days));
        match ctx.state.emergency_access_verified_at {
            Some(at) if ctx.now - at <= max => {
                GateOutcome::pass(self.name(), format!("emergency access verified at {at}"))
            }
            Some(at) => GateOutcome::needs_approval(
                self.name(),
                format!(
                    "emergency access was last verified at {at}, more than {} days ago; run `remediate emergency-access verify --note ...`",
                    settings.emergency_access_max_age_days
                ),
            ),
            None => GateOutcome::needs_approval(
                self.name(),
                "emergency access has never been verified; run `remediate emergency-access verify --note ...`",
            ),
        }
    }
}
