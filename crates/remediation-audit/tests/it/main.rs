//! Integration tests of the audit chain: tampering, JSONL, and the committed test vectors.

mod chain;
mod jsonl;
mod support;
mod vectors;
