//! Load planning as a sans-IO state machine.
//!
//! A load asks its shell for I/O one step at a time ([`LoadMachine::next_step`]) and is fed
//! the results; it never performs I/O itself. The sync repository drives it with blocking
//! calls, the async one with `.await`s: the rules (which snapshot may be used, from which
//! version to replay, when to give up on a snapshot, whether to delete it) exist once, here
//! and in [`super::policy`].
//!
//! The steps of a load with a snapshot store:
//!
//! 1. [`LoadStep::ReadJoint`] when the snapshot and event stores share a database: the
//!    snapshot row and the events from its version on, in one query; otherwise
//!    [`LoadStep::GetSnapshot`] then [`LoadStep::ReadEvents`] from the snapshot's version.
//!    The first event read, the one at the snapshot's own version (the *anchor*), is not
//!    applied: it proves that the stream reaches the snapshot (rule 5). No anchor means the
//!    snapshot is beyond the stream. So rule 5 costs no query of its own.
//! 2. On a miss: [`LoadStep::DeleteSnapshot`] for a snapshot ahead of its stream, then
//!    [`LoadStep::ReadEvents`] from the start.

use tracing::{debug, error, trace, warn};
use uuid::Uuid;

use super::policy::{self, LoadPlan, MissReason, SnapshotHeader};
use super::Snapshot;
use crate::aggregate::{Aggregate, DecodedEvent, EventSet, StateDecode};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::event::ReplayEvent;
use crate::store::JointVisitor;

const TARGET: &str = "eventsource::repository";

/// The I/O a load needs next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadStep {
    /// Call `EventStore::read_with_snapshot` with the machine as visitor, then
    /// [`LoadMachine::joint_done`] with its answer.
    ReadJoint,
    /// Call `SnapshotStore::get_snapshot`, then [`LoadMachine::snapshot_read`].
    GetSnapshot,
    /// Call `EventStore::replay_stream` after `after`, feeding [`LoadMachine::event`], then
    /// [`LoadMachine::events_done`].
    ReadEvents {
        /// The version to read after.
        after: u64,
    },
    /// Call `SnapshotStore::delete_snapshot`, then [`LoadMachine::snapshot_deleted`].
    DeleteSnapshot,
    /// Finished: call [`LoadMachine::finish`].
    Done,
}

/// How a load used (or did not use) a snapshot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotUse {
    /// A snapshot of the current schema version was used.
    Used {
        /// Its stream version.
        version: u64,
    },
    /// A snapshot of an older schema version was upcast and used.
    Upcast {
        /// Its stream version.
        version: u64,
        /// The schema version it was written with.
        from_schema: u32,
    },
    /// No snapshot was used; the whole stream was replayed.
    Discarded(MissReason),
}

/// What a load did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LoadOutcome {
    /// Whether and how a snapshot was used.
    pub snapshot: SnapshotUse,
    /// Events decoded and applied.
    pub events_replayed: u64,
    /// Stored events of a retired event type (`#[aggregate(retired("..."))]`) read and
    /// skipped: not applied, not an error, and not counted in `events_replayed`. Their
    /// versions still count towards `version`.
    pub events_skipped: u64,
    /// The version reached (0: the aggregate has no events).
    pub version: u64,
    /// Whether a fresh snapshot was written (sync mode) or queued (background mode) to
    /// repair the miss.
    pub repaired: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    SnapshotTail,
    Delete,
    Replay,
    Done,
}

/// One load of one aggregate, as a state machine.
pub struct LoadMachine<'c, A, SC, EC> {
    id: Uuid,
    snapshot_codec: Option<&'c SC>,
    event_codec: &'c EC,
    joint: bool,
    phase: Phase,
    state: A,
    header: Option<SnapshotHeader>,
    used: Option<SnapshotUse>,
    miss: Option<MissReason>,
    next_version: u64,
    replayed: u64,
    skipped: u64,
    joint_tail: bool,
    /// The snapshot's version while its anchor event has not been read.
    anchor: Option<u64>,
}

