use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

// Without #[event(name = "...")], the struct's name is stored: this one is 256 bytes long.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct OrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrderPlacedOrd;

fn main() {}
