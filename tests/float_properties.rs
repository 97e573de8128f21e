//! Floats, bit for bit: every finite `f64` and `f32` (subnormals and extremes included)
//! survives both codecs on every backend, in events and in snapshot state, and a load
//! through a snapshot equals a full replay bit for bit. JSON refuses NaN and infinity in an
//! event with a typed error naming the event and the field, and writes nothing.
//!
//! The one documented exception: PostgreSQL's `JSONB` keeps numbers as decimals, which have
//! no negative zero, so `-0.0` comes back as `0.0` there; the comparisons on that backend
//! treat the two zeros as one (they are `==`), everything else bit for bit.

#[macro_use]
mod common_pg;

use eventsource::store::postgres::{AsyncPostgresEventStore, PostgresEventStore};
use eventsource::tokio::AggregateRepository as AsyncRepository;
use eventsource::{
    Aggregate, AggregateRepository, Apply, BincodeCodec, Codec, DomainEvent, Error, EventStore, InMemoryEventStore,
    InMemorySnapshotStore, JsonCodec, NoSnapshotStore, SnapshotStore, SqliteEventStore,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
struct Measured {
    x: f64,
    y: f32,
    rate: f64,
}

/// State computed from the events the way domain code does: sums, products, the last
/// values, and a history.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Gauge", schema_version = 1, events(Measured))]
struct Gauge {
    last_x: f64,
    last_y: f32,
    taxed: f64,
    sum: f64,
    ys: Vec<f32>,
}

impl Apply<Measured> for Gauge {
    fn apply(&mut self, e: &Measured) {
        self.last_x = e.x;
        self.last_y = e.y;
        self.taxed = e.x * e.rate;
        self.sum += e.x;
        self.ys.push(e.y);
    }
}

/// The bits of every float of the state, in order; with `fold_zero`, `-0.0` as `0.0`.
fn bits(g: &Gauge, fold_zero: bool) -> Vec<u64> {
    let f64b = |v: f64| if fold_zero && v == 0.0 { 0 } else { v.to_bits() };
    let f32b = |v: f32| u64::from(if fold_zero && v == 0.0 { 0 } else { v.to_bits() });
    let mut out = vec![f64b(g.last_x), f32b(g.last_y), f64b(g.taxed), f64b(g.sum)];
    out.extend(g.ys.iter().map(|&y| f32b(y)));
    out
}

fn finite_f64() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<u64>()
            .prop_map(f64::from_bits)
            .prop_filter("finite", |f| f.is_finite()),
        prop::sample::select(vec![
            f64::MAX,
            f64::MIN,
            f64::MIN_POSITIVE,
            f64::EPSILON,
            5e-324,
            -5e-324,
            2.225_073_858_507_201e-308,
            0.0,
            -0.0,
            0.1,
            1.0 / 3.0,
        ]),
        -1e6f64..1e6,
        (1u32..100_000, 1u32..2_000)
            .prop_map(|(cents, bp)| f64::from(cents) / 100.0 * (1.0 + f64::from(bp) / 10_000.0)),
    ]
}

fn finite_f32() -> impl Strategy<Value = f32> {
    prop_oneof![
        any::<u32>()
            .prop_map(f32::from_bits)
            .prop_filter("finite", |f| f.is_finite()),
        prop::sample::select(vec![f32::MAX, f32::MIN, f32::MIN_POSITIVE, 1e-45, -0.0, 0.1]),
    ]
}

fn events() -> impl Strategy<Value = Vec<Measured>> {
    prop::collection::vec(
        (finite_f64(), finite_f32(), finite_f64()).prop_map(|(x, y, rate)| Measured { x, y, rate }),
        1..9,
    )
}

/// Saves `events` in pairs (snapshots every 3 events), then checks the stored payloads and
/// the two load paths.
fn check<ES, SS>(es: &ES, ss: &SS, events: &[Measured], fold_zero: bool) -> Result<(), TestCaseError>
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    let repo = AggregateRepository::<Gauge, _>::new(es.clone())
        .with_snapshot_store(ss.clone())
        .snapshot_threshold(3)
        .expect("threshold");
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).expect("load_or_create");
    let mut expected = Gauge::default();
    for pair in events.chunks(2) {
        for e in pair {
            expected.apply(e);
            root.record(e.clone());
        }
        repo.save(&mut root).expect("save");
    }
    // Every stored payload decodes to the very floats recorded.
    let mut i = 0;
    es.read_stream(id, "Gauge", 0, &mut |r| {
        let back: Measured = es.codec().decode(r.payload)?;
        let want = &events[i];
        i += 1;
        let f = |v: f64| if fold_zero && v == 0.0 { 0 } else { v.to_bits() };
        let g = |v: f32| if fold_zero && v == 0.0 { 0 } else { v.to_bits() };
        assert_eq!(
            (f(back.x), g(back.y), f(back.rate)),
            (f(want.x), g(want.y), f(want.rate)),
            "{want:?}"
        );
        Ok(())
    })
    .expect("read");
    prop_assert_eq!(i, events.len());
    // Through the snapshot, by full replay, and as computed here: the same bits.
    let via_snapshot = repo.load(id).expect("load");
    let replayed = AggregateRepository::<Gauge, _, NoSnapshotStore>::new(es.clone())
        .load(id)
        .expect("replay");
    prop_assert_eq!(bits(via_snapshot.state(), fold_zero), bits(replayed.state(), fold_zero));
    prop_assert_eq!(bits(replayed.state(), fold_zero), bits(&expected, fold_zero));
    Ok(())
}

