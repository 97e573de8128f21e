//! The synchronous repository: load from the newest valid snapshot plus the events after
//! it, save with optimistic concurrency, and snapshot on threshold crossings.
//!
//! Every decision comes from [`crate::snapshot::policy`]; this module only performs I/O and
//! reports. Logs go to the target `eventsource::repository`: at DEBUG every load says
//! whether it used a snapshot (or why not), the version and how many events it replayed;
//! snapshot failures are WARN, a snapshot ahead of its stream is ERROR.

use std::marker::PhantomData;
use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{debug, error, warn};
use uuid::Uuid;

use crate::aggregate::{Aggregate, AggregateRoot};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::snapshot::load::{LoadMachine, LoadStep};
use crate::snapshot::policy::{self, MissReason, SnapshotMode};
use crate::snapshot::queue::{PushOutcome, SnapshotQueue};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{EventStore, NoSnapshotStore, SnapshotStore};

const TARGET: &str = "eventsource::repository";

/// The snapshot threshold used when none is configured (the reference guide's).
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 100;
/// Background queue capacity (aggregates) used when none is configured.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// How long dropping a repository waits for queued background snapshots.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

pub use crate::snapshot::load::{LoadOutcome, SnapshotUse};

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaveOutcome {
    /// The stream version after the save.
    pub version: u64,
    /// Events appended.
    pub appended: u64,
    /// What happened about a snapshot.
    pub snapshot: SnapshotAction,
}

/// The snapshot side of a save.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SnapshotAction {
    /// No snapshot was due (or there is no snapshot store, or the mode is manual).
    None,
    /// A snapshot was written before `save` returned.
    Written,
    /// The store kept a newer snapshot it already had.
    KeptExisting,
    /// Queued for the background worker.
    Queued,
    /// The background queue was full; the snapshot was dropped and counted.
    Dropped,
    /// Writing failed; logged and counted. The save itself succeeded.
    Failed,
}

/// Counters of a repository's snapshot activity, readable at any time.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    hits: AtomicU64,
    upcasts: AtomicU64,
    misses: [AtomicU64; 5],
    writes: AtomicU64,
    kept_existing: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    repairs: AtomicU64,
}

impl Counters {
    fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn record_load(&self, outcome: &LoadOutcome) {
        match outcome.snapshot {
            SnapshotUse::Used { .. } => Self::add(&self.hits),
            SnapshotUse::Upcast { .. } => {
                Self::add(&self.hits);
                Self::add(&self.upcasts);
            }
            SnapshotUse::Discarded(reason) => Self::add(&self.misses[reason.index()]),
        }
    }

    pub(crate) fn record_write(&self, result: &Result<SnapshotWrite>) {
        match result {
            Ok(SnapshotWrite::Written) => Self::add(&self.writes),
            Ok(SnapshotWrite::KeptExisting) => Self::add(&self.kept_existing),
            Err(_) => Self::add(&self.failures),
        }
    }

    fn snapshot(&self) -> SnapshotStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SnapshotStats {
            hits: get(&self.hits),
            upcasts: get(&self.upcasts),
            misses: [
                get(&self.misses[0]),
                get(&self.misses[1]),
                get(&self.misses[2]),
                get(&self.misses[3]),
                get(&self.misses[4]),
            ],
            writes: get(&self.writes),
            kept_existing: get(&self.kept_existing),
            failures: get(&self.failures),
            dropped: get(&self.dropped),
            repairs: get(&self.repairs),
        }
    }
}

/// A copy of a repository's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SnapshotStats {
    /// Loads that used a snapshot (including upcast ones).
    pub hits: u64,
    /// Loads that used an upcast snapshot (also counted in `hits`).
    pub upcasts: u64,
    misses: [u64; 5],
    /// Snapshots written.
    pub writes: u64,
    /// Snapshot writes the store declined because it held a newer one.
    pub kept_existing: u64,
    /// Snapshot writes that failed.
    pub failures: u64,
    /// Background snapshots dropped because the queue was full (or at shutdown).
    pub dropped: u64,
    /// Fresh snapshots written or queued to repair a miss.
    pub repairs: u64,
}

impl SnapshotStats {
    /// Loads that replayed fully for `reason`.
    pub fn misses(&self, reason: MissReason) -> u64 {
        self.misses[reason.index()]
    }

