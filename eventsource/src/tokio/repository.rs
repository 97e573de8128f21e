//! The async repository: [`crate::AggregateRepository`] name for name, over the async
//! store traits. Both shells drive the same load machine and call the same policy and
//! core functions; only the I/O differs.

mod many;

use std::marker::PhantomData;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tracing::Instrument;
use uuid::Uuid;

use super::background::{caught, Background};
use super::store::{EventStore, SnapshotStore};
use crate::aggregate::{Aggregate, AggregateRoot};
use crate::command::{AfterConflict, Attempts, CommandError, CommandOutcome, RetryPolicy, Start, Turns};
use crate::error::{Error, Result};
use crate::repository::background::written_caught;
use crate::repository::core::{self, Config, Counters, Rebuild, Tally};
use crate::repository::{
    LoadOutcome, PrepopulateReport, Progress, SaveOutcome, SnapshotAction, SnapshotStats, Verification, VerifyReport,
};
use crate::snapshot::load::{LoadMachine, LoadStep};
use crate::snapshot::policy::{self, SnapshotMode};
use crate::snapshot::SnapshotWrite;
use crate::store::NoSnapshotStore;

/// Loads and saves aggregates of type `A` through async stores; the async twin of
/// [`crate::AggregateRepository`], with the same rules.
///
/// In [`SnapshotMode::Background`], `save` returns without waiting for the snapshot write:
/// the state is encoded at save time and pushed to a bounded queue (one pending snapshot
/// per aggregate, the newest) drained by a worker thread with its own small tokio runtime,
/// so the worker lives as long as the repository, whichever runtime `save` is called from
/// (a runtime that ends takes no snapshot with it); what the queue cannot take is dropped
/// and counted. `flush().await` waits for the queue, `shutdown(timeout).await` drains it
/// within a timeout. Dropping the repository lets the worker finish what is queued while
/// the process runs.
///
/// ```
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// #
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct ItemAdded { sku: String, qty: u32 }
/// #
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Cart", schema_version = 1, events(ItemAdded))]
/// # struct Cart { items: u32 }
/// #
/// # impl Apply<ItemAdded> for Cart {
/// #     fn apply(&mut self, e: &ItemAdded) { self.items += e.qty }
/// # }
/// use eventsource::tokio::AggregateRepository;
/// use eventsource::{InMemoryEventStore, InMemorySnapshotStore, SnapshotMode, SnapshotUse};
///
/// # fn main() -> eventsource::Result<()> {
/// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
/// # runtime.block_on(async {
/// let repo = AggregateRepository::<Cart, _>::new(InMemoryEventStore::new())
///     .with_snapshot_store(InMemorySnapshotStore::new())
///     .snapshot_threshold(2)?
///     .snapshot_mode(SnapshotMode::Background);
/// let id = uuid::Uuid::now_v7();
/// let mut cart = repo.load_or_create(id).await?;
/// cart.record(ItemAdded { sku: "A-1".into(), qty: 1 });
/// cart.record(ItemAdded { sku: "B-2".into(), qty: 2 });
/// repo.save(&mut cart).await?;          // returns before the snapshot is written
/// repo.flush().await?;                  // waits for the background write
/// let (cart, outcome) = repo.load_with_outcome(id).await?;
/// assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 2 });
/// assert_eq!(cart.state().items, 3);
/// # Ok(()) })
/// # }
/// ```
///
/// SQLite stores run on tokio's blocking pool through [`Blocking`](crate::tokio::Blocking)
/// (`AggregateRepository::new(Blocking::new(SqliteEventStore::open("app.db")?))`);
/// PostgreSQL has its own async stores (`AsyncPostgresEventStore`, feature `postgres`).
pub struct AggregateRepository<A: Aggregate, ES: EventStore, SS: SnapshotStore = NoSnapshotStore> {
    events: ES,
    snapshots: Option<Arc<SS>>,
    config: Config,
    counters: Arc<Counters>,
    background: OnceLock<Background>,
    retry: RetryPolicy,
    turns: Option<Turns<::tokio::sync::Mutex<()>>>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A, ES, SS> std::fmt::Debug for AggregateRepository<A, ES, SS>
where
    A: Aggregate,
    ES: EventStore + std::fmt::Debug,
    SS: SnapshotStore + std::fmt::Debug,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AggregateRepository")
            .field("aggregate_type", &A::TYPE)
            .field("events", &self.events)
            .field("snapshots", &self.snapshots)
            .field("config", &self.config)
            .field("stats", &self.counters.snapshot())
            .finish_non_exhaustive()
    }
}

