//! Every SQL statement of the PostgreSQL stores, written once and shared by the sync and
//! async adapters.
//!
//! Each [`Stmt`] carries its parameter types. The stores prepare statements with those
//! types once per connection (the sync pool keeps a per-connection cache, the async pool
//! uses deadpool-postgres' statement cache), so every later execution is a single round
//! trip. The types of encoded bodies (`payload`, `state`) follow the codec's format:
//! `JSONB` for JSON, `BYTEA` for binary codecs; the statement text is the same for both.

use tokio_postgres::types::Type;

use crate::codec::Format;

/// The unique constraint whose violation means "another writer got this version first".
pub(crate) const UQ_STREAM_VERSION: &str = "uq_events_stream_version";
/// The unique constraint whose violation means "this event id is already stored".
pub(crate) const UQ_EVENT_ID: &str = "uq_events_event_id";
/// The unique constraint the snapshot upsert relies on.
pub(crate) const UQ_SNAPSHOTS_AGGREGATE: &str = "uq_snapshots_aggregate";

/// A parameter type; [`Param::Body`] and [`Param::BodyArray`] depend on the codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param {
    Uuid,
    Text,
    Int4,
    Int8,
    Timestamptz,
    Body,
    Jsonb,
    UuidArray,
    TextArray,
    Int4Array,
    TimestamptzArray,
    BodyArray,
    JsonbArray,
}

impl Param {
    fn to_type(self, format: Format) -> Type {
        match (self, format) {
            (Param::Uuid, _) => Type::UUID,
            (Param::Text, _) => Type::TEXT,
            (Param::Int4, _) => Type::INT4,
            (Param::Int8, _) => Type::INT8,
            (Param::Timestamptz, _) => Type::TIMESTAMPTZ,
            (Param::Body, Format::Json) => Type::JSONB,
            (Param::Body, Format::Binary) => Type::BYTEA,
            (Param::Jsonb, _) => Type::JSONB,
            (Param::UuidArray, _) => Type::UUID_ARRAY,
            (Param::TextArray, _) => Type::TEXT_ARRAY,
            (Param::Int4Array, _) => Type::INT4_ARRAY,
            (Param::TimestamptzArray, _) => Type::TIMESTAMPTZ_ARRAY,
            (Param::BodyArray, Format::Json) | (Param::JsonbArray, _) => Type::JSONB_ARRAY,
            (Param::BodyArray, Format::Binary) => Type::BYTEA_ARRAY,
        }
    }
}

/// How a statement is planned.
///
/// The stores' sessions run with `plan_cache_mode = force_generic_plan` and without
/// sequential scans, bitmap scans and sorts (see `conn::session_options`): each hot
/// statement is prepared once per connection, planned once, and that plan is an index scan
/// whatever the statistics said when it was made (a table that was tiny then may be huge
/// now). Statements over whole tables are the opposite: their best plan changes as the
/// tables grow, and only the planner's defaults and fresh statistics find it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Plan {
    /// Prepared once per connection; its one generic plan is reused. For statements that
    /// find their rows through one index by key, the only plan they can get.
    Cached,
    /// Planned again on each execution, with the planner's defaults, in a transaction of its
    /// own that begins with [`PLANNER_DEFAULTS`]: for monitoring and bulk statements over
    /// whole tables.
    PerExecution,
}

/// Begins the transaction a [`Plan::PerExecution`] statement runs in: a custom plan for
/// this execution (with the statistics of now), with every scan and sort method allowed.
/// One round trip (simple query protocol); the statement and `COMMIT` follow.
pub(crate) const PLANNER_DEFAULTS: &str = "BEGIN;
SET LOCAL plan_cache_mode = force_custom_plan;
SET LOCAL enable_seqscan = on;
SET LOCAL enable_bitmapscan = on;
SET LOCAL enable_sort = on";

/// Ends a [`Plan::PerExecution`] statement's transaction.
pub(crate) const COMMIT: &str = "COMMIT";

/// Abandons a [`Plan::PerExecution`] statement's transaction after its statement failed.
pub(crate) const ROLLBACK: &str = "ROLLBACK";

