//! Our PostgreSQL DDL against the reference guide's: the guide's `CREATE TABLE` / `CREATE
//! INDEX` statements, verbatim, go into one schema, `get_schema(...)` into another, and the
//! two are compared through `information_schema` and `pg_indexes`: columns in order, types,
//! lengths, defaults, nullability, constraint names and types, index names and definitions.

#[macro_use]
mod common_pg;
mod reference;

use common_pg::PgSchema;
use eventsource::{get_schema, Backend, Format, Schema};

/// A column: position, name, data type, maximum length, default, nullability.
type Column = (i32, String, String, Option<i32>, Option<String>, String);

/// Everything `information_schema` and `pg_indexes` say about a table, with the schema name
/// replaced by `<schema>` so two schemas compare.
#[derive(Debug, PartialEq)]
struct Shape {
    columns: Vec<Column>,
    constraints: Vec<(String, String)>,
    unique_columns: Vec<(String, String)>,
    indexes: Vec<(String, String)>,
}

fn shape(db: &PgSchema, schema: &str, table: &str) -> Shape {
    let (schema, table) = (schema.to_owned(), table.to_owned());
    db.with_client(move |c| {
        let norm = |s: String| {
            s.replace(&format!("\"{schema}\"."), "<schema>.")
                .replace(&format!("{schema}."), "<schema>.")
        };
        let columns = c
            .query(
                "SELECT ordinal_position::INT, column_name::TEXT, data_type::TEXT,
                        character_maximum_length::INT, column_default::TEXT, is_nullable::TEXT
                 FROM information_schema.columns
                 WHERE table_schema = $1 AND table_name = $2
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
                    r.get(3),
                    r.get::<_, Option<String>>(4).map(norm),
                    r.get(5),
                )
            })
            .collect();
        let constraints = c
            .query(
                "SELECT constraint_name::TEXT, constraint_type::TEXT
                 FROM information_schema.table_constraints
                 WHERE table_schema = $1 AND table_name = $2 AND constraint_type <> 'CHECK'
                 ORDER BY constraint_name",
                &[&schema, &table],
            )
            .expect("constraints")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let unique_columns = c
            .query(
                "SELECT constraint_name::TEXT, string_agg(column_name::TEXT, ',' ORDER BY ordinal_position)
                 FROM information_schema.key_column_usage
                 WHERE table_schema = $1 AND table_name = $2
                 GROUP BY constraint_name ORDER BY constraint_name",
                &[&schema, &table],
            )
            .expect("key columns")
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let indexes = c
            .query(
                "SELECT indexname::TEXT, indexdef FROM pg_indexes
                 WHERE schemaname = $1 AND tablename = $2 ORDER BY indexname",
                &[&schema, &table],
            )
            .expect("indexes")
            .iter()
            .map(|r| (r.get(0), norm(r.get(1))))
            .collect();
        Shape {
            columns,
            constraints,
            unique_columns,
            indexes,
        }
    })
}

#[test]
fn snapshots_table_is_the_guides() {
    let guide = pg_schema_or_skip!("snapshots_table_is_the_guides (guide)");
    let ours = pg_schema_or_skip!("snapshots_table_is_the_guides (ours)");
    guide.exec(reference::SNAPSHOTS_POSTGRES);
    ours.exec(&get_schema(Schema::Snapshots, Backend::Postgres, Format::Json));
    let expected = shape(&guide, &guide.name, "snapshots");
    let actual = shape(&ours, &ours.name, "snapshots");
    assert_eq!(expected.columns.len(), 7, "{expected:?}");
    assert!(expected.indexes.iter().any(|(n, _)| n == "idx_snapshots_created_at"));
    assert_eq!(actual, expected);
}

#[test]
fn migrated_snapshots_table_is_the_guides_too() {
    // What a store creates through its migrations, not only what get_schema prints.
    let guide = pg_schema_or_skip!("migrated_snapshots_table_is_the_guides (guide)");
    let ours = pg_schema_or_skip!("migrated_snapshots_table_is_the_guides (ours)");
    guide.exec(reference::SNAPSHOTS_POSTGRES);
    eventsource::PostgresSnapshotStore::from_config(ours.config("schema"), eventsource::JsonCodec, ours.options())
        .expect("open");
    assert_eq!(
        shape(&ours, &ours.name, "snapshots"),
        shape(&guide, &guide.name, "snapshots")
    );
}

#[test]
fn bincode_changes_only_the_state_type() {
    let guide = pg_schema_or_skip!("bincode_changes_only_the_state_type (guide)");
    let ours = pg_schema_or_skip!("bincode_changes_only_the_state_type (ours)");
    guide.exec(reference::SNAPSHOTS_POSTGRES);
    ours.exec(&get_schema(Schema::Snapshots, Backend::Postgres, Format::Binary));
    let mut expected = shape(&guide, &guide.name, "snapshots");
    for column in &mut expected.columns {
        if column.1 == "state" {
            column.2 = "bytea".into();
        }
    }
    assert_eq!(shape(&ours, &ours.name, "snapshots"), expected);
}

#[test]
fn events_table_has_the_designed_columns_and_constraints() {
    let db = pg_schema_or_skip!("events_table_has_the_designed_columns_and_constraints");
    db.exec(&get_schema(Schema::Events, Backend::Postgres, Format::Json));
    let events = shape(&db, &db.name, "events");
    let columns: Vec<(&str, &str, &str)> = events
        .columns
        .iter()
        .map(|c| (c.1.as_str(), c.2.as_str(), c.5.as_str()))
        .collect();
    for required in [
        ("global_position", "bigint", "NO"),
        ("event_id", "uuid", "NO"),
        ("aggregate_id", "uuid", "NO"),
        ("aggregate_type", "character varying", "NO"),
        ("event_type", "character varying", "NO"),
        ("event_version", "integer", "NO"),
        ("version", "bigint", "NO"),
        ("timestamp", "timestamp with time zone", "NO"),
        ("payload", "jsonb", "NO"),
        ("metadata", "jsonb", "NO"),
        ("created_at", "timestamp with time zone", "NO"),
    ] {
        assert!(columns.contains(&required), "missing {required:?} in {columns:?}");
    }
    assert!(events
        .unique_columns
        .contains(&("uq_events_event_id".into(), "event_id".into())));
    assert!(events.unique_columns.contains(&(
        "uq_events_stream_version".into(),
        "aggregate_id,aggregate_type,version".into()
    )));
    assert!(events
        .constraints
        .contains(&("uq_events_stream_version".into(), "UNIQUE".into())));
    assert!(events
        .constraints
        .contains(&("events_pkey".into(), "PRIMARY KEY".into())));
}
