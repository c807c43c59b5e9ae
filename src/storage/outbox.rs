//! The outbox: one row per mail and recipient, written in the transaction of the change that
//! causes it, then leased, delivered and marked by the workers of every instance.

use chrono::{DateTime, NaiveDateTime, Utc};
use diesel::prelude::*;

use super::schema::outbox;
use super::{DbConn, MultiBackend, StorageError};
use crate::domain::notice::DeliveryState;

#[derive(Debug, Clone, Queryable, Selectable, Insertable)]
#[diesel(table_name = outbox)]
pub struct OutboxRow {
    pub id: String,
    pub work_order_id: Option<String>,
    pub event: String,
    pub recipient: String,
    /// `MailFacts` as JSON.
    pub facts: String,
    pub state: String,
    pub attempts: i32,
    pub next_attempt_at: NaiveDateTime,
    pub lease_owner: Option<String>,
    pub lease_until: Option<NaiveDateTime>,
    pub last_error: Option<String>,
    pub created_at: NaiveDateTime,
    pub sent_at: Option<NaiveDateTime>,
}

impl OutboxRow {
    pub fn state(&self) -> Result<DeliveryState, StorageError> {
        DeliveryState::parse(&self.state).ok_or_else(|| {
            StorageError::Corrupt(format!("outbox row {} has state {:?}", self.id, self.state))
        })
    }
}

/// A row as the change that causes it writes it: pending, due at once.
pub fn new_row(
    work_order_id: Option<&str>,
    event: &str,
    recipient: &str,
    facts: String,
    now: DateTime<Utc>,
) -> OutboxRow {
    OutboxRow {
        id: uuid::Uuid::now_v7().to_string(),
        work_order_id: work_order_id.map(str::to_owned),
        event: event.to_owned(),
        recipient: recipient.to_owned(),
        facts,
        state: DeliveryState::Pending.as_str().to_owned(),
        attempts: 0,
        next_attempt_at: now.naive_utc(),
        lease_owner: None,
        lease_until: None,
        last_error: None,
        created_at: now.naive_utc(),
        sent_at: None,
    }
}

pub fn insert(conn: &mut DbConn, rows: &[OutboxRow]) -> Result<(), StorageError> {
    if rows.is_empty() {
        return Ok(());
    }
    match conn {
        DbConn::Pg(c) => diesel::insert_into(outbox::table).values(rows).execute(c)?,
        // SQLite takes a multi-row insert too, but not through the backend-generic path.
        DbConn::Sqlite(c) => {
            for row in rows {
                diesel::insert_into(outbox::table).values(row).execute(c)?;
            }
            rows.len()
        }
    };
    Ok(())
}

/// Whether any row is due (a plain read, so an idle worker costs no write transaction).
pub fn any_due(
    conn: &mut DbConn,
    due: DateTime<Utc>,
    wall: DateTime<Utc>,
) -> Result<bool, StorageError> {
    use outbox::dsl as o;
    let wall = wall.naive_utc();
    let first: Option<String> = o::outbox
        .filter(o::state.eq(DeliveryState::Pending.as_str()))
        .filter(o::next_attempt_at.le(due.naive_utc()))
        .filter(o::lease_until.is_null().or(o::lease_until.le(wall)))
        .select(o::id)
        .first(conn)
        .optional()?;
    Ok(first.is_some())
}

