//! What the quality checks count across orders: evidence files used elsewhere, and the
//! outcome rates of staff, halls and provinces over a window.

use chrono::{DateTime, Utc};
use diesel::prelude::*;

use super::schema::{evidence_files, halls, verification_results, work_orders};
use super::{DbConn, StorageError};
use crate::domain::quality::{EvidenceReuse, OutcomeRates};
use crate::domain::verification::Outcome;

/// The orders other than `order_id` that files with these digests were uploaded to, counted
/// as the same number's and other numbers'.
pub fn evidence_reuse(
    conn: &mut DbConn,
    order_id: &str,
    msisdn: &str,
    digests: &[String],
) -> Result<EvidenceReuse, StorageError> {
    if digests.is_empty() {
        return Ok(EvidenceReuse::default());
    }
    let orders: Vec<String> = evidence_files::table
        .filter(evidence_files::sha256.eq_any(digests))
        .filter(evidence_files::work_order_id.ne(order_id))
        .select(evidence_files::work_order_id)
        .distinct()
        .load(conn)?;
    if orders.is_empty() {
        return Ok(EvidenceReuse::default());
    }
    let numbers: Vec<String> = work_orders::table
        .filter(work_orders::id.eq_any(&orders))
        .select(work_orders::msisdn)
        .load(conn)?;
    let same = numbers.iter().filter(|m| m.as_str() == msisdn).count() as i64;
    Ok(EvidenceReuse {
        other_orders_same_subscriber: same,
        other_subscribers: numbers.len() as i64 - same,
    })
}

/// The results accepted since `since` from halls of `province`, tallied for the staff
/// member, their hall and the whole province.
pub fn outcome_rates(
    conn: &mut DbConn,
    staff: &str,
    hall_id: &str,
    province: &str,
    since: DateTime<Utc>,
) -> Result<OutcomeRates, StorageError> {
    let province_halls = halls::table
        .filter(halls::province.eq(province))
        .select(halls::id);
    // Counted by the database, a row per staff member, hall and outcome: the window's results
    // are never loaded one by one inside the submitting transaction.
    let groups: Vec<(String, String, String, i64)> = verification_results::table
        .filter(verification_results::submitted_at.ge(since.naive_utc()))
        .filter(verification_results::hall_id.eq_any(province_halls))
        .group_by((
            verification_results::staff,
            verification_results::hall_id,
            verification_results::outcome,
        ))
        .select((
            verification_results::staff,
            verification_results::hall_id,
            verification_results::outcome,
            diesel::dsl::count_star(),
        ))
        .load(conn)?;
    let mut rates = OutcomeRates::default();
    for (who, hall, outcome, n) in groups {
        let Some(outcome) = Outcome::parse(&outcome) else {
            continue;
        };
        rates.province.add(outcome, n);
        if hall == hall_id {
            rates.hall.add(outcome, n);
            if who == staff {
                rates.staff.add(outcome, n);
            }
        }
    }
    Ok(rates)
}
