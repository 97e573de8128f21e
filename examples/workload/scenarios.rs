//! W1..W5 of `docs/workload.md`, generic over the backend's stores, each figure
//! beside its floor measured in the same run (see `raw.rs`).

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use eventsource::{
    Aggregate, AggregateRepository, AggregateRoot, Codec, EventStore, Jitter, MissReason, RetryPolicy, Snapshot,
    SnapshotMode, SnapshotStore, SnapshotUse, SnapshotWrite,
};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use uuid::Uuid;

use super::domain::{event_at, evolved_event_at, Blob, Order, OrderEvolved, OrderV2, ORDER};
use super::measure::{
    blocks, bytes, cpu_time, dur, heap_peak, paired, paired3, per_sec, rate, rss_peak, thousands, time_ratio, timed,
    with_setup, Budget, Res, Row, Samples, Table, BLOCK,
};
use super::raw::Floors;

/// The run's settings and its table.
pub struct Ctx {
    /// `--quick`: fewer sizes, runs and streams; a minute per backend.
    pub quick: bool,
    /// The results.
    pub table: Table,
    /// The insert-commit floor's median and label, from W3 (used by W4).
    pub insert_floor: Option<(Duration, &'static str)>,
    /// `--only`: the scenarios to run (all when `None`).
    pub only: Option<Vec<String>>,
}

impl Ctx {
    /// A context for a full or quick run.
    pub fn new(quick: bool, only: Option<Vec<String>>) -> Self {
        Self {
            quick,
            table: Table::default(),
            insert_floor: None,
            only,
        }
    }

    /// Whether `--only` selects the scenario `name` (`w1`..`w5`, `codec`).
    pub fn wants(&self, name: &str) -> bool {
        self.only.as_ref().is_none_or(|o| o.iter().any(|n| n == name))
    }

    /// The time budget of one figure.
    pub fn budget(&self) -> Budget {
        if self.quick {
            Budget {
                time: Duration::from_millis(250),
                min_runs: 5,
                max_runs: 200,
            }
        } else {
            Budget {
                time: Duration::from_secs(4),
                min_runs: 21,
                max_runs: 3000,
            }
        }
    }

    /// A smaller budget, for figures that need an untimed setup between runs.
    pub fn small_budget(&self) -> Budget {
        let b = self.budget();
        Budget {
            time: b.time / 4,
            min_runs: if self.quick { 3 } else { 11 },
            max_runs: b.max_runs / 4,
        }
    }

    /// W1's stream lengths.
    pub fn w1_sizes(&self) -> &'static [u64] {
        if self.quick {
            &[100, 1_000, 10_000]
        } else {
            &[100, 1_000, 10_000, 100_000]
        }
    }
}

pub fn check(ok: bool, what: impl FnOnce() -> String) -> Res<()> {
    if ok {
        Ok(())
    } else {
        Err(what().into())
    }
}

/// Follows a stream as it is read: versions 1, 2, 3, ... without a gap, and distinct ids.
#[derive(Debug)]
pub struct StreamCheck {
    id: Uuid,
    next: u64,
    ids: HashSet<Uuid>,
}

impl StreamCheck {
    /// A check of `id`'s stream, before its first event.
    pub fn new(id: Uuid) -> Self {
        Self {
            id,
            next: 1,
            ids: HashSet::new(),
        }
    }

    /// One event read: its version must be the next one.
    pub fn visit(&mut self, version: u64, event_id: Uuid) -> eventsource::Result<()> {
        if version != self.next {
            return Err(eventsource::Error::CorruptStream {
                aggregate_type: ORDER.into(),
                aggregate_id: self.id,
                expected: self.next,
                found: version,
            });
        }
        self.ids.insert(event_id);
        self.next += 1;
        Ok(())
    }

    /// After the read: exactly `expected` events, with as many distinct ids.
    pub fn finish(&self, expected: u64, what: &str) -> Res<()> {
        let stored = self.next - 1;
        check(stored == expected && self.ids.len() as u64 == expected, || {
            format!(
                "{what} VERIFY FAILED: stream {} holds {stored} events ({} distinct ids), expected exactly {expected} numbered 1..={expected}",
                self.id,
                self.ids.len()
            )
        })
    }
}

/// Reads `id`'s stream and checks that it holds exactly `expected` events, numbered
/// 1..=`expected`, with distinct ids.
pub fn verify_stream<ES: EventStore>(events: &ES, id: Uuid, expected: u64, what: &str) -> Res<()> {
    let mut stream = StreamCheck::new(id);
    events.read_stream(id, ORDER, 0, &mut |r| stream.visit(r.version, r.event_id))?;
    stream.finish(expected, what)
}

