//! What the operations overview counts over work orders. Every number is a GROUP BY in the
//! database, narrowed to the caller's scope by the same predicate as the list query: no order
//! is loaded one by one, however many there are.

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use diesel::dsl::{count_star, sql};
use diesel::prelude::*;
use diesel::sql_types::Text;

use super::schema::work_orders;
use super::work_orders::scope_predicate;
use super::{DbConn, StorageError};
use crate::domain::access::Scope;
use crate::domain::calendar::BEIJING;
use crate::domain::work_order::State;

/// Active orders of one state and home province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateCount {
    pub state: State,
    pub province: String,
    pub count: i64,
}

/// The oldest active order: what it is called and when it was opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OldestActive {
    pub id: String,
    pub reference: String,
    pub created_at: DateTime<Utc>,
}

fn active() -> [&'static str; 4] {
    State::ACTIVE.map(State::as_str)
}

/// Active orders by state and home province (the `work_orders_state` index's ranges).
pub fn backlog(conn: &mut DbConn, scope: &Scope) -> Result<Vec<StateCount>, StorageError> {
    use work_orders::dsl as w;
    let Some(in_scope) = scope_predicate(scope) else {
        return Ok(Vec::new());
    };
    let rows: Vec<(String, String, i64)> = w::work_orders
        .filter(w::state.eq_any(active()))
        .filter(in_scope)
        .group_by((w::state, w::home_province))
        .select((w::state, w::home_province, count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(state, province, count)| {
            let state = State::parse(&state).ok_or_else(|| {
                StorageError::Corrupt(format!("work orders with state {state:?}"))
            })?;
            Ok(StateCount {
                state,
                province,
                count,
            })
        })
        .collect()
}

/// Active orders whose `due_at` is before `now`, by home province.
pub fn past_due(
    conn: &mut DbConn,
    scope: &Scope,
    now: DateTime<Utc>,
) -> Result<Vec<(String, i64)>, StorageError> {
    use work_orders::dsl as w;
    let Some(in_scope) = scope_predicate(scope) else {
        return Ok(Vec::new());
    };
    Ok(w::work_orders
        .filter(w::state.eq_any(active()))
        .filter(w::due_at.lt(now.naive_utc()))
        .filter(in_scope)
        .group_by(w::home_province)
        .select((w::home_province, count_star()))
        .load(conn)?)
}

/// The active order opened first (the smaller id between two opened at the same instant).
pub fn oldest_active(
    conn: &mut DbConn,
    scope: &Scope,
) -> Result<Option<OldestActive>, StorageError> {
    use work_orders::dsl as w;
    let Some(in_scope) = scope_predicate(scope) else {
        return Ok(None);
    };
    let row: Option<(String, String, NaiveDateTime)> = w::work_orders
        .filter(w::state.eq_any(active()))
        .filter(in_scope)
        .order((w::created_at.asc(), w::id.asc()))
        .select((w::id, w::reference, w::created_at))
        .first(conn)
        .optional()?;
    Ok(row.map(|(id, reference, created_at)| OldestActive {
        id,
        reference,
        created_at: created_at.and_utc(),
    }))
}

/// Orders completed since `since`, by the Beijing date of their completion. A completed
/// order changes no more, so its `updated_at` is when it completed; the
/// `work_orders_state_updated` index keeps this to the window's rows however many orders
/// completed before it.
pub fn completions_by_day(
    conn: &mut DbConn,
    scope: &Scope,
    since: DateTime<Utc>,
) -> Result<Vec<(NaiveDate, i64)>, StorageError> {
    use work_orders::dsl as w;
    let Some(in_scope) = scope_predicate(scope) else {
        return Ok(Vec::new());
    };
    // Beijing keeps no daylight saving time, so its date is the UTC time shifted by a
    // constant: the same text on both backends, written without bind parameters so that the
    // SELECT and the GROUP BY are one expression to PostgreSQL.
    let offset = BEIJING.local_minus_utc();
    let day = match conn {
        DbConn::Pg(_) => {
            format!("to_char(updated_at + interval '{offset} seconds', 'YYYY-MM-DD')")
        }
        DbConn::Sqlite(_) => format!("date(updated_at, '{offset:+} seconds')"),
    };
    let rows: Vec<(String, i64)> = w::work_orders
        .filter(w::state.eq(State::Completed.as_str()))
        .filter(w::updated_at.ge(since.naive_utc()))
        .filter(in_scope)
        .group_by(sql::<Text>(&day))
        .select((sql::<Text>(&day), count_star()))
        .load(conn)?;
    rows.into_iter()
        .map(|(day, n)| {
            let date = NaiveDate::parse_from_str(&day, "%Y-%m-%d")
                .map_err(|e| StorageError::Corrupt(format!("completion date {day:?}: {e}")))?;
            Ok((date, n))
        })
        .collect()
}
