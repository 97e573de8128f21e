//! Monitoring of snapshots beside their event streams: the reference guide's coverage,
//! freshness and high-event queries as typed calls, implemented by the SQL stores.

use uuid::Uuid;

use crate::error::Result;

/// Snapshot coverage of one aggregate type (the guide's "Check Snapshot Coverage").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coverage {
    /// The aggregate type.
    pub aggregate_type: String,
    /// Aggregates of the type with at least one event.
    pub total_aggregates: u64,
    /// Of those, how many have a snapshot.
    pub with_snapshot: u64,
    /// Of those, how many have none.
    pub without_snapshot: u64,
}

/// A snapshot many events behind its stream (the guide's "Check Snapshot Freshness").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleSnapshot {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The aggregate id.
    pub aggregate_id: Uuid,
    /// The stream version the snapshot holds.
    pub snapshot_version: u64,
    /// The stream's last version.
    pub current_version: u64,
    /// `current_version - snapshot_version`.
    pub events_since_snapshot: u64,
}

/// How many snapshots of a type are stored at one state schema version: what
/// `delete_snapshots_by_type(type, Some(n))` would remove is the sum of the rows of that type
/// below `n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotVersions {
    /// The aggregate type.
    pub aggregate_type: String,
    /// The state schema version the snapshots were written with.
    pub schema_version: u32,
    /// How many snapshots of the type have it.
    pub snapshots: u64,
}

/// Monitoring queries over a snapshot store and the events beside it, for deciding what
/// to pre-populate and checking a migration to snapshots. SQL stores implement it with
/// the reference guide's queries.
pub trait SnapshotMonitor {
    /// Per aggregate type (having events): how many aggregates, how many with a snapshot,
    /// how many without. Ordered by type.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the query fails.
    fn coverage(&self) -> Result<Vec<Coverage>>;

    /// Snapshots more than `min_events_since` events behind their stream, worst first.
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the query fails.
    fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>>;

    /// Aggregates of a type with more than `min_events` events and their event counts,
    /// most first (the guide's "prioritize high-event aggregates").
    ///
    /// # Errors
    ///
    /// [`Error::Store`](crate::Error::Store) when the query fails.
    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>>;

    /// The stored snapshots counted per aggregate type and schema version, ordered by type
    /// then version (reads the snapshots table alone).
    fn snapshot_versions(&self) -> Result<Vec<SnapshotVersions>>;
}
