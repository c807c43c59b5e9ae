//! The audit trail, offline: the CLI's `audit verify [--checkpoint]`, and the benchmark's
//! seeding of a big valid log and its sampling of values to query with.

use std::path::Path;

use diesel::connection::SimpleConnection;
use diesel::prelude::*;

use super::OfflineDb;
use crate::audit::checkpoint::{self, CheckpointClaims, Kept, WitnessPolicy};
use crate::audit::note::{self, SignedNote};
use crate::audit::tree::NodeId;
use crate::audit::{chain, Leaves, VerifyReport};
use crate::storage::audit::{self as store, Head};
use crate::storage::notes;
use crate::storage::schema::{audit_events, audit_msisdn, work_orders};
use crate::storage::{DatabaseUrl, DbConn, StorageError};

pub use crate::storage::audit::AuditRow;

/// What `audit verify` found: the chain and tree, and the checkpoint's verdict if one was given.
#[derive(Debug, Clone)]
pub struct AuditVerdict {
    pub report: VerifyReport,
    /// `Err` says why the log does not agree with the checkpoint (or why it could not be read).
    pub checkpoint: Option<Result<CheckpointClaims, String>>,
}

/// One event's inclusion proof in the tree of a checkpoint (`audit prove`).
#[derive(Debug, Clone)]
pub struct Proven {
    pub event: chain::StoredEvent,
    pub leaf_hash: chain::Hash,
    pub size: u64,
    pub path: Vec<chain::Hash>,
}

/// The latest note kept, with every cosignature line kept for its size.
fn latest_cosigned_note(c: &mut DbConn) -> Result<Option<Kept>, StorageError> {
    let Some(row) = notes::latest_note(c)? else {
        return Ok(None);
    };
    let Ok(mut signed) = SignedNote::parse(&row.note) else {
        return Err(StorageError::Corrupt(format!(
            "the note kept at {} does not parse",
            row.size
        )));
    };
    for kept in notes::cosignatures_at(c, row.size)? {
        if let Ok(lines) = note::parse_signature_lines(&kept.line) {
            signed.add(lines);
        }
    }
    Ok(Some(Kept::Note(signed)))
}

/// A work order as the seeding writes it: its row as the service would have left it.
pub use crate::storage::work_orders::WorkOrderRow as SeedOrder;

/// One transaction's worth of seeding: events that extend the log (hashed and linked by the
/// caller with `audit::chain`), and the orders they finished.
#[derive(Debug, Clone, Default)]
pub struct SeedBatch {
    pub events: Vec<AuditRow>,
    pub orders: Vec<SeedOrder>,
}

/// An event's filterable values, for the benchmark's queries.
#[derive(Debug, Clone, Queryable)]
pub struct EventSample {
    pub work_order: Option<String>,
    pub actor: String,
    pub action: String,
}

/// What the seeded database looks like afterwards.
#[derive(Debug, Clone, Default)]
pub struct SeededSize {
    /// PostgreSQL's ANALYZE of the seeded tables, in seconds.
    pub analyse_secs: Option<f64>,
    /// The audit tables on disk (PostgreSQL), or the whole file with its WAL (SQLite).
    pub size_bytes: Option<u64>,
}

#[derive(Debug, QueryableByName)]
struct Count {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    n: i64,
}

/// Multi-row INSERTs run on each backend's own connection (not through MultiBackend).
macro_rules! insert_rows {
    ($c:expr, $batch:expr, $named:expr, $per:expr) => {{
        for chunk in $batch.events.chunks($per) {
            diesel::insert_into(audit_events::table)
                .values(chunk)
                .execute($c)?;
        }
        for chunk in $named.chunks($per) {
            diesel::insert_into(audit_msisdn::table)
                .values(chunk)
                .execute($c)?;
        }
        // 20 columns a row: keep each statement's parameters under SQLite's limit.
        for chunk in $batch.orders.chunks(($per / 2).clamp(1, 1000)) {
            diesel::insert_into(work_orders::table)
                .values(chunk)
                .execute($c)?;
        }
    }};
}

