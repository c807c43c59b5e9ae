//! SQLite group commit. SQLite has one writer at a time, and each commit waits for its sync
//! (`synchronous=FULL`): one sync per step is the ceiling. Here steps are handed to one
//! committer thread, which runs every step waiting into one transaction, each inside its own
//! savepoint, and commits them with one sync. A step that fails rolls back to its savepoint
//! alone; the others are answered only once the commit that makes them durable returned.

use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};

use diesel::connection::SimpleConnection;

use super::{apply_page_cap, Connector, DbConn, StorageError};

/// Steps in one transaction at most: enough to share a sync among every client of a busy
/// instance, few enough that the first step's answer does not wait long for the last one's
/// work.
const MAX_BATCH: usize = 128;

/// A step as the committer runs it: inside the batch's transaction, or refused when the
/// transaction could not begin.
pub(super) type Job = Box<dyn FnOnce(Turn<'_>) -> Ran + Send>;

pub(super) enum Turn<'a> {
    Run(&'a mut DbConn),
    Refused(StorageError),
}

/// What running a job left: whether its writes are in the transaction, how to answer it once
/// the transaction ends, and whether the transaction itself was lost (SQLite ends a
/// transaction by itself on some errors, a full disk among them).
pub(super) struct Ran {
    kept: bool,
    lost_transaction: Option<StorageError>,
    answer: Box<dyn FnOnce(Result<(), StorageError>) + Send>,
}

/// The handle steps are submitted through; the thread ends when the last handle is dropped.
pub(super) struct Committer {
    jobs: mpsc::Sender<Job>,
}

impl Committer {
    pub(super) fn start(
        pool: r2d2::Pool<Connector>,
        gate: Arc<Mutex<()>>,
        page_cap: Arc<AtomicU64>,
    ) -> Result<Self, StorageError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        std::thread::Builder::new()
            .name("sqlite-committer".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = VecDeque::from([first]);
                    while batch.len() < MAX_BATCH {
                        match queue.try_recv() {
                            Ok(job) => batch.push_back(job),
                            Err(_) => break,
                        }
                    }
                    commit(&pool, &gate, &page_cap, batch);
                }
            })
            .map_err(|e| StorageError::Task(format!("starting the SQLite committer: {e}")))?;
        Ok(Self { jobs })
    }

    pub(super) fn submit(&self, job: Job) -> Result<(), StorageError> {
        self.jobs
            .send(job)
            .map_err(|_| StorageError::Task("the SQLite committer has stopped".into()))
    }
}

/// Runs `batch` in as few transactions as it takes: one, unless SQLite ends a transaction by
/// itself; then the steps already run in it are answered with that error (nothing of theirs
/// was committed) and the rest go on in a new one.
fn commit(
    pool: &r2d2::Pool<Connector>,
    gate: &Mutex<()>,
    page_cap: &AtomicU64,
    mut batch: VecDeque<Job>,
) {
    // A panic while holding the gate poisons it; the gate guards no data, so go on.
    let _turn = gate
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    while !batch.is_empty() {
        let mut conn = match pool.get() {
            Ok(c) => c,
            Err(e) => return refuse_all(batch, StorageError::Pool(e.to_string())),
        };
        let begun = apply_page_cap(&mut conn, page_cap.load(Ordering::Relaxed))
            .and_then(|()| Ok(conn.batch_execute("BEGIN IMMEDIATE")?));
        if let Err(e) = begun {
            return refuse_all(batch, e);
        }
        let mut kept = Vec::with_capacity(batch.len());
        let mut lost = None;
        while let Some(job) = batch.pop_front() {
            let ran = job(Turn::Run(&mut conn));
            if ran.kept {
                kept.push(ran.answer);
            } else {
                (ran.answer)(Ok(()));
            }
            if let Some(e) = ran.lost_transaction {
                lost = Some(e);
                break;
            }
        }
        let outcome = match lost {
            Some(e) => Err(e),
            None => conn.batch_execute("COMMIT").map_err(StorageError::from),
        };
        if outcome.is_err() {
            // Harmless when SQLite already ended it; leaves no transaction open on a
            // connection going back to the pool.
            let _ = conn.batch_execute("ROLLBACK");
        }
        for answer in kept {
            answer(
                outcome
                    .as_ref()
                    .map(|_| ())
                    .map_err(StorageError::duplicate),
            );
        }
    }
}

/// Answers every job of `batch` with `e`, running none.
fn refuse_all(batch: VecDeque<Job>, e: StorageError) {
    for job in batch {
        let ran = job(Turn::Refused(e.duplicate()));
        (ran.answer)(Ok(()));
    }
}

/// Wraps a step for the committer: `step` runs in a savepoint; when it fails, the savepoint
/// is rolled back and `recover` may write what a refusal leaves (its audit event) in a fresh
/// one. The reply is sent once the batch's transaction ends: the step's value only if its
/// commit succeeded.
pub(super) fn job<T, E, F, R>(
    step: F,
    recover: R,
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
) -> Job
where
    F: FnOnce(&mut DbConn) -> Result<T, E> + Send + 'static,
    R: FnOnce(&mut DbConn, E) -> Result<T, E> + Send + 'static,
    T: Send + 'static,
    E: From<StorageError> + From<diesel::result::Error> + Send + 'static,
{
    let span = tracing::Span::current();
    Box::new(move |turn: Turn<'_>| {
        let conn = match turn {
            Turn::Run(conn) => conn,
            Turn::Refused(e) => return dropped(reply, e.into(), None),
        };
        span.in_scope(|| match in_savepoint(conn, step) {
            Attempt::Kept(v) => kept(v, reply),
            Attempt::Lost(e, step_error) => dropped(reply, step_error, Some(e)),
            Attempt::Failed(e) => match in_savepoint(conn, |c| recover(c, e)) {
                Attempt::Kept(v) => kept(v, reply),
                Attempt::Lost(e, step_error) => dropped(reply, step_error, Some(e)),
                Attempt::Failed(e) => dropped(reply, e, None),
            },
        })
    })
}

