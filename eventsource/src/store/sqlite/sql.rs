//! Every SQL statement of the SQLite backend, written once.
//!
//! The stores prepare these through the connection's statement cache
//! (`prepare_cached`), so each is compiled once per pooled connection. The DDL is not
//! here: it lives in `migrations/sqlite/*.sql` (see [`crate::migrations`]).

// ---------------------------------------------------------------------------------------
// Migrations and schema check
// ---------------------------------------------------------------------------------------

/// Whether a table exists.
pub(super) const TABLE_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)";

/// The first read of a read-only connection: it opens a WAL database's `-wal` and
/// `-shm` files (SQLite does that at the first read, not at open).
pub(super) const FIRST_READ: &str = "SELECT count(*) FROM sqlite_schema";

/// The migrations recorded as applied.
pub(super) const APPLIED_MIGRATIONS: &str =
    "SELECT version, checksum, format FROM eventsource_migrations ORDER BY version";

/// Records one applied migration.
pub(super) const RECORD_MIGRATION: &str = "INSERT INTO eventsource_migrations \
     (version, name, checksum, format, applied_at) VALUES (?1, ?2, ?3, ?4, ?5)";

/// The user tables of a database (the expected schema is read from a scratch database
/// built from the migrations).
pub(super) const TABLES: &str = "SELECT name FROM sqlite_master \
     WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> 'eventsource_migrations' \
     ORDER BY name";

/// A table's columns and declared types.
pub(super) const TABLE_COLUMNS: &str = "SELECT name, type FROM pragma_table_info(?1) ORDER BY cid";

/// The columns of a table's unique indexes (including those of `UNIQUE` constraints).
pub(super) const UNIQUE_INDEX_COLUMNS: &str = "SELECT il.name, ii.name \
     FROM pragma_index_list(?1) AS il, pragma_index_info(il.name) AS ii \
     WHERE il.\"unique\" = 1 \
     ORDER BY il.name, ii.seqno";

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// The stream's last version (0 when it has no events). Served by the unique index on
/// `(aggregate_id, aggregate_type, version)`.
pub(super) const STREAM_VERSION: &str = "SELECT COALESCE((SELECT version FROM events \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2 ORDER BY version DESC LIMIT 1), 0)";

/// Inserts one event.
pub(super) const INSERT_EVENT: &str = "INSERT INTO events \
     (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \
      timestamp, payload, metadata, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

/// Whether an event id is stored (to attribute a unique violation).
pub(super) const EVENT_ID_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM events WHERE event_id = ?1)";

/// Opens the savepoint of one append inside a group commit's shared transaction.
pub(super) const SAVEPOINT_APPEND: &str = "SAVEPOINT eventsource_append";

/// Keeps one append of a group commit (its rows stay in the shared transaction).
pub(super) const RELEASE_APPEND: &str = "RELEASE eventsource_append";

/// Undoes one failed append of a group commit, and only it.
pub(super) const ROLLBACK_TO_APPEND: &str = "ROLLBACK TO eventsource_append";

/// The events of a stream after a version, in order. Column layout: see
/// [`STREAM_COLUMNS`](super::events::STREAM_COLUMNS).
pub(super) const READ_STREAM: &str = "SELECT global_position, event_id, event_type, \
     event_version, version, timestamp, created_at, payload, metadata \
     FROM events \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2 AND version > ?3 \
     ORDER BY version";

/// What a replay reads of the events of a stream after a version, in order: the version,
/// the type, the payload and the event version, nothing it would not use. Column layout:
/// see [`REPLAY_COLUMNS`](super::events::REPLAY_COLUMNS).
pub(super) const REPLAY_STREAM: &str = "SELECT version, event_type, payload, event_version \
     FROM events \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2 AND version > ?3 \
     ORDER BY version";

/// The joint load of an aggregate that has a snapshot, in one statement (one read
/// transaction, so the snapshot and the events are consistent with each other): the
/// snapshot row joined with the events from its version on.
///
/// Columns: the snapshot's `version`, `schema_version`, `state`, `created_at`, then the
/// event's `version`, `event_type`, `payload`, `event_version` (the replay columns of
/// [`REPLAY_STREAM`], from index 4). The first event row is the *anchor*, at the snapshot's
/// own version: the proof that the stream reaches the snapshot. Only its version is read:
/// its other columns are NULL, so SQLite finds it in the `(aggregate_id, aggregate_type,
/// version)` index and never reads the row itself (the table is read only for the columns
/// a `CASE` branch asks for). A stream that ends before the snapshot gives one row with a
/// NULL event version.
///
/// The snapshot is found through its unique key, so SQLite knows it is one row and the
/// `ORDER BY` is the order of the events index: rows come out as they are stepped, nothing
/// is sorted or buffered. No row means no snapshot: the load then replays the stream with
/// [`REPLAY_STREAM`]. (A one-row source that also covers the no-snapshot case, `(SELECT 1)
/// LEFT JOIN snapshots`, makes SQLite sort every event of the stream into a temporary
/// b-tree before the first one comes out.)
pub(super) const READ_WITH_SNAPSHOT: &str = "SELECT s.version, s.schema_version, s.state, s.created_at, \
       e.version, \
       CASE WHEN e.version > s.version THEN e.event_type END, \
       CASE WHEN e.version > s.version THEN e.payload END, \
       CASE WHEN e.version > s.version THEN e.event_version END \
     FROM snapshots AS s \
     LEFT JOIN events AS e \
       ON e.aggregate_id = s.aggregate_id AND e.aggregate_type = s.aggregate_type AND e.version >= s.version \
     WHERE s.aggregate_id = ?1 AND s.aggregate_type = ?2 \
     ORDER BY e.version";

