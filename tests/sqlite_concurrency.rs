//! Concurrency on one SQLite file: writers racing on one stream through separate store
//! handles, many threads on one handle (more than its pool), and threads and processes
//! opening a fresh file at once.

use std::collections::HashSet;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use eventsource::store::sqlite::SqliteOptions;
use eventsource::{
    Error, EventStore, JsonCodec, Metadata, NewEvent, SnapshotStore, SqliteEventStore, SqliteSnapshotStore,
};
use rusqlite::Connection;
use uuid::Uuid;

const TYPE: &str = "Order";

fn new_event(writer: usize, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "ItemAdded".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: serde_json::to_vec(&serde_json::json!({ "writer": writer, "n": n })).expect("json"),
        metadata: Metadata::default(),
    }
}

/// Reads the stream and checks it is numbered 1..=n without gaps; returns its event ids.
fn check_gap_free<S: EventStore>(store: &S, id: Uuid) -> Vec<Uuid> {
    let mut ids = Vec::new();
    let mut next = 1;
    store
        .read_stream(id, TYPE, 0, &mut |r| {
            assert_eq!(r.version, next, "gap or disorder in the stream");
            next += 1;
            ids.push(r.event_id);
            Ok(())
        })
        .expect("read");
    let unique: HashSet<&Uuid> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "duplicate event ids");
    ids
}

#[test]
fn writers_with_their_own_handles_end_with_a_gap_free_stream() {
    const WRITERS: usize = 6;
    const BATCHES: u64 = 25;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("race.db");
    SqliteEventStore::open(&path).expect("create");
    let id = Uuid::now_v7();
    let barrier = Arc::new(Barrier::new(WRITERS));

    let written: Vec<(Vec<Uuid>, u64)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let path = &path;
                let barrier = Arc::clone(&barrier);
                s.spawn(move || {
                    let options = SqliteOptions::new().busy_timeout(Duration::from_secs(30));
                    let store = SqliteEventStore::open_with_options(path, JsonCodec, options).expect("open");
                    barrier.wait();
                    let mut mine = Vec::new();
                    let mut conflicts = 0u64;
                    for b in 0..BATCHES {
                        // Batches of 1 to 3 events.
                        let batch: Vec<NewEvent> = (0..=(b % 3)).map(|k| new_event(w, b * 10 + k)).collect();
                        loop {
                            let at = store.stream_version(id, TYPE).expect("version");
                            match store.append(id, TYPE, at, &batch) {
                                Ok(v) => {
                                    assert_eq!(v, at + batch.len() as u64);
                                    break;
                                }
                                Err(Error::Conflict { expected, actual, .. }) => {
                                    assert_eq!(expected, at);
                                    assert!(actual > at, "the stream only moves forward");
                                    conflicts += 1;
                                }
                                Err(e) => panic!("writer {w}: {e}"),
                            }
                        }
                        mine.extend(batch.iter().map(|e| e.event_id));
                    }
                    (mine, conflicts)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer")).collect()
    });

    let store = SqliteEventStore::open(&path).expect("reopen");
    let stored = check_gap_free(&store, id);
    let expected: HashSet<Uuid> = written.iter().flat_map(|(ids, _)| ids.iter().copied()).collect();
    assert_eq!(stored.len(), expected.len());
    assert_eq!(stored.iter().copied().collect::<HashSet<_>>(), expected);
    // Each writer's batches are contiguous and in its own order.
    for (ids, _) in &written {
        let positions: Vec<usize> = ids
            .iter()
            .map(|e| stored.iter().position(|s| s == e).expect("stored"))
            .collect();
        assert!(
            positions.windows(2).all(|w| w[0] < w[1]),
            "a writer's events out of order"
        );
    }
    let conflicts: u64 = written.iter().map(|(_, c)| c).sum();
    eprintln!(
        "{} events by {WRITERS} writers, {conflicts} conflicts retried",
        stored.len()
    );
}

