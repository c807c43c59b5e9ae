//! Checkpoints as signed notes, the witnesses' cosignatures on them, and the lease on the
//! periodic checkpoint (docs/audit.md, "Witnesses").

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{audit_checkpoint_notes as n, audit_cosignatures as c, audit_witness_lease};
use super::{DbConn, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = n)]
pub struct NoteRow {
    pub size: i64,
    /// The note with the log's own signature line.
    pub note: String,
    pub at: NaiveDateTime,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = c)]
pub struct CosignatureRow {
    /// The witness's vkey.
    pub witness: String,
    pub size: i64,
    /// The signature line the witness answered.
    pub line: String,
    pub at: NaiveDateTime,
}

pub fn latest_note(conn: &mut DbConn) -> Result<Option<NoteRow>, StorageError> {
    Ok(n::table
        .order(n::size.desc())
        .select(NoteRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn note_at(conn: &mut DbConn, size: i64) -> Result<Option<NoteRow>, StorageError> {
    Ok(n::table
        .find(size)
        .select(NoteRow::as_select())
        .first(conn)
        .optional()?)
}

/// Keeps a note unless one of its size is kept already; returns the one kept (first wins).
pub fn keep_note(conn: &mut DbConn, row: &NoteRow) -> Result<NoteRow, StorageError> {
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(n::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_into(n::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(lite)?,
    };
    Ok(n::table
        .find(row.size)
        .select(NoteRow::as_select())
        .first(conn)?)
}

pub fn keep_cosignature(conn: &mut DbConn, row: &CosignatureRow) -> Result<(), StorageError> {
    match conn {
        DbConn::Pg(pg) => diesel::insert_into(c::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(pg)?,
        DbConn::Sqlite(lite) => diesel::insert_into(c::table)
            .values(row)
            .on_conflict_do_nothing()
            .execute(lite)?,
    };
    Ok(())
}

/// The cosignature lines kept for the note of `size`.
pub fn cosignatures_at(conn: &mut DbConn, size: i64) -> Result<Vec<CosignatureRow>, StorageError> {
    Ok(c::table
        .filter(c::size.eq(size))
        .order(c::witness.asc())
        .select(CosignatureRow::as_select())
        .load(conn)?)
}

/// The largest size `witness` cosigned, as far as this database knows.
pub fn last_cosigned(conn: &mut DbConn, witness: &str) -> Result<Option<i64>, StorageError> {
    Ok(c::table
        .filter(c::witness.eq(witness))
        .select(diesel::dsl::max(c::size))
        .first(conn)?)
}

/// The sizes the `witnesses` cosigned, largest first, each once per witness (at most `limit`
/// rows): what picks the latest note with a quorum.
pub fn cosigned_sizes(
    conn: &mut DbConn,
    witnesses: &[String],
    limit: i64,
) -> Result<Vec<i64>, StorageError> {
    Ok(c::table
        .filter(c::witness.eq_any(witnesses))
        .order(c::size.desc())
        .select(c::size)
        .limit(limit)
        .load(conn)?)
}

/// Takes or renews the checkpoint lease for `owner` until `until`, if it is free, ran out by
/// `now`, or is `owner`'s already: one guarded UPDATE, so exactly one instance holds it.
pub fn take_lease(
    conn: &mut DbConn,
    owner: &str,
    now: NaiveDateTime,
    until: NaiveDateTime,
) -> Result<bool, StorageError> {
    use audit_witness_lease::dsl as l;
    let taken = diesel::update(
        l::audit_witness_lease.filter(l::id.eq(1)).filter(
            l::until
                .is_null()
                .or(l::until.le(now))
                .or(l::owner.eq(owner)),
        ),
    )
    .set((l::owner.eq(owner), l::until.eq(until)))
    .execute(conn)?;
    Ok(taken == 1)
}