    /// Loads that replayed fully, for any reason.
    pub fn total_misses(&self) -> u64 {
        self.misses.iter().sum()
    }
}

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
    threshold: NonZeroU64,
    mode: SnapshotMode,
    queue_capacity: usize,
    shutdown_timeout: Duration,
    counters: Arc<Counters>,
    background: OnceLock<Background>,
    _aggregate: PhantomData<fn() -> A>,
}

impl<A: Aggregate, ES: EventStore> AggregateRepository<A, ES, NoSnapshotStore> {
    /// A repository without snapshots: every load replays the whole stream.
    pub fn new(events: ES) -> Self {
        Self {
            events,
            snapshots: None,
            threshold: NonZeroU64::MIN.saturating_add(DEFAULT_SNAPSHOT_THRESHOLD - 1),
            mode: SnapshotMode::Sync,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
            counters: Arc::default(),
            background: OnceLock::new(),
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
            threshold: self.threshold,
            mode: self.mode,
            queue_capacity: self.queue_capacity,
            shutdown_timeout: self.shutdown_timeout,
            counters: self.counters,
            background: OnceLock::new(),
            _aggregate: PhantomData,
        }
    }

    /// Snapshot when a save crosses a multiple of `n` events (default 100). 0 is rejected.
    pub fn snapshot_threshold(mut self, n: u64) -> Result<Self> {
        self.threshold = policy::threshold(n)
            .ok_or_else(|| Error::InvalidConfig("snapshot_threshold must be at least 1".into()))?;
        Ok(self)
    }

    /// When snapshots are written (default [`SnapshotMode::Sync`]).
    pub fn snapshot_mode(mut self, mode: SnapshotMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many aggregates the background queue holds before it drops (default 1024).
    pub fn background_queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = capacity.max(1);
        self
    }

    /// How long dropping the repository waits for queued background snapshots (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }

    /// The configured threshold.
    pub fn threshold(&self) -> u64 {
        self.threshold.get()
    }

    /// The configured mode.
    pub fn mode(&self) -> SnapshotMode {
        self.mode
    }

    /// The event store.
    pub fn event_store(&self) -> &ES {
        &self.events
    }

    /// The snapshot store, if any.
    pub fn snapshot_store(&self) -> Option<&SS> {
        self.snapshots.as_deref()
    }

    /// The snapshot counters so far.
    pub fn stats(&self) -> SnapshotStats {
        self.counters.snapshot()
    }

    /// Whether the aggregate has any event.
    pub fn exists(&self, id: Uuid) -> Result<bool> {
        Ok(self.events.stream_version(id, A::TYPE)? > 0)
    }

    /// Loads an aggregate; [`Error::NotFound`] when it has no events.
    pub fn load(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        self.load_with_outcome(id).map(|(root, _)| root)
    }

    /// Loads an aggregate, or returns a new one at version 0 when it has no events.
    pub fn load_or_create(&self, id: Uuid) -> Result<AggregateRoot<A>> {
        match self.load(id) {
            Err(Error::NotFound { .. }) => Ok(AggregateRoot::new(id)),
            other => other,
        }
    }

    /// Loads an aggregate and reports which path the load took.
    pub fn load_with_outcome(&self, id: Uuid) -> Result<(AggregateRoot<A>, LoadOutcome)> {
        let span = tracing::debug_span!(
            target: TARGET,
            "load",
            aggregate_type = A::TYPE,
            aggregate_id = %id,
            version = tracing::field::Empty,
            events_replayed = tracing::field::Empty,
            snapshot_used = tracing::field::Empty,
        );
        let _enter = span.enter();
        let (state, mut outcome, miss_schema) = self.rebuild(id)?;
        if outcome.version == 0 {
            return Err(Error::NotFound {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: id,
            });
        }
        if let SnapshotUse::Discarded(reason) = outcome.snapshot {
            if self.snapshots.is_some()
                && policy::repair_after_miss(reason, self.mode, miss_schema, A::SCHEMA_VERSION)
            {
                let action = self.take_snapshot(id, outcome.version, &state);
                outcome.repaired = matches!(action, SnapshotAction::Written | SnapshotAction::Queued);
                if outcome.repaired {
                    Counters::add(&self.counters.repairs);
                }
            }
        }
        span.record("version", outcome.version);
        span.record("events_replayed", outcome.events_replayed);
        span.record("snapshot_used", !matches!(outcome.snapshot, SnapshotUse::Discarded(_)));
        debug!(
            target: TARGET,
            aggregate_type = A::TYPE,
            aggregate_id = %id,
            version = outcome.version,
            events_replayed = outcome.events_replayed,
            snapshot = ?outcome.snapshot,
            repaired = outcome.repaired,
            "loaded"
        );
        Ok((AggregateRoot::from_parts(id, outcome.version, state), outcome))
    }

