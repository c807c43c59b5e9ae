//! The outbox's steps: leasing due mail for a worker, recording what delivery did, and the
//! admin's view and retry. Each is a short write transaction; nothing is sent inside one.

use crate::domain::text::ceiling::{Code, Name};
use chrono::{DateTime, Duration, Utc};
use prometheus::{Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use super::{ChainLock, Error, Result, Services};
use crate::audit::{self, AuditAction, Recorder};
use crate::domain::access::{Actor, Permission};
use crate::domain::notice::{retry_delay_seconds, DeliveryState, MailFacts};
use crate::domain::{Detail, DomainError, Invalid};
use crate::storage::outbox::{self, OutboxRow};

/// A row a worker holds a lease on, ready to render and send.
#[derive(Debug, Clone)]
pub struct LeasedMail {
    pub id: String,
    pub recipient: String,
    pub facts: MailFacts,
    /// Refusals so far.
    pub attempts: i32,
    /// When this worker's lease runs out (wall clock): after it, another worker may send it.
    pub lease_until: DateTime<Utc>,
}

/// What delivering one leased row came to.
#[derive(Debug, Clone)]
pub enum Settled {
    Sent,
    /// The server answered with an error: one attempt charged.
    Refused(String),
    /// The server could not be reached: nothing charged, due again after the probe interval.
    Unreachable(String),
    /// Not tried: too little of the lease was left for a whole conversation. Handed back,
    /// due at once, nothing charged.
    HandedBack,
}

/// An outbox row as an admin sees it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxView {
    pub id: String,
    pub work_order: Option<String>,
    pub event: String,
    pub recipient: String,
    pub state: String,
    pub attempts: i32,
    pub last_error: Option<String>,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    pub message_id: String,
}

#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OutboxPage {
    pub items: Vec<OutboxView>,
    pub next_cursor: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, ToSchema, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct OutboxQuery {
    /// `pending` (the default), `failed` or `sent`.
    pub state: Option<Code>,
    pub limit: Option<i64>,
    pub cursor: Option<Name>,
}

impl OutboxView {
    fn new(row: OutboxRow, from: &str) -> Self {
        let pending = row.state == DeliveryState::Pending.as_str();
        Self {
            // mail.from is checked at start (Mailer::from_settings), so this always has one.
            message_id: crate::notify::messages::message_id(&row.id, from).unwrap_or_default(),
            id: row.id,
            work_order: row.work_order_id,
            event: row.event,
            recipient: row.recipient,
            state: row.state,
            attempts: row.attempts,
            last_error: row.last_error,
            next_attempt_at: pending.then(|| row.next_attempt_at.and_utc()),
            created_at: row.created_at.and_utc(),
            sent_at: row.sent_at.map(|t| t.and_utc()),
        }
    }
}

/// Counters and gauges of the mail worker and the scheduler.
pub struct BackgroundMetrics {
    pub pending: IntGauge,
    pub failed: IntGauge,
    pub oldest_pending_age: Gauge,
    pub send_seconds: Histogram,
    pub sent: IntCounter,
    pub delivery_failures: IntCounterVec,
    pub timers_fired: IntCounterVec,
    /// PostgreSQL: how long each audit event waited in the queue for the sequencer.
    pub sequencer_delay: Histogram,
}

