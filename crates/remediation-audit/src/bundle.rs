//! What an auditor receives: proofs bundled with the records and tree heads they are about, as
//! `remediate audit prove` and `audit consistency` print them and the API answers. Each part
//! has the exact form `tests/verify_log.py` reads.

use remediation_core::AuditRecord;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::{ConsistencyProof, InclusionProof, SignedTreeHead};

/// One record and its inclusion proof.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RecordProof {
    /// The record as stored (one line of an export). Its leaf hash, `SHA-256(0x00 ||
    /// canonical JSON)`, must equal `proof.leaf_hash`: if it does not, the record was rewritten
    /// after it was logged.
    pub record: AuditRecord,
    /// The proof that the record's leaf is in the tree of `proof.tree_size` records.
    pub proof: InclusionProof,
}

/// Inclusion proofs of some records in the tree of one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionBundle {
    /// The size of the tree every proof is for.
    pub tree_size: u64,
    /// The signed tree head of that size, when the log signed one (always for the latest
    /// head); an auditor may check the proofs against a head of that size they hold instead.
    pub tree_head: Option<SignedTreeHead>,
    /// One proof per record, by `seq`.
    pub proofs: Vec<RecordProof>,
}

/// A consistency proof between two tree sizes, with the signed heads the log holds for them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyBundle {
    /// The signed head of the older size, when the log still holds one. An auditor checks the
    /// proof against the head they saw themselves, never only against this one.
    pub old_head: Option<SignedTreeHead>,
    /// The signed head of the newer size.
    pub tree_head: SignedTreeHead,
    /// The proof that the newer tree extends the older one.
    pub proof: ConsistencyProof,
}

/// What the latest signed tree head says about the log as stored: `remediate audit verify`
/// checks its signature, that the leaf hashes kept give its root, and that each record still
/// stored hashes to its leaf.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum TreeHeadVerdict {
    /// No tree head is signed (no signing key is configured, or nothing was signed yet).
    #[default]
    NotSigned,
    /// The head verifies under its published key, the log's leaves give its root, and every
    /// record still stored hashes to its leaf.
    Matches {
        /// The head's size.
        tree_size: u64,
        /// The key that signed it.
        key_id: String,
    },
    /// The head's signature does not verify under the published keys: it was forged, or a
    /// key was removed from the published set.
    BadSignature {
        /// The head's size.
        tree_size: u64,
        /// Why, in plain words.
        reason: String,
    },
    /// The log holds fewer leaves than the head: records were cut off the log.
    Truncated {
        /// The head's size.
        tree_size: u64,
        /// The leaves the log holds.
        log_size: u64,
    },
    /// The first `tree_size` leaves do not give the head's root: leaves were rewritten.
    RootMismatch {
        /// The head's size.
        tree_size: u64,
        /// The signed root.
        signed_root: String,
        /// The root of the leaves as stored.
        actual_root: String,
    },
    /// A stored record does not hash to its leaf: it was rewritten after it was logged.
    LeafMismatch {
        /// The record's `seq`.
        seq: u64,
    },
}

impl TreeHeadVerdict {
    /// True for [`TreeHeadVerdict::NotSigned`] and [`TreeHeadVerdict::Matches`].
    pub fn is_ok(&self) -> bool {
        matches!(self, TreeHeadVerdict::NotSigned | TreeHeadVerdict::Matches { .. })
    }
}

impl std::fmt::Display for TreeHeadVerdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeHeadVerdict::NotSigned => f.write_str("tree head: none signed (no signing key configured)"),
            TreeHeadVerdict::Matches { tree_size, key_id } => {
                write!(f, "tree head: matches ({tree_size} records, signed by key {key_id})")
            }
            TreeHeadVerdict::BadSignature { tree_size, reason } => {
                write!(f, "tree head: the signed head of {tree_size} records does not verify: {reason}")
            }
            TreeHeadVerdict::Truncated { tree_size, log_size } => write!(
                f,
                "tree head: records were cut off the log: the signed head has {tree_size} records, the log {log_size}"
            ),
            TreeHeadVerdict::RootMismatch { tree_size, signed_root, actual_root } => write!(
                f,
                "tree head: the log was rewritten: the first {tree_size} leaves give root {actual_root}, the signed head {signed_root}"
            ),
            TreeHeadVerdict::LeafMismatch { seq } => {
                write!(f, "tree head: record {seq} was rewritten after it was logged: it does not hash to its leaf")
            }
        }
    }
}

/// `remediate audit verify`: the hash chain and its checkpoint, and the latest signed tree head.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditVerification {
    /// The chain and its checkpoint.
    #[serde(flatten)]
    pub chain: remediation_core::ChainReport,
    /// The latest signed tree head against the log.
    #[serde(default)]
    pub tree_head: TreeHeadVerdict,
    /// Entries written but not yet sequenced when the log was checked: the sequencer seals
    /// them within seconds, and this check does not cover them. They do not make it fail.
    #[serde(default)]
    pub unsequenced: u64,
}

impl AuditVerification {
    /// True when the chain is intact and the tree head reveals no tampering (entries not yet
    /// sequenced do not count against it).
    pub fn is_intact(&self) -> bool {
        self.chain.is_intact() && self.tree_head.is_ok()
    }

    /// What to say about the entries not yet sequenced; `None` when none wait.
    pub fn unsequenced_note(&self) -> Option<String> {
        match self.unsequenced {
            0 => None,
            1 => Some("1 entry written but not yet sequenced (the sequencer seals it within seconds; it is not covered by this check)".to_owned()),
            n => Some(format!(
                "{n} entries written but not yet sequenced (the sequencer seals them within seconds; they are not covered by this check)"
            )),
        }
    }
}
