//! The Merkle tree as it is stored: every perfect subtree is kept once it is complete, and
//! the log's right edge (its *frontier*) is kept with the head, so a head or a proof at any
//! size needs O(log n) stored hashes instead of every leaf.
//!
//! A perfect subtree is a [`NodeId`]: `level` L and `index` i cover leaves
//! `[i·2^L, (i+1)·2^L)`. Level 0 are the leaves themselves (the events' `hash`); levels ≥ 1
//! are written as they complete (`audit_tree_nodes`). Every range RFC 9162 takes the hash
//! of, in a head or a proof of any size, is either such a subtree or the right part of a
//! tree, `[a, size)`, which is a run of the size's own frontier subtrees; so a proof reads at
//! most its path's perfect subtrees plus the frontier of its size.
//!
//! Pure, like `chain`, which stays the reference: the tests check both agree at every size.

use std::collections::{BTreeSet, HashMap};

use super::chain::{self, Hash};

/// A perfect subtree: leaves `[index << level, (index + 1) << level)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId {
    pub level: u32,
    pub index: u64,
}

impl NodeId {
    pub fn new(level: u32, index: u64) -> Self {
        Self { level, index }
    }

    /// The leaf at `index` (its hash is the event's `hash`, `seq` = index + 1).
    pub fn leaf(index: u64) -> Self {
        Self::new(0, index)
    }

    fn width(self) -> u64 {
        1 << self.level
    }
}

/// The perfect subtrees covering `[lo, hi)`, left to right, each as large as its start's
/// alignment allows. For the ranges RFC 9162 splits a tree into (perfect ones, and right
/// parts `[a, size)`, whose start is aligned beyond their length), they come largest first,
/// and folding them right to left gives the range's Merkle tree hash.
fn cover(mut lo: u64, hi: u64) -> Vec<NodeId> {
    let mut out = Vec::new();
    while lo < hi {
        let fits = 63 - (hi - lo).leading_zeros();
        let level = fits.min(lo.trailing_zeros());
        out.push(NodeId::new(level, lo >> level));
        lo += 1 << level;
    }
    out
}

/// The frontier of a tree of `size` leaves: its perfect subtrees for the size's binary
/// digits, largest (leftmost) first.
pub fn frontier_ids(size: u64) -> Vec<NodeId> {
    cover(0, size)
}

/// Largest power of two strictly less than `n` (n ≥ 2), RFC 9162's split.
fn split_point(n: u64) -> u64 {
    1 << (63 - (n - 1).leading_zeros())
}

/// What a head or proof is made of: the leaf ranges whose tree hashes it lists, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    ranges: Vec<(u64, u64)>,
}

impl Plan {
    /// The head of a tree of `size` leaves (one range; none for the empty tree).
    pub fn head(size: u64) -> Self {
        Self {
            ranges: if size == 0 { vec![] } else { vec![(0, size)] },
        }
    }

    /// RFC 9162 §2.1.3.1: the inclusion path of leaf `index` in a tree of `size`, leaf
    /// side first (the walk of `chain::inclusion_proof`).
    pub fn inclusion(index: u64, size: u64) -> Option<Self> {
        if index >= size {
            return None;
        }
        let (mut lo, mut hi, mut m) = (0, size, index);
        let mut ranges = Vec::new();
        while hi - lo > 1 {
            let k = split_point(hi - lo);
            if m < k {
                ranges.push((lo + k, hi));
                hi = lo + k;
            } else {
                ranges.push((lo, lo + k));
                lo += k;
                m -= k;
            }
        }
        ranges.reverse();
        Some(Self { ranges })
    }

    /// RFC 9162 §2.1.4.1: the consistency proof from `from` leaves to `size` (the walk of
    /// `chain::consistency_proof`).
    pub fn consistency(from: u64, size: u64) -> Option<Self> {
        if from == 0 || from > size {
            return None;
        }
        let (mut lo, mut hi, mut m) = (0, size, from);
        let mut whole_old_tree = true;
        let mut tail = Vec::new();
        let mut head = None;
        loop {
            let n = hi - lo;
            if m == n {
                if !whole_old_tree {
                    head = Some((lo, hi));
                }
                break;
            }
            let k = split_point(n);
            if m <= k {
                tail.push((lo + k, hi));
                hi = lo + k;
            } else {
                tail.push((lo, lo + k));
                lo += k;
                m -= k;
                whole_old_tree = false;
            }
        }
        tail.reverse();
        Some(Self {
            ranges: head.into_iter().chain(tail).collect(),
        })
    }

    /// Every stored subtree the plan reads, each once: O(log n) of them.
    pub fn needs(&self) -> Vec<NodeId> {
        let ids: BTreeSet<NodeId> = self
            .ranges
            .iter()
            .flat_map(|&(lo, hi)| cover(lo, hi))
            .collect();
        ids.into_iter().collect()
    }

