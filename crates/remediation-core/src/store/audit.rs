//! [`AuditLog`]: the append-only, hash-chained audit log, and the record types it holds.
//!
//! The hashing rule, sealing and verification live in `remediation-audit`; these are the
//! types every store and reader shares.

use std::fmt;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{SettingsRecord, StoreError, TransitionRecord};
use crate::ActionId;
use crate::hash::HexDigest;

/// The head of a chain as a store keeps it beside the log (one small row per tenant), so
/// sealing the next entry never re-reads or re-parses the previous record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ChainHead {
    /// The last record's `seq`.
    pub seq: u64,
    /// The last record's `hash`.
    pub hash: HexDigest,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// Only records of this action.
    pub action: Option<ActionId>,
    /// Only records whose `at` is at or after this.
    pub since: Option<OffsetDateTime>,
}

/// The audit log: every state change and installation-wide change, sealed into one hash chain
/// per tenant.
///
/// Writers append an entry in the same transaction as the change it records, without reading
/// the chain head; a sequencer assigns `seq`, `prev_hash` and `hash` in order. A store may
/// sequence at the end of each write transaction (the embedded store does), so a committed
/// change is always sequenced; a store with several writers may sequence in batches, and
/// then reads see only sequenced entries.
#[async_trait]
pub trait AuditLog: Send + Sync {
    /// Sequenced records passing `filter` with `seq` greater than `after_seq`, by `seq`, at
    /// most `limit` (one committed snapshot; by the `seq` index, never the whole log).
    ///
    /// Fails when a stored record cannot be parsed; [`AuditLog::verify_audit`] reports that as
    /// a broken chain instead.
    async fn audit_page(
        &self,
        filter: &AuditFilter,
        after_seq: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError>;

    /// Verifies the whole chain as stored, in one read snapshot: every link and hash, the
    /// stored columns against the records, and the checkpoint when the store has a key. A
    /// tampered chain is reported in the [`ChainReport`], not as an error.
    async fn verify_audit(&self) -> Result<ChainReport, StoreError>;

    /// Seals a first checkpoint over the chain as it stands, for a log whose records predate
    /// checkpoints; only when the chain verifies, never replacing a checkpoint. One
    /// serializable transaction. Stores without checkpoints answer
    /// [`StoreError::Unsupported`].
    async fn adopt_audit_chain(&self) -> Result<ChainReport, StoreError>;

    /// Appends a record that changes no state (a refused execution) to the log, atomically.
    async fn append_note(&self, record: &SettingsRecord) -> Result<(), StoreError>;

    /// The size of the verifiable log: how many records have been sequenced (the last `seq`;
    /// 0 when none). One committed snapshot.
    async fn audit_size(&self) -> Result<u64, StoreError>;

    /// The leaf hashes of leaves `start..end` (0-based, `end` exclusive; leaf i is the record
    /// with `seq` i + 1), in order, from one committed snapshot.
    ///
    /// The sequencer computes a record's leaf hash (`SHA-256(0x00 || canonical JSON of the
    /// record)`, see `remediation_audit::merkle`) when it seals the record, and stores it in
    /// the same transaction; it is kept for good, also once the record itself is archived, so
    /// later proofs still verify. Fails when `end` exceeds [`AuditLog::audit_size`] or a leaf
    /// is missing.
    async fn leaf_hashes(&self, start: u64, end: u64) -> Result<Vec<LeafHash>, StoreError>;

    /// Appends a signed tree head, atomically: only when the latest stored head still has the
    /// size `previous_size` (`None`: no head is stored yet), the new head is not smaller than
    /// it, and not larger than [`AuditLog::audit_size`]; else
    /// [`StoreError::AuditLogConflict`] and nothing is stored.
    ///
    /// The caller has checked the signature and that the head extends the previous one (its
    /// consistency proof, `remediation_audit::LogSigningKey::sign_next`); the store keeps heads
    /// insert-only, so a head once stored is never changed or removed.
    async fn store_tree_head(&self, head: &StoredTreeHead, previous_size: Option<u64>) -> Result<(), StoreError>;

    /// The latest stored tree head (the largest, last stored), if any.
    async fn latest_tree_head(&self) -> Result<Option<StoredTreeHead>, StoreError>;

    /// The last stored tree head of exactly `tree_size` records, if any.
    async fn tree_head_at(&self, tree_size: u64) -> Result<Option<StoredTreeHead>, StoreError>;

    /// Publishes a public key, atomically and for good: a key already published under the
    /// same id is left as it is; another public key under that id is refused
    /// ([`StoreError::AuditLogConflict`]). Published keys are never removed, so heads signed
    /// before a key rotation still verify.
    async fn publish_key(&self, key: &StoredPublicKey) -> Result<(), StoreError>;

    /// Every published key, in the order they were first published.
    async fn published_keys(&self) -> Result<Vec<StoredPublicKey>, StoreError>;

    /// Removes the records with `seq` up to `archive.through_seq`, once they are in a written,
    /// verified archive file, in one transaction with the archive's registration: only when
    /// the record `through_seq` is stored with hash `archive.last_hash`, a stored signed head
    /// covers it (`tree_size` ≥ `through_seq`), and a newer record stays (the newest record is
    /// never archived); else [`StoreError::AuditLogConflict`] and nothing is removed. Leaf
    /// hashes stay, so every later proof still verifies; chain verification resumes after the
    /// archived prefix. Returns how many records were removed.
    async fn archive_audit(&self, archive: &AuditArchive) -> Result<u64, StoreError>;

    /// Runs the sequencer once: seals every entry written but not yet sequenced, in batches,
    /// and returns how many it sealed. A store with several writers sequences under a
    /// single-leader lease: when another process holds it, this seals nothing and returns 0
    /// (that leader seals the entries). Stores that sequence in the writing transaction have
    /// nothing pending and return 0. Called at the end of a command when no server runs.
    async fn sequence_pending(&self) -> Result<u64, StoreError>;

    /// Stops this process's background sequencer, if it runs one, and gives up the
    /// sequencing lease it holds, so another replica takes over at its next pass instead of
    /// when the lease expires (a graceful shutdown: call it last). The default, for stores
    /// that sequence in the writing transaction, does nothing.
    async fn stop_sequencing(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How many written entries are not sequenced yet (and so not yet visible to
    /// [`AuditLog::audit_page`] and [`AuditLog::verify_audit`]); 0 for stores that sequence in
    /// the writing transaction.
    async fn unsequenced(&self) -> Result<u64, StoreError>;

    /// How far sequencing is behind: how many written entries wait and how long the oldest
    /// has waited (for the sequencing-lag metrics). The default counts
    /// [`AuditLog::unsequenced`] and cannot tell an age, which suits stores that sequence in
    /// the writing transaction (nothing waits).
    async fn sequencing_backlog(&self) -> Result<SequencingBacklog, StoreError> {
        Ok(SequencingBacklog { entries: self.unsequenced().await?, oldest_age: None })
    }

    /// How long each entry this process's sequencer sealed since the last call had waited
    /// between its write and its sealing, in sealing order, and forgets them (for the
    /// sequencing-lag histogram). Empty by default: a store that sequences in the writing
    /// transaction makes no entry wait.
    fn take_sequencing_lags(&self) -> Vec<std::time::Duration> {
        Vec::new()
    }
}

/// How far sequencing is behind ([`AuditLog::sequencing_backlog`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SequencingBacklog {
    /// How many written entries are not sequenced yet.
    pub entries: u64,
    /// How long the oldest of them has waited; `None` when none waits or the store cannot tell.
    pub oldest_age: Option<std::time::Duration>,
}

/// A written and verified archive of the oldest audit records, as the store registers it when
/// it removes them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditArchive {
    /// The last archived record's `seq`: records 1 to it are in archives.
    pub through_seq: u64,
    /// That record's `hash`: the next record's `prev_hash`.
    pub last_hash: HexDigest,
    /// The size of the signed tree head the archive's proofs are for.
    pub tree_size: u64,
    /// That head's root hash.
    pub root_hash: HexDigest,
    /// SHA-256 of the archive file as written.
    pub file_sha256: HexDigest,
    /// When it was archived.
    #[serde(with = "time::serde::rfc3339")]
    pub archived_at: OffsetDateTime,
}

/// A leaf hash of the verifiable log: 32 bytes of SHA-256.
pub type LeafHash = [u8; 32];

/// A signed tree head as a store keeps it: plain data. Signing and verifying live in
/// `remediation-audit` (`SignedTreeHead`), which converts to and from this.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTreeHead {
    /// How many records the tree holds.
    pub tree_size: u64,
    /// The Merkle tree root, 64 lowercase hex characters.
    pub root_hash: HexDigest,
    /// When it was signed (UTC).
    #[serde(with = "time::serde::rfc3339")]
    pub timestamp: OffsetDateTime,
    /// The id of the key that signed it.
    pub key_id: String,
    /// The Ed25519 signature, 128 lowercase hex characters.
    pub signature: String,
}

