//! The service clock's shared offset (`testing.movable_clock`): one row every instance reads.

use diesel::prelude::*;

use super::schema::clock_offset;
use super::{DbConn, StorageError};

/// How far the clock has been moved (testing.movable_clock), shared by every instance.
pub fn clock_offset(conn: &mut DbConn) -> Result<i64, StorageError> {
    Ok(clock_offset::table
        .find(1)
        .select(clock_offset::offset_seconds)
        .first::<i64>(conn)
        .optional()?
        .unwrap_or(0))
}

/// Moves the shared clock forward and returns the new offset.
pub fn advance_clock(conn: &mut DbConn, seconds: i64) -> Result<i64, StorageError> {
    use clock_offset::dsl as c;
    diesel::update(c::clock_offset.find(1))
        .set(c::offset_seconds.eq(c::offset_seconds + seconds))
        .execute(conn)?;
    clock_offset(conn)
}
