//! Property: loading from a snapshot taken at any point equals a full replay, in version
//! and state, whatever the strides of the saves and the threshold.

mod common;

use std::sync::Arc;

use common::{item, Order, OrderCreated, Shipped};
use eventsource::{AggregateRepository, InMemoryEventStore, InMemorySnapshotStore, SnapshotMode, SnapshotUse};
use proptest::prelude::*;
use uuid::Uuid;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn load_from_any_snapshot_equals_full_replay(
        strides in proptest::collection::vec(1u64..12, 1..40),
        snapshot_after_save in 0usize..40,
        threshold in 1u64..60,
        ship in any::<bool>(),
    ) {
        let events = Arc::new(InMemoryEventStore::new());
        let snapshots = Arc::new(InMemorySnapshotStore::new());
        let manual = AggregateRepository::<Order, _>::new(Arc::clone(&events))
            .with_snapshot_store(Arc::clone(&snapshots))
            .snapshot_threshold(threshold)
            .expect("threshold")
            .snapshot_mode(SnapshotMode::Manual);
        let id = Uuid::now_v7();
        let mut root = manual.load_or_create(id).expect("load");
        root.record(OrderCreated { customer_id: id });
        let mut n = 0;
        for (i, stride) in strides.iter().enumerate() {
            for _ in 0..*stride {
                n += 1;
                root.record(item(n));
            }
            if ship && i == strides.len() / 2 {
                root.record(Shipped { carrier: "ups".into() });
            }
            manual.save(&mut root).expect("save");
            if i == snapshot_after_save.min(strides.len() - 1) {
                manual.create_snapshot(&root).expect("snapshot");
            }
        }
        let (with, outcome) = manual.load_with_outcome(id).expect("load with snapshot");
        prop_assert!(matches!(outcome.snapshot, SnapshotUse::Used { .. }), "{:?}", outcome);
        let replay = AggregateRepository::<Order, _>::new(Arc::clone(&events)).load(id).expect("replay");
        prop_assert_eq!(with.version(), replay.version());
        prop_assert_eq!(with.state(), replay.state());
        prop_assert_eq!(with.state(), root.state(), "the recorded state equals the replayed one");

        // The same history saved through a sync-mode repository: every automatic snapshot
        // it writes is consistent with replay too.
        let sync_snapshots = Arc::new(InMemorySnapshotStore::new());
        let sync = AggregateRepository::<Order, _>::new(Arc::clone(&events))
            .with_snapshot_store(Arc::clone(&sync_snapshots))
            .snapshot_threshold(threshold)
            .expect("threshold");
        let id2 = Uuid::now_v7();
        let mut root = sync.load_or_create(id2).expect("load");
        root.record(OrderCreated { customer_id: id2 });
        let mut n = 0;
        for stride in &strides {
            for _ in 0..*stride {
                n += 1;
                root.record(item(n));
            }
            sync.save(&mut root).expect("save");
            let (loaded, _) = sync.load_with_outcome(id2).expect("load");
            prop_assert_eq!(loaded.state(), root.state());
            prop_assert_eq!(loaded.version(), root.version());
        }
    }
}
