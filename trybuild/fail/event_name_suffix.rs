use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

// A string literal with a suffix has no meaning as a name.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "OrderPlaced"_v2)]
struct OrderPlaced;

fn main() {}