#[test]
fn many_threads_share_one_handle_beyond_its_pool() {
    const THREADS: usize = 12;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("shared.db");
    let options = SqliteOptions::new().pool_size(3).busy_timeout(Duration::from_secs(30));
    let events = SqliteEventStore::open_with_options(&path, JsonCodec, options).expect("open");
    let snapshots = SqliteSnapshotStore::from_event_store(&events);
    let ids: Vec<Uuid> = (0..THREADS).map(|_| Uuid::now_v7()).collect();
    let shared = Uuid::now_v7();

    std::thread::scope(|s| {
        for (t, id) in ids.iter().enumerate() {
            let (events, snapshots) = (&events, &snapshots);
            s.spawn(move || {
                for n in 0..20u64 {
                    events.append(*id, TYPE, n, &[new_event(t, n)]).expect("own stream");
                    // Readers interleave with writers and always see a gap-free prefix.
                    check_gap_free(events, shared);
                    if n % 5 == 4 {
                        snapshots
                            .save_snapshot(&eventsource::Snapshot {
                                aggregate_id: *id,
                                aggregate_type: TYPE.into(),
                                version: n + 1,
                                schema_version: 1,
                                state: b"{}".to_vec(),
                                created_at: eventsource::time::now(),
                            })
                            .expect("snapshot");
                    }
                    loop {
                        let at = events.stream_version(shared, TYPE).expect("version");
                        match events.append(shared, TYPE, at, &[new_event(t, n)]) {
                            Ok(_) => break,
                            Err(e) if e.is_conflict() => continue,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
            });
        }
    });

    for id in &ids {
        assert_eq!(check_gap_free(&events, *id).len(), 20);
        let s = snapshots.get_snapshot(*id, TYPE).expect("get").expect("snapshot");
        assert_eq!(s.version, 20);
    }
    assert_eq!(check_gap_free(&events, shared).len(), THREADS * 20);
}

fn migration_rows(path: &Path) -> i64 {
    Connection::open(path)
        .expect("raw")
        .query_row("SELECT COUNT(*) FROM eventsource_migrations", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn threads_opening_a_fresh_file_at_once_all_succeed() {
    const OPENERS: usize = 8;
    for round in 0..5 {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join(format!("fresh-{round}.db"));
        let barrier = Barrier::new(OPENERS);
        std::thread::scope(|s| {
            for t in 0..OPENERS {
                let (path, barrier) = (&path, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let store = if t % 2 == 0 {
                        SqliteEventStore::open(path).map(|_| ())
                    } else {
                        SqliteSnapshotStore::open(path).map(|_| ())
                    };
                    store.unwrap_or_else(|e| panic!("opener {t} failed: {e}"));
                });
            }
        });
        assert_eq!(migration_rows(&path), 2);
    }
}

const CHILD_DB: &str = "EVENTSOURCE_SQLITE_CHILD_DB";
const CHILD_START: &str = "EVENTSOURCE_SQLITE_CHILD_START_MS";

/// Run by [`processes_opening_a_fresh_file_at_once_all_succeed`] in child processes;
/// does nothing when run as an ordinary test.
#[test]
fn child_process_opens_the_store() {
    let Ok(path) = std::env::var(CHILD_DB) else {
        return;
    };
    if let Some(start) = std::env::var(CHILD_START).ok().and_then(|s| s.parse::<u128>().ok()) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis();
        if start > now {
            std::thread::sleep(Duration::from_millis((start - now) as u64));
        }
    }
    let store = SqliteEventStore::open(&path).expect("child open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &[new_event(0, 0)]).expect("child append");
}

#[test]
fn processes_opening_a_fresh_file_at_once_all_succeed() {
    const CHILDREN: usize = 4;
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("processes.db");
    let exe = std::env::current_exe().expect("test binary");
    let start = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_millis() + 500;
    let children: Vec<_> = (0..CHILDREN)
        .map(|_| {
            Command::new(&exe)
                .args(["--exact", "child_process_opens_the_store", "--test-threads=1"])
                .env(CHILD_DB, &path)
                .env(CHILD_START, start.to_string())
                .output_spawn()
        })
        .collect();
    for child in children {
        let output = child.wait_with_output().expect("child");
        assert!(
            output.status.success(),
            "child failed:\n{}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    assert_eq!(migration_rows(&path), 2);
    let events: i64 = Connection::open(&path)
        .expect("raw")
        .query_row("SELECT COUNT(*) FROM events", [], |r| r.get(0))
        .expect("count");
    assert_eq!(events, CHILDREN as i64);
}

trait SpawnPiped {
    fn output_spawn(&mut self) -> std::process::Child;
}

impl SpawnPiped for Command {
    fn output_spawn(&mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn child")
    }
}
