//! Work orders and their daily reference counters.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Bool, Nullable};

use super::schema::{reference_counters, work_orders};
use super::{DbConn, MultiBackend, StorageError};
use crate::domain::access::Scope;
use crate::domain::work_order::{Kind, Review, State, Transition, WorkOrder};
use crate::domain::WorkOrderId;

#[derive(Debug, Clone, Queryable, Selectable, Insertable, AsChangeset)]
#[diesel(table_name = work_orders)]
#[diesel(treat_none_as_null = true)]
pub struct WorkOrderRow {
    pub id: String,
    pub reference: String,
    pub msisdn: String,
    pub home_province: String,
    pub target_province: String,
    pub target_city: String,
    pub target_hall_id: Option<String>,
    pub state: String,
    pub version: i64,
    pub reason: String,
    pub expected_name: Option<String>,
    pub opened_by: String,
    pub claimed_by: Option<String>,
    pub claimed_hall_id: Option<String>,
    pub due_at: NaiveDateTime,
    pub deadline_at: NaiveDateTime,
    pub created_at: NaiveDateTime,
    pub updated_at: NaiveDateTime,
    pub verification_id: Option<String>,
    pub receipt: Option<String>,
    pub suspend_at: Option<NaiveDateTime>,
    pub remind_at: Option<NaiveDateTime>,
    pub reminded_at: Option<NaiveDateTime>,
    pub escalated_at: Option<NaiveDateTime>,
    pub expected_name_masked: Option<String>,
    pub expected_name_index: Option<String>,
    pub flagged: bool,
    pub needs_second_approval: bool,
    pub approved_by: Option<String>,
    pub claimed_at: Option<NaiveDateTime>,
}

/// `expected_name` as stored: sealed (`crypto::field`), with its blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredName {
    pub sealed: String,
    pub index: String,
}

/// What a person's step may change: everything but the identity of the order and the
/// scheduler's own marks (`reminded_at`, `escalated_at`), so a step decided on a read from
/// before a timer fired cannot unmark it.
#[derive(Debug, Clone, AsChangeset)]
#[diesel(table_name = work_orders)]
#[diesel(treat_none_as_null = true)]
struct StepChanges {
    target_province: String,
    target_city: String,
    target_hall_id: Option<String>,
    state: String,
    version: i64,
    claimed_by: Option<String>,
    claimed_hall_id: Option<String>,
    due_at: NaiveDateTime,
    deadline_at: NaiveDateTime,
    updated_at: NaiveDateTime,
    verification_id: Option<String>,
    receipt: Option<String>,
    suspend_at: Option<NaiveDateTime>,
    remind_at: Option<NaiveDateTime>,
    flagged: bool,
    needs_second_approval: bool,
    approved_by: Option<String>,
    claimed_at: Option<NaiveDateTime>,
}

impl From<&WorkOrder> for StepChanges {
    fn from(o: &WorkOrder) -> Self {
        StepChanges {
            target_province: o.target_province.clone(),
            target_city: o.target_city.clone(),
            target_hall_id: o.target_hall_id.as_ref().map(ToString::to_string),
            state: o.state.as_str().to_owned(),
            version: o.version,
            claimed_by: o.claimed_by.as_ref().map(ToString::to_string),
            claimed_hall_id: o.claimed_hall_id.as_ref().map(ToString::to_string),
            due_at: o.due_at.naive_utc(),
            deadline_at: o.deadline_at.naive_utc(),
            updated_at: o.updated_at.naive_utc(),
            verification_id: o.verification_id.as_ref().map(ToString::to_string),
            receipt: o.receipt.clone(),
            suspend_at: o.suspend_at.map(|t| t.naive_utc()),
            remind_at: Some(o.remind_at.naive_utc()),
            flagged: o.review.flagged,
            needs_second_approval: o.review.needs_second_approval,
            approved_by: o.review.approved_by.as_ref().map(ToString::to_string),
            claimed_at: o.claimed_at.map(|t| t.naive_utc()),
        }
    }
}

