//! What the sync and async repositories share: configuration, counters, outcomes, and the
//! pure steps around their I/O (encoding a batch or a snapshot, judging a load, counting a
//! write). The shells only order the I/O; nothing here is written twice.

use std::num::NonZeroU64;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tracing::{debug, warn};
use uuid::Uuid;

use crate::aggregate::{Aggregate, AggregateRoot};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::snapshot::load::{LoadOutcome, SnapshotUse};
use crate::snapshot::policy::{self, MissReason, SnapshotMode};
use crate::snapshot::queue::PushOutcome;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::StoreLocation;

pub(crate) const TARGET: &str = "eventsource::repository";

/// Times a load or a save into its `metrics` histogram when dropped; without the `metrics`
/// feature an empty value that does nothing.
pub(crate) struct Timed {
    #[cfg(feature = "metrics")]
    what: (&'static str, &'static str, std::time::Instant),
}

impl Timed {
    /// Times a load of an aggregate of `aggregate_type`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub fn load(aggregate_type: &'static str) -> Self {
        Timed {
            #[cfg(feature = "metrics")]
            what: (crate::metrics::LOAD_DURATION, aggregate_type, std::time::Instant::now()),
        }
    }

    /// Times a save of an aggregate of `aggregate_type`.
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub fn save(aggregate_type: &'static str) -> Self {
        Timed {
            #[cfg(feature = "metrics")]
            what: (crate::metrics::SAVE_DURATION, aggregate_type, std::time::Instant::now()),
        }
    }
}

#[cfg(feature = "metrics")]
impl Drop for Timed {
    fn drop(&mut self) {
        let (name, aggregate_type, started) = self.what;
        crate::metrics::elapsed(name, aggregate_type, started);
    }
}

/// The snapshot threshold used when none is configured (the reference guide's).
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 100;
/// Background queue capacity (aggregates) used when none is configured.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// How long dropping a repository (or `shutdown`) waits for queued background snapshots.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct SaveOutcome {
    /// The stream version after the save.
    pub version: u64,
    /// Events appended.
    pub appended: u64,
    /// What happened about a snapshot.
    pub snapshot: SnapshotAction,
    /// The batch was found already committed: an earlier attempt of this very save (same
    /// event ids at the same stream positions) committed, but its reply was lost. Nothing
    /// was written twice; the save is reported as the success it was.
    pub already_committed: bool,
}

/// The snapshot side of a save (or of the repair after a load).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotAction {
    /// No snapshot was due (or there is no snapshot store, or the mode is manual).
    None,
    /// A snapshot was written before the call returned.
    Written,
    /// The store kept a newer snapshot it already had.
    KeptExisting,
    /// Queued for the background worker.
    Queued,
    /// The background queue was full (or shut down); the snapshot was dropped and counted.
    Dropped,
    /// Writing failed; logged and counted. The save itself succeeded.
    Failed,
}

/// The repository settings both shells share.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub threshold: NonZeroU64,
    pub mode: SnapshotMode,
    pub queue_capacity: usize,
    pub shutdown_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            threshold: NonZeroU64::MIN.saturating_add(DEFAULT_SNAPSHOT_THRESHOLD - 1),
            mode: SnapshotMode::Sync,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            shutdown_timeout: DEFAULT_SHUTDOWN_TIMEOUT,
        }
    }
}

impl Config {
    pub fn set_threshold(&mut self, n: u64) -> Result<()> {
        self.threshold =
            policy::threshold(n).ok_or_else(|| Error::InvalidConfig("snapshot_threshold must be at least 1".into()))?;
        Ok(())
    }
}

