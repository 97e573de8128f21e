use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderCreated))]
struct Order<T> {
    n: T,
}

fn main() {}
