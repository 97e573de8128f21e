//! The conformance suite over PostgreSQL, through both APIs, each test in a schema of its
//! own: sync stores over `postgres`, async ones over `tokio-postgres`, with the JSON codec
//! (event and snapshot stores sharing a pool: one-query loads), with bincode, with the
//! event and snapshot stores in two schemas (separate reads), and on the partitioned layout
//! (tables hash-partitioned by `aggregate_id`, sync and async). Without a reachable server a
//! test prints a skip line outside CI and fails in CI (`common_pg::schema`).

#[macro_use]
mod common_pg;
mod common;
#[macro_use]
mod conformance;

use common_pg::PgSchema;
use eventsource::store::postgres::{
    AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PostgresEventStore, PostgresSnapshotStore,
};
use eventsource::{BincodeCodec, Codec, JsonCodec};

/// Event and snapshot stores on one fresh schema and pool (one-query loads).
fn shared<C: Codec + Default>() -> Option<(PostgresEventStore<C>, PostgresSnapshotStore<C>, PgSchema)> {
    let db = common_pg::schema("conformance")?;
    let events = PostgresEventStore::from_config(db.config("conformance"), C::default(), db.options()).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

/// Event and snapshot stores on one fresh schema and pool, with group commit on.
fn group_commit() -> Option<(PostgresEventStore, PostgresSnapshotStore, PgSchema)> {
    let db = common_pg::schema("conformance")?;
    let options = db.options().group_commit(true);
    let events = PostgresEventStore::from_config(db.config("conformance"), JsonCodec, options).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

/// Event and snapshot stores on one fresh schema and pool, in the partitioned layout (four
/// hash partitions per table).
fn partitioned<C: Codec + Default>() -> Option<(PostgresEventStore<C>, PostgresSnapshotStore<C>, PgSchema)> {
    let db = common_pg::schema_with("conformance", common_pg::PARTITIONED)?;
    let events = PostgresEventStore::from_config(db.config("conformance"), C::default(), db.options()).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

/// Async event and snapshot stores on one fresh schema and pool, in the partitioned layout.
async fn partitioned_async<C: Codec + Default>(
) -> Option<(AsyncPostgresEventStore<C>, AsyncPostgresSnapshotStore<C>, PgSchema)> {
    let db = common_pg::schema_with("conformance", common_pg::PARTITIONED)?;
    let events = AsyncPostgresEventStore::from_config(db.async_config("conformance"), C::default(), db.options())
        .await
        .expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

/// Event and snapshot stores in the partitioned layout with group commit on (a refused
/// append of a shared transaction is told apart by its partition's constraint name).
fn partitioned_group_commit() -> Option<(PostgresEventStore, PostgresSnapshotStore, PgSchema)> {
    let db = common_pg::schema_with("conformance", common_pg::PARTITIONED)?;
    let options = db.options().group_commit(true);
    let events = PostgresEventStore::from_config(db.config("conformance"), JsonCodec, options).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

/// Event and snapshot stores in two schemas: the repository reads them separately.
fn separate() -> Option<(PostgresEventStore, PostgresSnapshotStore, (PgSchema, PgSchema))> {
    let db = common_pg::schema("conformance")?;
    let other = common_pg::schema("conformance")?;
    let events = PostgresEventStore::from_config(db.config("conformance"), JsonCodec, db.options()).expect("open");
    let snapshots =
        PostgresSnapshotStore::from_config(other.config("conformance"), JsonCodec, other.options()).expect("open");
    Some((events, snapshots, (db, other)))
}

async fn shared_async<C: Codec + Default>(
) -> Option<(AsyncPostgresEventStore<C>, AsyncPostgresSnapshotStore<C>, PgSchema)> {
    let db = common_pg::schema("conformance")?;
    let events = AsyncPostgresEventStore::from_config(db.async_config("conformance"), C::default(), db.options())
        .await
        .expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

conformance_suite!(sync pg_sync: shared::<JsonCodec>);
conformance_suite!(sync pg_bincode_sync: shared::<BincodeCodec>);
conformance_suite!(sync pg_separate_schemas_sync: separate);
conformance_suite!(sync pg_group_commit_sync: group_commit);
/// The async stores with their single-statement operations on two shared, pipelined
/// connections.
async fn pipelined_async() -> Option<(AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PgSchema)> {
    let db = common_pg::schema("conformance")?;
    let options = db.options().pipelined_connections(2);
    let events = AsyncPostgresEventStore::from_config(db.async_config("conformance"), JsonCodec, options)
        .await
        .expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, db))
}

conformance_suite!(async pg_async: shared_async::<JsonCodec>);
conformance_suite!(async pg_pipelined_async: pipelined_async);
conformance_suite!(async pg_bincode_async: shared_async::<BincodeCodec>);
conformance_suite!(sync pg_partitioned_sync: partitioned::<JsonCodec>, event ids per aggregate);
conformance_suite!(sync pg_partitioned_bincode_sync: partitioned::<BincodeCodec>, event ids per aggregate);
conformance_suite!(async pg_partitioned_async: partitioned_async::<JsonCodec>, event ids per aggregate);
conformance_suite!(sync pg_partitioned_group_commit_sync: partitioned_group_commit, event ids per aggregate);
