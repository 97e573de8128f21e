//! The `eventsource` command against a real SQLite file, and against PostgreSQL (in a
//! schema of its own) for what it prints about a connection string with a password.

use std::process::Command;

use eventsource::{EventStore, Snapshot, SnapshotStore, SqliteEventStore};
use uuid::Uuid;

#[cfg(feature = "postgres")]
#[path = "../../tests/common_pg/mod.rs"]
mod common_pg;
mod support;

use support::ticks;

fn cli(args: &[&str]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_eventsource"))
        .args(args)
        .output()
        .expect("run eventsource");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn snapshot(id: Uuid, version: u64, schema_version: u32) -> Snapshot {
    support::snapshot(id, version, schema_version, b"{}")
}

#[test]
fn operations_on_a_sqlite_file() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ops.db");
    let db = format!("sqlite:{}", path.display());

    let (ok, out, err) = cli(&["coverage", &db]);
    assert!(!ok && out.is_empty() && err.contains("no such database file"), "{err}");
    let (ok, out, _) = cli(&["migrate", &db]);
    assert!(ok && out.contains("schema up to date"), "{out}");

    let store = SqliteEventStore::open(&path).expect("open");
    let snapshots = store.snapshot_store();
    let (a, b, c) = (Uuid::now_v7(), Uuid::now_v7(), Uuid::now_v7());
    store.append(a, "Clock", 0, &ticks(300)).expect("append");
    store.append(b, "Clock", 0, &ticks(20)).expect("append");
    store.append(c, "Clock", 0, &ticks(5)).expect("append");
    snapshots.save_snapshot(&snapshot(a, 100, 1)).expect("snapshot");
    snapshots.save_snapshot(&snapshot(b, 20, 2)).expect("snapshot");

    let (ok, out, err) = cli(&["coverage", &db, "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["aggregate_type"], "Clock");
    assert_eq!(
        (
            v[0]["total_aggregates"].as_u64(),
            v[0]["with_snapshot"].as_u64(),
            v[0]["without_snapshot"].as_u64()
        ),
        (Some(3), Some(2), Some(1))
    );

    let (ok, out, _) = cli(&["stale", &db, "--min-events", "100"]);
    assert!(
        ok && out.contains(&a.to_string()) && out.contains("200") && !out.contains(&b.to_string()),
        "{out}"
    );

    let (ok, out, _) = cli(&["top", &db, "--type", "Clock", "--min-events", "10", "--json"]);
    assert!(ok);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v[0]["aggregate_id"], a.to_string());
    assert_eq!(v[1]["events"].as_u64(), Some(20));
    assert_eq!(v.as_array().map(Vec::len), Some(2));

    let (ok, out, _) = cli(&["invalidate", &db, "--type", "Clock", "--below", "2", "--yes"]);
    assert!(
        ok && out.contains("deleted 1 Clock snapshot(s) with schema_version < 2"),
        "{out}"
    );
    assert!(snapshots.get_snapshot(a, "Clock").expect("get").is_none());
    assert!(snapshots.get_snapshot(b, "Clock").expect("get").is_some());

    let (ok, out, _) = cli(&["delete", &db, "--type", "Clock", "--id", &b.to_string(), "--yes"]);
    assert!(ok && out.contains("deleted the snapshot"), "{out}");
    // Nothing left to delete: exit code 3.
    let (ok, out, _) = cli(&["delete", &db, "--type", "Clock", "--id", &b.to_string(), "--yes"]);
    assert!(!ok && out.contains("had no snapshot"), "{out}");
}

#[test]
fn schema_prints_the_migrations_sql() {
    let (ok, out, _) = cli(&["schema", "--backend", "postgres", "--table", "snapshots"]);
    assert!(ok);
    assert!(
        out.contains("CONSTRAINT uq_snapshots_aggregate UNIQUE (aggregate_id, aggregate_type)"),
        "{out}"
    );
    assert!(out.contains("state JSONB NOT NULL"));
    let (ok, out, _) = cli(&["schema", "--backend", "sqlite", "--codec", "bincode"]);
    assert!(
        ok && out.contains("payload BLOB NOT NULL") && out.contains("state BLOB NOT NULL"),
        "{out}"
    );
}

#[test]
fn schema_prints_the_partitioned_layouts_sql() {
    let (ok, out, err) = cli(&["schema", "--backend", "postgres", "--layout", "partitioned", "--json"]);
    assert!(ok, "{err}");
    assert!(out.contains("PARTITION BY HASH (aggregate_id)"), "{out}");
    assert!(out.contains("CONSTRAINT uq_snapshots_aggregate PRIMARY KEY (aggregate_id, aggregate_type)"));
    assert!(out.contains("\"layout\":\"partitioned:8\""), "{out}");
    let (ok, _, err) = cli(&["schema", "--backend", "sqlite", "--layout", "partitioned"]);
    assert!(!ok && err.contains("--layout applies to PostgreSQL only"), "{err}");
}

#[test]
fn a_bad_database_argument_is_a_clear_error() {
    let (ok, _, err) = cli(&["coverage", "nonsense"]);
    assert!(!ok && err.contains("neither `sqlite:PATH`"), "{err}");
}

/// A password that must never be printed.
#[cfg(feature = "postgres")]
const PASSWORD: &str = "Sup3rS3cretPw";

/// `base` (either form) with [`PASSWORD`] and `search_path` set to `schema`.
#[cfg(feature = "postgres")]
fn with_password_and_schema(base: &str, schema: &str) -> String {
    if base.starts_with("postgres://") || base.starts_with("postgresql://") {
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}password={PASSWORD}&options=-c%20search_path%3D{schema}")
    } else {
        format!("{base} password={PASSWORD} options='-c search_path={schema}'")
    }
}

