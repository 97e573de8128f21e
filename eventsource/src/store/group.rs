//! Group commit: concurrent appends share one transaction and one commit.
//!
//! The machinery is the leader/follower pattern, with no thread of its own. A caller
//! enqueues its request under a mutex. If nobody holds the write path, the caller becomes
//! the leader: it drains what is queued (at most `max_batch` requests), runs the batch
//! through the backend's closure (one transaction, one savepoint per append, one commit),
//! publishes each request's result, and goes on until its own result is published. Every
//! other caller waits on a condition variable for its own result. A lone writer finds the
//! queue empty, leads a batch of one, and pays two uncontended mutex acquisitions.
//!
//! The decisions (what each caller of a batch receives, how a batch is cut from the
//! queue) are pure functions ([`fan_out`], [`take_batch`]), tested on their own; the
//! backends (SQLite, PostgreSQL) supply only the "run this batch" closure.

use std::collections::{HashMap, VecDeque};
use std::sync::{Condvar, Mutex, MutexGuard, PoisonError};

use tracing::debug;

use crate::error::{Error, Result};

/// The tracing target of the group commit machinery.
const TARGET: &str = "eventsource::store::group";

/// The default largest number of appends that share one commit.
pub(crate) const DEFAULT_MAX_BATCH: usize = 64;

/// The queue and the results, under the batcher's mutex.
struct Queue<Req, T> {
    /// Requests waiting for a leader, each with its ticket.
    pending: VecDeque<(u64, Req)>,
    /// Results published by a leader, waiting for their caller.
    done: HashMap<u64, Result<T>>,
    /// The next ticket.
    next: u64,
    /// Whether a caller is running a batch now.
    leading: bool,
    /// How many requests the last batch carried: concurrency seen a moment ago.
    last_batch: usize,
}

/// Lets concurrent callers share one transaction: see the [module docs](self).
pub(crate) struct Batcher<Req, T> {
    queue: Mutex<Queue<Req, T>>,
    changed: Condvar,
    max_batch: usize,
    backend: &'static str,
}

impl<Req, T> std::fmt::Debug for Batcher<Req, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Batcher")
            .field("max_batch", &self.max_batch)
            .finish_non_exhaustive()
    }
}

/// Scheduler yields a new leader gives the callers of the last batch to come back.
const GATHER_YIELDS: usize = 4;

/// Whether a leader should wait a moment for more requests before it drains the queue:
/// only when the last batch was shared and fewer are queued now than it carried.
pub(crate) fn gather(last_batch: usize, pending: usize, max: usize) -> bool {
    last_batch > 1 && pending < last_batch.min(max)
}

/// Takes the next batch off the queue: the oldest requests, at most `max` (at least one).
pub(crate) fn take_batch<R>(pending: &mut VecDeque<R>, max: usize) -> Vec<R> {
    let n = pending.len().min(max.max(1));
    pending.drain(..n).collect()
}

/// What each of the `n` callers of a batch receives, given how the batch ran.
///
/// - The batch committed (`Ok` with one result per caller): each caller gets its own
///   result, success or its own typed error.
/// - The batch as a whole failed (`Err`: the transaction could not start, a failure that
///   ended the transaction, the commit failed or its reply was lost): a lone caller gets
///   that error unchanged, as it would without group commit; with several callers each
///   gets an [`Error::Store`] that names the shared failure (nothing of the batch is
///   known to be written, as with a failed commit of a single append).
/// - A result count that does not match the callers (a backend bug) fails every caller
///   rather than hand anyone another caller's result.
pub(crate) fn fan_out<T>(batch: Result<Vec<Result<T>>>, n: usize, backend: &'static str) -> Vec<Result<T>> {
    match batch {
        Ok(results) if results.len() == n => results,
        Ok(results) => (0..n)
            .map(|_| {
                Err(Error::Store {
                    backend,
                    message: format!(
                        "group commit: the batch of {n} appends returned {} results; outcome unknown",
                        results.len()
                    ),
                    source: None,
                })
            })
            .collect(),
        Err(e) if n == 1 => vec![Err(e)],
        Err(e) => {
            let report = e.report().to_string();
            (0..n)
                .map(|_| {
                    Err(Error::Store {
                        backend,
                        message: format!("the shared transaction of {n} appends (group commit) failed: {report}"),
                        source: None,
                    })
                })
                .collect()
        }
    }
}

/// Publishes results when a leader's batch ends, also when the backend's closure
/// panicked (then each waiting caller gets an error instead of waiting forever).
struct Publish<'b, Req, T> {
    batcher: &'b Batcher<Req, T>,
    /// The leader's own ticket: nobody collects it if the leader panicked.
    own: u64,
    tickets: Vec<u64>,
    results: Option<Vec<Result<T>>>,
}

