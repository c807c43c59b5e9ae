//! What crypto-shredding asks of the database: the subscribers due, and erasing what makes
//! their rows findable (blind indexes, masks in views).

use chrono::NaiveDateTime;
use diesel::dsl::{exists, not};
use diesel::prelude::*;

use super::schema::{data_keys, evidence_files, verification_results, work_orders};
use super::{DbConn, StorageError};
use crate::domain::work_order::State;

/// Subscribers with something left to shred (a live data key, or evidence not yet shredded)
/// whose orders are all closed, the last of them before `cutoff`; at most `limit`.
pub fn due(
    conn: &mut DbConn,
    cutoff: NaiveDateTime,
    limit: i64,
) -> Result<Vec<String>, StorageError> {
    let mut out: Vec<String> = data_keys::table
        .filter(data_keys::shredded_at.is_null())
        .filter(not(exists(
            work_orders::table
                .filter(work_orders::msisdn.eq(data_keys::msisdn))
                .filter(
                    work_orders::state
                        .eq_any(State::ACTIVE.map(State::as_str))
                        .or(work_orders::updated_at.ge(cutoff)),
                ),
        )))
        .order(data_keys::msisdn.asc())
        .limit(limit)
        .select(data_keys::msisdn)
        .load(conn)?;
    // Plain evidence stored before encryption at rest, possibly of subscribers without a
    // key: their numbers, judged one by one (a shrinking set: shredding marks them).
    let legacy: Vec<String> = evidence_files::table
        .inner_join(work_orders::table.on(work_orders::id.eq(evidence_files::work_order_id)))
        .filter(evidence_files::shredded_at.is_null())
        .filter(evidence_files::data_key_id.is_null())
        .select(work_orders::msisdn)
        .distinct()
        .load(conn)?;
    for msisdn in legacy {
        if still_due(conn, &msisdn, cutoff)? {
            out.push(msisdn);
        }
    }
    out.sort();
    out.dedup();
    out.truncate(usize::try_from(limit).unwrap_or(0));
    Ok(out)
}

/// Whether the subscriber is still due (checked again inside the shredding transaction).
pub fn still_due(
    conn: &mut DbConn,
    msisdn: &str,
    cutoff: NaiveDateTime,
) -> Result<bool, StorageError> {
    let blocking: i64 = work_orders::table
        .filter(work_orders::msisdn.eq(msisdn))
        .filter(
            work_orders::state
                .eq_any(State::ACTIVE.map(State::as_str))
                .or(work_orders::updated_at.ge(cutoff)),
        )
        .count()
        .get_result(conn)?;
    Ok(blocking == 0)
}

/// How many orders and results of the subscriber lose their indexes and masks.
#[derive(Debug, Default, Clone, Copy)]
pub struct Erased {
    pub orders: usize,
    pub results: usize,
}

/// Nulls the blind indexes and the expected name's mask of the subscriber's rows: after
/// shredding nothing finds them by name or number, and views show no name.
pub fn erase_indexes(conn: &mut DbConn, msisdn: &str) -> Result<Erased, StorageError> {
    let orders = work_orders::table
        .filter(work_orders::msisdn.eq(msisdn))
        .select(work_orders::id);
    let results = diesel::update(
        verification_results::table.filter(verification_results::work_order_id.eq_any(orders)),
    )
    .set((
        verification_results::document_number_index.eq(None::<String>),
        verification_results::document_name_index.eq(None::<String>),
    ))
    .execute(conn)?;
    let orders = diesel::update(work_orders::table.filter(work_orders::msisdn.eq(msisdn)))
        .set((
            work_orders::expected_name_index.eq(None::<String>),
            work_orders::expected_name_masked.eq(None::<String>),
        ))
        .execute(conn)?;
    Ok(Erased { orders, results })
}
