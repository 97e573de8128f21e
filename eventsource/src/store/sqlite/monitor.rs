//! The monitoring API: the reference guide's coverage, freshness and high-event queries
//! as typed calls, on a snapshot store beside its events ([`SqliteSnapshotStore`]) or on
//! snapshots kept in another file than their events ([`SqliteSplitMonitor`]).
//!
//! The queries join `snapshots` with `events`. A snapshot store opened on a file of its own
//! (the reference guide's `SQLiteSnapshotStore("snapshots.db")` layout) has an `events`
//! table too, created by the migrations, but empty: the queries would find nothing. So a
//! monitoring call that finds nothing checks whether the database holds snapshots and no
//! event at all, and then fails with [`Error::InvalidConfig`] naming
//! [`SqliteSnapshotStore::monitor_with_events`], which runs the same queries on a
//! connection to the events' file with the snapshots' file attached.

use std::path::Path;
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection};
use uuid::Uuid;

use super::convert::{bound_to_i64, sql_error, Columns};
use super::pool::Target;
use super::{readonly, sql, Database, SqliteEventStore, SqliteSnapshotStore};
use crate::codec::Codec;
use crate::error::{Error, Result};
use crate::store::monitor::{Coverage, SnapshotMonitor, SnapshotVersions, StaleSnapshot};

/// [`sql::AGGREGATES_BY_EVENT_COUNT`], shared by the event store and the monitor.
pub(super) fn aggregates_by_event_count(
    db: &Database,
    aggregate_type: &str,
    min_events: u64,
) -> Result<Vec<(Uuid, u64)>> {
    db.pool.with(|conn| by_event_count(conn, aggregate_type, min_events))
}

/// Runs one monitoring query and reads every row with `read` (`table` names the table a
/// malformed value is reported against).
fn query_all<T>(
    conn: &Connection,
    query: &str,
    params: impl rusqlite::Params,
    context: &str,
    table: &'static str,
    read: impl Fn(&Columns<'_, '_>) -> Result<T>,
) -> Result<Vec<T>> {
    let fail = |e| sql_error(context, e);
    let mut stmt = conn.prepare_cached(query).map_err(fail)?;
    let mut rows = stmt.query(params).map_err(fail)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(fail)? {
        out.push(read(&Columns::new(row, table))?);
    }
    Ok(out)
}

fn by_event_count(conn: &Connection, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
    // A bound above i64::MAX admits nothing, exactly as i64::MAX does.
    let min = bound_to_i64(min_events);
    query_all(
        conn,
        sql::AGGREGATES_BY_EVENT_COUNT,
        params![aggregate_type, min],
        "counting events per aggregate",
        "events",
        |c| Ok((c.uuid(0, "aggregate_id")?, c.u64(1, "COUNT(*)")?)),
    )
}

fn coverage(conn: &Connection) -> Result<Vec<Coverage>> {
    query_all(conn, sql::COVERAGE, [], "reading snapshot coverage", "events", |c| {
        Ok(Coverage {
            aggregate_type: c.str(0, "aggregate_type")?.to_owned(),
            total_aggregates: c.u64(1, "total_aggregates")?,
            with_snapshot: c.u64(2, "with_snapshot")?,
            without_snapshot: c.u64(3, "without_snapshot")?,
        })
    })
}

fn stale_snapshots(conn: &Connection, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
    let min = bound_to_i64(min_events_since);
    query_all(
        conn,
        sql::STALE_SNAPSHOTS,
        params![min],
        "reading stale snapshots",
        "snapshots",
        |c| {
            Ok(StaleSnapshot {
                aggregate_type: c.str(0, "aggregate_type")?.to_owned(),
                aggregate_id: c.uuid(1, "aggregate_id")?,
                snapshot_version: c.u64(2, "snapshot_version")?,
                current_version: c.u64(3, "current_version")?,
                events_since_snapshot: c.u64(4, "events_since_snapshot")?,
            })
        },
    )
}

