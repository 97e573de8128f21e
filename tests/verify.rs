//! `verify` and `verify_many`: an aggregate loaded through its snapshot is compared with a
//! full replay of its events. Agreement, a mismatch from an `apply` that is not
//! deterministic, a mismatch from a state shape changed without a `schema_version` raise,
//! nothing to compare, read-only verification, and batches (failures, progress), written
//! once and run over memory, SQLite and PostgreSQL, through the sync and the async API.

#[macro_use]
mod common_pg;
mod common;

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

pub use common::flaky::{Flaky, Ticked};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct Deposited {
    pub cents: i64,
}

/// The account as schema 1 stored it: only the balance.
#[derive(Debug, Serialize)]
pub struct AccountV1 {
    pub balance: i64,
}

/// `deposits` was added later with `#[serde(default)]`, and `schema_version` was not
/// raised: an old snapshot still decodes, with 0 deposits.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Account", schema_version = 1, events(Deposited))]
pub struct Account {
    pub balance: i64,
    #[serde(default)]
    pub deposits: u64,
}

impl Apply<Deposited> for Account {
    fn apply(&mut self, e: &Deposited) {
        self.balance += e.cents;
        self.deposits += 1;
    }
}

/// The scenarios, written once and compiled for the sync API and for the async one (as
/// the conformance suite does): `aw!` is `.await` or nothing, `api_fn!` makes an `async
/// fn` or a `fn`.
macro_rules! scenarios {
    () => {
        type Repo<A, ES, SS> = AggregateRepository<A, Arc<ES>, Arc<SS>>;

        fn repo<A: eventsource::Aggregate, ES: EventStore, SS: SnapshotStore>(
            es: &Arc<ES>,
            ss: &Arc<SS>,
            threshold: u64,
        ) -> Repo<A, ES, SS> {
            AggregateRepository::new(Arc::clone(es))
                .with_snapshot_store(Arc::clone(ss))
                .snapshot_threshold(threshold)
                .expect("threshold")
        }

        // An order created with `items` items in one save, then `more` items in another.
        api_fn! { fn order<ES: EventStore, SS: SnapshotStore>(repo: &Repo<Order, ES, SS>, items: u64, more: u64) -> Uuid {
            let id = Uuid::now_v7();
            let mut root = aw!(repo.load_or_create(id)).expect("load_or_create");
            root.record(OrderCreated { customer_id: id });
            for n in 1..=items {
                root.record(item(n));
            }
            aw!(repo.save(&mut root)).expect("save");
            for n in 1..=more {
                root.record(item(items + n));
            }
            aw!(repo.save(&mut root)).expect("save");
            id
        }}

        api_fn! { fn ticks<ES: EventStore, SS: SnapshotStore>(repo: &Repo<Flaky, ES, SS>, n: u64) -> Uuid {
            let id = Uuid::now_v7();
            let mut root = aw!(repo.load_or_create(id)).expect("load_or_create");
            for _ in 0..n {
                root.record(Ticked);
            }
            aw!(repo.save(&mut root)).expect("save");
            id
        }}

        // A snapshot of `A` at `version` with the current schema version, written as given.
        fn snapshot<A: eventsource::Aggregate, SS: SnapshotStore>(ss: &SS, id: Uuid, version: u64, state: &impl serde::Serialize) -> Snapshot {
            Snapshot {
                aggregate_id: id,
                aggregate_type: A::TYPE.into(),
                version,
                schema_version: A::SCHEMA_VERSION,
                state: ss.codec().encode(state).expect("encode"),
                created_at: eventsource::time::now(),
            }
        }

        fn new_event(event_type: &str, payload: &[u8]) -> NewEvent {
            NewEvent {
                event_id: Uuid::now_v7(),
                event_type: event_type.into(),
                event_version: 1,
                occurred_at: eventsource::time::now(),
                payload: payload.to_vec(),
                metadata: Metadata::default(),
            }
        }

        api_fn! { pub fn agreement_and_nothing_to_compare<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
            let repo = repo::<Order, _, _>(&es, &ss, 5);
            // A snapshot at 7 (the first save crosses 5), then two events after it.
            let id = aw!(order(&repo, 6, 2));
            let before = repo.stats();
            let v = aw!(repo.verify(id)).expect("verify");
            assert_eq!(v.verdict, Verdict::Agree, "{v:?}");
            assert!(v.agrees() && v.mismatch().is_none());
            assert_eq!((v.aggregate_id, v.version), (id, 9));
            assert_eq!(v.snapshot, SnapshotUse::Used { version: 7 });
            assert_eq!(repo.stats(), before, "verifying counts nothing");

            // Three events, under the threshold: no snapshot, nothing to compare.
            let small = aw!(order(&repo, 2, 0));
            let v = aw!(repo.verify(small)).expect("verify");
            assert_eq!(v.verdict, Verdict::NoSnapshot);
            assert!(!v.agrees() && v.mismatch().is_none());
            assert_eq!((v.version, v.snapshot), (3, SnapshotUse::Discarded(MissReason::Missing)));

            // No events at all: not found.
            let unknown = Uuid::now_v7();
            assert!(matches!(aw!(repo.verify(unknown)), Err(Error::NotFound { aggregate_id, .. }) if aggregate_id == unknown));

            // Without a snapshot store there is nothing to verify against.
            let bare = AggregateRepository::<Order, _>::new(Arc::clone(&es));
            assert!(matches!(aw!(bare.verify(id)), Err(Error::NoSnapshotStore)));
            assert!(matches!(aw!(bare.verify_many(&[id], |_| {})), Err(Error::NoSnapshotStore)));
        }}

        api_fn! { pub fn nondeterministic_apply_is_a_mismatch<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
            let repo = repo::<Flaky, _, _>(&es, &ss, 3);
            let id = aw!(ticks(&repo, 4)); // a snapshot at 4
            let v = aw!(repo.verify(id)).expect("verify");
            assert_eq!((v.version, v.snapshot), (4, SnapshotUse::Used { version: 4 }));
            let m = v.mismatch().expect("a mismatch");
            assert_eq!(m.replay_version, 4);
            assert!(m.via_snapshot.contains("ticks: 4,") && m.via_replay.contains("ticks: 4,"), "{m:?}");
            assert_ne!(m.via_snapshot, m.via_replay);
            // `Flaky {`, `ticks`, then the stamp: the third line.
            assert_eq!(m.first_difference, Some(3), "{m:?}");
        }}

        api_fn! { pub fn forgotten_schema_bump_is_a_mismatch<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
            let repo = repo::<Account, _, _>(&es, &ss, 1000);
            let id = Uuid::now_v7();
            let mut root = aw!(repo.load_or_create(id)).expect("load_or_create");
            for cents in [100, 200, 300] {
                root.record(Deposited { cents });
            }
            aw!(repo.save(&mut root)).expect("save");
            // A snapshot written by the old code, before `deposits` existed: it still decodes.
            let old = snapshot::<Account, _>(&*ss, id, 3, &AccountV1 { balance: 600 });
            assert_eq!(aw!(ss.save_snapshot(&old)).expect("save snapshot"), SnapshotWrite::Written);

            let v = aw!(repo.verify(id)).expect("verify");
            assert_eq!(v.snapshot, SnapshotUse::Used { version: 3 });
            let m = v.mismatch().expect("a mismatch");
            assert!(m.via_snapshot.contains("deposits: 0,"), "{}", m.via_snapshot);
            assert!(m.via_replay.contains("deposits: 3,"), "{}", m.via_replay);
            assert!(m.via_snapshot.contains("balance: 600,") && m.via_replay.contains("balance: 600,"));
            // A load, meanwhile, uses the snapshot without a word: that is the silent lie.
            let loaded = aw!(repo.load(id)).expect("load");
            assert_eq!(loaded.state().deposits, 0);
        }}

        api_fn! { pub fn verification_only_reads<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
            // Sync mode: a load would delete a snapshot beyond its stream and repair.
            let repo = repo::<Order, _, _>(&es, &ss, 1000);
            let ahead = aw!(order(&repo, 2, 0));
            let bogus = snapshot::<Order, _>(&*ss, ahead, 50, &Order::default());
            aw!(ss.save_snapshot(&bogus)).expect("save snapshot");
            let garbled = aw!(order(&repo, 2, 0));
            let mut unreadable = snapshot::<Order, _>(&*ss, garbled, 3, &Order::default());
            unreadable.state = br#"{"status": 42}"#.to_vec(); // JSON, not an Order
            aw!(ss.save_snapshot(&unreadable)).expect("save snapshot");

            let before = repo.stats();
            let v = aw!(repo.verify(ahead)).expect("verify");
            assert_eq!(v.verdict, Verdict::NoSnapshot);
            assert_eq!((v.version, v.snapshot), (3, SnapshotUse::Discarded(MissReason::AheadOfStream)));
            let v = aw!(repo.verify(garbled)).expect("verify");
            assert_eq!(v.verdict, Verdict::NoSnapshot);
            assert_eq!(v.snapshot, SnapshotUse::Discarded(MissReason::DecodeFailed));
            let report = aw!(repo.verify_many(&[ahead, garbled], |_| {})).expect("verify_many");
            assert_eq!((report.total, report.no_snapshot, report.agreed), (2, 2, 0));
            assert!(report.is_clean());

            // Both snapshots are still there, untouched, and nothing was counted.
            let kept = aw!(ss.get_snapshot(ahead, "Order")).expect("get").expect("kept");
            assert_eq!(kept.version, 50);
            let kept = aw!(ss.get_snapshot(garbled, "Order")).expect("get").expect("kept");
            assert_eq!(kept.state, unreadable.state);
            assert_eq!(repo.stats(), before);

            // A load does delete and repair: verify was the one that held back.
            let (_, outcome) = aw!(repo.load_with_outcome(ahead)).expect("load");
            assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::AheadOfStream));
            assert_ne!(aw!(ss.get_snapshot(ahead, "Order")).expect("get").map(|s| s.version), Some(50));
        }}

        api_fn! { pub fn batch_reports_mismatches_failures_and_progress<ES: EventStore, SS: SnapshotStore>(es: Arc<ES>, ss: Arc<SS>) {
            let repo = repo::<Order, _, _>(&es, &ss, 5);
            let mut ids = Vec::new();
            for i in 0..10 {
                ids.push(aw!(order(&repo, 5 + i, 1))); // snapshots that agree
            }
            let small = [aw!(order(&repo, 1, 0)), aw!(order(&repo, 2, 0))]; // no snapshot
            // A snapshot that says something else than its events.
            let wrong = aw!(order(&repo, 3, 0));
            let lie = Order { item_count: 999, ..Order::default() };
            let lying = snapshot::<Order, _>(&*ss, wrong, 4, &lie);
            assert_eq!(aw!(ss.save_snapshot(&lying)).expect("save snapshot"), SnapshotWrite::Written);
            // A history that cannot be decoded, and an aggregate that does not exist.
            let broken = Uuid::now_v7();
            aw!(es.append(broken, "Order", 0, &[new_event("Nonsense", b"{}")])).expect("append");
            let unknown = Uuid::now_v7();
            ids.insert(3, small[0]);
            ids.insert(5, broken);
            ids.insert(7, wrong);
            ids.insert(9, unknown);
            ids.push(small[1]);
            let n = ids.len();

            let seen = std::sync::Mutex::new(Vec::new());
            let report = aw!(repo.verify_many(&ids, |p| seen.lock().expect("lock").push(p))).expect("verify_many");
            let seen = seen.into_inner().expect("lock");
            assert_eq!(seen.len(), n, "progress after every aggregate");
            assert!(seen.iter().all(|p| p.total == n && p.failed <= 2));
            let mut done: Vec<usize> = seen.iter().map(|p| p.done).collect();
            done.sort_unstable();
            assert_eq!(done, (1..=n).collect::<Vec<_>>());
            assert_eq!(seen.iter().map(|p| p.failed).max(), Some(2));

            assert_eq!((report.total, report.agreed, report.no_snapshot), (n, 10, 2), "{report:?}");
            assert!(!report.is_clean());
            assert_eq!(report.mismatches.len(), 1);
            let m = &report.mismatches[0];
            assert_eq!((m.aggregate_id, m.version, m.snapshot), (wrong, 4, SnapshotUse::Used { version: 4 }));
            assert!(m.mismatch().is_some_and(|m| m.via_snapshot.contains("item_count: 999,")));
            let mut failed: Vec<Uuid> = report.failed.iter().map(|(id, _)| *id).collect();
            failed.sort_unstable();
            let mut expected = vec![broken, unknown];
            expected.sort_unstable();
            assert_eq!(failed, expected);
            for (id, e) in &report.failed {
                if *id == unknown {
                    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
                } else {
                    assert!(matches!(e, Error::EventDecode { .. }), "{e:?}");
                }
            }
        }}
    };
}

