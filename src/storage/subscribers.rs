//! Subscribers' real-name records (masked document fields only; the signed result they
//! came from is kept verbatim with the verification result).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::subscribers;
use super::{DbConn, StorageError};

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

pub fn save(conn: &mut DbConn, s: &Subscriber) -> Result<(), StorageError> {
    diesel::update(subscribers::table.find(&s.msisdn))
        .set(s)
        .execute(conn)?;
    Ok(())
}
