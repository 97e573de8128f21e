use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

// PostgreSQL cannot store NUL in text: a control character is a compile error.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "Order\0Placed")]
struct OrderPlaced;

fn main() {}
