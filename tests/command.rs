//! The command API (`execute`, `execute_or_create`) with its retry policy, on memory and
//! SQLite, sync (threads) and async (tasks):
//!
//! - 8 contended writers on one stream all succeed; the stream holds exactly N events
//!   numbered 1..N, and the event of every command is stored exactly once;
//! - a domain error is not retried and saves nothing;
//! - a command that conflicts on every attempt gives up with the typed error carrying the
//!   attempt count and the last conflict, and saves nothing of its own;
//! - a store error other than a conflict is not retried;
//! - a command that records nothing saves nothing.
//!
//! PostgreSQL: `tests/command_postgres.rs`; kill -9: `tests/command_faults_sqlite.rs`.

mod common;

use std::collections::HashSet;
use std::convert::Infallible;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

use common::{item, Order};
use eventsource::{
    AggregateRepository, AggregateRoot, CommandError, Error, EventStore, InMemoryEventStore, InMemorySnapshotStore,
    Jitter, Result as EsResult, RetryPolicy, SnapshotStore, SqliteEventStore,
};
use uuid::Uuid;

const WRITERS: u64 = 8;
const COMMANDS: u64 = 40;

/// Generous enough that contended writers never give up in a test.
fn patient() -> RetryPolicy {
    RetryPolicy::default()
        .with_max_attempts(10_000)
        .with_base_delay(Duration::from_micros(50))
        .with_max_delay(Duration::from_millis(2))
        .with_jitter(Jitter::Full)
}

/// The command of writer `w`, number `c`: records one item and returns its event id.
fn add_item(tag: u64) -> impl FnMut(&mut AggregateRoot<Order>) -> Result<Uuid, Infallible> {
    move |order| {
        order.record(item(tag));
        Ok(order.uncommitted_event_ids()[0])
    }
}

/// The stream is numbered 1..=expected without gaps, and its event ids are exactly
/// `acknowledged` (each command's event once).
fn assert_exactly<ES: EventStore>(es: &ES, id: Uuid, acknowledged: &[Uuid]) {
    let mut stored = Vec::new();
    let mut next = 1;
    es.read_stream(id, "Order", 0, &mut |r| {
        assert_eq!(r.version, next, "gap or disorder");
        next += 1;
        stored.push(r.event_id);
        Ok(())
    })
    .expect("read");
    let stored_set: HashSet<Uuid> = stored.iter().copied().collect();
    let acked: HashSet<Uuid> = acknowledged.iter().copied().collect();
    assert_eq!(stored_set.len(), stored.len(), "an event is stored twice");
    assert_eq!(acked.len(), acknowledged.len(), "two commands acknowledged one event");
    assert_eq!(
        stored_set, acked,
        "the stored events are exactly the acknowledged commands' events"
    );
}

/// WRITERS threads run COMMANDS commands each on one aggregate. Taking turns (the
/// default), none conflicts; racing, conflicts are retried. Either way each command's event
/// is stored exactly once, numbered without gaps.
fn contended_sync<ES, SS>(repo: AggregateRepository<Order, ES, SS>, turns: bool)
where
    ES: EventStore + Sync,
    SS: SnapshotStore + Sync,
{
    let repo = repo.with_retry_policy(patient()).command_turns(turns);
    let id = Uuid::now_v7();
    let barrier = Barrier::new(WRITERS as usize);
    let results: Vec<(Vec<Uuid>, u32)> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..WRITERS)
            .map(|w| {
                let (repo, barrier) = (&repo, &barrier);
                s.spawn(move || {
                    barrier.wait();
                    let mut ids = Vec::new();
                    let mut retries = 0;
                    for c in 0..COMMANDS {
                        let done = repo
                            .execute_or_create(id, add_item(w * COMMANDS + c + 1))
                            .expect("command");
                        assert_eq!(done.save.appended, 1);
                        assert!(done.attempts >= 1);
                        retries += done.attempts - 1;
                        ids.push(done.value);
                    }
                    (ids, retries)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("writer")).collect()
    });
    let acked: Vec<Uuid> = results.iter().flat_map(|(ids, _)| ids.iter().copied()).collect();
    assert_eq!(acked.len() as u64, WRITERS * COMMANDS);
    assert_exactly(repo.event_store(), id, &acked);
    assert_eq!(repo.load(id).expect("load").version(), WRITERS * COMMANDS);
    let retries: u32 = results.iter().map(|(_, r)| r).sum();
    eprintln!("{} commands, {retries} retries", WRITERS * COMMANDS);
    if turns {
        assert_eq!(retries, 0, "commands taking turns never conflict with each other");
    }
}

