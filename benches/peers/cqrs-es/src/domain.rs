//! The Order workload's domain (`docs/workload.md`), written the cqrs-es way: an
//! [`Order`] aggregate implementing `cqrs_es::Aggregate`, an [`OrderEvent`] enum
//! implementing `cqrs_es::DomainEvent`, and an [`OrderCommand`].
//!
//! The state, the events and their payloads are those of `examples/workload/domain.rs`:
//! `OrderCreated { customer_id }` is version 1 of every stream, then
//! `ItemAdded { sku, qty, price_cents, note }` whose `note` pads the item's JSON to
//! [`ITEM_JSON_BYTES`] bytes. cqrs-es stores an event enum as serde writes it, externally
//! tagged (`{"ItemAdded": {...}}`), so its stored payload is 14 bytes longer than ours;
//! that is the library's way and is left as it is.

use std::sync::OnceLock;

use cqrs_es::event_sink::EventSink;
use cqrs_es::{Aggregate, DomainEvent};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The aggregate type (the `aggregate_type` column).
pub const ORDER: &str = "Order";

/// The size of an `ItemAdded` payload in JSON, as in our workload.
pub const ITEM_JSON_BYTES: usize = 200;

/// Version 1 of every stream.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderCreated {
    /// The customer.
    pub customer_id: Uuid,
}

/// An item added to the order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ItemAdded {
    /// The item's SKU (`SKU-` and six digits).
    pub sku: String,
    /// Quantity, 1..=5.
    pub qty: u32,
    /// Unit price, 1000..=1750 cents.
    pub price_cents: i64,
    /// `"x"` repeated, padding the item's JSON to [`ITEM_JSON_BYTES`].
    pub note: String,
}

/// The events of an order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum OrderEvent {
    /// See [`OrderCreated`].
    OrderCreated(OrderCreated),
    /// See [`ItemAdded`].
    ItemAdded(ItemAdded),
}

impl DomainEvent for OrderEvent {
    fn event_type(&self) -> String {
        match self {
            OrderEvent::OrderCreated(_) => "OrderCreated".to_string(),
            OrderEvent::ItemAdded(_) => "ItemAdded".to_string(),
        }
    }

    fn event_version(&self) -> String {
        "1.0".to_string()
    }
}

/// The one command of the workload: record the next event of the stream, as our W4's
/// `execute_or_create(id, |root| root.record(event_at(root.version() + 1)))` does:
/// `OrderCreated` on a new order, else the next `ItemAdded`.
#[derive(Debug, Clone, Copy)]
pub enum OrderCommand {
    /// Record the next event.
    AddNext,
}

/// A command the order refuses (never raised by the workload; cqrs-es requires the type).
#[derive(Debug)]
pub struct OrderError(pub String);

impl std::fmt::Display for OrderError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for OrderError {}

/// The Order aggregate: our workload's state, plus `events_applied`. A cqrs-es aggregate
/// does not see its stream's sequence number, and the workload's next event depends on it
/// (`event_at(version + 1)`), so the state counts the events applied. The state stays small
/// whatever the stream's length, as in our workload.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
pub struct Order {
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
    /// Events applied: the stream's version.
    pub events_applied: u64,
}

impl Order {
    /// The event a command records next: the event at stream version
    /// `events_applied + 1`.
    pub fn next_event(&self) -> OrderEvent {
        event_at(self.events_applied + 1)
    }
}

impl Aggregate for Order {
    const TYPE: &'static str = ORDER;
    type Command = OrderCommand;
    type Event = OrderEvent;
    type Error = OrderError;
    type Services = ();

    async fn handle(
        &mut self,
        command: Self::Command,
        _services: &Self::Services,
        sink: &EventSink<Self>,
    ) -> Result<(), Self::Error> {
        match command {
            OrderCommand::AddNext => {
                let event = self.next_event();
                sink.write(event, self).await;
                Ok(())
            }
        }
    }

    fn apply(&mut self, event: Self::Event) {
        match event {
            OrderEvent::OrderCreated(e) => {
                self.status.clear();
                self.status.push_str("open");
                self.customer_id = e.customer_id;
            }
            OrderEvent::ItemAdded(e) => {
                self.item_count += u64::from(e.qty);
                self.total_cents += i64::from(e.qty) * e.price_cents;
                self.last_sku = e.sku;
            }
        }
        self.events_applied += 1;
    }
}

/// The `note` that pads an `ItemAdded` JSON payload to [`ITEM_JSON_BYTES`] bytes (the same
/// computation as our workload's).
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

/// The `i`-th item of a stream (deterministic, as in our workload).
pub fn item(i: u64) -> ItemAdded {
    ItemAdded {
        sku: format!("SKU-{:06}", i % 1_000_000),
        qty: (i % 5 + 1) as u32,
        price_cents: 1000 + (i % 7) as i64 * 125,
        note: note().to_owned(),
    }
}

/// The event at stream version `version` (1-based) of a workload stream.
pub fn event_at(version: u64) -> OrderEvent {
    if version <= 1 {
        OrderEvent::OrderCreated(OrderCreated {
            customer_id: Uuid::now_v7(),
        })
    } else {
        OrderEvent::ItemAdded(item(version))
    }
}

/// The stored JSON size of an `ItemAdded` event (cqrs-es's externally tagged enum).
pub fn stored_item_bytes() -> usize {
    serde_json::to_vec(&event_at(2)).map_or(0, |v| v.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn item_json_is_padded_like_ours() {
        let bare = serde_json::to_vec(&item(123_456)).unwrap();
        assert_eq!(bare.len(), ITEM_JSON_BYTES);
        assert_eq!(stored_item_bytes(), ITEM_JSON_BYTES + r#"{"ItemAdded":}"#.len());
    }

    #[test]
    fn apply_follows_the_workload() {
        let mut o = Order::default();
        for v in 1..=5 {
            let e = o.next_event();
            o.apply(e);
            assert_eq!(o.events_applied, v);
        }
        assert_eq!(o.status, "open");
        let expected: u64 = (2..=5u64).map(|i| i % 5 + 1).sum();
        assert_eq!(o.item_count, expected);
        assert_eq!(o.last_sku, "SKU-000005");
    }
}
