//! Storage: the only layer that speaks SQL. Everything above it gets a `DbConn` inside a
//! transaction opened by [`Store::write`] or [`Store::read`].

pub(crate) mod audit;
pub(crate) mod audit_scan;
pub(crate) mod clock;
pub(crate) mod data_keys;
pub(crate) mod device_keys;
pub(crate) mod error;
pub(crate) mod evidence;
mod group_commit;
pub(crate) mod halls;
pub(crate) mod idempotency;
pub(crate) mod login_throttle;
pub(crate) mod migrate;
pub(crate) mod notes;
pub(crate) mod objects;
pub mod offline;
pub(crate) mod operations;
pub(crate) mod outbox;
pub mod pg_url;
pub(crate) mod quality;
pub(crate) mod retention;
pub(crate) mod schema;
#[cfg(test)]
mod scratch;
pub(crate) mod secrets;
pub(crate) mod subscribers;
pub(crate) mod token_keys;
pub(crate) mod users;
pub(crate) mod verification_results;
pub(crate) mod work_orders;

use std::time::Duration;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

pub use error::StorageError;

use crate::service::WritePermit;

#[derive(diesel::MultiConnection)]
pub(crate) enum DbConn {
    Pg(diesel::PgConnection),
    Sqlite(diesel::SqliteConnection),
}

/// Which database a URL names. Picked from the scheme ourselves: SQLite accepts any string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseUrl {
    Postgres(String),
    Sqlite(std::path::PathBuf),
}

impl DatabaseUrl {
    pub fn parse(url: &str) -> Self {
        let url = url.trim();
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Self::Postgres(url.to_owned())
        } else {
            // `sqlite://` then the path verbatim: `sqlite:///abs` is absolute, `sqlite://rel` relative.
            let path = url.strip_prefix("sqlite://").unwrap_or(url);
            Self::Sqlite(std::path::PathBuf::from(path))
        }
    }

    pub fn backend(&self) -> Backend {
        match self {
            Self::Postgres(_) => Backend::Postgres,
            Self::Sqlite(_) => Backend::Sqlite,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Postgres,
    Sqlite,
}

/// Pages the SQLite log may hold before a committing writer copies it into the database
/// itself (SQLite's default is 1,000; the checkpointer normally keeps it far below).
const SQLITE_WAL_FALLBACK_PAGES: u32 = 20_000;
/// What a log emptied by a checkpoint is cut back to, so a burst does not keep its size.
const SQLITE_WAL_KEEP_BYTES: u64 = 64 << 20;

/// How a write's commit is made durable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Durability {
    /// Synced to disk before the commit returns (SQLite `synchronous=FULL`, PostgreSQL's
    /// `synchronous_commit`): every state change, audit event and mail.
    Synced,
    /// Bookkeeping a crash may lose without harm (idempotency keys): no sync of its own. It
    /// becomes durable with the next synced commit, which syncs what came before it (SQLite's
    /// log, PostgreSQL's WAL), and a crash can lose it but never corrupt anything.
    Relaxed,
}

/// Statements run by this process's connections, every one (reads, writes, BEGIN and
/// COMMIT): `crossprov_db_statements_total`, what the benchmark divides by the steps it made.
pub static STATEMENTS: std::sync::LazyLock<prometheus::IntCounter> =
    std::sync::LazyLock::new(|| {
        prometheus::IntCounter::new(
            "db_statements_total",
            "SQL statements sent to the database by this instance (BEGIN and COMMIT included)",
        )
        .unwrap_or_else(|_| unreachable!("a fixed, valid metric name and help"))
    });

/// Counts every statement, and logs its SQL (never its bound values) at TRACE under the
/// target `crossprov::sql`: how the statements of a step are listed.
struct CountStatements;

impl diesel::connection::Instrumentation for CountStatements {
    fn on_connection_event(&mut self, event: diesel::connection::InstrumentationEvent<'_>) {
        if let diesel::connection::InstrumentationEvent::StartQuery { query, .. } = event {
            STATEMENTS.inc();
            if tracing::enabled!(target: "crossprov::sql", tracing::Level::TRACE) {
                let text = query.to_string();
                let sql = text.split(" -- binds:").next().unwrap_or_default();
                tracing::trace!(target: "crossprov::sql", sql);
            }
        }
    }
}

