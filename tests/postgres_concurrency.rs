//! The PostgreSQL stores under concurrency and injected failures:
//!
//! - 8 writers on one stream, 200 commands each, retrying on conflict, end with exactly
//!   1,600 events numbered 1..1,600 (sync threads and async tasks);
//! - snapshot writers racing newer ones never make the stored row go backwards;
//! - a connection killed (`pg_terminate_backend`) while its append waits on a lock gives an
//!   error and writes nothing of the batch; the store goes on with a fresh connection.
//!
//! Every test runs on both table layouts: the default one (module `default_layout`) and
//! the partitioned one (`partitioned_layout`, four hash partitions per table).

#[macro_use]
mod common_pg;
mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use common::{item, Order};
use common_pg::PgSchema;
use eventsource::store::postgres::{AsyncPostgresEventStore, Layout, PostgresEventStore};
use eventsource::{
    AggregateRepository, Error, EventStore, JsonCodec, Metadata, NewEvent, Snapshot, SnapshotStore, SnapshotWrite,
};
use postgres::{Client, NoTls};
use uuid::Uuid;

const WRITERS: u64 = 8;
const COMMANDS: u64 = 200;

fn assert_gap_free<ES: EventStore>(es: &ES, id: Uuid, expected: u64) {
    let mut versions = Vec::new();
    let mut ids = std::collections::HashSet::new();
    es.read_stream(id, "Order", 0, &mut |r| {
        versions.push(r.version);
        ids.insert(r.event_id);
        Ok(())
    })
    .expect("read");
    assert_eq!(
        versions,
        (1..=expected).collect::<Vec<_>>(),
        "numbered 1..{expected} without gaps"
    );
    assert_eq!(ids.len() as u64, expected, "no duplicate event");
}

