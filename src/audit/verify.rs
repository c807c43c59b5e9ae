//! Verifying the stored chain and tree: every event re-hashed and linked to the one before,
//! the Merkle tree rebuilt from the re-hashed leaves and compared with every stored subtree,
//! the frontier and the head.
//!
//! Pages of events are read and re-hashed by one reader thread per connection (two when the
//! caller lends a second one: every other page each), which copy the rows' text into reused
//! buffers (and the stored subtrees those rows complete) and hash each event's leaf. The
//! calling thread joins the pages in order: each page's first event to the one before, then
//! the leaves into the rebuilt tree, compared with the stored subtrees. Buffers go back to
//! their reader, so nothing is allocated per event.

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

/// Events a page: one statement each, and about 10 MiB of text in the buffer it fills
/// (four in unit tests, so a small log spans pages and both readers).
#[cfg(not(test))]
const PAGE: u64 = 16_384;
#[cfg(test)]
const PAGE: u64 = 4;

/// Re-hashes every event in `seq` order, stopping at the first bad one, and rebuilds the
/// Merkle tree from the re-hashed leaves. The head row must agree too (a log whose tail was
/// cut no longer reaches it), and so must the stored tree: every subtree, the frontier, and
/// nothing more. Call first in a read transaction: it makes it one snapshot, so a log
/// growing meanwhile is seen as it was.
///
/// `beside`, a second connection to the same database, reads and hashes every other page
/// on a thread of its own. It needs no snapshot of its own: it reads only events up to the
/// size the snapshot's head gives, and the log never changes below its head (appends only).
pub(crate) fn verify_all(
    conn: &mut DbConn,
    beside: Option<&mut DbConn>,
    leaves: Leaves,
) -> Result<VerifyReport, StorageError> {
    store::snapshot(conn)?;
    let head = store::head(conn)?;
    // A log from before the tree has no subtree to compare (see `check_tree`).
    let tree_kept = head.frontier.is_some();
    let size = u64::try_from(head.size).unwrap_or(0);
    let mut readers = vec![&mut *conn];
    readers.extend(beside);
    let every = readers.len();
    let walk = std::thread::scope(|s| -> Result<Walk, StorageError> {
        let (mut full, mut spent, mut reading) = (Vec::new(), Vec::new(), Vec::new());
        for (first, reader) in readers.into_iter().enumerate() {
            let (full_tx, full_rx) = sync_channel::<Page>(2);
            let (spent_tx, spent_rx) = channel::<Page>();
            let share = Share {
                first: first as u64,
                every: every as u64,
                size,
                tree_kept,
            };
            reading.push(s.spawn(move || read_pages(reader, share, &full_tx, &spent_rx)));
            full.push(full_rx);
            spent.push(spent_tx);
        }
        let walk = merge_pages(&full, &spent, Walk::new(leaves, size));
        // A reader still going stops at its next page.
        drop((full, spent));
        for reader in reading {
            match reader.join() {
                Ok(read) => read?,
                Err(panic) => std::panic::resume_unwind(panic),
            }
        }
        Ok(walk)
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
        } else if scan::any_event_after(conn, head.size)? {
            // Events past the head: appended without it, so the first of them is bad.
            ok = false;
            first_bad_seq = Some(head.size + 1);
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

/// The pages one reader takes: `first`, `first + every`, … up to the head's `size`.
#[derive(Clone, Copy)]
struct Share {
    first: u64,
    every: u64,
    size: u64,
    tree_kept: bool,
}

/// A page of rows as read and hashed: their text in one buffer, reused from page to page.
#[derive(Default)]
struct Page {
    text: String,
    events: Vec<CopiedEvent>,
    /// The leaf hash of each event up to the first one that is not intact.
    leaves: Vec<chain::Hash>,
    /// The first event, by index, that is not intact on its own or beside the one before it
    /// in the page (the merge checks the first one against the page before).
    first_bad: Option<usize>,
    /// The stored subtrees the page's leaves complete, level L at `levels[L - 1]`, by index,
    /// with where each stored hash is in `node_text`.
    levels: Vec<Vec<(u64, Range<usize>)>>,
    node_text: String,
}

impl Page {
    fn clear(&mut self) {
        self.text.clear();
        self.events.clear();
        self.leaves.clear();
        self.first_bad = None;
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

    /// Re-hashes the page's events, the first of which should be `first_seq`: each must have
    /// the next `seq`, its stored hash must be its leaf hash (exactly: stored hashes are
    /// canonical lowercase), and its `prev_hash` the stored hash of the one before it.
    fn hash_leaves(&mut self, first_seq: i64, scratch: &mut Vec<u8>) {
        for i in 0..self.events.len() {
            let (e, stored_hash) = self.event(i);
            let leaf = chain::leaf_hash_in(&e, scratch);
            let mut hex = [0u8; 64];
            let intact = hex::encode_to_slice(leaf, &mut hex).is_ok()
                && i64::try_from(i).ok().and_then(|i| first_seq.checked_add(i)) == Some(e.seq)
                && stored_hash.as_bytes() == hex
                && (i == 0 || e.prev_hash == self.event(i - 1).1);
            if !intact {
                self.first_bad = Some(i);
                return;
            }
            self.leaves.push(leaf);
        }
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

/// One reader's side: its share of the pages, each read (with the subtrees its leaves
/// complete) and hashed, to the merge, until the head's size, an empty page (the log ends
/// early) or the merge has stopped.
fn read_pages(
    conn: &mut DbConn,
    share: Share,
    full: &std::sync::mpsc::SyncSender<Page>,
    spent: &Receiver<Page>,
) -> Result<(), StorageError> {
    let mut scratch = Vec::new();
    let mut page_no = share.first;
    loop {
        let lo = page_no.saturating_mul(PAGE);
        if lo >= share.size {
            return Ok(());
        }
        let hi = lo.saturating_add(PAGE).min(share.size);
        let (Ok(after), Ok(through)) = (i64::try_from(lo), i64::try_from(hi)) else {
            return Ok(());
        };
        let mut page = spent.try_recv().unwrap_or_default();
        page.clear();
        scan::copy_events_between(conn, (after, through), &mut page.text, &mut page.events)?;
        if share.tree_kept && !page.events.is_empty() {
            page.read_nodes(conn, lo, hi)?;
        }
        page.hash_leaves(after + 1, &mut scratch);
        let ended = page.events.is_empty();
        if full.send(page).is_err() || ended {
            return Ok(());
        }
        page_no = page_no.saturating_add(share.every);
    }
}

/// What the walk found.
struct Walk {
    /// The events the head announces: the walk takes at most this many pages.
    size: u64,
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
            size,
            checked: 0,
            last_hash,
            first_bad_seq: None,
            rebuilt: Frontier::default(),
            first_difference: None,
            keep_leaves,
            leaves: Vec::with_capacity(usize::try_from(room).unwrap_or(0)),
        }
    }

    /// Joins a hashed page to the intact prefix, in order; false at the first bad event or
    /// an empty page (nothing after a break extends the intact prefix).
    fn take(&mut self, page: &Page) -> bool {
        // Where each level's next stored subtree is in the page.
        let mut next_at = [0usize; 64];
        if let Some(first) = page.events.first() {
            // The page checked its events against each other; the first joins the one before.
            let expected_seq = i64::try_from(self.checked)
                .ok()
                .and_then(|n| n.checked_add(1));
            let prev_hash = &page.text[first.prev_hash.clone()];
            if expected_seq != Some(first.seq) || prev_hash.as_bytes() != self.last_hash {
                self.first_bad_seq = Some(first.seq);
                return false;
            }
        }
        for (i, leaf) in page.leaves.iter().enumerate() {
            let stored_hash = &page.text[page.events[i].hash.clone()];
            // The page checked that it is this leaf's hash, in lowercase hex.
            self.last_hash.copy_from_slice(stored_hash.as_bytes());
            self.checked += 1;
            if self.keep_leaves {
                self.leaves.push(*leaf);
            }
            let first_difference = &mut self.first_difference;
            self.rebuilt.push_each(*leaf, |id, hash| {
                if first_difference.is_none() {
                    *first_difference = compare_node(page, &mut next_at, id, hash);
                }
            });
        }
        if let Some(bad) = page.first_bad.and_then(|i| page.events.get(i)) {
            self.first_bad_seq = Some(bad.seq);
            return false;
        }
        !page.events.is_empty()
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

/// The merge: every reader's pages in order (page `p` from reader `p mod readers`), each
/// joined to the walk and handed back, until the head's size, the log's end or a bad event.
fn merge_pages(full: &[Receiver<Page>], spent: &[Sender<Page>], mut walk: Walk) -> Walk {
    let pages = walk.size.div_ceil(PAGE);
    let readers = full.len() as u64;
    for page_no in 0..pages {
        let reader = (page_no % readers) as usize;
        // A reader that failed has hung up; its error is what the caller gets.
        let Ok(page) = full[reader].recv() else {
            break;
        };
        let going = walk.take(&page);
        // A reader stops taking pages back only when it stops reading.
        let _ = spent[reader].send(page);
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
