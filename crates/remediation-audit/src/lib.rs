//! The audit trail of the remediation project: every lifecycle transition sealed into a
//! SHA-256 hash chain, verification that finds the first record edited, deleted, inserted or
//! moved, and the JSONL export.
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

mod chain;
mod checkpoint;
mod error;
mod jsonl;
mod record;

pub use chain::{ChainVerifier, verify_chain, verify_chain_with_checkpoint};
pub use checkpoint::{AuditKey, CHECKPOINT_MAC_CONTEXT, Checkpoint, checkpoint_mac_input, judge_checkpoint};
pub use error::AuditError;
pub use jsonl::{read_jsonl, write_jsonl};
pub use record::{AuditRecordExt, seal};
/// The record and report types, defined in core so every store trait can name them.
pub use remediation_core::{AuditBody, AuditRecord, Break, BreakKind, ChainHead, ChainReport, CheckpointVerdict};