/// Generates a module `$module` with one test per scenario, each on fresh stores from the
/// factory (as `conformance_suite!` does).
macro_rules! verify_suite {
    ($mode:ident $module:ident: $factory:expr) => {
        verify_suite!(@each $mode $module $factory;
            agreement_and_nothing_to_compare, nondeterministic_apply_is_a_mismatch,
            forgotten_schema_bump_is_a_mismatch, verification_only_reads,
            batch_reports_mismatches_failures_and_progress);
    };
    (@each sync $module:ident $factory:expr; $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[test]
                fn $name() {
                    let Some((events, snapshots, _guard)) = ($factory)() else { return };
                    crate::sync_api::$name(std::sync::Arc::new(events), std::sync::Arc::new(snapshots));
                }
            )*
        }
    };
    (@each async $module:ident $factory:expr; $($name:ident),* $(,)?) => {
        mod $module {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    let Some((events, snapshots, _guard)) = ($factory)().await else { return };
                    crate::async_api::$name(std::sync::Arc::new(events), std::sync::Arc::new(snapshots)).await;
                }
            )*
        }
    };
}

/// The scenarios over the sync API.
mod sync_api {
    macro_rules! aw {
        ($e:expr) => {
            $e
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis fn $($rest)* };
    }

    use std::sync::Arc;

