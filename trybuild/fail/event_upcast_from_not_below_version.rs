use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

// `from` equal to the current version.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 2, payload = ItemAddedV1))]
struct ItemAdded {
    sku: String,
    qty: u32,
}

// `from` above the current version.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1, payload = ItemAddedV1), upcast(from = 3, payload = ItemAddedV1))]
struct ItemRemoved {
    sku: String,
}

// An upcast without raising `version` from its default.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(upcast(from = 1, payload = ItemAddedV1))]
struct ItemReserved {
    sku: String,
}

// No event has version 0.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 0, payload = ItemAddedV1))]
struct ItemReturned {
    sku: String,
}

fn main() {}
