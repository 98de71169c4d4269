//! The audit trail of the remediation project: every lifecycle transition sealed into a
//! SHA-256 hash chain, verification that finds the first record edited, deleted, inserted or
//! moved, the JSONL export, and the verifiable log over the same records (a Merkle tree with
//! inclusion and consistency proofs and Ed25519-signed tree heads, [`merkle`] and
//! [`TreeHead`]).
//!
//! Stores append records with [`seal`] (the body onto the chain head) in the same transaction as the state
//! change they describe; `remediate audit verify` and anyone holding an export re-check them
//! with [`verify_chain`].
//!
//! # The hash rule (contract)
//!
//! A record is one flat JSON object with these keys:
//!
//! | key | JSON value |
//! |---|---|
//! | `seq` | integer, the record's 1-based position in the chain |
//! | `action_id` | string, the action's UUID (lowercase, hyphenated) |
//! | `from` | string (state name) or `null` when the action was created |
//! | `to` | string (state name) |
//! | `event`, `actor`, `initiated_by`, `connector` | string |
//! | `decided_by`, `comment`, `control_id`, `finding_id` | string or `null` |
//! | `before_hash`, `after_hash`, `plan_hash` | string (64 lowercase hex) or `null` |
//! | `request_ids` | array of strings, possibly empty |
//! | `at` | string, RFC 3339 |
//! | `rollback_expires_at` | string, RFC 3339, or `null` |
//! | `prev_hash` | string, 64 lowercase hex |
//! | `hash` | string, 64 lowercase hex |
//!
//! Every key is always present: absent values are written as `null`, never omitted.
//! Timestamps are written by the `time` crate's RFC 3339 formatter
//! (`time::serde::rfc3339`) with the offset they were recorded in: UTC is written `Z`,
//! and fractional seconds appear only when non-zero, without trailing zeros
//! (`2026-01-02T03:04:05Z`, `2026-01-02T03:04:05.25Z`).
//!
//! 1. `body` = the record's object **without the `hash` key** (all 19 other keys).
//! 2. `canonical` = `body` serialised as RFC 8785 JSON (JSON Canonicalization Scheme): keys
//!    sorted by UTF-16 code units, no whitespace, strings with minimal escaping, integers
//!    as plain digits. Encoded as UTF-8.
//! 3. `hash` = SHA-256 of `canonical`, as 64 lowercase hex characters.
//! 4. The first record has `seq` 1 and `prev_hash` = 64 zeros
//!    ([`remediation_core::hash::GENESIS_HASH`]); record `n + 1` has `seq` = n + 1 and
//!    `prev_hash` = record n's `hash`.
//!
//! To re-check an export in another language: for each line, parse the object, take out
//! `hash`, canonicalise the rest, hash it and compare; then check `seq` and `prev_hash`
//! against the line before. Records hold only strings, integers (`seq`, below 2^53), `null`
//! and arrays of strings, under ASCII keys: no floats, no booleans, no nested objects. For
//! such values RFC 8785 reduces to sorted keys, no whitespace, minimal string escaping and
//! integers as plain digits, so Python's
//! `json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")`
//! produces exactly the hashed bytes. `tests/verify_audit.py` in the repository is such a
//! checker (Python 3 standard library only); `tests/vectors/` holds a committed chain and the
//! canonical body of its first record, with their hashes.
//!
//! Parsing ([`AuditRecord::from_json`], [`read_jsonl`]) is strict so that such a script and
//! this crate always hash the same bytes: an unknown key, a missing key, or a value this crate
//! would write differently (say `+00:00` for `Z`) is an error.
//!
//! # The checkpoint (contract)
//!
//! The chain alone cannot reveal records cut off its end, or a chain rewritten from the
//! start with every hash recomputed. A store therefore keeps, beside the chain and in the same
//! transaction as every append, a [`Checkpoint`] of the chain head: `count` (the last record's
//! `seq`), `head` (its `hash`) and `mac`, the lowercase hex HMAC-SHA256 under a secret
//! [`AuditKey`] of the UTF-8 bytes
//!
//! ```text
//! remediation-audit-checkpoint-v1\n{count}\n{head}
//! ```
//!
//! ([`checkpoint_mac_input`]; `count` in decimal, no trailing newline). Forging a checkpoint
//! for a shortened or rewritten chain needs the key. [`verify_chain_with_checkpoint`] and
//! [`ChainVerifier::finish_with_checkpoint`] report the result as a [`CheckpointVerdict`] in
//! [`ChainReport::checkpoint`]; [`ChainReport::is_intact`] requires it to match when a key is
//! configured. The checkpoint is not part of an export: the key never leaves the installation.
//!
//! # The verifiable log (contract)
//!
//! The HMAC checkpoint needs its secret key to be checked. The records are therefore also the
//! leaves of a Merkle tree, as in Certificate Transparency (RFC 6962, RFC 9162 §2.1), whose
//! signed tree heads anyone holding the public keys can check, without any secret:
//!
//! - **Entry and leaf.** The entry of a record is its canonical JSON **with** `hash` (the
//!   bytes of one line of a JSONL export, without the `\n`,
//!   [`AuditRecordExt::to_canonical_json`]); its leaf hash is `SHA-256(0x00 || entry)`
//!   ([`merkle::record_leaf_hash`]). The record with `seq` s is leaf s − 1.
//! - **Nodes and root.** An inner node is `SHA-256(0x01 || left || right)`; the root of n
//!   leaves is RFC 9162's MTH: SHA-256 of no bytes for n = 0, the leaf hash for n = 1, else the
//!   node of the roots of the first k leaves and of the rest, k the largest power of two below
//!   n ([`merkle::root`]).
//! - **Proofs.** Inclusion proofs (audit paths) and consistency proofs are generated and
//!   verified exactly as RFC 9162 §2.1.3 and §2.1.4 describe ([`InclusionProof`],
//!   [`ConsistencyProof`]); a consistency proof from the empty tree is refused, as in
//!   RFC 6962. Proofs are generated from a [`merkle::LeafHashSource`]: O(n) hashing per proof
//!   from leaf hashes alone, O(log n) reads for a source that keeps aligned subtree hashes.
//! - **Signed tree head.** A [`TreeHead`] (`tree_size`, `root_hash`, `timestamp` in UTC,
//!   `key_id`) is signed with Ed25519 (RFC 8032, pure Ed25519, no prehash) over the UTF-8
//!   bytes
//!
//!   ```text
//!   remediation-audit-tree-head-v1\n{key_id}\n{tree_size}\n{root_hash}\n{timestamp}
//!   ```
//!
//!   (no trailing newline; [`TreeHead::signed_bytes`]): `tree_size` in decimal, `root_hash` as
//!   64 lowercase hex, `timestamp` in RFC 3339 exactly as the JSON writes it (UTC, `Z`,
//!   fractional seconds only when non-zero). The signature is 128 lowercase hex characters.
//! - **Key id.** The first 8 bytes of SHA-256 of the 32-byte public key, as 16 lowercase hex
//!   characters ([`key_id`]). A [`PublicKeySet`] publishes every key ever used, so heads
//!   signed before a rotation still verify; a listed key whose id is not that of its public
//!   key is refused.
//! - **Signing.** [`LogSigningKey::sign_next`] signs a new head only after checking that it
//!   extends the previous one (its consistency proof). The key lives in its own file
//!   (`remediation-audit-ed25519-signing-key-v1`, then the 32-byte seed in hex), created with
//!   mode 0600 and refused when other users may read it.
//!
//! An auditor keeps the last signed head it saw; later, [`verify_extends`] checks a newer
//! head and the consistency proof between them. A log cut short, an entry rewritten (even with
//! its hash chain recomputed) or a fork shown to someone else all fail that check.
//! `tests/verify_log.py` in the repository verifies heads, inclusion and consistency proofs
//! with the Python standard library only; `tests/vectors/ct/` holds published Certificate
//! Transparency vectors this crate passes, `tests/vectors/log/` our own.
//!
//! # Example
//!
//! ```
//! use remediation_audit::{AuditRecord, AuditRecordExt, BreakKind, verify_chain};
//! use remediation_core::{ActionId, State, TransitionRecord};
//! use time::macros::datetime;
//!
//! let body = |from, to, event: &str| TransitionRecord {
//!     action_id: ActionId("01900000-0000-7000-8000-000000000001".parse().expect("a valid UUID")),
//!     from,
//!     to,
//!     event: event.to_owned(),
//!     actor: "local:alice".to_owned(),
//!     credential: None,
//!     initiated_by: "local:alice".to_owned(),
//!     decided_by: None,
//!     at: datetime!(2026-01-02 03:04:05 UTC),
//!     comment: None,
//!     connector: "sandbox".to_owned(),
//!     control_id: None,
//!     finding_id: None,
//!     before_hash: None,
//!     after_hash: None,
//!     plan_hash: None,
//!     request_ids: Vec::new(),
//!     rollback_expires_at: None,
//!     before_state: None,
//!     after_state: None,
//!     limit: None,
//! };
//! let first = AuditRecord::seal(None, body(None, State::PendingApproval, "suggest"))?;
//! let second = AuditRecord::seal(Some(&first), body(Some(State::PendingApproval), State::Cancelled, "cancel"))?;
//! assert_eq!(second.prev_hash, first.hash);
//! assert!(verify_chain([first.clone(), second.clone()]).is_intact());
//!
//! // Editing a record breaks the chain at that record.
//! let mut edited = second;
//! edited.body.transition_mut().expect("a transition").actor = "local:mallory".to_owned();
//! let report = verify_chain([first, edited]);
//! let broken = report.first_break.expect("the edit is detected");
//! assert_eq!((broken.position, broken.problem.clone()), (2, BreakKind::HashMismatch));
//! assert_eq!(broken.to_string(), "record 2 (seq 2) was edited: its hash does not match its content");
//! # Ok::<(), remediation_audit::AuditError>(())
//! ```

