//! The life-cycle targets of docs/performance.md, judged on the medians of repeated runs: each
//! a verdict, met or missed by how much.

use serde_json::{json, Value};

use crate::env::{mib, r2};
use crate::lifecycle::Summary;
use crate::Backend;

/// steps/s at least this fraction of the ceiling the target is held against.
pub const CEILING_FRACTION: f64 = 0.5;
/// p99 of every state-changing endpoint below this.
pub const STEP_P99_MS: f64 = 50.0;
/// p99 of every read at most this.
pub const READ_P99_MS: f64 = 20.0;
/// The server's peak RSS below this.
pub const PEAK_RSS_MIB: f64 = 150.0;

/// The median (the mean of the middle two for an even count); `None` for no values.
pub fn median(mut xs: Vec<f64>) -> Option<f64> {
    xs.retain(|x| x.is_finite());
    xs.sort_by(f64::total_cmp);
    let n = xs.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(xs[n / 2]),
        _ => Some((xs[n / 2 - 1] + xs[n / 2]) / 2.0),
    }
}

/// One endpoint's medians over the runs.
#[derive(Debug, Clone)]
pub struct EndpointMedian {
    pub label: String,
    pub write: bool,
    pub p50: f64,
    pub p99: f64,
}

/// One backend's runs, reduced to medians.
#[derive(Debug, Clone)]
pub struct Medians {
    pub backend: Backend,
    pub runs: usize,
    pub steps_per_s: Vec<f64>,
    /// (ceiling, whether the target is held against it, median tps).
    pub ceilings: Vec<(String, bool, f64)>,
    /// Per run, steps/s over the target's ceiling (the target is judged on their median).
    pub target_ratios: Vec<f64>,
    pub endpoints: Vec<EndpointMedian>,
    pub steps_p99: f64,
    pub reads_p99: f64,
    pub sequencer_delay_p99_ms: Option<f64>,
    pub errors: u64,
    pub peak_rss_kib: Option<f64>,
    pub peak_rss_max_kib: Option<u64>,
    pub chains_verified: usize,
}

impl Medians {
    pub fn of(backend: Backend, runs: &[Summary]) -> Option<Self> {
        if runs.is_empty() {
            return None;
        }
        let over =
            |f: &dyn Fn(&Summary) -> Option<f64>| median(runs.iter().filter_map(f).collect());
        let mut ceilings: Vec<(String, bool, f64)> = Vec::new();
        for (label, target, _) in runs.iter().flat_map(|r| &r.ceilings) {
            if !ceilings.iter().any(|c| &c.0 == label) {
                let tps = over(&|r| r.ceilings.iter().find(|c| &c.0 == label).map(|c| c.2));
                ceilings.push((label.clone(), *target, tps.unwrap_or(0.0)));
            }
        }
        let mut endpoints: Vec<EndpointMedian> = Vec::new();
        for (write, row) in runs.iter().flat_map(|r| &r.endpoints) {
            if endpoints.iter().any(|e| e.label == row.label) {
                continue;
            }
            let of = |p: fn(&crate::report::Row) -> f64| {
                over(&|r| {
                    r.endpoints
                        .iter()
                        .find(|(_, e)| e.label == row.label)
                        .map(|(_, e)| p(e))
                })
                .unwrap_or(0.0)
            };
            endpoints.push(EndpointMedian {
                label: row.label.clone(),
                write: *write,
                p50: of(|e| e.p50),
                p99: of(|e| e.p99),
            });
        }
        Some(Self {
            backend,
            runs: runs.len(),
            steps_per_s: runs.iter().map(|r| r.steps_per_s).collect(),
            ceilings,
            target_ratios: runs.iter().filter_map(Summary::target_ratio).collect(),
            endpoints,
            steps_p99: over(&|r| Some(r.steps_p99)).unwrap_or(0.0),
            reads_p99: over(&|r| Some(r.reads_p99)).unwrap_or(0.0),
            sequencer_delay_p99_ms: over(&|r| r.sequencer_delay_p99_ms),
            errors: runs.iter().map(|r| r.errors).sum(),
            peak_rss_kib: over(&|r| r.peak_rss_kib.map(|k| k as f64)),
            peak_rss_max_kib: runs.iter().filter_map(|r| r.peak_rss_kib).max(),
            chains_verified: runs.iter().filter(|r| r.chain_ok).count(),
        })
    }

    fn target_ceiling(&self) -> Option<&(String, bool, f64)> {
        self.ceilings.iter().find(|c| c.1)
    }

    /// The endpoint with the highest median p99 among writes (`true`) or reads.
    fn worst(&self, write: bool) -> Option<&EndpointMedian> {
        self.endpoints
            .iter()
            .filter(|e| e.write == write)
            .max_by(|a, b| a.p99.total_cmp(&b.p99))
    }

