//! The background snapshot worker of the sync API: one thread draining a
//! [`SnapshotQueue`]. Dropping it (with the repository) drains the queue, waiting at most
//! the shutdown timeout.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tracing::{error, warn};

use super::core::{Config, Counters, TARGET};
use crate::error::{Error, Result};
use crate::snapshot::queue::{PushOutcome, SnapshotQueue};
use crate::snapshot::Snapshot;
use crate::store::SnapshotStore;

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
pub(crate) struct Background {
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
    pub(crate) fn start<SS: SnapshotStore>(store: Arc<SS>, counters: Arc<Counters>, config: &Config) -> Self {
        let (capacity, shutdown_timeout) = (config.queue_capacity, config.shutdown_timeout);
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
            let result = {
                let _span = super::core::snapshot_span(&snapshot, "background").entered();
                store.save_snapshot(&snapshot)
            };
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

    pub(crate) fn push(&self, snapshot: Snapshot) -> PushOutcome {
        let mut st = self.shared.lock();
        if st.stopping {
            return PushOutcome::Dropped;
        }
        let outcome = st.queue.push(snapshot);
        drop(st);
        self.shared.work.notify_one();
        outcome
    }

    pub(crate) fn wait_idle(&self, timeout: Duration) -> Result<()> {
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
                    st = self
                        .shared
                        .idle
                        .wait_timeout(st, d - now)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
            }
        }
        Ok(())
    }

    pub(crate) fn shutdown(&self, timeout: Duration) -> Result<()> {
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
                    self.counters.record_dropped();
                }
                Err(e)
            }
        }
    }
}
