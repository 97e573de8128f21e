use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderPlaced;

// Leading whitespace would be stored, invisible, beside every event and snapshot.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = " Order", events(OrderPlaced))]
struct Order;

impl Apply<OrderPlaced> for Order {
    fn apply(&mut self, _: &OrderPlaced) {}
}

fn main() {}