    pub fn text(&self) -> String {
        let b = self.backend.as_str();
        let list = |xs: &[f64], digits: usize| {
            xs.iter()
                .map(|x| format!("{x:.digits$}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut t = format!(
            "{b}: medians of {} runs\n  steps/s {:.1} (runs: {})\n",
            self.runs,
            median(self.steps_per_s.clone()).unwrap_or(0.0),
            list(&self.steps_per_s, 1)
        );
        for (label, target, tps) in &self.ceilings {
            t.push_str(&format!(
                "  ceiling {label}: {tps:.1} tps{}\n",
                if *target { " (the target's)" } else { "" }
            ));
        }
        if !self.target_ratios.is_empty() {
            t.push_str(&format!(
                "  steps/s ÷ the target's ceiling: {:.3} (runs: {})\n",
                median(self.target_ratios.clone()).unwrap_or(0.0),
                list(&self.target_ratios, 3)
            ));
        }
        let width = self
            .endpoints
            .iter()
            .map(|e| e.label.chars().count())
            .max()
            .unwrap_or(8);
        t.push_str(&format!(
            "  {:<width$}  {:>9} {:>9}\n",
            "endpoint (median of runs)", "p50 ms", "p99 ms"
        ));
        for e in &self.endpoints {
            let pad = width.saturating_sub(e.label.chars().count());
            t.push_str(&format!(
                "  {}{}  {:>9.2} {:>9.2}\n",
                e.label,
                " ".repeat(pad),
                e.p50,
                e.p99
            ));
        }
        t.push_str(&format!(
            "  p99 of all state-changing steps {:.2} ms, of all reads {:.2} ms; sequencer delay \
             p99 {}; errors {} (all runs); peak RSS {} (highest {}); chain verified after {}/{} runs\n",
            self.steps_p99,
            self.reads_p99,
            self.sequencer_delay_p99_ms
                .map_or("n/a".to_owned(), |d| format!("{d:.2} ms")),
            self.errors,
            mib(self.peak_rss_kib.map(|k| k.round() as u64)),
            mib(self.peak_rss_max_kib),
            self.chains_verified,
            self.runs
        ));
        t
    }

    pub fn json(&self) -> Value {
        json!({
            "backend": self.backend.as_str(),
            "runs": self.runs,
            "steps_per_s": median(self.steps_per_s.clone()).map(r2),
            "steps_per_s_runs": self.steps_per_s.iter().copied().map(r2).collect::<Vec<_>>(),
            "ceilings": self.ceilings.iter().map(|(label, target, tps)| {
                json!({ "ceiling": label, "target": target, "tps": r2(*tps) })
            }).collect::<Vec<_>>(),
            "steps_per_s_over_target_ceiling": median(self.target_ratios.clone()).map(|r| (r * 1000.0).round() / 1000.0),
            "steps_per_s_over_target_ceiling_runs": self.target_ratios.iter().map(|r| (r * 1000.0).round() / 1000.0).collect::<Vec<_>>(),
            "endpoints": self.endpoints.iter().map(|e| {
                json!({ "endpoint": e.label, "state_changing": e.write, "p50_ms": r2(e.p50), "p99_ms": r2(e.p99) })
            }).collect::<Vec<_>>(),
            "steps_p99_ms": r2(self.steps_p99),
            "reads_p99_ms": r2(self.reads_p99),
            "sequencer_delay_p99_ms": self.sequencer_delay_p99_ms.map(r2),
            "errors": self.errors,
            "peak_rss_kib": self.peak_rss_kib.map(|k| k.round() as u64),
            "peak_rss_max_kib": self.peak_rss_max_kib,
            "chains_verified": self.chains_verified,
        })
    }

    /// One verdict per target of docs/performance.md.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let b = self.backend.as_str();
        let mut v = Vec::new();
        let ceiling_name = match self.backend {
            Backend::Postgres => format!("pgbench scale {}", crate::ceiling::PG_TARGET_SCALE),
            Backend::Sqlite => "the raw loop (synchronous=FULL)".to_owned(),
        };
        let target = format!("{b}: steps/s ≥ {CEILING_FRACTION} × {ceiling_name} tps");
        v.push(
            match (self.target_ceiling(), median(self.target_ratios.clone())) {
                (Some(_), Some(ratio)) => {
                    Verdict::at_least(target, ratio, CEILING_FRACTION, "× the ceiling")
                }
                _ => Verdict::unmeasured(target, "the ceiling was not measured"),
            },
        );
        let target = format!("{b}: p99 < {STEP_P99_MS} ms, every state-changing endpoint");
        v.push(match self.worst(true) {
            Some(e) => Verdict::below(target, e.p99, STEP_P99_MS, false, "ms", &e.label),
            None => Verdict::unmeasured(target, "no state-changing request succeeded"),
        });
        let target = format!("{b}: reads p99 ≤ {READ_P99_MS} ms, every read");
        v.push(match self.worst(false) {
            Some(e) => Verdict::below(target, e.p99, READ_P99_MS, true, "ms", &e.label),
            None => Verdict::unmeasured(target, "no read succeeded"),
        });
        v.push(Verdict::count(
            format!("{b}: zero errors"),
            self.errors,
            "errors in all runs",
        ));
        v.push(Verdict::count(
            format!("{b}: the chain verifies after every run"),
            (self.runs - self.chains_verified) as u64,
            &format!("of {} runs did not verify", self.runs),
        ));
        let target = format!("{b}: peak RSS < {PEAK_RSS_MIB} MiB");
        v.push(match self.peak_rss_kib {
            Some(k) => Verdict::below(target, k / 1024.0, PEAK_RSS_MIB, false, "MiB", "median"),
            None => Verdict::unmeasured(target, "no /proc reading"),
        });
        v
    }
}

/// A target met or missed, and by how much.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub target: String,
    /// The measured value as shown.
    pub value: String,
    /// `None`: not measured.
    pub met: Option<bool>,
    /// How far past the limit, in % of it (0 when met).
    pub missed_by_pct: Option<f64>,
}