/// One SQL statement and the types of its parameters.
#[derive(Debug)]
pub(crate) struct Stmt {
    /// Short name, for logs and errors.
    pub name: &'static str,
    /// How it is planned.
    pub plan: Plan,
    /// The SQL.
    pub text: &'static str,
    /// The parameter types, `$1` first.
    pub params: &'static [Param],
}

impl Stmt {
    /// The parameter types for a codec format.
    pub(crate) fn types(&self, format: Format) -> Vec<Type> {
        self.params.iter().map(|p| p.to_type(format)).collect()
    }
}

/// The columns an event row is read with, in order (see `rows::event`).
macro_rules! event_columns {
    () => {
        "global_position, event_id, event_type, event_version, version, \"timestamp\", created_at, payload, metadata"
    };
}

/// The columns a replay reads, in order (see `rows::replay_event`): [`REPLAY_STREAM`]'s rows,
/// and the first four columns of every [`JOINT_READ`] row.
macro_rules! replay_columns {
    () => {
        "version, event_type, payload, event_version"
    };
}

/// One aggregate's snapshot row, for the aggregate `$1`, `$2`, found through an index whose
/// first column is `aggregate_id` (`uq_snapshots_aggregate` or its twin
/// `idx_snapshots_aggregate_lookup`) whatever the statistics say. The type is compared in a
/// form no index takes (`IS TRUE` over the comparison, the same truth for a `NOT NULL`
/// column): were it an index condition, statistics made on a few rows of one type rate
/// `idx_snapshots_aggregate_type` and `idx_snapshots_schema_version` as good as the key, and
/// a plan through them reads every snapshot of the type.
macro_rules! snapshot_key {
    () => {
        "aggregate_id = $1 AND (aggregate_type = $2) IS TRUE"
    };
}

/// The stream's last version, 0 for an empty stream, for the stream `$1`, `$2`: the last entry
/// of `uq_events_stream_version` for the stream, so one backward index probe reading one
/// row, whatever the stream's length and whatever plan (custom or generic) runs it.
macro_rules! last_version {
    () => {
        "COALESCE((SELECT version FROM events WHERE aggregate_id = $1 AND aggregate_type = $2 ORDER BY version DESC LIMIT 1), 0)"
    };
}

/// Appends a batch in one statement: the rows come from `unnest` over one array per column,
/// numbered from the expected version; the `WHERE` inserts nothing unless the stream is at
/// the expected version, and the unique constraint on (aggregate, version) catches writers
/// racing past that check. One statement is atomic: all rows or none.
pub(crate) static APPEND: Stmt = Stmt {
    name: "append",
    plan: Plan::Cached,
    text: concat!(
        "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \"timestamp\", payload, metadata)
SELECT b.event_id, $1, $2, b.event_type, b.event_version, $3 + b.n, b.occurred_at, b.payload, b.metadata
FROM unnest($4, $5, $6, $7, $8, $9) WITH ORDINALITY AS b(event_id, event_type, event_version, occurred_at, payload, metadata, n)
WHERE ",
        last_version!(),
        " = $3
ORDER BY b.n"
    ),
    params: &[
        Param::Uuid,
        Param::Text,
        Param::Int8,
        Param::UuidArray,
        Param::TextArray,
        Param::Int4Array,
        Param::TimestamptzArray,
        Param::BodyArray,
        Param::JsonbArray,
    ],
};

/// Appends one event: [`APPEND`] for a batch of one, without the arrays, the numbering and
/// the sort, which cost a one-event save more server time than the insert itself. The same
/// guarantees: the `WHERE` inserts nothing unless the stream is at the expected version `$3`
/// (one backward probe of `uq_events_stream_version`), the unique constraints catch a racing
/// writer and a stored event id.
pub(crate) static APPEND_ONE: Stmt = Stmt {
    name: "append_one",
    plan: Plan::Cached,
    text: concat!(
        "INSERT INTO events (event_id, aggregate_id, aggregate_type, event_type, event_version, version, \"timestamp\", payload, metadata)
SELECT $4, $1, $2, $5, $6, $3 + 1, $7, $8, $9
WHERE ",
        last_version!(),
        " = $3"
    ),
    params: &[
        Param::Uuid,
        Param::Text,
        Param::Int8,
        Param::Uuid,
        Param::Text,
        Param::Int4,
        Param::Timestamptz,
        Param::Body,
        Param::Jsonb,
    ],
};