    /// The hashes, in order, from the stored subtrees; `None` if one is missing.
    pub fn resolve(&self, known: &HashMap<NodeId, Hash>) -> Option<Vec<Hash>> {
        self.ranges
            .iter()
            .map(|&(lo, hi)| {
                let mut parts = cover(lo, hi).into_iter().rev();
                let last = *known.get(&parts.next()?)?;
                parts.try_fold(last, |acc, id| {
                    Some(chain::node_hash(known.get(&id)?, &acc))
                })
            })
            .collect()
    }
}

/// The log's right edge: the roots of the perfect subtrees its size decomposes into,
/// largest first. Kept with the head, it gives the current head in O(log n) and tells each
/// append which subtrees the new leaf completes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Frontier {
    size: u64,
    roots: Vec<Hash>,
}

impl Frontier {
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The stored form: each root as 64 lowercase hex digits, concatenated, largest first.
    pub fn encode(&self) -> String {
        self.roots.iter().map(chain::to_hex).collect()
    }

    /// Reads the stored form for a log of `size` leaves; `None` unless it holds exactly one
    /// root per binary digit of the size.
    pub fn decode(size: u64, stored: &str) -> Option<Self> {
        if stored.len() != 64 * size.count_ones() as usize || !stored.is_ascii() {
            return None;
        }
        let roots = (0..stored.len())
            .step_by(64)
            .map(|at| chain::from_hex(&stored[at..at + 64]))
            .collect::<Option<Vec<_>>>()?;
        Some(Self { size, roots })
    }

    /// From the frontier's subtrees read back from storage (see [`frontier_ids`]).
    pub fn from_nodes(size: u64, known: &HashMap<NodeId, Hash>) -> Option<Self> {
        let roots = frontier_ids(size)
            .iter()
            .map(|id| known.get(id).copied())
            .collect::<Option<Vec<_>>>()?;
        Some(Self { size, roots })
    }

    /// Appends a leaf; returns the subtrees of level ≥ 1 it completes, lowest first, which
    /// is what gets stored (merging equal neighbours, like a carry in binary addition).
    pub fn push(&mut self, leaf: Hash) -> Vec<(NodeId, Hash)> {
        let mut made = Vec::with_capacity(self.size.trailing_ones() as usize);
        self.push_each(leaf, |id, hash| made.push((id, *hash)));
        made
    }

    /// [`Frontier::push`], handing each completed subtree to `completed` instead of
    /// collecting them (a verification pushes every leaf of the log).
    pub fn push_each(&mut self, leaf: Hash, mut completed: impl FnMut(NodeId, &Hash)) {
        let mut hash = leaf;
        for level in 1..=self.size.trailing_ones() {
            let Some(left) = self.roots.pop() else { break };
            hash = chain::node_hash(&left, &hash);
            completed(NodeId::new(level, ((self.size + 1) >> level) - 1), &hash);
        }
        self.roots.push(hash);
        self.size += 1;
    }

    /// RFC 9162 head: the roots folded right to left (the empty tree's for size 0).
    pub fn root(&self) -> Hash {
        let mut rest = self.roots.iter().rev();
        match rest.next() {
            None => chain::tree_head(&[]),
            Some(&last) => rest.fold(last, |acc, left| chain::node_hash(left, &acc)),
        }
    }

    /// How many subtrees of level ≥ 1 a log of `size` leaves has stored: n − popcount(n).
    pub fn stored_nodes(size: u64) -> u64 {
        size - u64::from(size.count_ones())
    }
}

