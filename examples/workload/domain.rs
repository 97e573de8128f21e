//! The Order workload's domain, as `docs/workload.md` defines it, shared by
//! the workload program (`examples/workload.rs`) and the criterion benches (`benches/`).
//!
//! - `Order` (schema 1): `status`, `customer_id`, `item_count`, `total_cents`, `last_sku`;
//!   small and bounded whatever the stream's length.
//! - `OrderCreated { customer_id }` is version 1 of every stream; `ItemAdded { sku, qty,
//!   price_cents, note }` has a `note` of `"x"` repeated so that its JSON payload is
//!   [`ITEM_JSON_BYTES`] bytes.
//! - `OrderV2`: the same state under the same type name with `schema_version = 2` and no
//!   upcast (W1 c: a schema-1 snapshot is ignored and the history replays).
//! - `OrderUpcast`: schema 2 with an upcast hook from schema 1 (the benches' "snapshot
//!   decode and upcast").
//! - `Blob`: the W2 state `{ "blob": "x" * S }`.
//! - `OrderEvolved` (W1u, issue 10): the same order under the same type name after its
//!   `ItemAdded` evolved twice: version 2 renamed `price_cents` to `unit_price_cents`,
//!   version 3 (current, [`ItemAddedV3`]) renamed `qty` to `quantity`. The events `Order`
//!   writes are version 1 of that chain, so a W1 stream replays through `OrderEvolved` as a
//!   stream of version-1 events upcast in two steps; a stream `OrderEvolved` writes itself
//!   holds current-version events with as many fields and the same JSON size
//!   ([`ITEM_JSON_BYTES`]), so that the two replays differ only by the upcasts.

#![allow(dead_code)] // each binary that includes this module uses a part of it

use std::sync::OnceLock;

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The aggregate type of the workload.
pub const ORDER: &str = "Order";

/// The size of an `ItemAdded` payload in JSON (WORKLOAD.md: "about 200 bytes").
pub const ITEM_JSON_BYTES: usize = 200;

/// Version 1 of every stream.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct OrderCreated {
    /// The customer.
    pub customer_id: Uuid,
}

/// An item added to the order.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    /// The item's SKU (`SKU-` and six digits).
    pub sku: String,
    /// Quantity, 1..=5.
    pub qty: u32,
    /// Unit price, 1000..=1750 cents.
    pub price_cents: i64,
    /// `"x"` repeated, padding the JSON payload to [`ITEM_JSON_BYTES`].
    pub note: String,
}

/// Applies the workload's events; one body for every schema of the state.
macro_rules! order_state {
    ($(#[$attr:meta])* $name:ident) => {
        $(#[$attr])*
        #[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
        pub struct $name {
            /// `"open"` once created.
            pub status: String,
            /// The customer.
            pub customer_id: Uuid,
            /// Items added (sum of quantities).
            pub item_count: u64,
            /// Sum of quantity times unit price.
            pub total_cents: i64,
            /// The SKU of the last item added.
            pub last_sku: String,
        }

        impl Apply<OrderCreated> for $name {
            fn apply(&mut self, e: &OrderCreated) {
                self.status.clear();
                self.status.push_str("open");
                self.customer_id = e.customer_id;
            }
        }

        impl Apply<ItemAdded> for $name {
            fn apply(&mut self, e: &ItemAdded) {
                self.item_count += u64::from(e.qty);
                self.total_cents += i64::from(e.qty) * e.price_cents;
                self.last_sku.clone_from(&e.sku);
            }
        }
    };
}

order_state!(
    /// The Order aggregate, schema 1.
    #[derive(Aggregate)]
    #[aggregate(type = "Order", schema_version = 1, events(OrderCreated, ItemAdded))]
    Order
);

order_state!(
    /// The same state under the same type name, schema 2, with no upcast: a schema-1
    /// snapshot is ignored and the whole history replays (W1 c).
    #[derive(Aggregate)]
    #[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded))]
    OrderV2
);

order_state!(
    /// Schema 2 with an upcast hook from schema 1 (`From<Order>`).
    #[derive(Aggregate)]
    #[aggregate(type = "Order", schema_version = 2, events(OrderCreated, ItemAdded),
                upcast(from = 1, state = Order))]
    OrderUpcast
);

impl From<Order> for OrderUpcast {
    fn from(o: Order) -> Self {
        OrderUpcast {
            status: o.status,
            customer_id: o.customer_id,
            item_count: o.item_count,
            total_cents: o.total_cents,
            last_sku: o.last_sku,
        }
    }
}

impl From<OrderV2> for Order {
    fn from(o: OrderV2) -> Self {
        Order {
            status: o.status,
            customer_id: o.customer_id,
            item_count: o.item_count,
            total_cents: o.total_cents,
            last_sku: o.last_sku,
        }
    }
}

/// `ItemAdded` version 2 (W1u): `price_cents` renamed `unit_price_cents`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ItemAddedV2 {
    /// The item's SKU.
    pub sku: String,
    /// Quantity.
    pub qty: u32,
    /// Unit price in cents (`price_cents` in version 1).
    pub unit_price_cents: i64,
    /// Padding.
    pub note: String,
}

