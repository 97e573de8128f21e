//! Timing, percentiles, the results table, and the process measurements the workload
//! reports beside its timings (heap and RSS peaks, CPU time).

use std::alloc::{GlobalAlloc, Layout, System};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering};
use std::time::{Duration, Instant};

/// The workload's error type: any error, with context added where it is raised.
pub type Error = Box<dyn std::error::Error + Send + Sync>;
/// The workload's result type.
pub type Res<T> = Result<T, Error>;

/// Adds context to an error.
pub trait Context<T> {
    /// Wraps the error with what was being done.
    fn context(self, what: impl FnOnce() -> String) -> Res<T>;
}

impl<T, E: std::fmt::Display> Context<T> for Result<T, E> {
    fn context(self, what: impl FnOnce() -> String) -> Res<T> {
        self.map_err(|e| format!("{}: {e}", what()).into())
    }
}

/// How long a measurement may take and how many runs it gets.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    /// Target time for the timed runs of one figure (and its floor).
    pub time: Duration,
    /// At least this many runs.
    pub min_runs: usize,
    /// At most this many runs.
    pub max_runs: usize,
}

impl Budget {
    /// The number of runs to do when one run (of everything timed together) takes `one`.
    pub fn runs(&self, one: Duration) -> usize {
        let one = one.as_secs_f64().max(1e-9);
        ((self.time.as_secs_f64() / one) as usize).clamp(self.min_runs, self.max_runs)
    }
}

/// Timing samples of one figure.
#[derive(Debug, Clone, Default)]
pub struct Samples(Vec<Duration>);

impl Samples {
    /// An empty set with room for `n` samples.
    pub fn with_capacity(n: usize) -> Self {
        Samples(Vec::with_capacity(n))
    }

    /// Adds a sample.
    pub fn push(&mut self, d: Duration) {
        self.0.push(d);
    }

    /// Adds every sample of `other`.
    pub fn extend(&mut self, other: &Samples) {
        self.0.extend_from_slice(&other.0);
    }

    /// Number of samples.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    fn sorted(&self) -> Vec<Duration> {
        let mut v = self.0.clone();
        v.sort_unstable();
        v
    }

    /// The median (the lower middle for an even count).
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

/// Runs `f` once and returns how long it took with its value.
pub fn timed<T>(f: impl FnOnce() -> Res<T>) -> Res<(Duration, T)> {
    let start = Instant::now();
    let value = f()?;
    Ok((start.elapsed(), value))
}

/// Times `a`, `b` and `floor` in turn (so all three see the same machine state), after one
/// warm-up run of each; the budget decides how many runs.
pub fn paired3(
    budget: Budget,
    mut a: impl FnMut() -> Res<()>,
    mut b: impl FnMut() -> Res<()>,
    mut floor: impl FnMut() -> Res<()>,
) -> Res<(Samples, Samples, Samples)> {
    let (ta, ()) = timed(&mut a)?;
    let (tb, ()) = timed(&mut b)?;
    let (tf, ()) = timed(&mut floor)?;
    let runs = budget.runs(ta + tb + tf);
    let (mut sa, mut sb, mut sf) = (
        Samples::with_capacity(runs),
        Samples::with_capacity(runs),
        Samples::with_capacity(runs),
    );
    for _ in 0..runs {
        sa.push(timed(&mut a)?.0);
        sb.push(timed(&mut b)?.0);
        sf.push(timed(&mut floor)?.0);
    }
    Ok((sa, sb, sf))
}

/// Times `figure` and `floor` alternately (so both see the same machine state), after one
/// warm-up run of each; the budget decides how many runs.
pub fn paired(
    budget: Budget,
    mut figure: impl FnMut() -> Res<()>,
    mut floor: impl FnMut() -> Res<()>,
) -> Res<(Samples, Samples)> {
    let (a, ()) = timed(&mut figure)?;
    let (b, ()) = timed(&mut floor)?;
    let runs = budget.runs(a + b);
    let (mut fs, mut ls) = (Samples::with_capacity(runs), Samples::with_capacity(runs));
    for _ in 0..runs {
        fs.push(timed(&mut figure)?.0);
        ls.push(timed(&mut floor)?.0);
    }
    Ok((fs, ls))
}

