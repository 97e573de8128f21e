//! The PostgreSQL stores against a real server, each test in a schema of its own.
//!
//! The checks are written once (`checks!`) and compiled twice: for the sync stores over the
//! `postgres` crate and for the async ones over `tokio-postgres` (`aw!` awaits in the async
//! copy and is transparent in the sync one). Backend-specific checks (bincode columns,
//! migrations, the schema check, TLS) follow.

#[macro_use]
mod common_pg;

use common_pg::PgSchema;
use eventsource::store::postgres::{
    AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PgOptions, PostgresEventStore, PostgresSnapshotStore,
};
use eventsource::{BincodeCodec, Error, JsonCodec, Metadata, NewEvent, Result, Snapshot, SnapshotWrite};
use uuid::Uuid;

const TYPE: &str = "Order";

fn new_event(event_type: &str, payload: Vec<u8>) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload,
        metadata: Metadata::default(),
    }
}

fn json(n: u64) -> Vec<u8> {
    format!(r#"{{"sku":"SKU-{n}","qty":{n},"price_cents":-25}}"#).into_bytes()
}

fn same_json(a: &[u8], b: &[u8]) -> bool {
    let a: serde_json::Value = serde_json::from_slice(a).expect("stored JSON");
    let b: serde_json::Value = serde_json::from_slice(b).expect("sent JSON");
    a == b
}

fn snapshot(id: Uuid, version: u64, schema_version: u32, state: &str) -> Snapshot {
    Snapshot {
        aggregate_id: id,
        aggregate_type: TYPE.into(),
        version,
        schema_version,
        state: state.as_bytes().to_vec(),
        created_at: eventsource::time::now(),
    }
}

/// Records what a joint read hands the visitor.
#[derive(Debug, Default)]
struct Joint {
    header: Option<Option<Snapshot>>,
    versions: Vec<u64>,
    go_on: bool,
}

impl eventsource::store::JointVisitor for Joint {
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> Result<bool> {
        self.header = Some(snapshot);
        Ok(self.go_on)
    }

    fn event(&mut self, event: &eventsource::ReplayEvent<'_>) -> Result<()> {
        self.versions.push(event.version);
        Ok(())
    }
}

fn sync_stores(db: &PgSchema) -> (PostgresEventStore, PostgresSnapshotStore) {
    let es = PostgresEventStore::from_config(db.config(&db.app("store")), JsonCodec, db.options().pool_size(4))
        .expect("open sync store");
    let ss = es.snapshot_store();
    (es, ss)
}

async fn async_stores(db: &PgSchema) -> (AsyncPostgresEventStore, AsyncPostgresSnapshotStore) {
    let es =
        AsyncPostgresEventStore::from_config(db.async_config(&db.app("store")), JsonCodec, db.options().pool_size(4))
            .await
            .expect("open async store");
    let ss = es.snapshot_store();
    (es, ss)
}

/// The checks, generic over the API's `EventStore` / `SnapshotStore`.
macro_rules! checks {
    () => {
        api_fn! { fn read_all<ES: EventStore>(es: &ES, id: Uuid, after: u64) -> Vec<eventsource::StoredEvent> {
            let mut out = Vec::new();
            aw!(es.read_stream(id, TYPE, after, &mut |r| {
                out.push(r.to_owned()?);
                Ok(())
            }))
            .expect("read_stream");
            out
        }}

        api_fn! { pub fn append_read_round_trip<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, _db: &PgSchema) {
            let id = Uuid::now_v7();
            let mut batch: Vec<NewEvent> = (1..=3).map(|n| new_event("ItemAdded", json(n))).collect();
            batch[1].metadata = Metadata {
                correlation_id: Some(Uuid::now_v7()),
                causation_id: Some(Uuid::now_v7()),
                actor_id: Some("user-7".into()),
                tenant_id: Some("acme".into()),
                extra: [("ip".to_owned(), "10.0.0.1".to_owned())].into_iter().collect(),
            };
            batch[2].event_version = 3;
            let before = eventsource::time::now();
            assert_eq!(aw!(es.append(id, TYPE, 0, &batch)).expect("append"), 3);
            assert_eq!(aw!(es.stream_version(id, TYPE)).expect("version"), 3);
            assert_eq!(aw!(es.stream_version(id, "Other")).expect("version"), 0, "streams are per type");
            let all = aw!(read_all(es, id, 0));
            assert_eq!(all.iter().map(|e| e.version).collect::<Vec<_>>(), vec![1, 2, 3]);
            for (stored, sent) in all.iter().zip(&batch) {
                assert_eq!(stored.event_id, sent.event_id);
                assert_eq!(stored.aggregate_id, id);
                assert_eq!(stored.aggregate_type, TYPE);
                assert_eq!(stored.event_type, sent.event_type);
                assert_eq!(stored.event_version, sent.event_version);
                assert!(same_json(&stored.payload, &sent.payload), "payload round trips");
                assert_eq!(stored.metadata, sent.metadata, "metadata round trips");
                assert_eq!(stored.occurred_at, sent.occurred_at, "TIMESTAMPTZ keeps the microseconds");
                assert!(stored.stored_at >= before - chrono::Duration::seconds(5), "created_at is the server's now");
            }
            assert!(all.windows(2).all(|w| w[0].global_position < w[1].global_position));
            assert_eq!(aw!(read_all(es, id, 2)).iter().map(|e| e.version).collect::<Vec<_>>(), vec![3]);
            assert!(aw!(read_all(es, id, 3)).is_empty());
            assert!(aw!(read_all(es, id, u64::MAX)).is_empty(), "a bound beyond BIGINT reads nothing");
            assert_eq!(aw!(es.append(id, TYPE, 3, &[new_event("ItemAdded", json(4))])).expect("append"), 4);
            assert!(aw!(es.append(id, TYPE, 4, &[])).is_ok(), "an empty batch at the right version is fine");
        }}

        api_fn! { pub fn conflict_writes_nothing<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, _db: &PgSchema) {
            let id = Uuid::now_v7();
            let first: Vec<NewEvent> = (1..=3).map(|n| new_event("ItemAdded", json(n))).collect();
            aw!(es.append(id, TYPE, 0, &first)).expect("append");
            let late: Vec<NewEvent> = (4..=5).map(|n| new_event("ItemAdded", json(n))).collect();
            match aw!(es.append(id, TYPE, 1, &late)) {
                Err(Error::Conflict { expected, actual, aggregate_id, aggregate_type }) => {
                    assert_eq!((expected, actual, aggregate_id, aggregate_type.as_str()), (1, 3, id, TYPE));
                }
                other => panic!("expected a conflict behind the stream, got {other:?}"),
            }
            match aw!(es.append(id, TYPE, 7, &late)) {
                Err(Error::Conflict { expected: 7, actual: 3, .. }) => {}
                other => panic!("expected a conflict ahead of the stream (no gap), got {other:?}"),
            }
            match aw!(es.append(id, TYPE, 2, &[])) {
                Err(Error::Conflict { expected: 2, actual: 3, .. }) => {}
                other => panic!("an empty batch still checks the version, got {other:?}"),
            }
            assert_eq!(aw!(read_all(es, id, 0)).len(), 3, "nothing was written");
            assert!(aw!(es.append(id, TYPE, 3, &late)).is_ok(), "the same events at the right version go in");
        }}

        api_fn! { pub fn duplicate_event_id_writes_nothing<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, _db: &PgSchema) {
            let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
            let existing = new_event("ItemAdded", json(1));
            aw!(es.append(a, TYPE, 0, std::slice::from_ref(&existing))).expect("append");
            let mut batch: Vec<NewEvent> = (1..=4).map(|n| new_event("ItemAdded", json(n))).collect();
            batch[2].event_id = existing.event_id;
            match aw!(es.append(b, TYPE, 0, &batch)) {
                Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, existing.event_id),
                other => panic!("expected a duplicate event, got {other:?}"),
            }
            assert_eq!(aw!(es.stream_version(b, TYPE)).expect("version"), 0, "all or nothing");
            let twice = [new_event("ItemAdded", json(1)), new_event("ItemAdded", json(2))];
            let mut twice = twice.to_vec();
            twice[1].event_id = twice[0].event_id;
            match aw!(es.append(b, TYPE, 0, &twice)) {
                Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, twice[0].event_id),
                other => panic!("expected a duplicate within the batch, got {other:?}"),
            }
            assert_eq!(aw!(es.stream_version(b, TYPE)).expect("version"), 0);
        }}

        api_fn! { pub fn batch_is_atomic<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, _db: &PgSchema) {
            let id = Uuid::now_v7();
            aw!(es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])).expect("append");
            // The fourth payload is not JSON: the server rejects the statement, and with it
            // the three good events before it.
            let mut batch: Vec<NewEvent> = (2..=6).map(|n| new_event("ItemAdded", json(n))).collect();
            batch[3].payload = b"{not json".to_vec();
            match aw!(es.append(id, TYPE, 1, &batch)) {
                Err(Error::Store { backend: "postgres", .. }) => {}
                other => panic!("expected a store error, got {other:?}"),
            }
            assert_eq!(aw!(es.stream_version(id, TYPE)).expect("version"), 1, "no partial batch");
            assert_eq!(aw!(read_all(es, id, 0)).len(), 1);
            // The connection is still good: the next append goes through.
            batch[3].payload = json(5);
            assert_eq!(aw!(es.append(id, TYPE, 1, &batch)).expect("append"), 6);
            let versions: Vec<u64> = aw!(read_all(es, id, 0)).iter().map(|e| e.version).collect();
            assert_eq!(versions, (1..=6).collect::<Vec<_>>());
        }}

        api_fn! { pub fn one_query_joint_read<ES: EventStore, SS: SnapshotStore>(es: &ES, ss: &SS, _db: &PgSchema) {
            assert!(es.location().is_some());
            assert_eq!(es.location(), ss.location(), "a snapshot store from the event store shares its location");
            let id = Uuid::now_v7();
            let batch: Vec<NewEvent> = (1..=8).map(|n| new_event("ItemAdded", json(n))).collect();
            aw!(es.append(id, TYPE, 0, &batch)).expect("append");

            // No snapshot: the header says so, and the whole stream follows (a load without
            // snapshot is one query too).
            let mut joint = Joint { go_on: true, ..Joint::default() };
            assert!(aw!(es.read_with_snapshot(id, TYPE, &mut joint)).expect("joint read"));
            assert_eq!(joint.header, Some(None));
            assert_eq!(joint.versions, (1..=8).collect::<Vec<_>>());

            let snap = snapshot(id, 5, 2, r#"{"items":5}"#);
            assert_eq!(aw!(ss.save_snapshot(&snap)).expect("save"), SnapshotWrite::Written);
            let mut joint = Joint { go_on: true, ..Joint::default() };
            assert!(aw!(es.read_with_snapshot(id, TYPE, &mut joint)).expect("joint read"));
            let stored = joint.header.clone().expect("header").expect("snapshot");
            assert_eq!((stored.version, stored.schema_version), (5, 2));
            assert!(same_json(&stored.state, &snap.state));
            assert_eq!(stored.created_at, snap.created_at);
            assert_eq!(joint.versions, vec![5, 6, 7, 8], "the anchor at the snapshot's version, then the tail");

            // The visitor may stop after the header.
            let mut stop = Joint::default();
            assert!(aw!(es.read_with_snapshot(id, TYPE, &mut stop)).expect("joint read"));
            assert!(stop.header.is_some() && stop.versions.is_empty());

            // A snapshot ahead of the stream: no anchor follows it.
            aw!(ss.save_snapshot(&snapshot(id, 50, 2, "{}"))).expect("save");
            let mut ahead = Joint { go_on: true, ..Joint::default() };
            aw!(es.read_with_snapshot(id, TYPE, &mut ahead)).expect("joint read");
            assert_eq!(ahead.header.expect("header").map(|s| s.version), Some(50));
            assert!(ahead.versions.is_empty());
        }}

        api_fn! { pub fn snapshot_writes_never_go_backwards<ES: EventStore, SS: SnapshotStore>(_es: &ES, ss: &SS, _db: &PgSchema) {
            let id = Uuid::now_v7();
            assert!(aw!(ss.get_snapshot(id, TYPE)).expect("get").is_none());
            assert!(!aw!(ss.snapshot_exists(id, TYPE)).expect("exists"));
            let w = |v: u64, s: u32| snapshot(id, v, s, &format!(r#"{{"v":{v},"s":{s}}}"#));
            assert_eq!(aw!(ss.save_snapshot(&w(10, 1))).expect("save"), SnapshotWrite::Written);
            assert_eq!(aw!(ss.save_snapshot(&w(5, 1))).expect("save"), SnapshotWrite::KeptExisting, "older version");
            assert_eq!(aw!(ss.save_snapshot(&w(10, 1))).expect("save"), SnapshotWrite::KeptExisting, "same version");
            assert_eq!(aw!(ss.save_snapshot(&w(11, 1))).expect("save"), SnapshotWrite::Written, "newer version");
            assert_eq!(aw!(ss.save_snapshot(&w(3, 2))).expect("save"), SnapshotWrite::Written, "higher schema wins");
            assert_eq!(aw!(ss.save_snapshot(&w(99, 1))).expect("save"), SnapshotWrite::KeptExisting, "lower schema loses");
            let stored = aw!(ss.get_snapshot(id, TYPE)).expect("get").expect("stored");
            assert_eq!((stored.version, stored.schema_version), (3, 2));
            assert!(same_json(&stored.state, br#"{"v":3,"s":2}"#));
            assert!(aw!(ss.snapshot_exists(id, TYPE)).expect("exists"));
            assert!(!aw!(ss.snapshot_exists(id, "Other")).expect("exists"));
            assert!(aw!(ss.delete_snapshot(id, TYPE)).expect("delete"));
            assert!(!aw!(ss.delete_snapshot(id, TYPE)).expect("delete again"));
            assert!(aw!(ss.get_snapshot(id, TYPE)).expect("get").is_none());
            // The guide's INTEGER version column: beyond it is an error, not a wrap.
            match aw!(ss.save_snapshot(&w(1 << 31, 1))) {
                Err(Error::OutOfRange { .. }) => {}
                other => panic!("expected out of range, got {other:?}"),
            }
        }}

        api_fn! { pub fn delete_snapshots_by_type_is_strict<ES: EventStore, SS: SnapshotStore>(_es: &ES, ss: &SS, _db: &PgSchema) {
            for schema_version in [1, 1, 2, 3] {
                aw!(ss.save_snapshot(&snapshot(Uuid::now_v7(), 4, schema_version, "{}"))).expect("save");
            }
            let mut other = snapshot(Uuid::now_v7(), 4, 1, "{}");
            other.aggregate_type = "Cart".into();
            aw!(ss.save_snapshot(&other)).expect("save");
            assert_eq!(aw!(ss.delete_snapshots_by_type(TYPE, Some(1))).expect("delete"), 0, "strictly below");
            assert_eq!(aw!(ss.delete_snapshots_by_type(TYPE, Some(3))).expect("delete"), 3);
            assert_eq!(aw!(ss.delete_snapshots_by_type(TYPE, None)).expect("delete"), 1);
            assert!(aw!(ss.snapshot_exists(other.aggregate_id, "Cart")).expect("exists"), "other types untouched");
            aw!(ss.save_snapshot(&snapshot(Uuid::now_v7(), 4, i32::MAX as u32, "{}"))).expect("save");
            assert_eq!(aw!(ss.delete_snapshots_by_type(TYPE, Some(u32::MAX))).expect("delete"), 1, "every u32 bound is exact");
        }}

        api_fn! { pub fn versions_out_of_range_are_errors<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, _db: &PgSchema) {
            let id = Uuid::now_v7();
            match aw!(es.append(id, TYPE, u64::MAX - 1, &[new_event("ItemAdded", json(1))])) {
                Err(Error::OutOfRange { .. }) => {}
                other => panic!("expected out of range, got {other:?}"),
            }
            let mut big = new_event("ItemAdded", json(1));
            big.event_version = u32::MAX;
            match aw!(es.append(id, TYPE, 0, &[big])) {
                Err(Error::OutOfRange { .. }) => {}
                other => panic!("expected out of range, got {other:?}"),
            }
            assert_eq!(aw!(es.stream_version(id, TYPE)).expect("version"), 0);
        }}

        api_fn! { pub fn malformed_rows_are_typed_errors<ES: EventStore, SS: SnapshotStore>(es: &ES, _ss: &SS, db: &PgSchema) {
            let id = Uuid::now_v7();
            aw!(es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])).expect("append");
            // A row no store writes: a negative event version.
            db.exec(&format!(
                "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \"timestamp\", payload)
                 VALUES ('{}', '{id}', '{TYPE}', 'ItemAdded', -1, 2, now(), '{{}}')",
                Uuid::now_v7()
            ));
            let mut seen = 0;
            let err = aw!(es.read_stream(id, TYPE, 0, &mut |_| {
                seen += 1;
                Ok(())
            }));
            assert!(matches!(err, Err(Error::MalformedRow { table: "events", .. })), "{err:?}");
            assert_eq!(seen, 1, "the good row before it was visited");
            // The connection survives a malformed row.
            assert_eq!(aw!(es.stream_version(id, TYPE)).expect("version"), 2);
        }}
    };
}

