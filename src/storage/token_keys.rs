//! Login-token signing keys, shared by every instance: the newest key not retired signs;
//! every key not retired verifies.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::token_keys;
use super::{DbConn, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = token_keys)]
pub struct TokenKey {
    pub kid: String,
    pub secret: String,
    pub created_at: NaiveDateTime,
    /// From then on no token it signed is still unexpired; None while it may still sign.
    pub retired_at: Option<NaiveDateTime>,
}

/// Every key still good for verifying at `now`, the current signing key first.
pub fn usable(conn: &mut DbConn, now: NaiveDateTime) -> Result<Vec<TokenKey>, StorageError> {
    Ok(token_keys::table
        .filter(
            token_keys::retired_at
                .is_null()
                .or(token_keys::retired_at.gt(now)),
        )
        .order((token_keys::created_at.desc(), token_keys::kid.desc()))
        .select(TokenKey::as_select())
        .load(conn)?)
}

/// The key that signs: the newest one not retired.
pub fn current(conn: &mut DbConn) -> Result<Option<TokenKey>, StorageError> {
    Ok(token_keys::table
        .filter(token_keys::retired_at.is_null())
        .order((token_keys::created_at.desc(), token_keys::kid.desc()))
        .select(TokenKey::as_select())
        .first(conn)
        .optional()?)
}

pub fn insert(conn: &mut DbConn, key: &TokenKey) -> Result<(), StorageError> {
    diesel::insert_into(token_keys::table)
        .values(key)
        .execute(conn)?;
    Ok(())
}

/// Stops every key but `kid` from signing; each verifies until `until`. Returns their kids.
pub fn retire_all_but(
    conn: &mut DbConn,
    kid: &str,
    until: NaiveDateTime,
) -> Result<Vec<String>, StorageError> {
    let others: Vec<String> = token_keys::table
        .filter(token_keys::retired_at.is_null())
        .filter(token_keys::kid.ne(kid))
        .select(token_keys::kid)
        .load(conn)?;
    diesel::update(token_keys::table.filter(token_keys::kid.eq_any(&others)))
        .set(token_keys::retired_at.eq(Some(until)))
        .execute(conn)?;
    Ok(others)
}

/// Forgets keys that no unexpired token can name any more (their secrets with them).
pub fn delete_retired(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, StorageError> {
    Ok(diesel::delete(token_keys::table.filter(token_keys::retired_at.le(now))).execute(conn)?)
}
