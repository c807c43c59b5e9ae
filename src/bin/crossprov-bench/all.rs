//! Every measurement of `docs/performance.md` in one command: the life cycle on SQLite and
//! PostgreSQL against their ceilings (repeated, backends interleaved, judged on the medians),
//! evidence transfer, and the audit trail at scale.

use clap::Parser;
use serde_json::json;

use crate::lifecycle::Summary;
use crate::targets::Medians;
use crate::{audit, evidence, lifecycle, Backend, Outcome, Res, ServerArgs};

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
    /// Life-cycle runs per backend, interleaved (SQLite, PostgreSQL, SQLite, …) so a slow
    /// spell of the machine does not land on one backend only; the targets are judged on the
    /// medians.
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
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
    let backends: Vec<Backend> = if pg.is_ok() {
        vec![Backend::Sqlite, Backend::Postgres]
    } else {
        vec![Backend::Sqlite]
    };
    let runs = o.runs.max(1);
    let mut summaries: Vec<(Backend, Vec<Summary>)> =
        backends.iter().map(|&b| (b, Vec::new())).collect();
    for run in 1..=runs {
        for (backend, done) in &mut summaries {
            let b = backend.as_str();
            let args = words(&format!(
                "--backend {b} --clients {} --seconds {} --with-ceiling",
                o.clients, o.seconds
            ));
            let step = options::<lifecycle::Opts>(&args)
                .and_then(|opts| lifecycle::measure(&opts, server))
                .map(|(out, summary)| {
                    done.push(summary);
                    out
                });
            steps.push((format!("lifecycle {b}, run {run} of {runs}"), step));
        }
    }
    let medians: Vec<Medians> = summaries
        .iter()
        .filter_map(|(b, done)| Medians::of(*b, done))
        .collect();
    let ev = options::<evidence::Opts>(&words("--backend sqlite --size-mib 10 --count 10"))
        .and_then(|opts| evidence::run(&opts, server));
    steps.push(("evidence sqlite".into(), ev));
    for b in &backends {
        let b = b.as_str();
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
    table.push_str(&format!(
        "\n===== life cycle, {} clients, {} s: medians of {runs} runs per backend =====\n",
        o.clients, o.seconds
    ));
    for m in &medians {
        table.push_str(&m.text());
    }
    table.push_str(&format!(
        "\nverdicts (the targets of docs/performance.md, on the medians of {runs} runs):\n"
    ));
    let verdicts: Vec<_> = medians.iter().flat_map(Medians::verdicts).collect();
    for v in &verdicts {
        table.push_str("  ");
        table.push_str(&v.line());
        table.push('\n');
    }
    all_json.insert(
        "lifecycle medians".into(),
        json!(medians.iter().map(Medians::json).collect::<Vec<_>>()),
    );
    all_json.insert(
        "verdicts".into(),
        json!(verdicts.iter().map(|v| v.json()).collect::<Vec<_>>()),
    );
    Ok(Outcome {
        json: serde_json::Value::Object(all_json),
        table,
        problems,
    })
}
