//! The mail worker inside `serve`: every instance runs one. It leases due outbox rows (a
//! short transaction), delivers them with no transaction open, and records the outcome (another
//! short one). A refusal is retried with backoff; an unreachable server pauses the batch and
//! is probed again after `mail.outage_probe_seconds`, charging nothing, so an outage delays
//! mail and loses none.

use std::time::{Duration, Instant};

use super::messages::render;
use super::transport::{Delivery, Mailer};
use crate::service::outbox::{LeasedMail, Settled};
use crate::service::Services;

/// How often the queue gauges are refreshed.
const MEASURE_EVERY: Duration = Duration::from_secs(5);

/// Woken by a commit that wrote mail, the worker waits this long before leasing, so that one
/// lease takes what the following commits write too. Without it a busy service pays two
/// write transactions (lease and settle) for every step that writes mail; with it, two per
/// window. Mail waits a quarter of a second longer, far inside the contract's minute.
const GATHER: Duration = Duration::from_millis(250);

/// Runs until the instance stops (see `Wake::stop`): the batch being sent then is sent and
/// recorded first, so no conversation is cut off and no lease is left to run out.
pub async fn run(services: Services, mailer: std::sync::Arc<Mailer>) {
    // This instance's name on the rows it leases.
    let owner = uuid::Uuid::new_v4().to_string();
    let poll = Duration::from_millis(services.settings().mail.poll_interval_ms.max(50));
    let mut measured = Instant::now() - MEASURE_EVERY;
    loop {
        if services.wake().is_stopping() {
            return;
        }
        let more = match services.lease_mail(owner.clone()).await {
            Ok(batch) if batch.is_empty() => false,
            Ok(batch) => deliver(&services, mailer.as_ref(), batch).await,
            Err(e) => {
                tracing::warn!(error = %e, "could not lease mail; trying again");
                false
            }
        };
        if measured.elapsed() >= MEASURE_EVERY {
            measured = Instant::now();
            if let Err(e) = services.measure_outbox().await {
                tracing::warn!(error = %e, "could not measure the outbox");
            }
        }
        // A full batch delivered: more may be due already.
        if more {
            continue;
        }
        let woken = tokio::select! {
            _ = tokio::time::sleep(poll) => false,
            _ = services.wake().mail.notified() => true,
            _ = services.wake().stopping() => return,
        };
        if woken {
            tokio::time::sleep(GATHER).await;
        }
    }
}

/// How many messages of a batch are in flight at once: SMTP conversations are mostly waiting
/// on the network, file writes on fsync.
pub(super) const IN_FLIGHT: usize = 8;

/// Delivers one leased batch and records the outcomes; true when every row was delivered
/// (so the worker goes straight on to the next batch).
async fn deliver(services: &Services, mailer: &Mailer, batch: Vec<LeasedMail>) -> bool {
    use futures_util::StreamExt;
    // Once the server is found unreachable, what has not started yet waits for the probe.
    let outage: std::sync::Mutex<Option<String>> = std::sync::Mutex::new(None);
    let outage = &outage;
    let conversation = chrono::Duration::seconds(services.settings().mail.timeout_seconds as i64);
    let results: Vec<(LeasedMail, Settled)> = futures_util::stream::iter(batch)
        .map(|mail| async move {
            let known = outage.lock().ok().and_then(|o| o.clone());
            let settled = match known {
                Some(why) => Settled::Unreachable(why),
                // Another worker may take the row once the lease runs out: never start a
                // conversation that could outlive it.
                None if chrono::Utc::now() + conversation >= mail.lease_until => {
                    Settled::HandedBack
                }
                None => deliver_one(services, mailer, &mail).await,
            };
            if let Settled::Unreachable(why) = &settled {
                if let Ok(mut o) = outage.lock() {
                    o.get_or_insert_with(|| why.clone());
                }
            }
            (mail, settled)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    // Nothing counts as sent before the batch is durable.
    let results = match mailer.finish_batch().await {
        Ok(()) => results,
        Err(why) => {
            tracing::warn!(error = %why, "the outbox folder could not be synced; the batch waits");
            results
                .into_iter()
                .map(|(mail, settled)| match settled {
                    Settled::Sent => (mail, Settled::Unreachable(why.clone())),
                    other => (mail, other),
                })
                .collect()
        }
    };
    count(services, &results);
    // Handed-back rows are due at once: go straight on for them too.
    let all_sent = results
        .iter()
        .all(|(_, s)| matches!(s, Settled::Sent | Settled::HandedBack));
    if let Err(e) = services.settle_mail(results).await {
        // The leases run out and the rows are sent again, with the same Message-ID.
        tracing::warn!(error = %e, "could not record delivered mail");
        return false;
    }
    all_sent
}

/// Renders and delivers one row, counting the outcome.
async fn deliver_one(services: &Services, mailer: &Mailer, mail: &LeasedMail) -> Settled {
    let metrics = services.background_metrics();
    let settled = match render(
        &mail.id,
        &mail.recipient,
        &mail.facts,
        &services.settings().mail,
    ) {
        // A message that cannot be built is refused like one the server refuses: charged,
        // retried, and in the end failed where an admin sees it.
        Err(e) => Settled::Refused(format!("could not build the message: {e}")),
        Ok(message) => {
            let started = Instant::now();
            let delivery = mailer.deliver(&mail.id, &message).await;
            metrics
                .send_seconds
                .observe(started.elapsed().as_secs_f64());
            // Class and code only: the server's words may echo the recipient's address.
            let summary = delivery.summary();
            match delivery {
                Delivery::Sent => Settled::Sent,
                Delivery::Refused { code, detail } => {
                    tracing::warn!(outbox_id = %mail.id, event = mail.facts.event.as_str(),
                        delivery = %summary, "the mail server refused a message");
                    Settled::Refused(match code {
                        Some(code) => format!("{code} {detail}"),
                        None => detail,
                    })
                }
                Delivery::Unreachable { detail } => {
                    tracing::warn!(outbox_id = %mail.id, delivery = %summary,
                        "the mail server cannot be reached; mail waits for it");
                    Settled::Unreachable(detail)
                }
            }
        }
    };
    settled
}

/// Counts a batch's outcomes once they are final.
fn count(services: &Services, results: &[(LeasedMail, Settled)]) {
    let metrics = services.background_metrics();
    for (_, settled) in results {
        match settled {
            Settled::Sent => metrics.sent.inc(),
            Settled::Refused(_) => metrics
                .delivery_failures
                .with_label_values(&["refused"])
                .inc(),
            Settled::Unreachable(_) => metrics
                .delivery_failures
                .with_label_values(&["unreachable"])
                .inc(),
            Settled::HandedBack => {}
        }
    }
}
