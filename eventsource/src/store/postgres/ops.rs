//! The parts of each operation that do not touch a connection, shared by the sync and async
//! adapters: parameter building with checked conversions, and reading what a statement's
//! outcome means.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use tracing::warn;
use uuid::Uuid;

use super::conn::{to_i32, to_i64, TARGET};
use super::rows;
use super::sql;
use super::wire::Body;
use crate::error::{Error, Result};
use crate::event::NewEvent;
use crate::snapshot::{Snapshot, SnapshotWrite};

/// The parameters of one statement.
pub(crate) type Params<'a, const N: usize> = [&'a (dyn ToSql + Sync); N];

/// Metadata of a batch, encoded as JSON before anything is sent.
pub(crate) fn encode_metadata(events: &[NewEvent]) -> Result<Vec<String>> {
    events.iter().map(|e| e.metadata.to_json()).collect()
}

/// A batch to append: one array per column, for [`sql::APPEND`].
#[derive(Debug)]
pub(crate) struct AppendBatch<'a> {
    pub aggregate_id: Uuid,
    pub aggregate_type: &'a str,
    pub expected: u64,
    expected_sql: i64,
    /// The stream version after the batch.
    pub new_version: u64,
    pub ids: Vec<Uuid>,
    types: Vec<&'a str>,
    event_versions: Vec<i32>,
    occurred: Vec<DateTime<Utc>>,
    payloads: Vec<Body<'a>>,
    metadata: Vec<Body<'a>>,
}

impl<'a> AppendBatch<'a> {
    /// Checks the batch (ids unique within it, versions in range) and lays it out in columns.
    pub(crate) fn new(
        aggregate_id: Uuid,
        aggregate_type: &'a str,
        expected: u64,
        events: &'a [NewEvent],
        metadata: &'a [String],
    ) -> Result<Self> {
        let mut seen = HashSet::with_capacity(events.len());
        for e in events {
            if !seen.insert(e.event_id) {
                return Err(Error::DuplicateEvent { event_id: e.event_id });
            }
        }
        let new_version = expected
            .checked_add(events.len() as u64)
            .ok_or_else(|| Error::OutOfRange {
                what: "stream version",
                value: format!("{expected} + {}", events.len()),
            })?;
        to_i64("stream version", new_version)?;
        Ok(AppendBatch {
            aggregate_id,
            aggregate_type,
            expected,
            expected_sql: to_i64("stream version", expected)?,
            new_version,
            ids: events.iter().map(|e| e.event_id).collect(),
            types: events.iter().map(|e| e.event_type.as_str()).collect(),
            event_versions: events
                .iter()
                .map(|e| to_i32("event version", u64::from(e.event_version)))
                .collect::<Result<_>>()?,
            occurred: events.iter().map(|e| e.occurred_at).collect(),
            payloads: events.iter().map(|e| Body(&e.payload)).collect(),
            metadata: metadata.iter().map(|m| Body(m.as_bytes())).collect(),
        })
    }

    /// The statement that appends this batch, run with [`AppendBatch::params`].
    pub(crate) fn statement(&self) -> &'static sql::Stmt {
        &sql::APPEND
    }

    /// The parameters of [`sql::APPEND`].
    pub(crate) fn params(&self) -> Params<'_, 9> {
        [
            &self.aggregate_id,
            &self.aggregate_type,
            &self.expected_sql,
            &self.ids,
            &self.types,
            &self.event_versions,
            &self.occurred,
            &self.payloads,
            &self.metadata,
        ]
    }

    /// What the `INSERT` did.
    pub(crate) fn outcome(&self, result: Result<u64>) -> AppendOutcome {
        match result {
            Ok(n) if n == self.ids.len() as u64 => AppendOutcome::Appended(self.new_version),
            // The version check in the statement's WHERE inserted nothing.
            Ok(_) => AppendOutcome::Conflict,
            Err(e) => match super::conn::violated_constraint(&e) {
                Some(sql::UQ_STREAM_VERSION) => AppendOutcome::Conflict,
                Some(sql::UQ_EVENT_ID) => AppendOutcome::DuplicateEvent,
                _ => AppendOutcome::Failed(e),
            },
        }
    }

    /// The conflict error, once the actual version was read.
    pub(crate) fn conflict(&self, actual: u64) -> Error {
        Error::Conflict {
            aggregate_type: self.aggregate_type.to_owned(),
            aggregate_id: self.aggregate_id,
            expected: self.expected,
            actual,
        }
    }

    /// The duplicate error, given the stored id that was found (if the lookup found one).
    pub(crate) fn duplicate(&self, found: Option<Uuid>) -> Error {
        let event_id = found.or_else(|| self.ids.first().copied()).unwrap_or_default();
        Error::DuplicateEvent { event_id }
    }
}

