//! The scheduler's step: fire every reminder, escalation and expiry that is due, each once,
//! with its audit event and mail in the same transaction.

use super::{ChainLock, Result, Services};
use crate::audit::Recorder;
use crate::domain::work_order::{self, Kind};
use crate::storage::work_orders;

/// Orders taken per transaction: keeps each short, so user steps are not held up behind it.
const BATCH: i64 = 50;

/// What one pass fired.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Fired {
    pub reminders: u64,
    pub escalations: u64,
    pub expiries: u64,
}

impl Fired {
    fn total(&self) -> u64 {
        self.reminders + self.escalations + self.expiries
    }
}

impl Services {
    /// Fires what is due now. Safe on every instance at once: PostgreSQL hands each due order
    /// to one instance (`SKIP LOCKED`), and each mark is set once (a guarded UPDATE).
    pub(crate) async fn fire_due_timers(&self) -> Result<Fired> {
        let mut all = Fired::default();
        // Batches until nothing is due; bounded, so one pass never runs away.
        for _ in 0..100 {
            let now = self.now();
            let due = self
                .store
                .read(move |c| -> Result<Vec<String>> {
                    Ok(work_orders::due_timer_ids(c, now, 1)?)
                })
                .await?;
            if due.is_empty() {
                break;
            }
            let mail = self.addressing.clone();
            let fired = self
                .write(ChainLock::AtAppend, Recorder::system(), move |tx, now| {
                    let mut fired = Fired::default();
                    for order in work_orders::with_due_timers(tx, now, BATCH)? {
                        let mut current = order;
                        for timer in current.due_timers(now) {
                            let t = work_order::fire_timer(&current, timer, now)?;
                            current = super::work_orders::save(
                                tx,
                                &Recorder::system(),
                                &mail,
                                &current,
                                t,
                                now,
                            )?;
                            match timer {
                                Kind::Remind => fired.reminders += 1,
                                Kind::Escalate => fired.escalations += 1,
                                _ => fired.expiries += 1,
                            }
                        }
                    }
                    Ok(fired)
                })
                .await?;
            let m = &self.background.timers_fired;
            m.with_label_values(&["reminder"]).inc_by(fired.reminders);
            m.with_label_values(&["escalation"])
                .inc_by(fired.escalations);
            m.with_label_values(&["expiry"]).inc_by(fired.expiries);
            all.reminders += fired.reminders;
            all.escalations += fired.escalations;
            all.expiries += fired.expiries;
            if fired.total() == 0 {
                break;
            }
            if fired.total() > 0 {
                self.wake.mail.notify_one();
            }
        }
        Ok(all)
    }
}
