//! Group commit (issue 12, item 5): concurrent appends share one transaction, and each
//! caller still gets exactly its own answer.
//!
//! Threads append at once through one store handle (so that their appends meet in shared
//! batches): most succeed, some carry a wrong expected version, some repeat an event id
//! already stored, pairs race with one event id between them, and a group of threads
//! races on one stream each round. Afterwards every acknowledged event is stored exactly
//! once, every failed append wrote nothing, and every stream is numbered 1..n without a
//! gap. The same checks run on SQLite (group commit on, the default, and off) and on
//! PostgreSQL (sync store, group commit on).

mod common_pg;

use std::collections::{HashMap, HashSet};
use std::sync::{mpsc, Barrier, Mutex};

use eventsource::store::postgres::{PgOptions, PostgresEventStore};
use eventsource::store::sqlite::SqliteOptions;
use eventsource::{Error, EventStore, JsonCodec, Metadata, NewEvent, SqliteEventStore};
use uuid::Uuid;

const TYPE: &str = "Order";
const THREADS: usize = 12;
const ROUNDS: u64 = 24;

fn event(id: Uuid) -> NewEvent {
    NewEvent {
        event_id: id,
        event_type: "ItemAdded".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: serde_json::to_vec(&serde_json::json!({ "id": id.to_string() })).expect("json"),
        metadata: Metadata::default(),
    }
}

/// The stream's event ids in version order, checked gap-free from 1.
fn stream_ids<S: EventStore>(store: &S, id: Uuid) -> Vec<Uuid> {
    let mut ids = Vec::new();
    store
        .read_stream(id, TYPE, 0, &mut |r| {
            assert_eq!(r.version, ids.len() as u64 + 1, "gap or disorder in stream {id}");
            ids.push(r.event_id);
            Ok(())
        })
        .expect("read");
    ids
}

/// What one thread saw: per aggregate, the event ids acknowledged, in order.
type Acked = HashMap<Uuid, Vec<Uuid>>;