enum Attempt<T, E> {
    /// Done, and its writes are in the transaction.
    Kept(T),
    /// Failed, and rolled back to before it.
    Failed(E),
    /// The transaction itself is gone (the step's own error with it).
    Lost(StorageError, E),
}

const SAVEPOINT: &str = "SAVEPOINT step";
const RELEASE: &str = "RELEASE step";
const ROLLBACK_TO: &str = "ROLLBACK TO step; RELEASE step";

fn in_savepoint<T, E, F>(conn: &mut DbConn, f: F) -> Attempt<T, E>
where
    F: FnOnce(&mut DbConn) -> Result<T, E>,
    E: From<StorageError> + From<diesel::result::Error>,
{
    if let Err(e) = conn.batch_execute(SAVEPOINT) {
        let lost = StorageError::from(e);
        return Attempt::Lost(lost.duplicate(), lost.into());
    }
    let done = catch_unwind(AssertUnwindSafe(|| f(conn))).unwrap_or_else(|_| {
        Err(StorageError::Task("a write step panicked; it was rolled back".into()).into())
    });
    match done {
        Ok(v) => match conn.batch_execute(RELEASE) {
            Ok(()) => Attempt::Kept(v),
            Err(e) => {
                let lost = StorageError::from(e);
                Attempt::Lost(lost.duplicate(), lost.into())
            }
        },
        Err(step_error) => match conn.batch_execute(ROLLBACK_TO) {
            Ok(()) => Attempt::Failed(step_error),
            // The savepoint is gone with the transaction SQLite ended (a full disk).
            Err(e) => Attempt::Lost(e.into(), step_error),
        },
    }
}

fn kept<T, E>(v: T, reply: tokio::sync::oneshot::Sender<Result<T, E>>) -> Ran
where
    T: Send + 'static,
    E: From<StorageError> + Send + 'static,
{
    Ran {
        kept: true,
        lost_transaction: None,
        answer: Box::new(move |committed: Result<(), StorageError>| {
            // The step's caller may have gone (a dropped request): nobody to answer.
            let _ = reply.send(committed.map(|()| v).map_err(E::from));
        }),
    }
}

fn dropped<T, E>(
    reply: tokio::sync::oneshot::Sender<Result<T, E>>,
    error: E,
    lost_transaction: Option<StorageError>,
) -> Ran
where
    T: Send + 'static,
    E: Send + 'static,
{
    Ran {
        kept: false,
        lost_transaction,
        answer: Box::new(move |_| {
            let _ = reply.send(Err(error));
        }),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use diesel::prelude::*;

    use super::*;
    use crate::storage::scratch::Scratch;
    use crate::storage::Store;

    fn insert(conn: &mut DbConn, n: i64) -> Result<(), StorageError> {
        diesel::sql_query("INSERT INTO t (n) VALUES ($1)")
            .bind::<diesel::sql_types::BigInt, _>(n)
            .execute(conn)?;
        Ok(())
    }

    /// Steps submitted together share transactions; one that fails is rolled back alone (its
    /// `recover` may then write in its place), one that panics too, and every other one lands.
    #[tokio::test]
    async fn a_failed_or_panicking_step_rolls_back_alone() {
        let db = Scratch::sqlite();
        let store = Store::open(db.url(), 2, 10_000).unwrap();
        store
            .connection()
            .unwrap()
            .batch_execute("CREATE TABLE t (n INTEGER PRIMARY KEY)")
            .unwrap();
        let committer = Committer::start(
            store.pool.clone(),
            store.write_gate.clone().unwrap(),
            store.sqlite_page_cap.clone(),
        )
        .unwrap();
        let mut answers = Vec::new();
        for i in 0..60_i64 {
            let (reply, answer) = tokio::sync::oneshot::channel::<Result<i64, StorageError>>();
            let step = move |c: &mut DbConn| {
                insert(c, i)?;
                match i % 3 {
                    1 => Err(StorageError::Task(format!("step {i} refused"))),
                    _ if i == 7 => panic!("step {i} panics"),
                    _ => Ok(i),
                }
            };
            let recover = move |c: &mut DbConn, e: StorageError| {
                if i % 2 == 0 {
                    insert(c, 1000 + i)?;
                    Ok(-i)
                } else {
                    Err(e)
                }
            };
            committer.submit(job(step, recover, reply)).unwrap();
            answers.push(answer);
        }
        let mut want = Vec::new();
        for (i, answer) in (0..60_i64).zip(answers) {
            let got = answer.await.unwrap();
            match (i % 3, i) {
                (1, _) if i % 2 == 0 => {
                    assert_eq!(got.unwrap(), -i);
                    want.push(1000 + i);
                }
                (1, _) | (_, 7) => assert!(got.is_err(), "step {i}"),
                _ => {
                    assert_eq!(got.unwrap(), i);
                    want.push(i);
                }
            }
        }
        want.sort_unstable();
        let stored: Vec<i64> = diesel::sql_query("SELECT n FROM t ORDER BY n")
            .load::<N>(&mut **store.connection().unwrap())
            .unwrap()
            .into_iter()
            .map(|r| r.n)
            .collect();
        assert_eq!(stored, want);
    }

    #[derive(QueryableByName)]
    struct N {
        #[diesel(sql_type = diesel::sql_types::BigInt)]
        n: i64,
    }
}
