use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Aggregate)]
#[aggregate(type = "Order", events(OrderCreated))]
union Order {
    n: u32,
    f: f32,
}

fn main() {}
