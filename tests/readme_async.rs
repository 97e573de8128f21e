//! The async example of the README, as a real test.

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
}
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(ItemAdded))]
pub struct Order {
    pub items: u64,
}
impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.items += u64::from(e.qty)
    }
}
use eventsource::tokio::AggregateRepository;
use eventsource::{InMemoryEventStore, InMemorySnapshotStore, SnapshotMode, SnapshotUse};

#[tokio::test]
async fn snapshots_in_the_background() -> eventsource::Result<()> {
    let repo = AggregateRepository::<Order, _>::new(InMemoryEventStore::new())
        .with_snapshot_store(InMemorySnapshotStore::new())
        .snapshot_threshold(2)?
        .snapshot_mode(SnapshotMode::Background);
    let id = uuid::Uuid::now_v7();
    let mut order = repo.load_or_create(id).await?;
    order.record(ItemAdded {
        sku: "A-1".into(),
        qty: 1,
    });
    order.record(ItemAdded {
        sku: "B-2".into(),
        qty: 2,
    });
    repo.save(&mut order).await?; // returns before the snapshot is written
    repo.flush().await?; // wait for the background write
    let (order, outcome) = repo.load_with_outcome(id).await?;
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 2 });
    assert_eq!(order.state().items, 3);
    Ok(())
}
