//! Everything tiny, on SQLite and (when reachable) PostgreSQL: a check for CI that the bench and
//! the service still work together. Any request error, any broken chain, any mail not delivered
//! (the default `--mail file`: every outbox row sent as a `.eml` file, none failed, drained
//! within `--drain-seconds`) → exit 1.

use serde_json::{json, Value};

use crate::{audit, console, evidence, lifecycle};
use crate::{Backend, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Seconds of life-cycle load per backend.
    #[arg(long, default_value_t = 3)]
    pub seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 2)]
    pub clients: usize,
    /// Audit events to seed per backend.
    #[arg(long, default_value_t = 2000)]
    pub events: u64,
    /// Only SQLite, even when PostgreSQL answers.
    #[arg(long)]
    pub sqlite_only: bool,
    /// Fail (instead of skipping PostgreSQL) when PostgreSQL does not answer.
    #[arg(long, env = "CROSSPROV_BENCH_PG_REQUIRED")]
    pub pg_required: bool,
    /// How long the outbox may take to drain after the load.
    #[arg(long, default_value_t = 30)]
    pub drain_seconds: u64,
}

impl Default for Opts {
    fn default() -> Self {
        Self {
            seconds: 3,
            clients: 2,
            events: 2000,
            sqlite_only: false,
            pg_required: false,
            drain_seconds: 30,
        }
    }
}

pub fn run(o: &Opts, args: &ServerArgs) -> Res<Outcome> {
    let started = std::time::Instant::now();
    let mut backends = vec![Backend::Sqlite];
    let mut notes = Vec::new();
    let mut problems = Vec::new();
    if !o.sqlite_only {
        match crate::env::pg_reachable() {
            Ok(()) => backends.push(Backend::Postgres),
            Err(e) if o.pg_required => {
                problems.push(format!("PostgreSQL required but unreachable: {e}"))
            }
            Err(e) => notes.push(format!("PostgreSQL skipped (unreachable: {})", e.trim())),
        }
    }
    let mut table = String::new();
    let mut results = serde_json::Map::new();
    for b in backends {
        let mut one = serde_json::Map::new();
        let section = |name: &str,
                       r: Res<Outcome>,
                       table: &mut String,
                       problems: &mut Vec<String>|
         -> Value {
            match r {
                Ok(out) => {
                    table.push_str(&out.table);
                    table.push('\n');
                    problems.extend(out.problems);
                    out.json
                }
                Err(e) => {
                    problems.push(format!("{name} {}: {e}", b.as_str()));
                    json!({ "error": e })
                }
            }
        };
        let pgbench_found = crate::env::find_pgbench(None).is_some();
        let with_ceiling = b == Backend::Sqlite || pgbench_found;
        if !with_ceiling {
            notes.push("pgbench not found: PostgreSQL ceiling skipped".into());
        }
        let lc = lifecycle::Opts {
            backend: b,
            clients: o.clients,
            seconds: o.seconds,
            with_ceiling,
            ceiling_seconds: Some(1),
            // Both scales, so the two-ceiling report is exercised (scale 10's init: ~6 s).
            pgbench_scales: vec![1, crate::ceiling::PG_TARGET_SCALE],
            pgbench: None,
            evidence_size: 1024,
            setup_concurrency: 2,
            drain_seconds: o.drain_seconds,
        };
        let v = section(
            "lifecycle",
            lifecycle::run(&lc, args),
            &mut table,
            &mut problems,
        );
        one.insert("lifecycle".into(), v);
        let ev = evidence::Opts {
            backend: b,
            size_mib: 0.0625,
            count: 1,
        };
        let v = section(
            "evidence",
            evidence::run(&ev, args),
            &mut table,
            &mut problems,
        );
        one.insert("evidence".into(), v);
        let con = console::Opts {
            backend: b,
            orders: 40,
            loads: 2,
        };
        let v = section(
            "console",
            console::run(&con, args),
            &mut table,
            &mut problems,
        );
        one.insert("console".into(), v);
        let seed = audit::SeedOpts {
            database_url: None,
            backend: b,
            events: o.events,
            rows_per_statement: 500,
            rows_per_transaction: 1000,
            seed: 1,
            measure: true,
            knobs: audit::Knobs {
                queries: 5,
                query_clients: 2,
                skip_api_verify: false,
                proofs: 3,
            },
        };
        let v = section(
            "seed-audit",
            audit::run_seed(&seed, args),
            &mut table,
            &mut problems,
        );
        one.insert("seed_audit".into(), v);
        results.insert(b.as_str().into(), Value::Object(one));
    }
    let secs = started.elapsed().as_secs_f64();
    table.push_str(&format!(
        "smoke: {} in {secs:.1} s{}\n",
        if problems.is_empty() { "OK" } else { "FAILED" },
        if notes.is_empty() {
            String::new()
        } else {
            format!(" ({})", notes.join("; "))
        }
    ));
    Ok(Outcome {
        json: json!({ "mode": "smoke", "ok": problems.is_empty(), "seconds": secs, "notes": notes,
                      "problems": problems, "results": results }),
        table,
        problems,
    })
}
