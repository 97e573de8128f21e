use eventsource::DomainEvent;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV1 {
    sku: String,
}

#[derive(Debug, Serialize, Deserialize)]
struct ItemAddedV2 {
    sku: String,
    qty: u32,
}

// `From<ItemAddedV1> for ItemAddedV2` is missing.

impl From<ItemAddedV2> for ItemAdded {
    fn from(v2: ItemAddedV2) -> Self {
        ItemAdded { sku: v2.sku, qty: v2.qty, price_cents: 0 }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    version = 3,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 2, payload = ItemAddedV2),
)]
struct ItemAdded {
    sku: String,
    qty: u32,
    price_cents: i64,
}

#[derive(Debug, Serialize, Deserialize)]
struct NoteV1 {
    text: String,
}

// A `TryFrom` whose error is not an error type.
impl TryFrom<NoteV1> for Note {
    type Error = ();

    fn try_from(v1: NoteV1) -> Result<Self, ()> {
        Ok(Note { text: v1.text, author: None })
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(version = 2, upcast(from = 1, payload = NoteV1))]
struct Note {
    text: String,
    author: Option<String>,
}

fn main() {}