fn run<ES, SS>(es: ES, ss: SS, cases: u32, fold_zero: bool)
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    let mut runner = TestRunner::new(Config {
        cases,
        max_shrink_iters: 256,
        failure_persistence: None,
        ..Config::default()
    });
    if let Err(e) = runner.run(&events(), |evs| check(&es, &ss, &evs, fold_zero)) {
        panic!("{e}");
    }
}

/// JSON cannot hold NaN or infinity: the save fails naming the event and the field, and
/// nothing is written. A state that overflows to infinity is not snapshotted (counted),
/// and loads replay to the same bits.
fn non_finite<ES, SS>(es: ES, ss: SS)
where
    ES: EventStore + Clone,
    SS: SnapshotStore + Clone,
{
    let repo = AggregateRepository::<Gauge, _>::new(es.clone())
        .with_snapshot_store(ss)
        .snapshot_threshold(2)
        .expect("threshold");
    let json = <ES::Codec as Codec>::NAME == "json";
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let id = Uuid::now_v7();
        let mut root = repo.load_or_create(id).expect("load_or_create");
        root.record(Measured {
            x: 1.0,
            y: 1.0,
            rate: 1.0,
        });
        root.record(Measured {
            x: bad,
            y: 1.0,
            rate: 1.0,
        });
        match repo.save(&mut root) {
            Err(Error::EventEncode { event_type, source }) if json => {
                assert_eq!(event_type, "Measured");
                assert_eq!(source.path.as_deref(), Some("x"), "{source}");
                assert_eq!(es.stream_version(id, "Gauge").expect("version"), 0, "nothing written");
                assert_eq!(root.uncommitted_events().len(), 2, "the events stay recorded");
            }
            Ok(_) if !json => {
                let back = repo.load(id).expect("load");
                assert_eq!(back.state().last_x.to_bits(), bad.to_bits(), "bincode keeps {bad}");
            }
            other => panic!("{bad} with {}: {other:?}", <ES::Codec as Codec>::NAME),
        }
    }
    // Finite events whose state overflows: the snapshot cannot be JSON, the load replays.
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).expect("load_or_create");
    root.record(Measured {
        x: f64::MAX,
        y: 1.0,
        rate: 2.0,
    });
    root.record(Measured {
        x: f64::MAX,
        y: 1.0,
        rate: 2.0,
    });
    let saved = repo.save(&mut root).expect("finite events save");
    assert_eq!(saved.version, 2);
    let loaded = repo.load(id).expect("load");
    assert_eq!(loaded.state().sum, f64::INFINITY);
    assert_eq!(loaded.state().taxed, f64::INFINITY);
    if json {
        assert!(repo.stats().failures >= 1, "the unencodable snapshot is counted");
    }
}

#[test]
fn memory_json() {
    run(InMemoryEventStore::new(), InMemorySnapshotStore::new(), 256, false);
    non_finite(InMemoryEventStore::new(), InMemorySnapshotStore::new());
}

#[test]
fn memory_bincode() {
    let es = || InMemoryEventStore::with_codec(BincodeCodec);
    let ss = || InMemorySnapshotStore::with_codec(BincodeCodec);
    run(es(), ss(), 256, false);
    non_finite(es(), ss());
}

fn sqlite<C: Codec + Default>() {
    let dir = tempfile::tempdir().expect("temp dir");
    let es = SqliteEventStore::open_with_codec(dir.path().join("f.db"), C::default()).expect("open");
    run(es.clone(), es.snapshot_store(), 128, false);
    non_finite(es.clone(), es.snapshot_store());
}

#[test]
fn sqlite_json() {
    sqlite::<JsonCodec>();
}

#[test]
fn sqlite_bincode() {
    sqlite::<BincodeCodec>();
}

fn postgres<C: Codec + Default>(fold_zero: bool) {
    let Some(db) = common_pg::schema("floats") else { return };
    let es = PostgresEventStore::from_config(db.config("floats"), C::default(), db.options()).expect("open");
    run(es.clone(), es.snapshot_store(), 48, fold_zero);
    non_finite(es.clone(), es.snapshot_store());
}

#[test]
fn postgres_json() {
    postgres::<JsonCodec>(true);
}

#[test]
fn postgres_bincode() {
    postgres::<BincodeCodec>(false);
}

/// The async PostgreSQL store reads and writes the same bytes: a float written through it
/// loads bit for bit (zero's sign aside) through the sync store and back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_async_json() {
    let Some(db) = common_pg::schema("floats") else { return };
    let es = AsyncPostgresEventStore::from_config(db.async_config("floats"), JsonCodec, db.options())
        .await
        .expect("open");
    let repo = AsyncRepository::<Gauge, _>::new(es.clone())
        .with_snapshot_store(es.snapshot_store())
        .snapshot_threshold(2)
        .expect("threshold");
    let values = [f64::MAX, 5e-324, 0.1 + 0.2, 19.99 * 1.0825, -1.5e-300];
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).await.expect("load_or_create");
    let mut expected = Gauge::default();
    for &x in &values {
        let e = Measured {
            x,
            y: 0.1,
            rate: 1.0825,
        };
        expected.apply(&e);
        root.record(e);
    }
    repo.save(&mut root).await.expect("save");
    let loaded = repo.load(id).await.expect("load");
    assert_eq!(bits(loaded.state(), true), bits(&expected, true));
    let replayed = AsyncRepository::<Gauge, _>::new(es).load(id).await.expect("replay");
    assert_eq!(bits(replayed.state(), true), bits(&expected, true));
}
