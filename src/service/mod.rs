//! Domain services: one function per contract action. The only code that opens a write
//! transaction; used alike by HTTP handlers, the CLI and background work.

pub(crate) mod audit;
pub(crate) mod auth;
pub(crate) mod cosigning;
pub(crate) mod device_keys;
pub mod error;
pub(crate) mod evidence;
pub(crate) mod halls;
pub mod idempotency;
pub(crate) mod notices;
pub(crate) mod outbox;
pub(crate) mod personal;
pub(crate) mod retention;
pub(crate) mod rotation;
pub(crate) mod sequencer;
pub(crate) mod sla;
pub mod storage_health;
pub(crate) mod subscribers;
pub(crate) mod timers;
pub mod users;
pub(crate) mod verification;
pub(crate) mod views;
pub(crate) mod work_orders;
mod write_path;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use secrecy::ExposeSecret;

pub use error::{Error, Result};
pub use storage_health::STORAGE_FULL_RETRY_SECONDS;
pub use write_path::WritePermit;
pub(crate) use write_path::{write_blocking, ChainLock, Refusal};

use crate::audit::Recorder;
use crate::config::Settings;
use crate::domain::access::Actor;
use crate::signing::ServiceKey;
use crate::storage::objects::EvidenceStore;
use crate::storage::{secrets, token_keys, Store};

/// Wall-clock time with an adjustable offset, so tests can move time without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
    /// `testing.movable_clock`: the offset is shared through the database, and every write
    /// reads it first, so a step on any instance sees a move made through another at once.
    shared: bool,
}

impl Clock {
    /// Microsecond precision: what both databases store, so a value reads back as written.
    pub fn now(&self) -> DateTime<Utc> {
        let now = Utc::now() + Duration::seconds(self.offset_seconds.load(Ordering::Relaxed));
        now.trunc_subsecs(6)
    }

    pub fn advance(&self, seconds: i64) {
        self.offset_seconds.fetch_add(seconds, Ordering::Relaxed);
    }

    fn shared() -> Self {
        Self {
            shared: true,
            ..Self::default()
        }
    }

    /// Whether the offset is the one every instance shares (`testing.movable_clock`).
    pub(crate) fn is_shared(&self) -> bool {
        self.shared
    }

    /// Takes the offset every instance shares (`testing.movable_clock`); never moves back.
    pub(crate) fn follow(&self, shared_offset_seconds: i64) {
        self.offset_seconds
            .fetch_max(shared_offset_seconds, Ordering::Relaxed);
    }
}

/// Wakes the background work of this instance early: the mail worker when a step wrote
/// outbox rows, the scheduler when the clock moved.
#[derive(Debug, Default)]
pub struct Wake {
    pub mail: tokio::sync::Notify,
    pub timers: tokio::sync::Notify,
    /// A step committed audit events: on PostgreSQL the sequencer integrates them.
    pub audit: tokio::sync::Notify,
    /// Set when a step writes outbox rows; the write path wakes the worker once it commits.
    mail_written: std::sync::atomic::AtomicBool,
    /// True once the instance is stopping (SIGTERM): `/readyz` answers 503, the mail worker
    /// finishes its batch and ends.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Wake {
    pub(crate) fn mail_written(&self) {
        self.mail_written.store(true, Ordering::Relaxed);
    }

    /// Waits until the instance is stopping.
    pub async fn stopping(&self) {
        let mut stop = self.stop.subscribe();
        // Err: the sender is gone, which it cannot be while `self` lives.
        let _ = stop.wait_for(|stopping| *stopping).await;
    }

    pub fn is_stopping(&self) -> bool {
        *self.stop.borrow()
    }

    /// From now on the instance is stopping.
    pub(crate) fn stop(&self) {
        self.stop.send_replace(true);
    }

    pub(crate) fn events_queued(&self) {
        self.audit.notify_one();
    }

    /// After a commit: wakes the mail worker if the step wrote mail.
    pub(crate) fn after_commit(&self) {
        if self.mail_written.swap(false, Ordering::Relaxed) {
            self.mail.notify_one();
        }
    }
}

/// Everything an action needs; cheap to clone (shared parts behind `Arc`).
#[derive(Clone)]
pub struct Services {
    store: Store,
    settings: Arc<Settings>,
    service_key: Arc<ServiceKey>,
    /// This instance's copy of the login-token keys (the database holds them).
    tokens: Arc<auth::TokenKeys>,
    clock: Arc<Clock>,
    /// Evidence files' bytes; the database holds only their metadata.
    evidence: EvidenceStore,
    /// Stored evidence files found not to match their digest (exported as a metric).
    evidence_failures: prometheus::IntCounter,
    levels: Arc<sla::ServiceLevels>,
    addressing: Arc<notices::Addressing>,
    wake: Arc<Wake>,
    /// Mail and timer counters and gauges (exported as metrics).
    background: Arc<outbox::BackgroundMetrics>,
    /// The keyring and blind index personal data is sealed, opened and searched with.
    crypto: Arc<personal::Crypto>,
    /// Whether the stores take writes (full, read-only), for `/readyz` and the metrics.
    storage_health: Arc<storage_health::StorageHealth>,
}

