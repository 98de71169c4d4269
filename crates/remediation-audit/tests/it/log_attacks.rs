//! Attacks on a log an auditor has seen: the auditor holds a signed tree head from earlier
//! and asks for a consistency proof to today's head. Truncating, rewriting (even with the hash
//! chain recomputed, which the chain alone cannot reveal) and forking must all fail that check,
//! whatever proof the log operator hands over.

use remediation_audit::merkle::{self, MerkleHash, consistency_path, record_leaf_hash};
use remediation_audit::{
    AuditRecord, AuditRecordExt as _, ConsistencyProof, ExtendsError, InclusionProof, LogSigningKey, ProofError,
    PublicKeySet, SignedTreeHead, verify_chain, verify_extends,
};
use time::macros::datetime;

use crate::support::{body, seal_all};

fn leaf_hashes(records: &[AuditRecord]) -> Vec<MerkleHash> {
    records.iter().map(|r| record_leaf_hash(r).expect("leaf hash")).collect()
}

/// A log operator who signs whatever tree it is told to, without checking that it extends
/// the last head: what an attacker holding the signing key could do.
fn sign_blindly(signer: &LogSigningKey, leaves: &[MerkleHash]) -> SignedTreeHead {
    signer
        .sign_next(None, leaves.len() as u64, merkle::root(leaves), &[], datetime!(2026-04-01 00:00:00 UTC))
        .expect("sign")
}

struct Setting {
    signer: LogSigningKey,
    keys: PublicKeySet,
    records: Vec<AuditRecord>,
    /// What the auditor saw: the head of the first `seen` records.
    seen: SignedTreeHead,
}

fn setting(seen: usize) -> Setting {
    let signer = LogSigningKey::generate();
    let mut keys = PublicKeySet::default();
    keys.publish(signer.published());
    let records = seal_all((0..12).map(body));
    let seen = sign_blindly(&signer, &leaf_hashes(&records[..seen]));
    keys.verify(&seen).expect("the auditor's head verifies");
    Setting { signer, keys, records, seen }
}

/// Every proof the operator could offer for `new` against the auditor's head: the honest
/// proof over the tampered log, and proofs over the original log, cut or not.
fn candidate_proofs(
    seen: u64,
    tampered: &[MerkleHash],
    original: &[MerkleHash],
    new_size: u64,
) -> Vec<Vec<MerkleHash>> {
    let mut proofs = vec![Vec::new()];
    for source in [tampered, original] {
        if let Ok(proof) = consistency_path(source, seen, new_size.min(source.len() as u64)) {
            proofs.push(proof);
        }
        if let Ok(proof) = consistency_path(source, seen, source.len() as u64) {
            proofs.push(proof);
        }
    }
    proofs
}

fn assert_detected(s: &Setting, tampered: &[MerkleHash]) {
    let original = leaf_hashes(&s.records);
    let new = sign_blindly(&s.signer, tampered);
    s.keys.verify(&new).expect("the new head is genuinely signed");
    let seen = s.seen.head.tree_size;
    for proof in candidate_proofs(seen, tampered, &original, new.head.tree_size) {
        let result = verify_extends(&s.keys, &s.seen, &new, &proof);
        assert!(matches!(result, Err(ExtendsError::Inconsistent(_))), "not detected with {proof:?}: {result:?}");
    }
    // The honest signer refuses to sign it after the auditor's head.
    let proof = consistency_path(tampered, seen.min(tampered.len() as u64), tampered.len() as u64).unwrap_or_default();
    assert!(
        s.signer
            .sign_next(Some(&s.seen), tampered.len() as u64, merkle::root(tampered), &proof, new.head.timestamp)
            .is_err()
    );
}

/// The auditor's head sizes tried: a complete subtree (whose root the proof omits) and not.
const SEEN: [usize; 2] = [7, 8];

