//! Fault injection against PostgreSQL (issue 9, items 2, 4 and 9): backends terminated
//! during saves and during background snapshot writes, a statement cache outliving a schema
//! change, and a reply lost after its commit. Each test asserts, after its fault, with
//! `tests/common/invariants.rs`: no acknowledged event lost, none stored twice, every stream
//! gap-free, and a load through the snapshot equal to a full replay. Sync and async.
//!
//! Bounded in time: every writer makes a fixed number of attempts, the killer a fixed number
//! of rounds, and each async test runs under a timeout.

#[macro_use]
mod common_pg;
mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::invariants::{assert_snapshot_load_equals_replay, assert_stream_intact, Acknowledged};
use common::{item, Order, OrderCreated};
use common_pg::proxy::Proxy;
use common_pg::PgSchema;
use eventsource::store::postgres::{
    AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PgOptions, PostgresEventStore, PostgresSnapshotStore,
};
use eventsource::{AggregateRepository, Error, EventStore as _, JsonCodec, SnapshotMode};
use uuid::Uuid;

const TYPE: &str = "Order";
const WRITERS: usize = 4;
const AGGREGATES: usize = 3;
const SAVES_PER_WRITER: usize = 25;
/// Attempts of one save (the same recorded events) after errors of unknown outcome.
const SAVE_TRIES: usize = 6;
/// Rounds of one command (reload, record, save) after conflicts.
const COMMAND_TRIES: usize = 40;
const KILL_ROUNDS: usize = 300;
const KILL_EVERY: Duration = Duration::from_millis(15);
/// The bound of each async test.
const TEST_BOUND: Duration = Duration::from_secs(240);

type SyncRepo = AggregateRepository<Order, PostgresEventStore, PostgresSnapshotStore>;
type AsyncRepo = eventsource::tokio::AggregateRepository<Order, AsyncPostgresEventStore, AsyncPostgresSnapshotStore>;

/// One save that returned `Ok`: the version after it and its event ids.
type Ack = (u64, Vec<Uuid>);

/// The saves that returned `Ok`, per aggregate.
#[derive(Default)]
struct Acks(Mutex<HashMap<Uuid, Vec<Ack>>>);

impl Acks {
    fn push(&self, id: Uuid, version: u64, ids: Vec<Uuid>) {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(id)
            .or_default()
            .push((version, ids));
    }

    /// The acknowledged ids of one aggregate in stream order (saves sorted by version).
    fn of(&self, id: Uuid) -> Acknowledged {
        let mut saves = self
            .0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&id)
            .cloned()
            .unwrap_or_default();
        saves.sort_by_key(|(version, _)| *version);
        Acknowledged {
            event_ids: saves.into_iter().flat_map(|(_, ids)| ids).collect(),
        }
    }

    fn count(&self) -> usize {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .map(Vec::len)
            .sum()
    }
}

fn sync_store(db: &PgSchema, app: &str, options: PgOptions) -> PostgresEventStore {
    PostgresEventStore::from_config(db.config(&db.app(app)), JsonCodec, options).expect("open sync store")
}

async fn async_store(db: &PgSchema, app: &str, options: PgOptions) -> AsyncPostgresEventStore {
    AsyncPostgresEventStore::from_config(db.async_config(&db.app(app)), JsonCodec, options)
        .await
        .expect("open async store")
}

fn options(db: &PgSchema) -> PgOptions {
    db.options()
        .pool_size(4)
        .checkout_timeout(Duration::from_secs(20))
        .connect_timeout(Duration::from_secs(10))
}

/// Checks every aggregate after the fault, through fresh sync stores of the schema.
fn verify(db: &PgSchema, ids: &[Uuid], acks: &Acks) {
    common_pg::off_runtime(|| {
        let es = sync_store(db, "verify", db.options());
        let repo = AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store())
            .snapshot_threshold(3)
            .expect("threshold");
        for &id in ids {
            let stored = assert_stream_intact(&es, TYPE, id, &acks.of(id));
            assert!(!stored.is_empty(), "stream {id} is empty");
            assert_snapshot_load_equals_replay(&repo, &es, id);
        }
    });
}

