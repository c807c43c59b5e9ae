//! Verifying the stored chain and tree: every event re-hashed and linked to the one before,
//! the Merkle tree rebuilt from the re-hashed leaves and compared with every stored subtree,
//! the frontier and the head.
//!
//! Two threads share the walk: the connection's thread reads pages of rows and copies their
//! text into a reused buffer (and the stored subtrees those rows complete), while a hasher
//! thread re-hashes the page before. Buffers go back and forth, so nothing is allocated per
//! event.

use std::ops::Range;
use std::sync::mpsc::{channel, sync_channel, Receiver, Sender};

use super::chain::{self, EventFields};
use super::tree::{Frontier, NodeId};
use crate::storage::audit::{self as store, Head};
use crate::storage::audit_scan::{self as scan, CopiedEvent};
use crate::storage::{DbConn, StorageError};

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: u64,
    pub head: String,
    pub first_bad_seq: Option<i64>,
    /// Whether the stored Merkle tree is the one the chain rebuilds.
    pub tree: TreeCheck,
    /// Leaf hashes of the intact prefix, for checkpoint comparison; empty unless asked for
    /// ([`Leaves::Keep`]).
    pub leaves: Vec<chain::Hash>,
}

/// The stored tree (subtrees and the head's frontier), against the tree rebuilt from the
/// re-hashed events. Proofs and checkpoints are computed from the stored one, so a stored
/// tree that differs makes the log not intact even when every event is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TreeCheck {
    /// Every stored subtree and the frontier are the rebuilt ones, and nothing more is stored.
    Agrees,
    /// A log from before the tree was kept, whose tree the service builds at its next start
    /// (the frontier is not set, and no subtree is stored).
    NotBuilt,
    /// The chain is broken, so there is no one tree to compare with.
    Unchecked,
    /// What differs first.
    Differs(String),
}

impl TreeCheck {
    /// A sentence for reports, `None` when there is nothing to say.
    pub fn problem(&self) -> Option<String> {
        match self {
            Self::Differs(why) => Some(why.clone()),
            _ => None,
        }
    }
}

/// Whether the report keeps every leaf hash of the intact prefix (32 bytes an event), which
/// checking a checkpoint or proving needs and a plain verification does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaves {
    Keep,
    Skip,
}

/// Events a page: one statement each, and about 10 MiB of text in the buffer it fills.
const PAGE: i64 = 16_384;

/// Re-hashes every event in `seq` order, stopping at the first bad one, and rebuilds the
/// Merkle tree from the re-hashed leaves. The head row must agree too (a log whose tail was
/// cut no longer reaches it), and so must the stored tree: every subtree, the frontier, and
/// nothing more. Call first in a read transaction: it makes it one snapshot, so a log
/// growing meanwhile is seen as it was.
pub(crate) fn verify_all(conn: &mut DbConn, leaves: Leaves) -> Result<VerifyReport, StorageError> {
    store::snapshot(conn)?;
    let head = store::head(conn)?;
    // A log from before the tree has no subtree to compare (see `check_tree`).
    let tree_kept = head.frontier.is_some();
    let size = u64::try_from(head.size).unwrap_or(0);
    let walk = std::thread::scope(|s| -> Result<Walk, StorageError> {
        let (full_tx, full_rx) = sync_channel::<Page>(2);
        let (spent_tx, spent_rx) = channel::<Page>();
        let hasher = s.spawn(move || hash_pages(&full_rx, &spent_tx, Walk::new(leaves, size)));
        read_pages(conn, tree_kept, &full_tx, &spent_rx)?;
        drop(full_tx);
        match hasher.join() {
            Ok(walk) => Ok(walk),
            Err(panic) => std::panic::resume_unwind(panic),
        }
    })?;
    let mut first_bad_seq = walk.first_bad_seq;
    let mut ok = first_bad_seq.is_none();
    let mut tree = TreeCheck::Unchecked;
    if ok {
        // The head row is written in the same transaction as each event; a cut tail or a
        // rewritten last event leaves it pointing elsewhere.
        tree = check_tree(conn, &head, &walk.rebuilt, walk.first_difference)?;
        let checked = walk.checked as i64;
        if head.size != checked {
            // Events missing at the tail: the first one missing is the first bad one.
            ok = false;
            first_bad_seq = Some(checked.min(head.size) + 1);
        } else if head.hash.as_bytes() != walk.last_hash {
            // Hashes recomputed consistently: broken, but no single event can be named.
            ok = false;
        }
        ok &= matches!(tree, TreeCheck::Agrees | TreeCheck::NotBuilt);
    }
    Ok(VerifyReport {
        ok,
        checked: walk.checked,
        head: chain::to_hex(&walk.rebuilt.root()),
        first_bad_seq,
        tree,
        leaves: walk.leaves,
    })
}