/// The settings and accessors of a repository, identical in both shells: generated into
/// each `impl` block so that they are written once.
macro_rules! settings_methods {
    () => {
        /// Sets the [`RetryPolicy`] of [`execute`](Self::execute) and
        /// [`execute_or_create`](Self::execute_or_create) (default: [`RetryPolicy::default`]).
        #[must_use]
        pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
            self.retry = policy;
            self
        }

        /// The repository's retry policy for commands.
        pub fn retry_policy(&self) -> &RetryPolicy {
            &self.retry
        }

        /// Whether commands on one aggregate take turns (default: `true`).
        ///
        /// Taking turns, the commands this repository runs on one aggregate at once run one
        /// after the other, in the order they came, each on the state the one before it left:
        /// they never conflict with each other, and the [`RetryPolicy`] is left for writers
        /// elsewhere (other processes, other repositories on the same stream). Without it every
        /// command races: all but one of the writers that loaded the same version conflict,
        /// wait, reload and run again. With 8 writers on one stream (the workload's W4) turns
        /// gave about twice the committed events per second on PostgreSQL and a lower p99.
        ///
        /// Turns hold for one aggregate at a time: commands on different aggregates never wait
        /// for each other. A command must not run another command on the same aggregate from
        /// inside its closure: it would wait for its own turn.
        #[must_use]
        pub fn command_turns(mut self, on: bool) -> Self {
            self.turns = on.then(Turns::default);
            self
        }

        /// Snapshot when a save crosses a multiple of `n` events (default 100). 0 is rejected
        /// with [`Error::InvalidConfig`].
        ///
        /// # Errors
        ///
        /// [`Error::InvalidConfig`] for a threshold of 0.
        pub fn snapshot_threshold(mut self, n: u64) -> Result<Self> {
            self.config.set_threshold(n)?;
            Ok(self)
        }

        /// When snapshots are written (default [`SnapshotMode::Sync`]).
        #[must_use]
        pub fn snapshot_mode(mut self, mode: SnapshotMode) -> Self {
            self.config.mode = mode;
            self
        }

        /// How many aggregates the background queue holds before it drops (default 1024).
        #[must_use]
        pub fn background_queue_capacity(mut self, capacity: usize) -> Self {
            self.config.queue_capacity = capacity.max(1);
            self
        }

        /// How long dropping the repository (sync API) or `shutdown` waits for queued
        /// background snapshots (default 5 s).
        #[must_use]
        pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
            self.config.shutdown_timeout = timeout;
            self
        }

        /// The configured threshold.
        pub fn threshold(&self) -> u64 {
            self.config.threshold.get()
        }

        /// The configured mode.
        pub fn mode(&self) -> SnapshotMode {
            self.config.mode
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
    };
}
pub(crate) use settings_methods;

/// Counters of a repository's snapshot activity, shared with its background worker; with
/// the `metrics` feature, each count is also exported (see [`crate::metrics`]).
#[derive(Debug, Default)]
pub(crate) struct Counters {
    #[cfg(feature = "metrics")]
    aggregate_type: &'static str,
    hits: AtomicU64,
    upcasts: AtomicU64,
    misses: [AtomicU64; 5],
    writes: AtomicU64,
    kept_existing: AtomicU64,
    failures: AtomicU64,
    dropped: AtomicU64,
    repairs: AtomicU64,
}

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    /// The counters of a repository of `aggregate_type` (the label of exported metrics).
    #[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
    pub fn new(aggregate_type: &'static str) -> Self {
        Counters {
            #[cfg(feature = "metrics")]
            aggregate_type,
            ..Counters::default()
        }
    }

    pub fn record_load(&self, outcome: &LoadOutcome) {
        #[cfg(feature = "metrics")]
        crate::metrics::load(self.aggregate_type, &outcome.snapshot);
        match outcome.snapshot {
            SnapshotUse::Used { .. } => bump(&self.hits),
            SnapshotUse::Upcast { .. } => {
                bump(&self.hits);
                bump(&self.upcasts);
            }
            SnapshotUse::Discarded(reason) => bump(&self.misses[reason.index()]),
        }
    }

    pub fn record_write(&self, result: &Result<SnapshotWrite>) {
        match result {
            Ok(SnapshotWrite::Written) => {
                bump(&self.writes);
                #[cfg(feature = "metrics")]
                crate::metrics::snapshot(crate::metrics::SNAPSHOT_WRITES, self.aggregate_type);
            }
            Ok(SnapshotWrite::KeptExisting) => {
                bump(&self.kept_existing);
                #[cfg(feature = "metrics")]
                crate::metrics::snapshot(crate::metrics::SNAPSHOT_KEPT_EXISTING, self.aggregate_type);
            }
            Err(_) => self.record_failure(),
        }
    }

    pub fn record_failure(&self) {
        bump(&self.failures);
        #[cfg(feature = "metrics")]
        crate::metrics::snapshot(crate::metrics::SNAPSHOT_FAILURES, self.aggregate_type);
    }

    pub fn record_dropped(&self) {
        bump(&self.dropped);
        #[cfg(feature = "metrics")]
        crate::metrics::snapshot(crate::metrics::SNAPSHOT_DROPS, self.aggregate_type);
    }

    pub fn record_repair(&self) {
        bump(&self.repairs);
        #[cfg(feature = "metrics")]
        crate::metrics::snapshot(crate::metrics::SNAPSHOT_REPAIRS, self.aggregate_type);
    }

    pub fn snapshot(&self) -> SnapshotStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        SnapshotStats {
            hits: get(&self.hits),
            upcasts: get(&self.upcasts),
            misses: std::array::from_fn(|i| get(&self.misses[i])),
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
#[non_exhaustive]
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
    /// Snapshot writes that failed (or states that did not encode).
    pub failures: u64,
    /// Background snapshots dropped because the queue was full or shut down.
    pub dropped: u64,
    /// Fresh snapshots written or queued to repair a miss.
    pub repairs: u64,
}