/// A progress bar on stderr.
pub fn bar(len: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(len), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template("{msg:>24} [{bar:40}] {pos}/{len} ({per_sec}, eta {eta})") {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(what.to_owned());
    bar
}

/// Appends a stream of `n` events (`OrderCreated` then items) in saves of at most 1,000
/// events; returns the root at version `n`.
pub fn build_stream<A: Aggregate, ES: EventStore>(
    repo: &AggregateRepository<A, ES>,
    id: Uuid,
    n: u64,
) -> Res<AggregateRoot<A>>
where
    A::Event: From<super::domain::OrderEvent> + eventsource::EventOf<A>,
{
    let mut root = AggregateRoot::<A>::new(id);
    for v in 1..=n {
        root.record(A::Event::from(event_at(v)));
        if root.uncommitted_events().len() >= 1_000 {
            repo.save(&mut root)?;
        }
    }
    repo.save(&mut root)?;
    Ok(root)
}

/// Appends a W1u stream of `n` current-version events (`OrderCreated` then
/// [`ItemAddedV3`](super::domain::ItemAddedV3)s) in saves of at most 1,000 events.
fn build_evolved_stream<ES: EventStore>(
    repo: &AggregateRepository<OrderEvolved, ES>,
    id: Uuid,
    n: u64,
) -> Res<AggregateRoot<OrderEvolved>> {
    let mut root = AggregateRoot::<OrderEvolved>::new(id);
    for v in 1..=n {
        root.record(evolved_event_at(v));
        if root.uncommitted_events().len() >= 1_000 {
            repo.save(&mut root)?;
        }
    }
    repo.save(&mut root)?;
    Ok(root)
}

fn target(met: bool, text: &str) -> String {
    format!("target {text}: **{}**", if met { "met" } else { "MISSED" })
}

/// W1: load one stream of N events in settings a, b, c; and W1u (issue 10): the same
/// stream replayed by [`OrderEvolved`], whose `ItemAdded` is at version 3, so that every
/// item is a version-1 event upcast in two steps, beside a stream of N current-version
/// events replayed by the same aggregate.
pub fn w1<ES, SS, F>(ctx: &mut Ctx, events: &ES, snapshots: &SS, floors: &mut F, memory_backend: bool) -> Res<()>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
    F: Floors,
{
    let plain = AggregateRepository::<Order, ES>::new(events.clone());
    let snap = AggregateRepository::<Order, ES>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?;
    let v2_manual = AggregateRepository::<OrderV2, ES>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?
        .snapshot_mode(SnapshotMode::Manual);
    let v2_sync = AggregateRepository::<OrderV2, ES>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?
        .snapshot_mode(SnapshotMode::Sync);
    let evolved = AggregateRepository::<OrderEvolved, ES>::new(events.clone());
    let budget = ctx.budget();
    let mut peaks = Vec::new();
    for &n in ctx.w1_sizes() {
        eprintln!("W1: building a stream of {} events", thousands(n));
        let id = Uuid::now_v7();
        let root = build_stream(&plain, id, n)?;
        let expected = root.state().clone();
        eprintln!("W1u: building a stream of {} current-version events", thousands(n));
        let id_current = Uuid::now_v7();
        let current_root = build_evolved_stream(&evolved, id_current, n)?;
        let expected_current = current_root.state().clone();
        // (b)'s snapshot, at the last threshold boundary crossed: version n (a multiple of 100).
        check(snap.create_snapshot(&root)? == SnapshotWrite::Written, || {
            "W1: snapshot not written".into()
        })?;
        floors.prepare_stream(id)?;
        floors.settle()?;

        // Every path is checked once before it is timed.
        let (r, o) = plain.load_with_outcome(id)?;
        check(r.state() == &expected && o.events_replayed == n, || {
            format!("W1a: wrong load {o:?}")
        })?;
        let (r, o) = snap.load_with_outcome(id)?;
        check(
            r.state() == &expected && o.snapshot == SnapshotUse::Used { version: n } && o.events_replayed == 0,
            || format!("W1b: the snapshot at {n} was not used: {o:?}"),
        )?;
        let (r, o) = v2_manual.load_with_outcome(id)?;
        check(
            Order::from(r.state().clone()) == expected
                && o.snapshot == SnapshotUse::Discarded(MissReason::SchemaMismatch)
                && o.events_replayed == n
                && !o.repaired,
            || format!("W1c: expected a schema-mismatch replay without repair: {o:?}"),
        )?;
        let (r, o) = evolved.load_with_outcome(id)?;
        check(
            Order::from(r.state().clone()) == expected && o.events_replayed == n && o.events_skipped == 0,
            || format!("W1u: wrong upcast replay {o:?}"),
        )?;
        let (r, o) = evolved.load_with_outcome(id_current)?;
        check(
            r.state() == &expected_current && o.events_replayed == n && o.events_skipped == 0,
            || format!("W1u: wrong current-version replay {o:?}"),
        )?;
        let (count, state) = floors.replay(id)?;
        check(count == n && state == expected, || "W1: the bare replay differs".into())?;

        let nn = thousands(n);
        // (a) no snapshot store.
        let (fig, floor) = paired(
            budget,
            || {
                black_box(plain.load(id)?);
                Ok(())
            },
            || {
                black_box(floors.replay(id)?);
                Ok(())
            },
        )?;
        let (heap, _) = heap_peak(|| Ok(black_box(plain.load(id)?)))?;
        let (rss, _) = rss_peak(|| Ok(black_box(plain.load(id)?)))?;
        let rss_text = rss.map_or("RSS n/a".into(), |(before, peak)| {
            format!("RSS peak +{}", bytes(peak - before))
        });
        peaks.push(format!("N={nn}: heap {}, {rss_text}", bytes(heap)));
        let ratio = floor.median().as_secs_f64() / fig.median().as_secs_f64();
        let goal = if memory_backend { 0.8 } else { 0.7 };
        let mut note = format!(
            "{} runs; {} (floor {}); heap peak +{}; {rss_text}",
            fig.len(),
            per_sec(rate(n, fig.median()), "ev"),
            per_sec(rate(n, floor.median()), "ev"),
            bytes(heap),
        );
        if n == 100_000 {
            note.push_str(&format!("; {}", target(ratio >= goal, &format!("≥{goal}x"))));
        }
        ctx.table.push(Row {
            scenario: format!("W1a full replay, N={nn}"),
            figure: "load(), no snapshot store".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("{}: {}", floors.replay_label(), dur(floor.median())),
            ratio: format!("{ratio:.2}x floor ev/s"),
            note,
        });

        // (u) W1u: the same aggregate, with `ItemAdded` at version 3, replays N
        // current-version events and the W1 stream of N version-1 events (each upcast
        // 1 -> 2 -> 3), in turn with the bare loop over the version-1 stream.
        let (current, upcast, floor) = paired3(
            budget,
            || {
                black_box(evolved.load(id_current)?);
                Ok(())
            },
            || {
                black_box(evolved.load(id)?);
                Ok(())
            },
            || {
                black_box(floors.replay(id)?);
                Ok(())
            },
        )?;
        let floor_label = format!("{} (v1 stream): {}", floors.replay_label(), dur(floor.median()));
        let ratio = floor.median().as_secs_f64() / current.median().as_secs_f64();
        ctx.table.push(Row {
            scenario: format!("W1u current-version replay, N={nn}"),
            figure: "load() of N ItemAdded v3 events, no snapshot store".into(),
            median: dur(current.median()),
            p99: dur(current.p99()),
            floor: floor_label.clone(),
            ratio: format!("{ratio:.2}x floor ev/s"),
            note: format!(
                "{} runs; {}; {:.2}x W1a's time (W1a measured separately)",
                current.len(),
                per_sec(rate(n, current.median()), "ev"),
                time_ratio(current.median(), fig.median()),
            ),
        });
        let ratio = floor.median().as_secs_f64() / upcast.median().as_secs_f64();
        let speed = current.median().as_secs_f64() / upcast.median().as_secs_f64();
        let mut note = format!(
            "{} runs; {}; {speed:.2}x the current-version replay's ev/s",
            upcast.len(),
            per_sec(rate(n, upcast.median()), "ev"),
        );
        if n == 100_000 {
            note.push_str(&format!("; {}", target(speed >= 0.8, "≥0.8x current-version")));
        }
        ctx.table.push(Row {
            scenario: format!("W1u v1 upcast ×2 replay, N={nn}"),
            figure: "load() of N ItemAdded v1 events, upcast 1→2→3".into(),
            median: dur(upcast.median()),
            p99: dur(upcast.p99()),
            floor: floor_label,
            ratio: format!("{ratio:.2}x floor ev/s"),
            note,
        });

        // (b) snapshot store, snapshot at version n.
        let (fig, floor) = paired(
            budget,
            || {
                black_box(snap.load(id)?);
                Ok(())
            },
            || {
                black_box(floors.point_read(id)?);
                Ok(())
            },
        )?;
        let ratio = time_ratio(fig.median(), floor.median());
        ctx.table.push(Row {
            scenario: format!("W1b load with snapshot, N={nn}"),
            figure: "load(), snapshot at N, threshold 100; alternating calls".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("{}: {}", floors.point_label(), dur(floor.median())),
            ratio: format!("{ratio:.2}x floor time"),
            note: format!("{} runs; {}", fig.len(), target(ratio <= 2.0, "≤2x")),
        });
        let (fig, floor) = blocks(
            budget,
            || {
                black_box(snap.load(id)?);
                Ok(())
            },
            || {
                black_box(floors.point_read(id)?);
                Ok(())
            },
        )?;
        let ratio = time_ratio(fig.median(), floor.median());
        ctx.table.push(Row {
            scenario: format!("W1b load with snapshot, N={nn}"),
            figure: format!("the same, timed in blocks of {BLOCK}"),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("{}: {}", floors.point_label(), dur(floor.median())),
            ratio: format!("{ratio:.2}x floor time"),
            note: format!(
                "{} blocks, order swapped each round; {}",
                fig.len(),
                target(ratio <= 2.0, "≤2x")
            ),
        });

        // (c) schema raised with no upcast, Manual mode: the schema-1 snapshot stays, so
        // every run is the same miss and full replay.
        let (fig, floor) = paired(
            budget,
            || {
                black_box(v2_manual.load(id)?);
                Ok(())
            },
            || {
                black_box(floors.replay(id)?);
                Ok(())
            },
        )?;
        let ratio = floor.median().as_secs_f64() / fig.median().as_secs_f64();
        ctx.table.push(Row {
            scenario: format!("W1c schema 2, no upcast, N={nn}"),
            figure: "load(), Manual mode (no repair)".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("{}: {}", floors.replay_label(), dur(floor.median())),
            ratio: format!("{ratio:.2}x floor ev/s"),
            note: format!("{} runs; schema-1 snapshot ignored, {} events replayed", fig.len(), nn),
        });

        // (c') the same in Sync mode: each load replays and writes the repair snapshot
        // (schema 2); the schema-1 snapshot is restored, untimed, before each run.
        let old = snapshots
            .get_snapshot(id, ORDER)?
            .ok_or("W1c: the schema-1 snapshot is gone")?;
        let restore = || -> Res<()> {
            snapshots.delete_snapshot(id, ORDER)?;
            check(snapshots.save_snapshot(&old)? == SnapshotWrite::Written, || {
                "W1c: restore failed".into()
            })
        };
        let fig = with_setup(ctx.small_budget(), restore, || {
            let (_, o) = v2_sync.load_with_outcome(id)?;
            check(o.repaired, || format!("W1c': expected a repair: {o:?}"))
        })?;
        restore()?;
        let floor_median = floor.median();
        let ratio = floor_median.as_secs_f64() / fig.median().as_secs_f64();
        ctx.table.push(Row {
            scenario: format!("W1c' schema 2, no upcast, N={nn}"),
            figure: "load(), Sync mode (replay + repair write)".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("{}: {}", floors.replay_label(), dur(floor_median)),
            ratio: format!("{ratio:.2}x floor ev/s"),
            note: format!(
                "{} runs; schema-1 snapshot restored before each run (untimed)",
                fig.len()
            ),
        });

        // (b') the snapshot at N and a tail of five events after it (appended last, so the
        // scenarios above saw the stream end at N), against the point read of the snapshot
        // row plus the range read of the same five event rows.
        let mut root = plain.load(id)?;
        for v in n + 1..=n + TAIL {
            root.record(event_at(v));
        }
        plain.save(&mut root)?;
        floors.prepare_stream(id)?;
        let (r, o) = snap.load_with_outcome(id)?;
        check(
            o.snapshot == SnapshotUse::Used { version: n } && o.events_replayed == TAIL && r.version() == n + TAIL,
            || format!("W1b': expected the snapshot at {n} and {TAIL} events: {o:?}"),
        )?;
        let load = || {
            black_box(snap.load(id)?);
            Ok(())
        };
        let (alternating, alternating_floor) = paired(budget, load, || {
            black_box(floors.tail_read(id, n)?);
            Ok(())
        })?;
        let (blocked, blocked_floor) = blocks(budget, load, || {
            black_box(floors.tail_read(id, n)?);
            Ok(())
        })?;
        for (order, fig, floor) in [
            ("alternating calls", &alternating, &alternating_floor),
            ("timed in blocks", &blocked, &blocked_floor),
        ] {
            let ratio = time_ratio(fig.median(), floor.median());
            ctx.table.push(Row {
                scenario: format!("W1b' snapshot + {TAIL}-event tail, N={nn}"),
                figure: format!("load(), snapshot at N, {TAIL} events after it; {order}"),
                median: dur(fig.median()),
                p99: dur(fig.p99()),
                floor: format!("{} + range read: {}", floors.point_label(), dur(floor.median())),
                ratio: format!("{ratio:.2}x floor time"),
                note: format!("{} samples; {}", fig.len(), target(ratio <= 2.0, "≤2x")),
            });
        }
    }
    ctx.table.push(Row {
        scenario: "W1a peak memory across N".into(),
        figure: "heap (Rust allocator) and RSS growth during one load()".into(),
        median: "—".into(),
        p99: "—".into(),
        floor: "—".into(),
        ratio: "—".into(),
        note: peaks.join("; "),
    });
    Ok(())
}

/// The tail of W1b': events after the snapshot.
const TAIL: u64 = 5;

/// W2: save and get of one snapshot of each blob size.
pub fn w2<SS: SnapshotStore, F: Floors>(ctx: &mut Ctx, snapshots: &SS, floors: &mut F) -> Res<()> {
    let budget = ctx.budget();
    for size in [1_000usize, 50_000, 500_000] {
        let id = Uuid::now_v7();
        let state = snapshots.codec().encode(&Blob::of_size(size))?;
        let floor_state = state.clone();
        let stored = state.len();
        let mut snap = Snapshot {
            aggregate_id: id,
            aggregate_type: "Blob".into(),
            version: 0,
            schema_version: 1,
            state,
            created_at: eventsource::time::now(),
        };
        let (fig, floor) = paired(
            budget,
            || {
                // A higher version each time, so that every save really writes (rule 4).
                snap.version += 1;
                let w = snapshots.save_snapshot(&snap)?;
                check(w == SnapshotWrite::Written, || {
                    format!("W2: save kept the existing snapshot: {w:?}")
                })
            },
            || floors.blob_put(&floor_state),
        )?;
        let ss = thousands(size as u64);
        ctx.table.push(Row {
            scenario: format!("W2 save_snapshot, S={ss} B"),
            figure: "save_snapshot() (upsert, new version)".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("1-row INSERT commit, same state: {}", dur(floor.median())),
            ratio: format!("{:.2}x floor time", time_ratio(fig.median(), floor.median())),
            note: format!("{} runs; stored state {}", fig.len(), bytes(stored as i64)),
        });
        // Checked once, untimed: the stored state decodes to the blob (a JSONB column
        // hands back its own rendering of the JSON, so sizes may differ by a byte).
        let got = snapshots.get_snapshot(id, "Blob")?.ok_or("W2: snapshot missing")?;
        let blob: Blob = snapshots.codec().decode(&got.state)?;
        check(blob.blob.len() == size, || "W2: the snapshot read back differs".into())?;
        let (fig, floor) = paired(
            budget,
            || {
                let s = snapshots.get_snapshot(id, "Blob")?.ok_or("W2: snapshot missing")?;
                black_box(s.state);
                Ok(())
            },
            || {
                check(floors.blob_get(id, "Blob")? >= size, || {
                    "W2 floor: state too short".into()
                })
            },
        )?;
        ctx.table.push(Row {
            scenario: format!("W2 get_snapshot, S={ss} B"),
            figure: "get_snapshot()".into(),
            median: dur(fig.median()),
            p99: dur(fig.p99()),
            floor: format!("point SELECT of the same row: {}", dur(floor.median())),
            ratio: format!("{:.2}x floor time", time_ratio(fig.median(), floor.median())),
            note: format!("{} runs", fig.len()),
        });
    }
    floors.cleanup()
}

/// W3: one writer, one stream: one-event saves, then ten-event saves.
pub fn w3<ES: EventStore + Clone, F: Floors>(ctx: &mut Ctx, events: &ES, floors: &mut F, durable: bool) -> Res<()> {
    let repo = AggregateRepository::<Order, ES>::new(events.clone());
    let count: u64 = if ctx.quick { 1_000 } else { 10_000 };
    eprintln!(
        "W3: {} one-event saves, each followed by one floor insert",
        thousands(count)
    );
    let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
    let (mut saves, mut floor) = (
        Samples::with_capacity(count as usize),
        Samples::with_capacity(count as usize),
    );
    for _ in 0..count {
        root.record(event_at(root.version() + 1));
        let (d, out) = timed(|| Ok(repo.save(&mut root)?))?;
        check(out.appended == 1, || "W3: a save appended other than 1 event".into())?;
        saves.push(d);
        floor.push(timed(|| floors.insert_commit())?.0);
    }
    let one_rate = rate(count, saves.total());
    let ratio = time_ratio(saves.median(), floor.median());
    ctx.insert_floor = Some((floor.median(), floors.insert_label()));
    ctx.table.push(Row {
        scenario: format!("W3 1-event saves ({})", thousands(count)),
        figure: "save() with expected version".into(),
        median: dur(saves.median()),
        p99: dur(saves.p99()),
        floor: format!("{}: {}", floors.insert_label(), dur(floor.median())),
        ratio: format!("{ratio:.2}x floor time"),
        note: format!(
            "{} (floor {}); {}",
            per_sec(one_rate, "ev"),
            per_sec(rate(count, floor.total()), "ev"),
            if durable {
                target(ratio <= 1.3, "≤1.3x")
            } else {
                "no durability: the targets are for SQLite and PostgreSQL".into()
            }
        ),
    });

    // The same saves timed in blocks of BLOCK: a block of saves, then a block of floor
    // inserts, the order swapped each round; each sample is a block's mean per call.
    eprintln!("W3: {} one-event saves timed in blocks of {BLOCK}", thousands(count));
    let (mut saves, mut floor) = (Samples::default(), Samples::default());
    for round in 0..(count as usize).div_ceil(BLOCK) {
        let mut save_block = || -> Res<Duration> {
            let start = Instant::now();
            for _ in 0..BLOCK {
                root.record(event_at(root.version() + 1));
                let out = repo.save(&mut root)?;
                check(out.appended == 1, || "W3: a save appended other than 1 event".into())?;
            }
            Ok(start.elapsed() / BLOCK as u32)
        };
        let mut floor_block = || -> Res<Duration> {
            let start = Instant::now();
            for _ in 0..BLOCK {
                floors.insert_commit()?;
            }
            Ok(start.elapsed() / BLOCK as u32)
        };
        if round % 2 == 0 {
            saves.push(save_block()?);
            floor.push(floor_block()?);
        } else {
            floor.push(floor_block()?);
            saves.push(save_block()?);
        }
    }
    let ratio = time_ratio(saves.median(), floor.median());
    ctx.table.push(Row {
        scenario: format!("W3 1-event saves ({})", thousands(count)),
        figure: format!("the same, timed in blocks of {BLOCK}"),
        median: dur(saves.median()),
        p99: dur(saves.p99()),
        floor: format!("{}: {}", floors.insert_label(), dur(floor.median())),
        ratio: format!("{ratio:.2}x floor time"),
        note: format!(
            "{} blocks, order swapped each round; {}",
            saves.len(),
            if durable {
                target(ratio <= 1.3, "≤1.3x")
            } else {
                "no durability: the targets are for SQLite and PostgreSQL".into()
            }
        ),
    });

    eprintln!("W3: {} ten-event saves", thousands(count));
    let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
    let mut saves = Samples::with_capacity(count as usize);
    for _ in 0..count {
        for _ in 0..10 {
            root.record(event_at(root.version() + 1));
        }
        let (d, out) = timed(|| Ok(repo.save(&mut root)?))?;
        check(out.appended == 10, || "W3: a save appended other than 10 events".into())?;
        saves.push(d);
    }
    let ten_rate = rate(count * 10, saves.total());
    let ratio = ten_rate / one_rate;
    ctx.table.push(Row {
        scenario: format!("W3 10-event saves ({})", thousands(count)),
        figure: "save() with expected version".into(),
        median: dur(saves.median()),
        p99: dur(saves.p99()),
        floor: format!("1-event saves: {}", per_sec(one_rate, "ev")),
        ratio: format!("{ratio:.2}x 1-event ev/s"),
        note: format!(
            "{}; {}",
            per_sec(ten_rate, "ev"),
            if durable {
                target(ratio >= 5.0, "≥5x")
            } else {
                "no commit to amortise in memory".into()
            }
        ),
    });
    Ok(())
}

/// W3c (issue 12, group commit): 8 writers, each on its own aggregate, one-event saves
/// with expected version, on a store with group commit (`grouped`) and on the same
/// database without it (`plain`); beside a lone writer's one-event rate on each, timed
/// in alternating blocks in the same run. Every stream is verified afterwards (exactly N
/// events, numbered 1..N). `target` is the required multiple of the lone writer's rate.
pub fn w3c<ES: EventStore + Clone>(ctx: &mut Ctx, grouped: &ES, plain: &ES, target_x: f64) -> Res<()> {
    const WRITERS: usize = 8;
    const BLOCK: u64 = 50;
    let saves: u64 = if ctx.quick { 200 } else { 2_000 };
    let lone: u64 = if ctx.quick { 400 } else { 4_000 };
    let on_repo = AggregateRepository::<Order, ES>::new(grouped.clone());
    let off_repo = AggregateRepository::<Order, ES>::new(plain.clone());

    eprintln!(
        "W3c: a lone writer, {} one-event saves with group commit on and off (alternating blocks)",
        thousands(lone)
    );
    let (mut on_root, mut off_root) = (
        AggregateRoot::<Order>::new(Uuid::now_v7()),
        AggregateRoot::<Order>::new(Uuid::now_v7()),
    );
    let (mut on_lat, mut off_lat) = (
        Samples::with_capacity(lone as usize),
        Samples::with_capacity(lone as usize),
    );
    let block = |repo: &AggregateRepository<Order, ES>, root: &mut AggregateRoot<Order>, lat: &mut Samples| {
        for _ in 0..BLOCK {
            root.record(event_at(root.version() + 1));
            let (d, out) = timed(|| Ok(repo.save(root)?))?;
            check(out.appended == 1, || "W3c: a save appended other than 1 event".into())?;
            lat.push(d);
        }
        Res::Ok(())
    };
    for i in 0..lone / BLOCK {
        if i % 2 == 0 {
            block(&on_repo, &mut on_root, &mut on_lat)?;
            block(&off_repo, &mut off_root, &mut off_lat)?;
        } else {
            block(&off_repo, &mut off_root, &mut off_lat)?;
            block(&on_repo, &mut on_root, &mut on_lat)?;
        }
    }
    let lone_on = rate(on_lat.len() as u64, on_lat.total());
    let lone_off = rate(off_lat.len() as u64, off_lat.total());
    ctx.table.push(Row {
        scenario: format!("W3c lone writer ({} saves each)", thousands(on_lat.len() as u64)),
        figure: "1-event save(), group commit on".into(),
        median: dur(on_lat.median()),
        p99: dur(on_lat.p99()),
        floor: format!("group commit off: {}", dur(off_lat.median())),
        ratio: format!("{:.2}x off median time", time_ratio(on_lat.median(), off_lat.median())),
        note: format!(
            "{} on, {} off (alternating blocks of {BLOCK})",
            per_sec(lone_on, "ev"),
            per_sec(lone_off, "ev")
        ),
    });

    let concurrent = |repo: &AggregateRepository<Order, ES>, label: &str| -> Res<(f64, Samples, Vec<Uuid>)> {
        eprintln!(
            "W3c: {WRITERS} writers x {} one-event saves, each on its own aggregate, {label}",
            thousands(saves)
        );
        let barrier = Barrier::new(WRITERS);
        let writer = || -> Res<(Uuid, Samples)> {
            let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
            let mut lat = Samples::with_capacity(saves as usize);
            barrier.wait();
            for _ in 0..saves {
                root.record(event_at(root.version() + 1));
                let (d, out) = timed(|| Ok(repo.save(&mut root)?))?;
                check(out.appended == 1, || "W3c: a save appended other than 1 event".into())?;
                lat.push(d);
            }
            Ok((root.id(), lat))
        };
        let start = Instant::now();
        let results: Vec<Res<(Uuid, Samples)>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..WRITERS).map(|_| s.spawn(writer)).collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err("W3c: a writer panicked".into())))
                .collect()
        });
        let wall = start.elapsed();
        let mut all = Samples::default();
        let mut ids = Vec::with_capacity(WRITERS);
        for r in results {
            let (id, lat) = r?;
            all.extend(&lat);
            ids.push(id);
        }
        Ok((rate(WRITERS as u64 * saves, wall), all, ids))
    };
    let (grouped_rate, grouped_lat, grouped_ids) = concurrent(&on_repo, "group commit on")?;
    let (plain_rate, _, plain_ids) = concurrent(&off_repo, "group commit off")?;
    // The proof: each stream holds exactly `saves` events, numbered 1..=saves, distinct ids.
    for &id in grouped_ids.iter().chain(&plain_ids) {
        verify_stream(grouped, id, saves, "W3c")?;
    }
    let speedup = grouped_rate / lone_on;
    ctx.table.push(Row {
        scenario: format!("W3c {WRITERS} writers x {} saves", thousands(saves)),
        figure: "1-event save(), own aggregate each, group commit".into(),
        median: dur(grouped_lat.median()),
        p99: dur(grouped_lat.p99()),
        floor: format!("lone writer: {}", per_sec(lone_on, "ev")),
        ratio: format!("{speedup:.2}x lone ev/s"),
        note: format!(
            "{} with group commit ({} without: {:.2}x lone); {}; VERIFIED: {} streams of exactly {} events numbered 1..{}",
            per_sec(grouped_rate, "ev"),
            per_sec(plain_rate, "ev"),
            plain_rate / lone_on,
            target(speedup >= target_x, &format!("≥{target_x}x")),
            WRITERS * 2,
            thousands(saves),
            thousands(saves)
        ),
    });
    Ok(())
}

