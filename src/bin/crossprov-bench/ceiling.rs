//! The database's own ceiling on this machine: how many small durable write transactions per
//! second it commits with N concurrent clients, with nothing of the service in the way.
//!
//! - PostgreSQL: `pgbench -i -s K` on a scratch database, then `pgbench -c N -j 2 -T S`
//!   (TPC-B-like: 3 UPDATEs, 1 SELECT, 1 INSERT per transaction). At scale 1 every transaction
//!   updates the one `pgbench_branches` row, much as every service write used to update the one
//!   `audit_head` row; at scale 10 there are ten branches, so writers mostly do not queue on
//!   one row, and that is the ceiling the targets are held against (`PG_TARGET_SCALE`).
//! - SQLite: N threads, each with its own connection prepared like the service's (WAL,
//!   `synchronous=FULL`, `busy_timeout`), each transaction `BEGIN IMMEDIATE`; update one head
//!   row; insert one row; `COMMIT`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::Connection;
use serde_json::{json, Value};

use crate::env::{find_pgbench, r2, PgDb, TempDir};
use crate::report::{self, Row};
use crate::{Backend, Outcome, Res};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    #[arg(long, value_enum, default_value = "postgres")]
    pub backend: Backend,
    /// Concurrent clients (pgbench -c, or SQLite writer threads).
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    #[arg(long, default_value_t = 30)]
    pub seconds: u64,
    /// pgbench's scale factor (`-i -s`): branches, each one row every transaction updates.
    #[arg(long, default_value_t = 1)]
    pub scale: u32,
    /// The pgbench binary (default: PATH, then /usr/lib/postgresql/*/bin/pgbench).
    #[arg(long)]
    pub pgbench: Option<PathBuf>,
    /// Keep the scratch database / file.
    #[arg(long)]
    pub keep: bool,
}

/// The pgbench scale whose tps the PostgreSQL throughput target is a fraction of.
pub const PG_TARGET_SCALE: u32 = 10;

pub struct Ceiling {
    /// What was measured, e.g. "pgbench scale 10" or "raw SQLite loop".
    pub label: String,
    /// The ceiling the throughput target is held against (pgbench at `PG_TARGET_SCALE`, the
    /// raw SQLite loop).
    pub target: bool,
    pub tps: f64,
    pub json: Value,
    pub text: String,
}

/// A lifecycle run's ceilings, measured one after the other with the same clients and
/// seconds: for PostgreSQL pgbench at each of `pg_scales`, for SQLite the raw loop.
pub fn measure_all(
    backend: Backend,
    clients: usize,
    seconds: u64,
    pg_scales: &[u32],
    pgbench: Option<&Path>,
    keep: bool,
) -> Res<Vec<Ceiling>> {
    match backend {
        Backend::Postgres => pg_scales
            .iter()
            .map(|&scale| measure(backend, clients, seconds, scale, pgbench, keep))
            .collect(),
        Backend::Sqlite => Ok(vec![measure(backend, clients, seconds, 1, pgbench, keep)?]),
    }
}

pub fn run_mode(o: &Opts) -> Res<Outcome> {
    let c = measure(
        o.backend,
        o.clients,
        o.seconds,
        o.scale,
        o.pgbench.as_deref(),
        o.keep,
    )?;
    Ok(Outcome {
        json: json!({ "mode": "ceiling", "ceiling": c.json }),
        table: c.text,
        // Errors under contention are a finding, not a failed measurement.
        problems: Vec::new(),
    })
}

pub fn measure(
    backend: Backend,
    clients: usize,
    seconds: u64,
    scale: u32,
    pgbench: Option<&Path>,
    keep: bool,
) -> Res<Ceiling> {
    let clients = clients.max(1);
    let scale = scale.max(1);
    eprintln!(
        "ceiling: {}{} with {clients} clients for {seconds} s …",
        backend.as_str(),
        match backend {
            Backend::Postgres => format!(" (pgbench scale {scale})"),
            Backend::Sqlite => String::new(),
        }
    );
    match backend {
        Backend::Postgres => pg_ceiling(clients, seconds, scale, pgbench, keep),
        Backend::Sqlite => sqlite_ceiling(clients, seconds, keep),
    }
}

fn number_after<'a>(text: &'a str, prefix: &str) -> Option<&'a str> {
    text.lines()
        .find_map(|l| l.trim().strip_prefix(prefix))
        .and_then(|rest| rest.split_whitespace().next())
}

