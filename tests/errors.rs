//! Errors a user sees (issue 11, item 6): no level of an error's chain repeats its source,
//! `Error::report` shows the root cause in one line (real SQLite and PostgreSQL failures),
//! and the sync PostgreSQL store works on a thread in a tokio runtime's context (an async
//! task on either runtime flavour, `spawn_blocking`) instead of panicking.

#[macro_use]
mod common_pg;
mod common;

use common::{item, Order, OrderCreated};
use common_pg::PgSchema;
use eventsource::store::postgres::{AsyncPostgresEventStore, PostgresEventStore};
use eventsource::{AggregateRepository, Error, EventStore as _, JsonCodec, SnapshotUse, SqliteEventStore};
use uuid::Uuid;

/// Checks that no level of the chain contains the text of its source; returns the levels.
fn levels(error: &(dyn std::error::Error + 'static)) -> Vec<String> {
    let mut texts = Vec::new();
    let mut next = Some(error);
    while let Some(e) = next {
        let text = e.to_string();
        if let Some(source) = e.source() {
            let inner = source.to_string();
            assert!(!text.contains(&inner), "`{text}` repeats its source `{inner}`");
        }
        texts.push(text);
        next = e.source();
    }
    texts
}

#[test]
fn a_sqlite_open_failure_says_what_failed_and_the_report_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let err = SqliteEventStore::open(dir.path().join("missing/dir/app.db")).expect_err("no such directory");
    let texts = levels(&err);
    assert!(texts.len() >= 2, "SQLite's error is the source: {texts:?}");
    let report = err.report().to_string();
    assert!(report.starts_with(&texts[0]), "{report}");
    assert!(
        report.contains("unable to open database file"),
        "the root cause: {report}"
    );
    assert!(report.contains("check that the directory exists"), "the hint: {report}");
    assert!(!report.contains('\n'), "{report}");
}

#[test]
fn an_invalid_connection_string_reports_the_drivers_reason() {
    let err = PostgresEventStore::connect("host=localhost foo=bar").expect_err("unknown option");
    assert!(matches!(err, Error::InvalidConnectionString { .. }), "{err:?}");
    let texts = levels(&err);
    assert_eq!(texts[0], "invalid PostgreSQL connection string");
    let report = err.report().to_string();
    assert!(report.contains("unknown option `foo`"), "{report}");
}

/// The database name no server has.
fn missing_database() -> String {
    format!("es_missing_{}", Uuid::new_v4().simple())
}

fn assert_missing_database_report(err: &Error, dbname: &str) {
    assert!(
        matches!(
            err,
            Error::Store {
                backend: "postgres",
                ..
            }
        ),
        "{err:?}"
    );
    levels(err);
    let report = err.report().to_string();
    assert!(
        report.contains(&format!("database \"{dbname}\" does not exist")),
        "the server's reason in the one-line report: {report}"
    );
    assert!(report.starts_with("postgres store error: connect"), "{report}");
    assert!(!report.contains('\n'), "{report}");
}

#[tokio::test]
async fn an_async_connect_to_a_missing_database_reports_the_servers_reason() {
    let db: PgSchema = pg_schema_or_skip!("an_async_connect_to_a_missing_database_reports_the_servers_reason");
    let dbname = missing_database();
    let mut config = db.async_config(&db.app("missing"));
    config.dbname(&dbname);
    let err = AsyncPostgresEventStore::from_config(config, JsonCodec, db.options())
        .await
        .expect_err("the database does not exist");
    assert_missing_database_report(&err, &dbname);
}

#[test]
fn a_sync_connect_to_a_missing_database_reports_the_servers_reason() {
    let db: PgSchema = pg_schema_or_skip!("a_sync_connect_to_a_missing_database_reports_the_servers_reason");
    let dbname = missing_database();
    let mut config = db.config(&db.app("missing"));
    config.dbname(&dbname);
    let err = PostgresEventStore::from_config(config, JsonCodec, db.options()).expect_err("no such database");
    assert_missing_database_report(&err, &dbname);
}

/// Connects the sync store, saves through a repository with snapshots, loads (through the
/// snapshot, then streaming a replay), and drops the store, all on the calling thread.
fn sync_store_round_trip(db: &PgSchema, app: &str) {
    let events = PostgresEventStore::from_config(db.config(&db.app(app)), JsonCodec, db.options()).expect("connect");
    let repo = AggregateRepository::<Order, _>::new(events.clone())
        .with_snapshot_store(events.snapshot_store())
        .snapshot_threshold(2)
        .expect("threshold");
    let id = Uuid::now_v7();
    let mut order = repo.load_or_create(id).expect("load_or_create");
    order.record(OrderCreated { customer_id: id });
    order.record(item(1));
    order.record(item(2));
    repo.save(&mut order).expect("save");
    let (loaded, outcome) = repo.load_with_outcome(id).expect("load");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 3 });
    assert_eq!(loaded.state().item_count, u64::from(item(1).qty + item(2).qty));
    let mut seen = Vec::new();
    events
        .read_stream(id, "Order", 0, &mut |e| {
            seen.push(e.version);
            Ok(())
        })
        .expect("read_stream");
    assert_eq!(seen, [1, 2, 3]);
    assert_eq!(events.stream_version(id, "Order").expect("stream_version"), 3);
    drop(repo);
    drop(events); // closes the pooled connections: must not panic here either
}

#[tokio::test]
async fn the_sync_store_works_inside_a_current_thread_runtime() {
    let db: PgSchema = pg_schema_or_skip!("the_sync_store_works_inside_a_current_thread_runtime");
    sync_store_round_trip(&db, "current_thread");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sync_store_works_inside_a_multi_thread_runtime_and_spawn_blocking() {
    let db: PgSchema = pg_schema_or_skip!("the_sync_store_works_inside_a_multi_thread_runtime_and_spawn_blocking");
    sync_store_round_trip(&db, "worker");
    let db = std::sync::Arc::new(db);
    let shared = std::sync::Arc::clone(&db);
    tokio::task::spawn_blocking(move || sync_store_round_trip(&shared, "blocking"))
        .await
        .expect("the blocking task ran");
}

#[tokio::test]
async fn the_sync_store_reports_a_missing_database_inside_a_runtime() {
    let db: PgSchema = pg_schema_or_skip!("the_sync_store_reports_a_missing_database_inside_a_runtime");
    let dbname = missing_database();
    let mut config = db.config(&db.app("missing_rt"));
    config.dbname(&dbname);
    let err = PostgresEventStore::from_config(config, JsonCodec, db.options()).expect_err("no such database");
    assert_missing_database_report(&err, &dbname);
}