/// Times `figure` and `floor` in blocks of [`BLOCK`] calls each, the block of one right
/// after the block of the other, and swaps which goes first from one round to the next: the
/// other order of measurement than [`paired`]'s call-by-call alternation (on a VM, a bare
/// statement can run faster when it alternates with another connection's). Each sample is
/// one block's mean per call; one warm-up block of each first.
pub fn blocks(
    budget: Budget,
    mut figure: impl FnMut() -> Res<()>,
    mut floor: impl FnMut() -> Res<()>,
) -> Res<(Samples, Samples)> {
    let block = |f: &mut dyn FnMut() -> Res<()>| -> Res<Duration> {
        let start = Instant::now();
        for _ in 0..BLOCK {
            f()?;
        }
        Ok(start.elapsed() / BLOCK as u32)
    };
    let a = block(&mut figure)?;
    let b = block(&mut floor)?;
    let rounds = (budget.runs(a + b) / BLOCK).max(3);
    let (mut fs, mut ls) = (Samples::with_capacity(rounds), Samples::with_capacity(rounds));
    for round in 0..rounds {
        if round % 2 == 0 {
            fs.push(block(&mut figure)?);
            ls.push(block(&mut floor)?);
        } else {
            ls.push(block(&mut floor)?);
            fs.push(block(&mut figure)?);
        }
    }
    Ok((fs, ls))
}

/// Calls per block in [`blocks`].
pub const BLOCK: usize = 100;

/// Times `figure` alone, calling `setup` (untimed) before each run.
pub fn with_setup(
    budget: Budget,
    mut setup: impl FnMut() -> Res<()>,
    mut figure: impl FnMut() -> Res<()>,
) -> Res<Samples> {
    setup()?;
    let (a, ()) = timed(&mut figure)?;
    let runs = budget.runs(a);
    let mut s = Samples::with_capacity(runs);
    for _ in 0..runs {
        setup()?;
        s.push(timed(&mut figure)?.0);
    }
    Ok(s)
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
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A rate per second for `count` things done in `d`.
pub fn rate(count: u64, d: Duration) -> f64 {
    count as f64 / d.as_secs_f64().max(1e-12)
}

/// A rate for the table.
pub fn per_sec(r: f64, unit: &str) -> String {
    format!("{} {unit}/s", thousands(r.round() as u64))
}

/// A byte count for the table.
pub fn bytes(n: i64) -> String {
    let a = n.unsigned_abs() as f64;
    let sign = if n < 0 { "-" } else { "" };
    if a < 1024.0 {
        format!("{n} B")
    } else if a < 1024.0 * 1024.0 {
        format!("{sign}{:.1} KiB", a / 1024.0)
    } else {
        format!("{sign}{:.1} MiB", a / 1024.0 / 1024.0)
    }
}

/// One line of the results table.
#[derive(Debug, Clone, Default)]
pub struct Row {
    /// W1a N=..., W3 ...
    pub scenario: String,
    /// What is measured, and its unit.
    pub figure: String,
    /// Median.
    pub median: String,
    /// 99th percentile.
    pub p99: String,
    /// The floor's median (and what the floor is).
    pub floor: String,
    /// The ratio to the floor, with its sense.
    pub ratio: String,
    /// Runs, throughput, memory, target.
    pub note: String,
}

/// The results table.
#[derive(Debug, Default)]
pub struct Table {
    rows: Vec<Row>,
}

impl Table {
    /// Adds a row, and echoes it to stderr so that a long run shows progress.
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "  {} | {} | median {} | p99 {} | floor {} | {} | {}",
            row.scenario, row.figure, row.median, row.p99, row.floor, row.ratio, row.note
        );
        self.rows.push(row);
    }

    /// The markdown table.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str("| scenario | figure | median | p99 | floor (median) | ratio to floor | notes |\n");
        out.push_str("| --- | --- | ---: | ---: | --- | --- | --- |\n");
        for r in &self.rows {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {} |",
                r.scenario, r.figure, r.median, r.p99, r.floor, r.ratio, r.note
            );
        }
        out
    }
}