/// `ItemAdded` version 3, the current shape of W1u: `qty` renamed `quantity`. Stored under
/// the same name as version 1 (`ItemAdded`, what [`Order`] writes), it reads version 1 and
/// 2 payloads through two upcast steps.
#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
#[event(
    name = "ItemAdded",
    version = 3,
    upcast(from = 1, payload = ItemAdded),
    upcast(from = 2, payload = ItemAddedV2)
)]
pub struct ItemAddedV3 {
    /// The item's SKU.
    pub sku: String,
    /// Quantity (`qty` before version 3).
    pub quantity: u32,
    /// Unit price in cents.
    pub unit_price_cents: i64,
    /// `"x"` repeated, padding the JSON payload to [`ITEM_JSON_BYTES`].
    pub note: String,
}

impl From<ItemAdded> for ItemAddedV2 {
    fn from(v1: ItemAdded) -> Self {
        ItemAddedV2 {
            sku: v1.sku,
            qty: v1.qty,
            unit_price_cents: v1.price_cents,
            note: v1.note,
        }
    }
}

impl From<ItemAddedV2> for ItemAddedV3 {
    fn from(v2: ItemAddedV2) -> Self {
        ItemAddedV3 {
            sku: v2.sku,
            quantity: v2.qty,
            unit_price_cents: v2.unit_price_cents,
            note: v2.note,
        }
    }
}

/// The Order state after `ItemAdded` evolved to version 3 (W1u); the same fields as
/// [`Order`], so a replay through either can be compared.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(OrderCreated, ItemAddedV3))]
pub struct OrderEvolved {
    /// `"open"` once created.
    pub status: String,
    /// The customer.
    pub customer_id: Uuid,
    /// Items added (sum of quantities).
    pub item_count: u64,
    /// Sum of quantity times unit price.
    pub total_cents: i64,
    /// The SKU of the last item added.
    pub last_sku: String,
}

impl Apply<OrderCreated> for OrderEvolved {
    fn apply(&mut self, e: &OrderCreated) {
        self.status.clear();
        self.status.push_str("open");
        self.customer_id = e.customer_id;
    }
}

impl Apply<ItemAddedV3> for OrderEvolved {
    fn apply(&mut self, e: &ItemAddedV3) {
        self.item_count += u64::from(e.quantity);
        self.total_cents += i64::from(e.quantity) * e.unit_price_cents;
        self.last_sku.clone_from(&e.sku);
    }
}

impl From<OrderEvolved> for Order {
    fn from(o: OrderEvolved) -> Self {
        Order {
            status: o.status,
            customer_id: o.customer_id,
            item_count: o.item_count,
            total_cents: o.total_cents,
            last_sku: o.last_sku,
        }
    }
}

/// W2's blob state.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Blob {
    /// `"x"` repeated S times.
    pub blob: String,
}

impl Blob {
    /// A blob of `size` bytes.
    pub fn of_size(size: usize) -> Self {
        Blob { blob: "x".repeat(size) }
    }
}

/// The `note` that pads an `ItemAdded` JSON payload to [`ITEM_JSON_BYTES`] bytes (every
/// item has the same JSON length: a six-digit SKU, a one-digit quantity, a four-digit price).
fn note() -> &'static str {
    static NOTE: OnceLock<String> = OnceLock::new();
    NOTE.get_or_init(|| {
        let bare = ItemAdded {
            sku: "SKU-000000".into(),
            qty: 1,
            price_cents: 1000,
            note: String::new(),
        };
        let len = serde_json::to_vec(&bare).map_or(0, |v| v.len());
        "x".repeat(ITEM_JSON_BYTES.saturating_sub(len))
    })
}

/// The `i`-th item of a stream (deterministic).
pub fn item(i: u64) -> ItemAdded {
    ItemAdded {
        sku: format!("SKU-{:06}", i % 1_000_000),
        qty: (i % 5 + 1) as u32,
        price_cents: 1000 + (i % 7) as i64 * 125,
        note: note().to_owned(),
    }
}

/// The `note` that pads an [`ItemAddedV3`] JSON payload to [`ITEM_JSON_BYTES`] bytes.
fn note_v3() -> &'static str {
    static NOTE: OnceLock<String> = OnceLock::new();
    NOTE.get_or_init(|| {
        let bare = ItemAddedV3 {
            sku: "SKU-000000".into(),
            quantity: 1,
            unit_price_cents: 1000,
            note: String::new(),
        };
        let len = serde_json::to_vec(&bare).map_or(0, |v| v.len());
        "x".repeat(ITEM_JSON_BYTES.saturating_sub(len))
    })
}

/// The `i`-th item of a W1u current-version stream: [`item`]`(i)` at version 3, with the
/// same JSON length.
pub fn item_v3(i: u64) -> ItemAddedV3 {
    let v1 = item(i);
    ItemAddedV3 {
        sku: v1.sku,
        quantity: v1.qty,
        unit_price_cents: v1.price_cents,
        note: note_v3().to_owned(),
    }
}

/// The event at stream version `version` (1-based) of a W1u current-version stream.
pub fn evolved_event_at(version: u64) -> OrderEvolvedEvent {
    if version <= 1 {
        created().into()
    } else {
        item_v3(version).into()
    }
}

/// The first event of a stream.
pub fn created() -> OrderCreated {
    OrderCreated {
        customer_id: Uuid::now_v7(),
    }
}

/// The event at stream version `version` (1-based) of a workload stream.
pub fn event_at(version: u64) -> OrderEvent {
    if version <= 1 {
        created().into()
    } else {
        item(version).into()
    }
}
