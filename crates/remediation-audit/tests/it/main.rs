//! Integration tests of the audit chain (tampering, JSONL, the committed test vectors) and of
//! the verifiable log (Merkle proofs, signed tree heads, attacks, the Python checker).

mod chain;
mod checkpoint;
mod file_sink;
mod fuzz;
mod jsonl;
mod log_attacks;
mod log_vectors;
mod merkle;
mod support;
mod tree_head;
mod vectors;
