use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct ItemAdded {
    sku: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderCreated, ItemAdded, OrderCreated))]
struct Order {
    n: u32,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, _: &ItemAdded) {}
}

fn main() {}