/// Terminates the store's backends every few milliseconds until `done` (bounded rounds);
/// returns how many were terminated.
fn killer(db: Arc<PgSchema>, app: String, done: Arc<AtomicBool>) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let mut killed = 0;
        for _ in 0..KILL_ROUNDS {
            if done.load(Ordering::SeqCst) {
                break;
            }
            killed += db.kill_now(&app);
            std::thread::sleep(KILL_EVERY);
        }
        killed
    })
}

fn create_sync(repo: &SyncRepo, n: usize) -> Vec<Uuid> {
    (0..n)
        .map(|_| {
            let id = Uuid::now_v7();
            let mut root = repo.load_or_create(id).expect("new aggregate");
            root.record(OrderCreated { customer_id: id });
            repo.save(&mut root).expect("create");
            id
        })
        .collect()
}

/// One command with retries: reload and re-run after a conflict; after an error of unknown
/// outcome, save the same recorded events again (exactly-once). Returns whether it was
/// acknowledged.
fn command_sync(repo: &SyncRepo, id: Uuid, n: u64, acks: &Acks) -> bool {
    for _ in 0..COMMAND_TRIES {
        let Ok(mut root) = repo.load(id) else { continue };
        root.record(item(n));
        let ids = root.uncommitted_event_ids().to_vec();
        for _ in 0..SAVE_TRIES {
            match repo.save(&mut root) {
                Ok(outcome) => {
                    acks.push(id, outcome.version, ids);
                    return true;
                }
                Err(Error::Conflict { .. }) => break,
                Err(_) => {}
            }
        }
    }
    false
}

async fn command_async(repo: &AsyncRepo, id: Uuid, n: u64, acks: &Acks) -> bool {
    for _ in 0..COMMAND_TRIES {
        let Ok(mut root) = repo.load(id).await else { continue };
        root.record(item(n));
        let ids = root.uncommitted_event_ids().to_vec();
        for _ in 0..SAVE_TRIES {
            match repo.save(&mut root).await {
                Ok(outcome) => {
                    acks.push(id, outcome.version, ids);
                    return true;
                }
                Err(Error::Conflict { .. }) => break,
                Err(_) => {}
            }
        }
    }
    false
}

fn terminated_during_saves_sync(mode: SnapshotMode, test: &str) {
    let db = Arc::new(pg_schema_or_skip!(test));
    let es = sync_store(&db, "writers", options(&db));
    let repo = Arc::new(
        AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store())
            .snapshot_threshold(2)
            .expect("threshold")
            .snapshot_mode(mode),
    );
    let ids = create_sync(&repo, AGGREGATES);
    let acks = Arc::new(Acks::default());
    let done = Arc::new(AtomicBool::new(false));
    let kill = killer(Arc::clone(&db), db.app("writers"), Arc::clone(&done));
    let acknowledged = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for w in 0..WRITERS {
            let (repo, acks, ids, acknowledged) = (&repo, &acks, &ids, &acknowledged);
            s.spawn(move || {
                for n in 0..SAVES_PER_WRITER {
                    let id = ids[(w + n) % ids.len()];
                    if command_sync(repo, id, (w * 1000 + n) as u64, acks) {
                        acknowledged.fetch_add(1, Ordering::SeqCst);
                    }
                }
            });
        }
    });
    done.store(true, Ordering::SeqCst);
    let killed = kill.join().expect("killer");
    repo.flush_timeout(Duration::from_secs(60))
        .expect("background snapshots drained");
    assert!(killed > 0, "the fault happened: backends were terminated");
    assert!(acknowledged.load(Ordering::SeqCst) > 0, "some saves were acknowledged");
    assert_eq!(acks.count(), acknowledged.load(Ordering::SeqCst));
    verify(&db, &ids, &acks);
    if mode == SnapshotMode::Background {
        assert!(
            db.scalar_i64("SELECT count(*) FROM snapshots") > 0,
            "background snapshots were written"
        );
    }
}