fn utc(t: NaiveDateTime) -> DateTime<Utc> {
    t.and_utc()
}

impl TryFrom<WorkOrderRow> for WorkOrder {
    type Error = StorageError;
    fn try_from(r: WorkOrderRow) -> Result<Self, StorageError> {
        let state = State::parse(&r.state).ok_or_else(|| {
            StorageError::Corrupt(format!("work order {} has state {:?}", r.id, r.state))
        })?;
        Ok(WorkOrder {
            id: r.id.into(),
            reference: r.reference,
            msisdn: r.msisdn,
            home_province: r.home_province,
            target_province: r.target_province,
            target_city: r.target_city,
            target_hall_id: r.target_hall_id.map(Into::into),
            state,
            version: r.version,
            reason: r.reason,
            expected_name_masked: r.expected_name_masked,
            opened_by: r.opened_by.into(),
            claimed_by: r.claimed_by.map(Into::into),
            claimed_hall_id: r.claimed_hall_id.map(Into::into),
            due_at: utc(r.due_at),
            deadline_at: utc(r.deadline_at),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            verification_id: r.verification_id.map(Into::into),
            receipt: r.receipt,
            suspend_at: r.suspend_at.map(utc),
            // Orders older than the reminder have theirs at due_at (the migration sets it so).
            remind_at: utc(r.remind_at.unwrap_or(r.due_at)),
            reminded_at: r.reminded_at.map(utc),
            escalated_at: r.escalated_at.map(utc),
            claimed_at: r.claimed_at.map(utc),
            review: Review {
                flagged: r.flagged,
                needs_second_approval: r.needs_second_approval,
                approved_by: r.approved_by.map(Into::into),
            },
        })
    }
}

impl WorkOrderRow {
    fn new(o: &WorkOrder, name: Option<&StoredName>) -> Self {
        WorkOrderRow {
            id: o.id.to_string(),
            reference: o.reference.clone(),
            msisdn: o.msisdn.clone(),
            home_province: o.home_province.clone(),
            target_province: o.target_province.clone(),
            target_city: o.target_city.clone(),
            target_hall_id: o.target_hall_id.as_ref().map(ToString::to_string),
            state: o.state.as_str().to_owned(),
            version: o.version,
            reason: o.reason.clone(),
            expected_name: name.map(|n| n.sealed.clone()),
            opened_by: o.opened_by.to_string(),
            claimed_by: o.claimed_by.as_ref().map(ToString::to_string),
            claimed_hall_id: o.claimed_hall_id.as_ref().map(ToString::to_string),
            due_at: o.due_at.naive_utc(),
            deadline_at: o.deadline_at.naive_utc(),
            created_at: o.created_at.naive_utc(),
            updated_at: o.updated_at.naive_utc(),
            verification_id: o.verification_id.as_ref().map(ToString::to_string),
            receipt: o.receipt.clone(),
            suspend_at: o.suspend_at.map(|t| t.naive_utc()),
            remind_at: Some(o.remind_at.naive_utc()),
            reminded_at: o.reminded_at.map(|t| t.naive_utc()),
            escalated_at: o.escalated_at.map(|t| t.naive_utc()),
            expected_name_masked: o.expected_name_masked.clone(),
            expected_name_index: name.map(|n| n.index.clone()),
            flagged: o.review.flagged,
            needs_second_approval: o.review.needs_second_approval,
            approved_by: o.review.approved_by.as_ref().map(ToString::to_string),
            claimed_at: o.claimed_at.map(|t| t.naive_utc()),
        }
    }
}

/// A new order, its expected name (if any) sealed by the caller.
pub fn insert(
    conn: &mut DbConn,
    order: &WorkOrder,
    name: Option<&StoredName>,
) -> Result<(), StorageError> {
    diesel::insert_into(work_orders::table)
        .values(WorkOrderRow::new(order, name))
        .execute(conn)?;
    Ok(())
}

