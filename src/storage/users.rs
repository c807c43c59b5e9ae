//! Users, their password hashes, and what decides whether their tokens still hold.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{halls, users};
use super::{DbConn, StorageError};

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable, Insertable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub role: String,
    pub province: Option<String>,
    pub hall_id: Option<String>,
    pub email: Option<String>,
    pub created_at: NaiveDateTime,
    pub disabled_at: Option<NaiveDateTime>,
    /// Bumped whenever the user's existing tokens must stop working.
    pub token_generation: i64,
}

/// What every authenticated request compares its token with: one indexed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub disabled: bool,
    pub generation: i64,
    /// The user's hall's generation (hall staff only).
    pub hall_generation: Option<i64>,
}

pub fn insert(conn: &mut DbConn, user: &User) -> Result<(), StorageError> {
    diesel::insert_into(users::table)
        .values(user)
        .execute(conn)?;
    Ok(())
}

pub fn by_username(conn: &mut DbConn, username: &str) -> Result<Option<User>, StorageError> {
    Ok(users::table
        .filter(users::username.eq(username))
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// The user and their hall's token generation, in one read (what a login needs).
pub fn for_login(
    conn: &mut DbConn,
    username: &str,
) -> Result<Option<(User, Option<i64>)>, StorageError> {
    Ok(users::table
        .left_join(halls::table)
        .filter(users::username.eq(username))
        .select((User::as_select(), halls::token_generation.nullable()))
        .first(conn)
        .optional()?)
}

pub fn token_state(conn: &mut DbConn, username: &str) -> Result<Option<TokenState>, StorageError> {
    let row: Option<(Option<NaiveDateTime>, i64, Option<i64>)> = users::table
        .left_join(halls::table)
        .filter(users::username.eq(username))
        .select((
            users::disabled_at,
            users::token_generation,
            halls::token_generation.nullable(),
        ))
        .first(conn)
        .optional()?;
    Ok(
        row.map(|(disabled_at, generation, hall_generation)| TokenState {
            disabled: disabled_at.is_some(),
            generation,
            hall_generation,
        }),
    )
}

pub fn username_exists(conn: &mut DbConn, username: &str) -> Result<bool, StorageError> {
    let n: i64 = users::table
        .filter(users::username.eq(username))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// Disables (`Some`) or enables (`None`) a user; either way their existing tokens end.
pub fn set_disabled(
    conn: &mut DbConn,
    username: &str,
    at: Option<NaiveDateTime>,
) -> Result<(), StorageError> {
    diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::disabled_at.eq(at),
            users::token_generation.eq(users::token_generation + 1),
        ))
        .execute(conn)?;
    Ok(())
}

/// A new password hash; the user's existing tokens end.
pub fn set_password(conn: &mut DbConn, username: &str, hash: &str) -> Result<(), StorageError> {
    diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::password_hash.eq(hash),
            users::token_generation.eq(users::token_generation + 1),
        ))
        .execute(conn)?;
    Ok(())
}
