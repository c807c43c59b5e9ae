//! Appending to and verifying the stored chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use std::collections::VecDeque;

use super::chain::{self, ChainVerifier, EventFields, StoredEvent};
use super::tree::{Frontier, NodeId};
use crate::domain::{AuditAction, WorkOrderId};
use crate::storage::audit::{self as store, AuditRow, Head, QueuedEvent};
use crate::storage::{DbConn, StorageError};

/// Who an event is attributed to: a user, the CLI, or the system itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorder {
    pub actor: String,
    pub role: String,
}

impl Recorder {
    pub fn new(actor: impl Into<String>, role: impl Into<String>) -> Self {
        Self {
            actor: actor.into(),
            role: role.into(),
        }
    }

    pub fn cli() -> Self {
        Self::new("cli", "cli")
    }

    pub fn system() -> Self {
        Self::new("system", "system")
    }
}

/// The stored form of `at`: fixed width so text order is time order and hashing is stable.
pub fn format_at(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

/// Takes the chain's lock; call first in every write transaction.
pub(crate) fn lock(conn: &mut DbConn) -> Result<(), StorageError> {
    store::lock_head(conn)
}

/// Records a step's event, in the step's transaction. PostgreSQL: queued for the sequencer
/// (`super::sequencer`), which gives it its place in the chain within
/// `audit.sequencing_delay_ms`; the step takes no row other writers take. SQLite: appended to
/// the chain at once, under the write lock the transaction holds (`lock` first, or the group
/// commit's `BEGIN IMMEDIATE`).
pub(crate) fn append(
    conn: &mut DbConn,
    by: &Recorder,
    action: AuditAction,
    work_order: Option<&WorkOrderId>,
    detail: &Value,
    now: DateTime<Utc>,
) -> Result<(), StorageError> {
    let event = QueuedEvent {
        at: format_at(now),
        actor: by.actor.clone(),
        role: by.role.clone(),
        action: action.as_str().to_owned(),
        work_order: work_order.map(|w| w.as_str().to_owned()),
        detail: chain::canonical_detail(detail),
    };
    match conn {
        DbConn::Pg(_) => store::enqueue(conn, &event),
        DbConn::Sqlite(_) => append_now(conn, event),
    }
}

/// Appends one event after the current head and advances the head, storing the Merkle
/// subtrees the new leaf completes and the new frontier with it. The caller holds the chain.
fn append_now(conn: &mut DbConn, event: QueuedEvent) -> Result<(), StorageError> {
    let head = store::head_for_append(conn)?;
    let mut chained = Chained::after(&head)?;
    chained.push(event);
    chained.store(conn)
}

/// Events given their place after a head: `seq`, `prev_hash`, leaf hash, the Merkle subtrees
/// they complete and the head they lead to. The one place both backends chain events.
pub(crate) struct Chained {
    rows: Vec<AuditRow>,
    msisdns: Vec<(String, i64)>,
    completed: Vec<(NodeId, chain::Hash)>,
    frontier: Frontier,
    size: i64,
    hash: String,
}

impl Chained {
    pub(crate) fn after(head: &Head) -> Result<Self, StorageError> {
        Ok(Self {
            rows: Vec::new(),
            msisdns: Vec::new(),
            completed: Vec::new(),
            frontier: head.frontier()?,
            size: head.size,
            hash: head.hash.clone(),
        })
    }

    pub(crate) fn push(&mut self, e: QueuedEvent) {
        let seq = self.size + 1;
        let fields = EventFields {
            seq,
            at: &e.at,
            actor: &e.actor,
            role: &e.role,
            action: &e.action,
            work_order: e.work_order.as_deref(),
            detail: &e.detail,
            prev_hash: &self.hash,
        };
        let leaf = chain::leaf_hash(&fields);
        let hash = chain::to_hex(&leaf);
        self.completed.extend(self.frontier.push(leaf));
        if let Some(msisdn) = named_msisdn(&e.detail) {
            self.msisdns.push((msisdn, seq));
        }
        self.rows.push(AuditRow {
            seq,
            at: e.at,
            actor: e.actor,
            role: e.role,
            action: e.action,
            work_order: e.work_order,
            detail: e.detail,
            prev_hash: std::mem::replace(&mut self.hash, hash.clone()),
            hash,
        });
        self.size = seq;
    }

    pub(crate) fn len(&self) -> usize {
        self.rows.len()
    }

    /// Writes the events, the numbers they name, the completed subtrees and the new head.
    pub(crate) fn store(self, conn: &mut DbConn) -> Result<(), StorageError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        match self.rows.as_slice() {
            [one] => {
                store::insert(conn, one)?;
                for (msisdn, seq) in &self.msisdns {
                    store::index_msisdn(conn, msisdn, *seq)?;
                }
            }
            many => store::insert_many(conn, many, &self.msisdns)?,
        }
        let head = Head {
            size: self.size,
            hash: self.hash,
            frontier: Some(self.frontier.encode()),
        };
        store::advance_head(conn, &head, &self.completed)
    }
}

/// The mobile number an event's detail names at its top level, if any (for the auditor's
/// `msisdn` filter); only the cheap check runs when there is none.
fn named_msisdn(detail: &str) -> Option<String> {
    if !detail.contains("\"msisdn\"") {
        return None;
    }
    let value: Value = serde_json::from_str(detail).ok()?;
    value.get("msisdn")?.as_str().map(str::to_owned)
}

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: u64,
    pub head: String,
    pub first_bad_seq: Option<i64>,
    /// Whether the stored Merkle tree is the one the chain rebuilds.
    pub tree: TreeCheck,
    /// Leaf hashes of the intact prefix, for checkpoint comparison.
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

