//! Row decoders, shared by the sync and async adapters (`postgres::Row` is
//! `tokio_postgres::Row`). Every column is read with a checked conversion; a value that does
//! not fit (a NULL, a negative version, a wrong type) is [`Error::MalformedRow`].

use chrono::{DateTime, Utc};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;
use uuid::Uuid;

use super::conn::ServerInfo;
use super::migrate::CatalogRow;
use super::wire::Body;
use crate::error::{Error, Result};
use crate::event::{EventRecord, ReplayEvent};
use crate::migrations::AppliedMigration;
use crate::snapshot::Snapshot;
use crate::store::monitor::{Coverage, SnapshotVersions, StaleSnapshot};

/// Column positions of an event row (`sql::READ_STREAM`).
mod event_col {
    pub const GLOBAL_POSITION: usize = 0;
    pub const EVENT_ID: usize = 1;
    pub const EVENT_TYPE: usize = 2;
    pub const EVENT_VERSION: usize = 3;
    pub const VERSION: usize = 4;
    pub const TIMESTAMP: usize = 5;
    pub const CREATED_AT: usize = 6;
    pub const PAYLOAD: usize = 7;
    pub const METADATA: usize = 8;
}

/// Column positions of a replay row (`sql::REPLAY_STREAM`, and the first four columns of
/// every `sql::JOINT_READ` row).
mod replay_col {
    pub const VERSION: usize = 0;
    pub const EVENT_TYPE: usize = 1;
    pub const PAYLOAD: usize = 2;
    pub const EVENT_VERSION: usize = 3;
}

/// Column positions of the joint read's header row beyond the replay columns (where
/// `version` holds the header's sort key 0, `payload` the snapshot's state and
/// `event_version` NULL).
mod header_col {
    pub const SNAPSHOT_VERSION: usize = 4;
    pub const SCHEMA_VERSION: usize = 5;
    pub const SNAPSHOT_CREATED_AT: usize = 6;
}

fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize, table: &'static str, column: &str) -> Result<T> {
    row.try_get(idx).map_err(|e| Error::MalformedRow {
        table,
        message: match std::error::Error::source(&e) {
            Some(cause) => format!("column `{column}`: {e}: {cause}"),
            None => format!("column `{column}`: {e}"),
        },
    })
}

fn unsigned<T: TryFrom<i64>>(value: i64, table: &'static str, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::MalformedRow {
        table,
        message: format!("column `{column}` holds {value}, which is not a valid {column}"),
    })
}

fn u64_col(row: &Row, idx: usize, table: &'static str, column: &str) -> Result<u64> {
    unsigned(get::<i64>(row, idx, table, column)?, table, column)
}

fn u32_col(row: &Row, idx: usize, table: &'static str, column: &str) -> Result<u32> {
    unsigned(i64::from(get::<i32>(row, idx, table, column)?), table, column)
}

/// An event's `version` column: a positive stream version.
fn stream_position(row: &Row, idx: usize) -> Result<u64> {
    let version = u64_col(row, idx, "events", "version")?;
    if version == 0 {
        return Err(Error::MalformedRow {
            table: "events",
            message: "column `version` holds 0; streams start at 1".into(),
        });
    }
    Ok(version)
}

/// An event row, borrowing its strings and payload from the row.
pub(crate) fn event<'a>(row: &'a Row, aggregate_id: Uuid, aggregate_type: &'a str) -> Result<EventRecord<'a>> {
    const T: &str = "events";
    let version = stream_position(row, event_col::VERSION)?;
    Ok(EventRecord {
        global_position: get(row, event_col::GLOBAL_POSITION, T, "global_position")?,
        event_id: get(row, event_col::EVENT_ID, T, "event_id")?,
        aggregate_id,
        aggregate_type,
        event_type: get(row, event_col::EVENT_TYPE, T, "event_type")?,
        event_version: u32_col(row, event_col::EVENT_VERSION, T, "event_version")?,
        version,
        occurred_at: get(row, event_col::TIMESTAMP, T, "timestamp")?,
        stored_at: get(row, event_col::CREATED_AT, T, "created_at")?,
        payload: get::<Body<'a>>(row, event_col::PAYLOAD, T, "payload")?.0,
        metadata: get::<Body<'a>>(row, event_col::METADATA, T, "metadata")?.0,
    })
}

/// A replay row (`sql::REPLAY_STREAM`, or an event row of `sql::JOINT_READ`), borrowing its
/// event type and payload from the row.
pub(crate) fn replay_event(row: &Row) -> Result<ReplayEvent<'_>> {
    const T: &str = "events";
    Ok(ReplayEvent {
        version: stream_position(row, replay_col::VERSION)?,
        event_type: get(row, replay_col::EVENT_TYPE, T, "event_type")?,
        event_version: u32_col(row, replay_col::EVENT_VERSION, T, "event_version")?,
        payload: get::<Body<'_>>(row, replay_col::PAYLOAD, T, "payload")?.0,
    })
}

/// The header row of a joint read: the snapshot, if any.
#[derive(Debug)]
pub(crate) struct JointHeader {
    pub snapshot: Option<Snapshot>,
}