impl SnapshotStats {
    /// Loads that replayed fully for `reason`.
    #[must_use]
    pub fn misses(&self, reason: MissReason) -> u64 {
        self.misses[reason.index()]
    }

    /// Loads that replayed fully, for any reason.
    #[must_use]
    pub fn total_misses(&self) -> u64 {
        self.misses.iter().sum()
    }
}

/// Whether a snapshot store and an event store share a database (one-query loads).
pub(crate) fn joint(snapshots: Option<StoreLocation>, events: Option<StoreLocation>) -> bool {
    matches!((snapshots, events), (Some(a), Some(b)) if a == b)
}

/// Encodes the state as a snapshot at `version` with the current schema version.
pub(crate) fn encode_snapshot<A: Aggregate, C: Codec>(
    codec: &C,
    id: Uuid,
    version: u64,
    state: &A,
) -> Result<Snapshot> {
    Ok(Snapshot {
        aggregate_id: id,
        aggregate_type: A::TYPE.to_owned(),
        version,
        schema_version: A::SCHEMA_VERSION,
        state: codec.encode(state)?,
        created_at: crate::time::now(),
    })
}

/// Encodes the aggregate's recorded events for an append.
pub(crate) fn encode_batch<A: Aggregate, C: Codec>(root: &AggregateRoot<A>, codec: &C) -> Result<Vec<NewEvent>> {
    root.uncommitted_events()
        .iter()
        .zip(root.uncommitted_event_ids())
        .zip(root.uncommitted_event_times())
        .map(|((e, &id), &at)| NewEvent::encode_as(e, id, at, codec, root.metadata()))
        .collect()
}

/// Whether an append error may mean that this very batch is already stored (a retry of a
/// save whose first attempt committed but whose reply was lost): then the shells read the
/// stream after the expected version and ask [`already_committed`].
pub(crate) fn may_be_committed(error: &Error) -> bool {
    matches!(error, Error::Conflict { .. } | Error::DuplicateEvent { .. })
}

/// Whether the events stored right after the expected version (`stored`, their ids in
/// stream order, at least as many as the batch when they are there) are exactly the batch.
pub(crate) fn already_committed(batch: &[NewEvent], stored: &[Uuid]) -> bool {
    !batch.is_empty() && stored.len() >= batch.len() && batch.iter().zip(stored).all(|(b, s)| b.event_id == *s)
}

/// Collects up to `n` event ids from a stream read (the visitor of the already-committed check).
pub(crate) fn collect_ids(
    ids: &mut Vec<Uuid>,
    n: usize,
) -> impl FnMut(&crate::event::EventRecord<'_>) -> Result<()> + Send + '_ {
    move |r| {
        if ids.len() < n {
            ids.push(r.event_id);
        }
        Ok(())
    }
}

/// Checks `create_snapshot`'s preconditions (rule 6) and encodes the snapshot.
pub(crate) fn explicit_snapshot<A: Aggregate, C: Codec>(root: &AggregateRoot<A>, codec: &C) -> Result<Snapshot> {
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
    encode_snapshot(codec, root.id(), root.version(), root.state())
}

/// Encodes a snapshot the repository owes (threshold crossing or repair); a state that
/// does not encode (or whose encoding panics) is logged and counted, never an error of the
/// load or save.
pub(crate) fn owed_snapshot<A: Aggregate, C: Codec>(
    counters: &Counters,
    codec: &C,
    id: Uuid,
    version: u64,
    state: &A,
) -> Option<Snapshot> {
    // The events are committed: a state whose `Serialize` panics costs the snapshot (a
    // counted failure), never the save.
    let encoded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        encode_snapshot(codec, id, version, state)
    }));
    match encoded {
        Ok(Ok(s)) => Some(s),
        Ok(Err(e)) => {
            counters.record_failure();
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e.report(),
                  "snapshot state does not encode; no snapshot taken");
            None
        }
        Err(payload) => {
            counters.record_failure();
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id,
                  panic = super::background::panic_message(&*payload),
                  "encoding the snapshot state panicked; no snapshot taken");
            None
        }
    }
}

