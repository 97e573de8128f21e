//! `load_many` shares its reads (half the aggregates have a tail after their snapshot): with the snapshots in the event store's database, a
//! chunk is one batch read and nothing else (no per-aggregate read behind it), on SQLite
//! and on PostgreSQL; with stores apart, each aggregate is read on its own.

mod common;
mod common_pg;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use eventsource::store::{BatchVisitor, JointVisitor};
use eventsource::{
    AggregateRepository, EventRecord, EventStore, NewEvent, PostgresEventStore, ReplayEvent, SnapshotMode,
    SnapshotStore, SqliteEventStore, SqliteSnapshotStore, StoreLocation,
};
use uuid::Uuid;

use common::{expected_order, item, Order, OrderCreated};

/// Counts the reads a repository asks of an event store.
#[derive(Default)]
struct Counts {
    batch: AtomicUsize,
    joint: AtomicUsize,
    streams: AtomicUsize,
}

struct Counting<S> {
    inner: S,
    counts: Arc<Counts>,
}

impl<S: EventStore> EventStore for Counting<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn append(&self, id: Uuid, ty: &str, expected: u64, events: &[NewEvent]) -> eventsource::Result<u64> {
        self.inner.append(id, ty, expected, events)
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> eventsource::Result<()>,
    ) -> eventsource::Result<()> {
        self.counts.streams.fetch_add(1, Ordering::SeqCst);
        self.inner.read_stream(id, ty, after, visit)
    }

    fn replay_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut dyn FnMut(&ReplayEvent<'_>) -> eventsource::Result<()>,
    ) -> eventsource::Result<()> {
        self.counts.streams.fetch_add(1, Ordering::SeqCst);
        self.inner.replay_stream(id, ty, after, visit)
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> eventsource::Result<u64> {
        self.inner.stream_version(id, ty)
    }

    fn aggregates_by_event_count(&self, ty: &str, min: u64) -> eventsource::Result<Vec<(Uuid, u64)>> {
        self.inner.aggregates_by_event_count(ty, min)
    }

    fn location(&self) -> Option<StoreLocation> {
        self.inner.location()
    }

    fn read_with_snapshot(&self, id: Uuid, ty: &str, visitor: &mut dyn JointVisitor) -> eventsource::Result<bool> {
        self.counts.joint.fetch_add(1, Ordering::SeqCst);
        self.inner.read_with_snapshot(id, ty, visitor)
    }

    fn read_many_with_snapshot(
        &self,
        ids: &[Uuid],
        ty: &str,
        visitor: &mut dyn BatchVisitor,
    ) -> eventsource::Result<bool> {
        self.counts.batch.fetch_add(1, Ordering::SeqCst);
        self.inner.read_many_with_snapshot(ids, ty, visitor)
    }
}

/// Aggregates with a snapshot and a tail, without a snapshot, and missing; then counts
/// the reads of one `load_many` over all of them.
fn check<ES: EventStore, SS: SnapshotStore>(events: ES, snapshots: SS, joint: bool) {
    let counts = Arc::new(Counts::default());
    let repo = AggregateRepository::<Order, _>::new(Counting {
        inner: events,
        counts: Arc::clone(&counts),
    })
    .with_snapshot_store(snapshots)
    .snapshot_threshold(3)
    .expect("threshold");
    let mut expected = Vec::new();
    for i in 0..12_u64 {
        let (id, customer) = (Uuid::now_v7(), Uuid::now_v7());
        let mut root = repo.load_or_create(id).expect("create");
        root.record(OrderCreated { customer_id: customer });
        for n in 1..=4 {
            root.record(item(n));
            if i % 2 == 0 && n == 2 {
                repo.save(&mut root).expect("save"); // crosses 3: snapshot, then a tail
            }
        }
        repo.save(&mut root).expect("save");
        expected.push((id, Some(expected_order(customer, 4))));
    }
    expected.insert(3, (Uuid::now_v7(), None));
    let ids: Vec<Uuid> = expected.iter().map(|(id, _)| *id).collect();
    for c in [&counts.batch, &counts.joint, &counts.streams] {
        c.store(0, Ordering::SeqCst);
    }
    let repo = repo.snapshot_mode(SnapshotMode::Manual);
    let loaded = repo.load_many(&ids).expect("load_many");
    for ((id, root), (want_id, want)) in loaded.iter().zip(&expected) {
        assert_eq!(id, want_id);
        assert_eq!(root.as_ref().map(|r| r.state()), want.as_ref());
    }
    let (batch, single, streams) = (
        counts.batch.load(Ordering::SeqCst),
        counts.joint.load(Ordering::SeqCst),
        counts.streams.load(Ordering::SeqCst),
    );
    if joint {
        assert_eq!((batch, single, streams), (1, 0, 0), "one batch read, nothing behind it");
        assert_eq!(repo.stats().hits, 12, "every found aggregate through its snapshot");
    } else {
        assert_eq!((batch, streams), (0, ids.len()), "stores apart: each aggregate alone");
    }
}

#[test]
fn sqlite_one_file_reads_a_chunk_in_one_batch_read() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = SqliteEventStore::open(dir.path().join("es.db")).expect("open");
    let snapshots = events.snapshot_store();
    check(events, snapshots, true);
}

#[test]
fn sqlite_stores_apart_read_each_aggregate_alone() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = SqliteEventStore::open(dir.path().join("events.db")).expect("open");
    let snapshots = SqliteSnapshotStore::open(dir.path().join("snapshots.db")).expect("open");
    check(events, snapshots, false);
}

#[test]
fn postgres_reads_a_chunk_in_one_batch_read() {
    let Some(db) = common_pg::schema("load_many_reads") else {
        return;
    };
    let events =
        PostgresEventStore::from_config(db.config("load_many"), eventsource::JsonCodec, db.options()).expect("open");
    let snapshots = events.snapshot_store();
    check(events, snapshots, true);
}
