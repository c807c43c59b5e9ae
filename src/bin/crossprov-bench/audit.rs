//! A big, valid audit trail, quickly; then what auditors feel on it: filtered queries,
//! checkpoints and proofs, and full-chain verification.
//!
//! Seeding simulates the service's traffic: ~64 orders in flight at once, each walking a
//! realistic script (mostly open → claim → 3 uploads → result → complete; some rejected
//! results, mismatches, cancellations, releases, returns, expiries), interleaved with reads
//! that are audited (evidence.viewed, subscriber.viewed, audit.exported). Every event's
//! canonical encoding and leaf hash come from the library (`crossprov::audit::chain`); the
//! batches go in through the library's seeding door (`OfflineDb::seed_audit`: multi-row
//! INSERTs in large transactions, storing the Merkle subtrees and advancing the head and its
//! frontier in each), so the database is valid, and proves, after every commit. One
//! `work_orders` row per simulated order (no hall FK) makes the `msisdn` filter meaningful.

use std::collections::VecDeque;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::time::{Duration, Instant};

use chrono::{DateTime, NaiveDateTime, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reqwest::Method;
use serde_json::{json, Value};

use crossprov::audit::chain::{
    canonical_detail, from_hex, leaf_hash_hex, verify_consistency, verify_inclusion, EventFields,
    Hash,
};
use crossprov::audit::log::format_at;
use crossprov::storage::offline::audit::{AuditRow, SeedBatch, SeedOrder as OrderRow};
use crossprov::storage::offline::OfflineDb;

use crate::client::{Api, Stats};
use crate::env::{mib, r2, BenchEnv, PgDb, TempDir};
use crate::report::{self, Row};
use crate::{Backend, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Knobs {
    /// Queries per filter kind (work_order, actor, action, msisdn).
    #[arg(long, default_value_t = 200)]
    pub queries: usize,
    /// Concurrent auditors issuing them.
    #[arg(long, default_value_t = 4)]
    pub query_clients: usize,
    /// Skip GET /api/v1/audit/verify (it re-hashes the whole chain on the server).
    #[arg(long)]
    pub skip_api_verify: bool,
    /// Rounds of: one event appended (an export), then a checkpoint (signed afresh, as the
    /// size changed), an inclusion proof and a consistency proof at that size, checked.
    #[arg(long, default_value_t = 50)]
    pub proofs: usize,
}

#[derive(Debug, Clone, clap::Args)]
pub struct SeedOpts {
    /// The database to seed (sqlite://PATH or postgres://…); migrated first. Without it, a
    /// fresh one of --backend is made (and removed afterwards unless --keep).
    #[arg(long)]
    pub database_url: Option<String>,
    #[arg(long, value_enum, default_value = "sqlite")]
    pub backend: Backend,
    /// How many events to append.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
    /// Rows per multi-row INSERT.
    #[arg(long, default_value_t = 1000)]
    pub rows_per_statement: usize,
    /// Events per transaction.
    #[arg(long, default_value_t = 20_000)]
    pub rows_per_transaction: usize,
    /// Random seed of the simulated traffic.
    #[arg(long, default_value_t = 2026)]
    pub seed: u64,
    /// Then measure audit queries and verification on the seeded database.
    #[arg(long)]
    pub measure: bool,
    #[command(flatten)]
    pub knobs: Knobs,
}

#[derive(Debug, Clone, clap::Args)]
pub struct MeasureOpts {
    /// The (seeded) database: sqlite://PATH or postgres://…
    #[arg(long)]
    pub database_url: String,
    /// Informational; the backend is taken from the URL.
    #[arg(long, value_enum)]
    pub backend: Option<Backend>,
    #[command(flatten)]
    pub knobs: Knobs,
}

// ---------------------------------------------------------------------------------------------
// Seeding

/// One transaction's worth of rows, and the log's size after them.
struct Batch {
    rows: SeedBatch,
    size: i64,
}

#[derive(Debug, Clone, Copy)]
enum Step {
    Opened,
    Claimed,
    Upload(&'static str),
    Rejected,
    Submitted(&'static str),
    Completed,
    Failed,
    Cancelled,
    Released,
    Returned,
    Expired,
    Viewed,
}

struct SimHall {
    id: String,
    province: &'static str,
    city: &'static str,
    staff: Vec<String>,
    kid: String,
}

struct SimOrder {
    id: String,
    reference: String,
    msisdn: String,
    home: &'static str,
    clerk: String,
    hall: usize,
    staff: String,
    script: VecDeque<Step>,
    opened: bool,
    state: &'static str,
    version: i64,
    created_us: i64,
    updated_us: i64,
    claimed: bool,
    verification_id: Option<String>,
    evidence: Vec<(&'static str, String)>,
}

const CITIES: [(&str, &str); 10] = [
    ("37", "370100"),
    ("37", "370200"),
    ("32", "320100"),
    ("33", "330100"),
    ("44", "440100"),
    ("44", "440300"),
    ("51", "510100"),
    ("42", "420100"),
    ("35", "350100"),
    ("31", "310100"),
];
const HOMES: [&str; 8] = ["53", "11", "51", "61", "45", "52", "62", "65"];
const REQUIRED: [&str; 3] = ["id_front", "id_back", "live_photo"];
const IN_FLIGHT: usize = 64;

struct Sim {
    rng: StdRng,
    t_us: i64,
    seq: i64,
    prev: String,
    halls: Vec<SimHall>,
    clerks: Vec<(String, &'static str)>,
    auditors: Vec<String>,
    active: Vec<SimOrder>,
    order_no: u64,
    msisdn_base: u64,
    recent_numbers: VecDeque<String>,
}

fn set_state(o: &mut SimOrder, state: &'static str) {
    o.state = state;
    o.version += 1;
}

fn micros_to_naive(us: i64) -> NaiveDateTime {
    DateTime::<Utc>::from_timestamp_micros(us)
        .unwrap_or_default()
        .naive_utc()
}

fn at_text(us: i64) -> String {
    format_at(DateTime::<Utc>::from_timestamp_micros(us).unwrap_or_default())
}

impl Sim {
    fn new(seed: u64, start_seq: i64, prev: String, events: u64) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        // The simulated traffic ends a day ago (~2 s between events), so seeded references
        // never meet the references the live service hands out today.
        let now_us = Utc::now().timestamp_micros();
        let span = i64::try_from(events).unwrap_or(i64::MAX / 4_000_000) * 2_000_000;
        let t_us = now_us - 86_400_000_000 - span;
        let mut halls = Vec::new();
        for i in 0..60 {
            let (province, city) = CITIES[i % CITIES.len()];
            let id = uuid::Builder::from_random_bytes(rng.gen())
                .into_uuid()
                .to_string();
            let staff = (0..4).map(|k| format!("staff.h{i:02}.{k}")).collect();
            halls.push(SimHall {
                id,
                province,
                city,
                staff,
                kid: format!("hall-{i:02}-2026"),
            });
        }
        let clerks = HOMES
            .iter()
            .flat_map(|&p| (0..3).map(move |k| (format!("clerk.{p}.{k}"), p)))
            .collect();
        let auditors = (1..=3).map(|k| format!("auditor.{k}")).collect();
        let mut sim = Self {
            msisdn_base: u64::from(rng.gen::<u32>() % 400_000_000),
            rng,
            t_us,
            seq: start_seq,
            prev,
            halls,
            clerks,
            auditors,
            active: Vec::new(),
            order_no: 0,
            recent_numbers: VecDeque::new(),
        };
        for _ in 0..IN_FLIGHT {
            let o = sim.new_order();
            sim.active.push(o);
        }
        sim
    }

    fn hex32(&mut self) -> String {
        hex::encode(self.rng.gen::<[u8; 32]>())
    }

    fn uuid(&mut self) -> String {
        uuid::Builder::from_random_bytes(self.rng.gen())
            .into_uuid()
            .to_string()
    }

    fn new_order(&mut self) -> SimOrder {
        use Step::*;
        self.order_no += 1;
        let n = self.order_no;
        let ups = || REQUIRED.iter().map(|k| Upload(k));
        let r: f64 = self.rng.gen();
        let mut script: Vec<Step> = vec![Opened];
        if r < 0.78 {
            script.extend(
                [Claimed]
                    .into_iter()
                    .chain(ups())
                    .chain([Submitted("match"), Completed]),
            );
        } else if r < 0.84 {
            script.extend([Claimed].into_iter().chain(ups()).chain([
                Rejected,
                Submitted("match"),
                Completed,
            ]));
        } else if r < 0.89 {
            script.extend(
                [Claimed]
                    .into_iter()
                    .chain(ups())
                    .chain([Submitted("mismatch"), Failed]),
            );
        } else if r < 0.93 {
            script.push(Cancelled);
        } else if r < 0.96 {
            script.extend(
                [Claimed, Released, Claimed]
                    .into_iter()
                    .chain(ups())
                    .chain([Submitted("match"), Returned, Submitted("match"), Completed]),
            );
        } else if r < 0.98 {
            script.push(Expired);
        } else {
            script.extend([Claimed].into_iter().chain(ups()).chain([
                Submitted("match"),
                Completed,
                Viewed,
                Viewed,
            ]));
        }
        let (clerk, home) = self.clerks[self.rng.gen_range(0..self.clerks.len())].clone();
        let hall = self.rng.gen_range(0..self.halls.len());
        let staff = self.halls[hall].staff[self.rng.gen_range(0..4)].clone();
        let day = at_text(self.t_us)[..10].replace('-', "");
        SimOrder {
            id: uuid::Builder::from_unix_timestamp_millis(
                u64::try_from(self.t_us / 1000).unwrap_or(0),
                &self.rng.gen::<[u8; 10]>(),
            )
            .into_uuid()
            .to_string(),
            reference: format!("{home}-{day}-{:06}", n % 1_000_000),
            msisdn: format!("15{:09}", (self.msisdn_base + n) % 1_000_000_000),
            home,
            clerk,
            hall,
            staff,
            script: script.into(),
            opened: false,
            state: "open",
            version: 1,
            created_us: self.t_us,
            updated_us: self.t_us,
            claimed: false,
            verification_id: None,
            evidence: Vec::new(),
        }
    }

    fn emit(
        &mut self,
        actor: &str,
        role: &str,
        action: &str,
        wo: Option<&str>,
        detail: &Value,
    ) -> AuditRow {
        self.t_us += self.rng.gen_range(1..4_000_000);
        self.seq += 1;
        let at = at_text(self.t_us);
        let detail = canonical_detail(detail);
        let hash = leaf_hash_hex(&EventFields {
            seq: self.seq,
            at: &at,
            actor,
            role,
            action,
            work_order: wo,
            detail: &detail,
            prev_hash: &self.prev,
        });
        AuditRow {
            seq: self.seq,
            at,
            actor: actor.to_owned(),
            role: role.to_owned(),
            action: action.to_owned(),
            work_order: wo.map(str::to_owned),
            detail,
            prev_hash: std::mem::replace(&mut self.prev, hash.clone()),
            hash,
        }
    }

    /// The next event of the simulated traffic; any order it finishes goes to `orders`.
    fn next(&mut self, orders: &mut Vec<OrderRow>) -> AuditRow {
        let r: f64 = self.rng.gen();
        if r < 0.03 && !self.recent_numbers.is_empty() {
            let m = self.recent_numbers[self.rng.gen_range(0..self.recent_numbers.len())].clone();
            let (clerk, _) = self.clerks[self.rng.gen_range(0..self.clerks.len())].clone();
            return self.emit(
                &clerk,
                "clerk",
                "subscriber.viewed",
                None,
                &json!({ "msisdn": m }),
            );
        }
        if r < 0.0315 {
            let auditor = self.auditors[self.rng.gen_range(0..self.auditors.len())].clone();
            let actor = self.clerks[self.rng.gen_range(0..self.clerks.len())]
                .0
                .clone();
            return self.emit(
                &auditor,
                "auditor",
                "audit.exported",
                None,
                &json!({ "format": "csv", "filters": { "actor": actor } }),
            );
        }
        let i = self.rng.gen_range(0..self.active.len());
        let step = self.active[i].script.pop_front().unwrap_or(Step::Viewed);
        let row = self.apply(i, step);
        if self.active[i].script.is_empty() {
            let fresh = self.new_order();
            let done = std::mem::replace(&mut self.active[i], fresh);
            self.recent_numbers.push_back(done.msisdn.clone());
            if self.recent_numbers.len() > 2000 {
                self.recent_numbers.pop_front();
            }
            orders.push(self.order_row(&done));
        }
        row
    }

    fn apply(&mut self, i: usize, step: Step) -> AuditRow {
        let (id, clerk, staff, hall) = {
            let o = &self.active[i];
            (o.id.clone(), o.clerk.clone(), o.staff.clone(), o.hall)
        };
        let hall_id = self.halls[hall].id.clone();
        let wo = Some(id.as_str());
        let row = match step {
            Step::Opened => {
                let o = &self.active[i];
                let h = &self.halls[hall];
                let detail = json!({
                    "reference": o.reference, "target_province": h.province, "target_city": h.city,
                    "target_hall_id": hall_id, "expected_name": "张*", "reason": "用户长期在外省居住",
                    "due_at": at_text(self.t_us + 86_400_000_000), "deadline_at": at_text(self.t_us + 3 * 86_400_000_000),
                });
                let row = self.emit(&clerk, "clerk", "work_order.opened", wo, &detail);
                let t = self.t_us;
                let o = &mut self.active[i];
                o.opened = true;
                o.created_us = t;
                row
            }
            Step::Claimed => {
                let row = self.emit(
                    &staff,
                    "hall_staff",
                    "work_order.claimed",
                    wo,
                    &json!({ "hall_id": hall_id }),
                );
                let o = &mut self.active[i];
                o.claimed = true;
                set_state(o, "claimed");
                row
            }
            Step::Upload(kind) => {
                let sha = self.hex32();
                let size = self.rng.gen_range(120_000..900_000);
                let detail = json!({ "kind": kind, "sha256": sha, "size": size, "content_type": "image/jpeg", "again": false });
                let row = self.emit(&staff, "hall_staff", "evidence.uploaded", wo, &detail);
                self.active[i].evidence.push((kind, sha));
                row
            }
            Step::Rejected => {
                let detail = json!({ "code": "stale_result", "field": "iat", "result_sha256": self.hex32() });
                self.emit(
                    &staff,
                    "hall_staff",
                    "work_order.result_rejected",
                    wo,
                    &detail,
                )
            }
            Step::Submitted(outcome) => {
                let vid = self.uuid();
                let detail = json!({
                    "verification_id": vid, "outcome": outcome, "kid": self.halls[hall].kid,
                    "jti": self.uuid(), "result_sha256": self.hex32(),
                });
                let row = self.emit(
                    &staff,
                    "hall_staff",
                    "work_order.result_submitted",
                    wo,
                    &detail,
                );
                let o = &mut self.active[i];
                o.verification_id = Some(vid);
                set_state(o, "submitted");
                row
            }
            Step::Completed => {
                let detail = json!({ "verification_id": self.active[i].verification_id, "outcome": "match" });
                let row = self.emit(&clerk, "clerk", "work_order.completed", wo, &detail);
                set_state(&mut self.active[i], "completed");
                row
            }
            Step::Failed => {
                let detail = json!({ "verification_id": self.active[i].verification_id, "reason": "证件与本人不符" });
                let row = self.emit(&clerk, "clerk", "work_order.failed", wo, &detail);
                set_state(&mut self.active[i], "failed");
                row
            }
            Step::Cancelled => {
                let detail = json!({ "from": self.active[i].state, "reason": "用户撤回申请" });
                let row = self.emit(&clerk, "clerk", "work_order.cancelled", wo, &detail);
                set_state(&mut self.active[i], "cancelled");
                row
            }
            Step::Released => {
                let detail = json!({ "hall_id": hall_id, "reason": "用户未到厅" });
                let row = self.emit(&staff, "hall_staff", "work_order.released", wo, &detail);
                set_state(&mut self.active[i], "open");
                row
            }
            Step::Returned => {
                let detail = json!({ "verification_id": self.active[i].verification_id, "reason": "照片不清晰" });
                let row = self.emit(&clerk, "clerk", "work_order.returned", wo, &detail);
                let o = &mut self.active[i];
                o.verification_id = None;
                set_state(o, "claimed");
                row
            }
            Step::Expired => {
                let detail = json!({
                    "from": self.active[i].state,
                    "deadline_at": at_text(self.active[i].created_us + 3 * 86_400_000_000),
                });
                let row = self.emit("system", "system", "work_order.expired", wo, &detail);
                set_state(&mut self.active[i], "expired");
                row
            }
            Step::Viewed => {
                let auditor = self.auditors[self.rng.gen_range(0..self.auditors.len())].clone();
                let (kind, sha) = self.active[i]
                    .evidence
                    .first()
                    .cloned()
                    .unwrap_or(("id_front", String::new()));
                self.emit(
                    &auditor,
                    "auditor",
                    "evidence.viewed",
                    wo,
                    &json!({ "kind": kind, "sha256": sha }),
                )
            }
        };
        self.active[i].updated_us = self.t_us;
        row
    }

    fn order_row(&self, o: &SimOrder) -> OrderRow {
        let h = &self.halls[o.hall];
        OrderRow {
            id: o.id.clone(),
            reference: o.reference.clone(),
            msisdn: o.msisdn.clone(),
            home_province: o.home.to_owned(),
            target_province: h.province.to_owned(),
            // The simulated halls are not rows of `halls`; the order keeps its city only.
            target_city: h.city.to_owned(),
            target_hall_id: None,
            state: o.state.to_owned(),
            version: o.version,
            reason: "用户长期在外省居住".into(),
            // Seeded without a sealed name (no KEK here): only the mask views show.
            expected_name: None,
            expected_name_masked: Some("张*".into()),
            expected_name_index: None,
            opened_by: o.clerk.clone(),
            claimed_by: o.claimed.then(|| o.staff.clone()),
            claimed_hall_id: o.claimed.then(|| h.id.clone()),
            due_at: micros_to_naive(o.created_us + 86_400_000_000),
            deadline_at: micros_to_naive(o.created_us + 3 * 86_400_000_000),
            created_at: micros_to_naive(o.created_us),
            updated_at: micros_to_naive(o.updated_us),
            verification_id: o.verification_id.clone(),
            receipt: None,
            suspend_at: None,
            remind_at: Some(micros_to_naive(o.created_us + 72_000_000_000)),
            // Seeded history: the timers of these orders are not the benchmark's concern.
            reminded_at: Some(micros_to_naive(o.created_us + 72_000_000_000)),
            escalated_at: Some(micros_to_naive(o.created_us + 86_400_000_000)),
            flagged: false,
            needs_second_approval: false,
            approved_by: None,
            claimed_at: None,
        }
    }

    /// Orders still in flight at the end, as they stand.
    fn unfinished(&self) -> Vec<OrderRow> {
        self.active
            .iter()
            .filter(|o| o.opened)
            .map(|o| self.order_row(o))
            .collect()
    }
}

/// Produces batches until `events` are out; returns the seconds spent producing.
fn generate(mut sim: Sim, events: u64, per_tx: usize, tx: SyncSender<Batch>) -> f64 {
    let mut busy = Duration::ZERO;
    let mut left = events;
    while left > 0 {
        let t0 = Instant::now();
        let n = usize::try_from(left).unwrap_or(usize::MAX).min(per_tx);
        let mut rows = SeedBatch {
            events: Vec::with_capacity(n),
            orders: Vec::new(),
        };
        for _ in 0..n {
            let row = sim.next(&mut rows.orders);
            rows.events.push(row);
        }
        left -= n as u64;
        if left == 0 {
            rows.orders.extend(sim.unfinished());
        }
        let batch = Batch {
            rows,
            size: sim.seq,
        };
        busy += t0.elapsed();
        if tx.send(batch).is_err() {
            break;
        }
    }
    busy.as_secs_f64()
}

pub struct Seeded {
    pub json: Value,
    pub text: String,
}

pub fn seed(url: &str, o: &SeedOpts) -> Res<Seeded> {
    let shown = crossprov::storage::pg_url::redacted(url);
    let db = OfflineDb::open_migrated(url).map_err(|e| format!("{shown}: {e}"))?;
    let (head_size, head_hash) = db.audit_head().map_err(|e| e.to_string())?;
    eprintln!(
        "seed-audit: {} events after seq {} into {shown} …",
        o.events, head_size
    );
    let sim = Sim::new(o.seed, head_size, head_hash, o.events);
    let per_stmt = o.rows_per_statement.clamp(1, 3000);
    let per_tx = o.rows_per_transaction.max(per_stmt);
    let started = Instant::now();
    let (tx, rx): (SyncSender<Batch>, Receiver<Batch>) = sync_channel(4);
    let events = o.events;
    let mut insert_busy = Duration::ZERO;
    let mut orders = 0usize;
    let mut transactions = 0usize;
    let mut last_report = Instant::now();
    let gen_secs = std::thread::scope(|s| -> Res<f64> {
        let producer = s.spawn(move || generate(sim, events, per_tx, tx));
        for batch in rx.iter() {
            let t0 = Instant::now();
            db.seed_audit(&batch.rows, per_stmt)
                .map_err(|e| format!("inserting events up to seq {}: {e}", batch.size))?;
            insert_busy += t0.elapsed();
            orders += batch.rows.orders.len();
            transactions += 1;
            if last_report.elapsed() > Duration::from_secs(10) {
                let n = batch.size - head_size;
                eprintln!(
                    "seed-audit: {n} events ({:.0}/s)",
                    n as f64 / started.elapsed().as_secs_f64()
                );
                last_report = Instant::now();
            }
        }
        producer
            .join()
            .map_err(|_| "the generator thread panicked".to_string())
    })?;
    let secs = started.elapsed().as_secs_f64();
    let size = db.finish_audit_seeding(url).map_err(|e| e.to_string())?;
    let (analyse_secs, size_bytes) = (size.analyse_secs, size.size_bytes);
    let per_s = events as f64 / secs.max(1e-9);
    let text = format!(
        "seed-audit: {events} events (seq {}..{}) and {orders} work orders in {secs:.1} s = {per_s:.0} events/s \
         ({transactions} transactions of ≤{per_tx} events, {per_stmt} rows per INSERT; generating+hashing {gen_secs:.1} s \
         on its own thread, inserting {:.1} s){}{}\n",
        head_size + 1,
        head_size + i64::try_from(events).unwrap_or(0),
        insert_busy.as_secs_f64(),
        analyse_secs
            .map(|a| format!("; ANALYZE {a:.1} s"))
            .unwrap_or_default(),
        size_bytes
            .map(|b| format!("; size on disk {}", mib(Some(b / 1024))))
            .unwrap_or_default(),
    );
    Ok(Seeded {
        json: json!({
            "database": url,
            "events": events,
            "first_seq": head_size + 1,
            "orders": orders,
            "seconds": r2(secs),
            "events_per_s": r2(per_s),
            "generate_hash_s": r2(gen_secs),
            "insert_s": r2(insert_busy.as_secs_f64()),
            "transactions": transactions,
            "rows_per_statement": per_stmt,
            "rows_per_transaction": per_tx,
            "analyze_s": analyse_secs.map(r2),
            "size_bytes": size_bytes,
        }),
        text,
    })
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// Values that occur in the log, to filter by.
struct Targets {
    work_orders: Vec<String>,
    actors: Vec<String>,
    actions: Vec<String>,
    msisdns: Vec<String>,
    size: i64,
}

fn sample_targets(url: &str, want: usize) -> Res<Targets> {
    let db = OfflineDb::open_existing(url).map_err(|e| e.to_string())?;
    let (size, _) = db.audit_head().map_err(|e| e.to_string())?;
    let mut rng = StdRng::seed_from_u64(7);
    let seqs: Vec<i64> = (0..want * 2)
        .map(|_| rng.gen_range(1..=size.max(1)))
        .collect();
    let rows: Vec<(Option<String>, String, String)> = db
        .sample_events(&seqs)
        .map_err(|e| format!("sampling events: {e}"))?
        .into_iter()
        .map(|e| (e.work_order, e.actor, e.action))
        .collect();
    let mut work_orders: Vec<String> = rows.iter().filter_map(|r| r.0.clone()).collect();
    work_orders.dedup();
    work_orders.truncate(want);
    let mut actors: Vec<String> = rows.iter().map(|r| r.1.clone()).collect();
    actors.sort();
    actors.dedup();
    let mut actions: Vec<String> = rows.iter().map(|r| r.2.clone()).collect();
    actions.sort();
    actions.dedup();
    let msisdns = db
        .order_msisdns(&work_orders)
        .map_err(|e| format!("sampling numbers: {e}"))?;
    Ok(Targets {
        work_orders,
        actors,
        actions,
        msisdns,
        size,
    })
}

const BY_WORK_ORDER: &str = "GET /api/v1/audit/events?work_order=";
const BY_ACTOR: &str = "GET /api/v1/audit/events?actor=";
const BY_ACTION: &str = "GET /api/v1/audit/events?action=";
const BY_MSISDN: &str = "GET /api/v1/audit/events?msisdn=";
const API_VERIFY: &str = "GET /api/v1/audit/verify";
const CHECKPOINT: &str = "GET /api/v1/audit/checkpoint (new size)";
const INCLUSION: &str = "GET /api/v1/audit/proof/inclusion";
const CONSISTENCY: &str = "GET /api/v1/audit/proof/consistency";
const GROW: &str = "GET /api/v1/audit/events?format=ndjson (appends)";

/// The checkpoint's signed size and head (the signature is the service's business here;
/// the tests check it).
fn checkpoint_claims(reply: &Value) -> Option<(u64, Hash)> {
    use base64::Engine;
    let jws = reply["checkpoint"].as_str()?;
    let payload = jws.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    Some((
        claims["size"].as_u64()?,
        from_hex(claims["head"].as_str()?)?,
    ))
}

fn hashes(v: &Value) -> Option<Vec<Hash>> {
    v.as_array()?
        .iter()
        .map(|h| from_hex(h.as_str()?))
        .collect()
}

/// Rounds of: grow the log by one event, take a checkpoint (a fresh signature over the head
/// at the new size), then an inclusion and a consistency proof at that size, each checked
/// against the checkpoint's head. Returns what did not verify.
async fn checkpoints_and_proofs(
    api: &Api,
    token: &str,
    rounds: usize,
    stats: &mut Stats,
) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(11);
    let mut wrong = Vec::new();
    let mut previous: Option<(u64, Hash)> = None;
    for round in 0..rounds {
        // An export is audited: one event, so the next checkpoint has a new size.
        let grow = format!("/api/v1/audit/events?format=ndjson&actor=bench.nobody.{round}");
        api.call(stats, GROW, false, Method::GET, &grow, token, None)
            .await;
        let Some(cp) = api
            .json(
                stats,
                CHECKPOINT,
                false,
                Method::GET,
                "/api/v1/audit/checkpoint",
                token,
                None,
            )
            .await
        else {
            continue;
        };
        let Some((size, head)) = checkpoint_claims(&cp) else {
            wrong.push(format!("checkpoint {round}: unreadable {cp}"));
            continue;
        };
        let seq = rng.gen_range(1..=size);
        let path = format!("/api/v1/audit/proof/inclusion?seq={seq}&size={size}");
        if let Some(p) = api
            .json(stats, INCLUSION, false, Method::GET, &path, token, None)
            .await
        {
            let leaf = p["leaf_hash"].as_str().and_then(from_hex);
            let ok = matches!((leaf, hashes(&p["path"])), (Some(leaf), Some(path))
                if verify_inclusion(&leaf, seq - 1, size, &path, &head));
            if !ok {
                wrong.push(format!("inclusion of {seq} at {size} does not verify"));
            }
        }
        // From a random earlier size, or from the previous checkpoint (whose head is known).
        let (from, from_head) = match previous {
            Some((s, h)) if round % 2 == 1 => (s, Some(h)),
            _ => (rng.gen_range(1..=size), None),
        };
        let path = format!("/api/v1/audit/proof/consistency?from={from}&to={size}");
        if let Some(p) = api
            .json(stats, CONSISTENCY, false, Method::GET, &path, token, None)
            .await
        {
            let verifies = match (from_head, hashes(&p["path"])) {
                (Some(old), Some(path)) => verify_consistency(from, size, &old, &head, &path),
                (None, Some(_)) => true,
                (_, None) => false,
            };
            if !verifies {
                wrong.push(format!("consistency {from}→{size} does not verify"));
            }
        }
        previous = Some((size, head));
    }
    wrong
}

pub struct Measured {
    pub json: Value,
    pub text: String,
    pub problems: Vec<String>,
}

pub fn measure(url: &str, k: &Knobs, args: &ServerArgs) -> Res<Measured> {
    let env = BenchEnv::existing(url, args, "audit")?;
    let targets = sample_targets(url, k.queries.clamp(1, 500))?;
    eprintln!(
        "audit: {} events; crossprov audit verify (offline) …",
        targets.size
    );
    let (offline, offline_secs) = env.verify_chain()?;
    let auditor = format!("bench.auditor.{}", crate::env::short_id());
    env.user_add(&auditor, "auditor", &[])?;
    let mut server = env.start_server(&[])?;
    let api = Api::new(&server.base, args.idempotency_keys)?;
    let pid = server.pid;
    let kinds: [(&'static str, &'static str, &Vec<String>); 4] = [
        (BY_WORK_ORDER, "work_order", &targets.work_orders),
        (BY_ACTOR, "actor", &targets.actors),
        (BY_ACTION, "action", &targets.actions),
        (BY_MSISDN, "msisdn", &targets.msisdns),
    ];
    let (stats, hits, walls, api_verify, baseline, unverified) = actix_web::rt::System::new()
        .block_on(async {
            server.wait_ready(&api, Duration::from_secs(120)).await?;
            let token = api.login(&auditor).await?;
            let baseline = crate::env::proc_status_kib(pid, "VmRSS");
            let mut stats = Stats::default();
            let mut hits = Vec::new();
            let mut walls: Vec<(&'static str, f64)> = Vec::new();
            for (label, param, values) in kinds {
                if values.is_empty() {
                    stats.err(label, false, format!("no {param} values to query with"));
                    hits.push((label, 0.0));
                    continue;
                }
                eprintln!("audit: {} queries by {param} …", k.queries);
                let clients = k.query_clients.max(1);
                let phase = Instant::now();
                let per_client = futures_util::future::join_all((0..clients).map(|c| {
                    let api = &api;
                    let token = &token;
                    async move {
                        let mut st = Stats::default();
                        let mut items = 0usize;
                        let mut i = c;
                        while i < k.queries {
                            let v = &values[i % values.len()];
                            let q = serde_urlencoded::to_string([(param, v.as_str())])
                                .unwrap_or_default();
                            let path = format!("/api/v1/audit/events?{q}");
                            if let Some(page) = api
                                .json(&mut st, label, false, Method::GET, &path, token, None)
                                .await
                            {
                                items += page["items"].as_array().map(Vec::len).unwrap_or(0);
                            }
                            i += clients;
                        }
                        (st, items)
                    }
                }))
                .await;
                let mut total_items = 0;
                for (st, items) in per_client {
                    stats.merge(st);
                    total_items += items;
                }
                walls.push((label, phase.elapsed().as_secs_f64()));
                hits.push((label, total_items as f64 / k.queries.max(1) as f64));
            }
            eprintln!("audit: {} rounds of checkpoint and proofs …", k.proofs);
            let unverified = checkpoints_and_proofs(&api, &token, k.proofs, &mut stats).await;
            let api_verify = if k.skip_api_verify {
                None
            } else {
                eprintln!("audit: GET /api/v1/audit/verify …");
                let t0 = Instant::now();
                let r = api
                    .send(
                        Method::GET,
                        "/api/v1/audit/verify",
                        Some(&token),
                        None,
                        Some(Duration::from_secs(3600)),
                    )
                    .await;
                let took = t0.elapsed();
                Some(match r {
                    Ok((200, body)) => {
                        stats.ok(API_VERIFY, false, took, body.len() as u64);
                        serde_json::from_slice::<Value>(&body).unwrap_or_default()
                    }
                    Ok((status, body)) => {
                        stats.err(
                            API_VERIFY,
                            false,
                            format!("{status} {}", String::from_utf8_lossy(&body)),
                        );
                        Value::Null
                    }
                    Err(e) => {
                        stats.err(API_VERIFY, false, e);
                        Value::Null
                    }
                })
            };
            Ok::<_, String>((stats, hits, walls, api_verify, baseline, unverified))
        })?;
    let peak = server.status_kib("VmHWM");
    server.stop();

    let mut rows = Vec::new();
    for e in &stats.eps {
        // req/s: the phase's requests over its wall time (all its auditors together).
        let busy = e.lat_us.iter().map(|&u| f64::from(u)).sum::<f64>() / 1e6;
        let wall = walls
            .iter()
            .find(|(l, _)| *l == e.label)
            .map(|(_, w)| *w)
            .unwrap_or(busy);
        rows.push(Row::new(e.label, &e.lat_us, e.errors, wall, None));
    }
    let api_verify_secs = stats
        .eps
        .iter()
        .find(|e| e.label == API_VERIFY)
        .and_then(|e| e.lat_us.first())
        .map(|&u| f64::from(u) / 1e6);
    let mut t = format!(
        "crossprov-bench audit — {} ({} events), {} queries per filter from {} concurrent auditors\n\n",
        env.backend.as_str(),
        targets.size,
        k.queries,
        k.query_clients
    );
    t.push_str(&report::table(&rows));
    t.push_str(&report::errors_text(&stats));
    t.push_str("mean events returned per query (limit 100): ");
    t.push_str(
        &hits
            .iter()
            .map(|(l, h)| {
                format!(
                    "{}… {h:.1}",
                    l.trim_start_matches("GET /api/v1/audit/events?")
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    );
    t.push('\n');
    t.push_str(&format!(
        "crossprov audit verify (offline CLI): {} — {} events in {offline_secs:.2} s = {:.0} events/s\n",
        if offline.ok { "intact" } else { "BROKEN" },
        offline.checked,
        offline.checked as f64 / offline_secs.max(1e-9)
    ));
    if let (Some(v), Some(s)) = (&api_verify, api_verify_secs) {
        let checked = v["checked"].as_u64().unwrap_or(0);
        t.push_str(&format!(
            "GET /api/v1/audit/verify: ok={} — {checked} events in {s:.2} s = {:.0} events/s\n",
            v["ok"],
            checked as f64 / s.max(1e-9)
        ));
    }
    t.push_str(&format!(
        "server: peak RSS (VmHWM) {}, VmRSS after start {}\n",
        mib(peak),
        mib(baseline)
    ));
    let mut problems = unverified;
    if stats.errors > 0 {
        problems.push(format!(
            "audit {}: {} errors, first: {}",
            env.backend.as_str(),
            stats.errors,
            stats.first_errors.first().cloned().unwrap_or_default()
        ));
    }
    if !offline.ok {
        problems.push(format!(
            "audit verify (offline) says the chain is broken: {}",
            offline.raw
        ));
    }
    if let Some(v) = &api_verify {
        if v["ok"] != Value::Bool(true) {
            problems.push(format!("GET /api/v1/audit/verify: {v}"));
        }
    }
    for (label, h) in &hits {
        if *label != BY_MSISDN && *h <= 0.0 {
            problems.push(format!(
                "{label}: no events returned; the filter measured nothing"
            ));
        }
    }
    let json = json!({
        "backend": env.backend.as_str(),
        "events": targets.size,
        "queries_per_filter": k.queries,
        "query_clients": k.query_clients,
        "endpoints": rows.iter().map(|r| r.json()).collect::<Vec<_>>(),
        "mean_items": hits.iter().map(|(l, h)| (l.to_string(), json!(r2(*h)))).collect::<serde_json::Map<_, _>>(),
        "errors": stats.errors,
        "first_errors": stats.first_errors,
        "offline_verify": {
            "ok": offline.ok, "checked": offline.checked, "seconds": r2(offline_secs),
            "events_per_s": r2(offline.checked as f64 / offline_secs.max(1e-9)), "report": offline.raw,
        },
        "api_verify": api_verify.as_ref().map(|v| json!({
            "report": v, "seconds": api_verify_secs.map(r2),
            "events_per_s": api_verify_secs.map(|s| r2(v["checked"].as_u64().unwrap_or(0) as f64 / s.max(1e-9))),
        })),
        "server": { "peak_rss_kib": peak, "rss_after_start_kib": baseline },
    });
    Ok(Measured {
        json,
        text: t,
        problems,
    })
}

pub fn run_measure(o: &MeasureOpts, args: &ServerArgs) -> Res<Outcome> {
    let m = measure(&o.database_url, &o.knobs, args)?;
    Ok(Outcome {
        json: json!({ "mode": "audit", "measure": m.json }),
        table: m.text,
        problems: m.problems,
    })
}

pub fn run_seed(o: &SeedOpts, args: &ServerArgs) -> Res<Outcome> {
    // Holders keep a database made here alive until the end of the run.
    let mut _dir = None;
    let mut _pg = None;
    let url = match &o.database_url {
        Some(u) => u.clone(),
        None => match o.backend {
            Backend::Sqlite => {
                let d = TempDir::new("audit", args.keep)?;
                let u = format!("sqlite://{}", d.path().join("audit.db").display());
                _dir = Some(d);
                u
            }
            Backend::Postgres => {
                let p = PgDb::create("audit", args.keep)?;
                let u = p.url.clone();
                _pg = Some(p);
                u
            }
        },
    };
    let seeded = seed(&url, o)?;
    let mut table = seeded.text.clone();
    let mut problems = Vec::new();
    let measured = if o.measure {
        let m = measure(&url, &o.knobs, args)?;
        table.push('\n');
        table.push_str(&m.text);
        problems = m.problems;
        Some(m.json)
    } else {
        None
    };
    Ok(Outcome {
        json: json!({ "mode": "seed-audit", "seed": seeded.json, "measure": measured }),
        table,
        problems,
    })
}
