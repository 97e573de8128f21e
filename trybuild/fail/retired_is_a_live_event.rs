use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct CartOpened;

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(name = "ItemAdded", aliases("ItemPut"))]
struct ItemAdded {
    sku: String,
}

// "CartOpened" is a live event's name, "ItemPut" a live event's alias; "CartFlagged" is fine.
#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Cart", events(CartOpened, ItemAdded), retired("CartFlagged", "CartOpened", "ItemPut"))]
struct Cart {
    n: u32,
}

impl Apply<CartOpened> for Cart {
    fn apply(&mut self, _: &CartOpened) {}
}

impl Apply<ItemAdded> for Cart {
    fn apply(&mut self, _: &ItemAdded) {}
}

fn main() {}
