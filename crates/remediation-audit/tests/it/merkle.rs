//! The Merkle tree against published Certificate Transparency vectors
//! (`tests/vectors/ct/`, see its README) and against itself: every proof generated verifies,
//! and every changed proof does not.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use proptest::prelude::*;
use remediation_audit::merkle::{
    self, LeafHashSource, LeafOutOfRange, MerkleHash, ProofError, consistency_path, empty_root, inclusion_path,
    leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use remediation_audit::{ConsistencyProof, InclusionProof, ProveError};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

fn ct_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests").join("vectors").join("ct")
}

fn json_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display())) {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// A base64 proof element of a vector as a hash; `None` when it is not 32 bytes (the vectors
/// put garbage elements in some proofs on purpose: such a proof must fail).
fn hash(text: &str) -> Option<MerkleHash> {
    let bytes = STANDARD.decode(text).ok()?;
    Some(MerkleHash(bytes.try_into().ok()?))
}

/// A base64 root of a vector. Some vectors use values that are not 32 bytes
/// (`""`, "don't care 1") where only their equality matters; those become SHA-256 of a
/// prefix and their bytes, which keeps equal values equal, different ones different, and
/// differs from every real hash in the vectors (SHA-256 of no bytes is the empty tree's root).
fn value(text: &str) -> MerkleHash {
    let bytes = STANDARD.decode(text).expect("base64");
    match <[u8; 32]>::try_from(bytes.as_slice()) {
        Ok(exact) => MerkleHash(exact),
        Err(_) => MerkleHash(Sha256::new().chain_update(b"not 32 bytes:").chain_update(&bytes).finalize().into()),
    }
}

fn hashes(texts: &Option<Vec<String>>) -> Option<Vec<MerkleHash>> {
    texts.iter().flatten().map(|t| hash(t)).collect()
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct InclusionVector {
    leaf_idx: u64,
    tree_size: u64,
    root: String,
    leaf_hash: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ConsistencyVector {
    size1: u64,
    size2: u64,
    root1: String,
    root2: String,
    proof: Option<Vec<String>>,
    desc: String,
    want_err: bool,
}

#[derive(Deserialize)]
struct ReferenceTree {
    leaf_inputs: Vec<String>,
    roots_by_size: Vec<String>,
}

/// The leaf hashes of the eight leaves every CT vector is built from.
fn reference_leaves() -> Vec<MerkleHash> {
    let tree: ReferenceTree = serde_json::from_str(
        &std::fs::read_to_string(ct_dir().join("reference-tree.json")).expect("reference-tree.json"),
    )
    .expect("reference tree");
    tree.leaf_inputs.iter().map(|l| leaf_hash(&hex::decode(l).expect("hex leaf"))).collect()
}

#[test]
fn reference_tree_roots_match_the_published_ones() {
    let tree: ReferenceTree = serde_json::from_str(
        &std::fs::read_to_string(ct_dir().join("reference-tree.json")).expect("reference-tree.json"),
    )
    .expect("reference tree");
    let leaves = reference_leaves();
    assert_eq!(tree.roots_by_size.len(), 9);
    for (size, expected) in tree.roots_by_size.iter().enumerate() {
        assert_eq!(&merkle::root(&leaves[..size]).to_hex(), expected, "root of the first {size} leaves");
    }
    assert_eq!(empty_root().to_hex(), tree.roots_by_size[0]);
}

#[test]
fn published_inclusion_vectors_pass_and_fail_as_published() {
    let files = json_files(&ct_dir().join("transparency-dev-merkle").join("inclusion"));
    let leaves = reference_leaves();
    let (mut good, mut bad) = (0, 0);
    for path in &files {
        let v: InclusionVector = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse");
        let parsed = (value(&v.root), hash(&v.leaf_hash), hashes(&v.proof));
        let result = match &parsed {
            (root, Some(leaf), Some(proof)) => verify_inclusion(v.leaf_idx, v.tree_size, leaf, proof, root),
            // A leaf hash or proof element that is not 32 bytes cannot be part of a valid
            // proof (the type cannot even hold it).
            _ => Err(ProofError::WrongLength),
        };
        assert_eq!(result.is_err(), v.want_err, "{}: {} gave {result:?}", path.display(), v.desc);
        if v.want_err {
            bad += 1;
        } else {
            good += 1;
            // Generation must produce exactly the published proof.
            let (_, _, Some(proof)) = parsed else { unreachable!("a passing vector parses") };
            assert_eq!(inclusion_path(&leaves, v.leaf_idx, v.tree_size).expect("prove"), proof, "{}", path.display());
        }
    }
    assert!(good >= 5 && bad >= 60, "too few vectors found: {good} good, {bad} bad");
}

#[test]
fn published_consistency_vectors_pass_and_fail_as_published() {
    let files = json_files(&ct_dir().join("transparency-dev-merkle").join("consistency"));
    let leaves = reference_leaves();
    let (mut good, mut bad) = (0, 0);
    for path in &files {
        let v: ConsistencyVector = serde_json::from_str(&std::fs::read_to_string(path).expect("read")).expect("parse");
        let parsed = (value(&v.root1), value(&v.root2), hashes(&v.proof));
        let result = match &parsed {
            (root1, root2, Some(proof)) => verify_consistency(v.size1, v.size2, root1, root2, proof),
            (_, _, None) => Err(ProofError::WrongLength),
        };
        assert_eq!(result.is_err(), v.want_err, "{}: {} gave {result:?}", path.display(), v.desc);
        if v.want_err {
            bad += 1;
        } else {
            good += 1;
            let (_, _, Some(proof)) = parsed else { unreachable!("a passing vector parses") };
            if v.size2 <= leaves.len() as u64 {
                assert_eq!(consistency_path(&leaves, v.size1, v.size2).expect("prove"), proof, "{}", path.display());
            }
        }
    }
    assert!(good >= 5 && bad >= 80, "too few vectors found: {good} good, {bad} bad");
}

fn leaves(n: u64) -> Vec<MerkleHash> {
    (0..n).map(|i| leaf_hash(format!("entry {i}").as_bytes())).collect()
}

#[test]
fn every_inclusion_and_consistency_proof_of_small_trees_verifies() {
    let all = leaves(33);
    for size in 1..=33_u64 {
        let tree = &all[..size as usize];
        let root = merkle::root(tree);
        for index in 0..size {
            let proof = InclusionProof::generate(tree, index, size).expect("prove");
            proof.verify(&root).unwrap_or_else(|e| panic!("leaf {index} of {size}: {e}"));
            // The same leaf is not at any other index.
            if size > 1 {
                let other = InclusionProof { leaf_index: (index + 1) % size, ..proof.clone() };
                assert!(other.verify(&root).is_err(), "leaf {index} of {size} moved");
            }
        }
        for old in 1..=size {
            let old_root = merkle::root(&tree[..old as usize]);
            let proof = ConsistencyProof::generate(tree, old, size).expect("prove");
            proof.verify(&old_root, &root).unwrap_or_else(|e| panic!("{old} -> {size}: {e}"));
        }
    }
}

#[test]
fn a_proof_for_a_wrong_leaf_fails() {
    let tree = leaves(10);
    let root = merkle::root(&tree);
    let mut proof = InclusionProof::generate(&tree, 4, 10).expect("prove");
    proof.leaf_hash = leaf_hash(b"an entry that was never logged");
    assert_eq!(proof.verify(&root), Err(ProofError::RootMismatch { expected: root }));
}

#[test]
fn proofs_outside_the_tree_are_not_generated() {
    let tree = leaves(4);
    assert!(inclusion_path(&tree, 4, 4).is_err());
    assert!(consistency_path(&tree, 0, 4).is_err());
    assert!(consistency_path(&tree, 5, 4).is_err());
    // Beyond the leaves held: an error, not a panic.
    assert!(matches!(inclusion_path(&tree, 1, 9), Err(ProveError::Source(LeafOutOfRange { len: 4, .. }))));
    assert!(matches!(consistency_path(&tree, 2, 9), Err(ProveError::Source(_))));
    assert!(InclusionProof::generate(&tree, 6, 9).is_err());
    assert_eq!(
        verify_consistency(5, 4, &empty_root(), &empty_root(), &[]),
        Err(ProofError::Shrunk { old_size: 5, new_size: 4 })
    );
}

/// A source that counts reads, standing for a store that keeps aligned subtree hashes.
struct CachedSubtrees<'a> {
    leaves: &'a [MerkleHash],
    reads: std::cell::Cell<u64>,
}

impl LeafHashSource for CachedSubtrees<'_> {
    type Error = std::convert::Infallible;

    fn leaf_hash(&self, index: u64) -> Result<MerkleHash, Self::Error> {
        self.reads.set(self.reads.get() + 1);
        Ok(self.leaves[index as usize])
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<MerkleHash, Self::Error> {
        self.reads.set(self.reads.get() + 1);
        Ok(merkle::root(&self.leaves[start as usize..end as usize]))
    }
}

#[test]
fn a_source_with_subtree_hashes_is_read_once_per_proof_hash() {
    let all = leaves(1000);
    let source = CachedSubtrees { leaves: &all, reads: std::cell::Cell::new(0) };
    let path = inclusion_path(&source, 617, 1000).expect("prove");
    assert_eq!(source.reads.get(), path.len() as u64);
    assert!(path.len() <= 10);
    source.reads.set(0);
    let path = consistency_path(&source, 300, 1000).expect("prove");
    assert_eq!(source.reads.get(), path.len() as u64);
}

#[test]
fn node_hash_prefixes_one_and_leaf_hash_zero() {
    // SHA-256(0x00) and SHA-256(0x01 || 64 zero bytes), computed independently.
    assert_eq!(leaf_hash(b"").to_hex(), "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
    let zero = MerkleHash([0; 32]);
    assert_ne!(node_hash(&zero, &zero), leaf_hash(&[0; 64]));
}

#[test]
fn hashes_are_written_as_lowercase_hex_only() {
    let h = leaf_hash(b"x");
    let json = serde_json::to_string(&h).expect("json");
    assert_eq!(json, format!("\"{}\"", h.to_hex()));
    assert_eq!(serde_json::from_str::<MerkleHash>(&json).expect("parse"), h);
    assert!(serde_json::from_str::<MerkleHash>(&json.to_uppercase()).is_err());
    assert!(serde_json::from_str::<MerkleHash>("\"abcd\"").is_err());
}

proptest! {
    #[test]
    fn a_changed_proof_never_verifies(size in 2_u64..200, index_seed in any::<u64>(), old_seed in any::<u64>(), flip in any::<(usize, usize, u8)>()) {
        let tree = leaves(size);
        let root = merkle::root(&tree);
        let index = index_seed % size;
        let proof = InclusionProof::generate(&tree, index, size).expect("prove");
        prop_assert!(proof.verify(&root).is_ok());
        let (at, byte, bit) = flip;
        let mut changed = proof.clone();
        let n = changed.path.len();
        changed.path[at % n].0[byte % 32] ^= 1 << (bit % 8);
        prop_assert!(changed.verify(&root).is_err());
        let mut shorter = proof.clone();
        shorter.path.pop();
        prop_assert!(shorter.verify(&root).is_err());

        let old = 1 + old_seed % (size - 1);
        let old_root = merkle::root(&tree[..old as usize]);
        let proof = ConsistencyProof::generate(&tree, old, size).expect("prove");
        prop_assert!(proof.verify(&old_root, &root).is_ok());
        let mut changed = proof.clone();
        let n = changed.path.len();
        changed.path[at % n].0[byte % 32] ^= 1 << (bit % 8);
        prop_assert!(changed.verify(&old_root, &root).is_err());
    }
}