/// A public key that verifies tree heads, as a store publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredPublicKey {
    /// The key id (first 8 bytes of SHA-256 of the public key, hex).
    pub key_id: String,
    /// The signature algorithm (`ed25519`).
    pub algorithm: String,
    /// The public key, lowercase hex.
    pub public_key: String,
    /// When it was first published.
    #[serde(with = "time::serde::rfc3339")]
    pub published_at: OffsetDateTime,
}

/// What one audit record says: an action's transition, or an installation-wide change (kill
/// switch, circuit breaker, emergency-access verification, settings, a refused execution).
///
/// Untagged: the two shapes have disjoint required keys (`action_id`/`to` against
/// `setting_event`/`previous`), and adding this enum left the JSON of transition records
/// exactly as it was, so earlier chains and test vectors still verify.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
#[allow(clippy::large_enum_variant, reason = "one record per state change; boxing buys nothing")]
pub enum AuditBody {
    /// An action changed state.
    Transition(TransitionRecord),
    /// Installation-wide safety state changed, or a refusal was noted.
    Settings(SettingsRecord),
}

impl AuditBody {
    /// The transition, if this is one.
    pub fn transition(&self) -> Option<&TransitionRecord> {
        match self {
            Self::Transition(t) => Some(t),
            Self::Settings(_) => None,
        }
    }

