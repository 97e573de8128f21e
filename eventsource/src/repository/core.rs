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

/// The snapshot threshold used when none is configured (the reference guide's).
pub const DEFAULT_SNAPSHOT_THRESHOLD: u64 = 100;
/// Background queue capacity (aggregates) used when none is configured.
pub const DEFAULT_QUEUE_CAPACITY: usize = 1024;
/// How long dropping a repository (or `shutdown`) waits for queued background snapshots.
pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
        /// Snapshot when a save crosses a multiple of `n` events (default 100). 0 is rejected
        /// with [`Error::InvalidConfig`].
        pub fn snapshot_threshold(mut self, n: u64) -> Result<Self> {
            self.config.set_threshold(n)?;
            Ok(self)
        }

        /// When snapshots are written (default [`SnapshotMode::Sync`]).
        pub fn snapshot_mode(mut self, mode: SnapshotMode) -> Self {
            self.config.mode = mode;
            self
        }

        /// How many aggregates the background queue holds before it drops (default 1024).
        pub fn background_queue_capacity(mut self, capacity: usize) -> Self {
            self.config.queue_capacity = capacity.max(1);
            self
        }

        /// How long dropping the repository (sync API) or `shutdown` waits for queued
        /// background snapshots (default 5 s).
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

/// Counters of a repository's snapshot activity, shared with its background worker.
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

fn bump(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

impl Counters {
    pub fn record_load(&self, outcome: &LoadOutcome) {
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
            Ok(SnapshotWrite::Written) => bump(&self.writes),
            Ok(SnapshotWrite::KeptExisting) => bump(&self.kept_existing),
            Err(_) => bump(&self.failures),
        }
    }

    pub fn record_failure(&self) {
        bump(&self.failures);
    }

    pub fn record_dropped(&self) {
        bump(&self.dropped);
    }

    pub fn record_repair(&self) {
        bump(&self.repairs);
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
    pub fn misses(&self, reason: MissReason) -> u64 {
        self.misses[reason.index()]
    }

    /// Loads that replayed fully, for any reason.
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
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e,
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
                  version = snapshot.version, error = %e, "snapshot write failed; the save stands and loads replay");
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

/// How many snapshots a pre-population worker writes per batch (one transaction each on
/// the SQL stores, so one commit per batch instead of one per aggregate).
pub(crate) const PREPOPULATE_BATCH: usize = 64;

/// The running tally of a pre-population batch, shared by its workers.
pub(crate) struct Tally {
    total: usize,
    inner: Mutex<(usize, Vec<(Uuid, Error)>)>,
}

impl Tally {
    pub fn new(total: usize) -> Self {
        Self {
            total,
            inner: Mutex::new((0, Vec::new())),
        }
    }

    /// Records one aggregate's result; returns the progress to report.
    pub fn record<A: Aggregate>(&self, id: Uuid, result: Result<SnapshotWrite>) -> Progress {
        let mut st = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        st.0 += 1;
        if let Err(e) = result {
            warn!(target: TARGET, aggregate_type = A::TYPE, aggregate_id = %id, error = %e,
                  "pre-population failed for this aggregate");
            st.1.push((id, e));
        }
        Progress {
            done: st.0,
            total: self.total,
            failed: st.1.len(),
        }
    }

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
                    progress(self.record::<A>(id, result));
                }
            }
            Err(e) => {
                // The batch is one transaction: none of it was written.
                let message = format!("writing a batch of {} snapshots failed: {e}", ids.len());
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
        let (done, failed) = self.inner.into_inner().unwrap_or_else(PoisonError::into_inner);
        PrepopulateReport {
            total: self.total,
            succeeded: done - failed.len(),
            failed,
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
}
