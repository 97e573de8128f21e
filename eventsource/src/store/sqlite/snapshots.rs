//! [`SnapshotStore`] for [`SqliteSnapshotStore`].

use rusqlite::{params, Connection, TransactionBehavior};
use tracing::debug;
use uuid::Uuid;

use super::convert::{sql_error, to_i64, Columns, Encoded, UuidText};
use super::{sql, SqliteSnapshotStore, TARGET};
use crate::codec::Codec;
use crate::error::Result;
use crate::snapshot::{Snapshot, SnapshotWrite};
use crate::store::{SnapshotStore, StoreLocation};

impl<C: Codec> SnapshotStore for SqliteSnapshotStore<C> {
    type Codec = C;

    fn codec(&self) -> &C {
        &self.codec
    }

    /// An upsert guarded in SQL by rule 4 (`sql::UPSERT_SNAPSHOT`): atomic, so a slow
    /// write that lands after a newer one changes nothing and reports
    /// [`SnapshotWrite::KeptExisting`].
    fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
        self.db.pool.with(|conn| upsert::<C>(conn, snapshot))
    }

    /// All in one `BEGIN IMMEDIATE` transaction: one commit (one `fsync`) for the batch,
    /// all or nothing.
    fn save_snapshots(&self, snapshots: &[Snapshot]) -> Result<Vec<SnapshotWrite>> {
        self.db.pool.with(|conn| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| sql_error("starting the snapshot batch", e))?;
            let outcomes = snapshots
                .iter()
                .map(|s| upsert::<C>(&tx, s))
                .collect::<Result<Vec<_>>>()?;
            tx.commit().map_err(|e| sql_error("committing the snapshot batch", e))?;
            Ok(outcomes)
        })
    }

    fn get_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<Option<Snapshot>> {
        let id = UuidText::new(aggregate_id);
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("reading a snapshot", e);
            let mut stmt = conn.prepare_cached(sql::GET_SNAPSHOT).map_err(fail)?;
            let mut rows = stmt.query(params![id, aggregate_type]).map_err(fail)?;
            let Some(row) = rows.next().map_err(fail)? else {
                return Ok(None);
            };
            let c = Columns::new(row, "snapshots");
            Ok(Some(Snapshot {
                aggregate_id,
                aggregate_type: aggregate_type.to_owned(),
                version: c.u64(0, "version")?,
                schema_version: c.u32(1, "schema_version")?,
                state: c.encoded(2, "state", C::FORMAT)?.to_vec(),
                created_at: c.timestamp(3, "created_at")?,
            }))
        })
    }

    fn delete_snapshot(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        let id = UuidText::new(aggregate_id);
        let deleted = self.db.pool.with(|conn| {
            let fail = |e| sql_error("deleting a snapshot", e);
            let mut stmt = conn.prepare_cached(sql::DELETE_SNAPSHOT).map_err(fail)?;
            stmt.execute(params![id, aggregate_type]).map_err(fail)
        })?;
        debug!(target: TARGET, aggregate_type, aggregate_id = %aggregate_id, deleted, "delete_snapshot");
        Ok(deleted > 0)
    }

    fn delete_snapshots_by_type(&self, aggregate_type: &str, schema_version_below: Option<u32>) -> Result<u64> {
        let deleted = self.db.pool.with(|conn| {
            let fail = |e| sql_error("deleting snapshots by type", e);
            match schema_version_below {
                None => conn
                    .prepare_cached(sql::DELETE_SNAPSHOTS_BY_TYPE)
                    .and_then(|mut s| s.execute(params![aggregate_type])),
                Some(below) => conn
                    .prepare_cached(sql::DELETE_SNAPSHOTS_BY_TYPE_BELOW)
                    .and_then(|mut s| s.execute(params![aggregate_type, below])),
            }
            .map_err(fail)
        })?;
        debug!(target: TARGET, aggregate_type, schema_version_below, deleted, "delete_snapshots_by_type");
        u64::try_from(deleted).map_err(|_| crate::error::Error::OutOfRange {
            what: "deleted snapshot count",
            value: deleted.to_string(),
        })
    }

    fn snapshot_exists(&self, aggregate_id: Uuid, aggregate_type: &str) -> Result<bool> {
        let id = UuidText::new(aggregate_id);
        self.db.pool.with(|conn| {
            conn.prepare_cached(sql::SNAPSHOT_EXISTS)
                .and_then(|mut s| s.query_row(params![id, aggregate_type], |r| r.get(0)))
                .map_err(|e| sql_error("checking for a snapshot", e))
        })
    }

    fn location(&self) -> Option<StoreLocation> {
        Some(self.db.location.clone())
    }
}

/// The version-guarded upsert of one snapshot (rule 4 in SQL).
fn upsert<C: Codec>(conn: &Connection, snapshot: &Snapshot) -> Result<SnapshotWrite> {
    let id = UuidText::new(snapshot.aggregate_id);
    let version = to_i64(snapshot.version, "snapshots.version")?;
    let state = Encoded::new(&snapshot.state, C::FORMAT, C::NAME, "the snapshot state")?;
    let created_at = crate::time::format(&snapshot.created_at);
    let fail = |e| sql_error("saving a snapshot", e);
    let mut stmt = conn.prepare_cached(sql::UPSERT_SNAPSHOT).map_err(fail)?;
    let changed = stmt
        .execute(params![
            id,
            snapshot.aggregate_type,
            version,
            snapshot.schema_version,
            state,
            created_at
        ])
        .map_err(fail)?;
    let outcome = if changed > 0 {
        SnapshotWrite::Written
    } else {
        SnapshotWrite::KeptExisting
    };
    debug!(target: TARGET, aggregate_type = %snapshot.aggregate_type, aggregate_id = %snapshot.aggregate_id,
           version = snapshot.version, schema_version = snapshot.schema_version, outcome = ?outcome,
           "save_snapshot");
    Ok(outcome)
}
