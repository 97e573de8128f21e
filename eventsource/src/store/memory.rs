//! In-memory stores: thread-safe, for tests and as the floor no storage can beat.
//!
//! Cloning a store shares its contents.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, PoisonError, RwLock};

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::{EventStore, SnapshotStore};
use crate::codec::{Codec, JsonCodec};
use crate::error::{Error, Result};
use crate::event::{EventRecord, NewEvent};
use crate::snapshot::policy::{write_decision, SnapshotHeader, WriteDecision};
use crate::snapshot::{Snapshot, SnapshotWrite};

type StreamKey = (String, Uuid);

#[derive(Debug)]
struct Row {
    global_position: i64,
    event_id: Uuid,
    event_type: String,
    event_version: u32,
    occurred_at: DateTime<Utc>,
    stored_at: DateTime<Utc>,
    payload: Vec<u8>,
    metadata: String,
}

#[derive(Debug, Default)]
struct Events {
    streams: HashMap<StreamKey, Vec<Row>>,
    ids: HashSet<Uuid>,
    position: i64,
}

/// An in-memory [`EventStore`].
#[derive(Debug, Clone, Default)]
pub struct InMemoryEventStore<C: Codec = JsonCodec> {
    inner: Arc<RwLock<Events>>,
    codec: C,
}

impl InMemoryEventStore<JsonCodec> {
    /// An empty store with the JSON codec.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Codec> InMemoryEventStore<C> {
    /// An empty store with the given codec.
    pub fn with_codec(codec: C) -> Self {
        Self {
            inner: Arc::default(),
            codec,
        }
    }

    /// Number of events in all streams.
    pub fn event_count(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).ids.len()
    }
}

impl<C: Codec> EventStore for InMemoryEventStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    fn append(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        expected_version: u64,
        events: &[NewEvent],
    ) -> Result<u64> {
        // Encode metadata before taking the lock: nothing below can fail half way.
        let metadata = events
            .iter()
            .map(|e| e.metadata.to_json())
            .collect::<Result<Vec<_>>>()?;
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let inner = &mut *guard;
        let key = (aggregate_type.to_owned(), aggregate_id);
        let actual = inner.streams.get(&key).map_or(0, |s| s.len() as u64);
        if actual != expected_version {
            return Err(Error::Conflict {
                aggregate_type: aggregate_type.to_owned(),
                aggregate_id,
                expected: expected_version,
                actual,
            });
        }
        let mut batch_ids = HashSet::with_capacity(events.len());
        for e in events {
            if inner.ids.contains(&e.event_id) || !batch_ids.insert(e.event_id) {
                return Err(Error::DuplicateEvent { event_id: e.event_id });
            }
        }
        let stored_at = crate::time::now();
        let stream = inner.streams.entry(key).or_default();
        for (e, metadata) in events.iter().zip(metadata) {
            inner.position += 1;
            inner.ids.insert(e.event_id);
            stream.push(Row {
                global_position: inner.position,
                event_id: e.event_id,
                event_type: e.event_type.clone(),
                event_version: e.event_version,
                occurred_at: e.occurred_at,
                stored_at,
                payload: e.payload.clone(),
                metadata,
            });
        }
        Ok(actual.saturating_add(events.len() as u64))
    }

    fn read_stream(
        &self,
        aggregate_id: Uuid,
        aggregate_type: &str,
        after_version: u64,
        visit: &mut dyn FnMut(&EventRecord<'_>) -> Result<()>,
    ) -> Result<()> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let Some(stream) = guard.streams.get(&(aggregate_type.to_owned(), aggregate_id)) else {
            return Ok(());
        };
        let start = usize::try_from(after_version).unwrap_or(usize::MAX).min(stream.len());
        for (i, row) in stream.iter().enumerate().skip(start) {
            visit(&EventRecord {
                global_position: row.global_position,
                event_id: row.event_id,
                aggregate_id,
                aggregate_type,
                event_type: &row.event_type,
                event_version: row.event_version,
                version: i as u64 + 1,
                occurred_at: row.occurred_at,
                stored_at: row.stored_at,
                payload: &row.payload,
                metadata: row.metadata.as_bytes(),
            })?;
        }
        Ok(())
    }

    fn stream_version(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<u64> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        Ok(guard
            .streams
            .get(&(aggregate_type.to_owned(), aggregate_id))
            .map_or(0, |s| s.len() as u64))
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        let mut out: Vec<(Uuid, u64)> = guard
            .streams
            .iter()
            .filter(|((t, _), s)| t == aggregate_type && s.len() as u64 > min_events)
            .map(|((_, id), s)| (*id, s.len() as u64))
            .collect();
        out.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        Ok(out)
    }
}

/// An in-memory [`SnapshotStore`].
#[derive(Debug, Clone, Default)]
pub struct InMemorySnapshotStore<C: Codec = JsonCodec> {
    inner: Arc<RwLock<HashMap<StreamKey, Snapshot>>>,
    codec: C,
}

impl InMemorySnapshotStore<JsonCodec> {
    /// An empty store with the JSON codec.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }
}

impl<C: Codec> InMemorySnapshotStore<C> {
    /// An empty store with the given codec.
    pub fn with_codec(codec: C) -> Self {
        Self {
            inner: Arc::default(),
            codec,
        }
    }

    /// Stores a snapshot as is, bypassing the version guard (for tests that plant old,
    /// corrupt or bogus snapshots).
    pub fn put_unchecked(&self, snapshot: Snapshot) {
        let key = (snapshot.aggregate_type.clone(), snapshot.aggregate_id);
        self.inner
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, snapshot);
    }

    /// Number of snapshots stored.
    pub fn len(&self) -> usize {
        self.inner.read().unwrap_or_else(PoisonError::into_inner).len()
    }

    /// Whether no snapshot is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl<C: Codec> SnapshotStore for InMemorySnapshotStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let key = (snapshot.aggregate_type.clone(), snapshot.aggregate_id);
        let existing = guard.get(&key).map(|s| SnapshotHeader {
            version: s.version,
            schema_version: s.schema_version,
        });
        let new = SnapshotHeader {
            version: snapshot.version,
            schema_version: snapshot.schema_version,
        };
        match write_decision(existing, new) {
            WriteDecision::Write => {
                guard.insert(key, snapshot.clone());
                Ok(SnapshotWrite::Written)
            }
            WriteDecision::Keep => Ok(SnapshotWrite::KeptExisting),
        }
    }

    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        let guard = self.inner.read().unwrap_or_else(PoisonError::into_inner);
        Ok(guard.get(&(aggregate_type.to_owned(), aggregate_id)).cloned())
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        Ok(guard.remove(&(aggregate_type.to_owned(), aggregate_id)).is_some())
    }

    fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64> {
        let mut guard = self.inner.write().unwrap_or_else(PoisonError::into_inner);
        let before = guard.len();
        guard.retain(|(t, _), s| t != aggregate_type || schema_version_below.is_some_and(|n| s.schema_version >= n));
        Ok((before - guard.len()) as u64)
    }
}
