//! Your own operations command: every `eventsource` command, plus `prepopulate`, `verify`
//! and `rebuild` for your aggregate types (see docs/operations.md).
//!
//! ```sh
//! cargo run --example ops -- prepopulate sqlite:app.db --type Order --min-events 500
//! cargo run --example ops -- verify sqlite:app.db --type Order --json
//! ```

use eventsource::{Aggregate, Apply, DomainEvent};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, DomainEvent)]
pub struct ItemAdded {
    pub qty: u32,
    pub price_cents: i64,
}

#[derive(Debug, Default, PartialEq, Serialize, Deserialize, Aggregate)]
#[aggregate(type = "Order", schema_version = 1, events(ItemAdded))]
pub struct Order {
    pub items: u64,
    pub total_cents: i64,
}

impl Apply<ItemAdded> for Order {
    fn apply(&mut self, e: &ItemAdded) {
        self.items += u64::from(e.qty);
        self.total_cents += i64::from(e.qty) * e.price_cents;
    }
}

/// The command, with `Order` registered.
pub fn ops() -> eventsource_cli::Ops {
    eventsource_cli::Ops::new("shop-ops").aggregate::<Order>()
}

fn main() -> std::process::ExitCode {
    ops().run()
}
