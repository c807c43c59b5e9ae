//! Appending to and verifying the stored chain.

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::Value;

use super::chain::{self, ChainVerifier, EventFields, StoredEvent};
use crate::domain::{AuditAction, WorkOrderId};
use crate::storage::audit::{self as store, AuditRow, Head};
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
pub fn lock(conn: &mut DbConn) -> Result<(), StorageError> {
    store::lock_head(conn)
}

/// Appends one event after the current head and advances the head. On SQLite the caller
/// holds the lock (`lock` first in the transaction); on PostgreSQL reading the head takes it
/// if the transaction has not already.
pub fn append(
    conn: &mut DbConn,
    by: &Recorder,
    action: AuditAction,
    work_order: Option<&WorkOrderId>,
    detail: &Value,
    now: DateTime<Utc>,
) -> Result<AuditRow, StorageError> {
    let (action, work_order) = (action.as_str(), work_order.map(WorkOrderId::as_str));
    let head = store::head_for_append(conn)?;
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
    let hash = chain::leaf_hash_hex(&fields);
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
    store::set_head(conn, &Head { size: seq, hash })?;
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

/// The outcome of walking the whole chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyReport {
    pub ok: bool,
    pub checked: u64,
    pub head: String,
    pub first_bad_seq: Option<i64>,
    /// Leaf hashes of the intact prefix, for checkpoint comparison.
    pub leaves: Vec<chain::Hash>,
}

fn stored(row: AuditRow) -> StoredEvent {
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

/// Re-hashes every event in `seq` order, page by page, stopping at the first bad one.
/// The head row must agree too: a log whose tail was cut no longer reaches it.
pub fn verify_all(conn: &mut DbConn) -> Result<VerifyReport, StorageError> {
    const PAGE: i64 = 5000;
    let mut verifier = ChainVerifier::new();
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
        }
    }
    let mut first_bad_seq = verifier.first_bad_seq();
    if ok {
        // The head row is written in the same transaction as each event; a cut tail or a
        // rewritten last event leaves it pointing elsewhere.
        let head = store::head(conn)?;
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
    }
    Ok(VerifyReport {
        ok,
        checked: verifier.checked(),
        head: chain::to_hex(&verifier.head()),
        first_bad_seq,
        leaves: verifier.leaves().to_vec(),
    })
}
