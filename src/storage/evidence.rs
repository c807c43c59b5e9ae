//! Evidence file metadata: which order, which kind, which digest. The bytes themselves are
//! in the object store (`storage::objects`), addressed by `sha256`.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::objects::ObjectName;
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
    /// The data key its object is sealed under; NULL for a plain object written before
    /// encryption at rest.
    pub data_key_id: Option<String>,
    /// When its subscriber was shredded; `object_deleted` once the object is gone.
    pub shredded_at: Option<NaiveDateTime>,
    pub object_deleted: bool,
}

impl EvidenceRow {
    /// Where its bytes are in the object store.
    pub fn object(&self) -> ObjectName {
        match self.data_key_id {
            Some(_) => ObjectName::Sealed {
                order: self.work_order_id.clone(),
                sha256: self.sha256.clone(),
            },
            None => ObjectName::Plain(self.sha256.clone()),
        }
    }
}

/// A re-upload of a file stored plain before encryption at rest is stored sealed: the row
/// follows its object.
pub fn set_key(conn: &mut DbConn, id: &str, key_id: &str) -> Result<(), StorageError> {
    diesel::update(evidence_files::table.find(id))
        .set(evidence_files::data_key_id.eq(Some(key_id)))
        .execute(conn)?;
    Ok(())
}

/// Marks the files of a subscriber's orders shredded; their objects are deleted after the
/// commit (`to_purge`). Returns how many rows it marked.
pub fn shred_for_msisdn(
    conn: &mut DbConn,
    msisdn: &str,
    now: NaiveDateTime,
) -> Result<usize, StorageError> {
    use super::schema::work_orders;
    let orders = work_orders::table
        .filter(work_orders::msisdn.eq(msisdn))
        .select(work_orders::id);
    Ok(diesel::update(
        evidence_files::table
            .filter(evidence_files::work_order_id.eq_any(orders))
            .filter(evidence_files::shredded_at.is_null()),
    )
    .set(evidence_files::shredded_at.eq(Some(now)))
    .execute(conn)?)
}

/// Shredded files whose objects are still to be deleted, at most `limit`.
pub fn to_purge(conn: &mut DbConn, limit: i64) -> Result<Vec<EvidenceRow>, StorageError> {
    Ok(evidence_files::table
        .filter(evidence_files::shredded_at.is_not_null())
        .filter(evidence_files::object_deleted.eq(false))
        .order(evidence_files::id.asc())
        .limit(limit)
        .select(EvidenceRow::as_select())
        .load(conn)?)
}

pub fn mark_deleted(conn: &mut DbConn, ids: &[String]) -> Result<(), StorageError> {
    diesel::update(evidence_files::table.filter(evidence_files::id.eq_any(ids)))
        .set(evidence_files::object_deleted.eq(true))
        .execute(conn)?;
    Ok(())
}

/// Whether a plain object is still named by a file not shredded (plain objects were shared
/// by every order with the same bytes).
pub fn plain_object_in_use(conn: &mut DbConn, sha256: &str) -> Result<bool, StorageError> {
    let n: i64 = evidence_files::table
        .filter(evidence_files::sha256.eq(sha256))
        .filter(evidence_files::data_key_id.is_null())
        .filter(evidence_files::shredded_at.is_null())
        .count()
        .get_result(conn)?;
    Ok(n > 0)
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
