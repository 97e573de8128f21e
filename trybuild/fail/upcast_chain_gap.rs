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
struct OrderV3 {
    n: u64,
}

impl From<OrderV1> for OrderV3 {
    fn from(v1: OrderV1) -> Self {
        OrderV3 { n: v1.n.into() }
    }
}

impl From<OrderV3> for Order {
    fn from(v3: OrderV3) -> Self {
        Order { n: v3.n }
    }
}

// Schema 2 is missing between 1 and 3.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Order",
    schema_version = 4,
    events(OrderCreated),
    upcast(from = 1, state = OrderV1),
    upcast(from = 3, state = OrderV3),
)]
struct Order {
    n: u64,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

fn main() {}
