//! The SQLite stores on real files: appends, reads, conflicts, atomicity, codecs,
//! migrations, the schema check, the joint load, snapshot rules and bad input.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use eventsource::store::sqlite::{self, SqliteOptions, Synchronous};
use eventsource::store::JointVisitor;
use eventsource::{
    AggregateRepository, BincodeCodec, Codec, Error, EventStore, Format, JsonCodec, Metadata, NewEvent, Snapshot,
    SnapshotStore, SnapshotUse, SnapshotWrite, SqliteEventStore, SqliteSnapshotStore,
};
use rusqlite::Connection;
use tempfile::TempDir;
use uuid::Uuid;

use common::{item, Order, OrderCreated};

const TYPE: &str = "Order";

fn temp() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("events.db");
    (dir, path)
}

fn event_with<C: Codec>(codec: &C, n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "ItemAdded".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: codec.encode(&item(n)).expect("encode"),
        metadata: Metadata::default(),
    }
}

fn event(n: u64) -> NewEvent {
    event_with(&JsonCodec, n)
}

fn batch(from: u64, count: u64) -> Vec<NewEvent> {
    (from..from + count).map(event).collect()
}

fn read_all<S: EventStore>(store: &S, id: Uuid) -> Vec<eventsource::StoredEvent> {
    let mut out = Vec::new();
    store
        .read_stream(id, TYPE, 0, &mut |r| {
            out.push(r.to_owned()?);
            Ok(())
        })
        .expect("read stream");
    out
}

fn raw(path: &Path) -> Connection {
    Connection::open(path).expect("raw connection")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).expect(sql)
}

fn snapshot(id: Uuid, version: u64, schema_version: u32, state: &[u8]) -> Snapshot {
    Snapshot {
        aggregate_id: id,
        aggregate_type: TYPE.into(),
        version,
        schema_version,
        state: state.to_vec(),
        created_at: eventsource::time::now(),
    }
}

// ---------------------------------------------------------------------------------------
// Appends and reads
// ---------------------------------------------------------------------------------------

#[test]
fn append_then_read_round_trips_every_field() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    let events = batch(1, 3);
    let before = eventsource::time::now();
    assert_eq!(store.append(id, TYPE, 0, &events).expect("append"), 3);
    let after = eventsource::time::now();
    assert_eq!(store.append(id, TYPE, 3, &batch(4, 2)).expect("append more"), 5);

    let stored = read_all(&store, id);
    assert_eq!(stored.len(), 5);
    for (i, (s, e)) in stored.iter().zip(&events).enumerate() {
        assert_eq!(s.version, i as u64 + 1);
        assert_eq!(s.event_id, e.event_id);
        assert_eq!(s.aggregate_id, id);
        assert_eq!(s.aggregate_type, TYPE);
        assert_eq!(s.event_type, "ItemAdded");
        assert_eq!(s.event_version, 1);
        assert_eq!(s.payload, e.payload);
        assert_eq!(s.occurred_at, e.occurred_at, "occurred_at to the microsecond");
        assert!(
            s.stored_at >= before && s.stored_at <= after,
            "created_at is set at append"
        );
    }
    assert!(stored.windows(2).all(|w| w[0].global_position < w[1].global_position));
    assert_eq!(store.stream_version(id, TYPE).expect("version"), 5);
    assert_eq!(store.stream_version(Uuid::now_v7(), TYPE).expect("empty"), 0);
    // Same id, other type: another stream.
    assert_eq!(store.stream_version(id, "Cart").expect("other type"), 0);

    let mut tail = Vec::new();
    store
        .read_stream(id, TYPE, 3, &mut |r| {
            tail.push(r.version);
            Ok(())
        })
        .expect("tail");
    assert_eq!(tail, vec![4, 5]);
    store
        .read_stream(id, TYPE, u64::MAX, &mut |_| panic!("nothing after u64::MAX"))
        .expect("beyond");
}

#[test]
fn a_visitor_error_stops_the_read_and_is_returned() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 5)).expect("append");
    let mut seen = 0;
    let err = store
        .read_stream(id, TYPE, 0, &mut |_| {
            seen += 1;
            if seen == 2 {
                Err(Error::InvalidConfig("stop".into()))
            } else {
                Ok(())
            }
        })
        .expect_err("visitor error");
    assert!(matches!(err, Error::InvalidConfig(_)));
    assert_eq!(seen, 2);
    // The connection went back to the pool in a clean state.
    store.append(id, TYPE, 5, &batch(6, 1)).expect("append after");
}

#[test]
fn timestamps_round_trip_to_the_microsecond_in_utc() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    let precise: DateTime<Utc> = Utc.with_ymd_and_hms(2026, 11, 27, 11, 6, 23).single().expect("date")
        + chrono::Duration::nanoseconds(123_456_789);
    let mut e = event(1);
    e.occurred_at = precise;
    store.append(id, TYPE, 0, &[e]).expect("append");
    let stored = read_all(&store, id);
    let expected =
        Utc.with_ymd_and_hms(2026, 11, 27, 11, 6, 23).single().expect("date") + chrono::Duration::microseconds(123_456);
    assert_eq!(stored[0].occurred_at, expected, "truncated to the microsecond");
    let text: String = raw(&path)
        .query_row("SELECT timestamp FROM events", [], |r| r.get(0))
        .expect("raw timestamp");
    assert_eq!(text, "2026-11-27T11:06:23.123456Z");
    let created: String = raw(&path)
        .query_row("SELECT created_at FROM events", [], |r| r.get(0))
        .expect("raw created_at");
    assert_eq!(created.len(), "2026-11-27T11:06:23.123456Z".len());
    assert!(created.ends_with('Z'));
}

