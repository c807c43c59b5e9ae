//! Idempotency keys: one row per (caller, key), reserved before a request's work and
//! completed with its response after (`service::idempotency` says when).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::idempotency_keys as k;
use super::{DbConn, StorageError};

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = k)]
pub struct KeyRow {
    pub caller: String,
    pub idem_key: String,
    pub method: String,
    pub path: String,
    /// Which request holds the key: a completion or release by another does nothing.
    pub attempt: String,
    pub lease_until: Option<NaiveDateTime>,
    pub request_digest: Option<String>,
    pub request_bytes: Option<i64>,
    pub status: Option<i32>,
    /// The sealed response; None while in flight.
    pub response: Option<String>,
    pub created_at: NaiveDateTime,
    pub expires_at: NaiveDateTime,
}

/// The row, locked against a concurrent takeover on PostgreSQL (SQLite's writer holds the
/// database already).
pub fn get_for_update(
    conn: &mut DbConn,
    caller: &str,
    key: &str,
) -> Result<Option<KeyRow>, StorageError> {
    let query = k::table.find((caller, key));
    Ok(match conn {
        DbConn::Pg(c) => query
            .select(KeyRow::as_select())
            .for_update()
            .first(c)
            .optional()?,
        DbConn::Sqlite(c) => query.select(KeyRow::as_select()).first(c).optional()?,
    })
}

/// Inserts a fresh reservation; false when a row for the key is there already (two first
/// requests at once on PostgreSQL: the later waits for the earlier to commit, then sees it).
pub fn insert_new(conn: &mut DbConn, row: &KeyRow) -> Result<bool, StorageError> {
    let insert = diesel::insert_into(k::table)
        .values(row)
        .on_conflict((k::caller, k::idem_key))
        .do_nothing();
    let n = match conn {
        DbConn::Pg(c) => insert.execute(c)?,
        DbConn::Sqlite(c) => insert.execute(c)?,
    };
    Ok(n == 1)
}

/// Reserves the key anew for `row.attempt`, replacing the state held by `previous_attempt`
/// (an expired key, or one whose request died); false when another request did so first.
pub fn replace(
    conn: &mut DbConn,
    row: &KeyRow,
    previous_attempt: &str,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        k::table
            .find((&row.caller, &row.idem_key))
            .filter(k::attempt.eq(previous_attempt)),
    )
    .set((
        k::method.eq(&row.method),
        k::path.eq(&row.path),
        k::attempt.eq(&row.attempt),
        k::lease_until.eq(row.lease_until),
        k::request_digest.eq(None::<String>),
        k::request_bytes.eq(None::<i64>),
        k::status.eq(None::<i32>),
        k::response.eq(None::<String>),
        k::created_at.eq(row.created_at),
        k::expires_at.eq(row.expires_at),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// What the first request answered, stored with its key.
pub struct Completion<'a> {
    pub request_digest: &'a str,
    pub request_bytes: i64,
    pub status: i32,
    pub response: &'a str,
}

/// Stores the response, if `attempt` still holds the key; false otherwise.
pub fn complete(
    conn: &mut DbConn,
    caller: &str,
    key: &str,
    attempt: &str,
    done: &Completion<'_>,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        k::table
            .find((caller, key))
            .filter(k::attempt.eq(attempt))
            .filter(k::response.is_null()),
    )
    .set((
        k::lease_until.eq(None::<NaiveDateTime>),
        k::request_digest.eq(done.request_digest),
        k::request_bytes.eq(done.request_bytes),
        k::status.eq(done.status),
        k::response.eq(done.response),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// Frees a key its request holds without a response to keep (a 5xx).
pub fn release(
    conn: &mut DbConn,
    caller: &str,
    key: &str,
    attempt: &str,
) -> Result<(), StorageError> {
    diesel::delete(
        k::table
            .find((caller, key))
            .filter(k::attempt.eq(attempt))
            .filter(k::response.is_null()),
    )
    .execute(conn)?;
    Ok(())
}

/// Forgets keys expired before `now`: what keeps the table bounded.
pub fn prune(conn: &mut DbConn, now: NaiveDateTime) -> Result<usize, StorageError> {
    Ok(diesel::delete(k::table.filter(k::expires_at.le(now))).execute(conn)?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::{DateTime, Duration, Utc};

    use super::super::Store;
    use super::*;
    use crate::storage::scratch::on_both_databases;

    fn at(seconds: i64) -> NaiveDateTime {
        (DateTime::<Utc>::UNIX_EPOCH + Duration::days(20_000) + Duration::seconds(seconds))
            .naive_utc()
    }

    fn row(caller: &str, key: &str, attempt: &str, expires: i64) -> KeyRow {
        KeyRow {
            caller: caller.into(),
            idem_key: key.into(),
            method: "POST".into(),
            path: "/api/v1/work-orders".into(),
            attempt: attempt.into(),
            lease_until: Some(at(60)),
            request_digest: None,
            request_bytes: None,
            status: None,
            response: None,
            created_at: at(0),
            expires_at: at(expires),
        }
    }

    /// Only the request holding a key completes, replaces or frees it; pruning deletes
    /// exactly the expired keys.
    fn a_key_changes_only_for_its_holder(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let mut conn = store.connection().unwrap();
        let c = &mut *conn;
        assert!(insert_new(c, &row("clerk", "k1", "a1", 100)).unwrap());
        assert!(!insert_new(c, &row("clerk", "k1", "a2", 100)).unwrap());
        assert!(insert_new(c, &row("staff", "k1", "a3", 100)).unwrap());
        let done = Completion {
            request_digest: "d",
            request_bytes: 2,
            status: 201,
            response: "sealed",
        };
        assert!(!complete(c, "clerk", "k1", "a2", &done).unwrap());
        assert!(complete(c, "clerk", "k1", "a1", &done).unwrap());
        assert!(!complete(c, "clerk", "k1", "a1", &done).unwrap(), "once");
        let stored = get_for_update(c, "clerk", "k1").unwrap().unwrap();
        assert_eq!(
            (
                stored.status,
                stored.lease_until,
                stored.response.as_deref()
            ),
            (Some(201), None, Some("sealed"))
        );
        release(c, "clerk", "k1", "a1").unwrap();
        assert!(get_for_update(c, "clerk", "k1").unwrap().is_some(), "kept");
        assert!(!replace(c, &row("clerk", "k1", "a4", 200), "a2").unwrap());
        assert!(replace(c, &row("clerk", "k1", "a4", 200), "a1").unwrap());
        let taken = get_for_update(c, "clerk", "k1").unwrap().unwrap();
        assert_eq!((taken.attempt.as_str(), taken.response), ("a4", None));
        release(c, "staff", "k1", "a3").unwrap();
        assert!(get_for_update(c, "staff", "k1").unwrap().is_none());
        assert!(insert_new(c, &row("staff", "k2", "a5", 100)).unwrap());
        assert_eq!(prune(c, at(100)).unwrap(), 1);
        assert!(get_for_update(c, "clerk", "k1").unwrap().is_some());
        assert_eq!(prune(c, at(200)).unwrap(), 1);
    }

    on_both_databases!(a_key_changes_only_for_its_holder, "idempotency");
}
