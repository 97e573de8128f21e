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
struct LegacyOrder {
    n: u32,
}

impl From<OrderV1> for Order {
    fn from(v1: OrderV1) -> Self {
        Order { n: v1.n }
    }
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Order",
    schema_version = 2,
    events(OrderCreated),
    upcast(from = 1, state = OrderV1),
    upcast(from = 1, state = LegacyOrder),
)]
struct Order {
    n: u32,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

fn main() {}
