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
    /// When a finding arrives again for a (control, target) whose action completed, the
    /// target is read again; nothing is ever rolled back. Only when the grant is really back
    /// (a `remediation_did_not_hold` event) does this matter. Off (default): the completed
    /// action is reported for a person to decide. On: a fresh action is suggested, under the
    /// mode policy and every gate like any other suggestion.
    pub redo_fixes_that_did_not_hold: bool,
    /// The record a control override must have before it may be set to `auto` (see
    /// [`AutoPromotion`]).
    pub auto_promotion: AutoPromotion,
    /// When a control override in `auto` drops back to `manual` by itself (see
    /// [`AutoDemotion`]).
    pub auto_demotion: AutoDemotion,
    /// The kinds an incident responder (`responder` role, or an admin) may run at once on an
    /// exposed person's accounts, without a second approver (default: `revoke_sessions` and
    /// `force_password_reset`). This is the one exception to "irreversible kinds never run
    /// without approval": the responder is recorded as the decider, with their reason, and
    /// gates that refuse, limits and the kill switch still apply. Changing this list needs a
    /// second admin.
    pub emergency_kinds: Vec<KindName>,
}

/// The record a control override must have before it may be set to `auto`: at least
/// `min_successes` successful manual remediations (completed actions of the control inside the
/// override's scope that a person approved), the first at least `min_days` days ago, and none
/// of the control's actions in scope rolled back. An admin may set `auto` without it by giving
/// the control a `promotion_override_reason` (audited).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AutoPromotion {
    /// Successful manual remediations needed (default 10).
    pub min_successes: u32,
    /// Days the first of them must lie in the past (default 30).
    pub min_days: u32,
}

impl Default for AutoPromotion {
    fn default() -> Self {
        Self { min_successes: 10, min_days: 30 }
    }
}

/// When a control override in `auto` drops back to `manual` by itself (as `system`, audited):
/// when more than `max_rate_percent` % of its last `window` auto actions (executed, in the
/// override's scope) were rolled back or failed verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct AutoDemotion {
    /// How many of the latest auto actions are judged (default 20).
    pub window: u32,
    /// The share of them, in percent, that may go wrong without a demotion (default 10).
    pub max_rate_percent: u32,
}

impl Default for AutoDemotion {
    fn default() -> Self {
        Self { window: 20, max_rate_percent: 10 }
    }
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
            auto_promotion: AutoPromotion::default(),
            auto_demotion: AutoDemotion::default(),
            emergency_kinds: vec![KindName::RevokeSessions, KindName::ForcePasswordReset],
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
///
/// A control's `mode` is an override with a scope: it applies as written only to actions whose
/// kind, grant type and connector are all named in `kinds`, `grant_types` and `connectors`
/// (each required with `mode`). To any other action tagged with the control it can only lower
/// the mode the kind's own setting gives, never raise it, because `control_id` is chosen by the
/// caller and must not lend one control's `auto` to an unrelated change.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ControlSettings {
    /// Mode for actions of this control inside its scope (wins over the kind's there; outside
    /// it, only ever lowers the kind's mode).
    pub mode: Option<Mode>,
    /// Why the mode differs (required with `mode`).
    pub reason: Option<String>,
    /// The action kinds the `mode` applies to (required with `mode`; an empty list names none,
    /// so the mode only ever lowers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kinds: Option<Vec<KindName>>,
    /// The grant types the `mode` applies to (required with `mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_types: Option<Vec<String>>,
    /// The connector ids the `mode` applies to (required with `mode`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub connectors: Option<Vec<String>>,
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
    /// Why this override is in `auto` although it has not earned it (see [`AutoPromotion`]):
    /// an admin's decision, kept in the audit with the settings. Only read while `mode` is
    /// `auto`; cleared when the control is set to another mode or demoted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub promotion_override_reason: Option<String>,
    /// When `mode` last became `auto` (stamped when that change is stored): automatic
    /// demotion judges only the auto actions suggested since, so a control promoted again
    /// starts with a clean slate. Absent: every auto action counts.
    #[serde(default, skip_serializing_if = "Option::is_none", with = "time::serde::rfc3339::option")]
    #[schemars(with = "Option<String>")]
    pub auto_since: Option<time::OffsetDateTime>,
}

impl ControlSettings {
    /// Whether `action` lies inside the scope of this control's mode override: its kind,
    /// grant type and connector are each named.
    pub fn covers(&self, action: &Action) -> bool {
        let kind = action.kind.name();
        self.kinds.as_ref().is_some_and(|k| k.contains(&kind))
            && self.grant_types.as_ref().is_some_and(|g| g.iter().any(|g| g == &action.target.grant_type))
            && self.connectors.as_ref().is_some_and(|c| c.iter().any(|c| c == &action.connector))
    }

