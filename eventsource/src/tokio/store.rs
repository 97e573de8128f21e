//! The async storage traits: the sync [`crate::store`] traits, name for name, with
//! methods returning `Send` futures.

use std::future::Future;
use std::sync::Arc;

use uuid::Uuid;

use crate::codec::Codec;
use crate::error::Result;
use crate::event::{EventRecord, NewEvent, ReplayEvent};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{BatchVisitor, JointVisitor, StoreLocation};

/// A visitor of stored events that can cross an `.await`.
pub type Visit<'v> = dyn FnMut(&EventRecord<'_>) -> Result<()> + Send + 'v;

/// A replay visitor that can cross an `.await`.
pub type VisitReplay<'v> = dyn FnMut(&ReplayEvent<'_>) -> Result<()> + Send + 'v;

/// A [`JointVisitor`] that can cross an `.await`.
pub trait SendJointVisitor: JointVisitor + Send {}
impl<T: JointVisitor + Send> SendJointVisitor for T {}

/// A [`BatchVisitor`] that can cross an `.await`.
pub trait SendBatchVisitor: BatchVisitor + Send {}
impl<T: BatchVisitor + Send> SendBatchVisitor for T {}

/// Async twin of [`crate::store::EventStore`]; the same contract.
pub trait EventStore: Send + Sync + 'static {
    /// The codec of the payloads this store holds.
    type Codec: Codec;

    /// The codec of the payloads this store holds.
    fn codec(&self) -> &Self::Codec;

    /// See [`crate::store::EventStore::append`].
    fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<u64>> + Send;

    /// See [`crate::store::EventStore::read_stream`].
    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut Visit<'_>,
    ) -> impl Future<Output = Result<()>> + Send;

    /// See [`crate::store::EventStore::replay_stream`]; the default reads whole records.
    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut VisitReplay<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        async move {
            self.read_stream(aggregate_id, aggregate_type, after_version, &mut |r| visit(&r.replay()))
                .await
        }
    }

    /// See [`crate::store::EventStore::stream_version`].
    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<u64>> + Send;

    /// See [`crate::store::EventStore::aggregates_by_event_count`].
    fn aggregates_by_event_count(
        &self,
        aggregate_type: &str,
        min_events: u64,
    ) -> impl Future<Output = Result<Vec<(Uuid, u64)>>> + Send;

    /// See [`crate::store::EventStore::location`].
    fn location(&self) -> Option<StoreLocation> {
        None
    }

    /// See [`crate::store::EventStore::read_with_snapshot`].
    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn SendJointVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        let _ = (aggregate_id, aggregate_type, visitor);
        async { Ok(false) }
    }

    /// See [`crate::store::EventStore::read_many_with_snapshot`]; the default calls
    /// [`read_with_snapshot`](Self::read_with_snapshot) once per aggregate.
    fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn SendBatchVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        async move {
            let mut any = false;
            for (index, &id) in aggregate_ids.iter().enumerate() {
                let mut one = crate::store::batch::Nth::new(&mut *visitor, index);
                any |= self.read_with_snapshot(id, aggregate_type, &mut one).await?;
            }
            Ok(any)
        }
    }
}

/// Async twin of [`crate::store::SnapshotStore`]; the same contract.
pub trait SnapshotStore: Send + Sync + 'static {
    /// The codec of the states this store holds.
    type Codec: Codec;

    /// The codec of the states this store holds.
    fn codec(&self) -> &Self::Codec;

    /// See [`crate::store::SnapshotStore::save_snapshot`].
    fn save_snapshot(&self, snapshot: &Snapshot) -> impl Future<Output = Result<SnapshotWrite>> + Send;

    /// See [`crate::store::SnapshotStore::save_snapshots`]; the default writes one at a time.
    fn save_snapshots(&self, snapshots: &[Snapshot]) -> impl Future<Output = Result<Vec<SnapshotWrite>>> + Send {
        async move {
            let mut outcomes = Vec::with_capacity(snapshots.len());
            for s in snapshots {
                outcomes.push(self.save_snapshot(s).await?);
            }
            Ok(outcomes)
        }
    }

    /// See [`crate::store::SnapshotStore::get_snapshot`].
    fn get_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>>> + Send;

    /// See [`crate::store::SnapshotStore::delete_snapshot`].
    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<bool>> + Send;

    /// See [`crate::store::SnapshotStore::delete_snapshots_by_type`].
    fn delete_snapshots_by_type(
        &self,
        aggregate_type: &str,
        schema_version_below: Option<u32>,
    ) -> impl Future<Output = Result<u64>> + Send;

    /// See [`crate::store::SnapshotStore::snapshot_exists`].
    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<bool>> + Send {
        async move { Ok(self.get_snapshot(aggregate_id, aggregate_type).await?.is_some()) }
    }

    /// See [`crate::store::SnapshotStore::location`].
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
    ) -> impl Future<Output = Result<u64>> + Send {
        (**self).append(aggregate_id, aggregate_type, expected_version, events)
    }

    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut Visit<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).read_stream(aggregate_id, aggregate_type, after_version, visit)
    }

    fn replay_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut VisitReplay<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        (**self).replay_stream(aggregate_id, aggregate_type, after_version, visit)
    }

    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<u64>> + Send {
        (**self).stream_version(aggregate_id, aggregate_type)
    }

    fn aggregates_by_event_count(
        &self,
        aggregate_type: &str,
        min_events: u64,
    ) -> impl Future<Output = Result<Vec<(Uuid, u64)>>> + Send {
        (**self).aggregates_by_event_count(aggregate_type, min_events)
    }

    fn location(&self) -> Option<StoreLocation> {
        (**self).location()
    }

    fn read_with_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        visitor: &mut dyn SendJointVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).read_with_snapshot(aggregate_id, aggregate_type, visitor)
    }

    fn read_many_with_snapshot(
        &self,
        aggregate_ids: &[Uuid],
        aggregate_type: &str,
        visitor: &mut dyn SendBatchVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        (**self).read_many_with_snapshot(aggregate_ids, aggregate_type, visitor)
    }
}

impl<T: SnapshotStore> SnapshotStore for Arc<T> {
    type Codec = T::Codec;

    fn codec(&self) -> &Self::Codec {
        (**self).codec()
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> impl Future<Output = Result<SnapshotWrite>> + Send {
        (**self).save_snapshot(snapshot)
    }

    fn save_snapshots(&self, snapshots: &[Snapshot]) -> impl Future<Output = Result<Vec<SnapshotWrite>>> + Send {
        (**self).save_snapshots(snapshots)
    }

    fn get_snapshot(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
    ) -> impl Future<Output = Result<Option<Snapshot>>> + Send {
        (**self).get_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<bool>> + Send {
        (**self).delete_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshots_by_type(
        &self,
        aggregate_type: &str,
        schema_version_below: Option<u32>,
    ) -> impl Future<Output = Result<u64>> + Send {
        (**self).delete_snapshots_by_type(aggregate_type, schema_version_below)
    }

    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> impl Future<Output = Result<bool>> + Send {
        (**self).snapshot_exists(aggregate_id, aggregate_type)
    }

    fn location(&self) -> Option<StoreLocation> {
        (**self).location()
    }
}
