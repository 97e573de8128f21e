//! Criterion benches of the load hot paths of the Order workload
//! (`docs/workload.md`) on memory, SQLite (a file, WAL) and PostgreSQL:
//!
//! - `replay_per_event/<backend>/<codec>`: `load()` of a 1,000-event stream without a
//!   snapshot store (throughput in events, so criterion reports the time per event);
//! - `snapshot_decode/<codec>/{current,upcast}`: decoding an Order snapshot state of the
//!   current schema, and of schema 1 into a schema-2 aggregate through its upcast hook;
//! - `load_with_snapshot/<backend>/tail{0,20}`: `load()` from a snapshot at version 100
//!   with 0 or 20 events after it.
//!
//! ```sh
//! cargo bench --bench load                 # all
//! cargo bench --bench load -- sqlite       # a filter
//! ```

#[path = "../examples/workload/domain.rs"]
mod domain;
#[allow(dead_code)]
#[path = "../examples/workload/measure.rs"]
mod measure;
#[path = "../examples/workload/pg.rs"]
mod pg;
#[allow(dead_code)]
#[path = "../examples/workload/raw.rs"]
mod raw;
mod support;

use std::hint::black_box;
use std::time::Duration;

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use domain::{event_at, Order, OrderUpcast};
use eventsource::{
    Aggregate, AggregateRepository, BincodeCodec, Codec, EventStore, InMemoryEventStore, InMemorySnapshotStore,
    JsonCodec, SnapshotStore, StateDecode,
};
use support::{must, or_die};

/// Events per replayed stream.
const N: u64 = 1_000;

fn replay<ES: EventStore + Clone>(g: &mut BenchmarkGroup<'_, WallTime>, name: &str, store: ES) {
    let (id, root) = or_die(name, support::stream(&store, N));
    let repo = AggregateRepository::<Order, ES>::new(store);
    let loaded = must(name, repo.load(id));
    assert_eq!(
        loaded.state(),
        root.state(),
        "{name}: the load differs from the recorded state"
    );
    g.bench_function(name, |b| b.iter(|| black_box(must(name, repo.load(black_box(id))))));
}

fn replay_per_event(c: &mut Criterion) {
    let dir = or_die("scratch dir", support::scratch());
    let mut g = c.benchmark_group("replay_per_event");
    g.throughput(Throughput::Elements(N));
    replay(&mut g, "memory/json", InMemoryEventStore::with_codec(JsonCodec));
    replay(&mut g, "memory/bincode", InMemoryEventStore::with_codec(BincodeCodec));
    replay(
        &mut g,
        "sqlite/json",
        or_die("sqlite", support::sqlite(&dir, JsonCodec)),
    );
    replay(
        &mut g,
        "sqlite/bincode",
        or_die("sqlite", support::sqlite(&dir, BincodeCodec)),
    );
    if let Some(store) = support::postgres("bench_load_json", JsonCodec) {
        replay(&mut g, "postgres/json", store);
    }
    if let Some(store) = support::postgres("bench_load_bincode", BincodeCodec) {
        replay(&mut g, "postgres/bincode", store);
    }
    g.finish();
}

fn decode<C: Codec>(g: &mut BenchmarkGroup<'_, WallTime>, codec: C) {
    let mut state = Order::default();
    for v in 1..=N {
        state.apply_event(&event_at(v));
    }
    let bytes = or_die("encode", codec.encode(&state).map_err(Into::into));
    let current = format!("{}/current", C::NAME);
    let upcast = format!("{}/upcast", C::NAME);
    match must(&current, Order::decode_state(&codec, 1, &bytes)) {
        StateDecode::Current(s) => assert_eq!(s, state),
        other => panic!("{current}: expected the current schema, got {other:?}"),
    }
    match must(&upcast, OrderUpcast::decode_state(&codec, 1, &bytes)) {
        StateDecode::Upcast { state: s, from: 1 } => assert_eq!(s.item_count, state.item_count),
        other => panic!("{upcast}: expected an upcast from schema 1, got {other:?}"),
    }
    g.bench_function(&current, |b| {
        b.iter(|| black_box(must(&current, Order::decode_state(&codec, 1, black_box(&bytes)))))
    });
    g.bench_function(&upcast, |b| {
        b.iter(|| black_box(must(&upcast, OrderUpcast::decode_state(&codec, 1, black_box(&bytes)))))
    });
}

fn snapshot_decode(c: &mut Criterion) {
    let mut g = c.benchmark_group("snapshot_decode");
    decode(&mut g, JsonCodec);
    decode(&mut g, BincodeCodec);
    g.finish();
}

/// A stream of 100 events with a snapshot at 100, then `tail` more events.
fn with_snapshot<ES, SS>(g: &mut BenchmarkGroup<'_, WallTime>, backend: &str, events: ES, snapshots: SS)
where
    ES: EventStore + Clone,
    SS: SnapshotStore,
{
    let repo = or_die(
        backend,
        AggregateRepository::<Order, ES>::new(events.clone())
            .with_snapshot_store(snapshots)
            .snapshot_threshold(100)
            .map_err(Into::into),
    );
    for tail in [0u64, 20] {
        let name = format!("{backend}/tail{tail}");
        let (id, mut root) = or_die(&name, support::stream(&events, 100));
        must(&name, repo.create_snapshot(&root));
        for v in 101..=100 + tail {
            root.record(event_at(v));
        }
        must(&name, repo.save(&mut root));
        let (loaded, outcome) = must(&name, repo.load_with_outcome(id));
        assert_eq!(loaded.state(), root.state(), "{name}: wrong state");
        assert_eq!(
            outcome.events_replayed, tail,
            "{name}: the snapshot was not used: {outcome:?}"
        );
        g.bench_function(&name, |b| b.iter(|| black_box(must(&name, repo.load(black_box(id))))));
    }
}

fn load_with_snapshot(c: &mut Criterion) {
    let dir = or_die("scratch dir", support::scratch());
    let mut g = c.benchmark_group("load_with_snapshot");
    with_snapshot(
        &mut g,
        "memory",
        InMemoryEventStore::new(),
        InMemorySnapshotStore::new(),
    );
    let sqlite = or_die("sqlite", support::sqlite(&dir, JsonCodec));
    with_snapshot(&mut g, "sqlite", sqlite.clone(), sqlite.snapshot_store());
    if let Some(store) = support::postgres("bench_load_snapshot", JsonCodec) {
        with_snapshot(&mut g, "postgres", store.clone(), store.snapshot_store());
    }
    g.finish();
}

fn config() -> Criterion {
    Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2))
}

criterion_group! {
    name = benches;
    config = config();
    targets = replay_per_event, snapshot_decode, load_with_snapshot
}
criterion_main!(benches);