fn memory_repo() -> AggregateRepository<Order, InMemoryEventStore, InMemorySnapshotStore> {
    AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(InMemorySnapshotStore::new())
        .snapshot_threshold(16)
        .expect("threshold")
}

fn sqlite_repo(
    dir: &tempfile::TempDir,
) -> AggregateRepository<Order, SqliteEventStore, eventsource::SqliteSnapshotStore> {
    let es = SqliteEventStore::open(dir.path().join("cmd.db")).expect("open");
    let ss = es.snapshot_store();
    AggregateRepository::<Order, _>::new(es)
        .with_snapshot_store(ss)
        .snapshot_threshold(16)
        .expect("threshold")
}

#[test]
fn contended_writers_in_memory_all_succeed_exactly_once() {
    contended_sync(memory_repo(), true);
    contended_sync(memory_repo(), false);
}

#[test]
fn contended_writers_on_sqlite_all_succeed_exactly_once() {
    let dir = tempfile::tempdir().expect("temp dir");
    contended_sync(sqlite_repo(&dir), true);
    contended_sync(sqlite_repo(&dir), false);
}

#[test]
fn turns_are_per_aggregate_and_a_panicking_command_passes_its_turn_on() {
    let repo = memory_repo();
    let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
    // A command on `a` holds its turn while a command on `b` runs: different aggregates
    // never wait for each other (this would deadlock otherwise).
    repo.execute_or_create(a, |order| {
        repo.execute_or_create(b, add_item(1)).expect("b inside a");
        order.record(item(2));
        Ok::<_, Infallible>(())
    })
    .expect("a");
    // A command that panics gives its turn to the next one.
    let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let _ = repo.execute_or_create(a, |_| -> Result<(), Infallible> { panic!("a bug in a command") });
    }));
    assert!(panicked.is_err());
    let done = repo.execute(a, add_item(3)).expect("the next command on a runs");
    assert_eq!((done.attempts, done.save.version), (1, 2));
}

/// A domain refusal: the order is full (at `items` events).
#[derive(Debug, PartialEq)]
struct Full {
    items: u64,
}

#[test]
fn a_domain_error_is_not_retried_and_saves_nothing() {
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
    let id = Uuid::now_v7();
    repo.execute_or_create(id, add_item(1)).expect("first");
    let calls = AtomicU32::new(0);
    let err = repo
        .execute(id, |order| {
            calls.fetch_add(1, Ordering::SeqCst);
            order.record(item(2)); // recorded, then rejected: must not be saved
            Err::<(), _>(Full { items: order.version() })
        })
        .expect_err("rejected");
    assert!(matches!(err, CommandError::Rejected(Full { items: 2 })), "{err:?}");
    assert_eq!(err.into_rejection(), Some(Full { items: 2 }));
    assert_eq!(calls.load(Ordering::SeqCst), 1, "a domain error is not retried");
    assert_eq!(repo.event_store().stream_version(id, "Order").expect("version"), 1);
}