#[test]
fn metadata_round_trips() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    let metadata = Metadata {
        correlation_id: Some(Uuid::now_v7()),
        causation_id: Some(Uuid::now_v7()),
        actor_id: Some("user-7".into()),
        tenant_id: Some("acme".into()),
        extra: BTreeMap::from([("ip".to_owned(), "10.0.0.1".to_owned())]),
    };
    let mut e = event(1);
    e.metadata = metadata.clone();
    store.append(id, TYPE, 0, &[e, event(2)]).expect("append");
    let stored = read_all(&store, id);
    assert_eq!(stored[0].metadata, metadata);
    assert_eq!(stored[1].metadata, Metadata::default());
    let json: String = raw(&path)
        .query_row("SELECT metadata FROM events WHERE version = 1", [], |r| r.get(0))
        .expect("raw metadata");
    let value: serde_json::Value = serde_json::from_str(&json).expect("metadata is JSON");
    assert_eq!(value["actor_id"], "user-7");
}

#[test]
fn conflict_reports_expected_and_actual_and_writes_nothing() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 3)).expect("append");
    for expected in [0, 2, 4] {
        match store.append(id, TYPE, expected, &batch(10, 2)) {
            Err(Error::Conflict {
                expected: e,
                actual,
                aggregate_id,
                aggregate_type,
            }) => {
                assert_eq!((e, actual), (expected, 3));
                assert_eq!(aggregate_id, id);
                assert_eq!(aggregate_type, TYPE);
            }
            other => panic!("expected a conflict, got {other:?}"),
        }
    }
    // An empty batch checks the version too.
    assert!(store.append(id, TYPE, 1, &[]).expect_err("empty").is_conflict());
    assert_eq!(store.append(id, TYPE, 3, &[]).expect("empty at version"), 3);
    assert_eq!(read_all(&store, id).len(), 3);
}

#[test]
fn duplicate_event_id_is_reported_and_nothing_is_written() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let first = Uuid::now_v7();
    let e = event(1);
    store.append(first, TYPE, 0, std::slice::from_ref(&e)).expect("append");
    // The same id on another stream: the event_id constraint, not the version one.
    let other = Uuid::now_v7();
    match store.append(other, TYPE, 0, std::slice::from_ref(&e)) {
        Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, e.event_id),
        x => panic!("expected DuplicateEvent, got {x:?}"),
    }
    assert_eq!(store.stream_version(other, TYPE).expect("version"), 0);
    // The same id on the same stream, at the right version.
    match store.append(first, TYPE, 1, std::slice::from_ref(&e)) {
        Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, e.event_id),
        x => panic!("expected DuplicateEvent, got {x:?}"),
    }
    assert_eq!(count(&raw(&path), "SELECT COUNT(*) FROM events"), 1);
}

#[test]
fn a_batch_failing_in_its_middle_leaves_nothing() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 2)).expect("append");
    let stored = read_all(&store, id);

    // The third event of five repeats a stored id: the first two are inserted, then the
    // unique constraint fails and the whole batch rolls back.
    let other = Uuid::now_v7();
    let mut five = batch(10, 5);
    five[2].event_id = stored[0].event_id;
    match store.append(other, TYPE, 0, &five) {
        Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, stored[0].event_id),
        x => panic!("expected DuplicateEvent, got {x:?}"),
    }
    assert_eq!(store.stream_version(other, TYPE).expect("version"), 0);

    // A batch repeating one of its own ids.
    let mut twice = batch(20, 4);
    twice[3].event_id = twice[1].event_id;
    assert!(matches!(
        store.append(other, TYPE, 0, &twice),
        Err(Error::DuplicateEvent { .. })
    ));

    let conn = raw(&path);
    assert_eq!(count(&conn, "SELECT COUNT(*) FROM events"), 2);
    // Nothing half-written either, and the events of the failed batches can be appended.
    five[2].event_id = Uuid::now_v7();
    assert_eq!(store.append(other, TYPE, 0, &five).expect("retry"), 5);
}

#[test]
fn versions_beyond_i64_are_out_of_range() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    let big = i64::MAX as u64;
    assert!(matches!(
        store.append(id, TYPE, big, &batch(1, 1)),
        Err(Error::OutOfRange { .. })
    ));
    assert!(matches!(
        store.append(id, TYPE, u64::MAX, &batch(1, 1)),
        Err(Error::OutOfRange { .. })
    ));
    let snapshots = SqliteSnapshotStore::from_event_store(&store);
    assert!(matches!(
        snapshots.save_snapshot(&snapshot(id, u64::MAX, 1, b"{}")),
        Err(Error::OutOfRange { .. })
    ));
}

#[test]
fn aggregates_by_event_count_most_first() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    for (id, n) in ids.iter().zip([3u64, 7, 1, 5]) {
        store.append(*id, TYPE, 0, &batch(1, n)).expect("append");
    }
    store
        .append(Uuid::now_v7(), "Cart", 0, &batch(1, 9))
        .expect("other type");
    let got = store.aggregates_by_event_count(TYPE, 2).expect("count");
    assert_eq!(got, vec![(ids[1], 7), (ids[3], 5), (ids[0], 3)]);
    assert!(store
        .aggregates_by_event_count(TYPE, u64::MAX)
        .expect("none")
        .is_empty());
}

