use eventsource::{Aggregate, AggregateRoot, DomainEvent};
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
#[aggregate(type = "Order", schema_version = 2)]
struct Order {
    customer: String,
}

#[eventsource::handlers]
impl Order {
    fn created(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }
}

fn main() {
    let mut order = AggregateRoot::<Order>::new(uuid::Uuid::now_v7());
    order.record(OrderCreated { customer: "ada".into() });
    order.record(ItemAdded { sku: "A-1".into() });
}
