use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
struct ItemPut {
    sku: String,
}

// Its alias is the name `ItemPut` is stored under.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("ItemPut"))]
struct ItemAdded {
    sku: String,
}

// Shares the alias "Removed" with `ItemDropped`.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("Removed"))]
struct ItemRemoved {
    sku: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(aliases("Dropped", "Removed"))]
struct ItemDropped {
    sku: String,
}

#[derive(Debug, Default, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Cart", events(ItemPut, ItemAdded, ItemRemoved, ItemDropped))]
struct Cart {
    n: u32,
}

impl Apply<ItemPut> for Cart {
    fn apply(&mut self, _: &ItemPut) {}
}

impl Apply<ItemAdded> for Cart {
    fn apply(&mut self, _: &ItemAdded) {}
}

impl Apply<ItemRemoved> for Cart {
    fn apply(&mut self, _: &ItemRemoved) {}
}

impl Apply<ItemDropped> for Cart {
    fn apply(&mut self, _: &ItemDropped) {}
}

fn main() {}
