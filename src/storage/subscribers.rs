//! Subscribers' real-name records (masked document fields only; the signed result they
//! came from is kept verbatim with the verification result).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::subscribers;
use super::{DbConn, StorageError};
use crate::domain::work_order::VerifiedRecord;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = subscribers)]
#[diesel(treat_none_as_null = true)]
pub struct Subscriber {
    pub msisdn: String,
    pub home_province: String,
    pub real_name_status: String,
    pub document_type: Option<String>,
    pub document_number_masked: Option<String>,
    pub document_name_masked: Option<String>,
    pub verified_at: Option<NaiveDateTime>,
    pub work_order_id: Option<String>,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
}

pub fn get(conn: &mut DbConn, msisdn: &str) -> Result<Option<Subscriber>, StorageError> {
    Ok(subscribers::table
        .find(msisdn)
        .select(Subscriber::as_select())
        .first(conn)
        .optional()?)
}

/// Creates the unverified record a number gets when its first order is opened.
pub fn ensure(
    conn: &mut DbConn,
    msisdn: &str,
    home_province: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    if get(conn, msisdn)?.is_none() {
        diesel::insert_into(subscribers::table)
            .values(Subscriber {
                msisdn: msisdn.to_owned(),
                home_province: home_province.to_owned(),
                real_name_status: "unverified".into(),
                document_type: None,
                document_number_masked: None,
                document_name_masked: None,
                verified_at: None,
                work_order_id: None,
                created_at: now,
                updated_at: now,
            })
            .execute(conn)?;
    }
    Ok(())
}

/// Applies a completion's effect: the record is verified by that order, with the masked
/// document, and the completing province is its home from now on.
pub fn record_verified(conn: &mut DbConn, r: &VerifiedRecord) -> Result<(), StorageError> {
    use subscribers::dsl as s;
    let at = r.verified_at.naive_utc();
    let doc = r.document.as_ref();
    let n = diesel::update(s::subscribers.find(&r.msisdn))
        .set((
            s::home_province.eq(&r.home_province),
            s::real_name_status.eq("verified"),
            s::document_type.eq(doc.map(|d| d.doc_type.as_str())),
            s::document_number_masked.eq(doc.map(|d| d.number.as_str())),
            s::document_name_masked.eq(doc.map(|d| d.name.as_str())),
            s::verified_at.eq(Some(at)),
            s::work_order_id.eq(Some(r.work_order_id.as_str())),
            s::updated_at.eq(at),
        ))
        .execute(conn)?;
    if n != 1 {
        return Err(StorageError::Corrupt(format!(
            "order {} completed without its subscriber record",
            r.work_order_id
        )));
    }
    Ok(())
}