/// Which of a batch's event ids is already stored (after a `uq_events_event_id` violation).
pub(crate) static EXISTING_EVENT_ID: Stmt = Stmt {
    name: "existing_event_id",
    plan: Plan::Cached,
    text: "SELECT event_id FROM events WHERE event_id = ANY($1) ORDER BY event_id LIMIT 1",
    params: &[Param::UuidArray],
};

/// The stream's last version, 0 for an empty stream.
pub(crate) static STREAM_VERSION: Stmt = Stmt {
    name: "stream_version",
    plan: Plan::Cached,
    text: concat!("SELECT ", last_version!()),
    params: &[Param::Uuid, Param::Text],
};

/// The stream's events after a version, in order.
pub(crate) static READ_STREAM: Stmt = Stmt {
    name: "read_stream",
    plan: Plan::Cached,
    text: concat!(
        "SELECT ",
        event_columns!(),
        "
FROM events
WHERE aggregate_id = $1 AND aggregate_type = $2 AND version > $3
ORDER BY version"
    ),
    params: &[Param::Uuid, Param::Text, Param::Int8],
};

/// The stream's events after a version, in order, with only what a replay needs.
pub(crate) static REPLAY_STREAM: Stmt = Stmt {
    name: "replay_stream",
    plan: Plan::Cached,
    text: concat!(
        "SELECT ",
        replay_columns!(),
        "
FROM events
WHERE aggregate_id = $1 AND aggregate_type = $2 AND version > $3
ORDER BY version"
    ),
    params: &[Param::Uuid, Param::Text, Param::Int8],
};

/// The snapshot and the events from its version on, in one query, ordered by the `version`
/// column:
///
/// - first a header row, with the sort key 0 in `version` (streams start at 1) and NULL
///   `event_type`; the snapshot's `state` in `payload` (both have the codec's type) and its
///   version, schema version and creation time in columns of their own, NULL when there is no
///   snapshot;
/// - then the events with `version >= snapshot.version` (all of them when there is no
///   snapshot: a load without snapshot is one query too), as `version, event_type, payload,
///   event_version` (`replay_columns!`) and NULLs. The first, at the snapshot's own version, is the anchor:
///   it proves the stream reaches the snapshot (rule 5), so no stream-version probe is
///   needed, and the load does not apply it again.
///
/// The `UNION ALL` sits in a subquery in `FROM` (a top-level set operation is planned as a
/// plain Append plus a Sort), and its event branch carries its own `ORDER BY version`: the
/// planner then merges the two ordered branches (Merge Append) instead of sorting the whole
/// tail, streams the events from the index scan of `uq_events_stream_version` (reading only
/// the rows after the snapshot, an index condition), and the outer `ORDER BY` guarantees the
/// order. `GREATEST` (which ignores NULL) keeps every event row above the header's 0, even
/// for a malformed snapshot version. Being one statement, it reads one consistent state of
/// both tables.
pub(crate) static JOINT_READ: Stmt = Stmt {
    name: "joint_read",
    plan: Plan::Cached,
    text: concat!(
        "WITH snap AS (
    SELECT version, schema_version, state, created_at
    FROM snapshots
    WHERE ",
        snapshot_key!(),
        "
)
SELECT ",
        replay_columns!(),
        ", snapshot_version, schema_version, snapshot_created_at
FROM (
    SELECT 0::BIGINT AS version, NULL::VARCHAR AS event_type, snap.state AS payload,
           NULL::INTEGER AS event_version, snap.version::BIGINT AS snapshot_version, snap.schema_version, snap.created_at AS snapshot_created_at
    FROM (VALUES (1)) AS header(one) LEFT JOIN snap ON TRUE
    UNION ALL
    (SELECT ",
        replay_columns!(),
        ", NULL, NULL, NULL
     FROM events
     WHERE aggregate_id = $1 AND aggregate_type = $2
       AND version >= GREATEST((SELECT version FROM snap), 1)
     ORDER BY version)
) AS joint
ORDER BY version"
    ),
    params: &[Param::Uuid, Param::Text],
};

