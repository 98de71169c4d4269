//! Proofs in O(log n) without reading the whole log: [`SubtreeCache`] keeps the hash of every
//! complete aligned block of [`BLOCK_LEAVES`] leaves and of every aligned power-of-two group
//! of such blocks (about 2 × n / 256 hashes: 250 KB for a million records), and
//! [`CachedLeaves`] answers [`LeafHashSource`] from it plus the few leaf hashes a proof needs
//! beyond it ([`SubtreeCache::windows_for`]): the block of each proven leaf or boundary and the
//! tree's last, incomplete block.
//!
//! Every hash of a complete aligned subtree is fixed once its leaves are: a log only grows, so
//! the cache is extended block by block and never changes what it holds. A log found shorter
//! than the cache (truncated) must be met with [`SubtreeCache::clear`] by its owner.

use crate::merkle::{LeafHashSource, LeafOutOfRange, MerkleHash, node_hash, root};

/// Leaves per cached block: proofs read at most a few blocks of leaf hashes (8 KB each).
pub const BLOCK_LEAVES: u64 = 256;

/// The hashes of every complete aligned subtree of at least one block, among the first
/// [`SubtreeCache::covered`] leaves of a log.
#[derive(Debug, Clone)]
pub struct SubtreeCache {
    /// Leaves per block (a power of two; [`BLOCK_LEAVES`] outside tests).
    block: u64,
    /// `levels[k][i]`: the root of leaves `i·block·2^k .. (i+1)·block·2^k`.
    levels: Vec<Vec<MerkleHash>>,
}

impl Default for SubtreeCache {
    fn default() -> Self {
        Self::new()
    }
}

impl SubtreeCache {
    /// An empty cache of [`BLOCK_LEAVES`]-leaf blocks.
    pub fn new() -> Self {
        Self::with_block(BLOCK_LEAVES)
    }

    /// An empty cache of `block`-leaf blocks (rounded up to a power of two, at least 2).
    pub fn with_block(block: u64) -> Self {
        Self { block: block.max(2).next_power_of_two(), levels: Vec::new() }
    }

    /// Leaves per block.
    pub fn block(&self) -> u64 {
        self.block
    }

    /// How many leaves the cached blocks cover: a multiple of the block size.
    pub fn covered(&self) -> u64 {
        self.levels.first().map_or(0, |l| l.len() as u64) * self.block
    }

    /// Forgets everything (the log was found shorter than the cache).
    pub fn clear(&mut self) {
        self.levels.clear();
    }

    /// Appends the blocks of `leaves`, the leaf hashes that follow [`SubtreeCache::covered`],
    /// whole blocks only; returns how many leaves it took (a trailing partial block is left).
    pub fn extend(&mut self, leaves: &[MerkleHash]) -> u64 {
        let block = usize::try_from(self.block).unwrap_or(usize::MAX);
        let mut taken = 0;
        for chunk in leaves.chunks_exact(block) {
            self.push(0, root(chunk));
            taken += self.block;
        }
        taken
    }

    /// Pushes `hash` onto level `k` and carries completed pairs upwards.
    fn push(&mut self, k: usize, hash: MerkleHash) {
        let (mut k, mut hash) = (k, hash);
        loop {
            if self.levels.len() <= k {
                self.levels.push(Vec::new());
            }
            let level = &mut self.levels[k];
            level.push(hash);
            if !level.len().is_multiple_of(2) {
                return;
            }
            hash = node_hash(&level[level.len() - 2], &level[level.len() - 1]);
            k += 1;
        }
    }

    /// The root of leaves `start..end` when it is a cached aligned subtree.
    pub fn get(&self, start: u64, end: u64) -> Option<MerkleHash> {
        let len = end.checked_sub(start)?;
        if len < self.block || !len.is_power_of_two() || !start.is_multiple_of(len) || end > self.covered() {
            return None;
        }
        let k = (len / self.block).trailing_zeros() as usize;
        self.levels.get(k)?.get(usize::try_from(start / len).ok()?).copied()
    }

