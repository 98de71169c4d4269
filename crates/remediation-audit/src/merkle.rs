//! The Merkle tree over the audit log (RFC 6962 / RFC 9162 §2.1): leaf and node hashing, tree
//! roots, inclusion and consistency proofs. See the crate docs, "The verifiable log", for the
//! contract.
//!
//! Everything here is a pure function over leaf hashes. Proofs are generated from a
//! [`LeafHashSource`]: a slice of leaf hashes is one; a store implements it over its own table.

use std::fmt;
use std::str::FromStr;

use remediation_core::AuditRecord;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest as _, Sha256};

use crate::{AuditError, AuditRecordExt as _};

/// The byte prefixed to an entry before hashing it into a leaf (RFC 6962 §2.1).
pub const LEAF_PREFIX: u8 = 0x00;
/// The byte prefixed to two child hashes before hashing them into their parent (RFC 6962 §2.1).
pub const NODE_PREFIX: u8 = 0x01;

/// A SHA-256 hash in the tree: a leaf hash, a node hash, a root. Written in JSON as 64 lowercase
/// hex characters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct MerkleHash(pub [u8; 32]);

impl MerkleHash {
    /// The hash as 64 lowercase hex characters.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }
}

impl fmt::Debug for MerkleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerkleHash({})", self.to_hex())
    }
}

impl fmt::Display for MerkleHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// The text is not 64 hex characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a Merkle hash is 64 lowercase hex characters (32 bytes)")]
pub struct ParseHashError;

impl FromStr for MerkleHash {
    type Err = ParseHashError;

    /// Parses 64 lowercase hex characters; uppercase is refused so that every hash has one
    /// written form.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() != 64 || text.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(ParseHashError);
        }
        let mut bytes = [0_u8; 32];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| ParseHashError)?;
        Ok(MerkleHash(bytes))
    }
}

impl Serialize for MerkleHash {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for MerkleHash {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

impl JsonSchema for MerkleHash {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "MerkleHash".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A SHA-256 hash of the audit Merkle tree, 64 lowercase hex characters.",
            "type": "string",
            "pattern": "^[0-9a-f]{64}$",
        })
    }
}

/// The root of the empty tree: SHA-256 of no bytes (RFC 6962 §2.1).
pub fn empty_root() -> MerkleHash {
    MerkleHash(Sha256::digest([]).into())
}

/// The leaf hash of an entry: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> MerkleHash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    MerkleHash(hasher.finalize().into())
}

/// The hash of an inner node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &MerkleHash, right: &MerkleHash) -> MerkleHash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left.0);
    hasher.update(right.0);
    MerkleHash(hasher.finalize().into())
}

/// The leaf hash of an audit record: [`leaf_hash`] of the record's canonical JSON, `hash`
/// included ([`AuditRecordExt::to_canonical_json`](crate::AuditRecordExt::to_canonical_json),
/// one line of a JSONL export without its `\n`). The record with `seq` s is leaf s − 1.
pub fn record_leaf_hash(record: &AuditRecord) -> Result<MerkleHash, AuditError> {
    Ok(leaf_hash(record.to_canonical_json()?.as_bytes()))
}

/// The root (RFC 9162 §2.1.1 MTH) of the tree whose leaf hashes are `leaves`, in order.
pub fn root(leaves: &[MerkleHash]) -> MerkleHash {
    match leaves {
        [] => empty_root(),
        [only] => *only,
        _ => {
            // len ≥ 2, so the split is strictly inside the slice.
            let k = split(leaves.len() as u64) as usize;
            node_hash(&root(&leaves[..k]), &root(&leaves[k..]))
        }
    }
}

/// The largest power of two smaller than `n` (`n` ≥ 2): where MTH splits a tree of `n` leaves.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

/// Where proof generation reads the leaf hashes of the log.
///
/// A proof is made of the hashes of complete subtrees. The provided [`subtree_hash`]
/// recomputes each one from its leaves, so generating one proof reads every leaf of the tree
/// once: O(n) hashing, fine for logs of up to a few million records. A store that keeps the
/// hashes of aligned subtrees (those starting at a multiple of their power-of-two size)
/// overrides `subtree_hash` to return them, and a proof then costs O(log n) reads.
///
/// [`subtree_hash`]: LeafHashSource::subtree_hash
pub trait LeafHashSource {
    /// Why a hash could not be read (an I/O error, a missing row).
    type Error: std::error::Error + Send + Sync + 'static;

