//! Sync stores that do I/O (SQLite) on tokio's blocking pool, never on the runtime's
//! worker threads.
//!
//! Each call runs on `spawn_blocking`. Reads stream: the blocking side sends rows in chunks
//! through a bounded channel, and the async side hands them to the visitor as they come,
//! so a long stream never sits in memory whole and the runtime never waits on SQLite.

use std::future::Future;
use std::sync::Arc;

use ::tokio::sync::{mpsc, oneshot};
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::store::{EventStore, SendJointVisitor, SnapshotStore, Visit, VisitReplay};
use crate::error::{Error, Result};
use crate::event::{EventRecord, NewEvent, ReplayEvent};
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{self, JointVisitor, StoreLocation};

/// Rows per chunk sent from the blocking thread.
const CHUNK: usize = 256;
/// Chunks in flight between the blocking thread and the visitor.
const CHUNKS_IN_FLIGHT: usize = 4;

/// Runs a sync store on tokio's blocking pool; implements the async store traits.
///
/// ```no_run
/// # #[cfg(feature = "sqlite")]
/// # async fn demo() -> eventsource::Result<()> {
/// use eventsource::tokio::Blocking;
/// let events = Blocking::new(eventsource::SqliteEventStore::open("app.db")?);
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Blocking<S>(Arc<S>);

impl<S> Clone for Blocking<S> {
    fn clone(&self) -> Self {
        Blocking(Arc::clone(&self.0))
    }
}

impl<S> Blocking<S> {
    /// Wraps a sync store.
    pub fn new(store: S) -> Self {
        Blocking(Arc::new(store))
    }

    /// The wrapped store.
    #[must_use]
    pub fn inner(&self) -> &S {
        &self.0
    }
}

fn joined<T>(result: std::result::Result<Result<T>, ::tokio::task::JoinError>) -> Result<T> {
    result.unwrap_or_else(|e| Err(Error::store("blocking", "the blocking task failed", e)))
}

async fn run<S, T, F>(store: &Arc<S>, f: F) -> Result<T>
where
    S: Send + Sync + 'static,
    T: Send + 'static,
    F: FnOnce(&S) -> Result<T> + Send + 'static,
{
    let store = Arc::clone(store);
    joined(::tokio::task::spawn_blocking(move || f(&store)).await)
}

/// A stored event owned, to cross from the blocking thread.
struct OwnedRecord {
    global_position: i64,
    event_id: Uuid,
    aggregate_id: Uuid,
    event_type: String,
    event_version: u32,
    version: u64,
    occurred_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    payload: Vec<u8>,
    metadata: Vec<u8>,
}

impl OwnedRecord {
    fn new(r: &EventRecord<'_>) -> Self {
        Self {
            global_position: r.global_position,
            event_id: r.event_id,
            aggregate_id: r.aggregate_id,
            event_type: r.event_type.to_owned(),
            event_version: r.event_version,
            version: r.version,
            occurred_at: r.occurred_at,
            stored_at: r.stored_at,
            payload: r.payload.to_vec(),
            metadata: r.metadata.to_vec(),
        }
    }

    fn view<'a>(&'a self, aggregate_type: &'a str) -> EventRecord<'a> {
        EventRecord {
            global_position: self.global_position,
            event_id: self.event_id,
            aggregate_id: self.aggregate_id,
            aggregate_type,
            event_type: &self.event_type,
            event_version: self.event_version,
            version: self.version,
            occurred_at: self.occurred_at,
            stored_at: self.stored_at,
            payload: &self.payload,
            metadata: &self.metadata,
        }
    }
}

/// What a replay needs of an event, owned, to cross from the blocking thread.
struct OwnedReplay {
    version: u64,
    event_type: String,
    event_version: u32,
    payload: Vec<u8>,
}

impl OwnedReplay {
    fn new(r: &ReplayEvent<'_>) -> Self {
        Self {
            version: r.version,
            event_type: r.event_type.to_owned(),
            event_version: r.event_version,
            payload: r.payload.to_vec(),
        }
    }

    fn view(&self) -> ReplayEvent<'_> {
        ReplayEvent {
            version: self.version,
            event_type: &self.event_type,
            event_version: self.event_version,
            payload: &self.payload,
        }
    }
}

enum Message<T> {
    Snapshot(Option<Snapshot>, oneshot::Sender<bool>),
    Events(Vec<T>),
}

fn cancelled() -> Error {
    Error::Store {
        backend: "blocking",
        message: "the reader went away".into(),
        source: None,
    }
}

/// The blocking side of a streamed read: batches rows and forwards them.
struct Forward<T> {
    tx: mpsc::Sender<Message<T>>,
    chunk: Vec<T>,
}

impl<T> Forward<T> {
    fn new(tx: mpsc::Sender<Message<T>>) -> Self {
        Self {
            tx,
            chunk: Vec::with_capacity(CHUNK),
        }
    }

