//! The server's `GET /metrics` (Prometheus text format): one histogram read out of it, and
//! quantiles computed from its buckets the way Prometheus' `histogram_quantile` does.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use crate::client::Api;
use crate::env::r2;

/// Time from an audit event's commit by a step to its integration into the chain (PostgreSQL
/// only; a server without it, or on SQLite, does not export it).
pub const SEQUENCER_DELAY: &str = "crossprov_audit_sequencer_delay_seconds";

/// A histogram's cumulative buckets, summed over every label set but `le`.
#[derive(Debug, Clone, PartialEq)]
pub struct Histogram {
    /// (upper bound, observations ≤ it), ascending by bound; the last is +Inf when exported.
    pub buckets: Vec<(f64, f64)>,
    pub count: f64,
    pub sum: f64,
}

/// A sample's labels: (name, unescaped value) in the order written.
type Labels = Vec<(String, String)>;

/// One sample line: metric name, labels, value (a trailing timestamp is ignored).
fn sample(line: &str) -> Option<(&str, Labels, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let mut rest = &line[name_end..];
    let mut labels = Vec::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let (parsed, after) = label_set(inner)?;
        labels = parsed;
        rest = after;
    }
    let value = number(rest.split_whitespace().next()?)?;
    Some((name, labels, value))
}

/// `a="x",b="y\"z"}` → the pairs and what follows the closing brace.
fn label_set(mut s: &str) -> Option<(Labels, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([' ', ',']);
        if let Some(after) = s.strip_prefix('}') {
            return Some((labels, after));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_owned();
        s = s[eq + 1..].trim_start().strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = s.char_indices();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[end + 1..];
    }
}

/// A sample value or `le` bound: Go-style floats, `+Inf`, `-Inf`, `NaN`.
fn number(s: &str) -> Option<f64> {
    match s {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => s.parse().ok(),
    }
}

impl Histogram {
    /// The histogram `name` in an exposition, or `None` when it has no `_bucket` lines.
    pub fn parse(text: &str, name: &str) -> Option<Self> {
        let bucket = format!("{name}_bucket");
        let count = format!("{name}_count");
        let sum = format!("{name}_sum");
        let mut h = Histogram {
            buckets: Vec::new(),
            count: 0.0,
            sum: 0.0,
        };
        for (metric, labels, value) in text.lines().filter_map(sample) {
            if metric == bucket {
                let Some(le) = labels
                    .iter()
                    .find(|(k, _)| k == "le")
                    .and_then(|(_, v)| number(v))
                else {
                    continue;
                };
                match h.buckets.iter_mut().find(|(b, _)| *b == le) {
                    Some((_, n)) => *n += value,
                    None => h.buckets.push((le, value)),
                }
            } else if metric == count {
                h.count += value;
            } else if metric == sum {
                h.sum += value;
            }
        }
        if h.buckets.is_empty() {
            return None;
        }
        h.buckets.sort_by(|a, b| a.0.total_cmp(&b.0));
        Some(h)
    }

    /// What was observed after `earlier` (a scrape of the same server before).
    pub fn since(&self, earlier: &Histogram) -> Histogram {
        let before = |le: f64| {
            earlier
                .buckets
                .iter()
                .find(|(b, _)| *b == le)
                .map_or(0.0, |(_, n)| *n)
        };
        Histogram {
            buckets: self
                .buckets
                .iter()
                .map(|&(le, n)| (le, (n - before(le)).max(0.0)))
                .collect(),
            count: (self.count - earlier.count).max(0.0),
            sum: self.sum - earlier.sum,
        }
    }

    /// Observations in all: the +Inf bucket (the last), which equals `_count`.
    pub fn total(&self) -> f64 {
        self.buckets.last().map_or(0.0, |&(_, n)| n)
    }

