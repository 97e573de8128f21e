use eventsource::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderPlaced;

// `Self` names no event: it would become an enum variant named `Self`.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", events(OrderPlaced, Self))]
struct Order;

fn main() {}
