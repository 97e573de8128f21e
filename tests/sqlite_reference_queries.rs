//! The reference guide's monitoring queries, verbatim, against an SQLite file populated
//! through the stores, checked against the known population and against the monitoring
//! API ([`SnapshotMonitor`]).
//!
//! The guide labels the coverage query "PostgreSQL", but it uses nothing PostgreSQL-only:
//! it runs unchanged on SQLite, as do the freshness and high-event queries.

mod reference;

use std::collections::BTreeSet;
use std::path::Path;

use eventsource::{
    Codec, Coverage, EventStore, JsonCodec, Metadata, NewEvent, Snapshot, SnapshotMonitor, SnapshotStore,
    SqliteEventStore, SqliteSnapshotStore, StaleSnapshot,
};
use rusqlite::Connection;
use uuid::Uuid;

/// One aggregate of the population.
struct Aggregate {
    kind: &'static str,
    id: Uuid,
    events: u64,
    snapshot_at: Option<u64>,
}

/// The population: Order aggregates around the guide's bounds (500 events, 100 events
/// since the snapshot), Carts, and an orphan snapshot without events.
fn population() -> Vec<Aggregate> {
    let a = |kind, events, snapshot_at| Aggregate {
        kind,
        id: Uuid::now_v7(),
        events,
        snapshot_at,
    };
    vec![
        a("Order", 650, Some(400)), // stale by 250, high-event
        a("Order", 501, Some(500)), // fresh, high-event (just above 500)
        a("Order", 500, None),      // exactly 500: not "> 500"
        a("Order", 150, Some(20)),  // stale by 130
        a("Order", 30, None),
        a("Order", 102, Some(1)), // stale by 101
        a("Order", 101, Some(1)), // exactly 100 behind: not "> 100"
        a("Cart", 5, Some(5)),
        a("Cart", 5, None),
        a("Cart", 620, None), // high-event, but not an Order
    ]
}

fn new_event(n: u64) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: "ItemAdded".into(),
        event_version: 1,
        occurred_at: eventsource::time::now(),
        payload: JsonCodec.encode(&serde_json::json!({ "n": n })).expect("encode"),
        metadata: Metadata::default(),
    }
}

fn populate(path: &Path) -> (Vec<Aggregate>, Uuid) {
    let events = SqliteEventStore::open(path).expect("open events");
    let snapshots = SqliteSnapshotStore::open(path).expect("open snapshots");
    let aggregates = population();
    for a in &aggregates {
        let mut version = 0;
        while version < a.events {
            let n = (a.events - version).min(100);
            let batch: Vec<NewEvent> = (version + 1..=version + n).map(new_event).collect();
            version = events.append(a.id, a.kind, version, &batch).expect("append");
        }
        if let Some(at) = a.snapshot_at {
            snapshots
                .save_snapshot(&Snapshot {
                    aggregate_id: a.id,
                    aggregate_type: a.kind.into(),
                    version: at,
                    schema_version: 1,
                    state: b"{}".to_vec(),
                    created_at: eventsource::time::now(),
                })
                .expect("snapshot");
        }
    }
    let orphan = Uuid::now_v7();
    snapshots
        .save_snapshot(&Snapshot {
            aggregate_id: orphan,
            aggregate_type: "Order".into(),
            version: 3,
            schema_version: 1,
            state: b"{}".to_vec(),
            created_at: eventsource::time::now(),
        })
        .expect("orphan snapshot");
    (aggregates, orphan)
}

fn expected_coverage(aggregates: &[Aggregate]) -> Vec<Coverage> {
    let kinds: BTreeSet<&str> = aggregates.iter().map(|a| a.kind).collect();
    kinds
        .into_iter()
        .map(|kind| {
            let of: Vec<&Aggregate> = aggregates.iter().filter(|a| a.kind == kind).collect();
            let with = of.iter().filter(|a| a.snapshot_at.is_some()).count() as u64;
            Coverage {
                aggregate_type: kind.into(),
                total_aggregates: of.len() as u64,
                with_snapshot: with,
                without_snapshot: of.len() as u64 - with,
            }
        })
        .collect()
}

fn expected_stale(aggregates: &[Aggregate], bound: u64) -> Vec<StaleSnapshot> {
    let mut out: Vec<StaleSnapshot> = aggregates
        .iter()
        .filter_map(|a| {
            let at = a.snapshot_at?;
            (a.events - at > bound).then(|| StaleSnapshot {
                aggregate_type: a.kind.into(),
                aggregate_id: a.id,
                snapshot_version: at,
                current_version: a.events,
                events_since_snapshot: a.events - at,
            })
        })
        .collect();
    out.sort_by_key(|s| std::cmp::Reverse(s.events_since_snapshot));
    out
}