mod sync_api {
    macro_rules! aw {
        ($e:expr) => {
            $e
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis fn $($rest)* };
    }
    use super::*;
    use eventsource::{EventStore, SnapshotStore};
    checks!();
}

mod async_api {
    macro_rules! aw {
        ($e:expr) => {
            $e.await
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis async fn $($rest)* };
    }
    use super::*;
    use eventsource::tokio::{EventStore, SnapshotStore};
    checks!();
}

/// One `#[test]` per check and API, each in a fresh schema.
macro_rules! run_checks {
    ($($name:ident),* $(,)?) => {
        mod sync_tests {
            $(
                #[test]
                fn $name() {
                    let db = pg_schema_or_skip!(concat!("sync ", stringify!($name)));
                    let (es, ss) = super::sync_stores(&db);
                    super::sync_api::$name(&es, &ss, &db);
                }
            )*
        }
        mod async_tests {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let db = pg_schema_or_skip!(concat!("async ", stringify!($name)));
                    let (es, ss) = super::async_stores(&db).await;
                    super::async_api::$name(&es, &ss, &db).await;
                }
            )*
        }
    };
}

run_checks!(
    append_read_round_trip,
    conflict_writes_nothing,
    duplicate_event_id_writes_nothing,
    batch_is_atomic,
    one_query_joint_read,
    snapshot_writes_never_go_backwards,
    delete_snapshots_by_type_is_strict,
    versions_out_of_range_are_errors,
    malformed_rows_are_typed_errors,
);

