//! The audit record: one transition sealed into the hash chain, and its canonical forms.

use remediation_core::hash::{GENESIS_HASH, HexDigest, canonical_json, sha256_hex};
use remediation_core::{AuditBody, AuditRecord, ChainHead};
use serde::Serialize;

use crate::AuditError;

/// The hashed part of a record: everything but `hash`.
#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    #[serde(flatten)]
    body: &'a AuditBody,
    prev_hash: &'a str,
}

/// Seals `body` onto the chain whose head is `head`: the record gets `seq` = head's + 1,
/// `prev_hash` = head's hash (`None` starts a new chain at seq 1 with [`GENESIS_HASH`]), and
/// `hash` = SHA-256 of its canonical body. The one sealing rule every store calls; it needs
/// only the head (seq and hash), never the previous record.
pub fn seal(head: Option<&ChainHead>, body: impl Into<AuditBody>) -> Result<AuditRecord, AuditError> {
    let body = body.into();
    let (seq, prev_hash) = match head {
        None => (1, GENESIS_HASH.to_owned()),
        Some(h) => (h.seq.checked_add(1).ok_or(AuditError::SeqExhausted { prev_seq: h.seq })?, h.hash.clone()),
    };
    let mut record = AuditRecord { seq, body, prev_hash, hash: String::new() };
    record.hash = record.compute_hash()?;
    Ok(record)
}

/// The hashing and strict parsing of [`AuditRecord`] (a core type): import it to call
/// `AuditRecord::seal`, `from_json` and the canonical forms.
pub trait AuditRecordExt: Sized {
    /// Seals `body` as the record that follows `prev` (`None` starts a new chain at seq 1
    /// with [`GENESIS_HASH`] as `prev_hash`); [`seal`] on `prev`'s head.
    fn seal(prev: Option<&AuditRecord>, body: impl Into<AuditBody>) -> Result<AuditRecord, AuditError>;

    /// The canonical (RFC 8785) JSON of this record without its `hash` key: the exact text
    /// whose SHA-256 is the record's hash.
    fn canonical_body(&self) -> Result<String, AuditError>;

    /// Recomputes the hash from the record's content (ignoring the stored `hash`).
    fn compute_hash(&self) -> Result<HexDigest, AuditError>;

    /// The canonical (RFC 8785) JSON of the whole record, `hash` included: one line of a
    /// JSONL export, and the text a store keeps.
    fn to_canonical_json(&self) -> Result<String, AuditError>;

    /// Parses one record strictly: the text must be a JSON object with exactly the fields of
    /// an audit record, each written the way this crate writes it.
    ///
    /// The strictness keeps this crate and an independent checker in agreement: a checker
    /// that hashes the raw object (minus `hash`) sees the same bytes this crate hashes after
    /// parsing. Whitespace and key order are free; they do not survive canonicalisation.
    fn from_json(text: &str) -> Result<AuditRecord, AuditError>;

    /// The chain head this record makes: its `seq` and `hash`.
    fn head(&self) -> ChainHead;
}

impl AuditRecordExt for AuditRecord {
    fn seal(prev: Option<&AuditRecord>, body: impl Into<AuditBody>) -> Result<AuditRecord, AuditError> {
        seal(prev.map(AuditRecordExt::head).as_ref(), body)
    }

    fn head(&self) -> ChainHead {
        ChainHead { seq: self.seq, hash: self.hash.clone() }
    }

    /// The canonical (RFC 8785) JSON of this record without its `hash` key: the exact text
    /// whose SHA-256 is the record's hash.
    fn canonical_body(&self) -> Result<String, AuditError> {
        let unsealed = Unsealed { seq: self.seq, body: &self.body, prev_hash: &self.prev_hash };
        canonical_json(&unsealed).map_err(|source| AuditError::Canonical { seq: self.seq, source })
    }

    /// Recomputes the hash from the record's content (ignoring the stored `hash`).
    fn compute_hash(&self) -> Result<HexDigest, AuditError> {
        Ok(sha256_hex(self.canonical_body()?.as_bytes()))
    }

    /// The canonical (RFC 8785) JSON of the whole record, `hash` included: one line of a
    /// JSONL export, and the text a store keeps.
    fn to_canonical_json(&self) -> Result<String, AuditError> {
        canonical_json(self).map_err(|source| AuditError::Canonical { seq: self.seq, source })
    }