    /// The transition, mutably, if this is one.
    pub fn transition_mut(&mut self) -> Option<&mut TransitionRecord> {
        match self {
            Self::Transition(t) => Some(t),
            Self::Settings(_) => None,
        }
    }

    /// The action this record is about; `None` for installation-wide records.
    pub fn action_id(&self) -> Option<ActionId> {
        self.transition().map(|t| t.action_id)
    }

    /// When it happened.
    pub fn at(&self) -> OffsetDateTime {
        match self {
            Self::Transition(t) => t.at,
            Self::Settings(s) => s.at,
        }
    }

    /// Who did it.
    pub fn actor(&self) -> &str {
        match self {
            Self::Transition(t) => &t.actor,
            Self::Settings(s) => &s.actor,
        }
    }

    /// What happened (`approve`, `kill_switch_on`, ...).
    pub fn event(&self) -> &str {
        match self {
            Self::Transition(t) => &t.event,
            Self::Settings(s) => &s.setting_event,
        }
    }
}

impl From<TransitionRecord> for AuditBody {
    fn from(t: TransitionRecord) -> Self {
        Self::Transition(t)
    }
}

impl From<SettingsRecord> for AuditBody {
    fn from(s: SettingsRecord) -> Self {
        Self::Settings(s)
    }
}

/// One transition or installation-wide change as it stands in the audit chain.
///
/// The fields are public because records are also read back from files and databases that
/// may have been tampered with: a record's `hash` is only trustworthy once
/// `remediation_audit::verify_chain` has accepted the chain it belongs to. Build new records with
/// `remediation_audit::seal`.
///
/// Serialised as one flat JSON object: `seq`, every field of the [`TransitionRecord`] (or of
/// the [`SettingsRecord`]), `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// 1-based position in the chain.
    pub seq: u64,
    /// What the record says.
    #[serde(flatten)]
    pub body: AuditBody,
    /// `hash` of the record before this one; [`crate::hash::GENESIS_HASH`] (64 zeros) for the first.
    pub prev_hash: HexDigest,
    /// SHA-256 (lowercase hex) of the canonical JSON of this record without the `hash` key.
    pub hash: HexDigest,
}