// ---- Backend-specific checks ---------------------------------------------------------

fn column_type(db: &PgSchema, table: &str, column: &str) -> String {
    let (schema, table, column) = (db.name.clone(), table.to_owned(), column.to_owned());
    db.with_client(move |c| {
        c.query_one(
            "SELECT data_type::TEXT FROM information_schema.columns
             WHERE table_schema = $1 AND table_name = $2 AND column_name = $3",
            &[&schema, &table, &column],
        )
        .expect("column")
        .get(0)
    })
}

#[test]
fn bincode_stores_bytes_in_bytea_sync() {
    use eventsource::{EventStore, SnapshotStore};
    let db = pg_schema_or_skip!("bincode_stores_bytes_in_bytea_sync");
    let es = PostgresEventStore::from_config(db.config("bincode"), BincodeCodec, db.options()).expect("open");
    let ss = es.snapshot_store();
    assert_eq!(column_type(&db, "events", "payload"), "bytea");
    assert_eq!(column_type(&db, "snapshots", "state"), "bytea");
    assert_eq!(column_type(&db, "events", "metadata"), "jsonb", "metadata stays JSON");
    let id = Uuid::now_v7();
    let payloads: Vec<Vec<u8>> = vec![vec![0, 159, 146, 150], vec![], vec![255; 300]];
    let batch: Vec<NewEvent> = payloads.iter().map(|p| new_event("ItemAdded", p.clone())).collect();
    assert_eq!(es.append(id, TYPE, 0, &batch).expect("append"), 3);
    let mut read = Vec::new();
    es.read_stream(id, TYPE, 0, &mut |r| {
        read.push(r.payload.to_vec());
        Ok(())
    })
    .expect("read");
    assert_eq!(read, payloads, "bytes come back exactly");
    let mut snap = snapshot(id, 2, 1, "");
    snap.state = vec![1, 0, 2, 0];
    ss.save_snapshot(&snap).expect("save");
    assert_eq!(
        ss.get_snapshot(id, TYPE).expect("get").expect("stored").state,
        snap.state
    );
    let mut joint = Joint {
        go_on: true,
        ..Joint::default()
    };
    assert!(es.read_with_snapshot(id, TYPE, &mut joint).expect("joint"));
    assert_eq!(joint.header.flatten().map(|s| s.state), Some(snap.state));
    assert_eq!(joint.versions, vec![2, 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bincode_stores_bytes_in_bytea_async() {
    use eventsource::tokio::{EventStore, SnapshotStore};
    let db = pg_schema_or_skip!("bincode_stores_bytes_in_bytea_async");
    let es = AsyncPostgresEventStore::from_config(db.async_config("bincode"), BincodeCodec, db.options())
        .await
        .expect("open");
    let ss = es.snapshot_store();
    let id = Uuid::now_v7();
    let payload = vec![7u8, 0, 7];
    es.append(id, TYPE, 0, &[new_event("ItemAdded", payload.clone())])
        .await
        .expect("append");
    let mut read = Vec::new();
    es.read_stream(id, TYPE, 0, &mut |r| {
        read.push(r.payload.to_vec());
        Ok(())
    })
    .await
    .expect("read");
    assert_eq!(read, vec![payload]);
    let mut snap = snapshot(id, 1, 1, "");
    snap.state = vec![9, 9];
    ss.save_snapshot(&snap).await.expect("save");
    assert_eq!(
        ss.get_snapshot(id, TYPE).await.expect("get").expect("stored").state,
        vec![9, 9]
    );
}

#[test]
fn migrations_are_idempotent_and_recorded() {
    let db = pg_schema_or_skip!("migrations_are_idempotent_and_recorded");
    for _ in 0..3 {
        PostgresEventStore::from_config(db.config("m"), JsonCodec, db.options()).expect("open sync");
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        AsyncPostgresSnapshotStore::from_config(db.async_config("m"), JsonCodec, db.options())
            .await
            .expect("open async");
    });
    let recorded: Vec<(i32, String, String, String)> = db.with_client(|c| {
        c.query(
            "SELECT version, name, checksum, format FROM eventsource_migrations ORDER BY version",
            &[],
        )
        .expect("recorded")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
    });
    let expected: Vec<(i32, String, String, String)> =
        eventsource::migrations::migrations(eventsource::Backend::Postgres)
            .iter()
            .map(|m| {
                let sql =
                    eventsource::migrations::render(m.sql, eventsource::Backend::Postgres, eventsource::Format::Json);
                (
                    m.version as i32,
                    m.name.to_owned(),
                    eventsource::migrations::checksum(&sql),
                    "json".to_owned(),
                )
            })
            .collect();
    assert_eq!(recorded, expected, "each migration once, with checksum and format");
}

#[test]
fn concurrent_first_connects_do_not_fail() {
    let db = pg_schema_or_skip!("concurrent_first_connects_do_not_fail");
    // A schema that does not exist yet: the stores create it, under the advisory lock.
    let fresh = format!("{}_new", db.name);
    std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|i| {
                let options = PgOptions::new().schema(&fresh);
                let config = db.config("first");
                s.spawn(move || {
                    if i % 2 == 0 {
                        PostgresEventStore::from_config(config, JsonCodec, options).map(|_| ())
                    } else {
                        PostgresSnapshotStore::from_config(config, JsonCodec, options).map(|_| ())
                    }
                })
            })
            .collect();
        for h in handles {
            h.join()
                .expect("thread")
                .expect("every concurrent first connect succeeds");
        }
    });
    let applied = db.scalar_i64(&format!("SELECT COUNT(*) FROM \"{fresh}\".eventsource_migrations"));
    assert_eq!(applied, 2);
    db.exec(&format!("DROP SCHEMA \"{fresh}\" CASCADE"));
}

