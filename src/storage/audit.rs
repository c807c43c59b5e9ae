//! The audit table: appended to inside callers' transactions, never updated (the database's
//! triggers refuse it), read in `seq` order.

use diesel::prelude::*;

use super::schema::{audit_checkpoints, audit_events, audit_head, audit_msisdn, work_orders};
use super::{DbConn, MultiBackend, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_events)]
pub struct AuditRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub work_order: Option<String>,
    pub detail: String,
    pub prev_hash: String,
    pub hash: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: i64,
    pub hash: String,
}

/// Takes the chain's lock, first in every write transaction. On PostgreSQL a row lock on
/// the head row (SELECT … FOR UPDATE) held to commit; on SQLite an UPDATE of it, which takes
/// the database's write lock before any read, so no transaction has to upgrade a read lock.
pub fn lock_head(conn: &mut DbConn) -> Result<(), StorageError> {
    match conn {
        // A row lock without a new row version: the head row is the hottest row there is.
        DbConn::Pg(pg) => {
            audit_head::table
                .find(1)
                .select(audit_head::size)
                .for_update()
                .first::<i64>(pg)?;
        }
        DbConn::Sqlite(_) => {
            diesel::update(audit_head::table.find(1))
                .set(audit_head::size.eq(audit_head::size))
                .execute(conn)?;
        }
    }
    Ok(())
}

/// The head, read for appending: on PostgreSQL under a row lock (FOR UPDATE), which is the
/// chain's lock when the transaction did not take it first; on SQLite the transaction holds
/// the write lock already.
pub fn head_for_append(conn: &mut DbConn) -> Result<Head, StorageError> {
    match conn {
        DbConn::Pg(pg) => {
            let (size, hash) = audit_head::table
                .find(1)
                .select((audit_head::size, audit_head::hash))
                .for_update()
                .first::<(i64, String)>(pg)?;
            Ok(Head { size, hash })
        }
        DbConn::Sqlite(_) => head(conn),
    }
}

pub fn head(conn: &mut DbConn) -> Result<Head, StorageError> {
    let (size, hash) = audit_head::table
        .find(1)
        .select((audit_head::size, audit_head::hash))
        .first::<(i64, String)>(conn)?;
    Ok(Head { size, hash })
}

pub fn insert(conn: &mut DbConn, row: &AuditRow) -> Result<(), StorageError> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// Records that event `seq` names `msisdn` in its detail.
pub fn index_msisdn(conn: &mut DbConn, msisdn: &str, seq: i64) -> Result<(), StorageError> {
    diesel::insert_into(audit_msisdn::table)
        .values((audit_msisdn::msisdn.eq(msisdn), audit_msisdn::seq.eq(seq)))
        .execute(conn)?;
    Ok(())
}

pub fn set_head(conn: &mut DbConn, head: &Head) -> Result<(), StorageError> {
    diesel::update(audit_head::table.find(1))
        .set((
            audit_head::size.eq(head.size),
            audit_head::hash.eq(&head.hash),
        ))
        .execute(conn)?;
    Ok(())
}

#[derive(Debug, Clone, Default)]
pub struct EventFilter {
    pub work_order: Option<String>,
    pub msisdn: Option<String>,
    pub actor: Option<String>,
    pub action: Option<String>,
    /// Inclusive bounds on `at`, in the stored format.
    pub since: Option<String>,
    pub until: Option<String>,
    pub after_seq: Option<i64>,
    /// Only orders whose home or target province is this (province auditors).
    pub province: Option<String>,
}

/// Events matching the filter, oldest first, at most `limit`.
pub fn query(
    conn: &mut DbConn,
    f: &EventFilter,
    limit: i64,
) -> Result<Vec<AuditRow>, StorageError> {
    use audit_events::dsl as a;
    let mut q = a::audit_events.into_boxed::<MultiBackend>();
    if let Some(wo) = &f.work_order {
        q = q.filter(a::work_order.eq(wo.clone()));
    }
    if let Some(m) = &f.msisdn {
        // The events of the number's orders, plus those that name it in their detail (reads
        // of the subscriber's record, indexed in `audit_msisdn` as they are appended). A
        // number has few events: collecting their seqs first lets both databases answer from
        // indexes (an OR of two subqueries makes PostgreSQL scan the whole table).
        let orders = work_orders::table
            .filter(work_orders::msisdn.eq(m.clone()))
            .select(work_orders::id.nullable());
        let mut seqs: Vec<i64> = a::audit_events
            .filter(a::work_order.eq_any(orders))
            .select(a::seq)
            .load(conn)?;
        seqs.extend(
            audit_msisdn::table
                .filter(audit_msisdn::msisdn.eq(m.clone()))
                .select(audit_msisdn::seq)
                .load::<i64>(conn)?,
        );
        q = q.filter(a::seq.eq_any(seqs));
    }
    if let Some(p) = &f.province {
        let orders = work_orders::table
            .filter(
                work_orders::home_province
                    .eq(p.clone())
                    .or(work_orders::target_province.eq(p.clone())),
            )
            .select(work_orders::id.nullable());
        q = q.filter(a::work_order.eq_any(orders));
    }
    if let Some(actor) = &f.actor {
        q = q.filter(a::actor.eq(actor.clone()));
    }
    if let Some(action) = &f.action {
        q = q.filter(a::action.eq(action.clone()));
    }
    if let Some(since) = &f.since {
        q = q.filter(a::at.ge(since.clone()));
    }
    if let Some(until) = &f.until {
        q = q.filter(a::at.le(until.clone()));
    }
    if let Some(after) = f.after_seq {
        q = q.filter(a::seq.gt(after));
    }
    Ok(q.order(a::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// Events of one order, oldest first.
pub fn for_work_order(conn: &mut DbConn, work_order: &str) -> Result<Vec<AuditRow>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::work_order.eq(work_order))
        .order(audit_events::seq.asc())
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// A page of the whole log in `seq` order, for verification and exports.
pub fn page(conn: &mut DbConn, after_seq: i64, limit: i64) -> Result<Vec<AuditRow>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::seq.gt(after_seq))
        .order(audit_events::seq.asc())
        .limit(limit)
        .select(AuditRow::as_select())
        .load(conn)?)
}

/// Leaf hashes (hex) of the first `size` events, in order.
pub fn leaf_hashes(conn: &mut DbConn, size: i64) -> Result<Vec<String>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::seq.le(size))
        .order(audit_events::seq.asc())
        .select(audit_events::hash)
        .load(conn)?)
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = audit_checkpoints)]
pub struct CheckpointRow {
    pub size: i64,
    pub head: String,
    pub at: chrono::NaiveDateTime,
    pub jws: String,
}

pub fn latest_checkpoint(conn: &mut DbConn) -> Result<Option<CheckpointRow>, StorageError> {
    Ok(audit_checkpoints::table
        .order(audit_checkpoints::size.desc())
        .select(CheckpointRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert_checkpoint(conn: &mut DbConn, row: &CheckpointRow) -> Result<(), StorageError> {
    diesel::insert_into(audit_checkpoints::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}
