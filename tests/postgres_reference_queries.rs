//! The reference guide's monitoring queries ("Check Snapshot Coverage", "Check Snapshot
//! Freshness", "Prioritize High-Event Aggregates"), verbatim, on a database populated through
//! the stores, with their results checked; then the typed API (sync and async) against them.
//! On both table layouts: the default one and the partitioned one.

#[macro_use]
mod common_pg;
mod reference;

use common_pg::PgSchema;
use eventsource::store::postgres::{
    AsyncPostgresEventStore, Coverage, PostgresEventStore, PostgresSnapshotStore, StaleSnapshot,
};
use eventsource::{EventStore, JsonCodec, Metadata, NewEvent, Snapshot, SnapshotMonitor, SnapshotStore};
use uuid::Uuid;

/// The population: (type, events, snapshot version).
struct Aggregate {
    ty: &'static str,
    id: Uuid,
    events: u64,
    snapshot: Option<u64>,
}

fn population() -> Vec<Aggregate> {
    let a = |ty, events, snapshot| Aggregate {
        ty,
        id: Uuid::now_v7(),
        events,
        snapshot,
    };
    vec![
        a("Order", 600, Some(100)), // stale: 500 since
        a("Order", 520, Some(500)), // fresh: 20 since
        a("Order", 150, None),
        a("Order", 501, None),      // just above 500 events
        a("Order", 500, Some(250)), // not above 500; 250 since: stale
        a("Cart", 3, Some(3)),
        a("Cart", 2, None),
    ]
}

