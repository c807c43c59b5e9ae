//! Percentiles and the per-endpoint table (text and JSON).

use serde_json::{json, Value};

use crate::client::Stats;
use crate::env::r2;

/// Nearest-rank percentile of sorted microsecond samples, in milliseconds.
pub fn pct_ms(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    let i = rank.clamp(1, sorted.len()) - 1;
    f64::from(sorted[i]) / 1000.0
}

/// One table row.
#[derive(Debug, Clone)]
pub struct Row {
    pub label: String,
    pub count: u64,
    pub per_s: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
    pub mean: f64,
    pub errors: u64,
    pub mib_per_s: Option<f64>,
}

impl Row {
    pub fn new(label: &str, lat_us: &[u32], errors: u64, secs: f64, bytes: Option<u64>) -> Self {
        let mut s = lat_us.to_vec();
        s.sort_unstable();
        let secs = secs.max(1e-9);
        let mean = if s.is_empty() {
            0.0
        } else {
            s.iter().map(|&x| f64::from(x)).sum::<f64>() / s.len() as f64 / 1000.0
        };
        Self {
            label: label.to_owned(),
            count: s.len() as u64,
            per_s: s.len() as f64 / secs,
            p50: pct_ms(&s, 50.0),
            p95: pct_ms(&s, 95.0),
            p99: pct_ms(&s, 99.0),
            max: s.last().map(|&x| f64::from(x) / 1000.0).unwrap_or(0.0),
            mean,
            errors,
            mib_per_s: bytes.map(|b| b as f64 / 1_048_576.0 / secs),
        }
    }

    pub fn json(&self) -> Value {
        let mut v = json!({
            "endpoint": self.label, "count": self.count, "per_s": r2(self.per_s),
            "p50_ms": r2(self.p50), "p95_ms": r2(self.p95), "p99_ms": r2(self.p99),
            "max_ms": r2(self.max), "mean_ms": r2(self.mean), "errors": self.errors,
        });
        if let Some(m) = self.mib_per_s {
            v["mib_per_s"] = json!(r2(m));
        }
        v
    }
}

/// Rows for every endpoint plus an "all requests" row.
pub fn rows(stats: &Stats, secs: f64) -> Vec<Row> {
    let mut out: Vec<Row> = stats
        .eps
        .iter()
        .map(|e| Row::new(e.label, &e.lat_us, e.errors, secs, None))
        .collect();
    let all: Vec<u32> = stats
        .eps
        .iter()
        .flat_map(|e| e.lat_us.iter().copied())
        .collect();
    out.push(Row::new("all requests", &all, stats.errors, secs, None));
    out
}

pub fn table(rows: &[Row]) -> String {
    let width = rows
        .iter()
        .map(|r| r.label.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let with_mib = rows.iter().any(|r| r.mib_per_s.is_some());
    let mut s = format!(
        "{:<width$} {:>8} {:>9} {:>9} {:>9} {:>9} {:>9} {:>7}{}\n",
        "endpoint",
        "count",
        "req/s",
        "p50 ms",
        "p95 ms",
        "p99 ms",
        "max ms",
        "errors",
        if with_mib { "     MiB/s" } else { "" }
    );
    for r in rows {
        let pad = width - r.label.chars().count().min(width);
        s.push_str(&format!(
            "{}{} {:>8} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>7}{}\n",
            r.label,
            " ".repeat(pad),
            r.count,
            r.per_s,
            r.p50,
            r.p95,
            r.p99,
            r.max,
            r.errors,
            match r.mib_per_s {
                Some(m) => format!(" {m:>10.1}"),
                None if with_mib => format!(" {:>10}", "-"),
                None => String::new(),
            }
        ));
    }
    s
}

pub fn errors_text(stats: &Stats) -> String {
    if stats.first_errors.is_empty() {
        return String::new();
    }
    let mut s = format!("first errors ({} in all):\n", stats.errors);
    for e in &stats.first_errors {
        s.push_str("  ");
        s.push_str(e);
        s.push('\n');
    }
    s
}
