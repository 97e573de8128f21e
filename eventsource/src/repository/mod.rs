//! The synchronous repository: load from the newest valid snapshot plus the events after
//! it, save with optimistic concurrency, and snapshot on threshold crossings.
//!
//! Every decision comes from the pure functions of the crate's `snapshot::policy` and the
//! sans-IO load machine of `snapshot::load` (internal); this module only performs the I/O
//! they ask for. The async
//! twin, `eventsource::tokio::AggregateRepository`, shares the same core.
//!
//! Logs go to the target `eventsource::repository`: at DEBUG every load says whether it used
//! a snapshot (or why not), the version and how many events it replayed; snapshot failures
//! are WARN, a snapshot ahead of its stream is ERROR.

pub(crate) mod background;
pub(crate) mod core;
pub(crate) mod many;

use std::marker::PhantomData;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use uuid::Uuid;

use self::background::Background;
use self::core::{Config, Counters, Rebuild, Tally};
use crate::aggregate::{Aggregate, AggregateRoot};
use crate::command::{AfterConflict, Attempts, CommandError, CommandOutcome, FairLock, RetryPolicy, Start, Turns};
use crate::error::{Error, Result};
use crate::snapshot::load::{LoadMachine, LoadStep};
use crate::snapshot::policy::{self, SnapshotMode};
use crate::snapshot::SnapshotWrite;
use crate::store::{EventStore, NoSnapshotStore, SnapshotStore};

pub use self::core::{
    Mismatch, PrepopulateReport, Progress, SaveOutcome, SnapshotAction, SnapshotStats, Verdict, Verification,
    VerifyReport, DEFAULT_QUEUE_CAPACITY, DEFAULT_SHUTDOWN_TIMEOUT, DEFAULT_SNAPSHOT_THRESHOLD, VERIFY_DEBUG_LIMIT,
};
pub use self::many::{LoadResult, LOAD_MANY_CHUNK};
pub use crate::snapshot::load::{LoadOutcome, SnapshotUse};

/// Loads and saves aggregates of type `A` through an event store and, optionally, a
/// snapshot store.
///
/// ```
/// use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore, SnapshotMode};
/// # use eventsource::{Aggregate, Apply, DomainEvent};
/// # use serde::{Deserialize, Serialize};
/// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
/// # struct Incremented;
/// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
/// # #[aggregate(type = "Counter", events(Incremented))]
/// # struct Counter { n: u64 }
/// # impl Apply<Incremented> for Counter { fn apply(&mut self, _: &Incremented) { self.n += 1 } }
/// # fn main() -> eventsource::Result<()> {
/// let repo = AggregateRepository::<Counter, _>::new(InMemoryEventStore::new())
///     .with_snapshot_store(InMemorySnapshotStore::new())
///     .snapshot_threshold(100)?
///     .snapshot_mode(SnapshotMode::Sync);
/// # Ok(()) }
/// ```
pub struct AggregateRepository<A: Aggregate, ES: EventStore, SS: SnapshotStore = NoSnapshotStore> {
    events: ES,
    snapshots: Option<Arc<SS>>,
    config: Config,
    counters: Arc<Counters>,
    background: OnceLock<Background>,
    retry: RetryPolicy,
    turns: Option<Turns<FairLock>>,
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
    pub fn exists(&self, id: Uuid) -> Result<bool> {
        Ok(self.events.stream_version(id, A::TYPE)? > 0)
    }

    /// Loads an aggregate; [`Error::NotFound`] when it has no events.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the aggregate has no events; [`Error::EventDecode`] when a
    /// stored event does not decode (the load fails rather than build a wrong state);
    /// [`Error::CorruptStream`] when the stream has a gap; [`Error::Store`] when the event
    /// store fails. A snapshot failure is never an error: the load replays the stream.
    pub fn load(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        self.load_with_outcome(id).map(|(root, _)| root)
    }