    /// Rebuilds the state by driving a [`LoadMachine`]: snapshot (if usable) plus tail, or
    /// a full replay. Returns the state, the outcome, and on a miss the schema version of
    /// the discarded snapshot.
    fn rebuild(&self, id: Uuid) -> Result<(A, LoadOutcome, Option<u32>)> {
        let snapshots = self.snapshots.as_deref();
        let joint = match (snapshots.and_then(SnapshotStore::location), self.events.location()) {
            (Some(a), Some(b)) => a == b,
            _ => false,
        };
        let mut m =
            LoadMachine::<A, SS::Codec, ES::Codec>::new(id, self.events.codec(), snapshots.map(|s| s.codec()), joint);
        loop {
            match m.next_step() {
                LoadStep::ReadJoint => {
                    let supported = self.events.read_with_snapshot(id, A::TYPE, &mut m)?;
                    m.joint_done(supported);
                }
                LoadStep::GetSnapshot => {
                    let result = snapshots.map_or(Ok(None), |s| s.get_snapshot(id, A::TYPE));
                    m.snapshot_read(result);
                }
                LoadStep::ReadEvents { after } => {
                    self.events.read_stream(id, A::TYPE, after, &mut |r| m.event(r))?;
                    m.events_done();
                }
                LoadStep::StreamVersion => {
                    let version = self.events.stream_version(id, A::TYPE)?;
                    m.stream_version(version);
                }
                LoadStep::DeleteSnapshot => {
                    let result = snapshots.map_or(Ok(false), |s| s.delete_snapshot(id, A::TYPE));
                    m.snapshot_deleted(result);
                }
                LoadStep::Done => break,
            }
        }
        let (state, outcome, schema) = m.finish();
        self.counters.record_load(&outcome);
        Ok((state, outcome, schema))
    }

    /// Appends the aggregate's recorded events with optimistic concurrency, then takes a
    /// snapshot if the save crossed a threshold multiple.
    ///
    /// On [`Error::Conflict`] nothing is written and the aggregate keeps its recorded
    /// events; reload and retry the command.
    pub fn save(&self, root: &mut AggregateRoot<A>) -> Result<SaveOutcome> {
        let id = root.id();
        let before = root.committed_version();
        if root.uncommitted_events().is_empty() {
            return Ok(SaveOutcome {
                version: before,
                appended: 0,
                snapshot: SnapshotAction::None,
            });
        }
        let span = tracing::debug_span!(target: TARGET, "save", aggregate_type = A::TYPE, aggregate_id = %id,
                                        from_version = before, version = tracing::field::Empty);
        let _enter = span.enter();
        let codec = self.events.codec();
        let batch = root
            .uncommitted_events()
            .iter()
            .map(|e| NewEvent::encode(e, codec, root.metadata()))
            .collect::<Result<Vec<_>>>()?;
        let after = self.events.append(id, A::TYPE, before, &batch)?;
        root.mark_committed(after);
        span.record("version", after);
        let snapshot = if policy::snapshot_due(self.snapshots.is_some(), self.mode, before, after, self.threshold) {
            self.take_snapshot(id, after, root.state())
        } else {
            SnapshotAction::None
        };
        debug!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, from = before, version = after,
               snapshot = ?snapshot, "saved");
        Ok(SaveOutcome {
            version: after,
            appended: after - before,
            snapshot,
        })
    }

    /// Writes a snapshot of the aggregate now, whatever the mode and threshold. Errors are
    /// returned (this is the one explicit snapshot operation).
    pub fn create_snapshot(&self, root: &AggregateRoot<A>) -> Result<SnapshotWrite> {
        let count = root.uncommitted_events().len();
        if count > 0 {
            return Err(Error::UncommittedEvents {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: root.id(),
                count,
            });
        }
        if root.version() == 0 {
            return Err(Error::NotFound {
                aggregate_type: A::TYPE.to_owned(),
                aggregate_id: root.id(),
            });
        }
        let store = self.snapshots.as_deref().ok_or(Error::NoSnapshotStore)?;
        let snapshot = encode_snapshot::<A, _>(store.codec(), root.id(), root.version(), root.state())?;
        let result = store.save_snapshot(&snapshot);
        self.counters.record_write(&result);
        result
    }

    /// Waits until every queued background snapshot is written (or failed).
    pub fn flush(&self) -> Result<()> {
        self.flush_timeout(Duration::MAX)
    }

    /// Like [`flush`](Self::flush), giving up after `timeout`.
    pub fn flush_timeout(&self, timeout: Duration) -> Result<()> {
        match self.background.get() {
            Some(bg) => bg.wait_idle(timeout),
            None => Ok(()),
        }
    }

    /// Stops the background worker after draining its queue, waiting at most `timeout`.
    /// Snapshots still queued then are dropped and counted. Later background snapshots
    /// are dropped too.
    pub fn shutdown(&self, timeout: Duration) -> Result<()> {
        match self.background.get() {
            Some(bg) => bg.shutdown(timeout),
            None => Ok(()),
        }
    }

    /// Snapshots the aggregate according to the mode: written now (sync) or queued.
    fn take_snapshot(&self, id: Uuid, version: u64, state: &A) -> SnapshotAction {
        let Some(store) = self.snapshots.as_ref() else {
            return SnapshotAction::None;
        };
        let snapshot = match encode_snapshot::<A, _>(store.codec(), id, version, state) {
            Ok(s) => s,
            Err(e) => {
                Counters::add(&self.counters.failures);
                warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e,
                      "snapshot state does not encode; no snapshot taken");
                return SnapshotAction::Failed;
            }
        };
        match self.mode {
            SnapshotMode::Background => {
                let bg = self
                    .background
                    .get_or_init(|| {
                        Background::start(
                            Arc::clone(store),
                            Arc::clone(&self.counters),
                            self.queue_capacity,
                            self.shutdown_timeout,
                        )
                    });
                match bg.push(snapshot) {
                    PushOutcome::Dropped => {
                        Counters::add(&self.counters.dropped);
                        warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id,
                              "background snapshot queue full; snapshot dropped");
                        SnapshotAction::Dropped
                    }
                    _ => SnapshotAction::Queued,
                }
            }
            SnapshotMode::Sync | SnapshotMode::Manual => {
                let result = store.save_snapshot(&snapshot);
                self.counters.record_write(&result);
                match result {
                    Ok(SnapshotWrite::Written) => SnapshotAction::Written,
                    Ok(SnapshotWrite::KeptExisting) => SnapshotAction::KeptExisting,
                    Err(e) => {
                        warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, version, error = %e,
                              "snapshot write failed; the save stands and loads replay");
                        SnapshotAction::Failed
                    }
                }
            }
        }
    }
}