/// The joint read of [`JOINT_READ`] for a batch of aggregates, in one statement: for each
/// position `n` of the id array `$1`, the header row (the snapshot's columns, all NULL
/// without one) and the events from the snapshot's version on, with `n` as the last column.
/// Each position is an index probe of the snapshots and a range of
/// `uq_events_stream_version` (a nested loop over the array, whatever its length and
/// whatever the statistics, in the stores' sessions): the snapshot lookup is a lateral
/// subquery with `LIMIT 1` (at most one row by the unique constraint; no hash join over the
/// whole table) whose type is compared outside any index (as in `snapshot_key!`), and the
/// events arm is ordered by version, which only the unique index gives without a sort. The
/// rows come by position, then version (the header's sort key 0 first): the one sort of the
/// plan, over the chunk's rows.
pub(crate) static JOINT_READ_MANY: Stmt = Stmt {
    name: "joint_read_many",
    plan: Plan::Cached,
    text: "SELECT joint.version, joint.event_type, joint.payload, joint.event_version,
       joint.snapshot_version, joint.schema_version, joint.snapshot_created_at, ids.n
FROM unnest($1) WITH ORDINALITY AS ids(aggregate_id, n)
LEFT JOIN LATERAL (
    SELECT version, schema_version, state, created_at
    FROM snapshots
    WHERE aggregate_id = ids.aggregate_id AND (aggregate_type = $2) IS TRUE
    LIMIT 1
) AS s ON TRUE
CROSS JOIN LATERAL (
    SELECT 0::BIGINT AS version, NULL::VARCHAR AS event_type, s.state AS payload,
           NULL::INTEGER AS event_version, s.version::BIGINT AS snapshot_version, s.schema_version, s.created_at AS snapshot_created_at
    UNION ALL
    (SELECT e.version, e.event_type, e.payload, e.event_version, NULL, NULL, NULL
     FROM events e
     WHERE e.aggregate_id = ids.aggregate_id AND e.aggregate_type = $2
       AND e.version >= GREATEST(s.version, 1)
     ORDER BY e.version)
) AS joint
ORDER BY ids.n, joint.version",
    params: &[Param::UuidArray, Param::Text],
};

/// Aggregates of a type with more than `$2` events, most events first (the guide's
/// "prioritize high-event aggregates", with a parameter instead of the literal).
pub(crate) static AGGREGATES_BY_EVENT_COUNT: Stmt = Stmt {
    name: "aggregates_by_event_count",
    plan: Plan::PerExecution,
    text: "SELECT aggregate_id, COUNT(*) AS event_count
FROM events
WHERE aggregate_type = $1
GROUP BY aggregate_id
HAVING COUNT(*) > $2
ORDER BY COUNT(*) DESC, aggregate_id",
    params: &[Param::Text, Param::Int8],
};

/// Rule 4 in SQL, the conflict clause of both snapshot upserts: replace only with a higher
/// schema version, or the same schema version and a higher stream version.
macro_rules! snapshot_upsert_rule {
    () => {
        "ON CONFLICT ON CONSTRAINT uq_snapshots_aggregate DO UPDATE
SET version = excluded.version,
    schema_version = excluded.schema_version,
    state = excluded.state,
    created_at = excluded.created_at
WHERE excluded.schema_version > snapshots.schema_version
   OR (excluded.schema_version = snapshots.schema_version AND excluded.version > snapshots.version)"
    };
}