impl NodeId {
    /// The last leaf this subtree covers: the append that completes it.
    pub fn last_leaf(self) -> u64 {
        (self.index + 1) * self.width() - 1
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use sha2::{Digest, Sha256};

    fn leaves(count: u64) -> Vec<Hash> {
        (0..count)
            .map(|i| {
                let mut h = Sha256::new();
                h.update([0]);
                h.update(i.to_be_bytes());
                h.finalize().into()
            })
            .collect()
    }

    /// What the database would hold after `leaves` were appended one by one: the leaves at
    /// level 0 and every subtree `push` reported.
    fn stored(leaves: &[Hash]) -> (Frontier, HashMap<NodeId, Hash>) {
        let mut f = Frontier::default();
        let mut known = HashMap::new();
        for (i, leaf) in leaves.iter().enumerate() {
            known.insert(NodeId::leaf(i as u64), *leaf);
            for (id, hash) in f.push(*leaf) {
                assert_eq!(id.last_leaf(), i as u64, "{id:?} completes at leaf {i}");
                assert!(known.insert(id, hash).is_none(), "{id:?} stored twice");
            }
        }
        (f, known)
    }

    /// Only what the plan says it needs, so a plan that reads more than it declares fails.
    fn only(needs: &[NodeId], all: &HashMap<NodeId, Hash>) -> HashMap<NodeId, Hash> {
        needs.iter().map(|id| (*id, all[id])).collect()
    }

    fn assert_agree(d: &[Hash], all: &HashMap<NodeId, Hash>, size: u64) {
        let t = &d[..size as usize];
        let head = Plan::head(size);
        let got = head.resolve(&only(&head.needs(), all)).unwrap();
        assert_eq!(
            got.first()
                .copied()
                .unwrap_or_else(|| chain::tree_head(&[])),
            chain::tree_head(t),
            "head {size}"
        );
        let frontier = Frontier::from_nodes(size, all).unwrap();
        assert_eq!(frontier.root(), chain::tree_head(t), "frontier {size}");
        for i in 0..size {
            let plan = Plan::inclusion(i, size).unwrap();
            let needs = plan.needs();
            assert!(needs.len() <= 2 * 64, "{i}/{size}");
            assert_eq!(
                plan.resolve(&only(&needs, all)),
                chain::inclusion_proof(t, i as usize),
                "inclusion {i}/{size}"
            );
        }
        for from in 1..=size {
            let plan = Plan::consistency(from, size).unwrap();
            assert_eq!(
                plan.resolve(&only(&plan.needs(), all)),
                chain::consistency_proof(t, from as usize),
                "consistency {from}/{size}"
            );
        }
        assert_eq!(Plan::inclusion(size, size), None);
        assert_eq!(Plan::consistency(0, size), None);
        assert_eq!(Plan::consistency(size + 1, size), None);
    }

    #[test]
    fn heads_and_proofs_from_stored_nodes_equal_the_reference_up_to_70() {
        let d = leaves(70);
        let (_, all) = stored(&d);
        for size in 0..=70 {
            assert_agree(&d, &all, size);
        }
    }

    #[test]
    fn heads_and_proofs_from_stored_nodes_equal_the_reference_at_random_sizes() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(13);
        let d = leaves(1100);
        let (_, all) = stored(&d);
        for _ in 0..12 {
            let size = rng.gen_range(71..=1100);
            let t = &d[..size as usize];
            assert_eq!(
                Frontier::from_nodes(size, &all).unwrap().root(),
                chain::tree_head(t)
            );
            for _ in 0..40 {
                let i = rng.gen_range(0..size);
                let plan = Plan::inclusion(i, size).unwrap();
                assert_eq!(
                    plan.resolve(&only(&plan.needs(), &all)),
                    chain::inclusion_proof(t, i as usize),
                    "inclusion {i}/{size}"
                );
                let from = i + 1;
                let plan = Plan::consistency(from, size).unwrap();
                assert_eq!(
                    plan.resolve(&only(&plan.needs(), &all)),
                    chain::consistency_proof(t, from as usize),
                    "consistency {from}/{size}"
                );
            }
        }
    }

    #[test]
    fn appending_stores_each_perfect_subtree_once_and_keeps_the_frontier() {
        let d = leaves(300);
        let mut f = Frontier::default();
        let mut count = 0;
        for (i, leaf) in d.iter().enumerate() {
            count += f.push(*leaf).len() as u64;
            let size = i as u64 + 1;
            assert_eq!(f.size(), size);
            assert_eq!(f.root(), chain::tree_head(&d[..size as usize]));
            assert_eq!(count, Frontier::stored_nodes(size));
            assert_eq!(Frontier::decode(size, &f.encode()), Some(f.clone()));
            assert_eq!(frontier_ids(size).len(), size.count_ones() as usize);
        }
        let (_, all) = stored(&d);
        // Every stored subtree is the tree hash of the leaves it covers.
        for (id, hash) in &all {
            let lo = (id.index << id.level) as usize;
            assert_eq!(
                *hash,
                chain::tree_head(&d[lo..lo + (1 << id.level)]),
                "{id:?}"
            );
        }
    }

    #[test]
    fn a_stored_frontier_of_the_wrong_shape_is_refused() {
        let (f, _) = stored(&leaves(5));
        let text = f.encode();
        assert_eq!(text.len(), 128);
        assert_eq!(Frontier::decode(5, &text).map(|g| g.root()), Some(f.root()));
        assert_eq!(Frontier::decode(4, &text), None);
        assert_eq!(Frontier::decode(6, &text[..64]), None);
        assert_eq!(Frontier::decode(5, &format!("{}zz", &text[..126])), None);
        assert_eq!(Frontier::decode(0, ""), Some(Frontier::default()));
        assert_eq!(Frontier::default().root(), chain::tree_head(&[]));
    }

    #[test]
    fn a_proof_at_a_million_reads_a_few_dozen_nodes() {
        let size = 1_000_003;
        let worst = (0..size)
            .step_by(997)
            .map(|i| Plan::inclusion(i, size).map_or(0, |p| p.needs().len()))
            .max();
        assert!(worst <= Some(40), "{worst:?}");
        let c = Plan::consistency(999_999, size).map(|p| p.needs().len());
        assert!(c <= Some(40), "{c:?}");
    }
}