// ---------------------------------------------------------------------------------------
// Codecs
// ---------------------------------------------------------------------------------------

#[test]
fn bincode_end_to_end() {
    let (_dir, path) = temp();
    let events = SqliteEventStore::open_with_codec(&path, BincodeCodec).expect("open bincode");
    let snapshots = SqliteSnapshotStore::from_event_store(&events);
    let repo = AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(snapshots)
        .snapshot_threshold(10)
        .expect("threshold");
    let id = Uuid::now_v7();
    let customer = Uuid::now_v7();
    let mut order = repo.load_or_create(id).expect("new");
    order.record(OrderCreated { customer_id: customer });
    for n in 1..=24 {
        order.record(item(n));
    }
    repo.save(&mut order).expect("save");
    let (loaded, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(loaded.state(), &common::expected_order(customer, 24));
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 25 });

    let conn = raw(&path);
    let types: Vec<(String, String)> = conn
        .prepare("SELECT name, type FROM pragma_table_info('events') WHERE name = 'payload' UNION ALL SELECT name, type FROM pragma_table_info('snapshots') WHERE name = 'state'")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(
        types,
        vec![("payload".into(), "BLOB".into()), ("state".into(), "BLOB".into())]
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM events WHERE typeof(payload) <> 'blob'"),
        0
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM snapshots WHERE typeof(state) = 'blob'"),
        1
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM events WHERE typeof(metadata) = 'text'"),
        25
    );
    // Binary payloads read back byte for byte.
    let e = event_with(&BincodeCodec, 99);
    let other = Uuid::now_v7();
    events.append(other, TYPE, 0, std::slice::from_ref(&e)).expect("append");
    assert_eq!(read_all(&events, other)[0].payload, e.payload);
    drop(conn);

    // The JSON store refuses the bincode database, naming the fix.
    match SqliteEventStore::open(&path) {
        Err(Error::SchemaMismatch { problem, fix }) => {
            assert!(problem.contains("binary") && problem.contains("json"), "{problem}");
            assert!(fix.contains("codec"), "{fix}");
        }
        x => panic!("expected SchemaMismatch, got {x:?}"),
    }
    assert!(matches!(
        SqliteSnapshotStore::open(&path),
        Err(Error::SchemaMismatch { .. })
    ));
}

#[test]
fn bincode_store_refuses_a_json_database() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("json");
    let err = SqliteEventStore::open_with_codec(&path, BincodeCodec).expect_err("bincode on json");
    assert!(matches!(err, Error::SchemaMismatch { .. }), "{err}");
    assert!(err.to_string().contains("Fix:"), "{err}");
}

#[test]
fn json_payloads_are_text() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let snapshots = store.snapshot_store();
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 2)).expect("append");
    snapshots
        .save_snapshot(&snapshot(id, 2, 1, br#"{"a":1}"#))
        .expect("save");
    let conn = raw(&path);
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM events WHERE typeof(payload) = 'text'"),
        2
    );
    assert_eq!(
        count(&conn, "SELECT COUNT(*) FROM snapshots WHERE typeof(state) = 'text'"),
        1
    );
    let sku: String = conn
        .query_row(
            "SELECT json_extract(payload, '$.sku') FROM events WHERE version = 2",
            [],
            |r| r.get(0),
        )
        .expect("json_extract");
    assert_eq!(sku, "SKU-2");
    // A JSON codec never writes bytes that are not text.
    let mut bad = event(3);
    bad.payload = vec![0xff, 0xfe];
    assert!(matches!(store.append(id, TYPE, 2, &[bad]), Err(Error::Codec(_))));
}

// ---------------------------------------------------------------------------------------
// Migrations and the schema check
// ---------------------------------------------------------------------------------------

#[test]
fn migrations_are_idempotent_and_recorded() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("first open");
    SqliteSnapshotStore::open(&path).expect("second open");
    SqliteEventStore::open(&path).expect("third open");
    let conn = raw(&path);
    let rows: Vec<(u32, String, String, String, String)> = conn
        .prepare("SELECT version, name, checksum, format, applied_at FROM eventsource_migrations ORDER BY version")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].0, rows[0].1.as_str()), (1, "events"));
    assert_eq!((rows[1].0, rows[1].1.as_str()), (2, "snapshots"));
    for r in &rows {
        assert_eq!(r.3, "json");
        assert_eq!(r.2.len(), 16, "checksum");
        assert!(eventsource::time::parse(&r.4).is_some(), "applied_at {}", r.4);
    }
    // The public runner on an up-to-date database applies nothing.
    assert!(sqlite::migrate(&conn, Format::Json).expect("migrate").is_empty());
    sqlite::check_schema(&conn, Format::Json).expect("schema");
    // WAL mode is a property of the file.
    let mode: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).expect("mode");
    assert_eq!(mode, "wal");
}

