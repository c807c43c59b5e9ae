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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use chrono::TimeZone;

    use super::*;
    use crate::domain::work_order::{Review, WorkOrder};
    use crate::domain::WorkOrderId;
    use crate::storage::scratch::on_both_databases;
    use crate::storage::{work_orders, Store};

    fn at(d: u32, h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, d, h, m, s).unwrap()
    }

    fn date(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 12, d).unwrap()
    }

    /// An order of `home` to Shandong, opened at `created`, due at `due`, last changed at
    /// `updated`.
    fn order(
        n: usize,
        home: &str,
        state: State,
        created: DateTime<Utc>,
        due: DateTime<Utc>,
        updated: DateTime<Utc>,
    ) -> WorkOrder {
        WorkOrder {
            id: WorkOrderId::from(format!("wo-{n:03}")),
            reference: format!("{home}-20261201-{n:06}"),
            msisdn: format!("189{n:08}"),
            home_province: home.into(),
            target_province: "37".into(),
            target_city: "370100".into(),
            target_hall_id: None,
            state,
            version: 1,
            reason: "r".into(),
            expected_name_masked: None,
            opened_by: "clerk".into(),
            claimed_by: None,
            claimed_hall_id: None,
            due_at: due,
            deadline_at: due,
            created_at: created,
            updated_at: updated,
            suspend_at: None,
            remind_at: due,
            reminded_at: None,
            escalated_at: None,
            verification_id: None,
            receipt: None,
            claimed_at: None,
            review: Review::default(),
        }
    }

    on_both_databases!(counts_by_beijing_date, "overview");

    fn counts_by_beijing_date(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let mut conn = store.connection().unwrap();
        let now = at(4, 12, 0, 0);
        let opened = at(1, 1, 0, 0);
        let orders = [
            // Completed one second before and at Beijing midnight of 4 December (16:00 UTC
            // on the 3rd), and one second before the window opens.
            order(1, "53", State::Completed, opened, now, at(3, 15, 59, 59)),
            order(2, "53", State::Completed, opened, now, at(3, 16, 0, 0)),
            order(3, "11", State::Completed, opened, now, at(1, 15, 59, 59)),
            // Active: one past due, two not yet; the oldest is a claimed one.
            order(4, "53", State::Open, at(2, 0, 0, 0), at(4, 11, 59, 59), now),
            order(5, "11", State::Claimed, at(1, 0, 0, 0), at(5, 0, 0, 0), now),
            order(
                6,
                "53",
                State::AwaitingSecondApproval,
                at(3, 0, 0, 0),
                now,
                now,
            ),
            order(
                7,
                "11",
                State::Cancelled,
                at(1, 0, 0, 0),
                at(1, 0, 0, 0),
                now,
            ),
        ];
        for o in &orders {
            work_orders::insert(&mut conn, o, None).unwrap();
        }
        // The window of 3 Beijing days ending 4 December starts at 2 December, 16:00 UTC
        // on the 1st.
        let since = at(1, 16, 0, 0);
        let mut days = completions_by_day(&mut conn, &Scope::All, since).unwrap();
        days.sort();
        assert_eq!(days, [(date(3), 1), (date(4), 1)]);
        let wider = completions_by_day(&mut conn, &Scope::All, at(1, 15, 0, 0)).unwrap();
        assert!(wider.contains(&(date(1), 1)), "{wider:?}");

        let mut backlog = backlog(&mut conn, &Scope::All).unwrap();
        backlog
            .sort_by(|a, b| (&a.province, a.state.as_str()).cmp(&(&b.province, b.state.as_str())));
        let got: Vec<(&str, &str, i64)> = backlog
            .iter()
            .map(|b| (b.province.as_str(), b.state.as_str(), b.count))
            .collect();
        assert_eq!(
            got,
            [
                ("11", "claimed", 1),
                ("53", "awaiting_second_approval", 1),
                ("53", "open", 1)
            ]
        );
        assert_eq!(
            past_due(&mut conn, &Scope::All, now).unwrap(),
            [("53".to_owned(), 1)]
        );
        let oldest = oldest_active(&mut conn, &Scope::All).unwrap().unwrap();
        assert_eq!(
            (oldest.id.as_str(), oldest.created_at),
            ("wo-005", at(1, 0, 0, 0))
        );

        // A province's scope: its own orders (all orders go to 37, none from 44).
        let yunnan = Scope::HomeOrTargetProvince("53".into());
        assert_eq!(
            oldest_active(&mut conn, &yunnan).unwrap().unwrap().id,
            "wo-004"
        );
        assert_eq!(
            completions_by_day(&mut conn, &yunnan, since).unwrap().len(),
            2
        );
        let nobody = Scope::HomeOrTargetProvince("44".into());
        assert!(backlog_is_empty(&mut conn, &nobody));
        assert!(oldest_active(&mut conn, &Scope::Nothing).unwrap().is_none());
    }

    fn backlog_is_empty(conn: &mut DbConn, scope: &Scope) -> bool {
        backlog(conn, scope).unwrap().is_empty()
            && past_due(conn, scope, at(31, 0, 0, 0)).unwrap().is_empty()
    }
}