    /// The hash of leaf `index` (0-based: the record with `seq` = index + 1).
    fn leaf_hash(&self, index: u64) -> Result<MerkleHash, Self::Error>;

    /// The root of the subtree of leaves `start..end` (`start` < `end`), MTH of those leaves.
    fn subtree_hash(&self, start: u64, end: u64) -> Result<MerkleHash, Self::Error> {
        if end - start == 1 {
            return self.leaf_hash(start);
        }
        let k = split(end - start);
        Ok(node_hash(&self.subtree_hash(start, start + k)?, &self.subtree_hash(start + k, end)?))
    }
}

/// A slice of leaf hashes was asked for a leaf it does not hold.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("leaf {index} was asked for, but only {len} leaf hashes are held")]
pub struct LeafOutOfRange {
    /// The first index asked for that is not held.
    pub index: u64,
    /// How many leaf hashes are held.
    pub len: u64,
}

impl LeafHashSource for [MerkleHash] {
    type Error = LeafOutOfRange;

    fn leaf_hash(&self, index: u64) -> Result<MerkleHash, LeafOutOfRange> {
        self.subtree_hash(index, index + 1)
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<MerkleHash, LeafOutOfRange> {
        let len = self.len() as u64;
        match usize::try_from(end).ok().and_then(|end| self.get(start as usize..end)) {
            Some(leaves) if start < end => Ok(root(leaves)),
            _ => Err(LeafOutOfRange { index: start.max(len), len }),
        }
    }
}

impl LeafHashSource for Vec<MerkleHash> {
    type Error = LeafOutOfRange;