    use eventsource::{
        AggregateRepository, Codec, Error, EventStore, Metadata, MissReason, NewEvent, Snapshot, SnapshotStore,
        SnapshotUse, SnapshotWrite, Verdict,
    };
    use uuid::Uuid;

    use super::{Account, AccountV1, Deposited, Flaky, Ticked};
    use crate::common::{item, Order, OrderCreated};

    scenarios!();
}

/// The scenarios over the async API (`eventsource::tokio`).
mod async_api {
    macro_rules! aw {
        ($e:expr) => {
            $e.await
        };
    }
    macro_rules! api_fn {
        ($(#[$m:meta])* $vis:vis fn $($rest:tt)*) => { $(#[$m])* $vis async fn $($rest)* };
    }

    use std::sync::Arc;

    use eventsource::tokio::{AggregateRepository, EventStore, SnapshotStore};
    use eventsource::{Codec, Error, Metadata, MissReason, NewEvent, Snapshot, SnapshotUse, SnapshotWrite, Verdict};
    use uuid::Uuid;

    use super::{Account, AccountV1, Deposited, Flaky, Ticked};
    use crate::common::{item, Order, OrderCreated};

    scenarios!();
}

mod memory {
    use eventsource::{InMemoryEventStore, InMemorySnapshotStore};

    pub fn stores() -> Option<(InMemoryEventStore, InMemorySnapshotStore, ())> {
        Some((InMemoryEventStore::new(), InMemorySnapshotStore::new(), ()))
    }
}

mod sqlite {
    use eventsource::tokio::Blocking;
    use eventsource::{SqliteEventStore, SqliteSnapshotStore};
    use tempfile::TempDir;

    /// Event and snapshot stores on one fresh file (one-query loads).
    pub fn shared() -> Option<(SqliteEventStore, SqliteSnapshotStore, TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let events = SqliteEventStore::open(dir.path().join("es.db")).expect("open");
        let snapshots = events.snapshot_store();
        Some((events, snapshots, dir))
    }

    /// Event and snapshot stores in two files: the snapshot is read on its own.
    pub fn separate() -> Option<(SqliteEventStore, SqliteSnapshotStore, TempDir)> {
        let dir = tempfile::tempdir().expect("temp dir");
        let events = SqliteEventStore::open(dir.path().join("events.db")).expect("open");
        let snapshots = SqliteSnapshotStore::open(dir.path().join("snapshots.db")).expect("open");
        Some((events, snapshots, dir))
    }

    pub async fn shared_async() -> Option<(Blocking<SqliteEventStore>, Blocking<SqliteSnapshotStore>, TempDir)> {
        let (events, snapshots, dir) = shared()?;
        Some((Blocking::new(events), Blocking::new(snapshots), dir))
    }
}

mod pg {
    use eventsource::store::postgres::{
        AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PostgresEventStore, PostgresSnapshotStore,
    };
    use eventsource::JsonCodec;

    use crate::common_pg::{self, PgSchema};

    /// Event and snapshot stores on one fresh schema and pool (one-query loads).
    pub fn shared() -> Option<(PostgresEventStore, PostgresSnapshotStore, PgSchema)> {
        let db = common_pg::schema("verify")?;
        let events = PostgresEventStore::from_config(db.config("verify"), JsonCodec, db.options()).expect("open");
        let snapshots = events.snapshot_store();
        Some((events, snapshots, db))
    }

    pub async fn shared_async() -> Option<(AsyncPostgresEventStore, AsyncPostgresSnapshotStore, PgSchema)> {
        let db = common_pg::schema("verify")?;
        let events = AsyncPostgresEventStore::from_config(db.async_config("verify"), JsonCodec, db.options())
            .await
            .expect("open");
        let snapshots = events.snapshot_store();
        Some((events, snapshots, db))
    }
}

verify_suite!(sync memory_sync: memory::stores);
verify_suite!(async memory_async: || async { memory::stores() });
verify_suite!(sync sqlite_sync: sqlite::shared);
verify_suite!(sync sqlite_separate_files_sync: sqlite::separate);
verify_suite!(async sqlite_async: sqlite::shared_async);
verify_suite!(sync pg_sync: pg::shared);
verify_suite!(async pg_async: pg::shared_async);

/// A huge state's text is cut, so a report (and its WARN line) stays bounded.
#[test]
fn a_huge_state_is_cut_in_the_report() {
    use eventsource::repository::VERIFY_DEBUG_LIMIT;
    use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore, SnapshotStore};

    let snapshots = InMemorySnapshotStore::new();
    let repo = AggregateRepository::<common::Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(1000)
        .expect("threshold");
    let id = uuid::Uuid::now_v7();
    let mut root = repo.load_or_create(id).expect("load");
    root.record(common::OrderCreated { customer_id: id });
    repo.save(&mut root).expect("save");
    let huge = common::Order {
        status: "x".repeat(100_000),
        ..common::Order::default()
    };
    let s = eventsource::Snapshot {
        aggregate_id: id,
        aggregate_type: "Order".into(),
        version: 1,
        schema_version: 2,
        state: serde_json::to_vec(&huge).expect("encode"),
        created_at: eventsource::time::now(),
    };
    snapshots.save_snapshot(&s).expect("save snapshot");
    let v = repo.verify(id).expect("verify");
    let m = v.mismatch().expect("a mismatch");
    assert!(
        m.via_snapshot.len() <= VERIFY_DEBUG_LIMIT + '…'.len_utf8(),
        "{}",
        m.via_snapshot.len()
    );
    assert!(m.via_snapshot.ends_with('…'));
    assert!(m.via_replay.contains("status: \"created\""), "{}", m.via_replay);
}

/// A snapshot store that cannot answer makes verification fail, where a load would
/// replay: an unreadable snapshot is not "no snapshot".
#[test]
fn a_failing_snapshot_store_is_an_error_not_nothing_to_compare() {
    use eventsource::{
        AggregateRepository, Error, InMemoryEventStore, InMemorySnapshotStore, MissReason, Result, Snapshot,
        SnapshotStore, SnapshotUse, SnapshotWrite,
    };
    use uuid::Uuid;

    struct Unreadable(InMemorySnapshotStore);

    impl SnapshotStore for Unreadable {
        type Codec = eventsource::JsonCodec;
        fn codec(&self) -> &Self::Codec {
            self.0.codec()
        }
        fn save_snapshot(&self, snapshot: &Snapshot) -> Result<SnapshotWrite> {
            self.0.save_snapshot(snapshot)
        }
        fn get_snapshot(&self, _: Uuid, _: &str) -> Result<Option<Snapshot>> {
            Err(Error::Store {
                backend: "unreadable",
                message: "injected read failure".into(),
                source: None,
            })
        }
        fn delete_snapshot(&self, id: Uuid, ty: &str) -> Result<bool> {
            self.0.delete_snapshot(id, ty)
        }
        fn delete_snapshots_by_type(&self, ty: &str, below: Option<u32>) -> Result<u64> {
            self.0.delete_snapshots_by_type(ty, below)
        }
    }

    let repo = AggregateRepository::<common::Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(Unreadable(InMemorySnapshotStore::new()))
        .snapshot_threshold(2)
        .expect("threshold");
    let id = Uuid::now_v7();
    let mut root = repo.load_or_create(id).expect("load");
    root.record(common::OrderCreated { customer_id: id });
    root.record(common::item(1));
    repo.save(&mut root).expect("save");

    let (_, outcome) = repo.load_with_outcome(id).expect("a load replays");
    assert_eq!(outcome.snapshot, SnapshotUse::Discarded(MissReason::StoreError));
    assert!(matches!(
        repo.verify(id),
        Err(Error::Store {
            backend: "unreadable",
            ..
        })
    ));
    let report = repo.verify_many(&[id], |_| {}).expect("verify_many");
    assert_eq!((report.failed.len(), report.no_snapshot), (1, 0));
}

/// A snapshot of an older schema is upcast and compared like any other; here the upcast
/// cannot know the last SKU (schema 1 did not keep it), and verify shows exactly that.
#[test]
fn an_upcast_snapshot_is_compared_too() {
    use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore, SnapshotUse};

    let events = InMemoryEventStore::new();
    let snapshots = InMemorySnapshotStore::new();
    let v1 = AggregateRepository::<common::OrderV1, _>::new(events.clone())
        .with_snapshot_store(snapshots.clone())
        .snapshot_threshold(3)
        .expect("threshold");
    let id = uuid::Uuid::now_v7();
    let mut root = v1.load_or_create(id).expect("load");
    root.record(common::OrderCreated { customer_id: id });
    root.record(common::item(1));
    root.record(common::item(2));
    v1.save(&mut root).expect("save"); // a schema-1 snapshot at 3

    let v2 = AggregateRepository::<common::Order, _>::new(events)
        .with_snapshot_store(snapshots)
        .snapshot_threshold(3)
        .expect("threshold");
    let v = v2.verify(id).expect("verify");
    assert_eq!(
        v.snapshot,
        SnapshotUse::Upcast {
            version: 3,
            from_schema: 1
        }
    );
    let m = v.mismatch().expect("the upcast lost the last SKU");
    assert!(m.via_snapshot.contains("last_sku: \"\"") && m.via_replay.contains("last_sku: \"SKU-2\""));
}
