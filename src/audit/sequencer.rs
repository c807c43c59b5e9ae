//! PostgreSQL's sequencer: steps queue their events (`log::append`) without taking any row
//! every writer takes; this moves them into the chain in batches, as Trillian's log signer
//! integrates queued leaves, so writers never wait on the chain. One instance integrates at a
//! time (an advisory lock held by the integrating transaction); a batch is one transaction —
//! events inserted with their `seq` and hashes, the head advanced, the queue rows deleted — so
//! a killed sequencer leaves the queue as it was and the next one integrates each event once.

use super::log::Chained;
use crate::storage::audit as store;
use crate::storage::{DbConn, StorageError};

/// Events integrated in one transaction at most.
pub(crate) const BATCH: i64 = 1000;

/// What one pass integrated: how many events, and how long each waited in the queue.
#[derive(Debug, Default)]
pub(crate) struct Integrated {
    pub waited_seconds: Vec<f64>,
}

impl Integrated {
    pub(crate) fn events(&self) -> usize {
        self.waited_seconds.len()
    }
}

/// Integrates up to [`BATCH`] queued events in queue order, in the caller's transaction.
/// `None` when another instance is integrating and `wait` is false.
pub(crate) fn integrate(conn: &mut DbConn, wait: bool) -> Result<Option<Integrated>, StorageError> {
    if !store::sequencer_lock(conn, wait)? {
        return Ok(None);
    }
    let waiting = store::waiting(conn, BATCH)?;
    if waiting.is_empty() {
        return Ok(Some(Integrated::default()));
    }
    // The head row's lock also orders this batch with the steps that take the chain first
    // (`ChainLock::First`: they read what the chain must agree with).
    let head = store::head_for_append(conn)?;
    let mut chained = Chained::after(&head)?;
    let mut ids = Vec::with_capacity(waiting.len());
    let mut waited_seconds = Vec::with_capacity(waiting.len());
    for w in waiting {
        ids.push(w.id);
        waited_seconds.push(w.waited);
        chained.push(w.event);
    }
    chained.store(conn)?;
    store::dequeue(conn, &ids)?;
    Ok(Some(Integrated { waited_seconds }))
}
