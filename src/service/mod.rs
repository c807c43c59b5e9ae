//! Domain services: one function per contract action. The only code that opens a write
//! transaction; used alike by HTTP handlers, the CLI and background work.

pub mod audit;
pub mod auth;
pub mod error;
pub mod evidence;
pub mod halls;
pub mod subscribers;
pub mod users;
pub mod verification;
pub mod views;
pub mod work_orders;

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use chrono::{DateTime, Duration, SubsecRound, Utc};
use secrecy::ExposeSecret;

pub use error::{Error, Result};

use crate::audit::Recorder;
use crate::config::Settings;
use crate::domain::access::Actor;
use crate::domain::{DomainError, ErrorCode};
use crate::signing::ServiceKey;
use crate::storage::objects::EvidenceStore;
use crate::storage::{secrets, DbConn, Store};

/// Wall-clock time with an adjustable offset, so tests can move time without sleeping.
#[derive(Debug, Default)]
pub struct Clock {
    offset_seconds: AtomicI64,
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
}

/// Everything an action needs; cheap to clone (shared parts behind `Arc`).
#[derive(Clone)]
pub struct Services {
    pub store: Store,
    pub settings: Arc<Settings>,
    pub service_key: Arc<ServiceKey>,
    pub tokens: Arc<auth::TokenKeys>,
    pub login_guard: Arc<auth::LoginGuard>,
    pub clock: Arc<Clock>,
    /// Evidence files' bytes; the database holds only their metadata.
    pub evidence: EvidenceStore,
    /// Stored evidence files found not to match their digest (exported as a metric).
    pub evidence_failures: prometheus::IntCounter,
}

impl Services {
    /// Opens the database (applying migrations), loads or creates the service key, and
    /// agrees with the other instances on the login-token key.
    pub fn build(settings: Settings) -> Result<Self> {
        let store = Store::open(
            settings.database_url().expose_secret(),
            settings.database.pool_size,
            settings.database.sqlite_busy_timeout_ms,
        )?;
        let service_key = ServiceKey::load_or_generate(&settings.service_key_path())?;
        if let Some(bad) = settings
            .verification
            .required_evidence
            .iter()
            .find(|k| crate::domain::evidence::EvidenceKind::parse(k).is_none())
        {
            return Err(Error::Internal(format!(
                "verification.required_evidence names an unknown kind {bad:?}"
            )));
        }
        let evidence = EvidenceStore::open(&settings)?;
        if settings.evidence.store != crate::config::EvidenceBackend::S3
            && matches!(
                crate::storage::DatabaseUrl::parse(settings.database_url().expose_secret()),
                crate::storage::DatabaseUrl::Postgres(_)
            )
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
        let clock = Arc::new(Clock::default());
        let mut conn = store.connection()?;
        secrets::publish_key(
            &mut conn,
            &service_key.kid,
            service_key.key.alg.as_str(),
            &service_key.jwk().to_string(),
            clock.now().naive_utc(),
        )?;
        let token_secret =
            secrets::get_or_insert(&mut conn, "token_hmac_key", &auth::fresh_secret())?;
        drop(conn);
        Ok(Self {
            store,
            login_guard: Arc::new(auth::LoginGuard::new(&settings.auth)),
            tokens: Arc::new(auth::TokenKeys::new(
                token_secret.as_bytes(),
                settings.auth.token_ttl_seconds,
            )),
            settings: Arc::new(settings),
            service_key: Arc::new(service_key),
            clock,
            evidence,
            evidence_failures,
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    /// Runs a state-changing step in one transaction that first takes the audit chain's lock.
    /// A refusal worth auditing (`Refusal::Audited`) rolls the whole step back and commits
    /// only its audit event, in a second transaction, so nothing half-written survives.
    /// (No savepoint: two fewer round trips inside the chain lock on every write; refusals
    /// are rare and pay for a second transaction instead.)
    pub async fn change<T, F>(&self, by: Recorder, step: F) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        self.change_locked(by, ChainLock::First, step).await
    }

    /// Like `change`, for the hot paths (work-order steps, evidence): on PostgreSQL the chain
    /// lock is taken only when the step appends its event, so the row everyone queues on is
    /// held for the append and the commit, not for the whole step. Such a step must be safe
    /// against concurrent writers by itself: version-guarded updates (`lost_race`), unique
    /// indexes, atomic counters. On SQLite, whose writers take turns anyway, the lock is
    /// still taken first. `at` is then the time the step began, which under concurrency may
    /// precede the previous event's by a few milliseconds; `seq` is the order.
    pub async fn change_late<T, F>(&self, by: Recorder, step: F) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        self.change_locked(by, ChainLock::AtAppend, step).await
    }

    async fn change_locked<T, F>(&self, by: Recorder, lock: ChainLock, step: F) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        let clock = self.clock.clone();
        let lock_first =
            lock == ChainLock::First || self.store.backend() == crate::storage::Backend::Sqlite;
        let attempt = self
            .store
            .write(move |tx| -> std::result::Result<T, RolledBack> {
                if lock_first {
                    crate::audit::lock(tx)?;
                }
                // When the lock is taken first, read the clock only once the chain is ours, so
                // `at` never runs backwards against `seq` however long the lock took (with a
                // late lock, see `change_late`).
                let now = clock.now();
                step(tx, now).map_err(RolledBack)
            })
            .await;
        match attempt {
            Ok(v) => Ok(v),
            Err(RolledBack(Refusal::Plain(e))) => Err(e),
            Err(RolledBack(Refusal::Audited(refusal))) => {
                let AuditedRefusal {
                    error,
                    action,
                    work_order,
                    detail,
                } = *refusal;
                let clock = self.clock.clone();
                self.store
                    .write(move |tx| -> Result<()> {
                        crate::audit::lock(tx)?;
                        let now = clock.now();
                        crate::audit::append(tx, &by, action, work_order.as_deref(), &detail, now)?;
                        Ok(())
                    })
                    .await?;
                Err(error)
            }
        }
    }
}

