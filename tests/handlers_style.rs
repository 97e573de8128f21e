//! The handler style end to end: an aggregate whose `#[derive(Aggregate)]` has only `type`,
//! `schema_version` and `retired`, with its events declared by `#[eventsource::handlers]`,
//! saved and loaded on the in-memory and SQLite stores with snapshots. Old rows (an event
//! of version 1 under a former name, a retired event) replay through the generated event
//! set, and a load through the snapshot gives the state a full replay gives.

use std::sync::Arc;

use eventsource::{
    Aggregate, AggregateRepository, DomainEvent, EventSet, EventStore, InMemoryEventStore, InMemorySnapshotStore,
    Metadata, NewEvent, SnapshotStore, SnapshotUse, SqliteEventStore,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct OrderCreated {
    pub customer: String,
}

/// Version 1 of `ItemAdded`: no quantity.
#[derive(Debug, Serialize, Deserialize)]
pub struct ItemAddedV1 {
    pub sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ItemAddedV2 {
    pub sku: String,
    pub qty: u32,
}

impl From<ItemAddedV1> for ItemAddedV2 {
    fn from(v1: ItemAddedV1) -> Self {
        ItemAddedV2 { sku: v1.sku, qty: 1 }
    }
}

impl From<ItemAddedV2> for ItemAdded {
    fn from(v2: ItemAddedV2) -> Self {
        ItemAdded {
            sku: v2.sku,
            qty: v2.qty,
            price_cents: 0,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    version = 3,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 2, payload = ItemAddedV2),
    aliases("ItemPut")
)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
}

/// Schema 1 of the state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct OrderV1 {
    pub customer: String,
}

impl From<OrderV1> for Order {
    fn from(v1: OrderV1) -> Self {
        Order {
            customer: v1.customer,
            ..Order::default()
        }
    }
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, upcast(from = 1, state = OrderV1), retired("OrderFlagged"))]
pub struct Order {
    pub customer: String,
    pub items: u32,
    pub skus: Vec<String>,
}

#[eventsource::handlers(vis = pub)]
impl Order {
    fn created(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }

    fn item_added(&mut self, event: &ItemAdded) {
        self.items += event.qty;
        self.skus.push(event.sku.clone());
    }
}

/// A stored row as older code wrote it.
fn old_row(event_type: &str, event_version: u32, payload: &str) -> NewEvent {
    NewEvent {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        event_version,
        occurred_at: eventsource::time::now(),
        payload: payload.as_bytes().to_vec(),
        metadata: Metadata::default(),
    }
}

/// Old rows, then two saves in the handler style (a snapshot at version 4, threshold 2),
/// then loads: through the snapshot, by full replay, and `verify`.
fn save_and_load<ES: EventStore, SS: SnapshotStore>(events: ES, snapshots: SS) {
    let events = Arc::new(events);
    let repo = AggregateRepository::<Order, _>::new(Arc::clone(&events))
        .with_snapshot_store(snapshots)
        .snapshot_threshold(2)
        .expect("threshold");
    let replay_only = AggregateRepository::<Order, _>::new(Arc::clone(&events));
    let id = Uuid::now_v7();
    events
        .append(
            id,
            Order::TYPE,
            0,
            &[
                old_row("ItemPut", 1, r#"{"sku":"OLD-1"}"#),
                old_row("OrderFlagged", 1, r#"{"reason":"fraud"}"#),
            ],
        )
        .expect("append old rows");

    let mut order = repo.load_or_create(id).expect("load old rows");
    assert_eq!(order.version(), 2);
    assert_eq!(order.state().items, 1, "the version-1 row upcast through both steps");
    order.record(OrderCreated { customer: "ada".into() });
    order.record(ItemAdded {
        sku: "A-1".into(),
        qty: 2,
        price_cents: 250,
    });
    repo.save(&mut order).expect("first save");
    order.record(ItemAdded {
        sku: "B-2".into(),
        qty: 3,
        price_cents: 100,
    });
    repo.save(&mut order).expect("second save");
    assert_eq!(order.version(), 5);

    let (via_snapshot, outcome) = repo.load_with_outcome(id).expect("load via snapshot");
    assert_eq!(outcome.snapshot, SnapshotUse::Used { version: 4 });
    assert_eq!(outcome.events_replayed, 1);
    let (via_replay, replay) = replay_only.load_with_outcome(id).expect("full replay");
    assert_eq!(replay.events_skipped, 1, "the retired row is skipped and counted");
    assert_eq!(via_snapshot.version(), via_replay.version());
    assert_eq!(via_snapshot.state(), via_replay.state());
    assert_eq!(
        via_replay.state(),
        &Order {
            customer: "ada".into(),
            items: 6,
            skus: vec!["OLD-1".into(), "A-1".into(), "B-2".into()],
        }
    );
    assert!(repo.verify(id).expect("verify").agrees());
}

#[test]
fn handler_style_aggregate_on_the_in_memory_stores() {
    save_and_load(InMemoryEventStore::new(), InMemorySnapshotStore::new());
}

#[test]
fn handler_style_aggregate_on_sqlite() {
    let events = SqliteEventStore::open_in_memory().expect("open");
    let snapshots = events.snapshot_store();
    save_and_load(events, snapshots);
}

#[test]
fn the_generated_event_set_matches_the_handlers() {
    assert_eq!(OrderEvent::EVENT_TYPES, ["OrderCreated", "ItemAdded"]);
    assert_eq!(OrderEvent::RETIRED_EVENT_TYPES, ["OrderFlagged"]);
    let event = OrderEvent::from(OrderCreated { customer: "bo".into() });
    assert_eq!(event.event_type(), "OrderCreated");
    let mut order = Order::default();
    order.apply_event(&event);
    assert_eq!(order.customer, "bo");
}