/// Counts and logs a synchronous snapshot write.
pub(crate) fn written(counters: &Counters, result: Result<SnapshotWrite>, snapshot: &Snapshot) -> SnapshotAction {
    counters.record_write(&result);
    match result {
        Ok(SnapshotWrite::Written) => SnapshotAction::Written,
        Ok(SnapshotWrite::KeptExisting) => SnapshotAction::KeptExisting,
        Err(e) => {
            warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                  version = snapshot.version, error = %e.report(), "snapshot write failed; the save stands and loads replay");
            SnapshotAction::Failed
        }
    }
}

/// Counts and logs a background queue push.
pub(crate) fn queued(counters: &Counters, outcome: PushOutcome, id: Uuid) -> SnapshotAction {
    match outcome {
        PushOutcome::Dropped => {
            counters.record_dropped();
            warn!(target: TARGET, aggregate_id = %id, "background snapshot queue full or stopped; snapshot dropped");
            SnapshotAction::Dropped
        }
        PushOutcome::Queued | PushOutcome::Coalesced | PushOutcome::Superseded => SnapshotAction::Queued,
    }
}

/// The span of a load.
pub(crate) fn load_span<A: Aggregate>(id: Uuid) -> tracing::Span {
    tracing::debug_span!(
        target: TARGET,
        "load",
        aggregate_type = A::TYPE,
        aggregate_id = %id,
        version = tracing::field::Empty,
        events_replayed = tracing::field::Empty,
        snapshot_used = tracing::field::Empty,
    )
}

/// Whether a finished load owes a repair snapshot (rule 3, self-repair after a miss).
pub(crate) fn repair_due<A: Aggregate>(
    config: &Config,
    has_store: bool,
    outcome: &LoadOutcome,
    schema: Option<u32>,
) -> bool {
    match outcome.snapshot {
        SnapshotUse::Discarded(reason) if outcome.version > 0 && has_store => {
            policy::repair_after_miss(reason, config.mode, schema, A::SCHEMA_VERSION)
        }
        _ => false,
    }
}

