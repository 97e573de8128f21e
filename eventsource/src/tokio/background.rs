//! The background snapshot worker of the async API. `save` only pushes to a
//! [`WorkerQueue`] (a short, non-async critical section), so a slow or failing snapshot
//! store never slows or fails it.
//!
//! The worker runs on a thread of its own ("eventsource-snapshots") with its own small
//! current-thread tokio runtime, started with the first background snapshot. Its lifetime
//! is the repository's, not the runtime's that happened to be current then: a repository
//! built inside one runtime keeps writing its snapshots when that runtime has ended and it
//! is used from another one (or from a `#[tokio::test]` after another). The store's
//! futures run on the worker's runtime (`spawn_blocking` in [`Blocking`](super::Blocking)
//! uses that runtime's blocking pool); a store whose connections belong to a runtime that
//! has ended fails its writes, which are counted as failures.
//!
//! The rules are the sync worker's (`crate::repository::background`), with the same shared
//! pieces: a panic in the store is caught around the write, counted as a failure, logged
//! at WARN; a worker that dies anyway (or whose thread or runtime cannot be started) is
//! marked dead, what it held is counted as dropped, later snapshots are dropped, and
//! `flush` / `flush_timeout` / `shutdown` return [`Error::WorkerStopped`] at once.
//!
//! Dropping the repository stops the worker from taking snapshots; the thread writes what
//! is already queued and exits (as long as the process runs). Call `shutdown(timeout)` to
//! wait for that.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::pin::pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::Poll;
use std::time::Duration;

use ::tokio::sync::Notify;
use tracing::{error, Instrument};

use super::store::SnapshotStore;
use crate::error::{Error, Result};
use crate::repository::background::{count_dropped, declare_dead, record_outcome, Caught, DeathGuard};
use crate::repository::core::{Counters, TARGET};
use crate::snapshot::queue::{FlushState, Next, PushOutcome, WorkerQueue};
use crate::snapshot::Snapshot;

struct Shared {
    state: Mutex<WorkerQueue>,
    work: Notify,
    idle: Notify,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, WorkerQueue> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Handle on the worker thread. Dropping it asks the worker to write what is queued and
/// stop.
pub(crate) struct Background {
    shared: Arc<Shared>,
    counters: Arc<Counters>,
}

impl Drop for Background {
    fn drop(&mut self) {
        self.shared.lock().stop();
        self.shared.work.notify_one();
    }
}

impl Background {
    /// Starts the worker thread and its runtime. If either cannot start, the worker is
    /// dead from the outset: every snapshot pushed is dropped and counted, flushes fail.
    pub fn start<SS: SnapshotStore>(store: Arc<SS>, counters: Arc<Counters>, capacity: usize) -> Self {
        let shared = Arc::new(Shared {
            state: Mutex::new(WorkerQueue::new(capacity)),
            work: Notify::new(),
            idle: Notify::new(),
        });
        let worker = Arc::clone(&shared);
        let worker_counters = Arc::clone(&counters);
        let spawned = std::thread::Builder::new()
            .name("eventsource-snapshots".into())
            .spawn(move || {
                let (worker, counters) = (&*worker, &*worker_counters);
                let guard = DeathGuard::new(|| {
                    declare_dead(&mut worker.lock(), counters);
                    worker.idle.notify_waiters();
                });
                let runtime = match ::tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(rt) => rt,
                    Err(e) => {
                        error!(target: TARGET, error = %e, "cannot build the background snapshot runtime");
                        return;
                    }
                };
                runtime.block_on(async {
                    // The store is dropped on the worker's runtime.
                    let store = store;
                    run(worker, &*store, counters).await;
                });
                guard.disarm();
            });
        if let Err(e) = spawned {
            error!(target: TARGET, error = %e, "cannot start the background snapshot thread");
            declare_dead(&mut shared.lock(), &counters);
        }
        Self { shared, counters }
    }

    pub fn push(&self, snapshot: Snapshot) -> PushOutcome {
        let outcome = self.shared.lock().push(snapshot);
        self.shared.work.notify_one();
        outcome
    }

    /// Waits until nothing is queued or being written; [`Error::WorkerStopped`] at once
    /// when the worker is gone.
    pub async fn wait_idle(&self) -> Result<()> {
        loop {
            let notified = self.shared.idle.notified();
            let mut notified = pin!(notified);
            notified.as_mut().enable();
            match self.shared.lock().flush_state() {
                FlushState::Idle => return Ok(()),
                FlushState::Dead => return Err(Error::WorkerStopped),
                FlushState::Busy => {}
            }
            notified.await;
        }
    }

    /// Waits at most `timeout` for the queue to drain.
    pub async fn flush(&self, timeout: Duration) -> Result<()> {
        match ::tokio::time::timeout(timeout, self.wait_idle()).await {
            Ok(drained) => drained,
            Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// Stops taking snapshots, drains the queue within `timeout`, and drops (counting)
    /// whatever is still queued after it.
    pub async fn shutdown(&self, timeout: Duration) -> Result<()> {
        self.shared.lock().stop();
        self.shared.work.notify_one();
        let drained = self.flush(timeout).await;
        if drained.is_err() {
            count_dropped(&self.counters, self.shared.lock().discard_pending());
        }
        drained
    }
}

/// Makes the future with `make` and polls it, each step inside `catch_unwind`: a panic
/// ends it with the payload. Making it is caught too, since a store may do its work
/// before its first poll (the in-memory stores do it all when called). (Like
/// `futures::FutureExt::catch_unwind`, which needs `futures-util`'s `std` feature.)
pub(crate) async fn caught<F: Future>(make: impl FnOnce() -> F) -> std::thread::Result<F::Output> {
    let fut = std::panic::catch_unwind(AssertUnwindSafe(make))?;
    let mut fut = pin!(fut);
    std::future::poll_fn(
        move |cx| match std::panic::catch_unwind(AssertUnwindSafe(|| fut.as_mut().poll(cx))) {
            Ok(Poll::Ready(out)) => Poll::Ready(Ok(out)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(payload) => Poll::Ready(Err(payload)),
        },
    )
    .await
}

async fn run<SS: SnapshotStore>(shared: &Shared, store: &SS, counters: &Counters) {
    loop {
        let next = shared.lock().next();
        let snapshot = match next {
            Next::Write(s) => s,
            Next::Exit => {
                shared.idle.notify_waiters();
                return;
            }
            Next::Wait => {
                shared.work.notified().await;
                continue;
            }
        };
        let outcome: Caught = caught(|| {
            store
                .save_snapshot(&snapshot)
                .instrument(crate::repository::core::snapshot_span(&snapshot, "background"))
        })
        .await;
        record_outcome(counters, &snapshot, outcome);
        let idle = shared.lock().done();
        if idle {
            shared.idle.notify_waiters();
        }
    }
}
