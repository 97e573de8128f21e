//! Batch loads on the async repository: the twin of the sync shell's `many` module, with
//! the same [`Batch`] visitor and helpers; only the I/O is awaited.

use tracing::{Instrument, Span};
use uuid::Uuid;

use super::AggregateRepository;
use crate::aggregate::{Aggregate, AggregateRoot};
use crate::error::Result;
use crate::repository::core::{self, Rebuild};
use crate::repository::many::{distinct, found, Batch, LoadResult, Rebuilt, LOAD_MANY_CHUNK};
use crate::tokio::store::{EventStore, SnapshotStore};

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Loads many aggregates at once, each one as [`load`](Self::load) would (see
    /// [`crate::AggregateRepository::load_many`]): one round trip per chunk of
    /// [`LOAD_MANY_CHUNK`] aggregates for the snapshots and the events after them when the
    /// snapshot store shares the event store's database. Returns each requested aggregate
    /// once, in the order of its first occurrence in `ids`, `None` for one without events.
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
    /// use eventsource::tokio::AggregateRepository;
    /// use eventsource::{InMemoryEventStore, InMemorySnapshotStore};
    /// use uuid::Uuid;
    ///
    /// # fn main() -> eventsource::Result<()> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    /// # runtime.block_on(async {
    /// let repo = AggregateRepository::<Counter, _>::new(InMemoryEventStore::new())
    ///     .with_snapshot_store(InMemorySnapshotStore::new());
    /// let (a, missing) = (Uuid::now_v7(), Uuid::now_v7());
    /// let mut root = repo.load_or_create(a).await?;
    /// root.record(Incremented);
    /// repo.save(&mut root).await?;
    ///
    /// let loaded = repo.load_many(&[a, missing]).await?;
    /// assert_eq!(loaded[0].1.as_ref().map(|r| r.state().n), Some(1));
    /// assert!(loaded[1].1.is_none());
    /// # Ok(()) })
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// The first error a [`load`](Self::load) of one of the aggregates would return other
    /// than [`Error::NotFound`](crate::Error::NotFound), and
    /// [`Error::Store`](crate::Error::Store) when the event store fails.
    pub async fn load_many(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, Option<AggregateRoot<A>>)>> {
        let ids = distinct(ids);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOAD_MANY_CHUNK) {
            for (id, result) in self.load_chunk(chunk).await? {
                out.push((id, found(result)?));
            }
        }
        Ok(out)
    }

    /// Like [`load_many`](Self::load_many), with each aggregate's own result (see
    /// [`crate::AggregateRepository::load_many_with_outcome`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when a batch read fails.
    pub async fn load_many_with_outcome(&self, ids: &[Uuid]) -> Result<Vec<LoadResult<A>>> {
        let ids = distinct(ids);
        let mut out = Vec::with_capacity(ids.len());
        for chunk in ids.chunks(LOAD_MANY_CHUNK) {
            out.extend(self.load_chunk(chunk).await?);
        }
        Ok(out)
    }

    /// Loads one chunk with one batch read, then finishes each load as
    /// `load_with_outcome` does.
    pub(crate) async fn load_chunk(&self, ids: &[Uuid]) -> Result<Vec<LoadResult<A>>> {
        let rebuilt = self.rebuild_many(ids, Rebuild::Load, core::load_span::<A>).await?;
        let mut out = Vec::with_capacity(rebuilt.len());
        for (id, span, result) in rebuilt {
            let finished = async {
                let (state, outcome, schema) = result?;
                let repair = if core::repair_due::<A>(&self.config, self.snapshots.is_some(), &outcome, schema) {
                    Some(self.take_snapshot(id, outcome.version, &state).await)
                } else {
                    None
                };
                core::finish_load(&Span::current(), &self.counters, id, state, outcome, repair)
            }
            .instrument(span)
            .await;
            out.push((id, finished));
        }
        Ok(out)
    }

    /// Rebuilds the states of `ids` with one batch read for their joint reads, the rest of
    /// each load by the single load's `drive`.
    pub(crate) async fn rebuild_many(
        &self,
        ids: &[Uuid],
        how: Rebuild,
        span: fn(Uuid) -> Span,
    ) -> Result<Vec<Rebuilt<A>>> {
        let mut batch = Batch::new(ids.iter().map(|&id| (id, span(id), self.load_machine(id, how))));
        if batch.reads_joint() {
            let supported = self.events.read_many_with_snapshot(ids, A::TYPE, &mut batch).await?;
            batch.joint_done(supported);
        }
        let mut out = Vec::with_capacity(ids.len());
        for slot in batch.into_slots() {
            let result = match slot.error {
                Some(e) => Err(e),
                None => {
                    self.drive(slot.id, slot.machine, how)
                        .instrument(slot.span.clone())
                        .await
                }
            };
            out.push((slot.id, slot.span, result));
        }
        Ok(out)
    }
}
