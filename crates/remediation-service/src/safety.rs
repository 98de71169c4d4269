//! Installation-wide reads shared by the adapters: the policy settings in force, the kill
//! switch, and the audit trail (pages and chain verification).

use remediation_audit::AuditVerification;
use remediation_core::{AuditFilter, AuditRecord, ChainReport};
use remediation_gates::PolicySettings;
use remediation_limiter::Limits;
use remediation_runtime::Runtime;

use crate::ServiceError;

/// The policy settings in force, where they come from, and the limits.
#[derive(Debug, Clone)]
pub struct Settings {
    /// `store` once changed, else `config`.
    pub source: &'static str,
    /// The settings the engine in force enforces.
    pub policy: PolicySettings,
    /// The blast-radius limits.
    pub limits: Limits,
}

/// The settings in force (read from the store when changed there, so local and server
/// answers agree).
pub async fn settings(runtime: &Runtime) -> Result<Settings, ServiceError> {
    let active = runtime.active().await?;
    Ok(Settings { source: active.source.as_str(), policy: active.settings, limits: runtime.limits().clone() })
}

/// Whether the kill switch is on.
pub async fn kill_switch(runtime: &Runtime) -> Result<bool, ServiceError> {
    Ok(runtime.active().await?.engine.safety_state().await?.kill_switch)
}

/// Verifies the whole audit chain and its checkpoint, and the log against its latest signed
/// tree head ([`crate::log::verify_tree_head`]); tampering is a report, not an error. Also
/// counts the entries written but not yet sequenced, which the check cannot cover yet.
pub async fn audit_verify(runtime: &Runtime) -> Result<AuditVerification, ServiceError> {
    let chain: ChainReport = runtime.store().verify_audit().await?;
    let tree_head = crate::log::verify_tree_head(runtime).await?;
    let unsequenced = runtime.store().unsequenced().await?;
    Ok(AuditVerification { chain, tree_head, unsequenced })
}

/// One page of audit records passing `filter` after `after_seq`, by `seq`.
pub async fn audit_page(
    runtime: &Runtime,
    filter: &AuditFilter,
    after_seq: Option<u64>,
    limit: usize,
) -> Result<Vec<AuditRecord>, ServiceError> {
    Ok(runtime.store().audit_page(filter, after_seq, limit).await?)
}