/// Leases up to `limit` pending rows due by `due` whose lease (if any) ran out by `wall`,
/// for `owner` until `until`. PostgreSQL skips rows another worker is leasing right now;
/// SQLite has one writer at a time, so the select and update are already exclusive.
pub fn lease_due(
    conn: &mut DbConn,
    owner: &str,
    due: DateTime<Utc>,
    wall: DateTime<Utc>,
    until: DateTime<Utc>,
    limit: i64,
) -> Result<Vec<OutboxRow>, StorageError> {
    use outbox::dsl as o;
    let wall = wall.naive_utc();
    // The same query on both; only PostgreSQL locks (and skips) what it reads.
    macro_rules! due_rows {
        () => {
            o::outbox
                .filter(o::state.eq(DeliveryState::Pending.as_str()))
                .filter(o::next_attempt_at.le(due.naive_utc()))
                .filter(o::lease_until.is_null().or(o::lease_until.le(wall)))
                .order(o::next_attempt_at.asc())
                .limit(limit)
                .select(OutboxRow::as_select())
        };
    }
    let mut rows: Vec<OutboxRow> = match conn {
        DbConn::Pg(c) => due_rows!().for_update().skip_locked().load(c)?,
        DbConn::Sqlite(c) => due_rows!().load(c)?,
    };
    if rows.is_empty() {
        return Ok(rows);
    }
    let ids: Vec<&str> = rows.iter().map(|r| r.id.as_str()).collect();
    diesel::update(o::outbox.filter(o::id.eq_any(&ids)))
        .set((
            o::lease_owner.eq(owner),
            o::lease_until.eq(until.naive_utc()),
        ))
        .execute(conn)?;
    for row in &mut rows {
        row.lease_owner = Some(owner.to_owned());
        row.lease_until = Some(until.naive_utc());
    }
    Ok(rows)
}

/// Delivered: sent, lease cleared. A row another worker re-leased after this one's lease ran
/// out is marked too (its copy carries the same Message-ID).
pub fn mark_sent(
    conn: &mut DbConn,
    ids: &[String],
    now: DateTime<Utc>,
) -> Result<usize, StorageError> {
    use outbox::dsl as o;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        o::outbox
            .filter(o::id.eq_any(ids))
            .filter(o::state.eq(DeliveryState::Pending.as_str())),
    )
    .set((
        o::state.eq(DeliveryState::Sent.as_str()),
        o::sent_at.eq(Some(now.naive_utc())),
        o::attempts.eq(o::attempts + 1),
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?)
}

/// The server refused the row: one attempt charged, then either due again later or failed.
pub fn mark_refused(
    conn: &mut DbConn,
    id: &str,
    attempts: i32,
    next: Result<DateTime<Utc>, ()>,
    error: &str,
) -> Result<(), StorageError> {
    use outbox::dsl as o;
    let (state, next_at) = match next {
        Ok(at) => (DeliveryState::Pending, Some(at.naive_utc())),
        Err(()) => (DeliveryState::Failed, None),
    };
    let target = o::outbox
        .filter(o::id.eq(id))
        .filter(o::state.eq(DeliveryState::Pending.as_str()));
    let clear = (
        o::state.eq(state.as_str()),
        o::attempts.eq(attempts),
        o::last_error.eq(Some(error)),
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<NaiveDateTime>),
    );
    match next_at {
        Some(at) => diesel::update(target)
            .set((clear, o::next_attempt_at.eq(at)))
            .execute(conn)?,
        None => diesel::update(target).set(clear).execute(conn)?,
    };
    Ok(())
}