#[test]
fn exhaustion_returns_the_attempt_count_and_the_last_conflict() {
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
    let id = Uuid::now_v7();
    repo.execute_or_create(id, add_item(1)).expect("first");
    let calls = AtomicU32::new(0);
    let mine = std::sync::Mutex::new(Vec::new());
    let policy = RetryPolicy::default()
        .with_max_attempts(3)
        .with_base_delay(Duration::from_micros(10));
    let err = repo
        .execute_with(id, &policy, |order| {
            calls.fetch_add(1, Ordering::SeqCst);
            order.record(item(100));
            mine.lock().expect("lock").push(order.uncommitted_event_ids()[0]);
            // Another writer gets in first, every time.
            let mut other = repo.load(id).expect("load");
            other.record(item(200));
            repo.save(&mut other).expect("interfering save");
            Ok::<_, Infallible>(())
        })
        .expect_err("exhausted");
    assert!(err.is_exhausted());
    match err {
        CommandError::Exhausted { attempts, last } => {
            assert_eq!(attempts, 3);
            assert!(matches!(last, Error::Conflict { .. }), "{last:?}");
        }
        other => panic!("expected Exhausted, got {other:?}"),
    }
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    // 1 + 3 interfering events; none of the command's.
    let mut stored = HashSet::new();
    repo.event_store()
        .read_stream(id, "Order", 0, &mut |r| {
            stored.insert(r.event_id);
            Ok(())
        })
        .expect("read");
    assert_eq!(stored.len(), 4);
    assert!(mine.lock().expect("lock").iter().all(|e| !stored.contains(e)));

    // No retry at all: one attempt.
    let err = repo
        .execute_with(id, &RetryPolicy::no_retry(), |order| {
            order.record(item(300));
            let mut other = repo.load(id).expect("load");
            other.record(item(400));
            repo.save(&mut other).expect("interfering save");
            Ok::<_, Infallible>(())
        })
        .expect_err("exhausted");
    assert!(matches!(err, CommandError::Exhausted { attempts: 1, .. }), "{err:?}");
}

/// An event store whose appends fail with a store error (not a conflict).
struct FailingAppends<E> {
    inner: E,
    appends: AtomicU32,
}

