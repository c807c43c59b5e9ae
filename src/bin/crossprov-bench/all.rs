//! Every measurement of `docs/performance.md` in one command: the life cycle on SQLite and
//! PostgreSQL against their ceilings, evidence transfer, and the audit trail at scale.

use clap::Parser;
use serde_json::json;

use crate::{audit, evidence, lifecycle, Outcome, Res, ServerArgs};

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Concurrent clients of the life-cycle runs.
    #[arg(long, default_value_t = 64)]
    pub clients: usize,
    /// Length of each life-cycle run, in seconds.
    #[arg(long, default_value_t = 45)]
    pub seconds: u64,
    /// Audit events to seed per backend.
    #[arg(long, default_value_t = 1_000_000)]
    pub events: u64,
}

/// Parses a mode's options the way its command line would.
fn options<T: clap::Args>(args: &[String]) -> Result<T, String> {
    #[derive(Parser)]
    struct Wrap<A: clap::Args> {
        #[command(flatten)]
        inner: A,
    }
    let argv = std::iter::once("crossprov-bench".to_owned()).chain(args.iter().cloned());
    Wrap::<T>::try_parse_from(argv)
        .map(|w| w.inner)
        .map_err(|e| e.to_string())
}

fn words(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

pub fn run(o: &Opts, server: &ServerArgs) -> Res<Outcome> {
    let mut steps: Vec<(String, Res<Outcome>)> = Vec::new();
    let pg = crate::env::pg_reachable();
    let backends: Vec<&str> = if pg.is_ok() {
        vec!["sqlite", "postgres"]
    } else {
        vec!["sqlite"]
    };
    for b in &backends {
        let args = words(&format!(
            "--backend {b} --clients {} --seconds {} --with-ceiling",
            o.clients, o.seconds
        ));
        let step = options::<lifecycle::Opts>(&args).and_then(|opts| lifecycle::run(&opts, server));
        steps.push((format!("lifecycle {b}"), step));
    }
    let ev = options::<evidence::Opts>(&words("--backend sqlite --size-mib 10 --count 10"))
        .and_then(|opts| evidence::run(&opts, server));
    steps.push(("evidence sqlite".into(), ev));
    for b in &backends {
        let args = words(&format!("--backend {b} --events {} --measure", o.events));
        let step =
            options::<audit::SeedOpts>(&args).and_then(|opts| audit::run_seed(&opts, server));
        steps.push((format!("audit {b}"), step));
    }

    let mut table = String::new();
    let mut all_json = serde_json::Map::new();
    let mut problems = Vec::new();
    if let Err(e) = pg {
        problems.push(format!("PostgreSQL unreachable, its runs skipped: {e}"));
    }
    for (name, step) in steps {
        table.push_str(&format!("\n===== {name} =====\n"));
        match step {
            Ok(out) => {
                table.push_str(&out.table);
                all_json.insert(name.clone(), out.json);
                problems.extend(out.problems.into_iter().map(|p| format!("{name}: {p}")));
            }
            Err(e) => {
                table.push_str(&format!("failed: {e}\n"));
                all_json.insert(name.clone(), json!({ "error": e }));
                problems.push(format!("{name}: {e}"));
            }
        }
    }
    Ok(Outcome {
        json: serde_json::Value::Object(all_json),
        table,
        problems,
    })
}