impl<Req, T> Drop for Publish<'_, Req, T> {
    fn drop(&mut self) {
        let backend = self.batcher.backend;
        let results = self.results.take().unwrap_or_else(|| {
            self.tickets
                .iter()
                .map(|_| {
                    Err(Error::Store {
                        backend,
                        message: "group commit: the leading caller panicked while running the batch; outcome unknown"
                            .into(),
                        source: None,
                    })
                })
                .collect()
        });
        let panicking = std::thread::panicking();
        let mut queue = self.batcher.lock();
        for (ticket, result) in self.tickets.iter().zip(results) {
            if !(panicking && *ticket == self.own) {
                queue.done.insert(*ticket, result);
            }
        }
        if panicking {
            queue.leading = false;
        }
        drop(queue);
        self.batcher.changed.notify_all();
    }
}

impl<Req, T> Batcher<Req, T> {
    /// A batcher that runs at most `max_batch` requests per transaction (at least 1).
    pub(crate) fn new(max_batch: usize, backend: &'static str) -> Self {
        Self {
            queue: Mutex::new(Queue {
                pending: VecDeque::new(),
                done: HashMap::new(),
                next: 0,
                leading: false,
                last_batch: 1,
            }),
            changed: Condvar::new(),
            max_batch: max_batch.max(1),
            backend,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Queue<Req, T>> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Submits `request` and returns its result, once the transaction that carried it has
    /// ended. `run` runs a batch (in the order given) and returns one result per request,
    /// or the error that failed the batch as a whole; it is called only on this thread,
    /// when this caller leads.
    pub(crate) fn submit(&self, request: Req, mut run: impl FnMut(Vec<Req>) -> Result<Vec<Result<T>>>) -> Result<T> {
        let mut queue = self.lock();
        let ticket = queue.next;
        queue.next = queue.next.wrapping_add(1);
        queue.pending.push_back((ticket, request));
        loop {
            if let Some(result) = queue.done.remove(&ticket) {
                return result;
            }
            if queue.leading {
                queue = self.changed.wait(queue).unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            // Lead until this caller's own result is published.
            queue.leading = true;
            while !queue.done.contains_key(&ticket) {
                // Callers answered by the last batch come back at about the same time; the
                // first of them finds the queue nearly empty. When the last batch was
                // shared, give the others a moment (a few scheduler yields, no sleep) to
                // queue theirs, so that batches do not alternate between one request and
                // the rest. A lone writer's batches are of one: it never waits.
                let mut yields = 0;
                while gather(queue.last_batch, queue.pending.len(), self.max_batch) && yields < GATHER_YIELDS {
                    drop(queue);
                    std::thread::yield_now();
                    yields += 1;
                    queue = self.lock();
                }
                let batch = take_batch(&mut queue.pending, self.max_batch);
                queue.last_batch = batch.len();
                drop(queue);
                let (tickets, requests): (Vec<u64>, Vec<Req>) = batch.into_iter().unzip();
                let n = tickets.len();
                let mut publish = Publish {
                    batcher: self,
                    own: ticket,
                    tickets,
                    results: None,
                };
                if n > 1 {
                    debug!(target: TARGET, appends = n, "group commit: running a shared batch");
                }
                publish.results = Some(fan_out(run(requests), n, self.backend));
                drop(publish);
                queue = self.lock();
            }
            queue.leading = false;
            let waiting = !queue.pending.is_empty();
            let result = queue.done.remove(&ticket);
            drop(queue);
            if waiting {
                // A follower whose request is still queued takes the lead.
                self.changed.notify_all();
            }
            if let Some(result) = result {
                return result;
            }
            queue = self.lock();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    use proptest::prelude::*;

    use super::*;

    fn conflict(n: u64) -> Error {
        Error::Conflict {
            aggregate_type: "T".into(),
            aggregate_id: uuid::Uuid::nil(),
            expected: n,
            actual: n + 1,
        }
    }

    #[test]
    fn take_batch_takes_the_oldest_up_to_max() {
        let mut q: VecDeque<u32> = (0..10).collect();
        assert_eq!(take_batch(&mut q, 4), vec![0, 1, 2, 3]);
        assert_eq!(take_batch(&mut q, 0), vec![4], "at least one");
        assert_eq!(take_batch(&mut q, 64), vec![5, 6, 7, 8, 9]);
        assert!(take_batch(&mut q, 3).is_empty());
    }

    #[test]
    fn a_committed_batch_gives_each_caller_its_own_result() {
        let out = fan_out(Ok(vec![Ok(1), Err(conflict(3)), Ok(7)]), 3, "test");
        assert!(matches!(out[0], Ok(1)));
        assert!(matches!(out[1], Err(Error::Conflict { expected: 3, .. })));
        assert!(matches!(out[2], Ok(7)));
    }

    #[test]
    fn a_failed_batch_fails_every_caller() {
        let out: Vec<Result<u64>> = fan_out(Err(conflict(1)), 3, "test");
        assert_eq!(out.len(), 3);
        for r in &out {
            match r {
                Err(Error::Store { message, .. }) => assert!(message.contains("shared transaction of 3"), "{message}"),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn a_lone_caller_gets_the_batch_error_unchanged() {
        let out: Vec<Result<u64>> = fan_out(Err(conflict(4)), 1, "test");
        assert!(matches!(out[..], [Err(Error::Conflict { expected: 4, .. })]));
    }

    #[test]
    fn a_miscounted_batch_hands_nobody_a_result() {
        let out = fan_out(Ok(vec![Ok(1u64)]), 2, "test");
        assert!(out.iter().all(|r| matches!(r, Err(Error::Store { .. }))));
    }

    proptest! {
        /// Whatever the shape, every caller gets exactly one answer, and a success only
        /// when the batch committed with that caller's own success.
        #[test]
        fn fan_out_answers_each_caller_once(
            outcomes in proptest::collection::vec(proptest::option::of(0u64..100), 0..70),
            committed in any::<bool>(),
            extra in 0usize..3,
        ) {
            let n = outcomes.len();
            let results: Vec<Result<u64>> = outcomes
                .iter()
                .map(|o| o.map_or_else(|| Err(conflict(0)), Ok))
                .collect();
            // `extra` > 0 simulates a backend that returned too many results.
            let mut batch_results = results;
            for _ in 0..extra {
                batch_results.push(Ok(0));
            }
            let batch = if committed { Ok(batch_results) } else { Err(conflict(9)) };
            let out = fan_out(batch, n, "test");
            prop_assert_eq!(out.len(), n);
            for (i, r) in out.iter().enumerate() {
                match r {
                    Ok(v) => {
                        prop_assert!(committed && extra == 0);
                        prop_assert_eq!(Some(*v), outcomes[i]);
                    }
                    Err(Error::Conflict { expected: 0, .. }) => {
                        prop_assert!(committed && extra == 0 && outcomes[i].is_none());
                    }
                    Err(Error::Conflict { expected: 9, .. }) => prop_assert!(!committed && n == 1),
                    Err(_) => prop_assert!(!committed || extra > 0),
                }
            }
        }
    }

    #[test]
    fn concurrent_callers_each_get_their_own_result_and_share_batches() {
        let batcher = Arc::new(Batcher::<u64, u64>::new(8, "test"));
        let batches = Arc::new(AtomicUsize::new(0));
        let largest = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..8u64)
            .map(|t| {
                let (batcher, batches, largest) = (Arc::clone(&batcher), Arc::clone(&batches), Arc::clone(&largest));
                std::thread::spawn(move || {
                    for i in 0..200u64 {
                        let request = t * 1_000 + i;
                        let got = batcher.submit(request, |reqs| {
                            batches.fetch_add(1, Ordering::Relaxed);
                            largest.fetch_max(reqs.len(), Ordering::Relaxed);
                            assert!(reqs.len() <= 8);
                            std::thread::sleep(std::time::Duration::from_micros(200));
                            Ok(reqs
                                .into_iter()
                                .map(|r| if r % 7 == 0 { Err(conflict(r)) } else { Ok(r * 2) })
                                .collect())
                        });
                        match got {
                            Ok(v) => assert_eq!(v, request * 2),
                            Err(Error::Conflict { expected, .. }) => {
                                assert_eq!(expected, request);
                                assert_eq!(request % 7, 0);
                            }
                            Err(e) => panic!("{e}"),
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(batches.load(Ordering::Relaxed) <= 1_600);
        assert!(largest.load(Ordering::Relaxed) >= 1);
        let queue = batcher.lock();
        assert!(queue.pending.is_empty() && queue.done.is_empty() && !queue.leading);
    }

    #[test]
    fn a_panicking_leader_fails_its_batch_and_hands_on_the_lead() {
        let batcher = Arc::new(Batcher::<u64, u64>::new(8, "test"));
        let b = Arc::clone(&batcher);
        let panicked = std::thread::spawn(move || b.submit(1, |_| panic!("backend bug"))).join();
        assert!(panicked.is_err());
        // The next caller leads normally.
        assert_eq!(
            batcher
                .submit(2, |reqs| Ok(reqs.into_iter().map(Ok).collect()))
                .unwrap(),
            2
        );
        let queue = batcher.lock();
        assert!(!queue.leading && queue.done.is_empty() && queue.pending.is_empty());
    }

    #[test]
    fn a_leader_gathers_only_after_a_shared_batch() {
        assert!(!gather(1, 0, 64), "a lone writer never waits");
        assert!(!gather(0, 0, 64));
        assert!(gather(7, 1, 64), "the others of a batch of 7 are coming back");
        assert!(!gather(7, 7, 64), "all of them are queued");
        assert!(!gather(100, 64, 64), "a full batch is queued");
    }
}
