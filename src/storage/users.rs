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
    /// Set by an admin's password reset, cleared by the user's own change.
    pub password_change_required: bool,
}

/// What every authenticated request compares its token with: one indexed read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenState {
    pub disabled: bool,
    pub generation: i64,
    /// The user's hall's generation (hall staff only).
    pub hall_generation: Option<i64>,
    /// An admin reset the password: every call but changing it is refused.
    pub password_change_required: bool,
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
    let row: Option<(Option<NaiveDateTime>, i64, Option<i64>, bool)> = users::table
        .left_join(halls::table)
        .filter(users::username.eq(username))
        .select((
            users::disabled_at,
            users::token_generation,
            halls::token_generation.nullable(),
            users::password_change_required,
        ))
        .first(conn)
        .optional()?;
    Ok(row.map(
        |(disabled_at, generation, hall_generation, password_change_required)| TokenState {
            disabled: disabled_at.is_some(),
            generation,
            hall_generation,
            password_change_required,
        },
    ))
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

/// A new password hash; the user's existing tokens end. `change_required`: set by an
/// admin's reset (the user must change it before anything else), cleared by their own change.
pub fn set_password(
    conn: &mut DbConn,
    username: &str,
    hash: &str,
    change_required: bool,
) -> Result<(), StorageError> {
    diesel::update(users::table.filter(users::username.eq(username)))
        .set((
            users::password_hash.eq(hash),
            users::token_generation.eq(users::token_generation + 1),
            users::password_change_required.eq(change_required),
        ))
        .execute(conn)?;
    Ok(())
}

/// What an admin's list of users is narrowed to; `after` is the last username of the
/// previous page.
#[derive(Debug, Clone, Default)]
pub struct UserFilter {
    pub role: Option<String>,
    pub hall_id: Option<String>,
    pub province: Option<String>,
    pub after: Option<String>,
    pub limit: i64,
}

/// Users by username, a page at a time.
pub fn list(conn: &mut DbConn, f: &UserFilter) -> Result<Vec<User>, StorageError> {
    let mut q = users::table.into_boxed::<super::MultiBackend>();
    if let Some(role) = &f.role {
        q = q.filter(users::role.eq(role.clone()));
    }
    if let Some(hall) = &f.hall_id {
        q = q.filter(users::hall_id.eq(hall.clone()));
    }
    if let Some(province) = &f.province {
        q = q.filter(users::province.eq(province.clone()));
    }
    if let Some(after) = &f.after {
        q = q.filter(users::username.gt(after.clone()));
    }
    Ok(q.order(users::username.asc())
        .limit(f.limit)
        .select(User::as_select())
        .load(conn)?)
}
