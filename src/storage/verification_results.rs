//! Accepted verification results, each with its JWS stored verbatim.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::verification_results;
use super::{DbConn, StorageError};
use crate::domain::verification::MaskedDocument;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = verification_results)]
pub struct VerificationRow {
    pub id: String,
    pub work_order_id: String,
    /// Sealed (`crypto::field`): the verbatim JWS holds the full ID number and name.
    pub jws: String,
    pub result_sha256: String,
    pub kid: String,
    pub alg: String,
    pub hall_id: String,
    pub staff: String,
    pub outcome: String,
    pub document_type: Option<String>,
    pub document_number_masked: Option<String>,
    pub document_name_masked: Option<String>,
    /// JSON text.
    pub method: String,
    /// JSON text.
    pub evidence: String,
    pub iat: i64,
    pub jti: String,
    pub submitted_at: NaiveDateTime,
    /// Blind indexes of the document's number and name (NULL once shredded).
    pub document_number_index: Option<String>,
    pub document_name_index: Option<String>,
    /// JSON text: the quality checks' flags (`[{code, severity, reason}]`).
    pub quality_flags: String,
}

impl VerificationRow {
    /// The document as stored (masked), when the result carried one.
    pub fn masked_document(&self) -> Option<MaskedDocument> {
        Some(MaskedDocument {
            doc_type: self.document_type.clone()?,
            number: self.document_number_masked.clone()?,
            name: self.document_name_masked.clone()?,
        })
    }
}

pub fn insert(conn: &mut DbConn, row: &VerificationRow) -> Result<(), StorageError> {
    diesel::insert_into(verification_results::table)
        .values(row)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<VerificationRow>, StorageError> {
    Ok(verification_results::table
        .find(id)
        .select(VerificationRow::as_select())
        .first(conn)
        .optional()?)
}

pub fn get_many(conn: &mut DbConn, ids: &[String]) -> Result<Vec<VerificationRow>, StorageError> {
    Ok(verification_results::table
        .filter(verification_results::id.eq_any(ids))
        .select(VerificationRow::as_select())
        .load(conn)?)
}

pub fn jti_seen(conn: &mut DbConn, jti: &str) -> Result<bool, StorageError> {
    let n: i64 = verification_results::table
        .filter(verification_results::jti.eq(jti))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Results whose JWS is still plain (accepted before encryption at rest), with the order's
/// number, at most `limit`.
pub fn plain_results(
    conn: &mut DbConn,
    limit: i64,
) -> Result<Vec<(String, String, String)>, StorageError> {
    use super::schema::work_orders;
    Ok(verification_results::table
        .inner_join(work_orders::table.on(work_orders::id.eq(verification_results::work_order_id)))
        .filter(verification_results::jws.not_like("v1:%"))
        .order(verification_results::id.asc())
        .limit(limit)
        .select((
            verification_results::id,
            work_orders::msisdn,
            verification_results::jws,
        ))
        .load(conn)?)
}

pub fn seal_jws(
    conn: &mut DbConn,
    id: &str,
    sealed: &str,
    number_index: Option<String>,
    name_index: Option<String>,
) -> Result<(), StorageError> {
    diesel::update(verification_results::table.find(id))
        .set((
            verification_results::jws.eq(sealed),
            verification_results::document_number_index.eq(number_index),
            verification_results::document_name_index.eq(name_index),
        ))
        .execute(conn)?;
    Ok(())
}