fn snapshot_versions(conn: &Connection) -> Result<Vec<SnapshotVersions>> {
    query_all(
        conn,
        sql::SNAPSHOT_VERSIONS,
        [],
        "counting snapshots per schema version",
        "snapshots",
        |c| {
            Ok(SnapshotVersions {
                aggregate_type: c.str(0, "aggregate_type")?.to_owned(),
                schema_version: c.u32(1, "schema_version")?,
                snapshots: c.u64(2, "COUNT(*)")?,
            })
        },
    )
}

/// A monitoring answer, unless it is empty because the events are elsewhere: an empty
/// answer from a database with snapshots and no event is an error that says so.
fn unless_events_elsewhere<T>(conn: &Connection, rows: Vec<T>) -> Result<Vec<T>> {
    if !rows.is_empty() {
        return Ok(rows);
    }
    let elsewhere: bool = conn
        .prepare_cached(sql::SNAPSHOTS_WITHOUT_EVENTS)
        .and_then(|mut s| s.query_row([], |r| r.get(0)))
        .map_err(|e| sql_error("checking for events beside the snapshots", e))?;
    if elsewhere {
        return Err(Error::InvalidConfig(
            "this SQLite database holds snapshots but no events, so the monitoring queries, which join \
             snapshots with their events, cannot answer: the events are kept in another database file. Monitor \
             with `SqliteSnapshotStore::monitor_with_events(&events)` (the `eventsource` command: \
             `--events EVENTS_FILE`), or keep the snapshots in the events' file (`events.snapshot_store()`)"
                .into(),
        ));
    }
    Ok(rows)
}

impl<C: Codec> SnapshotMonitor for SqliteSnapshotStore<C> {
    fn coverage(&self) -> Result<Vec<Coverage>> {
        self.db.pool.with(|conn| unless_events_elsewhere(conn, coverage(conn)?))
    }

    fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
        self.db
            .pool
            .with(|conn| unless_events_elsewhere(conn, stale_snapshots(conn, min_events_since)?))
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        self.db.pool.with(|conn| {
            let rows = by_event_count(conn, aggregate_type, min_events)?;
            unless_events_elsewhere(conn, rows)
        })
    }

    fn snapshot_versions(&self) -> Result<Vec<SnapshotVersions>> {
        self.db.pool.with(|conn| snapshot_versions(conn))
    }
}

/// The monitoring queries for snapshots kept in another SQLite file than their events
/// (the reference guide's `SQLiteSnapshotStore("snapshots.db")` layout): one connection to
/// the events' file (opened as the event store opens its own: read-only stays read-only)
/// with the snapshots' file attached. Made by [`SqliteSnapshotStore::monitor_with_events`].
///
/// ```no_run
/// use eventsource::{SnapshotMonitor, SqliteEventStore, SqliteSnapshotStore};
/// # fn main() -> eventsource::Result<()> {
/// let events = SqliteEventStore::open("events.db")?;
/// let snapshots = SqliteSnapshotStore::open("snapshots.db")?;
/// let monitor = snapshots.monitor_with_events(&events)?;
/// for c in monitor.coverage()? {
///     println!("{}: {} of {} snapshotted", c.aggregate_type, c.with_snapshot, c.total_aggregates);
/// }
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SqliteSplitMonitor {
    conn: Mutex<Connection>,
}

impl SqliteSplitMonitor {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> Result<T>) -> Result<T> {
        let conn = self.conn.lock().unwrap_or_else(PoisonError::into_inner);
        f(&conn)
    }
}