/// What an append statement's result means.
#[derive(Debug)]
pub(crate) enum AppendOutcome {
    /// Written; the new stream version.
    Appended(u64),
    /// The stream was not at the expected version: read the actual one.
    Conflict,
    /// An event id already exists: find which.
    DuplicateEvent,
    /// Anything else.
    Failed(Error),
}

/// The conflict of an empty append, if the stream is not where the caller thinks.
pub(crate) fn check_empty_append(aggregate_id: Uuid, aggregate_type: &str, expected: u64, actual: u64) -> Result<u64> {
    if actual == expected {
        Ok(expected)
    } else {
        Err(Error::Conflict {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id,
            expected,
            actual,
        })
    }
}

/// The parameters of [`sql::SNAPSHOT_UPSERT`].
#[derive(Debug)]
pub(crate) struct SnapshotRow<'a> {
    aggregate_id: Uuid,
    aggregate_type: &'a str,
    version: i32,
    schema_version: i32,
    state: Body<'a>,
    created_at: DateTime<Utc>,
}

impl<'a> SnapshotRow<'a> {
    /// Converts the versions (the guide's `snapshots.version` is an `INTEGER`).
    pub(crate) fn new(snapshot: &'a Snapshot) -> Result<Self> {
        Ok(SnapshotRow {
            aggregate_id: snapshot.aggregate_id,
            aggregate_type: &snapshot.aggregate_type,
            version: to_i32("snapshot version", snapshot.version)?,
            schema_version: to_i32("snapshot schema version", u64::from(snapshot.schema_version))?,
            state: Body(&snapshot.state),
            created_at: snapshot.created_at,
        })
    }

    /// The parameters of [`sql::SNAPSHOT_UPSERT`].
    pub(crate) fn params(&self) -> Params<'_, 6> {
        [
            &self.aggregate_id,
            &self.aggregate_type,
            &self.version,
            &self.schema_version,
            &self.state,
            &self.created_at,
        ]
    }
}

/// A batch of snapshots as the arrays of [`sql::SNAPSHOT_UPSERT_BATCH`]. `None` when the
/// batch names one aggregate twice (it must then be written one snapshot at a time).
pub(crate) struct SnapshotBatch<'a> {
    ids: Vec<Uuid>,
    types: Vec<&'a str>,
    versions: Vec<i32>,
    schema_versions: Vec<i32>,
    states: Vec<Body<'a>>,
    created_at: Vec<DateTime<Utc>>,
}

impl<'a> SnapshotBatch<'a> {
    /// Converts the batch, checking every version; `Ok(None)` for a batch with a repeated
    /// aggregate.
    pub(crate) fn new(snapshots: &'a [Snapshot]) -> Result<Option<Self>> {
        let mut seen = HashSet::with_capacity(snapshots.len());
        if !snapshots
            .iter()
            .all(|s| seen.insert((s.aggregate_id, s.aggregate_type.as_str())))
        {
            return Ok(None);
        }
        let mut batch = SnapshotBatch {
            ids: Vec::with_capacity(snapshots.len()),
            types: Vec::with_capacity(snapshots.len()),
            versions: Vec::with_capacity(snapshots.len()),
            schema_versions: Vec::with_capacity(snapshots.len()),
            states: Vec::with_capacity(snapshots.len()),
            created_at: Vec::with_capacity(snapshots.len()),
        };
        for s in snapshots {
            let row = SnapshotRow::new(s)?;
            batch.ids.push(row.aggregate_id);
            batch.types.push(row.aggregate_type);
            batch.versions.push(row.version);
            batch.schema_versions.push(row.schema_version);
            batch.states.push(row.state);
            batch.created_at.push(row.created_at);
        }
        Ok(Some(batch))
    }

    /// The parameters of [`sql::SNAPSHOT_UPSERT_BATCH`].
    pub(crate) fn params(&self) -> Params<'_, 6> {
        [
            &self.ids,
            &self.types,
            &self.versions,
            &self.schema_versions,
            &self.states,
            &self.created_at,
        ]
    }
}