/// Finishes a load: not found for an empty stream, the repair's result, the span fields
/// and the DEBUG line that explains the load.
pub(crate) fn finish_load<A: Aggregate>(
    span: &tracing::Span,
    counters: &Counters,
    id: Uuid,
    state: A,
    mut outcome: LoadOutcome,
    repair: Option<SnapshotAction>,
) -> Result<(AggregateRoot<A>, LoadOutcome)> {
    if outcome.version == 0 {
        return Err(Error::NotFound {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id,
        });
    }
    outcome.repaired = matches!(repair, Some(SnapshotAction::Written | SnapshotAction::Queued));
    if outcome.repaired {
        counters.record_repair();
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

/// The span of a snapshot write (sync, background or explicit).
pub(crate) fn snapshot_span(snapshot: &Snapshot, how: &'static str) -> tracing::Span {
    tracing::debug_span!(target: TARGET, "snapshot", aggregate_type = %snapshot.aggregate_type,
                         aggregate_id = %snapshot.aggregate_id, version = snapshot.version,
                         schema_version = snapshot.schema_version, how)
}

/// The span of a save.
pub(crate) fn save_span<A: Aggregate>(id: Uuid, before: u64) -> tracing::Span {
    tracing::debug_span!(target: TARGET, "save", aggregate_type = A::TYPE, aggregate_id = %id,
                         from_version = before, version = tracing::field::Empty)
}

/// Finishes a save: the span field, the DEBUG line and the outcome.
pub(crate) fn finish_save<A: Aggregate>(
    span: &tracing::Span,
    id: Uuid,
    before: u64,
    after: u64,
    snapshot: SnapshotAction,
    already_committed: bool,
) -> SaveOutcome {
    span.record("version", after);
    debug!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, from = before, version = after,
           snapshot = ?snapshot, already_committed, "saved");
    SaveOutcome {
        version: after,
        appended: after.saturating_sub(before),
        snapshot,
        already_committed,
    }
}

/// The stream version after appending `batch` at `before`, checked.
pub(crate) fn version_after(before: u64, batch: &[NewEvent]) -> Result<u64> {
    u64::try_from(batch.len())
        .ok()
        .and_then(|n| before.checked_add(n))
        .ok_or_else(|| Error::OutOfRange {
            what: "stream version",
            value: format!("{before} + {}", batch.len()),
        })
}

/// The outcome of a save with nothing to append.
pub(crate) fn nothing_to_save(version: u64) -> SaveOutcome {
    SaveOutcome {
        version,
        appended: 0,
        snapshot: SnapshotAction::None,
        already_committed: false,
    }
}

/// Progress of a pre-population batch, handed to the progress callback after each
/// aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
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
#[non_exhaustive]
pub struct PrepopulateReport {
    /// Aggregates in the batch.
    pub total: usize,
    /// Snapshots written (or already current: the store kept an equal or newer one).
    pub succeeded: usize,
    /// The aggregates that failed, and why. One failure never stops the batch.
    pub failed: Vec<(Uuid, Error)>,
}

/// How many snapshots a pre-population worker writes per batch (one transaction each on
/// the SQL stores, so one commit per batch instead of one per aggregate).
pub(crate) const PREPOPULATE_BATCH: usize = 64;

/// How many bytes of a state's `Debug` text a [`Mismatch`] keeps, per side: enough to see
/// the difference in a typical aggregate, bounded for a huge one.
pub const VERIFY_DEBUG_LIMIT: usize = 4096;

/// What one step of a batch (pre-population, verification) came to, for the [`Tally`].
pub(crate) enum Tallied<K> {
    /// Succeeded; nothing to list.
    Done,
    /// Succeeded with something worth counting (verification: nothing to compare).
    Counted,
    /// Succeeded with something worth listing (verification: a mismatch).
    Kept(K),
}

/// The running tally of a batch (pre-population, verification), shared by its workers:
/// progress after every aggregate, failures with their errors, and what the batch lists.
pub(crate) struct Tally<K = ()> {
    total: usize,
    activity: &'static str,
    inner: Mutex<TallyState<K>>,
}

/// What a [`Tally`] holds.
pub(crate) struct TallyState<K> {
    done: usize,
    failed: Vec<(Uuid, Error)>,
    kept: Vec<K>,
    counted: usize,
}

impl<K> Tally<K> {
    /// A tally of `total` aggregates; `activity` names the batch in its WARN lines.
    pub fn new(total: usize, activity: &'static str) -> Self {
        Self {
            total,
            activity,
            inner: Mutex::new(TallyState {
                done: 0,
                failed: Vec::new(),
                kept: Vec::new(),
                counted: 0,
            }),
        }
    }

    /// Records one aggregate's result; returns the progress to report.
    pub fn record<A: Aggregate>(&self, id: Uuid, result: Result<Tallied<K>>) -> Progress {
        let mut st = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        st.done += 1;
        match result {
            Ok(Tallied::Done) => {}
            Ok(Tallied::Counted) => st.counted += 1,
            Ok(Tallied::Kept(k)) => st.kept.push(k),
            Err(e) => {
                warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e.report(),
                      "{} failed for this aggregate", self.activity);
                st.failed.push((id, e));
            }
        }
        Progress {
            done: st.done,
            total: self.total,
            failed: st.failed.len(),
        }
    }

    fn finish(self) -> TallyState<K> {
        self.inner.into_inner().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Tally {
    /// Records the outcome of one batch write of pre-population snapshots (`ids[i]` is the
    /// aggregate of the i-th snapshot) and reports progress after each.
    pub fn record_batch<A: Aggregate>(
        &self,
        counters: &Counters,
        ids: &[Uuid],
        written: Result<Vec<SnapshotWrite>>,
        progress: &(impl Fn(Progress) + Sync),
    ) {
        match written {
            Ok(outcomes) => {
                for (&id, outcome) in ids.iter().zip(outcomes) {
                    let result = Ok(outcome);
                    counters.record_write(&result);
                    progress(self.record::<A>(id, result.map(|_| Tallied::Done)));
                }
            }
            Err(e) => {
                // The batch is one transaction: none of it was written.
                let message = format!("writing a batch of {} snapshots failed: {}", ids.len(), e.report());
                for &id in ids {
                    counters.record_failure();
                    let failed = Err(Error::Store {
                        backend: "snapshot batch",
                        message: message.clone(),
                        source: None,
                    });
                    progress(self.record::<A>(id, failed));
                }
            }
        }
    }

    pub fn into_report(self) -> PrepopulateReport {
        let total = self.total;
        let st = self.finish();
        PrepopulateReport {
            total,
            succeeded: st.done.saturating_sub(st.failed.len()),
            failed: st.failed,
        }
    }
}

impl Tally<Verification> {
    /// Records one aggregate's verification; returns the progress to report.
    pub fn record_verification<A: Aggregate>(&self, id: Uuid, result: Result<Verification>) -> Progress {
        let tallied = result.map(|v| match v.verdict {
            Verdict::Agree => Tallied::Done,
            Verdict::NoSnapshot => Tallied::Counted,
            Verdict::Mismatch(_) => Tallied::Kept(v),
        });
        self.record::<A>(id, tallied)
    }

    pub fn into_verify_report(self) -> VerifyReport {
        let total = self.total;
        let st = self.finish();
        VerifyReport {
            total,
            agreed: st.done.saturating_sub(st.failed.len() + st.kept.len() + st.counted),
            no_snapshot: st.counted,
            mismatches: st.kept,
            failed: st.failed,
        }
    }
}

/// The result of verifying one aggregate: its state loaded through its snapshot (plus the
/// events after it) compared with its state rebuilt by replaying the whole stream.
///
/// Returned by `AggregateRepository::verify` (sync and async). A mismatch means the
/// snapshot does not hold what the events say: an `apply` that is not deterministic (it
/// reads a clock, a random number, a global counter), or a change to the state's shape
/// without a raise of `schema_version` (an old snapshot that still decodes, with another
/// meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Verification {
    /// The aggregate verified.
    pub aggregate_id: Uuid,
    /// The version compared: the one the load through the snapshot reached. The full
    /// replay stops there, so events appended meanwhile do not make a false mismatch.
    pub version: u64,
    /// How the load through the snapshot used it: used, upcast from an older schema, or
    /// discarded and why (then there is nothing to compare).
    pub snapshot: SnapshotUse,
    /// Whether the two loads agree.
    pub verdict: Verdict,
}

impl Verification {
    /// Whether the two loads agree (`false` for a mismatch, and when there was nothing to
    /// compare).
    #[must_use]
    pub fn agrees(&self) -> bool {
        matches!(self.verdict, Verdict::Agree)
    }

    /// The mismatch, if the two loads disagree.
    #[must_use]
    pub fn mismatch(&self) -> Option<&Mismatch> {
        match &self.verdict {
            Verdict::Mismatch(m) => Some(m),
            Verdict::Agree | Verdict::NoSnapshot => None,
        }
    }
}

/// The verdict of a [`Verification`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Verdict {
    /// The snapshot plus its tail and the full replay reached equal states (by
    /// `PartialEq`) at the same version.
    Agree,
    /// No snapshot was used, so there is nothing to compare: none is stored, or it could
    /// not be used ([`Verification::snapshot`] says why: an unknown schema, a state that
    /// does not decode, a snapshot beyond its stream). Not a mismatch.
    NoSnapshot,
    /// The two loads disagree.
    Mismatch(Mismatch),
}

