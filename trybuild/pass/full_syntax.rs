//! Every key: schema 3 with a two-step upcast chain, a renamed event enum, renamed and
//! versioned events.
use eventsource::{Aggregate, Apply, Codec, DomainEvent, EventSet, JsonCodec, StateDecode};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "order.created", version = 2)]
pub struct OrderCreated {
    pub customer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OrderV1 {
    pub customer: String,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct OrderV2 {
    pub customer: String,
    pub items: u32,
}

impl From<OrderV1> for OrderV2 {
    fn from(v1: OrderV1) -> Self {
        OrderV2 {
            customer: v1.customer,
            items: 0,
        }
    }
}

impl From<OrderV2> for Order {
    fn from(v2: OrderV2) -> Self {
        Order {
            customer: Some(v2.customer),
            items: v2.items,
            skus: Vec::new(),
        }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Order",
    schema_version = 3,
    events(OrderCreated, ItemAdded),
    upcast(from = 1, state = OrderV1),
    upcast(from = 2, state = OrderV2),
    event_enum = OrderEvent,
)]
pub struct Order {
    customer: Option<String>,
    items: u32,
    skus: Vec<String>,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, e: &OrderCreated) {
        self.customer = Some(e.customer.clone());
    }
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.items += e.qty;
        self.skus.push(e.sku.clone());
    }
}

fn main() {
    assert_eq!(Order::TYPE, "Order");
    assert_eq!(Order::SCHEMA_VERSION, 3);
    assert_eq!(Order::UPCAST_FROM, &[1, 2]);
    assert_eq!(<OrderCreated as DomainEvent>::NAME, "order.created");
    assert_eq!(<OrderCreated as DomainEvent>::VERSION, 2);
    assert_eq!(OrderEvent::EVENT_TYPES, &["order.created", "ItemAdded"]);

    let event: OrderEvent = ItemAdded {
        sku: "A".into(),
        qty: 2,
    }
    .into();
    assert_eq!(event.event_version(), 1);
    let mut order = Order::default();
    Aggregate::apply_event(&mut order, &event);
    assert_eq!(order.items, 2);

    let bytes = JsonCodec
        .encode(&OrderV1 {
            customer: "ada".into(),
        })
        .unwrap();
    match Order::decode_state(&JsonCodec, 1, &bytes).unwrap() {
        StateDecode::Upcast { state, from: 1 } => {
            assert_eq!(state.customer.as_deref(), Some("ada"))
        }
        other => panic!("{other:?}"),
    }
}
