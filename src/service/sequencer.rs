//! The audit sequencer on PostgreSQL (see `audit::sequencer`): a pass on every instance, one
//! integrating at a time; and the catch-up every audit read makes first, so a reader sees
//! every step that answered before it asked.

use std::time::Duration;

use super::write_path::ChainLock;
use super::{Result, Services};
use crate::audit::{sequencer, Recorder};
use crate::storage::Backend;

/// How often a reader waiting for queued events looks again.
const SETTLE_POLL: Duration = Duration::from_millis(3);

impl Services {
    /// Integrates what is queued, batch after batch, until the queue is empty or another
    /// instance holds the sequencer (`wait` false). Returns the events integrated.
    pub(crate) async fn integrate_queued(&self, wait: bool) -> Result<usize> {
        if self.store.backend() != Backend::Postgres {
            return Ok(0);
        }
        let mut total = 0;
        loop {
            let pass = self
                .write(ChainLock::NotNeeded, Recorder::system(), move |tx, _| {
                    Ok(sequencer::integrate(tx, wait)?)
                })
                .await?;
            let Some(pass) = pass else {
                return Ok(total);
            };
            for waited in &pass.waited_seconds {
                self.background.sequencer_delay.observe(*waited);
            }
            total += pass.events();
            if pass.events() < sequencer::BATCH as usize {
                return Ok(total);
            }
        }
    }

    /// Before an audit read: waits until every event queued when it began is in the chain,
    /// so the read sees every step that answered before it asked.
    pub(crate) async fn settle_audit(&self) -> Result<()> {
        self.settle_audit_of(None).await
    }

    /// `settle_audit` for a read of one order's events: only that order's queued events are
    /// waited for. The reader wakes this instance's sequencer and looks again every few
    /// milliseconds (readers never queue on the sequencer's lock one behind the other); if the
    /// events are still queued after twice `audit.sequencing_delay_ms` (no sequencer running
    /// here), it integrates them itself.
    pub(crate) async fn settle_audit_of(&self, work_order: Option<String>) -> Result<()> {
        if self.store.backend() != Backend::Postgres {
            return Ok(());
        }
        let mark = self
            .store
            .read_one(move |c| crate::storage::audit::last_queued(c, work_order.as_deref()))
            .await?;
        let Some(mark) = mark else {
            return Ok(());
        };
        let patience = Duration::from_millis(2 * self.settings.audit.sequencing_delay_ms);
        let started = std::time::Instant::now();
        while started.elapsed() < patience {
            self.wake.events_queued();
            tokio::time::sleep(SETTLE_POLL).await;
            let waiting = self
                .store
                .read_one(move |c| crate::storage::audit::queued_through(c, mark))
                .await?;
            if !waiting {
                return Ok(());
            }
        }
        match self.integrate_queued(true).await {
            // A database refusing writes can still be read: what is integrated is answered
            // (and the refusal is on /readyz and the metrics already).
            Err(e) if e.write_refusal().is_some() => {
                tracing::warn!(error = %e, "audit read without integrating queued events");
                Ok(())
            }
            other => other.map(|_| ()),
        }
    }
}

/// The sequencer's loop on PostgreSQL (`serve` runs none on SQLite): a pass when a step of
/// this instance committed events (at most eight per `audit.sequencing_delay_ms`), and at
/// least four times per delay for those of other instances.
pub async fn run(services: Services) {
    let delay = services.settings().audit.sequencing_delay_ms.max(10);
    // Between two passes at least an eighth of the delay goes by, so a busy instance
    // integrates many steps' events in one transaction rather than a few each (a pass costs
    // a handful of statements and a commit, however many events it takes).
    let gather = Duration::from_millis(delay / 8);
    let idle = Duration::from_millis(delay / 4) - gather;
    loop {
        match services.integrate_queued(false).await {
            Ok(n) if n > 0 => tracing::debug!(events = n, "audit events integrated"),
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(error = %e, "integrating queued audit events failed; trying again")
            }
        }
        tokio::time::sleep(gather).await;
        // A step that committed meanwhile left a wake-up behind: the next pass is at once.
        tokio::select! {
            _ = tokio::time::sleep(idle) => {}
            _ = services.wake().audit.notified() => {}
        }
    }
}