/// `pipelined`: the store's shared, pipelined connections (0: a pooled connection per
/// operation).
async fn terminated_during_saves_async(mode: SnapshotMode, pipelined: usize, test: &str) {
    let db = Arc::new(pg_schema_or_skip!(test));
    let es = async_store(&db, "writers", options(&db).pipelined_connections(pipelined)).await;
    let repo = Arc::new(
        eventsource::tokio::AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store())
            .snapshot_threshold(2)
            .expect("threshold")
            .snapshot_mode(mode),
    );
    let mut ids = Vec::new();
    for _ in 0..AGGREGATES {
        let id = Uuid::now_v7();
        let mut root = repo.load_or_create(id).await.expect("new aggregate");
        root.record(OrderCreated { customer_id: id });
        repo.save(&mut root).await.expect("create");
        ids.push(id);
    }
    let ids = Arc::new(ids);
    let acks = Arc::new(Acks::default());
    let done = Arc::new(AtomicBool::new(false));
    let kill = killer(Arc::clone(&db), db.app("writers"), Arc::clone(&done));
    let mut writers = Vec::new();
    for w in 0..WRITERS {
        let (repo, acks, ids) = (Arc::clone(&repo), Arc::clone(&acks), Arc::clone(&ids));
        writers.push(tokio::spawn(async move {
            let mut acknowledged = 0;
            for n in 0..SAVES_PER_WRITER {
                let id = ids[(w + n) % ids.len()];
                if command_async(&repo, id, (w * 1000 + n) as u64, &acks).await {
                    acknowledged += 1;
                }
            }
            acknowledged
        }));
    }
    let mut acknowledged = 0;
    for w in writers {
        acknowledged += w.await.expect("writer");
    }
    done.store(true, Ordering::SeqCst);
    let killed = tokio::task::spawn_blocking(move || kill.join().expect("killer"))
        .await
        .expect("killer join");
    repo.flush_timeout(Duration::from_secs(60))
        .await
        .expect("background snapshots drained");
    assert!(killed > 0, "the fault happened: backends were terminated");
    assert!(acknowledged > 0, "some saves were acknowledged");
    assert_eq!(acks.count(), acknowledged);
    verify(&db, &ids, &acks);
    if mode == SnapshotMode::Background {
        assert!(
            db.scalar_i64("SELECT count(*) FROM snapshots") > 0,
            "background snapshots were written"
        );
    }
}

#[test]
fn sync_backends_terminated_during_saves() {
    terminated_during_saves_sync(SnapshotMode::Sync, "sync_backends_terminated_during_saves");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_backends_terminated_during_saves() {
    tokio::time::timeout(
        TEST_BOUND,
        terminated_during_saves_async(SnapshotMode::Sync, 0, "async_backends_terminated_during_saves"),
    )
    .await
    .expect("bounded in time");
}

/// The same faults on shared, pipelined connections: every operation in flight on a
/// terminated connection fails together and runs once more on a new one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_backends_terminated_during_pipelined_saves() {
    tokio::time::timeout(
        TEST_BOUND,
        terminated_during_saves_async(
            SnapshotMode::Sync,
            2,
            "async_backends_terminated_during_pipelined_saves",
        ),
    )
    .await
    .expect("bounded in time");
}