#[test]
fn the_snapshots_table_is_the_reference_guides() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("open");
    let conn = raw(&path);
    let columns: Vec<(String, String, bool, Option<String>)> = conn
        .prepare("SELECT name, type, \"notnull\", dflt_value FROM pragma_table_info('snapshots') ORDER BY cid")
        .expect("prepare")
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .expect("query")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    let expected = [
        ("id", "INTEGER", false, None),
        ("aggregate_id", "TEXT", true, None),
        ("aggregate_type", "TEXT", true, None),
        ("version", "INTEGER", true, None),
        ("schema_version", "INTEGER", true, Some("1")),
        ("state", "TEXT", true, None),
        ("created_at", "TEXT", true, None),
    ];
    assert_eq!(columns.len(), expected.len());
    for (got, want) in columns.iter().zip(expected) {
        assert_eq!((got.0.as_str(), got.1.as_str(), got.2, got.3.as_deref()), want);
    }
    for index in [
        "idx_snapshots_aggregate_lookup",
        "idx_snapshots_aggregate_type",
        "idx_snapshots_schema_version",
        "idx_snapshots_created_at",
    ] {
        let n = conn
            .query_row(
                "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name = ?1",
                [index],
                |r| r.get::<_, i64>(0),
            )
            .expect("index");
        assert_eq!(n, 1, "{index}");
    }
}

fn expect_mismatch(result: eventsource::Result<SqliteEventStore>) -> (String, String) {
    match result {
        Err(Error::SchemaMismatch { problem, fix }) => (problem, fix),
        Err(e) => panic!("expected SchemaMismatch, got {e}"),
        Ok(_) => panic!("expected SchemaMismatch, the store opened"),
    }
}

#[test]
fn schema_check_names_a_dropped_column_and_the_fix() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("open");
    raw(&path)
        .execute_batch("DROP INDEX idx_snapshots_created_at; ALTER TABLE snapshots DROP COLUMN created_at;")
        .expect("drop column");
    let (problem, fix) = expect_mismatch(SqliteEventStore::open(&path));
    assert!(
        problem.contains("snapshots.created_at") && problem.contains("missing"),
        "{problem}"
    );
    assert!(fix.contains("get_schema"), "{fix}");
}

#[test]
fn schema_check_names_a_missing_table() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("open");
    raw(&path).execute_batch("DROP TABLE snapshots").expect("drop table");
    let (problem, fix) = expect_mismatch(SqliteEventStore::open(&path));
    assert!(problem.contains("`snapshots`"), "{problem}");
    assert!(fix.contains("eventsource_migrations"), "{fix}");
}

#[test]
fn schema_check_names_a_wrong_column_type() {
    let (_dir, path) = temp();
    // A hand-made events table with bincode's BLOB payload, no migrations recorded.
    let ddl = eventsource::get_schema(
        eventsource::Schema::Events,
        eventsource::Backend::Sqlite,
        Format::Binary,
    );
    raw(&path).execute_batch(&ddl).expect("hand-made table");
    let (problem, fix) = expect_mismatch(SqliteEventStore::open(&path));
    assert!(
        problem.contains("events.payload") && problem.contains("BLOB") && problem.contains("TEXT"),
        "{problem}"
    );
    assert!(fix.contains("BincodeCodec"), "{fix}");
    // Nothing was recorded for the mismatching database.
    assert_eq!(count(&raw(&path), "SELECT COUNT(*) FROM eventsource_migrations"), 0);
    // With the codec the table was made for, it opens and migrates the rest.
    SqliteEventStore::open_with_codec(&path, BincodeCodec).expect("bincode opens it");
}

#[test]
fn schema_check_names_a_missing_unique_constraint() {
    let (_dir, path) = temp();
    SqliteEventStore::open(&path).expect("open");
    // Rebuild `events` without its stream constraint.
    raw(&path)
        .execute_batch(
            "DROP TABLE events;
             CREATE TABLE events (
                 global_position INTEGER PRIMARY KEY AUTOINCREMENT,
                 event_id TEXT NOT NULL UNIQUE,
                 aggregate_id TEXT NOT NULL,
                 aggregate_type TEXT NOT NULL,
                 event_type TEXT NOT NULL,
                 event_version INTEGER NOT NULL DEFAULT 1,
                 version INTEGER NOT NULL,
                 timestamp TEXT NOT NULL,
                 payload TEXT NOT NULL,
                 metadata TEXT NOT NULL DEFAULT '{}',
                 created_at TEXT NOT NULL
             );",
        )
        .expect("rebuild");
    let (problem, _) = expect_mismatch(SqliteEventStore::open(&path));
    assert!(problem.contains("aggregate_id, aggregate_type, version"), "{problem}");
}

// ---------------------------------------------------------------------------------------
// The joint load
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Recorder {
    snapshot: Option<Option<Snapshot>>,
    calls: usize,
    go_on: bool,
    events: Vec<u64>,
}

impl JointVisitor for Recorder {
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> eventsource::Result<bool> {
        assert!(self.events.is_empty(), "snapshot comes first");
        self.calls += 1;
        self.snapshot = Some(snapshot);
        Ok(self.go_on)
    }

    fn event(&mut self, event: &eventsource::ReplayEvent<'_>) -> eventsource::Result<()> {
        self.events.push(event.version);
        Ok(())
    }
}

fn joint(store: &SqliteEventStore, id: Uuid, go_on: bool) -> Recorder {
    let mut r = Recorder {
        go_on,
        ..Recorder::default()
    };
    assert!(store.read_with_snapshot(id, TYPE, &mut r).expect("joint read"));
    assert_eq!(r.calls, 1);
    r
}