/// A page of rows as read: their text in one buffer, reused from page to page.
#[derive(Default)]
struct Page {
    text: String,
    events: Vec<CopiedEvent>,
    /// The stored subtrees the page's leaves complete, level L at `levels[L - 1]`, by index,
    /// with where each stored hash is in `node_text`.
    levels: Vec<Vec<(u64, Range<usize>)>>,
    node_text: String,
}

impl Page {
    fn clear(&mut self) {
        self.text.clear();
        self.events.clear();
        self.node_text.clear();
        self.levels.iter_mut().for_each(Vec::clear);
    }

    /// Event `i`'s hashed fields and stored hash.
    fn event(&self, i: usize) -> (EventFields<'_>, &str) {
        let e = &self.events[i];
        let text = |at: &Range<usize>| &self.text[at.clone()];
        let fields = EventFields {
            seq: e.seq,
            at: text(&e.at),
            actor: text(&e.actor),
            role: text(&e.role),
            action: text(&e.action),
            work_order: e.work_order.as_ref().map(text),
            detail: text(&e.detail),
            prev_hash: text(&e.prev_hash),
        };
        (fields, text(&e.hash))
    }

    /// Reads the stored subtrees that leaves `lo..hi` (0-based) complete.
    fn read_nodes(&mut self, conn: &mut DbConn, lo: u64, hi: u64) -> Result<(), StorageError> {
        for (level, from, to) in completed_by(lo, hi) {
            let at = level as usize - 1;
            if self.levels.len() <= at {
                self.levels.resize_with(at + 1, Vec::new);
            }
            scan::copy_nodes_between(
                conn,
                level,
                (from, to),
                &mut self.node_text,
                &mut self.levels[at],
            )?;
        }
        Ok(())
    }
}

/// The subtrees leaves `lo..hi` (0-based) complete, as `(level, from_idx, to_idx)` index
/// ranges, lowest level first: at level L those whose last leaf, `(idx + 1) · 2^L − 1`, falls
/// in the range.
fn completed_by(lo: u64, hi: u64) -> impl Iterator<Item = (u32, u64, u64)> {
    (1..u64::BITS)
        .map(move |level| (level, lo >> level, hi >> level))
        .take_while(|&(_, _, to)| to > 0)
        .filter(|&(_, from, to)| from < to)
}

/// The connection's side: pages of rows (and the subtrees they complete) to the hasher, until
/// the log ends or the hasher has stopped at a bad event.
fn read_pages(
    conn: &mut DbConn,
    tree_kept: bool,
    full: &std::sync::mpsc::SyncSender<Page>,
    spent: &Receiver<Page>,
) -> Result<(), StorageError> {
    let (mut after, mut lo) = (0, 0);
    loop {
        let mut page = spent.try_recv().unwrap_or_default();
        page.clear();
        scan::copy_events_after(conn, after, PAGE, &mut page.text, &mut page.events)?;
        let Some(last) = page.events.last() else {
            return Ok(());
        };
        let (rows, last) = (page.events.len() as u64, last.seq);
        after = last;
        let hi = lo + rows;
        if tree_kept {
            page.read_nodes(conn, lo, hi)?;
        }
        lo = hi;
        if full.send(page).is_err() {
            return Ok(());
        }
    }
}

/// What the hasher found.
struct Walk {
    /// Intact events so far, the prefix the rebuilt tree covers.
    checked: u64,
    /// The last intact event's hash (the genesis `prev_hash` before the first).
    last_hash: [u8; 64],
    first_bad_seq: Option<i64>,
    rebuilt: Frontier,
    /// The first stored subtree that is not the rebuilt one.
    first_difference: Option<String>,
    keep_leaves: bool,
    leaves: Vec<chain::Hash>,
}

impl Walk {
    fn new(leaves: Leaves, size: u64) -> Self {
        let mut last_hash = [0u8; 64];
        last_hash.copy_from_slice(chain::GENESIS_PREV_HASH.as_bytes());
        let keep_leaves = leaves == Leaves::Keep;
        // Room for the log the head announces, within reason (a tampered size is not trusted).
        let room = if keep_leaves { size.min(1 << 24) } else { 0 };
        Self {
            checked: 0,
            last_hash,
            first_bad_seq: None,
            rebuilt: Frontier::default(),
            first_difference: None,
            keep_leaves,
            leaves: Vec::with_capacity(usize::try_from(room).unwrap_or(0)),
        }
    }

