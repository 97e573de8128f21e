use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct LegacyItemAdded {
    code: String,
}

impl From<ItemAddedV1> for ItemAdded {
    fn from(v1: ItemAddedV1) -> Self {
        ItemAdded { sku: v1.sku, qty: 1 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    version = 2,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 1, payload = LegacyItemAdded),
)]
struct ItemAdded {
    sku: String,
    qty: u32,
}

fn main() {}