/// Opens connections of the kind the URL names, each prepared the same way.
#[derive(Debug, Clone)]
pub(crate) struct Connector {
    url: DatabaseUrl,
    sqlite_busy_timeout_ms: u64,
    /// Connections of the readers' pool refuse to write, so `Store::read` cannot become a
    /// second write path.
    read_only: bool,
    /// Whether the database refuses writes, shared by the writers' pool and its `Store`.
    refusals: std::sync::Arc<Refusals>,
}

/// A PostgreSQL session keeps the `default_transaction_read_only` it started with, so a
/// writer connection opened while the database refused writes would refuse them for ever.
/// While a refusal stands, writer connections are dropped as they come back to the pool; and
/// every time a refusal begins or ends the epoch moves on, so a connection opened in another
/// epoch (say, by a pass that wrote nothing before any write was refused) is replaced when it
/// is next taken from the pool, never used for a write.
#[derive(Debug, Default)]
struct Refusals {
    refusing: std::sync::atomic::AtomicBool,
    epoch: std::sync::atomic::AtomicU64,
}

impl Refusals {
    fn epoch(&self) -> u64 {
        self.epoch.load(std::sync::atomic::Ordering::Acquire)
    }

    fn set(&self, refusing: bool) {
        use std::sync::atomic::Ordering;
        if self.refusing.swap(refusing, Ordering::AcqRel) != refusing {
            self.epoch.fetch_add(1, Ordering::AcqRel);
        }
    }
}

/// A pooled connection and the refusal epoch it was opened in (`Refusals`).
pub(crate) struct Pooled {
    conn: DbConn,
    opened_in: u64,
}

impl std::ops::Deref for Pooled {
    type Target = DbConn;
    fn deref(&self) -> &DbConn {
        &self.conn
    }
}

impl std::ops::DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut DbConn {
        &mut self.conn
    }
}

impl Connector {
    pub fn new(url: &str, sqlite_busy_timeout_ms: u64) -> Self {
        Self {
            url: DatabaseUrl::parse(url),
            sqlite_busy_timeout_ms,
            read_only: false,
            refusals: Default::default(),
        }
    }

    fn read_only(mut self) -> Self {
        self.read_only = true;
        self
    }

    pub fn backend(&self) -> Backend {
        self.url.backend()
    }

    pub fn connect(&self) -> Result<DbConn, StorageError> {
        match &self.url {
            DatabaseUrl::Postgres(url) => {
                let mut conn = diesel::PgConnection::establish(url)
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                conn.set_instrumentation(CountStatements);
                if self.read_only {
                    conn.batch_execute("SET default_transaction_read_only = on")?;
                }
                Ok(DbConn::Pg(conn))
            }
            DatabaseUrl::Sqlite(path) => {
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    std::fs::create_dir_all(dir).map_err(|e| {
                        StorageError::Connect(format!("creating {}: {e}", dir.display()))
                    })?;
                }
                let path = path.to_string_lossy();
                let mut conn = diesel::SqliteConnection::establish(&path)
                    .map_err(|e| StorageError::Connect(e.to_string()))?;
                conn.set_instrumentation(CountStatements);
                // WAL + synchronous=FULL: an acknowledged write survives a power cut; the busy
                // timeout makes writers queue for the lock instead of failing.
                // The log is copied into the database file by `Store::checkpoint_wal`, off the
                // writers' turn; a writer copies it itself only once it has grown past
                // `SQLITE_WAL_FALLBACK_PAGES` (a process with no checkpointer, or a burst).
                conn.batch_execute(&format!(
                    "PRAGMA busy_timeout = {}; PRAGMA journal_mode = WAL; \
                     PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON; \
                     PRAGMA wal_autocheckpoint = {SQLITE_WAL_FALLBACK_PAGES}; \
                     PRAGMA journal_size_limit = {SQLITE_WAL_KEEP_BYTES};",
                    self.sqlite_busy_timeout_ms
                ))?;
                if self.read_only {
                    conn.batch_execute("PRAGMA query_only = ON")?;
                }
                Ok(DbConn::Sqlite(conn))
            }
        }
    }
}

