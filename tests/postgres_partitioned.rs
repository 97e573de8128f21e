//! The partitioned layout (issue 13): `events` and `snapshots` hash-partitioned by
//! `aggregate_id`, the layout a distributed PostgreSQL (Citus) accepts.
//!
//! - the snapshots table keeps the guide's columns, constraint name and indexes, its key
//!   `uq_snapshots_aggregate (aggregate_id, aggregate_type)` as primary key;
//! - every primary key and unique constraint of both tables includes `aggregate_id`;
//! - event ids are unique per aggregate (the same id in two aggregates is two events);
//! - a store refuses a database of the other layout, naming both;
//! - a database of the default layout moves to the partitioned one with every event and
//!   snapshot preserved, and the stores go on where they stood (sync and async).
//!
//! The conformance suite, the concurrency tests and the guide's monitoring queries run on
//! this layout from their own files; the EXPLAIN tests of single-partition loads and saves
//! are in `eventsource/src/store/postgres/pruning.rs`.

#[macro_use]
mod common_pg;
mod common;
mod reference;

use common::{item, Order};
use common_pg::{PgSchema, PARTITIONED};
use eventsource::migrations::{get_postgres_schema, Layout};
use eventsource::store::postgres::{AsyncPostgresEventStore, PostgresEventStore};
use eventsource::{
    AggregateRepository, Error, EventStore, Format, JsonCodec, Metadata, NewEvent, Schema, Snapshot, SnapshotStore,
};
use uuid::Uuid;

/// A column: name, type, length, default with the schema removed, nullability.
type Column = (String, String, Option<i32>, Option<String>, String);

/// A table's columns, constraints (name, type, columns) and index names.
#[derive(Debug, PartialEq)]
struct Shape {
    columns: Vec<Column>,
    constraints: Vec<(String, String, String)>,
    indexes: Vec<String>,
}

fn shape(db: &PgSchema, table: &str) -> Shape {
    let (schema, table) = (db.name.clone(), table.to_owned());
    db.with_client(move |c| {
        let norm = |s: String| {
            s.replace(&format!("\"{schema}\"."), "")
                .replace(&format!("{schema}."), "")
        };
        let columns = c
            .query(
                "SELECT column_name::TEXT, data_type::TEXT, character_maximum_length::INT, column_default::TEXT,
                        is_nullable::TEXT
                 FROM information_schema.columns WHERE table_schema = $1 AND table_name = $2
                 ORDER BY ordinal_position",
                &[&schema, &table],
            )
            .expect("columns")
            .iter()
            .map(|r| {
                (
                    r.get(0),
                    r.get(1),
                    r.get(2),
                    r.get::<_, Option<String>>(3).map(norm),
                    r.get(4),
                )
            })
            .collect();
        let constraints = c
            .query(
                "SELECT tc.constraint_name::TEXT, tc.constraint_type::TEXT,
                        string_agg(k.column_name::TEXT, ',' ORDER BY k.ordinal_position)
                 FROM information_schema.table_constraints tc
                 JOIN information_schema.key_column_usage k
                   ON k.constraint_schema = tc.constraint_schema AND k.constraint_name = tc.constraint_name
                 WHERE tc.table_schema = $1 AND tc.table_name = $2
                 GROUP BY tc.constraint_name, tc.constraint_type ORDER BY tc.constraint_name",
                &[&schema, &table],
            )
            .expect("constraints")
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let indexes = c
            .query(
                "SELECT indexname::TEXT FROM pg_indexes WHERE schemaname = $1 AND tablename = $2 ORDER BY 1",
                &[&schema, &table],
            )
            .expect("indexes")
            .iter()
            .map(|r| r.get(0))
            .collect();
        Shape {
            columns,
            constraints,
            indexes,
        }
    })
}

fn open(db: &PgSchema) -> PostgresEventStore {
    PostgresEventStore::from_config(db.config("partitioned"), JsonCodec, db.options()).expect("open")
}

#[test]
fn the_snapshots_table_keeps_the_guides_columns_name_and_indexes() {
    let guide = pg_schema_or_skip!("partitioned snapshots (guide)");
    let ours = pg_schema_or_skip!("partitioned snapshots (ours)", PARTITIONED);
    guide.exec(reference::SNAPSHOTS_POSTGRES);
    drop(open(&ours));
    let (expected, actual) = (shape(&guide, "snapshots"), shape(&ours, "snapshots"));
    assert_eq!(
        actual.columns, expected.columns,
        "every column, type, default and nullability"
    );
    let without_pkey =
        |names: &[String]| -> Vec<String> { names.iter().filter(|n| *n != "snapshots_pkey").cloned().collect() };
    assert_eq!(
        without_pkey(&actual.indexes),
        without_pkey(&expected.indexes),
        "every index of the guide but its `id` key"
    );
    assert_eq!(
        actual.constraints,
        vec![(
            "uq_snapshots_aggregate".to_owned(),
            "PRIMARY KEY".to_owned(),
            "aggregate_id,aggregate_type".to_owned()
        )],
        "the guide's unique key, by its name, is the primary key"
    );
    // The partitions: four, by hash of aggregate_id, each index named after the table's.
    let partitions = ours.scalar_i64(
        "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
         WHERE c.relname = 'snapshots' AND c.relnamespace = current_schema()::REGNAMESPACE",
    );
    assert_eq!(partitions, 4);
    assert_eq!(
        shape(&ours, "snapshots_p3").indexes,
        vec![
            "idx_snapshots_aggregate_lookup_p3",
            "idx_snapshots_aggregate_type_p3",
            "idx_snapshots_created_at_p3",
            "idx_snapshots_schema_version_p3",
            "uq_snapshots_aggregate_p3",
        ]
    );
}