impl OfflineDb {
    /// Re-hashes the whole chain, rebuilds and compares the stored Merkle tree, and checks a
    /// checkpoint kept elsewhere against the intact prefix: one read snapshot.
    pub fn verify_audit(
        &self,
        checkpoint_file: Option<&Path>,
        policy: &WitnessPolicy,
    ) -> Result<AuditVerdict, StorageError> {
        let mut conn = self.store.connection()?;
        let mut beside = self.store.reader_beside();
        // Checking a checkpoint takes the tree head at its size from the leaves.
        let leaves = if checkpoint_file.is_some() || policy.quorum > 0 {
            Leaves::Keep
        } else {
            Leaves::Skip
        };
        conn.transaction(|c| {
            let report = crate::audit::verify_all(c, beside.as_mut(), leaves)?;
            let checkpoint = match checkpoint_file {
                Some(path) => Some(checkpoint::check_file(c, path, &report, policy)),
                // A quorum asked for without a file: the latest note this database keeps,
                // with every cosignature kept for it.
                None if policy.quorum > 0 => Some(match latest_cosigned_note(c)? {
                    Some(kept) => {
                        checkpoint::check_kept(c, &kept, &report, policy).map_err(|e| e.to_string())
                    }
                    None => Err("the database keeps no signed note to check".to_owned()),
                }),
                None => None,
            };
            Ok(AuditVerdict { report, checkpoint })
        })
    }

    /// `audit prove`: event `seq`, its leaf hash and its inclusion proof in the tree of a
    /// kept checkpoint, which must verify against this database (signature, quorum, head).
    pub fn prove(
        &self,
        seq: i64,
        kept: &Kept,
        policy: &WitnessPolicy,
    ) -> Result<Result<Proven, String>, StorageError> {
        let mut conn = self.store.connection()?;
        let mut beside = self.store.reader_beside();
        conn.transaction(|c| {
            let report = crate::audit::verify_all(c, beside.as_mut(), Leaves::Keep)?;
            let claims = match checkpoint::check_kept(c, kept, &report, policy) {
                Ok(claims) => claims,
                Err(e) => return Ok(Err(e.to_string())),
            };
            let size = claims.size;
            if seq < 1 || seq as u64 > size {
                return Ok(Err(format!(
                    "--seq must be between 1 and the checkpoint's size {size}"
                )));
            }
            let Some(row) = store::page(c, seq - 1, 1)?.into_iter().next() else {
                return Ok(Err(format!("event {seq} is not in the log")));
            };
            let leaves = &report.leaves[..size as usize];
            let index = (seq - 1) as usize;
            let Some(path) = chain::inclusion_proof(leaves, index) else {
                return Ok(Err(format!("no inclusion proof of {seq} at {size}")));
            };
            Ok(Ok(Proven {
                event: crate::audit::log::stored(row),
                leaf_hash: leaves[index],
                size,
                path,
            }))
        })
    }

    /// The log's size and last event hash (the seeding continues from there).
    pub fn audit_head(&self) -> Result<(i64, String), StorageError> {
        store::size_and_hash(&mut **self.store.connection()?)
    }

    /// A seeding tool, not a way to record events: appends the batch's events in multi-row
    /// INSERTs (far faster than one `audit::append` each), with what `append` keeps beside
    /// them (the `msisdn` index, the Merkle subtrees they complete, the head and its
    /// frontier), plus the batch's orders, in one transaction under the chain lock. The
    /// events must continue the log: the next `seq`, linked to the head's hash.
    pub fn seed_audit(
        &self,
        batch: &SeedBatch,
        rows_per_statement: usize,
    ) -> Result<(), StorageError> {
        let per = rows_per_statement.clamp(1, 3000);
        // Storage's own transaction, not a service step: nothing of the service runs here.
        let mut pooled = self.store.connection()?;
        let conn: &mut DbConn = &mut pooled;
        conn.transaction(|c| -> Result<(), StorageError> {
            store::lock_head(c)?;
            let head = store::head(c)?;
            let mut frontier = head.frontier()?;
            let mut prev = head.hash.clone();
            let mut nodes: Vec<(NodeId, chain::Hash)> = Vec::new();
            for (i, e) in batch.events.iter().enumerate() {
                let seq_ok = i64::try_from(i).map(|i| head.size + 1 + i) == Ok(e.seq);
                let leaf = chain::from_hex(&e.hash).filter(|_| seq_ok && e.prev_hash == prev);
                let Some(leaf) = leaf else {
                    return Err(StorageError::Corrupt(format!(
                        "seeding: event {} does not continue the log at {}",
                        e.seq, head.size
                    )));
                };
                nodes.extend(frontier.push(leaf));
                prev.clone_from(&e.hash);
            }
            // The service indexes events that name a number (see `audit::log::append`).
            let named: Vec<_> = batch
                .events
                .iter()
                .filter(|e| e.detail.contains("\"msisdn\""))
                .filter_map(|e| {
                    let v: serde_json::Value = serde_json::from_str(&e.detail).ok()?;
                    let m = v.get("msisdn")?.as_str()?.to_owned();
                    Some((audit_msisdn::msisdn.eq(m), audit_msisdn::seq.eq(e.seq)))
                })
                .collect();
            match c {
                DbConn::Pg(c) => insert_rows!(c, batch, named, per),
                DbConn::Sqlite(c) => insert_rows!(c, batch, named, per),
            }
            store::insert_nodes(c, &nodes)?;
            let size = head.size + i64::try_from(batch.events.len()).unwrap_or_default();
            store::set_head(
                c,
                &Head {
                    size,
                    hash: prev,
                    frontier: Some(frontier.encode()),
                },
            )
        })
    }

