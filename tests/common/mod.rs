//! The test domain shared by the integration tests: the Order aggregate of
//! `docs/workload.md`, in three schema generations.
#![allow(dead_code)]

pub mod evolving;
pub mod flaky;
pub mod invariants;
pub mod logs;

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub struct OrderCreated {
    pub customer_id: Uuid,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub sku: String,
    pub qty: u32,
    pub price_cents: i64,
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, DomainEvent)]
#[event(name = "OrderShipped", version = 2)]
pub struct Shipped {
    pub carrier: String,
}

pub fn item(n: u64) -> ItemAdded {
    ItemAdded {
        sku: format!("SKU-{n}"),
        qty: (n % 5 + 1) as u32,
        price_cents: 100 + (n % 7) as i64 * 25,
        note: "x".repeat(8),
    }
}

/// Schema 1: the first shape of the state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(OrderCreated, ItemAdded, Shipped))]
pub struct OrderV1 {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
}

/// Schema 2: adds `last_sku`; knows how to upcast a schema-1 snapshot.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded, Shipped),
            upcast(from = 1, state = OrderV1))]
pub struct Order {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
    pub last_sku: String,
}

/// Schema 2 without an upcast hook: schema-1 snapshots are ignored and rebuilt.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded, Shipped))]
pub struct OrderNoUpcast {
    pub status: String,
    pub customer_id: Option<Uuid>,
    pub item_count: u64,
    pub total_cents: i64,
    pub last_sku: String,
}

impl From<OrderV1> for Order {
    fn from(v1: OrderV1) -> Self {
        // Schema 1 did not keep the last SKU: it is unknown until the next item.
        Order {
            status: v1.status,
            customer_id: v1.customer_id,
            item_count: v1.item_count,
            total_cents: v1.total_cents,
            last_sku: String::new(),
        }
    }
}

macro_rules! order_handlers {
    ($t:ty, $($last_sku:tt)*) => {
        impl Apply<OrderCreated> for $t {
            fn apply(&mut self, e: &OrderCreated) {
                self.status = "created".into();
                self.customer_id = Some(e.customer_id);
            }
        }
        impl Apply<ItemAdded> for $t {
            fn apply(&mut self, e: &ItemAdded) {
                self.item_count += u64::from(e.qty);
                self.total_cents += i64::from(e.qty) * e.price_cents;
                order_handlers!(@sku self, e, $($last_sku)*);
            }
        }
        impl Apply<Shipped> for $t {
            fn apply(&mut self, _: &Shipped) {
                self.status = "shipped".into();
            }
        }
    };
    (@sku $s:ident, $e:ident, sku) => { $s.last_sku = $e.sku.clone(); };
    (@sku $s:ident, $e:ident, ) => {};
}

order_handlers!(OrderV1,);
order_handlers!(Order, sku);
order_handlers!(OrderNoUpcast, sku);

/// The state a replay of `n` items after creation reaches, computed without any store.
pub fn expected_order(customer_id: Uuid, items: u64) -> Order {
    let mut o = Order {
        status: "created".into(),
        customer_id: Some(customer_id),
        ..Order::default()
    };
    for n in 1..=items {
        let e = item(n);
        o.item_count += u64::from(e.qty);
        o.total_cents += i64::from(e.qty) * e.price_cents;
        o.last_sku = e.sku;
    }
    o
}
