//! Failed logins per (username, client address), and per address over every name
//! (username [`ANY_NAME`]), shared by every instance.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::login_throttle;
use super::{DbConn, StorageError};

/// The username of an address's row counting every name: not a username `Username::parse`
/// accepts, so no user's pair can collide with it.
pub const ANY_NAME: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = login_throttle)]
pub struct Throttle {
    pub username: String,
    pub address: String,
    pub failures: i64,
    pub last_failed_at: NaiveDateTime,
    pub blocked_until: Option<NaiveDateTime>,
}

/// The pair's row (when `username` is given) and the address's row over every name.
pub fn of(
    conn: &mut DbConn,
    username: Option<&str>,
    address: &str,
) -> Result<Vec<Throttle>, StorageError> {
    let names: Vec<&str> = username.into_iter().chain([ANY_NAME]).collect();
    Ok(login_throttle::table
        .filter(login_throttle::address.eq(address))
        .filter(login_throttle::username.eq_any(names))
        .select(Throttle::as_select())
        .load(conn)?)
}

/// Counts one more failure on the row (`username`, `address`), starting it when there is
/// none; returns the count. Concurrent failures on every instance each count.
pub fn count_failure(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    now: NaiveDateTime,
) -> Result<i64, StorageError> {
    // An upsert, so failures counted at once on several instances each count; the same
    // statement on both dialects, which the multi-backend DSL does not offer.
    let upsert = diesel::insert_into(login_throttle::table)
        .values((
            login_throttle::username.eq(username),
            login_throttle::address.eq(address),
            login_throttle::failures.eq(1i64),
            login_throttle::last_failed_at.eq(now),
        ))
        .on_conflict((login_throttle::username, login_throttle::address))
        .do_update()
        .set((
            login_throttle::failures.eq(login_throttle::failures + 1),
            login_throttle::last_failed_at.eq(now),
        ));
    match conn {
        DbConn::Pg(c) => upsert.execute(c)?,
        DbConn::Sqlite(c) => upsert.execute(c)?,
    };
    Ok(login_throttle::table
        .find((username, address))
        .select(login_throttle::failures)
        .first(conn)?)
}

pub fn block_until(
    conn: &mut DbConn,
    username: &str,
    address: &str,
    until: Option<NaiveDateTime>,
) -> Result<(), StorageError> {
    diesel::update(login_throttle::table.find((username, address)))
        .set(login_throttle::blocked_until.eq(until))
        .execute(conn)?;
    Ok(())
}

/// Forgets rows with no failure since `before`: what keeps the table bounded.
pub fn prune(conn: &mut DbConn, before: NaiveDateTime) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(login_throttle::table.filter(login_throttle::last_failed_at.lt(before)))
            .execute(conn)?,
    )
}

/// A successful login clears its pair.
pub fn clear_pair(conn: &mut DbConn, username: &str, address: &str) -> Result<(), StorageError> {
    diesel::delete(login_throttle::table.find((username, address))).execute(conn)?;
    Ok(())
}

/// An admin's unlock: every address's pair with this username.
pub fn clear_user(conn: &mut DbConn, username: &str) -> Result<usize, StorageError> {
    Ok(
        diesel::delete(login_throttle::table.filter(login_throttle::username.eq(username)))
            .execute(conn)?,
    )
}
