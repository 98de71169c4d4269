//! Safety gates and mode policy for the remediation engine.
//!
//! [`Pipeline`] implements [`remediation_core::SafetyPolicy`]: it resolves the mode of an
//! action (control override, else kind override, else the default) and runs every [`Gate`].
//! A gate that fails without refusing turns `auto` into `manual`; one that refuses stops
//! the action. Validation is always the first gate and cannot be left out.
//!
//! ```
//! use remediation_gates::{Pipeline, PolicySettings};
//!
//! let settings = PolicySettings { enabled: true, ..PolicySettings::default() };
//! let pipeline = Pipeline::standard(settings)?;
//! assert_eq!(
//!     pipeline.gate_names(),
//!     ["validation", "reversibility", "dependency", "emergency_access", "observability", "enablement"]
//! );
//! # Ok::<(), remediation_gates::SettingsError>(())
//! ```

mod error;
mod gates;
mod risk;
mod settings;

use remediation_core::{Action, GateContext, PolicyDecision, SafetyPolicy, SafetyState};

pub use error::SettingsError;
pub use gates::{
    DependencyGate, EmergencyAccessGate, EnablementGate, Gate, ObservabilityGate, ReversibilityGate, ValidationGate,
};
pub use risk::{blast_radius, blast_radius_reaching, reach_points, risk_of};
pub use settings::{
    AutoDemotion, AutoPromotion, ControlSettings, ControlStatus, KindSettings, MAX_ROLLBACK_WINDOW_SECS,
    MIN_ROLLBACK_WINDOW_SECS, PolicySettings,
};

/// The gate pipeline: validation first, then the configured gates, under one set of settings.
pub struct Pipeline {
    settings: PolicySettings,
    gates: Vec<Box<dyn Gate>>,
}

impl std::fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pipeline").field("settings", &self.settings).field("gates", &self.gate_names()).finish()
    }
}

impl Pipeline {
    /// The built-in gates: validation, reversibility, dependency, emergency access,
    /// observability, enablement.
    pub fn standard(settings: PolicySettings) -> Result<Self, SettingsError> {
        Self::with_gates(
            settings,
            vec![
                Box::new(ReversibilityGate),
                Box::new(DependencyGate),
                Box::new(EmergencyAccessGate),
                Box::new(ObservabilityGate),
            ],
        )
    }

    /// Validation, then `gates`, then enablement. Validation and enablement (the master switch,
    /// the kill switch and disabled controls) are always included and cannot be left out.
    pub fn with_gates(settings: PolicySettings, gates: Vec<Box<dyn Gate>>) -> Result<Self, SettingsError> {
        settings.validate()?;
        let mut all: Vec<Box<dyn Gate>> = vec![Box::new(ValidationGate)];
        all.extend(
            gates.into_iter().filter(|g| g.name() != ValidationGate.name() && g.name() != EnablementGate.name()),
        );
        all.push(Box::new(EnablementGate));
        Ok(Self { settings, gates: all })
    }

    /// The settings in force.
    pub fn settings(&self) -> &PolicySettings {
        &self.settings
    }

    /// The gates' names, in order.
    pub fn gate_names(&self) -> Vec<&'static str> {
        self.gates.iter().map(|g| g.name()).collect()
    }
}

impl SafetyPolicy for Pipeline {
    fn evaluate<'a>(&self, ctx: &GateContext<'a>) -> PolicyDecision {
        PolicyDecision {
            mode: self.settings.mode_for(ctx.action),
            gates: self.gates.iter().map(|g| g.check(ctx, &self.settings)).collect(),
            risk: risk_of(ctx.action, ctx.capability, ctx.plan),
        }
    }

    fn auto_rollback_on_failed_verification(&self, action: &Action) -> bool {
        let kind = action.kind.name();
        blast_radius(kind, remediation_core::Reversibility::Reversible) <= 1
            && self.settings.kinds.get(&kind).is_some_and(|k| k.auto_rollback_on_failed_verification)
    }

    fn write_refusal(&self, action: &Action, state: &SafetyState) -> Option<String> {
        // The settings kept in the store are authoritative once changed: read them from the
        // state just read, not from the copy this pipeline was built with, so a change made
        // by another process takes effect before the next write.
        match &state.settings {
            None => self.settings.write_refusal(action, state),
            Some(stored) => match PolicySettings::from_stored(stored.clone()) {
                Ok((settings, _)) => settings.write_refusal(action, state),
                Err(e) => {
                    Some(format!("the policy settings kept in the store cannot be read ({e}); nothing is written"))
                }
            },
        }
    }

    fn emergency_kind(&self, kind: remediation_core::KindName, state: &SafetyState) -> bool {
        // As for writes: the settings kept in the store are authoritative once changed.
        match &state.settings {
            None => self.settings.emergency_kinds.contains(&kind),
            Some(stored) => PolicySettings::from_stored(stored.clone())
                .is_ok_and(|(settings, _)| settings.emergency_kinds.contains(&kind)),
        }
    }

    fn approval_ttl(&self, _action: &Action) -> time::Duration {
        self.settings.approval_ttl()
    }

    fn forced_dry_run(&self, action: &Action) -> bool {
        self.settings.forced_dry_run(action)
    }

    fn min_approvals(&self, action: &Action) -> u32 {
        self.settings.min_approvals_for(action)
    }

    fn rollback_window(&self, action: &Action) -> time::Duration {
        self.settings.rollback_window_for(action)
    }

    fn rollback_requires_approval(&self, action: &Action) -> bool {
        self.settings.rollback_requires_approval_for(action)
    }
}

#[cfg(test)]
mod tests;