#[test]
fn read_with_snapshot_gives_the_snapshot_then_the_tail() {
    let (_dir, path) = temp();
    let events = SqliteEventStore::open(&path).expect("open");
    let snapshots = SqliteSnapshotStore::open(&path).expect("open snapshots separately");
    assert_eq!(events.location(), snapshots.location(), "same file, same location");
    let id = Uuid::now_v7();

    // No events, no snapshot.
    let r = joint(&events, id, true);
    assert_eq!(r.snapshot, Some(None));
    assert!(r.events.is_empty());

    events.append(id, TYPE, 0, &batch(1, 6)).expect("append");
    // No snapshot: the whole stream after the head row.
    let r = joint(&events, id, true);
    assert_eq!(r.snapshot, Some(None));
    assert_eq!(r.events, vec![1, 2, 3, 4, 5, 6]);

    // A snapshot: the events from its own version on (the anchor, 4, first).
    let s = snapshot(id, 4, 2, br#"{"n":4}"#);
    snapshots.save_snapshot(&s).expect("save");
    let r = joint(&events, id, true);
    assert_eq!(r.snapshot, Some(Some(s.clone())));
    assert_eq!(r.events, vec![4, 5, 6]);

    // A visitor that declines the snapshot gets no events.
    let r = joint(&events, id, false);
    assert_eq!(r.snapshot, Some(Some(s.clone())));
    assert!(r.events.is_empty());

    // Snapshot at the head of the stream: only its anchor.
    let at_head = snapshot(id, 6, 2, b"{}");
    snapshots.save_snapshot(&at_head).expect("save");
    let r = joint(&events, id, true);
    assert_eq!(r.snapshot, Some(Some(at_head)));
    assert_eq!(r.events, vec![6]);

    // A snapshot ahead of its stream: no anchor, no events.
    let ahead = snapshot(id, 10, 2, b"{}");
    snapshots.save_snapshot(&ahead).expect("save");
    let r = joint(&events, id, true);
    assert_eq!(r.snapshot, Some(Some(ahead)));
    assert!(r.events.is_empty());

    // Other streams and types do not leak in.
    events
        .append(Uuid::now_v7(), TYPE, 0, &batch(1, 3))
        .expect("other stream");
    events.append(id, "Cart", 0, &batch(1, 3)).expect("other type");
    snapshots.delete_snapshot(id, TYPE).expect("delete");
    let r = joint(&events, id, true);
    assert_eq!(r.events, vec![1, 2, 3, 4, 5, 6]);
}

#[test]
fn locations_tell_databases_apart() {
    let dir = tempfile::tempdir().expect("temp dir");
    let a = SqliteEventStore::open(dir.path().join("a.db")).expect("a");
    let b = SqliteSnapshotStore::open(dir.path().join("b.db")).expect("b");
    assert_ne!(a.location(), b.location());
    let a_again = SqliteSnapshotStore::open(dir.path().join(".").join("a.db")).expect("a again");
    assert_eq!(a.location(), a_again.location());
    let location = a.location().expect("location").0;
    assert!(location.starts_with("sqlite:/"), "{location}");

    let memory = SqliteEventStore::open_in_memory().expect("memory");
    let memory_snapshots = SqliteSnapshotStore::from_event_store(&memory);
    assert_eq!(memory.location(), memory_snapshots.location());
    let other_memory = SqliteEventStore::open_in_memory().expect("memory 2");
    assert_ne!(memory.location(), other_memory.location());
}

#[test]
fn repository_loads_snapshot_and_tail_through_the_joint_read() {
    let (_dir, path) = temp();
    let events = SqliteEventStore::open(&path).expect("open");
    let repo = AggregateRepository::<Order, _>::new(events)
        .with_snapshot_store(SqliteSnapshotStore::open(&path).expect("snapshots"))
        .snapshot_threshold(50)
        .expect("threshold");
    let id = Uuid::now_v7();
    let customer = Uuid::now_v7();
    let mut order = repo.load_or_create(id).expect("new");
    order.record(OrderCreated { customer_id: customer });
    repo.save(&mut order).expect("save");
    for n in 1..=60 {
        order.record(item(n));
        if n % 7 == 0 {
            repo.save(&mut order).expect("save");
        }
    }
    repo.save(&mut order).expect("save");
    let (loaded, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(loaded.version(), 61);
    assert_eq!(loaded.state(), &common::expected_order(customer, 60));
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 50 });
    assert_eq!(outcome.events_replayed, 11);

    // The same on stores in different files: separate reads, same result.
    let dir = tempfile::tempdir().expect("temp dir");
    let split = AggregateRepository::<Order, _>::new(SqliteEventStore::open(&path).expect("events"))
        .with_snapshot_store(SqliteSnapshotStore::open(dir.path().join("snapshots.db")).expect("elsewhere"));
    let (loaded, outcome) = split.load_with_outcome(id).expect("load");
    assert_eq!(loaded.state(), &common::expected_order(customer, 60));
    assert_eq!(
        outcome.snapshot,
        SnapshotUse::Discarded(eventsource::MissReason::Missing)
    );
}

#[test]
fn in_memory_stores_work_and_share_one_database() {
    let events = SqliteEventStore::open_in_memory().expect("memory");
    let snapshots = events.snapshot_store();
    let id = Uuid::now_v7();
    events.append(id, TYPE, 0, &batch(1, 3)).expect("append");
    snapshots.save_snapshot(&snapshot(id, 2, 1, b"{}")).expect("save");
    let r = joint(&events, id, true);
    assert_eq!(r.events, vec![2, 3]);
    // Threads take turns on the single connection.
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..20 {
                    assert_eq!(events.stream_version(id, TYPE).expect("version"), 3);
                }
            });
        }
    });
}

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

