//! The whole audit log read in `seq` order for verification, without a `String` per field: each
//! row's text is lent to the caller while the row is current, and the caller copies what it
//! keeps into its own reused buffers.

use diesel::connection::DefaultLoadingMode;
use diesel::prelude::*;

use super::schema::{audit_events, audit_tree_nodes};
use super::{DbConn, StorageError};
use crate::audit::chain::EventFields;

/// An event row as the database lends it: text columns as pointers into the row.
type LentEvent = (
    i64,
    *const str,
    *const str,
    *const str,
    *const str,
    Option<*const str>,
    *const str,
    *const str,
    *const str,
);

/// Lends events `after_seq + 1 …` in `seq` order, at most `limit`, to `each` (the hashed
/// fields and the stored `hash`), one statement stepping the rows. Returns how many rows
/// there were and the last `seq`.
pub fn each_event_after(
    conn: &mut DbConn,
    after_seq: i64,
    limit: i64,
    mut each: impl FnMut(&EventFields<'_>, &str),
) -> Result<(u64, i64), StorageError> {
    use audit_events::dsl as a;
    let query = a::audit_events
        .filter(a::seq.gt(after_seq))
        .order(a::seq.asc())
        .limit(limit)
        .select((
            a::seq,
            a::at,
            a::actor,
            a::role,
            a::action,
            a::work_order,
            a::detail,
            a::prev_hash,
            a::hash,
        ));
    let (mut rows, mut last) = (0, after_seq);
    let mut lend = |row: LentEvent| {
        let (seq, at, actor, role, action, work_order, detail, prev_hash, hash) = row;
        // SAFETY: each pointer points into the row the iterator has just read: into the
        // statement's current row on SQLite, valid until the statement is stepped again (the
        // iterator's next call), and into the page's result on PostgreSQL, which the iterator
        // owns. `each` gets them as borrows that cannot outlive this call, before the
        // iterator moves on.
        let fields = unsafe {
            EventFields {
                seq,
                at: &*at,
                actor: &*actor,
                role: &*role,
                action: &*action,
                work_order: work_order.map(|w| &*w),
                detail: &*detail,
                prev_hash: &*prev_hash,
            }
        };
        each(&fields, unsafe { &*hash });
        rows += 1;
        last = seq;
    };
    // Each backend's own connection: MultiBackend does not lend text.
    match conn {
        DbConn::Pg(pg) => {
            for row in query.load_iter::<LentEvent, DefaultLoadingMode>(pg)? {
                lend(row?);
            }
        }
        DbConn::Sqlite(lite) => {
            for row in query.load_iter::<LentEvent, DefaultLoadingMode>(lite)? {
                lend(row?);
            }
        }
    }
    Ok((rows, last))
}

/// Lends the stored subtrees of `level` with `from_idx <= idx < to_idx` to `each` (index
/// and stored hash), in index order.
pub fn each_node_between(
    conn: &mut DbConn,
    level: u32,
    from_idx: u64,
    to_idx: u64,
    mut each: impl FnMut(u64, &str),
) -> Result<(), StorageError> {
    use audit_tree_nodes::dsl as t;
    let (Ok(level), Ok(from), Ok(to)) = (
        i32::try_from(level),
        i64::try_from(from_idx),
        i64::try_from(to_idx),
    ) else {
        return Err(StorageError::Corrupt(format!(
            "tree nodes at level {level} from {from_idx} to {to_idx} are out of range"
        )));
    };
    let query = t::audit_tree_nodes
        .filter(t::level.eq(level))
        .filter(t::idx.ge(from))
        .filter(t::idx.lt(to))
        .order(t::idx.asc())
        .select((t::idx, t::hash));
    let mut lend = |(idx, hash): (i64, *const str)| {
        // SAFETY: as in `each_event_after`: the text lives as long as the current row.
        each(u64::try_from(idx).unwrap_or_default(), unsafe { &*hash });
    };
    match conn {
        DbConn::Pg(pg) => {
            for row in query.load_iter::<(i64, *const str), DefaultLoadingMode>(pg)? {
                lend(row?);
            }
        }
        DbConn::Sqlite(lite) => {
            for row in query.load_iter::<(i64, *const str), DefaultLoadingMode>(lite)? {
                lend(row?);
            }
        }
    }
    Ok(())
}

/// Whether any subtree is stored.
pub fn any_nodes(conn: &mut DbConn) -> Result<bool, StorageError> {
    Ok(audit_tree_nodes::table
        .select(audit_tree_nodes::level)
        .first::<i32>(conn)
        .optional()?
        .is_some())
}

/// How many stored subtrees a tree of `size` leaves does not have: at a level it cannot
/// reach, or past the last complete subtree of a level it has. Index ranges on the primary
/// key only, so it costs O(log n) whatever the table's size (a `COUNT(*)` reads it all).
pub fn count_nodes_outside(conn: &mut DbConn, size: u64) -> Result<i64, StorageError> {
    use audit_tree_nodes::dsl as t;
    // Level 63 would cover 2^63 leaves: more than a BIGINT seq counts.
    const TOP: i32 = 62;
    let mut query = t::audit_tree_nodes
        .filter(t::level.lt(1).or(t::level.gt(TOP)))
        .into_boxed::<super::MultiBackend>();
    for level in 1..=TOP {
        let complete = i64::try_from(size >> level).unwrap_or(i64::MAX);
        query = query
            .or_filter(t::level.eq(level).and(t::idx.ge(complete)))
            .or_filter(t::level.eq(level).and(t::idx.lt(0)));
    }
    Ok(query.count().get_result(conn)?)
}
