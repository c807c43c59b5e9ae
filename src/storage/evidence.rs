//! Evidence file metadata: which order, which kind, which digest. The bytes themselves are
//! in the object store (`storage::objects`), addressed by `sha256`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::evidence_files;
use super::{DbConn, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = evidence_files)]
pub struct EvidenceRow {
    pub id: String,
    pub work_order_id: String,
    pub kind: String,
    pub sha256: String,
    pub size: i64,
    pub content_type: String,
    /// The hall that uploaded it: a result may only bind its own hall's files.
    pub hall_id: String,
    pub uploaded_by: String,
    pub uploaded_at: NaiveDateTime,
}

pub fn insert(conn: &mut DbConn, row: &EvidenceRow) -> Result<(), StorageError> {
    diesel::insert_into(evidence_files::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

/// The order's file of this kind with these bytes, if uploaded.
pub fn find(
    conn: &mut DbConn,
    order_id: &str,
    kind: &str,
    sha256: &str,
) -> Result<Option<EvidenceRow>, StorageError> {
    Ok(evidence_files::table
        .filter(evidence_files::work_order_id.eq(order_id))
        .filter(evidence_files::kind.eq(kind))
        .filter(evidence_files::sha256.eq(sha256))
        .select(EvidenceRow::as_select())
        .first(conn)
        .optional()?)
}

/// The order's first-uploaded file with these bytes, whatever its kind.
pub fn find_by_digest(
    conn: &mut DbConn,
    order_id: &str,
    sha256: &str,
) -> Result<Option<EvidenceRow>, StorageError> {
    Ok(evidence_files::table
        .filter(evidence_files::work_order_id.eq(order_id))
        .filter(evidence_files::sha256.eq(sha256))
        .order((evidence_files::uploaded_at.asc(), evidence_files::id.asc()))
        .select(EvidenceRow::as_select())
        .first(conn)
        .optional()?)
}

/// Every file of an order, oldest first.
pub fn for_order(conn: &mut DbConn, order_id: &str) -> Result<Vec<EvidenceRow>, StorageError> {
    Ok(evidence_files::table
        .filter(evidence_files::work_order_id.eq(order_id))
        .order((evidence_files::uploaded_at.asc(), evidence_files::id.asc()))
        .select(EvidenceRow::as_select())
        .load(conn)?)
}
