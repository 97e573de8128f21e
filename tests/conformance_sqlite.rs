//! The conformance suite over SQLite files (one fresh file per test), through both APIs:
//! the sync stores directly, the async API on tokio's blocking pool.

mod common;
#[macro_use]
mod conformance;

use eventsource::tokio::Blocking;
use eventsource::{BincodeCodec, Codec, SqliteEventStore, SqliteSnapshotStore};
use tempfile::TempDir;

/// Event and snapshot stores on one fresh file (sharing a pool: one-query loads).
fn shared<C: Codec + Default>() -> Option<(SqliteEventStore<C>, SqliteSnapshotStore<C>, TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = SqliteEventStore::open_with_codec(dir.path().join("es.db"), C::default()).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, dir))
}

/// Event and snapshot stores on one fresh file with group commit off (the default is on).
fn no_group_commit() -> Option<(SqliteEventStore, SqliteSnapshotStore, TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let options = eventsource::SqliteOptions::new().group_commit(false);
    let events =
        SqliteEventStore::open_with_options(dir.path().join("es.db"), eventsource::JsonCodec, options).expect("open");
    let snapshots = events.snapshot_store();
    Some((events, snapshots, dir))
}

/// Event and snapshot stores in two files: the repository reads them separately.
fn separate() -> Option<(SqliteEventStore, SqliteSnapshotStore, TempDir)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let events = SqliteEventStore::open(dir.path().join("events.db")).expect("open");
    let snapshots = SqliteSnapshotStore::open(dir.path().join("snapshots.db")).expect("open");
    Some((events, snapshots, dir))
}

conformance_suite!(sync sqlite_sync: shared::<eventsource::JsonCodec>);
conformance_suite!(sync sqlite_bincode_sync: shared::<BincodeCodec>);
conformance_suite!(sync sqlite_separate_files_sync: separate);
conformance_suite!(sync sqlite_no_group_commit_sync: no_group_commit);
conformance_suite!(async sqlite_async: || async {
    let (events, snapshots, dir) = shared::<eventsource::JsonCodec>()?;
    Some((Blocking::new(events), Blocking::new(snapshots), dir))
});
