//! Policy settings: enablement, modes per kind and per control, approvals and rollback windows.

use std::collections::BTreeMap;

use remediation_core::{Action, KindName, Mode};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::SettingsError;

/// Shortest rollback window that may be configured (1 minute).
pub const MIN_ROLLBACK_WINDOW_SECS: u64 = 60;
/// Longest rollback window that may be configured (30 days).
pub const MAX_ROLLBACK_WINDOW_SECS: u64 = 30 * 86_400;

/// Safety settings. Remediation is disabled until `enabled` is set deliberately.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Master switch. While false, every execution is refused (suggestions and dry runs still work).
    pub enabled: bool,
    /// Mode for actions with no kind or control override.
    pub default_mode: Mode,
    /// Approvals an action needs unless its kind says otherwise.
    pub min_approvals: u32,
    /// Seconds after completion during which an action may be rolled back (default 24 h).
    pub rollback_window_secs: u64,
    /// Overrides per action kind.
    pub kinds: BTreeMap<KindName, KindSettings>,
    /// Overrides per control id.
    pub controls: BTreeMap<String, ControlSettings>,
    /// Days after which an emergency-access (break-glass) verification is stale; with a
    /// stale one, nothing runs without approval (default 30).
    pub emergency_access_max_age_days: u32,
    /// Seconds an action may wait for approval before it expires (default 7 days).
    pub approval_expiry_secs: u64,
    /// Global dry run: every execution checks everything and writes nothing.
    pub dry_run: bool,
    /// Connectors whose executions are always dry runs.
    pub dry_run_connectors: Vec<String>,
    /// When a finding arrives again for a (control, target) whose action completed, the fix
    /// did not hold. Off (default): the server reports it (a `remediation_did_not_hold`
    /// event) and leaves the old action as it is. On: for reversible kinds whose blast-radius
    /// score is at most 1 (revoke, reduce, notify of one grant), the old action is rolled back
    /// as `system` and a fresh action is suggested.
    pub redo_fixes_that_did_not_hold: bool,
}

impl Default for PolicySettings {
    fn default() -> Self {
        Self {
            enabled: false,
            default_mode: Mode::Manual,
            min_approvals: 1,
            rollback_window_secs: 86_400,
            kinds: BTreeMap::new(),
            controls: BTreeMap::new(),
            emergency_access_max_age_days: 30,
            approval_expiry_secs: 7 * 86_400,
            dry_run: false,
            dry_run_connectors: Vec::new(),
            redo_fixes_that_did_not_hold: false,
        }
    }
}

/// Overrides for one action kind.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KindSettings {
    /// Mode for this kind.
    pub mode: Option<Mode>,
    /// Why the mode differs from the default (required with `mode`).
    pub reason: Option<String>,
    /// Approvals this kind needs.
    pub min_approvals: Option<u32>,
    /// Rollback window for this kind, in seconds.
    pub rollback_window_secs: Option<u64>,
    /// Roll back at once, as `system`, when a change of this kind was applied but not
    /// verified. Honoured only for low-risk (blast-radius score at most 1) reversible changes.
    #[serde(default)]
    pub auto_rollback_on_failed_verification: bool,
    /// Whether a person's rollback of a completed action of this kind waits in
    /// `rollback_requested` until a different principal approves it. Default: true for every
    /// kind that removes access or fixes a configuration (all but `notify`). Rollbacks by the
    /// system (automatic rollback, crash recovery) never wait.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollback_requires_approval: Option<bool>,
}

/// Overrides for one control.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlSettings {
    /// Mode for actions of this control (wins over the kind's).
    pub mode: Option<Mode>,
    /// Why the mode differs (required with `mode`).
    pub reason: Option<String>,
    /// Actions of this control always need approval.
    #[serde(default)]
    pub never_auto: bool,
    /// When set, the control is disabled and this is why; its actions are refused.
    pub disabled: Option<String>,
    /// Controls that must be passing before this control's actions run without approval.
    #[serde(default)]
    pub prerequisites: Vec<String>,
    /// Whether the control currently passes, as last reported.
    #[serde(default)]
    pub status: ControlStatus,
}

