//! The partitioned layout routes a load and a save to one partition (issue 13), the way
//! Citus routes them to one shard.
//!
//! Each case prepares the stores' own statements (their exact text and parameter types)
//! on a session opened with the stores' own settings (`session_options`: generic plans,
//! index scans), in a schema migrated with eight partitions per table, and reads with
//! `EXPLAIN (ANALYZE, FORMAT JSON)` which tables the cached plan scanned: the partition of
//! the aggregate only, the others removed when the executor started (initial pruning on
//! the `aggregate_id` parameter, `Subplans Removed`). The rows a save writes all land in
//! that partition too (tuple routing). Writes run in a transaction rolled back.
//!
//! Needs PostgreSQL at `EVENTSOURCE_PG_URL` (default `host=127.0.0.1 port=5432
//! user=postgres dbname=test`); skipped without one unless `CI` is set.

use std::collections::BTreeSet;

use postgres::{Client, NoTls};
use serde_json::Value;

use super::conn::{session_options, Layout, PgOptions};
use super::plans::{explain_json, scratch_with, url};
use super::sql::{self, Stmt};
use crate::codec::Format;

const PARTITIONS: u16 = 8;
const AGGREGATE: &str = "00000000-0000-0000-0000-0000000000aa";

/// What a plan scanned: the tables whose nodes ran, and how many subplans initial
/// pruning removed.
#[derive(Debug, Default)]
struct Scanned {
    tables: BTreeSet<String>,
    removed: u64,
}

fn walk(plan: &Value, out: &mut Scanned) {
    let ran = plan.get("Actual Loops").and_then(Value::as_u64).unwrap_or(0) > 0;
    let modify = plan.get("Node Type").and_then(Value::as_str) == Some("ModifyTable");
    if let (true, false, Some(table)) = (ran, modify, plan.get("Relation Name").and_then(Value::as_str)) {
        out.tables.insert(table.to_owned());
    }
    out.removed += plan.get("Subplans Removed").and_then(Value::as_u64).unwrap_or(0);
    for child in plan.get("Plans").and_then(Value::as_array).into_iter().flatten() {
        walk(child, out);
    }
}

fn explain(session: &mut Client, name: &str, args: &str) -> Scanned {
    let plan = explain_json(
        session,
        &format!("EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE {name}({args})"),
    );
    let mut out = Scanned::default();
    walk(&plan, &mut out);
    out
}

fn prepare(session: &mut Client, name: &str, stmt: &Stmt) {
    let types: Vec<String> = stmt.types(Format::Json).iter().map(|t| t.name().to_owned()).collect();
    let types = if types.is_empty() {
        String::new()
    } else {
        format!("({})", types.join(", "))
    };
    session
        .batch_execute(&format!("PREPARE {name}{types} AS {}", stmt.text))
        .unwrap_or_else(|e| panic!("prepare {}: {e:?}", stmt.name));
}

/// The partition (of `table`) holding the aggregate's rows.
fn partition_of(session: &mut Client, table: &str) -> String {
    let row = session
        .query_one(
            &format!("SELECT DISTINCT tableoid::regclass::TEXT FROM {table} WHERE aggregate_id = '{AGGREGATE}'"),
            &[],
        )
        .unwrap_or_else(|e| panic!("the partition of the aggregate in {table}: {e:?}"));
    row.get(0)
}