/// How the two loads of a [`Verification`] disagree: both states' `Debug` text, so an
/// operator can see the difference.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mismatch {
    /// The state loaded through the snapshot, as `{:#?}` prints it, cut after
    /// [`VERIFY_DEBUG_LIMIT`] bytes (a cut text ends with `…`).
    pub via_snapshot: String,
    /// The state rebuilt by full replay, printed and cut the same way.
    pub via_replay: String,
    /// The version the full replay reached; lower than [`Verification::version`] only when
    /// events under the snapshot have disappeared.
    pub replay_version: u64,
    /// The first line (from 1) where the two texts differ; `None` when they are equal (the
    /// states differ where `Debug` does not show, or beyond the cut).
    pub first_difference: Option<usize>,
}

/// The result of a verification batch (`verify_many`).
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct VerifyReport {
    /// Aggregates in the batch.
    pub total: usize,
    /// Aggregates whose snapshot agrees with a full replay.
    pub agreed: usize,
    /// Aggregates with no usable snapshot: nothing to compare.
    pub no_snapshot: usize,
    /// The aggregates whose snapshot disagrees with a full replay, in no particular order.
    pub mismatches: Vec<Verification>,
    /// The aggregates that could not be verified, and why (not found, an event that does
    /// not decode, a store error), in no particular order. One failure never stops the
    /// batch.
    pub failed: Vec<(Uuid, Error)>,
}

impl VerifyReport {
    /// Whether every aggregate was verified without a mismatch.
    #[must_use]
    pub fn is_clean(&self) -> bool {
        self.mismatches.is_empty() && self.failed.is_empty()
    }
}

