//! The audit tables: events and the Merkle tree's stored subtrees, appended to inside
//! callers' transactions and never updated (the database's triggers refuse it); the head row
//! with the log's size, last hash and frontier; signed checkpoints.

use std::collections::HashMap;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::schema::{
    audit_checkpoints, audit_events, audit_head, audit_msisdn, audit_queue, audit_tree_nodes,
    work_orders,
};
use super::{DbConn, MultiBackend, StorageError};
use crate::audit::chain::{self, Hash};
use crate::audit::tree::{Frontier, NodeId};

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

/// The head row: the log's size, its last event's hash, and its frontier in the stored form
/// of [`Frontier::encode`] (`None` until the tree of a log older than the tree is built).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Head {
    pub size: i64,
    pub hash: String,
    pub frontier: Option<String>,
}

impl Head {
    /// The frontier, checked against the size; a missing or malformed one is corrupt.
    pub fn frontier(&self) -> Result<Frontier, StorageError> {
        let size = u64::try_from(self.size)
            .map_err(|_| StorageError::Corrupt(format!("audit head size {}", self.size)))?;
        let stored = self.frontier.as_deref().ok_or_else(|| {
            StorageError::Corrupt(
                "the audit tree is not built yet (the service builds it at start)".into(),
            )
        })?;
        Frontier::decode(size, stored).ok_or_else(|| {
            StorageError::Corrupt(format!(
                "the audit head's frontier does not fit size {size}"
            ))
        })
    }
}

type HeadColumns = (audit_head::size, audit_head::hash, audit_head::frontier);
const HEAD: HeadColumns = (audit_head::size, audit_head::hash, audit_head::frontier);

fn head_of((size, hash, frontier): (i64, String, Option<String>)) -> Head {
    Head {
        size,
        hash,
        frontier,
    }
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
        DbConn::Pg(pg) => Ok(head_of(
            audit_head::table
                .find(1)
                .select(HEAD)
                .for_update()
                .first(pg)?,
        )),
        DbConn::Sqlite(_) => head(conn),
    }
}

pub fn head(conn: &mut DbConn) -> Result<Head, StorageError> {
    Ok(head_of(audit_head::table.find(1).select(HEAD).first(conn)?))
}

/// The log's size and last hash only (what a database from before the tree also has).
pub fn size_and_hash(conn: &mut DbConn) -> Result<(i64, String), StorageError> {
    Ok(audit_head::table
        .find(1)
        .select((audit_head::size, audit_head::hash))
        .first(conn)?)
}

/// Makes the rest of this read transaction one snapshot on PostgreSQL (whose default gives
/// each statement its own), so a multi-query read of a growing log sees one log. Call first
/// in the transaction. SQLite's read transactions are snapshots already.
pub fn snapshot(conn: &mut DbConn) -> Result<(), StorageError> {
    if let DbConn::Pg(pg) = conn {
        pg.batch_execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")?;
    }
    Ok(())
}