impl r2d2::ManageConnection for Connector {
    type Connection = Pooled;
    type Error = StorageError;

    fn connect(&self) -> Result<Pooled, StorageError> {
        // The epoch before connecting: one that moves on meanwhile makes the connection stale.
        let opened_in = self.refusals.epoch();
        Ok(Pooled {
            conn: Connector::connect(self)?,
            opened_in,
        })
    }

    /// Checked at every checkout, without a round trip: a writer opened in another refusal
    /// epoch is replaced (see `Refusals`).
    fn is_valid(&self, conn: &mut Pooled) -> Result<(), StorageError> {
        if !self.read_only && conn.opened_in != self.refusals.epoch() {
            return Err(StorageError::Connect(
                "opened before the database's refusal of writes began or ended".into(),
            ));
        }
        Ok(())
    }

    /// A connection whose server went away is dropped when it comes back to the pool, so
    /// the pool need not ping each one on checkout (a round trip per request saved).
    fn has_broken(&self, conn: &mut Pooled) -> bool {
        use diesel::r2d2::R2D2Connection;
        if !self.read_only
            && self
                .refusals
                .refusing
                .load(std::sync::atomic::Ordering::Acquire)
        {
            return true;
        }
        match &mut conn.conn {
            DbConn::Pg(c) => c.is_broken(),
            DbConn::Sqlite(c) => c.is_broken(),
        }
    }
}

/// `PRAGMA max_page_count` as `Store::sqlite_page_cap` says, on a SQLite writer.
fn apply_page_cap(conn: &mut DbConn, cap: u64) -> Result<(), StorageError> {
    if let (DbConn::Sqlite(c), false) = (conn, cap == NO_CAP_SET) {
        let pages = if cap == 0 { SQLITE_MAX_PAGES } else { cap };
        c.batch_execute(&format!("PRAGMA max_page_count = {pages}"))?;
    }
    Ok(())
}

/// One transaction on a connection from `pool`.
/// A second reader for a long read; without one the read runs on its own connection only,
/// slower, so a failure to open it is said and not passed on.
fn opened_beside(connector: &Connector) -> Option<DbConn> {
    connector
        .connect()
        .map_err(
            |e| tracing::warn!(error = %e, "a second reader could not be opened; reading on one"),
        )
        .ok()
}

fn in_transaction<T, E, F>(pool: &r2d2::Pool<Connector>, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<StorageError> + From<diesel::result::Error>,
{
    let mut pooled = pool.get().map_err(|e| StorageError::Pool(e.to_string()))?;
    run_transaction(&mut pooled, f)
}

/// `f` in one transaction, rolled back when it fails. The step's own error is what the
/// caller gets even when the rollback fails too: SQLite ends a transaction by itself on
/// `SQLITE_FULL`, and diesel would otherwise answer with the rollback's "no transaction is
/// active" instead of the full disk.
fn run_transaction<T, E, F>(conn: &mut DbConn, f: F) -> Result<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<StorageError> + From<diesel::result::Error>,
{
    let mut failed = None;
    let done = conn.transaction::<T, diesel::result::Error, _>(|tx| {
        f(tx).map_err(|e| {
            failed = Some(e);
            diesel::result::Error::RollbackTransaction
        })
    });
    match (done, failed) {
        (Ok(v), _) => Ok(v),
        (Err(_), Some(step_error)) => Err(step_error),
        (Err(e), None) => Err(e.into()),
    }
}

/// Runs blocking database work on the blocking pool, inside the caller's span.
async fn off_the_async_threads<T, E, F>(work: F) -> Result<T, E>
where
    F: FnOnce() -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| E::from(StorageError::Task(e.to_string())))?
}