impl<'c, A: Aggregate, SC: Codec, EC: Codec> LoadMachine<'c, A, SC, EC> {
    /// A load of `id`. `snapshot_codec` is `None` without a snapshot store; `joint` says
    /// whether the event store can read the snapshot with the events (same database).
    pub fn new(id: Uuid, event_codec: &'c EC, snapshot_codec: Option<&'c SC>, joint: bool) -> Self {
        let mut m = Self {
            id,
            snapshot_codec,
            event_codec,
            joint,
            phase: Phase::Start,
            state: A::default(),
            header: None,
            used: None,
            miss: None,
            next_version: 1,
            replayed: 0,
            skipped: 0,
            joint_tail: false,
            anchor: None,
        };
        if snapshot_codec.is_none() {
            m.replay_from_start(MissReason::Missing);
        }
        m
    }

    /// The I/O to do next.
    pub fn next_step(&self) -> LoadStep {
        match self.phase {
            Phase::Start if self.joint => LoadStep::ReadJoint,
            Phase::Start => LoadStep::GetSnapshot,
            Phase::SnapshotTail | Phase::Replay => LoadStep::ReadEvents {
                after: self.anchor.map_or(self.next_version, |a| a).saturating_sub(1),
            },
            Phase::Delete => LoadStep::DeleteSnapshot,
            Phase::Done => LoadStep::Done,
        }
    }

    /// After [`LoadStep::ReadJoint`]: `true` when the store did the joint read, `false`
    /// when it cannot (the load goes on with separate reads).
    pub fn joint_done(&mut self, supported: bool) {
        if !supported {
            self.joint = false;
            return;
        }
        if self.joint_tail {
            // The joint read already delivered the events needed.
            self.events_done();
        }
    }

