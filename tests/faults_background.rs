//! Fault injection into the background snapshot worker, sync and async: a snapshot store
//! that panics on write, and a worker killed outright (a store panicking with a payload
//! whose own `Drop` panics: the one panic the worker cannot contain).
//!
//! Each asserts that saves succeed, that every background snapshot ends up written,
//! failed or dropped (counted), that no flush or shutdown blocks (every wait here is
//! bounded), and the invariants of `common::invariants`: no acknowledged event lost, none
//! duplicated, every stream gap-free, a load through the snapshot equal to a full replay.

mod common;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use common::invariants::{assert_snapshot_load_equals_replay, assert_stream_intact, Acknowledged};
use common::logs::Captured;
use common::{expected_order, item, Order, OrderCreated};
use eventsource::{
    AggregateRepository, AggregateRoot, Error, InMemoryEventStore, InMemorySnapshotStore, Result, Snapshot,
    SnapshotAction, SnapshotMode, SnapshotStore, SnapshotUse, SnapshotWrite,
};
use uuid::Uuid;

/// Every wait of these tests gives up after this long (a hang is a failure, not a stall).
const BOUND: Duration = Duration::from_secs(20);

const WRITE: u8 = 0;
const PANIC: u8 = 1;
const KILL: u8 = 2;

/// A panic payload whose `Drop` panics too: dropping it after catching the first panic
/// raises a second one, outside any `catch_unwind`.
struct PanicsOnDrop;

impl Drop for PanicsOnDrop {
    fn drop(&mut self) {
        panic!("the panic payload panicked on drop");
    }
}

/// An in-memory snapshot store whose writes succeed, panic, or kill the worker.
#[derive(Clone, Default)]
struct Faulty {
    inner: InMemorySnapshotStore,
    mode: Arc<AtomicU8>,
    panics: Arc<AtomicU64>,
}

impl Faulty {
    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }
}

impl SnapshotStore for Faulty {
    type Codec = <InMemorySnapshotStore as SnapshotStore>::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        match self.mode.load(Ordering::SeqCst) {
            PANIC => {
                self.panics.fetch_add(1, Ordering::SeqCst);
                panic!("injected snapshot store panic");
            }
            KILL => {
                self.panics.fetch_add(1, Ordering::SeqCst);
                std::panic::panic_any(PanicsOnDrop);
            }
            _ => self.inner.save_snapshot(snapshot),
        }
    }

    fn get_snapshot(&self, id: Uuid, ty: &str) -> Result<Option<Snapshot>> {
        self.inner.get_snapshot(id, ty)
    }

    fn delete_snapshot(&self, id: Uuid, ty: &str) -> Result<bool> {
        self.inner.delete_snapshot(id, ty)
    }

    fn delete_snapshots_by_type(&self, ty: &str, below: Option<u32>) -> Result<u64> {
        self.inner.delete_snapshots_by_type(ty, below)
    }
}

/// It never blocks: the async API calls it in place.
impl eventsource::tokio::NonBlocking for Faulty {}

/// What the WARN and ERROR logs (target `eventsource::repository`) of every test of this
/// binary wrote: the worker thread logs to the global subscriber, so one is installed
/// once; tests look for their own aggregate ids.
fn logs() -> String {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    let captured = CAPTURED.get_or_init(|| {
        let out = Captured::default();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::new("eventsource::repository=warn"))
            .with_writer(out.clone())
            .with_ansi(false)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only global subscriber");
        out
    });
    captured.text()
}

/// A new order with `items` items, not yet saved.
fn new_order(items: u64) -> AggregateRoot<Order> {
    let mut root = AggregateRoot::<Order>::new(Uuid::now_v7());
    root.record(OrderCreated { customer_id: root.id() });
    for n in 1..=items {
        root.record(item(n));
    }
    root
}

/// Records items `from..=to` on `root`.
fn add_items(root: &mut AggregateRoot<Order>, from: u64, to: u64) {
    for n in from..=to {
        root.record(item(n));
    }
}

