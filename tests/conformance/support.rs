//! Store wrappers that inject failures and delays, for both APIs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eventsource::{Error, Result, Snapshot, SnapshotWrite};
use uuid::Uuid;

thread_local! {
    static IDS_PER_AGGREGATE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Tells the checks run on this thread whether the stores keep event ids unique per
/// aggregate (PostgreSQL's partitioned layout) rather than across all aggregates.
pub fn set_event_ids_per_aggregate(on: bool) {
    IDS_PER_AGGREGATE.with(|c| c.set(on));
}

/// Whether the stores under test keep event ids unique per aggregate only.
pub fn event_ids_per_aggregate() -> bool {
    IDS_PER_AGGREGATE.with(std::cell::Cell::get)
}

/// A snapshot store that can be told to fail or to be slow.
pub struct Faulty<S> {
    pub inner: S,
    pub fail_reads: AtomicBool,
    pub fail_writes: AtomicBool,
    pub write_delay_ms: AtomicU64,
    pub writes_attempted: AtomicU64,
}

impl<S> Faulty<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            fail_reads: AtomicBool::new(false),
            fail_writes: AtomicBool::new(false),
            write_delay_ms: AtomicU64::new(0),
            writes_attempted: AtomicU64::new(0),
        }
    }

    fn injected(what: &str) -> Error {
        Error::Store {
            backend: "faulty",
            message: format!("injected {what} failure"),
            source: None,
        }
    }

    /// Counts the attempt; returns the delay to apply and whether to fail.
    fn before_write(&self) -> (Duration, bool) {
        self.writes_attempted.fetch_add(1, Ordering::SeqCst);
        (
            Duration::from_millis(self.write_delay_ms.load(Ordering::SeqCst)),
            self.fail_writes.load(Ordering::SeqCst),
        )
    }

    fn read_fails(&self) -> bool {
        self.fail_reads.load(Ordering::SeqCst)
    }
}

impl<S: eventsource::SnapshotStore> eventsource::SnapshotStore for Faulty<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        let (delay, fail) = self.before_write();
        std::thread::sleep(delay);
        if fail {
            return Err(Self::injected("write"));
        }
        self.inner.save_snapshot(snapshot)
    }

    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        if self.read_fails() {
            return Err(Self::injected("read"));
        }
        self.inner.get_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        self.inner.delete_snapshot(aggregate_id, aggregate_type)
    }

    fn delete_snapshots_by_type(&self, aggregate_type: &str, below: Option<u32>) -> Result<u64> {
        self.inner.delete_snapshots_by_type(aggregate_type, below)
    }
}

impl<S: eventsource::tokio::SnapshotStore> eventsource::tokio::SnapshotStore for Faulty<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    async fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        let (delay, fail) = self.before_write();
        tokio::time::sleep(delay).await;
        if fail {
            return Err(Self::injected("write"));
        }
        self.inner.save_snapshot(snapshot).await
    }

    async fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        if self.read_fails() {
            return Err(Self::injected("read"));
        }
        self.inner.get_snapshot(aggregate_id, aggregate_type).await
    }

    async fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        self.inner.delete_snapshot(aggregate_id, aggregate_type).await
    }

    async fn delete_snapshots_by_type(&self, aggregate_type: &str, below: Option<u32>) -> Result<u64> {
        self.inner.delete_snapshots_by_type(aggregate_type, below).await
    }
}

/// An event store whose next append, once armed, commits and then reports a lost
/// connection: the reply of a committed append lost on the way back.
pub struct LostReply<E> {
    pub inner: E,
    pub armed: AtomicBool,
}

impl<E> LostReply<E> {
    pub fn new(inner: E) -> Self {
        Self {
            inner,
            armed: AtomicBool::new(false),
        }
    }

    fn lost(&self, committed: Result<u64>) -> Result<u64> {
        if self.armed.swap(false, Ordering::SeqCst) {
            committed?;
            return Err(Error::Store {
                backend: "lost-reply",
                message: "injected: the append committed, then the connection was lost".into(),
                source: None,
            });
        }
        committed
    }
}

impl<E: eventsource::EventStore> eventsource::EventStore for LostReply<E> {
    type Codec = E::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    fn append(&self, id: Uuid, ty: &str, expected: u64, events: &[eventsource::NewEvent]) -> Result<u64> {
        self.lost(self.inner.append(id, ty, expected, events))
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut dyn FnMut(&eventsource::EventRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        self.inner.read_stream(id, ty, after, visit)
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> Result<u64> {
        self.inner.stream_version(id, ty)
    }

    fn aggregates_by_event_count(&self, ty: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        self.inner.aggregates_by_event_count(ty, min_events)
    }
}

impl<E: eventsource::tokio::EventStore> eventsource::tokio::EventStore for LostReply<E> {
    type Codec = E::Codec;

    fn codec(&self) -> &Self::Codec {
        self.inner.codec()
    }

    async fn append(&self, id: Uuid, ty: &str, expected: u64, events: &[eventsource::NewEvent]) -> Result<u64> {
        let committed = self.inner.append(id, ty, expected, events).await;
        self.lost(committed)
    }

    async fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut eventsource::tokio::Visit<'_>,
    ) -> Result<()> {
        self.inner.read_stream(id, ty, after, visit).await
    }

    async fn stream_version(&self, id: Uuid, ty: &str) -> Result<u64> {
        self.inner.stream_version(id, ty).await
    }

    async fn aggregates_by_event_count(&self, ty: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        self.inner.aggregates_by_event_count(ty, min_events).await
    }
}