/// Whether a control passes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ControlStatus {
    /// Nothing reported yet.
    #[default]
    Unknown,
    /// The control passes.
    Passing,
    /// The control fails.
    Failing,
}

impl PolicySettings {
    /// Checks the rules a config file cannot express: overrides carry a reason, windows and
    /// approval counts are in range.
    pub fn validate(&self) -> Result<(), SettingsError> {
        let window = |scope: String, secs: u64| {
            if (MIN_ROLLBACK_WINDOW_SECS..=MAX_ROLLBACK_WINDOW_SECS).contains(&secs) {
                Ok(())
            } else {
                Err(SettingsError::RollbackWindowOutOfRange { scope, secs })
            }
        };
        window("default".to_owned(), self.rollback_window_secs)?;
        if self.approval_expiry_secs < 60 {
            return Err(SettingsError::ApprovalExpiryTooShort { secs: self.approval_expiry_secs });
        }
        if self.emergency_access_max_age_days == 0 {
            return Err(SettingsError::ZeroEmergencyAge);
        }
        if self.min_approvals == 0 {
            return Err(SettingsError::ZeroApprovals { scope: "default".to_owned() });
        }
        for (kind, k) in &self.kinds {
            let scope = format!("kind {kind}");
            if k.mode.is_some() && k.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(SettingsError::OverrideWithoutReason { scope });
            }
            if let Some(secs) = k.rollback_window_secs {
                window(scope.clone(), secs)?;
            }
            if k.min_approvals == Some(0) {
                return Err(SettingsError::ZeroApprovals { scope });
            }
        }
        for (id, c) in &self.controls {
            if c.mode.is_some() && c.reason.as_deref().is_none_or(|r| r.trim().is_empty()) {
                return Err(SettingsError::OverrideWithoutReason { scope: format!("control {id}") });
            }
        }
        Ok(())
    }

    /// The mode the settings give `action`: control override, else kind override, else default.
    pub fn mode_for(&self, action: &Action) -> Mode {
        let control = action.control_id.as_ref().and_then(|c| self.controls.get(c)).and_then(|c| c.mode);
        let kind = self.kinds.get(&action.kind.name()).and_then(|k| k.mode);
        control.or(kind).unwrap_or(self.default_mode)
    }

    /// The control settings of `action`, if it names a configured control.
    pub fn control_of(&self, action: &Action) -> Option<&ControlSettings> {
        action.control_id.as_ref().and_then(|c| self.controls.get(c))
    }

    /// Approvals `action` needs.
    pub fn min_approvals_for(&self, action: &Action) -> u32 {
        self.kinds.get(&action.kind.name()).and_then(|k| k.min_approvals).unwrap_or(self.min_approvals)
    }

    /// Whether executions of `action` are forced to be dry runs (globally or per connector).
    pub fn forced_dry_run(&self, action: &Action) -> bool {
        self.dry_run || self.dry_run_connectors.iter().any(|c| c == &action.connector)
    }

    /// How long `action` may wait for approval.
    pub fn approval_ttl(&self) -> time::Duration {
        time::Duration::seconds(i64::try_from(self.approval_expiry_secs).unwrap_or(i64::MAX))
    }

    /// Whether a person's rollback of `action` needs a different principal's approval: the
    /// kind's setting, else true for every kind that changes the provider (all but `notify`).
    pub fn rollback_requires_approval_for(&self, action: &Action) -> bool {
        let kind = action.kind.name();
        self.kinds.get(&kind).and_then(|k| k.rollback_requires_approval).unwrap_or(kind != KindName::Notify)
    }

    /// Rollback window of `action`.
    pub fn rollback_window_for(&self, action: &Action) -> time::Duration {
        let secs = self
            .kinds
            .get(&action.kind.name())
            .and_then(|k| k.rollback_window_secs)
            .unwrap_or(self.rollback_window_secs);
        time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }
}
