use eventsource::{Aggregate, Apply};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderCreated))]
struct Order {
    n: u32,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, _: &OrderCreated) {}
}

fn main() {}
