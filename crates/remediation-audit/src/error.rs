//! Errors raised while sealing, parsing, reading and writing audit records.

use remediation_core::hash::CanonicalError;

/// Why an audit record could not be sealed, parsed, read or written.
///
/// A chain that was tampered with is not an error: [`crate::verify_chain`] reports it as data
/// in a [`crate::ChainReport`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuditError {
    /// The record cannot be written as canonical JSON, so it cannot be hashed.
    #[error("audit record {seq} cannot be written as canonical JSON")]
    Canonical {
        /// The record's position in its chain.
        seq: u64,
        /// What the serialiser refused.
        #[source]
        source: CanonicalError,
    },
    /// The previous record already has the largest possible sequence number.
    #[error("the audit chain is full: record {prev_seq} has the largest possible sequence number")]
    SeqExhausted {
        /// The previous record's sequence number.
        prev_seq: u64,
    },
    /// The text is not JSON, or not an object with the fields of an audit record.
    #[error("the text is not a JSON audit record")]
    Invalid {
        /// What the parser found.
        #[source]
        source: serde_json::Error,
    },
    /// The JSON object has a field that audit records do not have.
    #[error(
        "field `{field}` is not part of an audit record; the record was altered or written by another tool, so its hash cannot be re-checked"
    )]
    UnexpectedField {
        /// The unknown field's name.
        field: String,
    },
    /// A field is missing, or holds a value this crate would write differently (for example a timestamp with
    /// `+00:00` where `Z` was written), so the stored hash cannot be re-checked faithfully.
    #[error(
        "field `{field}` is missing or not written the way remediate writes it; the record was altered or written by another tool, so its hash cannot be re-checked"
    )]
    NotAsWritten {
        /// The field's name.
        field: String,
    },
    /// One line of a JSONL export is not a valid audit record.
    #[error("line {line} of the audit export is not a valid audit record")]
    Line {
        /// 1-based line number.
        line: u64,
        /// What is wrong with it.
        #[source]
        source: Box<AuditError>,
    },
    /// A line of a JSONL export could not be read.
    #[error("cannot read line {line} of the audit export")]
    Read {
        /// 1-based line number.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// Key material for sealing checkpoints has the wrong form. The message never quotes it.
    #[error("the audit checkpoint key is not valid: expected {expected}")]
    InvalidKey {
        /// What a key must look like.
        expected: &'static str,
    },
    /// A record could not be written to a JSONL export.
    #[error("cannot write audit record {seq} to the export")]
    Write {
        /// The record's sequence number.
        seq: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}
