//! The audit record: one transition sealed into the hash chain, and its canonical forms.

use remediation_core::hash::{GENESIS_HASH, HexDigest, canonical_json, sha256_hex};
use remediation_core::{ActionId, SettingsRecord, TransitionRecord};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::AuditError;

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
/// [`crate::verify_chain`] has accepted the chain it belongs to. Build new records with
/// [`AuditRecord::seal`].
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
    /// `hash` of the record before this one; [`GENESIS_HASH`] (64 zeros) for the first.
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

/// The hashed part of a record: everything but `hash`.
#[derive(Serialize)]
struct Unsealed<'a> {
    seq: u64,
    #[serde(flatten)]
    body: &'a AuditBody,
    prev_hash: &'a str,
}

impl AuditRecord {
    /// Seals `body` as the record that follows `prev` (`None` starts a new chain at seq 1
    /// with [`GENESIS_HASH`] as `prev_hash`).
    pub fn seal(prev: Option<&AuditRecord>, body: impl Into<AuditBody>) -> Result<AuditRecord, AuditError> {
        let body = body.into();
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
}