    /// After seeding: PostgreSQL's autovacuum would analyse tables this size soon, so do it
    /// now (query plans as production would see them); SQLite is left as the service leaves
    /// it. Reports the size on disk.
    pub fn finish_audit_seeding(&self, url: &str) -> Result<SeededSize, StorageError> {
        let mut conn = self.store.connection()?;
        match &mut **conn {
            DbConn::Pg(c) => {
                let t0 = std::time::Instant::now();
                c.batch_execute(
                    "ANALYZE audit_events; ANALYZE audit_tree_nodes; ANALYZE work_orders",
                )?;
                let analyse_secs = Some(t0.elapsed().as_secs_f64());
                let size_bytes = diesel::sql_query(
                    "SELECT (pg_total_relation_size('audit_events') \
                     + pg_total_relation_size('audit_tree_nodes'))::BIGINT AS n",
                )
                .get_result::<Count>(c)
                .ok()
                .and_then(|row| u64::try_from(row.n).ok());
                Ok(SeededSize {
                    analyse_secs,
                    size_bytes,
                })
            }
            DbConn::Sqlite(_) => {
                let size_bytes = match DatabaseUrl::parse(url) {
                    DatabaseUrl::Sqlite(p) => {
                        let len = |p: &Path| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0);
                        Some(len(&p) + len(&p.with_extension("db-wal")))
                    }
                    DatabaseUrl::Postgres(_) => None,
                };
                Ok(SeededSize {
                    analyse_secs: None,
                    size_bytes,
                })
            }
        }
    }

    /// The filterable values of the events at these `seq`s (those that exist).
    pub fn sample_events(&self, seqs: &[i64]) -> Result<Vec<EventSample>, StorageError> {
        Ok(audit_events::table
            .filter(audit_events::seq.eq_any(seqs))
            .select((
                audit_events::work_order,
                audit_events::actor,
                audit_events::action,
            ))
            .load(&mut **self.store.connection()?)?)
    }

    /// The mobile numbers of these orders (those that exist).
    pub fn order_msisdns(&self, ids: &[String]) -> Result<Vec<String>, StorageError> {
        Ok(work_orders::table
            .filter(work_orders::id.eq_any(ids))
            .select(work_orders::msisdn)
            .load(&mut **self.store.connection()?)?)
    }
}

