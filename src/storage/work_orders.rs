//! Work orders and their daily reference counters.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::{reference_counters, work_orders};
use super::{DbConn, MultiBackend, StorageError};
use crate::domain::work_order::{State, WorkOrder};

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
            id: r.id,
            reference: r.reference,
            msisdn: r.msisdn,
            home_province: r.home_province,
            target_province: r.target_province,
            target_city: r.target_city,
            target_hall_id: r.target_hall_id,
            state,
            version: r.version,
            reason: r.reason,
            expected_name: r.expected_name,
            opened_by: r.opened_by,
            claimed_by: r.claimed_by,
            claimed_hall_id: r.claimed_hall_id,
            due_at: utc(r.due_at),
            deadline_at: utc(r.deadline_at),
            created_at: utc(r.created_at),
            updated_at: utc(r.updated_at),
            verification_id: r.verification_id,
            receipt: r.receipt,
        })
    }
}

impl From<&WorkOrder> for WorkOrderRow {
    fn from(o: &WorkOrder) -> Self {
        WorkOrderRow {
            id: o.id.clone(),
            reference: o.reference.clone(),
            msisdn: o.msisdn.clone(),
            home_province: o.home_province.clone(),
            target_province: o.target_province.clone(),
            target_city: o.target_city.clone(),
            target_hall_id: o.target_hall_id.clone(),
            state: o.state.as_str().to_owned(),
            version: o.version,
            reason: o.reason.clone(),
            expected_name: o.expected_name.clone(),
            opened_by: o.opened_by.clone(),
            claimed_by: o.claimed_by.clone(),
            claimed_hall_id: o.claimed_hall_id.clone(),
            due_at: o.due_at.naive_utc(),
            deadline_at: o.deadline_at.naive_utc(),
            created_at: o.created_at.naive_utc(),
            updated_at: o.updated_at.naive_utc(),
            verification_id: o.verification_id.clone(),
            receipt: o.receipt.clone(),
        }
    }
}

pub fn insert(conn: &mut DbConn, order: &WorkOrder) -> Result<(), StorageError> {
    diesel::insert_into(work_orders::table)
        .values(WorkOrderRow::from(order))
        .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<WorkOrder>, StorageError> {
    let row = work_orders::table
        .find(id)
        .select(WorkOrderRow::as_select())
        .first(conn)
        .optional()?;
    row.map(WorkOrder::try_from).transpose()
}

/// The order, its row share-locked to the end of the transaction on PostgreSQL: a step that
/// depends on the order's state without changing it (an evidence upload) keeps that state
/// from changing under it. (SQLite writers hold the database's lock already.)
pub fn get_steady(conn: &mut DbConn, id: &str) -> Result<Option<WorkOrder>, StorageError> {
    let row = match conn {
        DbConn::Pg(pg) => work_orders::table
            .find(id)
            .select(WorkOrderRow::as_select())
            .for_share()
            .first(pg)
            .optional()?,
        DbConn::Sqlite(_) => return get(conn, id),
    };
    row.map(WorkOrder::try_from).transpose()
}

/// Writes the next state only if nobody changed the row since `expected_version` was read.
pub fn update(
    conn: &mut DbConn,
    order: &WorkOrder,
    expected_version: i64,
) -> Result<bool, StorageError> {
    let n = diesel::update(
        work_orders::table
            .filter(work_orders::id.eq(&order.id))
            .filter(work_orders::version.eq(expected_version)),
    )
    .set(WorkOrderRow::from(order))
    .execute(conn)?;
    Ok(n == 1)
}

/// Whether the number already has an active order (open, claimed or submitted).
pub fn has_active_order(conn: &mut DbConn, msisdn: &str) -> Result<bool, StorageError> {
    let n: i64 = work_orders::table
        .filter(work_orders::msisdn.eq(msisdn))
        .filter(work_orders::state.eq_any(["open", "claimed", "submitted"]))
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

/// What a caller may see, as a query filter (mirrors `Actor::sees`).
#[derive(Debug, Clone)]
pub enum Scope {
    All,
    HomeProvince(String),
    Hall { id: String, city: String },
    HomeOrTargetProvince(String),
    Nothing,
}

#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub state: Option<String>,
    pub msisdn: Option<String>,
    pub hall_id: Option<String>,
    pub home_province: Option<String>,
    pub target_province: Option<String>,
    /// Ids are time-ordered (UUIDv7), so "after this id" is a stable cursor.
    pub after_id: Option<String>,
    pub limit: i64,
}

pub fn list(
    conn: &mut DbConn,
    scope: &Scope,
    f: &ListFilter,
) -> Result<Vec<WorkOrder>, StorageError> {
    use work_orders::dsl as w;
    let mut q = w::work_orders.into_boxed::<MultiBackend>();
    q = match scope {
        Scope::All => q,
        Scope::HomeProvince(p) => q.filter(w::home_province.eq(p.clone())),
        Scope::Hall { id, city } => q.filter(
            w::target_hall_id
                .eq(id.clone())
                .or(w::target_hall_id
                    .is_null()
                    .and(w::target_city.eq(city.clone())))
                .or(w::claimed_hall_id.eq(id.clone())),
        ),
        Scope::HomeOrTargetProvince(p) => q.filter(
            w::home_province
                .eq(p.clone())
                .or(w::target_province.eq(p.clone())),
        ),
        Scope::Nothing => return Ok(Vec::new()),
    };
    if let Some(s) = &f.state {
        q = q.filter(w::state.eq(s.clone()));
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
    if let Some(after) = &f.after_id {
        q = q.filter(w::id.gt(after.clone()));
    }
    let rows: Vec<WorkOrderRow> = q
        .order(w::id.asc())
        .limit(f.limit)
        .select(WorkOrderRow::as_select())
        .load(conn)?;
    rows.into_iter().map(WorkOrder::try_from).collect()
}