    /// The q-quantile (0 ≤ q ≤ 1) as `histogram_quantile` computes it: the bucket holding
    /// rank q × total, interpolated linearly inside it (from 0 for the first bucket); a rank
    /// in the +Inf bucket gives the highest finite bound. `None` with no observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.total();
        if total <= 0.0 || self.buckets.len() < 2 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        let rank = q * total;
        let i = self
            .buckets
            .iter()
            .position(|&(_, n)| n >= rank)
            .unwrap_or(self.buckets.len() - 1);
        let (upper, n_upper) = self.buckets[i];
        if upper.is_infinite() {
            return Some(self.buckets[self.buckets.len() - 2].0);
        }
        let (lower, n_lower) = match i {
            0 if upper > 0.0 => (0.0, 0.0),
            0 => return Some(upper),
            _ => self.buckets[i - 1],
        };
        let in_bucket = n_upper - n_lower;
        if in_bucket <= 0.0 {
            return Some(upper);
        }
        Some(lower + (upper - lower) * (rank - n_lower) / in_bucket)
    }

    /// The mean observation (`_sum` / `_count`).
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0.0).then(|| self.sum / self.count)
    }
}

/// `GET /metrics` (no token: the endpoint is outside the API).
pub async fn scrape(api: &Api) -> Result<String, String> {
    let (status, body) = api
        .send(
            Method::GET,
            "/metrics",
            None,
            None,
            Some(Duration::from_secs(30)),
        )
        .await?;
    if status != 200 {
        return Err(format!("GET /metrics: {status}"));
    }
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// The sequencer delay over the load: the histogram after it minus the one before it (setup's
/// events left out). `None` when the server does not export it.
#[derive(Debug, Clone)]
pub struct SequencerDelay {
    pub during_load: Option<Histogram>,
}

impl SequencerDelay {
    pub fn between(before: &str, after: &str) -> Self {
        let after = Histogram::parse(after, SEQUENCER_DELAY);
        let before = Histogram::parse(before, SEQUENCER_DELAY);
        Self {
            during_load: after.map(|a| match before {
                Some(b) => a.since(&b),
                None => a,
            }),
        }
    }

    /// The p99 in milliseconds, when the metric is there and saw an event.
    pub fn p99_ms(&self) -> Option<f64> {
        self.during_load
            .as_ref()?
            .quantile(0.99)
            .map(|s| s * 1000.0)
    }

    pub fn text(&self) -> String {
        let Some(h) = &self.during_load else {
            return format!("sequencer delay: n/a (the server exports no {SEQUENCER_DELAY})\n");
        };
        if h.total() <= 0.0 {
            // SQLite appends in the step's own transaction: the histogram is there, empty.
            return format!("sequencer delay: n/a (no event went through {SEQUENCER_DELAY})\n");
        }
        let ms = |v: Option<f64>| v.map_or("n/a".to_owned(), |s| format!("{:.2}", s * 1000.0));
        format!(
            "sequencer delay ({SEQUENCER_DELAY}, events committed during the load, from the \
             buckets): p50 {} ms, p99 {} ms, mean {} ms, {} events\n",
            ms(h.quantile(0.5)),
            ms(h.quantile(0.99)),
            ms(h.mean()),
            h.total()
        )
    }

    pub fn json(&self) -> Value {
        match &self.during_load {
            None => json!({ "metric": SEQUENCER_DELAY, "present": false }),
            Some(h) => json!({
                "metric": SEQUENCER_DELAY, "present": true, "events": h.total(),
                "p50_ms": h.quantile(0.5).map(|s| r2(s * 1000.0)),
                "p99_ms": h.quantile(0.99).map(|s| r2(s * 1000.0)),
                "mean_ms": h.mean().map(|s| r2(s * 1000.0)),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the `prometheus` crate's TextEncoder writes for a labelled histogram.
    const EXPOSITION: &str = r#"# HELP crossprov_audit_sequencer_delay_seconds Time from commit to chain
# TYPE crossprov_audit_sequencer_delay_seconds histogram
crossprov_audit_sequencer_delay_seconds_bucket{kind="step",le="0.001"} 10
crossprov_audit_sequencer_delay_seconds_bucket{kind="step",le="0.01"} 50
crossprov_audit_sequencer_delay_seconds_bucket{kind="step",le="0.1"} 90
crossprov_audit_sequencer_delay_seconds_bucket{kind="step",le="+Inf"} 100
crossprov_audit_sequencer_delay_seconds_sum{kind="step"} 2.5
crossprov_audit_sequencer_delay_seconds_count{kind="step"} 100
crossprov_audit_sequencer_delay_seconds_bucket{kind="odd \"quoted\", label",le="0.001"} 0
crossprov_audit_sequencer_delay_seconds_bucket{kind="odd \"quoted\", label",le="0.01"} 0
crossprov_audit_sequencer_delay_seconds_bucket{kind="odd \"quoted\", label",le="0.1"} 0
crossprov_audit_sequencer_delay_seconds_bucket{kind="odd \"quoted\", label",le="+Inf"} 0
crossprov_audit_sequencer_delay_seconds_sum{kind="odd \"quoted\", label"} 0
crossprov_audit_sequencer_delay_seconds_count{kind="odd \"quoted\", label"} 0
# HELP crossprov_http_requests_total HTTP requests
# TYPE crossprov_http_requests_total counter
crossprov_http_requests_total{method="GET",route="/metrics",status="200"} 3 1700000000000
"#;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-9
    }

    #[test]
    fn buckets_count_and_sum_are_read_across_label_sets() {
        let h = Histogram::parse(EXPOSITION, SEQUENCER_DELAY).unwrap();
        assert_eq!(
            h.buckets,
            vec![
                (0.001, 10.0),
                (0.01, 50.0),
                (0.1, 90.0),
                (f64::INFINITY, 100.0)
            ]
        );
        assert!(close(h.count, 100.0));
        assert!(close(h.sum, 2.5));
        assert!(close(h.mean().unwrap(), 0.025));
    }

    #[test]
    fn quantiles_interpolate_inside_the_bucket_like_histogram_quantile() {
        let h = Histogram::parse(EXPOSITION, SEQUENCER_DELAY).unwrap();
        // Rank 5 of 10 in the first bucket, from 0: half of 1 ms.
        assert!(close(h.quantile(0.05).unwrap(), 0.0005));
        // Rank 50: the top of the second bucket.
        assert!(close(h.quantile(0.5).unwrap(), 0.01));
        // Rank 70: halfway through (0.01, 0.1].
        assert!(close(h.quantile(0.7).unwrap(), 0.055));
        // Rank 99 lies in +Inf: the highest finite bound, as Prometheus answers.
        assert!(close(h.quantile(0.99).unwrap(), 0.1));
    }

    #[test]
    fn a_later_scrape_minus_an_earlier_one_is_what_happened_between() {
        let before = "x_bucket{le=\"1\"} 4\nx_bucket{le=\"2\"} 4\nx_bucket{le=\"+Inf\"} 4\nx_sum 2\nx_count 4\n";
        let after = "x_bucket{le=\"1\"} 4\nx_bucket{le=\"2\"} 14\nx_bucket{le=\"+Inf\"} 14\nx_sum 17\nx_count 14\n";
        let h = Histogram::parse(after, "x")
            .unwrap()
            .since(&Histogram::parse(before, "x").unwrap());
        assert!(close(h.total(), 10.0));
        assert!(close(h.mean().unwrap(), 1.5));
        // All ten between 1 and 2: the median halfway.
        assert!(close(h.quantile(0.5).unwrap(), 1.5));
    }

    #[test]
    fn an_absent_or_empty_histogram_has_no_quantile() {
        assert!(Histogram::parse(EXPOSITION, "crossprov_nothing_seconds").is_none());
        let d = SequencerDelay::between("", "crossprov_http_requests_total 1\n");
        assert!(d.p99_ms().is_none());
        assert!(d.text().contains("n/a"));
        let empty = "x_bucket{le=\"1\"} 0\nx_bucket{le=\"+Inf\"} 0\nx_sum 0\nx_count 0\n";
        assert!(Histogram::parse(empty, "x")
            .unwrap()
            .quantile(0.99)
            .is_none());
        let exported_but_empty = empty.replace("x_", &format!("{SEQUENCER_DELAY}_"));
        let d = SequencerDelay::between("", &exported_but_empty);
        assert!(d.p99_ms().is_none());
        assert!(d.text().contains("n/a (no event went through"));
    }
}
