//! Stored data shared by the command's tests: a `Clock` stream of `Ticked` events and its
//! snapshots.
#![allow(dead_code)]

use eventsource::{Metadata, NewEvent, Snapshot};
use uuid::Uuid;

/// `n` new `Ticked` events with empty JSON payloads.
pub fn ticks(n: usize) -> Vec<NewEvent> {
    (0..n)
        .map(|_| NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "Ticked".into(),
            event_version: 1,
            occurred_at: eventsource::time::now(),
            payload: b"{}".to_vec(),
            metadata: Metadata::default(),
        })
        .collect()
}

/// A `Clock` snapshot of `id` at `version` with `state`.
pub fn snapshot(id: Uuid, version: u64, schema_version: u32, state: &[u8]) -> Snapshot {
    Snapshot {
        aggregate_id: id,
        aggregate_type: "Clock".into(),
        version,
        schema_version,
        state: state.to_vec(),
        created_at: eventsource::time::now(),
    }
}
