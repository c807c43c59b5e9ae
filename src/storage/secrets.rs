//! Values every instance sharing the database must agree on: the login-token key and the
//! service's public keys.

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{service_keys, service_secrets};
use super::{DbConn, StorageError};

/// Returns the stored secret, storing `fresh` first if there is none: whichever instance
/// stores first wins, and every instance reads the same value.
pub fn get_or_insert(conn: &mut DbConn, name: &str, fresh: &str) -> Result<String, StorageError> {
    let existing: Option<String> = service_secrets::table
        .find(name)
        .select(service_secrets::value)
        .first(conn)
        .optional()?;
    if let Some(v) = existing {
        return Ok(v);
    }
    // Inside a transaction a failed insert would abort it on PostgreSQL: skip a conflict.
    let row = (
        service_secrets::name.eq(name),
        service_secrets::value.eq(fresh),
    );
    let insert = diesel::insert_into(service_secrets::table).values(row);
    match conn {
        DbConn::Pg(c) => insert.on_conflict_do_nothing().execute(c)?,
        DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
    };
    Ok(service_secrets::table
        .find(name)
        .select(service_secrets::value)
        .first(conn)?)
}

/// Publishes this instance's public key so every instance's JWKS lists it.
pub fn publish_key(
    conn: &mut DbConn,
    kid: &str,
    alg: &str,
    jwk: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    let row = (
        service_keys::kid.eq(kid),
        service_keys::alg.eq(alg),
        service_keys::public_jwk.eq(jwk),
        service_keys::created_at.eq(now),
    );
    let insert = diesel::insert_into(service_keys::table).values(row);
    // Published already (a restart): keep the first record.
    match conn {
        DbConn::Pg(c) => insert.on_conflict_do_nothing().execute(c)?,
        DbConn::Sqlite(c) => insert.on_conflict_do_nothing().execute(c)?,
    };
    Ok(())
}

pub fn published_keys(conn: &mut DbConn) -> Result<Vec<String>, StorageError> {
    Ok(service_keys::table
        .order(service_keys::created_at.asc())
        .select(service_keys::public_jwk)
        .load(conn)?)
}

pub fn published_key(conn: &mut DbConn, kid: &str) -> Result<Option<String>, StorageError> {
    Ok(service_keys::table
        .find(kid)
        .select(service_keys::public_jwk)
        .first(conn)
        .optional()?)
}
