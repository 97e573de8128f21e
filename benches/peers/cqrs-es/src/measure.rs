//! Samples, their median and p99, and the table's formatting: the same definitions as our
//! workload's (`examples/workload/measure.rs`), so the rows read alike.

use std::fmt::Write as _;
use std::time::Duration;

/// Durations measured one by one.
#[derive(Debug, Default, Clone)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// An empty set with room for `n`.
    pub fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }

    /// The median (the lower one of an even count).
    pub fn median(&self) -> Duration {
        let v = self.sorted();
        v.get(v.len().saturating_sub(1) / 2).copied().unwrap_or_default()
    }

    /// The 99th percentile (nearest rank): the maximum with fewer than 100 samples.
    pub fn p99(&self) -> Duration {
        let v = self.sorted();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let rank = ((v.len() as f64) * 0.99).ceil() as usize;
        v[rank.clamp(1, v.len()) - 1]
    }

    /// The sum of the samples.
    pub fn total(&self) -> Duration {
        self.0.iter().sum()
    }
}

/// A duration for the table.
pub fn dur(d: Duration) -> String {
    let ns = d.as_nanos();
    if ns < 1_000 {
        format!("{ns} ns")
    } else if ns < 1_000_000 {
        format!("{:.1} µs", ns as f64 / 1e3)
    } else if ns < 1_000_000_000 {
        format!("{:.2} ms", ns as f64 / 1e6)
    } else {
        format!("{:.3} s", ns as f64 / 1e9)
    }
}

/// An integer with thousands separators.
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Events per unit of time.
pub fn rate(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(1e-12)
}

/// A rate for the table.
pub fn per_sec(r: f64, unit: &str) -> String {
    format!("{} {unit}/s", thousands(r.round() as u64))
}

/// One row of the results table, with the numbers behind it for `--json`.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Row {
    /// W3 ..., W4 ...
    pub scenario: String,
    /// What is measured.
    pub figure: String,
    /// Median, formatted.
    pub median: String,
    /// 99th percentile, formatted.
    pub p99: String,
    /// Throughput, conflicts, verification.
    pub note: String,
    /// The numbers.
    pub numbers: Numbers,
}

/// The numbers of a row.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct Numbers {
    /// `w3-1`, `w3-10`, `w4`.
    pub scenario: String,
    /// `event` (cqrs-es's default, no snapshots) or `snapshot`.
    pub store: String,
    /// Writers.
    pub writers: u64,
    /// Commands (or saves) per writer.
    pub commands_per_writer: u64,
    /// Events the scenario committed.
    pub events: u64,
    /// Wall time of the timed phase, seconds.
    pub wall_s: f64,
    /// Committed events per second (W4: over wall time; W3: over the sum of save times).
    pub events_per_s: f64,
    /// Optimistic-lock conflicts (`AggregateError::AggregateConflict`), each retried.
    pub conflicts: u64,
    /// The most attempts one command took.
    pub most_attempts: u64,
    /// Median latency of one command or save, nanoseconds.
    pub median_ns: u128,
    /// 99th percentile, nanoseconds.
    pub p99_ns: u128,
    /// Whether the stored stream checked out: exactly the committed events, sequences
    /// 1..=events without gap.
    pub verified: bool,
    /// What the check found.
    pub verify: String,
    /// W4: whether the order cqrs-es loads (through the W4 store: snapshot and tail, or the
    /// whole stream) equals a replay of the stored events; null where not checked.
    pub state_matches_replay: Option<bool>,
}

/// The markdown table, with the columns of our workload's table (floor and ratio empty)
/// so that its rows can be pasted beside ours.
pub fn markdown(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str("| scenario | figure | median | p99 | floor (median) | ratio to floor | notes |\n");
    out.push_str("| --- | --- | ---: | ---: | --- | --- | --- |\n");
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | — | — | {} |",
            r.scenario, r.figure, r.median, r.p99, r.note
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_by_nearest_rank() {
        let mut s = Samples::default();
        for i in 1..=200u64 {
            s.push(Duration::from_millis(i));
        }
        assert_eq!(s.median(), Duration::from_millis(100));
        assert_eq!(s.p99(), Duration::from_millis(198));
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
    }
}
