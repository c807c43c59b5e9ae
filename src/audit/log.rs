//! Appending to the stored chain (verifying it is `verify`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::chain::{self, EventFields, StoredEvent};
use crate::domain::{AuditAction, WorkOrderId};
use crate::storage::audit::{self as store, AuditRow, Head};
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

/// Appends one event after the current head and advances the head, storing the Merkle
/// subtrees the new leaf completes and the new frontier with it. On SQLite the caller holds
/// the lock (`lock` first in the transaction); on PostgreSQL reading the head takes it if
/// the transaction has not already.
pub(crate) fn append(
    conn: &mut DbConn,
    by: &Recorder,
    action: AuditAction,
    work_order: Option<&WorkOrderId>,
    detail: &Value,
    now: DateTime<Utc>,
) -> Result<AuditRow, StorageError> {
    let (action, work_order) = (action.as_str(), work_order.map(WorkOrderId::as_str));
    let head = store::head_for_append(conn)?;
    let mut frontier = head.frontier()?;
    let seq = head.size + 1;
    let at = format_at(now);
    let detail = chain::canonical_detail(detail);
    let fields = EventFields {
        seq,
        at: &at,
        actor: &by.actor,
        role: &by.role,
        action,
        work_order,
        detail: &detail,
        prev_hash: &head.hash,
    };
    let leaf = chain::leaf_hash(&fields);
    let hash = chain::to_hex(&leaf);
    let completed = frontier.push(leaf);
    let row = AuditRow {
        seq,
        at,
        actor: by.actor.clone(),
        role: by.role.clone(),
        action: action.to_owned(),
        work_order: work_order.map(str::to_owned),
        detail,
        prev_hash: head.hash,
        hash: hash.clone(),
    };
    store::insert(conn, &row)?;
    if let Some(msisdn) = named_msisdn(&row.detail) {
        store::index_msisdn(conn, &msisdn, seq)?;
    }
    let head = Head {
        size: seq,
        hash,
        frontier: Some(frontier.encode()),
    };
    store::advance_head(conn, &head, &completed)?;
    Ok(row)
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