    fn leaf_hash(&self, index: u64) -> Result<MerkleHash, LeafOutOfRange> {
        self.as_slice().leaf_hash(index)
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<MerkleHash, LeafOutOfRange> {
        self.as_slice().subtree_hash(start, end)
    }
}

/// Why a proof could not be generated.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProveError<E: std::error::Error + 'static> {
    /// The proof was asked for sizes or an index the log cannot answer for.
    #[error("cannot prove {what}: {why}")]
    OutOfRange {
        /// What was asked for, with its numbers.
        what: String,
        /// Which bound it breaks.
        why: &'static str,
    },
    /// A leaf or subtree hash could not be read from the source.
    #[error("cannot read the log's leaf hashes")]
    Source(#[source] E),
}

/// The audit path of leaf `index` in the tree of the first `tree_size` leaves of `source`
/// (RFC 9162 §2.1.3.1 PATH), from the leaf's sibling up to the root's child.
pub fn inclusion_path<S: LeafHashSource + ?Sized>(
    source: &S,
    index: u64,
    tree_size: u64,
) -> Result<Vec<MerkleHash>, ProveError<S::Error>> {
    if index >= tree_size {
        return Err(ProveError::OutOfRange {
            what: format!("inclusion of leaf {index} in a tree of {tree_size} leaves"),
            why: "the leaf index must be smaller than the tree size",
        });
    }
    let mut path = Vec::new();
    // Walk down from the root, collecting the sibling subtree at each level; the RFC lists
    // them bottom-up, so reverse at the end.
    let (mut start, mut end) = (0, tree_size);
    while end - start > 1 {
        let k = split(end - start);
        if index < start + k {
            path.push(source.subtree_hash(start + k, end).map_err(ProveError::Source)?);
            end = start + k;
        } else {
            path.push(source.subtree_hash(start, start + k).map_err(ProveError::Source)?);
            start += k;
        }
    }
    path.reverse();
    Ok(path)
}

/// The consistency proof between the trees of the first `old_size` and the first `new_size`
/// leaves of `source` (RFC 9162 §2.1.4.1 PROOF), for 0 < `old_size` ≤ `new_size`; empty when
/// the sizes are equal.
pub fn consistency_path<S: LeafHashSource + ?Sized>(
    source: &S,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<MerkleHash>, ProveError<S::Error>> {
    let out_of_range = |why| ProveError::OutOfRange {
        what: format!("consistency of a tree of {old_size} leaves with one of {new_size}"),
        why,
    };
    if old_size == 0 {
        return Err(out_of_range("every tree extends the empty tree; there is nothing to prove"));
    }
    if old_size > new_size {
        return Err(out_of_range("the old size must not exceed the new size"));
    }
    let mut path = Vec::new();
    // SUBPROOF(m, D[start..end], complete), unrolled: each step either finishes or recurses
    // into one half, pushing the other half's hash (the RFC appends it after the recursion's
    // result, so reverse at the end).
    let (mut m, mut start, mut end, mut complete) = (old_size, 0, new_size, true);
    loop {
        let n = end - start;
        if m == n {
            if !complete {
                path.push(source.subtree_hash(start, end).map_err(ProveError::Source)?);
            }
            break;
        }
        let k = split(n);
        if m <= k {
            path.push(source.subtree_hash(start + k, end).map_err(ProveError::Source)?);
            end = start + k;
        } else {
            path.push(source.subtree_hash(start, start + k).map_err(ProveError::Source)?);
            m -= k;
            start += k;
            complete = false;
        }
    }
    path.reverse();
    Ok(path)
}

/// Why a proof does not verify. Each variant is a reason to distrust the log (or the proof's
/// messenger); none is a transient failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProofError {
    /// The leaf index is not inside the tree.
    #[error("leaf {index} is not in a tree of {tree_size} leaves")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        tree_size: u64,
    },
    /// The proof has more or fewer hashes than the sizes call for.
    #[error("the proof has the wrong number of hashes for these sizes")]
    WrongLength,
    /// The hashes do not lead to the expected root.
    #[error("the proof does not lead to the expected root hash {expected}")]
    RootMismatch {
        /// The root the proof had to reach.
        expected: MerkleHash,
    },
    /// The old tree head's root cannot be rebuilt from the proof: the log at the new size does
    /// not start with the tree the old head describes (truncated, rewritten or forked).
    #[error("the proof does not lead to the old root hash {expected}: the log does not extend the old tree")]
    OldRootMismatch {
        /// The old root.
        expected: MerkleHash,
    },
    /// The new tree is smaller than the old one: the log was truncated.
    #[error("the new tree ({new_size} leaves) is smaller than the old one ({old_size}): the log was truncated")]
    Shrunk {
        /// The old size.
        old_size: u64,
        /// The new size.
        new_size: u64,
    },
    /// Consistency with the empty tree was asked for: it holds trivially and has no proof.
    #[error("a consistency proof from the empty tree is meaningless")]
    FromEmpty,
}

/// The root that the audit `path` of the leaf with hash `leaf` at `index` leads to in a tree of
/// `tree_size` leaves (RFC 9162 §2.1.3.2, steps 1–5 without the final comparison).
pub fn root_from_inclusion_path(
    index: u64,
    tree_size: u64,
    leaf: &MerkleHash,
    path: &[MerkleHash],
) -> Result<MerkleHash, ProofError> {
    if index >= tree_size {
        return Err(ProofError::IndexOutOfRange { index, tree_size });
    }
    let (mut fnode, mut snode) = (index, tree_size - 1);
    let mut r = *leaf;
    for p in path {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            r = node_hash(p, &r);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    Ok(r)
}

/// Verifies that `path` proves the leaf with hash `leaf` at `index` is in the tree of
/// `tree_size` leaves whose root is `root` (RFC 9162 §2.1.3.2).
pub fn verify_inclusion(
    index: u64,
    tree_size: u64,
    leaf: &MerkleHash,
    path: &[MerkleHash],
    root: &MerkleHash,
) -> Result<(), ProofError> {
    let computed = root_from_inclusion_path(index, tree_size, leaf, path)?;
    if computed != *root {
        return Err(ProofError::RootMismatch { expected: *root });
    }
    Ok(())
}

/// Verifies that `path` proves the tree of `new_size` leaves with root `new_root` extends the
/// tree of `old_size` leaves with root `old_root` (RFC 9162 §2.1.4.2).
///
/// Equal sizes need an empty path and equal roots. An `old_size` of 0 is refused
/// ([`ProofError::FromEmpty`]), as RFC 6962 defines proofs only for 0 < old ≤ new; a caller
/// that trusts an empty tree needs no proof.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &MerkleHash,
    new_root: &MerkleHash,
    path: &[MerkleHash],
) -> Result<(), ProofError> {
    if new_size < old_size {
        return Err(ProofError::Shrunk { old_size, new_size });
    }
    if old_size == 0 {
        return Err(ProofError::FromEmpty);
    }
    if old_size == new_size {
        if !path.is_empty() {
            return Err(ProofError::WrongLength);
        }
        if old_root != new_root {
            return Err(ProofError::RootMismatch { expected: *new_root });
        }
        return Ok(());
    }
    // Step 1: a proof between different sizes is never empty.
    let Some((first, rest)) = path.split_first() else {
        return Err(ProofError::WrongLength);
    };
    // Step 2: when the old tree is a complete subtree its root is not in the path.
    let (seed, rest) = if old_size.is_power_of_two() { (old_root, path) } else { (first, rest) };
    // Steps 3-4.
    let (mut fnode, mut snode) = (old_size - 1, new_size - 1);
    while fnode & 1 == 1 {
        fnode >>= 1;
        snode >>= 1;
    }
    // Steps 5-6.
    let (mut fr, mut sr) = (*seed, *seed);
    for c in rest {
        if snode == 0 {
            return Err(ProofError::WrongLength);
        }
        if fnode & 1 == 1 || fnode == snode {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if fnode & 1 == 0 {
                while fnode & 1 == 0 && fnode != 0 {
                    fnode >>= 1;
                    snode >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        fnode >>= 1;
        snode >>= 1;
    }
    // Step 7.
    if snode != 0 {
        return Err(ProofError::WrongLength);
    }
    if fr != *old_root {
        return Err(ProofError::OldRootMismatch { expected: *old_root });
    }
    if sr != *new_root {
        return Err(ProofError::RootMismatch { expected: *new_root });
    }
    Ok(())
}

/// An inclusion proof as it crosses the API: the leaf at `leaf_index` (the record with `seq` =
/// `leaf_index` + 1) with hash `leaf_hash` is in the tree of `tree_size` leaves, by `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    /// 0-based index of the leaf: the record's `seq` minus 1.
    pub leaf_index: u64,
    /// The size of the tree the proof is for; a tree head of this size gives the root.
    pub tree_size: u64,
    /// The leaf hash: SHA-256 of 0x00 and the record's canonical JSON.
    pub leaf_hash: MerkleHash,
    /// The audit path, from the leaf's sibling upwards (RFC 9162 §2.1.3.1).
    pub path: Vec<MerkleHash>,
}

impl InclusionProof {
    /// The proof for leaf `leaf_index` in the tree of the first `tree_size` leaves of `source`.
    pub fn generate<S: LeafHashSource + ?Sized>(
        source: &S,
        leaf_index: u64,
        tree_size: u64,
    ) -> Result<InclusionProof, ProveError<S::Error>> {
        let path = inclusion_path(source, leaf_index, tree_size)?;
        let leaf_hash = source.leaf_hash(leaf_index).map_err(ProveError::Source)?;
        Ok(InclusionProof { leaf_index, tree_size, leaf_hash, path })
    }

    /// Verifies the proof against the root of a tree of `self.tree_size` leaves.
    pub fn verify(&self, root: &MerkleHash) -> Result<(), ProofError> {
        verify_inclusion(self.leaf_index, self.tree_size, &self.leaf_hash, &self.path, root)
    }
}

/// A consistency proof as it crosses the API: the tree of `new_size` leaves extends the tree of
/// `old_size` leaves, by `path`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    /// The size of the older tree (the one an auditor saw).
    pub old_size: u64,
    /// The size of the newer tree.
    pub new_size: u64,
    /// The proof's hashes (RFC 9162 §2.1.4.1); empty when the sizes are equal.
    pub path: Vec<MerkleHash>,
}

impl ConsistencyProof {
    /// The proof between the trees of the first `old_size` and `new_size` leaves of `source`.
    pub fn generate<S: LeafHashSource + ?Sized>(
        source: &S,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, ProveError<S::Error>> {
        let path = consistency_path(source, old_size, new_size)?;
        Ok(ConsistencyProof { old_size, new_size, path })
    }

    /// Verifies the proof between the roots of the two trees.
    pub fn verify(&self, old_root: &MerkleHash, new_root: &MerkleHash) -> Result<(), ProofError> {
        verify_consistency(self.old_size, self.new_size, old_root, new_root, &self.path)
    }
}