/// `stored` is exactly `hash` in lowercase hex (compared without allocating: a million times
/// per million events).
fn same_hex(stored: &str, hash: &chain::Hash) -> bool {
    let mut buf = [0u8; 64];
    hex::encode_to_slice(hash, &mut buf).is_ok() && stored.as_bytes() == buf
}

/// Compares each subtree the rebuilt tree completes with the stored one, reading each
/// level's stored subtrees in index order, a page at a time (they complete in that order).
#[derive(Default)]
struct StoredNodes {
    levels: Vec<VecDeque<(u64, String)>>,
    first_difference: Option<String>,
}

impl StoredNodes {
    const PAGE: i64 = 4096;

    fn check(
        &mut self,
        conn: &mut DbConn,
        id: NodeId,
        hash: &chain::Hash,
    ) -> Result<(), StorageError> {
        if self.first_difference.is_some() {
            return Ok(());
        }
        let level = id.level as usize;
        if self.levels.len() <= level {
            self.levels.resize_with(level + 1, VecDeque::new);
        }
        if self.levels[level].is_empty() {
            self.levels[level] = store::node_page(conn, id.level, id.index, Self::PAGE)?.into();
        }
        let (level_n, index) = (id.level, id.index);
        self.first_difference = match self.levels[level].pop_front() {
            Some((idx, stored)) if idx == id.index => (!same_hex(&stored, hash)).then(|| {
                format!("the stored tree node at level {level_n}, index {index} is not the hash of its two children")
            }),
            _ => Some(format!(
                "the stored tree node at level {level_n}, index {index} is missing"
            )),
        };
        Ok(())
    }
}

/// An event row as the chain reads it.
pub(crate) fn stored(row: AuditRow) -> StoredEvent {
    StoredEvent {
        seq: row.seq,
        at: row.at,
        actor: row.actor,
        role: row.role,
        action: row.action,
        work_order: row.work_order,
        detail: row.detail,
        prev_hash: row.prev_hash,
        hash: row.hash,
    }
}

/// Re-hashes every event in `seq` order, page by page, stopping at the first bad one, and
/// rebuilds the Merkle tree from the re-hashed leaves. The head row must agree too (a log
/// whose tail was cut no longer reaches it), and so must the stored tree: every subtree,
/// the frontier, and nothing more. Call first in a read transaction: it makes it one
/// snapshot, so a log growing meanwhile is seen as it was.
pub(crate) fn verify_all(conn: &mut DbConn) -> Result<VerifyReport, StorageError> {
    const PAGE: i64 = 5000;
    store::snapshot(conn)?;
    let mut verifier = ChainVerifier::new();
    let mut rebuilt = Frontier::default();
    let mut nodes = StoredNodes::default();
    let mut after = 0;
    let mut ok = true;
    'pages: loop {
        let rows = store::page(conn, after, PAGE)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        for row in rows {
            if !verifier.push(&stored(row)) {
                ok = false;
                break 'pages;
            }
            if let Some(leaf) = verifier.leaves().last() {
                for (id, hash) in rebuilt.push(*leaf) {
                    nodes.check(conn, id, &hash)?;
                }
            }
        }
    }
    let mut first_bad_seq = verifier.first_bad_seq();
    let mut tree = TreeCheck::Unchecked;
    if ok {
        // The head row is written in the same transaction as each event; a cut tail or a
        // rewritten last event leaves it pointing elsewhere.
        let head = store::head(conn)?;
        tree = check_tree(conn, &head, &rebuilt, nodes)?;
        let checked = verifier.checked() as i64;
        let last_hash = verifier
            .leaves()
            .last()
            .map(chain::to_hex)
            .unwrap_or_else(|| chain::GENESIS_PREV_HASH.to_owned());
        if head.size != checked {
            // Events missing at the tail: the first one missing is the first bad one.
            ok = false;
            first_bad_seq = Some(checked.min(head.size) + 1);
        } else if head.hash != last_hash {
            // Hashes recomputed consistently: broken, but no single event can be named.
            ok = false;
        }
        ok &= matches!(tree, TreeCheck::Agrees | TreeCheck::NotBuilt);
    }
    Ok(VerifyReport {
        ok,
        checked: verifier.checked(),
        head: chain::to_hex(&verifier.head()),
        first_bad_seq,
        tree,
        leaves: verifier.leaves().to_vec(),
    })
}

/// The stored tree against the one rebuilt from the intact chain (see [`TreeCheck`]).
fn check_tree(
    conn: &mut DbConn,
    head: &Head,
    rebuilt: &Frontier,
    nodes: StoredNodes,
) -> Result<TreeCheck, StorageError> {
    let stored_count = store::count_nodes(conn)?;
    let Some(frontier) = &head.frontier else {
        return Ok(if stored_count == 0 {
            TreeCheck::NotBuilt
        } else {
            TreeCheck::Differs("tree nodes are stored but the head has no frontier".into())
        });
    };
    if let Some(why) = nodes.first_difference {
        return Ok(TreeCheck::Differs(why));
    }
    let expected = Frontier::stored_nodes(rebuilt.size());
    if u64::try_from(stored_count).ok() != Some(expected) {
        return Ok(TreeCheck::Differs(format!(
            "{stored_count} tree nodes are stored, the log of {} events has {expected}",
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