/// Encodes the state as a snapshot at `version` with the current schema version.
pub(crate) fn encode_snapshot<A: Aggregate, C: Codec>(codec: &C, id: Uuid, version: u64, state: &A) -> Result<Snapshot> {
    Ok(Snapshot {
        aggregate_id: id,
        aggregate_type: A::TYPE.to_owned(),
        version,
        schema_version: A::SCHEMA_VERSION,
        state: codec.encode(state)?,
        created_at: crate::time::now(),
    })
}

struct BgState {
    queue: SnapshotQueue,
    stopping: bool,
}

struct BgShared {
    state: Mutex<BgState>,
    work: Condvar,
    idle: Condvar,
}

impl BgShared {
    fn lock(&self) -> MutexGuard<'_, BgState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background snapshot worker of the sync API: one thread draining a
/// [`SnapshotQueue`].
/// Dropping it (with the repository) drains the queue, waiting at most the shutdown
/// timeout.
struct Background {
    shared: Arc<BgShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    shutdown_timeout: Duration,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown(self.shutdown_timeout) {
            warn!(target: TARGET, error = %e, "background snapshots not drained at drop");
        }
    }
}

impl Background {
    fn start<SS: SnapshotStore>(
        store: Arc<SS>,
        counters: Arc<Counters>,
        capacity: usize,
        shutdown_timeout: Duration,
    ) -> Self {
        let shared = Arc::new(BgShared {
            state: Mutex::new(BgState {
                queue: SnapshotQueue::new(capacity),
                stopping: false,
            }),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let worker_counters = Arc::clone(&counters);
        let spawned = std::thread::Builder::new()
            .name("eventsource-snapshots".into())
            .spawn(move || Self::run(&worker, &*store, &worker_counters));
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without a worker every background snapshot is dropped (and counted);
                // saves and loads are unaffected.
                error!(target: TARGET, error = %e, "cannot start the background snapshot thread");
                shared.lock().stopping = true;
                None
            }
        };
        Self {
            shared,
            thread: Mutex::new(thread),
            counters,
            shutdown_timeout,
        }
    }

