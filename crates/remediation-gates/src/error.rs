//! Errors in policy settings.

/// Settings that cannot be used as they are.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    /// A mode override was given without saying why.
    #[error("the mode override for {scope} has no `reason`; every override must say why it exists")]
    OverrideWithoutReason {
        /// `kind revoke` or `control CIS-1.2`.
        scope: String,
    },
    /// A rollback window outside the supported range.
    #[error("the rollback window for {scope} is {secs}s; it must be between 60s (1 minute) and 2592000s (30 days)")]
    RollbackWindowOutOfRange {
        /// `kind revoke` or `default`.
        scope: String,
        /// The configured value.
        secs: u64,
    },
    /// An approval expiry shorter than a minute.
    #[error("approval_expiry_secs is {secs}; it must be at least 60")]
    ApprovalExpiryTooShort {
        /// The configured value.
        secs: u64,
    },
    /// `emergency_access_max_age_days` of zero.
    #[error("emergency_access_max_age_days is 0; it must be at least 1")]
    ZeroEmergencyAge,
    /// `min_approvals` of zero.
    #[error("min_approvals for {scope} is 0; it must be at least 1")]
    ZeroApprovals {
        /// `kind revoke` or `default`.
        scope: String,
    },
    /// A control's mode override that does not say which kinds, grant types and connectors
    /// it is for.
    #[error(
        "the mode override of control {control} has no `{key}`; a control override must name the `kinds`, \
         `grant_types` and `connectors` it applies to (an empty list names none)"
    )]
    ControlOverrideWithoutScope {
        /// The control id.
        control: String,
        /// The first missing key (`kinds`, `grant_types` or `connectors`).
        key: &'static str,
    },
    /// `auto_demotion` that judges no action or allows more than all of them to go wrong.
    #[error(
        "auto_demotion judges the last {window} auto actions with at most {max_rate_percent}% going wrong; \
         window must be at least 1 and max_rate_percent at most 100"
    )]
    DemotionOutOfRange {
        /// The window.
        window: u32,
        /// The rate.
        max_rate_percent: u32,
    },
    /// A control's `promotion_override_reason` that is blank.
    #[error("control {control} has a blank `promotion_override_reason`; an override must say why")]
    EmptyPromotionOverride {
        /// The control id.
        control: String,
    },
}

impl SettingsError {
    /// The dotted key under `[policy]` the error is about (`controls."CIS-1.2".kinds`), when
    /// one key is to blame.
    pub fn key(&self) -> Option<String> {
        match self {
            Self::ControlOverrideWithoutScope { control, key } => Some(format!("controls.\"{control}\".{key}")),
            Self::EmptyPromotionOverride { control } => {
                Some(format!("controls.\"{control}\".promotion_override_reason"))
            }
            Self::DemotionOutOfRange { .. } => Some("auto_demotion".to_owned()),
            Self::OverrideWithoutReason { scope } => {
                let (table, name) = scope.split_once(' ')?;
                let table = if table == "kind" { "kinds" } else { "controls" };
                Some(format!("{table}.\"{name}\".reason"))
            }
            _ => None,
        }
    }
}