impl<C: Codec> SqliteSnapshotStore<C> {
    /// The monitoring queries of these snapshots against the events of `events`, when the
    /// two live in different SQLite files (when they share one, this store's own
    /// [`SnapshotMonitor`] methods answer and this gives the same answers). Fails with
    /// [`Error::InvalidConfig`] for an in-memory store, and with the errors of opening the
    /// events' file or attaching the snapshots' one.
    pub fn monitor_with_events<E: Codec>(&self, events: &SqliteEventStore<E>) -> Result<SqliteSplitMonitor> {
        let snapshots = self.db.pool.opener();
        let Target::File(snapshot_file) = &snapshots.target else {
            return Err(Error::InvalidConfig(
                "an in-memory snapshot store cannot be monitored against another database's events".into(),
            ));
        };
        if matches!(events.db.pool.opener().target, Target::Memory) {
            return Err(Error::InvalidConfig(
                "snapshots cannot be monitored against the events of an in-memory database".into(),
            ));
        }
        let attach = if snapshots.options.is_immutable() {
            readonly::immutable_uri(snapshot_file)
        } else {
            snapshot_file.clone()
        };
        let conn = events.db.pool.opener().open()?;
        let context = format!("attaching the snapshots' database `{}`", snapshot_file.display());
        conn.execute(sql::ATTACH_SNAPSHOTS, [path_text(&attach)])
            .map_err(|e| sql_error(&context, e))?;
        conn.execute_batch(sql::SNAPSHOTS_VIEW)
            .map_err(|e| sql_error(&context, e))?;
        Ok(SqliteSplitMonitor { conn: Mutex::new(conn) })
    }
}

/// A path as SQLite takes it in `ATTACH` (UTF-8 text).
fn path_text(path: &Path) -> String {
    path.to_string_lossy().into_owned()
}

impl SnapshotMonitor for SqliteSplitMonitor {
    fn coverage(&self) -> Result<Vec<Coverage>> {
        self.with(|conn| unless_events_elsewhere(conn, coverage(conn)?))
    }

    fn stale_snapshots(&self, min_events_since: u64) -> Result<Vec<StaleSnapshot>> {
        self.with(|conn| unless_events_elsewhere(conn, stale_snapshots(conn, min_events_since)?))
    }

    fn aggregates_by_event_count(&self, aggregate_type: &str, min_events: u64) -> Result<Vec<(Uuid, u64)>> {
        self.with(|conn| by_event_count(conn, aggregate_type, min_events))
    }