    fn run<SS: SnapshotStore>(shared: &BgShared, store: &SS, counters: &Counters) {
        loop {
            let snapshot = {
                let mut st = shared.lock();
                loop {
                    if let Some(s) = st.queue.pop() {
                        break s;
                    }
                    if st.stopping {
                        return;
                    }
                    st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner);
                }
            };
            let result = store.save_snapshot(&snapshot);
            counters.record_write(&result);
            if let Err(e) = &result {
                warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                      version = snapshot.version, error = %e, "background snapshot write failed");
            }
            let mut st = shared.lock();
            st.queue.done();
            if st.queue.is_idle() {
                shared.idle.notify_all();
            }
        }
    }

    fn push(&self, snapshot: Snapshot) -> PushOutcome {
        let mut st = self.shared.lock();
        if st.stopping {
            return PushOutcome::Dropped;
        }
        let outcome = st.queue.push(snapshot);
        drop(st);
        self.shared.work.notify_one();
        outcome
    }

    fn wait_idle(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.lock();
        while !st.queue.is_idle() {
            if st.stopping && self.thread.lock().unwrap_or_else(PoisonError::into_inner).is_none() {
                // No worker will ever drain it.
                return Err(Error::WorkerStopped);
            }
            match deadline {
                None => st = self.shared.idle.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout(timeout));
                    }
                    st = self.shared.idle.wait_timeout(st, d - now).unwrap_or_else(PoisonError::into_inner).0;
                }
            }
        }
        Ok(())
    }

    fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.shared.lock().stopping = true;
        self.shared.work.notify_all();
        let drained = self.wait_idle(timeout);
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        match drained {
            Ok(()) => {
                if let Some(h) = handle {
                    if h.join().is_err() {
                        error!(target: TARGET, "background snapshot thread panicked");
                    }
                }
                Ok(())
            }
            Err(e) => {
                // The worker is stuck in a slow write: leave it detached, drop what waits.
                let mut st = self.shared.lock();
                while st.queue.pop().is_some() {
                    st.queue.done();
                    Counters::add(&self.counters.dropped);
                }
                Err(e)
            }
        }
    }
}

/// Progress of a pre-population batch, handed to the progress callback after each
/// aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Aggregates finished (succeeded or failed).
    pub done: usize,
    /// Aggregates in the batch.
    pub total: usize,
    /// Aggregates that failed so far.
    pub failed: usize,
}

/// The result of a pre-population batch.
#[derive(Debug, Default)]
pub struct PrepopulateReport {
    /// Aggregates in the batch.
    pub total: usize,
    /// Snapshots written (or already current: the store kept an equal or newer one).
    pub succeeded: usize,
    /// The aggregates that failed, and why. One failure never stops the batch.
    pub failed: Vec<(Uuid, Error)>,
}

impl<A: Aggregate, ES: EventStore, SS: SnapshotStore> AggregateRepository<A, ES, SS> {
    /// Pre-populates snapshots: loads each aggregate and writes its snapshot, on as many
    /// threads as the machine has cores. `progress` is called after each aggregate (from
    /// the worker threads). One failure never stops the batch; the report says which
    /// failed and why.
    pub fn prepopulate(&self, ids: &[Uuid], progress: impl Fn(Progress) + Sync) -> Result<PrepopulateReport> {
        if self.snapshots.is_none() {
            return Err(Error::NoSnapshotStore);
        }
        let workers = std::thread::available_parallelism().map_or(1, usize::from).min(ids.len().max(1));
        let next = std::sync::atomic::AtomicUsize::new(0);
        let state = Mutex::new((0usize, Vec::new()));
        std::thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(&id) = ids.get(i) else { break };
                    let result = self.load(id).and_then(|root| self.create_snapshot(&root));
                    let report = {
                        let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                        st.0 += 1;
                        if let Err(e) = result {
                            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e,
                                  "pre-population failed for this aggregate");
                            st.1.push((id, e));
                        }
                        Progress {
                            done: st.0,
                            total: ids.len(),
                            failed: st.1.len(),
                        }
                    };
                    progress(report);
                });
            }
        });
        let (done, failed) = state.into_inner().unwrap_or_else(PoisonError::into_inner);
        Ok(PrepopulateReport {
            total: ids.len(),
            succeeded: done - failed.len(),
            failed,
        })
    }

    /// Pre-populates snapshots of every aggregate of this type with more than
    /// `min_events` events, most events first (the reference guide's "prioritize
    /// high-event aggregates").
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