    /// The leaf ranges, beyond this cache, that proofs in the tree of `tree_size` leaves about
    /// `points` need: the block holding each point (a leaf index, or the older size of a
    /// consistency proof), and every leaf from the last complete cached block that `tree_size`
    /// reaches. Sorted, merged, each within `0..tree_size`.
    pub fn windows_for(&self, tree_size: u64, points: &[u64]) -> Vec<(u64, u64)> {
        let block = self.block;
        let tail_start = (tree_size / block * block).min(self.covered());
        let mut ranges: Vec<(u64, u64)> = points
            .iter()
            .filter(|p| **p <= tree_size)
            .map(|p| {
                let start = p.min(&tree_size.saturating_sub(1)) / block * block;
                (start, (start + block).min(tree_size))
            })
            .collect();
        if tail_start < tree_size {
            ranges.push((tail_start, tree_size));
        }
        ranges.retain(|(s, e)| s < e);
        ranges.sort_unstable();
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1 => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        merged
    }
}

/// A [`LeafHashSource`] over a [`SubtreeCache`] and windows of leaf hashes read for one proof
/// (from [`SubtreeCache::windows_for`]). Asked for a leaf outside every window and not covered
/// by a cached subtree, it answers [`LeafOutOfRange`].
#[derive(Debug)]
pub struct CachedLeaves<'a> {
    cache: &'a SubtreeCache,
    /// `(start, leaves)`, sorted by `start`, not overlapping.
    windows: Vec<(u64, Vec<MerkleHash>)>,
}

impl<'a> CachedLeaves<'a> {
    /// The source of `cache` and `windows` (`(first leaf index, its leaf hashes)` each).
    pub fn new(cache: &'a SubtreeCache, mut windows: Vec<(u64, Vec<MerkleHash>)>) -> Self {
        windows.sort_unstable_by_key(|(start, _)| *start);
        Self { cache, windows }
    }

    /// The leaves `start..end` when one window holds them all.
    fn window(&self, start: u64, end: u64) -> Option<&[MerkleHash]> {
        let (first, leaves) = self.windows.iter().rev().find(|(first, _)| *first <= start)?;
        let from = usize::try_from(start - first).ok()?;
        let to = usize::try_from(end - first).ok()?;
        leaves.get(from..to)
    }
}

