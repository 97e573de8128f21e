use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, events(OrderCreated))]
struct Order {
    customer: String,
}

impl Apply<OrderCreated> for Order {
    fn apply(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }
}

#[eventsource::handlers]
impl Order {
    fn created(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }
}

fn main() {}
