//! Values every instance sharing the database must agree on: the service's public keys and
//! the blind-index key wrapped by the KEK (the login-token keys are in `token_keys`).

use chrono::NaiveDateTime;
use diesel::prelude::*;

use super::schema::{service_keys, service_secrets};
use super::{DbConn, StorageError};

/// Returns the stored secret, storing `fresh` first if there is none. The caller holds the
/// audit chain's lock (start-up writes with `ChainLock::First`), so instances starting at once
/// take turns: the first stores, every other reads what it stored.
pub fn get_or_insert(conn: &mut DbConn, name: &str, fresh: &str) -> Result<String, StorageError> {
    let existing: Option<String> = service_secrets::table
        .find(name)
        .select(service_secrets::value)
        .first(conn)
        .optional()?;
    if let Some(v) = existing {
        return Ok(v);
    }
    diesel::insert_into(service_secrets::table)
        .values((
            service_secrets::name.eq(name),
            service_secrets::value.eq(fresh),
        ))
        .execute(conn)?;
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

/// Replaces a secret's value, unless it changed since it was read: true when this call did.
pub fn replace(conn: &mut DbConn, name: &str, old: &str, new: &str) -> Result<bool, StorageError> {
    let n = diesel::update(
        service_secrets::table
            .find(name)
            .filter(service_secrets::value.eq(old)),
    )
    .set(service_secrets::value.eq(new))
    .execute(conn)?;
    Ok(n == 1)
}

pub fn get(conn: &mut DbConn, name: &str) -> Result<Option<String>, StorageError> {
    Ok(service_secrets::table
        .find(name)
        .select(service_secrets::value)
        .first(conn)
        .optional()?)
}

/// Bytes a probe write takes: about what a new order with its event and mail needs.
const PROBE_BYTES: usize = 32 * 1024;

/// Writes a row of `PROBE_BYTES` (random, so PostgreSQL cannot compress it away) that the
/// caller rolls back: whether the database has room, and takes writes, again.
pub fn probe_space(conn: &mut DbConn) -> Result<(), StorageError> {
    use rand::RngCore;
    let mut bytes = vec![0u8; PROBE_BYTES / 2];
    rand::thread_rng().fill_bytes(&mut bytes);
    diesel::insert_into(service_secrets::table)
        .values((
            service_secrets::name.eq(format!("write-probe-{}", uuid::Uuid::new_v4())),
            service_secrets::value.eq(hex::encode(bytes)),
        ))
        .execute(conn)?;
    Ok(())
}