fn populate(db: &PgSchema) -> (PostgresEventStore, PostgresSnapshotStore, Vec<Aggregate>) {
    let es = PostgresEventStore::from_config(db.config("ref"), JsonCodec, db.options()).expect("open");
    let ss = es.snapshot_store();
    let aggregates = population();
    for agg in &aggregates {
        let mut version = 0;
        while version < agg.events {
            let n = (agg.events - version).min(200);
            let batch: Vec<NewEvent> = (0..n)
                .map(|i| NewEvent {
                    event_id: Uuid::now_v7(),
                    event_type: "Touched".into(),
                    event_version: 1,
                    occurred_at: eventsource::time::now(),
                    payload: format!(r#"{{"n":{}}}"#, version + i + 1).into_bytes(),
                    metadata: Metadata::default(),
                })
                .collect();
            version = es.append(agg.id, agg.ty, version, &batch).expect("append");
        }
        if let Some(v) = agg.snapshot {
            ss.save_snapshot(&Snapshot {
                aggregate_id: agg.id,
                aggregate_type: agg.ty.into(),
                version: v,
                schema_version: 1,
                state: b"{}".to_vec(),
                created_at: eventsource::time::now(),
            })
            .expect("snapshot");
        }
    }
    // A snapshot whose aggregate has no events: outside every query's joins.
    ss.save_snapshot(&Snapshot {
        aggregate_id: Uuid::now_v7(),
        aggregate_type: "Order".into(),
        version: 7,
        schema_version: 1,
        state: b"{}".to_vec(),
        created_at: eventsource::time::now(),
    })
    .expect("orphan snapshot");
    (es, ss, aggregates)
}

fn expected_coverage() -> Vec<Coverage> {
    vec![
        Coverage {
            aggregate_type: "Cart".into(),
            total_aggregates: 2,
            with_snapshot: 1,
            without_snapshot: 1,
        },
        Coverage {
            aggregate_type: "Order".into(),
            total_aggregates: 5,
            with_snapshot: 3,
            without_snapshot: 2,
        },
    ]
}

fn expected_stale(aggs: &[Aggregate]) -> Vec<StaleSnapshot> {
    let mut out: Vec<StaleSnapshot> = aggs
        .iter()
        .filter_map(|a| {
            let s = a.snapshot?;
            (a.events - s > 100).then(|| StaleSnapshot {
                aggregate_type: a.ty.into(),
                aggregate_id: a.id,
                snapshot_version: s,
                current_version: a.events,
                events_since_snapshot: a.events - s,
            })
        })
        .collect();
    out.sort_by_key(|x| std::cmp::Reverse(x.events_since_snapshot));
    out
}

fn expected_high(aggs: &[Aggregate]) -> Vec<(Uuid, u64)> {
    let mut out: Vec<(Uuid, u64)> = aggs
        .iter()
        .filter(|a| a.ty == "Order" && a.events > 500)
        .map(|a| (a.id, a.events))
        .collect();
    out.sort_by_key(|x| std::cmp::Reverse(x.1));
    out
}

#[test]
fn the_guides_queries_run_unchanged_and_agree_with_the_api() {
    let db = pg_schema_or_skip!("the_guides_queries_run_unchanged_and_agree_with_the_api");
    the_guides_queries_agree_with_the_api(&db);
}

/// The same queries, verbatim, on the partitioned layout (tables hash-partitioned by
/// `aggregate_id`): they fan out to every partition and answer the same.
#[test]
fn the_guides_queries_run_unchanged_on_the_partitioned_layout() {
    let db = pg_schema_or_skip!(
        "the_guides_queries_run_unchanged_on_the_partitioned_layout",
        common_pg::PARTITIONED
    );
    the_guides_queries_agree_with_the_api(&db);
    let partitioned = db.scalar_i64(
        "SELECT COUNT(*) FROM pg_partitioned_table p JOIN pg_class c ON c.oid = p.partrelid \
         WHERE c.relnamespace = current_schema()::REGNAMESPACE",
    );
    assert_eq!(partitioned, 2, "events and snapshots are partitioned");
}

fn the_guides_queries_agree_with_the_api(db: &PgSchema) {
    let (es, ss, aggs) = populate(db);

    let mut coverage: Vec<Coverage> = db.with_client(|c| {
        c.query(reference::COVERAGE, &[])
            .expect("coverage query")
            .iter()
            .map(|r| Coverage {
                aggregate_type: r.get(0),
                total_aggregates: r.get::<_, i64>(1) as u64,
                with_snapshot: r.get::<_, i64>(2) as u64,
                without_snapshot: r.get::<_, i64>(3) as u64,
            })
            .collect()
    });
    coverage.sort_by(|a, b| a.aggregate_type.cmp(&b.aggregate_type));
    assert_eq!(coverage, expected_coverage());

    let freshness: Vec<StaleSnapshot> = db.with_client(|c| {
        c.query(reference::FRESHNESS, &[])
            .expect("freshness query")
            .iter()
            .map(|r| StaleSnapshot {
                aggregate_type: r.get(0),
                aggregate_id: r.get(1),
                snapshot_version: r.get::<_, i32>(2) as u64,
                current_version: r.get::<_, i64>(3) as u64,
                events_since_snapshot: r.get::<_, i64>(4) as u64,
            })
            .collect()
    });
    assert_eq!(freshness, expected_stale(&aggs));
    assert_eq!(freshness.len(), 2);
    assert_eq!(freshness[0].events_since_snapshot, 500, "worst first");

    let high: Vec<Uuid> = db.with_client(|c| {
        c.query(reference::HIGH_EVENT, &[])
            .expect("high-event query")
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    assert_eq!(high, expected_high(&aggs).iter().map(|(id, _)| *id).collect::<Vec<_>>());
    assert_eq!(high.len(), 3);

    // The typed API answers the same.
    assert_eq!(ss.coverage().expect("coverage"), expected_coverage());
    assert_eq!(ss.stale_snapshots(100).expect("stale"), expected_stale(&aggs));
    assert_eq!(
        ss.stale_snapshots(u64::MAX).expect("stale"),
        vec![],
        "a huge bound admits nothing"
    );
    assert_eq!(
        ss.aggregates_by_event_count("Order", 500).expect("high"),
        expected_high(&aggs)
    );
    assert_eq!(
        es.aggregates_by_event_count("Order", 500).expect("high"),
        expected_high(&aggs)
    );
    assert_eq!(es.aggregates_by_event_count("Cart", 0).expect("carts").len(), 2);
    assert!(es
        .aggregates_by_event_count("Order", u64::MAX)
        .expect("none")
        .is_empty());

    // And so does the async API.
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let es = AsyncPostgresEventStore::from_config(db.async_config("ref"), JsonCodec, db.options())
            .await
            .expect("open async");
        let ss = es.snapshot_store();
        assert_eq!(ss.coverage().await.expect("coverage"), expected_coverage());
        assert_eq!(ss.stale_snapshots(100).await.expect("stale"), expected_stale(&aggs));
        assert_eq!(
            ss.aggregates_by_event_count("Order", 500).await.expect("high"),
            expected_high(&aggs)
        );
        assert_eq!(
            eventsource::tokio::EventStore::aggregates_by_event_count(&es, "Order", 500)
                .await
                .expect("high"),
            expected_high(&aggs)
        );
    });
}