impl<A: Aggregate, ES: EventStore> AggregateRepository<A, ES, NoSnapshotStore> {
    /// A repository without snapshots: every load replays the whole stream.
    pub fn new(events: ES) -> Self {
        Self {
            events,
            snapshots: None,
            config: Config::default(),
            counters: Arc::new(Counters::new(A::TYPE)),
            background: OnceLock::new(),
            retry: RetryPolicy::default(),
            turns: Some(Turns::default()),
            _aggregate: PhantomData,
        }
    }
}

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Adds (or replaces) the snapshot store.
    pub fn with_snapshot_store<S2: SnapshotStore>(self, store: S2) -> AggregateRepository<A, ES, S2> {
        AggregateRepository {
            events: self.events,
            snapshots: Some(Arc::new(store)),
            config: self.config,
            counters: self.counters,
            background: OnceLock::new(),
            retry: self.retry,
            turns: self.turns,
            _aggregate: PhantomData,
        }
    }

    core::settings_methods!();

    /// Whether the aggregate has any event.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the event store fails.
    pub async fn exists(&self, id: Uuid) -> Result<bool> {
        Ok(self.events.stream_version(id, A::TYPE).await? > 0)
    }

    /// Loads an aggregate; [`Error::NotFound`] when it has no events.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the aggregate has no events; [`Error::EventDecode`] when a
    /// stored event does not decode (the load fails rather than build a wrong state);
    /// [`Error::CorruptStream`] when the stream has a gap; [`Error::Store`] when the event
    /// store fails. A snapshot failure is never an error: the load replays the stream.
    pub async fn load(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        self.load_with_outcome(id).await.map(|(root, _)| root)
    }

    /// Loads an aggregate, or returns a new one at version 0 when it has no events.
    ///
    /// # Errors
    ///
    /// [`Error::EventDecode`] when a stored event does not decode (the load fails rather than
    /// build a wrong state); [`Error::CorruptStream`] when the stream has a gap;
    /// [`Error::Store`] when the event store fails. A snapshot failure is never an error: the
    /// load replays the stream.
    pub async fn load_or_create(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        match self.load(id).await {
            Err(Error::NotFound { .. }) => Ok(AggregateRoot::new(id)),
            other => other,
        }
    }

    /// Loads an aggregate and reports which path the load took.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the aggregate has no events; [`Error::EventDecode`] when a
    /// stored event does not decode (the load fails rather than build a wrong state);
    /// [`Error::CorruptStream`] when the stream has a gap; [`Error::Store`] when the event
    /// store fails. A snapshot failure is never an error: the load replays the stream.
    pub async fn load_with_outcome(&self, id: Uuid) -> Result<(AggregateRoot<A>, LoadOutcome)> {
        let _timed = core::Timed::load(A::TYPE);
        let span = core::load_span::<A>(id);
        async {
            let (state, outcome, schema) = self.rebuild(id, Rebuild::Load).await?;
            let repair = if core::repair_due::<A>(&self.config, self.snapshots.is_some(), &outcome, schema) {
                Some(self.take_snapshot(id, outcome.version, &state).await)
            } else {
                None
            };
            core::finish_load(&tracing::Span::current(), &self.counters, id, state, outcome, repair)
        }
        .instrument(span)
        .await
    }

    /// Rebuilds the state by driving a [`LoadMachine`]; `how` says which load (see the
    /// sync shell).
    async fn rebuild(&self, id: Uuid, how: Rebuild) -> Result<(A, LoadOutcome, Option<u32>)> {
        self.drive(id, self.load_machine(id, how), how).await
    }

    /// A fresh [`LoadMachine`] for `id`, for the load `how`.
    fn load_machine(&self, id: Uuid, how: Rebuild) -> LoadMachine<'_, A, SS::Codec, ES::Codec> {
        let snapshots = self.snapshots.as_deref().filter(|_| how.uses_snapshot());
        let joint = core::joint(snapshots.and_then(SnapshotStore::location), self.events.location());
        LoadMachine::new(id, self.events.codec(), snapshots.map(SnapshotStore::codec), joint)
    }

    /// Performs the I/O a [`LoadMachine`] asks for until it is done (see the sync shell),
    /// then finishes it.
    async fn drive(
        &self,
        id: Uuid,
        mut m: LoadMachine<'_, A, SS::Codec, ES::Codec>,
        how: Rebuild,
    ) -> Result<(A, LoadOutcome, Option<u32>)> {
        let snapshots = self.snapshots.as_deref().filter(|_| how.uses_snapshot());
        let until = how.until();
        loop {
            match m.next_step() {
                LoadStep::ReadJoint => {
                    let supported = self.events.read_with_snapshot(id, A::TYPE, &mut m).await?;
                    m.joint_done(supported);
                }
                LoadStep::GetSnapshot => {
                    let read = match snapshots {
                        Some(s) => s.get_snapshot(id, A::TYPE).await,
                        None => Ok(None),
                    };
                    m.snapshot_read(how.snapshot_read(read)?);
                }
                LoadStep::ReadEvents { after } => {
                    self.events
                        .replay_stream(id, A::TYPE, after, &mut |r| {
                            if r.version > until {
                                Ok(())
                            } else {
                                m.event(r)
                            }
                        })
                        .await?;
                    m.events_done();
                }
                LoadStep::DeleteSnapshot => {
                    let result = match snapshots {
                        Some(s) if how.has_effects() => s.delete_snapshot(id, A::TYPE).await,
                        _ => Ok(false),
                    };
                    m.snapshot_deleted(result);
                }
                LoadStep::Done => break,
            }
        }
        let (state, outcome, schema) = m.finish();
        if how.has_effects() {
            self.counters.record_load(&outcome);
        }
        Ok((state, outcome, schema))
    }

    /// Appends the aggregate's recorded events with optimistic concurrency, then takes a
    /// snapshot if the save crossed a threshold multiple (see [`crate::AggregateRepository::save`]).
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the stream moved since the aggregate was loaded (nothing was
    /// written: reload and retry the command); [`Error::DuplicateEvent`] when an event id is
    /// already stored by another batch; [`Error::EventEncode`] when an event does not encode
    /// (nothing was written); [`Error::Store`] when the event store fails, which may leave the
    /// outcome unknown: retry the save as it is. A snapshot failure is never an error.
    pub async fn save(&self, root: &mut AggregateRoot<A>) -> Result<SaveOutcome> {
        let before = root.committed_version();
        if root.uncommitted_events().is_empty() {
            return Ok(core::nothing_to_save(before));
        }
        let _timed = core::Timed::save(A::TYPE);
        let id = root.id();
        let span = core::save_span::<A>(id, before);
        async {
            let batch = core::encode_batch(root, self.events.codec())?;
            let (after, already_committed) = match self.events.append(id, A::TYPE, before, &batch).await {
                Ok(after) => (after, false),
                Err(e) if core::may_be_committed(&e) => {
                    // A retry of a save whose reply was lost finds its own events stored.
                    let mut ids = Vec::with_capacity(batch.len());
                    self.events
                        .read_stream(id, A::TYPE, before, &mut core::collect_ids(&mut ids, batch.len()))
                        .await?;
                    if !core::already_committed(&batch, &ids) {
                        return Err(e);
                    }
                    (core::version_after(before, &batch)?, true)
                }
                Err(e) => return Err(e),
            };
            root.mark_committed(after);
            let snapshot = if policy::snapshot_due(
                self.snapshots.is_some(),
                self.config.mode,
                before,
                after,
                self.config.threshold,
            ) {
                self.take_snapshot(id, after, root.state()).await
            } else {
                SnapshotAction::None
            };
            Ok(core::finish_save::<A>(
                &tracing::Span::current(),
                id,
                before,
                after,
                snapshot,
                already_committed,
            ))
        }
        .instrument(span)
        .await
    }

    /// Writes a snapshot of the aggregate now, whatever the mode and threshold; errors are
    /// returned (see [`crate::AggregateRepository::create_snapshot`]).
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store; [`Error::UncommittedEvents`] when
    /// the aggregate has unsaved events; [`Error::Codec`] when the state does not encode; the
    /// snapshot store's error when the write fails.
    pub async fn create_snapshot(&self, root: &AggregateRoot<A>) -> Result<SnapshotWrite> {
        let store = self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let snapshot = core::explicit_snapshot(root, store.codec())?;
        let result = store
            .save_snapshot(&snapshot)
            .instrument(core::snapshot_span(&snapshot, "explicit"))
            .await;
        self.counters.record_write(&result);
        result
    }

    /// Waits until every queued background snapshot is written (or failed);
    /// [`Error::WorkerStopped`] at once when the background worker is gone (see
    /// [`crate::AggregateRepository::flush`]).
    ///
    /// # Errors
    ///
    /// [`Error::WorkerStopped`], at once, when the background worker is gone.
    pub async fn flush(&self) -> Result<()> {
        match self.background.get() {
            Some(bg) => bg.wait_idle().await,
            None => Ok(()),
        }
    }

    /// Like [`flush`](Self::flush), giving up after `timeout` with [`Error::Timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue did not drain within `timeout`;
    /// [`Error::WorkerStopped`], at once, when the background worker is gone.
    pub async fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        match self.background.get() {
            Some(bg) => bg.flush(timeout).await,
            None => Ok(()),
        }
    }

    /// Stops the background worker after draining its queue, waiting at most `timeout`.
    /// Snapshots still queued then are dropped and counted, and so are later background
    /// snapshots. [`Error::Timeout`] when the queue did not drain in time,
    /// [`Error::WorkerStopped`] (at once) when the worker is gone.
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue did not drain within `timeout`;
    /// [`Error::WorkerStopped`], at once, when the background worker is gone.
    pub async fn shutdown(&self, timeout: Duration) -> Result<()> {
        match self.background.get() {
            Some(bg) => bg.shutdown(timeout).await,
            None => Ok(()),
        }
    }

    async fn take_snapshot(&self, id: Uuid, version: u64, state: &A) -> SnapshotAction {
        let Some(store) = self.snapshots.as_ref() else {
            return SnapshotAction::None;
        };
        let Some(snapshot) = core::owed_snapshot(&self.counters, store.codec(), id, version, state) else {
            return SnapshotAction::Failed;
        };
        match self.config.mode {
            SnapshotMode::Background => {
                let bg = self.background.get_or_init(|| {
                    Background::start(
                        Arc::clone(store),
                        Arc::clone(&self.counters),
                        self.config.queue_capacity,
                    )
                });
                core::queued(&self.counters, bg.push(snapshot), id)
            }
            SnapshotMode::Sync | SnapshotMode::Manual => {
                let outcome = caught(|| {
                    store
                        .save_snapshot(&snapshot)
                        .instrument(core::snapshot_span(&snapshot, "sync"))
                })
                .await;
                written_caught(&self.counters, outcome, &snapshot)
            }
        }
    }

    /// Pre-populates snapshots: loads each aggregate and writes its snapshot, with two
    /// lanes per core, each taking 64 aggregates at a time, loading them with one batch
    /// read (as [`load_many`](Self::load_many) does) and writing their snapshots in one
    /// batch (one transaction on the SQL stores). `progress` is called after each
    /// aggregate. One failure never stops the batch; the report says which failed and why.
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store. The failure of one aggregate is not
    /// an error: it is in the report.
    pub async fn prepopulate(&self, ids: &[Uuid], progress: impl Fn(Progress) + Sync) -> Result<PrepopulateReport> {
        let store = self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let tally = Tally::<()>::new(ids.len(), "pre-population");
        let (tally_ref, progress) = (&tally, &progress);
        in_lanes(ids, core::PREPOPULATE_BATCH, move |chunk| async move {
            let tally = tally_ref;
            let (mut loaded, mut snapshots) = (Vec::new(), Vec::new());
            let results = match self.load_chunk(chunk).await {
                Ok(results) => results,
                Err(e) => {
                    for &id in chunk {
                        progress(tally.record::<A>(id, Err(crate::repository::many::chunk_failed(&e, chunk.len()))));
                    }
                    return;
                }
            };
            for (id, result) in results {
                match result.and_then(|(root, _)| core::explicit_snapshot(&root, store.codec())) {
                    Ok(snapshot) => {
                        loaded.push(id);
                        snapshots.push(snapshot);
                    }
                    Err(e) => progress(tally.record::<A>(id, Err(e))),
                }
            }
            if !snapshots.is_empty() {
                let written = store.save_snapshots(&snapshots).await;
                tally.record_batch::<A>(&self.counters, &loaded, written, progress);
            }
        })
        .await;
        Ok(tally.into_report())
    }

    /// Pre-populates snapshots of every aggregate of this type with more than
    /// `min_events` events, most events first.
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store; the event store's error when
    /// listing the aggregates fails. The failure of one aggregate is not an error: it is in the
    /// report.
    pub async fn prepopulate_by_event_count(
        &self,
        min_events: u64,
        progress: impl Fn(Progress) + Sync,
    ) -> Result<PrepopulateReport> {
        let ids: Vec<Uuid> = self
            .events
            .aggregates_by_event_count(A::TYPE, min_events)
            .await?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.prepopulate(&ids, progress).await
    }
}