impl Table {
    /// The table as JSON, for scripts that check the figures: one object per row with the
    /// printed text of each column and, read back from it, the numbers a check needs:
    /// `median_ns` and `p99_ns`, `ratio` (the number before the `x`) and `ratio_of` (what it
    /// is a ratio of), and `target` (`{"goal": "≤2x", "met": true}`, or null for a row
    /// without one).
    pub fn json(&self, run: serde_json::Value) -> serde_json::Value {
        let rows: Vec<serde_json::Value> = self
            .rows
            .iter()
            .map(|r| {
                let (ratio, ratio_of) = match r.ratio.split_once("x ") {
                    Some((n, of)) => (n.trim().parse::<f64>().ok(), Some(of.trim())),
                    None => (None, None),
                };
                serde_json::json!({
                    "scenario": r.scenario,
                    "figure": r.figure,
                    "median": r.median,
                    "median_ns": parse_dur(&r.median),
                    "p99": r.p99,
                    "p99_ns": parse_dur(&r.p99),
                    "floor": r.floor,
                    "ratio_text": r.ratio,
                    "ratio": ratio,
                    "ratio_of": ratio_of,
                    "target": parse_target(&r.note),
                    "note": r.note,
                })
            })
            .collect();
        serde_json::json!({ "run": run, "rows": rows })
    }
}

/// Nanoseconds from a [`dur`] text (`"3.8 µs"`), `None` for anything else (`"—"`).
fn parse_dur(text: &str) -> Option<f64> {
    let (n, unit) = text.split_once(' ')?;
    let n: f64 = n.parse().ok()?;
    let scale = match unit {
        "ns" => 1.0,
        "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => return None,
    };
    Some((n * scale).round())
}

/// `{"goal": ..., "met": ...}` from the `target GOAL: **met**` (or `**MISSED**`) in a note.
fn parse_target(note: &str) -> serde_json::Value {
    let Some(rest) = note.split("target ").nth(1) else {
        return serde_json::Value::Null;
    };
    let Some((goal, verdict)) = rest.split_once(": **") else {
        return serde_json::Value::Null;
    };
    let met = verdict.starts_with("met");
    serde_json::json!({ "goal": goal, "met": met })
}

/// Time ratio `figure / floor` ("how many times the floor's time"; lower is better).
pub fn time_ratio(figure: Duration, floor: Duration) -> f64 {
    figure.as_secs_f64() / floor.as_secs_f64().max(1e-12)
}

// ---------------------------------------------------------------------------------------
// Heap peak: a counting global allocator, switched on only around the measured call
// ---------------------------------------------------------------------------------------

static COUNTING: AtomicBool = AtomicBool::new(false);
static CURRENT: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// The system allocator, counting live bytes and their peak while [`heap_peak`] runs.
/// Off, it costs one relaxed load per call.
pub struct CountingAlloc;

fn grow(by: isize) {
    let now = CURRENT.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to `System`; the counting only reads sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            grow(layout.size() as isize);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) };
        if COUNTING.load(Ordering::Relaxed) {
            CURRENT.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: same contract as ours.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() && COUNTING.load(Ordering::Relaxed) {
            grow(new_size as isize - layout.size() as isize);
        }
        p
    }
}

/// Runs `f` and returns the peak of Rust heap bytes allocated during it (net of what it
/// freed), with `f`'s value. Memory that SQLite allocates itself (its page cache) is not
/// Rust heap: see [`rss_peak`].
pub fn heap_peak<T>(f: impl FnOnce() -> Res<T>) -> Res<(i64, T)> {
    CURRENT.store(0, Ordering::SeqCst);
    PEAK.store(0, Ordering::SeqCst);
    COUNTING.store(true, Ordering::SeqCst);
    let value = f();
    COUNTING.store(false, Ordering::SeqCst);
    Ok((PEAK.load(Ordering::SeqCst) as i64, value?))
}

fn status_kib(field: &str) -> Option<i64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs `f` after resetting the process's peak RSS (`/proc/self/clear_refs`), and returns
/// `(VmRSS before, VmHWM after)` in bytes, when Linux reports them.
pub fn rss_peak<T>(f: impl FnOnce() -> Res<T>) -> Res<(Option<(i64, i64)>, T)> {
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let before = status_kib("VmRSS:");
    let value = f()?;
    let after = status_kib("VmHWM:");
    Ok((
        match (reset, before, after) {
            (true, Some(b), Some(a)) => Some((b * 1024, a * 1024)),
            _ => None,
        },
        value,
    ))
}

/// The process's CPU time so far (user + system, all threads, `/proc/self/stat`, in
/// USER_HZ = 100 ticks per second as Linux reports it).
pub fn cpu_time() -> Option<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are 12 and 13 after the comm field.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(Duration::from_millis((utime + stime) * 10))
}