/// Rule 4 in SQL: insert, or replace under [`snapshot_upsert_rule!`]. One row affected
/// means written, none means kept.
pub(crate) static SNAPSHOT_UPSERT: Stmt = Stmt {
    name: "save_snapshot",
    plan: Plan::Cached,
    text: concat!(
        "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, created_at)
VALUES ($1, $2, $3, $4, $5, $6)
",
        snapshot_upsert_rule!()
    ),
    params: &[
        Param::Uuid,
        Param::Text,
        Param::Int4,
        Param::Int4,
        Param::Body,
        Param::Timestamptz,
    ],
};

/// Several snapshots in one statement (atomic, one round trip, one commit): one array per
/// column, the same rule per row. `RETURNING` names the rows written; the others were kept.
/// The batch must not name one aggregate twice (PostgreSQL refuses to update a row twice
/// in one statement); the stores fall back to one upsert at a time for such a batch.
pub(crate) static SNAPSHOT_UPSERT_BATCH: Stmt = Stmt {
    name: "save_snapshots",
    plan: Plan::Cached,
    text: concat!(
        "INSERT INTO snapshots (aggregate_id, aggregate_type, version, schema_version, state, created_at)
SELECT * FROM unnest($1, $2, $3, $4, $5, $6)
",
        snapshot_upsert_rule!(),
        "
RETURNING aggregate_id, aggregate_type"
    ),
    params: &[
        Param::UuidArray,
        Param::TextArray,
        Param::Int4Array,
        Param::Int4Array,
        Param::BodyArray,
        Param::TimestamptzArray,
    ],
};

/// One aggregate's snapshot (columns read by `rows::snapshot`).
pub(crate) static SNAPSHOT_GET: Stmt = Stmt {
    name: "get_snapshot",
    plan: Plan::Cached,
    text: concat!(
        "SELECT version, schema_version, state, created_at
FROM snapshots
WHERE ",
        snapshot_key!()
    ),
    params: &[Param::Uuid, Param::Text],
};

/// Deletes one aggregate's snapshot.
pub(crate) static SNAPSHOT_DELETE: Stmt = Stmt {
    name: "delete_snapshot",
    plan: Plan::Cached,
    text: concat!("DELETE FROM snapshots WHERE ", snapshot_key!()),
    params: &[Param::Uuid, Param::Text],
};

/// Whether an aggregate has a snapshot.
pub(crate) static SNAPSHOT_EXISTS: Stmt = Stmt {
    name: "snapshot_exists",
    plan: Plan::Cached,
    text: concat!("SELECT EXISTS (SELECT 1 FROM snapshots WHERE ", snapshot_key!(), ")"),
    params: &[Param::Uuid, Param::Text],
};

/// Deletes a type's snapshots: all with `$2` NULL, those with `schema_version < $2` (strictly)
/// otherwise. The bound is a `BIGINT`, so every `u32` bound compares exactly.
pub(crate) static SNAPSHOTS_DELETE_BY_TYPE: Stmt = Stmt {
    name: "delete_snapshots_by_type",
    plan: Plan::PerExecution,
    text: "DELETE FROM snapshots WHERE aggregate_type = $1 AND ($2::BIGINT IS NULL OR schema_version < $2)",
    params: &[Param::Text, Param::Int8],
};

/// Snapshot coverage per aggregate type: the reference guide's query, ordered.
pub(crate) static COVERAGE: Stmt = Stmt {
    name: "coverage",
    plan: Plan::PerExecution,
    text: "SELECT
    e.aggregate_type::TEXT,
    COUNT(DISTINCT e.aggregate_id) as total_aggregates,
    COUNT(DISTINCT s.aggregate_id) as with_snapshot,
    COUNT(DISTINCT e.aggregate_id) - COUNT(DISTINCT s.aggregate_id) as without_snapshot
FROM events e
LEFT JOIN snapshots s
    ON e.aggregate_id = s.aggregate_id
    AND e.aggregate_type = s.aggregate_type
GROUP BY e.aggregate_type
ORDER BY e.aggregate_type",
    params: &[],
};