#[test]
fn a_load_and_a_save_touch_one_partition() {
    let Some(mut scratch) = scratch_with("pruning", Layout::Partitioned { partitions: PARTITIONS }) else {
        return;
    };
    // The aggregate and a hundred others, each with a snapshot at 3 and five events.
    scratch
        .admin
        .batch_execute(&format!(
            "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, version, timestamp, payload)
                 SELECT gen_random_uuid(), a, 'Order', 'ItemAdded', g, now(), '{{}}'
                 FROM (SELECT '{AGGREGATE}'::UUID UNION ALL SELECT gen_random_uuid() FROM generate_series(1, 100)) ids(a),
                      generate_series(1, 5) g;
             INSERT INTO snapshots (aggregate_id, aggregate_type, version, state)
                 SELECT DISTINCT aggregate_id, 'Order', 3, '{{}}'::JSONB FROM events;
             ANALYZE events; ANALYZE snapshots;"
        ))
        .expect("seed");
    let partitions = scratch
        .admin
        .query_one("SELECT COUNT(DISTINCT tableoid) FROM events", &[])
        .expect("count partitions")
        .get::<_, i64>(0);
    assert!(partitions > 1, "the seed spreads over several partitions");

    let mut config: postgres::Config = url().parse().expect("the URL parses");
    config.options(&session_options(None, &PgOptions::new().schema(&scratch.schema)));
    let mut session = config.connect(NoTls).expect("connect the session");
    let events = partition_of(&mut session, "events");
    let snapshots = partition_of(&mut session, "snapshots");
    assert!(events.starts_with("events_p") && snapshots.starts_with("snapshots_p"));

    let a = format!("'{AGGREGATE}'");
    let cases: [(&str, &Stmt, String, Vec<&str>); 8] = [
        (
            "joint",
            &sql::JOINT_READ,
            format!("{a}, 'Order'"),
            vec![&events, &snapshots],
        ),
        ("snap", &sql::SNAPSHOT_GET, format!("{a}, 'Order'"), vec![&snapshots]),
        ("replay", &sql::REPLAY_STREAM, format!("{a}, 'Order', 0"), vec![&events]),
        ("read", &sql::READ_STREAM, format!("{a}, 'Order', 0"), vec![&events]),
        ("head", &sql::STREAM_VERSION, format!("{a}, 'Order'"), vec![&events]),
        (
            "append_one",
            &sql::APPEND_ONE,
            format!("{a}, 'Order', 5, gen_random_uuid(), 'ItemAdded', 1, now(), '{{}}', '{{}}'"),
            vec![&events],
        ),
        (
            "append",
            &sql::APPEND,
            format!(
                "{a}, 'Order', 5, ARRAY[gen_random_uuid(), gen_random_uuid()], ARRAY['ItemAdded', 'ItemAdded'], \
                 ARRAY[1, 1], ARRAY[now(), now()], ARRAY['{{}}'::JSONB, '{{}}'], ARRAY['{{}}'::JSONB, '{{}}']"
            ),
            vec![&events],
        ),
        (
            "upsert",
            &sql::SNAPSHOT_UPSERT,
            format!("{a}, 'Order', 5, 1, '{{}}', now()"),
            vec![&snapshots],
        ),
    ];
    for (name, stmt, args, expected) in &cases {
        prepare(&mut session, name, stmt);
        // Twice: the first execution makes the generic plan, the second runs it cached.
        for _ in 0..2 {
            session.batch_execute("BEGIN").expect("begin");
            let scanned = explain(&mut session, name, args);
            let written = (*name == "append_one" || *name == "append" || *name == "upsert").then(|| {
                let table = if *name == "upsert" { "snapshots" } else { "events" };
                let placed: Vec<String> = session
                    .query(
                        &format!(
                            "SELECT DISTINCT tableoid::regclass::TEXT FROM {table} \
                             WHERE xmin = pg_current_xact_id()::XID"
                        ),
                        &[],
                    )
                    .expect("the rows written")
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                placed
            });
            session.batch_execute("ROLLBACK").expect("rollback");
            let want: BTreeSet<String> = expected.iter().map(|s| (*s).to_owned()).collect();
            if *name == "upsert" {
                // An INSERT ... VALUES ... ON CONFLICT scans nothing: the row is routed to
                // its partition, whose key index finds the conflict.
                assert!(scanned.tables.is_subset(&want), "{name}: {scanned:?}");
            } else {
                assert_eq!(
                    scanned.tables, want,
                    "{name} ({}) scanned one partition per table",
                    stmt.name
                );
                assert!(
                    scanned.removed >= u64::from(PARTITIONS - 1) * want.len() as u64,
                    "{name}: the other partitions were removed before running: {scanned:?}"
                );
            }
            if let Some(placed) = written {
                assert_eq!(
                    placed,
                    vec![expected[0].to_owned()],
                    "{name} wrote into the aggregate's partition"
                );
            }
        }
    }
}

#[test]
fn the_monitoring_queries_fan_out_to_every_partition() {
    let Some(mut scratch) = scratch_with("pruning_fan_out", Layout::Partitioned { partitions: PARTITIONS }) else {
        return;
    };
    let mut session = {
        let mut config: postgres::Config = url().parse().expect("the URL parses");
        config.options(&session_options(None, &PgOptions::new().schema(&scratch.schema)));
        config.connect(NoTls).expect("connect the session")
    };
    scratch.admin.batch_execute("ANALYZE events").expect("analyze");
    prepare(&mut session, "coverage", &sql::COVERAGE);
    let text = explain_json(&mut session, "EXPLAIN (FORMAT JSON) EXECUTE coverage").to_string();
    let partitions = (0..PARTITIONS)
        .filter(|p| text.contains(&format!("\"events_p{p}\"")))
        .count();
    assert_eq!(partitions, usize::from(PARTITIONS), "coverage reads every partition");
}