/// The outcome of each snapshot of a batch, from the rows the batch upsert returned.
pub(crate) fn batch_writes(snapshots: &[Snapshot], written: &[Row]) -> Result<Vec<SnapshotWrite>> {
    let mut keys = HashSet::with_capacity(written.len());
    for row in written {
        let id: Uuid = row.try_get(0).map_err(|e| Error::MalformedRow {
            table: "snapshots",
            message: format!("column `aggregate_id`: {e}"),
        })?;
        let ty: String = row.try_get(1).map_err(|e| Error::MalformedRow {
            table: "snapshots",
            message: format!("column `aggregate_type`: {e}"),
        })?;
        keys.insert((id, ty));
    }
    Ok(snapshots
        .iter()
        .map(|s| {
            if keys.contains(&(s.aggregate_id, s.aggregate_type.clone())) {
                SnapshotWrite::Written
            } else {
                SnapshotWrite::KeptExisting
            }
        })
        .collect())
}

/// Rule 4's outcome, from the upsert's affected row count.
pub(crate) fn snapshot_write(rows: u64) -> SnapshotWrite {
    if rows == 0 {
        SnapshotWrite::KeptExisting
    } else {
        SnapshotWrite::Written
    }
}

/// The `schema_version_below` parameter of [`sql::SNAPSHOTS_DELETE_BY_TYPE`] (a `BIGINT`:
/// every `u32` fits).
pub(crate) fn schema_bound(schema_version_below: Option<u32>) -> Option<i64> {
    schema_version_below.map(i64::from)
}

/// Where a joint read is with its header row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Header {
    /// Not seen yet.
    Pending,
    /// Decoded and handed to the visitor.
    Asked,
    /// Unreadable: the visitor was not called, and the read answers `false`, so the
    /// repository reads the snapshot store and the stream on their own and reports the
    /// snapshot failure as such (a bad snapshot row never fails a load).
    Unreadable,
}

impl Header {
    /// Decodes the header row, moving to `Asked` or `Unreadable`.
    pub(crate) fn decode(&mut self, row: &Row, aggregate_id: Uuid, aggregate_type: &str) -> Option<rows::JointHeader> {
        match rows::joint_header(row, aggregate_id, aggregate_type) {
            Ok(h) => {
                *self = Header::Asked;
                Some(h)
            }
            Err(e) => {
                *self = Header::Unreadable;
                warn!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, error = %e.report(),
                      "snapshot row unreadable in the joint read; falling back to separate reads");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Metadata;

    fn event() -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event_type: "ItemAdded".into(),
            event_version: 1,
            occurred_at: crate::time::now(),
            payload: b"{}".to_vec(),
            metadata: Metadata::default(),
        }
    }

    #[test]
    fn a_batch_repeating_an_id_is_refused_before_sending() {
        let e = event();
        let events = [e.clone(), e.clone()];
        let meta = encode_metadata(&events).unwrap_or_default();
        let err = AppendBatch::new(Uuid::nil(), "Order", 0, &events, &meta);
        assert!(matches!(err, Err(Error::DuplicateEvent { event_id }) if event_id == e.event_id));
    }

    #[test]
    fn versions_beyond_bigint_are_out_of_range() {
        let events = [event()];
        let meta = encode_metadata(&events).unwrap_or_default();
        let err = AppendBatch::new(Uuid::nil(), "Order", i64::MAX as u64, &events, &meta);
        assert!(matches!(err, Err(Error::OutOfRange { .. })));
        let mut big = event();
        big.event_version = u32::MAX;
        let events = [big];
        assert!(matches!(
            AppendBatch::new(Uuid::nil(), "Order", 0, &events, &meta),
            Err(Error::OutOfRange { .. })
        ));
    }

    #[test]
    fn zero_rows_inserted_is_a_conflict() {
        let events = [event()];
        let meta = encode_metadata(&events).unwrap_or_default();
        let Ok(batch) = AppendBatch::new(Uuid::nil(), "Order", 3, &events, &meta) else {
            panic!("batch")
        };
        assert!(matches!(batch.outcome(Ok(0)), AppendOutcome::Conflict));
        assert!(matches!(batch.outcome(Ok(1)), AppendOutcome::Appended(4)));
    }

    #[test]
    fn snapshot_versions_must_fit_integer() {
        let s = Snapshot {
            aggregate_id: Uuid::nil(),
            aggregate_type: "Order".into(),
            version: 1 << 31,
            schema_version: 1,
            state: vec![],
            created_at: crate::time::now(),
        };
        assert!(matches!(SnapshotRow::new(&s), Err(Error::OutOfRange { .. })));
        assert_eq!(snapshot_write(0), SnapshotWrite::KeptExisting);
        assert_eq!(snapshot_write(1), SnapshotWrite::Written);
        assert_eq!(schema_bound(Some(u32::MAX)), Some(i64::from(u32::MAX)));
    }
}