impl BackgroundMetrics {
    pub fn new() -> std::result::Result<Self, prometheus::Error> {
        Ok(Self {
            pending: IntGauge::new("outbox_pending", "Outbox rows waiting to be sent")?,
            failed: IntGauge::new(
                "outbox_failed",
                "Outbox rows refused mail.max_attempts times, waiting for an admin's retry",
            )?,
            oldest_pending_age: Gauge::new(
                "outbox_oldest_pending_age_seconds",
                "Age of the oldest outbox row still waiting to be sent (0 when none)",
            )?,
            send_seconds: Histogram::with_opts(HistogramOpts::new(
                "mail_send_duration_seconds",
                "Time to deliver one message (file or SMTP)",
            ))?,
            sent: IntCounter::new("mail_sent_total", "Messages delivered")?,
            delivery_failures: IntCounterVec::new(
                Opts::new(
                    "mail_delivery_failures_total",
                    "Delivery attempts that failed: refused by the server, or server unreachable",
                ),
                &["kind"],
            )?,
            timers_fired: IntCounterVec::new(
                Opts::new(
                    "sla_timers_fired_total",
                    "Reminders, escalations and expiries fired by this instance",
                ),
                &["timer"],
            )?,
            sequencer_delay: Histogram::with_opts(
                HistogramOpts::new(
                    "audit_sequencer_delay_seconds",
                    "Time from a step's queueing of an audit event (near the end of its \
                     transaction, so its commit included) to its place in the chain \
                     (PostgreSQL; SQLite appends in the step's transaction)",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.3, 0.5, 1.0, 2.5, 5.0,
                ]),
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.pending.clone()),
            Box::new(self.failed.clone()),
            Box::new(self.oldest_pending_age.clone()),
            Box::new(self.send_seconds.clone()),
            Box::new(self.sent.clone()),
            Box::new(self.delivery_failures.clone()),
            Box::new(self.timers_fired.clone()),
            Box::new(self.sequencer_delay.clone()),
        ]
    }
}

fn leased(row: OutboxRow) -> Result<LeasedMail> {
    let facts: MailFacts = serde_json::from_str(&row.facts)
        .map_err(|e| Error::Internal(format!("outbox row {}: unreadable facts: {e}", row.id)))?;
    let lease_until = row
        .lease_until
        .map(|t| t.and_utc())
        .ok_or_else(|| Error::Internal(format!("outbox row {} leased without a lease", row.id)))?;
    Ok(LeasedMail {
        id: row.id,
        recipient: row.recipient,
        facts,
        attempts: row.attempts,
        lease_until,
    })
}

impl Services {
    /// Leases up to `mail.batch_size` due rows for `owner`. Leases run on the wall clock,
    /// not the movable one, so moving time never steals a row mid-send.
    pub(crate) async fn lease_mail(&self, owner: String) -> Result<Vec<LeasedMail>> {
        let mail = &self.settings.mail;
        let (lease, limit) = (mail.lease_seconds.clamp(1, 60), mail.batch_size.max(1));
        let due = self.now();
        let any = self
            .store
            .read(move |c| -> Result<bool> { Ok(outbox::any_due(c, due, Utc::now())?) })
            .await?;
        if !any {
            return Ok(Vec::new());
        }
        let rows = self
            .write(ChainLock::NotNeeded, Recorder::system(), move |tx, now| {
                let wall = Utc::now();
                Ok(outbox::lease_due(
                    tx,
                    &owner,
                    now,
                    wall,
                    wall + Duration::seconds(lease),
                    limit,
                )?)
            })
            .await?;
        rows.into_iter().map(leased).collect()
    }

    /// Records what delivering a batch came to, in one transaction.
    pub(crate) async fn settle_mail(&self, results: Vec<(LeasedMail, Settled)>) -> Result<()> {
        let mail = self.settings.mail.clone();
        let probe = Duration::seconds(mail.outage_probe_seconds.max(1) as i64);
        let jitter: Vec<f64> = results
            .iter()
            .map(|_| rand::Rng::gen_range(&mut rand::thread_rng(), -0.25..=0.25))
            .collect();
        self.write(ChainLock::NotNeeded, Recorder::system(), move |tx, now| {
            let sent: Vec<String> = results
                .iter()
                .filter(|(_, s)| matches!(s, Settled::Sent))
                .map(|(m, _)| m.id.clone())
                .collect();
            outbox::mark_sent(tx, &sent, now)?;
            for ((row, settled), jitter) in results.iter().zip(jitter) {
                match settled {
                    Settled::Sent => {}
                    Settled::Refused(error) => {
                        let attempts = row.attempts + 1;
                        let next = if attempts >= mail.max_attempts {
                            Err(())
                        } else {
                            let delay = retry_delay_seconds(
                                attempts,
                                mail.retry_base_seconds,
                                mail.retry_max_seconds,
                                jitter,
                            );
                            Ok(now + Duration::seconds(delay))
                        };
                        outbox::mark_refused(tx, &row.id, attempts, next, error)?;
                    }
                    Settled::HandedBack => {
                        outbox::hand_back(tx, &row.id)?;
                    }
                    Settled::Unreachable(error) => {
                        outbox::mark_unreachable(
                            tx,
                            std::slice::from_ref(&row.id),
                            now + probe,
                            error,
                        )?;
                    }
                }
            }
            Ok(())
        })
        .await
    }