fn mismatch(result: eventsource::Result<impl std::fmt::Debug>) -> (String, String) {
    match result {
        Err(Error::SchemaMismatch { problem, fix }) => (problem, fix),
        other => panic!("expected a schema mismatch, got {other:?}"),
    }
}

#[test]
fn the_schema_check_names_the_fix() {
    let db = pg_schema_or_skip!("the_schema_check_names_the_fix");
    // Nothing there and migrations off: the check names get_schema.
    let (problem, fix) = mismatch(PostgresEventStore::from_config(
        db.config("check"),
        JsonCodec,
        db.options().migrate(false),
    ));
    assert!(problem.contains("`events` does not exist"), "{problem}");
    assert!(
        fix.contains("get_schema(Schema::All, Backend::Postgres, Format::Json)"),
        "{fix}"
    );

    // A DBA applies our DDL by hand: the store opens without migrating.
    db.exec(&eventsource::get_schema(
        eventsource::Schema::All,
        eventsource::Backend::Postgres,
        eventsource::Format::Json,
    ));
    PostgresEventStore::from_config(db.config("check"), JsonCodec, db.options().migrate(false))
        .expect("hand-applied schema passes the check");

    // The bincode codec on JSON tables.
    let (problem, fix) = mismatch(PostgresEventStore::from_config(
        db.config("check"),
        BincodeCodec,
        db.options().migrate(false),
    ));
    assert!(
        problem.contains("events.payload") && problem.contains("jsonb"),
        "{problem}"
    );
    assert!(fix.contains("JsonCodec"), "{fix}");

    // A missing constraint the conflict detection relies on.
    db.exec("ALTER TABLE events DROP CONSTRAINT uq_events_stream_version");
    let (problem, fix) = mismatch(PostgresEventStore::from_config(
        db.config("check"),
        JsonCodec,
        db.options().migrate(false),
    ));
    assert!(problem.contains("uq_events_stream_version"), "{problem}");
    assert!(
        fix.contains(
            "ADD CONSTRAINT \"uq_events_stream_version\" UNIQUE (\"aggregate_id\", \"aggregate_type\", \"version\")"
        ),
        "{fix}"
    );
}