/// Stale snapshots, worst first: the reference guide's freshness query with the bound as a
/// parameter.
pub(crate) static STALE_SNAPSHOTS: Stmt = Stmt {
    name: "stale_snapshots",
    plan: Plan::PerExecution,
    text: "SELECT
    s.aggregate_type::TEXT,
    s.aggregate_id,
    s.version::BIGINT as snapshot_version,
    MAX(e.version) as current_version,
    MAX(e.version) - s.version as events_since_snapshot
FROM snapshots s
JOIN events e
    ON s.aggregate_id = e.aggregate_id
    AND s.aggregate_type = e.aggregate_type
GROUP BY s.aggregate_type, s.aggregate_id, s.version
HAVING MAX(e.version) - s.version > $1
ORDER BY events_since_snapshot DESC, s.aggregate_type, s.aggregate_id",
    params: &[Param::Int8],
};

/// Stored snapshots per aggregate type and schema version.
pub(crate) static SNAPSHOT_VERSIONS: Stmt = Stmt {
    name: "snapshot_versions",
    plan: Plan::PerExecution,
    text: "SELECT aggregate_type::TEXT, schema_version::BIGINT, COUNT(*)
FROM snapshots
GROUP BY aggregate_type, schema_version
ORDER BY aggregate_type, schema_version",
    params: &[],
};

/// Whether the migrations table exists in the current schema (`search_path`).
pub(crate) static MIGRATIONS_TABLE_EXISTS: Stmt = Stmt {
    name: "migrations_table_exists",
    plan: Plan::Cached,
    text: "SELECT to_regclass('eventsource_migrations') IS NOT NULL",
    params: &[],
};

/// Serializes migrations of one schema across processes, for the migration transaction.
pub(crate) static MIGRATION_LOCK: Stmt = Stmt {
    name: "migration_lock",
    plan: Plan::Cached,
    text:
        "SELECT pg_advisory_xact_lock(hashtext('eventsource_migrations'), hashtext(COALESCE($1, current_schema(), '')))",
    params: &[Param::Text],
};

/// Whether a schema exists.
pub(crate) static SCHEMA_EXISTS: Stmt = Stmt {
    name: "schema_exists",
    plan: Plan::Cached,
    text: "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
    params: &[Param::Text],
};

/// The migrations recorded as applied.
pub(crate) static APPLIED_MIGRATIONS: Stmt = Stmt {
    name: "applied_migrations",
    plan: Plan::Cached,
    text: "SELECT version, checksum, format FROM eventsource_migrations ORDER BY version",
    params: &[],
};

/// Records an applied migration.
pub(crate) static RECORD_MIGRATION: Stmt = Stmt {
    name: "record_migration",
    plan: Plan::Cached,
    text: "INSERT INTO eventsource_migrations (version, name, checksum, format) VALUES ($1, $2, $3, $4)",
    params: &[Param::Int4, Param::Text, Param::Text, Param::Text],
};

/// The partition count the partitioned layout's migrations read (setting
/// `eventsource.partitions`), for the migration transaction only.
pub(crate) static PARTITIONS_SETTING: Stmt = Stmt {
    name: "partitions_setting",
    plan: Plan::Cached,
    text: "SELECT set_config('eventsource.partitions', $1, TRUE)",
    params: &[Param::Text],
};

/// The columns and constraints of our tables in the current schema, and the partition key
/// of each partitioned one (`HASH (aggregate_id)`), for the schema check.
pub(crate) static CATALOG: Stmt = Stmt {
    name: "schema_check",
    plan: Plan::Cached,
    text: "SELECT 'column'::TEXT AS kind, table_name::TEXT, column_name::TEXT AS name, data_type::TEXT AS detail
FROM information_schema.columns
WHERE table_schema = current_schema() AND table_name IN ('events', 'snapshots')
UNION ALL
SELECT 'constraint'::TEXT, table_name::TEXT, constraint_name::TEXT, constraint_type::TEXT
FROM information_schema.table_constraints
WHERE constraint_schema = current_schema() AND table_name IN ('events', 'snapshots')
UNION ALL
SELECT 'partition key'::TEXT, c.relname::TEXT, c.relname::TEXT, pg_get_partkeydef(c.oid)
FROM pg_partitioned_table p
JOIN pg_class c ON c.oid = p.partrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relname IN ('events', 'snapshots')",
    params: &[],
};