mod bundle;
mod chain;
mod checkpoint;
mod error;
mod file_sink;
mod jsonl;
pub mod merkle;
mod record;
mod sink;
mod subtree;
mod tree_head;

pub use bundle::{AuditVerification, ConsistencyBundle, InclusionBundle, RecordProof, TreeHeadVerdict};
pub use chain::{ChainVerifier, verify_chain, verify_chain_with_checkpoint};
pub use checkpoint::{AuditKey, CHECKPOINT_MAC_CONTEXT, Checkpoint, checkpoint_mac_input, judge_checkpoint};
pub use error::AuditError;
pub use file_sink::JsonlFileSink;
pub use jsonl::{read_jsonl, write_jsonl};
pub use merkle::{ConsistencyProof, InclusionProof, MerkleHash, ProofError, ProveError};
pub use record::{AuditRecordExt, PreparedBody, seal, seal_prepared};
/// The record and report types, defined in core so every store trait can name them.
pub use remediation_core::{AuditBody, AuditRecord, Break, BreakKind, ChainHead, ChainReport, CheckpointVerdict};
pub use sink::AuditSink;
pub use subtree::{BLOCK_LEAVES, CachedLeaves, SubtreeCache};
pub use tree_head::{
    ALGORITHM_ED25519, ExtendsError, LogSigningKey, PublicKeySet, PublishedKey, SIGNING_KEY_FILE_HEADER,
    SignedTreeHead, TREE_HEAD_CONTEXT, TreeHead, TreeHeadError, key_id, verify_extends,
};
