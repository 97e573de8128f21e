//! Unit tests of what the integration tests cannot see: query plans and the private SQL.

use rusqlite::Connection;

use super::sql;
use crate::codec::Format;

fn plan(conn: &Connection, statement: &str) -> Vec<String> {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {statement}"))
        .expect("explain");
    let count = stmt.parameter_count();
    let params: Vec<String> = (0..count).map(|i| i.to_string()).collect();
    let rows = stmt
        .query_map(rusqlite::params_from_iter(params.iter()), |r| r.get::<_, String>(3))
        .expect("plan rows");
    rows.collect::<rusqlite::Result<Vec<_>>>().expect("plan")
}

fn migrated() -> Connection {
    let conn = Connection::open_in_memory().expect("open");
    super::migrate(&conn, Format::Json).expect("migrate");
    conn
}

#[test]
fn joint_read_streams_without_sorting_the_events() {
    let conn = migrated();
    let plan = plan(&conn, sql::READ_WITH_SNAPSHOT);
    let text = plan.join("\n");
    // The snapshot through its unique key (one row), then the events straight from the
    // stream index, in version order: nothing sorted, nothing buffered.
    assert!(
        plan.first()
            .is_some_and(|l| l.contains("SEARCH s USING INDEX") && l.contains("aggregate_type=?")),
        "the snapshot is not found by its key:\n{text}"
    );
    assert!(
        plan.iter()
            .any(|l| l.contains("SEARCH e USING INDEX") && l.contains("version>")),
        "the events do not come from the stream index:\n{text}"
    );
    assert!(!text.contains("TEMP B-TREE"), "{text}");
    assert!(!text.contains("SCAN"), "{text}");
}

#[test]
fn stream_reads_use_the_unique_index() {
    let conn = migrated();
    for statement in [sql::READ_STREAM, sql::STREAM_VERSION] {
        let text = plan(&conn, statement).join("\n");
        assert!(text.contains("USING") && text.contains("INDEX"), "{statement}:\n{text}");
        assert!(!text.contains("TEMP B-TREE"), "{statement}:\n{text}");
    }
}

#[test]
fn every_statement_prepares_against_the_migrated_schema() {
    let conn = migrated();
    for statement in [
        sql::FIRST_READ,
        sql::TABLE_EXISTS,
        sql::APPLIED_MIGRATIONS,
        sql::RECORD_MIGRATION,
        sql::TABLES,
        sql::TABLE_COLUMNS,
        sql::UNIQUE_INDEX_COLUMNS,
        sql::STREAM_VERSION,
        sql::INSERT_EVENT,
        sql::EVENT_ID_EXISTS,
        sql::READ_STREAM,
        sql::READ_WITH_SNAPSHOT,
        sql::AGGREGATES_BY_EVENT_COUNT,
        sql::UPSERT_SNAPSHOT,
        sql::GET_SNAPSHOT,
        sql::SNAPSHOT_EXISTS,
        sql::DELETE_SNAPSHOT,
        sql::DELETE_SNAPSHOTS_BY_TYPE,
        sql::DELETE_SNAPSHOTS_BY_TYPE_BELOW,
        sql::COVERAGE,
        sql::STALE_SNAPSHOTS,
    ] {
        conn.prepare(statement).unwrap_or_else(|e| panic!("{statement}: {e}"));
    }
}

#[test]
fn migrate_twice_applies_once() {
    let conn = Connection::open_in_memory().expect("open");
    assert_eq!(super::migrate(&conn, Format::Binary).expect("first"), vec![1, 2]);
    assert!(super::migrate(&conn, Format::Binary).expect("second").is_empty());
    super::check_schema(&conn, Format::Binary).expect("binary schema");
    assert!(matches!(
        super::check_schema(&conn, Format::Json),
        Err(crate::Error::SchemaMismatch { .. })
    ));
}