impl Services {
    /// Opens the database (applying migrations), loads or creates the service key, and
    /// makes sure the instances sharing the database have a login-token key.
    pub fn build(settings: Settings) -> Result<Self> {
        let store = Store::open(
            settings.database_url().expose_secret(),
            settings.database.pool_size,
            settings.database.sqlite_busy_timeout_ms,
        )?;
        let service_key = ServiceKey::load_or_generate(&settings.service_key_path())?;
        let clock = Arc::new(if settings.testing.movable_clock {
            Clock::shared()
        } else {
            Clock::default()
        });
        // Refuses to start without the KEK the settings require, naming the file.
        let crypto = Arc::new(personal::prepare(&settings, &store, &clock)?);
        let evidence = EvidenceStore::open(&settings)?;
        if settings.evidence.store != crate::config::EvidenceBackend::S3
            && store.backend() == crate::storage::Backend::Postgres
        {
            tracing::warn!(
                dir = %evidence.location,
                "evidence files are kept in a local directory: with several instances on one \
                 PostgreSQL database every instance must share it, or set evidence.store = \"s3\""
            );
        }
        let evidence_failures = prometheus::IntCounter::new(
            "evidence_integrity_failures_total",
            "Stored evidence files refused because their bytes no longer match their SHA-256",
        )
        .map_err(|e| Error::Internal(e.to_string()))?;
        let levels = Arc::new(sla::ServiceLevels::from_settings(&settings, Utc::now())?);
        let wake = Arc::new(Wake::default());
        let addressing = Arc::new(notices::Addressing::new(
            &settings.sla.supervisors,
            wake.clone(),
        ));
        let background =
            Arc::new(outbox::BackgroundMetrics::new().map_err(|e| Error::Internal(e.to_string()))?);
        let token_keys = write_blocking(
            &store,
            &clock,
            // Instances starting at once take turns: the first stores the token key.
            ChainLock::First,
            &Recorder::system(),
            |tx, now| {
                secrets::publish_key(
                    tx,
                    &service_key.kid,
                    service_key.key.alg.as_str(),
                    &service_key.jwk().to_string(),
                    now.naive_utc(),
                )?;
                if token_keys::current(tx)?.is_none() {
                    token_keys::insert(tx, &auth::fresh_key(now))?;
                }
                Ok(token_keys::usable(tx, now.naive_utc())?)
            },
        )?;
        let storage_health = Arc::new(
            storage_health::StorageHealth::new().map_err(|e| Error::Internal(e.to_string()))?,
        );
        let tokens = auth::TokenKeys::new(settings.auth.token_ttl_seconds);
        tokens.install(&token_keys);
        Ok(Self {
            store,
            tokens: Arc::new(tokens),
            settings: Arc::new(settings),
            service_key: Arc::new(service_key),
            clock,
            evidence,
            evidence_failures,
            levels,
            addressing,
            wake,
            background,
            crypto,
            storage_health,
        })
    }

    /// What wakes this instance's mail worker and scheduler.
    pub fn wake(&self) -> &Wake {
        &self.wake
    }

    /// The mail and timer metrics, for the metrics registry.
    pub fn background_metrics(&self) -> Arc<outbox::BackgroundMetrics> {
        self.background.clone()
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// The service's clock (tests move it with `Clock::advance`).
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Stored evidence files found corrupt, for the metrics registry.
    pub fn evidence_failures(&self) -> prometheus::IntCounter {
        self.evidence_failures.clone()
    }

    pub fn backend(&self) -> crate::storage::Backend {
        self.store.backend()
    }

    /// SQLite's log copied into the database file, beside the writers (see
    /// `Store::checkpoint_wal`); called by `serve` every 100 ms.
    pub async fn checkpoint_database(&self) {
        if let Err(e) = self.store.checkpoint_wal().await {
            // A writer copies the log itself once it grows, so this only costs speed.
            tracing::warn!(error = %e, "copying the SQLite log into the database failed");
        }
    }

    /// True when the database answers (readiness).
    pub async fn database_answers(&self) -> bool {
        self.store.ping().await
    }
}

/// The audit attribution of an authenticated user.
pub fn recorder(actor: &Actor) -> Recorder {
    Recorder::new(actor.username.as_str(), actor.role_name())
}

/// A pass `serve` runs every `every` (at least a second) that deletes what has outlived its
/// time, logging how many rows went, or why it could not: `what` names the rows in the log.
/// Safe on many instances when `prune` is a plain DELETE by time.
pub(crate) async fn prune_periodically<F, Fut>(
    every: std::time::Duration,
    what: &'static str,
    prune: F,
) where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<usize>>,
{
    loop {
        match prune().await {
            Ok(0) => {}
            Ok(n) => tracing::info!(deleted = n, rows = what, "old rows deleted"),
            Err(e) => tracing::warn!(error = %e, rows = what, "deleting old rows failed"),
        }
        tokio::time::sleep(every.max(std::time::Duration::from_secs(1))).await;
    }
}
