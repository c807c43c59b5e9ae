//! Forgetting on schedule (crypto-shredding): once every order of a subscriber is closed and
//! the last closed more than `retention.days` ago, its data key is destroyed, so its sealed
//! values (expected names, signed results, evidence objects) become unreadable everywhere at
//! once, backups included; its blind indexes are erased and its evidence objects deleted.
//! The audit chain keeps only masked values and digests, so it still verifies end to end.
//!
//! Safe on every instance at once: each subscriber is shredded in its own transaction by a
//! conditional update (the key still live), so a second instance finds nothing to do.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::json;

use super::{ChainLock, Error, Refusal, Result, Services};
use crate::audit::{AuditAction, Recorder};
use crate::domain::notice::mask_msisdn;
use crate::storage::{data_keys, evidence as evidence_rows, retention};

/// What a pass did: `{"shredded": N, …}` is what `crossprov retention run` prints.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct RetentionReport {
    /// Subscribers shredded by this pass.
    pub shredded: u64,
    /// Evidence objects deleted from the store.
    pub evidence_deleted: u64,
    /// Evidence objects still to delete (a store failure; retried by the next pass).
    pub evidence_pending: u64,
    /// Orders closed before this were due.
    pub cutoff: Option<DateTime<Utc>>,
}

impl Services {
    /// One pass: every subscriber due, then every evidence object still to delete.
    pub async fn run_retention(&self) -> Result<RetentionReport> {
        // On a movable clock (tests), the time other instances moved to.
        self.follow_shared_clock().await?;
        let now = self.now();
        let cutoff = now - Duration::days(self.settings.retention.days.max(0));
        let batch = self.settings.retention.batch_size.max(1);
        let mut report = RetentionReport {
            cutoff: Some(cutoff),
            ..RetentionReport::default()
        };
        let mut seen = std::collections::BTreeSet::new();
        loop {
            let due = self
                .store
                .read(move |c| Ok::<_, Error>(retention::due(c, cutoff.naive_utc(), batch)?))
                .await?;
            let fresh: Vec<String> = due.into_iter().filter(|m| seen.insert(m.clone())).collect();
            if fresh.is_empty() {
                break;
            }
            for msisdn in fresh {
                if self.shred(msisdn, cutoff).await? {
                    report.shredded += 1;
                }
            }
        }
        let (deleted, pending) = self.purge_evidence(batch).await?;
        report.evidence_deleted = deleted;
        report.evidence_pending = pending;
        Ok(report)
    }

    /// Shreds one subscriber in one transaction with its audit event; false when another
    /// instance did it first or it is no longer due.
    async fn shred(&self, msisdn: String, cutoff: DateTime<Utc>) -> Result<bool> {
        let by = Recorder::system();
        self.write(ChainLock::AtAppend, by.clone(), move |tx, now| {
            if !retention::still_due(tx, &msisdn, cutoff.naive_utc())? {
                return Ok(false);
            }
            let mut keys = 0;
            if let Some(key) = data_keys::live_for(tx, &msisdn)? {
                // The claim: only the transaction that destroys the key goes on.
                if data_keys::shred(tx, &key.id, now.naive_utc())? {
                    keys += 1;
                }
            }
            let files = evidence_rows::shred_for_msisdn(tx, &msisdn, now.naive_utc())?;
            if keys == 0 && files == 0 {
                return Ok(false);
            }
            let erased = retention::erase_indexes(tx, &msisdn)?;
            let detail = json!({
                "msisdn": mask_msisdn(&msisdn),
                "data_keys": keys,
                "orders": erased.orders,
                "results": erased.results,
                "evidence_files": files,
                "closed_before": cutoff,
            });
            crate::audit::append(tx, &by, AuditAction::SubscriberShredded, None, &detail, now)?;
            Ok::<_, Refusal>(true)
        })
        .await
    }

    /// Deletes the objects of shredded files, after their shredding committed; a failure is
    /// left flagged and retried by the next pass. Returns (deleted, still pending).
    async fn purge_evidence(&self, batch: i64) -> Result<(u64, u64)> {
        let mut deleted = 0u64;
        let mut failed = std::collections::BTreeSet::new();
        loop {
            let rows = self
                .store
                .read(move |c| Ok::<_, Error>(evidence_rows::to_purge(c, batch)?))
                .await?;
            let rows: Vec<_> = rows
                .into_iter()
                .filter(|r| !failed.contains(&r.id))
                .collect();
            if rows.is_empty() {
                break;
            }
            let mut done = Vec::new();
            for row in rows {
                let name = row.object();
                // A plain object was shared by every order with the same bytes.
                let shared = if row.data_key_id.is_none() {
                    let sha = row.sha256.clone();
                    self.store
                        .read(move |c| Ok::<_, Error>(evidence_rows::plain_object_in_use(c, &sha)?))
                        .await?
                } else {
                    false
                };
                let gone = if shared {
                    Ok(())
                } else {
                    self.evidence.delete(&name).await
                };
                match gone {
                    Ok(()) => {
                        deleted += u64::from(!shared);
                        done.push(row.id);
                    }
                    Err(e) => {
                        tracing::warn!(object = %name, error = %e,
                            "could not delete a shredded evidence object; the next pass retries");
                        failed.insert(row.id);
                    }
                }
            }
            if !done.is_empty() {
                self.write(ChainLock::NotNeeded, Recorder::system(), move |tx, _| {
                    evidence_rows::mark_deleted(tx, &done)?;
                    Ok::<_, Refusal>(())
                })
                .await?;
            }
        }
        Ok((deleted, failed.len() as u64))
    }
}

/// The daily pass inside `serve` (every instance; see the module's note on concurrency).
pub async fn run(services: Services) {
    // With a clock tests can move, a day can pass in a request: look every second, as the
    // SLA timers do then.
    let every = if services.settings().testing.movable_clock {
        std::time::Duration::from_secs(1)
    } else {
        std::time::Duration::from_secs(services.settings().retention.interval_seconds.max(60))
    };
    loop {
        tokio::time::sleep(every).await;
        match services.run_retention().await {
            Ok(r) if r.shredded > 0 || r.evidence_deleted > 0 || r.evidence_pending > 0 => {
                tracing::info!(
                    shredded = r.shredded,
                    evidence_deleted = r.evidence_deleted,
                    evidence_pending = r.evidence_pending,
                    "retention pass"
                )
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "retention pass failed; trying again next time"),
        }
    }
}
