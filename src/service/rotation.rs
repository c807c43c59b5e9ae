//! KEK rotation (`crossprov keys rotate-kek --new-kek-file F`): every data key and the
//! blind-index key not yet wrapped under F is re-wrapped, in batches, each its own short
//! transaction, so it runs beside the service and a rerun continues where one stopped.

use std::path::Path;

use serde::Serialize;
use serde_json::json;

use super::personal::{self, INDEX_KEY};
use super::{write_blocking, ChainLock, Clock, Result};
use crate::audit::{AuditAction, Recorder};
use crate::config::Settings;
use crate::crypto::{Kek, Keyring};
use crate::storage::{data_keys, secrets, Store};

/// Keys re-wrapped per transaction.
const BATCH: i64 = 200;

/// What `rotate-kek` prints.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct RotationReport {
    /// Keys re-wrapped by this run (data keys and the index key).
    pub rewrapped: u64,
    /// Keys still wrapped under another KEK (0 once done).
    pub remaining: i64,
    /// The new KEK's id.
    pub kek_id: String,
}

/// Re-wraps everything under the KEK in `new_kek_file`, reading the old keys with the KEKs
/// the settings name (`crypto.kek_file`, `crypto.previous_kek_files`).
pub fn rotate_kek(settings: &Settings, new_kek_file: &Path) -> Result<RotationReport> {
    let store = Store::open(
        secrecy::ExposeSecret::expose_secret(&settings.database_url()),
        2,
        settings.database.sqlite_busy_timeout_ms,
    )?;
    let old = personal::keyring(settings, store.backend())?;
    let new = Kek::load(new_kek_file)?;
    let ring = old.rotated_to(new);
    let new_id = ring.current_id().to_owned();
    let clock = Clock::default();
    let by = Recorder::cli();
    let mut rewrapped = 0u64;
    let mut from = std::collections::BTreeSet::new();
    // The blind-index key first: the index must survive the old KEK's removal.
    let index_moved = write_blocking(&store, &clock, ChainLock::NotNeeded, &by, |tx, _| {
        let Some(stored) = secrets::get(tx, INDEX_KEY)? else {
            return Ok(None);
        };
        let under = Keyring::secret_kek_id(&stored)
            .unwrap_or_default()
            .to_owned();
        if under == new_id {
            return Ok(None);
        }
        let key = ring.unwrap_secret(INDEX_KEY, &stored)?;
        let fresh = ring.wrap_secret(INDEX_KEY, &key)?;
        Ok(secrets::replace(tx, INDEX_KEY, &stored, &fresh)?.then_some(under))
    })?;
    if let Some(under) = index_moved {
        rewrapped += 1;
        from.insert(under);
    }
    let mut after_failures = 0;
    loop {
        let (n, olds) = write_blocking(&store, &clock, ChainLock::NotNeeded, &by, |tx, _| {
            let rows = data_keys::not_under(tx, &new_id, BATCH)?;
            let mut n = 0u64;
            let mut olds = Vec::new();
            for row in &rows {
                let Some(key) = personal::unwrap_row(&ring, row)? else {
                    continue;
                };
                let (kek_id, wrapped) = ring.wrap(&row.id, &key)?;
                if data_keys::rewrap(tx, &row.id, &row.kek_id, &kek_id, &wrapped)? {
                    n += 1;
                    olds.push(row.kek_id.clone());
                }
            }
            Ok((n, olds))
        })?;
        from.extend(olds);
        rewrapped += n;
        if n == 0 {
            // Nothing moved: done, or only rows changing under us (shredded meanwhile).
            after_failures += 1;
            let left = count_remaining(&store, &clock, &new_id)?;
            if left == 0 || after_failures > 3 {
                break;
            }
        }
    }
    let remaining = count_remaining(&store, &clock, &new_id)?;
    let detail = json!({
        "rewrapped": rewrapped,
        "remaining": remaining,
        "from_kek_ids": from,
        "kek_id": new_id,
    });
    write_blocking(&store, &clock, ChainLock::First, &by, |tx, now| {
        crate::audit::append(tx, &by, AuditAction::KekRotated, None, &detail, now)?;
        Ok(())
    })?;
    Ok(RotationReport {
        rewrapped,
        remaining,
        kek_id: new_id,
    })
}

fn count_remaining(store: &Store, clock: &Clock, kek_id: &str) -> Result<i64> {
    let by = Recorder::cli();
    write_blocking(store, clock, ChainLock::NotNeeded, &by, |tx, _| {
        let mut n = data_keys::count_not_under(tx, kek_id)?;
        if let Some(stored) = secrets::get(tx, INDEX_KEY)? {
            if Keyring::secret_kek_id(&stored) != Some(kek_id) {
                n += 1;
            }
        }
        Ok(n)
    })
}
