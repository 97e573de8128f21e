//! The background-mode queue: bounded, one pending snapshot per aggregate.
//!
//! Pure data structure, no threads or I/O: the sync shell drives it from a worker thread,
//! the async shell from a worker thread running its own tokio runtime.
//!
//! - `push` of an aggregate that already has a pending snapshot replaces it when the new
//!   one is newer (coalescing): only the latest state of an aggregate is worth writing.
//! - `push` of a new aggregate into a full queue drops the snapshot and counts it; the
//!   next threshold crossing will try again, and loads stay correct (full replay).
//!
//! `WorkerQueue` adds the worker's life around it, the one state machine both shells
//! drive: running, stopping (shut down: nothing new is taken, what is queued is still
//! written), and dead (the worker exited abnormally or never started: nothing queued will
//! ever be written, so `flush` and `shutdown` must fail at once instead of waiting).

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
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.pending.len()
    }

    /// Whether nothing is pending or in flight: what `flush` waits for.
    pub fn is_idle(&self) -> bool {
        self.pending.is_empty() && self.in_flight == 0
    }
}

/// What the worker does next (`WorkerQueue::next`).
#[derive(Debug)]
pub(crate) enum Next {
    /// Write this snapshot, then call `WorkerQueue::done`.
    Write(Snapshot),
    /// Nothing to do: wait for a push or a stop.
    Wait,
    /// Stopping and drained: the worker exits.
    Exit,
}

/// Where a flush stands (`WorkerQueue::flush_state`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FlushState {
    /// Nothing pending or in flight.
    Idle,
    /// Work pending or in flight, and a worker to do it.
    Busy,
    /// The worker is gone: nothing pending will be written.
    Dead,
}

/// A [`SnapshotQueue`] and the life of the worker draining it. Pure state; the shells hold
/// it under a mutex and add the waiting.
#[derive(Debug)]
pub(crate) struct WorkerQueue {
    queue: SnapshotQueue,
    stopping: bool,
    dead: bool,
}

impl WorkerQueue {
    /// A running worker's queue holding at most `capacity` aggregates.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            queue: SnapshotQueue::new(capacity),
            stopping: false,
            dead: false,
        }
    }

    /// Offers a snapshot; [`PushOutcome::Dropped`] once stopping or dead.
    pub(crate) fn push(&mut self, snapshot: Snapshot) -> PushOutcome {
        if self.stopping || self.dead {
            return PushOutcome::Dropped;
        }
        self.queue.push(snapshot)
    }

    /// The worker's next step.
    pub(crate) fn next(&mut self) -> Next {
        match self.queue.pop() {
            Some(s) => Next::Write(s),
            None if self.stopping || self.dead => Next::Exit,
            None => Next::Wait,
        }
    }

    /// Marks the snapshot taken by [`next`](Self::next) as written (or failed); returns
    /// whether the queue is now idle.
    pub(crate) fn done(&mut self) -> bool {
        self.queue.done();
        self.queue.is_idle()
    }

    /// Takes no more snapshots; the worker exits once drained.
    pub(crate) fn stop(&mut self) {
        self.stopping = true;
    }

    /// Removes what is still pending (not what is in flight); returns how many, to be
    /// counted as dropped.
    pub(crate) fn discard_pending(&mut self) -> u64 {
        let mut dropped = 0;
        while self.queue.pop().is_some() {
            self.queue.done();
            dropped += 1;
        }
        dropped
    }

    /// The worker is gone: discards what is pending (returned, to be counted as dropped),
    /// and every later push is dropped and every flush fails.
    pub(crate) fn die(&mut self) -> u64 {
        self.dead = true;
        self.stopping = true;
        self.discard_pending()
    }

    /// Where a flush stands: a dead worker fails it even when nothing is pending, so the
    /// caller learns that later background snapshots will not be written.
    pub(crate) fn flush_state(&self) -> FlushState {
        if self.dead {
            FlushState::Dead
        } else if self.queue.is_idle() {
            FlushState::Idle
        } else {
            FlushState::Busy
        }
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

    #[test]
    fn a_stopping_worker_drains_then_exits() {
        let mut w = WorkerQueue::new(4);
        assert_eq!(w.push(snap(Uuid::now_v7(), 1)), PushOutcome::Queued);
        w.stop();
        assert_eq!(w.push(snap(Uuid::now_v7(), 1)), PushOutcome::Dropped);
        assert_eq!(w.flush_state(), FlushState::Busy);
        assert!(matches!(w.next(), Next::Write(_)));
        assert!(w.done());
        assert_eq!(w.flush_state(), FlushState::Idle);
        assert!(matches!(w.next(), Next::Exit));
    }

    #[test]
    fn a_dead_worker_drops_everything_and_fails_flushes() {
        let mut w = WorkerQueue::new(4);
        assert!(matches!(w.next(), Next::Wait));
        assert_eq!(w.flush_state(), FlushState::Idle);
        w.push(snap(Uuid::now_v7(), 1));
        w.push(snap(Uuid::now_v7(), 1));
        w.push(snap(Uuid::now_v7(), 1));
        assert!(matches!(w.next(), Next::Write(_)));
        // One in flight when the worker dies, two pending: the two are dropped.
        assert_eq!(w.die(), 2);
        assert_eq!(w.flush_state(), FlushState::Dead);
        assert_eq!(w.push(snap(Uuid::now_v7(), 1)), PushOutcome::Dropped);
        assert!(matches!(w.next(), Next::Exit));
    }

    #[test]
    fn discarding_keeps_what_is_in_flight() {
        let mut w = WorkerQueue::new(4);
        w.push(snap(Uuid::now_v7(), 1));
        w.push(snap(Uuid::now_v7(), 1));
        assert!(matches!(w.next(), Next::Write(_)));
        assert_eq!(w.discard_pending(), 1);
        assert_eq!(w.flush_state(), FlushState::Busy);
        assert!(w.done());
        assert_eq!(w.flush_state(), FlushState::Idle);
    }
}
