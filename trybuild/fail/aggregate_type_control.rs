use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderPlaced;

// A newline (any control character) in the aggregate type is a compile error.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order\nLine", events(OrderPlaced))]
struct Order;

impl Apply<OrderPlaced> for Order {
    fn apply(&mut self, _: &OrderPlaced) {}
}

fn main() {}
