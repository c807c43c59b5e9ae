//! Halls and their registered signing keys.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{hall_keys, halls};
use super::{DbConn, MultiBackend, StorageError};
use crate::domain::HallId;

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = halls)]
pub struct Hall {
    pub id: String,
    pub code: String,
    pub name: String,
    pub province: String,
    pub city: String,
    pub address: String,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
    /// Bumped by every change an admin makes (`If-Match`, `ETag`).
    pub version: i64,
    pub updated_at: Option<NaiveDateTime>,
    /// A deactivated hall takes no new orders.
    pub deactivated_at: Option<NaiveDateTime>,
}

/// What an admin may change about a hall; its code, province and city stay (the code is
/// what its client certificate names, the place what its orders were routed by).
#[derive(Debug, Clone, PartialEq, Eq, AsChangeset)]
#[diesel(table_name = halls)]
pub struct HallChanges {
    pub name: String,
    pub address: String,
    pub email: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = hall_keys)]
pub struct HallKey {
    pub kid: String,
    pub hall_id: String,
    pub alg: String,
    pub public_key_pem: String,
    pub created_at: NaiveDateTime,
    pub revoked_at: Option<NaiveDateTime>,
}

pub fn insert(conn: &mut DbConn, hall: &Hall) -> Result<(), StorageError> {
    diesel::insert_into(halls::table)
        .values(hall)
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &HallId) -> Result<Option<Hall>, StorageError> {
    let id = id.as_str();
    Ok(halls::table
        .find(id)
        .select(Hall::as_select())
        .first(conn)
        .optional()?)
}

pub fn code_exists(conn: &mut DbConn, code: &str) -> Result<bool, StorageError> {
    let n: i64 = halls::table
        .filter(halls::code.eq(code))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

pub fn list(
    conn: &mut DbConn,
    province: Option<&str>,
    city: Option<&str>,
) -> Result<Vec<Hall>, StorageError> {
    let mut q = halls::table.into_boxed::<MultiBackend>();
    if let Some(p) = province {
        q = q.filter(halls::province.eq(p.to_owned()));
    }
    if let Some(c) = city {
        q = q.filter(halls::city.eq(c.to_owned()));
    }
    Ok(q.order(halls::code.asc())
        .select(Hall::as_select())
        .load(conn)?)
}

/// Writes `changes` if the hall still has `version`; false when another change came first.
pub fn update(
    conn: &mut DbConn,
    id: &HallId,
    version: i64,
    changes: &HallChanges,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        halls::table
            .find(id.as_str())
            .filter(halls::version.eq(version)),
    )
    .set((
        changes,
        halls::version.eq(version + 1),
        halls::updated_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Deactivates (`Some`) or reactivates (`None`) a hall, if it still has `version`.
pub fn set_deactivated(
    conn: &mut DbConn,
    id: &HallId,
    version: i64,
    at: Option<NaiveDateTime>,
    now: NaiveDateTime,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        halls::table
            .find(id.as_str())
            .filter(halls::version.eq(version)),
    )
    .set((
        halls::deactivated_at.eq(at),
        halls::version.eq(version + 1),
        halls::updated_at.eq(Some(now)),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn insert_key(conn: &mut DbConn, key: &HallKey) -> Result<(), StorageError> {
    diesel::insert_into(hall_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

pub fn get_key(conn: &mut DbConn, kid: &str) -> Result<Option<HallKey>, StorageError> {
    Ok(hall_keys::table
        .find(kid)
        .select(HallKey::as_select())
        .first(conn)
        .optional()?)
}

pub fn revoke_key(conn: &mut DbConn, kid: &str, at: DateTime<Utc>) -> Result<(), StorageError> {
    diesel::update(hall_keys::table.find(kid))
        .set(hall_keys::revoked_at.eq(Some(at.naive_utc())))
        .execute(conn)?;
    Ok(())
}

/// Ends the existing tokens of every staff member of the hall.
pub fn bump_token_generation(conn: &mut DbConn, id: &HallId) -> Result<(), StorageError> {
    diesel::update(halls::table.find(id.as_str()))
        .set(halls::token_generation.eq(halls::token_generation + 1))
        .execute(conn)?;
    Ok(())
}