    /// Refreshes the queue gauges (depth, failed, oldest pending age).
    pub(crate) async fn measure_outbox(&self) -> Result<()> {
        let (pending, failed, oldest) = self.store.read(outbox::depth).await?;
        let now = self.now();
        let m = &self.background;
        m.pending.set(pending);
        m.failed.set(failed);
        let age = oldest
            .map(|t| (now - t.and_utc()).num_milliseconds().max(0) as f64 / 1000.0)
            .unwrap_or(0.0);
        m.oldest_pending_age.set(age);
        Ok(())
    }

    pub(crate) async fn list_outbox(&self, actor: Actor, q: OutboxQuery) -> Result<OutboxPage> {
        // The query is judged first: 400 outranks 403 in the contract's order.
        let state = match q.state.as_deref() {
            None => DeliveryState::Pending,
            Some(s) => DeliveryState::parse(s).ok_or_else(|| {
                Error::bad_request(
                    Some("state"),
                    Detail::new(
                        "state 须为 pending、failed 或 sent",
                        "state is pending, failed or sent",
                    ),
                )
            })?,
        };
        let limit = q.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(Error::bad_request(
                Some("limit"),
                Detail::new(
                    "limit 须在 1 到 200 之间",
                    "limit must be between 1 and 200",
                ),
            ));
        }
        actor.require(Permission::Administer)?;
        let from = self.settings.mail.from.clone();
        self.store
            .read(move |c| {
                let mut rows = outbox::list(c, state, q.cursor.as_deref(), limit + 1)?;
                let more = rows.len() as i64 > limit;
                rows.truncate(limit as usize);
                let next_cursor = if more {
                    rows.last().map(|r| r.id.clone())
                } else {
                    None
                };
                Ok(OutboxPage {
                    items: rows
                        .into_iter()
                        .map(|r| OutboxView::new(r, &from))
                        .collect(),
                    next_cursor,
                })
            })
            .await
    }

    /// Sends a row again: pending, due now, attempts counted afresh. A sent row stays sent.
    pub(crate) async fn retry_outbox(&self, actor: Actor, id: String) -> Result<OutboxView> {
        actor.require(Permission::Administer)?;
        let from = self.settings.mail.from.clone();
        let by = super::recorder(&actor);
        let view = self
            .write(ChainLock::AtAppend, by.clone(), move |tx, now| {
                let row = outbox::get(tx, &id)?.ok_or_else(|| {
                    DomainError::NotFound(Detail::new("待发邮件记录", "outbox row"))
                })?;
                let from_state = row.state()?;
                if from_state == DeliveryState::Sent {
                    return Err(DomainError::InvalidState {
                        from: Detail::new(
                            format!("邮件已发送（{}）", DeliveryState::Sent.as_str()),
                            DeliveryState::Sent.as_str(),
                        ),
                        action: Detail::new("重发该邮件", "retry"),
                    }
                    .into());
                }
                if !outbox::retry(tx, &id, now, Utc::now())? {
                    // Being sent right now: its outcome will show in a moment.
                    return Err(DomainError::InvalidState {
                        from: Detail::new("该邮件正在发送中", "being sent"),
                        action: Detail::new("重发该邮件", "retry"),
                    }
                    .into());
                }
                audit::append(
                    tx,
                    &by,
                    AuditAction::OutboxRetried,
                    row.work_order_id.clone().map(Into::into).as_ref(),
                    &json!({
                        "outbox_id": row.id,
                        "event": row.event,
                        "from": from_state.as_str(),
                        "attempts": row.attempts,
                    }),
                    now,
                )?;
                let row = outbox::get(tx, &id)?.ok_or_else(|| {
                    DomainError::NotFound(Detail::new("待发邮件记录", "outbox row"))
                })?;
                Ok(OutboxView::new(row, &from))
            })
            .await?;
        self.wake.mail.notify_one();
        Ok(view)
    }

    /// Moves the clock of every instance on this database forward (`testing.movable_clock`).
    pub(crate) async fn advance_clock(&self, actor: Actor, seconds: i64) -> Result<DateTime<Utc>> {
        if !self.settings.testing.movable_clock {
            return Err(DomainError::NotFound(Detail::new("资源", "resource")).into());
        }
        actor.require(Permission::Administer)?;
        // Ten years at a time is plenty for any test, and keeps every time representable.
        const MAX_ADVANCE: i64 = 10 * 366 * 24 * 3600;
        if !(1..=MAX_ADVANCE).contains(&seconds) {
            return Err(DomainError::invalid(
                Invalid::Field,
                "advance_seconds",
                Detail::new(
                    "advance_seconds 须为 1 到 316224000（十年）之间的整数",
                    "advance_seconds must be a whole number from 1 to 316224000 (ten years)",
                ),
            )
            .into());
        }
        let by = super::recorder(&actor);
        let (offset, now) = self
            .write(ChainLock::AtAppend, by.clone(), move |tx, before| {
                let offset = crate::storage::clock::advance_clock(tx, seconds)?;
                let now = before + Duration::seconds(seconds);
                audit::append(
                    tx,
                    &by,
                    AuditAction::ClockAdvanced,
                    None,
                    &json!({ "advance_seconds": seconds, "now": now }),
                    now,
                )?;
                Ok((offset, now))
            })
            .await?;
        // Only once the move is committed does this instance take it.
        self.clock.follow(offset);
        self.wake.timers.notify_one();
        self.wake.mail.notify_one();
        Ok(now)
    }

    /// Takes the clock offset other instances may have moved (`testing.movable_clock`).
    pub(crate) async fn follow_shared_clock(&self) -> Result<()> {
        if !self.settings.testing.movable_clock {
            return Ok(());
        }
        let offset = self.store.read(crate::storage::clock::clock_offset).await?;
        self.clock.follow(offset);
        Ok(())
    }
}