/// Where the connection is: database, schema, server address and port.
pub(crate) static SERVER_INFO: Stmt = Stmt {
    name: "server_info",
    plan: Plan::Cached,
    text: "SELECT current_database()::TEXT, current_schema()::TEXT, host(inet_server_addr()), inet_server_port()",
    params: &[],
};

/// Starts a group commit's shared transaction. The group commit's transaction control
/// runs over the simple query protocol (no parameters, nothing to prepare).
pub(crate) const GROUP_BEGIN: &str = "BEGIN";

/// Marks the start of one append inside a group commit (the latest savepoint of that
/// name is the one a `ROLLBACK TO` returns to, so none is released).
pub(crate) const GROUP_SAVEPOINT: &str = "SAVEPOINT eventsource_append";

/// Undoes one failed append of a group commit, and only it.
pub(crate) const GROUP_ROLLBACK_TO: &str = "ROLLBACK TO SAVEPOINT eventsource_append";

/// Commits a group commit's shared transaction.
pub(crate) const GROUP_COMMIT: &str = "COMMIT";

/// Abandons a group commit's shared transaction.
pub(crate) const GROUP_ROLLBACK: &str = "ROLLBACK";

#[cfg(test)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> usize {
        (1..=20).filter(|n| text.contains(&format!("${n}"))).count()
    }

    #[test]
    fn every_statement_declares_each_parameter() {
        for s in [
            &APPEND,
            &APPEND_ONE,
            &EXISTING_EVENT_ID,
            &STREAM_VERSION,
            &READ_STREAM,
            &REPLAY_STREAM,
            &JOINT_READ,
            &JOINT_READ_MANY,
            &AGGREGATES_BY_EVENT_COUNT,
            &SNAPSHOT_UPSERT,
            &SNAPSHOT_GET,
            &SNAPSHOT_DELETE,
            &SNAPSHOT_EXISTS,
            &SNAPSHOTS_DELETE_BY_TYPE,
            &COVERAGE,
            &STALE_SNAPSHOTS,
            &SNAPSHOT_VERSIONS,
            &MIGRATIONS_TABLE_EXISTS,
            &MIGRATION_LOCK,
            &SCHEMA_EXISTS,
            &APPLIED_MIGRATIONS,
            &RECORD_MIGRATION,
            &CATALOG,
            &PARTITIONS_SETTING,
            &SERVER_INFO,
        ] {
            assert_eq!(placeholders(s.text), s.params.len(), "{}", s.name);
        }
    }

    #[test]
    fn body_types_follow_the_codec() {
        assert_eq!(SNAPSHOT_UPSERT.types(Format::Json)[4], Type::JSONB);
        assert_eq!(SNAPSHOT_UPSERT.types(Format::Binary)[4], Type::BYTEA);
        assert_eq!(APPEND.types(Format::Binary)[7], Type::BYTEA_ARRAY);
        assert_eq!(
            APPEND.types(Format::Binary)[8],
            Type::JSONB_ARRAY,
            "metadata stays JSONB"
        );
    }

    #[test]
    fn stream_versions_are_read_with_a_backward_index_probe() {
        for s in [&APPEND, &APPEND_ONE, &STREAM_VERSION] {
            assert!(!s.text.contains("MAX("), "{}", s.name);
            assert!(s.text.contains(last_version!()), "{}", s.name);
        }
    }

    #[test]
    fn the_joint_read_is_ordered_without_a_nulls_first_sort() {
        assert!(JOINT_READ.text.ends_with("ORDER BY version"));
        assert!(!JOINT_READ.text.contains("NULLS FIRST"));
        assert!(JOINT_READ.text.starts_with("WITH snap AS"));
        assert!(REPLAY_STREAM
            .text
            .starts_with(concat!("SELECT ", replay_columns!(), "\n")));
    }

    #[test]
    fn the_upsert_names_the_guides_constraint() {
        assert!(SNAPSHOT_UPSERT.text.contains(UQ_SNAPSHOTS_AGGREGATE));
    }
}