/// The stored (sealed, or plain if written before encryption) expected names of orders.
pub fn stored_names(
    conn: &mut DbConn,
    ids: &[String],
) -> Result<Vec<(String, String)>, StorageError> {
    let rows: Vec<(String, Option<String>)> = work_orders::table
        .filter(work_orders::id.eq_any(ids))
        .filter(work_orders::expected_name.is_not_null())
        .select((work_orders::id, work_orders::expected_name))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, n)| n.map(|n| (id, n)))
        .collect())
}

/// Orders whose expected name is still plain (written before encryption at rest), with
/// their number and name, at most `limit`.
pub fn plain_names(
    conn: &mut DbConn,
    limit: i64,
) -> Result<Vec<(String, String, String)>, StorageError> {
    let rows: Vec<(String, String, Option<String>)> = work_orders::table
        .filter(work_orders::expected_name.is_not_null())
        .filter(work_orders::expected_name.not_like("v1:%"))
        .order(work_orders::id.asc())
        .limit(limit)
        .select((
            work_orders::id,
            work_orders::msisdn,
            work_orders::expected_name,
        ))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .filter_map(|(id, m, n)| n.map(|n| (id, m, n)))
        .collect())
}

/// Replaces a plain expected name by its sealed form, mask and index.
pub fn seal_name(
    conn: &mut DbConn,
    id: &str,
    masked: &str,
    name: &StoredName,
) -> Result<(), StorageError> {
    diesel::update(work_orders::table.find(id))
        .set((
            work_orders::expected_name.eq(&name.sealed),
            work_orders::expected_name_masked.eq(masked),
            work_orders::expected_name_index.eq(&name.index),
        ))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &WorkOrderId) -> Result<Option<WorkOrder>, StorageError> {
    let row = work_orders::table
        .find(id.as_str())
        .select(WorkOrderRow::as_select())
        .first(conn)
        .optional()?;
    row.map(WorkOrder::try_from).transpose()
}

/// The order, its row share-locked to the end of the transaction on PostgreSQL: a step that
/// depends on the order's state without changing it (an evidence upload) keeps that state
/// from changing under it. (SQLite writers hold the database's lock already.)
pub fn get_steady(conn: &mut DbConn, id: &WorkOrderId) -> Result<Option<WorkOrder>, StorageError> {
    let row = match conn {
        DbConn::Pg(pg) => work_orders::table
            .find(id.as_str())
            .select(WorkOrderRow::as_select())
            .for_share()
            .first(pg)
            .optional()?,
        DbConn::Sqlite(_) => return get(conn, id),
    };
    row.map(WorkOrder::try_from).transpose()
}

/// The only way to change an order: writes a decided transition, and only if nobody changed
/// the row since the version it was decided on. False when someone did.
pub fn update(conn: &mut DbConn, t: &Transition) -> Result<bool, StorageError> {
    use work_orders::dsl as w;
    let next = t.next();
    let this = w::work_orders
        .filter(w::id.eq(next.id.as_str()))
        .filter(w::version.eq(t.expected_version()));
    let waiting = [State::Open.as_str(), State::Claimed.as_str()];
    // A timer's mark is set once: the first instance to set it sends the mail, any other
    // (or a repeat) matches nothing.
    let n = match t.kind() {
        Kind::Remind => diesel::update(
            this.filter(w::reminded_at.is_null())
                .filter(w::state.eq_any(waiting)),
        )
        .set(w::reminded_at.eq(next.reminded_at.map(|t| t.naive_utc())))
        .execute(conn)?,
        Kind::Escalate => diesel::update(
            this.filter(w::escalated_at.is_null())
                .filter(w::state.eq_any(waiting)),
        )
        .set(w::escalated_at.eq(next.escalated_at.map(|t| t.naive_utc())))
        .execute(conn)?,
        _ => diesel::update(this)
            .set(StepChanges::from(next))
            .execute(conn)?,
    };
    Ok(n == 1)
}