#[test]
fn guide_queries_run_verbatim_and_agree_with_the_monitoring_api() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("monitor.db");
    let (aggregates, orphan) = populate(&path);
    let conn = Connection::open(&path).expect("raw connection");

    // Coverage (no ORDER BY in the guide: compare sorted).
    let mut coverage: Vec<Coverage> = conn
        .prepare(reference::COVERAGE)
        .expect("coverage prepares verbatim")
        .query_map([], |r| {
            Ok(Coverage {
                aggregate_type: r.get(0)?,
                total_aggregates: r.get::<_, i64>(1)? as u64,
                with_snapshot: r.get::<_, i64>(2)? as u64,
                without_snapshot: r.get::<_, i64>(3)? as u64,
            })
        })
        .expect("coverage runs")
        .collect::<rusqlite::Result<_>>()
        .expect("coverage rows");
    coverage.sort_by(|a, b| a.aggregate_type.cmp(&b.aggregate_type));
    let expected = expected_coverage(&aggregates);
    assert_eq!(coverage, expected);
    assert_eq!(
        expected,
        vec![
            Coverage {
                aggregate_type: "Cart".into(),
                total_aggregates: 3,
                with_snapshot: 1,
                without_snapshot: 2
            },
            Coverage {
                aggregate_type: "Order".into(),
                total_aggregates: 7,
                with_snapshot: 5,
                without_snapshot: 2
            },
        ],
        "the orphan snapshot has no events and is not counted"
    );

    // Freshness.
    let stale: Vec<StaleSnapshot> = conn
        .prepare(reference::FRESHNESS)
        .expect("freshness prepares verbatim")
        .query_map([], |r| {
            Ok(StaleSnapshot {
                aggregate_type: r.get(0)?,
                aggregate_id: r.get::<_, String>(1)?.parse().expect("uuid"),
                snapshot_version: r.get::<_, i64>(2)? as u64,
                current_version: r.get::<_, i64>(3)? as u64,
                events_since_snapshot: r.get::<_, i64>(4)? as u64,
            })
        })
        .expect("freshness runs")
        .collect::<rusqlite::Result<_>>()
        .expect("freshness rows");
    let expected = expected_stale(&aggregates, 100);
    assert_eq!(stale, expected);
    assert_eq!(
        stale.iter().map(|s| s.events_since_snapshot).collect::<Vec<_>>(),
        vec![250, 130, 101]
    );
    assert!(stale.iter().all(|s| s.aggregate_id != orphan));

    // High-event aggregates.
    let high: Vec<Uuid> = conn
        .prepare(reference::HIGH_EVENT)
        .expect("high-event prepares verbatim")
        .query_map([], |r| Ok(r.get::<_, String>(0)?.parse().expect("uuid")))
        .expect("high-event runs")
        .collect::<rusqlite::Result<_>>()
        .expect("high-event rows");
    assert_eq!(
        high,
        vec![aggregates[0].id, aggregates[1].id],
        "650 then 501; 500 is not > 500"
    );

    // The monitoring API answers the same.
    let events = SqliteEventStore::open(&path).expect("events");
    let monitor = SqliteSnapshotStore::from_event_store(&events);
    assert_eq!(monitor.coverage().expect("coverage"), coverage);
    assert_eq!(monitor.stale_snapshots(100).expect("stale"), stale);
    let by_count = SnapshotMonitor::aggregates_by_event_count(&monitor, "Order", 500).expect("by count");
    assert_eq!(by_count.iter().map(|(id, _)| *id).collect::<Vec<_>>(), high);
    assert_eq!(by_count.iter().map(|(_, n)| *n).collect::<Vec<_>>(), vec![650, 501]);
    assert_eq!(
        EventStore::aggregates_by_event_count(&events, "Order", 500).expect("events"),
        by_count
    );

    // Other bounds.
    assert_eq!(
        monitor.stale_snapshots(0).expect("stale"),
        expected_stale(&aggregates, 0)
    );
    assert_eq!(monitor.stale_snapshots(250).expect("none"), Vec::new());
    let carts = EventStore::aggregates_by_event_count(&events, "Cart", 0).expect("carts");
    assert_eq!(carts.first(), Some(&(aggregates[9].id, 620)));
    assert_eq!(carts.len(), 3);
}