    /// After [`LoadStep::GetSnapshot`]. A store error degrades to a full replay.
    pub fn snapshot_read(&mut self, result: Result<Option<Snapshot>>) {
        match result {
            Ok(snapshot) => self.consider(snapshot),
            Err(e) => {
                warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id, error = %e.report(),
                      "snapshot store failed");
                self.replay_from_start(MissReason::StoreError);
            }
        }
    }

    /// After [`LoadStep::DeleteSnapshot`]. A failure is logged; the load goes on.
    pub fn snapshot_deleted(&mut self, result: Result<bool>) {
        if let Err(e) = result {
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id, error = %e.report(),
                  "could not delete the snapshot that is ahead of its stream");
        }
        self.phase = Phase::Replay;
    }

    /// Feeds one event read in a [`LoadStep::ReadEvents`] or [`LoadStep::ReadJoint`] step.
    pub fn event(&mut self, record: &ReplayEvent<'_>) -> Result<()> {
        if !matches!(self.phase, Phase::SnapshotTail | Phase::Replay) {
            return Ok(());
        }
        if let Some(anchor) = self.anchor.take() {
            if record.version == anchor {
                // The event the snapshot already holds: proof the stream reaches it.
                return Ok(());
            }
            return Err(Error::CorruptStream {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: self.id,
                expected: anchor,
                found: record.version,
            });
        }
        if record.version != self.next_version {
            return Err(Error::CorruptStream {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: self.id,
                expected: self.next_version,
                found: record.version,
            });
        }
        let decoded = <A::Event as EventSet>::decode_stored(
            self.event_codec,
            record.event_type,
            record.event_version,
            record.payload,
        )
        .map_err(|source| Error::EventDecode {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: self.id,
            version: record.version,
            event_type: record.event_type.to_owned(),
            source: Box::new(source),
        })?;
        match decoded {
            DecodedEvent::Event(event) => {
                self.state.apply_event(&event);
                self.replayed = self.replayed.saturating_add(1);
            }
            DecodedEvent::Retired => {
                trace!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id,
                       version = record.version, event_type = record.event_type, "retired event skipped");
                self.skipped = self.skipped.saturating_add(1);
            }
        }
        self.next_version = self.next_version.saturating_add(1);
        Ok(())
    }

    /// After a [`LoadStep::ReadEvents`] step.
    pub fn events_done(&mut self) {
        match self.phase {
            // No anchor: the stream ends before the snapshot's version.
            Phase::SnapshotTail if self.anchor.is_some() => self.ahead_of_stream(),
            Phase::SnapshotTail | Phase::Replay => self.phase = Phase::Done,
            _ => {}
        }
    }

    /// The state, the outcome, and on a miss the schema version of the snapshot that was
    /// discarded (for [`policy::repair_after_miss`]).
    pub fn finish(self) -> (A, LoadOutcome, Option<u32>) {
        let snapshot = match (self.used, self.miss) {
            (Some(used), _) => used,
            (None, reason) => SnapshotUse::Discarded(reason.unwrap_or(MissReason::Missing)),
        };
        let schema = match snapshot {
            SnapshotUse::Discarded(_) => self.header.map(|h| h.schema_version),
            _ => None,
        };
        if self.skipped > 0 {
            debug!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id, events_skipped = self.skipped,
                   "skipped events of retired event types");
        }
        let outcome = LoadOutcome {
            snapshot,
            events_replayed: self.replayed,
            events_skipped: self.skipped,
            version: self.next_version.saturating_sub(1),
            repaired: false,
        };
        (self.state, outcome, schema)
    }

    fn consider(&mut self, stored: Option<Snapshot>) {
        self.header = stored.as_ref().map(|s| SnapshotHeader {
            version: s.version,
            schema_version: s.schema_version,
        });
        let plan = policy::plan_load(self.header, A::SCHEMA_VERSION, A::UPCAST_FROM, None);
        let (LoadPlan::UseSnapshot { version, .. }, Some(s), Some(codec)) = (plan, &stored, self.snapshot_codec) else {
            match plan {
                LoadPlan::Replay {
                    reason: MissReason::AheadOfStream,
                    ..
                } => self.ahead_of_stream(),
                LoadPlan::Replay { reason, .. } => self.replay_from_start(reason),
                LoadPlan::UseSnapshot { .. } => self.replay_from_start(MissReason::Missing),
            }
            return;
        };
        match A::decode_state(codec, s.schema_version, &s.state) {
            Ok(StateDecode::Current(state)) => {
                self.state = state;
                self.used = Some(SnapshotUse::Used { version });
            }
            Ok(StateDecode::Upcast { state, from }) => {
                self.state = state;
                self.used = Some(SnapshotUse::Upcast {
                    version,
                    from_schema: from,
                });
            }
            Ok(StateDecode::NoPath) => return self.replay_from_start(MissReason::SchemaMismatch),
            Err(e) => {
                warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id,
                      schema_version = s.schema_version, error = %e, "snapshot state does not decode");
                return self.replay_from_start(MissReason::DecodeFailed);
            }
        }
        let Some(next) = version.checked_add(1) else {
            return self.ahead_of_stream();
        };
        self.next_version = next;
        self.anchor = Some(version);
        self.phase = Phase::SnapshotTail;
    }

    fn ahead_of_stream(&mut self) {
        error!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id,
               snapshot_version = self.header.map(|h| h.version),
               "snapshot is beyond the last event of its stream (events lost, or a bogus snapshot); deleting it");
        self.replay_from_start(MissReason::AheadOfStream);
    }

    fn replay_from_start(&mut self, reason: MissReason) {
        if reason != MissReason::Missing {
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %self.id, reason = %reason,
                  "snapshot not used; replaying the full stream");
        }
        self.state = A::default();
        self.used = None;
        self.anchor = None;
        self.miss = Some(reason);
        self.next_version = 1;
        self.replayed = 0;
        self.skipped = 0;
        self.phase = if self.header.is_some() && policy::delete_on_miss(reason) {
            Phase::Delete
        } else {
            Phase::Replay
        };
    }
}

impl<A: Aggregate, SC: Codec, EC: Codec> JointVisitor for LoadMachine<'_, A, SC, EC> {
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> Result<bool> {
        self.consider(snapshot);
        // The joint read's events start at the snapshot's version (all events when there is
        // none): usable when the snapshot is used (its anchor comes first), or when there is
        // no snapshot at all.
        self.joint_tail = self.phase == Phase::SnapshotTail || (self.phase == Phase::Replay && self.header.is_none());
        Ok(self.joint_tail)
    }

    fn event(&mut self, event: &ReplayEvent<'_>) -> Result<()> {
        LoadMachine::event(self, event)
    }
}