#[cfg(feature = "postgres")]
#[test]
fn migrate_never_prints_the_postgres_password() {
    let Some(schema) = common_pg::schema("migrate_never_prints_the_postgres_password") else {
        return;
    };
    let db = with_password_and_schema(schema.url(), &schema.name);
    let (ok, out, err) = cli(&["migrate", &db]);
    assert!(ok, "{err}");
    assert!(
        out.contains("schema up to date") && out.contains("password=***"),
        "{out}"
    );
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}{err}");
    // The tables landed in the test's schema.
    assert_eq!(
        schema.scalar_i64(&format!(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = '{}' \
             AND table_name IN ('events', 'snapshots')",
            schema.name
        )),
        2
    );

    let (ok, out, err) = cli(&["migrate", &db, "--json"]);
    assert!(ok, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["migrated"], true);
    let shown = v["database"].as_str().unwrap_or_default();
    assert!(shown.contains("password=***") && !shown.contains(PASSWORD), "{out}");

    let (ok, out, err) = cli(&["coverage", &db]);
    assert!(ok, "{err}");
    assert!(!out.contains(PASSWORD) && !err.contains(PASSWORD), "{out}{err}");
}

#[cfg(feature = "postgres")]
#[test]
fn failures_never_print_the_postgres_password() {
    // Nothing listens on port 1; a malformed string; a string the command cannot place.
    for (args, expected) in [
        (
            vec![
                "migrate".to_owned(),
                format!("postgresql://app:{PASSWORD}@127.0.0.1:1/x"),
            ],
            "postgres store error",
        ),
        (
            vec![
                "migrate".to_owned(),
                format!("host=127.0.0.1 port=1 password={PASSWORD} foo=bar"),
            ],
            "invalid PostgreSQL connection string: unknown option `foo`",
        ),
        (
            vec![
                "coverage".to_owned(),
                format!("host=127.0.0.1 port=1 sslmode=nope password={PASSWORD}"),
            ],
            "invalid value for option `sslmode`",
        ),
        (
            vec!["coverage".to_owned(), format!("user=app password={PASSWORD}")],
            "the database argument is neither",
        ),
    ] {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (ok, out, err) = cli(&args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
        assert!(
            !out.contains(PASSWORD) && !err.contains(PASSWORD),
            "{args:?}: {out}{err}"
        );
    }
}

/// Everything in the test's schema that a command could change: its relations, and the
/// rows of both tables.
#[cfg(feature = "postgres")]
fn pg_state(schema: &common_pg::PgSchema) -> (Vec<String>, i64, String) {
    schema.with_client(|c| {
        let relations = c
            .query(
                "SELECT relname::TEXT FROM pg_class WHERE relnamespace = current_schema()::regnamespace \
                 ORDER BY relname",
                &[],
            )
            .expect("pg_class")
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>();
        let (events, snapshots) = if relations.iter().any(|r| r == "snapshots") {
            let events: i64 = c.query_one("SELECT count(*) FROM events", &[]).expect("events").get(0);
            let snapshots: String = c
                .query_one(
                    "SELECT COALESCE(string_agg(aggregate_id::TEXT || ':' || version || ':' || schema_version \
                     || ':' || created_at::TEXT, ',' ORDER BY id), '') FROM snapshots",
                    &[],
                )
                .expect("snapshots")
                .get(0);
            (events, snapshots)
        } else {
            (0, String::new())
        };
        (relations, events, snapshots)
    })
}

#[cfg(feature = "postgres")]
#[test]
fn postgres_reports_run_read_only_and_change_nothing() {
    use eventsource::PostgresEventStore;

    let Some(schema) = common_pg::schema("postgres_reports_run_read_only_and_change_nothing") else {
        return;
    };
    let db = schema.url().to_owned();
    let name = schema.name.clone();

    // An empty schema: an error, and nothing created.
    let (ok, out, err) = cli(&["coverage", &db, "--schema", &name]);
    assert!(
        !ok && err.contains("no eventsource schema found in") && err.contains(&name),
        "{out}{err}"
    );
    assert_eq!(pg_state(&schema).0, Vec::<String>::new());
    let (ok, _, err) = cli(&["invalidate", &db, "--schema", &name, "--type", "Clock", "--dry-run"]);
    assert!(!ok && err.contains("no eventsource schema found"), "{err}");
    assert_eq!(pg_state(&schema).0, Vec::<String>::new());

    let (ok, _, err) = cli(&["migrate", &db, "--schema", &name]);
    assert!(ok, "{err}");
    let config = schema.config("cli_pg_test");
    let store =
        PostgresEventStore::from_config(config.clone(), eventsource::JsonCodec, schema.options()).expect("store");
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    store.append(a, "Clock", 0, &ticks(150)).expect("append");
    store.append(b, "Clock", 0, &ticks(3)).expect("append");
    store
        .snapshot_store()
        .save_snapshot(&snapshot(a, 20, 1))
        .expect("snapshot");
    store
        .snapshot_store()
        .save_snapshot(&snapshot(b, 3, 2))
        .expect("snapshot");
    drop(store);
    let before = pg_state(&schema);
    assert_eq!(before.1, 153);

    let (a_text, b_text) = (a.to_string(), b.to_string());
    for args in [
        vec!["coverage", &db, "--schema", &name, "--json"],
        vec!["stale", &db, "--schema", &name, "--json"],
        vec![
            "top",
            &db,
            "--schema",
            &name,
            "--type",
            "Clock",
            "--min-events",
            "1",
            "--json",
        ],
        vec!["versions", &db, "--schema", &name, "--json"],
        vec![
            "invalidate",
            &db,
            "--schema",
            &name,
            "--type",
            "Clock",
            "--below",
            "2",
            "--dry-run",
            "--json",
        ],
        vec![
            "delete",
            &db,
            "--schema",
            &name,
            "--type",
            "Clock",
            "--id",
            &b_text,
            "--dry-run",
            "--json",
        ],
    ] {
        let (ok, out, err) = cli(&args);
        assert!(ok, "{args:?}: {err}");
        let v: serde_json::Value = serde_json::from_str(&out).expect("json");
        match args[0] {
            "coverage" => assert_eq!(v[0]["total_aggregates"].as_u64(), Some(2)),
            "stale" => assert_eq!(v[0]["aggregate_id"], a_text.as_str()),
            "top" => assert_eq!(v[0]["events"].as_u64(), Some(150)),
            "versions" => assert_eq!(v.as_array().map(Vec::len), Some(2)),
            "invalidate" => assert_eq!(v["would_delete"].as_u64(), Some(1)),
            _ => assert_eq!(v["would_delete"], true),
        }
        assert_eq!(pg_state(&schema), before, "{args:?} changed the database");
    }

    // Without --yes on a non-terminal: refused; with it: done.
    let (ok, _, err) = cli(&["invalidate", &db, "--schema", &name, "--type", "Clock", "--below", "2"]);
    assert!(!ok && err.contains("--yes"), "{err}");
    assert_eq!(pg_state(&schema), before);
    let (ok, out, err) = cli(&[
        "invalidate",
        &db,
        "--schema",
        &name,
        "--type",
        "Clock",
        "--below",
        "2",
        "--yes",
    ]);
    assert!(ok && out.contains("deleted 1 Clock snapshot(s)"), "{out}{err}");

    // The library's read-only session refuses writes at the server.
    let read_only = PostgresEventStore::from_config(config, eventsource::JsonCodec, schema.options().read_only(true))
        .expect("read-only store");
    let err = read_only
        .snapshot_store()
        .save_snapshot(&snapshot(a, 30, 1))
        .expect_err("a read-only session writes nothing");
    assert!(
        err.report().to_string().contains("read-only transaction"),
        "{}",
        err.report()
    );
}

/// `--layout partitioned:N` migrates to and reports on the partitioned layout; without it
/// the command refuses the partitioned tables, naming the layout.
#[cfg(feature = "postgres")]
#[test]
fn postgres_partitioned_layout_is_chosen_with_layout() {
    use eventsource::PostgresEventStore;

    let Some(schema) = common_pg::schema_with(
        "postgres_partitioned_layout_is_chosen_with_layout",
        common_pg::PARTITIONED,
    ) else {
        return;
    };
    let db = schema.url().to_owned();
    let name = schema.name.clone();
    let (ok, _, err) = cli(&["migrate", &db, "--schema", &name, "--layout", "partitioned:4"]);
    assert!(ok, "{err}");
    let partitions = schema.scalar_i64(
        "SELECT COUNT(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhparent
         WHERE c.relname = 'events' AND c.relnamespace = current_schema()::REGNAMESPACE",
    );
    assert_eq!(partitions, 4);
    let store = PostgresEventStore::from_config(schema.config("cli_pg_test"), eventsource::JsonCodec, schema.options())
        .expect("store");
    store.append(Uuid::now_v7(), "Clock", 0, &ticks(3)).expect("append");
    drop(store);
    let (ok, out, err) = cli(&[
        "coverage",
        &db,
        "--schema",
        &name,
        "--layout",
        "partitioned:4",
        "--json",
    ]);
    assert!(ok && out.contains("Clock"), "{out}{err}");
    let (ok, _, err) = cli(&["coverage", &db, "--schema", &name]);
    assert!(!ok && err.contains("partitioned"), "{err}");
    let (ok, _, err) = cli(&["coverage", "sqlite:x.db", "--layout", "partitioned"]);
    assert!(
        !ok && err.contains("--layout applies to PostgreSQL databases only"),
        "{err}"
    );
    let (ok, _, err) = cli(&["coverage", &db, "--layout", "sharded"]);
    assert!(!ok && err.contains("partitioned:N"), "{err}");
}
