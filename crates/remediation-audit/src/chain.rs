//! Chain verification: finds the first record that was edited, deleted, inserted or moved.

use std::fmt;

use remediation_core::hash::{GENESIS_HASH, HexDigest};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{AuditKey, AuditRecord, Checkpoint, CheckpointVerdict};

/// The result of verifying a chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainReport {
    /// How many records were examined (all of them, also after a break).
    pub records: u64,
    /// The `hash` stored in the last record examined; `None` for an empty chain.
    ///
    /// Deleting records at the end, or rewriting the whole chain, leaves a chain that
    /// verifies on its own: only the [`checkpoint`](Self::checkpoint) reveals those.
    pub head: Option<HexDigest>,
    /// The first broken link, if any.
    pub first_break: Option<Break>,
    /// What the checkpoint kept beside the chain says about its last record
    /// ([`CheckpointVerdict::NotConfigured`] when no key was given).
    #[serde(default)]
    pub checkpoint: CheckpointVerdict,
}

impl ChainReport {
    /// True when no link is broken and the checkpoint, if one is configured, matches the
    /// chain's last record.
    pub fn is_intact(&self) -> bool {
        self.first_break.is_none() && self.checkpoint.is_ok()
    }
}

impl fmt::Display for ChainReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.first_break, &self.head) {
            (Some(b), _) => write!(
                f,
                "audit chain broken: {b}; records from this one on cannot be trusted: compare them with an export or a backup"
            )?,
            (None, _) if !self.checkpoint.is_ok() => f.write_str("audit chain broken")?,
            (None, Some(head)) => write!(f, "audit chain intact: {} records, head {head}", self.records)?,
            (None, None) => f.write_str("audit chain intact: no records")?,
        }
        write!(f, "; {}", self.checkpoint)
    }
}

/// The first record at which a chain stops being trustworthy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct Break {
    /// 1-based index of the record in the sequence examined.
    pub position: u64,
    /// The `seq` the record itself claims.
    pub seq: u64,
    /// What is wrong with it.
    pub problem: BreakKind,
}

/// What is wrong with a record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum BreakKind {
    /// The record's `seq` is not the previous record's plus one (1 for the first record):
    /// records were deleted, inserted or reordered.
    SeqGap {
        /// The `seq` that should be here.
        expected: u64,
        /// The `seq` the record has.
        found: u64,
    },
    /// The record's `prev_hash` is not the previous record's `hash` ([`GENESIS_HASH`] for the
    /// first): a record was deleted or reordered, or the previous record was edited and its
    /// hash recomputed.
    PrevHashMismatch,
    /// The hash recomputed from the record's content differs from its stored `hash`: the
    /// record was edited.
    HashMismatch,
    /// The record cannot be read or hashed at all (reported by stores that keep records as
    /// text, and for content that cannot be canonicalised).
    Unreadable {
        /// Why, in plain words.
        reason: String,
    },
    /// A store keeps some of the record's fields in separate columns as well, and a column
    /// disagrees with the record: the row was edited.
    StoredColumnMismatch {
        /// The column's name.
        column: String,
    },
}

impl fmt::Display for Break {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Break { position, seq, problem } = self;
        match problem {
            BreakKind::SeqGap { expected, found } => write!(
                f,
                "record {position} has seq {found} where seq {expected} was expected: records were deleted, inserted or reordered"
            ),
            BreakKind::PrevHashMismatch if *position == 1 => write!(
                f,
                "record 1 (seq {seq}) does not start the chain: its prev_hash is not the genesis hash (64 zeros), so records before it were removed or it was edited"
            ),
            BreakKind::PrevHashMismatch => write!(
                f,
                "record {position} (seq {seq}) does not follow record {}: its prev_hash is not that record's hash, so a record was deleted, inserted or reordered, or the record before it was edited and its hash recomputed",
                position - 1
            ),
            BreakKind::HashMismatch => {
                write!(f, "record {position} (seq {seq}) was edited: its hash does not match its content")
            }
            BreakKind::Unreadable { reason } => {
                write!(f, "record {position} (seq {seq}) was edited or corrupted: {reason}")
            }
            BreakKind::StoredColumnMismatch { column } => write!(
                f,
                "record {position} (seq {seq}) was edited: the store's `{column}` column does not match the record's content"
            ),
        }
    }
}

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
    /// ([`CheckpointVerdict::NotConfigured`]).
    pub fn finish(self) -> ChainReport {
        self.finish_with_checkpoint(None, None)
    }

    /// The report for everything pushed, with the `stored` checkpoint judged under `key`
    /// against the last record pushed ([`CheckpointVerdict::judge`]).
    pub fn finish_with_checkpoint(self, key: Option<&AuditKey>, stored: Option<&Checkpoint>) -> ChainReport {
        let checkpoint =
            CheckpointVerdict::judge(key, stored, self.last.as_ref().map(|(seq, hash)| (*seq, hash.as_str())));
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
/// ([`CheckpointVerdict::judge`]), so that a truncated or rewritten chain is reported too.
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
