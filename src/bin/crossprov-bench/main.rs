//! crossprov-bench: measured speed of the real service, against the database's own limit.
//!
//! Every mode that talks HTTP starts the real `crossprov serve` as a child process on a fresh
//! database (a SQLite file in a temp directory, or a PostgreSQL database made for the run and
//! dropped after it), seeds it the way an operator would (`crossprov user add` for the first
//! admin, then the HTTP API), and drives it with an async HTTP client on one thread.
//!
//! Modes:
//! - `lifecycle`: N clients loop through complete life cycles (open → claim → 3 evidence
//!   uploads → signed verification result → complete) with reads interleaved; per-endpoint
//!   latency, throughput, errors, the server's RSS and CPU, the audit sequencer's delay (from
//!   `/metrics`), optionally against the ceilings.
//! - `ceiling`: the database's own durable-commit ceiling on this machine (pgbench TPC-B for
//!   PostgreSQL, at a chosen scale; an equivalent raw write loop for SQLite).
//! - `all`: the life cycle repeated on both backends with medians and a verdict per target,
//!   then evidence and the audit trail.
//! - `evidence`: large evidence uploads and downloads, MiB/s and the server's peak RSS.
//! - `seed-audit`: seeds a valid, realistic audit trail quickly (the chain verifies).
//! - `audit`: filtered audit queries and full-chain verification on a (seeded) database.
//! - `smoke`: everything tiny, on SQLite and (when reachable) PostgreSQL; exit 1 on any error.
//!
//! `--mail none|file|smtp` (every mode) says whether the server's outbox has work and where it
//! delivers it; `lifecycle` waits for the outbox to drain after the load and reports it.

mod all;
mod audit;
mod ceiling;
mod client;
mod console;
mod env;
mod evidence;
mod lifecycle;
mod mail;
mod metrics;
mod report;
mod signer;
mod smoke;
mod targets;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

pub type Res<T> = Result<T, String>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sqlite => "sqlite",
            Self::Postgres => "postgres",
        }
    }
}

/// Whether the server sends mail during a run, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mail {
    /// No addresses anywhere (halls' cleared after setup, users made without one): no outbox
    /// rows; the reference point.
    None,
    /// Halls and clerks have addresses; the server writes each message as a `.eml` file under
    /// its data directory (the service's default transport).
    File,
    /// The same addresses, delivered over SMTP to a local server the bench starts
    /// (`python3 -m aiosmtpd`, which accepts and discards).
    Smtp,
}

impl Mail {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::File => "file",
            Self::Smtp => "smtp",
        }
    }
}

/// How the server child is started.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// The `crossprov` binary to run (default: the one next to this binary).
    #[arg(long, global = true)]
    pub server_bin: Option<PathBuf>,
    /// The server's log level (`log.level`); its logs go to a file in the temp directory.
    #[arg(long, global = true, default_value = "info")]
    pub server_log_level: String,
    /// Extra environment for the server child, KEY=VALUE (repeatable), e.g.
    /// CROSSPROV_DATABASE__POOL_SIZE=16 or CROSSPROV_SERVER__WORKERS=4.
    #[arg(long = "server-env", global = true, value_name = "KEY=VALUE", value_parser = parse_kv)]
    pub server_env: Vec<(String, String)>,
    /// Mail during the run: none (no addresses, no outbox rows), file (`mail.transport =
    /// file`, the service's default) or smtp (a local SMTP server started for the run).
    #[arg(long, global = true, value_enum, default_value = "file")]
    pub mail: Mail,
    /// Send an `Idempotency-Key` with every POST (and retry with it after a network error), as
    /// a hall terminal would; `false` measures what the keys cost.
    #[arg(long, global = true, default_value_t = true, action = clap::ArgAction::Set)]
    pub idempotency_keys: bool,
    /// Keep the temp directory (database, server log) and PostgreSQL database afterwards.
    #[arg(long, global = true)]
    pub keep: bool,
}

fn parse_kv(s: &str) -> Result<(String, String), String> {
    s.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("expected KEY=VALUE, got {s:?}"))
}

#[derive(Debug, Parser)]
#[command(
    name = "crossprov-bench",
    about = "Load benchmarks of the real crossprov service, against the database's own limit",
    after_help = "PostgreSQL: CROSSPROV_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432/postgres) \
                  is the admin URL used to create and drop scratch databases."
)]
struct Cli {
    /// Also print one JSON object with every number on standard output (the table then goes
    /// to standard error).
    #[arg(long, global = true)]
    json: bool,
    /// Run the smoke test (same as the `smoke` subcommand).
    #[arg(long)]
    smoke: bool,
    #[command(flatten)]
    server: ServerArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything docs/performance.md reports, one run after the other, life cycles 3 times per
    /// backend with medians and a verdict per target (about 20 minutes).
    All(all::Opts),
    /// N clients loop through complete work-order life cycles for S seconds.
    Lifecycle(lifecycle::Opts),
    /// The database's own ceiling: pgbench (PostgreSQL) or a raw SQLite write loop.
    Ceiling(ceiling::Opts),
    /// Upload K evidence files of a given size and download each back.
    Evidence(evidence::Opts),
    /// Seed N valid audit events quickly (optionally measure queries and verification after).
    SeedAudit(audit::SeedOpts),
    /// Filtered audit-query latency and full-chain verification speed on a database.
    Audit(audit::MeasureOpts),
    /// Everything tiny on SQLite and, when reachable, PostgreSQL; exit 1 on any error.
    Smoke(smoke::Opts),
    /// The web console's busiest list: page loads with N orders in a clerk's scope.
    Console(console::Opts),
}

/// What a mode hands back: every number as JSON, a table for people, and what went wrong.
pub struct Outcome {
    pub json: serde_json::Value,
    pub table: String,
    pub problems: Vec<String>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        _ if cli.smoke => smoke::run(&smoke::Opts::default(), &cli.server),
        None => Err("a mode is required: all, lifecycle, ceiling, evidence, seed-audit, audit, console or smoke (see --help)".into()),
        Some(Command::All(o)) => all::run(&o, &cli.server),
        Some(Command::Lifecycle(o)) => lifecycle::run(&o, &cli.server),
        Some(Command::Ceiling(o)) => ceiling::run_mode(&o),
        Some(Command::Evidence(o)) => evidence::run(&o, &cli.server),
        Some(Command::SeedAudit(o)) => audit::run_seed(&o, &cli.server),
        Some(Command::Audit(o)) => audit::run_measure(&o, &cli.server),
        Some(Command::Smoke(o)) => smoke::run(&o, &cli.server),
        Some(Command::Console(o)) => console::run(&o, &cli.server),
    };
    match result {
        Ok(outcome) => {
            if cli.json {
                eprintln!("{}", outcome.table);
                println!("{}", outcome.json);
            } else {
                println!("{}", outcome.table);
            }
            if outcome.problems.is_empty() {
                ExitCode::SUCCESS
            } else {
                eprintln!("crossprov-bench: FAILED:");
                for p in &outcome.problems {
                    eprintln!("  - {p}");
                }
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("crossprov-bench: {e}");
            ExitCode::from(2)
        }
    }
}