#[test]
fn migrating_for_another_codec_or_an_edited_migration_is_refused() {
    let db = pg_schema_or_skip!("migrating_for_another_codec_or_an_edited_migration_is_refused");
    PostgresEventStore::from_config(db.config("codec"), JsonCodec, db.options()).expect("open json");
    let (problem, fix) = mismatch(PostgresEventStore::from_config(
        db.config("codec"),
        BincodeCodec,
        db.options(),
    ));
    assert!(problem.contains("json codec format"), "{problem}");
    assert!(fix.contains("codec the database was created with"), "{fix}");
    db.exec("UPDATE eventsource_migrations SET checksum = 'edited' WHERE version = 1");
    let (problem, _) = mismatch(PostgresEventStore::from_config(
        db.config("codec"),
        JsonCodec,
        db.options(),
    ));
    assert!(problem.contains("changed since it was applied"), "{problem}");
}

#[test]
fn locations_tell_schemas_apart() {
    use eventsource::{EventStore, SnapshotStore};
    let a = pg_schema_or_skip!("locations_tell_schemas_apart");
    let b = pg_schema_or_skip!("locations_tell_schemas_apart");
    let es_a = PostgresEventStore::from_config(a.config("loc"), JsonCodec, a.options()).expect("open");
    let ss_a = PostgresSnapshotStore::from_config(a.config("loc"), JsonCodec, a.options()).expect("open");
    let ss_b = PostgresSnapshotStore::from_config(b.config("loc"), JsonCodec, b.options()).expect("open");
    let loc = es_a.location().expect("location").0;
    assert!(
        loc.starts_with("postgres:") && loc.ends_with(&format!("/{}", a.name)),
        "{loc}"
    );
    assert_eq!(
        es_a.location(),
        ss_a.location(),
        "separately opened stores in one schema share a location"
    );
    assert_ne!(es_a.location(), ss_b.location(), "another schema is another location");
}