/// The schema of the flat object: for each body, its own fields (unknown ones refused) plus
/// `seq`, `prev_hash` and `hash`. A derived schema would refer to the bodies, whose
/// `additionalProperties: false` then forbids the three chain fields, so no record would pass.
impl JsonSchema for AuditRecord {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "AuditRecord".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let chain_fields = [
            ("seq", "1-based position in the chain.", generator.subschema_for::<u64>()),
            (
                "prev_hash",
                "`hash` of the record before this one; 64 zeros for the first.",
                generator.subschema_for::<HexDigest>(),
            ),
            (
                "hash",
                "SHA-256 (lowercase hex) of the canonical JSON of this record without the `hash` key.",
                generator.subschema_for::<HexDigest>(),
            ),
        ];
        let envelope = |mut body: schemars::Schema, description: &str| {
            body.insert("description".into(), description.into());
            for (name, about, schema) in &chain_fields {
                let mut schema = schema.clone();
                schema.insert("description".into(), (*about).into());
                if let Some(props) =
                    body.ensure_object().entry("properties").or_insert_with(|| serde_json::json!({})).as_object_mut()
                {
                    props.insert((*name).to_owned(), schema.to_value());
                }
                if let Some(required) =
                    body.ensure_object().entry("required").or_insert_with(|| serde_json::json!([])).as_array_mut()
                {
                    required.push((*name).into());
                }
            }
            body.to_value()
        };
        let transition = envelope(TransitionRecord::json_schema(generator), "An action changed state.");
        let settings = envelope(
            SettingsRecord::json_schema(generator),
            "Installation-wide safety state changed, or a refusal was noted.",
        );
        schemars::json_schema!({
            "description": "One transition or installation-wide change as it stands in the audit chain: `seq`, every field of the transition (or of the settings change), `prev_hash` and `hash`, in one flat object.",
            "anyOf": [transition, settings],
        })
    }
}

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
    /// The record's `prev_hash` is not the previous record's `hash` ([`crate::hash::GENESIS_HASH`] for the
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

/// What the checkpoint says about the chain.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "status", rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckpointVerdict {
    /// No key is configured, so no checkpoint is kept or checked: records removed from the end
    /// and a chain rewritten from the start go unnoticed.
    #[default]
    NotConfigured,
    /// The checkpoint's MAC is valid and it names the chain's last record (or there are no
    /// records and no checkpoint yet).
    Matches,
    /// Records exist but the checkpoint does not: it was deleted, or the store predates
    /// checkpoints and its chain was never adopted.
    Missing,
    /// The checkpoint is genuine but names another last record than the chain has.
    Mismatch {
        /// The `seq` of the last record, according to the checkpoint.
        checkpoint_count: u64,
        /// The `hash` of the last record, according to the checkpoint.
        checkpoint_head: HexDigest,
        /// The `seq` of the chain's actual last record (0 for an empty chain).
        actual_count: u64,
        /// The `hash` of the chain's actual last record; `None` for an empty chain.
        actual_head: Option<HexDigest>,
    },
    /// The checkpoint's MAC is not valid under the configured key: the checkpoint was forged
    /// or edited, or the key is not the one it was sealed with.
    BadMac,
}

impl CheckpointVerdict {
    /// True for [`CheckpointVerdict::NotConfigured`] and [`CheckpointVerdict::Matches`]: the
    /// checkpoint reveals no tampering.
    pub fn is_ok(&self) -> bool {
        matches!(self, CheckpointVerdict::NotConfigured | CheckpointVerdict::Matches)
    }
}

impl fmt::Display for CheckpointVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CheckpointVerdict::NotConfigured => f.write_str("checkpoint: not configured"),
            CheckpointVerdict::Matches => f.write_str("checkpoint: matches"),
            CheckpointVerdict::Missing => f.write_str(
                "checkpoint: missing although the chain has records: the checkpoint was deleted, or this store predates checkpoints and its chain was never adopted",
            ),
            CheckpointVerdict::Mismatch { checkpoint_count, checkpoint_head, actual_count, actual_head } => {
                let actual = actual_head.as_deref().unwrap_or("(no records)");
                let what = if actual_count < checkpoint_count {
                    "records were cut off the end of the chain"
                } else if actual_count == checkpoint_count {
                    "the chain was rewritten"
                } else {
                    "records were added without the key"
                };
                write!(
                    f,
                    "checkpoint: mismatch: {what}: the checkpoint records {checkpoint_count} records with head {checkpoint_head}, but the chain has {actual_count} with head {actual}"
                )
            }
            CheckpointVerdict::BadMac => f.write_str(
                "checkpoint: bad MAC: the checkpoint was forged or edited, or the configured key is not the one it was sealed with",
            ),
        }
    }
}