/// The order's acknowledged events, and the root to go on with.
struct Tracked {
    root: AggregateRoot<Order>,
    ack: Acknowledged,
}

impl Tracked {
    fn new(items: u64) -> Self {
        Self {
            root: new_order(items),
            ack: Acknowledged::default(),
        }
    }

    fn id(&self) -> Uuid {
        self.root.id()
    }

    /// Saves through `save`; the events are acknowledged when it returns `Ok`.
    fn save_with(&mut self, save: impl FnOnce(&mut AggregateRoot<Order>) -> Result<SnapshotAction>) -> SnapshotAction {
        let ids = self.root.uncommitted_event_ids().to_vec();
        let action = save(&mut self.root).expect("a save never depends on the snapshot worker");
        self.ack.event_ids.extend(ids);
        action
    }

    /// The invariants, through a sync repository over the same stores.
    fn assert_invariants(&self, events: &InMemoryEventStore, snapshots: &Faulty) {
        assert_stream_intact(events, "Order", self.id(), &self.ack);
        let repo = AggregateRepository::<Order, _>::new(events.clone()).with_snapshot_store(snapshots.inner.clone());
        assert_snapshot_load_equals_replay(&repo, events, self.id());
    }
}

fn sync_repo(events: &InMemoryEventStore, store: &Faulty) -> AggregateRepository<Order, InMemoryEventStore, Faulty> {
    AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(store.clone())
        .snapshot_threshold(5)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background)
}

fn async_repo(
    events: &InMemoryEventStore,
    store: &Faulty,
) -> eventsource::tokio::AggregateRepository<Order, InMemoryEventStore, Faulty> {
    eventsource::tokio::AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(store.clone())
        .snapshot_threshold(5)
        .expect("threshold")
        .snapshot_mode(SnapshotMode::Background)
}

/// Runs `f` on a thread of its own and waits at most [`BOUND`] for it: for the calls that
/// have no timeout of their own (`flush()`).
fn bounded<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(BOUND).expect("the call returned within the bound")
}

#[test]
fn sync_a_panicking_snapshot_store_is_a_counted_failure() {
    logs();
    let (events, store) = (InMemoryEventStore::new(), Faulty::default());
    let repo = Arc::new(sync_repo(&events, &store));
    store.set(PANIC);
    let mut orders: Vec<Tracked> = (0..3).map(|_| Tracked::new(5)).collect();
    for o in &mut orders {
        let action = o.save_with(|r| repo.save(r).map(|s| s.snapshot));
        assert_eq!(action, SnapshotAction::Queued);
    }
    repo.flush_timeout(BOUND).expect("the worker survives the panics");
    assert_eq!(store.panics.load(Ordering::SeqCst), 3);
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes, stats.dropped), (3, 0, 0), "{stats:?}");
    assert_panics_logged(&logs(), &orders);

    // The store recovers: the worker is still there and writes the next snapshots.
    store.set(WRITE);
    for o in &mut orders {
        add_items(&mut o.root, 6, 9);
        o.save_with(|r| repo.save(r).map(|s| s.snapshot));
    }
    let flushing = Arc::clone(&repo);
    bounded(move || flushing.flush()).expect("flush");
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes, stats.dropped), (3, 3, 0), "{stats:?}");
    for o in &orders {
        let (root, outcome) = repo.load_with_outcome(o.id()).expect("load");
        assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 10 });
        assert_eq!(root.state(), &expected_order(o.id(), 9));
        o.assert_invariants(&events, &store);
    }
    repo.shutdown(BOUND).expect("shutdown");
}