/// The verifying walk over pages (four events each in unit tests) on one reader and on two.
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod walk_tests {
    use diesel::connection::SimpleConnection;
    use diesel::Connection;

    use super::SeedBatch;
    use crate::audit::chain::{self, EventFields};
    use crate::audit::{verify_all, Leaves, TreeCheck, VerifyReport};
    use crate::storage::audit::AuditRow;
    use crate::storage::offline::OfflineDb;
    use crate::storage::scratch::on_both_databases;
    use crate::storage::{Connector, DbConn};

    /// `n` valid events with the stored tree, as the seeding door writes them.
    /// Event `seq` of the seeded log, linked to `prev_hash`, with its leaf hash.
    fn event(seq: i64, prev_hash: &str) -> AuditRow {
        let (at, detail) = (
            format!("2026-12-05T08:00:{:02}Z", seq % 60),
            format!("{{\"n\":{seq}}}"),
        );
        let hash = chain::leaf_hash_hex(&EventFields {
            seq,
            at: &at,
            actor: "auditor.t",
            role: "auditor",
            action: "audit.exported",
            work_order: None,
            detail: &detail,
            prev_hash,
        });
        AuditRow {
            seq,
            at,
            actor: "auditor.t".into(),
            role: "auditor".into(),
            action: "audit.exported".into(),
            work_order: None,
            detail,
            prev_hash: prev_hash.to_owned(),
            hash,
        }
    }

    fn seeded(url: &str, n: i64) -> OfflineDb {
        let db = OfflineDb::open_migrated(url).unwrap();
        let mut prev = chain::GENESIS_PREV_HASH.to_owned();
        let events = (1..=n)
            .map(|seq| {
                let row = event(seq, &prev);
                prev.clone_from(&row.hash);
                row
            })
            .collect();
        let batch = SeedBatch {
            events,
            orders: Vec::new(),
        };
        db.seed_audit(&batch, 100).unwrap();
        db
    }

    /// Runs `sql` with the log's append-only guard lifted (tampering, as an intruder would).
    fn tamper(url: &str, sql: &str) {
        let mut conn = Connector::new(url, 1_000).connect().unwrap();
        let unguard = match conn {
            DbConn::Pg(_) => "ALTER TABLE audit_events DISABLE TRIGGER USER;",
            DbConn::Sqlite(_) => {
                "DROP TRIGGER audit_events_no_update; DROP TRIGGER audit_events_no_delete;"
            }
        };
        conn.batch_execute(&format!("{unguard} {sql}")).unwrap();
    }

    /// The walk with one reader and with two, which must agree.
    fn walked(url: &str, leaves: Leaves) -> VerifyReport {
        let connector = Connector::new(url, 1_000).read_only();
        let (mut one, mut two) = (connector.connect().unwrap(), connector.connect().unwrap());
        let alone = one.transaction(|c| verify_all(c, None, leaves)).unwrap();
        let beside = one
            .transaction(|c| verify_all(c, Some(&mut two), leaves))
            .unwrap();
        assert_eq!(alone, beside, "one reader and two disagree");
        beside
    }

    fn walks_pages_in_order_on_one_reader_or_two(url: &str) {
        // 23 events: six pages of four, the last one short.
        seeded(url, 23);
        let report = walked(url, Leaves::Keep);
        assert!(report.ok, "{report:?}");
        assert_eq!((report.checked, report.first_bad_seq), (23, None));
        assert_eq!(report.tree, TreeCheck::Agrees);
        assert_eq!(report.leaves.len(), 23);
        assert_eq!(
            report.head,
            chain::to_hex(&chain::tree_head(&report.leaves))
        );

        // An event inside a page the second reader takes (page 4: events 13–16).
        tamper(
            url,
            "UPDATE audit_events SET detail = '{\"n\":0}' WHERE seq = 14",
        );
        let report = walked(url, Leaves::Skip);
        assert!(!report.ok);
        assert_eq!((report.checked, report.first_bad_seq), (13, Some(14)));
        assert_eq!(report.tree, TreeCheck::Unchecked);
    }
    on_both_databases!(walks_pages_in_order_on_one_reader_or_two, "verify_pages");

    fn a_page_that_does_not_join_the_one_before_is_named(url: &str) {
        seeded(url, 23);
        // Event 9 opens page 3 and is intact on its own (its hash is its leaf hash), but it
        // links to a hash that is not event 8's: only joining it to the page before finds it.
        let forged = event(9, &"ab".repeat(32));
        tamper(
            url,
            &format!(
                "UPDATE audit_events SET prev_hash = '{}', hash = '{}' WHERE seq = 9",
                forged.prev_hash, forged.hash
            ),
        );
        let report = walked(url, Leaves::Skip);
        assert_eq!(
            (report.ok, report.checked, report.first_bad_seq),
            (false, 8, Some(9))
        );
    }
    on_both_databases!(
        a_page_that_does_not_join_the_one_before_is_named,
        "verify_join"
    );

    fn a_missing_page_is_named(url: &str) {
        seeded(url, 23);
        // A whole page gone (events 17–20): the walk stops there, at the first one missing.
        tamper(url, "DELETE FROM audit_events WHERE seq BETWEEN 17 AND 20");
        let report = walked(url, Leaves::Skip);
        assert_eq!(
            (report.ok, report.checked, report.first_bad_seq),
            (false, 16, Some(17))
        );
    }
    on_both_databases!(a_missing_page_is_named, "verify_gap");

    fn an_event_past_the_head_is_named(url: &str) {
        seeded(url, 8);
        // A copy of the last event appended as event 9, the head left as it was.
        tamper(
            url,
            "INSERT INTO audit_events (seq, at, actor, role, action, work_order, detail, prev_hash, hash) \
             SELECT 9, at, actor, role, action, work_order, detail, hash, hash FROM audit_events WHERE seq = 8",
        );
        let report = walked(url, Leaves::Skip);
        assert_eq!(
            (report.ok, report.checked, report.first_bad_seq),
            (false, 8, Some(9))
        );
    }
    on_both_databases!(an_event_past_the_head_is_named, "verify_tail");
}