impl<E: EventStore> EventStore for FailingAppends<E> {
    type Codec = E::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn append(&self, _: Uuid, _: &str, _: u64, _: &[eventsource::NewEvent]) -> EsResult<u64> {
        self.appends.fetch_add(1, Ordering::SeqCst);
        Err(Error::Store {
            backend: "test",
            message: "injected: the disk is gone".into(),
            source: None,
        })
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut dyn FnMut(&eventsource::EventRecord<'_>) -> EsResult<()>,
    ) -> EsResult<()> {
        self.inner.read_stream(id, ty, after, visit)
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> EsResult<u64> {
        self.inner.stream_version(id, ty)
    }

    fn aggregates_by_event_count(&self, ty: &str, min_events: u64) -> EsResult<Vec<(Uuid, u64)>> {
        self.inner.aggregates_by_event_count(ty, min_events)
    }
}

#[test]
fn a_store_error_is_not_retried() {
    let repo = AggregateRepository::<Order, _>::new(FailingAppends {
        inner: InMemoryEventStore::new(),
        appends: AtomicU32::new(0),
    });
    let calls = AtomicU32::new(0);
    let err = repo
        .execute_or_create(Uuid::now_v7(), |order| {
            calls.fetch_add(1, Ordering::SeqCst);
            order.record(item(1));
            Ok::<_, Infallible>(())
        })
        .expect_err("store error");
    assert!(matches!(err, CommandError::Store(Error::Store { .. })), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(repo.event_store().appends.load(Ordering::SeqCst), 1);
    // The error chain reaches the store's error.
    let source = std::error::Error::source(&err).map(ToString::to_string);
    assert!(source.is_some_and(|s| s.contains("disk is gone") || s.contains("test")));

    // A load error (no such aggregate) is not retried either, and runs no command.
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
    let err = repo
        .execute(Uuid::now_v7(), |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            Ok::<_, Infallible>(())
        })
        .expect_err("not found");
    assert!(matches!(err, CommandError::Store(Error::NotFound { .. })), "{err:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 1);
}

/// An event store whose next append commits and then answers `Conflict`: what a store that
/// runs an append once more after a lost connection reports when the first run had
/// committed (the PostgreSQL stores do). The command must find its own events, not run again.
struct ConflictAfterCommit<E> {
    inner: E,
    armed: std::sync::atomic::AtomicBool,
}

impl<E: EventStore> EventStore for ConflictAfterCommit<E> {
    type Codec = E::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn append(&self, id: Uuid, ty: &str, expected: u64, events: &[eventsource::NewEvent]) -> EsResult<u64> {
        let after = self.inner.append(id, ty, expected, events)?;
        if self.armed.swap(false, Ordering::SeqCst) {
            return Err(Error::Conflict {
                aggregate_type: ty.to_owned(),
                aggregate_id: id,
                expected,
                actual: after,
            });
        }
        Ok(after)
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut dyn FnMut(&eventsource::EventRecord<'_>) -> EsResult<()>,
    ) -> EsResult<()> {
        self.inner.read_stream(id, ty, after, visit)
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> EsResult<u64> {
        self.inner.stream_version(id, ty)
    }

    fn aggregates_by_event_count(&self, ty: &str, min_events: u64) -> EsResult<Vec<(Uuid, u64)>> {
        self.inner.aggregates_by_event_count(ty, min_events)
    }
}

#[test]
fn a_conflict_that_is_the_commands_own_committed_batch_is_a_success() {
    let repo = AggregateRepository::<Order, _>::new(ConflictAfterCommit {
        inner: InMemoryEventStore::new(),
        armed: std::sync::atomic::AtomicBool::new(false),
    });
    let id = Uuid::now_v7();
    repo.execute_or_create(id, add_item(1)).expect("first");
    repo.event_store().armed.store(true, Ordering::SeqCst);
    let calls = AtomicU32::new(0);
    let done = repo
        .execute(id, |order| {
            calls.fetch_add(1, Ordering::SeqCst);
            order.record(item(2));
            Ok::<_, Infallible>(order.uncommitted_event_ids()[0])
        })
        .expect("the command committed");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "not run again");
    assert_eq!((done.attempts, done.save.version), (1, 2));
    assert!(done.save.already_committed);
    assert_exactly(
        &repo.event_store().inner,
        id,
        &[first_event(&repo.event_store().inner, id), done.value],
    );
}

fn first_event<ES: EventStore>(es: &ES, id: Uuid) -> Uuid {
    let mut first = None;
    es.read_stream(id, "Order", 0, &mut |r| {
        first.get_or_insert(r.event_id);
        Ok(())
    })
    .expect("read");
    first.expect("an event")
}

#[test]
fn a_command_that_records_nothing_saves_nothing() {
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
    let id = Uuid::now_v7();
    let done = repo
        .execute_or_create(id, |order| Ok::<_, Infallible>(order.version()))
        .expect("command");
    assert_eq!(
        (done.value, done.attempts, done.save.appended, done.save.version),
        (0, 1, 0, 0)
    );
    assert!(!repo.exists(id).expect("exists"));
    repo.execute_or_create(id, add_item(1)).expect("first");
    let done = repo
        .execute(id, |order| Ok::<_, Infallible>(order.version()))
        .expect("noop");
    assert_eq!((done.value, done.save.appended, done.save.version), (1, 0, 1));
    assert_eq!(repo.event_store().stream_version(id, "Order").expect("version"), 1);
}

#[test]
fn the_repository_policy_is_used_and_can_be_overridden() {
    let repo =
        AggregateRepository::<Order, _>::new(InMemoryEventStore::new()).with_retry_policy(RetryPolicy::no_retry());
    assert_eq!(repo.retry_policy().max_attempts(), 1);
    let id = Uuid::now_v7();
    repo.execute_or_create(id, add_item(1)).expect("first");
    let interfere = |repo: &AggregateRepository<Order, InMemoryEventStore>| {
        let mut other = repo.load(id).expect("load");
        other.record(item(9));
        repo.save(&mut other).expect("interfering save");
    };
    let err = repo
        .execute(id, |order| {
            order.record(item(2));
            interfere(&repo);
            Ok::<_, Infallible>(())
        })
        .expect_err("no retry");
    assert!(matches!(err, CommandError::Exhausted { attempts: 1, .. }));
    // With retries the second attempt wins (only the first one is interfered with).
    let first = AtomicU32::new(0);
    let done = repo
        .execute_with(id, &RetryPolicy::default().with_base_delay(Duration::ZERO), |order| {
            order.record(item(3));
            if first.fetch_add(1, Ordering::SeqCst) == 0 {
                interfere(&repo);
            }
            Ok::<_, Infallible>(())
        })
        .expect("retried");
    assert_eq!((done.attempts, done.save.version), (2, 4));
}

mod asynchronous {
    use super::*;
    use eventsource::tokio::{AggregateRepository, Blocking, EventStore as AsyncEventStore};

    async fn contended<ES>(repo: AggregateRepository<Order, ES>, read: impl Fn(Uuid) -> Vec<Uuid>, turns: bool)
    where
        ES: AsyncEventStore + Send + Sync + 'static,
    {
        let repo = Arc::new(repo.with_retry_policy(patient()).command_turns(turns));
        let id = Uuid::now_v7();
        let tasks: Vec<_> = (0..WRITERS)
            .map(|w| {
                let repo = Arc::clone(&repo);
                tokio::spawn(async move {
                    let mut ids = Vec::new();
                    for c in 0..COMMANDS {
                        let done = repo
                            .execute_or_create(id, add_item(w * COMMANDS + c + 1))
                            .await
                            .expect("command");
                        assert_eq!(done.save.appended, 1);
                        if turns {
                            assert_eq!(done.attempts, 1, "commands taking turns never conflict");
                        }
                        ids.push(done.value);
                    }
                    ids
                })
            })
            .collect();
        let mut acked = Vec::new();
        for t in tasks {
            acked.extend(t.await.expect("task"));
        }
        assert_eq!(acked.len() as u64, WRITERS * COMMANDS);
        let stored = read(id);
        assert_eq!(stored.len() as u64, WRITERS * COMMANDS);
        let stored: HashSet<Uuid> = stored.into_iter().collect();
        let acked: HashSet<Uuid> = acked.into_iter().collect();
        assert_eq!(stored, acked);
        assert_eq!(repo.load(id).await.expect("load").version(), WRITERS * COMMANDS);
    }

    fn read_all<ES: EventStore>(es: &ES, id: Uuid) -> Vec<Uuid> {
        let mut stored = Vec::new();
        let mut next = 1;
        es.read_stream(id, "Order", 0, &mut |r| {
            assert_eq!(r.version, next, "gap or disorder");
            next += 1;
            stored.push(r.event_id);
            Ok(())
        })
        .expect("read");
        stored
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn contended_tasks_in_memory_all_succeed_exactly_once() {
        let es = InMemoryEventStore::new();
        for turns in [true, false] {
            contended(
                AggregateRepository::<Order, _>::new(es.clone()),
                |id| read_all(&es, id),
                turns,
            )
            .await;
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn contended_tasks_on_sqlite_all_succeed_exactly_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let es = SqliteEventStore::open(dir.path().join("cmd.db")).expect("open");
        for turns in [true, false] {
            let reader = es.clone();
            contended(
                AggregateRepository::<Order, _>::new(Blocking::new(es.clone())),
                move |id| read_all(&reader, id),
                turns,
            )
            .await;
        }
    }

    #[tokio::test]
    async fn rejection_exhaustion_and_nothing_to_save() {
        let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new());
        let id = Uuid::now_v7();
        repo.execute_or_create(id, add_item(1)).await.expect("first");
        let calls = AtomicU32::new(0);
        let err = repo
            .execute(id, |order| {
                calls.fetch_add(1, Ordering::SeqCst);
                order.record(item(2));
                Err::<(), _>(Full { items: 0 })
            })
            .await
            .expect_err("rejected");
        assert!(matches!(err, CommandError::Rejected(Full { items: 0 })));
        assert_eq!(calls.load(Ordering::SeqCst), 1);

        let done = repo
            .execute(id, |o| Ok::<_, Infallible>(o.version()))
            .await
            .expect("noop");
        assert_eq!((done.value, done.save.appended), (1, 0));

        // Conflicts on every attempt: the interfering writer is a plain store append.
        let es = repo.event_store().clone();
        let policy = RetryPolicy::default()
            .with_max_attempts(4)
            .with_base_delay(Duration::from_micros(10));
        let err = repo
            .execute_with(id, &policy, |order| {
                calls.fetch_add(1, Ordering::SeqCst);
                order.record(item(3));
                let mut other = eventsource::AggregateRepository::<Order, _>::new(es.clone())
                    .load(id)
                    .expect("load");
                other.record(item(4));
                eventsource::AggregateRepository::<Order, _>::new(es.clone())
                    .save(&mut other)
                    .expect("interfering save");
                Ok::<_, Infallible>(())
            })
            .await
            .expect_err("exhausted");
        assert!(
            matches!(
                err,
                CommandError::Exhausted {
                    attempts: 4,
                    last: Error::Conflict { .. }
                }
            ),
            "{err:?}"
        );
        assert_eq!(calls.load(Ordering::SeqCst), 5);
        assert_eq!(read_all(&es, id).len(), 1 + 4);
    }
}