/// Ids of orders with a timer due at `now` (at most `limit` per timer): a plain read, so an
/// idle scheduler costs no write transaction.
pub fn due_timer_ids(
    conn: &mut DbConn,
    now: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<String>, StorageError> {
    use work_orders::dsl as w;
    let now = now.naive_utc();
    let waiting = [State::Open.as_str(), State::Claimed.as_str()];
    // Three index ranges (the migration's partial indexes), one per timer.
    let mut ids: Vec<String> = Vec::new();
    ids.extend(
        w::work_orders
            .filter(w::state.eq_any(waiting))
            .filter(w::reminded_at.is_null())
            .filter(w::remind_at.le(now))
            .order(w::remind_at.asc())
            .limit(limit)
            .select(w::id)
            .load::<String>(conn)?,
    );
    ids.extend(
        w::work_orders
            .filter(w::state.eq_any(waiting))
            .filter(w::escalated_at.is_null())
            .filter(w::due_at.le(now))
            .order(w::due_at.asc())
            .limit(limit)
            .select(w::id)
            .load::<String>(conn)?,
    );
    ids.extend(
        w::work_orders
            .filter(w::state.eq_any(waiting))
            .filter(w::deadline_at.le(now))
            .order(w::deadline_at.asc())
            .limit(limit)
            .select(w::id)
            .load::<String>(conn)?,
    );
    ids.sort();
    ids.dedup();
    Ok(ids)
}

/// The order, if it is still open or claimed, locked for the caller's transaction. On
/// PostgreSQL an order another instance is firing right now is skipped (`None`), so instances
/// share the work instead of queueing on it; SQLite has one writer at a time.
pub fn lock_waiting(conn: &mut DbConn, id: &str) -> Result<Option<WorkOrder>, StorageError> {
    use work_orders::dsl as w;
    let waiting = [State::Open.as_str(), State::Claimed.as_str()];
    macro_rules! order {
        () => {
            w::work_orders
                .filter(w::id.eq(id))
                .filter(w::state.eq_any(waiting))
                .select(WorkOrderRow::as_select())
        };
    }
    let row: Option<WorkOrderRow> = match conn {
        DbConn::Pg(pg) => order!().for_update().skip_locked().first(pg).optional()?,
        DbConn::Sqlite(c) => order!().first(c).optional()?,
    };
    row.map(WorkOrder::try_from).transpose()
}

/// Whether the number already has an active order (open, claimed or submitted).
pub fn has_active_order(conn: &mut DbConn, msisdn: &str) -> Result<bool, StorageError> {
    let n: i64 = work_orders::table
        .filter(work_orders::msisdn.eq(msisdn))
        .filter(work_orders::state.eq_any(State::ACTIVE.map(State::as_str)))
        .count()
        .get_result(conn)?;
    Ok(n > 0)
}

/// The next daily sequence number for a province's references.
pub fn next_reference_seq(
    conn: &mut DbConn,
    province: &str,
    day: &str,
) -> Result<i64, StorageError> {
    // One atomic upsert: concurrent openers each get their own number, whatever locks the
    // caller holds; the row stays locked by this transaction until it ends.
    let first = (
        reference_counters::province.eq(province),
        reference_counters::day.eq(day),
        reference_counters::last.eq(1i64),
    );
    let bump = reference_counters::last.eq(reference_counters::last + 1i64);
    let key = (reference_counters::province, reference_counters::day);
    match conn {
        DbConn::Pg(c) => diesel::insert_into(reference_counters::table)
            .values(first)
            .on_conflict(key)
            .do_update()
            .set(bump)
            .execute(c)?,
        DbConn::Sqlite(c) => diesel::insert_into(reference_counters::table)
            .values(first)
            .on_conflict(key)
            .do_update()
            .set(bump)
            .execute(c)?,
    };
    Ok(reference_counters::table
        .find((province, day))
        .select(reference_counters::last)
        .first(conn)?)
}

/// A condition on a `work_orders` row, on either backend.
pub(crate) type OrderPredicate =
    Box<dyn BoxableExpression<work_orders::table, MultiBackend, SqlType = Nullable<Bool>>>;

/// `Scope::admits` in SQL, for every query that counts or lists orders in a caller's scope
/// (`tests::the_list_query_and_sees_agree` holds the two together); `None` when the scope
/// admits nothing, so the query need not run.
pub(crate) fn scope_predicate(scope: &Scope) -> Option<OrderPredicate> {
    use work_orders::dsl as w;
    Some(match scope {
        // Always true (the column is NOT NULL), so every query takes one shape.
        Scope::All => Box::new(w::id.is_not_null().nullable()),
        Scope::HomeProvince(p) => Box::new(w::home_province.eq(p.clone()).nullable()),
        Scope::Hall { id, city } => Box::new(
            w::target_hall_id
                .eq(id.to_string())
                .or(w::target_hall_id
                    .is_null()
                    .and(w::target_city.eq(city.clone())))
                .or(w::claimed_hall_id.eq(id.to_string())),
        ),
        Scope::HomeOrTargetProvince(p) => Box::new(
            w::home_province
                .eq(p.clone())
                .or(w::target_province.eq(p.clone()))
                .nullable(),
        ),
        Scope::Nothing => return None,
    })
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<State>,
    pub msisdn: Option<String>,
    pub hall_id: Option<String>,
    pub home_province: Option<String>,
    pub target_province: Option<String>,
    /// Only orders whose number is suspended at or before this time.
    pub suspend_before: Option<NaiveDateTime>,
    /// Blind index of an ID number: orders with a result whose document has it.
    pub document_number_index: Option<String>,
    /// Blind index of a name: orders expecting it, or with a result whose document has it.
    pub name_index: Option<String>,
    /// Only orders whose current result the quality checks flagged (true) or did not (false).
    pub flagged: Option<bool>,
    pub order: ListOrder,
    pub limit: i64,
}

/// How a page of orders is sorted, and where the previous page ended.
#[derive(Debug, Clone, Default)]
pub enum ListOrder {
    /// By id (UUIDv7: time-ordered), from the first or after this one.
    #[default]
    Oldest,
    AfterId(String),
    /// By one of the order's times, the earliest first, then id; after this time and id.
    Soonest(TimeKey, Option<(NaiveDateTime, String)>),
}

/// The times a list can be sorted by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKey {
    /// The number's suspension date (only orders that have one).
    Suspension,
    /// When the hall's work is due (`due_at`).
    Due,
    /// When the order expires unless finished (`deadline_at`).
    Deadline,
}

pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &ListFilter,
) -> Result<Vec<WorkOrder>, StorageError> {
    use super::schema::verification_results::dsl as v;
    use work_orders::dsl as w;
    let Some(in_scope) = scope_predicate(scope) else {
        return Ok(Vec::new());
    };
    let mut q = w::work_orders.into_boxed::<MultiBackend>().filter(in_scope);
    if let Some(s) = &f.state {
        q = q.filter(w::state.eq(s.as_str()));
    }
    if let Some(m) = &f.msisdn {
        q = q.filter(w::msisdn.eq(m.clone()));
    }
    if let Some(h) = &f.hall_id {
        q = q.filter(
            w::target_hall_id
                .eq(h.clone())
                .or(w::claimed_hall_id.eq(h.clone())),
        );
    }
    if let Some(p) = &f.home_province {
        q = q.filter(w::home_province.eq(p.clone()));
    }
    if let Some(p) = &f.target_province {
        q = q.filter(w::target_province.eq(p.clone()));
    }
    if let Some(flagged) = f.flagged {
        q = q.filter(w::flagged.eq(flagged));
    }
    if let Some(before) = f.suspend_before {
        q = q.filter(w::suspend_at.le(before));
    }
    if let Some(index) = &f.document_number_index {
        q = q.filter(
            w::id.eq_any(
                v::verification_results
                    .filter(v::document_number_index.eq(index.clone()))
                    .select(v::work_order_id),
            ),
        );
    }
    if let Some(index) = &f.name_index {
        q = q.filter(
            w::expected_name_index.eq(index.clone()).or(w::id.eq_any(
                v::verification_results
                    .filter(v::document_name_index.eq(index.clone()))
                    .select(v::work_order_id),
            )),
        );
    }
    // The earliest first by `$time`, ties by id; a cursor continues after its (time, id).
    macro_rules! soonest {
        ($q:expr, $time:expr, $after:expr) => {{
            let q = $q.order(($time.asc(), w::id.asc()));
            match $after {
                None => q,
                Some((at, id)) => {
                    q.filter($time.gt(*at).or($time.eq(*at).and(w::id.gt(id.clone()))))
                }
            }
        }};
    }
    q = match &f.order {
        ListOrder::Oldest => q.order(w::id.asc()),
        ListOrder::AfterId(after) => q.filter(w::id.gt(after.clone())).order(w::id.asc()),
        ListOrder::Soonest(TimeKey::Suspension, after) => {
            soonest!(q.filter(w::suspend_at.is_not_null()), w::suspend_at, after)
        }
        ListOrder::Soonest(TimeKey::Due, after) => soonest!(q, w::due_at, after),
        ListOrder::Soonest(TimeKey::Deadline, after) => soonest!(q, w::deadline_at, after),
    };
    let rows: Vec<WorkOrderRow> = q
        .limit(f.limit)
        .select(WorkOrderRow::as_select())
        .load(conn)?;
    rows.into_iter().map(WorkOrder::try_from).collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use std::collections::BTreeSet;

    use chrono::TimeZone;

    use super::*;
    use crate::domain::access::{Actor, HallPost, Role};
    use crate::domain::{HallId, Username};
    use crate::storage::scratch::on_both_databases;
    use crate::storage::{halls, Store};

    const HALLS: [(&str, &str, &str); 4] = [
        ("hall-a", "37", "370100"),
        ("hall-b", "37", "370100"),
        ("hall-c", "37", "370200"),
        ("hall-d", "53", "530100"),
    ];

    fn at() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 24, 8, 0, 0).unwrap()
    }

    /// Every combination of home province, target (a hall, or a city's pool) and claiming
    /// hall that scope distinguishes.
    fn orders() -> Vec<WorkOrder> {
        let targets: [(&str, &str, Option<&str>); 5] = [
            ("37", "370100", Some("hall-a")),
            ("37", "370100", None),
            ("37", "370200", Some("hall-c")),
            ("37", "370200", None),
            ("53", "530100", Some("hall-d")),
        ];
        let mut out = Vec::new();
        for home in ["53", "37"] {
            for (province, city, hall) in targets {
                for claimed in [None, Some("hall-a"), Some("hall-c")] {
                    let n = out.len();
                    out.push(WorkOrder {
                        id: WorkOrderId::from(format!("wo-{n:03}")),
                        reference: format!("{home}-20261124-{n:06}"),
                        msisdn: format!("189{n:08}"),
                        home_province: home.into(),
                        target_province: province.into(),
                        target_city: city.into(),
                        target_hall_id: hall.map(HallId::from),
                        state: if claimed.is_some() {
                            State::Claimed
                        } else {
                            State::Open
                        },
                        version: 1,
                        reason: "r".into(),
                        expected_name_masked: None,
                        opened_by: "clerk".into(),
                        claimed_by: claimed.map(|_| "staff".into()),
                        claimed_hall_id: claimed.map(HallId::from),
                        due_at: at(),
                        deadline_at: at(),
                        created_at: at(),
                        updated_at: at(),
                        suspend_at: None,
                        remind_at: at(),
                        reminded_at: None,
                        escalated_at: None,
                        verification_id: None,
                        receipt: None,
                        claimed_at: None,
                        review: Review::default(),
                    });
                }
            }
        }
        out
    }

    fn actors() -> Vec<Actor> {
        let person = |role, province: Option<&str>, hall: Option<(&str, &str, &str)>| Actor {
            username: Username::from("someone"),
            role,
            province: province.map(str::to_owned),
            hall: hall.map(|(id, province, city)| HallPost {
                id: id.into(),
                code: format!("code-{id}"),
                province: province.into(),
                city: city.into(),
            }),
        };
        let mut out: Vec<Actor> = ["53", "37", "11"]
            .iter()
            .map(|p| person(Role::Clerk, Some(p), None))
            .collect();
        out.extend(
            HALLS
                .iter()
                .map(|h| person(Role::HallStaff, None, Some(*h))),
        );
        out.push(person(Role::Auditor, None, None));
        out.extend(
            ["37", "53", "11"]
                .iter()
                .map(|p| person(Role::Auditor, Some(p), None)),
        );
        out.push(person(Role::Admin, None, None));
        out
    }

    // `Scope::admits` and the list query are two spellings of one rule: for every caller,
    // the list shows exactly the orders `sees` lets through.
    on_both_databases!(list_and_sees_agree, "scope");

    fn insert_halls(conn: &mut DbConn) {
        for (id, province, city) in HALLS {
            halls::insert(
                conn,
                &halls::Hall {
                    id: id.into(),
                    code: id.into(),
                    name: id.into(),
                    province: province.into(),
                    city: city.into(),
                    address: "x".into(),
                    email: None,
                    created_at: at().naive_utc(),
                    version: 1,
                    updated_at: None,
                    deactivated_at: None,
                },
            )
            .unwrap();
        }
    }

    fn list_and_sees_agree(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let mut conn = store.connection().unwrap();
        insert_halls(&mut conn);
        let all = orders();
        for o in &all {
            insert(&mut conn, o, None).unwrap();
        }
        let filter = ListFilter {
            limit: 1000,
            ..ListFilter::default()
        };
        for actor in actors() {
            let listed: BTreeSet<WorkOrderId> = list(&mut conn, &actor.scope(), &filter)
                .unwrap()
                .into_iter()
                .map(|o| o.id)
                .collect();
            let seen: BTreeSet<WorkOrderId> = all
                .iter()
                .filter(|o| actor.sees(o))
                .map(|o| o.id.clone())
                .collect();
            assert_eq!(listed, seen, "{:?} {:?}", actor.role, actor.scope());
        }
    }

    // A list sorted by a time pages through every order once, the earliest first, ties in
    // id order, each page continuing after the last one's (time, id).
    on_both_databases!(sorted_pages, "sorted");

    fn sorted_pages(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let mut conn = store.connection().unwrap();
        insert_halls(&mut conn);
        let mut all = orders();
        for (n, o) in all.iter_mut().enumerate() {
            let n = i64::try_from(n).unwrap();
            // Ties on purpose: ten distinct due times, fifteen deadlines, a suspension on
            // every third order.
            o.due_at = at() + chrono::Duration::hours((n * 7) % 10);
            o.deadline_at = at() + chrono::Duration::hours(30 - n % 15);
            o.suspend_at = (n % 3 == 0).then(|| at() + chrono::Duration::hours(n % 4));
            insert(&mut conn, o, None).unwrap();
        }
        for key in [TimeKey::Due, TimeKey::Deadline, TimeKey::Suspension] {
            let time = |o: &WorkOrder| match key {
                TimeKey::Due => Some(o.due_at),
                TimeKey::Deadline => Some(o.deadline_at),
                TimeKey::Suspension => o.suspend_at,
            };
            let mut expected: Vec<(DateTime<Utc>, WorkOrderId)> = all
                .iter()
                .filter_map(|o| Some((time(o)?, o.id.clone())))
                .collect();
            expected.sort();
            let mut seen = Vec::new();
            let mut after = None;
            loop {
                let filter = ListFilter {
                    limit: 4,
                    order: ListOrder::Soonest(key, after.clone()),
                    ..ListFilter::default()
                };
                let page = list(&mut conn, &Scope::All, &filter).unwrap();
                let Some(last) = page.last() else { break };
                after = Some((time(last).unwrap().naive_utc(), last.id.to_string()));
                seen.extend(page.iter().map(|o| (time(o).unwrap(), o.id.clone())));
            }
            assert_eq!(seen, expected, "{key:?}");
        }
    }
}
