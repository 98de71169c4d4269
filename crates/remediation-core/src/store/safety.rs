//! [`SafetyStore`]: the installation's safety switches and settings.

use async_trait::async_trait;

use super::{SettingsRecord, StoreError};
use crate::SafetyState;

/// The kill switch, the circuit breaker, emergency-access facts and the policy settings, as
/// one document.
#[async_trait]
pub trait SafetyStore: Send + Sync {
    /// The stored safety state (one committed snapshot); everything off and emergency access
    /// never verified when none was ever written.
    async fn safety_state(&self) -> Result<SafetyState, StoreError>;

    /// One serializable step: when the stored state still equals `expected`, replaces it with
    /// `new` and appends `record` to the audit log; otherwise fails with
    /// [`StoreError::SafetyConflict`] and writes nothing.
    async fn update_safety_state(
        &self,
        expected: &SafetyState,
        new: &SafetyState,
        record: &SettingsRecord,
    ) -> Result<(), StoreError>;
}
