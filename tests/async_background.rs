//! The async API's background mode under a stalled and a failing snapshot store, and many
//! tasks loading and saving at once.

mod common;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use common::{expected_order, item, Order, OrderCreated};
use eventsource::tokio::{AggregateRepository, Blocking, SnapshotStore};
use eventsource::{
    Error, InMemoryEventStore, InMemorySnapshotStore, Result, Snapshot, SnapshotAction, SnapshotMode, SnapshotWrite,
};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// A snapshot store whose writes wait for a permit (a stalled store), or fail.
struct Gated<S> {
    inner: S,
    gate: Semaphore,
    fail: bool,
    attempts: AtomicU64,
}

impl<S: SnapshotStore> SnapshotStore for Gated<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        self.attempts.fetch_add(1, Ordering::SeqCst);
        let permit = self
            .gate
            .acquire()
            .await
            .map_err(|e| Error::store("gated", "acquire the gate", e))?;
        permit.forget();
        if self.fail {
            return Err(Error::Store {
                backend: "gated",
                message: "injected failure".into(),
                source: None,
            });
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn get_snapshot(&self, id: Uuid, ty: &str) -> Result<Option<Snapshot>> {
        self.inner.get_snapshot(id, ty).await
    }

    async fn delete_snapshot(&self, id: Uuid, ty: &str) -> Result<bool> {
        self.inner.delete_snapshot(id, ty).await
    }

    async fn delete_snapshots_by_type(&self, ty: &str, below: Option<u32>) -> Result<u64> {
        self.inner.delete_snapshots_by_type(ty, below).await
    }
}

fn gated(fail: bool) -> Arc<Gated<InMemorySnapshotStore>> {
    Arc::new(Gated {
        inner: InMemorySnapshotStore::new(),
        gate: Semaphore::new(0),
        fail,
        attempts: AtomicU64::new(0),
    })
}

async fn create(
    repo: &AggregateRepository<Order, InMemoryEventStore, Arc<Gated<InMemorySnapshotStore>>>,
    items: u64,
) -> Uuid {
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).await.expect("load");
    root.record(OrderCreated { customer_id: id });
    for n in 1..=items {
        root.record(item(n));
    }
    repo.save(&mut root)
        .await
        .expect("save never waits for the snapshot store");
    id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saves_return_while_the_snapshot_store_is_stalled() {
    let store = gated(false);
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(Arc::clone(&store))
        .snapshot_threshold(5)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background)
        .background_queue_capacity(100);
    // The store admits no write at all: if `save` waited for it, this would never finish.
    let mut ids = Vec::new();
    for _ in 0..20 {
        ids.push(create(&repo, 9).await);
    }
    assert_eq!(repo.stats().writes, 0, "nothing written while stalled");
    assert!(matches!(
        repo.flush_timeout(Duration::from_millis(50)).await,
        Err(Error::Timeout(_))
    ));
    store.gate.add_permits(1000);
    repo.flush().await.expect("flush");
    let stats = repo.stats();
    assert_eq!((stats.writes, stats.dropped, stats.failures), (20, 0, 0));
    for id in ids {
        let (root, outcome) = repo.load_with_outcome(id).await.expect("load");
        assert_eq!(outcome.snapshot, eventsource::SnapshotUse::Used { version: 10 });
        assert_eq!(root.state(), &expected_order(id, 9));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_drops_and_counts_without_losing_events() {
    let store = gated(false);
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(Arc::clone(&store))
        .snapshot_threshold(1)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background)
        .background_queue_capacity(3);
    let mut ids = Vec::new();
    for _ in 0..10 {
        ids.push(create(&repo, 0).await);
    }
    // One write is stuck in the store, three wait in the queue, six were dropped.
    let dropped = repo.stats().dropped;
    assert!((6..=7).contains(&dropped), "dropped {dropped}");
    store.gate.add_permits(100);
    repo.flush().await.expect("flush");
    let stats = repo.stats();
    assert_eq!(stats.writes + stats.dropped, 10, "{stats:?}");
    for id in ids {
        assert_eq!(repo.load(id).await.expect("load").version(), 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_snapshot_store_is_counted_and_harmless() {
    let store = gated(true);
    store.gate.add_permits(1000);
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(Arc::clone(&store))
        .snapshot_threshold(3)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background);
    let mut ids = Vec::new();
    for _ in 0..8 {
        ids.push(create(&repo, 4).await);
    }
    repo.flush().await.expect("flush");
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes), (8, 0), "{stats:?}");
    for id in ids {
        assert_eq!(repo.load(id).await.expect("load").state(), &expected_order(id, 4));
    }
    repo.shutdown(Duration::from_secs(1)).await.expect("shutdown");
    // After shutdown, background snapshots are dropped and counted; saves still work.
    let mut root = eventsource::AggregateRoot::<Order>::new(Uuid::now_v7());
    root.record(OrderCreated { customer_id: root.id() });
    for n in 1..=3 {
        root.record(item(n));
    }
    assert_eq!(
        repo.save(&mut root).await.expect("save").snapshot,
        SnapshotAction::Dropped
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_tasks_load_and_save_concurrently_on_sqlite() {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = eventsource::SqliteEventStore::open(dir.path().join("es.db")).expect("open");
    let snapshots = events.snapshot_store();
    let repo = Arc::new(
        AggregateRepository::<Order, _>::new(Blocking::new(events))
            .with_snapshot_store(Blocking::new(snapshots))
            .snapshot_threshold(10)
            .expect("threshold")
            .snapshot_mode(SnapshotMode::Background),
    );
    let shared = Uuid::now_v7();
    let mut tasks = tokio::task::JoinSet::new();
    for t in 0..16u64 {
        let repo = Arc::clone(&repo);
        tasks.spawn(async move {
            // Each task owns an aggregate, and all contend on a shared one.
            let own = Uuid::now_v7();
            for n in 1..=12u64 {
                let mut root = repo.load_or_create(own).await?;
                if root.version() == 0 {
                    root.record(OrderCreated { customer_id: own });
                }
                root.record(item(n));
                repo.save(&mut root).await?;
                loop {
                    let mut root = repo.load_or_create(shared).await?;
                    root.record(item(t * 100 + n));
                    match repo.save(&mut root).await {
                        Err(e) if e.is_conflict() => continue,
                        other => {
                            other?;
                            break;
                        }
                    }
                }
            }
            Ok::<Uuid, Error>(own)
        });
    }
    let mut owned = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        owned.push(
            joined
                .expect("task")
                .expect("no error but conflicts, which are retried"),
        );
    }
    repo.flush().await.expect("flush");
    for id in owned {
        let root = repo.load(id).await.expect("load");
        assert_eq!(root.version(), 13);
        assert_eq!(root.state(), &expected_order(id, 12));
    }
    let plain = AggregateRepository::<Order, _>::new(repo.event_store().clone());
    let shared_root = plain.load(shared).await.expect("load");
    assert_eq!(
        shared_root.version(),
        16 * 12,
        "every retried command landed exactly once"
    );
    let (with_snapshot, _) = repo.load_with_outcome(shared).await.expect("load");
    assert_eq!(with_snapshot.state(), shared_root.state());
}

/// Saves `n` new orders of 9 items (each crossing the threshold of 5 once).
async fn create_orders<SS: SnapshotStore>(
    repo: &AggregateRepository<Order, InMemoryEventStore, SS>,
    n: usize,
) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for _ in 0..n {
        let mut root = eventsource::AggregateRoot::<Order>::new(Uuid::now_v7());
        root.record(OrderCreated { customer_id: root.id() });
        for i in 1..=9 {
            root.record(item(i));
        }
        let saved = repo.save(&mut root).await.expect("save");
        assert_eq!(saved.snapshot, SnapshotAction::Queued);
        ids.push(root.id());
    }
    ids
}