/// Decodes the header row of `sql::JOINT_READ`: the row whose `version` is the sort key 0,
/// the snapshot's columns (all NULL when there is none).
pub(crate) fn joint_header(row: &Row, aggregate_id: Uuid, aggregate_type: &str) -> Result<JointHeader> {
    const T: &str = "snapshots";
    let key = get::<i64>(row, replay_col::VERSION, "events", "version")?;
    if key != 0 {
        return Err(Error::MalformedRow {
            table: "events",
            message: format!("the joint read's first row has version {key}, not the header's 0"),
        });
    }
    let Some(version) = get::<Option<i64>>(row, header_col::SNAPSHOT_VERSION, T, "version")? else {
        return Ok(JointHeader { snapshot: None });
    };
    let snapshot = Snapshot {
        aggregate_id,
        aggregate_type: aggregate_type.to_owned(),
        version: unsigned(version, T, "version")?,
        schema_version: u32_col(row, header_col::SCHEMA_VERSION, T, "schema_version")?,
        state: get::<Body<'_>>(row, replay_col::PAYLOAD, T, "state")?.0.to_vec(),
        created_at: get(row, header_col::SNAPSHOT_CREATED_AT, T, "created_at")?,
    };
    Ok(JointHeader {
        snapshot: Some(snapshot),
    })
}

/// A row of `sql::SNAPSHOT_GET`.
pub(crate) fn snapshot(row: &Row, aggregate_id: Uuid, aggregate_type: &str) -> Result<Snapshot> {
    const T: &str = "snapshots";
    Ok(Snapshot {
        aggregate_id,
        aggregate_type: aggregate_type.to_owned(),
        version: unsigned(i64::from(get::<i32>(row, 0, T, "version")?), T, "version")?,
        schema_version: u32_col(row, 1, T, "schema_version")?,
        state: get::<Body<'_>>(row, 2, T, "state")?.0.to_vec(),
        created_at: get::<DateTime<Utc>>(row, 3, T, "created_at")?,
    })
}

/// A single `BIGINT` count or version (first column).
pub(crate) fn version(row: &Row) -> Result<u64> {
    u64_col(row, 0, "events", "version")
}

/// A single boolean (first column).
pub(crate) fn flag(row: &Row, table: &'static str) -> Result<bool> {
    get(row, 0, table, "exists")
}

/// A single uuid (first column).
pub(crate) fn event_id(row: &Row) -> Result<Uuid> {
    get(row, 0, "events", "event_id")
}

/// A row of `sql::AGGREGATES_BY_EVENT_COUNT`.
pub(crate) fn aggregate_count(row: &Row) -> Result<(Uuid, u64)> {
    Ok((
        get(row, 0, "events", "aggregate_id")?,
        u64_col(row, 1, "events", "event_count")?,
    ))
}

/// A row of `sql::COVERAGE`.
pub(crate) fn coverage(row: &Row) -> Result<Coverage> {
    const T: &str = "events";
    Ok(Coverage {
        aggregate_type: get(row, 0, T, "aggregate_type")?,
        total_aggregates: u64_col(row, 1, T, "total_aggregates")?,
        with_snapshot: u64_col(row, 2, T, "with_snapshot")?,
        without_snapshot: u64_col(row, 3, T, "without_snapshot")?,
    })
}

/// A row of `sql::STALE_SNAPSHOTS`.
pub(crate) fn stale_snapshot(row: &Row) -> Result<StaleSnapshot> {
    const T: &str = "snapshots";
    Ok(StaleSnapshot {
        aggregate_type: get(row, 0, T, "aggregate_type")?,
        aggregate_id: get(row, 1, T, "aggregate_id")?,
        snapshot_version: u64_col(row, 2, T, "snapshot_version")?,
        current_version: u64_col(row, 3, T, "current_version")?,
        events_since_snapshot: u64_col(row, 4, T, "events_since_snapshot")?,
    })
}

/// A row of `sql::SNAPSHOT_VERSIONS`.
pub(crate) fn snapshot_versions(row: &Row) -> Result<SnapshotVersions> {
    const T: &str = "snapshots";
    Ok(SnapshotVersions {
        aggregate_type: get(row, 0, T, "aggregate_type")?,
        schema_version: unsigned(get(row, 1, T, "schema_version")?, T, "schema_version")?,
        snapshots: u64_col(row, 2, T, "count")?,
    })
}

/// A row of `sql::APPLIED_MIGRATIONS`.
pub(crate) fn applied_migration(row: &Row) -> Result<AppliedMigration> {
    const T: &str = "eventsource_migrations";
    Ok(AppliedMigration {
        version: u32_col(row, 0, T, "version")?,
        checksum: get(row, 1, T, "checksum")?,
        format: get(row, 2, T, "format")?,
    })
}

/// A row of `sql::CATALOG`.
pub(crate) fn catalog(row: &Row) -> Result<CatalogRow> {
    const T: &str = "information_schema";
    Ok(CatalogRow {
        kind: get(row, 0, T, "kind")?,
        table: get(row, 1, T, "table_name")?,
        name: get(row, 2, T, "name")?,
        detail: get(row, 3, T, "detail")?,
    })
}

/// The row of `sql::SERVER_INFO`.
pub(crate) fn server_info(row: &Row) -> Result<ServerInfo> {
    const T: &str = "pg_catalog";
    Ok(ServerInfo {
        database: get(row, 0, T, "current_database")?,
        schema: get(row, 1, T, "current_schema")?,
        address: get(row, 2, T, "inet_server_addr")?,
        port: get(row, 3, T, "inet_server_port")?,
    })
}

/// The request position of a `sql::JOINT_READ_MANY` row (its last column, 1-based), as an
/// index into the request of `len` ids.
pub(crate) fn batch_index(row: &Row, len: usize) -> Result<usize> {
    let n = u64_col(row, 7, "events", "n")?;
    usize::try_from(n)
        .ok()
        .and_then(|n| n.checked_sub(1))
        .filter(|&i| i < len)
        .ok_or_else(|| Error::MalformedRow {
            table: "events",
            message: format!("the batch read's position {n} is outside a request of {len}"),
        })
}
