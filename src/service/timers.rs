//! The scheduler's step: fire every reminder, escalation and expiry that is due, each once,
//! with its audit event and mail in the same transaction.

use super::{ChainLock, Result, Services};
use crate::audit::Recorder;
use crate::domain::work_order::{self, Kind};
use crate::storage::work_orders;

/// Due orders looked up at a time.
const BATCH: i64 = 100;

/// What one pass fired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub reminders: u64,
    pub escalations: u64,
    pub expiries: u64,
}

impl Services {
    /// Fires what is due now, one order per transaction, so a burst of expiries never holds
    /// the audit chain for long and one order that cannot fire holds up no other. Safe on
    /// every instance at once: PostgreSQL hands each due order to one instance (`SKIP
    /// LOCKED`), and each mark is set once (a guarded UPDATE).
    pub(crate) async fn fire_due_timers(&self) -> Result<Fired> {
        let mut all = Fired::default();
        let mut stuck: Vec<String> = Vec::new();
        // Pages of due orders until none is left; bounded, so one pass never runs away.
        for _ in 0..20 {
            let now = self.now();
            let due = self
                .store
                .read(move |c| -> Result<Vec<String>> {
                    Ok(work_orders::due_timer_ids(c, now, BATCH)?)
                })
                .await?;
            let due: Vec<String> = due.into_iter().filter(|id| !stuck.contains(id)).collect();
            if due.is_empty() {
                break;
            }
            for id in due {
                match self.fire_timers_of(id.clone()).await {
                    Ok(fired) => {
                        all.reminders += fired.reminders;
                        all.escalations += fired.escalations;
                        all.expiries += fired.expiries;
                    }
                    Err(e) => {
                        // Logged by id only; tried again on the next pass.
                        tracing::warn!(work_order = %id, error = %e, "an SLA timer could not fire");
                        stuck.push(id);
                    }
                }
            }
        }
        let m = &self.background.timers_fired;
        m.with_label_values(&["reminder"]).inc_by(all.reminders);
        m.with_label_values(&["escalation"]).inc_by(all.escalations);
        m.with_label_values(&["expiry"]).inc_by(all.expiries);
        Ok(all)
    }

    /// Fires the timers of one order that are due, in order, in one transaction.
    async fn fire_timers_of(&self, id: String) -> Result<Fired> {
        let mail = self.addressing.clone();
        self.write(ChainLock::AtAppend, Recorder::system(), move |tx, now| {
            let mut fired = Fired::default();
            // Gone from open/claimed, or being fired by another instance: nothing to do here.
            let Some(order) = work_orders::lock_waiting(tx, &id)? else {
                return Ok(fired);
            };
            let mut current = order;
            for timer in current.due_timers(now) {
                let t = work_order::fire_timer(&current, timer, now)?;
                current =
                    super::work_orders::save(tx, &Recorder::system(), &mail, &current, t, now)?;
                match timer {
                    Kind::Remind => fired.reminders += 1,
                    Kind::Escalate => fired.escalations += 1,
                    _ => fired.expiries += 1,
                }
            }
            Ok(fired)
        })
        .await
    }
}
