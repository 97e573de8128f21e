//! Store wrappers that inject failures and delays, for both APIs.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use eventsource::{Error, Result, Snapshot, SnapshotWrite};
use uuid::Uuid;

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
