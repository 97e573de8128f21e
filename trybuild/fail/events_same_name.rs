use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

// Stored under the same event type as `OrderCreated`.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "OrderCreated", version = 2)]
struct OrderCreatedV2 {
    customer_id: u64,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderCreated, OrderCreatedV2))]
struct Order {
    n: u32,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

impl Apply<OrderCreatedV2> for Order {
    fn apply(&mut self, _: &OrderCreatedV2) {}
}

fn main() {}
