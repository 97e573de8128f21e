//! The storage traits every backend implements, and the backends.
//!
//! An [`EventStore`] keeps append-only streams of events, one per aggregate, numbered
//! 1, 2, 3, ... A [`SnapshotStore`] keeps at most one snapshot per aggregate. Both deal in
//! encoded bytes; each store carries the [`Codec`] its bytes are in.
//!
//! Arguments name an aggregate as `(aggregate_id, aggregate_type)` everywhere, in the
//! reference guide's order.

pub(crate) mod batch;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) mod group;
pub mod memory;
pub mod monitor;
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub mod postgres;
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub mod sqlite;

use std::sync::Arc;

use uuid::Uuid;

use crate::codec::Codec;
use crate::error::Result;
use crate::event::{EventRecord, NewEvent, ReplayEvent};
use crate::snapshot::{Snapshot, SnapshotWrite};

/// Identifies the database a store works on. When an event store and a snapshot store
/// report the same location, the repository loads the snapshot and the events after it in
/// one query ([`EventStore::read_with_snapshot`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StoreLocation(pub String);

/// Receives the results of a joint snapshot-and-tail read.
///
/// The events that follow the snapshot are those from the snapshot's own version on: the
/// first one, at the snapshot's version, proves the stream reaches the snapshot (rule 5)
/// and is not applied again. With no snapshot stored, every event of the stream follows
/// (the repository then replays from this one query).
pub trait JointVisitor {
    /// Called once, first, with the stored snapshot (if any). Returns whether the read
    /// should go on with the events.
    ///
    /// # Errors
    ///
    /// Whatever the caller's visitor returns; the read stops at its first error.
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> Result<bool>;
    /// Called for each event from the snapshot's version on (from version 1 without a
    /// snapshot), in order. The first, at the snapshot's own version, is not applied
    /// again, and a store may hand it with only its version (an empty `event_type` and
    /// `payload`, `event_version` 0): reading its row would cost a load for nothing.
    ///
    /// # Errors
    ///
    /// Whatever the caller's visitor returns; the read stops at its first error.
    fn event(&mut self, event: &ReplayEvent<'_>) -> Result<()>;
}

/// Receives the results of a batch joint read ([`EventStore::read_many_with_snapshot`]):
/// for each requested aggregate, by its position `index` in the request, what a
/// [`JointVisitor`] receives for one.
///
/// For each index, `snapshot` is called at most once, before that aggregate's events; an
/// index that never gets a `snapshot` call had its joint read fail (an unreadable snapshot
/// row, or a store that cannot read jointly): the repository then reads that aggregate on
/// its own. The events of an aggregate whose `snapshot` answered `false` are not delivered.
/// Aggregates come one after the other (all the rows of one, then the next), in request
/// order on the stores of this crate.
pub trait BatchVisitor {
    /// The snapshot (if any) of the aggregate at `index`; returns whether its events are
    /// wanted.
    ///
    /// # Errors
    ///
    /// Whatever the caller's visitor returns; the read stops at its first error.
    fn snapshot(&mut self, index: usize, snapshot: Option<Snapshot>) -> Result<bool>;
    /// One event of the aggregate at `index`, from the snapshot's version on (from version
    /// 1 without a snapshot), in order.
    ///
    /// # Errors
    ///
    /// Whatever the caller's visitor returns; the read stops at its first error.
    fn event(&mut self, index: usize, event: &ReplayEvent<'_>) -> Result<()>;
}

/// An append-only store of event streams.
pub trait EventStore: Send + Sync + 'static {
    /// The codec of the payloads this store holds.
    type Codec: Codec;

    /// The codec of the payloads this store holds.
    fn codec(&self) -> &Self::Codec;

    /// Appends `events` to the stream atomically, numbered from `expected_version + 1`.
    /// Returns the new stream version.
    ///
    /// Fails with [`Error::Conflict`](crate::Error::Conflict) when the stream is not at
    /// `expected_version` and [`Error::DuplicateEvent`](crate::Error::DuplicateEvent) when
    /// an event id exists; in both cases nothing is written.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`](crate::Error::Conflict) when the stream is not at `expected_version`,
    /// [`Error::DuplicateEvent`](crate::Error::DuplicateEvent) when an event id is already stored (nothing is written in
    /// either case); [`Error::Store`](crate::Error::Store) when the backend fails.
    fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64>;

    /// Visits the stream's events with `version > after_version`, in order, without holding
    /// the whole stream in memory. An error from `visit` stops the read and is returned.
    ///
    /// # Errors
    ///
    /// The visitor's error, which stops the read; [`Error::Store`](crate::Error::Store) or [`Error::MalformedRow`](crate::Error::MalformedRow)
    /// when the backend fails.
    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> Result<()>,
    ) -> Result<()>;

