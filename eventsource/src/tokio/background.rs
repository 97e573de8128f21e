//! The background snapshot worker of the async API: a tokio task draining a
//! [`SnapshotQueue`]. `save` only pushes (a short, non-async critical section), so a slow
//! or failing snapshot store never slows or fails it.

use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use ::tokio::sync::Notify;
use tracing::{warn, Instrument};

use super::store::SnapshotStore;
use crate::error::{Error, Result};
use crate::repository::core::{Counters, TARGET};
use crate::snapshot::queue::{PushOutcome, SnapshotQueue};
use crate::snapshot::Snapshot;

struct State {
    queue: SnapshotQueue,
    stopping: bool,
}

struct Shared {
    state: Mutex<State>,
    work: Notify,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle on the worker task. Dropping it asks the task to drain what is queued and stop;
/// the task finishes in the background as long as the runtime runs.
pub(crate) struct Background {
    shared: Arc<Shared>,
    counters: Arc<Counters>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shared.lock().stopping = true;
        self.shared.work.notify_one();
    }
}

impl Background {
    /// Starts the worker on the current runtime. Outside a runtime (which an async `save`
    /// cannot be) every snapshot pushed is dropped and counted.
    pub fn start<SS: SnapshotStore>(store: Arc<SS>, counters: Arc<Counters>, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: SnapshotQueue::new(capacity),
                stopping: false,
            }),
            work: Notify::new(),
            idle: Notify::new(),
        });
        match ::tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                let worker = Arc::clone(&shared);
                let worker_counters = Arc::clone(&counters);
                handle.spawn(async move { run(&worker, &*store, &worker_counters).await });
            }
            Err(e) => {
                warn!(target: TARGET, error = %e, "no tokio runtime: background snapshots are dropped");
                shared.lock().stopping = true;
            }
        }
        Self { shared, counters }
    }

    pub fn push(&self, snapshot: Snapshot) -> PushOutcome {
        let mut st = self.shared.lock();
        if st.stopping {
            return PushOutcome::Dropped;
        }
        let outcome = st.queue.push(snapshot);
        drop(st);
        self.shared.work.notify_one();
        outcome
    }

    /// Waits until nothing is queued or being written.
    pub async fn wait_idle(&self) {
        loop {
            let notified = self.shared.idle.notified();
            ::tokio::pin!(notified);
            notified.as_mut().enable();
            if self.shared.lock().queue.is_idle() {
                return;
            }
            notified.await;
        }
    }

    /// Waits at most `timeout` for the queue to drain.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        match ::tokio::time::timeout(timeout, self.wait_idle()).await {
            Ok(()) => Ok(()),
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Stops taking snapshots, drains the queue within `timeout`, and drops (counting)
    /// whatever is still queued after it.
    pub async fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.shared.lock().stopping = true;
        self.shared.work.notify_one();
        let drained = self.flush(timeout).await;
        if drained.is_err() {
            let mut st = self.shared.lock();
            while st.queue.pop().is_some() {
                st.queue.done();
                self.counters.record_dropped();
            }
        }
        drained
    }
}

async fn run<SS: SnapshotStore>(shared: &Shared, store: &SS, counters: &Counters) {
    loop {
        let next = {
            let mut st = shared.lock();
            match st.queue.pop() {
                Some(s) => Some(s),
                None if st.stopping => {
                    drop(st);
                    shared.idle.notify_waiters();
                    return;
                }
                None => None,
            }
        };
        let Some(snapshot) = next else {
            shared.work.notified().await;
            continue;
        };
        let result = store
            .save_snapshot(&snapshot)
            .instrument(crate::repository::core::snapshot_span(&snapshot, "background"))
            .await;
        counters.record_write(&result);
        if let Err(e) = &result {
            warn!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
                  version = snapshot.version, error = %e, "background snapshot write failed");
        }
        let idle = {
            let mut st = shared.lock();
            st.queue.done();
            st.queue.is_idle()
        };
        if idle {
            shared.idle.notify_waiters();
        }
    }
}