#[test]
fn a_bad_url_or_an_unreachable_server_is_an_error() {
    match PostgresEventStore::connect("host=127.0.0.1 port=1 user=postgres connect_timeout=2") {
        Err(Error::Store {
            backend: "postgres", ..
        }) => {}
        other => panic!("expected a store error, got {other:?}"),
    }
    match PostgresEventStore::connect("not a = valid = string") {
        Err(Error::InvalidConnectionString { .. }) => {}
        other => panic!("expected an invalid connection string, got {other:?}"),
    }
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let config: eventsource::store::postgres::async_driver::Config =
            "host=127.0.0.1 port=1 user=postgres connect_timeout=2"
                .parse()
                .expect("config");
        let opts = PgOptions::new().checkout_timeout(std::time::Duration::from_secs(3));
        match AsyncPostgresEventStore::from_config(config, JsonCodec, opts).await {
            Err(Error::Store {
                backend: "postgres", ..
            }) => {}
            other => panic!("expected a store error, got {other:?}"),
        }
    });
}

// ---- Connections that heal -----------------------------------------------------------

/// Calls right after every pooled connection was terminated: each succeeds (the dead
/// connection is discarded and the call runs once more on a fresh one).
const CALLS_AFTER_KILL: usize = 8;

#[test]
fn after_every_pooled_connection_is_killed_the_next_call_succeeds_sync() {
    use eventsource::{EventStore, SnapshotStore};
    use std::sync::atomic::{AtomicUsize, Ordering};
    let db = pg_schema_or_skip!("after_every_pooled_connection_is_killed_the_next_call_succeeds_sync");
    let (es, ss) = sync_stores(&db);
    let id = Uuid::now_v7();
    es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])
        .expect("append");
    // Four reads at once, each holding its connection until all four are in: four pooled
    // connections (bounded wait).
    let inside = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                es.read_stream(id, TYPE, 0, &mut |_| {
                    inside.fetch_add(1, Ordering::SeqCst);
                    for _ in 0..500 {
                        if inside.load(Ordering::SeqCst) >= 4 {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Ok(())
                })
                .expect("concurrent read");
            });
        }
    });
    let killed = db.kill(&db.app("store"), false);
    assert!(killed >= 2, "several pooled connections were terminated ({killed})");
    for i in 0..CALLS_AFTER_KILL {
        assert_eq!(
            es.stream_version(id, TYPE)
                .unwrap_or_else(|e| panic!("call {i} after the kill: {e}")),
            1
        );
    }
    assert!(ss
        .get_snapshot(id, TYPE)
        .expect("snapshot read after the kill")
        .is_none());
    assert_eq!(
        es.append(id, TYPE, 1, &[new_event("ItemAdded", json(2))])
            .expect("append after the kill"),
        2
    );
    // And once more with every connection idle.
    assert!(db.kill(&db.app("store"), false) >= 1);
    assert_eq!(es.stream_version(id, TYPE).expect("the very next call"), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_every_pooled_connection_is_killed_the_next_call_succeeds_async() {
    use eventsource::tokio::{EventStore, SnapshotStore};
    let db = pg_schema_or_skip!("after_every_pooled_connection_is_killed_the_next_call_succeeds_async");
    let (es, ss) = async_stores(&db).await;
    let id = Uuid::now_v7();
    es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])
        .await
        .expect("append");
    // Four calls at once open four pooled connections.
    let (a, b, c, d) = tokio::join!(
        es.stream_version(id, TYPE),
        es.stream_version(id, TYPE),
        es.stream_version(id, TYPE),
        es.stream_version(id, TYPE)
    );
    for r in [a, b, c, d] {
        assert_eq!(r.expect("concurrent call"), 1);
    }
    let killed = db.kill(&db.app("store"), false);
    assert!(killed >= 1, "pooled connections were terminated ({killed})");
    for i in 0..CALLS_AFTER_KILL {
        assert_eq!(
            es.stream_version(id, TYPE)
                .await
                .unwrap_or_else(|e| panic!("call {i} after the kill: {e}")),
            1
        );
    }
    assert!(ss
        .get_snapshot(id, TYPE)
        .await
        .expect("snapshot read after the kill")
        .is_none());
    assert_eq!(
        es.append(id, TYPE, 1, &[new_event("ItemAdded", json(2))])
            .await
            .expect("append after the kill"),
        2
    );
    assert!(db.kill(&db.app("store"), false) >= 1);
    assert_eq!(es.stream_version(id, TYPE).await.expect("the very next call"), 2);
}

