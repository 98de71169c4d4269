//! Integration tests of the audit chain: tampering, JSONL, and the committed test vectors.

mod chain;
mod checkpoint;
mod fuzz;
mod jsonl;
mod log_attacks;
mod merkle;
mod support;
mod tree_head;
mod vectors;