#[test]
fn sync_a_killed_worker_makes_flush_and_shutdown_fail_at_once() {
    logs();
    let (events, store) = (InMemoryEventStore::new(), Faulty::default());
    let repo = Arc::new(sync_repo(&events, &store));
    store.set(KILL);
    let mut orders: Vec<Tracked> = (0..4).map(|_| Tracked::new(5)).collect();
    for o in &mut orders {
        let action = o.save_with(|r| repo.save(r).map(|s| s.snapshot));
        assert!(
            matches!(action, SnapshotAction::Queued | SnapshotAction::Dropped),
            "{action:?}"
        );
    }
    assert!(matches!(repo.flush_timeout(BOUND), Err(Error::WorkerStopped)));
    // No timeout of its own, and still no wait.
    let flushing = Arc::clone(&repo);
    assert!(matches!(bounded(move || flushing.flush()), Err(Error::WorkerStopped)));
    assert_eq!(
        store.panics.load(Ordering::SeqCst),
        1,
        "the first write killed the worker"
    );
    let stats = repo.stats();
    // The killing write failed; everything else queued was dropped and counted.
    assert_eq!((stats.failures, stats.writes, stats.dropped), (1, 0, 3), "{stats:?}");

    // Saves go on; their snapshots are dropped and counted.
    store.set(WRITE);
    for o in &mut orders {
        add_items(&mut o.root, 6, 9);
        let action = o.save_with(|r| repo.save(r).map(|s| s.snapshot));
        assert_eq!(action, SnapshotAction::Dropped);
    }
    assert_eq!(repo.stats().dropped, 3 + 4);
    let stopping = Arc::clone(&repo);
    assert!(matches!(
        bounded(move || stopping.shutdown(BOUND)),
        Err(Error::WorkerStopped)
    ));
    assert!(logs().contains("background snapshot worker stopped"));
    for o in &orders {
        o.assert_invariants(&events, &store);
        assert_eq!(repo.load(o.id()).expect("load").state(), &expected_order(o.id(), 9));
    }
    // Dropping the repository does not wait for the dead worker either.
    let dropping = Arc::clone(&repo);
    drop(repo);
    bounded(move || drop(dropping));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_a_panicking_snapshot_store_is_a_counted_failure() {
    logs();
    let (events, store) = (InMemoryEventStore::new(), Faulty::default());
    let repo = async_repo(&events, &store);
    store.set(PANIC);
    let mut orders: Vec<Tracked> = (0..3).map(|_| Tracked::new(5)).collect();
    for o in &mut orders {
        let ids = o.root.uncommitted_event_ids().to_vec();
        let saved = repo.save(&mut o.root).await.expect("save");
        o.ack.event_ids.extend(ids);
        assert_eq!(saved.snapshot, SnapshotAction::Queued);
    }
    tokio::time::timeout(BOUND, repo.flush())
        .await
        .expect("flush returns")
        .expect("the worker survives the panics");
    assert_eq!(store.panics.load(Ordering::SeqCst), 3);
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes, stats.dropped), (3, 0, 0), "{stats:?}");
    assert_panics_logged(&logs(), &orders);

    store.set(WRITE);
    for o in &mut orders {
        add_items(&mut o.root, 6, 9);
        let ids = o.root.uncommitted_event_ids().to_vec();
        repo.save(&mut o.root).await.expect("save");
        o.ack.event_ids.extend(ids);
    }
    repo.flush_timeout(BOUND).await.expect("flush");
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes, stats.dropped), (3, 3, 0), "{stats:?}");
    for o in &orders {
        let (root, outcome) = repo.load_with_outcome(o.id()).await.expect("load");
        assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 10 });
        assert_eq!(root.state(), &expected_order(o.id(), 9));
        o.assert_invariants(&events, &store);
    }
    repo.shutdown(BOUND).await.expect("shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_a_killed_worker_makes_flush_and_shutdown_fail_at_once() {
    logs();
    let (events, store) = (InMemoryEventStore::new(), Faulty::default());
    let repo = async_repo(&events, &store);
    store.set(KILL);
    let mut orders: Vec<Tracked> = (0..4).map(|_| Tracked::new(5)).collect();
    for o in &mut orders {
        let ids = o.root.uncommitted_event_ids().to_vec();
        let saved = repo.save(&mut o.root).await.expect("save");
        o.ack.event_ids.extend(ids);
        assert!(
            matches!(saved.snapshot, SnapshotAction::Queued | SnapshotAction::Dropped),
            "{saved:?}"
        );
    }
    let flushed = tokio::time::timeout(BOUND, repo.flush()).await.expect("flush returns");
    assert!(matches!(flushed, Err(Error::WorkerStopped)), "{flushed:?}");
    assert!(matches!(repo.flush_timeout(BOUND).await, Err(Error::WorkerStopped)));
    assert_eq!(
        store.panics.load(Ordering::SeqCst),
        1,
        "the first write killed the worker"
    );
    let stats = repo.stats();
    assert_eq!((stats.failures, stats.writes, stats.dropped), (1, 0, 3), "{stats:?}");

    store.set(WRITE);
    for o in &mut orders {
        add_items(&mut o.root, 6, 9);
        let ids = o.root.uncommitted_event_ids().to_vec();
        let saved = repo.save(&mut o.root).await.expect("save");
        o.ack.event_ids.extend(ids);
        assert_eq!(saved.snapshot, SnapshotAction::Dropped);
    }
    assert_eq!(repo.stats().dropped, 3 + 4);
    let stopped = tokio::time::timeout(BOUND, repo.shutdown(BOUND))
        .await
        .expect("shutdown returns");
    assert!(matches!(stopped, Err(Error::WorkerStopped)), "{stopped:?}");
    for o in &orders {
        o.assert_invariants(&events, &store);
        assert_eq!(
            repo.load(o.id()).await.expect("load").state(),
            &expected_order(o.id(), 9)
        );
    }
}