/// W4: 8 writers on one stream, each running its commands through the command API
/// (`execute_or_create` with a jittered exponential backoff, [`w4_policy`]): first taking
/// turns (the repository's default), then racing (`command_turns(false)`, every writer for
/// itself, as separate processes would), each on a stream of its own. Each stream must end
/// gap-free with exactly one event per command.
pub fn w4<ES, SS>(ctx: &mut Ctx, events: &ES, snapshots: &SS) -> Res<()>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    w4_run(ctx, events, snapshots, true)?;
    w4_run(ctx, events, snapshots, false)
}

fn w4_run<ES, SS>(ctx: &mut Ctx, events: &ES, snapshots: &SS, turns: bool) -> Res<()>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    const WRITERS: usize = 8;
    let commands: u64 = if ctx.quick { 100 } else { 1_000 };
    let policy = w4_policy()?;
    let repo = AggregateRepository::<Order, ES>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?
        .with_retry_policy(policy)
        .command_turns(turns);
    let how = if turns { "taking turns" } else { "racing" };
    let id = Uuid::now_v7();
    let barrier = Barrier::new(WRITERS);
    let retries = AtomicU64::new(0);
    let most_attempts = AtomicU64::new(0);
    eprintln!(
        "W4: {WRITERS} writers x {} commands on one stream, {how}; retry: up to {} attempts, {:?} doubling to {:?}, {:?} jitter",
        thousands(commands),
        policy.max_attempts(),
        policy.base_delay(),
        policy.max_delay(),
        policy.jitter()
    );
    let writer = || -> Res<Samples> {
        let mut lat = Samples::with_capacity(commands as usize);
        barrier.wait();
        for _ in 0..commands {
            let start = Instant::now();
            let done = repo
                .execute_or_create(id, |root| {
                    root.record(event_at(root.version() + 1));
                    Ok::<_, std::convert::Infallible>(())
                })
                .map_err(|e| format!("W4: a writer's command failed: {}", eventsource::error::Report::new(&e)))?;
            lat.push(start.elapsed());
            retries.fetch_add(u64::from(done.attempts - 1), Ordering::Relaxed);
            most_attempts.fetch_max(u64::from(done.attempts), Ordering::Relaxed);
        }
        Ok(lat)
    };
    let start = Instant::now();
    let results: Vec<Res<Samples>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS).map(|_| s.spawn(writer)).collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|_| Err("W4: a writer panicked".into())))
            .collect()
    });
    let wall = start.elapsed();
    let mut all = Samples::default();
    for r in results {
        all.extend(&r?);
    }
    // The proof: exactly WRITERS * commands events, numbered 1..=total, no gap, no duplicate.
    let total = WRITERS as u64 * commands;
    verify_stream(events, id, total, "W4")?;
    let loaded = repo.load(id)?;
    check(loaded.version() == total, || {
        format!("W4 VERIFY FAILED: load reached {}", loaded.version())
    })?;
    let committed = rate(total, wall);
    // Every retry follows a conflict (no command gave up: that fails the run above).
    let conflicts = retries.load(Ordering::Relaxed);
    let (floor_text, ratio) = match ctx.insert_floor {
        Some((f, label)) => {
            let floor_rate = rate(1, f);
            (
                format!("{label}: {}", per_sec(floor_rate, "ev")),
                format!("{:.2}x floor ev/s", committed / floor_rate),
            )
        }
        None => ("—".into(), "—".into()),
    };
    ctx.table.push(Row {
        scenario: format!("W4 {WRITERS} writers x {} commands, {how}", thousands(commands)),
        figure: "command latency (execute: load, record, save, retries)".into(),
        median: dur(all.median()),
        p99: dur(all.p99()),
        floor: floor_text,
        ratio,
        note: format!(
            "{} committed in {}; {} conflicts = {} retries (at most {} attempts for one command; backoff {:?}..{:?}); VERIFIED: {} events numbered 1..{} without gap or duplicate",
            per_sec(committed, "ev"),
            dur(wall),
            thousands(conflicts),
            thousands(conflicts),
            most_attempts.load(Ordering::Relaxed),
            policy.base_delay(),
            policy.max_delay(),
            thousands(total),
            thousands(total)
        ),
    });
    Ok(())
}