    /// Parses one record strictly: the text must be a JSON object with exactly the fields of
    /// an audit record, each written the way this crate writes it.
    ///
    /// The strictness keeps this crate and an independent checker in agreement: a checker
    /// that hashes the raw object (minus `hash`) sees the same bytes this crate hashes after
    /// parsing. Whitespace and key order are free; they do not survive canonicalisation.
    fn from_json(text: &str) -> Result<AuditRecord, AuditError> {
        // The text a store keeps is the record's canonical JSON (sorted keys, no whitespace,
        // integers only), which is also what serde_json writes for the record's JSON value
        // (its maps are sorted): a text that parses and is written back byte for byte is
        // exactly as written. That takes half the time of the field-by-field comparison below,
        // which a relay reading the log would otherwise pay for every record; any other text
        // (whitespace, another key order, a tampered field) still gets the comparison.
        if let Ok(record) = serde_json::from_str::<AuditRecord>(text)
            && serde_json::to_value(&record).is_ok_and(|value| serde_json::to_string(&value).is_ok_and(|w| w == text))
        {
            return Ok(record);
        }
        strict_from_json(text)
    }
}

/// [`AuditRecordExt::from_json`] for a text that is not canonical JSON: the whole comparison
/// of what was given with what the record writes.
fn strict_from_json(text: &str) -> Result<AuditRecord, AuditError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|source| AuditError::Invalid { source })?;
    let record: AuditRecord = match serde_json::from_value(value.clone()) {
        Ok(record) => record,
        Err(source) => {
            // The body is untagged, so serde reports only "no variant matched"; name the
            // field whose removal makes the record readable, when there is one.
            if let Some(map) = value.as_object() {
                for key in map.keys() {
                    let mut without = map.clone();
                    without.remove(key);
                    if serde_json::from_value::<AuditRecord>(serde_json::Value::Object(without)).is_ok() {
                        return Err(AuditError::UnexpectedField { field: key.clone() });
                    }
                }
            }
            return Err(AuditError::Invalid { source });
        }
    };
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

/// A body whose canonical members were written ahead of sealing, so [`seal_prepared`] only
/// places `seq`, `prev_hash` and `hash` among them and hashes the text: a store can prepare the
/// body on the caller's thread and keep the sequencer's own work small.
#[derive(Debug, Clone)]
pub struct PreparedBody {
    body: AuditBody,
    /// Each top-level member of the body as `(key, "key":canonical value)`.
    members: Vec<(String, String)>,
}

impl PreparedBody {
    /// Writes the canonical form of each of `body`'s members.
    pub fn new(body: impl Into<AuditBody>) -> Result<PreparedBody, AuditError> {
        let body = body.into();
        let canonical = |source| AuditError::Canonical { seq: 0, source };
        let value = serde_json::to_value(&body).map_err(|source| AuditError::Invalid { source })?;
        let serde_json::Value::Object(map) = value else {
            // Every body serialises to an object; anything else cannot be flattened into a record.
            let source = <serde_json::Error as serde::ser::Error>::custom("the audit body is not a JSON object");
            return Err(canonical(remediation_core::hash::CanonicalError(source)));
        };
        let mut members = Vec::with_capacity(map.len());
        for (key, value) in map {
            let text =
                format!("{}:{}", canonical_json(&key).map_err(canonical)?, canonical_json(&value).map_err(canonical)?);
            members.push((key, text));
        }
        Ok(PreparedBody { body, members })
    }

    /// The body.
    pub fn body(&self) -> &AuditBody {
        &self.body
    }
}

/// [`seal`] for a [`PreparedBody`]: the same record and hash, plus its canonical JSON
/// ([`AuditRecordExt::to_canonical_json`]), written from the prepared members.
pub fn seal_prepared(head: Option<&ChainHead>, prepared: PreparedBody) -> Result<(AuditRecord, String), AuditError> {
    let (seq, prev_hash) = match head {
        None => (1, GENESIS_HASH.to_owned()),
        Some(h) => (h.seq.checked_add(1).ok_or(AuditError::SeqExhausted { prev_seq: h.seq })?, h.hash.clone()),
    };
    let canonical = |source| AuditError::Canonical { seq, source };
    let PreparedBody { body, members } = prepared;
    let mut members: Vec<(String, String)> = members;
    members.push(("seq".to_owned(), format!("\"seq\":{seq}")));
    members.push(("prev_hash".to_owned(), format!("\"prev_hash\":{}", canonical_json(&prev_hash).map_err(canonical)?)));
    // RFC 8785 orders members by the UTF-16 code units of their names.
    let order = |a: &(String, String), b: &(String, String)| a.0.encode_utf16().cmp(b.0.encode_utf16());
    members.sort_by(order);
    let hash = sha256_hex(join(&members).as_bytes());
    members.push(("hash".to_owned(), format!("\"hash\":\"{hash}\"")));
    members.sort_by(order);
    let json = join(&members);
    Ok((AuditRecord { seq, body, prev_hash, hash }, json))
}

/// `{` the members `,` separated `}`.
fn join(members: &[(String, String)]) -> String {
    let mut text = String::with_capacity(members.iter().map(|(_, m)| m.len() + 1).sum::<usize>() + 2);
    text.push('{');
    for (i, (_, member)) in members.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(member);
    }
    text.push('}');
    text
}