    /// Loads an aggregate, or returns a new one at version 0 when it has no events.
    ///
    /// # Errors
    ///
    /// [`Error::EventDecode`] when a stored event does not decode (the load fails rather than
    /// build a wrong state); [`Error::CorruptStream`] when the stream has a gap;
    /// [`Error::Store`] when the event store fails. A snapshot failure is never an error: the
    /// load replays the stream.
    pub fn load_or_create(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        match self.load(id) {
            Err(Error::NotFound { .. }) => Ok(AggregateRoot::new(id)),
            other => other,
        }
    }

    /// Loads an aggregate and reports which path the load took: snapshot used, upcast
    /// from schema K, or discarded and why.
    ///
    /// # Errors
    ///
    /// [`Error::NotFound`] when the aggregate has no events; [`Error::EventDecode`] when a
    /// stored event does not decode (the load fails rather than build a wrong state);
    /// [`Error::CorruptStream`] when the stream has a gap; [`Error::Store`] when the event
    /// store fails. A snapshot failure is never an error: the load replays the stream.
    pub fn load_with_outcome(&self, id: Uuid) -> Result<(AggregateRoot<A>, LoadOutcome)> {
        let _timed = core::Timed::load(A::TYPE);
        let span = core::load_span::<A>(id);
        let _enter = span.enter();
        let (state, outcome, schema) = self.rebuild(id, Rebuild::Load)?;
        let repair = core::repair_due::<A>(&self.config, self.snapshots.is_some(), &outcome, schema)
            .then(|| self.take_snapshot(id, outcome.version, &state));
        core::finish_load(&span, &self.counters, id, state, outcome, repair)
    }

    /// Rebuilds the state by driving a [`LoadMachine`]: snapshot (if usable) plus tail, or
    /// a full replay; `how` says which, and whether the load may delete and count.
    fn rebuild(&self, id: Uuid, how: Rebuild) -> Result<(A, LoadOutcome, Option<u32>)> {
        self.drive(id, self.load_machine(id, how), how)
    }