/// W4's retry policy: the library's default with a high attempt limit (W4 must commit
/// every command), overridable for tuning with
/// `EVENTSOURCE_W4_RETRY=<base µs>,<cap µs>[,full|equal|none]`.
fn w4_policy() -> Res<RetryPolicy> {
    let policy = RetryPolicy::default().with_max_attempts(10_000);
    let Ok(spec) = std::env::var("EVENTSOURCE_W4_RETRY") else {
        return Ok(policy);
    };
    let mut parts = spec.split(',').map(str::trim);
    let base = parts.next().and_then(|b| b.parse::<u64>().ok());
    let cap = parts.next().and_then(|c| c.parse::<u64>().ok());
    let jitter = match parts.next() {
        None | Some("full") => Some(Jitter::Full),
        Some("equal") => Some(Jitter::Equal),
        Some("none") => Some(Jitter::None),
        Some(_) => None,
    };
    let (Some(base), Some(cap), Some(jitter)) = (base, cap, jitter) else {
        return Err(format!("EVENTSOURCE_W4_RETRY={spec}: expected <base µs>,<cap µs>[,full|equal|none]").into());
    };
    Ok(policy
        .with_base_delay(Duration::from_micros(base))
        .with_max_delay(Duration::from_micros(cap))
        .with_jitter(jitter))
}