/// The pools plus the rule that every write is one transaction run off the async threads.
/// Reads and writes have separate pools, so readers never queue behind writers waiting for
/// the audit chain's lock. On SQLite writers also take turns in-process (`write_gate`):
/// SQLite itself makes a blocked writer sleep and poll (1–100 ms naps), which leaves the
/// lock idle and stretches tails to seconds; a mutex hands it over at once.
#[derive(Clone)]
pub(crate) struct Store {
    pool: r2d2::Pool<Connector>,
    readers: r2d2::Pool<Connector>,
    backend: Backend,
    write_gate: Option<std::sync::Arc<std::sync::Mutex<()>>>,
    /// How the readers connect: what replaces a dead reader (`read_one`).
    reader_connector: Connector,
    /// The writers' `Connector::refusals`.
    refusals: std::sync::Arc<Refusals>,
    /// `PRAGMA max_page_count` for SQLite writers: `NO_CAP_SET` until `cap_sqlite_pages` is
    /// called, then the cap, or `0` once lifted.
    sqlite_page_cap: std::sync::Arc<std::sync::atomic::AtomicU64>,
    /// SQLite's group committer, started with the first grouped write.
    committer: std::sync::Arc<std::sync::OnceLock<group_commit::Committer>>,
}

/// `Store::sqlite_page_cap` before any cap was set: writers run no extra statement.
const NO_CAP_SET: u64 = u64::MAX;
/// SQLite's own largest `max_page_count`: what lifting the cap sets.
const SQLITE_MAX_PAGES: u64 = 4_294_967_294;

impl Store {
    /// Connects, applies pending migrations, and builds the pool.
    pub fn open(
        url: &str,
        pool_size: u32,
        sqlite_busy_timeout_ms: u64,
    ) -> Result<Self, StorageError> {
        let connector = Connector::new(url, sqlite_busy_timeout_ms);
        let mut first = connector.connect()?;
        migrate::run_pending(&mut first)?;
        drop(first);
        Self::pool(connector, pool_size)
    }

    /// Connects to an existing database as it is, changing nothing (offline verification).
    pub fn open_existing(url: &str) -> Result<Self, StorageError> {
        if let DatabaseUrl::Sqlite(path) = DatabaseUrl::parse(url) {
            if !path.exists() {
                return Err(StorageError::Connect(format!(
                    "{} does not exist",
                    path.display()
                )));
            }
        }
        // Verification changes nothing: even its "writers" are read-only connections.
        let connector = Connector::new(url, 10_000).read_only();
        // One attempt first: the pool would retry an unreachable server for 30 s.
        drop(connector.connect()?);
        Self::pool(connector, 1)
    }