    /// The scope keys a mode override lacks (`kinds`, `grant_types`, `connectors`).
    fn missing_scope(&self) -> Vec<&'static str> {
        let mut missing = Vec::new();
        if self.kinds.is_none() {
            missing.push("kinds");
        }
        if self.grant_types.is_none() {
            missing.push("grant_types");
        }
        if self.connectors.is_none() {
            missing.push("connectors");
        }
        missing
    }
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
        if self.auto_demotion.window == 0 || self.auto_demotion.max_rate_percent > 100 {
            return Err(SettingsError::DemotionOutOfRange {
                window: self.auto_demotion.window,
                max_rate_percent: self.auto_demotion.max_rate_percent,
            });
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
            if c.promotion_override_reason.as_deref().is_some_and(|r| r.trim().is_empty()) {
                return Err(SettingsError::EmptyPromotionOverride { control: id.clone() });
            }
            if c.mode.is_some()
                && let Some(key) = c.missing_scope().first()
            {
                return Err(SettingsError::ControlOverrideWithoutScope { control: id.clone(), key });
            }
        }
        Ok(())
    }

    /// Brings settings written by an earlier version up to the rules of this one, and says
    /// what changed (one sentence per change; empty when nothing did).
    ///
    /// A control `mode` stored without a scope applied to every kind. Such an override gets
    /// empty `kinds`, `grant_types` and `connectors` lists: it keeps lowering the mode of the
    /// control's actions, and raises nothing until an admin names what it is for.
    pub fn migrate(&mut self) -> Vec<String> {
        let mut notes = Vec::new();
        for (id, c) in &mut self.controls {
            if c.mode.is_none() {
                continue;
            }
            let missing = c.missing_scope();
            if missing.is_empty() {
                continue;
            }
            c.kinds.get_or_insert_with(Vec::new);
            c.grant_types.get_or_insert_with(Vec::new);
            c.connectors.get_or_insert_with(Vec::new);
            notes.push(format!(
                "control {id}: its mode override named no {}; it now only lowers the mode of its actions \
                 until its kinds, grant_types and connectors are set",
                missing.join(", ")
            ));
        }
        notes
    }

    /// Drops every `promotion_override_reason` of a control whose mode is not `auto`, so an
    /// old justification cannot carry a later promotion; returns the controls cleared.
    pub fn clear_stale_overrides(&mut self) -> Vec<String> {
        let mut cleared = Vec::new();
        for (id, c) in &mut self.controls {
            if c.mode != Some(Mode::Auto) && c.promotion_override_reason.take().is_some() {
                cleared.push(id.clone());
            }
        }
        cleared
    }

    /// Reads settings kept in the store by any version: parses them and applies
    /// [`PolicySettings::migrate`]. Returns the settings and what the migration changed.
    pub fn from_stored(value: serde_json::Value) -> Result<(Self, Vec<String>), serde_json::Error> {
        let mut settings: Self = serde_json::from_value(value)?;
        let notes = settings.migrate();
        Ok((settings, notes))
    }

    /// The mode the kind's own setting gives `action` (kind override, else the default).
    pub fn kind_mode_for(&self, action: &Action) -> Mode {
        self.kinds.get(&action.kind.name()).and_then(|k| k.mode).unwrap_or(self.default_mode)
    }

    /// The mode the settings give `action`. A control override whose scope names the action's
    /// kind, grant type and connector wins; any other control override can only lower the
    /// kind's mode (kind override, else the default).
    pub fn mode_for(&self, action: &Action) -> Mode {
        let kind = self.kind_mode_for(action);
        match self.control_of(action).and_then(|c| c.mode.map(|m| (c, m))) {
            Some((c, mode)) if c.covers(action) => mode,
            Some((_, mode)) => mode.min(kind),
            None => kind,
        }
    }

    /// Why no write may happen for `action` under these settings and `state` right now (the
    /// kill switch, remediation disabled, the action's control disabled); `None` when it may.
    pub fn write_refusal(&self, action: &Action, state: &remediation_core::SafetyState) -> Option<String> {
        if let Some(why) = state.kill_switch_refusal() {
            return Some(why.to_owned());
        }
        if !self.enabled {
            return Some(
                "remediation is disabled; set `enabled = true` under [policy] once modes and limits are reviewed"
                    .to_owned(),
            );
        }
        if let Some(reason) = self.control_of(action).and_then(|c| c.disabled.as_deref()) {
            let id = action.control_id.as_deref().unwrap_or_default();
            return Some(format!("control {id} is disabled: {reason}"));
        }
        None
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

    /// Rollback window of `action`: the kind's setting, else the kind's own default
    /// ([`Self::ENFORCE_ROLLBACK_WINDOW_SECS`] for `enforce`, [`Self::ROTATE_ROLLBACK_WINDOW_SECS`]
    /// for `rotate`), else `rollback_window_secs`.
    pub fn rollback_window_for(&self, action: &Action) -> time::Duration {
        let kind = action.kind.name();
        let kind_default = match kind {
            KindName::Enforce => Some(Self::ENFORCE_ROLLBACK_WINDOW_SECS),
            KindName::Rotate => Some(Self::ROTATE_ROLLBACK_WINDOW_SECS),
            _ => None,
        };
        let secs = self
            .kinds
            .get(&kind)
            .and_then(|k| k.rollback_window_secs)
            .or(kind_default)
            .unwrap_or(self.rollback_window_secs);
        time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX))
    }

    /// The rollback window of `enforce` unless `[policy.kinds.enforce] rollback_window_secs`
    /// says otherwise (30 minutes): a configuration change that breaks something shows
    /// within minutes, and restoring an insecure setting long after is itself a risk.
    pub const ENFORCE_ROLLBACK_WINDOW_SECS: u64 = 1_800;

    /// The rollback window of `rotate` unless `[policy.kinds.rotate] rollback_window_secs`
    /// says otherwise (7 days). It is also the grace period of the old credential: it stays,
    /// inactive, until the window closes, and the follow-up action deletes it then. A week
    /// lets every consumer of the credential show whether it picked up the new one.
    pub const ROTATE_ROLLBACK_WINDOW_SECS: u64 = 7 * 24 * 3_600;
}
