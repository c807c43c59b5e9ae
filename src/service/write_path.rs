//! The one door every write goes through. A write transaction can be opened only with a
//! [`WritePermit`], and only this module can make one: `Services::write` (request paths) and
//! [`write_blocking`] (start-up and the CLI, on the calling thread) are therefore the only
//! code that writes, and both take the audit chain's lock the way the step declares.

use chrono::{DateTime, Utc};

use super::{Clock, Error, Result, Services};
use crate::audit::{AuditAction, Recorder};
use crate::domain::DomainError;
use crate::domain::WorkOrderId;
use crate::storage::{Backend, DbConn, Durability, StorageError, Store};

/// Proof for `Store` that a write transaction is opened here. Its field is private to this
/// module, so no other code can make one.
pub struct WritePermit(());

/// When a step takes the audit chain's lock (the head row every event is appended after).
/// On SQLite every write holds the database's one write lock anyway (the group commit's
/// `BEGIN IMMEDIATE`, or `lock` first on the CLI's path). On PostgreSQL a step's events are
/// queued for the sequencer (`audit::sequencer`), so only `First` takes the head row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainLock {
    /// First thing in the transaction: the step reads what the chain must agree with, or
    /// must not run beside another step of its kind (rare administrative steps).
    First,
    /// The step appends events but reads nothing the chain orders: on PostgreSQL it takes no
    /// row every other writer takes. The step must be safe against concurrent writers by
    /// itself: version-guarded updates (`lost_race`), unique indexes, atomic counters. `at` is
    /// the time the step began, which may precede the previous event's by a few milliseconds;
    /// `seq` is the order.
    AtAppend,
    /// The step appends no event and reads nothing the chain orders (a checkpoint already
    /// signed being kept, the sequencer's own batch, which locks what it needs).
    NotNeeded,
}

impl ChainLock {
    /// On SQLite every write takes it first: that also takes the database's write lock before
    /// any read, so no transaction fails to upgrade its read lock.
    fn first_on(self, backend: Backend) -> bool {
        self == Self::First || backend == Backend::Sqlite
    }
}

/// Why a step stopped: plainly (rolled back, nothing recorded) or with an audit event that
/// is committed on its own.
pub enum Refusal {
    Plain(Error),
    Audited(Box<AuditedRefusal>),
}

pub struct AuditedRefusal {
    pub error: Error,
    pub action: AuditAction,
    pub work_order: Option<WorkOrderId>,
    pub detail: serde_json::Value,
}