/// A server that accepts TCP connections (the kernel completes the handshake into the
/// listen backlog) and never says a word.
fn silent_server() -> (std::net::TcpListener, u16) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    (listener, port)
}

/// The test's own bound on an open that should time out much sooner.
const OPEN_BOUND: std::time::Duration = std::time::Duration::from_secs(60);

fn assert_setup_timed_out(result: Result<impl std::fmt::Debug>, timeout: &str) {
    match result {
        Err(Error::Store {
            backend: "postgres",
            message,
            ..
        }) => assert!(
            message.contains("did not complete the connection setup") && message.contains(timeout),
            "{message}"
        ),
        other => panic!("expected a connect timeout, got {other:?}"),
    }
}

#[test]
fn a_server_that_never_answers_fails_the_open_within_the_connect_timeout_sync() {
    let (_listener, port) = silent_server();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let config: eventsource::store::postgres::driver::Config =
            format!("host=127.0.0.1 port={port} user=postgres dbname=test")
                .parse()
                .expect("config");
        let options = PgOptions::new().connect_timeout(std::time::Duration::from_millis(300));
        let _ = tx.send(PostgresEventStore::from_config(config, JsonCodec, options).map(|_| ()));
        // The connection string's connect_timeout bounds the whole setup too.
        let url = format!("host=127.0.0.1 port={port} user=postgres dbname=test connect_timeout=1");
        let _ = tx.send(PostgresEventStore::connect(&url).map(|_| ()));
    });
    assert_setup_timed_out(rx.recv_timeout(OPEN_BOUND).expect("the open returned"), "300ms");
    assert_setup_timed_out(rx.recv_timeout(OPEN_BOUND).expect("the open returned"), "1s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_fails_the_open_within_the_connect_timeout_async() {
    let (_listener, port) = silent_server();
    let config: eventsource::store::postgres::async_driver::Config =
        format!("host=127.0.0.1 port={port} user=postgres dbname=test")
            .parse()
            .expect("config");
    let options = PgOptions::new().connect_timeout(std::time::Duration::from_millis(300));
    let opened = tokio::time::timeout(
        OPEN_BOUND,
        AsyncPostgresEventStore::from_config(config, JsonCodec, options),
    )
    .await
    .expect("the open returned");
    assert_setup_timed_out(opened.map(|_| ()), "300ms");
    let url = format!("host=127.0.0.1 port={port} user=postgres dbname=test connect_timeout=1");
    let opened = tokio::time::timeout(OPEN_BOUND, AsyncPostgresEventStore::connect(&url))
        .await
        .expect("the open returned");
    assert_setup_timed_out(opened.map(|_| ()), "1s");
}

