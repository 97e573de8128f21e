//! Sync stores that never block (in memory) used directly by the async API.

use std::future::Future;

use uuid::Uuid;

use super::store::{EventStore, SendBatchVisitor, SendJointVisitor, SnapshotStore, Visit, VisitReplay};
use crate::codec::Codec;
use crate::error::Result;
use crate::event::NewEvent;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::memory::{InMemoryEventStore, InMemorySnapshotStore};
use crate::store::{self, NoSnapshotStore, StoreLocation};

/// A sync store whose calls never block on I/O (they only take short in-memory locks), so
/// the async API may call it in place. Implemented by the in-memory stores and
/// [`NoSnapshotStore`]; wrap stores that do I/O in [`super::Blocking`] instead.
pub trait NonBlocking {}

impl<C: Codec> NonBlocking for InMemoryEventStore<C> {}
impl<C: Codec> NonBlocking for InMemorySnapshotStore<C> {}
impl NonBlocking for NoSnapshotStore {}

impl<S: store::EventStore + NonBlocking> EventStore for S {
    type Codec = <S as store::EventStore>::Codec;

    fn codec(&self) -> &Self::Codec {
        store::EventStore::codec(self)
    }

    fn append(
        &self,
        id: Uuid,
        ty: &str,
        expected: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<u64>> + Send {
        std::future::ready(store::EventStore::append(self, id, ty, expected, events))
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut Visit<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(store::EventStore::read_stream(self, id, ty, after, &mut |r| visit(r)))
    }

    fn replay_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut VisitReplay<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        std::future::ready(store::EventStore::replay_stream(self, id, ty, after, &mut |r| visit(r)))
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<u64>> + Send {
        std::future::ready(store::EventStore::stream_version(self, id, ty))
    }

    fn aggregates_by_event_count(
        &self,
        ty: &str,
        min_events: u64,
    ) -> impl Future<Output = Result<Vec<(Uuid, u64)>>> + Send {
        std::future::ready(store::EventStore::aggregates_by_event_count(self, ty, min_events))
    }

    fn location(&self) -> Option<StoreLocation> {
        store::EventStore::location(self)
    }

    fn read_with_snapshot(
        &self,
        id: Uuid,
        ty: &str,
        visitor: &mut dyn SendJointVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(store::EventStore::read_with_snapshot(self, id, ty, visitor))
    }

    fn read_many_with_snapshot(
        &self,
        ids: &[Uuid],
        ty: &str,
        visitor: &mut dyn SendBatchVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(store::EventStore::read_many_with_snapshot(self, ids, ty, visitor))
    }
}

impl<S: store::SnapshotStore + NonBlocking> SnapshotStore for S {
    type Codec = <S as store::SnapshotStore>::Codec;

    fn codec(&self) -> &Self::Codec {
        store::SnapshotStore::codec(self)
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> impl Future<Output = Result<SnapshotWrite>> + Send {
        std::future::ready(store::SnapshotStore::save_snapshot(self, snapshot))
    }

    fn save_snapshots(&self, snapshots: &[Snapshot]) -> impl Future<Output = Result<Vec<SnapshotWrite>>> + Send {
        std::future::ready(store::SnapshotStore::save_snapshots(self, snapshots))
    }

    fn get_snapshot(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<Option<Snapshot>>> + Send {
        std::future::ready(store::SnapshotStore::get_snapshot(self, id, ty))
    }

    fn delete_snapshot(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(store::SnapshotStore::delete_snapshot(self, id, ty))
    }

    fn delete_snapshots_by_type(&self, ty: &str, below: Option<u32>) -> impl Future<Output = Result<u64>> + Send {
        std::future::ready(store::SnapshotStore::delete_snapshots_by_type(self, ty, below))
    }

    fn snapshot_exists(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<bool>> + Send {
        std::future::ready(store::SnapshotStore::snapshot_exists(self, id, ty))
    }

    fn location(&self) -> Option<StoreLocation> {
        store::SnapshotStore::location(self)
    }
}