impl Refusal {
    pub fn audited(
        error: impl Into<Error>,
        action: AuditAction,
        work_order: Option<WorkOrderId>,
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

/// Every error a step can meet becomes a plain refusal.
macro_rules! plain_refusal_from {
    ($($t:ty),*) => {$(
        impl From<$t> for Refusal {
            fn from(e: $t) -> Self {
                Refusal::Plain(e.into())
            }
        }
    )*};
}
plain_refusal_from!(
    Error,
    DomainError,
    StorageError,
    diesel::result::Error,
    crate::signing::KeyError,
    crate::crypto::CryptoError
);

impl AuditedRefusal {
    /// Writes the refusal's audit event (the step itself rolled back); the error to answer.
    fn record(
        self,
        tx: &mut DbConn,
        by: &Recorder,
        now: DateTime<Utc>,
    ) -> std::result::Result<Error, StorageError> {
        let detail = &self.detail;
        crate::audit::append(tx, by, self.action, self.work_order.as_ref(), detail, now)?;
        Ok(self.error)
    }
}

impl Refusal {
    fn write_refusal(&self) -> Option<crate::storage::error::WriteRefusal> {
        match self {
            Refusal::Plain(e) => e.write_refusal(),
            Refusal::Audited(a) => a.error.write_refusal(),
        }
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

impl From<StorageError> for RolledBack {
    fn from(e: StorageError) -> Self {
        RolledBack(Refusal::Plain(e.into()))
    }
}

impl From<DomainError> for RolledBack {
    fn from(e: DomainError) -> Self {
        RolledBack(Refusal::Plain(e.into()))
    }
}

impl Services {
    /// Runs a state-changing step in one transaction, taking the chain lock as `lock` says.
    /// A refusal worth auditing (`Refusal::Audited`) rolls the whole step back and commits
    /// only its audit event, in a second transaction, so nothing half-written survives.
    /// (No savepoint: two fewer round trips inside the chain lock on every write; refusals
    /// are rare and pay for a second transaction instead.)
    pub(crate) async fn write<T, F>(&self, lock: ChainLock, by: Recorder, step: F) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        self.write_as(lock, by, Durability::Synced, step).await
    }

    /// `write` for bookkeeping a crash may lose without harm (`Durability::Relaxed`): no
    /// event, no chain, no sync of its own. Idempotency keys: a lost reservation or answer
    /// only means a retry does the step again, as after any crash mid-request.
    pub(crate) async fn write_bookkeeping<T, F>(&self, by: Recorder, step: F) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        self.write_as(ChainLock::NotNeeded, by, Durability::Relaxed, step)
            .await
    }

    async fn write_as<T, F>(
        &self,
        lock: ChainLock,
        by: Recorder,
        durability: Durability,
        step: F,
    ) -> Result<T>
    where
        F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
        T: Send + 'static,
    {
        let (store, clock) = (self.store.clone(), self.clock.clone());
        let done = match store.backend() {
            Backend::Sqlite => write_grouped(&store, clock, by, step).await,
            Backend::Postgres => {
                // Off the async threads, inside the request's span so the step's logs keep
                // its id.
                let span = tracing::Span::current();
                tokio::task::spawn_blocking(move || {
                    span.in_scope(|| write_blocking_as(&store, &clock, lock, &by, durability, step))
                })
                .await
                .map_err(|e| Error::Internal(e.to_string()))?
            }
        };
        if done.is_ok() && lock != ChainLock::NotNeeded {
            self.wake.events_queued();
        }
        self.wake.after_commit();
        match &done {
            Ok(_) => self.after_successful_write().await,
            Err(e) => self.storage_health.note(e),
        }
        done
    }
}

/// `Services::write` on SQLite: the step joins the group committer's next transaction (one
/// sync for every step waiting), in a savepoint of its own. A refusal worth auditing rolls the
/// step back to its savepoint and writes only its audit event, in the same transaction.
/// `durability` does not apply: the batch's one sync is shared by every step in it.
async fn write_grouped<T, F>(
    store: &Store,
    clock: std::sync::Arc<Clock>,
    by: Recorder,
    step: F,
) -> Result<T>
where
    F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal> + Send + 'static,
    T: Send + 'static,
{
    let recover_clock = clock.clone();
    let attempt = store
        .write_grouped(
            WritePermit(()),
            move |tx| -> std::result::Result<Result<T>, RolledBack> {
                if clock.is_shared() {
                    clock.follow(crate::storage::clock::clock_offset(tx)?);
                }
                step(tx, clock.now()).map(Ok).map_err(RolledBack)
            },
            move |tx, RolledBack(refusal)| match refusal {
                Refusal::Plain(e) => Err(RolledBack(Refusal::Plain(e))),
                Refusal::Audited(refusal) => {
                    Ok(Err(refusal.record(tx, &by, recover_clock.now())?))
                }
            },
        )
        .await;
    if matches!(&attempt, Err(RolledBack(r)) if r.write_refusal().is_some()) {
        store.write_refused();
    }
    match attempt {
        Ok(answer) => answer,
        Err(RolledBack(refusal)) => Err(refusal.into()),
    }
}

/// `Services::write` on the calling thread, for start-up and the CLI.
pub(crate) fn write_blocking<T, F>(
    store: &Store,
    clock: &Clock,
    lock: ChainLock,
    by: &Recorder,
    step: F,
) -> Result<T>
where
    F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal>,
{
    let done = write_blocking_as(store, clock, lock, by, Durability::Synced, step)?;
    if lock != ChainLock::NotNeeded {
        // The CLI's events are in the chain when it returns, service running or not (an
        // offline `audit verify` next sees them).
        integrate_blocking(store)?;
    }
    Ok(done)
}

/// Integrates every queued audit event (PostgreSQL), waiting behind a running sequencer.
fn integrate_blocking(store: &Store) -> Result<()> {
    if store.backend() != Backend::Postgres {
        return Ok(());
    }
    loop {
        let pass = store.write_blocking(WritePermit(()), |tx| -> Result<_> {
            Ok(crate::audit::sequencer::integrate(tx, true)?)
        })?;
        if pass.is_none_or(|p| p.events() < crate::audit::sequencer::BATCH as usize) {
            return Ok(());
        }
    }
}

fn write_blocking_as<T, F>(
    store: &Store,
    clock: &Clock,
    lock: ChainLock,
    by: &Recorder,
    durability: Durability,
    step: F,
) -> Result<T>
where
    F: FnOnce(&mut DbConn, DateTime<Utc>) -> std::result::Result<T, Refusal>,
{
    let lock_first = lock.first_on(store.backend());
    let attempt = store.write_blocking_as(
        WritePermit(()),
        durability,
        |tx| -> std::result::Result<T, RolledBack> {
            if lock_first {
                crate::audit::lock(tx)?;
            }
            if clock.is_shared() {
                clock.follow(crate::storage::clock::clock_offset(tx)?);
            }
            // With the lock taken first, read the clock only once the chain is ours, so `at`
            // never runs backwards against `seq` however long the lock took.
            let now = clock.now();
            step(tx, now).map_err(RolledBack)
        },
    );
    if matches!(&attempt, Err(RolledBack(r)) if r.write_refusal().is_some()) {
        store.write_refused();
    }
    match attempt {
        Ok(v) => Ok(v),
        Err(RolledBack(Refusal::Plain(e))) => Err(e),
        Err(RolledBack(Refusal::Audited(refusal))) => {
            let error = store.write_blocking(WritePermit(()), |tx| -> Result<Error> {
                if ChainLock::AtAppend.first_on(store.backend()) {
                    crate::audit::lock(tx)?;
                }
                Ok(refusal.record(tx, by, clock.now())?)
            })?;
            Err(error)
        }
    }
}

/// Whether the database takes a write of a new order's size: a row written, then rolled
/// back whatever happens (`storage_health`'s probe).
pub(crate) fn probe_space(store: &Store) -> Result<()> {
    enum End {
        Fits,
        Failed(StorageError),
    }
    impl From<StorageError> for End {
        fn from(e: StorageError) -> Self {
            End::Failed(e)
        }
    }
    impl From<diesel::result::Error> for End {
        fn from(e: diesel::result::Error) -> Self {
            End::Failed(e.into())
        }
    }
    let probed = store.write_blocking(WritePermit(()), |tx| -> std::result::Result<(), End> {
        crate::storage::secrets::probe_space(tx)?;
        // Rolled back: the probe leaves nothing behind.
        Err(End::Fits)
    });
    let refused = matches!(&probed, Err(End::Failed(e)) if e.write_refusal().is_some());
    store.probe_refused(refused);
    match probed {
        Ok(()) | Err(End::Fits) => Ok(()),
        Err(End::Failed(e)) => Err(e.into()),
    }
}
