use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
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

    fn by_value(&mut self, event: OrderCreated) {
        self.customer = event.customer;
    }

    fn read_only(&self, _: &OrderCreated) {}

    fn fallible(&mut self, _: &OrderCreated) -> Result<(), String> {
        Ok(())
    }

    fn two(&mut self, _: &OrderCreated, _: &OrderCreated) {}

    fn helper(&self) -> usize {
        self.customer.len()
    }

    const LIMIT: u32 = 3;
}

fn main() {}
