//! The background snapshot worker of the sync API: one thread draining a
//! [`WorkerQueue`]. Dropping it (with the repository) drains the queue, waiting at most
//! the shutdown timeout.
//!
//! The worker cannot hang a caller:
//!
//! - A snapshot store that panics is contained: the panic is caught around the write,
//!   counted as a failure ([`SnapshotStats::failures`](crate::SnapshotStats)), logged at
//!   WARN (target `eventsource::repository`), and the worker goes on with the next
//!   snapshot.
//! - If the worker dies anyway (a panic outside the write, such as one raised while
//!   dropping a panic's payload) or its thread cannot be started, it is marked dead: what
//!   is queued is dropped and counted, later background snapshots are dropped and counted
//!   ([`SnapshotAction::Dropped`](crate::SnapshotAction)), and `flush`, `flush_timeout` and
//!   `shutdown` return [`Error::WorkerStopped`] at once instead of waiting.
//! - The worker holds its lock only to take or finish a snapshot, never across a write,
//!   and every lock is taken through [`PoisonError::into_inner`].
//!
//! The pieces both shells share (the [`WorkerQueue`] state machine, [`record_outcome`],
//! [`DeathGuard`]) are here and in [`crate::snapshot::queue`]; the async worker
//! (`eventsource::tokio`) only differs in how it waits.

use std::any::Any;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::core::{Config, Counters, SnapshotAction, TARGET};
use crate::error::{Error, Result};
use crate::snapshot::queue::{FlushState, Next, PushOutcome, WorkerQueue};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::SnapshotStore;

/// The outcome of one background write: the store's result, or the payload of a panic
/// caught around it.
pub(crate) type Caught = std::thread::Result<Result<SnapshotWrite>>;

/// The text of a panic payload (`panic!` gives a `&str` or a `String`).
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(a panic payload that is not a string)")
}

/// Counts and logs one background write, whatever became of it: written, kept, failed,
/// or panicked (a failure too). Shared by the sync and async workers.
pub(crate) fn record_outcome(counters: &Counters, snapshot: &Snapshot, outcome: Caught) {
    match outcome {
        Ok(result) => {
            counters.record_write(&result);
            if let Err(e) = &result {
                warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                      version = snapshot.version, error = %e.report(), "background snapshot write failed");
            }
        }
        Err(payload) => {
            counters.record_failure();
            warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                  version = snapshot.version, panic = panic_message(&*payload),
                  "the snapshot store panicked during a background write; counted as a failure");
            // The payload is dropped here, in the worker: a payload whose `Drop` panics
            // too is the one panic that escapes, and the `DeathGuard` takes over.
        }
    }
}

/// Counts and logs a synchronous snapshot write (`SnapshotMode::Sync`, a repair) whose
/// panic was caught: the events are committed, so a panicking store costs the snapshot
/// (a counted failure), never the save. Shared by the sync and async shells.
pub(crate) fn written_caught(counters: &Counters, outcome: Caught, snapshot: &Snapshot) -> SnapshotAction {
    match outcome {
        Ok(result) => super::core::written(counters, result, snapshot),
        Err(payload) => {
            counters.record_failure();
            warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                  version = snapshot.version, panic = panic_message(&*payload),
                  "the snapshot store panicked; counted as a failure, the save stands and loads replay");
            SnapshotAction::Failed
        }
    }
}

/// Marks a worker dead when it exits any way but the normal one (a panic, a runtime that
/// cannot be built). Armed on creation; [`disarm`](Self::disarm) on the normal exit.
pub(crate) struct DeathGuard<F: FnMut()> {
    on_death: Option<F>,
}

impl<F: FnMut()> DeathGuard<F> {
    /// A guard that runs `on_death` unless disarmed.
    pub(crate) fn new(on_death: F) -> Self {
        Self {
            on_death: Some(on_death),
        }
    }

    /// The worker exits normally.
    pub(crate) fn disarm(mut self) {
        self.on_death = None;
    }
}

impl<F: FnMut()> Drop for DeathGuard<F> {
    fn drop(&mut self) {
        if let Some(mut on_death) = self.on_death.take() {
            on_death();
        }
    }
}

/// Marks the worker dead under its lock, counts what it can no longer write as dropped,
/// and logs it. The shells then wake their flush waiters.
pub(crate) fn declare_dead(queue: &mut WorkerQueue, counters: &Counters) {
    let dropped = queue.die();
    count_dropped(counters, dropped);
    error!(target: TARGET, dropped,
           "the background snapshot worker stopped; queued and later background snapshots are dropped");
}

