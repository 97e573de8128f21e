use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderV1 {
    n: u32,
}

#[derive(Debug, Serialize, Deserialize)]
struct OrderV2 {
    n: u64,
}

// `From<OrderV1> for OrderV2` is missing.

impl From<OrderV2> for Order {
    fn from(v2: OrderV2) -> Self {
        Order { n: v2.n }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Order",
    schema_version = 3,
    events(OrderCreated),
    upcast(from = 1, state = OrderV1),
    upcast(from = 2, state = OrderV2),
)]
struct Order {
    n: u64,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

fn main() {}
