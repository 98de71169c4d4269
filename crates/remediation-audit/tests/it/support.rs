//! Builders of transition bodies and sealed chains for the tests.

use remediation_audit::AuditRecord;
use remediation_audit::AuditRecordExt as _;
use remediation_core::{ActionId, State, TransitionRecord};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};

/// The action every test record belongs to.
pub(crate) fn action_id() -> ActionId {
    ActionId("01900000-0000-7000-8000-0000000000aa".parse().expect("valid uuid"))
}

/// A plain transition body, `minutes` after a fixed instant.
pub(crate) fn body(minutes: i64) -> TransitionRecord {
    TransitionRecord {
        action_id: action_id(),
        from: Some(State::PendingApproval),
        to: State::PendingApproval,
        event: "approve".to_owned(),
        actor: format!("local:approver{minutes}"),
        credential: None,
        initiated_by: "local:alice".to_owned(),
        decided_by: Some(format!("local:approver{minutes}")),
        at: at(minutes),
        comment: None,
        connector: "sandbox".to_owned(),
        control_id: Some("CIS-1.1".to_owned()),
        finding_id: None,
        before_hash: None,
        after_hash: None,
        plan_hash: Some("ab".repeat(32)),
        request_ids: Vec::new(),
        rollback_expires_at: None,
        before_state: None,
        after_state: None,
        limit: None,
    }
}

/// A fixed instant plus `minutes`.
pub(crate) fn at(minutes: i64) -> OffsetDateTime {
    datetime!(2026-01-02 03:04:05 UTC) + Duration::minutes(minutes)
}

/// Seals `bodies` into a chain.
pub(crate) fn seal_all<B: Into<remediation_audit::AuditBody>>(bodies: impl IntoIterator<Item = B>) -> Vec<AuditRecord> {
    let mut chain: Vec<AuditRecord> = Vec::new();
    for body in bodies {
        let record = AuditRecord::seal(chain.last(), body).expect("seal");
        chain.push(record);
    }
    chain
}

/// A chain of `n` records.
pub(crate) fn chain(n: i64) -> Vec<AuditRecord> {
    seal_all((0..n).map(body))
}