impl<A: Aggregate + PartialEq, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Verifies an aggregate's snapshot against a full replay of its events, reading only
    /// (see [`crate::AggregateRepository::verify`]).
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store, [`Error::NotFound`] for an
    /// aggregate without events, and the errors of a load; a snapshot store that fails is an
    /// error here, where a load would replay.
    pub async fn verify(&self, id: Uuid) -> Result<Verification> {
        self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        async {
            let via_snapshot = self.rebuild(id, Rebuild::ViaSnapshot).await;
            self.verify_rebuilt(id, via_snapshot).await
        }
        .instrument(core::verify_span::<A>(id))
        .await
    }

    /// The rest of a verification, after the load through the snapshot: the full replay
    /// (when a snapshot was used) and the verdict.
    async fn verify_rebuilt(
        &self,
        id: Uuid,
        via_snapshot: Result<(A, LoadOutcome, Option<u32>)>,
    ) -> Result<Verification> {
        let (state, outcome, _) = via_snapshot?;
        let replay = match core::replay_until::<A>(id, &outcome)? {
            Some(until) => {
                let (replayed, replay_outcome, _) = self.rebuild(id, Rebuild::Replay { until }).await?;
                Some((replayed, replay_outcome))
            }
            None => None,
        };
        Ok(core::verdict(id, state, outcome, replay))
    }

    /// Verifies a batch of aggregates (see [`verify`](Self::verify)), with two
    /// verifications per core in flight at once. `progress` is called after each
    /// aggregate; its `failed` counts the aggregates that could not be verified, the
    /// mismatches are in the report. One failure never stops the batch.
    /// [`Error::NoSnapshotStore`] without a snapshot store.
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store. The failure of one aggregate is not
    /// an error: it is counted in the report.
    pub async fn verify_many(&self, ids: &[Uuid], progress: impl Fn(Progress) + Sync) -> Result<VerifyReport> {
        self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let tally = Tally::<Verification>::new(ids.len(), "verification");
        let (tally_ref, progress) = (&tally, &progress);
        in_lanes(ids, crate::repository::many::VERIFY_BATCH, move |chunk| async move {
            let tally = tally_ref;
            match self
                .rebuild_many(chunk, Rebuild::ViaSnapshot, core::verify_span::<A>)
                .await
            {
                Ok(rebuilt) => {
                    for (id, span, via_snapshot) in rebuilt {
                        let verified = self.verify_rebuilt(id, via_snapshot).instrument(span).await;
                        progress(tally.record_verification::<A>(id, verified));
                    }
                }
                Err(e) => {
                    for &id in chunk {
                        progress(
                            tally.record_verification::<A>(
                                id,
                                Err(crate::repository::many::chunk_failed(&e, chunk.len())),
                            ),
                        );
                    }
                }
            }
        })
        .await;
        Ok(tally.into_verify_report())
    }
}

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Runs a command on an existing aggregate, retrying on conflicts with the
    /// repository's [`RetryPolicy`]; the async twin of
    /// [`crate::AggregateRepository::execute`], with the same rules. `command` is
    /// synchronous (it decides on the state; no I/O); the wait between attempts is
    /// `tokio::time::sleep`.
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
    /// use eventsource::{InMemoryEventStore, RetryPolicy};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    /// # runtime.block_on(async {
    /// let repo = AggregateRepository::<Counter, _>::new(InMemoryEventStore::new())
    ///     .with_retry_policy(RetryPolicy::default().with_max_attempts(20));
    /// let id = uuid::Uuid::now_v7();
    /// let done = repo
    ///     .execute_or_create(id, |counter| -> Result<u64, std::convert::Infallible> {
    ///         counter.record(Incremented);
    ///         Ok(counter.state().n)
    ///     })
    ///     .await?;
    /// assert_eq!((done.value, done.attempts, done.save.appended), (1, 1, 1));
    /// # Ok(()) })
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// As [`crate::AggregateRepository::execute`].
    pub async fn execute<T, E>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::Existing, &self.retry, command).await
    }

    /// Like [`execute`](Self::execute), starting from a new aggregate at version 0 when
    /// the aggregate has no events.
    ///
    /// # Errors
    ///
    /// As [`crate::AggregateRepository::execute_or_create`].
    pub async fn execute_or_create<T, E>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::OrCreate, &self.retry, command).await
    }

    /// [`execute`](Self::execute) with its own retry policy instead of the repository's.
    ///
    /// # Errors
    ///
    /// As [`crate::AggregateRepository::execute`].
    pub async fn execute_with<T, E>(
        &self,
        id: Uuid,
        policy: &RetryPolicy,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::Existing, policy, command).await
    }

    /// [`execute_or_create`](Self::execute_or_create) with its own retry policy instead of
    /// the repository's.
    ///
    /// # Errors
    ///
    /// As [`crate::AggregateRepository::execute_or_create`].
    pub async fn execute_or_create_with<T, E>(
        &self,
        id: Uuid,
        policy: &RetryPolicy,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::OrCreate, policy, command).await
    }

    /// The retry loop (see the sync shell): [`Attempts`] decides, this shell loads, saves
    /// and sleeps.
    async fn run_command<T, E>(
        &self,
        id: Uuid,
        start: Start,
        policy: &RetryPolicy,
        mut command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        let gate = self.turns.as_ref().map(|t| t.gate(id));
        // Tokio's mutex is fair: waiters get it in the order they asked.
        let _turn = match &gate {
            Some(g) => Some(g.lock().await),
            None => None,
        };
        let mut attempts = Attempts::new(policy);
        loop {
            attempts.start();
            let mut root = match start {
                Start::Existing => self.load(id).await,
                Start::OrCreate => self.load_or_create(id).await,
            }?;
            let value = command(&mut root).map_err(CommandError::Rejected)?;
            match self.save(&mut root).await {
                Ok(save) => return Ok(attempts.succeeded(value, save)),
                Err(e) => match attempts.failed(e) {
                    AfterConflict::Retry(wait) => ::tokio::time::sleep(wait).await,
                    AfterConflict::Fail(e) => return Err(e),
                },
            }
        }
    }
}

/// Runs `work` over `ids`, `chunk` at a time, with two chunks per core in flight at once
/// (never more than there are chunks); each lane takes the next chunk when it is done.
async fn in_lanes<'a, F, Fut>(ids: &'a [Uuid], chunk: usize, work: F)
where
    F: Fn(&'a [Uuid]) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let chunk = chunk.max(1);
    let lanes = (2 * std::thread::available_parallelism().map_or(1, usize::from))
        .min(ids.len().div_ceil(chunk))
        .max(1);
    let next = AtomicUsize::new(0);
    let lane = || async {
        loop {
            let start = next.fetch_add(chunk, Ordering::Relaxed);
            let Some(part) = ids.get(start..ids.len().min(start.saturating_add(chunk))) else {
                break;
            };
            work(part).await;
        }
    };
    futures_util::future::join_all((0..lanes).map(|_| lane())).await;
}
