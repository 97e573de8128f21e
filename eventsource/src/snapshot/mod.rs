//! Snapshots: the model, and the pure decisions about them.
//!
//! A snapshot is a cache of an aggregate's state at a stream version; the event stream is
//! the truth. Every decision the repositories make about snapshots lives in the private
//! module `policy` as a pure function (no I/O, no clock), shared by the sync shell
//! ([`crate::repository`]) and the async one, and tested by property tests; `load` is the
//! sans-IO load machine both shells drive, and `queue` the bounded, coalescing queue of
//! background mode, also free of I/O. What users see of them is re-exported here.

pub(crate) mod load;
pub(crate) mod policy;
pub(crate) mod queue;

use chrono::{DateTime, Utc};
use uuid::Uuid;

pub use load::{LoadOutcome, SnapshotUse};
pub use policy::{MissReason, SnapshotMode};

/// A stored snapshot: an aggregate's encoded state at a stream version.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot {
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: String,
    /// The stream version the state includes (the last applied event).
    pub version: u64,
    /// The aggregate's `SCHEMA_VERSION` when the state was encoded.
    pub schema_version: u32,
    /// The encoded state.
    pub state: Vec<u8>,
    /// When the snapshot was taken.
    pub created_at: DateTime<Utc>,
}

impl Snapshot {
    /// The key of the row (one snapshot per aggregate).
    #[must_use]
    pub fn key(&self) -> SnapshotKey {
        SnapshotKey {
            aggregate_id: self.aggregate_id,
            aggregate_type: self.aggregate_type.clone(),
        }
    }
}

/// Identifies an aggregate's snapshot row.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SnapshotKey {
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The aggregate type.
    pub aggregate_type: String,
}

/// What a snapshot store did with a write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SnapshotWrite {
    /// The snapshot was stored (inserted or replaced an older one).
    Written,
    /// A snapshot at least as new was already stored; it was kept (rule: writes never go
    /// backwards).
    KeptExisting,
}