    /// Like [`read_stream`](Self::read_stream), handing out only what a replay needs.
    /// Stores override it to read only those columns; the default reads whole records.
    ///
    /// # Errors
    ///
    /// The visitor's error, which stops the read; [`Error::Store`](crate::Error::Store) or [`Error::MalformedRow`](crate::Error::MalformedRow)
    /// when the backend fails.
    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&ReplayEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        self.read_stream(aggregate_id, aggregate_type, after_version, &mut |r| visit(&r.replay()))
    }

    /// The stream's last version (0 for a stream with no events).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails.
    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64>;

    /// Aggregates of a type with more than `min_events` events, most events first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails.
    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>>;

    /// The database this store works on, when a snapshot store can share it.
    fn location(&self) -> Option<StoreLocation> {
        None
    }

    /// Reads the aggregate's snapshot and the events after it in one query, when the
    /// snapshots table lives in this store's database. Returns `Ok(false)` when the store
    /// cannot (the repository then asks the snapshot store and reads the stream itself).
    ///
    /// # Errors
    ///
    /// The visitor's error, which stops the read; [`Error::Store`](crate::Error::Store) when the backend fails.
    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn JointVisitor,
    ) -> Result<bool> {
        let _ = (aggregate_id, aggregate_type, visitor);
        Ok(false)
    }

    /// Reads many aggregates' snapshots and the events after them (what
    /// [`read_with_snapshot`](Self::read_with_snapshot) reads for one), for a batch
    /// load. The PostgreSQL stores answer with one statement for the whole batch; the
    /// default calls `read_with_snapshot` once per aggregate (the SQLite stores keep it: on
    /// an embedded database there is no round trip to save). Returns whether any of the
    /// joint reads was done (`false`: the store cannot read jointly at all, and the
    /// repository reads each aggregate on its own). `aggregate_ids` may repeat an id: each
    /// position is read and visited on its own.
    ///
    /// # Errors
    ///
    /// The visitor's error, which stops the read; [`Error::Store`](crate::Error::Store) or
    /// [`Error::MalformedRow`](crate::Error::MalformedRow) when the backend fails.
    fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn BatchVisitor,
    ) -> Result<bool> {
        let mut any = false;
        for (index, &id) in aggregate_ids.iter().enumerate() {
            let mut one = batch::Nth::new(&mut *visitor, index);
            any |= self.read_with_snapshot(id, aggregate_type, &mut one)?;
        }
        Ok(any)
    }
}

/// A store of snapshots, at most one per aggregate.
pub trait SnapshotStore: Send + Sync + 'static {
    /// The codec of the states this store holds.
    type Codec: Codec;

    /// The codec of the states this store holds.
    fn codec(&self) -> &Self::Codec;

    /// Stores a snapshot unless one at least as new is stored (a higher schema version, or
    /// the same schema version and a version not lower): writes never go backwards.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails; [`Error::OutOfRange`](crate::Error::OutOfRange) for a version the store
    /// cannot hold.
    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite>;

    /// Stores several snapshots, each under the same rule as
    /// [`save_snapshot`](Self::save_snapshot); the outcomes are in the same order. SQL
    /// stores write the batch in one transaction (one commit for all, all or nothing); the
    /// default writes one at a time and stops at the first error.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails (a batch is all or nothing on the SQL stores).
    fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<Vec<SnapshotWrite>> {
        snapshots.iter().map(|s| self.save_snapshot(s)).collect()
    }

    /// The aggregate's snapshot, if any.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) or [`Error::MalformedRow`](crate::Error::MalformedRow) when the backend fails.
    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>>;

    /// Deletes the aggregate's snapshot; returns whether there was one.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails.
    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool>;

    /// Deletes the snapshots of a type: all of them with `None`, those with
    /// `schema_version < n` (strictly) with `Some(n)`. Returns how many were deleted.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails.
    fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64>;

    /// Whether the aggregate has a snapshot.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the backend fails.
    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        Ok(self.get_snapshot(aggregate_id, aggregate_type)?.is_some())
    }

    /// The database this store works on (see [`EventStore::location`]).
    fn location(&self) -> Option<StoreLocation> {
        None
    }
}

impl<T: EventStore> EventStore for Arc<T> {
    type Codec = T::Codec;

    fn codec(&self) -> &Self::Codec {
        (**self).codec()
    }

    fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64> {
        (**self).append(aggregate_id, aggregate_type, expected_version, events)
    }

    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        (**self).read_stream(aggregate_id, aggregate_type, after_version, visit)
    }

    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&ReplayEvent<'_>) -> Result<()>,
    ) -> Result<()> {
        (**self).replay_stream(aggregate_id, aggregate_type, after_version, visit)
    }

    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        (**self).stream_version(aggregate_id, aggregate_type)
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        (**self).aggregates_by_event_count(aggregate_type, min_events)
    }

    fn location(&self) -> Option<StoreLocation> {
        (**self).location()
    }

    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn JointVisitor,
    ) -> Result<bool> {
        (**self).read_with_snapshot(aggregate_id, aggregate_type, visitor)
    }

    fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn BatchVisitor,
    ) -> Result<bool> {
        (**self).read_many_with_snapshot(aggregate_ids, aggregate_type, visitor)
    }
}

impl<T: SnapshotStore> SnapshotStore for Arc<T> {
    type Codec = T::Codec;

    fn codec(&self) -> &Self::Codec {
        (**self).codec()
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        (**self).save_snapshot(snapshot)
    }

    fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<Vec<SnapshotWrite>> {
        (**self).save_snapshots(snapshots)
    }

    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        (**self).get_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        (**self).delete_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64> {
        (**self).delete_snapshots_by_type(aggregate_type, schema_version_below)
    }

    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        (**self).snapshot_exists(aggregate_id, aggregate_type)
    }

    fn location(&self) -> Option<StoreLocation> {
        (**self).location()
    }
}

/// The snapshot store of a repository without snapshots: holds nothing, accepts nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoSnapshotStore;

impl SnapshotStore for NoSnapshotStore {
    type Codec = crate::codec::JsonCodec;

    fn codec(&self) -> &Self::Codec {
        &crate::codec::JsonCodec
    }

    fn save_snapshot(&self, _: &Snapshot) -> Result<SnapshotWrite> {
        Err(crate::Error::NoSnapshotStore)
    }

    fn get_snapshot(&self, _: Uuid, _: &str) -> Result<Option<Snapshot>> {
        Ok(None)
    }

    fn delete_snapshot(&self, _: Uuid, _: &str) -> Result<bool> {
        Ok(false)
    }

    fn delete_snapshots_by_type(&self, _: &str, _: Option<u32>) -> Result<u64> {
        Ok(0)
    }
}