/// One tick; `poison` makes the state's `Serialize` panic until a later tick clears it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, eventsource::DomainEvent)]
struct Ticked {
    poison: bool,
}

/// A state whose encoding panics while it is poisoned (a `Serialize` impl with a bug).
#[derive(Debug, Default, Clone, PartialEq, serde::Deserialize, eventsource::Aggregate)]
#[aggregate(type = "Fragile", events(Ticked))]
struct Fragile {
    ticks: u64,
    poisoned: bool,
}

impl eventsource::Apply<Ticked> for Fragile {
    fn apply(&mut self, e: &Ticked) {
        self.ticks += 1;
        self.poisoned = e.poison;
    }
}

impl serde::Serialize for Fragile {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        assert!(!self.poisoned, "injected Serialize panic");
        let mut st = s.serialize_struct("Fragile", 2)?;
        st.serialize_field("ticks", &self.ticks)?;
        st.serialize_field("poisoned", &self.poisoned)?;
        st.end()
    }
}

fn ticks(root: &mut AggregateRoot<Fragile>, n: u64, poison_last: bool) {
    for i in 1..=n {
        root.record(Ticked {
            poison: poison_last && i == n,
        });
    }
}

/// The events are committed before the snapshot is encoded: a state whose encoding panics
/// costs the snapshot (a counted failure), never the save. Sync and async share the code.
#[test]
fn a_panic_while_encoding_the_snapshot_never_fails_the_save() {
    logs();
    let (events, snapshots) = (InMemoryEventStore::new(), InMemorySnapshotStore::new());
    for mode in [SnapshotMode::Background, SnapshotMode::Sync] {
        let repo = AggregateRepository::<Fragile, _>::new(events.clone())
            .with_snapshot_store(snapshots.clone())
            .snapshot_threshold(3)
            .expect("threshold")
            .snapshot_mode(mode);
        let mut root = AggregateRoot::<Fragile>::new(Uuid::now_v7());
        let mut ack = Acknowledged::default();
        ticks(&mut root, 4, true);
        ack.event_ids.extend(root.uncommitted_event_ids());
        let saved = repo.save(&mut root).expect("the save stands");
        assert_eq!(saved.snapshot, SnapshotAction::Failed, "{mode:?}");
        assert_eq!(repo.stats().failures, 1, "{mode:?}");
        assert!(logs().contains(&format!("aggregate_id={}", root.id())));
        // Cured by the next event: the next crossing snapshots again.
        ticks(&mut root, 3, false);
        ack.event_ids.extend(root.uncommitted_event_ids());
        repo.save(&mut root).expect("save");
        repo.flush_timeout(BOUND).expect("flush");
        assert_eq!(repo.stats().writes, 1, "{mode:?}");
        assert_stream_intact(&events, "Fragile", root.id(), &ack);
        assert_snapshot_load_equals_replay(&repo, &events, root.id());
        let (loaded, outcome) = repo.load_with_outcome(root.id()).expect("load");
        assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 7 }, "{mode:?}");
        assert_eq!(loaded.state().ticks, 7);
    }
    // The async repository calls the same encoding.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let repo = eventsource::tokio::AggregateRepository::<Fragile, _>::new(events.clone())
            .with_snapshot_store(snapshots.clone())
            .snapshot_threshold(3)
            .expect("threshold")
            .snapshot_mode(SnapshotMode::Background);
        let mut root = AggregateRoot::<Fragile>::new(Uuid::now_v7());
        ticks(&mut root, 4, true);
        let saved = repo.save(&mut root).await.expect("the save stands");
        assert_eq!(saved.snapshot, SnapshotAction::Failed);
        assert_eq!(repo.stats().failures, 1);
        assert_eq!(repo.load(root.id()).await.expect("load").state().ticks, 4);
    });
}