/// Counts `n` snapshots as dropped.
pub(crate) fn count_dropped(counters: &Counters, n: u64) {
    for _ in 0..n {
        counters.record_dropped();
    }
}

struct BgShared {
    state: Mutex<WorkerQueue>,
    work: Condvar,
    idle: Condvar,
}

impl BgShared {
    fn lock(&self) -> MutexGuard<'_, WorkerQueue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The background snapshot worker of the sync API: one thread draining a
/// [`WorkerQueue`].
/// Dropping it (with the repository) drains the queue, waiting at most the shutdown
/// timeout.
pub(crate) struct Background {
    shared: Arc<BgShared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    counters: Arc<Counters>,
    shutdown_timeout: Duration,
}

impl Drop for Background {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown(self.shutdown_timeout) {
            warn!(target: TARGET, error = %e.report(), "background snapshots not drained at drop");
        }
    }
}

impl Background {
    pub(crate) fn start<SS: SnapshotStore>(store: Arc<SS>, counters: Arc<Counters>, config: &Config) -> Self {
        let (capacity, shutdown_timeout) = (config.queue_capacity, config.shutdown_timeout);
        let shared = Arc::new(BgShared {
            state: Mutex::new(WorkerQueue::new(capacity)),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let worker_counters = Arc::clone(&counters);
        let spawned = std::thread::Builder::new()
            .name("eventsource-snapshots".into())
            .spawn(move || {
                let guard = DeathGuard::new(|| {
                    declare_dead(&mut worker.lock(), &worker_counters);
                    worker.idle.notify_all();
                });
                Self::run(&worker, &*store, &worker_counters);
                guard.disarm();
            });
        let thread = match spawned {
            Ok(handle) => Some(handle),
            Err(e) => {
                // Without a worker every background snapshot is dropped (and counted);
                // saves and loads are unaffected, flushes fail.
                error!(target: TARGET, error = %e, "cannot start the background snapshot thread");
                declare_dead(&mut shared.lock(), &counters);
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
                    match st.next() {
                        Next::Write(s) => break s,
                        Next::Exit => return,
                        Next::Wait => st = shared.work.wait(st).unwrap_or_else(PoisonError::into_inner),
                    }
                }
            };
            let outcome = {
                let _span = super::core::snapshot_span(&snapshot, "background").entered();
                std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| store.save_snapshot(&snapshot)))
            };
            record_outcome(counters, &snapshot, outcome);
            if shared.lock().done() {
                shared.idle.notify_all();
            }
        }
    }

    pub(crate) fn push(&self, snapshot: Snapshot) -> PushOutcome {
        let outcome = self.shared.lock().push(snapshot);
        self.shared.work.notify_one();
        outcome
    }

    /// Waits until nothing is queued or in flight; [`Error::WorkerStopped`] at once when
    /// the worker is gone, [`Error::Timeout`] after `timeout`.
    pub(crate) fn wait_idle(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now().checked_add(timeout);
        let mut st = self.shared.lock();
        loop {
            match st.flush_state() {
                FlushState::Idle => return Ok(()),
                FlushState::Dead => return Err(Error::WorkerStopped),
                FlushState::Busy => {}
            }
            match deadline {
                None => st = self.shared.idle.wait(st).unwrap_or_else(PoisonError::into_inner),
                Some(d) => {
                    let now = Instant::now();
                    if now >= d {
                        return Err(Error::Timeout(timeout));
                    }
                    st = self
                        .shared
                        .idle
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
    }

    /// Stops taking snapshots and drains the queue within `timeout`; what is still queued
    /// then is dropped and counted. A dead worker gives [`Error::WorkerStopped`].
    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.shared.lock().stop();
        self.shared.work.notify_all();
        let drained = self.wait_idle(timeout);
        let handle = self.thread.lock().unwrap_or_else(PoisonError::into_inner).take();
        match drained {
            Ok(()) => {
                // Stopping and idle: the worker is leaving its loop.
                if let Some(h) = handle {
                    if h.join().is_err() {
                        error!(target: TARGET, "background snapshot thread panicked");
                        return Err(Error::WorkerStopped);
                    }
                }
                Ok(())
            }
            Err(e) => {
                // Dead (its queue already dropped), or stuck in a slow write: leave the
                // thread detached and drop what waits.
                count_dropped(&self.counters, self.shared.lock().discard_pending());
                Err(e)
            }
        }
    }
}
