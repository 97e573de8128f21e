//! The handler style: `#[derive(Aggregate)]` with only `type` and `schema_version` (plus a
//! state upcast chain and a retired name), the events declared by
//! `#[eventsource::handlers] impl`, events with upcast chains and aliases, a renamed enum
//! in a module, and an event under a path.
use eventsource::{Aggregate, AggregateHandlers, AggregateRoot, DecodedEvent, DomainEvent, EventSet, JsonCodec};
use serde::{Deserialize, Serialize};

mod events {
    use eventsource::DomainEvent;
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct OrderShipped;
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV2 {
    sku: String,
    qty: u32,
}

impl From<ItemAddedV1> for ItemAddedV2 {
    fn from(v1: ItemAddedV1) -> Self {
        ItemAddedV2 { sku: v1.sku, qty: 1 }
    }
}

impl From<ItemAddedV2> for ItemAdded {
    fn from(v2: ItemAddedV2) -> Self {
        ItemAdded { sku: v2.sku, qty: v2.qty, price_cents: 0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    version = 3,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 2, payload = ItemAddedV2),
    aliases("ItemPut")
)]
struct ItemAdded {
    sku: String,
    qty: u32,
    price_cents: i64,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct OrderV1 {
    customer: String,
}

impl From<OrderV1> for Order {
    fn from(v1: OrderV1) -> Self {
        Order { customer: v1.customer, items: 0, shipped: false }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, upcast(from = 1, state = OrderV1), retired("OrderFlagged"))]
struct Order {
    customer: String,
    items: u32,
    shipped: bool,
}

#[eventsource::handlers]
impl Order {
    fn created(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }

    fn item_added(&mut self, event: &ItemAdded) {
        self.items += event.qty;
    }

    fn shipped(&mut self, _: &events::OrderShipped) -> () {
        self.shipped = true;
    }
}

mod ledger {
    use eventsource::{Aggregate, DomainEvent};
    use serde::{Deserialize, Serialize};

    #[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
    pub struct Posted {
        pub cents: i64,
    }

    #[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
    #[aggregate(type = "Ledger")]
    pub struct Ledger {
        pub balance: i64,
    }

    #[eventsource::handlers(event_enum = Entries, vis = pub)]
    impl Ledger {
        fn posted(&mut self, event: &Posted) {
            self.balance += event.cents;
        }
    }
}

fn main() {
    assert_eq!(Order::TYPE, "Order");
    assert_eq!(Order::SCHEMA_VERSION, 2);
    assert_eq!(Order::UPCAST_FROM, [1]);
    assert_eq!(OrderEvent::EVENT_TYPES, ["OrderCreated", "ItemAdded", "OrderShipped"]);
    assert_eq!(OrderEvent::RETIRED_EVENT_TYPES, ["OrderFlagged"]);

    let mut root = AggregateRoot::<Order>::new(uuid::Uuid::now_v7());
    root.record(OrderCreated { customer: "ada".into() });
    root.record(ItemAdded { sku: "A-1".into(), qty: 2, price_cents: 5 });
    root.record(OrderEvent::OrderShipped(events::OrderShipped));
    assert_eq!((root.state().customer.as_str(), root.state().items, root.state().shipped), ("ada", 2, true));

    // A version-1 payload under its former name, through both steps of the chain.
    let old = OrderEvent::decode_stored(&JsonCodec, "ItemPut", 1, br#"{"sku":"B-2"}"#).unwrap();
    let mut order = Order::default();
    match old {
        DecodedEvent::Event(event) => AggregateHandlers::dispatch(&mut order, &event),
        other => panic!("ItemPut is a live event, not {other:?}"),
    }
    assert_eq!(order.items, 1);
    assert!(matches!(
        OrderEvent::decode_stored(&JsonCodec, "OrderFlagged", 1, b"{}"),
        Ok(DecodedEvent::Retired)
    ));

    let mut ledger = ledger::Ledger::default();
    ledger.apply_event(&ledger::Entries::from(ledger::Posted { cents: 7 }));
    assert_eq!(ledger.balance, 7);
}