    fn pool(connector: Connector, pool_size: u32) -> Result<Self, StorageError> {
        let backend = connector.backend();
        let build = |connector: Connector, min_idle: Option<u32>| {
            r2d2::Pool::builder()
                .max_size(pool_size.max(1))
                .min_idle(min_idle)
                // `Connector::is_valid` makes no round trip.
                .test_on_check_out(true)
                .connection_timeout(Duration::from_secs(30))
                .build(connector)
                .map_err(|e| StorageError::Connect(e.to_string()))
        };
        let reader_connector = connector.clone().read_only();
        let readers = build(reader_connector.clone(), None)?;
        let refusals = connector.refusals.clone();
        // Writers are opened on demand, never ahead in the background: while the database
        // refuses writes, none is opened and kept idle with a session that stays read-only
        // after the database is writable again (see `Refusals`).
        let pool = build(connector, Some(0))?;
        let write_gate = matches!(backend, Backend::Sqlite)
            .then(|| std::sync::Arc::new(std::sync::Mutex::new(())));
        Ok(Self {
            pool,
            readers,
            backend,
            write_gate,
            reader_connector,
            refusals,
            sqlite_page_cap: std::sync::Arc::new(std::sync::atomic::AtomicU64::new(NO_CAP_SET)),
            committer: Default::default(),
        })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A raw connection, for storage's own use (readiness, offline commands): never a way
    /// to write around `service`'s write path.
    fn connection(&self) -> Result<r2d2::PooledConnection<Connector>, StorageError> {
        self.pool
            .get()
            .map_err(|e| StorageError::Pool(e.to_string()))
    }

    /// Runs `f` in one write transaction on this thread. Only `service`'s write path holds
    /// a `WritePermit`, so every write goes through it.
    pub fn write_blocking<T, E, F>(&self, permit: WritePermit, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StorageError> + From<diesel::result::Error>,
    {
        self.write_blocking_as(permit, Durability::Synced, f)
    }

    /// `write_blocking`, committed as `durability` says.
    pub fn write_blocking_as<T, E, F>(
        &self,
        _permit: WritePermit,
        durability: Durability,
        f: F,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E>,
        E: From<StorageError> + From<diesel::result::Error>,
    {
        // A panic while holding the gate poisons it; the gate guards no data, so go on.
        let _turn = self.write_gate.as_ref().map(|gate| {
            gate.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        });
        let mut pooled = self
            .pool
            .get()
            .map_err(|e| StorageError::Pool(e.to_string()))?;
        apply_page_cap(
            &mut pooled,
            self.sqlite_page_cap
                .load(std::sync::atomic::Ordering::Relaxed),
        )?;
        match (durability, &mut **pooled) {
            (Durability::Synced, _) => run_transaction(&mut pooled, f),
            (Durability::Relaxed, DbConn::Pg(_)) => run_transaction(&mut pooled, |tx| {
                tx.batch_execute("SET LOCAL synchronous_commit = off")?;
                f(tx)
            }),
            (Durability::Relaxed, DbConn::Sqlite(c)) => {
                // Set outside the transaction, and back before the connection is reused.
                c.batch_execute("PRAGMA synchronous = NORMAL")?;
                let done = run_transaction(&mut pooled, f);
                if let Err(e) = pooled.batch_execute("PRAGMA synchronous = FULL") {
                    // Only a connection that no longer answers fails this, and then no write
                    // on it commits at all.
                    tracing::error!(error = %e, "a SQLite writer could not go back to synchronous=FULL");
                }
                done
            }
        }
    }

    /// SQLite: runs `step` in the group committer's next transaction, in a savepoint of its
    /// own (see `group_commit`); when it fails, `recover` may write what the refusal leaves in
    /// a fresh savepoint. Answers once the commit that makes the step durable returned.
    /// PostgreSQL commits each writer on its own connection: use `write_blocking_as`.
    pub async fn write_grouped<T, E, F, R>(
        &self,
        _permit: WritePermit,
        step: F,
        recover: R,
    ) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        R: FnOnce(&mut DbConn, E) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        let Some(gate) = &self.write_gate else {
            return Err(StorageError::Task("group commit is for SQLite only".into()).into());
        };
        let committer = match self.committer.get() {
            Some(c) => c,
            None => {
                let started = group_commit::Committer::start(
                    self.pool.clone(),
                    gate.clone(),
                    self.sqlite_page_cap.clone(),
                )?;
                // Two first writers at once: one committer is kept, the other's thread ends
                // with its dropped handle.
                self.committer.get_or_init(|| started)
            }
        };
        let (reply, answer) = tokio::sync::oneshot::channel();
        committer.submit(group_commit::job(step, recover, reply))?;
        answer
            .await
            .map_err(|_| E::from(StorageError::Task("the SQLite committer stopped".into())))?
    }

    /// A write was refused (full, read-only): until a probe write fits again, writer
    /// connections are replaced as they come back to the pool (see `Refusals`).
    pub fn write_refused(&self) {
        self.refusals.set(true);
    }

    /// Whether a probe write (one that really writes a row) was refused. Only a probe ends a
    /// refusal: a step that happened to write nothing proves nothing about the session.
    pub fn probe_refused(&self, refused: bool) {
        self.refusals.set(refused);
    }

    /// Caps a SQLite database at `pages` pages on every writer connection, or lifts the cap
    /// (None): a database that fills up on purpose. No effect on PostgreSQL.
    pub fn cap_sqlite_pages(&self, pages: Option<u64>) {
        let value = pages.map_or(0, |p| p.clamp(1, SQLITE_MAX_PAGES));
        self.sqlite_page_cap
            .store(value, std::sync::atomic::Ordering::Relaxed);
    }

    /// Reads run in a transaction too, so a multi-query read sees one snapshot.
    pub async fn read<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        let readers = self.readers.clone();
        off_the_async_threads(move || in_transaction(&readers, f)).await
    }

    /// `read`, lending `f` a second reader connection besides (opened for it, so the pool
    /// is not drained; None when it cannot be opened), for a long read split across threads.
    pub async fn read_beside<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn, Option<&mut DbConn>) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
    {
        let (readers, connector) = (self.readers.clone(), self.reader_connector.clone());
        off_the_async_threads(move || {
            let mut beside = opened_beside(&connector);
            in_transaction(&readers, |c| f(c, beside.as_mut()))
        })
        .await
    }