    fn snapshot_versions(&self) -> Result<Vec<SnapshotVersions>> {
        self.with(snapshot_versions)
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::event::{Metadata, NewEvent};
    use crate::snapshot::Snapshot;
    use crate::store::{EventStore, SnapshotStore};
    use crate::SqliteOptions;

    /// A directory of its own under the system's temp directory, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new() -> Self {
            let dir = std::env::temp_dir().join(format!("eventsource-monitor-{}", Uuid::new_v4()));
            std::fs::create_dir_all(&dir).expect("temp dir");
            Self(dir)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn ticks(n: usize) -> Vec<NewEvent> {
        (0..n)
            .map(|_| NewEvent {
                event_id: Uuid::now_v7(),
                event_type: "Ticked".into(),
                event_version: 1,
                occurred_at: crate::time::now(),
                payload: b"{}".to_vec(),
                metadata: Metadata::default(),
            })
            .collect()
    }

    fn snapshot(id: Uuid, version: u64, schema_version: u32) -> Snapshot {
        Snapshot {
            aggregate_id: id,
            aggregate_type: "Clock".into(),
            version,
            schema_version,
            state: b"{}".to_vec(),
            created_at: crate::time::now(),
        }
    }

    /// The reference guide's layout: events in one file, snapshots in another.
    fn split(dir: &Path) -> (SqliteEventStore, SqliteSnapshotStore, Uuid, Uuid) {
        let events = SqliteEventStore::open(dir.join("events.db")).expect("events");
        let snapshots = SqliteSnapshotStore::open(dir.join("snapshots.db")).expect("snapshots");
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        events.append(a, "Clock", 0, &ticks(150)).expect("append");
        events.append(b, "Clock", 0, &ticks(3)).expect("append");
        snapshots.save_snapshot(&snapshot(a, 20, 1)).expect("snapshot");
        (events, snapshots, a, b)
    }

    #[test]
    fn snapshots_apart_from_their_events_are_refused_not_reported_as_nothing() {
        let dir = Scratch::new();
        let (_events, snapshots, _, _) = split(&dir.0);
        for result in [
            snapshots.coverage().map(|r| r.len()),
            snapshots.stale_snapshots(0).map(|r| r.len()),
            SnapshotMonitor::aggregates_by_event_count(&snapshots, "Clock", 0).map(|r| r.len()),
        ] {
            match result {
                Err(Error::InvalidConfig(message)) => {
                    assert!(message.contains("monitor_with_events"), "{message}")
                }
                other => panic!("expected a refusal, got {other:?}"),
            }
        }
        // Counting snapshots needs no events.
        assert_eq!(snapshots.snapshot_versions().expect("versions").len(), 1);
    }

    #[test]
    fn a_split_monitor_joins_the_two_files() {
        let dir = Scratch::new();
        let (events, snapshots, a, b) = split(&dir.0);
        let monitor = snapshots.monitor_with_events(&events).expect("monitor");
        assert_eq!(
            monitor.coverage().expect("coverage"),
            vec![Coverage {
                aggregate_type: "Clock".into(),
                total_aggregates: 2,
                with_snapshot: 1,
                without_snapshot: 1
            }]
        );
        let stale = monitor.stale_snapshots(100).expect("stale");
        assert_eq!(
            stale
                .iter()
                .map(|s| (s.aggregate_id, s.events_since_snapshot))
                .collect::<Vec<_>>(),
            vec![(a, 130)]
        );
        assert_eq!(
            monitor.aggregates_by_event_count("Clock", 0).expect("count"),
            vec![(a, 150), (b, 3)]
        );
        assert_eq!(
            monitor.snapshot_versions().expect("versions"),
            vec![SnapshotVersions {
                aggregate_type: "Clock".into(),
                schema_version: 1,
                snapshots: 1
            }]
        );
        // The snapshots file's own (empty) events table is not what the monitor reads, and
        // the monitor sees later writes.
        snapshots.save_snapshot(&snapshot(b, 3, 2)).expect("snapshot");
        assert_eq!(monitor.coverage().expect("coverage")[0].with_snapshot, 2);
    }

    #[test]
    fn a_split_monitor_works_read_only_and_immutable() {
        let dir = Scratch::new();
        let (events, snapshots, a, _) = split(&dir.0);
        drop((events, snapshots));
        let (events_file, snapshots_file) = (dir.0.join("events.db"), dir.0.join("snapshots.db"));
        // Cleanly closed: no -wal/-shm, so inspection opens are immutable.
        let options = SqliteOptions::inspection(&events_file);
        assert!(options.is_immutable(), "{options:?}");
        let events = SqliteEventStore::open_with_options(&events_file, crate::JsonCodec, options).expect("events");
        let snapshots = SqliteSnapshotStore::open_with_options(
            &snapshots_file,
            crate::JsonCodec,
            SqliteOptions::inspection(&snapshots_file),
        )
        .expect("snapshots");
        let monitor = snapshots.monitor_with_events(&events).expect("monitor");
        assert_eq!(monitor.stale_snapshots(100).expect("stale")[0].aggregate_id, a);
        drop((monitor, events, snapshots));
        for file in [&events_file, &snapshots_file] {
            for suffix in ["-wal", "-shm"] {
                let mut name = file.as_os_str().to_owned();
                name.push(suffix);
                assert!(!PathBuf::from(name).exists(), "{} {suffix} left behind", file.display());
            }
        }
    }

    #[test]
    fn the_recorded_format_is_read_without_creating_anything() {
        let dir = Scratch::new();
        let missing = dir.0.join("missing.db");
        assert!(recorded(&missing).is_err());
        assert!(!missing.exists());
        let foreign = dir.0.join("foreign.db");
        let conn = Connection::open(&foreign).expect("foreign");
        conn.execute_batch("CREATE TABLE notes (body TEXT)").expect("table");
        drop(conn);
        assert_eq!(recorded(&foreign).expect("foreign"), None);
        let json = dir.0.join("json.db");
        drop(SqliteEventStore::open(&json).expect("json"));
        assert_eq!(recorded(&json).expect("json"), Some(crate::Format::Json));
    }

    fn recorded(path: &Path) -> Result<Option<crate::Format>> {
        super::super::recorded_format(path, &SqliteOptions::inspection(path))
    }
}