pub fn insert(conn: &mut DbConn, row: &AuditRow) -> Result<(), StorageError> {
    diesel::insert_into(audit_events::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// An event committed by a step and waiting for the sequencer (PostgreSQL): every field of
/// the event but those the chain assigns (`seq`, `prev_hash`, `hash`).
#[derive(Debug, Clone, PartialEq, Eq, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(table_name = audit_queue)]
pub struct QueuedEvent {
    pub at: String,
    pub actor: String,
    pub role: String,
    pub action: String,
    pub work_order: Option<String>,
    pub detail: String,
}

/// A queued event as the sequencer takes it: its place in the queue and how long it waited.
#[derive(Debug, Clone, QueryableByName)]
pub struct Waiting {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    pub id: i64,
    #[diesel(embed)]
    pub event: QueuedEvent,
    /// Seconds from the step's insert to now, on the database's clock (one clock for every
    /// instance).
    #[diesel(sql_type = diesel::sql_types::Double)]
    pub waited: f64,
}

/// The key of the advisory lock only the sequencer holds (an arbitrary constant: "seq" in
/// ASCII); the integration's transaction holds it, so a killed sequencer's lock goes with its
/// connection.
const SEQUENCER_LOCK: i64 = 0x0073_6571;

/// Queues a step's event for the sequencer: one INSERT, no lock beyond the new row.
pub fn enqueue(conn: &mut DbConn, event: &QueuedEvent) -> Result<(), StorageError> {
    diesel::insert_into(audit_queue::table)
        .values(event)
        .execute(conn)?;
    Ok(())
}

/// Takes the sequencer's lock for the rest of the transaction. `wait`: queue behind the
/// instance integrating now (a reader that must see its own writes); otherwise answer false
/// at once when another instance holds it.
pub fn sequencer_lock(conn: &mut DbConn, wait: bool) -> Result<bool, StorageError> {
    let DbConn::Pg(pg) = conn else {
        return Ok(true);
    };
    #[derive(QueryableByName)]
    struct Taken {
        #[diesel(sql_type = diesel::sql_types::Bool)]
        taken: bool,
    }
    let sql = if wait {
        "SELECT true AS taken FROM (SELECT pg_advisory_xact_lock($1)) AS l"
    } else {
        "SELECT pg_try_advisory_xact_lock($1) AS taken"
    };
    let taken: Taken = diesel::sql_query(sql)
        .bind::<diesel::sql_types::BigInt, _>(SEQUENCER_LOCK)
        .get_result(pg)?;
    Ok(taken.taken)
}

/// The oldest queued events, at most `limit`, in queue order.
pub fn waiting(conn: &mut DbConn, limit: i64) -> Result<Vec<Waiting>, StorageError> {
    let DbConn::Pg(pg) = conn else {
        return Ok(Vec::new());
    };
    Ok(diesel::sql_query(
        "SELECT id, at, actor, role, action, work_order, detail, \
         EXTRACT(EPOCH FROM clock_timestamp() - queued_at)::DOUBLE PRECISION AS waited \
         FROM audit_queue ORDER BY id LIMIT $1",
    )
    .bind::<diesel::sql_types::BigInt, _>(limit)
    .load(pg)?)
}

/// The last queued event (of one order, or of all): what a reader waits to see integrated.
/// (The queue holds what the last pass left, a few hundred rows at most: no index beyond its
/// key is worth keeping for it.)
pub fn last_queued(
    conn: &mut DbConn,
    work_order: Option<&str>,
) -> Result<Option<i64>, StorageError> {
    use diesel::dsl::max;
    let last = audit_queue::table.select(max(audit_queue::id));
    Ok(match work_order {
        Some(id) => last
            .filter(audit_queue::work_order.eq(id))
            .get_result(conn)?,
        None => last.get_result(conn)?,
    })
}

/// Whether an event queued at or before `mark` still waits.
pub fn queued_through(conn: &mut DbConn, mark: i64) -> Result<bool, StorageError> {
    Ok(diesel::select(diesel::dsl::exists(
        audit_queue::table.filter(audit_queue::id.le(mark)),
    ))
    .get_result(conn)?)
}

/// Removes integrated events from the queue.
pub fn dequeue(conn: &mut DbConn, ids: &[i64]) -> Result<(), StorageError> {
    diesel::delete(audit_queue::table.filter(audit_queue::id.eq_any(ids))).execute(conn)?;
    Ok(())
}

/// Appends integrated events (and the numbers they name) in multi-row INSERTs.
pub fn insert_many(
    conn: &mut DbConn,
    rows: &[AuditRow],
    msisdns: &[(String, i64)],
) -> Result<(), StorageError> {
    // Nine parameters an event: far under either backend's limit per statement.
    for chunk in rows.chunks(1000) {
        let insert = diesel::insert_into(audit_events::table).values(chunk);
        match conn {
            DbConn::Pg(c) => insert.execute(c)?,
            DbConn::Sqlite(c) => insert.execute(c)?,
        };
    }
    for chunk in msisdns.chunks(1000) {
        let values: Vec<_> = chunk
            .iter()
            .map(|(m, seq)| (audit_msisdn::msisdn.eq(m), audit_msisdn::seq.eq(*seq)))
            .collect();
        let insert = diesel::insert_into(audit_msisdn::table).values(values);
        match conn {
            DbConn::Pg(c) => insert.execute(c)?,
            DbConn::Sqlite(c) => insert.execute(c)?,
        };
    }
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
            audit_head::frontier.eq(&head.frontier),
        ))
        .execute(conn)?;
    Ok(())
}