/// Which load a repository's `rebuild` performs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Rebuild {
    /// A load: through the snapshot, deleting one that is ahead of its stream, counting
    /// the outcome; a snapshot store error degrades to a full replay.
    Load,
    /// Verification's load through the snapshot: read only (no delete, no counters), and
    /// a snapshot store error is returned (an unreadable snapshot is not "no snapshot").
    ViaSnapshot,
    /// Verification's full replay, without the snapshot, up to a version; read only.
    Replay {
        /// The last version applied.
        until: u64,
    },
}

impl Rebuild {
    /// Whether this load reads the snapshot.
    pub fn uses_snapshot(self) -> bool {
        !matches!(self, Rebuild::Replay { .. })
    }

    /// Whether this load may write (delete a bad snapshot) and count.
    pub fn has_effects(self) -> bool {
        self == Rebuild::Load
    }

    /// The last version to apply.
    pub fn until(self) -> u64 {
        match self {
            Rebuild::Replay { until } => until,
            Rebuild::Load | Rebuild::ViaSnapshot => u64::MAX,
        }
    }

    /// What to feed the load machine after reading the snapshot: a load hands it the
    /// error (it degrades to a replay), a verification returns it.
    pub fn snapshot_read(self, read: Result<Option<Snapshot>>) -> Result<Result<Option<Snapshot>>> {
        match self {
            Rebuild::Load => Ok(read),
            Rebuild::ViaSnapshot | Rebuild::Replay { .. } => read.map(Ok),
        }
    }
}

/// The span of a verification.
pub(crate) fn verify_span<A: Aggregate>(id: Uuid) -> tracing::Span {
    tracing::debug_span!(target: TARGET, "verify", aggregate_type = A::TYPE, aggregate_id = %id)
}

/// After the load through the snapshot: [`Error::NotFound`] for an empty stream, `None`
/// when no snapshot was used (nothing to compare, no second read), else the version the
/// full replay must stop at.
pub(crate) fn replay_until<A: Aggregate>(id: Uuid, outcome: &LoadOutcome) -> Result<Option<u64>> {
    if outcome.version == 0 {
        return Err(Error::NotFound {
            aggregate_type: A::TYPE.to_owned(),
            aggregate_id: id,
        });
    }
    Ok(match outcome.snapshot {
        SnapshotUse::Used { .. } | SnapshotUse::Upcast { .. } => Some(outcome.version),
        SnapshotUse::Discarded(_) => None,
    })
}

/// Compares the load through the snapshot with the full replay (`None`: no snapshot was
/// used) and logs the verdict: WARN for a mismatch, DEBUG otherwise.
pub(crate) fn verdict<A: Aggregate + PartialEq>(
    id: Uuid,
    via_snapshot: A,
    outcome: LoadOutcome,
    replay: Option<(A, LoadOutcome)>,
) -> Verification {
    let verdict = match replay {
        None => Verdict::NoSnapshot,
        Some((state, replayed)) if replayed.version == outcome.version && state == via_snapshot => Verdict::Agree,
        Some((state, replayed)) => {
            let (a, b) = (
                bounded_debug(&via_snapshot, VERIFY_DEBUG_LIMIT),
                bounded_debug(&state, VERIFY_DEBUG_LIMIT),
            );
            let first_difference = first_difference(&a, &b);
            warn!(
                target: TARGET,
                aggregate_type = A::TYPE,
                aggregate_id = %id,
                version = outcome.version,
                replay_version = replayed.version,
                snapshot = ?outcome.snapshot,
                first_difference,
                via_snapshot = ?a,
                via_replay = ?b,
                "the state loaded through the snapshot differs from a full replay: an apply that is not \
                 deterministic, or a state shape changed without raising schema_version"
            );
            Verdict::Mismatch(Mismatch {
                via_snapshot: a,
                via_replay: b,
                replay_version: replayed.version,
                first_difference,
            })
        }
    };
    if !matches!(verdict, Verdict::Mismatch(_)) {
        debug!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, version = outcome.version,
               snapshot = ?outcome.snapshot, verdict = ?verdict, "verified");
    }
    Verification {
        aggregate_id: id,
        version: outcome.version,
        snapshot: outcome.snapshot,
        verdict,
    }
}

