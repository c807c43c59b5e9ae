//! The whole audit log read in `seq` order for verification, without a `String` per field:
//! each text column is appended to the caller's buffer while diesel still holds its value,
//! and the caller gets where it landed.

use std::cell::RefCell;
use std::ops::Range;

use diesel::connection::DefaultLoadingMode;
use diesel::deserialize::{self, FromSql, FromSqlRow};
use diesel::pg::{Pg, PgValue};
use diesel::prelude::*;
use diesel::sql_types::Text;
use diesel::sqlite::{Sqlite, SqliteValue};

use super::schema::{audit_events, audit_tree_nodes};
use super::{DbConn, StorageError};

thread_local! {
    /// The buffer the rows being read on this thread are copied into; the caller's own,
    /// lent for the duration of one statement (see [`with_text`]).
    static READ_TEXT: RefCell<String> = const { RefCell::new(String::new()) };
}

/// A text column, copied into `READ_TEXT` inside `from_sql`, where the value it borrows
/// from is still alive (SQLite may hand a converted copy that dies with the value).
#[derive(Debug, Clone, PartialEq, Eq, FromSqlRow)]
pub struct CopiedText(pub Range<usize>);

fn copy_text(text: &str) -> CopiedText {
    READ_TEXT.with_borrow_mut(|buffer| {
        let start = buffer.len();
        buffer.push_str(text);
        CopiedText(start..buffer.len())
    })
}

impl FromSql<Text, Sqlite> for CopiedText {
    fn from_sql(mut value: SqliteValue<'_, '_, '_>) -> deserialize::Result<Self> {
        // Invalid UTF-8 reads lossily, as diesel's `String` does.
        Ok(copy_text(value.read_text()))
    }
}

impl FromSql<Text, Pg> for CopiedText {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(copy_text(std::str::from_utf8(value.as_bytes())?))
    }
}

/// Runs `read` with `text` as this thread's `READ_TEXT`, and gives it back after.
fn with_text<T>(text: &mut String, read: impl FnOnce() -> T) -> T {
    READ_TEXT.with_borrow_mut(|lent| std::mem::swap(lent, text));
    let out = read();
    READ_TEXT.with_borrow_mut(|lent| std::mem::swap(lent, text));
    out
}

/// An event row as copied: where each text column is in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CopiedEvent {
    pub seq: i64,
    pub at: Range<usize>,
    pub actor: Range<usize>,
    pub role: Range<usize>,
    pub action: Range<usize>,
    pub work_order: Option<Range<usize>>,
    pub detail: Range<usize>,
    pub prev_hash: Range<usize>,
    pub hash: Range<usize>,
}

type EventColumns = (
    i64,
    CopiedText,
    CopiedText,
    CopiedText,
    CopiedText,
    Option<CopiedText>,
    CopiedText,
    CopiedText,
    CopiedText,
);

fn copied_event(row: EventColumns) -> CopiedEvent {
    let (seq, at, actor, role, action, work_order, detail, prev_hash, hash) = row;
    CopiedEvent {
        seq,
        at: at.0,
        actor: actor.0,
        role: role.0,
        action: action.0,
        work_order: work_order.map(|w| w.0),
        detail: detail.0,
        prev_hash: prev_hash.0,
        hash: hash.0,
    }
}

/// Copies the events with `after_seq < seq <= through_seq` in `seq` order, appending their
/// text to `text` and their rows to `events`, one statement stepping the rows.
pub fn copy_events_between(
    conn: &mut DbConn,
    (after_seq, through_seq): (i64, i64),
    text: &mut String,
    events: &mut Vec<CopiedEvent>,
) -> Result<(), StorageError> {
    use audit_events::dsl as a;
    let query = a::audit_events
        .filter(a::seq.gt(after_seq))
        .filter(a::seq.le(through_seq))
        .order(a::seq.asc())
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
    with_text(text, || -> Result<(), StorageError> {
        // Each backend's own connection: the copying type is read per backend.
        match conn {
            DbConn::Pg(pg) => {
                for row in query.load_iter::<EventColumns, DefaultLoadingMode>(pg)? {
                    events.push(copied_event(row?));
                }
            }
            DbConn::Sqlite(lite) => {
                for row in query.load_iter::<EventColumns, DefaultLoadingMode>(lite)? {
                    events.push(copied_event(row?));
                }
            }
        }
        Ok(())
    })
}

/// Copies the stored subtrees of `level` with `from_idx <= idx < to_idx`, in index order,
/// appending their hashes to `text` and `(idx, where its hash is)` to `nodes`.
pub fn copy_nodes_between(
    conn: &mut DbConn,
    level: u32,
    (from_idx, to_idx): (u64, u64),
    text: &mut String,
    nodes: &mut Vec<(u64, Range<usize>)>,
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
    let copied = |(idx, hash): (i64, CopiedText)| (u64::try_from(idx).unwrap_or_default(), hash.0);
    with_text(text, || -> Result<(), StorageError> {
        match conn {
            DbConn::Pg(pg) => {
                for row in query.load_iter::<(i64, CopiedText), DefaultLoadingMode>(pg)? {
                    nodes.push(copied(row?));
                }
            }
            DbConn::Sqlite(lite) => {
                for row in query.load_iter::<(i64, CopiedText), DefaultLoadingMode>(lite)? {
                    nodes.push(copied(row?));
                }
            }
        }
        Ok(())
    })
}

/// Whether any event has a `seq` above `seq` (a tail the head does not count).
pub fn any_event_after(conn: &mut DbConn, seq: i64) -> Result<bool, StorageError> {
    use audit_events::dsl as a;
    Ok(a::audit_events
        .filter(a::seq.gt(seq))
        .select(a::seq)
        .first::<i64>(conn)
        .optional()?
        .is_some())
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