/// The tests, for the tables of one layout.
macro_rules! concurrency_tests {
    ($module:ident, $layout:expr) => {
        mod $module {
            use super::*;

            const LAYOUT: Layout = $layout;

            #[test]
            fn eight_sync_writers_on_one_stream() {
                let db = pg_schema_or_skip!("eight_sync_writers_on_one_stream", LAYOUT);
                let es = PostgresEventStore::from_config(db.config("writers"), JsonCodec, db.options().pool_size(10))
                    .expect("open");
                let repo = Arc::new(
                    AggregateRepository::<Order, _>::new(es.clone())
                        .with_snapshot_store(es.snapshot_store())
                        .snapshot_threshold(100)
                        .expect("threshold"),
                );
                let id = Uuid::now_v7();
                let conflicts = std::sync::atomic::AtomicU64::new(0);
                std::thread::scope(|s| {
                    for w in 0..WRITERS {
                        let (repo, conflicts) = (Arc::clone(&repo), &conflicts);
                        s.spawn(move || {
                            for c in 0..COMMANDS {
                                let mut attempts = 0;
                                loop {
                                    attempts += 1;
                                    assert!(attempts < 1_000, "writer {w} starved");
                                    let mut order = repo.load_or_create(id).expect("load");
                                    order.record(item(w * COMMANDS + c + 1));
                                    match repo.save(&mut order) {
                                        Ok(_) => break,
                                        Err(Error::Conflict { .. }) => {
                                            conflicts.fetch_add(1, Ordering::Relaxed);
                                        }
                                        Err(other) => panic!("writer {w}: {other:?}"),
                                    }
                                }
                            }
                        });
                    }
                });
                let total = WRITERS * COMMANDS;
                assert_gap_free(&es, id, total);
                assert!(conflicts.load(Ordering::Relaxed) > 0, "the writers did race");
                let (order, _) = repo.load_with_outcome(id).expect("load");
                assert_eq!(order.version(), total);
                let replayed = AggregateRepository::<Order, _>::new(es.clone())
                    .load(id)
                    .expect("replay");
                assert_eq!(
                    order.state(),
                    replayed.state(),
                    "snapshot plus tail equals a full replay"
                );
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn eight_async_writers_on_one_stream() {
                let db = pg_schema_or_skip!("eight_async_writers_on_one_stream", LAYOUT);
                async_writers_on_one_stream(&db, db.options().pool_size(10)).await;
            }

            /// The same race with every load and append of the eight writers pipelined on one shared
            /// connection: the losers' conflicts come back to them alone, on the connection the
            /// winner's append went through too.
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn eight_async_writers_on_one_stream_over_one_pipelined_connection() {
                let db = pg_schema_or_skip!(
                    "eight_async_writers_on_one_stream_over_one_pipelined_connection",
                    LAYOUT
                );
                async_writers_on_one_stream(&db, db.options().pool_size(1).pipelined_connections(1)).await;
            }

            async fn async_writers_on_one_stream(db: &PgSchema, options: eventsource::store::postgres::PgOptions) {
                use eventsource::tokio::{AggregateRepository, EventStore as _};
                let app = db.app("writers");
                let es = AsyncPostgresEventStore::from_config(db.async_config(&app), JsonCodec, options.clone())
                    .await
                    .expect("open");
                let repo = Arc::new(
                    AggregateRepository::<Order, _>::new(es.clone())
                        .with_snapshot_store(es.snapshot_store())
                        .snapshot_threshold(100)
                        .expect("threshold"),
                );
                let id = Uuid::now_v7();
                let mut tasks = Vec::new();
                for w in 0..WRITERS {
                    let repo = Arc::clone(&repo);
                    tasks.push(tokio::spawn(async move {
                        for c in 0..COMMANDS {
                            loop {
                                let mut order = repo.load_or_create(id).await.expect("load");
                                order.record(item(w * COMMANDS + c + 1));
                                match repo.save(&mut order).await {
                                    Ok(_) => break,
                                    Err(Error::Conflict { .. }) => {}
                                    Err(other) => panic!("writer {w}: {other:?}"),
                                }
                            }
                        }
                    }));
                }
                for t in tasks {
                    t.await.expect("writer");
                }
                let total = WRITERS * COMMANDS;
                let mut versions = Vec::new();
                es.read_stream(id, "Order", 0, &mut |r| {
                    versions.push(r.version);
                    Ok(())
                })
                .await
                .expect("read");
                assert_eq!(versions, (1..=total).collect::<Vec<_>>());
                let order = repo.load(id).await.expect("load");
                assert_eq!(order.version(), total);
                // The store never held more connections than its pool plus its shared ones.
                let limit = (options.get_pool_size() + options.get_pipelined_connections()) as i64;
                let held = common_pg::off_runtime(|| {
                    db.scalar_i64(&format!(
                        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}'"
                    ))
                });
                assert!(held <= limit, "{held} connections for a limit of {limit}");
            }

            #[test]
            fn racing_snapshot_writers_never_regress_the_row() {
                let db = pg_schema_or_skip!("racing_snapshot_writers_never_regress_the_row", LAYOUT);
                let es = PostgresEventStore::from_config(db.config("snapshots"), JsonCodec, db.options().pool_size(8))
                    .expect("open");
                let ss = es.snapshot_store();
                let id = Uuid::now_v7();
                let snap = |version: u64, schema_version: u32| Snapshot {
                    aggregate_id: id,
                    aggregate_type: "Order".into(),
                    version,
                    schema_version,
                    state: format!(r#"{{"v":{version},"s":{schema_version}}}"#).into_bytes(),
                    created_at: eventsource::time::now(),
                };
                let done = AtomicBool::new(false);
                std::thread::scope(|s| {
                    // A reader: what it sees never goes backwards.
                    let reader = s.spawn(|| {
                        let mut last = (0u32, 0u64);
                        let mut reads = 0;
                        while !done.load(Ordering::Relaxed) {
                            if let Some(row) = ss.get_snapshot(id, "Order").expect("get") {
                                let now = (row.schema_version, row.version);
                                assert!(now >= last, "the row went back from {last:?} to {now:?}");
                                let state: serde_json::Value = serde_json::from_slice(&row.state).expect("state");
                                assert_eq!(state["v"], row.version, "state and version are written together");
                                last = now;
                                reads += 1;
                            }
                        }
                        reads
                    });
                    // Slow writers of old versions race fast writers of new ones, in both directions.
                    let writers: Vec<_> = (0..4u64)
                        .map(|w| {
                            let ss = &ss;
                            s.spawn(move || {
                                let mut written = 0;
                                let versions: Vec<u64> = if w % 2 == 0 {
                                    (1..=300).collect()
                                } else {
                                    (1..=300).rev().collect()
                                };
                                for v in versions {
                                    if ss.save_snapshot(&snap(v, 1)).expect("save") == SnapshotWrite::Written {
                                        written += 1;
                                    }
                                }
                                written
                            })
                        })
                        .collect();
                    let written: u64 = writers.into_iter().map(|h| h.join().expect("writer")).sum();
                    assert!(written >= 1);
                    // A newer schema version wins over any stream version, and is never replaced by
                    // the old schema.
                    assert_eq!(
                        ss.save_snapshot(&snap(5, 2)).expect("save"),
                        SnapshotWrite::Written
                    );
                    assert_eq!(
                        ss.save_snapshot(&snap(300, 1)).expect("save"),
                        SnapshotWrite::KeptExisting
                    );
                    done.store(true, Ordering::Relaxed);
                    assert!(reader.join().expect("reader") > 0);
                });
                let row = ss.get_snapshot(id, "Order").expect("get").expect("row");
                assert_eq!((row.schema_version, row.version), (2, 5));
            }

            /// Holds `LOCK TABLE events IN SHARE MODE` (which blocks inserts) until told to let go.
            struct Locker {
                release: mpsc::Sender<()>,
                thread: Option<std::thread::JoinHandle<()>>,
            }

            impl Locker {
                fn hold(db: &PgSchema) -> Self {
                    let (url, schema) = (db.url().to_owned(), db.name.clone());
                    let (locked_tx, locked_rx) = mpsc::channel();
                    let (release, release_rx) = mpsc::channel::<()>();
                    let thread = std::thread::spawn(move || {
                        let mut client = Client::connect(&url, NoTls).expect("connect locker");
                        let mut tx = client.transaction().expect("begin");
                        tx.batch_execute(&format!("LOCK TABLE \"{schema}\".events IN SHARE MODE"))
                            .expect("lock");
                        locked_tx.send(()).expect("signal");
                        let _ = release_rx.recv_timeout(Duration::from_secs(60));
                        tx.rollback().expect("rollback");
                    });
                    locked_rx
                        .recv_timeout(Duration::from_secs(30))
                        .expect("lock taken");
                    Locker {
                        release,
                        thread: Some(thread),
                    }
                }
            }

            impl Drop for Locker {
                fn drop(&mut self) {
                    let _ = self.release.send(());
                    if let Some(t) = self.thread.take() {
                        let _ = t.join();
                    }
                }
            }

            fn batch(n: u64) -> Vec<NewEvent> {
                (0..n)
                    .map(|i| NewEvent {
                        event_id: Uuid::now_v7(),
                        event_type: "ItemAdded".into(),
                        event_version: 1,
                        occurred_at: eventsource::time::now(),
                        payload: format!(r#"{{"n":{i}}}"#).into_bytes(),
                        metadata: Metadata::default(),
                    })
                    .collect()
            }

            fn stored_ids(db: &PgSchema, ids: &[Uuid]) -> i64 {
                let ids = ids.to_vec();
                db.with_client(move |c| {
                    c.query_one("SELECT COUNT(*) FROM events WHERE event_id = ANY($1)", &[&ids])
                        .expect("count")
                        .get(0)
                })
            }

            /// An append whose connection is killed (while it waits on a lock, so nothing committed)
            /// runs once more on a fresh connection; when that attempt is killed too, the error is
            /// returned and nothing of the batch is stored.
            #[test]
            fn a_connection_killed_mid_append_twice_writes_nothing_sync() {
                let db = pg_schema_or_skip!("a_connection_killed_mid_append_twice_writes_nothing_sync", LAYOUT);
                let app = db.app("killed");
                let es = PostgresEventStore::from_config(db.config(&app), JsonCodec, db.options().pool_size(2))
                    .expect("open");
                let id = Uuid::now_v7();
                es.append(id, "Order", 0, &batch(3)).expect("first batch");
                let doomed = batch(50);
                let locker = Locker::hold(&db);
                let result = std::thread::scope(|s| {
                    let append = s.spawn(|| es.append(id, "Order", 3, &doomed));
                    let first = db.kill_pids(&app, true, &[]);
                    assert_eq!(first.len(), 1, "the append was waiting on the lock");
                    let second = db.kill_pids(&app, true, &first);
                    assert_eq!(
                        second.len(),
                        1,
                        "its one retry, on a fresh connection, waited too"
                    );
                    append.join().expect("append thread")
                });
                drop(locker);
                match result {
                    Err(Error::Store {
                        backend: "postgres", ..
                    }) => {}
                    other => panic!("expected a store error, got {other:?}"),
                }
                let ids: Vec<Uuid> = doomed.iter().map(|e| e.event_id).collect();
                assert_eq!(stored_ids(&db, &ids), 0, "no partial batch");
                assert_eq!(es.stream_version(id, "Order").expect("version"), 3);
                // The dead connections were discarded: the same batch goes in now.
                assert_eq!(es.append(id, "Order", 3, &doomed).expect("retry"), 53);
            }

            #[test]
            fn a_connection_killed_mid_append_is_retried_once_sync() {
                let db = pg_schema_or_skip!("a_connection_killed_mid_append_is_retried_once_sync", LAYOUT);
                let app = db.app("killed");
                let es = PostgresEventStore::from_config(db.config(&app), JsonCodec, db.options().pool_size(2))
                    .expect("open");
                let id = Uuid::now_v7();
                es.append(id, "Order", 0, &batch(3)).expect("first batch");
                let retried = batch(50);
                let locker = Locker::hold(&db);
                let result = std::thread::scope(|s| {
                    let append = s.spawn(|| es.append(id, "Order", 3, &retried));
                    let first = db.kill_pids(&app, true, &[]);
                    assert_eq!(first.len(), 1, "the append was waiting on the lock");
                    // Its retry runs on a fresh connection; let it through.
                    drop(locker);
                    append.join().expect("append thread")
                });
                assert_eq!(result.expect("the retried append"), 53);
                let ids: Vec<Uuid> = retried.iter().map(|e| e.event_id).collect();
                assert_eq!(stored_ids(&db, &ids), 50, "the batch once");
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn a_connection_killed_mid_append_twice_writes_nothing_async() {
                use eventsource::tokio::EventStore as _;
                let db = pg_schema_or_skip!(
                    "a_connection_killed_mid_append_twice_writes_nothing_async",
                    LAYOUT
                );
                let app = db.app("killed");
                let es =
                    AsyncPostgresEventStore::from_config(db.async_config(&app), JsonCodec, db.options().pool_size(2))
                        .await
                        .expect("open");
                let id = Uuid::now_v7();
                es.append(id, "Order", 0, &batch(3)).await.expect("first batch");
                let doomed = batch(50);
                let locker = Locker::hold(&db);
                let append = {
                    let (es, doomed) = (es.clone(), doomed.clone());
                    tokio::spawn(async move { es.append(id, "Order", 3, &doomed).await })
                };
                let first = db.kill_pids(&app, true, &[]);
                assert_eq!(first.len(), 1, "the append was waiting on the lock");
                let second = db.kill_pids(&app, true, &first);
                assert_eq!(
                    second.len(),
                    1,
                    "its one retry, on a fresh connection, waited too"
                );
                let result = tokio::time::timeout(Duration::from_secs(60), append)
                    .await
                    .expect("bounded")
                    .expect("append task");
                drop(locker);
                match result {
                    Err(Error::Store {
                        backend: "postgres", ..
                    }) => {}
                    other => panic!("expected a store error, got {other:?}"),
                }
                let ids: Vec<Uuid> = doomed.iter().map(|e| e.event_id).collect();
                assert_eq!(stored_ids(&db, &ids), 0, "no partial batch");
                assert_eq!(es.stream_version(id, "Order").await.expect("version"), 3);
                assert_eq!(es.append(id, "Order", 3, &doomed).await.expect("retry"), 53);
                let status = es.pool_status();
                assert!(status.size <= 2, "{status:?}");
            }

            /// Eight threads share a pool of one connection: each call waits for the connection to
            /// come back and is woken when it does (the pool wakes a waiter only when there is one);
            /// every append lands, in order, on its own stream.
            #[test]
            fn callers_waiting_for_the_only_pooled_connection_are_all_served_sync() {
                let db = pg_schema_or_skip!(
                    "callers_waiting_for_the_only_pooled_connection_are_all_served_sync",
                    LAYOUT
                );
                let es =
                    PostgresEventStore::from_config(db.config(&db.app("one")), JsonCodec, db.options().pool_size(1))
                        .expect("open");
                let ids: Vec<Uuid> = (0..8).map(|_| Uuid::now_v7()).collect();
                std::thread::scope(|s| {
                    for id in &ids {
                        let es = &es;
                        s.spawn(move || {
                            for v in 0..20u64 {
                                assert_eq!(es.append(*id, "Order", v, &batch(1)).expect("append"), v + 1);
                                assert_eq!(es.stream_version(*id, "Order").expect("version"), v + 1);
                            }
                        });
                    }
                });
                for id in ids {
                    assert_eq!(es.stream_version(id, "Order").expect("version"), 20);
                }
            }
        }
    };
}

concurrency_tests!(default_layout, Layout::Default);
concurrency_tests!(partitioned_layout, common_pg::PARTITIONED);
