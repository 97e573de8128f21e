use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderCreated {
    customer: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("OrderFlagged"))]
struct OrderNoted;

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", retired("OrderFlagged"))]
struct Order {
    customer: String,
}

#[eventsource::handlers]
impl Order {
    fn created(&mut self, event: &OrderCreated) {
        self.customer = event.customer.clone();
    }

    fn noted(&mut self, _: &OrderNoted) {}
}

fn main() {}