#[test]
fn every_key_includes_the_distribution_column() {
    let db = pg_schema_or_skip!("partitioned keys", PARTITIONED);
    drop(open(&db));
    let default = pg_schema_or_skip!("partitioned keys (default)");
    drop(open(&default));
    let events = shape(&db, "events");
    assert_eq!(
        events.columns,
        shape(&default, "events").columns,
        "the events columns are the default layout's"
    );
    assert_eq!(
        events.constraints,
        vec![
            (
                "events_pkey".into(),
                "PRIMARY KEY".into(),
                "aggregate_id,global_position".into()
            ),
            (
                "uq_events_event_id".into(),
                "UNIQUE".into(),
                "aggregate_id,event_id".into()
            ),
            (
                "uq_events_stream_version".into(),
                "UNIQUE".into(),
                "aggregate_id,aggregate_type,version".into()
            ),
        ]
    );
    assert!(
        events.indexes.contains(&"idx_events_global_position".to_owned()),
        "the global order keeps an index"
    );
    for table in ["events", "snapshots"] {
        for (name, kind, columns) in shape(&db, table).constraints {
            assert!(
                columns.starts_with("aggregate_id,"),
                "{table}.{name} ({kind}): {columns}"
            );
        }
    }
    // What get_postgres_schema prints is what the store created.
    let printed = pg_schema_or_skip!("partitioned keys (printed)");
    printed.exec(&get_postgres_schema(Schema::All, PARTITIONED, Format::Json));
    for table in ["events", "snapshots"] {
        assert_eq!(
            shape(&printed, table).constraints,
            shape(&db, table).constraints,
            "{table}"
        );
    }
}

fn event(id: Uuid) -> NewEvent {
    NewEvent {
        event_id: id,
        event_type: "Touched".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: b"{}".to_vec(),
        metadata: Metadata::default(),
    }
}

#[test]
fn event_ids_are_unique_per_aggregate() {
    let db = pg_schema_or_skip!("partitioned event ids", PARTITIONED);
    let es = open(&db);
    let (a, b, id) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    assert_eq!(es.append(a, "Order", 0, &[event(id)]).expect("append"), 1);
    // The same id again in the same stream: a duplicate, named, nothing written.
    match es.append(a, "Order", 1, &[event(id)]) {
        Err(Error::DuplicateEvent { event_id }) => assert_eq!(event_id, id),
        other => panic!("expected a duplicate, got {other:?}"),
    }
    // In another aggregate it is another event (ids are unique per aggregate).
    assert_eq!(es.append(b, "Order", 0, &[event(id)]).expect("append"), 1);
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM events"), 2);
}

#[test]
fn a_store_refuses_a_database_of_the_other_layout() {
    let db = pg_schema_or_skip!("partitioned refuses default");
    drop(open(&db));
    let err =
        PostgresEventStore::from_config(db.config("partitioned"), JsonCodec, db.options().layout(PARTITIONED)).err();
    match err {
        Some(Error::SchemaMismatch { problem, fix }) => {
            assert!(problem.contains("has the default layout"), "{problem}");
            assert!(fix.contains("docs/scaling.md"), "{fix}");
        }
        other => panic!("expected a layout mismatch, got {other:?}"),
    }
    // Without migrations, the catalog check says the same.
    let err = PostgresEventStore::from_config(
        db.config("partitioned"),
        JsonCodec,
        db.options().layout(PARTITIONED).migrate(false),
    )
    .err();
    assert!(
        matches!(err, Some(Error::SchemaMismatch { ref problem, .. }) if problem.contains("is not partitioned")),
        "{err:?}"
    );
    let other = pg_schema_or_skip!("default refuses partitioned", PARTITIONED);
    drop(open(&other));
    let err = PostgresEventStore::from_config(
        other.config("default"),
        JsonCodec,
        other.options().layout(Layout::Default),
    )
    .err();
    assert!(
        matches!(err, Some(Error::SchemaMismatch { ref problem, .. }) if problem.contains("has the partitioned layout")),
        "{err:?}"
    );
}

/// Every row of a table, all columns as text, in key order.
fn dump(db: &PgSchema, table: &str, order: &str) -> Vec<String> {
    let sql = format!("SELECT t::TEXT FROM {table} t ORDER BY {order}");
    db.with_client(move |c| c.query(&sql, &[]).expect("dump").iter().map(|r| r.get(0)).collect())
}