    /// A fresh [`LoadMachine`] for `id`, for the load `how`.
    fn load_machine(&self, id: Uuid, how: Rebuild) -> LoadMachine<'_, A, SS::Codec, ES::Codec> {
        let snapshots = self.snapshots.as_deref().filter(|_| how.uses_snapshot());
        let joint = core::joint(snapshots.and_then(SnapshotStore::location), self.events.location());
        LoadMachine::new(id, self.events.codec(), snapshots.map(SnapshotStore::codec), joint)
    }

    /// Performs the I/O a [`LoadMachine`] asks for until it is done (a batch load hands
    /// over machines whose joint read is already done), then finishes it.
    fn drive(
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
                    let supported = self.events.read_with_snapshot(id, A::TYPE, &mut m)?;
                    m.joint_done(supported);
                }
                LoadStep::GetSnapshot => {
                    let read = snapshots.map_or(Ok(None), |s| s.get_snapshot(id, A::TYPE));
                    m.snapshot_read(how.snapshot_read(read)?);
                }
                LoadStep::ReadEvents { after } => {
                    self.events.replay_stream(id, A::TYPE, after, &mut |r| {
                        if r.version > until {
                            Ok(())
                        } else {
                            m.event(r)
                        }
                    })?;
                    m.events_done();
                }
                LoadStep::DeleteSnapshot => m.snapshot_deleted(match snapshots {
                    Some(s) if how.has_effects() => s.delete_snapshot(id, A::TYPE),
                    _ => Ok(false),
                }),
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
    /// snapshot if the save crossed a threshold multiple.
    ///
    /// On [`Error::Conflict`] nothing is written and the aggregate keeps its recorded
    /// events; reload and retry the command.
    ///
    /// Saves are exactly-once: the recorded events keep their ids across attempts, so
    /// calling `save` again after an error that left the outcome unknown (a lost reply, a
    /// dropped connection) either appends the batch or finds it already committed and
    /// returns success with [`SaveOutcome::already_committed`] set. Never reload and
    /// re-run the command after such an error; retry the save.
    ///
    /// # Errors
    ///
    /// [`Error::Conflict`] when the stream moved since the aggregate was loaded (nothing was
    /// written: reload and retry the command); [`Error::DuplicateEvent`] when an event id is
    /// already stored by another batch; [`Error::EventEncode`] when an event does not encode
    /// (nothing was written); [`Error::Store`] when the event store fails, which may leave the
    /// outcome unknown: retry the save as it is. A snapshot failure is never an error.
    pub fn save(&self, root: &mut AggregateRoot<A>) -> Result<SaveOutcome> {
        let before = root.committed_version();
        if root.uncommitted_events().is_empty() {
            return Ok(core::nothing_to_save(before));
        }
        let _timed = core::Timed::save(A::TYPE);
        let id = root.id();
        let span = core::save_span::<A>(id, before);
        let _enter = span.enter();
        let batch = core::encode_batch(root, self.events.codec())?;
        let (after, already_committed) = match self.events.append(id, A::TYPE, before, &batch) {
            Ok(after) => (after, false),
            Err(e) if core::may_be_committed(&e) => {
                // A retry of a save whose reply was lost finds its own events stored.
                let mut ids = Vec::with_capacity(batch.len());
                self.events
                    .read_stream(id, A::TYPE, before, &mut core::collect_ids(&mut ids, batch.len()))?;
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
            self.take_snapshot(id, after, root.state())
        } else {
            SnapshotAction::None
        };
        Ok(core::finish_save::<A>(
            &span,
            id,
            before,
            after,
            snapshot,
            already_committed,
        ))
    }

    /// Writes a snapshot of the aggregate now, whatever the mode and threshold. Errors are
    /// returned (this is the one explicit snapshot operation); an aggregate with unsaved
    /// events is refused with [`Error::UncommittedEvents`].
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store; [`Error::UncommittedEvents`] when
    /// the aggregate has unsaved events; [`Error::Codec`] when the state does not encode; the
    /// snapshot store's error when the write fails.
    pub fn create_snapshot(&self, root: &AggregateRoot<A>) -> Result<SnapshotWrite> {
        let store = self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let snapshot = core::explicit_snapshot(root, store.codec())?;
        let _span = core::snapshot_span(&snapshot, "explicit").entered();
        let result = store.save_snapshot(&snapshot);
        self.counters.record_write(&result);
        result
    }

    /// Waits until every queued background snapshot is written (or failed).
    ///
    /// Returns [`Error::WorkerStopped`] at once, never waiting, when the background worker
    /// is gone (it died, or its thread could not start): what it had queued was dropped
    /// and counted, and so are later background snapshots. A snapshot store that panics
    /// does not stop the worker: the panic counts as a failure.
    ///
    /// # Errors
    ///
    /// [`Error::WorkerStopped`], at once, when the background worker is gone.
    pub fn flush(&self) -> Result<()> {
        self.flush_timeout(Duration::MAX)
    }

    /// Like [`flush`](Self::flush), giving up after `timeout` with [`Error::Timeout`].
    ///
    /// # Errors
    ///
    /// [`Error::Timeout`] when the queue did not drain within `timeout`;
    /// [`Error::WorkerStopped`], at once, when the background worker is gone.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        self.background.get().map_or(Ok(()), |bg| bg.wait_idle(timeout))
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
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.background.get().map_or(Ok(()), |bg| bg.shutdown(timeout))
    }

    /// Snapshots the aggregate according to the mode: written now, or queued.
    fn take_snapshot(&self, id: Uuid, version: u64, state: &A) -> SnapshotAction {
        let Some(store) = self.snapshots.as_ref() else {
            return SnapshotAction::None;
        };
        let Some(snapshot) = core::owed_snapshot(&self.counters, store.codec(), id, version, state) else {
            return SnapshotAction::Failed;
        };
        match self.config.mode {
            SnapshotMode::Background => {
                let bg = self
                    .background
                    .get_or_init(|| Background::start(Arc::clone(store), Arc::clone(&self.counters), &self.config));
                core::queued(&self.counters, bg.push(snapshot), id)
            }
            SnapshotMode::Sync | SnapshotMode::Manual => {
                let _span = core::snapshot_span(&snapshot, "sync").entered();
                let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| store.save_snapshot(&snapshot)));
                background::written_caught(&self.counters, outcome, &snapshot)
            }
        }
    }

    /// Pre-populates snapshots: loads each aggregate and writes its snapshot, on as many
    /// threads as the machine has cores. Each thread takes 64 aggregates at a time, loads
    /// them with one batch read (as [`load_many`](Self::load_many) does) and writes their
    /// snapshots in one batch (one transaction on the SQL stores), so the cores replay
    /// instead of waiting on round trips and commits. `progress` is called after each aggregate (from the worker
    /// threads). One failure never stops the batch; the report says which failed and why.
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store. The failure of one aggregate is not
    /// an error: it is in the report.
    pub fn prepopulate(&self, ids: &[Uuid], progress: impl Fn(Progress) + Sync) -> Result<PrepopulateReport> {
        let store = self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let tally = Tally::<()>::new(ids.len(), "pre-population");
        on_every_core(ids, core::PREPOPULATE_BATCH, |chunk| {
            let (mut loaded, mut snapshots) = (Vec::new(), Vec::new());
            let results = match self.load_chunk(chunk) {
                Ok(results) => results,
                Err(e) => {
                    for &id in chunk {
                        progress(tally.record::<A>(id, Err(many::chunk_failed(&e, chunk.len()))));
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
                tally.record_batch::<A>(&self.counters, &loaded, store.save_snapshots(&snapshots), &progress);
            }
        });
        Ok(tally.into_report())
    }

    /// Pre-populates snapshots of every aggregate of this type with more than
    /// `min_events` events, most events first (the reference guide's "prioritize
    /// high-event aggregates").
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store; the event store's error when
    /// listing the aggregates fails. The failure of one aggregate is not an error: it is in the
    /// report.
    pub fn prepopulate_by_event_count(
        &self,
        min_events: u64,
        progress: impl Fn(Progress) + Sync,
    ) -> Result<PrepopulateReport> {
        let ids: Vec<Uuid> = self
            .events
            .aggregates_by_event_count(A::TYPE, min_events)?
            .into_iter()
            .map(|(id, _)| id)
            .collect();
        self.prepopulate(&ids, progress)
    }
}

impl<A: Aggregate + PartialEq, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Verifies an aggregate's snapshot against its events: loads the aggregate through its
    /// snapshot (as [`load`](Self::load) does) and by replaying its whole stream, and
    /// compares the two states. A mismatch, logged at WARN, means the snapshot does not hold
    /// what the events say: an `apply` that is not deterministic, or a state whose shape
    /// changed without a raise of `schema_version`.
    ///
    /// Verifying only reads. Unlike a load, it never deletes a snapshot (one beyond its
    /// stream is reported, not removed), never writes a repair snapshot, and leaves the
    /// [`stats`](Self::stats) counters alone, so what it finds stays in place to be looked
    /// at. The full replay stops at the version the snapshot load reached, so events
    /// appended meanwhile do not make a false mismatch.
    ///
    /// An aggregate without a usable snapshot has nothing to compare: [`Verdict::NoSnapshot`],
    /// with the reason in [`Verification::snapshot`], and only one read. Errors:
    /// [`Error::NoSnapshotStore`] without a snapshot store, [`Error::NotFound`] for an
    /// aggregate without events, and the errors of a load (an event that does not decode,
    /// a store failure; a snapshot store that fails to answer is an error here too, where
    /// a load would replay).
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store, [`Error::NotFound`] for an
    /// aggregate without events, and the errors of a load; a snapshot store that fails is an
    /// error here, where a load would replay.
    pub fn verify(&self, id: Uuid) -> Result<Verification> {
        self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let _enter = core::verify_span::<A>(id).entered();
        self.verify_rebuilt(id, self.rebuild(id, Rebuild::ViaSnapshot))
    }

    /// The rest of a verification, after the load through the snapshot: the full replay
    /// (when a snapshot was used) and the verdict.
    fn verify_rebuilt(&self, id: Uuid, via_snapshot: Result<(A, LoadOutcome, Option<u32>)>) -> Result<Verification> {
        let (state, outcome, _) = via_snapshot?;
        let replay = match core::replay_until::<A>(id, &outcome)? {
            Some(until) => {
                let (replayed, replay_outcome, _) = self.rebuild(id, Rebuild::Replay { until })?;
                Some((replayed, replay_outcome))
            }
            None => None,
        };
        Ok(core::verdict(id, state, outcome, replay))
    }

    /// Verifies a batch of aggregates (see [`verify`](Self::verify)) on as many threads as
    /// the machine has cores, each taking 32 aggregates at a time and reading them through
    /// their snapshots with one batch read (the full replays stay one per aggregate). `progress` is called after each aggregate (from the worker
    /// threads); its `failed` counts the aggregates that could not be verified, the
    /// mismatches are in the report. One failure never stops the batch.
    /// [`Error::NoSnapshotStore`] without a snapshot store.
    ///
    /// # Errors
    ///
    /// [`Error::NoSnapshotStore`] without a snapshot store. The failure of one aggregate is not
    /// an error: it is counted in the report.
    pub fn verify_many(&self, ids: &[Uuid], progress: impl Fn(Progress) + Sync) -> Result<VerifyReport> {
        self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let tally = Tally::<Verification>::new(ids.len(), "verification");
        on_every_core(ids, many::VERIFY_BATCH, |chunk| {
            match self.rebuild_many(chunk, Rebuild::ViaSnapshot, core::verify_span::<A>) {
                Ok(rebuilt) => {
                    for (id, span, via_snapshot) in rebuilt {
                        let _enter = span.enter();
                        progress(tally.record_verification::<A>(id, self.verify_rebuilt(id, via_snapshot)));
                    }
                }
                Err(e) => {
                    for &id in chunk {
                        progress(tally.record_verification::<A>(id, Err(many::chunk_failed(&e, chunk.len()))));
                    }
                }
            }
        });
        Ok(tally.into_verify_report())
    }
}

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Runs a command on an existing aggregate: loads it, calls `command` on it, saves
    /// what it recorded, and on [`Error::Conflict`] runs it again on the freshly loaded
    /// state after the wait the repository's [`RetryPolicy`] says, up to its attempt limit.
    ///
    /// `command` decides on the state and records events; it may run several times (once
    /// per attempt, each time on a new root), so it must have no effect other than on the
    /// root. Its error rejects the command at once ([`CommandError::Rejected`], nothing
    /// saved, no retry). A command that records nothing saves nothing (the outcome's
    /// `save.appended` is 0). Each retry is logged at DEBUG under `eventsource::repository`.
    ///
    /// ```
    /// # use eventsource::{Aggregate, Apply, DomainEvent};
    /// # use serde::{Deserialize, Serialize};
    /// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    /// # struct Withdrawn { cents: u64 }
    /// # #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    /// # struct Deposited { cents: u64 }
    /// # #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    /// # #[aggregate(type = "Account", events(Deposited, Withdrawn))]
    /// # struct Account { balance: u64 }
    /// # impl Apply<Deposited> for Account { fn apply(&mut self, e: &Deposited) { self.balance += e.cents } }
    /// # impl Apply<Withdrawn> for Account { fn apply(&mut self, e: &Withdrawn) { self.balance -= e.cents } }
    /// use eventsource::{AggregateRepository, CommandError, InMemoryEventStore, RetryPolicy};
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct InsufficientFunds;
    ///
    /// impl std::fmt::Display for InsufficientFunds {
    ///     fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    ///         f.write_str("insufficient funds")
    ///     }
    /// }
    /// impl std::error::Error for InsufficientFunds {}
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let repo = AggregateRepository::<Account, _>::new(InMemoryEventStore::new())
    ///     .with_retry_policy(RetryPolicy::default().with_max_attempts(20));
    /// let id = uuid::Uuid::now_v7();
    /// repo.execute_or_create(id, |account| -> Result<(), InsufficientFunds> {
    ///     account.record(Deposited { cents: 500 });
    ///     Ok(())
    /// })?;
    /// let withdraw = |cents: u64| move |account: &mut eventsource::AggregateRoot<Account>| {
    ///     if account.state().balance < cents {
    ///         return Err(InsufficientFunds);
    ///     }
    ///     account.record(Withdrawn { cents });
    ///     Ok(account.state().balance)
    /// };
    /// let done = repo.execute(id, withdraw(200))?;
    /// assert_eq!((done.value, done.attempts, done.save.version), (300, 1, 2));
    /// let refused = repo.execute(id, withdraw(1_000)).unwrap_err();
    /// assert!(matches!(refused, CommandError::Rejected(InsufficientFunds)));
    /// assert_eq!(repo.load(id)?.version(), 2);          // nothing saved
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// [`CommandError::Rejected`] with the command's error; [`CommandError::Exhausted`]
    /// when every allowed attempt conflicted; [`CommandError::Store`] for any other error
    /// of the load or the save ([`Error::NotFound`] when the aggregate has no events; see
    /// [`execute_or_create`](Self::execute_or_create)), never retried.
    pub fn execute<T, E>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::Existing, &self.retry, command)
    }

    /// Like [`execute`](Self::execute), starting from a new aggregate at version 0 when
    /// the aggregate has no events (two writers creating the same aggregate conflict, and
    /// the second one runs again on the first one's state).
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute), without [`Error::NotFound`].
    pub fn execute_or_create<T, E>(
        &self,
        id: Uuid,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::OrCreate, &self.retry, command)
    }

    /// [`execute`](Self::execute) with its own retry policy instead of the repository's.
    ///
    /// # Errors
    ///
    /// As [`execute`](Self::execute).
    pub fn execute_with<T, E>(
        &self,
        id: Uuid,
        policy: &RetryPolicy,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::Existing, policy, command)
    }

    /// [`execute_or_create`](Self::execute_or_create) with its own retry policy instead of
    /// the repository's.
    ///
    /// # Errors
    ///
    /// As [`execute_or_create`](Self::execute_or_create).
    pub fn execute_or_create_with<T, E>(
        &self,
        id: Uuid,
        policy: &RetryPolicy,
        command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        self.run_command(id, Start::OrCreate, policy, command)
    }

    /// The retry loop: the decisions are [`Attempts`]'; this shell loads, saves and sleeps.
    fn run_command<T, E>(
        &self,
        id: Uuid,
        start: Start,
        policy: &RetryPolicy,
        mut command: impl FnMut(&mut AggregateRoot<A>) -> std::result::Result<T, E>,
    ) -> std::result::Result<CommandOutcome<T>, CommandError<E>> {
        let gate = self.turns.as_ref().map(|t| t.gate(id));
        let _turn = gate.as_ref().map(|g| g.lock());
        let mut attempts = Attempts::new(policy);
        loop {
            attempts.start();
            let mut root = match start {
                Start::Existing => self.load(id),
                Start::OrCreate => self.load_or_create(id),
            }?;
            let value = command(&mut root).map_err(CommandError::Rejected)?;
            match self.save(&mut root) {
                Ok(save) => return Ok(attempts.succeeded(value, save)),
                Err(e) => match attempts.failed(e) {
                    AfterConflict::Retry(wait) => std::thread::sleep(wait),
                    AfterConflict::Fail(e) => return Err(e),
                },
            }
        }
    }
}

/// Runs `work` over `ids`, `chunk` at a time, on as many threads as the machine has cores
/// (never more threads than chunks); each thread takes the next chunk when it is done.
fn on_every_core(ids: &[Uuid], chunk: usize, work: impl Fn(&[Uuid]) + Sync) {
    let chunk = chunk.max(1);
    let workers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(ids.len().div_ceil(chunk))
        .max(1);
    let next = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let start = next.fetch_add(chunk, Ordering::Relaxed);
                let Some(part) = ids.get(start..ids.len().min(start.saturating_add(chunk))) else {
                    break;
                };
                work(part);
            });
        }
    });
}
