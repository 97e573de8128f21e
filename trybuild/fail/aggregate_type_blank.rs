use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderPlaced;

// A type of only whitespace is as good as none.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "  ", events(OrderPlaced))]
struct Order;

impl Apply<OrderPlaced> for Order {
    fn apply(&mut self, _: &OrderPlaced) {}
}

fn main() {}