/// Advances the head after an append and stores the subtrees the new event completed. On
/// PostgreSQL that is one statement, so keeping the tree adds no round trip while the chain
/// lock, which every writer queues on, is held.
pub fn advance_head(
    conn: &mut DbConn,
    head: &Head,
    completed: &[(NodeId, Hash)],
) -> Result<(), StorageError> {
    if let (DbConn::Pg(pg), false) = (&mut *conn, completed.is_empty()) {
        use diesel::sql_types::{Array, BigInt, Integer, Nullable, Text};
        let mut levels = Vec::with_capacity(completed.len());
        let mut idxs = Vec::with_capacity(completed.len());
        for (id, _) in completed {
            let (level, idx) = node_key(*id)?;
            levels.push(level);
            idxs.push(idx);
        }
        let hashes: Vec<String> = completed.iter().map(|(_, h)| chain::to_hex(h)).collect();
        diesel::sql_query(
            "WITH nodes AS (INSERT INTO audit_tree_nodes (level, idx, hash) \
             SELECT * FROM unnest($1::INTEGER[], $2::BIGINT[], $3::TEXT[])) \
             UPDATE audit_head SET size = $4, hash = $5, frontier = $6 WHERE id = 1",
        )
        .bind::<Array<Integer>, _>(levels)
        .bind::<Array<BigInt>, _>(idxs)
        .bind::<Array<Text>, _>(hashes)
        .bind::<BigInt, _>(head.size)
        .bind::<Text, _>(&head.hash)
        .bind::<Nullable<Text>, _>(&head.frontier)
        .execute(pg)?;
        return Ok(());
    }
    insert_nodes(conn, completed)?;
    set_head(conn, head)
}

fn node_key(id: NodeId) -> Result<(i32, i64), StorageError> {
    match (i32::try_from(id.level), i64::try_from(id.index)) {
        (Ok(level), Ok(idx)) => Ok((level, idx)),
        _ => Err(StorageError::Corrupt(format!(
            "tree node {id:?} out of range"
        ))),
    }
}

fn parse_hash(hex: &str, what: impl FnOnce() -> String) -> Result<Hash, StorageError> {
    chain::from_hex(hex).ok_or_else(|| StorageError::Corrupt(format!("{} is not a hash", what())))
}

/// Stores subtrees of level ≥ 1 (from [`Frontier::push`]), in multi-row INSERTs.
pub fn insert_nodes(conn: &mut DbConn, nodes: &[(NodeId, Hash)]) -> Result<(), StorageError> {
    // Three parameters a row: well under SQLite's limit per statement.
    for chunk in nodes.chunks(5000) {
        let rows = chunk
            .iter()
            .map(|(id, hash)| {
                let (level, idx) = node_key(*id)?;
                Ok((
                    audit_tree_nodes::level.eq(level),
                    audit_tree_nodes::idx.eq(idx),
                    audit_tree_nodes::hash.eq(chain::to_hex(hash)),
                ))
            })
            .collect::<Result<Vec<_>, StorageError>>()?;
        let insert = diesel::insert_into(audit_tree_nodes::table).values(rows);
        // Multi-row INSERTs run on each backend's own connection (not through MultiBackend).
        match conn {
            DbConn::Pg(c) => insert.execute(c)?,
            DbConn::Sqlite(c) => insert.execute(c)?,
        };
    }
    Ok(())
}

/// The stored hashes of these subtrees: leaves from `audit_events`, the rest from
/// `audit_tree_nodes`, two queries whatever their number. Missing ones are left out.
pub fn node_hashes(
    conn: &mut DbConn,
    ids: &[NodeId],
) -> Result<HashMap<NodeId, Hash>, StorageError> {
    let mut out = HashMap::with_capacity(ids.len());
    let seqs = ids
        .iter()
        .filter(|id| id.level == 0)
        .map(|id| node_key(*id).map(|(_, idx)| idx + 1))
        .collect::<Result<Vec<_>, _>>()?;
    if !seqs.is_empty() {
        let rows: Vec<(i64, String)> = audit_events::table
            .filter(audit_events::seq.eq_any(seqs))
            .select((audit_events::seq, audit_events::hash))
            .load(conn)?;
        for (seq, hash) in rows {
            let id = NodeId::leaf(u64::try_from(seq - 1).unwrap_or_default());
            out.insert(id, parse_hash(&hash, || format!("event {seq}'s hash"))?);
        }
    }
    // One query: (level = L AND idx IN (…)) OR … , each arm on the primary key.
    let mut by_level: HashMap<i32, Vec<i64>> = HashMap::new();
    for id in ids.iter().filter(|id| id.level > 0) {
        let (level, idx) = node_key(*id)?;
        by_level.entry(level).or_default().push(idx);
    }
    if by_level.is_empty() {
        return Ok(out);
    }
    let mut q = audit_tree_nodes::table
        .select((
            audit_tree_nodes::level,
            audit_tree_nodes::idx,
            audit_tree_nodes::hash,
        ))
        .into_boxed::<MultiBackend>();
    for (level, idxs) in by_level {
        q = q.or_filter(
            audit_tree_nodes::level
                .eq(level)
                .and(audit_tree_nodes::idx.eq_any(idxs)),
        );
    }
    for (level, idx, hash) in q.load::<(i32, i64, String)>(conn)? {
        let id = NodeId::new(
            u32::try_from(level).unwrap_or_default(),
            u64::try_from(idx).unwrap_or_default(),
        );
        out.insert(id, parse_hash(&hash, || format!("tree node {id:?}"))?);
    }
    Ok(out)
}