#[test]
fn the_honest_log_extends_the_auditors_head() {
    for seen in SEEN {
        let s = setting(seen);
        let leaves = leaf_hashes(&s.records);
        let proof = ConsistencyProof::generate(&leaves, seen as u64, 12).expect("prove");
        let new = s
            .signer
            .sign_next(Some(&s.seen), 12, merkle::root(&leaves), &proof.path, datetime!(2026-04-02 00:00:00 UTC))
            .expect("extends");
        verify_extends(&s.keys, &s.seen, &new, &proof.path).expect("honest log");
    }
}

#[test]
fn a_truncated_log_fails_the_consistency_check() {
    for seen in SEEN {
        let s = setting(seen);
        let leaves = leaf_hashes(&s.records);
        // Cut below what the auditor saw: the new head is smaller.
        let cut = &leaves[..6];
        let new = sign_blindly(&s.signer, cut);
        let result = verify_extends(&s.keys, &s.seen, &new, &[]);
        assert!(
            matches!(result, Err(ExtendsError::Inconsistent(ProofError::Shrunk { old_size, new_size: 6 })) if old_size == seen as u64)
        );
        assert_detected(&s, cut);
        // Cut, then refilled with new records up to more than the auditor saw.
        let mut refilled = s.records[..6].to_vec();
        for minutes in 100..106 {
            let next = AuditRecord::seal(refilled.last(), body(minutes)).expect("seal");
            refilled.push(next);
        }
        assert!(verify_chain(refilled.clone()).is_intact(), "the refilled chain is intact on its own");
        assert_detected(&s, &leaf_hashes(&refilled));
    }
}

#[test]
fn a_rewritten_entry_with_a_recomputed_chain_fails_the_consistency_check() {
    for seen in SEEN {
        let s = setting(seen);
        // Record 3 rewritten, and every later record resealed so the hash chain is intact.
        let mut bodies: Vec<_> = (0..12).map(body).collect();
        bodies[2].actor = "local:mallory".to_owned();
        let rewritten = seal_all(bodies);
        assert!(verify_chain(rewritten.clone()).is_intact(), "only the HMAC checkpoint would see this");
        assert_ne!(rewritten[2].hash, s.records[2].hash);
        assert_detected(&s, &leaf_hashes(&rewritten));
    }
}

#[test]
fn a_rewritten_entry_after_the_auditors_head_keeps_its_inclusion_proofs_honest() {
    // Rewriting only records the auditor has not seen is not a fork of its view; it is caught
    // by the auditor who sees the next head (above), and an inclusion proof of the original
    // record 10 fails against the rewritten log's head.
    let s = setting(8);
    let mut bodies: Vec<_> = (0..12).map(body).collect();
    bodies[9].actor = "local:mallory".to_owned();
    let rewritten = leaf_hashes(&seal_all(bodies));
    let original = leaf_hashes(&s.records);
    let new = sign_blindly(&s.signer, &rewritten);
    let proof = InclusionProof::generate(&original, 9, 12).expect("prove");
    assert!(proof.verify(&new.head.root_hash).is_err());
    let proof = InclusionProof::generate(&rewritten, 9, 12).expect("prove");
    assert_eq!(proof.leaf_hash, rewritten[9]);
    assert_ne!(proof.leaf_hash, record_leaf_hash(&s.records[9]).expect("leaf"));
}

#[test]
fn a_forked_log_fails_the_consistency_check() {
    for seen in SEEN {
        let s = setting(seen);
        // Two continuations of the first 5 records: the auditor saw the one of `s.records`;
        // another party is shown a different one.
        let mut fork = s.records[..5].to_vec();
        for minutes in 200..209 {
            let next = AuditRecord::seal(fork.last(), body(minutes)).expect("seal");
            fork.push(next);
        }
        assert!(verify_chain(fork.clone()).is_intact());
        assert_detected(&s, &leaf_hashes(&fork));
        // And the other party's head is just as inconsistent with the auditor's as the other way
        // round: neither extends the other.
        let fork_head = sign_blindly(&s.signer, &leaf_hashes(&fork[..seen]));
        let result = verify_extends(&s.keys, &s.seen, &fork_head, &[]);
        assert!(matches!(result, Err(ExtendsError::Inconsistent(ProofError::RootMismatch { .. }))), "{result:?}");
    }
}