/// Each thread on its own aggregate: ok, wrong version, stored id, two events, in turn;
/// plus, in the race rounds, pairs of threads appending one shared event id.
fn own_aggregates<S: EventStore>(store: &S) {
    let aggregates: Vec<Uuid> = (0..THREADS).map(|_| Uuid::now_v7()).collect();
    // The shared ids of the race rounds: one per (pair, round).
    let shared: Vec<Vec<Uuid>> = (0..THREADS / 2)
        .map(|_| (0..ROUNDS).map(|_| Uuid::now_v7()).collect())
        .collect();
    let barrier = Barrier::new(THREADS);
    let race_wins = Mutex::new(HashMap::<Uuid, usize>::new());
    let acked: Vec<Acked> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|t| {
                let (aggregates, shared, barrier, race_wins) = (&aggregates, &shared, &barrier, &race_wins);
                s.spawn(move || {
                    let agg = aggregates[t];
                    let mut mine: Vec<Uuid> = Vec::new();
                    barrier.wait();
                    for round in 0..ROUNDS {
                        let version = mine.len() as u64;
                        if round % 6 == 5 {
                            // A race: threads t and t ^ 1 append the same event id.
                            let id = shared[t / 2][round as usize];
                            match store.append(agg, TYPE, version, &[event(id)]) {
                                Ok(v) => {
                                    assert_eq!(v, version + 1);
                                    mine.push(id);
                                    *race_wins.lock().unwrap().entry(id).or_default() += 1;
                                }
                                Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, id),
                                Err(e) => panic!("race append: {e}"),
                            }
                            continue;
                        }
                        match (t as u64 + round) % 4 {
                            1 => match store.append(agg, TYPE, version + 3, &[event(Uuid::now_v7())]) {
                                Err(Error::Conflict {
                                    aggregate_id,
                                    expected,
                                    actual,
                                    ..
                                }) => {
                                    assert_eq!((aggregate_id, expected, actual), (agg, version + 3, version));
                                }
                                other => panic!("expected a conflict, got {other:?}"),
                            },
                            2 if !mine.is_empty() => {
                                // An id this thread already stored, beside a fresh one.
                                let stored = mine[0];
                                match store.append(agg, TYPE, version, &[event(Uuid::now_v7()), event(stored)]) {
                                    Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, stored),
                                    other => panic!("expected a duplicate, got {other:?}"),
                                }
                            }
                            3 => {
                                let ids = [Uuid::now_v7(), Uuid::now_v7()];
                                let events: Vec<NewEvent> = ids.iter().map(|&i| event(i)).collect();
                                assert_eq!(store.append(agg, TYPE, version, &events).expect("append"), version + 2);
                                mine.extend(ids);
                            }
                            _ => {
                                let id = Uuid::now_v7();
                                assert_eq!(
                                    store.append(agg, TYPE, version, &[event(id)]).expect("append"),
                                    version + 1
                                );
                                mine.push(id);
                            }
                        }
                    }
                    HashMap::from([(agg, mine)])
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    for (agg, ids) in acked.into_iter().flatten() {
        assert_eq!(
            stream_ids(store, agg),
            ids,
            "stream {agg} holds exactly its acknowledged events"
        );
    }
    // Each raced id was acknowledged to exactly one of its two threads.
    let wins = race_wins.into_inner().unwrap();
    let race_rounds = (0..ROUNDS).filter(|r| r % 6 == 5).count();
    assert_eq!(wins.len(), THREADS / 2 * race_rounds, "every raced id won once");
    for (id, n) in &wins {
        assert_eq!(*n, 1, "raced id {id} acknowledged {n} times");
    }
    let raced: HashSet<Uuid> = shared.iter().flatten().copied().collect();
    let mut stored_raced = 0;
    for agg in &aggregates {
        stored_raced += stream_ids(store, *agg).iter().filter(|i| raced.contains(i)).count();
    }
    assert_eq!(stored_raced, wins.len(), "every stored raced id was acknowledged once");
}

/// Threads racing on one stream, round by round: exactly one wins each round, the others
/// get a conflict naming the version the winner made.
fn one_stream<S: EventStore>(store: &S) {
    let agg = Uuid::now_v7();
    let barrier = Barrier::new(THREADS);
    let winners: Vec<Vec<(u64, Uuid)>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..THREADS)
            .map(|_| {
                let barrier = &barrier;
                s.spawn(move || {
                    let mut won = Vec::new();
                    for round in 0..ROUNDS {
                        barrier.wait();
                        let id = Uuid::now_v7();
                        match store.append(agg, TYPE, round, &[event(id)]) {
                            Ok(v) => {
                                assert_eq!(v, round + 1);
                                won.push((round, id));
                            }
                            Err(Error::Conflict { expected, actual, .. }) => {
                                assert_eq!((expected, actual), (round, round + 1));
                            }
                            Err(e) => panic!("{e}"),
                        }
                        barrier.wait();
                    }
                    won
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("thread")).collect()
    });
    let mut won: Vec<(u64, Uuid)> = winners.into_iter().flatten().collect();
    won.sort();
    assert_eq!(won.len() as u64, ROUNDS, "one winner per round");
    let expected: Vec<Uuid> = won.into_iter().map(|(_, id)| id).collect();
    assert_eq!(stream_ids(store, agg), expected);
}

/// Appends with every kind of outcome, made to meet in one shared batch: another
/// connection holds the write lock (`lock` takes it, says so, waits for the word to let
/// go) while a first append waits on it as the leader and the others queue behind it.
/// The assertions hold whatever the batching.
fn forced_batch<S: EventStore>(store: &S, lock: impl FnOnce(mpsc::Sender<()>, mpsc::Receiver<()>) + Send) {
    let [a, b, c, d, f, g] = [(); 6].map(|()| Uuid::now_v7());
    let [x, y] = [(); 2].map(|()| Uuid::now_v7());
    store.append(a, TYPE, 0, &[event(x)]).expect("setup");
    let (locked_tx, locked_rx) = mpsc::channel();
    let (release_tx, release_rx) = mpsc::channel();
    std::thread::scope(|s| {
        s.spawn(move || lock(locked_tx, release_rx));
        locked_rx.recv().expect("the lock is held");
        let leader = s.spawn(|| store.append(g, TYPE, 0, &[event(Uuid::now_v7())]));
        std::thread::sleep(std::time::Duration::from_millis(100));
        let a1 = s.spawn(|| store.append(a, TYPE, 1, &[event(Uuid::now_v7())]));
        let a2 = s.spawn(|| store.append(a, TYPE, 1, &[event(Uuid::now_v7())]));
        let dup_stored = s.spawn(|| store.append(b, TYPE, 0, &[event(x)]));
        let y1 = s.spawn(|| store.append(c, TYPE, 0, &[event(y)]));
        let y2 = s.spawn(|| store.append(d, TYPE, 0, &[event(y)]));
        let two = s.spawn(|| store.append(f, TYPE, 0, &[event(Uuid::now_v7()), event(Uuid::now_v7())]));
        std::thread::sleep(std::time::Duration::from_millis(200));
        release_tx.send(()).expect("release");
        assert_eq!(leader.join().unwrap().expect("leader"), 1);
        let (a1, a2) = (a1.join().unwrap(), a2.join().unwrap());
        match (&a1, &a2) {
            (
                Ok(2),
                Err(Error::Conflict {
                    expected: 1, actual: 2, ..
                }),
            )
            | (
                Err(Error::Conflict {
                    expected: 1, actual: 2, ..
                }),
                Ok(2),
            ) => {}
            other => panic!("one of two appends at version 1 wins: {other:?}"),
        }
        assert!(matches!(dup_stored.join().unwrap(), Err(Error::DuplicateEvent { event_id }) if event_id == x));
        let (y1, y2) = (y1.join().unwrap(), y2.join().unwrap());
        match (&y1, &y2) {
            (Ok(1), Err(Error::DuplicateEvent { event_id })) | (Err(Error::DuplicateEvent { event_id }), Ok(1)) => {
                assert_eq!(*event_id, y);
            }
            other => panic!("one of two appends of one id wins: {other:?}"),
        }
        assert_eq!(two.join().unwrap().expect("two events"), 2);
        assert_eq!(stream_ids(store, a).len(), 2);
        assert!(stream_ids(store, b).is_empty());
        let (c_ids, d_ids) = (stream_ids(store, c), stream_ids(store, d));
        assert_eq!(c_ids.len() + d_ids.len(), 1, "y stored once");
        assert_eq!(stream_ids(store, f).len(), 2);
    });
}

fn sqlite(group_commit: bool) -> (SqliteEventStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = SqliteOptions::new().group_commit(group_commit);
    let store = SqliteEventStore::open_with_options(dir.path().join("gc.db"), JsonCodec, options).expect("open");
    (store, dir)
}

#[test]
fn sqlite_concurrent_appends_each_get_their_own_answer() {
    let (store, _dir) = sqlite(true);
    own_aggregates(&store);
    one_stream(&store);
}

#[test]
fn sqlite_appends_sharing_a_batch_each_get_their_own_answer() {
    let (store, dir) = sqlite(true);
    let path = dir.path().join("gc.db");
    forced_batch(&store, move |locked, release| {
        let conn = rusqlite::Connection::open(&path).expect("open");
        conn.execute_batch("BEGIN IMMEDIATE").expect("write lock");
        locked.send(()).expect("locked");
        release.recv().expect("release");
        conn.execute_batch("COMMIT").expect("commit");
    });
}

#[test]
fn sqlite_without_group_commit_gives_the_same_answers() {
    let (store, _dir) = sqlite(false);
    own_aggregates(&store);
    one_stream(&store);
}

#[test]
fn sqlite_in_memory_group_commit() {
    let store = SqliteEventStore::open_in_memory().expect("open");
    own_aggregates(&store);
    one_stream(&store);
}

#[test]
fn sqlite_group_commit_is_on_by_default() {
    assert!(SqliteOptions::new().is_group_commit());
    assert!(!SqliteOptions::new().group_commit(false).is_group_commit());
}

fn postgres(options: impl FnOnce(PgOptions) -> PgOptions) -> Option<(PostgresEventStore, common_pg::PgSchema)> {
    let db = common_pg::schema("group_commit")?;
    let store =
        PostgresEventStore::from_config(db.config("group_commit"), JsonCodec, options(db.options())).expect("open");
    Some((store, db))
}

#[test]
fn postgres_concurrent_appends_each_get_their_own_answer() {
    let Some((store, _db)) = postgres(|o| o.group_commit(true)) else {
        return;
    };
    own_aggregates(&store);
    one_stream(&store);
}

#[test]
fn postgres_appends_sharing_a_batch_each_get_their_own_answer() {
    let Some((store, db)) = postgres(|o| o.group_commit(true)) else {
        return;
    };
    forced_batch(&store, |locked, release| {
        db.with_client(move |c| {
            c.batch_execute("BEGIN; LOCK TABLE events IN SHARE ROW EXCLUSIVE MODE")
                .expect("lock");
            locked.send(()).expect("locked");
            release.recv().expect("release");
            c.batch_execute("COMMIT").expect("commit");
        });
    });
}

#[test]
fn postgres_without_group_commit_gives_the_same_answers() {
    let Some((store, _db)) = postgres(|o| o.group_commit(false)) else {
        return;
    };
    own_aggregates(&store);
    one_stream(&store);
}
