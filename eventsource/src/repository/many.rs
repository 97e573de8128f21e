//! Batch loads: [`AggregateRepository::load_many`] and what pre-population and verification
//! build on.
//!
//! A batch load drives one [`LoadMachine`] per aggregate, exactly the machine a single load
//! drives: the one step they all start with, the joint read of the snapshot and the events
//! after it, is done for the whole chunk with one
//! [`EventStore::read_many_with_snapshot`] (one statement on PostgreSQL), through the
//! [`Batch`] visitor that routes each aggregate's rows to its machine. Whatever a machine
//! asks for next (a replay from the start after an unusable snapshot, the deletion of a
//! snapshot ahead of its stream, separate reads when the joint read was not possible) is
//! then done for that aggregate alone, by the same `drive` loop as a single load. So the
//! rules (snapshot validity, schema versions, upcasts, the anchor rule, the outcome and its
//! logs, the repair snapshot, the counters) are those of `load`, by construction.
//!
//! The async twin lives in `tokio::repository::many` and shares [`Batch`] and the helpers.

use std::collections::HashSet;

use tracing::Span;
use uuid::Uuid;

use super::core::{self, Rebuild};
use super::{AggregateRepository, LoadOutcome};
use crate::aggregate::{Aggregate, AggregateRoot};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::event::ReplayEvent;
use crate::snapshot::load::{LoadMachine, LoadStep};
use crate::snapshot::Snapshot;
use crate::store::{BatchVisitor, EventStore, JointVisitor, SnapshotStore};

/// How many aggregates a batch load reads per statement: a request of any size is read in
/// chunks of this many, so the rows in flight stay bounded.
pub const LOAD_MANY_CHUNK: usize = 256;

/// How many aggregates a verification worker takes at a time, read with one batch read.
pub(crate) const VERIFY_BATCH: usize = 32;

/// What a batch load gives for each aggregate: the rebuilt state, or why not.
pub(crate) type Rebuilt<A> = (Uuid, Span, Result<(A, LoadOutcome, Option<u32>)>);

/// What [`AggregateRepository::load_many_with_outcome`] gives for each aggregate.
pub type LoadResult<A> = (Uuid, Result<(AggregateRoot<A>, LoadOutcome)>);

/// The ids of a request, each once, in the order of their first occurrence.
pub(crate) fn distinct(ids: &[Uuid]) -> Vec<Uuid> {
    let mut seen = HashSet::with_capacity(ids.len());
    ids.iter().copied().filter(|id| seen.insert(*id)).collect()
}

