use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

// The event_type column is VARCHAR(255): 256 bytes (128 two-byte characters) do not fit.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "éééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé")]
struct OrderPlaced;

fn main() {}