#[test]
fn sync_backends_terminated_during_background_snapshot_writes() {
    terminated_during_saves_sync(
        SnapshotMode::Background,
        "sync_backends_terminated_during_background_snapshot_writes",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_backends_terminated_during_background_snapshot_writes() {
    tokio::time::timeout(
        TEST_BOUND,
        terminated_during_saves_async(
            SnapshotMode::Background,
            0,
            "async_backends_terminated_during_background_snapshot_writes",
        ),
    )
    .await
    .expect("bounded in time");
}

// ---- A statement cache outliving a schema change -------------------------------------

const WIDEN: &str = "ALTER TABLE events ALTER COLUMN event_type TYPE VARCHAR(512)";

#[test]
fn sync_statement_cache_outlives_a_schema_change() {
    let db = pg_schema_or_skip!("sync_statement_cache_outlives_a_schema_change");
    let es = sync_store(&db, "store", db.options().pool_size(1));
    let repo = AggregateRepository::<Order, _>::new(es.clone())
        .with_snapshot_store(es.snapshot_store())
        .snapshot_threshold(3)
        .expect("threshold");
    let ids = create_sync(&repo, 1);
    let id = ids[0];
    let acks = Acks::default();
    // Every statement the test needs is prepared on the one pooled connection.
    assert!(command_sync(&repo, id, 1, &acks));
    let _ = repo.load(id).expect("load before");
    let mut before = 0;
    es.read_stream(id, TYPE, 0, &mut |_| {
        before += 1;
        Ok(())
    })
    .expect("read before");
    db.exec(WIDEN);
    // Each of these fails with 0A000 on its cached statement unless the cache is dropped.
    let loaded = repo.load(id).expect("load after the schema change");
    assert_eq!(loaded.version(), 2);
    let mut after = 0;
    es.read_stream(id, TYPE, 0, &mut |_| {
        after += 1;
        Ok(())
    })
    .expect("read after the schema change");
    assert_eq!(after, before);
    let mut root = loaded;
    root.record(item(2));
    let ids_2 = root.uncommitted_event_ids().to_vec();
    let outcome = repo.save(&mut root).expect("save after the schema change");
    acks.push(id, outcome.version, ids_2);
    verify(&db, &[id], &acks);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_statement_cache_outlives_a_schema_change() {
    tokio::time::timeout(TEST_BOUND, async {
        let db = pg_schema_or_skip!("async_statement_cache_outlives_a_schema_change");
        let es = async_store(&db, "store", db.options().pool_size(1)).await;
        let repo = eventsource::tokio::AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store())
            .snapshot_threshold(3)
            .expect("threshold");
        let id = Uuid::now_v7();
        let acks = Acks::default();
        let mut root = repo.load_or_create(id).await.expect("new");
        root.record(OrderCreated { customer_id: id });
        repo.save(&mut root).await.expect("create");
        assert!(command_async(&repo, id, 1, &acks).await);
        let _ = repo.load(id).await.expect("load before");
        let mut before = 0;
        eventsource::tokio::EventStore::read_stream(&es, id, TYPE, 0, &mut |_| {
            before += 1;
            Ok(())
        })
        .await
        .expect("read before");
        db.exec(WIDEN);
        let loaded = repo.load(id).await.expect("load after the schema change");
        assert_eq!(loaded.version(), 2);
        let mut after = 0;
        eventsource::tokio::EventStore::read_stream(&es, id, TYPE, 0, &mut |_| {
            after += 1;
            Ok(())
        })
        .await
        .expect("read after the schema change");
        assert_eq!(after, before);
        let mut root = loaded;
        root.record(item(2));
        let ids = root.uncommitted_event_ids().to_vec();
        let outcome = repo.save(&mut root).await.expect("save after the schema change");
        acks.push(id, outcome.version, ids);
        verify(&db, &[id], &acks);
    })
    .await
    .expect("bounded in time");
}

// ---- A reply lost after its commit ----------------------------------------------------

/// The proxy in front of the server, or `None` (skip) when the server is not on loopback TCP.
fn proxy_for(db: &PgSchema) -> Option<Proxy> {
    match db.server_addr() {
        Some(addr) => Some(Proxy::start(addr)),
        None => {
            eprintln!("SKIPPED lost-reply test: the server is not reached over loopback TCP");
            None
        }
    }
}

#[test]
fn sync_lost_reply_after_commit_is_already_committed() {
    let db = pg_schema_or_skip!("sync_lost_reply_after_commit_is_already_committed");
    let Some(proxy) = proxy_for(&db) else { return };
    let config = db.config_via(proxy.addr(), &db.app("proxied"));
    let es = PostgresEventStore::from_config(config, JsonCodec, db.options().pool_size(1)).expect("open via proxy");
    let repo = AggregateRepository::<Order, _>::new(es.clone()).with_snapshot_store(es.snapshot_store());
    let acks = Acks::default();
    // A save of two events runs `append`, a save of one `append_one`: each loses its reply
    // once, on a stream of its own.
    for (round, count) in [(1usize, 2u64), (2, 1)] {
        let id = Uuid::now_v7();
        let mut root = repo.load_or_create(id).expect("new");
        root.record(OrderCreated { customer_id: id });
        for k in 1..count {
            root.record(item(k));
        }
        let created = root.uncommitted_event_ids().to_vec();
        // The first save prepares the statements on the connection, so the armed loss is
        // the reply of the append's own run.
        let first = repo.save(&mut root).expect("create");
        acks.push(id, first.version, created);
        let mut root = repo.load(id).expect("load");
        for k in 0..count {
            root.record(item(10 + k));
        }
        let ids = root.uncommitted_event_ids().to_vec();
        proxy.arm();
        let outcome = repo.save(&mut root).expect("a save whose reply was lost succeeds");
        assert_eq!(proxy.dropped(), round, "the reply was lost");
        assert!(
            outcome.already_committed,
            "recognised as already committed: {outcome:?}"
        );
        assert_eq!(outcome.version, 2 * count);
        assert_eq!(root.version(), 2 * count);
        acks.push(id, outcome.version, ids.clone());
        let stored = common_pg::off_runtime(|| {
            let direct = sync_store(&db, "direct", db.options());
            assert_stream_intact(&direct, TYPE, id, &acks.of(id))
        });
        assert_eq!(stored.len() as u64, 2 * count, "the command applied exactly once");
        assert_eq!(&stored[count as usize..], &ids[..]);
        verify(&db, &[id], &acks);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_lost_reply_after_commit_is_already_committed() {
    tokio::time::timeout(TEST_BOUND, async {
        let db = pg_schema_or_skip!("async_lost_reply_after_commit_is_already_committed");
        let Some(proxy) = proxy_for(&db) else { return };
        let config = db.async_config_via(proxy.addr(), &db.app("proxied"));
        let es = AsyncPostgresEventStore::from_config(config, JsonCodec, db.options().pool_size(1))
            .await
            .expect("open via proxy");
        let repo = eventsource::tokio::AggregateRepository::<Order, _>::new(es.clone())
            .with_snapshot_store(es.snapshot_store());
        let acks = Acks::default();
        for (round, count) in [(1usize, 2u64), (2, 1)] {
            let id = Uuid::now_v7();
            let mut root = repo.load_or_create(id).await.expect("new");
            root.record(OrderCreated { customer_id: id });
            for k in 1..count {
                root.record(item(k));
            }
            let created = root.uncommitted_event_ids().to_vec();
            let first = repo.save(&mut root).await.expect("create");
            acks.push(id, first.version, created);
            let mut root = repo.load(id).await.expect("load");
            for k in 0..count {
                root.record(item(10 + k));
            }
            let ids = root.uncommitted_event_ids().to_vec();
            proxy.arm();
            let outcome = repo
                .save(&mut root)
                .await
                .expect("a save whose reply was lost succeeds");
            assert_eq!(proxy.dropped(), round, "the reply was lost");
            assert!(
                outcome.already_committed,
                "recognised as already committed: {outcome:?}"
            );
            assert_eq!(outcome.version, 2 * count);
            acks.push(id, outcome.version, ids.clone());
            let stored = common_pg::off_runtime(|| {
                let direct = sync_store(&db, "direct", db.options());
                assert_stream_intact(&direct, TYPE, id, &acks.of(id))
            });
            assert_eq!(stored.len() as u64, 2 * count, "the command applied exactly once");
            assert_eq!(&stored[count as usize..], &ids[..]);
            verify(&db, &[id], &acks);
        }
    })
    .await
    .expect("bounded in time");
}
