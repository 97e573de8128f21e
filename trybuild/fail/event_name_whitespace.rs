use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

// Trailing whitespace would be stored, invisible, as part of the event type.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "OrderPlaced ")]
struct OrderPlaced;

fn main() {}