/// W5: many aggregates: pre-populate their snapshots on every core, then load each once.
pub fn w5<ES, SS, F>(ctx: &mut Ctx, events: &ES, snapshots: &SS, floors: &mut F) -> Res<()>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
    F: Floors,
{
    let streams: u64 = if ctx.quick { 1_000 } else { 10_000 };
    const EVENTS: u64 = 150;
    let plain = AggregateRepository::<Order, ES>::new(events.clone());
    let snap = AggregateRepository::<Order, ES>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(100)?;
    let ids: Vec<Uuid> = (0..streams).map(|_| Uuid::now_v7()).collect();
    let b = bar(streams, "W5: creating streams");
    for &id in &ids {
        build_stream(&plain, id, EVENTS)?;
        b.inc(1);
    }
    b.finish();
    floors.settle()?;

    let b = bar(streams, "W5: prepopulate");
    let cpu0 = cpu_time();
    let start = Instant::now();
    let threads = Mutex::new(HashSet::new());
    let report = snap.prepopulate(&ids, |p| {
        if let Ok(mut t) = threads.lock() {
            t.insert(std::thread::current().id());
        }
        b.set_position(p.done as u64);
    })?;
    let workers = threads.lock().map_or(0, |t| t.len());
    let wall = start.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    b.finish();
    check(report.succeeded == ids.len() && report.failed.is_empty(), || {
        format!(
            "W5: prepopulate failed for {} aggregates: {:?}",
            report.failed.len(),
            report.failed.first()
        )
    })?;
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let busy = cpu.map_or("CPU time n/a".into(), |c| {
        format!(
            "CPU {} = {:.2} cores busy of {cores}",
            dur(c),
            c.as_secs_f64() / wall.as_secs_f64()
        )
    });
    ctx.table.push(Row {
        scenario: format!("W5 prepopulate {} x {EVENTS} events", thousands(streams)),
        figure: "prepopulate(), whole batch (wall)".into(),
        median: dur(wall),
        p99: "—".into(),
        floor: "—".into(),
        ratio: "—".into(),
        note: format!(
            "{}; {workers} worker threads reported progress ({cores} cores); {busy}; progress bar on stderr (indicatif)",
            per_sec(rate(streams, wall), "aggregates"),
        ),
    });

    floors.settle()?;
    eprintln!("W5: loading each aggregate once");
    let (mut loads, mut floor) = (Samples::with_capacity(ids.len()), Samples::with_capacity(ids.len()));
    for &id in &ids {
        let (d, (root, o)) = timed(|| Ok(snap.load_with_outcome(id)?))?;
        check(
            root.version() == EVENTS && o.snapshot == SnapshotUse::Used { version: EVENTS },
            || format!("W5: load did not use the pre-populated snapshot: {o:?}"),
        )?;
        loads.push(d);
        floors.prepare_stream(id)?;
        floor.push(timed(|| floors.point_read(id))?.0);
    }
    let ratio = time_ratio(loads.median(), floor.median());
    ctx.table.push(Row {
        scenario: format!("W5 load each of {} once", thousands(streams)),
        figure: "load(), snapshot at 150".into(),
        median: dur(loads.median()),
        p99: dur(loads.p99()),
        floor: format!("{}: {}", floors.point_label(), dur(floor.median())),
        ratio: format!("{ratio:.2}x floor time"),
        note: format!(
            "{} loads in {}; {}",
            thousands(streams),
            dur(loads.total()),
            per_sec(rate(streams, loads.total()), "aggregates")
        ),
    });

    // The same loads in batches: one round trip per chunk for the snapshots and tails.
    floors.settle()?;
    eprintln!("W5: load_many over every aggregate");
    let chunk = eventsource::repository::LOAD_MANY_CHUNK;
    // Passes over every aggregate until a second has gone by, so that the process CPU time
    // (counted in 10 ms ticks) means something.
    let cpu0 = cpu_time();
    let start = Instant::now();
    let mut passes: u32 = 0;
    while passes == 0 || start.elapsed() < Duration::from_secs(1) {
        for part in ids.chunks(chunk) {
            for (id, loaded) in snap.load_many_with_outcome(part)? {
                let (root, o) = loaded?;
                check(
                    root.version() == EVENTS && o.snapshot == SnapshotUse::Used { version: EVENTS },
                    || format!("W5: load_many did not use the pre-populated snapshot of {id}: {o:?}"),
                )?;
            }
        }
        passes += 1;
    }
    let total = start.elapsed();
    let cpu = cpu_time().zip(cpu0).map(|(a, b)| a.saturating_sub(b));
    let wall = total / passes;
    let each = wall / u32::try_from(streams).unwrap_or(u32::MAX);
    // The store's batch read alone (no decoding, no load machine): what load_many waits on.
    let mut counted = CountRows::default();
    let raw_start = Instant::now();
    for part in ids.chunks(chunk) {
        events.read_many_with_snapshot(part, ORDER, &mut counted)?;
    }
    let raw = raw_start.elapsed();
    let busy = cpu.map_or("CPU time n/a".into(), |c| {
        format!(
            "client CPU {} in {} = {:.2} cores busy",
            dur(c),
            dur(total),
            c.as_secs_f64() / total.as_secs_f64()
        )
    });
    ctx.table.push(Row {
        scenario: format!("W5 load_many over {}", thousands(streams)),
        figure: format!("load_many(), chunks of {chunk}, per aggregate"),
        median: dur(each),
        p99: "—".into(),
        floor: format!("{}: {}", floors.point_label(), dur(floor.median())),
        ratio: format!("{:.2}x floor time", time_ratio(each, floor.median())),
        note: format!(
            "{} in {} a pass ({passes} passes), one thread; {busy}; {:.2}x the aggregates/s of load() one by one; \
             the store's batch reads alone: {} ({} headers with a snapshot, {} event rows)",
            per_sec(rate(streams, wall), "aggregates"),
            dur(wall),
            loads.total().as_secs_f64() / wall.as_secs_f64(),
            dur(raw),
            counted.snapshots,
            counted.events
        ),
    });
    Ok(())
}

/// Counts what a batch read hands out (W5's look at the store's share of `load_many`).
#[derive(Default)]
struct CountRows {
    snapshots: u64,
    events: u64,
}

impl eventsource::store::BatchVisitor for CountRows {
    fn snapshot(&mut self, _: usize, snapshot: Option<eventsource::Snapshot>) -> eventsource::Result<bool> {
        self.snapshots += u64::from(snapshot.is_some());
        Ok(true)
    }

    fn event(&mut self, _: usize, _: &eventsource::ReplayEvent<'_>) -> eventsource::Result<()> {
        self.events += 1;
        Ok(())
    }
}