/// Builds the stored tree of a log written before the tree was kept: streams the events'
/// hashes in `seq` order, stores every completed subtree and sets the frontier, in one
/// transaction under the chain lock. Run at every start after the migrations; a log whose
/// frontier is set costs one read. Idempotent and safe when several instances start at
/// once: whoever takes the lock first builds it, the others then find it built. Returns the
/// size built, if it did.
pub fn build_missing_tree(conn: &mut DbConn) -> Result<Option<i64>, StorageError> {
    const PAGE: i64 = 20_000;
    if head(conn)?.frontier.is_some() {
        return Ok(None);
    }
    conn.transaction(|c| {
        lock_head(c)?;
        let mut head = head(c)?;
        if head.frontier.is_some() {
            return Ok(None);
        }
        let mut frontier = Frontier::default();
        let mut after = 0;
        while after < head.size {
            let rows: Vec<(i64, String)> = audit_events::table
                .filter(audit_events::seq.gt(after))
                .filter(audit_events::seq.le(head.size))
                .order(audit_events::seq.asc())
                .limit(PAGE)
                .select((audit_events::seq, audit_events::hash))
                .load(c)?;
            let mut made = Vec::new();
            for (seq, hash) in &rows {
                if *seq != after + 1 {
                    return Err(StorageError::Corrupt(format!(
                        "building the audit tree: event {} is missing (run crossprov audit verify)",
                        after + 1
                    )));
                }
                made.extend(frontier.push(parse_hash(hash, || format!("event {seq}'s hash"))?));
                after = *seq;
            }
            if rows.is_empty() {
                return Err(StorageError::Corrupt(format!(
                    "building the audit tree: the head says {} events, the log ends at {after} \
                     (run crossprov audit verify)",
                    head.size
                )));
            }
            insert_nodes(c, &made)?;
        }
        head.frontier = Some(frontier.encode());
        set_head(c, &head)?;
        Ok(Some(head.size))
    })
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
    /// Only orders sent to this hall or claimed by it.
    pub hall: Option<String>,
    /// Blind index of an ID number: the events of orders with a result whose document has it.
    pub document_number_index: Option<String>,
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
    if let Some(index) = &f.document_number_index {
        use super::schema::verification_results as v;
        let orders = v::table
            .filter(v::document_number_index.eq(index.clone()))
            .select(v::work_order_id.nullable());
        q = q.filter(a::work_order.eq_any(orders));
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
    if let Some(hall) = &f.hall {
        let orders = work_orders::table
            .filter(
                work_orders::target_hall_id
                    .eq(hall.clone())
                    .or(work_orders::claimed_hall_id.eq(hall.clone())),
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

/// Keeps a checkpoint unless one of the same size is kept already (signed meanwhile by
/// another request), and returns the one kept: the first stored wins.
pub fn keep_checkpoint(
    conn: &mut DbConn,
    row: &CheckpointRow,
) -> Result<CheckpointRow, StorageError> {
    // The insert comes first, so on SQLite the transaction takes the write lock at once.
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(audit_checkpoints::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_into(audit_checkpoints::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(lite)?,
    };
    Ok(audit_checkpoints::table
        .find(row.size)
        .select(CheckpointRow::as_select())
        .first(conn)?)
}
