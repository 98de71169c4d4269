//! JSONL export: one canonical JSON record per line.

use std::borrow::Borrow;
use std::io::{BufRead, Write};

use crate::{AuditError, AuditRecord, AuditRecordExt as _};

/// Writes `records` to `out`, one canonical JSON object (the whole record, `hash` included)
/// per line, each line ending in `\n`. Returns how many records were written.
pub fn write_jsonl<I>(records: I, mut out: impl Write) -> Result<u64, AuditError>
where
    I: IntoIterator,
    I::Item: Borrow<AuditRecord>,
{
    let mut written = 0;
    let mut last_seq = 0;
    for record in records {
        let record = record.borrow();
        let mut line = record.to_canonical_json()?;
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(|source| AuditError::Write { seq: record.seq, source })?;
        written += 1;
        last_seq = record.seq;
    }
    out.flush().map_err(|source| AuditError::Write { seq: last_seq, source })?;
    Ok(written)
}

/// Reads a JSONL export written by [`write_jsonl`]. Blank lines are skipped; every other line
/// must be one record as [`crate::AuditRecordExt::from_json`] accepts it.
///
/// This only parses: run [`crate::verify_chain`] on the result to check the chain.
pub fn read_jsonl(input: impl BufRead) -> Result<Vec<AuditRecord>, AuditError> {
    let mut records = Vec::new();
    for (index, line) in input.lines().enumerate() {
        let line_no = u64::try_from(index).unwrap_or(u64::MAX).saturating_add(1);
        let line = line.map_err(|source| AuditError::Read { line: line_no, source })?;
        if line.trim().is_empty() {
            continue;
        }
        let record = AuditRecord::from_json(&line)
            .map_err(|source| AuditError::Line { line: line_no, source: Box::new(source) })?;
        records.push(record);
    }
    Ok(records)
}
