//! Values every instance sharing the database must agree on: the service's public keys
//! (the login-token keys are in `token_keys`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::service_keys;
use super::{DbConn, StorageError};

/// Publishes this instance's public key so every instance's JWKS lists it.
pub fn publish_key(
    conn: &mut DbConn,
    kid: &str,
    alg: &str,
    jwk: &str,
    now: NaiveDateTime,
) -> Result<(), StorageError> {
    // Published already (a restart): keep the first record.
    if published_key(conn, kid)?.is_none() {
        diesel::insert_into(service_keys::table)
            .values((
                service_keys::kid.eq(kid),
                service_keys::alg.eq(alg),
                service_keys::public_jwk.eq(jwk),
                service_keys::created_at.eq(now),
            ))
            .execute(conn)?;
    }
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
