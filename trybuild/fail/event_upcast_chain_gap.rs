use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV3 {
    sku: String,
    qty: u32,
}

impl From<ItemAddedV1> for ItemAddedV3 {
    fn from(v1: ItemAddedV1) -> Self {
        ItemAddedV3 { sku: v1.sku, qty: 1 }
    }
}

impl From<ItemAddedV3> for ItemAdded {
    fn from(v3: ItemAddedV3) -> Self {
        ItemAdded { sku: v3.sku, qty: v3.qty, price_cents: 0 }
    }
}

// Version 2 is missing between 1 and 3.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    version = 4,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 3, payload = ItemAddedV3),
)]
struct ItemAdded {
    sku: String,
    qty: u32,
    price_cents: i64,
}

fn main() {}