/// Aggregates of a type with more than `?2` events, most first (the guide's
/// "prioritize high-event aggregates" query, with the type and the bound as parameters
/// and a tie-break for a stable order).
pub(super) const AGGREGATES_BY_EVENT_COUNT: &str = "SELECT aggregate_id, COUNT(*) \
     FROM events \
     WHERE aggregate_type = ?1 \
     GROUP BY aggregate_id \
     HAVING COUNT(*) > ?2 \
     ORDER BY COUNT(*) DESC, aggregate_id";

// ---------------------------------------------------------------------------------------
// Snapshots
// ---------------------------------------------------------------------------------------

/// Rule 4 in SQL: insert, or replace the stored row only with a higher schema version, or
/// the same schema version and a higher stream version. One changed row means written,
/// none means the stored snapshot was kept.
pub(super) const UPSERT_SNAPSHOT: &str = "INSERT INTO snapshots \
     (aggregate_id, aggregate_type, version, schema_version, state, created_at) \
     VALUES (?1, ?2, ?3, ?4, ?5, ?6) \
     ON CONFLICT (aggregate_id, aggregate_type) DO UPDATE SET \
       version = excluded.version, \
       schema_version = excluded.schema_version, \
       state = excluded.state, \
       created_at = excluded.created_at \
     WHERE excluded.schema_version > snapshots.schema_version \
        OR (excluded.schema_version = snapshots.schema_version \
            AND excluded.version > snapshots.version)";

/// One aggregate's snapshot.
pub(super) const GET_SNAPSHOT: &str = "SELECT version, schema_version, state, created_at \
     FROM snapshots WHERE aggregate_id = ?1 AND aggregate_type = ?2";

/// Whether an aggregate has a snapshot.
pub(super) const SNAPSHOT_EXISTS: &str = "SELECT EXISTS (SELECT 1 FROM snapshots \
     WHERE aggregate_id = ?1 AND aggregate_type = ?2)";

/// Deletes one aggregate's snapshot.
pub(super) const DELETE_SNAPSHOT: &str = "DELETE FROM snapshots WHERE aggregate_id = ?1 AND aggregate_type = ?2";

/// Deletes every snapshot of a type.
pub(super) const DELETE_SNAPSHOTS_BY_TYPE: &str = "DELETE FROM snapshots WHERE aggregate_type = ?1";

/// Deletes the snapshots of a type with a schema version strictly below `?2`.
pub(super) const DELETE_SNAPSHOTS_BY_TYPE_BELOW: &str =
    "DELETE FROM snapshots WHERE aggregate_type = ?1 AND schema_version < ?2";

// ---------------------------------------------------------------------------------------
// Monitoring (the reference guide's queries)
// ---------------------------------------------------------------------------------------

/// The guide's "Check Snapshot Coverage" query, unchanged but for a final `ORDER BY` for a
/// stable result order.
pub(super) const COVERAGE: &str = "SELECT \
       e.aggregate_type, \
       COUNT(DISTINCT e.aggregate_id) as total_aggregates, \
       COUNT(DISTINCT s.aggregate_id) as with_snapshot, \
       COUNT(DISTINCT e.aggregate_id) - COUNT(DISTINCT s.aggregate_id) as without_snapshot \
     FROM events e \
     LEFT JOIN snapshots s \
       ON e.aggregate_id = s.aggregate_id \
       AND e.aggregate_type = s.aggregate_type \
     GROUP BY e.aggregate_type \
     ORDER BY e.aggregate_type";

/// Stored snapshots per aggregate type and schema version.
pub(super) const SNAPSHOT_VERSIONS: &str = "SELECT aggregate_type, schema_version, COUNT(*) \
     FROM snapshots \
     GROUP BY aggregate_type, schema_version \
     ORDER BY aggregate_type, schema_version";

/// Whether the database holds snapshots and no event at all: snapshots written beside
/// events kept in another database, which the monitoring queries cannot see.
pub(super) const SNAPSHOTS_WITHOUT_EVENTS: &str =
    "SELECT EXISTS (SELECT 1 FROM snapshots) AND NOT EXISTS (SELECT 1 FROM events)";

/// Attaches the database holding the snapshots to a connection on the events' database.
pub(super) const ATTACH_SNAPSHOTS: &str = "ATTACH DATABASE ?1 AS eventsource_snapshots";

/// Makes the attached snapshots the `snapshots` that the monitoring queries name (the
/// `temp` schema comes first in SQLite's name resolution, before `main`).
pub(super) const SNAPSHOTS_VIEW: &str = "CREATE TEMP VIEW snapshots AS SELECT * FROM eventsource_snapshots.snapshots";

/// The guide's "Check Snapshot Freshness" query with the bound (`> 100` in the guide) as
/// parameter `?1`, worst first, ties in a stable order.
pub(super) const STALE_SNAPSHOTS: &str = "SELECT \
       s.aggregate_type, \
       s.aggregate_id, \
       s.version as snapshot_version, \
       MAX(e.version) as current_version, \
       MAX(e.version) - s.version as events_since_snapshot \
     FROM snapshots s \
     JOIN events e \
       ON s.aggregate_id = e.aggregate_id \
       AND s.aggregate_type = e.aggregate_type \
     GROUP BY s.aggregate_type, s.aggregate_id, s.version \
     HAVING MAX(e.version) - s.version > ?1 \
     ORDER BY events_since_snapshot DESC, s.aggregate_type, s.aggregate_id";