impl LeafHashSource for CachedLeaves<'_> {
    type Error = LeafOutOfRange;

    fn leaf_hash(&self, index: u64) -> Result<MerkleHash, LeafOutOfRange> {
        self.subtree_hash(index, index + 1)
    }

    fn subtree_hash(&self, start: u64, end: u64) -> Result<MerkleHash, LeafOutOfRange> {
        if let Some(hash) = self.cache.get(start, end) {
            return Ok(hash);
        }
        if let Some(leaves) = self.window(start, end).filter(|l| !l.is_empty()) {
            return Ok(root(leaves));
        }
        if end <= start + 1 {
            let held = self.windows.iter().map(|(s, l)| s + l.len() as u64).max().unwrap_or(0);
            return Err(LeafOutOfRange { index: start, len: held.max(self.cache.covered()) });
        }
        let k = crate::merkle::split(end - start);
        Ok(node_hash(&self.subtree_hash(start, start + k)?, &self.subtree_hash(start + k, end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::{consistency_path, inclusion_path, leaf_hash};

    fn leaves(n: u64) -> Vec<MerkleHash> {
        (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect()
    }

    fn source<'a>(cache: &'a SubtreeCache, all: &[MerkleHash], size: u64, points: &[u64]) -> CachedLeaves<'a> {
        let windows = cache
            .windows_for(size, points)
            .into_iter()
            .map(|(s, e)| (s, all[s as usize..e as usize].to_vec()))
            .collect();
        CachedLeaves::new(cache, windows)
    }

    /// Every root, inclusion path and consistency path from the cache and its windows equals
    /// the one computed from all leaves, for every tree size up to 70 with 4-leaf blocks (so
    /// many levels, partial tails and cache states are met), and for caches behind the size.
    #[test]
    fn proofs_from_the_cache_equal_proofs_from_every_leaf() {
        let all = leaves(70);
        let mut cache = SubtreeCache::with_block(4);
        for size in 1..=70u64 {
            // The cache as the service keeps it: every complete block below `size`, and,
            // every third size, one block less (another process grew the log since).
            let want = size / 4 * 4 - if size % 3 == 0 { 4.min(size / 4 * 4) } else { 0 };
            if cache.covered() > want {
                cache.clear();
            }
            let from = cache.covered() as usize;
            cache.extend(&all[from..want as usize]);
            assert_eq!(cache.covered(), want);
            let whole = &all[..size as usize];
            let src = source(&cache, &all, size, &[]);
            assert_eq!(src.subtree_hash(0, size), Ok(root(whole)), "root of {size}");
            for index in 0..size {
                let src = source(&cache, &all, size, &[index]);
                assert_eq!(
                    inclusion_path(&src, index, size).ok(),
                    inclusion_path(whole, index, size).ok(),
                    "inclusion of {index} in {size}"
                );
            }
            for old in 1..=size {
                let src = source(&cache, &all, size, &[old]);
                assert_eq!(
                    consistency_path(&src, old, size).ok(),
                    consistency_path(whole, old, size).ok(),
                    "consistency of {old} and {size}"
                );
            }
        }
    }

    /// A cache that has run ahead of the tree asked about (a proof for an older head, after
    /// the log grew) gives the same proofs.
    #[test]
    fn a_cache_ahead_of_the_tree_gives_the_same_proofs() {
        let all = leaves(70);
        let mut cache = SubtreeCache::with_block(4);
        cache.extend(&all);
        assert_eq!(cache.covered(), 68);
        for size in 1..=70u64 {
            let whole = &all[..size as usize];
            assert_eq!(source(&cache, &all, size, &[]).subtree_hash(0, size), Ok(root(whole)), "root of {size}");
            for index in 0..size {
                let src = source(&cache, &all, size, &[index]);
                assert_eq!(inclusion_path(&src, index, size).ok(), inclusion_path(whole, index, size).ok());
            }
            for old in 1..=size {
                let src = source(&cache, &all, size, &[old]);
                assert_eq!(consistency_path(&src, old, size).ok(), consistency_path(whole, old, size).ok());
            }
        }
    }

    /// Without the windows a proof needs, the source says which leaf it lacks instead of
    /// answering wrongly.
    #[test]
    fn a_missing_window_is_an_error_not_a_wrong_hash() {
        let all = leaves(10);
        let mut cache = SubtreeCache::with_block(4);
        cache.extend(&all);
        assert_eq!(cache.covered(), 8);
        let bare = CachedLeaves::new(&cache, Vec::new());
        assert_eq!(bare.subtree_hash(0, 8), Ok(root(&all[..8])));
        assert!(bare.subtree_hash(0, 10).is_err());
        assert!(inclusion_path(&bare, 1, 10).is_err());
    }

    #[test]
    fn windows_cover_each_points_block_and_the_tail_merged() {
        let mut cache = SubtreeCache::with_block(4);
        cache.extend(&leaves(16));
        assert_eq!(cache.windows_for(18, &[1, 2, 13]), vec![(0, 4), (12, 18)]);
        assert_eq!(cache.windows_for(16, &[16]), vec![(12, 16)]);
        assert_eq!(cache.windows_for(16, &[]), Vec::<(u64, u64)>::new());
        // A cache behind the size: everything past it is read.
        assert_eq!(cache.windows_for(30, &[]), vec![(16, 30)]);
    }
}
