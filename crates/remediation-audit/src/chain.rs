//! Chain verification: finds the first record that was edited, deleted, inserted or moved.

use remediation_core::hash::{GENESIS_HASH, HexDigest};
use remediation_core::{Break, BreakKind, ChainReport};

use crate::{AuditKey, AuditRecord, AuditRecordExt as _, Checkpoint, judge_checkpoint};

/// Verifies a chain one record at a time, for callers that read records from a cursor and
/// may find problems of their own (unreadable rows, disagreeing columns).
///
/// [`verify_chain`] is this over an iterator.
#[derive(Debug, Clone, Default)]
pub struct ChainVerifier {
    records: u64,
    last: Option<(u64, HexDigest)>,
    first_break: Option<Break>,
}

impl ChainVerifier {
    /// A verifier that has seen nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// A verifier that resumes after an archived prefix: the next record must have `seq` =
    /// `seq` + 1 and `prev_hash` = `hash`, the last archived record's.
    pub fn resuming(seq: u64, hash: HexDigest) -> Self {
        Self { records: 0, last: Some((seq, hash)), first_break: None }
    }

    /// Checks the next record: its `seq` first, then its `prev_hash` link, then its own hash.
    /// Once a break is found, later records are only counted.
    pub fn push(&mut self, record: &AuditRecord) {
        self.records += 1;
        if self.first_break.is_none()
            && let Some(problem) = self.check(record)
        {
            self.first_break = Some(Break { position: self.records, seq: record.seq, problem });
        }
        self.last = Some((record.seq, record.hash.clone()));
    }

    /// Counts a record the caller could not read, which breaks the chain here (unless it broke
    /// earlier). `stored_hash` is whatever hash the caller has for it, reported as the head
    /// if it is the last record.
    pub fn push_unreadable(&mut self, seq: u64, stored_hash: HexDigest, reason: String) {
        self.records += 1;
        self.last = Some((seq, stored_hash));
        self.flag(BreakKind::Unreadable { reason });
    }

    /// Records a problem the caller found with the record pushed last, unless the chain broke
    /// earlier (or at that record already). Does nothing before the first push.
    pub fn flag(&mut self, problem: BreakKind) {
        if let (None, Some((seq, _))) = (&self.first_break, &self.last) {
            self.first_break = Some(Break { position: self.records, seq: *seq, problem });
        }
    }

    /// The first break found so far.
    pub fn first_break(&self) -> Option<&Break> {
        self.first_break.as_ref()
    }

    /// The report for everything pushed, without a checkpoint
    /// (`CheckpointVerdict::NotConfigured`).
    pub fn finish(self) -> ChainReport {
        self.finish_with_checkpoint(None, None)
    }

    /// The report for everything pushed, with the `stored` checkpoint judged under `key`
    /// against the last record pushed ([`judge_checkpoint`]).
    pub fn finish_with_checkpoint(self, key: Option<&AuditKey>, stored: Option<&Checkpoint>) -> ChainReport {
        let checkpoint = judge_checkpoint(key, stored, self.last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())));
        ChainReport {
            records: self.records,
            head: self.last.map(|(_, hash)| hash),
            first_break: self.first_break,
            checkpoint,
        }
    }

    fn check(&self, record: &AuditRecord) -> Option<BreakKind> {
        let (expected_seq, expected_prev) = match &self.last {
            None => (1, GENESIS_HASH),
            Some((seq, hash)) => (seq.saturating_add(1), hash.as_str()),
        };
        if record.seq != expected_seq {
            return Some(BreakKind::SeqGap { expected: expected_seq, found: record.seq });
        }
        if record.prev_hash != expected_prev {
            return Some(BreakKind::PrevHashMismatch);
        }
        match record.compute_hash() {
            Ok(hash) if hash == record.hash => None,
            Ok(_) => Some(BreakKind::HashMismatch),
            Err(_) => {
                Some(BreakKind::Unreadable { reason: "its content cannot be written as canonical JSON".to_owned() })
            }
        }
    }
}

/// Verifies a whole chain, in the order given, and reports its first broken link.
///
/// Per record, in this order: `seq` must be the previous record's plus one (1 for the
/// first); `prev_hash` must be the previous record's `hash` ([`GENESIS_HASH`] for the first);
/// `hash` must equal the hash recomputed from the content.
///
/// The chain alone cannot reveal records cut off its end, or a chain rewritten from the
/// start: [`verify_chain_with_checkpoint`] also compares a checkpoint.
pub fn verify_chain(records: impl IntoIterator<Item = AuditRecord>) -> ChainReport {
    verify_chain_with_checkpoint(records, None, None)
}

/// [`verify_chain`], then judges the `checkpoint` under `key` against the last record
/// ([`judge_checkpoint`]), so that a truncated or rewritten chain is reported too.
pub fn verify_chain_with_checkpoint(
    records: impl IntoIterator<Item = AuditRecord>,
    key: Option<&AuditKey>,
    checkpoint: Option<&Checkpoint>,
) -> ChainReport {
    let mut verifier = ChainVerifier::new();
    for record in records {
        verifier.push(&record);
    }
    verifier.finish_with_checkpoint(key, checkpoint)
}