    /// Re-hashes a page's events in order; false at the first bad one (the walk stops there:
    /// nothing after a break extends the intact prefix).
    fn take(&mut self, page: &Page, scratch: &mut Vec<u8>) -> bool {
        // Where each level's next stored subtree is in the page.
        let mut next_at = [0usize; 64];
        for i in 0..page.events.len() {
            let (e, stored_hash) = page.event(i);
            let leaf = chain::leaf_hash_in(&e, scratch);
            let mut hex = [0u8; 64];
            let hexed = hex::encode_to_slice(leaf, &mut hex).is_ok();
            let expected_seq = i64::try_from(self.checked)
                .ok()
                .and_then(|n| n.checked_add(1));
            // Exact comparisons: stored hashes must be canonical lowercase.
            let intact = hexed
                && expected_seq == Some(e.seq)
                && e.prev_hash.as_bytes() == self.last_hash
                && stored_hash.as_bytes() == hex;
            if !intact {
                self.first_bad_seq = Some(e.seq);
                return false;
            }
            self.last_hash = hex;
            self.checked += 1;
            if self.keep_leaves {
                self.leaves.push(leaf);
            }
            let first_difference = &mut self.first_difference;
            self.rebuilt.push_each(leaf, |id, hash| {
                if first_difference.is_none() {
                    *first_difference = compare_node(page, &mut next_at, id, hash);
                }
            });
        }
        true
    }
}

/// The rebuilt subtree `id` against the stored one; what differs, if anything.
fn compare_node(
    page: &Page,
    next_at: &mut [usize; 64],
    id: NodeId,
    hash: &chain::Hash,
) -> Option<String> {
    let (level, index) = (id.level, id.index);
    let slot = level as usize;
    let stored = page
        .levels
        .get(slot.wrapping_sub(1))
        .and_then(|nodes| nodes.get(next_at[slot]));
    match stored {
        Some((idx, text_at)) if *idx == index => {
            next_at[slot] += 1;
            let mut hex = [0u8; 64];
            let same = hex::encode_to_slice(hash, &mut hex).is_ok()
                && page.node_text[text_at.clone()].as_bytes() == hex;
            (!same).then(|| {
                format!("the stored tree node at level {level}, index {index} is not the hash of its two children")
            })
        }
        _ => Some(format!(
            "the stored tree node at level {level}, index {index} is missing"
        )),
    }
}

/// The hasher's side: pages in order, each handed back once hashed.
fn hash_pages(full: &Receiver<Page>, spent: &Sender<Page>, mut walk: Walk) -> Walk {
    let mut scratch = Vec::new();
    for page in full {
        let going = walk.take(&page, &mut scratch);
        // The reader stops taking pages back only when it stops reading.
        let _ = spent.send(page);
        if !going {
            break;
        }
    }
    walk
}

/// The stored tree against the one rebuilt from the intact chain (see [`TreeCheck`]).
fn check_tree(
    conn: &mut DbConn,
    head: &Head,
    rebuilt: &Frontier,
    first_difference: Option<String>,
) -> Result<TreeCheck, StorageError> {
    let Some(frontier) = &head.frontier else {
        return Ok(if scan::any_nodes(conn)? {
            TreeCheck::Differs("tree nodes are stored but the head has no frontier".into())
        } else {
            TreeCheck::NotBuilt
        });
    };
    if let Some(why) = first_difference {
        return Ok(TreeCheck::Differs(why));
    }
    // Every subtree the rebuilt tree has was found stored; anything else stored is extra.
    let expected = Frontier::stored_nodes(rebuilt.size());
    let extra = scan::count_nodes_outside(conn, rebuilt.size())?;
    if extra != 0 {
        let stored = i128::from(expected) + i128::from(extra);
        return Ok(TreeCheck::Differs(format!(
            "{stored} tree nodes are stored, the log of {} events has {expected}",
            rebuilt.size()
        )));
    }
    if *frontier != rebuilt.encode() {
        return Ok(TreeCheck::Differs(
            "the head's frontier is not the right edge of the rebuilt tree".into(),
        ));
    }
    Ok(TreeCheck::Agrees)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_subtrees_a_page_completes_are_those_its_leaves_push_out() {
        for (lo, hi) in [
            (0, 1),
            (0, 2),
            (1, 2),
            (3, 9),
            (5, 64),
            (64, 65),
            (100, 357),
            (0, 1000),
        ] {
            let mut frontier = Frontier::default();
            let mut pushed = Vec::new();
            for leaf in 0..hi {
                frontier.push_each([0; 32], |id, _| {
                    if leaf >= lo {
                        pushed.push(id);
                    }
                });
            }
            pushed.sort();
            let ranged: Vec<NodeId> = completed_by(lo, hi)
                .flat_map(|(level, from, to)| (from..to).map(move |i| NodeId::new(level, i)))
                .collect();
            assert_eq!(ranged, pushed, "leaves {lo}..{hi}");
        }
    }
}
