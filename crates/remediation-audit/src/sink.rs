//! [`AuditSink`]: where the audit trail is shipped as it grows (a log shipper's file, a
//! JetStream subject, a signed webhook, an embedder's SIEM).

use async_trait::async_trait;
use remediation_core::{AuditRecord, Undelivered};

/// A destination for the sequenced audit log.
///
/// The relay that delivers events feeds audit sinks too: from the sink's high-water mark, in
/// `seq` order, at least once (a crash between the receiver's acknowledgement and the mark's
/// move hands the same records over again). Records are the chain's own, `seq`, `prev_hash`
/// and `hash` included, so a receiver detects a gap (a `seq` that is not the last plus one) or
/// a duplicate (a `seq` it has) and can verify the chain it received with
/// [`crate::verify_chain`].
///
/// Implement it to ship the trail to your own SIEM; a record reported delivered must be
/// durable at the receiver. Return [`remediation_core::DeliveryError::Transient`] for what may
/// succeed later (the relay retries without limit in time and the mark waits) and
/// [`remediation_core::DeliveryError::Permanent`] for a record the receiver will never take
/// (the relay parks it for this sink, with the reason, and goes on).
#[async_trait]
pub trait AuditSink: Send + Sync {
    /// Delivers `records` (consecutive, by `seq`): `Ok` when every one was acknowledged, else
    /// how many were and why the next one was not.
    async fn deliver(&self, records: &[AuditRecord]) -> Result<(), Undelivered>;
}