// ---- Statements planned per execution -----------------------------------------------------

/// Monitoring and bulk statements run in a transaction of their own with the planner's
/// defaults. One that fails (a bulk delete on a read-only session) is rolled back: the
/// one pooled connection goes on serving monitoring and key reads, and what the writer
/// stored is all there.
#[test]
fn a_failed_per_execution_statement_leaves_its_connection_clean_sync() {
    use eventsource::store::postgres::SnapshotMonitor;
    use eventsource::{EventStore, SnapshotStore};
    let db = pg_schema_or_skip!("a_failed_per_execution_statement_leaves_its_connection_clean_sync");
    let (es, ss) = sync_stores(&db);
    let id = Uuid::now_v7();
    es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])
        .expect("append");
    ss.save_snapshot(&snapshot(id, 1, 1, "{\"n\": 1}")).expect("save");
    let ro = PostgresEventStore::from_config(
        db.config(&db.app("ro")),
        JsonCodec,
        db.options().read_only(true).pool_size(1),
    )
    .expect("open read-only")
    .snapshot_store();
    for round in 0..3 {
        let err = ro
            .delete_snapshots_by_type(TYPE, None)
            .expect_err("a read-only session refuses the delete");
        assert!(matches!(err, Error::Store { .. }), "round {round}: {err}");
        let coverage = ro.coverage().expect("monitoring on the same connection");
        assert_eq!(coverage.len(), 1, "round {round}");
        assert_eq!(ro.stale_snapshots(0).expect("stale").len(), 0);
        assert!(ro.get_snapshot(id, TYPE).expect("key read").is_some());
        assert_eq!(ro.aggregates_by_event_count(TYPE, 0).expect("by count"), vec![(id, 1)]);
    }
    // The writer's bulk delete commits.
    assert_eq!(ss.delete_snapshots_by_type(TYPE, None).expect("delete"), 1);
    assert!(ro.get_snapshot(id, TYPE).expect("key read").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_per_execution_statement_leaves_its_connection_clean_async() {
    use eventsource::tokio::{EventStore, SnapshotStore};
    let db = pg_schema_or_skip!("a_failed_per_execution_statement_leaves_its_connection_clean_async");
    let (es, ss) = async_stores(&db).await;
    let id = Uuid::now_v7();
    es.append(id, TYPE, 0, &[new_event("ItemAdded", json(1))])
        .await
        .expect("append");
    ss.save_snapshot(&snapshot(id, 1, 1, "{\"n\": 1}")).await.expect("save");
    let ro = AsyncPostgresEventStore::from_config(
        db.async_config(&db.app("ro")),
        JsonCodec,
        db.options().read_only(true).pool_size(1),
    )
    .await
    .expect("open read-only")
    .snapshot_store();
    for round in 0..3 {
        let err = ro
            .delete_snapshots_by_type(TYPE, None)
            .await
            .expect_err("a read-only session refuses the delete");
        assert!(matches!(err, Error::Store { .. }), "round {round}: {err}");
        assert_eq!(ro.coverage().await.expect("monitoring").len(), 1, "round {round}");
        assert_eq!(ro.stale_snapshots(0).await.expect("stale").len(), 0);
        assert!(ro.get_snapshot(id, TYPE).await.expect("key read").is_some());
    }
    assert_eq!(ss.delete_snapshots_by_type(TYPE, None).await.expect("delete"), 1);
    assert!(ro.get_snapshot(id, TYPE).await.expect("key read").is_none());
}
