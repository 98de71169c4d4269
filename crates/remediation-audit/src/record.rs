//! The audit record: one transition sealed into the hash chain, and its canonical forms.

use remediation_core::TransitionRecord;
use remediation_core::hash::{GENESIS_HASH, HexDigest, canonical_json, sha256_hex};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::AuditError;

/// One transition as it stands in the audit chain.
///
/// The fields are public because records are also read back from files and databases that
/// may have been tampered with: a record's `hash` is only trustworthy once
/// [`crate::verify_chain`] has accepted the chain it belongs to. Build new records with
/// [`AuditRecord::seal`].
///
/// Serialised as one flat JSON object: `seq`, every field of the [`TransitionRecord`],
/// `prev_hash` and `hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AuditRecord {
    /// 1-based position in the chain.
    pub seq: u64,
    /// The transition this record seals.
    #[serde(flatten)]
    pub body: TransitionRecord,
    /// `hash` of the record before this one; [`GENESIS_HASH`] (64 zeros) for the first.
    pub prev_hash: HexDigest,
    /// SHA-256 (lowercase hex) of the canonical JSON of this record without the `hash` key.
    pub hash: HexDigest,
}

/// The hashed part of a record: everything but `hash`.
#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    #[serde(flatten)]
    body: &'a TransitionRecord,
    prev_hash: &'a str,
}

impl AuditRecord {
    /// Seals `body` as the record that follows `prev` (`None` starts a new chain at seq 1
    /// with [`GENESIS_HASH`] as `prev_hash`).
    pub fn seal(prev: Option<&AuditRecord>, body: TransitionRecord) -> Result<AuditRecord, AuditError> {
        let (seq, prev_hash) = match prev {
            None => (1, GENESIS_HASH.to_owned()),
            Some(p) => (p.seq.checked_add(1).ok_or(AuditError::SeqExhausted { prev_seq: p.seq })?, p.hash.clone()),
        };
        let mut record = AuditRecord { seq, body, prev_hash, hash: String::new() };
        record.hash = record.compute_hash()?;
        Ok(record)
    }

    /// The canonical (RFC 8785) JSON of this record without its `hash` key: the exact text
    /// whose SHA-256 is the record's hash.
    pub fn canonical_body(&self) -> Result<String, AuditError> {
        let unsealed = Unsealed { seq: self.seq, body: &self.body, prev_hash: &self.prev_hash };
        canonical_json(&unsealed).map_err(|source| AuditError::Canonical { seq: self.seq, source })
    }

    /// Recomputes the hash from the record's content (ignoring the stored `hash`).
    pub fn compute_hash(&self) -> Result<HexDigest, AuditError> {
        Ok(sha256_hex(self.canonical_body()?.as_bytes()))
    }

    /// The canonical (RFC 8785) JSON of the whole record, `hash` included: one line of a
    /// JSONL export, and the text a store keeps.
    pub fn to_canonical_json(&self) -> Result<String, AuditError> {
        canonical_json(self).map_err(|source| AuditError::Canonical { seq: self.seq, source })
    }

    /// Parses one record strictly: the text must be a JSON object with exactly the fields of
    /// an audit record, each written the way this crate writes it.
    ///
    /// The strictness keeps this crate and an independent checker in agreement: a checker
    /// that hashes the raw object (minus `hash`) sees the same bytes this crate hashes after
    /// parsing. Whitespace and key order are free; they do not survive canonicalisation.
    pub fn from_json(text: &str) -> Result<AuditRecord, AuditError> {
        let value: serde_json::Value = serde_json::from_str(text).map_err(|source| AuditError::Invalid { source })?;
        let record: AuditRecord =
            serde_json::from_value(value.clone()).map_err(|source| AuditError::Invalid { source })?;
        let written = serde_json::to_value(&record).map_err(|source| AuditError::Invalid { source })?;
        if let (Some(given), Some(written)) = (value.as_object(), written.as_object()) {
            if let Some(field) = given.keys().find(|k| !written.contains_key(*k)) {
                return Err(AuditError::UnexpectedField { field: field.clone() });
            }
            if let Some((field, _)) = written.iter().find(|(k, v)| given.get(*k) != Some(*v)) {
                return Err(AuditError::NotAsWritten { field: field.clone() });
            }
        }
        Ok(record)
    }
}
