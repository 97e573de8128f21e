//! The monitoring API: the reference guide's coverage, freshness and high-event queries
//! as typed calls.

use rusqlite::params;
use uuid::Uuid;

use super::convert::{bound_to_i64, sql_error, Columns};
use super::{sql, Database, SqliteSnapshotStore};
use crate::codec::Codec;
use crate::error::Result;
use crate::store::monitor::{Coverage, SnapshotMonitor, StaleSnapshot};

/// [`sql::AGGREGATES_BY_EVENT_COUNT`], shared by the event store and the monitor.
pub(super) fn aggregates_by_event_count(
    db: &Database,
    aggregate_type: &str,
    min_events: u64,
) -> Result<Vec<(Uuid, u64)>> {
    // A bound above i64::MAX admits nothing, exactly as i64::MAX does.
    let min = bound_to_i64(min_events);
    db.pool.with(|conn| {
        let fail = |e| sql_error("counting events per aggregate", e);
        let mut stmt = conn.prepare_cached(sql::AGGREGATES_BY_EVENT_COUNT).map_err(fail)?;
        let mut rows = stmt.query(params![aggregate_type, min]).map_err(fail)?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(fail)? {
            let c = Columns::new(row, "events");
            out.push((c.uuid(0, "aggregate_id")?, c.u64(1, "COUNT(*)")?));
        }
        Ok(out)
    })
}

impl<C: Codec> SnapshotMonitor for SqliteSnapshotStore<C> {
    fn coverage(&self) -> Result<Vec<Coverage>> {
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("reading snapshot coverage", e);
            let mut stmt = conn.prepare_cached(sql::COVERAGE).map_err(fail)?;
            let mut rows = stmt.query([]).map_err(fail)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(fail)? {
                let c = Columns::new(row, "events");
                out.push(Coverage {
                    aggregate_type: c.str(0, "aggregate_type")?.to_owned(),
                    total_aggregates: c.u64(1, "total_aggregates")?,
                    with_snapshot: c.u64(2, "with_snapshot")?,
                    without_snapshot: c.u64(3, "without_snapshot")?,
                });
            }
            Ok(out)
        })
    }

    fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
        let min = bound_to_i64(min_events_since);
        self.db.pool.with(|conn| {
            let fail = |e| sql_error("reading stale snapshots", e);
            let mut stmt = conn.prepare_cached(sql::STALE_SNAPSHOTS).map_err(fail)?;
            let mut rows = stmt.query(params![min]).map_err(fail)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(fail)? {
                let c = Columns::new(row, "snapshots");
                out.push(StaleSnapshot {
                    aggregate_type: c.str(0, "aggregate_type")?.to_owned(),
                    aggregate_id: c.uuid(1, "aggregate_id")?,
                    snapshot_version: c.u64(2, "snapshot_version")?,
                    current_version: c.u64(3, "current_version")?,
                    events_since_snapshot: c.u64(4, "events_since_snapshot")?,
                });
            }
            Ok(out)
        })
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        aggregates_by_event_count(&self.db, aggregate_type, min_events)
    }
}
