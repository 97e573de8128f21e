//! Criterion benches of the append hot path of the Order workload
//! (`docs/workload.md`, W3): `save()` of 1 and of 10 recorded events with the
//! expected version, on memory, SQLite (a file, WAL, `synchronous = FULL`) and PostgreSQL.
//! Throughput is in events. Recording the events is not timed; the save is.
//!
//! ```sh
//! cargo bench --bench append
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
use std::time::{Duration, Instant};

use criterion::measurement::WallTime;
use criterion::{criterion_group, criterion_main, BenchmarkGroup, Criterion, Throughput};
use eventsource::{AggregateRepository, AggregateRoot, EventStore, InMemoryEventStore, JsonCodec};
use uuid::Uuid;

use domain::{event_at, Order};
use support::{must, or_die};

/// Times `save()` of `batch` events at a time on one stream of `store` (`fresh` makes the
/// store for each sample, so that an in-memory store does not grow across samples).
fn append<ES: EventStore + Clone>(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    fresh: impl Fn() -> ES,
    batch: u64,
) {
    g.throughput(Throughput::Elements(batch));
    let mut store = fresh();
    let mut reuse = Some(store.clone());
    g.bench_function(name, |b| {
        b.iter_custom(|iters| {
            store = reuse.take().unwrap_or_else(&fresh);
            let repo = AggregateRepository::<Order, ES>::new(store.clone());
            let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
            let mut total = Duration::ZERO;
            for _ in 0..iters {
                for _ in 0..batch {
                    root.record(event_at(root.version() + 1));
                }
                let start = Instant::now();
                black_box(must(name, repo.save(&mut root)));
                total += start.elapsed();
            }
            reuse = Some(store.clone());
            total
        })
    });
}

fn appends(c: &mut Criterion) {
    let dir = or_die("scratch dir", support::scratch());
    let mut g = c.benchmark_group("append");
    for batch in [1u64, 10] {
        append(&mut g, &format!("memory/{batch}"), InMemoryEventStore::new, batch);
    }
    let sqlite = or_die("sqlite", support::sqlite(&dir, JsonCodec));
    for batch in [1u64, 10] {
        append(&mut g, &format!("sqlite/{batch}"), || sqlite.clone(), batch);
    }
    if let Some(pg) = support::postgres("bench_append", JsonCodec) {
        for batch in [1u64, 10] {
            append(&mut g, &format!("postgres/{batch}"), || pg.clone(), batch);
        }
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
    targets = appends
}
criterion_main!(benches);
