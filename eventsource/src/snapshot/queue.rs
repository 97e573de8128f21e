//! The background-mode queue: bounded, one pending snapshot per aggregate.
//!
//! Pure data structure, no threads or I/O: the sync shell drives it from a worker thread,
//! the async shell from a tokio task.
//!
//! - `push` of an aggregate that already has a pending snapshot replaces it when the new
//!   one is newer (coalescing): only the latest state of an aggregate is worth writing.
//! - `push` of a new aggregate into a full queue drops the snapshot and counts it; the
//!   next threshold crossing will try again, and loads stay correct (full replay).

use std::collections::{HashMap, VecDeque};

use super::{policy, Snapshot, SnapshotKey};

/// What `push` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushOutcome {
    /// Queued as a new entry.
    Queued,
    /// Replaced the pending snapshot of the same aggregate.
    Coalesced,
    /// A newer snapshot of the same aggregate was already pending; this one was discarded.
    Superseded,
    /// The queue was full; the snapshot was dropped.
    Dropped,
}

/// A bounded queue holding at most one snapshot per aggregate.
#[derive(Debug)]
pub struct SnapshotQueue {
    capacity: usize,
    order: VecDeque<SnapshotKey>,
    pending: HashMap<SnapshotKey, Snapshot>,
    in_flight: usize,
}

impl SnapshotQueue {
    /// A queue holding at most `capacity` aggregates (at least 1).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            order: VecDeque::new(),
            pending: HashMap::new(),
            in_flight: 0,
        }
    }

    /// Offers a snapshot to the queue.
    pub fn push(&mut self, snapshot: Snapshot) -> PushOutcome {
        let key = snapshot.key();
        if let Some(existing) = self.pending.get_mut(&key) {
            let old = policy::SnapshotHeader {
                version: existing.version,
                schema_version: existing.schema_version,
            };
            let new = policy::SnapshotHeader {
                version: snapshot.version,
                schema_version: snapshot.schema_version,
            };
            return match policy::write_decision(Some(old), new) {
                policy::WriteDecision::Write => {
                    *existing = snapshot;
                    PushOutcome::Coalesced
                }
                policy::WriteDecision::Keep => PushOutcome::Superseded,
            };
        }
        if self.pending.len() >= self.capacity {
            return PushOutcome::Dropped;
        }
        self.order.push_back(key.clone());
        self.pending.insert(key, snapshot);
        PushOutcome::Queued
    }

    /// Takes the oldest pending snapshot to write; it counts as in flight until
    /// [`done`](Self::done).
    pub fn pop(&mut self) -> Option<Snapshot> {
        while let Some(key) = self.order.pop_front() {
            if let Some(s) = self.pending.remove(&key) {
                self.in_flight += 1;
                return Some(s);
            }
        }
        None
    }

    /// Marks one popped snapshot as written (or failed).
    pub fn done(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    /// Pending snapshots, not counting those in flight.
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending.
    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    /// Whether nothing is pending or in flight: what `flush` waits for.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    fn snap(id: Uuid, version: u64) -> Snapshot {
        Snapshot {
            aggregate_id: id,
            aggregate_type: "Order".into(),
            version,
            schema_version: 1,
            state: vec![version as u8],
            created_at: crate::time::now(),
        }
    }

    #[test]
    fn coalesces_per_aggregate_and_keeps_the_newest() {
        let mut q = SnapshotQueue::new(4);
        let a = Uuid::now_v7();
        assert_eq!(q.push(snap(a, 100)), PushOutcome::Queued);
        assert_eq!(q.push(snap(a, 200)), PushOutcome::Coalesced);
        assert_eq!(q.push(snap(a, 150)), PushOutcome::Superseded);
        assert_eq!(q.len(), 1);
        let s = q.pop().expect("pending");
        assert_eq!(s.version, 200);
        assert!(!q.is_idle());
        q.done();
        assert!(q.is_idle());
    }

    #[test]
    fn drops_new_aggregates_when_full() {
        let mut q = SnapshotQueue::new(2);
        let ids: Vec<Uuid> = (0..3).map(|_| Uuid::now_v7()).collect();
        assert_eq!(q.push(snap(ids[0], 1)), PushOutcome::Queued);
        assert_eq!(q.push(snap(ids[1], 1)), PushOutcome::Queued);
        assert_eq!(q.push(snap(ids[2], 1)), PushOutcome::Dropped);
        // A pending aggregate still coalesces when the queue is full.
        assert_eq!(q.push(snap(ids[0], 2)), PushOutcome::Coalesced);
        assert_eq!(q.pop().map(|s| (s.aggregate_id, s.version)), Some((ids[0], 2)));
        assert_eq!(q.pop().map(|s| s.aggregate_id), Some(ids[1]));
        assert!(q.pop().is_none());
    }
}