/// A load's result as `load_many` hands it out: `None` for an aggregate without events.
pub(crate) fn found<A: Aggregate>(result: Result<(AggregateRoot<A>, LoadOutcome)>) -> Result<Option<AggregateRoot<A>>> {
    match result {
        Ok((root, _)) => Ok(Some(root)),
        Err(Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The error recorded for each aggregate of a chunk whose batch read failed (the store's
/// error is not `Clone`; its report is kept).
pub(crate) fn chunk_failed(error: &Error, len: usize) -> Error {
    Error::Store {
        backend: "batch read",
        message: format!("reading a batch of {len} aggregates failed: {}", error.report()),
        source: None,
    }
}

/// One aggregate of a batch: its machine, its span, and what the batch read did for it.
pub(crate) struct Slot<'c, A, SC, EC> {
    pub id: Uuid,
    pub span: Span,
    pub machine: LoadMachine<'c, A, SC, EC>,
    /// Whether the batch read handed this aggregate its snapshot (its joint read was done).
    asked: bool,
    /// The error a load of this aggregate fails with (an event that does not decode, a gap).
    pub error: Option<Error>,
}

/// The machines of a chunk, as the [`BatchVisitor`] of its batch read.
pub(crate) struct Batch<'c, A, SC, EC> {
    slots: Vec<Slot<'c, A, SC, EC>>,
}

impl<'c, A: Aggregate, SC: Codec, EC: Codec> Batch<'c, A, SC, EC> {
    /// A batch of `(id, span, machine)`, in request order.
    pub fn new(slots: impl IntoIterator<Item = (Uuid, Span, LoadMachine<'c, A, SC, EC>)>) -> Self {
        Self {
            slots: slots
                .into_iter()
                .map(|(id, span, machine)| Slot {
                    id,
                    span,
                    machine,
                    asked: false,
                    error: None,
                })
                .collect(),
        }
    }

    /// Whether the machines start with a joint read (a snapshot store in the event store's
    /// database): the batch read is that step, for all of them.
    pub fn reads_joint(&self) -> bool {
        self.slots
            .first()
            .is_some_and(|s| s.machine.next_step() == LoadStep::ReadJoint)
    }

    /// After the batch read (every machine was at its joint read, see
    /// [`reads_joint`](Self::reads_joint)): each machine learns whether its joint read was
    /// done (the store could read jointly and delivered this aggregate's snapshot row).
    pub fn joint_done(&mut self, supported: bool) {
        for slot in &mut self.slots {
            let _enter = slot.span.enter();
            slot.machine.joint_done(supported && slot.asked);
        }
    }

    /// The aggregates, in request order.
    pub fn into_slots(self) -> Vec<Slot<'c, A, SC, EC>> {
        self.slots
    }
}

impl<A: Aggregate, SC: Codec, EC: Codec> BatchVisitor for Batch<'_, A, SC, EC> {
    fn snapshot(&mut self, index: usize, snapshot: Option<Snapshot>) -> Result<bool> {
        let Some(slot) = self.slots.get_mut(index).filter(|s| !s.asked) else {
            return Ok(false);
        };
        slot.asked = true;
        let _enter = slot.span.enter();
        JointVisitor::snapshot(&mut slot.machine, snapshot)
    }

    fn event(&mut self, index: usize, event: &ReplayEvent<'_>) -> Result<()> {
        let Some(slot) = self.slots.get_mut(index).filter(|s| s.error.is_none()) else {
            return Ok(());
        };
        let _enter = slot.span.enter();
        if let Err(e) = slot.machine.event(event) {
            // This aggregate's load fails; the others go on.
            slot.error = Some(e);
        }
        Ok(())
    }
}

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Loads many aggregates at once: each one as [`load`](Self::load) would (the same
    /// snapshot rules, upcasts, repair snapshots, statistics and logs), with one round
    /// trip per chunk of [`LOAD_MANY_CHUNK`] aggregates for the snapshots and the events
    /// after them when the snapshot store shares the event store's database (one
    /// statement on PostgreSQL; on SQLite, an embedded database, the joint read of each).
    ///
    /// Returns each requested aggregate once, in the order of its first occurrence in
    /// `ids` (a repeated id is loaded once): `Some(root)`, or `None` for an aggregate
    /// without events. An empty request returns an empty list without a query. A
    /// repository without a snapshot store replays each aggregate on its own.
    ///
    /// ```
    /// # use eventsource::{Aggregate, Apply, DomainEvent};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    /// # struct Incremented;
    /// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    /// # #[aggregate(type = "Counter", events(Incremented))]
    /// # struct Counter { n: u64 }
    /// # impl Apply<Incremented> for Counter { fn apply(&mut self, _: &Incremented) { self.n += 1 } }
    /// use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore};
    /// use uuid::Uuid;
    ///
    /// # fn main() -> eventsource::Result<()> {
    /// let repo = AggregateRepository::<Counter, _>::new(InMemoryEventStore::new())
    ///     .with_snapshot_store(InMemorySnapshotStore::new());
    /// let (a, missing) = (Uuid::now_v7(), Uuid::now_v7());
    /// let mut root = repo.load_or_create(a)?;
    /// root.record(Incremented);
    /// repo.save(&mut root)?;
    ///
    /// let loaded = repo.load_many(&[a, missing, a])?;
    /// assert_eq!(loaded.len(), 2, "each id once, in request order");
    /// assert_eq!(loaded[0].0, a);
    /// assert_eq!(loaded[0].1.as_ref().map(|r| r.state().n), Some(1));
    /// assert_eq!(loaded[1].0, missing);
    /// assert!(loaded[1].1.is_none(), "no events: not found");
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// The first error a [`load`](Self::load) of one of the aggregates would return other
    /// than [`Error::NotFound`] ([`Error::EventDecode`], [`Error::CorruptStream`]), and
    /// [`Error::Store`] when the event store fails. Use
    /// [`load_many_with_outcome`](Self::load_many_with_outcome) for each aggregate's own
    /// result.
    pub fn load_many(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, Option<AggregateRoot<A>>)>> {
        let ids = distinct(ids);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOAD_MANY_CHUNK) {
            for (id, result) in self.load_chunk(chunk)? {
                out.push((id, found(result)?));
            }
        }
        Ok(out)
    }

    /// Like [`load_many`](Self::load_many), with each aggregate's own result, exactly what
    /// [`load_with_outcome`](Self::load_with_outcome) would return for it
    /// ([`Error::NotFound`] for an aggregate without events): one aggregate's failure
    /// leaves the others loaded.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when a batch read fails (the aggregates already loaded are lost
    /// with it; retry the request).
    pub fn load_many_with_outcome(&self, ids: &[Uuid]) -> Result<Vec<LoadResult<A>>> {
        let ids = distinct(ids);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOAD_MANY_CHUNK) {
            out.extend(self.load_chunk(chunk)?);
        }
        Ok(out)
    }

    /// Loads one chunk (each position of `ids` on its own, repeats included) with one
    /// batch read, then finishes each load as `load_with_outcome` does.
    pub(crate) fn load_chunk(&self, ids: &[Uuid]) -> Result<Vec<LoadResult<A>>> {
        let rebuilt = self.rebuild_many(ids, Rebuild::Load, core::load_span::<A>)?;
        Ok(rebuilt
            .into_iter()
            .map(|(id, span, result)| {
                let _enter = span.enter();
                let result = result.and_then(|(state, outcome, schema)| {
                    let repair = core::repair_due::<A>(&self.config, self.snapshots.is_some(), &outcome, schema)
                        .then(|| self.take_snapshot(id, outcome.version, &state));
                    core::finish_load(&span, &self.counters, id, state, outcome, repair)
                });
                (id, result)
            })
            .collect())
    }

    /// Rebuilds the states of `ids` (`how`: a load, or verification's load through the
    /// snapshot), the joint read of all of them in one batch read, the rest of each load
    /// by the single load's `drive`.
    pub(crate) fn rebuild_many(&self, ids: &[Uuid], how: Rebuild, span: fn(Uuid) -> Span) -> Result<Vec<Rebuilt<A>>> {
        let mut batch = Batch::new(ids.iter().map(|&id| (id, span(id), self.load_machine(id, how))));
        if batch.reads_joint() {
            let supported = self.events.read_many_with_snapshot(ids, A::TYPE, &mut batch)?;
            batch.joint_done(supported);
        }
        Ok(batch
            .into_slots()
            .into_iter()
            .map(|slot| {
                let result = {
                    let _enter = slot.span.enter();
                    match slot.error {
                        Some(e) => Err(e),
                        None => self.drive(slot.id, slot.machine, how),
                    }
                };
                (slot.id, slot.span, result)
            })
            .collect())
    }
}