/// A default-layout database with streams, snapshots (some stale), a deleted snapshot and
/// a gap in the sequences (a failed append).
fn populate_default(db: &PgSchema) -> Vec<Uuid> {
    let es = open(db);
    let repo = AggregateRepository::<Order, _>::new(es.clone())
        .with_snapshot_store(es.snapshot_store())
        .snapshot_threshold(5)
        .expect("threshold");
    let mut ids = Vec::new();
    for n in 0..40u64 {
        let id = Uuid::now_v7();
        let mut order = repo.load_or_create(id).expect("load");
        for i in 0..(n % 13 + 1) {
            order.record(item(i + 1));
        }
        repo.save(&mut order).expect("save");
        ids.push(id);
    }
    // A failed append (a conflict) uses no global position; a duplicate id burns one.
    let _ = es.append(ids[0], "Order", 0, &[event(Uuid::now_v7())]);
    es.snapshot_store()
        .delete_snapshot(ids[5], "Order")
        .expect("delete one snapshot");
    es.snapshot_store()
        .save_snapshot(&Snapshot {
            aggregate_id: Uuid::now_v7(),
            aggregate_type: "Order".into(),
            version: 7,
            schema_version: 1,
            state: b"{}".to_vec(),
            created_at: eventsource::time::now(),
        })
        .expect("an orphan snapshot");
    ids
}

#[test]
fn a_default_database_moves_to_the_partitioned_layout_with_every_row() {
    let db = pg_schema_or_skip!("move to partitioned");
    let ids = populate_default(&db);
    let events = dump(&db, "events", "global_position");
    let snapshots = dump(&db, "snapshots", "id");
    let (next_position, next_id) = (
        db.scalar_i64("SELECT last_value FROM events_global_position_seq"),
        db.scalar_i64("SELECT last_value FROM snapshots_id_seq"),
    );
    assert!(events.len() > 200 && snapshots.len() > 20);

    let moved = PostgresEventStore::from_config(
        db.config("move"),
        JsonCodec,
        db.options().layout(PARTITIONED).move_from_default_layout(true),
    )
    .expect("open and move");
    assert_eq!(
        dump(&db, "events", "global_position"),
        events,
        "every event, every column"
    );
    assert_eq!(dump(&db, "snapshots", "id"), snapshots, "every snapshot, every column");
    assert_eq!(
        db.scalar_i64(
            "SELECT COUNT(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid
             WHERE c.relnamespace = current_schema()::REGNAMESPACE"
        ),
        2
    );
    assert_eq!(db.scalar_i64("SELECT COUNT(*) FROM pg_class WHERE relname LIKE '%_single%' AND relnamespace = current_schema()::REGNAMESPACE"), 0, "the old tables are gone");

    // The stores go on: loads equal replays, new events and snapshots get the next numbers.
    let repo = AggregateRepository::<Order, _>::new(moved.clone())
        .with_snapshot_store(moved.snapshot_store())
        .snapshot_threshold(5)
        .expect("threshold");
    let replay = AggregateRepository::<Order, _>::new(moved.clone());
    for id in &ids {
        let order = repo.load(*id).expect("load");
        assert_eq!(order.state(), replay.load(*id).expect("replay").state());
    }
    let mut order = repo.load(ids[3]).expect("load");
    for i in 0..6 {
        order.record(item(100 + i));
    }
    repo.save(&mut order).expect("save after the move");
    assert!(db.scalar_i64("SELECT MAX(global_position) FROM events") > next_position);
    assert_eq!(
        db.scalar_i64("SELECT COUNT(*) FROM events"),
        events.len() as i64 + 6,
        "the new events are numbered after the old ones"
    );
    assert!(db.scalar_i64("SELECT MAX(id) FROM snapshots") > next_id);

    // Opened again (moved or not asked to move), it is simply the partitioned layout.
    drop(
        PostgresEventStore::from_config(
            db.config("again"),
            JsonCodec,
            db.options().layout(PARTITIONED).move_from_default_layout(true),
        )
        .expect("reopen"),
    );
    drop(
        PostgresEventStore::from_config(db.config("again"), JsonCodec, db.options().layout(PARTITIONED))
            .expect("reopen"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_default_database_moves_through_the_async_store_too() {
    let db = pg_schema_or_skip!("move to partitioned (async)");
    let ids = common_pg::off_runtime(|| populate_default(&db));
    let events = dump(&db, "events", "global_position");
    let snapshots = dump(&db, "snapshots", "id");
    let moved = AsyncPostgresEventStore::from_config(
        db.async_config("move"),
        JsonCodec,
        db.options().layout(PARTITIONED).move_from_default_layout(true),
    )
    .await
    .expect("open and move");
    assert_eq!(dump(&db, "events", "global_position"), events);
    assert_eq!(dump(&db, "snapshots", "id"), snapshots);
    let repo = eventsource::tokio::AggregateRepository::<Order, _>::new(moved.clone())
        .with_snapshot_store(moved.snapshot_store());
    let loaded = repo.load(ids[7]).await.expect("load");
    assert_eq!(loaded.version(), 8);
}