    /// A reader connection of the caller's own, outside the pool (None when it cannot be
    /// opened): the second reader of a long read split across threads.
    pub(crate) fn reader_beside(&self) -> Option<DbConn> {
        opened_beside(&self.reader_connector)
    }

    /// One statement off the async threads, without a transaction around it (a single
    /// statement sees one snapshot anyway): two round trips fewer than `read` on PostgreSQL,
    /// for the read every authenticated request makes.
    pub async fn read_one<T, E, F>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
        T: Send + 'static,
        E: From<StorageError> + Send + 'static,
    {
        let (readers, reconnect) = (self.readers.clone(), self.reader_connector.clone());
        off_the_async_threads(move || {
            let mut pooled = readers
                .get()
                .map_err(|e| E::from(StorageError::Pool(e.to_string())))?;
            let done = f(&mut pooled);
            // Outside a transaction diesel never marks a dead connection broken, so the pool
            // would hand it out again forever (a restarted server, an ended session): on a
            // failure, one that no longer answers is replaced in place.
            if done.is_err() && pooled.batch_execute("SELECT 1").is_err() {
                if let Ok(fresh) = reconnect.connect() {
                    **pooled = fresh;
                }
            }
            done
        })
        .await
    }

    /// SQLite: copies what the write-ahead log holds into the database file, beside the
    /// writers rather than in their turn (a committing writer would otherwise stop every other
    /// one while it copies and syncs the file). PASSIVE: it never waits for, nor blocks, a
    /// writer or a reader. Nothing to do on PostgreSQL.
    pub async fn checkpoint_wal(&self) -> Result<(), StorageError> {
        if self.backend != Backend::Sqlite {
            return Ok(());
        }
        let pool = self.pool.clone();
        off_the_async_threads(move || {
            let mut conn = pool.get().map_err(|e| StorageError::Pool(e.to_string()))?;
            conn.batch_execute("PRAGMA wal_checkpoint(PASSIVE)")?;
            Ok(())
        })
        .await
    }

    /// True when the database answers a trivial query.
    pub async fn ping(&self) -> bool {
        let store = self.clone();
        tokio::task::spawn_blocking(move || {
            store
                .connection()
                .map(|mut c| c.batch_execute("SELECT 1").is_ok())
                .unwrap_or(false)
        })
        .await
        .unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::scratch::Scratch;
    use super::*;

    /// Reads cannot write: the readers' connections refuse, so `Store::read` is never a second
    /// write path.
    async fn a_read_cannot_write(url: &str) {
        let store = Store::open(url, 1, 10_000).unwrap();
        let refused = store
            .read(|c| -> Result<usize, StorageError> {
                Ok(diesel::sql_query("CREATE TABLE sneaky (a INTEGER)").execute(c)?)
            })
            .await;
        let why = refused.expect_err("a read transaction wrote").to_string();
        assert!(
            why.contains("read-only") || why.contains("readonly"),
            "refused for another reason: {why}"
        );
    }

    #[tokio::test]
    async fn a_read_cannot_write_on_sqlite() {
        let db = Scratch::sqlite();
        a_read_cannot_write(db.url()).await;
    }

    #[tokio::test]
    async fn a_read_cannot_write_on_postgres() {
        if let Some(db) = Scratch::postgres("readonly") {
            a_read_cannot_write(db.url()).await;
        }
    }
}