    fn push(&mut self, item: T) -> Result<()> {
        self.chunk.push(item);
        if self.chunk.len() == CHUNK {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<()> {
        if self.chunk.is_empty() {
            return Ok(());
        }
        let chunk = std::mem::replace(&mut self.chunk, Vec::with_capacity(CHUNK));
        self.tx.blocking_send(Message::Events(chunk)).map_err(|_| cancelled())
    }
}

impl JointVisitor for Forward<OwnedReplay> {
    fn snapshot(&mut self, snapshot: Option<Snapshot>) -> Result<bool> {
        let (answer, decision) = oneshot::channel();
        self.tx
            .blocking_send(Message::Snapshot(snapshot, answer))
            .map_err(|_| cancelled())?;
        decision.blocking_recv().map_err(|_| cancelled())
    }

    fn event(&mut self, event: &ReplayEvent<'_>) -> Result<()> {
        self.push(OwnedReplay::new(event))
    }
}

/// The async side: feeds what arrives to the visitor, then returns the blocking side's
/// result (or the visitor's error, which stops the blocking side).
async fn drain<T, R>(
    mut rx: mpsc::Receiver<Message<T>>,
    handle: ::tokio::task::JoinHandle<Result<R>>,
    mut on_snapshot: impl FnMut(Option<Snapshot>) -> Result<bool>,
    mut each: impl FnMut(&T) -> Result<()>,
) -> Result<R> {
    while let Some(message) = rx.recv().await {
        match message {
            Message::Snapshot(snapshot, answer) => {
                let go_on = on_snapshot(snapshot)?;
                // The blocking side waits for the answer; if it is gone, its result says why.
                let _ = answer.send(go_on);
            }
            Message::Events(chunk) => {
                for item in &chunk {
                    each(item)?;
                }
            }
        }
    }
    joined(handle.await)
}

impl<S: store::EventStore> EventStore for Blocking<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.0.codec()
    }

    fn append(
        &self,
        id: Uuid,
        ty: &str,
        expected: u64,
        events: &[NewEvent],
    ) -> impl Future<Output = Result<u64>> + Send {
        let (ty, events) = (ty.to_owned(), events.to_vec());
        run(&self.0, move |s| s.append(id, &ty, expected, &events))
    }

    fn read_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut Visit<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let store = Arc::clone(&self.0);
        let owned_ty = ty.to_owned();
        async move {
            let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
            let reader_ty = owned_ty.clone();
            let handle = ::tokio::task::spawn_blocking(move || {
                let mut forward = Forward::new(tx);
                store.read_stream(id, &reader_ty, after, &mut |r| forward.push(OwnedRecord::new(r)))?;
                forward.flush()
            });
            drain(rx, handle, |_| Ok(false), |r: &OwnedRecord| visit(&r.view(&owned_ty))).await
        }
    }

    fn replay_stream(
        &self,
        id: Uuid,
        ty: &str,
        after: u64,
        visit: &mut VisitReplay<'_>,
    ) -> impl Future<Output = Result<()>> + Send {
        let store = Arc::clone(&self.0);
        let ty = ty.to_owned();
        async move {
            let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
            let handle = ::tokio::task::spawn_blocking(move || {
                let mut forward = Forward::new(tx);
                store.replay_stream(id, &ty, after, &mut |r| forward.push(OwnedReplay::new(r)))?;
                forward.flush()
            });
            drain(rx, handle, |_| Ok(false), |r: &OwnedReplay| visit(&r.view())).await
        }
    }

    fn stream_version(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<u64>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.stream_version(id, &ty))
    }

    fn aggregates_by_event_count(
        &self,
        ty: &str,
        min_events: u64,
    ) -> impl Future<Output = Result<Vec<(Uuid, u64)>>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.aggregates_by_event_count(&ty, min_events))
    }

    fn location(&self) -> Option<StoreLocation> {
        self.0.location()
    }

    fn read_with_snapshot(
        &self,
        id: Uuid,
        ty: &str,
        visitor: &mut dyn SendJointVisitor,
    ) -> impl Future<Output = Result<bool>> + Send {
        let store = Arc::clone(&self.0);
        let reader_ty = ty.to_owned();
        async move {
            let (tx, rx) = mpsc::channel(CHUNKS_IN_FLIGHT);
            let handle = ::tokio::task::spawn_blocking(move || {
                let mut forward = Forward::new(tx);
                let supported = store.read_with_snapshot(id, &reader_ty, &mut forward)?;
                forward.flush()?;
                Ok(supported)
            });
            // One visitor, two roles: the snapshot decision and the events.
            let visitor = std::sync::Mutex::new(visitor);
            let lock = || visitor.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            drain(
                rx,
                handle,
                |s| lock().snapshot(s),
                |r: &OwnedReplay| lock().event(&r.view()),
            )
            .await
        }
    }
}

impl<S: store::SnapshotStore> SnapshotStore for Blocking<S> {
    type Codec = S::Codec;

    fn codec(&self) -> &Self::Codec {
        self.0.codec()
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> impl Future<Output = Result<SnapshotWrite>> + Send {
        let snapshot = snapshot.clone();
        run(&self.0, move |s| s.save_snapshot(&snapshot))
    }

    fn save_snapshots(&self, snapshots: &[Snapshot]) -> impl Future<Output = Result<Vec<SnapshotWrite>>> + Send {
        let snapshots = snapshots.to_vec();
        run(&self.0, move |s| s.save_snapshots(&snapshots))
    }

    fn get_snapshot(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<Option<Snapshot>>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.get_snapshot(id, &ty))
    }

    fn delete_snapshot(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<bool>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.delete_snapshot(id, &ty))
    }

    fn delete_snapshots_by_type(&self, ty: &str, below: Option<u32>) -> impl Future<Output = Result<u64>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.delete_snapshots_by_type(&ty, below))
    }

    fn snapshot_exists(&self, id: Uuid, ty: &str) -> impl Future<Output = Result<bool>> + Send {
        let ty = ty.to_owned();
        run(&self.0, move |s| s.snapshot_exists(id, &ty))
    }

    fn location(&self) -> Option<StoreLocation> {
        self.0.location()
    }
}