#[test]
fn snapshot_upsert_never_goes_backwards() {
    let (_dir, path) = temp();
    let store = SqliteSnapshotStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    let stored = |store: &SqliteSnapshotStore| {
        let s = store.get_snapshot(id, TYPE).expect("get").expect("some");
        (s.version, s.schema_version, s.state)
    };
    assert_eq!(
        store.save_snapshot(&snapshot(id, 10, 1, b"\"v10\"")).expect("save"),
        SnapshotWrite::Written
    );
    // Lower version, same schema: a late background write loses.
    assert_eq!(
        store.save_snapshot(&snapshot(id, 5, 1, b"\"v5\"")).expect("save"),
        SnapshotWrite::KeptExisting
    );
    // Same version, same schema: kept.
    assert_eq!(
        store.save_snapshot(&snapshot(id, 10, 1, b"\"again\"")).expect("save"),
        SnapshotWrite::KeptExisting
    );
    assert_eq!(stored(&store), (10, 1, b"\"v10\"".to_vec()));
    assert_eq!(
        store.save_snapshot(&snapshot(id, 12, 1, b"\"v12\"")).expect("save"),
        SnapshotWrite::Written
    );
    // Higher schema, lower version: written.
    assert_eq!(
        store.save_snapshot(&snapshot(id, 3, 2, b"\"s2\"")).expect("save"),
        SnapshotWrite::Written
    );
    // Lower schema, higher version: kept (a rollback never overwrites newer code's state).
    assert_eq!(
        store.save_snapshot(&snapshot(id, 50, 1, b"\"old\"")).expect("save"),
        SnapshotWrite::KeptExisting
    );
    assert_eq!(stored(&store), (3, 2, b"\"s2\"".to_vec()));
    assert_eq!(count(&raw(&path), "SELECT COUNT(*) FROM snapshots"), 1);
}

#[test]
fn snapshot_get_exists_delete() {
    let (_dir, path) = temp();
    let store = SqliteSnapshotStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    assert_eq!(store.get_snapshot(id, TYPE).expect("get"), None);
    assert!(!store.snapshot_exists(id, TYPE).expect("exists"));
    let s = snapshot(id, 7, 3, br#"{"items":[1,2]}"#);
    store.save_snapshot(&s).expect("save");
    assert_eq!(
        store.get_snapshot(id, TYPE).expect("get"),
        Some(s.clone()),
        "created_at to the microsecond"
    );
    assert!(store.snapshot_exists(id, TYPE).expect("exists"));
    assert!(!store.snapshot_exists(id, "Cart").expect("other type"));
    assert!(store.delete_snapshot(id, TYPE).expect("delete"));
    assert!(!store.delete_snapshot(id, TYPE).expect("delete again"));
    assert_eq!(store.get_snapshot(id, TYPE).expect("get"), None);
}

#[test]
fn delete_snapshots_by_type_is_strictly_below() {
    let (_dir, path) = temp();
    let store = SqliteSnapshotStore::open(&path).expect("open");
    let ids: Vec<Uuid> = (0..4).map(|_| Uuid::now_v7()).collect();
    for (id, schema) in ids.iter().zip([1u32, 2, 3, 1]) {
        store.save_snapshot(&snapshot(*id, 5, schema, b"{}")).expect("save");
    }
    let cart = Snapshot {
        aggregate_type: "Cart".into(),
        ..snapshot(Uuid::now_v7(), 5, 1, b"{}")
    };
    store.save_snapshot(&cart).expect("cart");
    assert_eq!(store.delete_snapshots_by_type(TYPE, Some(1)).expect("below 1"), 0);
    assert_eq!(store.delete_snapshots_by_type(TYPE, Some(2)).expect("below 2"), 2);
    assert!(!store.snapshot_exists(ids[0], TYPE).expect("exists"));
    assert!(store.snapshot_exists(ids[1], TYPE).expect("schema 2 stays"));
    assert!(store.snapshot_exists(ids[2], TYPE).expect("schema 3 stays"));
    assert_eq!(store.delete_snapshots_by_type(TYPE, None).expect("all"), 2);
    assert!(store.snapshot_exists(cart.aggregate_id, "Cart").expect("cart stays"));
    assert_eq!(store.delete_snapshots_by_type("Nothing", None).expect("none"), 0);
}

#[test]
fn an_undecodable_snapshot_row_is_returned_as_raw_bytes() {
    let (_dir, path) = temp();
    let store = SqliteSnapshotStore::open(&path).expect("open");
    let id = Uuid::now_v7();
    raw(&path)
        .execute(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, created_at) \
             VALUES (?1, 'Order', 3, 1, 'this is not json', '2026-01-01T00:00:00.000000Z')",
            [id.to_string()],
        )
        .expect("insert");
    let s = store.get_snapshot(id, TYPE).expect("get").expect("some");
    assert_eq!(s.state, b"this is not json");
}

// ---------------------------------------------------------------------------------------
// Bad input
// ---------------------------------------------------------------------------------------

fn expect_malformed(store: &SqliteEventStore, id: Uuid, column: &str) {
    match store.read_stream(id, TYPE, 0, &mut |_| Ok(())) {
        Err(Error::MalformedRow { table, message }) => {
            assert_eq!(table, "events");
            assert!(message.contains(&format!("`{column}`")), "{message}");
        }
        x => panic!("expected MalformedRow for {column}, got {x:?}"),
    }
}