impl Verdict {
    fn at_least(target: String, value: f64, min: f64, unit: &str) -> Self {
        let met = value >= min;
        Self {
            target,
            value: format!("{value:.3} {unit}"),
            met: Some(met),
            missed_by_pct: (!met).then(|| (min - value) / min * 100.0),
        }
    }

    fn below(
        target: String,
        value: f64,
        limit: f64,
        inclusive: bool,
        unit: &str,
        of: &str,
    ) -> Self {
        let met = if inclusive {
            value <= limit
        } else {
            value < limit
        };
        Self {
            target,
            value: format!("{value:.2} {unit} ({of})"),
            met: Some(met),
            missed_by_pct: (!met).then(|| (value - limit) / limit * 100.0),
        }
    }

    fn count(target: String, bad: u64, what: &str) -> Self {
        Self {
            target,
            value: format!("{bad} {what}"),
            met: Some(bad == 0),
            missed_by_pct: None,
        }
    }

    fn unmeasured(target: String, why: &str) -> Self {
        Self {
            target,
            value: why.to_owned(),
            met: None,
            missed_by_pct: None,
        }
    }

    pub fn line(&self) -> String {
        let outcome = match (self.met, self.missed_by_pct) {
            (None, _) => "n/a".to_owned(),
            (Some(true), _) => "met".to_owned(),
            (Some(false), Some(pct)) => format!("missed by {pct:.1} %"),
            (Some(false), None) => "missed".to_owned(),
        };
        format!("{}: {outcome} — {}", self.target, self.value)
    }

    pub fn json(&self) -> Value {
        json!({
            "target": self.target, "value": self.value, "met": self.met,
            "missed_by_pct": self.missed_by_pct.map(r2),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::Row;

    fn run(steps_per_s: f64, scale10: f64, claim_p99_us: u32, errors: u64) -> Summary {
        Summary {
            steps_per_s,
            ceilings: vec![
                ("pgbench scale 1".into(), false, 600.0),
                ("pgbench scale 10".into(), true, scale10),
            ],
            endpoints: vec![
                (true, Row::new("claim", &[1000, claim_p99_us], 0, 1.0, None)),
                (false, Row::new("get", &[500, 15_000], 0, 1.0, None)),
            ],
            steps_p99: f64::from(claim_p99_us) / 1000.0,
            reads_p99: 15.0,
            sequencer_delay_p99_ms: None,
            errors,
            peak_rss_kib: Some(40 * 1024),
            chain_ok: true,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(Vec::new()), None);
    }

    #[test]
    fn verdicts_judge_the_medians_and_say_by_how_much_a_target_is_missed() {
        let runs = [
            run(400.0, 1000.0, 40_000, 0),
            run(300.0, 1000.0, 80_000, 0),
            run(350.0, 1000.0, 60_000, 2),
        ];
        let m = Medians::of(Backend::Postgres, &runs).unwrap();
        let v = m.verdicts();
        // Ratios 0.40, 0.30, 0.35: median 0.35 against 0.5 is 30 % short.
        assert_eq!(v[0].met, Some(false));
        assert!((v[0].missed_by_pct.unwrap() - 30.0).abs() < 1e-9);
        // The claim's median p99 is 60 ms against < 50 ms: 20 % over.
        assert_eq!(v[1].met, Some(false));
        assert!((v[1].missed_by_pct.unwrap() - 20.0).abs() < 1e-9);
        assert!(v[1].line().contains("missed by 20.0 %"));
        // Reads at 15 ms, RSS at 40 MiB: met; two errors over the runs: missed.
        assert_eq!(v[2].met, Some(true));
        assert_eq!(v[3].met, Some(false));
        assert_eq!(v[4].met, Some(true));
        assert_eq!(v[5].met, Some(true));
        assert!(v[2]
            .line()
            .starts_with("postgres: reads p99 ≤ 20 ms, every read: met — 15.00 ms (get)"));
    }

    #[test]
    fn a_run_without_the_targets_ceiling_is_not_judged_on_throughput() {
        let mut r = run(400.0, 1000.0, 10_000, 0);
        r.ceilings.retain(|c| !c.1);
        let m = Medians::of(Backend::Postgres, &[r]).unwrap();
        assert_eq!(m.verdicts()[0].met, None);
    }
}