/// Sent rows deleted per transaction: a pass never holds the writer for long.
const PRUNE_BATCH: i64 = 500;

impl Services {
    /// Deletes the rows sent more than `mail.keep_sent_days` ago (service clock), a batch per
    /// transaction; returns how many. Pending and failed rows are never deleted.
    pub async fn prune_sent_mail(&self) -> Result<usize> {
        let days = self.settings.mail.keep_sent_days;
        if days == 0 {
            return Ok(0);
        }
        let mut deleted = 0;
        loop {
            let n = self
                .write(ChainLock::NotNeeded, Recorder::system(), move |tx, now| {
                    let before = (now - Duration::days(i64::from(days))).naive_utc();
                    Ok(outbox::prune_sent(tx, before, PRUNE_BATCH)?)
                })
                .await?;
            deleted += n;
            if n < PRUNE_BATCH as usize {
                return Ok(deleted);
            }
        }
    }
}

/// The pass every `serve` instance runs every `mail.prune_interval_seconds`: sent rows past
/// `mail.keep_sent_days` deleted (they hold addresses; the audit trail keeps what happened).
/// Safe on many instances: each batch is a plain DELETE of rows that stay deletable.
pub async fn prune_run(services: Services) {
    let every = std::time::Duration::from_secs(services.settings().mail.prune_interval_seconds);
    super::prune_periodically(every, "sent mail past mail.keep_sent_days", || {
        services.prune_sent_mail()
    })
    .await
}
