//! The invariants every fault-injection test asserts after its fault: no acknowledged event
//! lost, none duplicated, every stream numbered 1..n without a gap, and a load through the
//! snapshot equal to a full replay. Written once here; `tests/faults_*.rs` call it.
#![allow(dead_code)]

use std::collections::HashMap;

use eventsource::{Aggregate, AggregateRepository, EventStore, NoSnapshotStore, SnapshotStore};
use uuid::Uuid;

/// What a fault test knows about one stream: the event ids of every save that returned
/// `Ok` (acknowledged), in order.
#[derive(Debug, Default, Clone)]
pub struct Acknowledged {
    pub event_ids: Vec<Uuid>,
}

/// Reads the whole stream and checks it: versions 1..=n in order, no event id twice, and
/// every acknowledged id present exactly once (in acknowledgement order). Returns the
/// stream's event ids in stream order.
pub fn assert_stream_intact<ES: EventStore>(
    events: &ES,
    aggregate_type: &str,
    id: Uuid,
    acknowledged: &Acknowledged,
) -> Vec<Uuid> {
    let mut stored = Vec::new();
    let mut expected = 1u64;
    events
        .read_stream(id, aggregate_type, 0, &mut |r| {
            assert_eq!(r.version, expected, "stream {id} has a gap or is out of order");
            expected += 1;
            stored.push(r.event_id);
            Ok(())
        })
        .unwrap_or_else(|e| panic!("reading stream {id}: {e}"));
    let mut seen = HashMap::new();
    for (pos, eid) in stored.iter().enumerate() {
        if let Some(first) = seen.insert(*eid, pos) {
            panic!("event {eid} stored twice in {id} (positions {first} and {pos})");
        }
    }
    let mut last = None;
    for eid in &acknowledged.event_ids {
        let pos = *seen
            .get(eid)
            .unwrap_or_else(|| panic!("acknowledged event {eid} of {id} was lost"));
        if let Some(prev) = last {
            assert!(pos > prev, "acknowledged events of {id} are out of order");
        }
        last = Some(pos);
    }
    stored
}

/// Loads the aggregate through `repo` (with its snapshot store) and through a repository
/// without snapshots over the same events, and asserts both states are equal. (Floats
/// that must agree bit for bit need a state whose `PartialEq` compares bits.)
pub fn assert_snapshot_load_equals_replay<A, ES, SS>(repo: &AggregateRepository<A, ES, SS>, replay: &ES, id: Uuid)
where
    A: Aggregate + PartialEq,
    ES: EventStore + Clone,
    SS: SnapshotStore,
{
    let via_snapshot = repo
        .load(id)
        .unwrap_or_else(|e| panic!("load of {id} through snapshot: {e}"));
    let full = AggregateRepository::<A, ES, NoSnapshotStore>::new(replay.clone())
        .load(id)
        .unwrap_or_else(|e| panic!("full replay of {id}: {e}"));
    assert_eq!(via_snapshot.version(), full.version(), "versions differ for {id}");
    assert_eq!(
        via_snapshot.state(),
        full.state(),
        "snapshot load differs from full replay for {id}"
    );
}
