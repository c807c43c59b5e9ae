//! Whether this instance's stores take writes. A write refused for space or because a store
//! is read-only is an answer (503 `storage_full`, see `http::problem`), logged once per
//! refusal, counted, and reported by `/readyz` until a probe write fits again.

use std::sync::Mutex;

use prometheus::{IntCounterVec, IntGauge, Opts};

use super::{write_path, Error, Result, Services};
use crate::storage::error::WriteRefusal;

/// What a client waits before trying a refused write again (`Retry-After`).
pub const STORAGE_FULL_RETRY_SECONDS: u64 = 30;

/// Which store refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum RefusingStore {
    Database,
    Evidence,
}

/// The last refusal still standing, and the metrics that name refusals.
pub struct StorageHealth {
    refused: Mutex<Option<(RefusingStore, WriteRefusal)>>,
    refusals: IntCounterVec,
    refusing: IntGauge,
}

impl StorageHealth {
    pub fn new() -> std::result::Result<Self, prometheus::Error> {
        Ok(Self {
            refused: Mutex::new(None),
            refusals: IntCounterVec::new(
                Opts::new(
                    "storage_write_refusals_total",
                    "Writes a store refused for lack of space or because it is read-only, by store and reason",
                ),
                &["store", "reason"],
            )?,
            refusing: IntGauge::new(
                "storage_refusing_writes",
                "1 while a store refuses writes (full or read-only) and no probe write has fitted since",
            )?,
        })
    }

    pub fn collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        vec![
            Box::new(self.refusals.clone()),
            Box::new(self.refusing.clone()),
        ]
    }

    /// Records `e` when it is a refused write: an error log line, the counter, the state
    /// `/readyz` reports.
    pub fn note(&self, e: &Error) {
        let Some(why) = e.write_refusal() else {
            return;
        };
        let store = match e {
            Error::Evidence(_) => RefusingStore::Evidence,
            _ => RefusingStore::Database,
        };
        let store_name: &'static str = store.into();
        // The cause, not the request: no personal data reaches this line.
        tracing::error!(
            store = store_name,
            reason = why.as_str(),
            error = %e,
            "storage refuses writes: answering 503 storage_full until a write fits again"
        );
        self.refusals
            .with_label_values(&[store_name, why.as_str()])
            .inc();
        self.refusing.set(1);
        *self.lock() = Some((store, why));
    }

    /// The refusal still standing, if any.
    pub fn standing(&self) -> Option<(RefusingStore, WriteRefusal)> {
        *self.lock()
    }

    fn clear(&self) {
        if self.lock().take().is_some() {
            self.refusing.set(0);
            tracing::info!("storage takes writes again");
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Option<(RefusingStore, WriteRefusal)>> {
        // The state is a plain value: a panic elsewhere leaves it usable.
        self.refused
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Services {
    /// The refusal `/readyz` reports, after a probe write to the refusing store: none once
    /// space is back (or the database writable again).
    pub async fn storage_refusal(&self) -> Option<(RefusingStore, WriteRefusal)> {
        let (store, why) = self.storage_health.standing()?;
        match self.probe_store(store).await {
            Ok(()) => {
                self.storage_health.clear();
                None
            }
            Err(e) => Some((store, e.write_refusal().unwrap_or(why))),
        }
    }

    /// After a write succeeded while a refusal stood: the refusal ends once a probe fits too
    /// (a small write may find room where a new order does not).
    pub(super) async fn after_successful_write(&self) {
        if let Some((store, _)) = self.storage_health.standing() {
            if self.probe_store(store).await.is_ok() {
                self.storage_health.clear();
            }
        }
    }

    async fn probe_store(&self, store: RefusingStore) -> Result<()> {
        match store {
            RefusingStore::Database => {
                let db = self.store.clone();
                tokio::task::spawn_blocking(move || write_path::probe_space(&db))
                    .await
                    .map_err(|e| Error::Internal(e.to_string()))?
            }
            RefusingStore::Evidence => Ok(self.evidence.probe_space().await?),
        }
    }

    /// The storage metrics, for the metrics registry.
    pub fn storage_health_collectors(&self) -> Vec<Box<dyn prometheus::core::Collector>> {
        self.storage_health.collectors()
    }

    /// Caps the SQLite database at `pages` pages on every writer connection (None lifts the
    /// cap): a full disk, made on purpose. The tests fill the database so.
    pub fn cap_sqlite_pages(&self, pages: Option<u64>) {
        self.store.cap_sqlite_pages(pages);
    }
}