/// The server could not be reached: the rows stay pending, uncharged, due again at `next`.
pub fn mark_unreachable(
    conn: &mut DbConn,
    ids: &[String],
    next: DateTime<Utc>,
    error: &str,
) -> Result<(), StorageError> {
    use outbox::dsl as o;
    if ids.is_empty() {
        return Ok(());
    }
    diesel::update(
        o::outbox
            .filter(o::id.eq_any(ids))
            .filter(o::state.eq(DeliveryState::Pending.as_str())),
    )
    .set((
        o::next_attempt_at.eq(next.naive_utc()),
        o::last_error.eq(Some(error)),
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

/// A leased row not tried after all: lease cleared, still pending and due, nothing charged.
/// Deletes at most `limit` rows sent before `before`, oldest first; returns how many.
pub fn prune_sent(
    conn: &mut DbConn,
    before: NaiveDateTime,
    limit: i64,
) -> Result<usize, StorageError> {
    use outbox::dsl as o;
    // Ids are UUIDv7, whose first 48 bits are the creation time in ms, and a row is made
    // before it is sent: the primary key bounds the search to rows made before `before`.
    let ms = u64::try_from(before.and_utc().timestamp_millis()).unwrap_or(0);
    let bound = format!("{:08x}-{:04x}-", ms >> 16, ms & 0xffff);
    let ids: Vec<String> = o::outbox
        .filter(o::id.lt(bound))
        .filter(o::state.eq(DeliveryState::Sent.as_str()))
        .filter(o::sent_at.lt(before))
        .order(o::id.asc())
        .limit(limit)
        .select(o::id)
        .load(conn)?;
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::delete(o::outbox.filter(o::id.eq_any(&ids))).execute(conn)?)
}

pub fn hand_back(conn: &mut DbConn, id: &str) -> Result<(), StorageError> {
    use outbox::dsl as o;
    diesel::update(
        o::outbox
            .filter(o::id.eq(id))
            .filter(o::state.eq(DeliveryState::Pending.as_str())),
    )
    .set((
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(())
}

pub fn get(conn: &mut DbConn, id: &str) -> Result<Option<OutboxRow>, StorageError> {
    Ok(outbox::table
        .find(id)
        .select(OutboxRow::as_select())
        .first(conn)
        .optional()?)
}

/// An admin's retry: pending again, due at once, attempts counted afresh.
pub fn retry(
    conn: &mut DbConn,
    id: &str,
    now: DateTime<Utc>,
    wall: DateTime<Utc>,
) -> Result<bool, StorageError> {
    use outbox::dsl as o;
    // A row a worker is sending right now is left to it (clearing its lease would let a
    // second worker send it at the same time).
    let n = diesel::update(
        o::outbox
            .filter(o::id.eq(id))
            .filter(o::state.ne(DeliveryState::Sent.as_str()))
            .filter(
                o::lease_until
                    .is_null()
                    .or(o::lease_until.le(wall.naive_utc())),
            ),
    )
    .set((
        o::state.eq(DeliveryState::Pending.as_str()),
        o::attempts.eq(0),
        o::next_attempt_at.eq(now.naive_utc()),
        o::lease_owner.eq(None::<String>),
        o::lease_until.eq(None::<NaiveDateTime>),
    ))
    .execute(conn)?;
    Ok(n == 1)
}

/// A page of rows in one state, oldest first.
pub fn list(
    conn: &mut DbConn,
    state: DeliveryState,
    after_id: Option<&str>,
    limit: i64,
) -> Result<Vec<OutboxRow>, StorageError> {
    use outbox::dsl as o;
    let mut q = o::outbox
        .filter(o::state.eq(state.as_str()))
        .into_boxed::<MultiBackend>();
    if let Some(after) = after_id {
        q = q.filter(o::id.gt(after.to_owned()));
    }
    Ok(q.order(o::id.asc())
        .limit(limit)
        .select(OutboxRow::as_select())
        .load(conn)?)
}

/// What the gauges show: rows pending, rows failed, and when the oldest pending one was written.
pub fn depth(conn: &mut DbConn) -> Result<(i64, i64, Option<NaiveDateTime>), StorageError> {
    use outbox::dsl as o;
    let pending = o::outbox
        .filter(o::state.eq(DeliveryState::Pending.as_str()))
        .count()
        .get_result(conn)?;
    let failed = o::outbox
        .filter(o::state.eq(DeliveryState::Failed.as_str()))
        .count()
        .get_result(conn)?;
    let oldest = o::outbox
        .filter(o::state.eq(DeliveryState::Pending.as_str()))
        .select(diesel::dsl::min(o::created_at))
        .first::<Option<NaiveDateTime>>(conn)?;
    Ok((pending, failed, oldest))
}