/// `{:#?}` of `value`, cut after `limit` bytes (on a character boundary, marked with `…`);
/// a huge state is never printed whole.
pub(crate) fn bounded_debug(value: &impl std::fmt::Debug, limit: usize) -> String {
    struct Bounded {
        out: String,
        limit: usize,
        cut: bool,
    }
    impl std::fmt::Write for Bounded {
        fn write_str(&mut self, s: &str) -> std::fmt::Result {
            let room = self.limit.saturating_sub(self.out.len());
            if s.len() <= room {
                self.out.push_str(s);
                return Ok(());
            }
            let end = (0..=room).rev().find(|&i| s.is_char_boundary(i)).unwrap_or(0);
            self.out.push_str(s.get(..end).unwrap_or(""));
            self.cut = true;
            // Stops the formatting: nothing more is wanted.
            Err(std::fmt::Error)
        }
    }
    let mut w = Bounded {
        out: String::new(),
        limit,
        cut: false,
    };
    // An error here is our own cut (or a `Debug` impl's failure): keep what was written.
    let _ = std::fmt::Write::write_fmt(&mut w, format_args!("{value:#?}"));
    if w.cut {
        w.out.push('…');
    }
    w.out
}

/// The first line (from 1) where two texts differ, `None` when they are equal.
pub(crate) fn first_difference(a: &str, b: &str) -> Option<usize> {
    let (mut la, mut lb) = (a.lines(), b.lines());
    let mut line = 0;
    loop {
        line += 1;
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x != y => return Some(line),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|_| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "E".into(),
                event_version: 1,
                occurred_at: crate::time::now(),
                payload: Vec::new(),
                metadata: crate::Metadata::default(),
            })
            .collect()
    }

    #[test]
    fn already_committed_needs_every_id_in_order() {
        let b = batch(3);
        let ids: Vec<Uuid> = b.iter().map(|e| e.event_id).collect();
        assert!(already_committed(&b, &ids));
        // More events after ours: still ours at the expected positions.
        let mut longer = ids.clone();
        longer.push(Uuid::now_v7());
        assert!(already_committed(&b, &longer));
        // Fewer, reordered, or another writer's: not ours.
        assert!(!already_committed(&b, &ids[..2]));
        assert!(!already_committed(&b, &[ids[1], ids[0], ids[2]]));
        assert!(!already_committed(&b, &[Uuid::now_v7(), ids[1], ids[2]]));
        assert!(!already_committed(&[], &ids));
    }

    #[test]
    fn only_conflicts_and_duplicates_may_be_committed() {
        assert!(may_be_committed(&Error::DuplicateEvent { event_id: Uuid::nil() }));
        assert!(may_be_committed(&Error::Conflict {
            aggregate_type: "T".into(),
            aggregate_id: Uuid::nil(),
            expected: 1,
            actual: 3,
        }));
        assert!(!may_be_committed(&Error::NoSnapshotStore));
    }

    #[test]
    fn version_after_is_checked() {
        assert_eq!(version_after(3, &batch(2)).ok(), Some(5));
        assert!(matches!(
            version_after(u64::MAX, &batch(1)),
            Err(Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn bounded_debug_cuts_on_a_char_boundary_and_marks_the_cut() {
        assert_eq!(bounded_debug(&"abc", 100), "\"abc\"");
        let cut = bounded_debug(&"ééééé", 4);
        assert_eq!(cut, "\"é…", "4 bytes: the quote, one é, and half an é left out");
        assert!(bounded_debug(&vec![7u64; 10_000], 64).len() <= 64 + '…'.len_utf8());
    }

    #[test]
    fn first_difference_names_the_line() {
        assert_eq!(first_difference("a\nb\nc", "a\nb\nc"), None);
        assert_eq!(first_difference("a\nb\nc", "a\nx\nc"), Some(2));
        assert_eq!(first_difference("a\nb", "a\nb\nc"), Some(3));
        assert_eq!(first_difference("", "a"), Some(1));
    }

    #[test]
    fn rebuild_kinds() {
        assert!(Rebuild::Load.has_effects() && Rebuild::Load.uses_snapshot());
        assert!(!Rebuild::ViaSnapshot.has_effects() && Rebuild::ViaSnapshot.uses_snapshot());
        let replay = Rebuild::Replay { until: 9 };
        assert!(!replay.has_effects() && !replay.uses_snapshot());
        assert_eq!((replay.until(), Rebuild::Load.until()), (9, u64::MAX));
        // A load degrades on a snapshot store error; a verification returns it.
        assert!(matches!(
            Rebuild::Load.snapshot_read(Err(Error::NoSnapshotStore)),
            Ok(Err(_))
        ));
        assert!(Rebuild::ViaSnapshot.snapshot_read(Err(Error::NoSnapshotStore)).is_err());
        assert!(matches!(Rebuild::ViaSnapshot.snapshot_read(Ok(None)), Ok(Ok(None))));
    }
}