/// In `SnapshotMode::Sync` the write happens inside `save`, after the events commit: a
/// panicking store costs the snapshot (a counted failure), never the save. Sync and async.
#[test]
fn a_panicking_store_in_sync_mode_never_fails_the_save() {
    logs();
    let (events, store) = (InMemoryEventStore::new(), Faulty::default());
    let repo = sync_repo(&events, &store).snapshot_mode(SnapshotMode::Sync);
    let mut o = Tracked::new(5);
    store.set(PANIC);
    assert_eq!(
        o.save_with(|r| repo.save(r).map(|s| s.snapshot)),
        SnapshotAction::Failed
    );
    assert_eq!(repo.stats().failures, 1);
    store.set(WRITE);
    add_items(&mut o.root, 6, 9);
    assert_eq!(
        o.save_with(|r| repo.save(r).map(|s| s.snapshot)),
        SnapshotAction::Written
    );
    o.assert_invariants(&events, &store);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let repo = async_repo(&events, &store).snapshot_mode(SnapshotMode::Sync);
        let mut o = Tracked::new(5);
        store.set(PANIC);
        let ids = o.root.uncommitted_event_ids().to_vec();
        let saved = repo.save(&mut o.root).await.expect("the save stands");
        o.ack.event_ids.extend(ids);
        assert_eq!(saved.snapshot, SnapshotAction::Failed);
        assert_eq!(repo.stats().failures, 1);
        store.set(WRITE);
        add_items(&mut o.root, 6, 9);
        let ids = o.root.uncommitted_event_ids().to_vec();
        let saved = repo.save(&mut o.root).await.expect("save");
        o.ack.event_ids.extend(ids);
        assert_eq!(saved.snapshot, SnapshotAction::Written);
        o.assert_invariants(&events, &store);
    });
}

/// Each order's snapshot panic is logged at WARN, naming the aggregate.
fn assert_panics_logged(logged: &str, orders: &[Tracked]) {
    for o in orders {
        assert!(
            logged
                .lines()
                .any(|l| l.contains("WARN") && l.contains("panicked") && l.contains(&o.id().to_string())),
            "no WARN for {}: {logged}",
            o.id()
        );
    }
}
