//! Appending to the stored chain (verifying it is `verify`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::chain::{self, EventFields, StoredEvent};
use super::tree::{Frontier, NodeId};
use crate::domain::{AuditAction, WorkOrderId};
use crate::storage::audit::{self as store, AuditRow, Head, QueuedEvent};
use crate::storage::{DbConn, StorageError};

pub use super::verify::{TreeCheck, VerifyReport};

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

    /// Writes the events, the numbers they name, the completed subtrees and the new head.
    pub(crate) fn store(self, conn: &mut DbConn) -> Result<(), StorageError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        match self.rows.as_slice() {
            // One event (every SQLite step): plain INSERTs; `insert_many`'s multi-row INSERT
            // failed on SQLite for an event without an order.
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
