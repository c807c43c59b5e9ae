//! The operations overview: the backlog, the oldest active order, orders past due and
//! completions per day, counted by the database over the caller's orders. Counts only, never
//! personal data, so the read is not audited (as the outbox listing is not).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::{Error, Result, Services};
use crate::domain::access::{Actor, Permission};
use crate::domain::operations::{per_day, OverviewDays};
use crate::domain::work_order::State;
use crate::domain::{Detail, WorkOrderId};
use crate::storage::operations;

/// `GET /api/v1/operations/overview`'s query.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OverviewQuery {
    /// Days of completions to count, ending today (Asia/Shanghai): 1 to 90, default 30.
    #[param(minimum = 1, maximum = 90)]
    pub days: Option<u32>,
}

/// Active orders of one state whose home province is `province`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct BacklogCount {
    pub state: State,
    /// GB/T 2260 code of the orders' home province.
    pub province: String,
    pub count: u64,
}

/// The active order opened first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OldestOpen {
    #[schema(value_type = String)]
    pub id: WorkOrderId,
    pub reference: String,
    pub created_at: DateTime<Utc>,
    /// Whole seconds from `created_at` to the overview's `generated_at`.
    pub age_seconds: i64,
}

/// Orders of one home province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ProvinceCount {
    pub province: String,
    pub count: u64,
}

/// Orders completed on one Asia/Shanghai calendar date.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct DayCount {
    /// `YYYY-MM-DD`, Asia/Shanghai.
    #[schema(value_type = String, format = Date)]
    pub date: NaiveDate,
    pub count: u64,
}

/// What an admin's operations page shows, over the orders the caller may count.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct OperationsOverview {
    pub generated_at: DateTime<Utc>,
    /// Active orders (`open`, `claimed`, `submitted`, `awaiting_second_approval`) by state
    /// and home province; only non-zero counts, by province then state.
    pub backlog: Vec<BacklogCount>,
    /// The active order opened first, or null when none is active.
    pub oldest_open: Option<OldestOpen>,
    /// Active orders whose `due_at` has passed, by home province; only non-zero counts.
    pub past_due: Vec<ProvinceCount>,
    /// One entry per date of the last `days` days, today included, oldest first; zero
    /// where nothing completed.
    pub completions_per_day: Vec<DayCount>,
}

fn count(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

/// Where a state comes in the life cycle, for a stable order of the backlog.
fn life_cycle_rank(state: State) -> usize {
    State::ACTIVE
        .iter()
        .position(|s| *s == state)
        .unwrap_or(State::ACTIVE.len())
}

impl Services {
    /// The operations overview for `actor` (admins: every order; auditors: their scope),
    /// completions counted over the last `days` days (`None`: 30).
    pub async fn operations_overview(
        &self,
        actor: Actor,
        days: Option<u32>,
    ) -> Result<OperationsOverview> {
        // The query is judged first: 400 outranks 403 in the contract's order.
        let days = OverviewDays::parse(days).ok_or_else(|| {
            Error::bad_request(
                Some("days"),
                Detail::new("days 须在 1 到 90 之间", "days must be between 1 and 90"),
            )
        })?;
        actor.require(Permission::ReadOperations)?;
        let scope = actor.operations_scope();
        let now = self.now();
        let (mut backlog, oldest, mut past_due, completed) = self
            .store
            .read(move |c| -> Result<_> {
                Ok((
                    operations::backlog(c, &scope)?,
                    operations::oldest_active(c, &scope)?,
                    operations::past_due(c, &scope, now)?,
                    operations::completions_by_day(c, &scope, days.since(now))?,
                ))
            })
            .await?;
        backlog.sort_by(|a, b| {
            (&a.province, life_cycle_rank(a.state)).cmp(&(&b.province, life_cycle_rank(b.state)))
        });
        past_due.sort();
        let completed: Vec<(NaiveDate, u64)> =
            completed.into_iter().map(|(d, n)| (d, count(n))).collect();
        Ok(OperationsOverview {
            generated_at: now,
            backlog: backlog
                .into_iter()
                .map(|b| BacklogCount {
                    state: b.state,
                    province: b.province,
                    count: count(b.count),
                })
                .collect(),
            oldest_open: oldest.map(|o| OldestOpen {
                age_seconds: (now - o.created_at).num_seconds().max(0),
                id: o.id.into(),
                reference: o.reference,
                created_at: o.created_at,
            }),
            past_due: past_due
                .into_iter()
                .map(|(province, n)| ProvinceCount {
                    province,
                    count: count(n),
                })
                .collect(),
            completions_per_day: per_day(&days.dates(now), &completed)
                .into_iter()
                .map(|(date, count)| DayCount { date, count })
                .collect(),
        })
    }
}