/// The worker's lifetime is the repository's: built (and first used) inside a runtime
/// that is then dropped, the repository goes on writing its snapshots from another one,
/// including through `Blocking`, whose `spawn_blocking` needs a live runtime.
#[test]
fn a_repository_outlives_the_runtime_it_was_built_in() {
    const BOUND: Duration = Duration::from_secs(20);
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = eventsource::SqliteSnapshotStore::open(dir.path().join("snapshots.db")).expect("open");
    let first = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let (repo, mut ids) = first.block_on(async {
        let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
            .with_snapshot_store(Blocking::new(sqlite))
            .snapshot_threshold(5)
            .expect("threshold")
            .snapshot_mode(SnapshotMode::Background);
        // Not flushed: some of these may still be queued when the runtime ends.
        let ids = create_orders(&repo, 20).await;
        (repo, ids)
    });
    drop(first);

    let second = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    second.block_on(async {
        ids.extend(create_orders(&repo, 20).await);
        tokio::time::timeout(BOUND, repo.flush())
            .await
            .expect("flush returns")
            .expect("the worker outlived the first runtime");
        let stats = repo.stats();
        assert_eq!((stats.writes, stats.dropped, stats.failures), (40, 0, 0), "{stats:?}");
        for &id in &ids {
            let (root, outcome) = repo.load_with_outcome(id).await.expect("load");
            assert_eq!(outcome.snapshot, eventsource::SnapshotUse::Used { version: 10 });
            assert_eq!(root.state(), &expected_order(id, 9));
        }
        tokio::time::timeout(BOUND, repo.shutdown(BOUND))
            .await
            .expect("shutdown returns")
            .expect("shutdown");
    });
}

/// A repository used with no runtime ever current at construction, and dropped outside
/// any runtime: nothing hangs, the snapshots are written.
#[test]
fn a_repository_dropped_outside_any_runtime_does_not_hang() {
    const BOUND: Duration = Duration::from_secs(20);
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(InMemorySnapshotStore::new())
        .snapshot_threshold(5)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ids = rt.block_on(async {
        let ids = create_orders(&repo, 5).await;
        tokio::time::timeout(BOUND, repo.flush_timeout(BOUND))
            .await
            .expect("flush returns")
            .expect("flush");
        ids
    });
    drop(rt);
    assert_eq!(repo.stats().writes, 5);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        drop(repo);
        let _ = tx.send(ids.len());
    });
    assert_eq!(rx.recv_timeout(BOUND).expect("drop returns"), 5);
}