#[test]
fn malformed_event_rows_name_the_column() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open(&path).expect("open");
    let conn = raw(&path);
    let insert = |id: Uuid, event_id: &str, version: i64, timestamp: &str, payload: rusqlite::types::Value| {
        conn.execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \
             timestamp, payload, metadata, created_at) \
             VALUES (?1, ?2, 'Order', 'ItemAdded', 1, ?3, ?4, ?5, '{}', '2026-01-01T00:00:00.000000Z')",
            rusqlite::params![event_id, id.to_string(), version, timestamp, payload],
        )
        .expect("insert");
    };
    let good_ts = "2026-01-01T00:00:00.000000Z";
    let text = || rusqlite::types::Value::Text("{}".into());

    let bad_uuid = Uuid::now_v7();
    insert(bad_uuid, "not-a-uuid", 1, good_ts, text());
    expect_malformed(&store, bad_uuid, "event_id");

    let bad_ts = Uuid::now_v7();
    insert(bad_ts, &Uuid::now_v7().to_string(), 1, "yesterday", text());
    expect_malformed(&store, bad_ts, "timestamp");

    let negative = Uuid::now_v7();
    insert(negative, &Uuid::now_v7().to_string(), -1, good_ts, text());
    // A read after version 0 never selects it; the stream's version is malformed.
    match store.stream_version(negative, TYPE) {
        Err(Error::MalformedRow { message, .. }) => {
            assert!(message.contains("`version`"), "{message}")
        }
        x => panic!("expected MalformedRow, got {x:?}"),
    }

    // TEXT affinity turns numbers into text, but a BLOB stays a BLOB.
    let blob_in_json = Uuid::now_v7();
    insert(
        blob_in_json,
        &Uuid::now_v7().to_string(),
        1,
        good_ts,
        rusqlite::types::Value::Blob(b"{}".to_vec()),
    );
    expect_malformed(&store, blob_in_json, "payload");
}

#[test]
fn a_payload_of_the_wrong_sql_type_is_malformed_with_bincode_too() {
    let (_dir, path) = temp();
    let store = SqliteEventStore::open_with_codec(&path, BincodeCodec).expect("open");
    let conn = raw(&path);
    for (n, payload) in [
        rusqlite::types::Value::Integer(42),
        rusqlite::types::Value::Text("text".into()),
    ]
    .into_iter()
    .enumerate()
    {
        let id = Uuid::now_v7();
        conn.execute(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \
             timestamp, payload, metadata, created_at) \
             VALUES (?1, ?2, 'Order', 'ItemAdded', 1, 1, '2026-01-01T00:00:00.000000Z', ?3, '{}', \
             '2026-01-01T00:00:00.000000Z')",
            rusqlite::params![Uuid::now_v7().to_string(), id.to_string(), payload],
        )
        .expect("insert");
        match store.read_stream(id, TYPE, 0, &mut |_| Ok(())) {
            Err(Error::MalformedRow { message, .. }) => {
                assert!(
                    message.contains("`payload`") && message.contains("BLOB"),
                    "{n}: {message}"
                )
            }
            x => panic!("expected MalformedRow, got {x:?}"),
        }
    }
}

#[test]
fn a_malformed_snapshot_row_does_not_fail_a_load() {
    let (_dir, path) = temp();
    let events = SqliteEventStore::open(&path).expect("open");
    let repo = AggregateRepository::<Order, _>::new(events.clone()).with_snapshot_store(events.snapshot_store());
    let id = Uuid::now_v7();
    let customer = Uuid::now_v7();
    let mut order = repo.load_or_create(id).expect("new");
    order.record(OrderCreated { customer_id: customer });
    order.record(item(1));
    repo.save(&mut order).expect("save");
    raw(&path)
        .execute(
            "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, created_at) \
             VALUES (?1, 'Order', 1, 2, '{}', 'not a time')",
            [id.to_string()],
        )
        .expect("insert");
    // The joint read declines (nothing visited), the snapshot store reports the row, and
    // the load replays.
    let mut r = Recorder::default();
    assert!(!events.read_with_snapshot(id, TYPE, &mut r).expect("joint"));
    assert_eq!(r.calls, 0);
    assert!(matches!(
        events.snapshot_store().get_snapshot(id, TYPE),
        Err(Error::MalformedRow { table: "snapshots", .. })
    ));
    let (loaded, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(loaded.state(), &common::expected_order(customer, 1));
    assert!(matches!(outcome.snapshot, SnapshotUse::Discarded(_)));
}

#[test]
fn a_missing_directory_is_a_clear_store_error() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("no").join("such").join("dir").join("app.db");
    match SqliteEventStore::open(&path) {
        Err(Error::Store { backend, message, .. }) => {
            assert_eq!(backend, "sqlite");
            assert!(message.contains("directory") && message.contains("app.db"), "{message}");
        }
        x => panic!("expected a store error, got {x:?}"),
    }
}

