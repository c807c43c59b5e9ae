//! Subscribers' data keys, each stored wrapped by a KEK (never in the clear), one live key per
//! subscriber; a shredded key keeps its row (a tombstone, `wrapped` NULL).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::data_keys;
use super::{DbConn, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = data_keys)]
pub struct DataKeyRow {
    pub id: String,
    pub msisdn: String,
    pub kek_id: String,
    /// NULL once shredded.
    pub wrapped: Option<String>,
    pub created_at: NaiveDateTime,
    pub shredded_at: Option<NaiveDateTime>,
}

/// The subscriber's live key, if it has one.
pub fn live_for(conn: &mut DbConn, msisdn: &str) -> Result<Option<DataKeyRow>, StorageError> {
    Ok(data_keys::table
        .filter(data_keys::msisdn.eq(msisdn))
        .filter(data_keys::shredded_at.is_null())
        .select(DataKeyRow::as_select())
        .first(conn)
        .optional()?)
}

/// Stores a new live key unless the subscriber has one already (another transaction made it
/// first: the partial unique index decides, and the caller reads the winner's).
pub fn insert_live(conn: &mut DbConn, row: &DataKeyRow) -> Result<(), StorageError> {
    match conn {
        DbConn::Pg(c) => diesel::insert_into(data_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(data_keys::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(c)?,
    };
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<DataKeyRow>, StorageError> {
    Ok(data_keys::table
        .find(id)
        .select(DataKeyRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get_many(conn: &mut DbConn, ids: &[String]) -> Result<Vec<DataKeyRow>, StorageError> {
    Ok(data_keys::table
        .filter(data_keys::id.eq_any(ids))
        .select(DataKeyRow::as_select())
        .load(conn)?)
}

/// Destroys a key: only its tombstone stays. False when it was shredded already.
pub fn shred(conn: &mut DbConn, id: &str, now: NaiveDateTime) -> Result<bool, StorageError> {
    let n = diesel::update(
        data_keys::table
            .find(id)
            .filter(data_keys::shredded_at.is_null()),
    )
    .set((
        data_keys::wrapped.eq(None::<String>),
        data_keys::shredded_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Keys (live ones) not wrapped under `kek_id`, at most `limit`, in id order.
pub fn not_under(
    conn: &mut DbConn,
    kek_id: &str,
    limit: i64,
) -> Result<Vec<DataKeyRow>, StorageError> {
    Ok(data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .filter(data_keys::kek_id.ne(kek_id))
        .order(data_keys::id.asc())
        .limit(limit)
        .select(DataKeyRow::as_select())
        .load(conn)?)
}

pub fn count_not_under(conn: &mut DbConn, kek_id: &str) -> Result<i64, StorageError> {
    Ok(data_keys::table
        .filter(data_keys::wrapped.is_not_null())
        .filter(data_keys::kek_id.ne(kek_id))
        .count()
        .get_result(conn)?)
}

/// Re-wraps a key, unless it changed since it was read (shredded, or re-wrapped by a
/// concurrent rotation): true when this call re-wrapped it.
pub fn rewrap(
    conn: &mut DbConn,
    id: &str,
    old_kek_id: &str,
    new_kek_id: &str,
    wrapped: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        data_keys::table
            .find(id)
            .filter(data_keys::kek_id.eq(old_kek_id))
            .filter(data_keys::wrapped.is_not_null()),
    )
    .set((
        data_keys::kek_id.eq(new_kek_id),
        data_keys::wrapped.eq(wrapped),
    ))
    .execute(conn)?;
    Ok(n == 1)
}
