//! A domain whose events evolved after they were stored, for the upcasting checks: a `Cart`
//! whose `ItemAdded` is at its third shape (and was once stored as `ItemPut`), whose
//! `DiscountApplied` converts its older shape with a `TryFrom` that can refuse, and which
//! retired its `CartFlagged` event.
//!
//! Old payloads are written straight to a store with `EventStore::append`, as old code
//! wrote them; the loads go through the chains below.

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

/// `ItemAdded` version 1: a SKU, one unit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAddedV1 {
    pub sku: String,
}

/// `ItemAdded` version 2: a quantity, no price.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAddedV2 {
    pub sku: String,
    pub qty: u32,
}

/// `ItemAdded` version 3, the current shape; stored as `ItemPut` before it was renamed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(
    name = "ItemAdded",
    version = 3,
    upcast(from = 1, payload = ItemAddedV1),
    upcast(from = 2, payload = ItemAddedV2),
    aliases("ItemPut")
)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
}

impl From<ItemAddedV1> for ItemAddedV2 {
    fn from(v1: ItemAddedV1) -> Self {
        // Version 1 recorded one unit per event.
        ItemAddedV2 { sku: v1.sku, qty: 1 }
    }
}

impl From<ItemAddedV2> for ItemAdded {
    fn from(v2: ItemAddedV2) -> Self {
        // Prices were not recorded before version 3.
        ItemAdded {
            sku: v2.sku,
            qty: v2.qty,
            price_cents: 0,
        }
    }
}

/// `DiscountApplied` version 2: the percentage as text (`"15%"`). Version 1 was never
/// released: no upcast reads it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DiscountAppliedV2 {
    pub percent: String,
}

/// `DiscountApplied` version 3: the percentage as a number.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(version = 3, upcast(from = 2, payload = DiscountAppliedV2))]
pub struct DiscountApplied {
    pub percent: u8,
}

impl TryFrom<DiscountAppliedV2> for DiscountApplied {
    type Error = String;

    fn try_from(v2: DiscountAppliedV2) -> Result<Self, String> {
        let digits = v2.percent.trim().trim_end_matches('%');
        match digits.parse::<u8>() {
            Ok(percent) if percent <= 100 => Ok(DiscountApplied { percent }),
            _ => Err(format!("{:?} is not a percentage", v2.percent)),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub struct CartOpened {
    pub customer: String,
}

/// The payload `CartFlagged`, a retired event, was stored with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CartFlagged {
    pub reason: String,
}

#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(
    type = "Cart",
    events(CartOpened, ItemAdded, DiscountApplied),
    retired("CartFlagged")
)]
pub struct Cart {
    pub customer: String,
    /// (sku, qty, price_cents)
    pub lines: Vec<(String, u32, i64)>,
    pub discount: u8,
}

impl Apply<CartOpened> for Cart {
    fn apply(&mut self, e: &CartOpened) {
        self.customer = e.customer.clone();
    }
}

impl Apply<ItemAdded> for Cart {
    fn apply(&mut self, e: &ItemAdded) {
        self.lines.push((e.sku.clone(), e.qty, e.price_cents));
    }
}

impl Apply<DiscountApplied> for Cart {
    fn apply(&mut self, e: &DiscountApplied) {
        self.discount = e.percent;
    }
}
