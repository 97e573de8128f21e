use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

impl From<ItemAddedV1> for ItemAdded {
    fn from(v1: ItemAddedV1) -> Self {
        ItemAdded { sku: v1.sku, qty: 1 }
    }
}

// Version 4 is current, but the chain ends at version 1: versions 2 and 3 are missing.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 4, upcast(from = 1, payload = ItemAddedV1))]
struct ItemAdded {
    sku: String,
    qty: u32,
}

fn main() {}