/// When a write transaction takes the audit chain's lock.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ChainLock {
    First,
    AtAppend,
}

/// Why a step stopped: plainly (rolled back, nothing recorded) or with an audit event that
/// is committed on its own.
pub enum Refusal {
    Plain(Error),
    Audited(Box<AuditedRefusal>),
}

pub struct AuditedRefusal {
    pub error: Error,
    pub action: &'static str,
    pub work_order: Option<String>,
    pub detail: serde_json::Value,
}

impl Refusal {
    pub fn audited(
        error: impl Into<Error>,
        action: &'static str,
        work_order: Option<String>,
        detail: serde_json::Value,
    ) -> Self {
        Self::Audited(Box::new(AuditedRefusal {
            error: error.into(),
            action,
            work_order,
            detail,
        }))
    }
}

impl From<Error> for Refusal {
    fn from(e: Error) -> Self {
        Refusal::Plain(e)
    }
}

impl From<DomainError> for Refusal {
    fn from(e: DomainError) -> Self {
        Refusal::Plain(e.into())
    }
}

impl From<crate::storage::StorageError> for Refusal {
    fn from(e: crate::storage::StorageError) -> Self {
        Refusal::Plain(e.into())
    }
}

impl From<diesel::result::Error> for Refusal {
    fn from(e: diesel::result::Error) -> Self {
        Refusal::Plain(e.into())
    }
}

impl From<crate::signing::KeyError> for Refusal {
    fn from(e: crate::signing::KeyError) -> Self {
        Refusal::Plain(e.into())
    }
}

impl From<Refusal> for Error {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Plain(e) => e,
            Refusal::Audited(a) => a.error,
        }
    }
}

/// A step's refusal on its way out of the transaction (which it rolls back).
struct RolledBack(Refusal);

impl From<diesel::result::Error> for RolledBack {
    fn from(e: diesel::result::Error) -> Self {
        RolledBack(Refusal::Plain(e.into()))
    }
}

impl From<crate::storage::StorageError> for RolledBack {
    fn from(e: crate::storage::StorageError) -> Self {
        RolledBack(Refusal::Plain(e.into()))
    }
}

/// The audit attribution of an authenticated user.
pub fn recorder(actor: &Actor) -> Recorder {
    Recorder::new(actor.username.clone(), actor.role_name())
}

/// A required free-text field must say something.
pub fn require_text(value: &str, field: &str) -> std::result::Result<String, DomainError> {
    let trimmed = value.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid(
            ErrorCode::InvalidField,
            field,
            format!("{field} must not be empty"),
        ));
    }
    Ok(trimmed.to_owned())
}