fn pg_ceiling(
    clients: usize,
    seconds: u64,
    scale: u32,
    pgbench: Option<&Path>,
    keep: bool,
) -> Res<Ceiling> {
    let bin = find_pgbench(pgbench)
        .ok_or("pgbench not found (PATH, /usr/lib/postgresql/*/bin); pass --pgbench")?;
    let db = PgDb::create("ceiling", keep)?;
    let init = Command::new(&bin)
        .args(["-i", "-s", &scale.to_string(), "-q", &db.url])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    if !init.status.success() {
        return Err(format!(
            "pgbench -i failed: {}",
            String::from_utf8_lossy(&init.stderr).trim()
        ));
    }
    let threads = clients.min(2);
    let (c, j, t) = (
        clients.to_string(),
        threads.to_string(),
        seconds.max(1).to_string(),
    );
    let run = Command::new(&bin)
        .args(["-c", &c, "-j", &j, "-T", &t, &db.url])
        .output()
        .map_err(|e| format!("{}: {e}", bin.display()))?;
    let out = String::from_utf8_lossy(&run.stdout).into_owned();
    if !run.status.success() {
        return Err(format!(
            "pgbench failed ({}): {out} {}",
            run.status,
            String::from_utf8_lossy(&run.stderr).trim()
        ));
    }
    let tps: f64 = number_after(&out, "tps =")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("no \"tps = …\" in pgbench's output:\n{out}"))?;
    let latency: Option<f64> = number_after(&out, "latency average =").and_then(|n| n.parse().ok());
    let processed: Option<u64> = number_after(&out, "number of transactions actually processed:")
        .and_then(|n| n.parse().ok());
    let failed: u64 = number_after(&out, "number of failed transactions:")
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let text =
        format!(
        "ceiling (PostgreSQL, pgbench TPC-B-like, scale {scale}): {tps:.1} tps with {clients} clients, \
         -j {threads}, {seconds} s; latency avg {} ms; {} transactions, {failed} failed\n",
        latency.map(|l| format!("{l:.2}")).unwrap_or_else(|| "?".into()),
        processed.map(|p| p.to_string()).unwrap_or_else(|| "?".into()),
    );
    Ok(Ceiling {
        label: format!("pgbench scale {scale}"),
        target: scale == PG_TARGET_SCALE,
        tps,
        json: json!({
            "backend": "postgres", "method": format!("pgbench TPC-B-like (-i -s {scale})"),
            "pgbench": bin.display().to_string(), "scale": scale, "target": scale == PG_TARGET_SCALE,
            "clients": clients, "threads": threads, "seconds": seconds, "tps": r2(tps),
            "latency_avg_ms": latency, "transactions": processed, "failed": failed,
        }),
        text,
    })
}

const SQLITE_PREP: &str = "PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; \
                           PRAGMA synchronous = FULL; PRAGMA foreign_keys = ON;";

struct ThreadResult {
    lat_us: Vec<u32>,
    errors: u64,
    first_error: Option<String>,
}

fn sqlite_ceiling(clients: usize, seconds: u64, keep: bool) -> Res<Ceiling> {
    let dir = TempDir::new("ceiling", keep)?;
    let path = dir.path().join("ceiling.db").to_string_lossy().into_owned();
    let connect = || -> Res<diesel::SqliteConnection> {
        let mut c =
            diesel::SqliteConnection::establish(&path).map_err(|e| format!("{path}: {e}"))?;
        c.batch_execute(SQLITE_PREP)
            .map_err(|e| format!("{path}: {e}"))?;
        Ok(c)
    };
    connect()?
        .batch_execute(&format!(
            "CREATE TABLE head (id INTEGER PRIMARY KEY NOT NULL, size BIGINT NOT NULL, hash TEXT NOT NULL);
             INSERT INTO head VALUES (1, 0, '{}');
             CREATE TABLE events (seq INTEGER PRIMARY KEY NOT NULL, at TEXT NOT NULL,
                                  actor TEXT NOT NULL, detail TEXT NOT NULL, hash TEXT NOT NULL);",
            "0".repeat(64)
        ))
        .map_err(|e| format!("ceiling schema: {e}"))?;
    // About the size of a real audit event's detail.
    let detail = format!("{{\"note\":\"{}\"}}", "x".repeat(300));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(seconds.max(1));
    let results: Vec<Res<ThreadResult>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..clients)
            .map(|t| {
                let detail = &detail;
                let connect = &connect;
                s.spawn(move || -> Res<ThreadResult> {
                    let mut conn = connect()?;
                    let mut r = ThreadResult {
                        lat_us: Vec::new(),
                        errors: 0,
                        first_error: None,
                    };
                    let mut n: u64 = 0;
                    while Instant::now() < deadline {
                        n += 1;
                        let hash = format!("{:064x}", (t as u64) << 40 | n);
                        let tx = format!(
                            "BEGIN IMMEDIATE; UPDATE head SET size = size + 1, hash = '{hash}' WHERE id = 1; \
                             INSERT INTO events (at, actor, detail, hash) VALUES \
                             (strftime('%Y-%m-%dT%H:%M:%fZ','now'), 'thread-{t}', '{detail}', '{hash}'); COMMIT;"
                        );
                        let t0 = Instant::now();
                        match conn.batch_execute(&tx) {
                            Ok(()) => r
                                .lat_us
                                .push(u32::try_from(t0.elapsed().as_micros()).unwrap_or(u32::MAX)),
                            Err(e) => {
                                let _ = conn.batch_execute("ROLLBACK");
                                r.errors += 1;
                                r.first_error.get_or_insert_with(|| e.to_string());
                            }
                        }
                    }
                    Ok(r)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err("a writer thread panicked".into()))
            })
            .collect()
    });
    let secs = started.elapsed().as_secs_f64();
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut first_error = None;
    for r in results {
        let r = r?;
        lat.extend(r.lat_us);
        errors += r.errors;
        if first_error.is_none() {
            first_error = r.first_error;
        }
    }
    let row = Row::new(
        "BEGIN IMMEDIATE; UPDATE; INSERT; COMMIT",
        &lat,
        errors,
        secs,
        None,
    );
    let tps = row.per_s;
    let mut text = format!(
        "ceiling (SQLite, WAL, synchronous=FULL, busy_timeout 10 s): {tps:.1} tx/s with {clients} \
         writer threads, {seconds} s\n"
    );
    text.push_str(&report::table(std::slice::from_ref(&row)));
    if let Some(e) = &first_error {
        text.push_str(&format!(
            "first error ({errors} in all): {e} (writers starved past busy_timeout)\n"
        ));
    }
    Ok(Ceiling {
        label: "raw SQLite loop".into(),
        target: true,
        tps,
        json: json!({
            "backend": "sqlite", "target": true, "method": "BEGIN IMMEDIATE; UPDATE head; INSERT event; COMMIT (WAL, synchronous=FULL)",
            "clients": clients, "seconds": seconds, "tps": r2(tps), "transactions": row.count,
            "latency": row.json(), "errors": errors, "first_error": first_error,
        }),
        text,
    })
}