fn populated(path: &Path) -> Uuid {
    let store = SqliteEventStore::open(path).expect("open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 3)).expect("append");
    id
}

fn expect_read_only_refusal(result: eventsource::Result<u64>) {
    match result {
        Err(Error::Store { message, .. }) => assert!(message.contains("read-only"), "{message}"),
        x => panic!("expected a read-only store error, got {x:?}"),
    }
}

#[test]
fn a_read_only_database_reads_and_refuses_writes() {
    let (_dir, path) = temp();
    let id = populated(&path);
    let ro = SqliteEventStore::open_with_options(&path, JsonCodec, SqliteOptions::new().read_only(true))
        .expect("read-only open");
    assert_eq!(read_all(&ro, id).len(), 3);
    expect_read_only_refusal(ro.append(id, TYPE, 3, &batch(4, 1)));
    let snapshots = ro.snapshot_store();
    assert!(matches!(
        snapshots.save_snapshot(&snapshot(id, 3, 1, b"{}")),
        Err(Error::Store { .. })
    ));

    // An SQLite URI with mode=ro works through the plain constructor too.
    let uri = format!("file:{}?mode=ro", path.display());
    let by_uri = SqliteEventStore::open(&uri).expect("uri open");
    assert_eq!(by_uri.location(), ro.location());
    assert_eq!(read_all(&by_uri, id).len(), 3);
    expect_read_only_refusal(by_uri.append(id, TYPE, 3, &batch(4, 1)));
    assert_eq!(
        read_all(&SqliteEventStore::open(&path).expect("rw"), id).len(),
        3,
        "nothing lost"
    );
}

#[test]
fn a_read_only_database_that_needs_migrations_is_a_schema_error() {
    let (_dir, path) = temp();
    raw(&path)
        .execute_batch("CREATE TABLE unrelated (x INTEGER)")
        .expect("plain sqlite file");
    let err = SqliteEventStore::open_with_options(&path, JsonCodec, SqliteOptions::new().read_only(true))
        .expect_err("unmigrated");
    match err {
        Error::SchemaMismatch { fix, .. } => assert!(fix.contains("read-write"), "{fix}"),
        e => panic!("expected SchemaMismatch, got {e}"),
    }
}

#[cfg(unix)]
#[test]
fn a_write_protected_file_is_a_clear_error() {
    use std::os::unix::fs::PermissionsExt;
    let (dir, path) = temp();
    let id = populated(&path);
    let protect = |mode| {
        for p in [dir.path().to_path_buf(), path.clone()] {
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).expect("chmod");
        }
    };
    protect(0o555);
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).expect("chmod file");
    if std::fs::OpenOptions::new().write(true).open(&path).is_ok() {
        // Running as root: permissions do not stop writes, nothing to test here (the
        // `read_only` and `mode=ro` cases above cover a database SQLite cannot write).
        protect(0o755);
        return;
    }
    let outcome = SqliteEventStore::open(&path).and_then(|s| s.append(id, TYPE, 3, &batch(4, 1)));
    protect(0o755);
    match outcome {
        Err(Error::Store { .. } | Error::SchemaMismatch { .. }) => {}
        x => panic!("expected a store or schema error, got {x:?}"),
    }
    assert_eq!(read_all(&SqliteEventStore::open(&path).expect("rw"), id).len(), 3);
}

#[test]
fn a_database_locked_beyond_the_busy_timeout_fails_the_append_and_loses_nothing() {
    let (_dir, path) = temp();
    let timeout = Duration::from_millis(300);
    let options = SqliteOptions::new()
        .busy_timeout(timeout)
        .synchronous(Synchronous::Normal);
    let store = SqliteEventStore::open_with_options(&path, JsonCodec, options).expect("open");
    let id = Uuid::now_v7();
    store.append(id, TYPE, 0, &batch(1, 2)).expect("append");

    let holder = raw(&path);
    holder.execute_batch("BEGIN IMMEDIATE").expect("hold the write lock");
    let started = Instant::now();
    let result = store.append(id, TYPE, 2, &batch(3, 2));
    let waited = started.elapsed();
    match result {
        Err(Error::Store { backend, message, .. }) => {
            assert_eq!(backend, "sqlite");
            assert!(message.contains("busy timeout"), "{message}");
        }
        x => panic!("expected a store error, got {x:?}"),
    }
    assert!(waited >= timeout, "gave up after {waited:?}, before the timeout");
    assert!(waited < Duration::from_secs(5), "waited {waited:?}");
    // Readers are not blocked by the writer (WAL).
    assert_eq!(store.stream_version(id, TYPE).expect("read while locked"), 2);
    holder.execute_batch("ROLLBACK").expect("release");

    assert_eq!(
        store.append(id, TYPE, 2, &batch(3, 2)).expect("append after release"),
        4
    );
    assert_eq!(
        read_all(&store, id).iter().map(|e| e.version).collect::<Vec<_>>(),
        vec![1, 2, 3, 4]
    );
}

#[test]
fn opening_while_another_connection_writes_does_not_wait_for_it() {
    let (_dir, path) = temp();
    populated(&path);
    let holder = raw(&path);
    holder.execute_batch("BEGIN IMMEDIATE").expect("hold the write lock");
    let options = SqliteOptions::new().busy_timeout(Duration::from_millis(200));
    // An up-to-date database is only read at open.
    SqliteEventStore::open_with_options(&path, JsonCodec, options).expect("open while locked");
    holder.execute_batch("ROLLBACK").expect("release");
}

#[test]
fn options_default_to_durable_commits() {
    let options = SqliteOptions::default();
    assert_eq!(options.get_synchronous(), Synchronous::Full);
    assert_eq!(options.get_busy_timeout(), Duration::from_secs(5));
    assert_eq!(options.get_pool_size(), sqlite::DEFAULT_POOL_SIZE);
    assert!(!options.is_read_only());
    assert_eq!(SqliteOptions::new().pool_size(0).get_pool_size(), 1);
}
